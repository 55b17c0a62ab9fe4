//! Paging: beyond a queue's window, ready messages live only in a per-queue spool file and cost
//! no RAM at all (a count and two file offsets per queue). They are read back in order, in
//! batches, as consumers drain the window. The spool is scratch space: durable messages are also
//! in the queue's log, which alone is read on recovery; a spool left by a crash is deleted.

use crate::broker::message::{Message, QueuedMessage};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

/// Messages kept in RAM per queue before new ones go to the spool.
pub(super) const WINDOW_MESSAGES: usize = 20_000;
/// Body bytes kept in RAM per queue before new messages go to the spool.
pub(super) const WINDOW_BYTES: u64 = 32 * 1024 * 1024;
/// Written to the file once this much is buffered.
const WRITE_CHUNK: usize = 1 << 20;
/// Read back per refill.
const READ_CHUNK: usize = 4 << 20;

#[derive(Debug)]
pub(super) struct Spool {
    path: PathBuf,
    file: Option<File>,
    pending: Vec<u8>,
    read_at: u64,
    written: u64,
    count: usize,
    bytes: u64,
    /// The last write failed (logged once until a write succeeds again).
    failing: bool,
}

impl Spool {
    pub(super) fn new(path: PathBuf) -> Spool {
        Spool {
            path,
            file: None,
            pending: Vec::new(),
            read_at: 0,
            written: 0,
            count: 0,
            bytes: 0,
            failing: false,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.count
    }

    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Appends a message (buffered; written in large chunks). It is never lost: when the file
    /// cannot be written (a full disk) the bytes stay buffered in memory, where the memory
    /// alarm sees them, and are read back from there.
    pub(super) fn push(&mut self, m: &QueuedMessage) {
        let msg = &m.message;
        let (ex, rk, props, body) = (
            msg.exchange().as_bytes(),
            msg.routing_key_bytes(),
            msg.properties(),
            msg.body(),
        );
        let len = 8 + 8 + 1 + 1 + 4 + 1 + ex.len() + 1 + rk.len() + 4 + props.len() + body.len();
        let p = &mut self.pending;
        p.extend_from_slice(&(len as u32).to_be_bytes());
        p.extend_from_slice(&m.seq.to_be_bytes());
        p.extend_from_slice(&m.expires_at.to_be_bytes());
        p.push(m.redelivered as u8 | (m.delivery_recorded as u8) << 1);
        p.push(m.priority);
        p.extend_from_slice(&m.delivery_count.to_be_bytes());
        p.push(ex.len() as u8);
        p.extend_from_slice(ex);
        p.push(rk.len() as u8);
        p.extend_from_slice(rk);
        p.extend_from_slice(&(props.len() as u32).to_be_bytes());
        p.extend_from_slice(props);
        p.extend_from_slice(body);
        self.count += 1;
        self.bytes += body.len() as u64;
        if self.pending.len() >= WRITE_CHUNK {
            match self.write_pending() {
                Ok(()) if self.failing => {
                    self.failing = false;
                    tracing::info!(path = %self.path.display(), "paging works again");
                }
                Ok(()) => {}
                Err(e) if !self.failing => {
                    self.failing = true;
                    tracing::error!(path = %self.path.display(), error = %e, "cannot page messages out: they stay in memory");
                }
                Err(_) => {}
            }
        }
    }

    fn write_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            self.file = Some(
                OpenOptions::new()
                    .create(true)
                    .read(true)
                    .write(true)
                    .truncate(true)
                    .open(&self.path)?,
            );
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("spool not open"))?;
        file.seek(SeekFrom::Start(self.written))?;
        file.write_all(&self.pending)?;
        self.written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Reads back up to `max` messages, oldest first: from the file while it holds any, then
    /// straight from the buffer (no disk I/O, and no write that a full disk could refuse).
    pub(super) fn pop_batch(&mut self, max: usize, out: &mut Vec<QueuedMessage>) -> io::Result<()> {
        if self.read_at == self.written {
            return self.pop_pending(max, out);
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let want = (self.written - self.read_at).min(READ_CHUNK as u64) as usize;
        let mut buf = vec![0u8; want];
        file.seek(SeekFrom::Start(self.read_at))?;
        file.read_exact(&mut buf)?;
        let mut at = 0;
        let mut taken = 0;
        while taken < max && at + 4 <= buf.len() {
            let len = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
            if at + 4 + len > buf.len() {
                if taken == 0 {
                    // One record larger than the chunk: read exactly it.
                    buf = vec![0u8; 4 + len];
                    file.seek(SeekFrom::Start(self.read_at))?;
                    file.read_exact(&mut buf)?;
                    continue;
                }
                break;
            }
            let m = decode(&buf[at + 4..at + 4 + len])
                .ok_or_else(|| io::Error::other("damaged spool record"))?;
            self.bytes -= m.message.body().len() as u64;
            out.push(m);
            at += 4 + len;
            taken += 1;
        }
        self.read_at += at as u64;
        self.count -= taken;
        if self.count == 0 {
            self.reset();
        }
        Ok(())
    }

    /// Takes up to `max` messages from the front of the unwritten buffer.
    fn pop_pending(&mut self, max: usize, out: &mut Vec<QueuedMessage>) -> io::Result<()> {
        let (mut at, mut taken) = (0, 0);
        let buf = &self.pending;
        while taken < max && at + 4 <= buf.len() {
            let len = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
            let m = buf
                .get(at + 4..at + 4 + len)
                .and_then(decode)
                .ok_or_else(|| io::Error::other("damaged spool record"))?;
            self.bytes -= m.message.body().len() as u64;
            out.push(m);
            at += 4 + len;
            taken += 1;
        }
        self.pending.drain(..at);
        self.count -= taken;
        if self.count == 0 {
            self.reset();
        }
        Ok(())
    }

    /// Forgets everything (purge, delete) and removes the file.
    pub(super) fn reset(&mut self) {
        self.file = None;
        self.pending.clear();
        self.read_at = 0;
        self.written = 0;
        self.count = 0;
        self.bytes = 0;
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn decode(p: &[u8]) -> Option<QueuedMessage> {
    let u64_at = |i: usize| Some(u64::from_be_bytes(p.get(i..i + 8)?.try_into().ok()?));
    let seq = u64_at(0)?;
    let expires_at = u64_at(8)?;
    let flags = *p.get(16)?;
    let priority = *p.get(17)?;
    let delivery_count = u32::from_be_bytes(p.get(18..22)?.try_into().ok()?);
    let mut at = 22;
    let ex_len = *p.get(at)? as usize;
    let exchange = std::str::from_utf8(p.get(at + 1..at + 1 + ex_len)?).ok()?;
    at += 1 + ex_len;
    let rk_len = *p.get(at)? as usize;
    let routing_key = p.get(at + 1..at + 1 + rk_len)?;
    at += 1 + rk_len;
    let props_len = u32::from_be_bytes(p.get(at..at + 4)?.try_into().ok()?) as usize;
    at += 4;
    let props = p.get(at..at + props_len)?;
    let body = p.get(at + props_len..)?;
    Some(QueuedMessage {
        seq,
        message: Message::new(exchange, routing_key, props, body),
        redelivered: flags & 1 != 0,
        priority,
        expires_at,
        delivery_count,
        delivery_recorded: flags & 2 != 0,
    })
}

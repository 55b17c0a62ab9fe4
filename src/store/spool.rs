//! A spool: scratch records appended to one file and read back in order, in batches, so that
//! what it holds costs no RAM (a count and two file offsets). Records are framed like every
//! other file's (`record::begin_framed` / `read_framed`), without the CRC (`Checksum::Scratch`:
//! the file never outlives the process that wrote it); what a payload means is the
//! caller's business (the broker pages ready messages out here). Scratch only: a spool is
//! never read at recovery, and its file goes when the spool is reset or dropped.

use super::record::{begin_framed, end_framed, read_framed, Checksum, Framed, MAX_RECORD};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// Written to the file once this much is buffered.
const WRITE_CHUNK: usize = 1 << 20;
/// Read ahead at a time (kept while the spool holds records: small beside the queue's window).
const READ_CHUNK: usize = 256 << 10;

#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    file: Option<File>,
    /// Records not written yet (the tail of the spool).
    pending: Vec<u8>,
    read_at: u64,
    written: u64,
    count: usize,
    /// The sum of what the caller counted for each record it pushed (body bytes).
    counted: u64,
    /// The last write failed (logged once until a write succeeds again).
    failing: bool,
    /// Written records read ahead: `ahead[ahead_at..ahead_end]` holds the file from `read_at`
    /// on. A chunk is read once and taken from over several batches; the buffer keeps its
    /// length (zeroed once, when it grows), so a refill is one positioned read that neither
    /// allocates nor zeroes memory.
    ahead: Vec<u8>,
    ahead_at: usize,
    ahead_end: usize,
}

impl Spool {
    /// A spool at `path`; the file is created on the first write.
    pub fn new(path: PathBuf) -> Spool {
        Spool {
            path,
            file: None,
            pending: Vec::new(),
            read_at: 0,
            written: 0,
            count: 0,
            counted: 0,
            failing: false,
            ahead: Vec::new(),
            ahead_at: 0,
            ahead_end: 0,
        }
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// What the caller counted for the records held.
    pub fn counted(&self) -> u64 {
        self.counted
    }

    /// Appends one record whose payload `write` appends; `counted` is added to `counted()`.
    /// A write that fails keeps the records in memory (logged once) and is tried again.
    pub fn push(&mut self, counted: u64, write: impl FnOnce(&mut Vec<u8>)) {
        let start = begin_framed(&mut self.pending);
        write(&mut self.pending);
        end_framed(&mut self.pending, start, Checksum::Scratch);
        self.count += 1;
        self.counted += counted;
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
        file.write_all_at(&self.pending, self.written)?;
        self.written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Takes up to `max` records from the front, in order: `decode` turns each payload into
    /// an item and what was counted for it. Written records come first (at most one read-ahead
    /// chunk's worth per call), then the tail still in memory.
    pub fn pop_batch<T>(
        &mut self,
        max: usize,
        mut decode: impl FnMut(&[u8]) -> Option<(T, u64)>,
        out: &mut Vec<T>,
    ) -> io::Result<()> {
        if self.read_at == self.written {
            return self.pop_pending(max, decode, out);
        }
        let mut taken = 0;
        while taken < max && self.read_at < self.written {
            let buffered = &self.ahead[self.ahead_at..self.ahead_end];
            match read_framed(buffered, MAX_RECORD, Checksum::Scratch) {
                Framed::Record(payload, used) => {
                    take(payload, &mut decode, &mut self.counted, out)?;
                    self.ahead_at += used;
                    self.read_at += used as u64;
                    // Counted off one by one: if a later record fails, `len()` is what is
                    // left, not what was already handed out.
                    self.count -= 1;
                    taken += 1;
                }
                // What is buffered is taken; one more chunk only when it held nothing, so a
                // batch is at most one chunk of records (bounded memory for any `max`).
                Framed::Partial(_) | Framed::End if taken > 0 => break,
                Framed::Partial(size) => self.read_ahead(size)?,
                Framed::End => self.read_ahead(0)?,
                Framed::Damaged => return Err(io::Error::other("damaged spool record")),
            }
        }
        if self.count == 0 {
            self.reset();
        }
        Ok(())
    }

    /// Reads the next chunk of written records (at least `need` bytes of it) after what is
    /// buffered, keeping the unread rest.
    fn read_ahead(&mut self, need: usize) -> io::Result<()> {
        let buffered = self.ahead_end - self.ahead_at;
        let in_file = self.written - self.read_at - buffered as u64;
        if in_file == 0 {
            return Err(io::Error::other("damaged spool record"));
        }
        self.ahead.copy_within(self.ahead_at..self.ahead_end, 0);
        self.ahead_at = 0;
        self.ahead_end = buffered;
        let want = in_file.min(READ_CHUNK.max(need) as u64) as usize;
        if self.ahead.len() < buffered + want {
            self.ahead.resize(buffered + want, 0);
        }
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| io::Error::other("spool not open"))?;
        // One positioned read (pread) for the whole chunk: no seek, no growing reads.
        file.read_exact_at(
            &mut self.ahead[buffered..buffered + want],
            self.read_at + buffered as u64,
        )?;
        self.ahead_end = buffered + want;
        Ok(())
    }

    fn pop_pending<T>(
        &mut self,
        max: usize,
        mut decode: impl FnMut(&[u8]) -> Option<(T, u64)>,
        out: &mut Vec<T>,
    ) -> io::Result<()> {
        let (mut at, mut taken) = (0, 0);
        while taken < max {
            match read_framed(&self.pending[at..], MAX_RECORD, Checksum::Scratch) {
                Framed::Record(payload, used) => {
                    take(payload, &mut decode, &mut self.counted, out)?;
                    at += used;
                    taken += 1;
                }
                Framed::End => break,
                Framed::Partial(_) | Framed::Damaged => {
                    return Err(io::Error::other("damaged spool record"))
                }
            }
        }
        self.pending.drain(..at);
        self.count -= taken;
        if self.count == 0 {
            self.reset();
        }
        Ok(())
    }

    /// Forgets everything and removes the file.
    pub fn reset(&mut self) {
        self.file = None;
        self.pending.clear();
        self.ahead = Vec::new();
        self.ahead_at = 0;
        self.ahead_end = 0;
        self.read_at = 0;
        self.written = 0;
        self.count = 0;
        self.counted = 0;
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Decodes one record's payload into `out`, uncounting it.
fn take<T>(
    payload: &[u8],
    decode: &mut impl FnMut(&[u8]) -> Option<(T, u64)>,
    counted: &mut u64,
    out: &mut Vec<T>,
) -> io::Result<()> {
    let (item, n) = decode(payload).ok_or_else(|| io::Error::other("damaged spool record"))?;
    *counted -= n;
    out.push(item);
    Ok(())
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(p: &[u8]) -> Option<(Vec<u8>, u64)> {
        Some((p.to_vec(), p.len() as u64))
    }

    #[test]
    fn records_come_back_in_order_across_the_file_and_the_memory_tail() {
        let path = std::env::temp_dir().join(format!("warren-spool-{}", std::process::id()));
        let mut spool = Spool::new(path.clone());
        // Enough to write several chunks to the file, then a tail that stays in memory.
        let records: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| {
                let mut r = i.to_be_bytes().to_vec();
                r.resize(1000 + (i as usize % 7) * 300, i as u8);
                r
            })
            .collect();
        for r in &records {
            spool.push(r.len() as u64, |out| out.extend_from_slice(r));
        }
        assert!(path.exists(), "the head went to the file");
        assert_eq!(
            spool.counted(),
            records.iter().map(|r| r.len() as u64).sum::<u64>()
        );
        let mut back = Vec::new();
        while !spool.is_empty() {
            let before = back.len();
            spool.pop_batch(700, decode, &mut back).expect("read back");
            assert!(back.len() > before);
        }
        assert_eq!(back, records);
        assert_eq!(spool.counted(), 0);
        assert!(!path.exists(), "an empty spool has no file");
    }
}

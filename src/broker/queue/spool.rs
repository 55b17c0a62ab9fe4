//! Paging: beyond a queue's window, ready messages live only in a per-queue spool file and cost
//! no RAM at all (a count and two file offsets per queue). They are read back in order, in
//! batches, as consumers drain the window. The file and its records are the store's
//! (`store::Spool`); this module says what a paged-out message's payload holds. The spool is
//! scratch space: durable messages are also in the queue's log, which alone is read on
//! recovery; a spool left by a crash is deleted.
//!
//! Payload: `seq u64 | expires_at u64 | flags u8 (1 redelivered, 2 delivery recorded) |
//! priority u8 | delivery_count u32 | exchange (u8 len + bytes) | routing key (u8 len + bytes)
//! | properties (u32 len + bytes) | body (the rest)`.

use crate::broker::message::{Message, QueuedMessage};
use std::io;
use std::path::PathBuf;

/// Messages kept in RAM per queue before new ones go to the spool.
pub(super) const WINDOW_MESSAGES: usize = 20_000;
/// Body bytes kept in RAM per queue before new messages go to the spool.
pub(super) const WINDOW_BYTES: u64 = 32 * 1024 * 1024;

/// One priority level's paged-out messages.
#[derive(Debug)]
pub(super) struct Spool(crate::store::Spool);

impl Spool {
    pub(super) fn new(path: PathBuf) -> Spool {
        Spool(crate::store::Spool::new(path))
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// Body bytes paged out.
    pub(super) fn bytes(&self) -> u64 {
        self.0.counted()
    }

    pub(super) fn push(&mut self, m: &QueuedMessage) {
        let msg = &m.message;
        self.0.push(msg.body().len() as u64, |p| {
            let (ex, rk, props) = (
                msg.exchange().as_bytes(),
                msg.routing_key_bytes(),
                msg.properties(),
            );
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
            p.extend_from_slice(msg.body());
        });
    }

    /// Reads up to `max` messages back, in order.
    pub(super) fn pop_batch(&mut self, max: usize, out: &mut Vec<QueuedMessage>) -> io::Result<()> {
        self.0.pop_batch(
            max,
            |p| {
                decode(p).map(|m| {
                    let body = m.message.body().len() as u64;
                    (m, body)
                })
            },
            out,
        )
    }

    pub(super) fn reset(&mut self) {
        self.0.reset();
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

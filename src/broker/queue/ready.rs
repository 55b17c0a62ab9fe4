//! The ready messages of a queue, in order, by priority when the queue has x-max-priority
//! (higher first, FIFO within a priority), with their total body size for x-max-length-bytes.
//! Beyond the window (see `spool`), new messages of a queue without priorities are paged out
//! and read back in order as the window drains, so RAM stays flat under any backlog.

use super::spool::{Spool, WINDOW_BYTES, WINDOW_MESSAGES};
use crate::broker::message::QueuedMessage;
use std::collections::VecDeque;
use std::path::PathBuf;

#[derive(Debug)]
pub(super) struct ReadyList {
    /// One deque per priority level; index = priority. A queue without priorities has one.
    levels: Vec<VecDeque<QueuedMessage>>,
    /// Messages counted, paged-out ones included.
    len: usize,
    /// Body bytes counted, paged-out ones included.
    bytes: u64,
    /// Paged-out messages, all newer than those in RAM (None: this queue never pages).
    spool: Option<Spool>,
}

impl ReadyList {
    pub(super) fn new(max_priority: u8, spool_path: Option<PathBuf>) -> ReadyList {
        ReadyList {
            levels: (0..=max_priority as usize)
                .map(|_| VecDeque::new())
                .collect(),
            len: 0,
            bytes: 0,
            // Priority queues are not paged: a paged message could outrank the window.
            spool: spool_path.filter(|_| max_priority == 0).map(Spool::new),
        }
    }

    fn spooled(&self) -> usize {
        self.spool.as_ref().map_or(0, |s| s.len())
    }

    /// Moves the oldest paged-out messages back into RAM when the window runs low.
    fn refill(&mut self) {
        let in_ram = self.len - self.spooled();
        if self.spooled() == 0 || in_ram >= WINDOW_MESSAGES / 2 {
            return;
        }
        let mut back = Vec::new();
        if let Some(spool) = &mut self.spool {
            if let Err(e) = spool.pop_batch(WINDOW_MESSAGES / 2, &mut back) {
                tracing::error!(error = %e, "cannot read paged-out messages back; they are lost");
                let (lost, lost_bytes) = (spool.len(), spool.bytes());
                spool.reset();
                self.len -= lost;
                self.bytes -= lost_bytes;
            }
        }
        for m in back {
            // Counted already: only the place changes.
            self.len -= 1;
            self.bytes -= m.message.body.len() as u64;
            self.push_ram(m);
        }
    }

    fn push_ram(&mut self, m: QueuedMessage) {
        let l = self.level(&m);
        self.len += 1;
        self.bytes += m.message.body.len() as u64;
        self.levels[l].push_back(m);
    }

    fn level(&self, m: &QueuedMessage) -> usize {
        (m.priority as usize).min(self.levels.len() - 1)
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Appends a message: to RAM within the window, else to the spool.
    pub(super) fn push_back(&mut self, m: QueuedMessage) {
        let in_ram = self.len - self.spooled();
        let ram_bytes = self.bytes - self.spool.as_ref().map_or(0, |s| s.bytes());
        let page = self.spooled() > 0 || in_ram >= WINDOW_MESSAGES || ram_bytes >= WINDOW_BYTES;
        if let (true, Some(spool)) = (page, &mut self.spool) {
            match spool.push(&m) {
                Ok(()) => {
                    self.len += 1;
                    self.bytes += m.message.body.len() as u64;
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot page a message out; keeping it in RAM")
                }
            }
        }
        self.push_ram(m);
    }

    /// Puts a message back at its original position (by sequence number).
    pub(super) fn insert_in_order(&mut self, m: QueuedMessage) {
        let l = self.level(&m);
        self.len += 1;
        self.bytes += m.message.body.len() as u64;
        let level = &mut self.levels[l];
        let at = level.partition_point(|r| r.seq < m.seq);
        level.insert(at, m);
    }

    /// The message that would be delivered next.
    pub(super) fn front(&mut self) -> Option<&QueuedMessage> {
        self.refill();
        self.levels.iter().rev().find_map(|l| l.front())
    }

    pub(super) fn pop_front(&mut self) -> Option<QueuedMessage> {
        self.refill();
        let m = self.levels.iter_mut().rev().find_map(|l| l.pop_front())?;
        self.len -= 1;
        self.bytes -= m.message.body.len() as u64;
        Some(m)
    }

    /// The oldest message (lowest sequence) regardless of priority: what drop-head removes.
    pub(super) fn pop_oldest(&mut self) -> Option<QueuedMessage> {
        self.refill();
        let level = self
            .levels
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.front().map(|m| (i, m.seq)))
            .min_by_key(|(_, seq)| *seq)?
            .0;
        let m = self.levels[level].pop_front()?;
        self.len -= 1;
        self.bytes -= m.message.body.len() as u64;
        Some(m)
    }

    /// Removes everything, paged-out messages included.
    pub(super) fn drain(&mut self) -> Vec<QueuedMessage> {
        let mut all: Vec<QueuedMessage> =
            self.levels.iter_mut().flat_map(|l| l.drain(..)).collect();
        if let Some(spool) = &mut self.spool {
            while spool.len() > 0 {
                if let Err(e) = spool.pop_batch(usize::MAX, &mut all) {
                    tracing::error!(error = %e, "cannot read paged-out messages back");
                    spool.reset();
                }
            }
        }
        self.len = 0;
        self.bytes = 0;
        all
    }
}

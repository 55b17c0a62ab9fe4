//! The ready messages of a queue, in order, by priority when the queue has x-max-priority
//! (higher first, FIFO within a priority), with their total body size for x-max-length-bytes.
//! Beyond the window (see `spool`), new messages are paged out, one spool per priority level,
//! and read back in order as the window drains, so RAM stays flat under any backlog.

use super::spool::{Spool, WINDOW_BYTES, WINDOW_MESSAGES};

/// Paged-out messages read back per batch when a purge must see them.
const CLEAR_BATCH: usize = 50_000;
use crate::broker::message::QueuedMessage;
use std::collections::VecDeque;
use std::path::PathBuf;

/// One priority level: messages in RAM, then (all newer) messages paged out.
#[derive(Debug)]
struct Level {
    ram: VecDeque<QueuedMessage>,
    spool: Option<Spool>,
}

impl Level {
    fn spooled(&self) -> usize {
        self.spool.as_ref().map_or(0, |s| s.len())
    }
}

#[derive(Debug)]
pub(super) struct ReadyList {
    /// One per priority level; index = priority. A queue without priorities has one.
    levels: Vec<Level>,
    /// Messages counted, paged-out ones included.
    len: usize,
    /// Body bytes counted, paged-out ones included.
    bytes: u64,
    /// Messages and body bytes in RAM (the window).
    ram_len: usize,
    ram_bytes: u64,
    /// Paged-out messages could not be read back and were dropped (`take_lost`).
    lost: bool,
}

impl ReadyList {
    pub(super) fn new(max_priority: u8, spool_path: Option<PathBuf>) -> ReadyList {
        let levels = (0..=max_priority as usize)
            .map(|i| Level {
                ram: VecDeque::new(),
                spool: spool_path
                    .as_ref()
                    .map(|p| Spool::new(p.with_extension(format!("{i}.spool")))),
            })
            .collect();
        ReadyList {
            levels,
            len: 0,
            bytes: 0,
            ram_len: 0,
            ram_bytes: 0,
            lost: false,
        }
    }

    fn level_of(&self, m: &QueuedMessage) -> usize {
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

    fn add_ram(&mut self, l: usize, m: QueuedMessage, at_back: bool) {
        self.ram_len += 1;
        self.ram_bytes += m.message.body().len() as u64;
        if at_back {
            self.levels[l].ram.push_back(m);
        } else {
            let ram = &mut self.levels[l].ram;
            let at = ram.partition_point(|r| r.seq < m.seq);
            ram.insert(at, m);
        }
    }

    fn take_ram(&mut self, l: usize) -> Option<QueuedMessage> {
        let m = self.levels[l].ram.pop_front()?;
        self.ram_len -= 1;
        self.ram_bytes -= m.message.body().len() as u64;
        self.len -= 1;
        self.bytes -= m.message.body().len() as u64;
        Some(m)
    }

    /// Whether paged-out messages were lost since the last call.
    pub(super) fn take_lost(&mut self) -> bool {
        std::mem::take(&mut self.lost)
    }

    /// Reads paged-out messages of level `l` back when its RAM part runs low.
    fn refill(&mut self, l: usize) {
        let level = &self.levels[l];
        // A queue without priorities keeps half a window in RAM; with priorities each level
        // refills when its RAM part is empty, so the total stays near one window.
        let low = if self.levels.len() == 1 {
            WINDOW_MESSAGES / 2
        } else {
            1
        };
        if level.spooled() == 0 || level.ram.len() >= low {
            return;
        }
        let batch = (WINDOW_MESSAGES / 2 / self.levels.len()).max(64);
        let mut back = Vec::new();
        if let Some(spool) = &mut self.levels[l].spool {
            if let Err(e) = spool.pop_batch(batch, &mut back) {
                tracing::error!(error = %e, "cannot read paged-out messages back; they are lost");
                let (lost, lost_bytes) = (spool.len(), spool.bytes());
                spool.reset();
                self.len -= lost;
                self.bytes -= lost_bytes;
                self.lost = true;
            }
        }
        for m in back {
            self.add_ram(l, m, true);
        }
    }

    /// The highest level holding anything, with its RAM part refilled.
    fn next_level(&mut self) -> Option<usize> {
        let l = (0..self.levels.len())
            .rev()
            .find(|&i| !self.levels[i].ram.is_empty() || self.levels[i].spooled() > 0)?;
        self.refill(l);
        Some(l)
    }

    /// Appends a message: to RAM within the window, else to its level's spool.
    pub(super) fn push_back(&mut self, m: QueuedMessage) {
        let l = self.level_of(&m);
        let page = self.levels[l].spooled() > 0
            || self.ram_len >= WINDOW_MESSAGES
            || self.ram_bytes >= WINDOW_BYTES;
        self.len += 1;
        self.bytes += m.message.body().len() as u64;
        if let (true, Some(spool)) = (page, &mut self.levels[l].spool) {
            spool.push(&m);
            return;
        }
        self.add_ram(l, m, true);
    }

    /// Puts a message back at its original position (by sequence number).
    pub(super) fn insert_in_order(&mut self, m: QueuedMessage) {
        let l = self.level_of(&m);
        self.len += 1;
        self.bytes += m.message.body().len() as u64;
        self.add_ram(l, m, false);
    }

    /// The message that would be delivered next.
    pub(super) fn front(&mut self) -> Option<&QueuedMessage> {
        let l = self.next_level()?;
        self.levels[l].ram.front()
    }

    pub(super) fn pop_front(&mut self) -> Option<QueuedMessage> {
        let l = self.next_level()?;
        self.take_ram(l)
    }

    /// The oldest message (lowest sequence) regardless of priority: what drop-head removes.
    pub(super) fn pop_oldest(&mut self) -> Option<QueuedMessage> {
        for l in 0..self.levels.len() {
            self.refill(l);
        }
        let l = (0..self.levels.len())
            .filter_map(|i| self.levels[i].ram.front().map(|m| (i, m.seq)))
            .min_by_key(|(_, seq)| *seq)?
            .0;
        self.take_ram(l)
    }

    /// Removes everything and returns how many messages there were. `each` is handed the
    /// messages in batches; paged-out ones are read back (a bounded batch at a time) only with
    /// `visit_spooled`, otherwise they go with their spool file unread, so purging or deleting
    /// a huge backlog never pulls it into memory.
    pub(super) fn clear(
        &mut self,
        visit_spooled: bool,
        mut each: impl FnMut(Vec<QueuedMessage>),
    ) -> usize {
        let total = self.len;
        for level in &mut self.levels {
            each(level.ram.drain(..).collect());
            let Some(spool) = &mut level.spool else {
                continue;
            };
            while visit_spooled && spool.len() > 0 {
                let mut batch = Vec::new();
                if let Err(e) = spool.pop_batch(CLEAR_BATCH, &mut batch) {
                    tracing::error!(error = %e, "cannot read paged-out messages back");
                    spool.reset();
                }
                each(batch);
            }
            spool.reset();
        }
        self.len = 0;
        self.bytes = 0;
        self.ram_len = 0;
        self.ram_bytes = 0;
        total
    }
}

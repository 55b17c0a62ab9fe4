//! The ready messages of a queue, in order, by priority when the queue has x-max-priority
//! (higher first, FIFO within a priority), with their total body size for x-max-length-bytes.

use crate::broker::message::QueuedMessage;
use std::collections::VecDeque;

#[derive(Debug)]
pub(super) struct ReadyList {
    /// One deque per priority level; index = priority. A queue without priorities has one.
    levels: Vec<VecDeque<QueuedMessage>>,
    len: usize,
    bytes: u64,
}

impl ReadyList {
    pub(super) fn new(max_priority: u8) -> ReadyList {
        ReadyList {
            levels: (0..=max_priority as usize)
                .map(|_| VecDeque::new())
                .collect(),
            len: 0,
            bytes: 0,
        }
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

    pub(super) fn push_back(&mut self, m: QueuedMessage) {
        let l = self.level(&m);
        self.len += 1;
        self.bytes += m.message.body.len() as u64;
        self.levels[l].push_back(m);
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
    pub(super) fn front(&self) -> Option<&QueuedMessage> {
        self.levels.iter().rev().find_map(|l| l.front())
    }

    pub(super) fn pop_front(&mut self) -> Option<QueuedMessage> {
        let m = self.levels.iter_mut().rev().find_map(|l| l.pop_front())?;
        self.len -= 1;
        self.bytes -= m.message.body.len() as u64;
        Some(m)
    }

    /// The oldest message (lowest sequence) regardless of priority: what drop-head removes.
    pub(super) fn pop_oldest(&mut self) -> Option<QueuedMessage> {
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

    pub(super) fn drain(&mut self) -> Vec<QueuedMessage> {
        self.len = 0;
        self.bytes = 0;
        self.levels.iter_mut().flat_map(|l| l.drain(..)).collect()
    }
}

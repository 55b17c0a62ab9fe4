//! Choosing the consumer for the next message: only consumers with credit; among them the
//! highest x-priority, round-robin within a priority; with x-single-active-consumer only the
//! earliest registered consumer receives.
//!
//! Messages picked in a row for the same consumer travel as one batch: its credit is read once
//! when the run starts and taken once when it ends, and the batch is one inbox event. The
//! counters are shared with the consumer's connection on another core, so touching them per
//! message cost more than the rest of the dispatch.

use super::{Delivery, Outbound, Queue, QueueState};
use crate::broker::consumer::{window_units, Room};
use crate::broker::message::QueuedMessage;
use std::sync::Arc;

/// The most messages a run reserves room for at its start.
const MAX_RESERVED: usize = 4096;

/// Messages picked in a row for one consumer.
struct Run {
    consumer: usize,
    room: Room,
    messages: u32,
    /// Of them, messages flagged redelivered.
    redelivered: u32,
    units: u32,
    first: Option<QueuedMessage>,
    rest: Vec<QueuedMessage>,
}

impl Run {
    fn has_room(&self) -> bool {
        self.messages < self.room.messages && self.units < self.room.units
    }

    fn push(&mut self, m: QueuedMessage) {
        self.messages += 1;
        self.redelivered += m.redelivered as u32;
        self.units = self.units.saturating_add(window_units(m.message.size()));
        if self.first.is_none() {
            self.first = Some(m);
        } else {
            self.rest.push(m);
        }
    }
}

impl QueueState {
    /// Hands ready messages to consumers until messages or credit run out; returns the
    /// messages found expired on the way (for dead-lettering). `now` is 0 when nothing in
    /// the queue can expire.
    pub(super) fn dispatch(&mut self, queue: &Arc<Queue>, now: u64) -> Vec<QueuedMessage> {
        let mut expired = Vec::new();
        let mut run: Option<Run> = None;
        let single_active = self.policy.single_active_consumer;
        while !self.ready.is_empty() && !self.consumers.is_empty() {
            let current = run.as_ref().map(|r| (r.consumer, r.has_room()));
            let Some(idx) = self.pick_consumer(single_active, current) else {
                break;
            };
            if run.as_ref().is_none_or(|r| r.consumer != idx) {
                if let Some(done) = run.take() {
                    if !self.send_run(queue, done) {
                        // That consumer's connection is gone: pick again among the others.
                        continue;
                    }
                }
                let room = self.consumers[idx].room();
                // A lone (or the single active) consumer takes messages until its room or the
                // queue runs out: room for them in one allocation rather than a Vec doubling
                // (each growth a realloc, contended with the consumer's core freeing). With
                // several consumers, round-robin makes runs of one.
                let expected = if single_active || self.consumers.len() == 1 {
                    (room.messages.min(room.units) as usize)
                        .min(self.ready.len())
                        .min(MAX_RESERVED)
                        .saturating_sub(1)
                } else {
                    0
                };
                run = Some(Run {
                    consumer: idx,
                    room,
                    messages: 0,
                    redelivered: 0,
                    units: 0,
                    first: None,
                    rest: Vec::with_capacity(expected),
                });
            }
            let Some(message) = self.ready.pop_front() else {
                break;
            };
            self.forget_expiry(&message);
            // An expired message is never delivered (RabbitMQ drops or dead-letters it when it
            // reaches the head). Strictly before now: a message with TTL 0 still reaches a
            // consumer that is ready for it at once.
            if message.expires_at != 0 && message.expires_at < now {
                expired.push(message);
                continue;
            }
            if let Some(r) = run.as_mut() {
                r.push(message);
            }
            self.next_consumer = idx + 1;
        }
        if let Some(done) = run {
            self.send_run(queue, done);
        }
        expired
    }

    /// Takes the run's credit and sends it to its consumer; false (and the messages back in
    /// the queue, the consumer removed) when the consumer's connection is gone.
    fn send_run(&mut self, queue: &Arc<Queue>, run: Run) -> bool {
        let Some(first) = run.first else {
            return true;
        };
        let c = &self.consumers[run.consumer];
        c.take(run.messages, run.units);
        let sent = c.tx.send(Outbound::Deliver(Delivery {
            channel: c.channel,
            consumer_tag: c.tag.clone(),
            no_ack: c.no_ack,
            queue: queue.clone(),
            first,
            rest: run.rest,
        }));
        let Err(e) = sent else {
            let stats = &queue.stats;
            if c.no_ack {
                stats.deliver_no_ack.add(run.messages as u64);
            } else {
                stats.deliver.add(run.messages as u64);
            }
            if run.redelivered > 0 {
                stats.redeliver.add(run.redelivered as u64);
            }
            return true;
        };
        // The connection is gone; its cleanup will remove the consumer. Keep the messages.
        if let Outbound::Deliver(d) = e.0 {
            for m in d.into_messages() {
                self.note_expiry(&m);
                self.ready.insert_in_order(m);
            }
        }
        self.consumers.remove(run.consumer);
        if self.next_consumer > run.consumer {
            self.next_consumer -= 1;
        }
        false
    }

    /// The consumer for the next message. `current` is the consumer of the run being built
    /// and whether it has room left (its credit counters do not show the run yet).
    fn pick_consumer(&self, single_active: bool, current: Option<(usize, bool)>) -> Option<usize> {
        let can_take = |i: usize| match current {
            Some((c, room)) if c == i => room,
            _ => self.consumers[i].can_take(),
        };
        if single_active {
            // The first registered consumer is the active one; the others wait their turn.
            return (!self.consumers.is_empty() && can_take(0)).then_some(0);
        }
        let n = self.consumers.len();
        let start = self.next_consumer % n;
        let mut best: Option<usize> = None;
        for i in (0..n).map(|i| (start + i) % n) {
            if best.is_some_and(|b| self.consumers[i].priority <= self.consumers[b].priority) {
                continue;
            }
            if can_take(i) {
                best = Some(i);
            }
        }
        best
    }
}

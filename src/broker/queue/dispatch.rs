//! Choosing the consumer for the next message: only consumers with credit; among them the
//! highest x-priority, round-robin within a priority; with x-single-active-consumer only the
//! earliest registered consumer receives.

use super::{Queue, QueueState};
use crate::broker::consumer::{window_units, Delivery, Outbound};
use std::sync::Arc;

impl QueueState {
    /// Hands ready messages to consumers until messages or credit run out.
    pub(super) fn dispatch(&mut self, queue: &Arc<Queue>, _now: u64) {
        while !self.ready.is_empty() && !self.consumers.is_empty() {
            let Some(idx) = self.pick_consumer(queue.policy.single_active_consumer) else {
                return;
            };
            let Some(message) = self.ready.pop_front() else {
                return;
            };
            self.forget_expiry(&message);
            let c = &self.consumers[idx];
            c.take(window_units(message.message.size()));
            let sent = c.tx.send(Outbound::Deliver(Delivery {
                channel: c.channel,
                consumer_tag: c.tag.clone(),
                queue: queue.clone(),
                message,
            }));
            if let Err(e) = sent {
                // The connection is gone; its cleanup will remove the consumer. Keep the message.
                if let Outbound::Deliver(d) = e.0 {
                    self.note_expiry(&d.message);
                    self.ready.insert_in_order(d.message);
                }
                self.consumers.remove(idx);
                if self.next_consumer > idx {
                    self.next_consumer -= 1;
                }
                continue;
            }
            self.next_consumer = idx + 1;
        }
    }

    fn pick_consumer(&self, single_active: bool) -> Option<usize> {
        if single_active {
            // The first registered consumer is the active one; the others wait their turn.
            return self.consumers.first().filter(|c| c.can_take()).map(|_| 0);
        }
        let n = self.consumers.len();
        let start = self.next_consumer % n;
        let mut best: Option<usize> = None;
        for i in (0..n).map(|i| (start + i) % n) {
            let c = &self.consumers[i];
            if c.can_take() && best.is_none_or(|b| c.priority > self.consumers[b].priority) {
                best = Some(i);
            }
        }
        best
    }
}

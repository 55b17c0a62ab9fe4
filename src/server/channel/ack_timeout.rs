//! The consumer acknowledgement timeout: a consumer that holds a delivery unacked longer than
//! the timeout is cancelled (basic.cancel, as for a deleted queue) and its unacked messages go
//! back to their queue, redelivered. RabbitMQ closes the whole channel instead (406); users
//! asked for the gentler behaviour, which keeps the channel's other consumers running.

use super::acks::{requeue_all, Unacked};
use super::{Channel, Ctx};
use std::sync::Arc;

impl Channel {
    /// The earliest acknowledgement deadline among unacked deliveries (ms on the broker clock).
    pub fn next_ack_deadline(&self) -> Option<u64> {
        // Deliveries are in time order; per-queue timeouts may differ, so this is the first
        // deadline set, which is close enough for a timeout measured in seconds or minutes.
        self.unacked.iter().map(|u| u.deadline).find(|d| *d != 0)
    }

    /// Cancels consumers whose deliveries are past their deadline and requeues what they held.
    pub fn enforce_ack_timeouts(&mut self, ctx: &mut Ctx<'_>, now: u64, notify: bool) {
        let late: Vec<Arc<crate::broker::consumer::Credit>> = self
            .unacked
            .iter()
            .filter(|u| u.deadline != 0 && u.deadline <= now)
            .filter_map(|u| u.credit.clone())
            .collect();
        if late.is_empty() {
            return;
        }
        let tags: Vec<Arc<str>> = self
            .consumers
            .iter()
            .filter(|(_, c)| late.iter().any(|l| Arc::ptr_eq(l, &c.credit)))
            .map(|(t, _)| t.clone())
            .collect();
        for tag in tags {
            let Some(c) = self.consumers.get(&tag) else {
                continue;
            };
            let credit = c.credit.clone();
            let queue = c.queue.clone();
            tracing::warn!(channel = self.id, consumer = ?tag, queue = ?queue.name(), "consumer acknowledgement timed out: consumer cancelled, messages requeued");
            let (theirs, keep): (Vec<Unacked>, Vec<Unacked>) = self
                .unacked
                .drain(..)
                .partition(|u| u.credit.as_ref().is_some_and(|cr| Arc::ptr_eq(cr, &credit)));
            self.unacked = keep.into();
            self.channel_credit.give_back(theirs.len() as u32);
            // The consumer goes first, so the requeued messages are not handed straight back.
            self.consumers.remove(&tag);
            let fx = queue.remove_consumer(ctx.conn_id, self.id, &tag);
            ctx.vhost.carry_out(&queue, fx);
            requeue_all(ctx.vhost, theirs);
            if notify {
                self.consumer_cancelled_notice(ctx, &tag);
            }
        }
    }
}

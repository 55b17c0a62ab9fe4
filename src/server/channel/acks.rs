//! Unacked deliveries and basic.ack / nack / reject / recover (spec 1.8.3.13-1.8.3.16).
//!
//! Deliveries are kept in tag order in a `VecDeque`: a single ack is a binary search, a
//! multiple ack drains the prefix. An unknown tag is 406 PRECONDITION_FAILED, like RabbitMQ.

use super::{push_unique, Channel, Ctx, Signal, Tx};
use crate::broker::consumer::Credit;
use crate::broker::message::QueuedMessage;
use crate::broker::queue::Queue;
use crate::broker::vhost::VHost;
use crate::error::{AmqpError, AmqpResult};
use std::sync::Arc;

/// A channel's own reference to a queue, one per consumer: every unacked delivery holds a
/// clone of it, and those clones stay on the channel's core instead of bouncing the queue's
/// own reference count (which publishers on other cores bump for every message).
pub type QueueRef = Arc<Arc<Queue>>;

/// A delivery waiting for its ack.
#[derive(Debug)]
pub struct Unacked {
    pub tag: u64,
    pub queue: QueueRef,
    pub message: QueuedMessage,
    /// The consumer's credit (None for basic.get, which takes no credit).
    pub credit: Option<Arc<Credit>>,
    /// When the consumer acknowledgement timeout cancels its consumer (ms since the epoch;
    /// 0: never).
    pub deadline: u64,
}

/// Puts deliveries back in their queues, in their original order.
pub fn requeue_all(vhost: &VHost, pending: Vec<Unacked>) {
    let mut by_queue: Vec<(Arc<Queue>, Vec<QueuedMessage>)> = Vec::new();
    for u in pending {
        if let Some(c) = &u.credit {
            c.give_back(1);
        }
        match by_queue.iter_mut().find(|(q, _)| Arc::ptr_eq(q, &*u.queue)) {
            Some((_, list)) => list.push(u.message),
            None => by_queue.push((Arc::clone(&*u.queue), vec![u.message])),
        }
    }
    for (q, list) in by_queue {
        let fx = q.requeue(list);
        vhost.carry_out(&q, fx);
    }
}

/// How a delivery was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ack,
    /// nack / reject with requeue: back to the queue.
    Requeue,
    /// nack / reject without requeue: dead-lettered or dropped.
    Reject,
}

/// Hands rejected deliveries to their queues (dead-lettering), one call per queue.
fn reject_all(vhost: &VHost, settled: Vec<Unacked>) {
    let mut by_queue: Vec<(Arc<Queue>, Vec<QueuedMessage>)> = Vec::new();
    for u in settled {
        match by_queue.iter_mut().find(|(q, _)| Arc::ptr_eq(q, &*u.queue)) {
            Some((_, list)) => list.push(u.message),
            None => by_queue.push((Arc::clone(&*u.queue), vec![u.message])),
        }
    }
    for (q, list) in by_queue {
        let fx = q.reject(list);
        vhost.carry_out(&q, fx);
    }
}

/// Notes acked deliveries for their queues' counters, which the channel adds once per batch
/// (`Channel::flush_ack_counts`): the queue's counter is shared with other consumers.
fn count_acks(settled: &[Unacked], pending: &mut Vec<(QueueRef, usize)>) {
    for u in settled {
        match pending.iter_mut().find(|(q, _)| Arc::ptr_eq(q, &u.queue)) {
            Some((_, n)) => *n += 1,
            None => pending.push((u.queue.clone(), 1)),
        }
    }
}

/// Releases the log records of acked deliveries, one call per queue.
fn forget_all(settled: &[Unacked]) {
    // Queues with a log (records to release) or deduplication (keys to release).
    let durable = |u: &&Unacked| u.queue.log().is_some() || u.queue.deduplicates();
    let Some(first) = settled.iter().find(durable) else {
        return;
    };
    if settled
        .iter()
        .filter(durable)
        .all(|u| Arc::ptr_eq(&*u.queue, &*first.queue))
    {
        first
            .queue
            .forget(settled.iter().filter(durable).map(|u| &u.message));
        return;
    }
    for u in settled.iter().filter(durable) {
        u.queue.forget(std::iter::once(&u.message));
    }
}

impl Channel {
    /// Removes and returns the deliveries an ack/nack/reject names.
    fn take_unacked(&mut self, tag: u64, multiple: bool) -> AmqpResult<Vec<Unacked>> {
        if multiple && tag == 0 {
            // Spec: multiple with tag 0 means "everything outstanding".
            return Ok(self.unacked.drain(..).collect());
        }
        let Ok(at) = self.unacked.binary_search_by_key(&tag, |u| u.tag) else {
            return Err(AmqpError::precondition_failed(format!(
                "unknown delivery tag {tag}"
            )));
        };
        if multiple {
            Ok(self.unacked.drain(..=at).collect())
        } else {
            Ok(self.unacked.remove(at).into_iter().collect())
        }
    }

    /// basic.ack, basic.nack and basic.reject from the client.
    pub fn settle(
        &mut self,
        ctx: &mut Ctx<'_>,
        tag: u64,
        multiple: bool,
        requeue: Option<bool>,
    ) -> AmqpResult<Signal> {
        let settled = self.take_unacked(tag, multiple)?;
        let outcome = match requeue {
            None => Outcome::Ack,
            Some(true) => Outcome::Requeue,
            Some(false) => Outcome::Reject,
        };
        if let Some(tx) = &mut self.tx {
            // Inside a transaction the outcome waits for tx.commit.
            tx.acks.extend(settled.into_iter().map(|u| (u, outcome)));
            return Ok(Signal::Continue);
        }
        self.apply_settled(ctx, settled, outcome);
        Ok(Signal::Continue)
    }

    /// Applies acks (drop) or requeues and returns credit to consumers.
    pub(super) fn apply_settled(
        &mut self,
        ctx: &mut Ctx<'_>,
        settled: Vec<Unacked>,
        outcome: Outcome,
    ) {
        if settled.is_empty() {
            return;
        }
        if outcome == Outcome::Requeue {
            let n = settled.iter().filter(|u| u.credit.is_some()).count() as u32;
            self.channel_credit.give_back(n);
            for u in &settled {
                push_unique(ctx.redispatch, &u.queue);
            }
            requeue_all(ctx.vhost, settled);
            return;
        }
        // Credit goes back once per run of deliveries from the same consumer: the counter is
        // shared with the queue's dispatch on another core.
        let channel_wide = self.channel_credit.limit() != 0;
        let mut channel_credit_freed = 0u32;
        let mut run: Option<(&Arc<Credit>, u32)> = None;
        for u in &settled {
            let Some(c) = &u.credit else {
                continue;
            };
            channel_credit_freed += 1;
            match &mut run {
                Some((current, n)) if Arc::ptr_eq(current, c) => *n += 1,
                _ => {
                    if let Some((done, n)) = run.replace((c, 1)) {
                        done.give_back(n);
                    }
                    if !channel_wide {
                        push_unique(ctx.redispatch, &u.queue);
                    }
                }
            }
        }
        if let Some((done, n)) = run {
            done.give_back(n);
        }
        if channel_credit_freed > 0 {
            self.channel_credit.give_back(channel_credit_freed);
            if channel_wide {
                // Channel-wide prefetch: any of this channel's consumers may now take more.
                // They are woken in turn, starting after the queue whose delivery was just
                // settled (as RabbitMQ's limiter does), so that one queue cannot take every
                // credit that comes back and starve the others.
                let first = ctx.redispatch.len();
                for c in self.consumers.values() {
                    push_unique(ctx.redispatch, &c.queue);
                }
                if let Some(last) = settled.iter().rev().find(|u| u.credit.is_some()) {
                    let woken = &mut ctx.redispatch[first..];
                    if let Some(i) = woken.iter().position(|q| Arc::ptr_eq(q, &last.queue)) {
                        woken.rotate_left(i + 1);
                    }
                }
            }
        }
        match outcome {
            Outcome::Reject => reject_all(ctx.vhost, settled),
            _ => {
                self.stats.ack.add(settled.len() as u64);
                count_acks(&settled, &mut self.pending_ack_counts);
                forget_all(&settled)
            }
        }
    }

    /// basic.recover / recover-async with requeue=true: everything unacked goes back.
    pub fn recover(&mut self, ctx: &mut Ctx<'_>) {
        let all: Vec<Unacked> = self.unacked.drain(..).collect();
        let n = all.iter().filter(|u| u.credit.is_some()).count() as u32;
        self.channel_credit.give_back(n);
        for u in &all {
            push_unique(ctx.redispatch, &u.queue);
        }
        requeue_all(ctx.vhost, all);
    }

    /// tx.commit: applies deferred acks, then deferred publishes.
    pub(super) fn commit(&mut self, ctx: &mut Ctx<'_>, tx: Tx) -> AmqpResult<()> {
        let (mut acked, mut requeued, mut rejected) = (Vec::new(), Vec::new(), Vec::new());
        for (u, outcome) in tx.acks {
            match outcome {
                Outcome::Ack => acked.push(u),
                Outcome::Requeue => requeued.push(u),
                Outcome::Reject => rejected.push(u),
            }
        }
        self.apply_settled(ctx, acked, Outcome::Ack);
        self.apply_settled(ctx, requeued, Outcome::Requeue);
        self.apply_settled(ctx, rejected, Outcome::Reject);
        for p in tx.publishes {
            self.route_and_enqueue(ctx, p)?;
        }
        Ok(())
    }

    /// tx.rollback: deferred acks are undone (the deliveries are unacked again).
    pub(super) fn rollback(&mut self, tx: Tx) {
        for (u, _) in tx.acks {
            let at = self.unacked.partition_point(|x| x.tag < u.tag);
            self.unacked.insert(at, u);
        }
    }
}

//! Message statistics: counters that only ever grow, kept where the work happens (per queue,
//! per channel) and read by the management API and the Prometheus endpoint. Rates are
//! computed when read, from samples (see `rates`).
//!
//! Nothing here is shared across cores per message: a queue's counters are written under
//! the queue's own lock (which the message path holds anyway), a channel's by its connection
//! task alone, and the few written from elsewhere (acks, which come from consumers'
//! connections) once per ack batch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A counter with one writer at a time (the owner of a lock, or one task): an increment is a
/// plain load and store, no locked instruction. Readers on other threads see a recent value.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only one thread may add at a time (see the type's comment).
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Sets a gauge (same single-writer rule).
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A queue's counters. On cache lines of their own (128 bytes: the line and the one the
/// prefetcher pairs with it): the publisher's core writes them per message, while consumers'
/// connections on other cores read the queue's other fields per delivery.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct QueueStats {
    /// Messages enqueued (under the queue's lock).
    pub publish: Counter,
    /// Messages handed to consumers, with and without acks (under the queue's lock).
    pub deliver: Counter,
    pub deliver_no_ack: Counter,
    /// basic.get answers, with and without acks (under the queue's lock).
    pub get: Counter,
    pub get_no_ack: Counter,
    /// Deliveries of messages flagged redelivered (under the queue's lock).
    pub redeliver: Counter,
    /// Deliveries acked by their consumers (once per input batch of the consumer's
    /// connection).
    pub ack: AtomicU64,
    /// Deliveries that needed an ack and were rejected or requeued instead (once per batch).
    pub returned: AtomicU64,
}

impl QueueStats {
    /// Deliveries waiting for an ack.
    pub fn unacked(&self) -> u64 {
        let out = self.deliver.get() + self.get.get();
        let settled = self.ack.load(Ordering::Relaxed) + self.returned.load(Ordering::Relaxed);
        out.saturating_sub(settled)
    }

    pub fn totals(&self) -> MessageTotals {
        MessageTotals {
            deliver: self.deliver.get() + self.deliver_no_ack.get(),
            deliver_no_ack: self.deliver_no_ack.get(),
            get: self.get.get() + self.get_no_ack.get(),
            get_no_ack: self.get_no_ack.get(),
            redeliver: self.redeliver.get(),
            ack: self.ack.load(Ordering::Relaxed),
            publish: self.publish.get(),
            ..MessageTotals::default()
        }
    }
}

/// A channel's counters, written by its connection task only, per batch: on cache lines of
/// their own, away from the credits its consumers share with their queues' cores.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct ChannelStats {
    /// basic.publish received.
    pub publish: Counter,
    /// Publishes routed to at least one queue.
    pub routed: Counter,
    pub unroutable_returned: Counter,
    pub unroutable_dropped: Counter,
    /// basic.ack sent to a confirm-mode publisher (per message).
    pub confirm: Counter,
    pub deliver: Counter,
    pub deliver_no_ack: Counter,
    pub get: Counter,
    pub get_no_ack: Counter,
    pub get_empty: Counter,
    pub redeliver: Counter,
    /// Deliveries the client acked.
    pub ack: Counter,
    /// Deliveries waiting for the client's ack.
    pub unacked: Counter,
    /// basic.qos prefetch-count (per consumer) and global.
    pub prefetch: Counter,
    pub global_prefetch: Counter,
    pub consumers: Counter,
    /// 1 once confirm.select / tx.select was seen.
    pub confirm_mode: Counter,
    pub transactional: Counter,
    /// Publishes per exchange (RabbitMQ's channel_exchange_stats). The channel keeps the
    /// entry of the exchange it publishes to, so the lock is taken when it changes exchange.
    exchanges: parking_lot::Mutex<Vec<(Box<str>, Arc<ExchangeCounters>)>>,
}

impl ChannelStats {
    /// This channel's counters for publishes to `exchange`.
    pub fn exchange_counters(&self, exchange: &str) -> Arc<ExchangeCounters> {
        let mut all = self.exchanges.lock();
        if let Some((_, c)) = all.iter().find(|(name, _)| &**name == exchange) {
            return c.clone();
        }
        let c = Arc::new(ExchangeCounters::default());
        all.push((exchange.into(), c.clone()));
        c
    }

    /// Publishes per exchange so far.
    pub fn exchange_totals(&self) -> Vec<(Box<str>, ExchangeTotals)> {
        self.exchanges
            .lock()
            .iter()
            .map(|(name, c)| (name.clone(), c.totals()))
            .collect()
    }

    pub fn totals(&self) -> MessageTotals {
        MessageTotals {
            publish: self.publish.get(),
            routed: self.routed.get(),
            unroutable_returned: self.unroutable_returned.get(),
            unroutable_dropped: self.unroutable_dropped.get(),
            confirm: self.confirm.get(),
            deliver: self.deliver.get() + self.deliver_no_ack.get(),
            deliver_no_ack: self.deliver_no_ack.get(),
            get: self.get.get() + self.get_no_ack.get(),
            get_no_ack: self.get_no_ack.get(),
            get_empty: self.get_empty.get(),
            redeliver: self.redeliver.get(),
            ack: self.ack.get(),
        }
    }
}

/// One channel's publishes through one exchange, written by its connection task only, per
/// message: on cache lines of their own, so that no neighbouring allocation shares them.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct ExchangeCounters {
    /// Messages published to the exchange.
    pub publish_in: Counter,
    /// Messages it routed, once per queue reached (RabbitMQ's publish_out).
    pub publish_out: Counter,
}

impl ExchangeCounters {
    /// One publish that reached `queues` queues.
    #[inline]
    pub fn add(&self, queues: u32) {
        self.publish_in.add(1);
        self.publish_out.add(queues as u64);
    }

    pub fn totals(&self) -> ExchangeTotals {
        ExchangeTotals {
            publish_in: self.publish_in.get(),
            publish_out: self.publish_out.get(),
        }
    }
}

/// An exchange's message counts (its message_stats in the management API).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExchangeTotals {
    pub publish_in: u64,
    pub publish_out: u64,
}

impl std::ops::AddAssign for ExchangeTotals {
    fn add_assign(&mut self, o: ExchangeTotals) {
        self.publish_in += o.publish_in;
        self.publish_out += o.publish_out;
    }
}

impl ExchangeTotals {
    /// Per-second rates (publish_in, publish_out) between two snapshots `secs` apart.
    pub fn rates_since(&self, earlier: &ExchangeTotals, secs: f64) -> (f64, f64) {
        if secs <= 0.0 {
            return (0.0, 0.0);
        }
        (
            self.publish_in.saturating_sub(earlier.publish_in) as f64 / secs,
            self.publish_out.saturating_sub(earlier.publish_out) as f64 / secs,
        )
    }
}

/// A snapshot of message counts (RabbitMQ's message_stats). `deliver` and `get` include
/// their no-ack parts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageTotals {
    pub publish: u64,
    pub routed: u64,
    pub unroutable_returned: u64,
    pub unroutable_dropped: u64,
    pub confirm: u64,
    pub deliver: u64,
    pub deliver_no_ack: u64,
    pub get: u64,
    pub get_no_ack: u64,
    pub get_empty: u64,
    pub redeliver: u64,
    pub ack: u64,
}

impl std::ops::AddAssign for MessageTotals {
    fn add_assign(&mut self, o: MessageTotals) {
        self.publish += o.publish;
        self.routed += o.routed;
        self.unroutable_returned += o.unroutable_returned;
        self.unroutable_dropped += o.unroutable_dropped;
        self.confirm += o.confirm;
        self.deliver += o.deliver;
        self.deliver_no_ack += o.deliver_no_ack;
        self.get += o.get;
        self.get_no_ack += o.get_no_ack;
        self.get_empty += o.get_empty;
        self.redeliver += o.redeliver;
        self.ack += o.ack;
    }
}

impl MessageTotals {
    /// deliver + get, RabbitMQ's `deliver_get`.
    pub fn deliver_get(&self) -> u64 {
        self.deliver + self.get
    }

    /// Per-second rates between two snapshots `secs` apart.
    pub fn rates_since(&self, earlier: &MessageTotals, secs: f64) -> MessageRates {
        let r = |now: u64, then: u64| {
            if secs <= 0.0 {
                0.0
            } else {
                now.saturating_sub(then) as f64 / secs
            }
        };
        MessageRates {
            publish: r(self.publish, earlier.publish),
            confirm: r(self.confirm, earlier.confirm),
            deliver: r(self.deliver, earlier.deliver),
            deliver_no_ack: r(self.deliver_no_ack, earlier.deliver_no_ack),
            get: r(self.get, earlier.get),
            get_no_ack: r(self.get_no_ack, earlier.get_no_ack),
            deliver_get: r(self.deliver_get(), earlier.deliver_get()),
            redeliver: r(self.redeliver, earlier.redeliver),
            ack: r(self.ack, earlier.ack),
            return_unroutable: r(self.unroutable_returned, earlier.unroutable_returned),
            drop_unroutable: r(self.unroutable_dropped, earlier.unroutable_dropped),
        }
    }
}

/// Messages per second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MessageRates {
    pub publish: f64,
    pub confirm: f64,
    pub deliver: f64,
    pub deliver_no_ack: f64,
    pub get: f64,
    pub get_no_ack: f64,
    pub deliver_get: f64,
    pub redeliver: f64,
    pub ack: f64,
    pub return_unroutable: f64,
    pub drop_unroutable: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unacked_is_what_went_out_with_acks_and_was_not_settled() {
        let s = QueueStats::default();
        s.deliver.add(5);
        s.get.add(2);
        s.deliver_no_ack.add(10);
        s.ack.fetch_add(3, Ordering::Relaxed);
        s.returned.fetch_add(1, Ordering::Relaxed);
        assert_eq!(s.unacked(), 3);
        let t = s.totals();
        assert_eq!((t.deliver, t.get, t.deliver_get()), (15, 2, 17));
    }

    #[test]
    fn rates_are_differences_over_time() {
        let a = MessageTotals {
            publish: 100,
            ..Default::default()
        };
        let b = MessageTotals {
            publish: 600,
            ack: 50,
            ..Default::default()
        };
        let r = b.rates_since(&a, 5.0);
        assert_eq!(r.publish, 100.0);
        assert_eq!(r.ack, 10.0);
        assert_eq!(b.rates_since(&a, 0.0).publish, 0.0);
    }
}

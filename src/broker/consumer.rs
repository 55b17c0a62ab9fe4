//! What a queue knows about a consumer: an opaque sink toward its connection, never the
//! connection itself (no back-edges), plus the credit counters it shares with its channel.
//!
//! A delivery names its queue by a handle `Q` (the broker uses `Arc<Queue>`, see
//! `queue::Delivery`), so this module does not depend on the queue that depends on it.

use super::message::QueuedMessage;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// How many deliveries a no-ack consumer may have queued toward its connection before the
/// queue waits for the connection to write them. Bounds memory when a no-ack consumer's
/// socket is slower than its publishers, while keeping batches large enough to amortise wakes.
pub const NO_ACK_WINDOW: u32 = 2000;

/// A delivery takes one window unit per started 8 KiB of message, so the window holds 2,000
/// small messages but only a couple of hundred 64 KiB ones (about 16 MiB per consumer).
const WINDOW_UNIT_BYTES: usize = 8 * 1024;

/// Window units a message of `size` bytes takes (at least one).
pub fn window_units(size: usize) -> u32 {
    1 + (size / WINDOW_UNIT_BYTES).min(NO_ACK_WINDOW as usize) as u32
}

/// Events a queue sends to a connection.
#[derive(Debug)]
pub enum Outbound<Q> {
    /// A message for a consumer.
    Deliver(Delivery<Q>),
    /// The queue went away: the consumer is cancelled (basic.cancel from the server).
    Cancelled {
        channel: u16,
        consumer_tag: Arc<str>,
    },
}

/// Deliveries from one queue to one consumer, in order; the connection assigns the delivery
/// tags. A dispatch pass sends one per run of messages for the same consumer, so the inbox,
/// the credit counters and the reference counts are touched once per batch, not per message.
#[derive(Debug)]
pub struct Delivery<Q> {
    pub channel: u16,
    pub consumer_tag: Arc<str>,
    /// The consumer takes no acks (counted apart in the statistics).
    pub no_ack: bool,
    /// The queue the messages come from, for their acks.
    pub queue: Q,
    pub first: QueuedMessage,
    /// The messages after `first` (an empty Vec does not allocate).
    pub rest: Vec<QueuedMessage>,
}

impl<Q> Delivery<Q> {
    /// Every message, in order.
    pub fn into_messages(self) -> Vec<QueuedMessage> {
        let mut all = Vec::with_capacity(1 + self.rest.len());
        all.push(self.first);
        all.extend(self.rest);
        all
    }
}

/// What a consumer may take now, read once per dispatch run.
#[derive(Debug, Clone, Copy)]
pub struct Room {
    /// Deliveries the prefetch limits allow (u32::MAX: unlimited).
    pub messages: u32,
    /// Window units (see `window_units`) before the window is full.
    pub units: u32,
}

/// Unacked (or, for no-ack consumers, unwritten) deliveries, shared by queue and channel.
/// Written from both sides per delivery: on cache lines of its own (128 bytes), so that no
/// neighbouring allocation (a consumer tag, a channel's counters) pays for its traffic.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Credit {
    in_flight: AtomicU32,
    /// 0 = unlimited.
    limit: AtomicU32,
}

impl Credit {
    /// A counter with a fixed limit (0 = unlimited).
    pub fn with_limit(limit: u32) -> Credit {
        Credit {
            in_flight: AtomicU32::new(0),
            limit: AtomicU32::new(limit),
        }
    }
    pub fn has_room(&self) -> bool {
        self.room() > 0
    }
    /// How much more may be taken before the limit (u32::MAX: unlimited).
    pub fn room(&self) -> u32 {
        let limit = self.limit.load(Ordering::Relaxed);
        if limit == 0 {
            return u32::MAX;
        }
        limit.saturating_sub(self.in_flight.load(Ordering::Acquire))
    }
    pub fn take(&self) {
        self.take_n(1);
    }
    pub fn take_n(&self, n: u32) {
        self.in_flight.fetch_add(n, Ordering::AcqRel);
    }
    /// Returns `n` credits; saturates so a bookkeeping slip can never wrap around.
    pub fn give_back(&self, n: u32) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some(v.saturating_sub(n))
            });
    }
    pub fn set_limit(&self, limit: u32) {
        self.limit.store(limit, Ordering::Release);
    }
    pub fn limit(&self) -> u32 {
        self.limit.load(Ordering::Relaxed)
    }
}

/// A consumer registered on a queue.
#[derive(Debug)]
pub struct ConsumerEntry<Q> {
    pub tag: Arc<str>,
    pub conn_id: u64,
    pub channel: u16,
    pub tx: UnboundedSender<Outbound<Q>>,
    pub no_ack: bool,
    pub exclusive: bool,
    /// Per-consumer prefetch (basic.qos global=false), or the no-ack window.
    pub credit: Arc<Credit>,
    /// Channel-wide prefetch (basic.qos global=true); unused for no-ack consumers.
    pub channel_credit: Arc<Credit>,
    /// x-priority from basic.consume: higher-priority consumers are served first.
    pub priority: i64,
    /// Deliveries handed to the connection but not yet written to its socket, bounded by
    /// NO_ACK_WINDOW whatever the prefetch: with prefetch 0 a slow consumer would otherwise
    /// pull the whole backlog (paged-out messages included) into memory. For no-ack consumers
    /// this is the same counter as `credit`.
    pub window: Arc<Credit>,
}

impl<Q> ConsumerEntry<Q> {
    /// Whether this consumer may take one more message now.
    pub fn can_take(&self) -> bool {
        let room = self.room();
        room.messages > 0 && room.units > 0
    }
    /// What this consumer may take now.
    pub fn room(&self) -> Room {
        if self.no_ack {
            // The no-ack credit is the window itself.
            Room {
                messages: u32::MAX,
                units: self.credit.room(),
            }
        } else {
            Room {
                messages: self.credit.room().min(self.channel_credit.room()),
                units: self.window.room(),
            }
        }
    }

    /// Takes credit for `messages` deliveries of `units` window units in all.
    pub fn take(&self, messages: u32, units: u32) {
        if self.no_ack {
            self.credit.take_n(units);
        } else {
            self.credit.take_n(messages);
            self.channel_credit.take_n(messages);
            self.window.take_n(units);
        }
    }
}

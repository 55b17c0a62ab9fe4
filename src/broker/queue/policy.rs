//! The queue arguments that change behaviour, read once at declaration (already validated by
//! `broker::arguments`).

use crate::protocol::table::{as_bytes, as_int};
use crate::protocol::{AMQPValue, FieldTable};

/// What x-overflow does when a length limit is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    DropHead,
    RejectPublish,
    RejectPublishDlx,
}

/// The behaviour-changing arguments of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePolicy {
    pub message_ttl: Option<u64>,
    pub expires: Option<u64>,
    pub max_length: Option<u64>,
    pub max_length_bytes: Option<u64>,
    pub overflow: Overflow,
    pub dead_letter_exchange: Option<String>,
    pub dead_letter_routing_key: Option<String>,
    pub max_priority: u8,
    pub single_active_consumer: bool,
    /// x-consumer-timeout: how long a delivery may stay unacked (ms).
    pub consumer_timeout: Option<u64>,
    /// x-queue-type quorum: on one node, a durable queue that counts redeliveries.
    pub quorum: bool,
    /// x-delivery-limit (quorum queues): returns allowed before the message is dead-lettered.
    pub delivery_limit: Option<u64>,
}

fn int(args: &FieldTable, key: &str) -> Option<u64> {
    args.inner()
        .get(key)
        .and_then(as_int)
        .and_then(|v| u64::try_from(v).ok())
}

fn text(args: &FieldTable, key: &str) -> Option<String> {
    args.inner()
        .get(key)
        .and_then(as_bytes)
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

impl QueuePolicy {
    pub fn from_arguments(args: &FieldTable) -> QueuePolicy {
        QueuePolicy {
            message_ttl: int(args, "x-message-ttl"),
            expires: int(args, "x-expires"),
            max_length: int(args, "x-max-length"),
            max_length_bytes: int(args, "x-max-length-bytes"),
            overflow: match text(args, "x-overflow").as_deref() {
                Some("reject-publish") => Overflow::RejectPublish,
                Some("reject-publish-dlx") => Overflow::RejectPublishDlx,
                _ => Overflow::DropHead,
            },
            dead_letter_exchange: text(args, "x-dead-letter-exchange"),
            dead_letter_routing_key: text(args, "x-dead-letter-routing-key"),
            max_priority: int(args, "x-max-priority").map_or(0, |p| p.min(255) as u8),
            consumer_timeout: int(args, "x-consumer-timeout"),
            quorum: text(args, "x-queue-type").as_deref() == Some("quorum"),
            delivery_limit: int(args, "x-delivery-limit"),
            single_active_consumer: matches!(
                args.inner().get("x-single-active-consumer"),
                Some(AMQPValue::Boolean(true))
            ),
        }
    }

    /// Whether the queue is at or over a length limit.
    pub fn is_full(&self, len: usize, bytes: u64) -> bool {
        self.max_length.is_some_and(|m| len as u64 >= m)
            || self.max_length_bytes.is_some_and(|m| bytes >= m)
    }

    /// Whether the queue is over a length limit (drop-head trims to this).
    pub fn is_over(&self, len: usize, bytes: u64) -> bool {
        self.max_length.is_some_and(|m| len as u64 > m)
            || self.max_length_bytes.is_some_and(|m| bytes > m)
    }
}

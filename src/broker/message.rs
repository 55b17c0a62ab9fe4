//! A published message: stored once, shared by every queue it is routed to as `Arc<Message>`.

use crate::protocol::properties;
use std::sync::Arc;

/// One message as the publisher sent it. Properties are the raw bytes from the content header
/// (forwarded verbatim on delivery); fields are read lazily through `properties::view`.
/// Exchange name, routing key, properties and body share one exact-size allocation, so a
/// message costs two allocations in all (this block and the `Arc`) however many queues it is
/// routed to. The exchange name is copied rather than shared: a shared `Arc<str>` would have
/// its reference count bumped by the publisher's thread and dropped by the consumer's for
/// every message, a cache line bouncing between cores.
#[derive(Debug)]
pub struct Message {
    /// Exchange name, then routing key, then raw properties, then body.
    data: Box<[u8]>,
    exchange_len: u8,
    routing_key_len: u8,
    properties_len: u32,
    /// delivery-mode 2, read once from the properties.
    persistent: bool,
    /// The expiration property in ms, read once.
    expiration: Option<u64>,
    /// The priority property, read once.
    priority: u8,
}

impl Message {
    /// Builds a message; `exchange` and `routing_key` are at most 255 bytes (they came from
    /// shortstrs; longer ones are cut).
    pub fn new(exchange: &str, routing_key: &str, properties: &[u8], body: &[u8]) -> Message {
        let ex = &exchange.as_bytes()[..exchange.len().min(255)];
        let rk = &routing_key.as_bytes()[..routing_key.len().min(255)];
        let mut data = Vec::with_capacity(ex.len() + rk.len() + properties.len() + body.len());
        data.extend_from_slice(ex);
        data.extend_from_slice(rk);
        data.extend_from_slice(properties);
        data.extend_from_slice(body);
        // The fields the queues need, read in one walk over the raw properties.
        let view = properties::view(properties).unwrap_or_default();
        Message {
            exchange_len: ex.len() as u8,
            routing_key_len: rk.len() as u8,
            properties_len: properties.len() as u32,
            persistent: view.delivery_mode == Some(properties::PERSISTENT),
            expiration: view.expiration.and_then(|e| e.parse().ok()),
            priority: view.priority.unwrap_or(0),
            data: data.into_boxed_slice(),
        }
    }

    /// The exchange it was published to.
    pub fn exchange(&self) -> &str {
        std::str::from_utf8(&self.data[..self.exchange_len as usize]).unwrap_or("")
    }

    /// The routing key it was published with.
    pub fn routing_key(&self) -> &str {
        let start = self.exchange_len as usize;
        std::str::from_utf8(&self.data[start..start + self.routing_key_len as usize]).unwrap_or("")
    }

    /// The raw property bytes (flags + list).
    pub fn properties(&self) -> &[u8] {
        let start = self.exchange_len as usize + self.routing_key_len as usize;
        &self.data[start..start + self.properties_len as usize]
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        let start = self.exchange_len as usize
            + self.routing_key_len as usize
            + self.properties_len as usize;
        &self.data[start..]
    }

    /// The properties the broker looks at, read from the raw bytes.
    pub fn view(&self) -> properties::PropertiesView<'_> {
        properties::view(self.properties()).unwrap_or_default()
    }

    /// delivery-mode 2.
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    /// The expiration property in milliseconds, if any.
    pub fn expiration(&self) -> Option<u64> {
        self.expiration
    }

    /// Bytes this message keeps alive (for limits and stats).
    pub fn size(&self) -> usize {
        self.data.len()
    }
}

/// A message's place in one queue.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    /// Position in the queue; requeued messages go back in this order.
    pub seq: u64,
    pub message: Arc<Message>,
    pub redelivered: bool,
    /// Priority (0 unless the queue has x-max-priority).
    pub priority: u8,
    /// When it expires, in ms since the Unix epoch (0: never).
    pub expires_at: u64,
    /// Times it was returned to a quorum queue (x-delivery-count).
    pub delivery_count: u32,
}

impl QueuedMessage {
    /// Places `message` in a queue with `policy`: the shorter of the queue's x-message-ttl and
    /// the message's expiration applies; priority is capped at x-max-priority.
    pub fn new(
        seq: u64,
        message: Arc<Message>,
        now_ms: u64,
        policy: &crate::broker::queue::QueuePolicy,
    ) -> QueuedMessage {
        let per_message = message.expiration;
        let ttl = match (policy.message_ttl, per_message) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let priority = if policy.max_priority > 0 {
            message.priority.min(policy.max_priority)
        } else {
            0
        };
        QueuedMessage {
            seq,
            message,
            redelivered: false,
            priority,
            expires_at: ttl.map_or(0, |t| now_ms.saturating_add(t).max(1)),
            delivery_count: 0,
        }
    }
}

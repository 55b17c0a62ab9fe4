//! A published message: stored once, in one allocation, and shared by every queue it is
//! routed to (cloning a `Message` clones a reference).

use crate::protocol::properties;
use std::sync::Arc;

/// Bytes before the exchange name: lengths and the property fields queues need.
const HEADER: usize = 16;
const PERSISTENT: u8 = 1;
const HAS_EXPIRATION: u8 = 2;

/// One message as the publisher sent it. Properties are the raw bytes from the content header
/// (forwarded verbatim on delivery); fields are read lazily through `properties::view`.
///
/// Everything lives in one reference-counted block: a 16-byte header (name lengths, property
/// length, persistence, priority, expiration), then the exchange name, routing key, raw
/// properties and body. A message is one allocation however many queues it is routed to.
/// The exchange name is copied rather than shared: a shared `Arc<str>` would have its count
/// bumped by the publisher's thread and dropped by the consumer's for every message.
#[derive(Debug, Clone)]
pub struct Message {
    data: Arc<[u8]>,
}

impl Message {
    /// Builds a message; `exchange` and `routing_key` are at most 255 bytes (they came from
    /// shortstrs; longer ones are cut). The routing key is bytes: RabbitMQ does not check a
    /// publish's shortstrs for UTF-8 and delivers them as sent.
    pub fn new(exchange: &str, routing_key: &[u8], properties: &[u8], body: &[u8]) -> Message {
        // The fields the queues need, read in one walk over the raw properties.
        let view = properties::view(properties).unwrap_or_default();
        Message::with_view(exchange, routing_key, properties, &view, body)
    }

    /// `new`, for a publisher whose properties were already read into `view` (its delivery
    /// mode, expiration and priority are what is used from it).
    pub fn with_view(
        exchange: &str,
        routing_key: &[u8],
        properties: &[u8],
        view: &properties::PropertiesView<'_>,
        body: &[u8],
    ) -> Message {
        let ex = &exchange.as_bytes()[..exchange.len().min(255)];
        let rk = &routing_key[..routing_key.len().min(255)];
        let expiration = view.expiration.and_then(|e| e.parse::<u64>().ok());
        let mut flags = 0;
        if view.delivery_mode == Some(properties::PERSISTENT) {
            flags |= PERSISTENT;
        }
        if expiration.is_some() {
            flags |= HAS_EXPIRATION;
        }
        let total = HEADER + ex.len() + rk.len() + properties.len() + body.len();
        // One exact-size allocation. It is zeroed first: filling it uninitialised would need
        // unsafe code, which this crate forbids; the memset costs far less than an allocation.
        let mut data: Arc<[u8]> = std::iter::repeat_n(0u8, total).collect();
        if let Some(buf) = Arc::get_mut(&mut data) {
            buf[0] = ex.len() as u8;
            buf[1] = rk.len() as u8;
            buf[2] = flags;
            buf[3] = view.priority.unwrap_or(0);
            buf[4..8].copy_from_slice(&(properties.len() as u32).to_le_bytes());
            buf[8..16].copy_from_slice(&expiration.unwrap_or(0).to_le_bytes());
            let mut at = HEADER;
            for part in [ex, rk, properties, body] {
                buf[at..at + part.len()].copy_from_slice(part);
                at += part.len();
            }
        }
        Message { data }
    }

    fn exchange_len(&self) -> usize {
        self.data[0] as usize
    }

    fn routing_key_len(&self) -> usize {
        self.data[1] as usize
    }

    fn properties_len(&self) -> usize {
        u32::from_le_bytes([self.data[4], self.data[5], self.data[6], self.data[7]]) as usize
    }

    /// The exchange name's bytes (checked UTF-8 when the message was published), for
    /// encoders: no re-validation per delivery.
    pub fn exchange_bytes(&self) -> &[u8] {
        &self.data[HEADER..HEADER + self.exchange_len()]
    }

    /// The routing key's bytes, as the publisher sent them (not necessarily UTF-8).
    pub fn routing_key_bytes(&self) -> &[u8] {
        let start = HEADER + self.exchange_len();
        &self.data[start..start + self.routing_key_len()]
    }

    /// The exchange it was published to.
    pub fn exchange(&self) -> &str {
        std::str::from_utf8(&self.data[HEADER..HEADER + self.exchange_len()]).unwrap_or("")
    }

    /// The routing key it was published with, as text for routing: bytes that are not UTF-8
    /// become U+FFFD (they can only match wildcards, since binding keys are UTF-8).
    pub fn routing_key(&self) -> std::borrow::Cow<'_, str> {
        crate::utf8_lossy(self.routing_key_bytes())
    }

    /// The raw property bytes (flags + list).
    pub fn properties(&self) -> &[u8] {
        let start = HEADER + self.exchange_len() + self.routing_key_len();
        &self.data[start..start + self.properties_len()]
    }

    /// The body.
    #[inline]
    pub fn body(&self) -> &[u8] {
        let start = HEADER + self.exchange_len() + self.routing_key_len() + self.properties_len();
        &self.data[start..]
    }

    /// The properties the broker looks at, read from the raw bytes.
    pub fn view(&self) -> properties::PropertiesView<'_> {
        properties::view(self.properties()).unwrap_or_default()
    }

    /// delivery-mode 2.
    pub fn is_persistent(&self) -> bool {
        self.data[2] & PERSISTENT != 0
    }

    /// The expiration property in milliseconds, if any.
    pub fn expiration(&self) -> Option<u64> {
        (self.data[2] & HAS_EXPIRATION != 0).then(|| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.data[8..16]);
            u64::from_le_bytes(b)
        })
    }

    /// The priority property (0 when absent).
    fn priority(&self) -> u8 {
        self.data[3]
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
    pub message: Message,
    pub redelivered: bool,
    /// Priority (0 unless the queue has x-max-priority).
    pub priority: u8,
    /// When it expires, in ms since the Unix epoch (0: never).
    pub expires_at: u64,
    /// Times it was returned to a quorum queue (x-delivery-count).
    pub delivery_count: u32,
    /// A delivery of it is recorded in the queue log, so after a restart it comes back
    /// redelivered. Separate from `redelivered`: a message can be flagged without a record
    /// (recovered after a crash, or returned before it was written to a consumer), and its
    /// next delivery must then be recorded.
    pub delivery_recorded: bool,
}

impl QueuedMessage {
    /// Places `message` in a queue with x-message-ttl `queue_ttl` and x-max-priority
    /// `max_priority` (0: none): the shorter of the queue's TTL and the message's expiration
    /// applies; priority is capped at x-max-priority.
    pub fn new(
        seq: u64,
        message: Message,
        now_ms: u64,
        queue_ttl: Option<u64>,
        max_priority: u8,
    ) -> QueuedMessage {
        let per_message = message.expiration();
        let ttl = match (queue_ttl, per_message) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let priority = if max_priority > 0 {
            message.priority().min(max_priority)
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
            delivery_recorded: false,
        }
    }
}

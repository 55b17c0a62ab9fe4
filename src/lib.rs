//! Warren: a RabbitMQ-compatible AMQP 0-9-1 message broker.
//!
//! ```text
//! socket bytes ─► protocol::frame ─► server::connection ─► server::channel
//!             ─► broker::vhost ─► broker::exchange (route) ─► broker::queue
//!             ─► consumer sink ─► server::connection (encode, batched write)
//! ```
//!
//! Dependency rules: `protocol` is the only module that names amq-protocol; `store` knows
//! bytes and files, not AMQP; `broker` knows protocol value types, `store` and `error`, never
//! sockets or frames; `server` translates between frames and `broker` (`VHost::publish` and
//! the other vhost operations); `management` is the HTTP shell beside it (RabbitMQ's
//! management API), calling `broker` only; `config` and `error` are leaves; `main.rs` wires everything.
//! Inside `broker` the layers are vhost → exchange → queue → consumer / dead_letter →
//! message / clock: a queue returns `Effects` that its vhost carries out, and no module
//! imports one above it. `broker::access` (users, permissions, policies, limits) sits beside
//! them and imports none of them; `broker::definitions` (RabbitMQ's JSON) sits on top, beside
//! `Broker`. Durable definitions are written by the store's storage thread, never by an async
//! worker. No globals.

#![deny(unsafe_code)]

/// HashMap with a fast, randomly keyed hasher (ahash): the maps on the per-message path are keyed
/// by client-chosen names, so the hasher must resist collision attacks, and SipHash showed up at
/// ~5% of broker CPU (PERFORMANCE.md).
pub type FastMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

/// Bytes as text, invalid UTF-8 as U+FFFD. `String::from_utf8_lossy` walks the bytes in
/// chunks even when they are valid; routing keys on the publish path almost always are, and
/// `str::from_utf8` checks those several times faster.
#[inline]
pub(crate) fn utf8_lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

pub mod broker;
pub mod config;
pub mod ctl;
pub mod error;
pub mod management;
pub mod protocol;
pub mod server;
pub mod store;

//! Warren: a RabbitMQ-compatible AMQP 0-9-1 message broker.
//!
//! ```text
//! socket bytes ─► protocol::frame ─► server::connection ─► server::channel
//!             ─► broker::vhost ─► broker::exchange (route) ─► broker::queue
//!             ─► consumer sink ─► server::connection (encode, batched write)
//! ```
//!
//! Dependency rules: `protocol` knows only bytes and amq-protocol; `broker` knows protocol value
//! types and `error`, never sockets or frames; `server` translates between the two; `config`
//! and `error` are leaves; `main.rs` wires everything. No globals.

#![deny(unsafe_code)]

/// HashMap with a fast, randomly keyed hasher (ahash): the maps on the per-message path are keyed
/// by client-chosen names, so the hasher must resist collision attacks, and SipHash showed up at
/// ~5% of broker CPU (PERFORMANCE.md).
pub type FastMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

pub mod broker;
pub mod config;
pub mod error;
pub mod protocol;
pub mod server;
pub mod store;

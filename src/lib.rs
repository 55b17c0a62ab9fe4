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

pub mod broker;
pub mod config;
pub mod error;
pub mod protocol;
pub mod server;
pub mod store;

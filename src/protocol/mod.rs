//! The wire codec: bytes ⇄ frames, with no sockets, tasks or broker types.
//!
//! * `frame`: splits the byte stream into frames, enforcing frame_max and the end octet.
//! * `fast`: hand-written, borrowed, allocation-free decoding of the per-message methods
//!   (basic.publish, ack, nack, reject) and the content header.
//! * `properties`: validates raw basic properties and reads single fields lazily.
//! * `encode`: hand-written encoders for deliveries, get-ok, return and confirms, plus a
//!   generic encoder that goes through amq-protocol for every other method.
//! * `cold`: parses every other method through amq-protocol.
//! * `table`: field-table values compared and named the way RabbitMQ does.
//! * `raw_table`: one entry of a raw table, borrowed, for per-message header lookups.
//!
//! * `methods`: class and method ids by name.
//!
//! This is the only module that names the `amq_protocol` crate: the rest of Warren takes its
//! method structs and field types from here.

pub mod cold;
pub mod cursor;
pub mod encode;
pub mod fast;
pub mod frame;
pub mod json;
pub mod methods;
pub mod properties;
pub mod raw_table;
pub mod table;

pub use amq_protocol::protocol::{
    basic, channel, confirm, connection, exchange, queue, tx, AMQPClass, BasicProperties,
};
pub use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};

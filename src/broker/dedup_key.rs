//! The deduplication key of a message: the value of its deduplication header (exchanges and
//! queues with deduplication turned on). Integers of every width are one key, as the
//! plugin's Erlang terms are; a string "1" and an integer 1 are two; void is a key of its own
//! (the plugin's `undefined`); tables and arrays are keys by their encoded bytes (LavinMQ; the
//! plugin fails on them). Strings have no length limit (a longstr is not a shortstr).

use crate::protocol::raw_table::{self, RawValue};

/// The header that carries the key, unless the exchange or queue renames it.
pub const DEFAULT_HEADER: &str = "x-deduplication-header";

/// The key of a message with these raw headers; None without the header.
pub fn key_of(headers: Option<&[u8]>, header: &[u8]) -> Option<Vec<u8>> {
    raw_table::lookup(headers?, header).map(key_bytes)
}

fn key_bytes(v: RawValue<'_>) -> Vec<u8> {
    let tagged = |tag: u8, bytes: &[u8]| {
        let mut k = Vec::with_capacity(bytes.len() + 1);
        k.push(tag);
        k.extend_from_slice(bytes);
        k
    };
    match v {
        RawValue::LongStr(b) | RawValue::Binary(b) => tagged(b's', b),
        RawValue::Signed(n) => tagged(b'i', &i128::from(n).to_be_bytes()),
        RawValue::Unsigned(n) => tagged(b'i', &i128::from(n).to_be_bytes()),
        RawValue::Timestamp(n) => tagged(b'i', &i128::from(n).to_be_bytes()),
        RawValue::Float(f) => tagged(b'f', &f.to_be_bytes()),
        RawValue::Bool(b) => tagged(b'b', &[b as u8]),
        RawValue::Decimal(scale, value) => {
            let mut k = vec![b'd', scale];
            k.extend_from_slice(&value.to_be_bytes());
            k
        }
        RawValue::Void => vec![b'v'],
        RawValue::Table(b) => tagged(b't', b),
        RawValue::Array(b) => tagged(b'a', b),
    }
}

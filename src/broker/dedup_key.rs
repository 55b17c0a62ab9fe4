//! The deduplication key of a message: the value of its deduplication header (exchanges and
//! queues with deduplication turned on). Integers of every width are one key, as the
//! plugin's Erlang terms are; a string "1" and an integer 1 are two; void is a key of its own
//! (the plugin's `undefined`); tables and arrays are keys by their encoded bytes (LavinMQ; the
//! plugin fails on them). Strings have no length limit (a longstr is not a shortstr).

use crate::protocol::raw_table::{self, RawValue};

/// The header that carries the key, unless the exchange or queue renames it.
pub const DEFAULT_HEADER: &str = "x-deduplication-header";

/// Keys up to this length are built on the stack (ids are UUIDs or hashes); longer ones in a
/// Vec.
const INLINE: usize = 96;

/// Calls `f` with the key of a message with these raw headers; None without the header.
/// A short key is built on the stack: a duplicate costs no allocation, and a new key is
/// copied once, into the map that keeps it.
pub fn with_key<R>(headers: Option<&[u8]>, header: &[u8], f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    let v = raw_table::lookup(headers?, header)?;
    let mut number = [0u8; 16];
    let mut put = |bytes: &[u8]| {
        number[..bytes.len()].copy_from_slice(bytes);
        bytes.len()
    };
    let (tag, len) = match v {
        RawValue::LongStr(_) | RawValue::Binary(_) => (b's', 0),
        RawValue::Table(_) => (b't', 0),
        RawValue::Array(_) => (b'a', 0),
        RawValue::Signed(n) => (b'i', put(&i128::from(n).to_be_bytes())),
        RawValue::Unsigned(n) => (b'i', put(&i128::from(n).to_be_bytes())),
        RawValue::Timestamp(n) => (b'i', put(&i128::from(n).to_be_bytes())),
        RawValue::Float(x) => (b'f', put(&x.to_be_bytes())),
        RawValue::Bool(b) => (b'b', put(&[b as u8])),
        RawValue::Decimal(scale, value) => {
            let [a, b, c, d] = value.to_be_bytes();
            (b'd', put(&[scale, a, b, c, d]))
        }
        RawValue::Void => (b'v', 0),
    };
    let bytes: &[u8] = match v {
        RawValue::LongStr(b) | RawValue::Binary(b) | RawValue::Table(b) | RawValue::Array(b) => b,
        _ => &number[..len],
    };
    if bytes.len() < INLINE {
        let mut inline = [0u8; INLINE];
        inline[0] = tag;
        inline[1..=bytes.len()].copy_from_slice(bytes);
        Some(f(&inline[..=bytes.len()]))
    } else {
        let mut k = Vec::with_capacity(bytes.len() + 1);
        k.push(tag);
        k.extend_from_slice(bytes);
        Some(f(&k))
    }
}

//! Reading one entry of a raw field table without decoding the rest: the per-message lookups
//! of the selector and deduplication exchanges (a header by name) allocate nothing.

use super::cursor::Cursor;

/// One field value, borrowed from the table's bytes, with RabbitMQ's type distinctions (the
/// selector exchange accepts signed integers but not unsigned ones, as RabbitMQ's plugin
/// does). Tables and arrays are not looked into.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawValue<'a> {
    Bool(bool),
    /// `b`, `s`, `I`, `l` (and `L`, which RabbitMQ reads as a signed long).
    Signed(i64),
    /// `B`, `u`, `i`.
    Unsigned(u32),
    Timestamp(u64),
    /// `f` (widened) or `d`.
    Float(f64),
    /// A longstr (`S`).
    LongStr(&'a [u8]),
    /// A byte array (`x`).
    Binary(&'a [u8]),
    /// A decimal: (scale, value).
    Decimal(u8, u32),
    Void,
    Table(&'a [u8]),
    Array(&'a [u8]),
}

/// The value of `key` in a raw table (with its 4-byte length prefix, as
/// `PropertiesView::headers` gives it). The first entry of that name wins, as in RabbitMQ's
/// `rabbit_misc:table_lookup`. `None` when absent or when the bytes are malformed.
pub fn lookup<'a>(table: &'a [u8], key: &[u8]) -> Option<RawValue<'a>> {
    let mut outer = Cursor::new(table);
    let body = outer.long_bytes()?;
    let mut c = Cursor::new(body);
    while c.remaining() > 0 {
        let name = c.short_bytes()?;
        let value = read_value(&mut c)?;
        if name == key {
            return Some(value);
        }
    }
    None
}

fn read_value<'a>(c: &mut Cursor<'a>) -> Option<RawValue<'a>> {
    let tag = c.u8()?;
    let v = match tag {
        b't' => RawValue::Bool(c.u8()? != 0),
        b'b' => RawValue::Signed(c.u8()? as i8 as i64),
        b'B' => RawValue::Unsigned(c.u8()? as u32),
        // 's' is RabbitMQ's short int; 'U' is the spec's (amq-protocol reads both).
        b's' | b'U' => RawValue::Signed(c.u16()? as i16 as i64),
        b'u' => RawValue::Unsigned(c.u16()? as u32),
        b'I' => RawValue::Signed(c.u32()? as i32 as i64),
        b'i' => RawValue::Unsigned(c.u32()?),
        b'l' | b'L' => RawValue::Signed(c.u64()? as i64),
        b'T' => RawValue::Timestamp(c.u64()?),
        b'f' => RawValue::Float(f32::from_bits(c.u32()?) as f64),
        b'd' => RawValue::Float(f64::from_bits(c.u64()?)),
        b'D' => RawValue::Decimal(c.u8()?, c.u32()?),
        b'S' => RawValue::LongStr(c.long_bytes()?),
        b'x' => RawValue::Binary(c.long_bytes()?),
        b'V' => RawValue::Void,
        b'F' => RawValue::Table(c.long_bytes()?),
        b'A' => RawValue::Array(c.long_bytes()?),
        _ => return None,
    };
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::table::encode_table;
    use crate::protocol::{AMQPValue, FieldTable};

    fn table(entries: &[(&str, AMQPValue)]) -> Vec<u8> {
        let mut t = FieldTable::default();
        for (k, v) in entries {
            t.insert((*k).into(), v.clone());
        }
        encode_table(&t)
    }

    #[test]
    fn finds_each_scalar_type() {
        let raw = table(&[
            ("a", AMQPValue::LongString("red".into())),
            ("b", AMQPValue::LongInt(-7)),
            ("c", AMQPValue::Boolean(true)),
            ("d", AMQPValue::Double(2.5)),
            ("e", AMQPValue::ShortShortInt(-3)),
            ("f", AMQPValue::LongLongInt(1 << 40)),
            ("g", AMQPValue::Void),
        ]);
        assert_eq!(lookup(&raw, b"a"), Some(RawValue::LongStr(b"red")));
        assert_eq!(lookup(&raw, b"b"), Some(RawValue::Signed(-7)));
        assert_eq!(lookup(&raw, b"c"), Some(RawValue::Bool(true)));
        assert_eq!(lookup(&raw, b"d"), Some(RawValue::Float(2.5)));
        assert_eq!(lookup(&raw, b"e"), Some(RawValue::Signed(-3)));
        assert_eq!(lookup(&raw, b"f"), Some(RawValue::Signed(1 << 40)));
        assert_eq!(lookup(&raw, b"g"), Some(RawValue::Void));
        assert_eq!(lookup(&raw, b"h"), None);
    }

    #[test]
    fn malformed_bytes_are_absent_not_a_panic() {
        let raw = table(&[("a", AMQPValue::LongString("red".into()))]);
        for cut in 0..raw.len() {
            let _ = lookup(&raw[..cut], b"a");
        }
        assert_eq!(lookup(&[0, 0, 0, 3, 1, b'a', b'?'], b"a"), None);
    }
}

//! Field-table helpers with RabbitMQ's semantics: values compare by value across integer
//! widths (Erlang's `==`), and type names and renderings follow RabbitMQ's error texts.

use amq_protocol::types::{AMQPValue, FieldTable};

/// An integer value of any width, as i128.
pub fn as_int(v: &AMQPValue) -> Option<i128> {
    Some(match v {
        AMQPValue::ShortShortInt(x) => *x as i128,
        AMQPValue::ShortShortUInt(x) => *x as i128,
        AMQPValue::ShortInt(x) => *x as i128,
        AMQPValue::ShortUInt(x) => *x as i128,
        AMQPValue::LongInt(x) => *x as i128,
        AMQPValue::LongUInt(x) => *x as i128,
        AMQPValue::LongLongInt(x) => *x as i128,
        AMQPValue::Timestamp(x) => *x as i128,
        _ => return None,
    })
}

/// A string value (longstr, or the rarely seen shortstr), as bytes.
pub fn as_bytes(v: &AMQPValue) -> Option<&[u8]> {
    match v {
        AMQPValue::LongString(s) => Some(s.as_bytes()),
        AMQPValue::ShortString(s) => Some(s.as_str().as_bytes()),
        _ => None,
    }
}

/// Equality as RabbitMQ sees it: an `I` 10 equals an `l` 10; strings compare by bytes.
pub fn same_value(a: &AMQPValue, b: &AMQPValue) -> bool {
    if let (Some(x), Some(y)) = (as_int(a), as_int(b)) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (as_bytes(a), as_bytes(b)) {
        return x == y;
    }
    a == b
}

/// RabbitMQ's name for a field type, as used in its error texts.
pub fn type_name(v: &AMQPValue) -> &'static str {
    match v {
        AMQPValue::Boolean(_) => "bool",
        AMQPValue::ShortShortInt(_) => "byte",
        AMQPValue::ShortShortUInt(_) => "unsignedbyte",
        AMQPValue::ShortInt(_) => "short",
        AMQPValue::ShortUInt(_) => "unsignedshort",
        AMQPValue::LongInt(_) => "signedint",
        AMQPValue::LongUInt(_) => "unsignedint",
        AMQPValue::LongLongInt(_) => "long",
        AMQPValue::Float(_) => "float",
        AMQPValue::Double(_) => "double",
        AMQPValue::DecimalValue(_) => "decimal",
        AMQPValue::ShortString(_) | AMQPValue::LongString(_) => "longstr",
        AMQPValue::FieldArray(_) => "array",
        AMQPValue::Timestamp(_) => "timestamp",
        AMQPValue::FieldTable(_) => "table",
        AMQPValue::ByteArray(_) => "binary",
        AMQPValue::Void => "void",
    }
}

/// A value rendered for an error text.
pub fn value_text(v: &AMQPValue) -> String {
    if let Some(i) = as_int(v) {
        return i.to_string();
    }
    match v {
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::Float(f) => f.to_string(),
        AMQPValue::Double(f) => f.to_string(),
        other => match as_bytes(other) {
            Some(b) => String::from_utf8_lossy(b).into_owned(),
            None => format!("{other:?}"),
        },
    }
}

/// Encodes a field table (with its length prefix) for storage.
pub fn encode_table(t: &FieldTable) -> Vec<u8> {
    use amq_protocol::types::generation::gen_field_table;
    match gen_field_table(t)(amq_protocol::frame::WriteContext::from(Vec::new())) {
        Ok(ctx) => ctx.write,
        Err(_) => vec![0, 0, 0, 0],
    }
}

/// Parses a table from bytes whose nesting was already checked (the headers of properties
/// that passed `properties::validate`).
pub fn parse_checked_table(bytes: &[u8]) -> Option<FieldTable> {
    use amq_protocol::types::parsing::parse_field_table;
    parse_field_table(bytes).ok().map(|(_, t)| t)
}

/// Decodes a stored field table. Its nesting is checked first (as for tables from clients):
/// amq-protocol's parser recurses, and a damaged data directory must not overflow the stack.
pub fn decode_table(bytes: &[u8]) -> Option<FieldTable> {
    use amq_protocol::types::parsing::parse_field_table;
    super::properties::skip_table(&mut super::cursor::Cursor::new(bytes), 0)?;
    parse_field_table(bytes).ok().map(|(_, t)| t)
}

/// Looks up a key.
pub fn get<'a>(t: &'a FieldTable, key: &str) -> Option<&'a AMQPValue> {
    t.inner().get(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_compare_across_widths() {
        assert!(same_value(
            &AMQPValue::LongInt(10),
            &AMQPValue::LongLongInt(10)
        ));
        assert!(!same_value(
            &AMQPValue::LongInt(10),
            &AMQPValue::LongLongInt(11)
        ));
        assert!(same_value(
            &AMQPValue::LongString(b"a".to_vec().into()),
            &AMQPValue::ShortString("a".into())
        ));
        assert_eq!(type_name(&AMQPValue::LongInt(1)), "signedint");
    }
}

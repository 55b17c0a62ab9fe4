//! Every method off the hot path, parsed by amq-protocol from a complete, size-checked frame.

use amq_protocol::protocol::{parse_class, AMQPClass};
use nom::combinator::all_consuming;
use nom::Parser;

/// Parses a method payload; `None` when it is malformed. Field tables are first walked with a
/// depth limit: amq-protocol's parser recurses once per nesting level, and a frame of nested
/// tables would otherwise overflow the stack and abort the broker.
pub fn parse_method(payload: &[u8]) -> Option<AMQPClass> {
    if !tables_within_limits(payload) {
        return None;
    }
    all_consuming(parse_class)
        .parse(payload)
        .ok()
        .map(|(_, m)| m)
}

/// Walks the fields before a method's argument table and checks the table's nesting depth.
/// Methods without a table pass.
fn tables_within_limits(payload: &[u8]) -> bool {
    use super::cursor::Cursor;
    use super::properties::skip_table;
    let mut c = Cursor::new(payload);
    let (Some(class), Some(method)) = (c.u16(), c.u16()) else {
        return true;
    };
    // (ticket first?, shortstrs before the table, a bits octet before the table?)
    let layout: Option<(bool, usize, bool)> = match (class, method) {
        (10, 11) => Some((false, 0, false)),
        (40, 10) => Some((true, 2, true)),
        (40, 30) | (40, 40) | (50, 20) => Some((true, 3, true)),
        (50, 10) => Some((true, 1, true)),
        (50, 50) => Some((true, 3, false)),
        (60, 20) => Some((true, 2, true)),
        _ => None,
    };
    let Some((ticket, shortstrs, bits)) = layout else {
        return true;
    };
    let walked = (|| {
        if ticket {
            c.u16()?;
        }
        for _ in 0..shortstrs {
            let n = c.u8()? as usize;
            c.take(n)?;
        }
        if bits {
            c.u8()?;
        }
        skip_table(&mut c, 0)
    })();
    walked.is_some()
}

/// Whether (class, method) names a method of AMQP 0-9-1 at all (used to tell "cannot decode"
/// from "unimplemented method", as RabbitMQ does).
pub fn is_known_method(class_id: u16, method_id: u16) -> bool {
    let methods: &[u16] = match class_id {
        10 => &[10, 11, 20, 21, 30, 31, 40, 41, 50, 51, 60, 61, 70, 71],
        20 => &[10, 11, 20, 21, 40, 41],
        30 => &[10, 11],
        40 => &[10, 11, 20, 21, 30, 31, 40, 51],
        50 => &[10, 11, 20, 21, 30, 31, 40, 41, 50, 51],
        60 => &[
            10, 11, 20, 21, 30, 31, 40, 50, 60, 70, 71, 72, 80, 90, 100, 110, 111, 120,
        ],
        85 => &[10, 11],
        90 => &[10, 11, 20, 21, 30, 31],
        _ => &[],
    };
    methods.contains(&method_id)
}

/// RabbitMQ's rendering of undecodable bytes, `<<0,1,2>>`, cut to fit a reply text.
pub fn erlang_binary(bytes: &[u8]) -> String {
    let mut s = String::from("<<");
    for (i, b) in bytes.iter().take(60).enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&b.to_string());
    }
    s.push_str(">>");
    s
}

/// A binary as Erlang's `~p` prints it: `<<"text">>` when every byte is printable ASCII,
/// else as numbers (RabbitMQ puts values this way into some reply texts).
pub fn erlang_printed(bytes: &[u8]) -> String {
    let printable = !bytes.is_empty() && bytes.iter().all(|b| (0x20..=0x7e).contains(b));
    if !printable {
        return erlang_binary(bytes);
    }
    let mut s = String::from("<<\"");
    for &b in bytes.iter().take(200) {
        if b == b'"' || b == b'\\' {
            s.push('\\');
        }
        s.push(b as char);
    }
    s.push_str("\">>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_binaries_are_printed_as_erlang_strings() {
        assert_eq!(erlang_printed(b"abc"), "<<\"abc\">>");
        assert_eq!(erlang_printed(b"a\"b"), "<<\"a\\\"b\">>");
        assert_eq!(erlang_printed(&[0, 1]), "<<0,1>>");
        assert_eq!(erlang_printed(b""), "<<>>");
    }

    #[test]
    fn deeply_nested_arguments_are_refused_without_recursing() {
        let mut t: Vec<u8> = vec![0, 0, 0, 0];
        for _ in 0..17_000 {
            let mut outer = Vec::with_capacity(t.len() + 7);
            outer.extend_from_slice(&((t.len() + 3) as u32).to_be_bytes());
            outer.extend_from_slice(&[1, b'k', b'F']);
            outer.extend_from_slice(&t);
            t = outer;
        }
        let mut payload = vec![0, 50, 0, 10, 0, 0, 5];
        payload.extend_from_slice(b"deepq");
        payload.push(0);
        payload.extend_from_slice(&t);
        assert!(!tables_within_limits(&payload), "depth check");
        assert!(parse_method(&payload).is_none());
    }
}

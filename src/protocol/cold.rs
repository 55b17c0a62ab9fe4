//! Every method off the hot path, parsed by amq-protocol from a complete, size-checked frame.

use amq_protocol::protocol::{parse_class, AMQPClass};
use nom::combinator::all_consuming;
use nom::Parser;

/// Parses a method payload; `None` when it is malformed (502 SYNTAX_ERROR for the caller).
pub fn parse_method(payload: &[u8]) -> Option<AMQPClass> {
    all_consuming(parse_class)
        .parse(payload)
        .ok()
        .map(|(_, m)| m)
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

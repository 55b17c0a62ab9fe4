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

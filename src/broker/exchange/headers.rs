//! Headers exchange (RabbitMQ semantics): `x-match` is `all` (default), `any`, `all-with-x` or
//! `any-with-x`; binding keys starting with `x-` are ignored unless the mode ends in `-with-x`;
//! a binding value of type void matches on the key's presence alone. Values compare by value,
//! as Erlang's `==` does (an `I` 1 equals an `l` 1).

use super::binding_list::BindingList;
use super::{Dest, Routed};
use crate::error::{AmqpError, AmqpResult};
use crate::protocol::table::{parse_checked_table, same_value};
use crate::protocol::{AMQPValue, FieldTable};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    All,
    Any,
}

#[derive(Debug)]
struct Compiled {
    mode: Mode,
    /// (key, expected value; None = void = presence only)
    wanted: Vec<(String, Option<AMQPValue>)>,
}

#[derive(Debug, Default)]
pub(super) struct HeadersIndex {
    bindings: BindingList<Compiled>,
}

impl HeadersIndex {
    /// RabbitMQ refuses a binding whose `x-match` is not one of the four modes (406).
    pub(super) fn validate(arguments: &FieldTable) -> AmqpResult<()> {
        let refused = |text: String| Err(AmqpError::precondition_failed(text));
        match arguments.inner().get("x-match") {
            None => Ok(()),
            Some(AMQPValue::LongString(s)) => match s.as_bytes() {
                b"all" | b"any" | b"all-with-x" | b"any-with-x" => Ok(()),
                other => refused(format!(
                    "Invalid x-match field value {}; expected all, any, all-with-x, or any-with-x",
                    crate::protocol::cold::erlang_printed(other)
                )),
            },
            Some(other) => refused(format!(
                "Invalid x-match field type {} (value {}); expected longstr",
                crate::protocol::table::type_name(other),
                erlang_term(other)
            )),
        }
    }

    /// Compiles and adds the binding `id` of `dest` with `arguments`.
    pub(super) fn insert(&mut self, id: u64, dest: &Dest, arguments: &FieldTable) {
        let x_match = match arguments.inner().get("x-match") {
            Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
            _ => "all".to_string(),
        };
        let (mode, with_x) = match x_match.as_str() {
            "any" => (Mode::Any, false),
            "any-with-x" => (Mode::Any, true),
            "all-with-x" => (Mode::All, true),
            _ => (Mode::All, false),
        };
        let wanted = arguments
            .inner()
            .iter()
            .filter(|(k, _)| k.as_str() != "x-match" && (with_x || !k.as_str().starts_with("x-")))
            .map(|(k, v)| {
                let v = match v {
                    AMQPValue::Void => None,
                    other => Some(other.clone()),
                };
                (k.as_str().to_string(), v)
            })
            .collect();
        self.bindings.insert(id, Compiled { mode, wanted }, dest);
    }

    /// Removes the binding `id`.
    pub(super) fn remove(&mut self, id: u64) {
        self.bindings.remove(id);
    }

    pub(super) fn route(&self, headers: Option<&[u8]>, out: &mut Routed) {
        if self.bindings.is_empty() {
            return;
        }
        let table = headers.and_then(parse_checked_table).unwrap_or_default();
        for (b, dest) in self.bindings.iter() {
            if matches(b, &table) {
                dest.push_to(out);
            }
        }
    }
}

/// A field value as Erlang prints it, for the few scalar types a client would put in x-match.
fn erlang_term(v: &AMQPValue) -> String {
    match v {
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::Timestamp(n) => n.to_string(),
        AMQPValue::ShortString(s) => crate::protocol::cold::erlang_printed(s.as_str().as_bytes()),
        AMQPValue::ByteArray(b) => crate::protocol::cold::erlang_printed(b.as_slice()),
        other => format!("{other:?}"),
    }
}

fn matches(b: &Compiled, headers: &FieldTable) -> bool {
    let hit = |(k, v): &(String, Option<AMQPValue>)| match headers.inner().get(k.as_str()) {
        None => false,
        Some(actual) => v.as_ref().is_none_or(|want| same_value(want, actual)),
    };
    match b.mode {
        Mode::All => b.wanted.iter().all(hit),
        Mode::Any => b.wanted.iter().any(hit),
    }
}

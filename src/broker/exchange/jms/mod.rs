//! The `x-jms-topic` exchange of RabbitMQ's `rabbitmq_jms_topic_exchange` plugin, which the
//! RabbitMQ JMS client declares for topic subscribers with a message selector.
//!
//! Each queue binding carries the selector, compiled by the client into an Erlang term, in its
//! `rjms_erlang_selector` argument (`rjms_version` and the exchange's own arguments are
//! informational). A message goes to every binding whose selector it passes. As in the plugin,
//! the routing key is not looked at: the client gives each session one such exchange and feeds
//! it from `jms.durable.topic` by an exchange-to-exchange binding keyed by the topic.

mod selector;
mod term;

use super::binding_list::BindingList;
use super::{Dest, Routed};
use crate::error::{AmqpError, AmqpResult};
use crate::protocol::raw_table::{self, RawValue};
use crate::protocol::{AMQPValue, FieldTable};
use selector::Selector;

/// The type name the JMS client declares.
pub const TYPE_NAME: &str = "x-jms-topic";

/// The binding argument holding the compiled selector.
const SELECTOR_ARGUMENT: &str = "rjms_erlang_selector";

/// The bindings of one (identifier, string): (binding id, destination).
type Equal = Vec<(u64, Dest)>;
/// One identifier's bindings, by string.
type ByValue = crate::FastMap<Box<[u8]>, Equal>;
/// An (identifier, string) pair.
type IdentValue = (Box<[u8]>, Box<[u8]>);

/// The bindings whose selector is `identifier = 'string'` (the commonest JMS selector), by
/// identifier and then by string: a message finds those it passes with one header lookup per
/// identifier, however many there are. The others are evaluated one by one.
#[derive(Debug, Default)]
pub(super) struct SelectorIndex {
    /// identifier -> string -> the bindings (id, destination).
    equal: crate::FastMap<Box<[u8]>, ByValue>,
    /// Where each binding of `equal` sits: (identifier, string).
    equal_ids: crate::FastMap<u64, IdentValue>,
    others: BindingList<Selector>,
}

/// The binding's selector, compiled; the reason it cannot be, for the log.
fn compile(arguments: &FieldTable) -> Result<Selector, String> {
    match arguments.inner().get(SELECTOR_ARGUMENT) {
        Some(AMQPValue::LongString(text)) => Selector::compile(text.as_bytes()),
        Some(other) => Err(format!(
            "{SELECTOR_ARGUMENT} is a {}, not a longstr",
            crate::protocol::table::type_name(other)
        )),
        None => Err(format!("no {SELECTOR_ARGUMENT} argument")),
    }
}

impl SelectorIndex {
    /// A binding without a selector the plugin can read fails in RabbitMQ 3.10 with a crash of
    /// the channel, which the client sees as connection.close 541 INTERNAL_ERROR; Warren
    /// answers the same and logs why.
    pub(super) fn validate(arguments: &FieldTable) -> AmqpResult<()> {
        match compile(arguments) {
            Ok(_) => Ok(()),
            Err(reason) => {
                tracing::warn!(%reason, "x-jms-topic binding refused: invalid selector");
                Err(AmqpError::crash())
            }
        }
    }

    /// Compiles and adds the binding `id` of `dest`. A binding that does not compile (only
    /// possible from a definitions file, since binds are validated) never matches.
    pub(super) fn insert(&mut self, id: u64, dest: &Dest, arguments: &FieldTable) {
        let selector = compile(arguments).unwrap_or_else(|_| Selector::never());
        if let Some((ident, value)) = selector.string_equality() {
            let (ident, value): IdentValue = (ident.into(), value.into());
            self.equal
                .entry(ident.clone())
                .or_default()
                .entry(value.clone())
                .or_default()
                .push((id, dest.clone()));
            self.equal_ids.insert(id, (ident, value));
            return;
        }
        self.others.insert(id, selector, dest);
    }

    /// Removes the binding `id`.
    pub(super) fn remove(&mut self, id: u64) {
        let Some((ident, value)) = self.equal_ids.remove(&id) else {
            return self.others.remove(id);
        };
        let Some(by_value) = self.equal.get_mut(&ident) else {
            return;
        };
        if let Some(bindings) = by_value.get_mut(&value) {
            bindings.retain(|(b, _)| *b != id);
            if bindings.is_empty() {
                by_value.remove(&value);
            }
        }
        if by_value.is_empty() {
            self.equal.remove(&ident);
        }
    }

    pub(super) fn route(&self, headers: Option<&[u8]>, out: &mut Routed) {
        if let Some(h) = headers {
            for (ident, by_value) in &self.equal {
                // `=` against a string literal is true only for a longstr header of the same
                // bytes; anything else (absent, another type) never matches.
                if let Some(RawValue::LongStr(v)) = raw_table::lookup(h, ident) {
                    if let Some(bindings) = by_value.get(v) {
                        bindings.iter().for_each(|(_, dest)| dest.push_to(out));
                    }
                }
            }
        }
        for (selector, dest) in self.others.iter() {
            if selector.matches(headers) {
                dest.push_to(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::table::encode_table;

    fn selector(term: &str) -> FieldTable {
        let mut t = FieldTable::default();
        t.insert(SELECTOR_ARGUMENT.into(), AMQPValue::LongString(term.into()));
        t
    }

    fn routed(index: &SelectorIndex, headers: &[(&str, AMQPValue)]) -> Vec<String> {
        let mut t = FieldTable::default();
        for (k, v) in headers {
            t.insert((*k).into(), v.clone());
        }
        let raw = encode_table(&t);
        let mut out = Routed::default();
        index.route(Some(&raw), &mut out);
        let mut names: Vec<String> = out.exchanges.iter().map(|x| x.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn string_equalities_are_looked_up_and_the_rest_evaluated() {
        let mut index = SelectorIndex::default();
        let to = |name: &str| Dest::Exchange(name.into());
        let red = r#"{'=',{'ident',<<"colour">>},<<"red">>}."#;
        index.insert(1, &to("red"), &selector(red));
        index.insert(
            2,
            &to("red-reversed"),
            &selector(r#"{'=',<<"red">>,{'ident',<<"colour">>}}."#),
        );
        index.insert(
            3,
            &to("blue"),
            &selector(r#"{'=',{'ident',<<"colour">>},<<"blue">>}."#),
        );
        index.insert(
            4,
            &to("heavy"),
            &selector(r#"{'>',{'ident',<<"weight">>},10}."#),
        );
        index.insert(
            5,
            &to("size-s"),
            &selector(r#"{'=',{'ident',<<"size">>},<<"s">>}."#),
        );
        assert_eq!(index.equal_ids.len(), 4);
        let red_heavy = [
            ("colour", AMQPValue::LongString("red".into())),
            ("weight", AMQPValue::LongInt(11)),
        ];
        assert_eq!(routed(&index, &red_heavy), ["heavy", "red", "red-reversed"]);
        // A string literal never equals another type.
        assert!(routed(&index, &[("size", AMQPValue::ShortShortInt(1))]).is_empty());
        assert_eq!(
            routed(&index, &[("size", AMQPValue::LongString("s".into()))]),
            ["size-s"]
        );
        index.remove(1);
        index.remove(4);
        assert_eq!(routed(&index, &red_heavy), ["red-reversed"]);
        index.remove(2);
        index.remove(3);
        index.remove(5);
        assert!(index.equal.is_empty() && index.equal_ids.is_empty() && index.others.is_empty());
    }
}

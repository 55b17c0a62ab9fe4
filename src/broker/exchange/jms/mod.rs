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
use crate::protocol::{AMQPValue, FieldTable};
use selector::Selector;

/// The type name the JMS client declares.
pub const TYPE_NAME: &str = "x-jms-topic";

/// The binding argument holding the compiled selector.
const SELECTOR_ARGUMENT: &str = "rjms_erlang_selector";

#[derive(Debug, Default)]
pub(super) struct SelectorIndex {
    bindings: BindingList<Selector>,
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
        self.bindings.insert(id, selector, dest);
    }

    /// Removes the binding `id`.
    pub(super) fn remove(&mut self, id: u64) {
        self.bindings.remove(id);
    }

    pub(super) fn route(&self, headers: Option<&[u8]>, out: &mut Routed) {
        for (selector, dest) in self.bindings.iter() {
            if selector.matches(headers) {
                dest.push_to(out);
            }
        }
    }
}

//! Exchanges: declared properties, bindings, and routing by kind.
//!
//! Bindings are the source of truth; each kind keeps an index built from them (rebuilt on
//! bind/unbind, which are rare) so that routing a message is a lookup, never a scan of regexes.
//! The index sits behind a read-mostly `RwLock` that is never held across `.await`.
//! A binding leads to a queue or, for exchange-to-exchange bindings (a RabbitMQ extension), to
//! another exchange by name; the vhost follows those hops with loop detection.

mod direct;
mod headers;
mod topic;

use super::queue::Queue;
use crate::error::{AmqpError, AmqpResult};
use crate::protocol::FieldTable;
use parking_lot::RwLock;
use std::sync::Arc;

/// The four exchange types of AMQP 0-9-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeKind {
    Direct,
    Fanout,
    Topic,
    Headers,
}

impl ExchangeKind {
    /// Parses a type name; unknown types are 503 COMMAND_INVALID (a connection error).
    pub fn parse(name: &str) -> AmqpResult<ExchangeKind> {
        const KNOWN_ATOMS: [&str; 20] = [
            "",
            "x",
            "foo",
            "bar",
            "test",
            "queue",
            "exchange",
            "match",
            "all",
            "any",
            "true",
            "false",
            "undefined",
            "none",
            "error",
            "ok",
            "classic",
            "quorum",
            "stream",
            "default",
        ];
        match name {
            "direct" => Ok(ExchangeKind::Direct),
            "fanout" => Ok(ExchangeKind::Fanout),
            "topic" => Ok(ExchangeKind::Topic),
            "headers" => Ok(ExchangeKind::Headers),
            // RabbitMQ says "invalid" when the name is an atom its VM already knows and
            // "unknown" otherwise (typos like 'directt', plugin types it lacks). The common
            // words below were checked against RabbitMQ 3.10; any other name is "unknown".
            other if KNOWN_ATOMS.contains(&other) => Err(AmqpError::command_invalid(format!(
                "invalid exchange type '{other}'"
            ))),
            other => Err(AmqpError::command_invalid(format!(
                "unknown exchange type '{other}'"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
        }
    }
}

/// The type name of the delayed-message exchange (the archived RabbitMQ plugin's).
pub const DELAYED_TYPE: &str = "x-delayed-message";

/// Parses an exchange type; `x-delayed-message` routes like its `x-delayed-type` argument
/// after holding each message for its `x-delay` header. Returns (routing kind, delayed).
pub fn parse_type(name: &str, arguments: &FieldTable) -> AmqpResult<(ExchangeKind, bool)> {
    if name != DELAYED_TYPE {
        return Ok((ExchangeKind::parse(name)?, false));
    }
    let inner = arguments
        .inner()
        .get("x-delayed-type")
        .and_then(crate::protocol::table::as_bytes)
        .map(|b| String::from_utf8_lossy(b).into_owned());
    match inner.as_deref().map(ExchangeKind::parse) {
        Some(Ok(kind)) => Ok((kind, true)),
        _ => Err(AmqpError::precondition_failed(
            "Invalid argument, 'x-delayed-type' must be an existing exchange type",
        )),
    }
}

/// Declared properties of an exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeSpec {
    pub name: Arc<str>,
    pub kind: ExchangeKind,
    /// An x-delayed-message exchange (routes as `kind` once a message's delay is over).
    pub delayed: bool,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
}

/// Where a binding leads.
#[derive(Debug, Clone)]
pub enum Dest {
    Queue(Arc<Queue>),
    /// Another exchange, by name (exchange.bind).
    Exchange(Arc<str>),
}

impl Dest {
    fn same(&self, other: &Dest) -> bool {
        match (self, other) {
            (Dest::Queue(a), Dest::Queue(b)) => Arc::ptr_eq(a, b),
            (Dest::Exchange(a), Dest::Exchange(b)) => a == b,
            _ => false,
        }
    }

    /// Appends this destination to the routing result.
    fn push_to(&self, out: &mut Routed) {
        match self {
            Dest::Queue(q) => out.queues.push(q.clone()),
            Dest::Exchange(x) => out.exchanges.push(x.clone()),
        }
    }
}

/// Routing output: queues, plus exchanges still to visit (e2e bindings).
#[derive(Debug, Default)]
pub struct Routed {
    pub queues: Vec<Arc<Queue>>,
    pub exchanges: Vec<Arc<str>>,
}

/// One binding from this exchange.
#[derive(Debug, Clone)]
pub struct Binding {
    pub dest: Dest,
    pub routing_key: String,
    pub arguments: FieldTable,
}

impl ExchangeSpec {
    /// The type name as declared.
    pub fn type_name(&self) -> &'static str {
        if self.delayed {
            DELAYED_TYPE
        } else {
            self.kind.name()
        }
    }
}

impl Binding {
    fn same_as(&self, dest: &Dest, routing_key: &str, arguments: &FieldTable) -> bool {
        self.dest.same(dest) && self.routing_key == routing_key && &self.arguments == arguments
    }
}

#[derive(Debug)]
enum Index {
    Direct(direct::DirectIndex),
    Fanout(Vec<Dest>),
    Topic(topic::TopicTrie),
    Headers(headers::HeadersIndex),
}

#[derive(Debug)]
struct Bindings {
    list: Vec<Binding>,
    index: Index,
}

/// An exchange and its bindings.
#[derive(Debug)]
pub struct Exchange {
    pub spec: ExchangeSpec,
    bindings: RwLock<Bindings>,
}

impl Exchange {
    pub fn new(spec: ExchangeSpec) -> Arc<Exchange> {
        let index = build_index(spec.kind, &[]);
        Arc::new(Exchange {
            spec,
            bindings: RwLock::new(Bindings {
                list: Vec::new(),
                index,
            }),
        })
    }

    /// Checks a new binding's arguments as RabbitMQ's exchange type would (headers: x-match).
    pub fn validate_binding(&self, arguments: &FieldTable) -> AmqpResult<()> {
        match self.spec.kind {
            ExchangeKind::Headers => headers::HeadersIndex::validate(arguments),
            _ => Ok(()),
        }
    }

    /// Adds a binding; binding twice is a no-op (spec: queue.bind is idempotent).
    pub fn bind(&self, dest: Dest, routing_key: &str, arguments: &FieldTable) {
        let mut b = self.bindings.write();
        if b.list
            .iter()
            .any(|x| x.same_as(&dest, routing_key, arguments))
        {
            return;
        }
        b.list.push(Binding {
            dest,
            routing_key: routing_key.to_string(),
            arguments: arguments.clone(),
        });
        b.index = build_index(self.spec.kind, &b.list);
    }

    /// Removes a binding; returns whether one was removed.
    pub fn unbind(&self, dest: &Dest, routing_key: &str, arguments: &FieldTable) -> bool {
        self.remove_where(|x| x.same_as(dest, routing_key, arguments))
    }

    /// Removes every binding to `dest` (it was deleted).
    pub fn unbind_all(&self, dest: &Dest) -> bool {
        self.remove_where(|x| x.dest.same(dest))
    }

    fn remove_where(&self, doomed: impl Fn(&Binding) -> bool) -> bool {
        let mut b = self.bindings.write();
        let before = b.list.len();
        b.list.retain(|x| !doomed(x));
        let removed = b.list.len() != before;
        if removed {
            b.index = build_index(self.spec.kind, &b.list);
        }
        removed
    }

    /// A copy of the bindings (for persisting definitions).
    pub fn bindings(&self) -> Vec<Binding> {
        self.bindings.read().list.clone()
    }

    pub fn has_bindings(&self) -> bool {
        !self.bindings.read().list.is_empty()
    }

    /// Appends where a message goes. `headers` is the raw headers table, if any.
    pub fn route(&self, routing_key: &str, headers: Option<&[u8]>, out: &mut Routed) {
        let b = self.bindings.read();
        match &b.index {
            Index::Direct(d) => d.route(routing_key, out),
            Index::Fanout(all) => all.iter().for_each(|d| d.push_to(out)),
            Index::Topic(t) => t.route(routing_key, out),
            Index::Headers(h) => h.route(headers, out),
        }
    }
}

fn build_index(kind: ExchangeKind, list: &[Binding]) -> Index {
    match kind {
        ExchangeKind::Direct => Index::Direct(direct::DirectIndex::build(list)),
        ExchangeKind::Fanout => {
            let mut all: Vec<Dest> = Vec::new();
            for b in list {
                if !all.iter().any(|d| d.same(&b.dest)) {
                    all.push(b.dest.clone());
                }
            }
            Index::Fanout(all)
        }
        ExchangeKind::Topic => Index::Topic(topic::TopicTrie::build(list)),
        ExchangeKind::Headers => Index::Headers(headers::HeadersIndex::build(list)),
    }
}

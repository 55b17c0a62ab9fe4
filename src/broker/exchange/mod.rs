//! Exchanges: declared properties, bindings, and routing by kind.
//!
//! Bindings are the source of truth; each kind keeps an index of them, changed one binding at
//! a time (binding or unbinding one of N queues never costs O(N)), so that routing a message
//! is a lookup, never a scan of regexes.
//! The index sits behind a read-mostly `RwLock` that is never held across `.await`.
//! A binding leads to a queue or, for exchange-to-exchange bindings (a RabbitMQ extension), to
//! another exchange by name; the vhost follows those hops with loop detection.

mod binding_list;
pub mod dedup;
mod dest_set;
mod direct;
mod headers;
pub mod jms;
mod topic;

use super::queue::Queue;
use crate::error::{AmqpError, AmqpResult};
use crate::protocol::FieldTable;
use parking_lot::RwLock;
use std::sync::Arc;

/// The four exchange types of AMQP 0-9-1, and the plugin types RabbitMQ users rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeKind {
    Direct,
    Fanout,
    Topic,
    Headers,
    /// `x-jms-topic` (rabbitmq_jms_topic_exchange): routes by each binding's JMS selector.
    JmsTopic,
    /// `x-message-deduplication` (the rabbitmq-message-deduplication plugin): routes like
    /// fanout after dropping a message whose deduplication header was seen recently.
    Deduplication,
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
            jms::TYPE_NAME => Ok(ExchangeKind::JmsTopic),
            DEDUPLICATION_TYPE => Ok(ExchangeKind::Deduplication),
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
            ExchangeKind::JmsTopic => jms::TYPE_NAME,
            ExchangeKind::Deduplication => DEDUPLICATION_TYPE,
        }
    }
}

/// The type name of the deduplication exchange (the community plugin's).
pub const DEDUPLICATION_TYPE: &str = "x-message-deduplication";

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

/// A destination's identity: a queue by its allocation (a binding holds the queue, so the
/// address is not reused while bound), an exchange by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum DestKey {
    Queue(usize),
    Exchange(Arc<str>),
}

impl Dest {
    fn key(&self) -> DestKey {
        match self {
            Dest::Queue(q) => DestKey::Queue(Arc::as_ptr(q) as usize),
            Dest::Exchange(x) => DestKey::Exchange(x.clone()),
        }
    }

    /// Appends this destination to the routing result.
    #[inline]
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
    /// A deduplicating exchange on the way had seen the message's key: it went nowhere
    /// from there, and no alternate exchange is tried.
    pub duplicate: bool,
    /// Some queues were reached through other exchanges (exchange-to-exchange bindings, an
    /// alternate exchange), whose bindings can change without the first one's.
    pub through_others: bool,
    /// Keys remembered on the way by deduplicating exchanges, to be settled once the message
    /// is in its queues (`settle_keys`) or withdrawn if none kept it (`withdraw_keys`).
    pub admitted: Vec<dedup::Admitted>,
    /// For a duplicate: the first message's positions not yet on disk; the duplicate's
    /// confirm waits for them too.
    pub duplicate_waits: Vec<crate::store::DurableAt>,
}

impl Routed {
    /// The message is in its queues, on disk once `deps` (its queue log positions) are:
    /// remembered keys are written to persistent caches after them, and `deps` gains what
    /// the publisher's confirm must also wait for (keys' positions, a duplicate's original).
    /// Nothing to do unless the exchange deduplicates: the check is in line, the work not.
    #[inline]
    pub fn settle_keys(&mut self, deps: &mut Vec<crate::store::DurableAt>) {
        if !self.admitted.is_empty() || !self.duplicate_waits.is_empty() {
            self.settle_keys_now(deps);
        }
    }

    #[inline(never)]
    fn settle_keys_now(&mut self, deps: &mut Vec<crate::store::DurableAt>) {
        if !self.admitted.is_empty() {
            let message_at = deps.clone();
            for k in self.admitted.drain(..) {
                k.settle(&message_at, deps);
            }
        }
        deps.append(&mut self.duplicate_waits);
    }

    /// No queue kept the message (a queue refused it, or the publish failed): the keys
    /// remembered on the way are forgotten, so a retry is not dropped as a duplicate.
    #[inline]
    pub fn withdraw_keys(&mut self) {
        if !self.admitted.is_empty() || !self.duplicate_waits.is_empty() {
            self.withdraw_keys_now();
        }
    }

    #[inline(never)]
    fn withdraw_keys_now(&mut self) {
        for k in self.admitted.drain(..) {
            k.withdraw();
        }
        self.duplicate_waits.clear();
    }
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

#[derive(Debug)]
enum Index {
    Direct(direct::DirectIndex),
    Fanout(dest_set::DestSet),
    Topic(topic::TopicTrie),
    Headers(headers::HeadersIndex),
    Selectors(jms::SelectorIndex),
}

/// The bindings to one destination: routing key -> argument tables, each with the binding's
/// id (the headers index refers to bindings by id).
#[derive(Debug)]
struct DestBindings {
    dest: Dest,
    keys: crate::FastMap<String, Vec<(FieldTable, u64)>>,
}

#[derive(Debug)]
struct Bindings {
    by_dest: crate::FastMap<DestKey, DestBindings>,
    count: usize,
    next_id: u64,
    index: Index,
}

impl Bindings {
    fn new(kind: ExchangeKind) -> Bindings {
        let index = match kind {
            ExchangeKind::Direct => Index::Direct(Default::default()),
            ExchangeKind::Fanout | ExchangeKind::Deduplication => Index::Fanout(Default::default()),
            ExchangeKind::Topic => Index::Topic(Default::default()),
            ExchangeKind::Headers => Index::Headers(Default::default()),
            ExchangeKind::JmsTopic => Index::Selectors(Default::default()),
        };
        Bindings {
            by_dest: Default::default(),
            count: 0,
            next_id: 0,
            index,
        }
    }

    /// Adds a binding; false if it exists (spec: queue.bind is idempotent).
    fn add(&mut self, dest: Dest, routing_key: &str, arguments: &FieldTable) -> bool {
        let key = dest.key();
        let entry = self.by_dest.entry(key).or_insert_with(|| DestBindings {
            dest,
            keys: Default::default(),
        });
        let new_dest = entry.keys.is_empty();
        let tables = match entry.keys.get_mut(routing_key) {
            Some(tables) => tables,
            None => entry.keys.entry(routing_key.to_string()).or_default(),
        };
        if tables.iter().any(|(a, _)| a == arguments) {
            return false;
        }
        let new_key = tables.is_empty();
        let id = self.next_id;
        self.next_id += 1;
        tables.push((arguments.clone(), id));
        self.count += 1;
        let dest = &entry.dest;
        match &mut self.index {
            Index::Direct(d) if new_key => d.insert(routing_key, dest),
            Index::Topic(t) if new_key => t.insert(routing_key, dest),
            Index::Fanout(f) if new_dest => {
                f.insert(dest);
            }
            Index::Headers(h) => h.insert(id, dest, arguments),
            Index::Selectors(x) => x.insert(id, dest, arguments),
            _ => {}
        }
        true
    }

    /// Removes one binding; false if there was none.
    fn remove(&mut self, key: &DestKey, routing_key: &str, arguments: &FieldTable) -> bool {
        let Some(entry) = self.by_dest.get_mut(key) else {
            return false;
        };
        let Some(tables) = entry.keys.get_mut(routing_key) else {
            return false;
        };
        let Some(at) = tables.iter().position(|(a, _)| a == arguments) else {
            return false;
        };
        let (_, id) = tables.remove(at);
        self.count -= 1;
        self.index.binding_gone(id);
        if tables.is_empty() {
            entry.keys.remove(routing_key);
            self.index.key_gone(routing_key, key);
        }
        if entry.keys.is_empty() {
            self.by_dest.remove(key);
            if let Index::Fanout(f) = &mut self.index {
                f.remove(key);
            }
        }
        true
    }

    /// Removes every binding to the destination; false if it had none.
    fn remove_dest(&mut self, key: &DestKey) -> bool {
        let Some(entry) = self.by_dest.remove(key) else {
            return false;
        };
        for (routing_key, tables) in &entry.keys {
            self.count -= tables.len();
            tables
                .iter()
                .for_each(|(_, id)| self.index.binding_gone(*id));
            self.index.key_gone(routing_key, key);
        }
        if let Index::Fanout(f) = &mut self.index {
            f.remove(key);
        }
        true
    }
}

impl Index {
    /// The destination has no binding with this routing key any more.
    fn key_gone(&mut self, routing_key: &str, key: &DestKey) {
        match self {
            Index::Direct(d) => d.remove(routing_key, key),
            Index::Topic(t) => t.remove(routing_key, key),
            Index::Fanout(_) | Index::Headers(_) | Index::Selectors(_) => {}
        }
    }

    /// The binding `id` is gone (indexes that keep one entry per binding).
    fn binding_gone(&mut self, id: u64) {
        match self {
            Index::Headers(h) => h.remove(id),
            Index::Selectors(x) => x.remove(id),
            _ => {}
        }
    }
}

/// An exchange and its bindings.
#[derive(Debug)]
pub struct Exchange {
    pub spec: ExchangeSpec,
    /// The declare's `alternate-exchange` argument (it wins over a policy's, RabbitMQ).
    declared_alternate: Option<Arc<str>>,
    /// The alternate exchange the policy that applies names (changes with the policies).
    policy_alternate: RwLock<Option<Arc<str>>>,
    bindings: RwLock<Bindings>,
    /// The recently seen keys, on a deduplicating exchange.
    dedup: Option<Arc<dedup::Cache>>,
    /// Set when it leaves its vhost (deleted, auto-deleted, vhost deleted): a publisher that
    /// kept it looks its name up again.
    removed: std::sync::atomic::AtomicBool,
    /// Bumped at every binding change, under the bindings' write lock: a routing result taken
    /// at one generation holds while the generation stays (`routes_by_key_only`).
    generation: std::sync::atomic::AtomicU64,
}

impl Exchange {
    pub fn new(spec: ExchangeSpec) -> Arc<Exchange> {
        Self::with_policy(spec, None)
    }

    /// An exchange whose policy (if any) names `policy_alternate`; the declare's own
    /// `alternate-exchange` argument wins (RabbitMQ).
    pub fn with_policy(spec: ExchangeSpec, policy_alternate: Option<&str>) -> Arc<Exchange> {
        let bindings = RwLock::new(Bindings::new(spec.kind));
        let declared = spec
            .arguments
            .inner()
            .get("alternate-exchange")
            .and_then(crate::protocol::table::as_bytes)
            .map(|b| Arc::from(String::from_utf8_lossy(b).as_ref()));
        // Validated when declared; arguments from elsewhere that do not validate turn it off.
        let dedup = dedup::Settings::from_arguments(
            spec.kind == ExchangeKind::Deduplication,
            &spec.arguments,
        )
        .ok()
        .flatten()
        .map(dedup::Cache::new);
        Arc::new(Exchange {
            spec,
            declared_alternate: declared,
            policy_alternate: RwLock::new(policy_alternate.map(Arc::from)),
            bindings,
            dedup,
            removed: std::sync::atomic::AtomicBool::new(false),
            generation: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// It left its vhost: called under the vhost's exchanges lock, as it is removed.
    pub fn mark_removed(&self) {
        self.removed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether where it routes a message depends only on the routing key and the bindings (not
    /// on headers, selectors or a deduplication cache): then a publisher may reuse a routing
    /// result for the same key while `generation` stays.
    #[inline]
    pub fn routes_by_key_only(&self) -> bool {
        self.dedup.is_none()
            && matches!(
                self.spec.kind,
                ExchangeKind::Direct | ExchangeKind::Fanout | ExchangeKind::Topic
            )
    }

    /// The bindings' generation: read it before routing, and a result is still valid while
    /// it has not changed.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A binding changed (called with the bindings' write lock held).
    fn bindings_changed(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// Whether it left its vhost (a name looked up now would find another exchange, or none).
    #[inline]
    pub fn is_removed(&self) -> bool {
        self.removed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The deduplication cache, on an exchange that deduplicates.
    #[inline]
    pub fn dedup(&self) -> Option<&Arc<dedup::Cache>> {
        self.dedup.as_ref()
    }

    /// Where unroutable messages go: the `alternate-exchange` argument, else a policy's.
    pub fn alternate(&self) -> Option<Arc<str>> {
        match &self.declared_alternate {
            Some(a) => Some(a.clone()),
            None => self.policy_alternate.read().clone(),
        }
    }

    /// Policies changed: the alternate exchange the one that applies now names.
    pub fn set_policy_alternate(&self, alternate: Option<&str>) {
        *self.policy_alternate.write() = alternate.map(Arc::from);
    }

    /// Checks a new binding's arguments as RabbitMQ's exchange type would (headers: x-match).
    pub fn validate_binding(&self, arguments: &FieldTable) -> AmqpResult<()> {
        match self.spec.kind {
            ExchangeKind::Headers => headers::HeadersIndex::validate(arguments),
            ExchangeKind::JmsTopic => jms::SelectorIndex::validate(arguments),
            _ => Ok(()),
        }
    }

    /// Adds a binding; binding twice is a no-op (spec: queue.bind is idempotent).
    pub fn bind(&self, dest: Dest, routing_key: &str, arguments: &FieldTable) {
        let mut b = self.bindings.write();
        b.add(dest, routing_key, arguments);
        self.bindings_changed();
    }

    /// Removes a binding; returns whether one was removed.
    pub fn unbind(&self, dest: &Dest, routing_key: &str, arguments: &FieldTable) -> bool {
        let mut b = self.bindings.write();
        let removed = b.remove(&dest.key(), routing_key, arguments);
        self.bindings_changed();
        removed
    }

    /// Removes every binding to `dest` (it was deleted).
    pub fn unbind_all(&self, dest: &Dest) -> bool {
        let mut b = self.bindings.write();
        let removed = b.remove_dest(&dest.key());
        self.bindings_changed();
        removed
    }

    /// A copy of the bindings (for persisting definitions).
    pub fn bindings(&self) -> Vec<Binding> {
        let b = self.bindings.read();
        let mut out = Vec::with_capacity(b.count);
        for entry in b.by_dest.values() {
            for (routing_key, tables) in &entry.keys {
                for (arguments, _) in tables {
                    out.push(Binding {
                        dest: entry.dest.clone(),
                        routing_key: routing_key.clone(),
                        arguments: arguments.clone(),
                    });
                }
            }
        }
        out
    }

    pub fn has_bindings(&self) -> bool {
        self.bindings.read().count > 0
    }

    /// Appends where a message goes. `headers` is the raw headers table, if any.
    pub fn route(&self, routing_key: &str, headers: Option<&[u8]>, out: &mut Routed) {
        let b = self.bindings.read();
        match &b.index {
            Index::Direct(d) => d.route(routing_key, out),
            Index::Fanout(all) => all.route(out),
            Index::Topic(t) => t.route(routing_key, out),
            Index::Headers(h) => h.route(headers, out),
            Index::Selectors(x) => x.route(headers, out),
        }
    }
}

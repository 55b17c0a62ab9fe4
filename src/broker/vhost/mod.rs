//! A virtual host: its exchanges and queues, declare / bind / delete with RabbitMQ's checks and
//! reply texts, and routing a published message to queues.
//!
//! Locks: `exchanges` and `queues` are read-mostly `RwLock`s held only for lookups or one
//! mutation, never across `.await`. Lock order when both are needed: queues, then exchanges.
//! `persist` writes and recovers durable definitions; `route` routes published messages.

mod delayed;
mod effects;
mod persist;
mod policies;
mod publish;
mod route;
mod timers;

use super::exchange::{
    dedup, parse_type, Dest, Exchange, ExchangeKind, ExchangeSpec, DELAYED_TYPE,
};
use super::queue::{Queue, QueueSpec};
use crate::error::{AmqpError, AmqpResult};
use crate::protocol::table::{same_value, type_name, value_text};
use crate::protocol::{AMQPValue, FieldTable};
use crate::store::Store;
use parking_lot::{Mutex, RwLock};
pub use persist::Recording;
pub use publish::{ConfirmTicket, Publish, Published};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// What queue.declare asks for.
#[derive(Debug, Clone)]
pub struct QueueDeclare<'a> {
    pub name: &'a str,
    /// `name` was generated for a declare without one (`amq.gen-…`, allowed despite the
    /// reserved prefix).
    pub server_named: bool,
    /// The vhost's max-queues limit, checked when the queue is new (406, RabbitMQ's text).
    pub max_queues: Option<u64>,
    /// The queue arguments of the policy that applies to a new queue of this name.
    pub policy: Option<&'a crate::broker::access::policies::PolicyArguments>,
    pub passive: bool,
    pub durable: bool,
    pub exclusive: bool,
    pub auto_delete: bool,
    pub arguments: &'a FieldTable,
}

/// What queue.declare answers: the queue, its ready messages and consumers, and the write
/// that records a new durable queue.
#[derive(Debug)]
pub struct DeclaredQueue {
    pub queue: Arc<Queue>,
    pub messages: u32,
    pub consumers: u32,
    pub recording: Recording,
}

impl DeclaredQueue {
    /// A queue that was there already: nothing to record.
    fn existing(queue: Arc<Queue>) -> DeclaredQueue {
        DeclaredQueue {
            messages: queue.message_count(),
            consumers: queue.consumer_count(),
            queue,
            recording: Recording::nothing(),
        }
    }
}

/// What exchange.declare asks for.
#[derive(Debug, Clone)]
pub struct ExchangeDeclare<'a> {
    pub name: &'a str,
    /// The alternate exchange a policy gives a new exchange of this name.
    pub policy_alternate: Option<&'a str>,
    pub kind: &'a str,
    pub passive: bool,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: &'a FieldTable,
}

/// The pseudo-queue name of direct reply-to.
pub const REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// Queue arguments RabbitMQ compares on redeclare (others are accepted as they come).
const EQUIVALENCE_CHECKED_QUEUE_ARGS: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-type",
    "x-single-active-consumer",
];

/// A virtual host.
#[derive(Debug)]
pub struct VHost {
    pub name: Arc<str>,
    exchanges: RwLock<crate::FastMap<Arc<str>, Arc<Exchange>>>,
    queues: RwLock<crate::FastMap<Arc<str>, Arc<Queue>>>,
    /// Where durable things go (None: nothing is persisted).
    store: Option<Arc<Store>>,
    /// Serialises definition snapshots so the file always ends with the latest state.
    persist_lock: Mutex<()>,
    /// Held weakly by this vhost's timers, which end when it goes.
    me: Weak<VHost>,
    /// Direct reply-to pseudo-queues by their name (`amq.rabbitmq.reply-to.<token>`).
    reply_queues: Mutex<HashMap<Arc<str>, Arc<Queue>>>,
    /// The durable log of persistent delayed messages (created on first use).
    delayed: std::sync::OnceLock<delayed::DelayedLog>,
    /// Delayed messages waiting for their time, and the vhost's one timer for them.
    waiting: Arc<delayed::Waiting>,
    /// Set when the vhost is deleted: its connections close, nothing more is recorded.
    deleted: tokio::sync::watch::Sender<bool>,
    /// Queues declared, created and deleted since start (metrics; never per message).
    pub churn: QueueChurn,
}

/// Queue churn counters (RabbitMQ's `rabbitmq_queues_{declared,created,deleted}_total`).
#[derive(Debug, Default)]
pub struct QueueChurn {
    pub declared: AtomicU64,
    pub created: AtomicU64,
    pub deleted: AtomicU64,
}

impl Drop for VHost {
    fn drop(&mut self) {
        // Wakes the delayed-message timer, which then finds the vhost gone and ends.
        self.waiting.sooner.notify_one();
    }
}

impl VHost {
    /// A vhost with the predeclared exchanges (amq.direct, amq.fanout, amq.topic, amq.headers,
    /// amq.match).
    pub fn new(name: &str, store: Option<Arc<Store>>) -> Arc<VHost> {
        Arc::new_cyclic(|me| Self::build(name, store, me.clone()))
    }

    fn build(name: &str, store: Option<Arc<Store>>, me: Weak<VHost>) -> VHost {
        let vh = VHost {
            name: name.into(),
            exchanges: RwLock::new(crate::FastMap::default()),
            queues: RwLock::new(crate::FastMap::default()),
            store,
            persist_lock: Mutex::new(()),
            me,
            reply_queues: Mutex::new(HashMap::new()),
            delayed: std::sync::OnceLock::new(),
            waiting: Arc::default(),
            deleted: tokio::sync::watch::Sender::new(false),
            churn: QueueChurn::default(),
        };
        for (n, kind) in [
            ("amq.direct", ExchangeKind::Direct),
            ("amq.fanout", ExchangeKind::Fanout),
            ("amq.topic", ExchangeKind::Topic),
            ("amq.headers", ExchangeKind::Headers),
            ("amq.match", ExchangeKind::Headers),
        ] {
            let spec = ExchangeSpec {
                name: n.into(),
                kind,
                delayed: false,
                durable: true,
                auto_delete: false,
                internal: false,
                arguments: FieldTable::default(),
            };
            vh.exchanges
                .write()
                .insert(spec.name.clone(), Exchange::new(spec));
        }
        vh
    }

    /// Every queue (direct reply-to pseudo-queues aside), by name.
    pub fn queue_list(&self) -> Vec<Arc<Queue>> {
        let mut all: Vec<Arc<Queue>> = self.queues.read().values().cloned().collect();
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
    }

    /// A queue by name, whoever owns it (management API).
    pub fn find_queue(&self, name: &str) -> Option<Arc<Queue>> {
        self.queues.read().get(name).cloned()
    }

    /// Every exchange, by name.
    pub fn exchange_list(&self) -> Vec<Arc<Exchange>> {
        let mut all: Vec<Arc<Exchange>> = self.exchanges.read().values().cloned().collect();
        all.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        all
    }

    /// Watch for the deletion of this vhost (its connections close when it changes).
    pub fn deletion(&self) -> tokio::sync::watch::Receiver<bool> {
        self.deleted.subscribe()
    }

    pub fn is_deleted(&self) -> bool {
        *self.deleted.borrow()
    }

    /// The vhost is being deleted: every queue goes with its messages and files, every
    /// exchange with its bindings, and its connections are told to close.
    pub fn delete_everything(&self) {
        self.deleted.send_replace(true);
        let queues: Vec<Arc<Queue>> = self.queues.write().drain().map(|(_, q)| q).collect();
        for (_, x) in self.exchanges.write().drain() {
            x.mark_removed();
            if let Some(cache) = x.dedup() {
                cache.delete_log();
            }
        }
        for q in queues {
            q.delete();
            if let Some(log) = q.log() {
                log.delete();
            }
        }
        if let Some(delayed) = self.delayed.get() {
            delayed.log.delete();
        }
    }

    fn no_exchange(&self, name: &str) -> AmqpError {
        AmqpError::not_found(format!("no exchange '{name}' in vhost '{}'", self.name))
    }

    fn no_queue(&self, name: &str) -> AmqpError {
        AmqpError::not_found(format!("no queue '{name}' in vhost '{}'", self.name))
    }

    fn default_exchange_refused() -> AmqpError {
        AmqpError::access_refused("operation not permitted on the default exchange")
    }

    /// exchange.declare.
    pub fn declare_exchange(&self, d: &ExchangeDeclare<'_>) -> AmqpResult<Recording> {
        if d.name.is_empty() {
            // RabbitMQ refuses every declare of the default exchange, passive ones included.
            return Err(Self::default_exchange_refused());
        }
        if d.passive {
            return self.exchange(d.name).map(|_| Recording::nothing());
        }
        let (kind, delayed) = parse_type(d.kind, d.arguments)?;
        dedup::Settings::from_arguments(kind == ExchangeKind::Deduplication, d.arguments)?;
        let mut exchanges = self.exchanges.write();
        if let Some(x) = exchanges.get(d.name) {
            return self
                .check_exchange_equivalence(&x.spec, kind, delayed, d)
                .map(|()| Recording::nothing());
        }
        if d.name.starts_with("amq.") {
            return Err(AmqpError::access_refused(format!(
                "exchange name '{}' contains reserved prefix 'amq.*'",
                d.name
            )));
        }
        let spec = ExchangeSpec {
            name: d.name.into(),
            kind,
            delayed,
            durable: d.durable,
            auto_delete: d.auto_delete,
            internal: d.internal,
            arguments: d.arguments.clone(),
        };
        if delayed && d.durable {
            self.create_delayed_log().map_err(|e| {
                tracing::error!(error = %e, "cannot create the delayed-message log");
                AmqpError::internal_error("cannot create the delayed-message storage")
            })?;
        }
        let x = Exchange::with_policy(spec, d.policy_alternate);
        self.open_dedup_log(&x, true).map_err(|e| {
            tracing::error!(error = %e, exchange = d.name, "cannot create the deduplication log");
            AmqpError::internal_error("cannot create the deduplication storage")
        })?;
        exchanges.insert(x.spec.name.clone(), x);
        drop(exchanges);
        Ok(self.persist_if(d.durable, None))
    }

    /// The exchanges whose deduplication keys are on disk (their logs are kept at start-up).
    pub fn persistent_dedup_exchanges(&self) -> Vec<String> {
        self.exchanges
            .read()
            .values()
            .filter(|x| x.dedup().is_some_and(|c| c.settings().persistent))
            .map(|x| x.spec.name.to_string())
            .collect()
    }

    /// A deduplicating exchange with `x-cache-persistence: disk` keeps its keys in a log:
    /// a new one (`fresh`, for a declare) or the one it had (recovery, with its keys).
    pub(super) fn open_dedup_log(&self, x: &Exchange, fresh: bool) -> std::io::Result<()> {
        let (Some(cache), Some(store)) = (x.dedup(), &self.store) else {
            return Ok(());
        };
        if !cache.settings().persistent {
            return Ok(());
        }
        let (log, entries) =
            store.dedup_log(&self.name, &x.spec.name, cache.settings().size, fresh)?;
        cache.attach_log(log, entries);
        Ok(())
    }

    fn check_exchange_equivalence(
        &self,
        have: &ExchangeSpec,
        kind: ExchangeKind,
        delayed: bool,
        d: &ExchangeDeclare<'_>,
    ) -> AmqpResult<()> {
        let what = format!("exchange '{}' in vhost '{}'", d.name, self.name);
        let differ = |arg: &str, received: &str, current: &str| {
            Err(AmqpError::precondition_failed(format!(
                "inequivalent arg '{arg}' for {what}: received '{received}' but current is '{current}'"
            )))
        };
        if have.kind != kind || have.delayed != delayed {
            let received = if delayed { DELAYED_TYPE } else { kind.name() };
            return differ("type", received, have.type_name());
        }
        if have.durable != d.durable {
            return differ("durable", bool_text(d.durable), bool_text(have.durable));
        }
        if have.auto_delete != d.auto_delete {
            return differ(
                "auto_delete",
                bool_text(d.auto_delete),
                bool_text(have.auto_delete),
            );
        }
        if have.internal != d.internal {
            return differ("internal", bool_text(d.internal), bool_text(have.internal));
        }
        check_args_equivalence(&what, &["alternate-exchange"], &have.arguments, d.arguments)
    }

    /// exchange.delete: idempotent for missing exchanges, like RabbitMQ.
    pub fn delete_exchange(&self, name: &str, if_unused: bool) -> AmqpResult<Recording> {
        if name.is_empty() {
            return Err(Self::default_exchange_refused());
        }
        if name.starts_with("amq.") {
            return Err(AmqpError::access_refused(format!(
                "deletion of system exchange '{name}' in vhost '{}' not allowed",
                self.name
            )));
        }
        let mut exchanges = self.exchanges.write();
        let Some(x) = exchanges.get(name) else {
            return Ok(Recording::nothing());
        };
        if if_unused && x.has_bindings() {
            return Err(AmqpError::precondition_failed(format!(
                "exchange '{name}' in vhost '{}' in use",
                self.name
            )));
        }
        let durable = x.spec.durable;
        if let Some(cache) = x.dedup() {
            cache.delete_log();
        }
        x.mark_removed();
        exchanges.remove(name);
        let others: Vec<Arc<Exchange>> = exchanges.values().cloned().collect();
        drop(exchanges);
        let gone = Dest::Exchange(name.into());
        let mut cascaded = false;
        for x in others {
            if x.unbind_all(&gone) {
                cascaded |= self.auto_delete_exchange(&x);
            }
        }
        Ok(self.persist_if(durable || cascaded, None))
    }

    /// Where a new queue pages out its backlog (None without a store: everything stays in RAM).
    fn spool_path(&self) -> Option<std::path::PathBuf> {
        self.store.as_ref().map(|s| s.spool_path())
    }

    /// Whether `name` is an x-delayed-message exchange.
    pub fn is_delayed(&self, name: &str) -> bool {
        !name.is_empty()
            && self
                .exchanges
                .read()
                .get(name)
                .is_some_and(|x| x.spec.delayed)
    }

    /// Looks up an exchange ("" is the default exchange and has no object).
    pub fn exchange(&self, name: &str) -> AmqpResult<Arc<Exchange>> {
        self.exchanges
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| self.no_exchange(name))
    }

    /// queue.declare: returns the queue with its ready-message and consumer counts.
    pub fn declare_queue(&self, d: &QueueDeclare<'_>, conn_id: u64) -> AmqpResult<DeclaredQueue> {
        if d.passive {
            let q = self.queue(d.name, conn_id)?;
            // A passive declare counts as use for x-expires, as in RabbitMQ.
            q.touch();
            return Ok(DeclaredQueue::existing(q));
        }
        if d.name.starts_with("amq.") && !d.server_named {
            return Err(AmqpError::access_refused(format!(
                "queue name '{}' contains reserved prefix 'amq.*'",
                d.name
            )));
        }
        self.churn.declared.fetch_add(1, Ordering::Relaxed);
        let mut queues = self.queues.write();
        panic_if_asked(d.name);
        if !queues.contains_key(d.name) {
            // RabbitMQ validates arguments of new queues only; redeclares are compared.
            let what = format!("queue '{}' in vhost '{}'", d.name, self.name);
            super::arguments::validate_queue_arguments(d.arguments, d.durable, &what)?;
        }
        let name: Arc<str> = if d.name.is_empty() {
            loop {
                let n: Arc<str> = generate_name("amq.gen-").into();
                if !queues.contains_key(&n) {
                    break n;
                }
            }
        } else {
            d.name.into()
        };
        if let Some(q) = queues.get(&name) {
            q.check_access(conn_id)?;
            let q = q.clone();
            drop(queues);
            self.check_queue_equivalence(&q, d, conn_id)?;
            q.touch();
            return Ok(DeclaredQueue::existing(q));
        }
        if let Some(max) = d.max_queues.filter(|max| queues.len() as u64 >= *max) {
            return Err(AmqpError::precondition_failed(format!(
                "cannot declare queue '{name}': queue limit in vhost '{}' ({max}) is reached",
                self.name
            )));
        }
        let spec = QueueSpec {
            name: name.clone(),
            durable: d.durable,
            exclusive_owner: d.exclusive.then_some(conn_id),
            auto_delete: d.auto_delete,
            arguments: d.arguments.clone(),
        };
        // Exclusive queues die with their connection, so they are never written to disk.
        let log = match &self.store {
            Some(store) if d.durable && !d.exclusive => {
                Some(store.create_queue_log().map_err(|e| {
                    tracing::error!(error = %e, "cannot create a queue log");
                    AmqpError::internal_error("cannot create the queue's storage")
                })?)
            }
            _ => None,
        };
        let persisted = log.is_some();
        let q = Queue::new(spec, self.name.clone(), log, self.spool_path(), d.policy);
        queues.insert(name, q.clone());
        drop(queues);
        self.churn.created.fetch_add(1, Ordering::Relaxed);
        timers::start_idle_timer(self, &q);
        let recording = self.persist_if(persisted, None);
        Ok(DeclaredQueue {
            queue: q,
            messages: 0,
            consumers: 0,
            recording,
        })
    }

    fn check_queue_equivalence(
        &self,
        q: &Queue,
        d: &QueueDeclare<'_>,
        conn_id: u64,
    ) -> AmqpResult<()> {
        let have = &q.spec;
        if d.exclusive.then_some(conn_id) != have.exclusive_owner {
            // The exclusive property must match (RabbitMQ's strict exclusive check: 405 with
            // the text of a locked queue), also for the owner redeclaring without it.
            return Err(AmqpError::resource_locked(format!(
                "cannot obtain exclusive access to locked queue '{}' in vhost '{}'. It could be \
                 originally declared on another connection or the exclusive property value does \
                 not match that of the original declaration.",
                have.name, self.name
            )));
        }
        let what = format!("queue '{}' in vhost '{}'", have.name, self.name);
        let differ = |arg: &str, received: bool, current: bool| {
            Err(AmqpError::precondition_failed(format!(
                "inequivalent arg '{arg}' for {what}: received '{}' but current is '{}'",
                bool_text(received),
                bool_text(current)
            )))
        };
        if have.durable != d.durable {
            return differ("durable", d.durable, have.durable);
        }
        if have.auto_delete != d.auto_delete {
            return differ("auto_delete", d.auto_delete, have.auto_delete);
        }
        check_args_equivalence(
            &what,
            EQUIVALENCE_CHECKED_QUEUE_ARGS,
            &have.arguments,
            d.arguments,
        )
    }

    /// Looks up a queue the connection may use (404 missing, 405 another's exclusive queue).
    pub fn queue(&self, name: &str, conn_id: u64) -> AmqpResult<Arc<Queue>> {
        let q = self
            .queues
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| self.no_queue(name))?;
        q.check_access(conn_id)?;
        Ok(q)
    }

    /// queue.bind.
    pub fn bind_queue(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: &FieldTable,
        conn_id: u64,
    ) -> AmqpResult<Recording> {
        if exchange.is_empty() {
            return Err(Self::default_exchange_refused());
        }
        // RabbitMQ looks the exchange up first.
        let x = self.exchange(exchange)?;
        let q = self.queue(queue, conn_id)?;
        x.validate_binding(arguments)?;
        let durable = x.spec.durable && q.log().is_some();
        x.bind(Dest::Queue(q), routing_key, arguments);
        Ok(self.persist_if(durable, None))
    }

    /// queue.unbind: removing a binding that does not exist is fine.
    pub fn unbind_queue(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: &FieldTable,
        conn_id: u64,
    ) -> AmqpResult<Recording> {
        if exchange.is_empty() {
            return Err(Self::default_exchange_refused());
        }
        // Unbinding from a missing queue or exchange succeeds, as in RabbitMQ; another
        // connection's exclusive queue is locked for it (405), as for everything else.
        let q = match self.queue(queue, conn_id) {
            Err(e) if e.code == crate::error::code::RESOURCE_LOCKED => return Err(e),
            q => q,
        };
        let (Ok(x), Ok(q)) = (self.exchange(exchange), q) else {
            return Ok(Recording::nothing());
        };
        let durable = x.spec.durable && q.log().is_some();
        if !x.unbind(&Dest::Queue(q), routing_key, arguments) {
            return Ok(Recording::nothing());
        }
        let cascaded = self.auto_delete_exchange(&x);
        Ok(self.persist_if(durable || cascaded, None))
    }

    /// exchange.bind (RabbitMQ extension): messages routed by `source` also go through
    /// `destination`.
    pub fn bind_exchange(
        &self,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: &FieldTable,
    ) -> AmqpResult<Recording> {
        if destination.is_empty() || source.is_empty() {
            return Err(Self::default_exchange_refused());
        }
        let src = self.exchange(source)?;
        let dst = self.exchange(destination)?;
        src.validate_binding(arguments)?;
        src.bind(
            Dest::Exchange(dst.spec.name.clone()),
            routing_key,
            arguments,
        );
        // The snapshot keeps bindings between durable exchanges.
        Ok(self.persist_if(src.spec.durable && dst.spec.durable, None))
    }

    /// exchange.unbind: removing a missing binding is fine.
    pub fn unbind_exchange(
        &self,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: &FieldTable,
    ) -> AmqpResult<Recording> {
        if destination.is_empty() || source.is_empty() {
            return Err(Self::default_exchange_refused());
        }
        let Ok(src) = self.exchange(source) else {
            return Ok(Recording::nothing());
        };
        if !src.unbind(&Dest::Exchange(destination.into()), routing_key, arguments) {
            return Ok(Recording::nothing());
        }
        let cascaded = self.auto_delete_exchange(&src);
        Ok(self.persist_if(src.spec.durable || cascaded, None))
    }

    /// An auto-delete exchange goes when its last binding does (RabbitMQ); its going removes
    /// the bindings that lead to it, which can take other auto-delete exchanges with them
    /// (a work list, not recursion: a chain of exchanges can be long). Returns whether
    /// durable definitions changed.
    fn auto_delete_exchange(&self, x: &Arc<Exchange>) -> bool {
        let mut durable_changed = false;
        let mut candidates = vec![x.clone()];
        while let Some(x) = candidates.pop() {
            if !x.spec.auto_delete || x.has_bindings() {
                continue;
            }
            {
                let mut exchanges = self.exchanges.write();
                if !exchanges
                    .get(&x.spec.name)
                    .is_some_and(|e| Arc::ptr_eq(e, &x))
                {
                    continue;
                }
                x.mark_removed();
                exchanges.remove(&x.spec.name);
                // Under the lock: a redeclare of the name must not open the file first.
                if let Some(cache) = x.dedup() {
                    cache.delete_log();
                }
            }
            durable_changed |= x.spec.durable;
            let gone = Dest::Exchange(x.spec.name.clone());
            let sources: Vec<Arc<Exchange>> = self.exchanges.read().values().cloned().collect();
            for source in sources {
                if source.unbind_all(&gone) {
                    durable_changed |= source.spec.durable;
                    candidates.push(source);
                }
            }
        }
        durable_changed
    }

    /// queue.purge.
    pub fn purge_queue(&self, name: &str, conn_id: u64) -> AmqpResult<u32> {
        Ok(self.queue(name, conn_id)?.purge())
    }

    /// queue.delete: idempotent for a missing queue; returns the messages it held.
    pub fn delete_queue(
        &self,
        name: &str,
        if_unused: bool,
        if_empty: bool,
        conn_id: u64,
    ) -> AmqpResult<(u32, Recording)> {
        let q = match self.queue(name, conn_id) {
            Ok(q) => q,
            Err(e) if e.code == crate::error::code::NOT_FOUND => {
                return Ok((0, Recording::nothing()))
            }
            Err(e) => return Err(e),
        };
        if if_unused && q.consumer_count() > 0 {
            return Err(AmqpError::precondition_failed(format!(
                "queue '{name}' in vhost '{}' in use",
                self.name
            )));
        }
        if if_empty && q.message_count() > 0 {
            return Err(AmqpError::precondition_failed(format!(
                "queue '{name}' in vhost '{}' not empty",
                self.name
            )));
        }
        Ok(self.remove_queue(&q))
    }

    /// Direct reply-to (RabbitMQ extension): a consumer on `amq.rabbitmq.reply-to` gets a
    /// private pseudo-queue, named `amq.rabbitmq.reply-to.<token>`, reachable only through the
    /// default exchange and gone with its consumer.
    pub fn create_reply_queue(&self, conn_id: u64) -> Arc<Queue> {
        let name: Arc<str> = generate_name(&format!("{REPLY_TO}.")).into();
        let spec = QueueSpec {
            name: name.clone(),
            durable: false,
            exclusive_owner: Some(conn_id),
            auto_delete: true,
            arguments: FieldTable::default(),
        };
        let q = Queue::new(spec, self.name.clone(), None, None, None);
        self.reply_queues.lock().insert(name, q.clone());
        q
    }

    /// Whether a generated direct reply-to name still has its consumer.
    pub fn has_reply_queue(&self, name: &str) -> bool {
        self.reply_queues.lock().contains_key(name)
    }

    /// Removes a queue and its bindings; returns its ready-message count.
    ///
    /// A durable queue's definitions without it reach the disk before its log files are
    /// removed, so a delete answered delete-ok stays deleted and one interrupted by a crash
    /// comes back whole, never in part (files a crash leaves behind are orphans, removed at
    /// start-up). If the definitions cannot be written the log is kept and the recording
    /// fails (541 INTERNAL_ERROR for a client waiting on it): after a restart the queue would
    /// be back.
    pub fn remove_queue(&self, q: &Arc<Queue>) -> (u32, Recording) {
        if q.name().starts_with(REPLY_TO) {
            self.reply_queues.lock().remove(q.name());
            return (q.delete(), Recording::nothing());
        }
        {
            let mut queues = self.queues.write();
            if queues.get(q.name()).is_some_and(|x| Arc::ptr_eq(x, q)) {
                queues.remove(q.name());
                self.churn.deleted.fetch_add(1, Ordering::Relaxed);
            }
        }
        let exchanges: Vec<Arc<Exchange>> = self.exchanges.read().values().cloned().collect();
        let mut cascaded = false;
        for x in exchanges {
            if x.unbind_all(&Dest::Queue(q.clone())) {
                cascaded |= self.auto_delete_exchange(&x);
            }
        }
        let n = q.delete();
        let recording = match q.log() {
            Some(log) => {
                let log = log.clone();
                self.persist_if(true, Some(Box::new(move || log.delete())))
            }
            None => self.persist_if(cascaded, None),
        };
        (n, recording)
    }

    /// Deletes the exclusive queues of a connection that closed.
    pub fn connection_closed(&self, conn_id: u64) {
        let owned: Vec<Arc<Queue>> = self
            .queues
            .read()
            .values()
            .filter(|q| q.spec.exclusive_owner == Some(conn_id))
            .cloned()
            .collect();
        for q in owned {
            // Exclusive queues are never durable on disk: nothing to report.
            let _ = self.remove_queue(&q);
        }
    }
}

/// Fault injection for the panic policy's test (tests/panics.rs): declaring the queue named
/// in `FAULT_INJECTION_PANIC_ON_DECLARE` panics while the vhost's queue table is locked for
/// writing, the way a bug in the middle of an update would.
fn panic_if_asked(name: &str) {
    static TRIGGER: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let trigger = TRIGGER.get_or_init(|| std::env::var("FAULT_INJECTION_PANIC_ON_DECLARE").ok());
    if trigger.as_deref() == Some(name) {
        panic!("queue.declare of '{name}': panic injected by FAULT_INJECTION_PANIC_ON_DECLARE");
    }
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// RabbitMQ compares a fixed set of arguments on redeclare; a difference is 406.
fn check_args_equivalence(
    what: &str,
    keys: &[&str],
    have: &FieldTable,
    received: &FieldTable,
) -> AmqpResult<()> {
    for key in keys {
        let a = received.inner().get(*key);
        let b = have.inner().get(*key);
        // RabbitMQ: a queue declared without x-queue-type is of the default type, so
        // "classic" and none are the same (rabbitmqadmin and the UI send it, clients not).
        let classic = |v: Option<&AMQPValue>| {
            *key == "x-queue-type"
                && v.is_none_or(|v| {
                    crate::protocol::table::as_bytes(v) == Some(b"classic".as_slice())
                })
        };
        let same = match (a, b) {
            _ if classic(a) && classic(b) => true,
            (Some(x), Some(y)) => same_value(x, y),
            (None, None) => true,
            _ => false,
        };
        if !same {
            // RabbitMQ: plain values when both sides have one, typed values otherwise.
            let (received, current) = match (a, b) {
                (Some(x), Some(y)) => (
                    format!("'{}'", value_text(x)),
                    format!("'{}'", value_text(y)),
                ),
                _ => (describe(a), describe(b)),
            };
            return Err(AmqpError::precondition_failed(format!(
                "inequivalent arg '{key}' for {what}: received {received} but current is {current}"
            )));
        }
    }
    Ok(())
}

/// RabbitMQ's rendering: `the value '10' of type 'signedint'`, or `none`.
fn describe(v: Option<&AMQPValue>) -> String {
    match v {
        None => "none".to_string(),
        Some(v) => format!("the value '{}' of type '{}'", value_text(v), type_name(v)),
    }
}

/// A random name like RabbitMQ's `amq.gen-` + 22 URL-safe base64 characters.
pub fn generate_name(prefix: &str) -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(prefix.len() + 22);
    out.push_str(prefix);
    let state = RandomState::new();
    let mut bits: u128 = 0;
    for _ in 0..2 {
        let mut h = state.build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        bits = (bits << 64) | h.finish() as u128;
    }
    for _ in 0..22 {
        out.push(ALPHABET[(bits & 63) as usize] as char);
        bits >>= 6;
    }
    out
}

//! A queue: ready messages in order, its consumers, and dispatch within credit, plus the
//! RabbitMQ extensions that live in the queue: TTL, length limits, dead-lettering,
//! priorities, consumer priorities, single active consumer and x-expires.
//!
//! Concurrency: each queue owns one `parking_lot::Mutex` around its state; publishers, acks and
//! consumers lock it briefly and never across `.await`. We chose this over the actor-per-queue
//! of ARCHITECTURE.md: it saves a task hop and a wake per publish on 2 cores, keeps
//! declare/get/purge synchronous, and there is still no global lock on the publish or deliver
//! path (each queue is its own lock; routing tables are read-mostly `RwLock`s).
//! Deliveries leave through each consumer's unbounded sink, bounded by its credit (prefetch or
//! the no-ack window), so nothing here ever waits on a connection (the deadlock rule).
//!
//! The queue is a core that knows nothing of its vhost: every operation decides under the
//! lock and returns `Effects` (dead letters to route, an expiry timer to start, "delete me"),
//! which the vhost carries out after the lock is released, so two queues dead-lettering into
//! each other can never deadlock. Time comes from `clock`; timers live in the vhost.

mod dispatch;
mod effects;
mod policy;
mod ready;
mod spool;
#[cfg(test)]
mod tests;

pub use effects::{DeadLetters, Effects, ExpiryTimer};
pub use policy::{Overflow, QueuePolicy};

use super::clock::now_ms;
use super::dead_letter::Reason;
use super::message::{Message, QueuedMessage};
use super::stats::QueueStats;
use crate::error::{AmqpError, AmqpResult};
use crate::protocol::FieldTable;
use crate::store::QueueLog;
use parking_lot::Mutex;
use ready::ReadyList;
use std::sync::Arc;

/// A consumer as this queue knows it; its deliveries name the queue by `Arc<Queue>`.
pub type ConsumerEntry = super::consumer::ConsumerEntry<Arc<Queue>>;
/// What this queue sends to a consumer's connection.
pub type Outbound = super::consumer::Outbound<Arc<Queue>>;
/// A batch of messages for one consumer.
pub type Delivery = super::consumer::Delivery<Arc<Queue>>;

/// Declared properties of a queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    pub name: Arc<str>,
    pub durable: bool,
    /// The owning connection of an exclusive queue.
    pub exclusive_owner: Option<u64>,
    pub auto_delete: bool,
    pub arguments: FieldTable,
}

/// A queue and its state.
#[derive(Debug)]
pub struct Queue {
    pub spec: QueueSpec,
    /// x-queue-type quorum (from the declare; never changes).
    pub quorum: bool,
    /// The consumer timeout of the current policy (ms; NO_TIMEOUT: none), readable per
    /// delivery batch without the queue's lock.
    consumer_timeout: std::sync::atomic::AtomicU64,
    vhost_name: Arc<str>,
    /// The durable log (durable, non-exclusive queues only): persistent messages go there.
    /// Set once, at creation or at the end of recovery.
    log: std::sync::OnceLock<Arc<QueueLog>>,
    /// Message counts for the management API and metrics (see `broker::stats`).
    pub stats: QueueStats,
    state: OwnLines<Mutex<QueueState>>,
    /// `x-message-deduplication`: the header whose value may be in the queue only once.
    dedup_header: Option<Box<str>>,
}

/// The deduplication header of a queue declared with `x-message-deduplication` (the plugin
/// turns it on for any value but `false`; LavinMQ's `x-deduplication-header` renames it).
/// Read from the declared arguments only, not from policies.
fn dedup_header(arguments: &FieldTable) -> Option<Box<str>> {
    let args = arguments.inner();
    match args.get("x-message-deduplication") {
        None | Some(crate::protocol::AMQPValue::Boolean(false)) => None,
        Some(_) => Some(
            args.get("x-deduplication-header")
                .and_then(crate::protocol::table::as_bytes)
                .map_or(crate::broker::dedup_key::DEFAULT_HEADER.into(), |b| {
                    String::from_utf8_lossy(b).into()
                }),
        ),
    }
}

/// `Queue::consumer_timeout` when the queue sets none.
const NO_TIMEOUT: u64 = u64::MAX;

/// A value on cache lines of its own (128 bytes: the line and the one the prefetcher pairs
/// with it). The queue's lock and state are written by whichever core publishes or
/// dispatches, per message; consumers' connections on other cores read the queue's other
/// fields (its log, its timeout) per delivery, and must not share a line with them.
#[derive(Debug)]
#[repr(align(128))]
struct OwnLines<T>(T);

impl<T> std::ops::Deref for OwnLines<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[derive(Debug)]
struct QueueState {
    /// What the declare's arguments and the policies that apply make of the queue (replaced
    /// when policies change). Inline: the publish path reads it under this lock.
    policy: QueuePolicy,
    ready: ReadyList,
    consumers: Vec<ConsumerEntry>,
    /// Index of the consumer that gets the next message (round-robin).
    next_consumer: usize,
    next_seq: u64,
    deleted: bool,
    /// Auto-delete applies only to queues that have had a consumer (RabbitMQ semantics).
    had_consumer: bool,
    /// Ready messages that carry an expiry time.
    expiring: usize,
    /// An expiry timer task is running.
    expiry_timer: Option<ExpiryTimer>,
    /// The generation of the latest expiry timer started.
    timer_generation: u64,
    /// Last time (ms) the queue was used, for x-expires.
    last_used: u64,
    /// Deduplication keys of the messages in the queue (ready or unacked), with how many
    /// hold each (one, unless recovered messages shared a key).
    dedup_keys: crate::FastMap<Box<[u8]>, u32>,
}

/// The result of offering a message to a queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enqueued {
    /// Log position that must be durable before the publish may be confirmed.
    pub position: Option<u64>,
    /// The queue refused it (x-overflow reject-publish): the publisher gets basic.nack.
    pub rejected: bool,
    /// Dropped: a message with the same deduplication key is in the queue.
    pub duplicate: bool,
}

/// A queue's depth at one moment.
#[derive(Debug, Clone, Copy)]
pub struct QueueDepth {
    pub ready: u64,
    pub ready_bytes: u64,
    pub consumers: u64,
    /// When it was last used (ms, monotonic clock).
    pub idle_since: u64,
}

/// One consumer as the management API lists it.
#[derive(Debug, Clone)]
pub struct ConsumerSummary {
    pub tag: Arc<str>,
    pub conn_id: u64,
    pub channel: u16,
    pub no_ack: bool,
    pub exclusive: bool,
    pub priority: i64,
    /// Its prefetch count (0: unlimited).
    pub prefetch: u32,
}

/// When an idle-queue check (x-expires) should look again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleCheck {
    /// Look again at this time (ms, `clock`).
    At(u64),
    /// The queue has been unused for x-expires: delete it.
    Expired,
    /// Nothing to watch (deleted, or no x-expires).
    Stop,
}

impl Queue {
    pub fn new(
        spec: QueueSpec,
        vhost_name: Arc<str>,
        log: Option<Arc<QueueLog>>,
        spool_path: Option<std::path::PathBuf>,
        policy: Option<&crate::broker::access::policies::PolicyArguments>,
    ) -> Arc<Queue> {
        // A policy fills in what the declare's arguments leave out (RabbitMQ: the client's
        // x-arguments win); `spec.arguments` stays as declared, for equivalence checks.
        let effective = crate::broker::access::policies::with_policy(&spec.arguments, policy);
        let policy = QueuePolicy::from_arguments(&effective);
        let quorum = policy.quorum;
        let consumer_timeout =
            std::sync::atomic::AtomicU64::new(policy.consumer_timeout.unwrap_or(NO_TIMEOUT));
        Arc::new(Queue {
            stats: QueueStats::default(),
            state: OwnLines(Mutex::new(QueueState {
                ready: ReadyList::new(policy.max_priority, spool_path),
                policy,
                consumers: Vec::new(),
                next_consumer: 0,
                next_seq: log.as_ref().map_or(0, |l| l.next_seq()),
                deleted: false,
                had_consumer: false,
                expiring: 0,
                expiry_timer: None,
                timer_generation: 0,
                last_used: now_ms(),
                dedup_keys: Default::default(),
            })),
            dedup_header: dedup_header(&spec.arguments),
            spec,
            quorum,
            consumer_timeout,
            vhost_name,
            log: match log {
                Some(l) => std::sync::OnceLock::from(l),
                None => std::sync::OnceLock::new(),
            },
        })
    }

    /// What the declare's arguments and the policies that apply make of the queue now (a
    /// copy: for paths that are not per message).
    pub fn policy(&self) -> QueuePolicy {
        self.state.lock().policy.clone()
    }

    /// The consumer timeout its arguments or policy give the queue (ms), if any.
    pub fn consumer_timeout(&self) -> Option<u64> {
        match self
            .consumer_timeout
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            NO_TIMEOUT => None,
            ms => Some(ms),
        }
    }

    /// Policies changed: the queue's settings become what its arguments and `policy` make
    /// of them. A lower length limit drops (or dead-letters) the oldest messages at once; a
    /// new message TTL applies to messages published from now on. Answers whether the queue
    /// got an x-expires it did not have (its idle timer must be started; a running one reads
    /// the new value when it wakes), and what must happen next.
    pub fn apply_policy(
        self: &Arc<Self>,
        policy: Option<&crate::broker::access::policies::PolicyArguments>,
    ) -> (bool, Effects) {
        let mut fx = Effects::default();
        let effective = crate::broker::access::policies::with_policy(&self.spec.arguments, policy);
        let new = QueuePolicy::from_arguments(&effective);
        let mut st = self.state.lock();
        if st.deleted || st.policy == new {
            return (false, fx);
        }
        let expires_started = st.policy.expires.is_none() && new.expires.is_some();
        self.consumer_timeout.store(
            new.consumer_timeout.unwrap_or(NO_TIMEOUT),
            std::sync::atomic::Ordering::Relaxed,
        );
        st.policy = new;
        let dropped = st.drop_head_over_limits();
        drop(st);
        fx.dead_letter(Reason::Maxlen, dropped);
        (expires_started, fx)
    }

    /// The durable log, if this queue has one.
    pub fn log(&self) -> Option<&Arc<QueueLog>> {
        self.log.get()
    }

    /// Attaches the log once recovery has replayed it into this queue. Numbering continues
    /// beyond every number in the log, acked ones included (their acks are still on disk).
    pub fn attach_log(&self, log: Arc<QueueLog>) {
        {
            let mut st = self.state.lock();
            st.next_seq = st.next_seq.max(log.next_seq());
        }
        let _ = self.log.set(log);
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Checks exclusive ownership (405 RESOURCE_LOCKED for other connections).
    pub fn check_access(&self, conn_id: u64) -> AmqpResult<()> {
        match self.spec.exclusive_owner {
            Some(owner) if owner != conn_id => Err(AmqpError::resource_locked(format!(
                "cannot obtain exclusive access to locked queue '{}' in vhost '{}'. It could be \
                 originally declared on another connection or the exclusive property value does \
                 not match that of the original declaration.",
                self.spec.name, self.vhost_name
            ))),
            _ => Ok(()),
        }
    }

    /// Puts recovered messages back (start-up only), continuing their numbering. Their TTLs
    /// start counting at `recovered`, once every queue, log and binding is back: a message
    /// that expired earlier would be dead-lettered to a queue not recovered yet (and
    /// dropped), or released before this queue's log is attached (and its ack never written).
    pub fn restore(self: &Arc<Self>, messages: Vec<QueuedMessage>) {
        let mut st = self.state.lock();
        if let Some(last) = messages.last() {
            st.next_seq = st.next_seq.max(last.seq + 1);
        }
        for m in messages {
            st.note_expiry(&m);
            self.with_dedup_key(&m.message, |key| match st.dedup_keys.get_mut(key) {
                Some(n) => *n += 1,
                None => {
                    st.dedup_keys.insert(key.into(), 1);
                }
            });
            st.ready.push_back(m);
        }
    }

    /// Recovery is complete: expiry starts.
    pub fn recovered(&self) -> Effects {
        let mut fx = Effects::default();
        self.state.lock().arm_if_needed(&mut fx, now_ms());
        fx
    }

    /// Messages that left the queue for good (acked, rejected without requeue, delivered
    /// no-ack, dead-lettered, dropped, expired, purged): their log records are released, and
    /// their deduplication keys.
    pub fn forget<'a>(&self, messages: impl IntoIterator<Item = &'a QueuedMessage>) {
        if self.dedup_header.is_none() {
            return self.forget_in_log(messages);
        }
        let messages: Vec<&QueuedMessage> = messages.into_iter().collect();
        self.release_keys(messages.iter().copied());
        self.forget_in_log(messages);
    }

    /// The deduplication keys of messages that left the queue are free again. Dead letters
    /// release theirs before they are republished (RabbitMQ drops the message before its dead
    /// letter arrives), so one routed back to this queue is not its own duplicate.
    pub fn release_keys<'a>(&self, messages: impl IntoIterator<Item = &'a QueuedMessage>) {
        if self.dedup_header.is_none() {
            return;
        }
        let mut st = self.state.lock();
        for m in messages {
            self.with_dedup_key(&m.message, |key| st.release_key(key));
        }
    }

    /// Whether messages of this queue must be `forget`-ten even without a log.
    pub fn deduplicates(&self) -> bool {
        self.dedup_header.is_some()
    }

    /// Calls `f` with the message's deduplication key, when this queue deduplicates and the
    /// message has one.
    fn with_dedup_key<R>(&self, message: &Message, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let header = self.dedup_header.as_deref()?;
        crate::broker::dedup_key::with_key(message.view().headers, header.as_bytes(), f)
    }

    /// Releases log records only (callers that hold the state lock, or released the keys).
    pub fn forget_in_log<'a>(&self, messages: impl IntoIterator<Item = &'a QueuedMessage>) {
        if let Some(log) = self.log.get() {
            log.ack(
                messages
                    .into_iter()
                    .filter(|m| m.message.is_persistent())
                    .map(|m| m.seq),
            );
        }
    }

    /// A persistent message went to a consumer: remembered so that, after a restart, it comes
    /// back flagged redelivered (and only it). Callers set `delivery_recorded` afterwards.
    pub fn mark_delivered<'a>(&self, messages: impl IntoIterator<Item = &'a QueuedMessage>) {
        if let Some(log) = self.log.get() {
            let mut first_time = messages
                .into_iter()
                .filter(|m| !m.delivery_recorded && m.message.is_persistent())
                .map(|m| m.seq)
                .peekable();
            if first_time.peek().is_some() {
                log.delivered(first_time);
            }
        }
    }

    /// Offers a message: TTL, length limits and persistence apply, then dispatch.
    pub fn publish(self: &Arc<Self>, message: Message) -> (Enqueued, Effects) {
        let mut fx = Effects::default();
        let mut out = Enqueued::default();
        let mut st = self.state.lock();
        let (ttl, max_priority, overflow) = (
            st.policy.message_ttl,
            st.policy.max_priority,
            st.policy.overflow,
        );
        // The clock is read only when something here can expire.
        let timed = ttl.is_some() || message.expiration().is_some() || st.expiring > 0;
        let now = if timed { now_ms() } else { 0 };
        if st.deleted {
            return (out, fx);
        }
        // x-message-deduplication: a message whose key is in the queue is dropped (and still
        // confirmed), before the length limits look at it.
        if self.dedup_header.is_some() && st.ready.take_lost() {
            // Paged-out messages were lost with their keys unread: forget every key rather
            // than refuse their retries forever.
            st.dedup_keys = Default::default();
        }
        if self.with_dedup_key(&message, |key| st.dedup_keys.contains_key(key)) == Some(true) {
            out.duplicate = true;
            return (out, fx);
        }
        let bytes_with_it = (st.ready.bytes() + message.body().len() as u64).saturating_sub(1);
        if overflow != Overflow::DropHead && st.policy.is_full(st.ready.len(), bytes_with_it) {
            drop(st);
            if overflow == Overflow::RejectPublishDlx {
                let m = QueuedMessage::new(0, message, now, ttl, max_priority);
                // Never written to the log: its (made-up) number must not be released there.
                fx.dead.push(DeadLetters {
                    reason: Reason::Maxlen,
                    messages: vec![m],
                    in_log: false,
                });
            }
            out.rejected = true;
            return (out, fx);
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        if let Some(log) = self.log.get() {
            if message.is_persistent() {
                let m = &message;
                out.position = Some(log.append(
                    seq,
                    m.exchange(),
                    m.routing_key_bytes(),
                    m.properties(),
                    m.body(),
                ));
            }
        }
        self.with_dedup_key(&message, |key| st.dedup_keys.insert(key.into(), 1));
        let m = QueuedMessage::new(seq, message, now, ttl, max_priority);
        self.stats.publish.add(1);
        st.note_expiry(&m);
        st.ready.push_back(m);
        let dropped = st.drop_head_over_limits();
        // Dispatch first: a message with TTL 0 still reaches a consumer that is ready for it.
        let mut expired = st.dispatch(self, now);
        append(&mut expired, st.expire_head(now));
        st.arm_if_needed(&mut fx, now);
        drop(st);
        fx.dead_letter(Reason::Maxlen, dropped);
        fx.dead_letter(Reason::Expired, expired);
        (out, fx)
    }

    /// Deliveries that waited for an ack were rejected or requeued.
    pub fn settled(&self, n: usize) {
        self.stats
            .returned
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Deliveries were acked.
    pub fn acked(&self, n: usize) {
        self.stats
            .ack
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Puts unacked messages back at their original positions, marked redelivered.
    pub fn requeue(self: &Arc<Self>, mut messages: Vec<QueuedMessage>) -> Effects {
        let mut fx = Effects::default();
        self.settled(messages.len());
        let now = now_ms();
        let mut over_limit = Vec::new();
        if self.quorum {
            // Quorum queues count returns in x-delivery-count and enforce x-delivery-limit.
            let delivery_limit = self.policy().delivery_limit;
            let (keep, over): (Vec<_>, Vec<_>) = messages
                .into_iter()
                .map(count_delivery)
                .partition(|m| delivery_limit.is_none_or(|limit| m.delivery_count as u64 <= limit));
            messages = keep;
            over_limit = over;
        }
        fx.dead_letter(Reason::DeliveryLimit, over_limit);
        self.put_back(messages, now, &mut fx);
        fx
    }

    /// Puts messages back at their original positions, flagged redelivered, and dispatches.
    fn put_back(self: &Arc<Self>, mut messages: Vec<QueuedMessage>, now: u64, fx: &mut Effects) {
        let mut st = self.state.lock();
        if st.deleted || messages.is_empty() {
            return;
        }
        messages.sort_unstable_by_key(|m| m.seq);
        for mut m in messages.into_iter().rev() {
            m.redelivered = true;
            st.note_expiry(&m);
            st.ready.insert_in_order(m);
        }
        let dropped = st.drop_head_over_limits();
        let mut expired = st.expire_head(now);
        append(&mut expired, st.dispatch(self, now));
        st.arm_if_needed(fx, now);
        drop(st);
        fx.dead_letter(Reason::Maxlen, dropped);
        fx.dead_letter(Reason::Expired, expired);
    }

    /// Puts back deliveries that never reached the client (still in its connection's inbox
    /// when the consumer or the connection went away): at their original positions, marked
    /// redelivered as RabbitMQ marks everything it handed to a channel (a consumer may
    /// already have seen later messages, so these would otherwise look out of order), with
    /// their quorum delivery count unchanged.
    pub fn return_unsent(self: &Arc<Self>, messages: Vec<QueuedMessage>, no_ack: bool) -> Effects {
        let mut fx = Effects::default();
        if !no_ack {
            self.settled(messages.len());
        }
        self.put_back(messages, now_ms(), &mut fx);
        fx
    }

    /// Credit came back (ack, qos change, written no-ack delivery): deliver more if possible.
    pub fn dispatch(self: &Arc<Self>) -> Effects {
        let mut fx = Effects::default();
        let mut st = self.state.lock();
        let now = if st.expiring > 0 { now_ms() } else { 0 };
        let mut expired = st.expire_head(now);
        append(&mut expired, st.dispatch(self, now));
        st.arm_if_needed(&mut fx, now);
        drop(st);
        fx.dead_letter(Reason::Expired, expired);
        fx
    }

    /// Adds a consumer (basic.consume), honouring exclusive consumers (403 in exclusive use).
    pub fn add_consumer(self: &Arc<Self>, consumer: ConsumerEntry) -> AmqpResult<Effects> {
        let now = now_ms();
        let mut st = self.state.lock();
        if st.deleted {
            return Err(AmqpError::not_found(format!(
                "no queue '{}' in vhost '{}'",
                self.spec.name, self.vhost_name
            )));
        }
        let exclusive_taken = st.consumers.iter().any(|c| c.exclusive);
        if exclusive_taken || (consumer.exclusive && !st.consumers.is_empty()) {
            return Err(AmqpError::access_refused(format!(
                "queue '{}' in vhost '{}' in exclusive use",
                self.spec.name, self.vhost_name
            )));
        }
        st.consumers.push(consumer);
        st.had_consumer = true;
        st.last_used = now;
        let mut expired = st.expire_head(now);
        append(&mut expired, st.dispatch(self, now));
        let mut fx = Effects::default();
        st.arm_if_needed(&mut fx, now);
        drop(st);
        fx.dead_letter(Reason::Expired, expired);
        Ok(fx)
    }

    /// Removes a consumer (cancel, channel or connection close). An auto-delete queue that
    /// lost its last consumer asks to be deleted (RabbitMQ: only once it has had one).
    pub fn remove_consumer(self: &Arc<Self>, conn_id: u64, channel: u16, tag: &str) -> Effects {
        let mut fx = Effects::default();
        let now = now_ms();
        let mut st = self.state.lock();
        st.consumers
            .retain(|c| !(c.conn_id == conn_id && c.channel == channel && &*c.tag == tag));
        if st.next_consumer >= st.consumers.len() {
            st.next_consumer = 0;
        }
        st.last_used = now;
        // With a single active consumer, the next one in line may now take over.
        let expired = st.dispatch(self, now);
        st.arm_if_needed(&mut fx, now);
        fx.delete =
            self.spec.auto_delete && st.consumers.is_empty() && st.had_consumer && !st.deleted;
        drop(st);
        fx.dead_letter(Reason::Expired, expired);
        fx
    }

    /// basic.get: the head message and how many remain. `no_ack`: the caller keeps no
    /// unacked delivery (counted apart).
    #[allow(clippy::type_complexity)]
    pub fn get(self: &Arc<Self>, no_ack: bool) -> (Option<(QueuedMessage, u32)>, Effects) {
        let now = now_ms();
        let mut st = self.state.lock();
        st.last_used = now;
        let expired = st.expire_head(now);
        let m = st.ready.pop_front();
        if let Some(m) = &m {
            st.forget_expiry(m);
            if no_ack {
                self.stats.get_no_ack.add(1);
            } else {
                self.stats.get.add(1);
            }
            if m.redelivered {
                self.stats.redeliver.add(1);
            }
        }
        let remaining = st.ready.len() as u32;
        let mut fx = Effects::default();
        // The new head may be due before the timer's next look.
        st.arm_if_needed(&mut fx, now);
        drop(st);
        fx.dead_letter(Reason::Expired, expired);
        (m.map(|m| (m, remaining)), fx)
    }

    /// Marks the queue used (queue.declare of an existing queue), for x-expires.
    pub fn touch(&self) {
        self.state.lock().last_used = now_ms();
    }

    /// Drops every ready message; returns how many.
    pub fn purge(&self) -> u32 {
        let mut st = self.state.lock();
        // Persistent messages leave the log too, so a durable queue reads its spool back.
        let durable = self.log.get().is_some();
        let n = st
            .ready
            .clear(durable, |batch| self.forget_in_log(batch.iter()));
        st.expiring = 0;
        // The plugin forgets every key on purge, unacked messages' too.
        st.dedup_keys = Default::default();
        n as u32
    }

    /// Marks the queue deleted, cancels its consumers; returns the ready count it had. The
    /// log's files stay until the vhost has written definitions without the queue.
    pub fn delete(&self) -> u32 {
        let mut st = self.state.lock();
        st.deleted = true;
        // Paged-out messages go with their spool file, unread.
        let n = st.ready.clear(false, |_| {}) as u32;
        for c in st.consumers.drain(..) {
            let _ = c.tx.send(Outbound::Cancelled {
                channel: c.channel,
                consumer_tag: c.tag.clone(),
            });
        }
        n
    }

    pub fn message_count(&self) -> u32 {
        self.state.lock().ready.len() as u32
    }

    /// Its consumers, for the management API.
    pub fn consumers(&self) -> Vec<ConsumerSummary> {
        self.state
            .lock()
            .consumers
            .iter()
            .map(|c| ConsumerSummary {
                tag: c.tag.clone(),
                conn_id: c.conn_id,
                channel: c.channel,
                no_ack: c.no_ack,
                exclusive: c.exclusive,
                priority: c.priority,
                prefetch: if c.no_ack { 0 } else { c.credit.limit() },
            })
            .collect()
    }

    /// Ready messages, their body bytes and the consumers, read under one lock.
    pub fn depth(&self) -> QueueDepth {
        let st = self.state.lock();
        QueueDepth {
            ready: st.ready.len() as u64,
            ready_bytes: st.ready.bytes(),
            consumers: st.consumers.len() as u64,
            idle_since: st.last_used,
        }
    }

    pub fn consumer_count(&self) -> u32 {
        self.state.lock().consumers.len() as u32
    }

    pub fn is_deleted(&self) -> bool {
        self.state.lock().deleted
    }

    /// Messages rejected or nacked without requeue: dead-lettered when the queue has a
    /// dead-letter exchange, dropped otherwise.
    pub fn reject(&self, messages: Vec<QueuedMessage>) -> Effects {
        let mut fx = Effects::default();
        self.settled(messages.len());
        fx.dead_letter(Reason::Rejected, messages);
        fx
    }

    /// Expires due messages at the head (for the expiry timer of `generation`); returns when
    /// to look next, or None when the timer ends (nothing left to expire, or a newer timer
    /// took over).
    pub fn expire_due(self: &Arc<Self>, generation: u64) -> (Option<u64>, Effects) {
        let mut fx = Effects::default();
        let now = now_ms();
        let mut st = self.state.lock();
        if st.expiry_timer.map(|t| t.generation) != Some(generation) {
            return (None, fx);
        }
        let expired = st.expire_head(now);
        let next = if st.deleted || st.expiring == 0 {
            None
        } else {
            Some(st.head_check(now))
        };
        st.expiry_timer = next.map(|at| ExpiryTimer { generation, at });
        drop(st);
        fx.dead_letter(Reason::Expired, expired);
        (next, fx)
    }

    /// x-expires: whether the queue has been unused long enough to be deleted, or when to
    /// look again.
    pub fn idle_check(&self) -> IdleCheck {
        let now = now_ms();
        let st = self.state.lock();
        let Some(expires) = st.policy.expires else {
            return IdleCheck::Stop;
        };
        if st.deleted {
            return IdleCheck::Stop;
        }
        let unused = st.consumers.is_empty();
        if unused && now >= st.last_used + expires {
            IdleCheck::Expired
        } else if unused {
            IdleCheck::At(st.last_used + expires)
        } else {
            IdleCheck::At(now + expires)
        }
    }
}

/// One more return of a message to a quorum queue, recorded in its x-delivery-count header.
fn count_delivery(mut m: QueuedMessage) -> QueuedMessage {
    use crate::protocol::{AMQPValue, ShortString};
    m.delivery_count += 1;
    let count = m.delivery_count;
    let original = &m.message;
    let properties = crate::protocol::properties::rewrite(original.properties(), |p| {
        let mut headers = p.headers().clone().unwrap_or_default();
        headers.insert(
            ShortString::from("x-delivery-count"),
            AMQPValue::LongLongInt(count as i64),
        );
        *p = p.clone().with_headers(headers);
    });
    m.message = Message::new(
        original.exchange(),
        original.routing_key_bytes(),
        &properties,
        original.body(),
    );
    m
}

impl QueueState {
    /// A message holding `key` left the queue.
    fn release_key(&mut self, key: &[u8]) {
        if let Some(n) = self.dedup_keys.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                self.dedup_keys.remove(key);
            }
        }
    }

    /// Head-first expiry (RabbitMQ): when the head is due, or in a second if it has no
    /// expiry while messages behind it have one.
    fn head_check(&mut self, now: u64) -> u64 {
        match self.ready.front() {
            Some(m) if m.expires_at != 0 => m.expires_at,
            _ => now + 1000,
        }
    }

    /// Asks for an expiry timer when messages with an expiry wait and no timer will look at
    /// the head in time (none runs, or it sleeps past a head that became due earlier: the
    /// old head was taken, or an earlier one was put in front).
    fn arm_if_needed(&mut self, fx: &mut Effects, now: u64) {
        if self.expiring == 0 {
            return;
        }
        let at = self.head_check(now);
        if self.expiry_timer.is_some_and(|t| t.at <= at) {
            return;
        }
        self.timer_generation += 1;
        let timer = ExpiryTimer {
            generation: self.timer_generation,
            at,
        };
        self.expiry_timer = Some(timer);
        fx.arm_expiry = Some(timer);
    }

    /// x-overflow drop-head (the default): the oldest messages make room, after a publish and
    /// after messages are put back (RabbitMQ keeps the limit across requeues too).
    fn drop_head_over_limits(&mut self) -> Vec<QueuedMessage> {
        let mut dropped = Vec::new();
        if self.policy.overflow != Overflow::DropHead {
            return dropped;
        }
        while self.policy.is_over(self.ready.len(), self.ready.bytes()) {
            match self.ready.pop_oldest() {
                Some(old) => {
                    self.forget_expiry(&old);
                    dropped.push(old);
                }
                None => break,
            }
        }
        dropped
    }

    fn note_expiry(&mut self, m: &QueuedMessage) {
        if m.expires_at != 0 {
            self.expiring += 1;
        }
    }

    fn forget_expiry(&mut self, m: &QueuedMessage) {
        if m.expires_at != 0 {
            self.expiring = self.expiring.saturating_sub(1);
        }
    }

    /// Removes expired messages from the head (RabbitMQ expires head first).
    fn expire_head(&mut self, now: u64) -> Vec<QueuedMessage> {
        let mut out = Vec::new();
        if self.expiring == 0 {
            return out;
        }
        while self
            .ready
            .front()
            .is_some_and(|m| m.expires_at != 0 && m.expires_at <= now)
        {
            if let Some(m) = self.ready.pop_front() {
                self.forget_expiry(&m);
                out.push(m);
            }
        }
        out
    }
}

/// Appends `more` to `to`; both are almost always empty, and then nothing is called.
#[inline]
fn append(to: &mut Vec<QueuedMessage>, more: Vec<QueuedMessage>) {
    if !more.is_empty() {
        to.extend(more);
    }
}

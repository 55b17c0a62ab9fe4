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
//! Dead letters are collected under the lock and routed after it is released, so two queues
//! dead-lettering into each other can never deadlock.

mod dispatch;
mod policy;
mod ready;
mod spool;
mod timers;

pub use policy::{Overflow, QueuePolicy};

use super::consumer::{ConsumerEntry, Outbound};
use super::dead_letter::{dead_letter, Reason};
use super::exchange::Routed;
use super::message::{Message, QueuedMessage};
use super::vhost::VHost;
use crate::error::{AmqpError, AmqpResult};
use crate::protocol::FieldTable;
use crate::store::QueueLog;
use parking_lot::Mutex;
use ready::ReadyList;
use std::sync::{Arc, Weak};

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
    pub policy: QueuePolicy,
    vhost_name: Arc<str>,
    vhost: Weak<VHost>,
    /// The durable log (durable, non-exclusive queues only): persistent messages go there.
    /// Set once, at creation or at the end of recovery.
    log: std::sync::OnceLock<Arc<QueueLog>>,
    state: Mutex<QueueState>,
}

#[derive(Debug)]
struct QueueState {
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
    expiry_timer: bool,
    /// Last time (ms) the queue was used, for x-expires.
    last_used: u64,
}

/// What removing a consumer left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCancel {
    Keep,
    /// An auto-delete queue lost its last consumer: the caller deletes it.
    AutoDelete,
}

/// The result of offering a message to a queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enqueued {
    /// Log position that must be durable before the publish may be confirmed.
    pub position: Option<u64>,
    /// The queue refused it (x-overflow reject-publish): the publisher gets basic.nack.
    pub rejected: bool,
}

/// Milliseconds since the Unix epoch (message expiry times).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Queue {
    pub fn new(
        spec: QueueSpec,
        vhost_name: Arc<str>,
        vhost: Weak<VHost>,
        log: Option<Arc<QueueLog>>,
        spool_path: Option<std::path::PathBuf>,
    ) -> Arc<Queue> {
        let policy = QueuePolicy::from_arguments(&spec.arguments);
        let q = Arc::new(Queue {
            state: Mutex::new(QueueState {
                ready: ReadyList::new(policy.max_priority, spool_path),
                consumers: Vec::new(),
                next_consumer: 0,
                next_seq: log.as_ref().map_or(0, |l| l.next_seq()),
                deleted: false,
                had_consumer: false,
                expiring: 0,
                expiry_timer: false,
                last_used: now_ms(),
            }),
            spec,
            policy,
            vhost_name,
            vhost,
            log: match log {
                Some(l) => std::sync::OnceLock::from(l),
                None => std::sync::OnceLock::new(),
            },
        });
        if q.policy.expires.is_some() {
            timers::start_idle_timer(&q);
        }
        q
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
            st.ready.push_back(m);
        }
    }

    /// Recovery is complete: expiry starts.
    pub fn recovered(self: &Arc<Self>) {
        self.arm_expiry();
    }

    /// Messages that left the queue for good (acked, rejected without requeue, delivered
    /// no-ack, purged): their log records are released.
    pub fn forget<'a>(&self, messages: impl IntoIterator<Item = &'a QueuedMessage>) {
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
    pub fn publish(self: &Arc<Self>, message: Message) -> Enqueued {
        let mut dead = Vec::new();
        let mut out = Enqueued::default();
        let mut st = self.state.lock();
        // The clock is read only when something here can expire.
        let timed =
            self.policy.message_ttl.is_some() || message.expiration().is_some() || st.expiring > 0;
        let now = if timed { now_ms() } else { 0 };
        if st.deleted {
            return out;
        }
        let bytes_with_it = (st.ready.bytes() + message.body().len() as u64).saturating_sub(1);
        if self.policy.overflow != Overflow::DropHead
            && self.policy.is_full(st.ready.len(), bytes_with_it)
        {
            drop(st);
            if self.policy.overflow == Overflow::RejectPublishDlx {
                let m = QueuedMessage::new(0, message, now, &self.policy);
                self.dead_letter(vec![m], Reason::Maxlen);
            }
            out.rejected = true;
            return out;
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
        let m = QueuedMessage::new(seq, message, now, &self.policy);
        st.note_expiry(&m);
        st.ready.push_back(m);
        dead.extend(st.drop_head_over_limits(&self.policy));
        // Dispatch first: a message with TTL 0 still reaches a consumer that is ready for it.
        let mut expired = st.dispatch(self, now);
        append(&mut expired, st.expire_head(now));
        let arm = st.expiring > 0 && !st.expiry_timer;
        drop(st);
        self.dead_letter(dead, Reason::Maxlen);
        self.dead_letter(expired, Reason::Expired);
        if arm {
            self.arm_expiry();
        }
        out
    }

    /// Puts unacked messages back at their original positions, marked redelivered.
    pub fn requeue(self: &Arc<Self>, mut messages: Vec<QueuedMessage>) {
        let now = now_ms();
        let mut over_limit = Vec::new();
        if self.policy.quorum {
            // Quorum queues count returns in x-delivery-count and enforce x-delivery-limit.
            let (keep, over): (Vec<_>, Vec<_>) =
                messages.into_iter().map(count_delivery).partition(|m| {
                    self.policy
                        .delivery_limit
                        .is_none_or(|limit| m.delivery_count as u64 <= limit)
                });
            messages = keep;
            over_limit = over;
        }
        self.dead_letter(over_limit, Reason::DeliveryLimit);
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
        let dropped = st.drop_head_over_limits(&self.policy);
        let mut expired = st.expire_head(now);
        append(&mut expired, st.dispatch(self, now));
        drop(st);
        self.dead_letter(dropped, Reason::Maxlen);
        self.dead_letter(expired, Reason::Expired);
    }

    /// Puts back deliveries that never reached the client (still in its connection's inbox
    /// when the consumer or the connection went away): at their original positions, marked
    /// redelivered as RabbitMQ marks everything it handed to a channel (a consumer may
    /// already have seen later messages, so these would otherwise look out of order), with
    /// their quorum delivery count unchanged.
    pub fn return_unsent(self: &Arc<Self>, mut messages: Vec<QueuedMessage>) {
        let now = now_ms();
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
        let dropped = st.drop_head_over_limits(&self.policy);
        let mut expired = st.expire_head(now);
        append(&mut expired, st.dispatch(self, now));
        drop(st);
        self.dead_letter(dropped, Reason::Maxlen);
        self.dead_letter(expired, Reason::Expired);
    }

    /// Credit came back (ack, qos change, written no-ack delivery): deliver more if possible.
    pub fn dispatch(self: &Arc<Self>) {
        let mut st = self.state.lock();
        let now = if st.expiring > 0 { now_ms() } else { 0 };
        let mut expired = st.expire_head(now);
        append(&mut expired, st.dispatch(self, now));
        drop(st);
        self.dead_letter(expired, Reason::Expired);
    }

    /// Adds a consumer (basic.consume), honouring exclusive consumers (403 in exclusive use).
    pub fn add_consumer(self: &Arc<Self>, consumer: ConsumerEntry) -> AmqpResult<()> {
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
        drop(st);
        self.dead_letter(expired, Reason::Expired);
        Ok(())
    }

    /// Removes a consumer (cancel, channel or connection close).
    pub fn remove_consumer(self: &Arc<Self>, conn_id: u64, channel: u16, tag: &str) -> AfterCancel {
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
        let after =
            if self.spec.auto_delete && st.consumers.is_empty() && st.had_consumer && !st.deleted {
                AfterCancel::AutoDelete
            } else {
                AfterCancel::Keep
            };
        drop(st);
        self.dead_letter(expired, Reason::Expired);
        after
    }

    /// basic.get: the head message and how many remain.
    pub fn get(self: &Arc<Self>) -> Option<(QueuedMessage, u32)> {
        let now = now_ms();
        let mut st = self.state.lock();
        st.last_used = now;
        let expired = st.expire_head(now);
        let m = st.ready.pop_front();
        if let Some(m) = &m {
            st.forget_expiry(m);
        }
        let remaining = st.ready.len() as u32;
        drop(st);
        self.dead_letter(expired, Reason::Expired);
        m.map(|m| (m, remaining))
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
        let n = st.ready.clear(durable, |batch| self.forget(batch.iter()));
        st.expiring = 0;
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

    pub fn consumer_count(&self) -> u32 {
        self.state.lock().consumers.len() as u32
    }

    pub fn is_deleted(&self) -> bool {
        self.state.lock().deleted
    }

    /// Messages rejected or nacked without requeue: dead-lettered when the queue has a
    /// dead-letter exchange, dropped otherwise.
    pub fn reject(self: &Arc<Self>, messages: Vec<QueuedMessage>) {
        self.dead_letter(messages, Reason::Rejected);
    }

    /// Republishes messages to the dead-letter exchange (if any) and releases them here.
    fn dead_letter(self: &Arc<Self>, messages: Vec<QueuedMessage>, reason: Reason) {
        if messages.is_empty() {
            return;
        }
        let (Some(dlx), Some(vhost)) = (&self.policy.dead_letter_exchange, self.vhost.upgrade())
        else {
            self.forget(messages.iter());
            return;
        };
        let now_secs = now_ms() / 1000;
        let mut routed = Routed::default();
        let new_key = self
            .policy
            .dead_letter_routing_key
            .as_deref()
            .map(str::as_bytes);
        for m in &messages {
            let dl = dead_letter(&m.message, self.name(), reason, dlx, new_key, now_secs);
            // Headers exchanges route on the rewritten headers.
            let headers = dl.message.view().headers;
            if vhost
                .route_keys(dlx, &dl.routing_keys, headers, &mut routed)
                .is_err()
            {
                continue; // A missing dead-letter exchange drops the message, as in RabbitMQ.
            }
            for target in routed.queues.drain(..) {
                // A cycle of dead-lettering with no rejection in it drops the message.
                if !dl.any_rejected && dl.earlier_queues.iter().any(|q| q == target.name()) {
                    continue;
                }
                target.publish(dl.message.clone());
            }
        }
        self.forget(messages.iter());
    }

    /// Starts the expiry timer if messages with an expiry are waiting and none runs.
    fn arm_expiry(self: &Arc<Self>) {
        let mut st = self.state.lock();
        if st.expiring > 0 && !st.expiry_timer {
            st.expiry_timer = true;
            drop(st);
            timers::start_expiry_timer(self);
        }
    }

    /// Expires due messages at the head; returns the next head expiry, or None (timer stops).
    fn expire_due(self: &Arc<Self>) -> Option<u64> {
        let now = now_ms();
        let mut st = self.state.lock();
        let expired = st.expire_head(now);
        let next = if st.deleted || st.expiring == 0 {
            None
        } else {
            // Head-first expiry (RabbitMQ): wake when the head is due, or soon if it has none.
            Some(st.ready.front().map_or(now + 1000, |m| {
                if m.expires_at == 0 {
                    now + 1000
                } else {
                    m.expires_at
                }
            }))
        };
        if next.is_none() {
            st.expiry_timer = false;
        }
        drop(st);
        self.dead_letter(expired, Reason::Expired);
        next
    }

    /// x-expires: deletes the queue when it has been unused long enough; returns when to look
    /// again (None: deleted or gone).
    fn expire_if_unused(self: &Arc<Self>) -> Option<u64> {
        let expires = self.policy.expires?;
        let now = now_ms();
        let st = self.state.lock();
        if st.deleted {
            return None;
        }
        let idle_since = st.last_used;
        let unused = st.consumers.is_empty();
        drop(st);
        if unused && now >= idle_since + expires {
            if let Some(vhost) = self.vhost.upgrade() {
                if let Err(e) = vhost.remove_queue(self) {
                    tracing::error!(queue = ?self.spec.name, error = ?e.text, "x-expires could not delete the queue");
                }
            }
            return None;
        }
        Some(if unused {
            idle_since + expires
        } else {
            now + expires
        })
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
    /// x-overflow drop-head (the default): the oldest messages make room, after a publish and
    /// after messages are put back (RabbitMQ keeps the limit across requeues too).
    fn drop_head_over_limits(&mut self, policy: &QueuePolicy) -> Vec<QueuedMessage> {
        let mut dropped = Vec::new();
        if policy.overflow != Overflow::DropHead {
            return dropped;
        }
        while policy.is_over(self.ready.len(), self.ready.bytes()) {
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

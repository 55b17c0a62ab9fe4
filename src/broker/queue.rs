//! A queue: ready messages in order, its consumers, and round-robin dispatch within credit.
//!
//! Concurrency: each queue owns one `parking_lot::Mutex` around its state; publishers, acks and
//! consumers lock it briefly and never across `.await`. We chose this over the actor-per-queue
//! of ARCHITECTURE.md: it saves a task hop and a wake per publish batch on 2 cores, keeps
//! declare/get/purge synchronous, and there is still no global lock on the publish or deliver
//! path (each queue is its own lock; routing tables are read-mostly `RwLock`s).
//! Deliveries leave through each consumer's unbounded sink, bounded by its credit (prefetch or
//! the no-ack window), so nothing here ever waits on a connection (the deadlock rule).

use super::consumer::{ConsumerEntry, Delivery, Outbound};
use super::message::{Message, QueuedMessage};
use crate::error::{AmqpError, AmqpResult};
use crate::protocol::FieldTable;
use crate::store::QueueLog;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;

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
    vhost: Arc<str>,
    /// The durable log (durable, non-exclusive queues only): persistent messages go there.
    log: Option<Arc<QueueLog>>,
    state: Mutex<QueueState>,
}

#[derive(Debug, Default)]
struct QueueState {
    ready: VecDeque<QueuedMessage>,
    consumers: Vec<ConsumerEntry>,
    /// Index of the consumer that gets the next message (round-robin).
    next_consumer: usize,
    next_seq: u64,
    deleted: bool,
    /// Auto-delete applies only to queues that have had a consumer (RabbitMQ semantics).
    had_consumer: bool,
}

/// What removing a consumer left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCancel {
    Keep,
    /// An auto-delete queue lost its last consumer: the caller deletes it.
    AutoDelete,
}

impl Queue {
    pub fn new(spec: QueueSpec, vhost: Arc<str>, log: Option<Arc<QueueLog>>) -> Arc<Queue> {
        Arc::new(Queue {
            spec,
            vhost,
            log,
            state: Mutex::new(QueueState::default()),
        })
    }

    /// The durable log, if this queue has one.
    pub fn log(&self) -> Option<&Arc<QueueLog>> {
        self.log.as_ref()
    }

    /// Puts recovered messages back (start-up only), continuing their numbering.
    pub fn restore(&self, messages: Vec<QueuedMessage>) {
        let mut st = self.state.lock();
        if let Some(last) = messages.last() {
            st.next_seq = st.next_seq.max(last.seq + 1);
        }
        st.ready.extend(messages);
    }

    /// Messages that left the queue for good (acked, rejected without requeue, delivered
    /// no-ack, purged): their log records are released.
    pub fn forget<'a>(&self, messages: impl IntoIterator<Item = &'a QueuedMessage>) {
        if let Some(log) = &self.log {
            log.ack(
                messages
                    .into_iter()
                    .filter(|m| m.message.is_persistent())
                    .map(|m| m.seq),
            );
        }
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
                self.spec.name, self.vhost
            ))),
            _ => Ok(()),
        }
    }

    /// Appends messages and hands them to consumers with credit. Returns the log position that
    /// must be durable before they may be confirmed (None when nothing was written to disk).
    pub fn publish(
        self: &Arc<Self>,
        messages: impl IntoIterator<Item = Arc<Message>>,
    ) -> Option<u64> {
        let mut position = None;
        let mut st = self.state.lock();
        if st.deleted {
            return None;
        }
        for message in messages {
            let seq = st.next_seq;
            st.next_seq += 1;
            if let Some(log) = &self.log {
                if message.is_persistent() {
                    let m = &message;
                    position = Some(log.append(
                        seq,
                        &m.exchange,
                        m.routing_key(),
                        m.properties(),
                        &m.body,
                    ));
                }
            }
            st.ready.push_back(QueuedMessage {
                seq,
                message,
                redelivered: false,
            });
        }
        st.dispatch(self);
        position
    }

    /// Puts unacked messages back at their original positions, marked redelivered.
    pub fn requeue(self: &Arc<Self>, mut messages: Vec<QueuedMessage>) {
        let mut st = self.state.lock();
        if st.deleted || messages.is_empty() {
            return;
        }
        messages.sort_unstable_by_key(|m| m.seq);
        // Walk backwards so each insert is at the front in the common case.
        for mut m in messages.into_iter().rev() {
            m.redelivered = true;
            let at = st.ready.partition_point(|r| r.seq < m.seq);
            st.ready.insert(at, m);
        }
        st.dispatch(self);
    }

    /// Credit came back (ack, qos change, written no-ack delivery): deliver more if possible.
    pub fn dispatch(self: &Arc<Self>) {
        let mut st = self.state.lock();
        st.dispatch(self);
    }

    /// Adds a consumer (basic.consume), honouring exclusive consumers (403 in exclusive use).
    pub fn add_consumer(self: &Arc<Self>, consumer: ConsumerEntry) -> AmqpResult<()> {
        let mut st = self.state.lock();
        if st.deleted {
            return Err(AmqpError::not_found(format!(
                "no queue '{}' in vhost '{}'",
                self.spec.name, self.vhost
            )));
        }
        let exclusive_taken = st.consumers.iter().any(|c| c.exclusive);
        if exclusive_taken || (consumer.exclusive && !st.consumers.is_empty()) {
            return Err(AmqpError::access_refused(format!(
                "queue '{}' in vhost '{}' in exclusive use",
                self.spec.name, self.vhost
            )));
        }
        st.consumers.push(consumer);
        st.had_consumer = true;
        st.dispatch(self);
        Ok(())
    }

    /// Removes a consumer (cancel, channel or connection close).
    pub fn remove_consumer(&self, conn_id: u64, channel: u16, tag: &str) -> AfterCancel {
        let mut st = self.state.lock();
        st.consumers
            .retain(|c| !(c.conn_id == conn_id && c.channel == channel && &*c.tag == tag));
        if st.next_consumer >= st.consumers.len() {
            st.next_consumer = 0;
        }
        if self.spec.auto_delete && st.consumers.is_empty() && st.had_consumer && !st.deleted {
            AfterCancel::AutoDelete
        } else {
            AfterCancel::Keep
        }
    }

    /// basic.get: the head message and how many remain.
    pub fn get(&self) -> Option<(QueuedMessage, u32)> {
        let mut st = self.state.lock();
        let m = st.ready.pop_front()?;
        Some((m, st.ready.len() as u32))
    }

    /// Drops every ready message; returns how many.
    pub fn purge(&self) -> u32 {
        let mut st = self.state.lock();
        let n = st.ready.len() as u32;
        self.forget(st.ready.iter());
        st.ready.clear();
        n
    }

    /// Marks the queue deleted, cancels its consumers; returns the ready count it had.
    pub fn delete(&self) -> u32 {
        let mut st = self.state.lock();
        st.deleted = true;
        if let Some(log) = &self.log {
            log.delete();
        }
        let n = st.ready.len() as u32;
        st.ready.clear();
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
}

impl QueueState {
    /// Round-robin over consumers with credit until messages or credit run out.
    fn dispatch(&mut self, queue: &Arc<Queue>) {
        while !self.ready.is_empty() && !self.consumers.is_empty() {
            let n = self.consumers.len();
            let start = self.next_consumer % n;
            let Some(idx) = (0..n)
                .map(|i| (start + i) % n)
                .find(|&i| self.consumers[i].can_take())
            else {
                return;
            };
            let Some(message) = self.ready.pop_front() else {
                return;
            };
            let c = &self.consumers[idx];
            c.take();
            let sent = c.tx.send(Outbound::Deliver(Delivery {
                channel: c.channel,
                consumer_tag: c.tag.clone(),
                queue: queue.clone(),
                message,
            }));
            if let Err(e) = sent {
                // The connection is gone; its cleanup will remove the consumer. Keep the message.
                if let Outbound::Deliver(d) = e.0 {
                    self.ready.push_front(d.message);
                }
                self.consumers.remove(idx);
                if self.next_consumer > idx {
                    self.next_consumer -= 1;
                }
                continue;
            }
            self.next_consumer = idx + 1;
        }
    }
}

//! One AMQP channel: a plain struct inside its connection task (not a task of its own).
//!
//! It turns commands into broker calls and writes replies into the connection's output buffer.
//! `publish` assembles content and routes it, `acks` keeps the unacked deliveries and applies
//! ack / nack / reject / recover, `methods` handles every other method of the channel.

mod ack_timeout;
mod acks;
mod methods;
mod names;
mod publish;

use super::output::Output;
use crate::broker::access::Grant;
use crate::broker::consumer::{window_units, Credit};
use crate::broker::queue::{Delivery, Outbound, Queue};
use crate::broker::stats::ChannelStats;
use crate::broker::vhost::{ConfirmTicket, Recording, VHost};
use crate::error::AmqpResult;
use crate::protocol::basic;
use crate::protocol::encode::{put_deliver, put_method};
use crate::protocol::methods::MethodId;
use crate::protocol::AMQPClass;
use crate::store::{Durable, DurableAt};
use acks::{QueueRef, Unacked};
use bytes::BytesMut;
use publish::Assembly;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

pub use publish::TxPublish;

/// What a channel needs from its connection while it handles one frame or event.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub vhost: &'a Arc<VHost>,
    /// What the user may do in this vhost (checked per method, RabbitMQ's table).
    pub grant: &'a Grant,
    pub conn_id: u64,
    pub sink: &'a UnboundedSender<Outbound>,
    pub out: &'a mut Output,
    pub frame_max: u32,
    /// Queues whose consumers got credit back and should be offered more messages.
    pub redispatch: &'a mut Vec<Arc<Queue>>,
    /// Default consumer acknowledgement timeout in ms (0: none).
    pub consumer_timeout: u64,
    /// Largest message body accepted (`max_message_size`).
    pub max_message_size: u64,
    /// A reply that waits for a durable change to be recorded; the connection reads nothing
    /// more until it is sent.
    pub held: &'a mut Option<HeldReply>,
}

/// A reply held until the durable change it announces is on disk.
#[derive(Debug)]
pub struct HeldReply {
    pub channel: u16,
    pub recording: Recording,
    /// Nothing for a nowait method: only a failure is sent.
    pub reply: Option<AMQPClass>,
    /// The method answered, named in the close if the write fails.
    pub method: MethodId,
}

/// What the connection does with the channel after a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Continue,
    /// The channel is finished (close handled, or close-ok received): forget it.
    Finished,
}

/// A consumer as its channel sees it.
#[derive(Debug)]
struct ChannelConsumer {
    queue: QueueRef,
    no_ack: bool,
    credit: Arc<Credit>,
    /// Deliveries not yet written (see `ConsumerEntry::window`); unused for no-ack consumers.
    window: Arc<Credit>,
}

/// Publisher-confirm bookkeeping (spec extension: confirm.select).
#[derive(Debug, Default)]
struct Confirms {
    /// Sequence number of the last publish.
    last_seq: u64,
    /// The last sequence number already confirmed on the wire.
    confirmed: u64,
    /// Publishes waiting for the disk: (sequence number, queue log, position in that log), in
    /// order. Confirms go out in order, so everything after the first of these waits too.
    durable: VecDeque<(u64, Arc<dyn Durable>, u64)>,
    /// Publishes a queue refused (x-overflow reject-publish): they get basic.nack.
    nacks: VecDeque<u64>,
}

/// Transaction bookkeeping (tx.select): work deferred until commit.
#[derive(Debug, Default)]
struct Tx {
    /// Persistent messages of the last commit that must reach the disk before commit-ok.
    durable: Vec<DurableAt>,
    /// A tx.commit-ok is owed once `durable` is on disk.
    commit_waiting: bool,
    publishes: Vec<TxPublish>,
    /// Deliveries acked (or rejected) inside the transaction, with whether to requeue them.
    acks: Vec<(Unacked, acks::Outcome)>,
}

/// A channel's state.
#[derive(Debug)]
pub struct Channel {
    pub id: u16,
    /// Message counts and state for the management API (written here only).
    pub stats: Arc<ChannelStats>,
    assembly: Assembly,
    next_delivery_tag: u64,
    unacked: VecDeque<Unacked>,
    consumers: crate::FastMap<Arc<str>, ChannelConsumer>,
    /// basic.qos global=false: prefetch for consumers created from now on.
    consumer_prefetch: u32,
    /// basic.qos global=true: the channel-wide limit.
    channel_credit: Arc<Credit>,
    confirms: Option<Confirms>,
    tx: Option<Tx>,
    /// What the last publish's confirm waits for (reused).
    confirm_ticket: ConfirmTicket,
    /// The last publish's name buffer, reused by the next one.
    spare_target: Option<publish::PublishTarget>,
    /// The routing key of the last publish, as text (see `route`).
    last_routing_key: String,
    /// The exchange this channel last published to: its write permission and counters.
    publishing_to: Option<publish::PublishingTo>,
    /// We sent channel.close and wait for close-ok; everything else is discarded.
    closing: bool,
    /// The direct reply-to pseudo-queue of this channel's reply consumer.
    reply_queue: Option<String>,
    /// The queue this channel declared last: what an empty queue name means (spec, RabbitMQ).
    last_declared_queue: Option<Arc<str>>,
    /// Acks of this batch per queue, added to the queues' counters at the end of the batch.
    pending_ack_counts: Vec<(QueueRef, usize)>,
}

impl Channel {
    pub fn new(id: u16) -> Channel {
        Channel {
            id,
            stats: Arc::default(),
            assembly: Assembly::Idle,
            next_delivery_tag: 1,
            unacked: VecDeque::new(),
            consumers: crate::FastMap::default(),
            consumer_prefetch: 0,
            channel_credit: Arc::new(Credit::with_limit(0)),
            confirms: None,
            tx: None,
            confirm_ticket: ConfirmTicket::default(),
            spare_target: None,
            last_routing_key: String::new(),
            publishing_to: None,
            closing: false,
            reply_queue: None,
            last_declared_queue: None,
            pending_ack_counts: Vec::new(),
        }
    }

    /// A placeholder for a channel we closed, until the client's close-ok.
    pub fn closing(id: u16) -> Channel {
        Channel {
            closing: true,
            ..Channel::new(id)
        }
    }

    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Writes a method reply on this channel.
    fn reply(&self, ctx: &mut Ctx<'_>, method: AMQPClass) {
        put_method(ctx.out, self.id, method);
    }

    /// Writes `reply` (none for nowait) once `recording` is done: at once when nothing
    /// durable changed, else the connection holds it (and everything after it).
    fn reply_when_recorded(
        &self,
        ctx: &mut Ctx<'_>,
        recording: Recording,
        method: MethodId,
        reply: Option<AMQPClass>,
    ) {
        if recording.is_pending() {
            *ctx.held = Some(HeldReply {
                channel: self.id,
                recording,
                reply,
                method,
            });
        } else if let Some(reply) = reply {
            self.reply(ctx, reply);
        }
    }

    /// Hands a queue's deliveries to the client, or gives them back when the consumer is gone.
    pub fn deliver(&mut self, ctx: &mut Ctx<'_>, d: Delivery) -> Result<(), Delivery> {
        let Some(consumer) = self.consumers.get(&d.consumer_tag) else {
            return Err(d);
        };
        let (no_ack, credit, window, queue_ref) = (
            consumer.no_ack,
            consumer.credit.clone(),
            consumer.window.clone(),
            consumer.queue.clone(),
        );
        let Delivery {
            consumer_tag,
            queue,
            first,
            rest,
            ..
        } = d;
        let mut units = 0u32;
        let count = 1 + rest.len() as u64;
        if no_ack {
            self.stats.deliver_no_ack.add(count);
        } else {
            self.stats.deliver.add(count);
        }
        for m in std::iter::once(&first).chain(&rest) {
            if m.redelivered {
                self.stats.redeliver.add(1);
            }
            let tag = self.next_delivery_tag;
            self.next_delivery_tag += 1;
            let msg = &m.message;
            put_deliver(
                ctx.out,
                self.id,
                &consumer_tag,
                tag,
                m.redelivered,
                msg.exchange_bytes(),
                msg.routing_key_bytes(),
            );
            ctx.out.put_message_content(self.id, msg, ctx.frame_max);
            units = units.saturating_add(window_units(msg.size()));
        }
        if no_ack {
            // Delivered for good; the no-ack window reopens once per batch (Ctx::redispatch).
            queue.forget(std::iter::once(&first).chain(&rest));
            credit.give_back(units);
            push_unique(ctx.redispatch, &queue);
            return Ok(());
        }
        // After a restart, these come back flagged redelivered (RabbitMQ tracks delivery in
        // its queue index the same way).
        queue.mark_delivered(std::iter::once(&first).chain(&rest));
        // Written: the deliveries leave the window; wake the queue only if it was full.
        let was_full = !window.has_room();
        window.give_back(units);
        if was_full {
            push_unique(ctx.redispatch, &queue);
        }
        let timeout = queue.consumer_timeout().unwrap_or(ctx.consumer_timeout);
        let deadline = if timeout == 0 {
            0
        } else {
            crate::broker::clock::now_ms() + timeout
        };
        let first_tag = self.next_delivery_tag - 1 - rest.len() as u64;
        for (tag, mut message) in (first_tag..).zip(std::iter::once(first).chain(rest)) {
            message.delivery_recorded = true;
            self.unacked.push_back(Unacked {
                tag,
                queue: queue_ref.clone(),
                message,
                credit: Some(credit.clone()),
                deadline,
            });
        }
        Ok(())
    }

    /// Tells the client its consumer was cancelled by the server (basic.cancel, nowait).
    fn consumer_cancelled_notice(&self, ctx: &mut Ctx<'_>, tag: &Arc<str>) {
        let cancel = basic::Cancel {
            consumer_tag: tag.as_ref().into(),
            nowait: true,
        };
        self.reply(ctx, AMQPClass::Basic(basic::AMQPMethod::Cancel(cancel)));
    }

    /// The queue of a consumer went away (spec extension consumer_cancel_notify).
    pub fn consumer_cancelled(&mut self, ctx: &mut Ctx<'_>, tag: &Arc<str>, notify: bool) {
        if self.consumers.remove(tag).is_some() && notify {
            let cancel = basic::Cancel {
                consumer_tag: tag.as_ref().into(),
                nowait: true,
            };
            self.reply(ctx, AMQPClass::Basic(basic::AMQPMethod::Cancel(cancel)));
        }
    }

    /// Writes one cumulative publisher confirm for everything that is settled: routed, and on
    /// disk when it had to be.
    pub fn flush_confirms(&mut self, out: &mut BytesMut) {
        self.update_gauges();
        self.flush_commit(out);
        let Some(c) = &mut self.confirms else { return };
        while c
            .durable
            .front()
            .is_some_and(|(_, log, position)| log.is_durable(*position))
        {
            c.durable.pop_front();
        }
        let upto = match c.durable.front() {
            Some((seq, _, _)) => seq - 1,
            None => c.last_seq,
        };
        while c.nacks.front().is_some_and(|n| *n <= upto) {
            let Some(n) = c.nacks.pop_front() else { break };
            if n > c.confirmed + 1 {
                self.stats.confirm.add(n - 1 - c.confirmed);
                let multiple = n - 1 - c.confirmed > 1;
                crate::protocol::encode::put_confirm_ack(out, self.id, n - 1, multiple);
            }
            crate::protocol::encode::put_confirm_nack(out, self.id, n, false);
            c.confirmed = n;
        }
        if upto > c.confirmed {
            self.stats.confirm.add(upto - c.confirmed);
            let multiple = upto - c.confirmed > 1;
            crate::protocol::encode::put_confirm_ack(out, self.id, upto, multiple);
            c.confirmed = upto;
        }
    }

    /// The channel's state as the management API shows it, and the queues' ack counts,
    /// once per batch.
    fn update_gauges(&mut self) {
        for (q, n) in self.pending_ack_counts.drain(..) {
            q.acked(n);
        }
        let s = &self.stats;
        s.unacked.set(self.unacked.len() as u64);
        s.consumers.set(self.consumers.len() as u64);
        s.prefetch.set(self.consumer_prefetch as u64);
        s.global_prefetch.set(self.channel_credit.limit() as u64);
        s.confirm_mode.set(self.confirms.is_some() as u64);
        s.transactional.set(self.tx.is_some() as u64);
    }

    /// Sends the owed tx.commit-ok once the committed messages are durable.
    fn flush_commit(&mut self, out: &mut BytesMut) {
        let Some(tx) = &mut self.tx else { return };
        if !tx.commit_waiting {
            return;
        }
        tx.durable
            .retain(|(log, position)| !log.is_durable(*position));
        if tx.durable.is_empty() {
            tx.commit_waiting = false;
            let ok = AMQPClass::Tx(crate::protocol::tx::AMQPMethod::CommitOk(
                crate::protocol::tx::CommitOk {},
            ));
            put_method(out, self.id, ok);
        }
    }

    /// Whether confirms are waiting for the disk.
    pub fn awaits_disk(&self) -> bool {
        self.tx.as_ref().is_some_and(|t| t.commit_waiting)
            || self
                .confirms
                .as_ref()
                .is_some_and(|c| !c.durable.is_empty())
    }

    /// Releases everything the channel holds: unacked messages go back to their queues in
    /// order (redelivered), consumers are removed, auto-delete queues that lost their last
    /// consumer are deleted.
    pub fn release(&mut self, vhost: &VHost, conn_id: u64) {
        self.update_gauges();
        for (tag, c) in self.consumers.drain() {
            let fx = c.queue.remove_consumer(conn_id, self.id, &tag);
            vhost.carry_out(&c.queue, fx);
        }
        let mut pending: Vec<Unacked> = self.unacked.drain(..).collect();
        if let Some(tx) = self.tx.take() {
            pending.extend(tx.acks.into_iter().map(|(u, _)| u));
        }
        acks::requeue_all(vhost, pending);
    }
}

fn push_unique(list: &mut Vec<Arc<Queue>>, q: &Arc<Queue>) {
    if !list.iter().any(|x| Arc::ptr_eq(x, q)) {
        list.push(q.clone());
    }
}

/// Result of handling a frame on a channel.
pub type ChannelResult = AmqpResult<Signal>;

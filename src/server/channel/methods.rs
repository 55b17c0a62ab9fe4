//! Every channel method off the hot path: one flat match, one function per method.

use super::{Channel, ChannelConsumer, ChannelResult, Confirms, Ctx, Signal, Tx};
use crate::broker::access::{Kind, Resource};
use crate::broker::consumer::{Credit, NO_ACK_WINDOW};
use crate::broker::message::QueuedMessage;
use crate::broker::queue::ConsumerEntry;
use crate::broker::vhost::{generate_name, ExchangeDeclare, QueueDeclare, REPLY_TO};
use crate::error::{AmqpError, AmqpResult};
use crate::protocol::encode::{put_content, put_get_ok};
use crate::protocol::methods::{
    EXCHANGE_BIND, EXCHANGE_DECLARE, EXCHANGE_DELETE, EXCHANGE_UNBIND, QUEUE_BIND, QUEUE_DECLARE,
    QUEUE_DELETE, QUEUE_UNBIND,
};
use crate::protocol::AMQPClass;
use crate::protocol::{basic, channel, confirm, exchange, queue, tx};
use std::sync::Arc;

impl Channel {
    /// A queue name from a method: an empty one means the queue this channel declared last
    /// (spec 1.7.2.3; RabbitMQ answers 404 when there is none).
    fn queue_name<'a>(&self, name: &'a str) -> AmqpResult<std::borrow::Cow<'a, str>> {
        if !name.is_empty() {
            return Ok(std::borrow::Cow::Borrowed(name));
        }
        match &self.last_declared_queue {
            Some(q) => Ok(std::borrow::Cow::Owned(q.to_string())),
            None => Err(AmqpError::not_found("no previously declared queue")),
        }
    }

    /// RabbitMQ's checks for queue.bind / unbind and exchange.bind / unbind: write on the
    /// destination, read on the source, then a topic exchange's read pattern on the key.
    /// The default exchange is refused between the two, as RabbitMQ orders them.
    fn check_binding(
        &self,
        ctx: &Ctx<'_>,
        destination_kind: Resource,
        destination: &str,
        source: &str,
        key: &str,
    ) -> AmqpResult<()> {
        ctx.grant
            .check(Kind::Write, destination_kind, destination)?;
        if source.is_empty() || (destination_kind == Resource::Exchange && destination.is_empty()) {
            return Err(AmqpError::access_refused(
                "operation not permitted on the default exchange",
            ));
        }
        ctx.grant.check(Kind::Read, Resource::Exchange, source)?;
        if ctx.grant.topic_checks_possible() {
            if let Ok(x) = ctx.vhost.exchange(source) {
                if x.spec.kind == crate::broker::exchange::ExchangeKind::Topic {
                    ctx.grant.check_topic(Kind::Read, source, key)?;
                }
            }
        }
        Ok(())
    }

    /// Handles a method (other than the hot-path ones) on an open channel.
    pub fn handle_method(&mut self, ctx: &mut Ctx<'_>, method: AMQPClass) -> ChannelResult {
        let ids = (method.get_amqp_class_id(), method.get_amqp_method_id());
        self.dispatch_method(ctx, super::names::strip_cr_lf(method))
            .map_err(|e| e.with_method(ids))
    }

    fn dispatch_method(&mut self, ctx: &mut Ctx<'_>, method: AMQPClass) -> ChannelResult {
        use AMQPClass as C;
        match method {
            C::Channel(channel::AMQPMethod::Close(_)) => {
                self.release(ctx.vhost, ctx.conn_id);
                self.reply(
                    ctx,
                    C::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
                );
                return Ok(Signal::Finished);
            }
            C::Channel(channel::AMQPMethod::CloseOk(_)) => return Ok(Signal::Finished),
            C::Channel(channel::AMQPMethod::Open(_)) => {
                return Err(AmqpError::channel_error("second 'channel.open' seen"));
            }
            C::Channel(channel::AMQPMethod::Flow(m)) => self.flow(ctx, m)?,
            C::Exchange(exchange::AMQPMethod::Declare(m)) => self.exchange_declare(ctx, m)?,
            C::Exchange(exchange::AMQPMethod::Delete(m)) => self.exchange_delete(ctx, m)?,
            C::Exchange(exchange::AMQPMethod::Bind(m)) => {
                let (d, s, k) = (
                    m.destination.as_str(),
                    m.source.as_str(),
                    m.routing_key.as_str(),
                );
                self.check_binding(ctx, Resource::Exchange, d, s, k)?;
                let recording = ctx.vhost.bind_exchange(d, s, k, &m.arguments)?;
                let ok = C::Exchange(exchange::AMQPMethod::BindOk(exchange::BindOk {}));
                self.reply_when_recorded(ctx, recording, EXCHANGE_BIND, (!m.nowait).then_some(ok));
            }
            C::Exchange(exchange::AMQPMethod::Unbind(m)) => {
                let (d, s, k) = (
                    m.destination.as_str(),
                    m.source.as_str(),
                    m.routing_key.as_str(),
                );
                self.check_binding(ctx, Resource::Exchange, d, s, k)?;
                let recording = ctx.vhost.unbind_exchange(d, s, k, &m.arguments)?;
                let ok = C::Exchange(exchange::AMQPMethod::UnbindOk(exchange::UnbindOk {}));
                self.reply_when_recorded(
                    ctx,
                    recording,
                    EXCHANGE_UNBIND,
                    (!m.nowait).then_some(ok),
                );
            }
            C::Queue(queue::AMQPMethod::Declare(m)) => self.queue_declare(ctx, m)?,
            C::Queue(queue::AMQPMethod::Bind(m)) => self.queue_bind(ctx, m)?,
            C::Queue(queue::AMQPMethod::Unbind(m)) => self.queue_unbind(ctx, m)?,
            C::Queue(queue::AMQPMethod::Purge(m)) => self.queue_purge(ctx, m)?,
            C::Queue(queue::AMQPMethod::Delete(m)) => self.queue_delete(ctx, m)?,
            C::Basic(basic::AMQPMethod::Qos(m)) => self.qos(ctx, m)?,
            C::Basic(basic::AMQPMethod::Consume(m)) => self.consume(ctx, m)?,
            C::Basic(basic::AMQPMethod::Cancel(m)) => self.cancel(ctx, m),
            C::Basic(basic::AMQPMethod::Get(m)) => self.get(ctx, m)?,
            C::Basic(basic::AMQPMethod::Recover(m)) => {
                self.recover_requeue(ctx, m.requeue)?;
                self.reply(
                    ctx,
                    C::Basic(basic::AMQPMethod::RecoverOk(basic::RecoverOk {})),
                );
            }
            C::Basic(basic::AMQPMethod::RecoverAsync(m)) => self.recover_requeue(ctx, m.requeue)?,
            C::Confirm(confirm::AMQPMethod::Select(m)) => self.confirm_select(ctx, m)?,
            C::Tx(tx::AMQPMethod::Select(_)) => self.tx_select(ctx)?,
            C::Tx(tx::AMQPMethod::Commit(_)) => self.tx_commit(ctx)?,
            C::Tx(tx::AMQPMethod::Rollback(_)) => self.tx_rollback(ctx)?,
            // Methods only a server sends, or connection methods on a channel (RabbitMQ: 503).
            _ => return Err(AmqpError::command_invalid("unimplemented method")),
        }
        Ok(Signal::Continue)
    }

    fn flow(&mut self, ctx: &mut Ctx<'_>, m: channel::Flow) -> AmqpResult<()> {
        if !m.active {
            // RabbitMQ does not implement client-initiated flow control either.
            return Err(AmqpError::not_implemented("active=false"));
        }
        self.reply(
            ctx,
            AMQPClass::Channel(channel::AMQPMethod::FlowOk(channel::FlowOk {
                active: true,
            })),
        );
        Ok(())
    }

    fn exchange_declare(&mut self, ctx: &mut Ctx<'_>, m: exchange::Declare) -> AmqpResult<()> {
        let name = m.exchange.as_str();
        if !m.passive && !name.is_empty() {
            ctx.grant.check(Kind::Configure, Resource::Exchange, name)?;
            // A new exchange with an alternate exchange: read on it, write on the AE.
            if let Some(ae) = text_argument(&m.arguments, "alternate-exchange") {
                if ctx.vhost.exchange(name).is_err() && !name.starts_with("amq.") {
                    ctx.grant.check(Kind::Read, Resource::Exchange, name)?;
                    ctx.grant.check(Kind::Write, Resource::Exchange, &ae)?;
                }
            }
        }
        let policy_alternate = ctx
            .grant
            .access()
            .exchange_policy_alternate(&ctx.vhost.name, name);
        let recording = ctx.vhost.declare_exchange(&ExchangeDeclare {
            name: m.exchange.as_str(),
            policy_alternate: policy_alternate.as_deref(),
            kind: m.kind.as_str(),
            passive: m.passive,
            durable: m.durable,
            auto_delete: m.auto_delete,
            internal: m.internal,
            arguments: &m.arguments,
        })?;
        let ok = AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(exchange::DeclareOk {}));
        self.reply_when_recorded(ctx, recording, EXCHANGE_DECLARE, (!m.nowait).then_some(ok));
        Ok(())
    }

    fn exchange_delete(&mut self, ctx: &mut Ctx<'_>, m: exchange::Delete) -> AmqpResult<()> {
        let name = m.exchange.as_str();
        // The default and amq.* exchanges are refused first (RabbitMQ's order).
        if !name.is_empty() && !name.starts_with("amq.") {
            ctx.grant.check(Kind::Configure, Resource::Exchange, name)?;
        }
        let recording = ctx
            .vhost
            .delete_exchange(m.exchange.as_str(), m.if_unused)?;
        let ok = AMQPClass::Exchange(exchange::AMQPMethod::DeleteOk(exchange::DeleteOk {}));
        self.reply_when_recorded(ctx, recording, EXCHANGE_DELETE, (!m.nowait).then_some(ok));
        Ok(())
    }

    fn queue_declare(&mut self, ctx: &mut Ctx<'_>, m: queue::Declare) -> AmqpResult<()> {
        if m.passive && m.queue.as_str().starts_with(REPLY_TO) {
            // RabbitMQ answers this probe, which clients (Spring's RabbitTemplate) use to detect
            // direct reply-to support, with one consumer; and a generated reply-to name while
            // its consumer is there (a requester checking that its replier is still alive).
            let name = m.queue.as_str();
            if name != REPLY_TO && !ctx.vhost.has_reply_queue(name) {
                return Err(AmqpError::not_found(format!(
                    "no queue '{name}' in vhost '{}'",
                    ctx.vhost.name
                )));
            }
            let ok = queue::DeclareOk {
                queue: m.queue,
                message_count: 0,
                consumer_count: 1,
            };
            self.reply(ctx, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok)));
            return Ok(());
        }
        // A server-named queue's name is chosen first: permissions are checked on it.
        let server_named = m.queue.as_str().is_empty() && !m.passive;
        let name = if server_named {
            std::borrow::Cow::Owned(generate_name("amq.gen-"))
        } else {
            std::borrow::Cow::Borrowed(m.queue.as_str())
        };
        if !m.passive && (server_named || !name.starts_with("amq.")) {
            ctx.grant.check(Kind::Configure, Resource::Queue, &name)?;
            // A new queue with a dead-letter exchange: read on the queue, write on the DLX.
            if let Some(dlx) = text_argument(&m.arguments, "x-dead-letter-exchange") {
                if ctx.vhost.queue(&name, ctx.conn_id).is_err() {
                    ctx.grant.check(Kind::Read, Resource::Queue, &name)?;
                    ctx.grant.check(Kind::Write, Resource::Exchange, &dlx)?;
                }
            }
        }
        let policy = ctx.grant.access().queue_policy(
            &ctx.vhost.name,
            &name,
            crate::broker::access::policies::is_quorum(&m.arguments),
        );
        let declared = ctx.vhost.declare_queue(
            &QueueDeclare {
                name: &name,
                server_named,
                max_queues: ctx.grant.access().vhost_limits(&ctx.vhost.name).max_queues,
                policy: policy.as_ref(),
                passive: m.passive,
                durable: m.durable,
                exclusive: m.exclusive,
                auto_delete: m.auto_delete,
                arguments: &m.arguments,
            },
            ctx.conn_id,
        )?;
        let q = &declared.queue;
        self.last_declared_queue = Some(q.spec.name.clone());
        let ok = queue::DeclareOk {
            queue: q.name().into(),
            message_count: declared.messages,
            consumer_count: declared.consumers,
        };
        let ok = AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok));
        self.reply_when_recorded(
            ctx,
            declared.recording,
            QUEUE_DECLARE,
            (!m.nowait).then_some(ok),
        );
        Ok(())
    }

    fn queue_bind(&mut self, ctx: &mut Ctx<'_>, m: queue::Bind) -> AmqpResult<()> {
        let queue = self.queue_name(m.queue.as_str())?;
        // RabbitMQ: with the queue name empty too, an empty routing key is the queue's name.
        let key = match (m.queue.as_str(), m.routing_key.as_str()) {
            ("", "") => &*queue,
            (_, key) => key,
        };
        self.check_binding(ctx, Resource::Queue, &queue, m.exchange.as_str(), key)?;
        let recording =
            ctx.vhost
                .bind_queue(&queue, m.exchange.as_str(), key, &m.arguments, ctx.conn_id)?;
        let ok = AMQPClass::Queue(queue::AMQPMethod::BindOk(queue::BindOk {}));
        self.reply_when_recorded(ctx, recording, QUEUE_BIND, (!m.nowait).then_some(ok));
        Ok(())
    }

    fn queue_unbind(&mut self, ctx: &mut Ctx<'_>, m: queue::Unbind) -> AmqpResult<()> {
        let queue = self.queue_name(m.queue.as_str())?;
        let key = m.routing_key.as_str();
        self.check_binding(ctx, Resource::Queue, &queue, m.exchange.as_str(), key)?;
        let recording = ctx.vhost.unbind_queue(
            &queue,
            m.exchange.as_str(),
            m.routing_key.as_str(),
            &m.arguments,
            ctx.conn_id,
        )?;
        let ok = AMQPClass::Queue(queue::AMQPMethod::UnbindOk(queue::UnbindOk {}));
        self.reply_when_recorded(ctx, recording, QUEUE_UNBIND, Some(ok));
        Ok(())
    }

    fn queue_purge(&mut self, ctx: &mut Ctx<'_>, m: queue::Purge) -> AmqpResult<()> {
        let queue = self.queue_name(m.queue.as_str())?;
        ctx.grant.check(Kind::Read, Resource::Queue, &queue)?;
        let message_count = ctx.vhost.purge_queue(&queue, ctx.conn_id)?;
        if !m.nowait {
            self.reply(
                ctx,
                AMQPClass::Queue(queue::AMQPMethod::PurgeOk(queue::PurgeOk { message_count })),
            );
        }
        Ok(())
    }

    fn queue_delete(&mut self, ctx: &mut Ctx<'_>, m: queue::Delete) -> AmqpResult<()> {
        let queue = self.queue_name(m.queue.as_str())?;
        ctx.grant.check(Kind::Configure, Resource::Queue, &queue)?;
        let (message_count, recording) =
            ctx.vhost
                .delete_queue(&queue, m.if_unused, m.if_empty, ctx.conn_id)?;
        let ok = AMQPClass::Queue(queue::AMQPMethod::DeleteOk(queue::DeleteOk {
            message_count,
        }));
        self.reply_when_recorded(ctx, recording, QUEUE_DELETE, (!m.nowait).then_some(ok));
        Ok(())
    }

    fn qos(&mut self, ctx: &mut Ctx<'_>, m: basic::Qos) -> AmqpResult<()> {
        // amq-protocol drops prefetch_size; RabbitMQ refuses non-zero values (540), and the
        // connection checks that on the raw frame before we get here.
        if m.global {
            self.channel_credit.set_limit(m.prefetch_count as u32);
            for c in self.consumers.values() {
                super::push_unique(ctx.redispatch, &c.queue);
            }
        } else {
            self.consumer_prefetch = m.prefetch_count as u32;
        }
        self.reply(
            ctx,
            AMQPClass::Basic(basic::AMQPMethod::QosOk(basic::QosOk {})),
        );
        Ok(())
    }

    fn consume(&mut self, ctx: &mut Ctx<'_>, m: basic::Consume) -> AmqpResult<()> {
        let q = if m.queue.as_str() == REPLY_TO {
            // Direct reply-to: RabbitMQ requires no-ack, and one reply consumer per channel.
            if !m.no_ack {
                return Err(AmqpError::precondition_failed(
                    "reply consumer cannot acknowledge",
                ));
            }
            if self.reply_queue.is_some() {
                return Err(AmqpError::precondition_failed("reply consumer already set"));
            }
            let q = ctx.vhost.create_reply_queue(ctx.conn_id);
            self.reply_queue = Some(q.name().into());
            q
        } else {
            let name = self.queue_name(m.queue.as_str())?;
            ctx.grant.check(Kind::Read, Resource::Queue, &name)?;
            ctx.vhost.queue(&name, ctx.conn_id)?
        };
        let tag: Arc<str> = if m.consumer_tag.as_str().is_empty() {
            generate_name("amq.ctag-").into()
        } else {
            m.consumer_tag.as_str().into()
        };
        if self.consumers.contains_key(&tag) {
            return Err(AmqpError::not_allowed(format!(
                "attempt to reuse consumer tag '{tag}'"
            )));
        }
        if let Some(p) = m.arguments.inner().get("x-priority") {
            if crate::protocol::table::as_int(p).is_none() {
                return Err(AmqpError::precondition_failed(format!(
                    "invalid arg 'x-priority' for queue '{}' in vhost '{}': \"expected integer, got {}\"",
                    q.name(),
                    ctx.vhost.name,
                    crate::protocol::table::type_name(p)
                )));
            }
        }
        let window = Arc::new(Credit::with_limit(NO_ACK_WINDOW));
        let credit = Arc::new(Credit::with_limit(if m.no_ack {
            NO_ACK_WINDOW
        } else {
            self.consumer_prefetch
        }));
        let entry = ConsumerEntry {
            tag: tag.clone(),
            conn_id: ctx.conn_id,
            channel: self.id,
            tx: ctx.sink.clone(),
            no_ack: m.no_ack,
            exclusive: m.exclusive,
            window: if m.no_ack {
                credit.clone()
            } else {
                window.clone()
            },
            credit: credit.clone(),
            channel_credit: self.channel_credit.clone(),
            priority: m
                .arguments
                .inner()
                .get("x-priority")
                .and_then(crate::protocol::table::as_int)
                .map_or(0, |p| p as i64),
        };
        // consume-ok goes out before any delivery: deliveries arrive through the connection's
        // inbox, which is read only after this reply is in the output buffer.
        q.check_access(ctx.conn_id)?;
        self.consumers.insert(
            tag.clone(),
            ChannelConsumer {
                queue: Arc::new(q.clone()),
                no_ack: m.no_ack,
                credit,
                window,
            },
        );
        match q.add_consumer(entry) {
            Ok(fx) => ctx.vhost.carry_out(&q, fx),
            Err(e) => {
                self.consumers.remove(&tag);
                return Err(e);
            }
        }
        if !m.nowait {
            let ok = basic::ConsumeOk {
                consumer_tag: tag.as_ref().into(),
            };
            self.reply(ctx, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(ok)));
        }
        Ok(())
    }

    fn cancel(&mut self, ctx: &mut Ctx<'_>, m: basic::Cancel) {
        let tag = m.consumer_tag.as_str();
        if let Some(c) = self.consumers.remove(tag) {
            let fx = c.queue.remove_consumer(ctx.conn_id, self.id, tag);
            ctx.vhost.carry_out(&c.queue, fx);
            if self.reply_queue.as_deref() == Some(c.queue.name()) {
                self.reply_queue = None;
            }
        }
        if !m.nowait {
            let ok = basic::CancelOk {
                consumer_tag: m.consumer_tag,
            };
            self.reply(ctx, AMQPClass::Basic(basic::AMQPMethod::CancelOk(ok)));
        }
    }

    fn get(&mut self, ctx: &mut Ctx<'_>, m: basic::Get) -> AmqpResult<()> {
        let name = self.queue_name(m.queue.as_str())?;
        ctx.grant.check(Kind::Read, Resource::Queue, &name)?;
        let q = ctx.vhost.queue(&name, ctx.conn_id)?;
        let (got, fx) = q.get(m.no_ack);
        ctx.vhost.carry_out(&q, fx);
        match &got {
            None => self.stats.get_empty.add(1),
            Some(_) if m.no_ack => self.stats.get_no_ack.add(1),
            Some(_) => self.stats.get.add(1),
        }
        if got.as_ref().is_some_and(|(qm, _)| qm.redelivered) {
            self.stats.redeliver.add(1);
        }
        let Some((qm, remaining)) = got else {
            self.reply(
                ctx,
                AMQPClass::Basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {})),
            );
            return Ok(());
        };
        let tag = self.next_delivery_tag;
        self.next_delivery_tag += 1;
        let msg = &qm.message;
        put_get_ok(
            ctx.out,
            self.id,
            tag,
            qm.redelivered,
            msg.exchange_bytes(),
            msg.routing_key_bytes(),
            remaining,
        );
        if q.quorum && qm.delivery_count == 0 {
            // RabbitMQ 3.10 marks every basic.get from a quorum queue, the first one with 0.
            let marked = crate::protocol::properties::rewrite(msg.properties(), |p| {
                let mut h = p.headers().clone().unwrap_or_default();
                h.insert(
                    "x-delivery-count".into(),
                    crate::protocol::AMQPValue::LongLongInt(0),
                );
                *p = p.clone().with_headers(h);
            });
            put_content(ctx.out, self.id, &marked, msg.body(), ctx.frame_max);
        } else {
            put_content(
                ctx.out,
                self.id,
                msg.properties(),
                msg.body(),
                ctx.frame_max,
            );
        }
        if m.no_ack {
            q.forget(std::iter::once(&qm));
        } else {
            q.mark_delivered(std::iter::once(&qm));
            self.unacked.push_back(super::acks::Unacked {
                tag,
                queue: Arc::new(q),
                message: QueuedMessage {
                    delivery_recorded: true,
                    ..qm
                },
                credit: None,
                deadline: 0,
            });
        }
        Ok(())
    }

    fn recover_requeue(&mut self, ctx: &mut Ctx<'_>, requeue: bool) -> AmqpResult<()> {
        if !requeue {
            return Err(AmqpError::not_implemented("requeue=false"));
        }
        self.recover(ctx);
        Ok(())
    }

    fn confirm_select(&mut self, ctx: &mut Ctx<'_>, m: confirm::Select) -> AmqpResult<()> {
        if self.tx.is_some() {
            return Err(AmqpError::precondition_failed(
                "cannot switch from tx to confirm mode",
            ));
        }
        if self.confirms.is_none() {
            self.confirms = Some(Confirms::default());
        }
        if !m.nowait {
            self.reply(
                ctx,
                AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})),
            );
        }
        Ok(())
    }

    fn tx_select(&mut self, ctx: &mut Ctx<'_>) -> AmqpResult<()> {
        if self.confirms.is_some() {
            return Err(AmqpError::precondition_failed(
                "cannot switch from confirm to tx mode",
            ));
        }
        if self.tx.is_none() {
            self.tx = Some(Tx::default());
        }
        self.reply(
            ctx,
            AMQPClass::Tx(tx::AMQPMethod::SelectOk(tx::SelectOk {})),
        );
        Ok(())
    }

    fn tx_commit(&mut self, ctx: &mut Ctx<'_>) -> AmqpResult<()> {
        let Some(pending) = self.tx.replace(Tx::default()) else {
            return Err(AmqpError::precondition_failed(
                "channel is not transactional",
            ));
        };
        self.commit(ctx, pending)?;
        // commit-ok goes out once the committed persistent messages are on disk
        // (flush_confirms), like a publisher confirm.
        if let Some(tx) = &mut self.tx {
            tx.commit_waiting = true;
        }
        self.flush_commit(ctx.out);
        Ok(())
    }

    fn tx_rollback(&mut self, ctx: &mut Ctx<'_>) -> AmqpResult<()> {
        let Some(pending) = self.tx.replace(Tx::default()) else {
            return Err(AmqpError::precondition_failed(
                "channel is not transactional",
            ));
        };
        self.rollback(pending);
        self.reply(
            ctx,
            AMQPClass::Tx(tx::AMQPMethod::RollbackOk(tx::RollbackOk {})),
        );
        Ok(())
    }
}

/// A text argument (long or short string), as RabbitMQ reads exchange names from arguments.
fn text_argument(arguments: &crate::protocol::FieldTable, key: &str) -> Option<String> {
    match arguments.inner().get(key)? {
        crate::protocol::AMQPValue::LongString(s) => {
            Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
        }
        crate::protocol::AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

//! The publish rules, in one entry (`VHost::publish`): the property checks RabbitMQ makes
//! (delivery mode, expiration, user-id), direct reply-to, the delayed-message exchange,
//! CC/BCC, routing (alternate exchanges, exchange-to-exchange bindings) and enqueueing with
//! what each queue's limits decide. The server only translates frames to and from it; this
//! is where permission checks will go.

use super::{VHost, REPLY_TO};
use crate::broker::access::{Grant, Kind};
use crate::broker::exchange::Routed;
use crate::broker::exchange::{Exchange, ExchangeKind};
use crate::broker::message::Message;
use crate::error::{AmqpError, AmqpResult};
use crate::protocol::properties::{self, PropertiesView};
use crate::protocol::table::{as_bytes, as_int, parse_checked_table, type_name};
use crate::protocol::AMQPValue;
use crate::store::{Durable, DurableAt};
use std::sync::Arc;

/// One message as its publisher sent it.
#[derive(Debug, Clone, Copy)]
pub struct Publish<'a> {
    pub exchange: &'a str,
    /// As sent (not necessarily UTF-8; routed as text with U+FFFD for the bad bytes, which
    /// only wildcards can match, and delivered as sent).
    pub routing_key: &'a [u8],
    /// The routing key as text, when the publisher has already checked it is UTF-8 (None:
    /// checked here).
    pub routing_key_text: Option<&'a str>,
    /// Raw basic properties (already validated by the codec).
    pub properties: &'a [u8],
    pub body: &'a [u8],
    /// The publisher's rights: its user for the user-id check, topic permissions.
    pub grant: &'a Grant,
    /// The publishing channel's direct reply-to pseudo-queue, when it consumes from
    /// `amq.rabbitmq.reply-to`.
    pub reply_queue: Option<&'a str>,
    /// The exchange named `exchange`, if the publisher kept it from an earlier publish: used
    /// unless it has left the vhost since, which saves the lookup.
    pub kept: Option<&'a Arc<Exchange>>,
}

/// What a publish leaves for the publisher's confirm: the log positions that must be on
/// disk before it may be acked. Reused from one publish to the next (no allocation per
/// message once it has grown).
#[derive(Debug, Default)]
pub struct ConfirmTicket {
    pub durable: Vec<DurableAt>,
    routed: Routed,
    /// What `routed.queues` is the routing of, while it is kept for the next publish:
    /// publishers mostly repeat one exchange and key, and then neither the routing nor a
    /// queue handle's reference count is touched again until the bindings change.
    remembered: Option<Remembered>,
}

/// A routing result kept: the exchange, its bindings' generation and the routing key.
#[derive(Debug)]
struct Remembered {
    exchange: Arc<Exchange>,
    generation: u64,
    key: String,
}

impl ConfirmTicket {
    /// Whether `routed.queues` is where `key` goes through `x` at `generation`.
    #[inline]
    fn remembers(&self, x: &Arc<Exchange>, generation: u64, key: &str) -> bool {
        self.remembered.as_ref().is_some_and(|r| {
            Arc::ptr_eq(&r.exchange, x)
                && r.generation == generation
                && (x.spec.kind == ExchangeKind::Fanout || r.key == key)
        })
    }

    /// Routes `key` through the exchange the publisher kept, reusing the last result when it
    /// is still valid (same exchange and key, bindings unchanged) and keeping this one when it
    /// can be: queues only from `x`'s own bindings.
    #[inline]
    fn route_kept(
        &mut self,
        vhost: &VHost,
        p: &Publish<'_>,
        x: &Arc<Exchange>,
        key: &str,
        headers: Option<&[u8]>,
    ) -> AmqpResult<()> {
        let generation = x.generation();
        if self.remembers(x, generation, key) {
            return Ok(());
        }
        // The key's buffer is reused: a publisher that changes its key at every message
        // allocates nothing more for this.
        let mut kept_key = self.remembered.take().map(|r| r.key).unwrap_or_default();
        // The headers still matter to an alternate or exchange-bound exchange on the way.
        vhost.route_via(p.exchange, Some(x), &[key], headers, &mut self.routed)?;
        let r = &self.routed;
        if !r.through_others && !r.duplicate && !r.queues.is_empty() && r.admitted.is_empty() {
            kept_key.clear();
            kept_key.push_str(key);
            self.remembered = Some(Remembered {
                exchange: x.clone(),
                generation,
                key: kept_key,
            });
        }
        Ok(())
    }
}

/// What became of a published message.
#[derive(Debug, PartialEq, Eq)]
pub enum Published {
    /// It reached at least one queue; `rejected` when a queue refused it (x-overflow
    /// reject-publish): the publisher's confirm is then a nack.
    /// `queues`: how many it reached (an exchange's publish_out counts each).
    Enqueued { rejected: bool, queues: u32 },
    /// No queue took it. A mandatory publish comes back with basic.return and these
    /// properties (as they would have been delivered: reply-to rewritten, BCC removed).
    Unroutable { properties: Option<Vec<u8>> },
    /// The delayed-message exchange holds it until its x-delay has passed.
    Delayed,
}

impl VHost {
    /// Publishes one message. Errors are RabbitMQ's channel errors for basic.publish (the
    /// caller adds the method): 404 for a missing exchange, 403 for an internal one, 406 for
    /// properties RabbitMQ refuses.
    #[inline]
    pub fn publish(&self, p: &Publish<'_>, ticket: &mut ConfirmTicket) -> AmqpResult<Published> {
        ticket.durable.clear();
        if p.grant.topic_checks_possible() {
            self.check_topic_write(p)?;
        }
        let view = properties::view(p.properties).unwrap_or_default();
        check_properties(&view, p.grant)?;
        if view.reply_to == Some(REPLY_TO) {
            // Direct reply-to: the reply address becomes the channel's pseudo-queue.
            let Some(reply_queue) = p.reply_queue else {
                return Err(AmqpError::precondition_failed(
                    "fast reply consumer does not exist",
                ));
            };
            let rewritten = properties::rewrite(p.properties, |props| {
                *props = props.clone().with_reply_to(reply_queue.into())
            });
            let with_address = Publish {
                properties: &rewritten,
                reply_queue: None,
                ..*p
            };
            let published = self.publish(&with_address, ticket)?;
            return Ok(match published {
                Published::Unroutable { properties: None } => Published::Unroutable {
                    properties: Some(rewritten),
                },
                other => other,
            });
        }
        let headers = view.headers;
        if let Some(delay) = headers.and_then(delay_of) {
            if self.is_delayed(p.exchange) {
                let message = Message::new(p.exchange, p.routing_key, p.properties, p.body);
                if let Some((log, position)) = self.hold_delayed(message, delay) {
                    let log: Arc<dyn Durable> = log;
                    ticket.durable.push((log, position));
                }
                return Ok(Published::Delayed);
            }
        }
        let key = match p.routing_key_text {
            Some(text) => std::borrow::Cow::Borrowed(text),
            None => crate::utf8_lossy(p.routing_key),
        };
        // CC and BCC headers (RabbitMQ extension): more routing keys for the same exchange;
        // BCC never reaches the consumers.
        let extra = match headers.map(sender_selected_keys).transpose() {
            Ok(extra) => extra.flatten(),
            Err(e) => {
                ticket.remembered = None;
                // A missing exchange is reported first, as RabbitMQ does.
                self.route(p.exchange, &key, None, &mut ticket.routed)?;
                ticket.routed.queues.clear();
                ticket.routed.withdraw_keys();
                return Err(e);
            }
        };
        let Some(mut extra) = extra else {
            match p.kept {
                // Removed: looked up again by name. Internal: refused by the routing.
                Some(x) if x.routes_by_key_only() && !x.is_removed() && !x.spec.internal => {
                    ticket.route_kept(self, p, x, &key, headers)?;
                }
                _ => {
                    ticket.remembered = None;
                    self.route_via(p.exchange, p.kept, &[key], headers, &mut ticket.routed)?;
                }
            }
            return Ok(self.enqueue(p, &view, None, ticket));
        };
        ticket.remembered = None;
        extra.keys.insert(0, key.into_owned());
        self.route_keys(p.exchange, &extra.keys, headers, &mut ticket.routed)?;
        if extra.has_bcc {
            let stripped = properties::rewrite(p.properties, |props| {
                if let Some(h) = props.headers() {
                    let kept: std::collections::BTreeMap<_, _> = h
                        .inner()
                        .iter()
                        .filter(|(k, _)| k.as_str() != "BCC")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    *props = props.clone().with_headers(kept.into());
                }
            });
            return Ok(self.enqueue(p, &view, Some(stripped), ticket));
        }
        Ok(self.enqueue(p, &view, None, ticket))
    }

    /// Topic permissions (RabbitMQ): on a topic exchange with a topic permission row for
    /// the user, the routing key must match its write pattern. Checked after the exchange
    /// lookup, before the message properties, as RabbitMQ orders them.
    #[cold]
    fn check_topic_write(&self, p: &Publish<'_>) -> AmqpResult<()> {
        if p.exchange.is_empty() {
            return Ok(());
        }
        let x = self.exchange(p.exchange)?;
        if x.spec.kind != ExchangeKind::Topic || x.spec.delayed {
            return Ok(());
        }
        let key = String::from_utf8_lossy(p.routing_key);
        p.grant.check_topic(Kind::Write, p.exchange, &key)
    }

    /// Offers the routed message to its queues (`ticket.routed`), with `properties` in place
    /// of the published ones when given.
    #[inline]
    fn enqueue(
        &self,
        p: &Publish<'_>,
        view: &PropertiesView<'_>,
        properties: Option<Vec<u8>>,
        ticket: &mut ConfirmTicket,
    ) -> Published {
        if ticket.routed.queues.is_empty() {
            // Unroutable, or a duplicate: its key is remembered (as the plugin does).
            ticket.routed.settle_keys(&mut ticket.durable);
            return Published::Unroutable { properties };
        }
        let props = properties.as_deref().unwrap_or(p.properties);
        // Stripping BCC leaves the delivery mode, expiration and priority as they were.
        let message = Message::with_view(p.exchange, p.routing_key, props, view, p.body);
        let mut rejected = false;
        let queues = ticket.routed.queues.len() as u32;
        for q in &ticket.routed.queues {
            let (outcome, fx) = q.publish(message.clone());
            self.carry_out(q, fx);
            rejected |= outcome.rejected;
            if let (Some(position), Some(log)) = (outcome.position, q.log()) {
                let log: Arc<dyn Durable> = log.clone();
                ticket.durable.push((log, position));
            }
        }
        if rejected {
            // The publisher is nacked and will retry: its key must not make the retry a
            // duplicate (RabbitMQ's plugin keeps it, and the retry is lost).
            ticket.routed.withdraw_keys();
        } else {
            ticket.routed.settle_keys(&mut ticket.durable);
        }
        if ticket.remembered.is_none() {
            ticket.routed.queues.clear();
        }
        Published::Enqueued { rejected, queues }
    }
}

/// The x-delay header (ms), read only when the raw headers mention it.
fn delay_of(headers: &[u8]) -> Option<u64> {
    if !headers.windows(8).any(|w| w == b"\x07x-delay") {
        return None;
    }
    let table = parse_checked_table(headers)?;
    let delay = table.inner().get("x-delay").and_then(as_int)?;
    u64::try_from(delay).ok().filter(|d| *d > 0)
}

/// Extra routing keys from the CC and BCC headers.
struct SenderSelected {
    keys: Vec<String>,
    has_bcc: bool,
}

/// Reads CC / BCC from a raw headers table; a cheap byte scan first, so messages without them
/// are never parsed. Either header must be an array (RabbitMQ refuses the message with 406
/// otherwise); its elements that are not strings are ignored.
fn sender_selected_keys(headers: &[u8]) -> AmqpResult<Option<SenderSelected>> {
    let mentions = |key: &[u8]| headers.windows(key.len()).any(|w| w == key);
    if !mentions(b"\x02CC") && !mentions(b"\x03BCC") {
        return Ok(None);
    }
    let Some(table) = parse_checked_table(headers) else {
        return Ok(None);
    };
    let mut out = SenderSelected {
        keys: Vec::new(),
        has_bcc: false,
    };
    for name in ["CC", "BCC"] {
        match table.inner().get(name) {
            None => {}
            Some(AMQPValue::FieldArray(a)) => {
                out.has_bcc |= name == "BCC";
                out.keys.extend(
                    a.as_slice()
                        .iter()
                        .filter_map(as_bytes)
                        .map(|b| String::from_utf8_lossy(b).into_owned()),
                );
            }
            Some(other) => {
                return Err(AmqpError::precondition_failed(format!(
                    "invalid message: {{unacceptable_type_in_header,\"{name}\",{}}}",
                    type_name(other)
                )))
            }
        }
    }
    Ok((!out.keys.is_empty() || out.has_bcc).then_some(out))
}

/// RabbitMQ refuses messages whose properties it cannot honour (406, channel error).
#[inline]
fn check_properties(view: &PropertiesView<'_>, grant: &Grant) -> AmqpResult<()> {
    // Most messages set none of the properties checked here, or only a valid delivery mode.
    if view.expiration.is_none()
        && view.user_id.is_none()
        && view.delivery_mode.is_none_or(|m| m == 1 || m == 2)
    {
        return Ok(());
    }
    check_set_properties(view, grant)
}

#[cold]
fn check_set_properties(view: &PropertiesView<'_>, grant: &Grant) -> AmqpResult<()> {
    let user = grant.user();
    let refuse = |text: String| Err(AmqpError::precondition_failed(text));
    if let Some(mode) = view.delivery_mode {
        if mode != 1 && mode != 2 {
            return refuse(format!("invalid message: {{delivery_mode_unknown,{mode}}}"));
        }
    }
    if let Some(expiration) = view.expiration {
        match expiration.parse::<i64>() {
            Ok(v) if v < 0 => {
                return refuse(format!(
                    "invalid expiration '{expiration}': {{value_negative,{v}}}"
                ))
            }
            Ok(_) => {}
            Err(_) => return refuse(format!("invalid expiration '{expiration}': no_integer")),
        }
    }
    if let Some(claimed) = view.user_id {
        // RabbitMQ: the impersonator tag lets a publisher name another user.
        if claimed != user && !grant.may_impersonate() {
            return refuse(format!(
                "user_id property set to '{claimed}' but authenticated user was '{user}'"
            ));
        }
    }
    Ok(())
}

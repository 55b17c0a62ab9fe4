//! Routing a published message to queues: the default exchange, direct reply-to pseudo-queues,
//! exchange-to-exchange bindings (each exchange visited once) and alternate exchanges.

use super::{VHost, REPLY_TO};
use crate::broker::exchange::dedup::Admission;
use crate::broker::exchange::{Exchange, Routed};
use crate::error::{AmqpError, AmqpResult};
use std::sync::Arc;

impl VHost {
    /// Routes a message: fills `out.queues` with its destination queues, deduplicated, following
    /// exchange-to-exchange bindings once each (so binding loops are harmless).
    /// `headers` is the raw headers table, needed only by headers exchanges.
    pub fn route(
        &self,
        exchange: &str,
        routing_key: &str,
        headers: Option<&[u8]>,
        out: &mut Routed,
    ) -> AmqpResult<()> {
        self.route_keys(exchange, &[routing_key], headers, out)
    }

    /// Routes a message published with several routing keys (its own and those of its CC and
    /// BCC headers, a RabbitMQ extension): every exchange on the way routes all of them, and
    /// the alternate exchange is used only when none of them reaches a queue.
    pub fn route_keys<K: AsRef<str>>(
        &self,
        exchange: &str,
        keys: &[K],
        headers: Option<&[u8]>,
        out: &mut Routed,
    ) -> AmqpResult<()> {
        self.route_via(exchange, None, keys, headers, out)
    }

    /// `route_keys`, through `kept` (the exchange named `exchange`, kept by its publisher)
    /// unless it has left the vhost since.
    #[inline]
    pub fn route_via<K: AsRef<str>>(
        &self,
        exchange: &str,
        kept: Option<&Arc<Exchange>>,
        keys: &[K],
        headers: Option<&[u8]>,
        out: &mut Routed,
    ) -> AmqpResult<()> {
        // Keys left by a routing that ended in an error belong to a message nobody kept.
        out.withdraw_keys();
        out.queues.clear();
        out.exchanges.clear();
        out.duplicate = false;
        out.through_others = false;
        if exchange.is_empty() {
            for key in keys.iter().map(AsRef::as_ref) {
                if let Some(q) = self.queues.read().get(key) {
                    out.queues.push(q.clone());
                } else if key.starts_with(REPLY_TO) {
                    if let Some(q) = self.reply_queues.lock().get(key) {
                        out.queues.push(q.clone());
                    }
                }
            }
        } else {
            let looked_up;
            let x = match kept {
                Some(x) if !x.is_removed() => x,
                _ => {
                    looked_up = self.exchange(exchange)?;
                    &looked_up
                }
            };
            if x.spec.internal {
                return Err(AmqpError::access_refused(format!(
                    "cannot publish to internal exchange '{exchange}' in vhost '{}'",
                    self.name
                )));
            }
            route_all(x, keys, headers, out);
            if !out.exchanges.is_empty() {
                out.through_others = true;
                self.follow_exchange_bindings(&x.spec.name, keys, headers, out);
            }
            if out.queues.is_empty() && !out.duplicate && x.alternate().is_some() {
                out.through_others = true;
                self.route_to_alternates(x, keys, headers, out);
            }
        }
        if out.queues.len() > 1 {
            out.queues.sort_unstable_by_key(|q| Arc::as_ptr(q) as usize);
            out.queues.dedup_by(|a, b| Arc::ptr_eq(a, b));
        }
        Ok(())
    }

    /// Unroutable messages go to the exchange's alternate-exchange (and its alternates in
    /// turn), each tried once (RabbitMQ extension).
    fn route_to_alternates<K: AsRef<str>>(
        &self,
        first: &Arc<Exchange>,
        keys: &[K],
        headers: Option<&[u8]>,
        out: &mut Routed,
    ) {
        let mut tried: Vec<Arc<str>> = vec![first.spec.name.clone()];
        let mut current = first.clone();
        while out.queues.is_empty() {
            let Some(name) = current.alternate() else {
                return;
            };
            if tried.iter().any(|t| **t == *name) {
                return;
            }
            let Ok(ae) = self.exchange(&name) else { return };
            tried.push(ae.spec.name.clone());
            route_all(&ae, keys, headers, out);
            if !out.exchanges.is_empty() {
                self.follow_exchange_bindings(&ae.spec.name, keys, headers, out);
            }
            current = ae;
        }
    }

    fn follow_exchange_bindings<K: AsRef<str>>(
        &self,
        first: &Arc<str>,
        keys: &[K],
        headers: Option<&[u8]>,
        out: &mut Routed,
    ) {
        let mut visited: Vec<Arc<str>> = vec![first.clone()];
        while let Some(name) = out.exchanges.pop() {
            if visited.contains(&name) {
                continue;
            }
            visited.push(name.clone());
            if let Ok(x) = self.exchange(&name) {
                route_all(&x, keys, headers, out);
            }
        }
    }
}

/// One exchange's destinations for every key (appended to `out`). A deduplicating exchange
/// first checks the message's key, wherever it sits in a chain of exchanges (as the plugin's
/// exchange type does).
fn route_all<K: AsRef<str>>(x: &Exchange, keys: &[K], headers: Option<&[u8]>, out: &mut Routed) {
    if let Some(cache) = x.dedup() {
        match cache.admit(headers, &mut out.duplicate_waits) {
            Admission::Duplicate => {
                out.duplicate = true;
                return;
            }
            Admission::New(admitted) => out.admitted.push(admitted),
            Admission::Pass => {}
        }
    }
    for key in keys {
        x.route(key.as_ref(), headers, out);
    }
}

//! Dead-lettering (RabbitMQ extension): messages rejected without requeue, expired, or dropped
//! by a length limit are republished to the queue's dead-letter exchange with an `x-death`
//! history, exactly as RabbitMQ records it: one entry per (queue, reason), newest first, with
//! count, reason, queue, time, exchange, routing-keys and original-expiration, plus
//! `x-first-death-{reason,queue,exchange}`. The expiration property is removed.

use super::message::Message;
use crate::protocol::properties::{rewrite, without_expiration};
use crate::protocol::table::as_bytes;
use crate::protocol::{AMQPValue, FieldArray, FieldTable, ShortString};

/// Why a message was dead-lettered (the `reason` field of x-death).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Rejected,
    Expired,
    Maxlen,
    /// A quorum queue's x-delivery-limit was exceeded.
    DeliveryLimit,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Rejected => "rejected",
            Reason::Expired => "expired",
            Reason::Maxlen => "maxlen",
            Reason::DeliveryLimit => "delivery_limit",
        }
    }
}

/// A dead-lettered copy and what cycle detection needs to know about its history.
#[derive(Debug)]
pub struct DeadLetter {
    pub message: Message,
    /// The keys it is routed with at the dead-letter exchange: the queue's
    /// x-dead-letter-routing-key, or else the keys it was published with (CC included).
    pub routing_keys: Vec<String>,
    /// Queues in the death history before this death.
    pub earlier_queues: Vec<String>,
    /// Whether any death in the history (this one included) was a rejection.
    pub any_rejected: bool,
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.as_bytes().to_vec().into())
}

fn entry_str<'a>(t: &'a FieldTable, key: &str) -> Option<&'a [u8]> {
    t.inner().get(key).and_then(as_bytes)
}

/// Builds the copy of `m` that `queue` dead-letters to `dlx` for `reason`; `new_key` is the
/// queue's x-dead-letter-routing-key, if it has one.
pub fn dead_letter(
    m: &Message,
    queue: &str,
    reason: Reason,
    dlx: &str,
    new_key: Option<&[u8]>,
    now_secs: u64,
) -> DeadLetter {
    let routing_key = new_key.unwrap_or(m.routing_key_bytes());
    let mut routing_keys = vec![String::from_utf8_lossy(routing_key).into_owned()];
    let mut earlier_queues = Vec::new();
    let mut any_rejected = reason == Reason::Rejected;
    let properties = rewrite(m.properties(), |props| {
        let expiration = props.expiration().clone();
        let mut headers = props.headers().clone().unwrap_or_default();
        let mut deaths: Vec<AMQPValue> = match headers.inner().get("x-death") {
            Some(AMQPValue::FieldArray(a)) => a.as_slice().to_vec(),
            _ => Vec::new(),
        };
        for d in &deaths {
            if let AMQPValue::FieldTable(t) = d {
                if let Some(q) = entry_str(t, "queue") {
                    earlier_queues.push(String::from_utf8_lossy(q).into_owned());
                }
                any_rejected |= entry_str(t, "reason") == Some(b"rejected".as_slice());
            }
        }
        let same = deaths.iter().position(|d| match d {
            AMQPValue::FieldTable(t) => {
                entry_str(t, "queue") == Some(queue.as_bytes())
                    && entry_str(t, "reason") == Some(reason.as_str().as_bytes())
            }
            _ => false,
        });
        let entry = match same.map(|i| deaths.remove(i)) {
            Some(AMQPValue::FieldTable(mut t)) => {
                let count = match t.inner().get("count") {
                    Some(v) => crate::protocol::table::as_int(v).unwrap_or(0) as i64,
                    None => 0,
                };
                t.insert(
                    ShortString::from("count"),
                    AMQPValue::LongLongInt(count + 1),
                );
                t.insert(ShortString::from("time"), AMQPValue::Timestamp(now_secs));
                t
            }
            _ => {
                let mut t = FieldTable::default();
                t.insert(ShortString::from("count"), AMQPValue::LongLongInt(1));
                t.insert(ShortString::from("reason"), text(reason.as_str()));
                t.insert(ShortString::from("queue"), text(queue));
                t.insert(ShortString::from("time"), AMQPValue::Timestamp(now_secs));
                t.insert(ShortString::from("exchange"), text(m.exchange()));
                let mut keys = FieldArray::default();
                keys.push(AMQPValue::LongString(m.routing_key_bytes().to_vec().into()));
                // RabbitMQ lists the CC keys too (never BCC, which is gone by now).
                if let Some(AMQPValue::FieldArray(cc)) = headers.inner().get("CC") {
                    for k in cc.as_slice() {
                        keys.push(k.clone());
                    }
                }
                t.insert(
                    ShortString::from("routing-keys"),
                    AMQPValue::FieldArray(keys),
                );
                if let Some(exp) = &expiration {
                    t.insert(ShortString::from("original-expiration"), text(exp.as_str()));
                }
                t
            }
        };
        deaths.insert(0, AMQPValue::FieldTable(entry));
        let mut array = FieldArray::default();
        for d in deaths {
            array.push(d);
        }
        headers.insert(ShortString::from("x-death"), AMQPValue::FieldArray(array));
        for (key, value) in [
            ("x-first-death-reason", reason.as_str()),
            ("x-first-death-queue", queue),
            ("x-first-death-exchange", m.exchange()),
        ] {
            if !headers.contains_key(key) {
                headers.insert(ShortString::from(key), text(value));
            }
        }
        if let Some(AMQPValue::FieldArray(cc)) = headers.inner().get("CC") {
            if new_key.is_none() {
                // Without a new key the copy is routed with every key it was published with.
                routing_keys.extend(
                    cc.as_slice()
                        .iter()
                        .filter_map(as_bytes)
                        .map(|k| String::from_utf8_lossy(k).into_owned()),
                );
            }
        }
        // A quorum queue's delivery count does not travel with the dead-lettered copy; a new
        // routing key replaces the CC keys too (RabbitMQ removes the CC header then).
        let dropped = |k: &str| k == "x-delivery-count" || (new_key.is_some() && k == "CC");
        if headers.inner().keys().any(|k| dropped(k.as_str())) {
            let kept: std::collections::BTreeMap<_, _> = headers
                .inner()
                .iter()
                .filter(|(k, _)| !dropped(k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            headers = kept.into();
        }
        *props = without_expiration(props).with_headers(headers);
    });
    DeadLetter {
        message: Message::new(dlx, routing_key, &properties, m.body()),
        routing_keys,
        earlier_queues,
        any_rejected,
    }
}

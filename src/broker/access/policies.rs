//! Policies as RabbitMQ has them: per vhost, a regex on object names, what they apply to, a
//! priority and a definition. The highest-priority matching policy gives a queue the
//! arguments its declare left out (client x-arguments win over a policy).

use crate::protocol::json::json_to_amqp;
use crate::protocol::{FieldTable, ShortString};
use regex::Regex;
use serde_json::{Map, Value};

/// What a policy applies to (RabbitMQ's `apply-to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyTo {
    All,
    Queues,
    Exchanges,
    ClassicQueues,
    QuorumQueues,
    Streams,
}

impl ApplyTo {
    pub fn from_name(name: &str) -> Option<ApplyTo> {
        Some(match name {
            "all" => ApplyTo::All,
            "queues" => ApplyTo::Queues,
            "exchanges" => ApplyTo::Exchanges,
            "classic_queues" => ApplyTo::ClassicQueues,
            "quorum_queues" => ApplyTo::QuorumQueues,
            "streams" => ApplyTo::Streams,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ApplyTo::All => "all",
            ApplyTo::Queues => "queues",
            ApplyTo::Exchanges => "exchanges",
            ApplyTo::ClassicQueues => "classic_queues",
            ApplyTo::QuorumQueues => "quorum_queues",
            ApplyTo::Streams => "streams",
        }
    }

    fn fits_queue(self, quorum: bool) -> bool {
        match self {
            ApplyTo::All | ApplyTo::Queues => true,
            ApplyTo::ClassicQueues => !quorum,
            ApplyTo::QuorumQueues => quorum,
            ApplyTo::Exchanges | ApplyTo::Streams => false,
        }
    }
}

/// Policy keys for queues and the queue arguments they stand for (RabbitMQ 3.10). Other keys
/// (ha-*, queue-mode, queue-version, ...) are accepted and have no effect here.
const QUEUE_KEYS: &[(&str, &str)] = &[
    ("message-ttl", "x-message-ttl"),
    ("expires", "x-expires"),
    ("max-length", "x-max-length"),
    ("max-length-bytes", "x-max-length-bytes"),
    ("overflow", "x-overflow"),
    ("dead-letter-exchange", "x-dead-letter-exchange"),
    ("dead-letter-routing-key", "x-dead-letter-routing-key"),
    ("delivery-limit", "x-delivery-limit"),
    ("consumer-timeout", "x-consumer-timeout"),
];

/// One policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub vhost: String,
    pub name: String,
    pub pattern: String,
    regex: Option<Regex>,
    pub apply_to: ApplyTo,
    pub priority: i64,
    pub definition: Map<String, Value>,
    /// The definition's queue keys as queue arguments.
    queue_arguments: FieldTable,
}

impl PartialEq for Policy {
    fn eq(&self, other: &Policy) -> bool {
        (
            &self.vhost,
            &self.name,
            &self.pattern,
            self.apply_to,
            self.priority,
            &self.definition,
        ) == (
            &other.vhost,
            &other.name,
            &other.pattern,
            other.apply_to,
            other.priority,
            &other.definition,
        )
    }
}

impl Eq for Policy {}

impl Policy {
    pub fn new(
        vhost: &str,
        name: &str,
        pattern: &str,
        apply_to: ApplyTo,
        priority: i64,
        definition: Map<String, Value>,
    ) -> Policy {
        let mut queue_arguments = FieldTable::default();
        for (key, argument) in QUEUE_KEYS {
            if let Some(v) = definition.get(*key) {
                queue_arguments.insert(ShortString::from(*argument), json_to_amqp(v));
            }
        }
        Policy {
            vhost: vhost.into(),
            name: name.into(),
            pattern: pattern.into(),
            regex: Regex::new(pattern).ok(),
            apply_to,
            priority,
            definition,
            queue_arguments,
        }
    }

    fn matches(&self, name: &str) -> bool {
        self.regex.as_ref().is_some_and(|r| r.is_match(name))
    }
}

/// The policy that applies to a queue: the highest priority among those whose pattern matches
/// its name and whose apply-to covers it; its queue arguments.
pub fn queue_arguments<'a>(
    policies: impl Iterator<Item = &'a Policy>,
    queue: &str,
    quorum: bool,
) -> Option<FieldTable> {
    policies
        .filter(|p| p.apply_to.fits_queue(quorum) && p.matches(queue))
        .max_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then_with(|| b.name.cmp(&a.name))
        })
        .map(|p| p.queue_arguments.clone())
}

/// The alternate exchange the policies give an exchange named `exchange` (the
/// highest-priority match with apply-to `all` or `exchanges` that sets one).
pub fn exchange_alternate<'a>(
    policies: impl Iterator<Item = &'a Policy>,
    exchange: &str,
) -> Option<String> {
    policies
        .filter(|p| matches!(p.apply_to, ApplyTo::All | ApplyTo::Exchanges) && p.matches(exchange))
        .max_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then_with(|| b.name.cmp(&a.name))
        })
        .and_then(|p| {
            p.definition
                .get("alternate-exchange")?
                .as_str()
                .map(String::from)
        })
}

/// Whether queue arguments declare a quorum queue (for apply-to).
pub fn is_quorum(arguments: &FieldTable) -> bool {
    match arguments.inner().get("x-queue-type") {
        Some(crate::protocol::AMQPValue::LongString(s)) => s.as_bytes() == b"quorum",
        Some(crate::protocol::AMQPValue::ShortString(s)) => s.as_str() == "quorum",
        _ => false,
    }
}

/// A queue's arguments with a policy's filled in where the declare gave none: client
/// x-arguments win over a policy (RabbitMQ).
pub fn with_policy(client: &FieldTable, policy: Option<&FieldTable>) -> FieldTable {
    let Some(policy) = policy else {
        return client.clone();
    };
    let mut out = policy.clone();
    for (k, v) in client.inner() {
        out.insert(k.clone(), v.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::AMQPValue;

    fn policy(name: &str, pattern: &str, apply_to: ApplyTo, priority: i64, def: &str) -> Policy {
        let definition: Map<String, Value> = serde_json::from_str(def).expect("json");
        Policy::new("/", name, pattern, apply_to, priority, definition)
    }

    #[test]
    fn the_highest_priority_matching_policy_applies_and_client_arguments_win() {
        let all = [
            policy(
                "low",
                "^orders",
                ApplyTo::All,
                0,
                r#"{"message-ttl": 1000}"#,
            ),
            policy(
                "high",
                "^orders\\.",
                ApplyTo::Queues,
                5,
                r#"{"max-length": 10, "ha-mode": "all"}"#,
            ),
            policy(
                "x",
                ".*",
                ApplyTo::Exchanges,
                9,
                r#"{"alternate-exchange": "ae"}"#,
            ),
            policy(
                "quorum",
                ".*",
                ApplyTo::QuorumQueues,
                7,
                r#"{"delivery-limit": 3}"#,
            ),
        ];
        let args = queue_arguments(all.iter(), "orders.eu", false).expect("a policy");
        assert_eq!(
            args.inner().get("x-max-length"),
            Some(&AMQPValue::LongLongInt(10))
        );
        assert!(
            args.inner().get("x-message-ttl").is_none(),
            "only one policy applies"
        );
        let args = queue_arguments(all.iter(), "orders", false).expect("low");
        assert_eq!(
            args.inner().get("x-message-ttl"),
            Some(&AMQPValue::LongLongInt(1000))
        );
        let args = queue_arguments(all.iter(), "orders.eu", true).expect("quorum");
        assert_eq!(
            args.inner().get("x-delivery-limit"),
            Some(&AMQPValue::LongLongInt(3))
        );
        assert!(queue_arguments(all.iter(), "billing", false).is_none());
        let mut client = FieldTable::default();
        client.insert("x-max-length".into(), AMQPValue::LongInt(99));
        let merged = with_policy(
            &client,
            Some(&queue_arguments(all.iter(), "orders.eu", false).expect("high")),
        );
        assert_eq!(
            merged.inner().get("x-max-length"),
            Some(&AMQPValue::LongInt(99))
        );
    }
}

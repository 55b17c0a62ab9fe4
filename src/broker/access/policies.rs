//! Policies as RabbitMQ has them: per vhost, a regex on object names, what they apply to, a
//! priority and a definition. The highest-priority matching policy gives a queue the
//! arguments its declare left out (client x-arguments win over a policy); the
//! highest-priority matching operator policy then caps the limits it names (the lesser value
//! wins, whoever set the other).

use crate::protocol::json::json_to_amqp;
use crate::protocol::table::as_int;
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

/// The keys an operator policy may set (RabbitMQ 3.10 refuses others: "are not recognised
/// policy settings"). The in-memory limits are accepted and have no effect here.
const OPERATOR_KEYS: &[&str] = &[
    "expires",
    "message-ttl",
    "max-length",
    "max-length-bytes",
    "max-in-memory-length",
    "max-in-memory-bytes",
    "delivery-limit",
];

/// Why an operator policy's definition is refused, if it is: a key it may not set, or a value
/// a policy may not have.
pub fn operator_definition_error(definition: &Map<String, Value>) -> Option<String> {
    let unknown: Vec<&str> = definition
        .keys()
        .map(String::as_str)
        .filter(|k| !OPERATOR_KEYS.contains(k))
        .collect();
    if !unknown.is_empty() {
        return Some(format!("{unknown:?} are not recognised policy settings"));
    }
    policy_definition_error(definition)
}

/// Why a policy's definition is refused, if it is: a value of a key Warren applies that the
/// same x-argument could not have (RabbitMQ validates them alike). Keys Warren does not apply
/// (ha-*, queue-mode, federation-upstream, ...) are accepted as they are.
pub fn policy_definition_error(definition: &Map<String, Value>) -> Option<String> {
    definition.iter().find_map(|(k, v)| {
        let whole = |min: u64| v.as_u64().is_some_and(|n| n >= min);
        let ok = match k.as_str() {
            "expires" => whole(1),
            "message-ttl"
            | "max-length"
            | "max-length-bytes"
            | "delivery-limit"
            | "consumer-timeout"
            | "max-in-memory-length"
            | "max-in-memory-bytes" => whole(0),
            "overflow" => matches!(
                v.as_str(),
                Some("drop-head" | "reject-publish" | "reject-publish-dlx")
            ),
            "dead-letter-exchange" | "dead-letter-routing-key" | "alternate-exchange" => {
                v.is_string()
            }
            _ => true,
        };
        (!ok).then(|| format!("{k}: {v} is not a valid value"))
    })
}

/// What the policies give one queue: arguments it gets where its declare gave none, and the
/// operator's limits, which win when lower.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyArguments {
    pub policy: FieldTable,
    pub operator: FieldTable,
}

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
fn best_for_queue<'a>(
    policies: impl Iterator<Item = &'a Policy>,
    queue: &str,
    quorum: bool,
) -> Option<&'a Policy> {
    policies
        .filter(|p| p.apply_to.fits_queue(quorum) && p.matches(queue))
        .max_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then_with(|| b.name.cmp(&a.name))
        })
}

/// The names of the policy and the operator policy that apply to a queue (management API:
/// `policy`, `operator_policy`).
pub fn queue_policy_names<'a>(
    policies: impl Iterator<Item = &'a Policy>,
    operator_policies: impl Iterator<Item = &'a Policy>,
    queue: &str,
    quorum: bool,
) -> (Option<String>, Option<String>) {
    (
        best_for_queue(policies, queue, quorum).map(|p| p.name.clone()),
        best_for_queue(operator_policies, queue, quorum).map(|p| p.name.clone()),
    )
}

/// What the policy and the operator policy that apply to a queue give it (None: neither
/// applies).
pub fn queue_arguments<'a>(
    policies: impl Iterator<Item = &'a Policy>,
    operator_policies: impl Iterator<Item = &'a Policy>,
    queue: &str,
    quorum: bool,
) -> Option<PolicyArguments> {
    let policy = best_for_queue(policies, queue, quorum);
    let operator = best_for_queue(operator_policies, queue, quorum);
    if policy.is_none() && operator.is_none() {
        return None;
    }
    Some(PolicyArguments {
        policy: policy
            .map(|p| p.queue_arguments.clone())
            .unwrap_or_default(),
        operator: operator
            .map(|p| p.queue_arguments.clone())
            .unwrap_or_default(),
    })
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

/// A queue's effective arguments: the policy's filled in where the declare gave none (client
/// x-arguments win over a policy), then the operator policy's limits where they are lower or
/// nothing else set one (RabbitMQ's conflict resolution for operator policies: the minimum).
pub fn with_policy(client: &FieldTable, policy: Option<&PolicyArguments>) -> FieldTable {
    let Some(policy) = policy else {
        return client.clone();
    };
    let mut out = policy.policy.clone();
    for (k, v) in client.inner() {
        out.insert(k.clone(), v.clone());
    }
    for (k, cap) in policy.operator.inner() {
        let lower = match (out.inner().get(k).and_then(as_int), as_int(cap)) {
            (Some(current), Some(cap)) => cap < current,
            _ => true,
        };
        if lower {
            out.insert(k.clone(), cap.clone());
        }
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
        let none: [Policy; 0] = [];
        let args = queue_arguments(all.iter(), none.iter(), "orders.eu", false)
            .expect("a policy")
            .policy;
        assert_eq!(
            args.inner().get("x-max-length"),
            Some(&AMQPValue::LongLongInt(10))
        );
        assert!(
            args.inner().get("x-message-ttl").is_none(),
            "only one policy applies"
        );
        let args = queue_arguments(all.iter(), none.iter(), "orders", false)
            .expect("low")
            .policy;
        assert_eq!(
            args.inner().get("x-message-ttl"),
            Some(&AMQPValue::LongLongInt(1000))
        );
        let args = queue_arguments(all.iter(), none.iter(), "orders.eu", true)
            .expect("quorum")
            .policy;
        assert_eq!(
            args.inner().get("x-delivery-limit"),
            Some(&AMQPValue::LongLongInt(3))
        );
        assert!(queue_arguments(all.iter(), none.iter(), "billing", false).is_none());
        let mut client = FieldTable::default();
        client.insert("x-max-length".into(), AMQPValue::LongInt(99));
        let merged = with_policy(
            &client,
            Some(&queue_arguments(all.iter(), none.iter(), "orders.eu", false).expect("high")),
        );
        assert_eq!(
            merged.inner().get("x-max-length"),
            Some(&AMQPValue::LongInt(99))
        );
    }

    #[test]
    fn operator_policies_cap_limits_whoever_set_them() {
        let policies = [policy(
            "p",
            "^q$",
            ApplyTo::Queues,
            0,
            r#"{"max-length": 4}"#,
        )];
        let operator = [policy(
            "op",
            "^q",
            ApplyTo::Queues,
            0,
            r#"{"max-length": 5, "message-ttl": 60000}"#,
        )];
        let effective = |queue: &str, client: &[(&str, AMQPValue)]| {
            let mut args = FieldTable::default();
            for (k, v) in client {
                args.insert((*k).into(), v.clone());
            }
            let p = queue_arguments(policies.iter(), operator.iter(), queue, false);
            with_policy(&args, p.as_ref())
        };
        let max_len = |t: FieldTable| as_int(t.inner().get("x-max-length").expect("a max-length"));
        // As on RabbitMQ 3.10: nothing set → the operator's 5; the client's 10 → 5; the
        // client's 3 → 3; the policy's 4 → 4.
        assert_eq!(max_len(effective("qz", &[])), Some(5));
        assert_eq!(
            max_len(effective("qz", &[("x-max-length", AMQPValue::LongInt(10))])),
            Some(5)
        );
        assert_eq!(
            max_len(effective("qz", &[("x-max-length", AMQPValue::LongInt(3))])),
            Some(3)
        );
        assert_eq!(max_len(effective("q", &[])), Some(4));
        assert!(effective("q", &[]).inner().contains_key("x-message-ttl"));
        let def = |s: &str| serde_json::from_str::<Map<String, Value>>(s).expect("json");
        assert!(operator_definition_error(&def(r#"{"max-length": 5}"#)).is_none());
        assert!(
            operator_definition_error(&def(r#"{"dead-letter-exchange": "x"}"#))
                .expect("refused")
                .contains("not recognised")
        );
        assert!(operator_definition_error(&def(r#"{"max-length": "five"}"#)).is_some());
        assert!(operator_definition_error(&def(r#"{"expires": 0}"#)).is_some());
        assert!(policy_definition_error(&def(r#"{"overflow": "bogus"}"#)).is_some());
        assert!(policy_definition_error(&def(r#"{"ha-mode": "all", "max-length": 3}"#)).is_none());
    }
}

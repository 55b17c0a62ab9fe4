//! Validation of queue x-arguments, with RabbitMQ's checks and reply texts
//! (`PRECONDITION_FAILED - invalid arg 'x-…' for queue 'q' in vhost '/': reason`).
//! Arguments that only tune RabbitMQ's internals are accepted and ignored; unknown ones too.

use crate::error::{AmqpError, AmqpResult};
use crate::protocol::table::{as_bytes, as_int, type_name};
use crate::protocol::{AMQPValue, FieldTable};

/// How an integer argument is bounded.
#[derive(Debug, Clone, Copy)]
enum IntRule {
    NonNegative,
    Positive,
    AtMost(i128),
}

const INT_ARGS: &[(&str, IntRule)] = &[
    ("x-expires", IntRule::Positive),
    ("x-message-ttl", IntRule::NonNegative),
    ("x-max-length", IntRule::NonNegative),
    ("x-max-length-bytes", IntRule::NonNegative),
    ("x-max-priority", IntRule::AtMost(255)),
    ("x-delivery-limit", IntRule::NonNegative),
];

/// Checks queue.declare arguments; `what` is "queue 'q' in vhost '/'".
pub fn validate_queue_arguments(args: &FieldTable, durable: bool, what: &str) -> AmqpResult<()> {
    let invalid = |key: &str, reason: String| {
        Err(AmqpError::precondition_failed(format!(
            "invalid arg '{key}' for {what}: {reason}"
        )))
    };
    for (key, rule) in INT_ARGS {
        let Some(v) = args.inner().get(*key) else {
            continue;
        };
        let Some(n) = as_int(v) else {
            return invalid(key, format!("\"expected integer, got {}\"", type_name(v)));
        };
        if n < 0 {
            return invalid(key, format!("{{value_negative,{n}}}"));
        }
        match rule {
            IntRule::Positive if n == 0 => return invalid(key, "{value_zero,0}".into()),
            IntRule::AtMost(max) if n > *max => {
                return invalid(key, format!("{{max_value_exceeded,{n}}}"))
            }
            _ => {}
        }
    }
    if let Some(v) = args.inner().get("x-overflow") {
        let ok = as_bytes(v)
            .is_some_and(|b| matches!(b, b"drop-head" | b"reject-publish" | b"reject-publish-dlx"));
        if !ok {
            return invalid("x-overflow", "invalid_overflow".into());
        }
    }
    for key in ["x-dead-letter-exchange", "x-dead-letter-routing-key"] {
        if let Some(v) = args.inner().get(key) {
            if as_bytes(v).is_none() {
                return Err(AmqpError::precondition_failed(format!(
                    "invalid type '{}' for arg '{key}' in {what}",
                    type_name(v)
                )));
            }
        }
    }
    if args.inner().contains_key("x-dead-letter-routing-key")
        && !args.inner().contains_key("x-dead-letter-exchange")
    {
        return invalid(
            "x-dead-letter-routing-key",
            "routing_key_but_no_dlx_defined".into(),
        );
    }
    if let Some(v) = args.inner().get("x-single-active-consumer") {
        if !matches!(v, AMQPValue::Boolean(_)) {
            return invalid(
                "x-single-active-consumer",
                format!("{{unacceptable_type,{}}}", type_name(v)),
            );
        }
    }
    if let Some(v) = args.inner().get("x-queue-mode") {
        let mode = as_bytes(v).map(String::from_utf8_lossy).unwrap_or_default();
        if mode != "default" && mode != "lazy" {
            return invalid(
                "x-queue-mode",
                format!("\"unsupported queue mode '{mode}'\""),
            );
        }
    }
    if let Some(v) = args.inner().get("x-queue-type") {
        let kind = as_bytes(v).map(String::from_utf8_lossy).unwrap_or_default();
        match kind.as_ref() {
            "classic" | "stream" => {}
            "quorum" if !durable => {
                return Err(AmqpError::precondition_failed(format!(
                    "invalid property 'non-durable' for {what}"
                )));
            }
            "quorum" => {}
            _ => {
                return invalid(
                    "x-queue-type",
                    format!("\"unsupported queue type '{kind}'\""),
                )
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ShortString;

    fn args(k: &str, v: AMQPValue) -> FieldTable {
        let mut t = FieldTable::default();
        t.insert(ShortString::from(k), v);
        t
    }

    fn text(k: &str, v: AMQPValue) -> String {
        validate_queue_arguments(&args(k, v), true, "queue 'q' in vhost '/'")
            .unwrap_err()
            .text
    }

    #[test]
    fn rabbitmq_texts() {
        assert_eq!(
            text("x-max-length", AMQPValue::LongInt(-1)),
            "PRECONDITION_FAILED - invalid arg 'x-max-length' for queue 'q' in vhost '/': {value_negative,-1}"
        );
        assert!(text(
            "x-message-ttl",
            AMQPValue::LongString(b"abc".to_vec().into())
        )
        .ends_with(": \"expected integer, got longstr\""));
        assert!(text("x-expires", AMQPValue::LongInt(0)).ends_with("{value_zero,0}"));
        assert!(
            text("x-max-priority", AMQPValue::LongInt(300)).ends_with("{max_value_exceeded,300}")
        );
        assert!(text(
            "x-overflow",
            AMQPValue::LongString(b"bogus".to_vec().into())
        )
        .ends_with(": invalid_overflow"));
        assert!(
            validate_queue_arguments(&args("x-foo", AMQPValue::LongInt(1)), false, "q").is_ok()
        );
        assert!(validate_queue_arguments(
            &args(
                "x-queue-mode",
                AMQPValue::LongString(b"lazy".to_vec().into())
            ),
            false,
            "q"
        )
        .is_ok());
    }
}

//! JSON and AMQP field values, both ways: arguments and policy definitions in definitions
//! files and (later) the HTTP API show AMQP tables as JSON, as RabbitMQ does.

use super::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use serde_json::{Map, Value};

/// A JSON argument as an AMQP field value (numbers without a fraction are long-long ints,
/// as RabbitMQ's JSON decoding gives them).
pub fn json_to_amqp(v: &Value) -> AMQPValue {
    match v {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AMQPValue::LongLongInt(i),
            None => AMQPValue::Double(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => AMQPValue::LongString(LongString::from(s.as_bytes().to_vec())),
        Value::Array(items) => {
            let mut a = FieldArray::default();
            for item in items {
                a.push(json_to_amqp(item));
            }
            AMQPValue::FieldArray(a)
        }
        Value::Object(m) => AMQPValue::FieldTable(json_to_table(m)),
    }
}

pub fn json_to_table(m: &Map<String, Value>) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in m {
        t.insert(ShortString::from(k.as_str()), json_to_amqp(v));
    }
    t
}

/// An AMQP field value as JSON (how RabbitMQ shows arguments and headers).
pub fn amqp_to_json(v: &AMQPValue) -> Value {
    match v {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(i) => Value::from(*i),
        AMQPValue::ShortShortUInt(i) => Value::from(*i),
        AMQPValue::ShortInt(i) => Value::from(*i),
        AMQPValue::ShortUInt(i) => Value::from(*i),
        AMQPValue::LongInt(i) => Value::from(*i),
        AMQPValue::LongUInt(i) => Value::from(*i),
        AMQPValue::LongLongInt(i) => Value::from(*i),
        AMQPValue::Float(f) => Value::from(*f),
        AMQPValue::Double(f) => Value::from(*f),
        AMQPValue::DecimalValue(d) => Value::from(d.value),
        AMQPValue::ShortString(s) => Value::String(s.as_str().to_string()),
        AMQPValue::LongString(s) => {
            Value::String(String::from_utf8_lossy(s.as_bytes()).into_owned())
        }
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(amqp_to_json).collect()),
        AMQPValue::Timestamp(t) => Value::from(*t),
        AMQPValue::FieldTable(t) => Value::Object(table_to_json(t)),
        AMQPValue::ByteArray(b) => {
            Value::String(String::from_utf8_lossy(b.as_slice()).into_owned())
        }
        AMQPValue::Void => Value::Null,
    }
}

pub fn table_to_json(t: &FieldTable) -> Map<String, Value> {
    t.inner()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), amqp_to_json(v)))
        .collect()
}

/// Basic properties as RabbitMQ's management API shows them (`POST queues/…/get`): only the
/// fields that are set, headers as a JSON object.
pub fn properties_to_json(raw: &[u8]) -> Map<String, Value> {
    use amq_protocol::protocol::basic::parse_properties;
    let mut out = Map::new();
    let Ok((_, p)) = parse_properties(raw) else {
        return out;
    };
    let mut text = |key: &str, v: Option<&ShortString>| {
        if let Some(v) = v {
            out.insert(key.into(), Value::String(v.as_str().to_string()));
        }
    };
    text("content_type", p.content_type().as_ref());
    text("content_encoding", p.content_encoding().as_ref());
    text("correlation_id", p.correlation_id().as_ref());
    text("reply_to", p.reply_to().as_ref());
    text("expiration", p.expiration().as_ref());
    text("message_id", p.message_id().as_ref());
    text("type", p.kind().as_ref());
    text("user_id", p.user_id().as_ref());
    text("app_id", p.app_id().as_ref());
    text("cluster_id", p.cluster_id().as_ref());
    if let Some(h) = p.headers() {
        out.insert("headers".into(), Value::Object(table_to_json(h)));
    }
    if let Some(v) = p.delivery_mode() {
        out.insert("delivery_mode".into(), Value::from(*v));
    }
    if let Some(v) = p.priority() {
        out.insert("priority".into(), Value::from(*v));
    }
    if let Some(v) = p.timestamp() {
        out.insert("timestamp".into(), Value::from(*v));
    }
    out
}

/// Raw basic properties from the management API's JSON (`POST exchanges/…/publish`);
/// unknown keys are an error naming the key, as RabbitMQ answers.
pub fn properties_from_json(m: &Map<String, Value>) -> Result<Vec<u8>, String> {
    use amq_protocol::frame::WriteContext;
    use amq_protocol::protocol::basic::gen_properties;
    use amq_protocol::protocol::BasicProperties;
    let mut p = BasicProperties::default();
    let text = |k: &str, v: &Value| -> Result<ShortString, String> {
        match v {
            Value::String(s) => Ok(ShortString::from(s.as_str())),
            Value::Number(n) => Ok(ShortString::from(n.to_string())),
            _ => Err(format!("property '{k}' must be a string")),
        }
    };
    let int = |k: &str, v: &Value| -> Result<u64, String> {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| format!("property '{k}' must be a number"))
    };
    for (k, v) in m {
        p = match k.as_str() {
            "content_type" => p.with_content_type(text(k, v)?),
            "content_encoding" => p.with_content_encoding(text(k, v)?),
            "correlation_id" => p.with_correlation_id(text(k, v)?),
            "reply_to" => p.with_reply_to(text(k, v)?),
            "expiration" => p.with_expiration(text(k, v)?),
            "message_id" => p.with_message_id(text(k, v)?),
            "type" => p.with_type(text(k, v)?),
            "user_id" => p.with_user_id(text(k, v)?),
            "app_id" => p.with_app_id(text(k, v)?),
            "cluster_id" => p.with_cluster_id(text(k, v)?),
            "delivery_mode" => p.with_delivery_mode(int(k, v)?.min(255) as u8),
            "priority" => p.with_priority(int(k, v)?.min(255) as u8),
            "timestamp" => p.with_timestamp(int(k, v)?),
            "headers" => match v {
                Value::Object(h) => p.with_headers(json_to_table(h)),
                _ => return Err("property 'headers' must be an object".into()),
            },
            other => return Err(format!("unknown property '{other}'")),
        };
    }
    let encoded = gen_properties(&p)(WriteContext::from(Vec::new()))
        .map(|ctx| ctx.write)
        .map_err(|e| e.to_string());
    encoded
}

#[cfg(test)]
mod properties_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn properties_go_to_json_and_back() {
        let Value::Object(m) = json!({
            "content_type": "text/plain",
            "delivery_mode": 2,
            "priority": 5,
            "headers": {"x-a": "b", "n": 3}
        }) else {
            unreachable!()
        };
        let raw = properties_from_json(&m).expect("encode");
        let back = properties_to_json(&raw);
        assert_eq!(Value::Object(back), Value::Object(m));
        let Value::Object(bad) = json!({"colour": "red"}) else {
            unreachable!()
        };
        assert_eq!(
            properties_from_json(&bad),
            Err("unknown property 'colour'".to_string())
        );
    }
}

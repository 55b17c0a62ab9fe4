//! Queues, exchanges, bindings, connections, channels and consumers as RabbitMQ's management
//! API writes them: every field strict clients (rabbitmqadmin 2.x) require, rates as
//! `{"rate": n}` details.

use super::Api;
use crate::broker::exchange::{Binding, Dest, Exchange};
use crate::broker::queue::{ConsumerSummary, Queue};
use crate::broker::rates::{Sampled, SampledBytes};
use crate::broker::registry::ConnectionInfo;
use crate::broker::stats::{ChannelStats, ExchangeTotals, MessageRates, MessageTotals};
use crate::protocol::json::table_to_json;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The node name everything runs on.
pub const NODE: &str = "warren@localhost";

/// `{"rate": r}`, RabbitMQ's `*_details`.
pub fn rate(r: f64) -> Value {
    json!({ "rate": (r * 10.0).round() / 10.0 })
}

/// RabbitMQ's `message_stats` object: counts and their rates.
pub fn message_stats(t: &MessageTotals, r: &MessageRates) -> Value {
    json!({
        "publish": t.publish,
        "publish_details": rate(r.publish),
        "confirm": t.confirm,
        "confirm_details": rate(r.confirm),
        "deliver": t.deliver - t.deliver_no_ack,
        "deliver_details": rate(r.deliver - r.deliver_no_ack),
        "deliver_no_ack": t.deliver_no_ack,
        "deliver_no_ack_details": rate(r.deliver_no_ack),
        "get": t.get - t.get_no_ack,
        "get_details": rate(r.get - r.get_no_ack),
        "get_no_ack": t.get_no_ack,
        "get_no_ack_details": rate(r.get_no_ack),
        "get_empty": t.get_empty,
        "deliver_get": t.deliver_get(),
        "deliver_get_details": rate(r.deliver_get),
        "redeliver": t.redeliver,
        "redeliver_details": rate(r.redeliver),
        "ack": t.ack,
        "ack_details": rate(r.ack),
        "return_unroutable": t.unroutable_returned,
        "return_unroutable_details": rate(r.return_unroutable),
        "drop_unroutable": t.unroutable_dropped,
        "drop_unroutable_details": rate(r.drop_unroutable),
    })
}

/// A wall-clock time (ms since the epoch) as RabbitMQ 3.10 writes `idle_since`
/// (`2026-12-03T21:45:07.921+00:00`, checked against Debian's 3.10.8).
fn timestamp(unix_ms: u64) -> String {
    let ms = unix_ms % 1000;
    let secs = unix_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{ms:03}+00:00")
}

/// A queue.
pub fn queue(api: &Api, vhost: &str, q: &Arc<Queue>) -> Value {
    let depth = q.depth();
    let unacked = q.stats.unacked();
    let sampled: Sampled = api.broker.rates().queue(vhost, q.name());
    let (policy, operator_policy) =
        api.broker
            .access()
            .queue_policy_names(vhost, q.name(), q.quorum);
    let arguments = table_to_json(&q.spec.arguments);
    let totals = q.stats.totals();
    let idle = depth.consumers == 0;
    let idle_since = crate::broker::clock::unix_ms()
        .saturating_sub(crate::broker::clock::now_ms().saturating_sub(depth.idle_since));
    let mut v = json!({
        "name": q.name(),
        "vhost": vhost,
        "type": if q.quorum { "quorum" } else { "classic" },
        "durable": q.spec.durable,
        "auto_delete": q.spec.auto_delete,
        "exclusive": q.spec.exclusive_owner.is_some(),
        "exclusive_consumer_tag": Value::Null,
        "arguments": arguments,
        "node": NODE,
        "state": "running",
        "consumers": depth.consumers,
        "consumer_capacity": if depth.consumers > 0 { 1.0 } else { 0.0 },
        "consumer_utilisation": if depth.consumers > 0 { 1.0 } else { 0.0 },
        "memory": 1024 + depth.ready_bytes,
        "messages": depth.ready + unacked,
        "messages_details": rate(0.0),
        "messages_ready": depth.ready,
        "messages_ready_details": rate(0.0),
        "messages_unacknowledged": unacked,
        "messages_unacknowledged_details": rate(0.0),
        "message_bytes": depth.ready_bytes,
        "message_bytes_ready": depth.ready_bytes,
        "message_bytes_unacknowledged": 0,
        "message_bytes_persistent": 0,
        "message_bytes_ram": depth.ready_bytes,
        "messages_persistent": 0,
        "messages_ram": depth.ready,
        "policy": policy,
        "operator_policy": operator_policy,
        "effective_policy_definition": {},
        "head_message_timestamp": Value::Null,
        "recoverable_slaves": Value::Null,
        "reductions": 0,
        "reductions_details": rate(0.0),
        "garbage_collection": {},
        "single_active_consumer_tag": Value::Null,
        "message_stats": message_stats(&totals, &sampled.rates),
    });
    if idle {
        v["idle_since"] = Value::String(timestamp(idle_since));
    }
    v
}

/// An exchange (`""` is the default exchange, shown as RabbitMQ shows it).
pub fn exchange(vhost: &str, x: &Exchange, stats: Option<ExchangeStats>) -> Value {
    let mut v = json!({
        "name": &*x.spec.name,
        "vhost": vhost,
        "type": x.spec.type_name(),
        "durable": x.spec.durable,
        "auto_delete": x.spec.auto_delete,
        "internal": x.spec.internal,
        "arguments": table_to_json(&x.spec.arguments),
        "user_who_performed_action": "rmq-internal",
        "policy": Value::Null,
    });
    add_exchange_stats(&mut v, stats);
    v
}

/// The default exchange, which Warren routes without an object of its own.
pub fn default_exchange(vhost: &str, stats: Option<ExchangeStats>) -> Value {
    let mut v = json!({
        "name": "",
        "vhost": vhost,
        "type": "direct",
        "durable": true,
        "auto_delete": false,
        "internal": false,
        "arguments": {},
        "user_who_performed_action": "rmq-internal",
        "policy": Value::Null,
    });
    add_exchange_stats(&mut v, stats);
    v
}

/// An exchange's publishes: totals now, rates as last sampled.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeStats {
    pub totals: ExchangeTotals,
    pub rates: (f64, f64),
}

/// RabbitMQ shows `message_stats` on an exchange once something was published to it, and
/// `publish_out` once something was routed (checked against Debian's 3.10.8).
fn add_exchange_stats(v: &mut Value, stats: Option<ExchangeStats>) {
    let Some(s) = stats else { return };
    let mut m = json!({
        "publish_in": s.totals.publish_in,
        "publish_in_details": rate(s.rates.0),
    });
    if s.totals.publish_out > 0 {
        m["publish_out"] = json!(s.totals.publish_out);
        m["publish_out_details"] = rate(s.rates.1);
    }
    v["message_stats"] = m;
}

/// The key that names a binding in URLs (`…/q/{queue}/{props}`): `~` for an empty key
/// without arguments, the routing key, or the key and a digest of the arguments.
pub fn properties_key(routing_key: &str, arguments: &Map<String, Value>) -> String {
    if arguments.is_empty() {
        if routing_key.is_empty() {
            return "~".into();
        }
        return quoted(routing_key);
    }
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(Value::Object(arguments.clone()).to_string().as_bytes());
    let short = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..8]);
    format!("{}~{short}", quoted(routing_key))
}

/// A routing key as RabbitMQ writes it in a properties key: percent-encoded but for
/// unreserved characters (`order.*` is `order.%2A`).
pub fn quoted(routing_key: &str) -> String {
    let mut out = String::new();
    for b in routing_key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One binding of exchange `source`.
pub fn binding(vhost: &str, source: &str, b: &Binding) -> Value {
    let (destination, kind) = match &b.dest {
        Dest::Queue(q) => (q.name().to_string(), "queue"),
        Dest::Exchange(x) => (x.to_string(), "exchange"),
    };
    let arguments = table_to_json(&b.arguments);
    json!({
        "source": source,
        "vhost": vhost,
        "destination": destination,
        "destination_type": kind,
        "routing_key": b.routing_key,
        "arguments": arguments.clone(),
        "properties_key": properties_key(&b.routing_key, &arguments),
    })
}

/// The implicit binding of every queue to the default exchange, as RabbitMQ lists it.
pub fn default_binding(vhost: &str, queue: &str) -> Value {
    json!({
        "source": "",
        "vhost": vhost,
        "destination": queue,
        "destination_type": "queue",
        "routing_key": queue,
        "arguments": {},
        "properties_key": queue,
    })
}

/// `{"name": …, "peer_port": …}` of a connection, as channels and consumers name it.
pub fn connection_ref(c: &ConnectionInfo) -> Value {
    json!({
        "name": c.name,
        "peer_host": c.details.peer.ip().to_string(),
        "peer_port": c.details.peer.port(),
        "node": NODE,
        "user": c.details.user,
        "vhost": c.details.vhost,
    })
}

/// A connection.
pub fn connection(c: &ConnectionInfo, bytes: &SampledBytes) -> Value {
    let d = &c.details;
    json!({
        "name": c.name,
        "node": NODE,
        "type": "network",
        "protocol": "AMQP 0-9-1",
        "user": d.user,
        "user_who_performed_action": d.user,
        "vhost": d.vhost,
        "host": d.local.ip().to_string(),
        "port": d.local.port(),
        "peer_host": d.peer.ip().to_string(),
        "peer_port": d.peer.port(),
        "ssl": d.tls,
        "ssl_protocol": Value::Null,
        "ssl_key_exchange": Value::Null,
        "ssl_cipher": Value::Null,
        "ssl_hash": Value::Null,
        "peer_cert_subject": Value::Null,
        "peer_cert_issuer": Value::Null,
        "peer_cert_validity": Value::Null,
        "auth_mechanism": d.auth_mechanism,
        "state": if c.blocked.get() == 1 { "blocked" } else { "running" },
        "channels": c.channel_count(),
        "channel_max": d.channel_max,
        "frame_max": d.frame_max,
        "timeout": d.heartbeat,
        "connected_at": c.connected_at,
        "client_properties": Value::Object(d.client_properties.clone()),
        "recv_oct": c.recv_oct.get(),
        "recv_oct_details": rate(bytes.recv_rate),
        "recv_cnt": c.recv_cnt.get(),
        "send_oct": c.send_oct.get(),
        "send_oct_details": rate(bytes.send_rate),
        "send_cnt": c.send_cnt.get(),
        "send_pend": 0,
        "reductions": 0,
        "reductions_details": rate(0.0),
        "garbage_collection": {},
    })
}

/// One channel of connection `c`.
pub fn channel(c: &ConnectionInfo, number: u16, s: &ChannelStats, rates: &MessageRates) -> Value {
    let totals = s.totals();
    json!({
        "name": format!("{} ({number})", c.name),
        "node": NODE,
        "number": number,
        "user": c.details.user,
        "user_who_performed_action": c.details.user,
        "vhost": c.details.vhost,
        "connection_details": connection_ref(c),
        "state": "running",
        "confirm": s.confirm_mode.get() == 1,
        "transactional": s.transactional.get() == 1,
        "consumer_count": s.consumers.get(),
        "messages_unacknowledged": s.unacked.get(),
        "messages_unconfirmed": 0,
        "messages_uncommitted": 0,
        "acks_uncommitted": 0,
        "pending_raft_commands": 0,
        "prefetch_count": s.prefetch.get(),
        "global_prefetch_count": s.global_prefetch.get(),
        "reductions": 0,
        "reductions_details": rate(0.0),
        "garbage_collection": {},
        "idle_since": Value::Null,
        "message_stats": message_stats(&totals, rates),
    })
}

/// One consumer of queue `queue`.
pub fn consumer(
    vhost: &str,
    queue: &Queue,
    c: &ConsumerSummary,
    conn: Option<&ConnectionInfo>,
) -> Value {
    let channel_details = match conn {
        Some(conn) => json!({
            "name": format!("{} ({})", conn.name, c.channel),
            "number": c.channel,
            "node": NODE,
            "connection_name": conn.name,
            "peer_host": conn.details.peer.ip().to_string(),
            "peer_port": conn.details.peer.port(),
            "user": conn.details.user,
        }),
        None => json!({}),
    };
    let mut arguments = Map::new();
    if c.priority != 0 {
        arguments.insert("x-priority".into(), Value::from(c.priority));
    }
    json!({
        "consumer_tag": &*c.tag,
        "queue": {"name": queue.name(), "vhost": vhost},
        "channel_details": channel_details,
        "ack_required": !c.no_ack,
        "exclusive": c.exclusive,
        "prefetch_count": c.prefetch,
        "active": true,
        "activity_status": "up",
        "arguments": arguments,
        // ms; 0: none set on the queue (the broker-wide default applies).
        "consumer_timeout": queue.consumer_timeout().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_as_rabbitmq_writes_them() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000+00:00");
        assert_eq!(
            timestamp(1_796_333_415_921),
            "2026-12-03T21:30:15.921+00:00"
        );
        assert_eq!(timestamp(951_782_400_000), "2000-02-29T00:00:00.000+00:00");
    }

    #[test]
    fn binding_keys_name_bindings_as_rabbitmq_does() {
        assert_eq!(properties_key("", &Map::new()), "~");
        assert_eq!(properties_key("a.b", &Map::new()), "a.b");
        assert_eq!(properties_key("order.*", &Map::new()), "order.%2A");
        let mut args = Map::new();
        args.insert("x-match".into(), Value::from("all"));
        let k = properties_key("rk", &args);
        assert!(k.starts_with("rk~") && k.len() > 3, "{k}");
        assert_eq!(k, properties_key("rk", &args));
    }
}

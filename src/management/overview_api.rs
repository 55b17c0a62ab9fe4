//! GET overview and nodes: versions, listeners, totals, message rates and node health, with
//! the fields RabbitMQ's UI, rabbitmqadmin and monitoring tools read.

use super::auth::{self, Need};
use super::node::{facts, totals, NodeFacts};
use super::objects::{message_stats, rate, NODE};
use super::reply::{ApiError, ApiResult};
use super::Api;
use crate::broker::RABBITMQ_COMPATIBLE_VERSION;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};
use std::net::SocketAddr;

type Peer = ConnectInfo<SocketAddr>;

/// The overview's `listeners`.
fn listeners(api: &Api) -> Value {
    let list: Vec<Value> = api
        .listeners
        .iter()
        .map(|(protocol, addr)| {
            json!({
                "node": NODE,
                "protocol": protocol,
                "ip_address": addr.ip().to_string(),
                "port": addr.port(),
                "socket_opts": {},
            })
        })
        .collect();
    Value::Array(list)
}

pub async fn overview(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    auth::user(&api, &headers, peer, Need::Management)?;
    let t = totals(&api.broker);
    let overall = api.broker.rates().overall();
    let churn = &api.broker.registry().churn;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let history: Vec<Value> = api
        .broker
        .rates()
        .history()
        .iter()
        .map(|p| {
            json!({
                "timestamp": p.at,
                "messages_ready": p.depth.ready,
                "messages_unacknowledged": p.depth.unacked,
                "publish": p.rates.publish,
                "deliver_get": p.rates.deliver_get,
                "ack": p.rates.ack,
                "confirm": p.rates.confirm,
                "redeliver": p.rates.redeliver,
            })
        })
        .collect();
    Ok(Json(json!({
        "management_version": RABBITMQ_COMPATIBLE_VERSION,
        "rates_mode": "basic",
        "rabbitmq_version": RABBITMQ_COMPATIBLE_VERSION,
        "product_name": "Warren",
        "product_version": env!("CARGO_PKG_VERSION"),
        "cluster_name": NODE,
        "erlang_version": "none",
        "erlang_full_version": "none",
        "release_series_support_status": "supported",
        "disable_stats": false,
        "enable_queue_totals": true,
        "node": NODE,
        "listeners": listeners(&api),
        "contexts": [{"node": NODE, "description": "RabbitMQ Management", "path": "/", "port": api.management_port.to_string()}],
        "exchange_types": [
            {"name": "direct", "description": "AMQP direct exchange, as per the AMQP specification", "enabled": true},
            {"name": "fanout", "description": "AMQP fanout exchange, as per the AMQP specification", "enabled": true},
            {"name": "headers", "description": "AMQP headers exchange, as per the AMQP specification", "enabled": true},
            {"name": "topic", "description": "AMQP topic exchange, as per the AMQP specification", "enabled": true},
            {"name": "x-delayed-message", "description": "Delayed message exchange", "enabled": true},
            {"name": "x-jms-topic", "description": "JMS topic exchange", "enabled": true},
            {"name": "x-message-deduplication", "description": "Message Deduplication Exchange", "enabled": true},
        ],
        "queue_totals": {
            "messages": t.messages_ready + t.messages_unacknowledged,
            "messages_details": rate(0.0),
            "messages_ready": t.messages_ready,
            "messages_ready_details": rate(0.0),
            "messages_unacknowledged": t.messages_unacknowledged,
            "messages_unacknowledged_details": rate(0.0),
        },
        "object_totals": {
            "connections": t.connections,
            "channels": t.channels,
            "queues": t.queues,
            "exchanges": t.exchanges,
            "consumers": t.consumers,
        },
        "message_stats": message_stats(&overall.totals, &overall.rates),
        "churn_rates": {
            "connection_created": n(&churn.connections_opened),
            "connection_created_details": rate(0.0),
            "connection_closed": n(&churn.connections_closed),
            "connection_closed_details": rate(0.0),
            "channel_created": n(&churn.channels_opened),
            "channel_created_details": rate(0.0),
            "channel_closed": n(&churn.channels_closed),
            "channel_closed_details": rate(0.0),
            "queue_declared": t.queues_declared,
            "queue_declared_details": rate(0.0),
            "queue_created": t.queues_created,
            "queue_created_details": rate(0.0),
            "queue_deleted": t.queues_deleted,
            "queue_deleted_details": rate(0.0),
        },
        "statistics_db_event_queue": 0,
        "sample_history": history,
    })))
}

fn node_json(f: &NodeFacts) -> Value {
    json!({
        "name": NODE,
        "type": "disc",
        "running": true,
        "being_drained": false,
        "uptime": f.uptime_ms,
        "mem_used": f.mem_used,
        "mem_used_details": rate(0.0),
        "mem_limit": f.mem_limit,
        "mem_alarm": f.mem_alarm,
        "mem_calculation_strategy": "rss",
        "disk_free": f.disk_free,
        "disk_free_details": rate(0.0),
        "disk_free_limit": f.disk_free_limit,
        "disk_free_alarm": f.disk_free_alarm,
        "fd_used": f.fd_used,
        "fd_used_details": rate(0.0),
        "fd_total": f.fd_total,
        "sockets_used": 0,
        "sockets_total": f.fd_total,
        "proc_used": 0,
        "proc_total": 1_048_576,
        "run_queue": 0,
        "processors": f.processors,
        "os_pid": f.os_pid.to_string(),
        "rates_mode": "basic",
        "enabled_plugins": ["rabbitmq_management", "rabbitmq_prometheus"],
        "net_ticktime": 60,
        "partitions": [],
        "applications": [],
        "contexts": [],
        "log_files": [],
        "config_files": [],
        "db_dir": "",
        "exchange_types": [],
        "auth_mechanisms": [],
        "cluster_links": [],
        "metrics_gc_queue_length": {},
    })
}

pub async fn nodes(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    auth::user(&api, &headers, peer, Need::Management)?;
    Ok(Json(Value::Array(vec![node_json(&facts(&api.broker))])))
}

pub async fn node(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    auth::user(&api, &headers, peer, Need::Management)?;
    if name != NODE {
        return Err(ApiError::not_found());
    }
    Ok(Json(node_json(&facts(&api.broker))))
}

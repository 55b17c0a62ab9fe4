//! Queues: list, show, declare, delete, purge, and get messages (`POST …/get` with each
//! ackmode), with RabbitMQ's fields and answers.

use super::listing::{answer, ListQuery};
use super::objects;
use super::reply::{put_done, ApiError, ApiResult};
use super::request::{arguments_of, json_body};
use super::scope::{self, recorded, visible_vhosts};
use super::Api;
use crate::broker::access::{Kind, Resource};
use crate::broker::message::QueuedMessage;
use crate::broker::vhost::{generate_name, QueueDeclare};
use crate::protocol::json::properties_to_json;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::net::SocketAddr;

type Peer = ConnectInfo<SocketAddr>;

/// The connection id management actions use: no connection owns what they declare.
pub const API_CONNECTION: u64 = 0;

async fn list(
    api: &Api,
    headers: &HeaderMap,
    peer: SocketAddr,
    vhost: Option<&str>,
    q: &ListQuery,
) -> ApiResult<Json<Value>> {
    let (_, vhosts) = visible_vhosts(api, headers, peer, vhost)?;
    let mut items = Vec::new();
    for v in vhosts {
        for queue in v.queue_list() {
            items.push(objects::queue(api, &v.name, &queue));
        }
    }
    Ok(Json(answer(items, q)?))
}

pub async fn list_all(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    list(&api, &headers, peer, None, &q).await
}

pub async fn list_in_vhost(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    list(&api, &headers, peer, Some(&vhost), &q).await
}

pub async fn show(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let s = scope::vhost(&api, &headers, peer, &vhost)?;
    let q = s.vhost.find_queue(&name).ok_or_else(ApiError::not_found)?;
    Ok(Json(objects::queue(&api, &vhost, &q)))
}

/// PUT queues/{vhost}/{name}: `{durable, auto_delete, arguments}`; 201 when created, 204
/// when it existed with the same properties, 400 with RabbitMQ's text when they differ.
pub async fn declare(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path((vhost, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let s = scope::vhost(&api, &headers, peer, &vhost)?;
    let body = json_body(&body)?;
    let flag = |key: &str, default: bool| body.get(key).and_then(Value::as_bool).unwrap_or(default);
    let arguments = arguments_of(&body)?;
    let server_named = name.is_empty();
    let name = if server_named {
        generate_name("amq.gen-")
    } else {
        name
    };
    if !server_named && name.starts_with("amq.") {
        return Err(ApiError::from_amqp(
            crate::error::AmqpError::access_refused(format!(
                "queue name '{name}' contains reserved prefix 'amq.*'"
            )),
        ));
    }
    s.grant
        .check(Kind::Configure, Resource::Queue, &name)
        .map_err(ApiError::from_amqp)?;
    let existed = s.vhost.find_queue(&name).is_some();
    let access = api.broker.access();
    let policy = access.queue_policy(
        &vhost,
        &name,
        crate::broker::access::policies::is_quorum(&arguments),
    );
    let declared = s
        .vhost
        .declare_queue(
            &QueueDeclare {
                name: &name,
                server_named,
                max_queues: access.vhost_limits(&vhost).max_queues,
                policy: policy.as_ref(),
                passive: false,
                durable: flag("durable", true),
                exclusive: false,
                auto_delete: flag("auto_delete", false),
                arguments: &arguments,
            },
            API_CONNECTION,
        )
        .map_err(ApiError::from_amqp)?;
    recorded(declared.recording).await?;
    Ok(put_done(!existed))
}

#[derive(Debug, Default, Deserialize)]
pub struct DeleteQuery {
    #[serde(rename = "if-empty")]
    if_empty: Option<String>,
    #[serde(rename = "if-unused")]
    if_unused: Option<String>,
}

pub async fn delete(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path((vhost, name)): Path<(String, String)>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    let s = scope::vhost(&api, &headers, peer, &vhost)?;
    let queue = s.vhost.find_queue(&name).ok_or_else(ApiError::not_found)?;
    s.grant
        .check(Kind::Configure, Resource::Queue, &name)
        .map_err(ApiError::from_amqp)?;
    let yes = |v: &Option<String>| v.as_deref() == Some("true");
    if yes(&q.if_unused) && queue.consumer_count() > 0 {
        return Err(ApiError::bad_request(format!(
            "queue '{name}' in vhost '{vhost}' in use"
        )));
    }
    if yes(&q.if_empty) && queue.message_count() > 0 {
        return Err(ApiError::bad_request(format!(
            "queue '{name}' in vhost '{vhost}' not empty"
        )));
    }
    let (_, recording) = s.vhost.remove_queue(&queue);
    recorded(recording).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// DELETE queues/{vhost}/{name}/contents: purge.
pub async fn purge(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let s = scope::vhost(&api, &headers, peer, &vhost)?;
    let queue = s.vhost.find_queue(&name).ok_or_else(ApiError::not_found)?;
    s.grant
        .check(Kind::Read, Resource::Queue, &name)
        .map_err(ApiError::from_amqp)?;
    queue.purge();
    Ok(StatusCode::NO_CONTENT)
}

/// GET queues/{vhost}/{name}/bindings: the default exchange's binding first.
pub async fn bindings(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let s = scope::vhost(&api, &headers, peer, &vhost)?;
    let queue = s.vhost.find_queue(&name).ok_or_else(ApiError::not_found)?;
    let mut out = vec![objects::default_binding(&vhost, &name)];
    for x in s.vhost.exchange_list() {
        for b in x.bindings() {
            if matches!(&b.dest, crate::broker::exchange::Dest::Queue(q) if std::sync::Arc::ptr_eq(q, &queue))
            {
                out.push(objects::binding(&vhost, &x.spec.name, &b));
            }
        }
    }
    Ok(Json(Value::Array(out)))
}

/// How `POST …/get` settles what it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckMode {
    AckRequeueTrue,
    AckRequeueFalse,
    RejectRequeueTrue,
    RejectRequeueFalse,
}

/// POST queues/{vhost}/{name}/get: `{count, ackmode, encoding, truncate}`. Messages taken
/// with a requeue mode go back (flagged redelivered) after all are read, so `count` reads
/// `count` different messages, as RabbitMQ does.
pub async fn get_messages(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path((vhost, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let s = scope::vhost(&api, &headers, peer, &vhost)?;
    let body = json_body(&body)?;
    let count = body
        .get("count")
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
        .ok_or_else(|| ApiError::bad_request("count is required (an integer)"))?;
    let mode = match body.get("ackmode").and_then(Value::as_str) {
        Some("ack_requeue_true") => AckMode::AckRequeueTrue,
        Some("ack_requeue_false") => AckMode::AckRequeueFalse,
        Some("reject_requeue_true") => AckMode::RejectRequeueTrue,
        Some("reject_requeue_false") => AckMode::RejectRequeueFalse,
        other => {
            return Err(ApiError::bad_request(format!(
                "Unknown ackmode: {}",
                other.unwrap_or("none")
            )))
        }
    };
    let base64_only = match body.get("encoding").and_then(Value::as_str) {
        None | Some("auto") => false,
        Some("base64") => true,
        Some(other) => return Err(ApiError::bad_request(format!("Unknown encoding: {other}"))),
    };
    let truncate = body
        .get("truncate")
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
    let queue = s.vhost.find_queue(&name).ok_or_else(ApiError::not_found)?;
    s.grant
        .check(Kind::Read, Resource::Queue, &name)
        .map_err(ApiError::from_amqp)?;
    let mut taken: Vec<QueuedMessage> = Vec::new();
    let mut out = Vec::new();
    for _ in 0..count {
        let (got, fx) = queue.get(false);
        s.vhost.carry_out(&queue, fx);
        let Some((m, remaining)) = got else { break };
        out.push(message_json(&m, remaining, base64_only, truncate));
        taken.push(m);
    }
    let n = taken.len();
    match mode {
        AckMode::AckRequeueTrue | AckMode::RejectRequeueTrue => {
            let fx = queue.requeue(taken);
            s.vhost.carry_out(&queue, fx);
        }
        AckMode::AckRequeueFalse => {
            queue.forget(taken.iter());
            queue.acked(n);
        }
        AckMode::RejectRequeueFalse => {
            // Dead-lettered (reason rejected) when the queue has a dead-letter exchange.
            let fx = queue.reject(taken);
            s.vhost.carry_out(&queue, fx);
        }
    }
    Ok(Json(Value::Array(out)))
}

fn message_json(
    m: &QueuedMessage,
    remaining: u32,
    base64_only: bool,
    truncate: Option<u64>,
) -> Value {
    let msg = &m.message;
    let mut body = msg.body();
    if let Some(t) = truncate {
        body = &body[..body.len().min(t as usize)];
    }
    let (payload, encoding) = match std::str::from_utf8(body) {
        Ok(text) if !base64_only => (text.to_string(), "string"),
        _ => (
            base64::engine::general_purpose::STANDARD.encode(body),
            "base64",
        ),
    };
    let properties: Map<String, Value> = properties_to_json(msg.properties());
    json!({
        "payload": payload,
        "payload_bytes": msg.body().len(),
        "payload_encoding": encoding,
        "redelivered": m.redelivered,
        "exchange": msg.exchange(),
        "routing_key": msg.routing_key(),
        "message_count": remaining,
        "properties": properties,
    })
}

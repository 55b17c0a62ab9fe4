//! Exchanges (list, show, declare, delete, publish) and bindings (list, create, show,
//! delete), with RabbitMQ's fields, URLs and answers.

use super::listing::{answer, ListQuery};
use super::objects;
use super::reply::{put_done, ApiError, ApiResult};
use super::request::{arguments_of, json_body};
use super::scope::{self, exchange_name, recorded, visible_vhosts, Scope};
use super::Api;
use crate::broker::access::{Kind, Resource};
use crate::broker::exchange::Dest;
use crate::broker::stats::ExchangeTotals;
use crate::broker::vhost::{ConfirmTicket, ExchangeDeclare, Publish, Published, VHost};
use crate::protocol::json::{json_to_table, properties_from_json, table_to_json};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::sync::Arc;

type Peer = ConnectInfo<SocketAddr>;

fn exchanges_of(api: &Api, v: &VHost) -> Vec<Value> {
    let totals = api.broker.registry().exchange_totals(&v.name);
    let stats = |name: &str| exchange_stats(api, &v.name, name, totals.get(name).copied());
    let mut items = vec![objects::default_exchange(&v.name, stats(""))];
    items.extend(
        v.exchange_list()
            .iter()
            .map(|x| objects::exchange(&v.name, x, stats(&x.spec.name))),
    );
    items
}

/// An exchange's counts now with its last sampled rates; none before its first publish.
fn exchange_stats(
    api: &Api,
    vhost: &str,
    name: &str,
    totals: Option<ExchangeTotals>,
) -> Option<objects::ExchangeStats> {
    let totals = totals?;
    Some(objects::ExchangeStats {
        totals,
        rates: api.broker.rates().exchange(vhost, name).rates,
    })
}

pub async fn list_all(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let (_, vhosts) = visible_vhosts(&api, &headers, peer, None)?;
    let items = vhosts.iter().flat_map(|v| exchanges_of(&api, v)).collect();
    Ok(Json(answer(items, &q)?))
}

pub async fn list_in_vhost(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let (_, vhosts) = visible_vhosts(&api, &headers, peer, Some(&vhost))?;
    let items = vhosts.iter().flat_map(|v| exchanges_of(&api, v)).collect();
    Ok(Json(answer(items, &q)?))
}

pub async fn show(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let s = scope::vhost(&api, &headers, peer, &vhost)?;
    let name = exchange_name(&name);
    let totals = api
        .broker
        .registry()
        .exchange_totals(&vhost)
        .get(name)
        .copied();
    let stats = exchange_stats(&api, &vhost, name, totals);
    if name.is_empty() {
        return Ok(Json(objects::default_exchange(&vhost, stats)));
    }
    let x = s.vhost.exchange(name).map_err(|_| ApiError::not_found())?;
    Ok(Json(objects::exchange(&vhost, &x, stats)))
}

/// PUT exchanges/{vhost}/{name}: `{type, durable, auto_delete, internal, arguments}`.
pub async fn declare(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path((vhost, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let s = scope::vhost(&api, &headers, peer, &vhost)?;
    let body = json_body(&body)?;
    let name = exchange_name(&name).to_string();
    if name.is_empty() || name.starts_with("amq.") {
        return Err(ApiError::from_amqp(
            crate::error::AmqpError::access_refused(format!(
                "exchange name '{name}' contains reserved prefix 'amq.*'"
            )),
        ));
    }
    let kind = body
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("type is required"))?;
    let flag = |key: &str, default: bool| body.get(key).and_then(Value::as_bool).unwrap_or(default);
    let arguments = arguments_of(&body)?;
    s.grant
        .check(Kind::Configure, Resource::Exchange, &name)
        .map_err(ApiError::from_amqp)?;
    let existed = s.vhost.exchange(&name).is_ok();
    let policy_alternate = api.broker.access().exchange_policy_alternate(&vhost, &name);
    let recording = s
        .vhost
        .declare_exchange(&ExchangeDeclare {
            name: &name,
            policy_alternate: policy_alternate.as_deref(),
            kind,
            passive: false,
            durable: flag("durable", true),
            auto_delete: flag("auto_delete", false),
            internal: flag("internal", false),
            arguments: &arguments,
        })
        .map_err(ApiError::from_amqp)?;
    recorded(recording).await?;
    Ok(put_done(!existed))
}

#[derive(Debug, Default, Deserialize)]
pub struct DeleteQuery {
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
    let name = exchange_name(&name);
    if !name.is_empty() && !name.starts_with("amq.") {
        s.vhost.exchange(name).map_err(|_| ApiError::not_found())?;
        s.grant
            .check(Kind::Configure, Resource::Exchange, name)
            .map_err(ApiError::from_amqp)?;
    }
    let recording = s
        .vhost
        .delete_exchange(name, q.if_unused.as_deref() == Some("true"))
        .map_err(ApiError::from_amqp)?;
    recorded(recording).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// POST exchanges/{vhost}//publish: the default exchange.
pub async fn publish_default(
    api: State<Api>,
    peer: Peer,
    headers: HeaderMap,
    Path(vhost): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    publish(api, peer, headers, Path((vhost, String::new())), body).await
}

/// POST exchanges/{vhost}/{name}/publish: `{routing_key, properties, payload,
/// payload_encoding}` → `{"routed": bool}`.
pub async fn publish(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path((vhost, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let s = scope::vhost(&api, &headers, peer, &vhost)?;
    let body = json_body(&body)?;
    let name = exchange_name(&name).to_string();
    let routing_key = body
        .get("routing_key")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("routing_key is required"))?;
    let payload = body
        .get("payload")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("payload is required"))?;
    let payload = match body.get("payload_encoding").and_then(Value::as_str) {
        None | Some("string") => payload.as_bytes().to_vec(),
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(payload)
            .map_err(|e| ApiError::bad_request(format!("payload is not base64: {e}")))?,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "payload_encoding '{other}' is not string or base64"
            )))
        }
    };
    let properties = match body.get("properties") {
        Some(Value::Object(m)) => properties_from_json(m).map_err(ApiError::bad_request)?,
        None | Some(Value::Null) => {
            properties_from_json(&Map::new()).map_err(ApiError::bad_request)?
        }
        Some(_) => return Err(ApiError::bad_request("properties must be an object")),
    };
    if !name.is_empty() {
        s.vhost.exchange(&name).map_err(|_| ApiError::not_found())?;
    }
    s.grant
        .check(Kind::Write, Resource::Exchange, &name)
        .map_err(ApiError::from_amqp)?;
    let mut ticket = ConfirmTicket::default();
    let published = s
        .vhost
        .publish(
            &Publish {
                exchange: &name,
                routing_key: routing_key.as_bytes(),
                routing_key_text: Some(routing_key),
                properties: &properties,
                body: &payload,
                grant: &s.grant,
                reply_queue: None,
                kept: None,
            },
            &mut ticket,
        )
        .map_err(ApiError::from_amqp)?;
    // Like a confirm, the answer waits for persistent messages to reach the disk.
    if let Some(mut rounds) = api.broker.durable_rounds() {
        for (log, position) in ticket.durable.drain(..) {
            while !log.is_durable(position) {
                if rounds.changed().await.is_err() {
                    break;
                }
            }
        }
    }
    // RabbitMQ publishes through a channel of its own: the exchange and the totals count it.
    let (reached, rejected) = match published {
        Published::Enqueued { queues, rejected } => (queues, rejected),
        Published::Unroutable { .. } | Published::Delayed => (0, false),
    };
    let routed = !matches!(published, Published::Unroutable { .. });
    api.broker
        .registry()
        .count_publish_without_channel(&vhost, &name, reached, routed, rejected);
    Ok(Json(json!({ "routed": routed })))
}

/// Every binding of a vhost (the default exchange's first, as RabbitMQ lists them).
fn bindings_of(v: &VHost) -> Vec<Value> {
    let mut items: Vec<Value> = v
        .queue_list()
        .iter()
        .map(|q| objects::default_binding(&v.name, q.name()))
        .collect();
    for x in v.exchange_list() {
        items.extend(
            x.bindings()
                .iter()
                .map(|b| objects::binding(&v.name, &x.spec.name, b)),
        );
    }
    items
}

pub async fn list_bindings(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let (_, vhosts) = visible_vhosts(&api, &headers, peer, None)?;
    let items = vhosts.iter().flat_map(|v| bindings_of(v)).collect();
    Ok(Json(answer(items, &q)?))
}

pub async fn list_vhost_bindings(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let (_, vhosts) = visible_vhosts(&api, &headers, peer, Some(&vhost))?;
    let items = vhosts.iter().flat_map(|v| bindings_of(v)).collect();
    Ok(Json(answer(items, &q)?))
}

/// Where a binding URL points: `q` (a queue) or `e` (an exchange).
fn dest_kind(kind: &str) -> ApiResult<bool> {
    match kind {
        "q" => Ok(true),
        "e" => Ok(false),
        _ => Err(ApiError::not_found()),
    }
}

/// The bindings from `source` to a destination (`/e/{x}/q/{q}` or `/e/{x}/e/{x2}`).
fn bindings_between(s: &Scope, source: &str, to_queue: bool, dest: &str) -> ApiResult<Vec<Value>> {
    let x = s
        .vhost
        .exchange(source)
        .map_err(|_| ApiError::not_found())?;
    let queue = if to_queue {
        Some(s.vhost.find_queue(dest).ok_or_else(ApiError::not_found)?)
    } else {
        s.vhost.exchange(dest).map_err(|_| ApiError::not_found())?;
        None
    };
    Ok(x.bindings()
        .iter()
        .filter(|b| match (&b.dest, &queue) {
            (Dest::Queue(q), Some(want)) => Arc::ptr_eq(q, want),
            (Dest::Exchange(name), None) => &**name == dest,
            _ => false,
        })
        .map(|b| objects::binding(&s.vhost.name, source, b))
        .collect())
}

pub async fn list_between(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path((vhost, source, kind, dest)): Path<(String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    let s = scope::vhost(&api, &headers, peer, &vhost)?;
    let to_queue = dest_kind(&kind)?;
    Ok(Json(Value::Array(bindings_between(
        &s,
        exchange_name(&source),
        to_queue,
        &dest,
    )?)))
}

/// POST bindings/{vhost}/e/{source}/{q|e}/{dest}: `{routing_key, arguments}` → 201 with
/// the new binding's URL in Location.
pub async fn create_binding(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path((vhost, source, kind, dest)): Path<(String, String, String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let s = scope::vhost(&api, &headers, peer, &vhost)?;
    let to_queue = dest_kind(&kind)?;
    let body = json_body(&body)?;
    let routing_key = body
        .get("routing_key")
        .and_then(Value::as_str)
        .unwrap_or("");
    let arguments = arguments_of(&body)?;
    let source = exchange_name(&source);
    // queue.bind's rights: write on the destination, read on the source.
    let resource = if to_queue {
        Resource::Queue
    } else {
        Resource::Exchange
    };
    s.grant
        .check(Kind::Write, resource, &dest)
        .map_err(ApiError::from_amqp)?;
    s.grant
        .check(Kind::Read, Resource::Exchange, source)
        .map_err(ApiError::from_amqp)?;
    let recording = if to_queue {
        s.vhost.bind_queue(
            &dest,
            source,
            routing_key,
            &arguments,
            super::queues_api::API_CONNECTION,
        )
    } else {
        s.vhost
            .bind_exchange(&dest, source, routing_key, &arguments)
    }
    .map_err(ApiError::from_amqp)?;
    recorded(recording).await?;
    let key = objects::properties_key(routing_key, &table_to_json(&arguments));
    let location = format!(
        "/api/bindings/{}/e/{}/{kind}/{}/{}",
        encode(&vhost),
        encode(source),
        encode(&dest),
        key
    );
    Ok((StatusCode::CREATED, [(header::LOCATION, location)]).into_response())
}

/// Percent-encodes a path segment.
fn encode(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn find_binding(
    s: &Scope,
    source: &str,
    to_queue: bool,
    dest: &str,
    props: &str,
) -> ApiResult<Value> {
    bindings_between(s, source, to_queue, dest)?
        .into_iter()
        // The key as listed (rabbitmqadmin encodes it once more), or as the Location header
        // gives it (its percent-escapes decoded by the router).
        .find(|b| {
            let key = b.get("properties_key").and_then(Value::as_str);
            key == Some(props) || key == Some(objects::quoted(props).as_str())
        })
        .ok_or_else(ApiError::not_found)
}

pub async fn show_binding(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path((vhost, source, kind, dest, props)): Path<(String, String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    let s = scope::vhost(&api, &headers, peer, &vhost)?;
    let to_queue = dest_kind(&kind)?;
    Ok(Json(find_binding(
        &s,
        exchange_name(&source),
        to_queue,
        &dest,
        &props,
    )?))
}

pub async fn delete_binding(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path((vhost, source, kind, dest, props)): Path<(String, String, String, String, String)>,
) -> ApiResult<StatusCode> {
    let s = scope::vhost(&api, &headers, peer, &vhost)?;
    let to_queue = dest_kind(&kind)?;
    let source = exchange_name(&source);
    let b = find_binding(&s, source, to_queue, &dest, &props)?;
    let resource = if to_queue {
        Resource::Queue
    } else {
        Resource::Exchange
    };
    s.grant
        .check(Kind::Write, resource, &dest)
        .map_err(ApiError::from_amqp)?;
    s.grant
        .check(Kind::Read, Resource::Exchange, source)
        .map_err(ApiError::from_amqp)?;
    let routing_key = b.get("routing_key").and_then(Value::as_str).unwrap_or("");
    let arguments = match b.get("arguments") {
        Some(Value::Object(m)) => json_to_table(m),
        _ => Default::default(),
    };
    let recording = if to_queue {
        s.vhost.unbind_queue(
            &dest,
            source,
            routing_key,
            &arguments,
            super::queues_api::API_CONNECTION,
        )
    } else {
        s.vhost
            .unbind_exchange(&dest, source, routing_key, &arguments)
    }
    .map_err(ApiError::from_amqp)?;
    recorded(recording).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// GET exchanges/{vhost}/{name}/bindings/source (or /destination).
pub async fn exchange_bindings(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path((vhost, name, side)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let s = scope::vhost(&api, &headers, peer, &vhost)?;
    let name = exchange_name(&name);
    let out: Vec<Value> = match side.as_str() {
        "source" => {
            let x = s.vhost.exchange(name).map_err(|_| ApiError::not_found())?;
            x.bindings()
                .iter()
                .map(|b| objects::binding(&vhost, name, b))
                .collect()
        }
        "destination" => s
            .vhost
            .exchange_list()
            .iter()
            .flat_map(|x| {
                x.bindings()
                    .into_iter()
                    .filter(|b| matches!(&b.dest, Dest::Exchange(d) if &**d == name))
                    .map(|b| objects::binding(&vhost, &x.spec.name, &b))
                    .collect::<Vec<_>>()
            })
            .collect(),
        _ => return Err(ApiError::not_found()),
    };
    Ok(Json(Value::Array(out)))
}

//! Definitions export and import, and the health checks container platforms probe.

use super::auth::{self, Need};
use super::reply::{ApiError, ApiResult};
use super::Api;
use crate::broker::definitions::DefinitionsFile;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::net::SocketAddr;

type Peer = ConnectInfo<SocketAddr>;

pub async fn export_definitions(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
) -> ApiResult<Json<DefinitionsFile>> {
    auth::user(&api, &headers, peer, Need::Administrator)?;
    Ok(Json(api.broker.export_definitions()))
}

/// A file with a bad item imports nothing (400 naming the item and the field).
pub async fn import_definitions(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    auth::user(&api, &headers, peer, Need::Administrator)?;
    let file: DefinitionsFile =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let broker = api.broker.clone();
    let report = tokio::task::spawn_blocking(move || broker.import_definitions(&file))
        .await
        .map_err(|e| ApiError::internal(std::io::Error::other(e)))?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => ApiError::bad_request(e.to_string()),
            _ => ApiError::internal(e),
        })?;
    for skipped in &report.skipped {
        tracing::warn!("definitions import: skipped {skipped}");
    }
    Ok(StatusCode::NO_CONTENT)
}

fn status(ok: bool, reason: &str) -> Response {
    if ok {
        Json(json!({"status": "ok"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "failed", "reason": reason})),
        )
            .into_response()
    }
}

pub async fn alarms(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
) -> ApiResult<Response> {
    auth::user(&api, &headers, peer, Need::Management)?;
    let raised = api.broker.alarms().map(|a| *a.borrow()).unwrap_or_default();
    if !raised.any() {
        return Ok(status(true, ""));
    }
    let mut alarms = Vec::new();
    if raised.memory {
        alarms.push(json!({"node": super::objects::NODE, "resource": "memory"}));
    }
    if raised.disk {
        alarms.push(json!({"node": super::objects::NODE, "resource": "disk"}));
    }
    Ok((
        StatusCode::SERVICE_UNAVAILABLE,
        Json(
            json!({"status": "failed", "reason": "resource alarm(s) in effect", "alarms": alarms}),
        ),
    )
        .into_response())
}

/// GET health/checks/port-listener/{port}: a listener of this node is on that port.
pub async fn port_listener(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    axum::extract::Path(port): axum::extract::Path<String>,
) -> ApiResult<Response> {
    auth::user(&api, &headers, peer, Need::Management)?;
    let port: u16 = port
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{port} is not a port number")))?;
    let ports: Vec<u16> = api.listeners.iter().map(|(_, a)| a.port()).collect();
    if ports.contains(&port) {
        return Ok(status(true, ""));
    }
    Ok((
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "failed", "reason": format!("No active listener on port {port}"), "missing": port, "ports": ports})),
    )
        .into_response())
}

/// GET health/checks/protocol-listener/{protocol}: `amqp`, `amqp/ssl`, `http`, ….
pub async fn protocol_listener(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    axum::extract::Path(protocol): axum::extract::Path<String>,
) -> ApiResult<Response> {
    auth::user(&api, &headers, peer, Need::Management)?;
    let protocols: Vec<&str> = api.listeners.iter().map(|(p, _)| *p).collect();
    // RabbitMQ accepts the AMQP aliases too.
    let wanted = match protocol.as_str() {
        "amqp091" | "amqp0.9.1" | "amqp0-9-1" => "amqp",
        "amqps" => "amqp/ssl",
        "https" => "https",
        p => p,
    };
    if protocols.contains(&wanted) {
        return Ok(status(true, ""));
    }
    Ok((
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "failed", "reason": format!("No active listener for protocol {protocol}"), "missing": protocol, "protocols": protocols})),
    )
        .into_response())
}

pub async fn virtual_hosts(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
) -> ApiResult<Response> {
    auth::user(&api, &headers, peer, Need::Management)?;
    let access = api.broker.access();
    let down: Vec<String> = access
        .vhost_names()
        .into_iter()
        .filter(|v| api.broker.vhost(v).is_none())
        .collect();
    Ok(status(
        down.is_empty(),
        &format!("Virtual hosts down: {}", down.join(", ")),
    ))
}

pub async fn ready_to_serve_clients(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
) -> ApiResult<Response> {
    auth::user(&api, &headers, peer, Need::Management)?;
    Ok(status(true, ""))
}

//! Connections (list, show, close with `X-Reason`), channels and consumers. A user tagged
//! only `management` sees its own connections; `monitoring` and `administrator` see all.

use super::auth::{self, Need};
use super::listing::{answer, ListQuery};
use super::objects;
use super::reply::{ApiError, ApiResult};
use super::scope::visible_vhosts;
use super::Api;
use crate::broker::access::User;
use crate::broker::registry::ConnectionInfo;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;

type Peer = ConnectInfo<SocketAddr>;

fn sees_all(user: &User) -> bool {
    user.has_tag("administrator") || user.has_tag("monitoring")
}

/// The connections `user` may see, of one vhost or all.
fn visible(api: &Api, user: &User, vhost: Option<&str>) -> Vec<Arc<ConnectionInfo>> {
    api.broker
        .registry()
        .connections()
        .into_iter()
        .filter(|c| sees_all(user) || c.details.user == user.name)
        .filter(|c| vhost.is_none_or(|v| c.details.vhost == v))
        .collect()
}

pub async fn list_all(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let user = auth::user(&api, &headers, peer, Need::Management)?;
    let items = visible(&api, &user, None)
        .iter()
        .map(|c| objects::connection(c, &api.broker.rates().connection(c.id)))
        .collect();
    Ok(Json(answer(items, &q)?))
}

pub async fn list_in_vhost(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let (user, _) = visible_vhosts(&api, &headers, peer, Some(&vhost))?;
    let items = visible(&api, &user, Some(&vhost))
        .iter()
        .map(|c| objects::connection(c, &api.broker.rates().connection(c.id)))
        .collect();
    Ok(Json(answer(items, &q)?))
}

fn find(api: &Api, user: &User, name: &str) -> ApiResult<Arc<ConnectionInfo>> {
    api.broker
        .registry()
        .by_name(name)
        .filter(|c| sees_all(user) || c.details.user == user.name)
        .ok_or_else(ApiError::not_found)
}

pub async fn show(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = auth::user(&api, &headers, peer, Need::Management)?;
    let c = find(&api, &user, &name)?;
    Ok(Json(objects::connection(
        &c,
        &api.broker.rates().connection(c.id),
    )))
}

/// DELETE connections/{name}: the client gets connection.close 320 CONNECTION_FORCED with the
/// `X-Reason` header's text (RabbitMQ's default: "Closed via management plugin").
pub async fn close(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let user = auth::user(&api, &headers, peer, Need::Management)?;
    let c = find(&api, &user, &name)?;
    if !user.has_tag("administrator") && c.details.user != user.name {
        return Err(ApiError::not_authorised("Not administrator user"));
    }
    let reason = headers
        .get("x-reason")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Closed via management plugin");
    c.request_close(reason.to_string());
    Ok(StatusCode::NO_CONTENT)
}

fn channels_of(api: &Api, conns: &[Arc<ConnectionInfo>]) -> Vec<Value> {
    let rates = api.broker.rates();
    conns
        .iter()
        .flat_map(|c| {
            c.channels()
                .into_iter()
                .map(|(n, s)| objects::channel(c, n, &s, &rates.channel(c.id, n).rates))
                .collect::<Vec<_>>()
        })
        .collect()
}

pub async fn list_channels(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let user = auth::user(&api, &headers, peer, Need::Management)?;
    Ok(Json(answer(
        channels_of(&api, &visible(&api, &user, None)),
        &q,
    )?))
}

pub async fn list_vhost_channels(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let (user, _) = visible_vhosts(&api, &headers, peer, Some(&vhost))?;
    Ok(Json(answer(
        channels_of(&api, &visible(&api, &user, Some(&vhost))),
        &q,
    )?))
}

pub async fn connection_channels(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = auth::user(&api, &headers, peer, Need::Management)?;
    let c = find(&api, &user, &name)?;
    Ok(Json(Value::Array(channels_of(&api, &[c]))))
}

/// GET channels/{name}: one channel, named `"<connection> (<number>)"`.
pub async fn show_channel(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = auth::user(&api, &headers, peer, Need::Management)?;
    channels_of(&api, &visible(&api, &user, None))
        .into_iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name.as_str()))
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

async fn consumers(
    api: &Api,
    headers: &HeaderMap,
    peer: SocketAddr,
    vhost: Option<&str>,
    q: &ListQuery,
) -> ApiResult<Json<Value>> {
    let (user, vhosts) = visible_vhosts(api, headers, peer, vhost)?;
    let registry = api.broker.registry();
    let mut items = Vec::new();
    for v in vhosts {
        for queue in v.queue_list() {
            for c in queue.consumers() {
                let conn = registry.connection(c.conn_id);
                if !sees_all(&user)
                    && conn
                        .as_ref()
                        .is_none_or(|conn| conn.details.user != user.name)
                {
                    continue;
                }
                items.push(objects::consumer(&v.name, &queue, &c, conn.as_deref()));
            }
        }
    }
    Ok(Json(answer(items, q)?))
}

pub async fn list_consumers(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    consumers(&api, &headers, peer, None, &q).await
}

pub async fn list_vhost_consumers(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    consumers(&api, &headers, peer, Some(&vhost), &q).await
}

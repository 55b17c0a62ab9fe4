//! Which vhosts a request may touch and with which rights: the user's tags decide what it
//! sees, its permissions (the same regexes as on AMQP) what it may change.

use super::auth::{self, sees_vhost, Need};
use super::reply::{ApiError, ApiResult};
use super::Api;
use crate::broker::access::{Grant, User};
use crate::broker::vhost::Recording;
use crate::broker::vhost::VHost;
use axum::http::HeaderMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// A logged-in user inside one vhost.
pub struct Scope {
    pub user: Arc<User>,
    pub vhost: Arc<VHost>,
    /// The user's rights in the vhost (checked as on AMQP).
    pub grant: Grant,
}

/// The vhost `name` for this request: 404 when it does not exist, 401 when the user may not
/// see it.
pub fn vhost(api: &Api, headers: &HeaderMap, peer: SocketAddr, name: &str) -> ApiResult<Scope> {
    let user = auth::user(api, headers, peer, Need::Management)?;
    let vhost = api
        .broker
        .vhost(name)
        .filter(|v| !v.is_deleted())
        .ok_or_else(ApiError::not_found)?;
    if !sees_vhost(api, &user, name) {
        return Err(ApiError::not_authorised(
            "Not authorised to access virtual host",
        ));
    }
    let grant = Grant::new(
        api.broker.access().clone(),
        user.clone(),
        vhost.name.clone(),
    );
    Ok(Scope { user, vhost, grant })
}

/// The vhosts a list shows: one (`Some(name)`) or every one the user sees.
pub fn visible_vhosts(
    api: &Api,
    headers: &HeaderMap,
    peer: SocketAddr,
    only: Option<&str>,
) -> ApiResult<(Arc<User>, Vec<Arc<VHost>>)> {
    match only {
        Some(name) => {
            let s = vhost(api, headers, peer, name)?;
            Ok((s.user, vec![s.vhost]))
        }
        None => {
            let user = auth::user(api, headers, peer, Need::Management)?;
            let all = api
                .broker
                .vhosts()
                .into_iter()
                .filter(|v| !v.is_deleted() && sees_vhost(api, &user, &v.name))
                .collect();
            Ok((user, all))
        }
    }
}

/// Waits until a durable change is on disk (as AMQP replies wait), or reports why not.
pub async fn recorded(mut recording: Recording) -> ApiResult<()> {
    recording.finished().await.map_err(ApiError::from_amqp)
}

/// RabbitMQ's name of the default exchange in URLs.
pub fn exchange_name(in_url: &str) -> &str {
    if in_url == "amq.default" {
        ""
    } else {
        in_url
    }
}

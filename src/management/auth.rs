//! HTTP Basic auth against the broker's users, and RabbitMQ's tag-based access: `management`
//! sees what its permissions reach, `policymaker` adds policies, `monitoring` every vhost,
//! `administrator` everything (users, vhosts, permissions, definitions).

use super::reply::{ApiError, ApiResult};
use super::Api;
use crate::broker::access::{LoginError, User};
use axum::http::HeaderMap;
use base64::Engine;
use std::net::SocketAddr;
use std::sync::Arc;

/// What an endpoint needs of the user's tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Management,
    Policymaker,
    Administrator,
}

/// The user behind the request, if its credentials are right and its tags suffice.
pub fn user(api: &Api, headers: &HeaderMap, peer: SocketAddr, need: Need) -> ApiResult<Arc<User>> {
    let (name, password) = basic_credentials(headers).ok_or_else(ApiError::login_failed)?;
    let from_loopback = peer.ip().to_canonical().is_loopback();
    let user = match api
        .broker
        .access()
        .login(&name, password.as_bytes(), from_loopback)
    {
        Ok(u) => u,
        Err(LoginError::Invalid) => {
            tracing::warn!("HTTP access denied: user '{name}' - invalid credentials");
            return Err(ApiError::login_failed());
        }
        Err(LoginError::LoopbackOnly) => {
            tracing::warn!("HTTP access denied: user '{name}' can only log in via localhost");
            return Err(ApiError::login_failed());
        }
    };
    let has = |t: &str| user.has_tag(t);
    let admin = has("administrator");
    let ok = match need {
        Need::Management => admin || has("management") || has("policymaker") || has("monitoring"),
        Need::Policymaker => admin || has("policymaker"),
        Need::Administrator => admin,
    };
    if !ok {
        return Err(ApiError::not_authorised(match need {
            Need::Management => "Not management user",
            Need::Policymaker => "Not policymaker user",
            Need::Administrator => "Not administrator user",
        }));
    }
    Ok(user)
}

/// Runs before any handler: a request without valid credentials of a management user is
/// answered 401 before its body is read, so nobody unauthenticated can make the broker buffer
/// a request body.
pub async fn require_login(
    axum::extract::State(api): axum::extract::State<Api>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let Some(peer) = peer else {
        return ApiError::login_failed().into_response();
    };
    match user(&api, request.headers(), peer, Need::Management) {
        Ok(_) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// A request from the web UI (it sends `X-Requested-With`) gets its 401 without
/// `WWW-Authenticate`, so the browser shows the page's own login form instead of its
/// password prompt.
pub async fn no_browser_prompt(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let from_script = request.headers().contains_key("x-requested-with");
    let mut response = next.run(request).await;
    if from_script {
        response
            .headers_mut()
            .remove(axum::http::header::WWW_AUTHENTICATE);
    }
    response
}

/// Whether `user` may see `vhost` (administrators and monitoring users see every vhost,
/// others those they have a permission in).
pub fn sees_vhost(api: &Api, user: &User, vhost: &str) -> bool {
    user.has_tag("administrator")
        || user.has_tag("monitoring")
        || api.broker.access().may_open(&user.name, vhost)
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}

//! Tenancy at run time: whoami, vhosts, users, permissions, topic permissions, policies and
//! operator policies, with RabbitMQ's fields (strict clients need every one of them).

use super::auth::{self, sees_vhost, Need};
use super::reply::{put_done, ApiError, ApiResult};
use super::request::json_body;
use super::Api;
use crate::broker::access::policies::{
    operator_definition_error, policy_definition_error, ApplyTo, Policy,
};
use crate::broker::access::{
    Algorithm, PasswordHash, PermissionRow, TopicPermissionRow, User, UserRow, VhostRecord,
};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Map, Value};
use std::net::SocketAddr;

type Peer = ConnectInfo<SocketAddr>;

/// The node name shown in `cluster_state`.
const NODE: &str = "warren@localhost";

/// Records a change in the data directory, off the async workers (it writes and syncs a file;
/// a worker blocked on it would stall the AMQP connections it serves).
async fn saved(api: &Api) -> ApiResult<()> {
    let broker = api.broker.clone();
    on_disk(move || broker.save_access()).await
}

/// Runs a disk-bound broker call on the blocking pool.
async fn on_disk<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(std::io::Error::other(e)))?
        .map_err(ApiError::internal)
}

/// Tags as RabbitMQ accepts them: a list, or a comma-separated string.
fn tags_of(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

fn text<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

fn checked_regex(field: &str, pattern: &str) -> ApiResult<()> {
    regex::Regex::new(pattern).map(|_| ()).map_err(|_| {
        ApiError::bad_request(format!(
            "{field}: '{pattern}' is not a valid regular expression"
        ))
    })
}

pub async fn whoami(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let u = auth::user(&api, &headers, peer, Need::Management)?;
    Ok(Json(json!({"name": u.name, "tags": u.tags})))
}

// ------------------------------------------------------------------------------ vhosts ----

fn vhost_json(v: &VhostRecord) -> Value {
    json!({
        "name": v.name,
        "description": v.description,
        "tags": v.tags,
        "default_queue_type": "undefined",
        "metadata": {"description": v.description, "tags": v.tags},
        "tracing": false,
        "cluster_state": {NODE: "running"},
    })
}

pub async fn list_vhosts(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let u = auth::user(&api, &headers, peer, Need::Management)?;
    let access = api.broker.access();
    let list: Vec<Value> = access
        .vhost_names()
        .iter()
        .filter(|v| sees_vhost(&api, &u, v))
        .filter_map(|v| access.vhost_record(v))
        .map(|r| vhost_json(&r))
        .collect();
    Ok(Json(Value::Array(list)))
}

pub async fn get_vhost(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Value>> {
    let u = auth::user(&api, &headers, peer, Need::Management)?;
    match api.broker.access().vhost_record(&vhost) {
        Some(r) if sees_vhost(&api, &u, &vhost) => Ok(Json(vhost_json(&r))),
        _ => Err(ApiError::not_found()),
    }
}

pub async fn put_vhost(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(vhost): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    auth::user(&api, &headers, peer, Need::Administrator)?;
    if vhost.is_empty() {
        return Err(ApiError::bad_request("the vhost name is empty"));
    }
    // RabbitMQ's own example creates a vhost with an empty body.
    let body = json_body(&body)?;
    let access = api.broker.access();
    let existing = access.vhost_record(&vhost);
    let created = existing.is_none();
    let mut record = existing.unwrap_or_else(|| VhostRecord {
        name: vhost.clone(),
        ..Default::default()
    });
    if let Some(d) = text(&body, "description") {
        record.description = d.to_string();
    }
    if body.get("tags").is_some() {
        record.tags = tags_of(body.get("tags"));
    }
    if created {
        let broker = api.broker.clone();
        on_disk(move || broker.add_vhost(record)).await?;
    } else {
        access.put_vhost(record);
    }
    saved(&api).await?;
    Ok(put_done(created))
}

pub async fn delete_vhost(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(vhost): Path<String>,
) -> ApiResult<StatusCode> {
    auth::user(&api, &headers, peer, Need::Administrator)?;
    let broker = api.broker.clone();
    match on_disk(move || broker.delete_vhost(&vhost)).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found()),
    }
}

// ------------------------------------------------------------------------------- users ----

fn user_json(u: &UserRow) -> Value {
    let mut limits = Map::new();
    if let Some(n) = u.limits.max_connections {
        limits.insert("max-connections".into(), n.into());
    }
    if let Some(n) = u.limits.max_channels {
        limits.insert("max-channels".into(), n.into());
    }
    json!({
        "name": u.name,
        "password_hash": u.password_hash,
        "hashing_algorithm": u.algorithm.name(),
        "tags": u.tags,
        "limits": limits,
    })
}

pub async fn list_users(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    auth::user(&api, &headers, peer, Need::Administrator)?;
    let rows = api.broker.access().rows();
    Ok(Json(Value::Array(
        rows.users.iter().map(user_json).collect(),
    )))
}

pub async fn get_user(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> ApiResult<Json<Value>> {
    auth::user(&api, &headers, peer, Need::Administrator)?;
    let rows = api.broker.access().rows();
    rows.users
        .iter()
        .find(|u| u.name == user)
        .map(|u| Json(user_json(u)))
        .ok_or_else(ApiError::not_found)
}

pub async fn put_user(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    auth::user(&api, &headers, peer, Need::Administrator)?;
    let body = json_body(&body)?;
    if name.is_empty() {
        return Err(ApiError::bad_request("the user name is empty"));
    }
    let access = api.broker.access();
    let existing = access.user(&name);
    let password = if let Some(p) = text(&body, "password") {
        PasswordHash::new(p)
    } else if let Some(h) = text(&body, "password_hash") {
        let algorithm = match text(&body, "hashing_algorithm") {
            Some(a) => Algorithm::from_name(a)
                .ok_or_else(|| ApiError::bad_request(format!("unknown hashing_algorithm {a}")))?,
            None => Algorithm::Sha256,
        };
        PasswordHash::from_base64(h, algorithm)
            .ok_or_else(|| ApiError::bad_request("password_hash is not a valid hash"))?
    } else if let Some(u) = &existing {
        u.password.clone()
    } else {
        return Err(ApiError::bad_request(
            "Password or password_hash must be set",
        ));
    };
    let tags = if body.get("tags").is_some() {
        tags_of(body.get("tags"))
    } else {
        existing
            .as_ref()
            .map(|u| u.tags.clone())
            .unwrap_or_default()
    };
    let limits = existing.as_ref().map(|u| u.limits).unwrap_or_default();
    access.put_user(User {
        name,
        password,
        tags,
        limits,
    });
    saved(&api).await?;
    Ok(put_done(existing.is_none()))
}

pub async fn delete_user(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> ApiResult<StatusCode> {
    auth::user(&api, &headers, peer, Need::Administrator)?;
    if !api.broker.access().delete_user(&user) {
        return Err(ApiError::not_found());
    }
    saved(&api).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------------- permissions ----

fn permission_json(p: &PermissionRow) -> Value {
    json!({"user": p.user, "vhost": p.vhost, "configure": p.configure, "write": p.write, "read": p.read})
}

fn permissions_where(api: &Api, keep: impl Fn(&PermissionRow) -> bool) -> Json<Value> {
    let rows = api.broker.access().rows();
    Json(Value::Array(
        rows.permissions
            .iter()
            .filter(|p| keep(p))
            .map(permission_json)
            .collect(),
    ))
}

pub async fn list_permissions(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    auth::user(&api, &headers, peer, Need::Administrator)?;
    Ok(permissions_where(&api, |_| true))
}

pub async fn vhost_permissions(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Value>> {
    auth::user(&api, &headers, peer, Need::Administrator)?;
    if !api.broker.access().vhost_exists(&vhost) {
        return Err(ApiError::not_found());
    }
    Ok(permissions_where(&api, |p| p.vhost == vhost))
}

pub async fn user_permissions(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> ApiResult<Json<Value>> {
    auth::user(&api, &headers, peer, Need::Administrator)?;
    if api.broker.access().user(&user).is_none() {
        return Err(ApiError::not_found());
    }
    Ok(permissions_where(&api, |p| p.user == user))
}

pub async fn get_permission(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path((vhost, user)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    auth::user(&api, &headers, peer, Need::Administrator)?;
    let rows = api.broker.access().rows();
    rows.permissions
        .iter()
        .find(|p| p.vhost == vhost && p.user == user)
        .map(|p| Json(permission_json(p)))
        .ok_or_else(ApiError::not_found)
}

/// The user and vhost a permission names must exist (RabbitMQ answers 400 otherwise).
fn user_and_vhost_exist(api: &Api, user: &str, vhost: &str) -> ApiResult<()> {
    let access = api.broker.access();
    if !access.vhost_exists(vhost) {
        return Err(ApiError::bad_request(format!("no vhost '{vhost}'")));
    }
    if access.user(user).is_none() {
        return Err(ApiError::bad_request(format!("no user '{user}'")));
    }
    Ok(())
}

pub async fn put_permission(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path((vhost, user)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    auth::user(&api, &headers, peer, Need::Administrator)?;
    let body = json_body(&body)?;
    user_and_vhost_exist(&api, &user, &vhost)?;
    let field = |k: &str| -> ApiResult<String> {
        let v = text(&body, k).ok_or_else(|| ApiError::bad_request(format!("{k} is missing")))?;
        checked_regex(k, v)?;
        Ok(v.to_string())
    };
    let row = PermissionRow {
        configure: field("configure")?,
        write: field("write")?,
        read: field("read")?,
        user: user.clone(),
        vhost: vhost.clone(),
    };
    let access = api.broker.access();
    let created = access.permission(&user, &vhost).is_none();
    access.set_permission(row);
    saved(&api).await?;
    Ok(put_done(created))
}

pub async fn delete_permission(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path((vhost, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    auth::user(&api, &headers, peer, Need::Administrator)?;
    let access = api.broker.access();
    if access.permission(&user, &vhost).is_none() {
        return Err(ApiError::not_found());
    }
    access.clear_permission(&user, &vhost);
    saved(&api).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn topic_json(t: &TopicPermissionRow) -> Value {
    json!({"user": t.user, "vhost": t.vhost, "exchange": t.exchange, "write": t.write, "read": t.read})
}

pub async fn list_topic_permissions(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    auth::user(&api, &headers, peer, Need::Administrator)?;
    let rows = api.broker.access().rows();
    Ok(Json(Value::Array(
        rows.topic_permissions.iter().map(topic_json).collect(),
    )))
}

pub async fn get_topic_permissions(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path((vhost, user)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    auth::user(&api, &headers, peer, Need::Administrator)?;
    let rows = api.broker.access().rows();
    let list: Vec<Value> = rows
        .topic_permissions
        .iter()
        .filter(|t| t.vhost == vhost && t.user == user)
        .map(topic_json)
        .collect();
    if list.is_empty() {
        return Err(ApiError::not_found());
    }
    Ok(Json(Value::Array(list)))
}

pub async fn put_topic_permission(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path((vhost, user)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    auth::user(&api, &headers, peer, Need::Administrator)?;
    let body = json_body(&body)?;
    user_and_vhost_exist(&api, &user, &vhost)?;
    let exchange = text(&body, "exchange")
        .ok_or_else(|| ApiError::bad_request("exchange is missing"))?
        .to_string();
    let expand = |p: &str| p.replace("{username}", &user).replace("{vhost}", &vhost);
    let mut patterns = [String::new(), String::new()];
    for (slot, k) in patterns.iter_mut().zip(["write", "read"]) {
        let v = text(&body, k).ok_or_else(|| ApiError::bad_request(format!("{k} is missing")))?;
        checked_regex(k, &expand(v))?;
        *slot = v.to_string();
    }
    let [write, read] = patterns;
    let access = api.broker.access();
    let created = !access
        .rows()
        .topic_permissions
        .iter()
        .any(|t| t.vhost == vhost && t.user == user && t.exchange == exchange);
    access.set_topic_permission(TopicPermissionRow {
        user,
        vhost,
        exchange,
        write,
        read,
    });
    saved(&api).await?;
    Ok(put_done(created))
}

// ---------------------------------------------------------------------------- policies ----

/// Administrators change policies anywhere; a policymaker where it has a permission
/// (RabbitMQ: its vhosts), whatever else it may see.
fn may_change_policies(api: &Api, user: &User, vhost: &str) -> bool {
    user.has_tag("administrator") || api.broker.access().may_open(&user.name, vhost)
}

fn policy_json(p: &Policy) -> Value {
    json!({
        "vhost": p.vhost,
        "name": p.name,
        "pattern": p.pattern,
        "apply-to": p.apply_to.name(),
        "definition": p.definition,
        "priority": p.priority,
    })
}

/// Policies or operator policies, filtered.
fn policies_where(api: &Api, operator: bool, keep: impl Fn(&Policy) -> bool) -> Json<Value> {
    let rows = api.broker.access().rows();
    let list = if operator {
        rows.operator_policies
    } else {
        rows.policies
    };
    Json(Value::Array(
        list.iter().filter(|p| keep(p)).map(policy_json).collect(),
    ))
}

/// Who reads policies, as RabbitMQ 3.10 answers (checked against Debian's 3.10.8): any
/// management user lists those of the vhosts it has a permission in (administrators: all);
/// one policy takes a policymaker with a permission there, one operator policy an
/// administrator.
fn reads_policies_of(api: &Api, user: &User, vhost: &str) -> bool {
    user.has_tag("administrator") || api.broker.access().may_open(&user.name, vhost)
}

async fn list_policies(
    api: Api,
    peer: SocketAddr,
    headers: HeaderMap,
    vhost: Option<String>,
    operator: bool,
) -> ApiResult<Json<Value>> {
    let u = auth::user(&api, &headers, peer, Need::Management)?;
    if let Some(v) = &vhost {
        if !api.broker.access().vhost_exists(v) {
            return Err(ApiError::not_found());
        }
        if !reads_policies_of(&api, &u, v) {
            return Err(ApiError::not_authorised(
                "User not authorised to access virtual host",
            ));
        }
    }
    Ok(policies_where(&api, operator, |p| {
        vhost.as_ref().is_none_or(|v| &p.vhost == v) && reads_policies_of(&api, &u, &p.vhost)
    }))
}

async fn get_one_policy(
    api: Api,
    peer: SocketAddr,
    headers: HeaderMap,
    (vhost, name): (String, String),
    operator: bool,
) -> ApiResult<Json<Value>> {
    let u = auth::user(
        &api,
        &headers,
        peer,
        if operator {
            Need::Administrator
        } else {
            Need::Management
        },
    )?;
    if !api.broker.access().vhost_exists(&vhost) {
        return Err(ApiError::not_found());
    }
    let policymaker = u.has_tag("administrator") || u.has_tag("policymaker");
    if !policymaker || !reads_policies_of(&api, &u, &vhost) {
        return Err(ApiError::not_authorised(
            "User not authorised to access object",
        ));
    }
    let rows = api.broker.access().rows();
    let list = if operator {
        rows.operator_policies
    } else {
        rows.policies
    };
    list.iter()
        .find(|p| p.vhost == vhost && p.name == name)
        .map(|p| Json(policy_json(p)))
        .ok_or_else(ApiError::not_found)
}

/// Sets a policy (or an operator policy, administrators only) and applies the vhost's
/// policies again to its queues and exchanges.
async fn put_one_policy(
    api: Api,
    peer: SocketAddr,
    headers: HeaderMap,
    (vhost, name): (String, String),
    body: axum::body::Bytes,
    operator: bool,
) -> ApiResult<StatusCode> {
    let need = if operator {
        Need::Administrator
    } else {
        Need::Policymaker
    };
    let u = auth::user(&api, &headers, peer, need)?;
    let body = json_body(&body)?;
    let Some(target) = api.broker.vhost(&vhost) else {
        return Err(ApiError::bad_request(format!("no vhost '{vhost}'")));
    };
    if !may_change_policies(&api, &u, &vhost) {
        return Err(ApiError::not_authorised("Access refused."));
    }
    let pattern =
        text(&body, "pattern").ok_or_else(|| ApiError::bad_request("pattern is missing"))?;
    checked_regex("pattern", pattern)?;
    let apply_to_name = text(&body, "apply-to").unwrap_or("all");
    let apply_to = ApplyTo::from_name(apply_to_name)
        .ok_or_else(|| ApiError::bad_request(format!("apply-to: unknown '{apply_to_name}'")))?;
    let priority = body.get("priority").and_then(Value::as_i64).unwrap_or(0);
    let Some(Value::Object(definition)) = body.get("definition") else {
        return Err(ApiError::bad_request("definition must be a JSON object"));
    };
    let refused = if operator {
        operator_definition_error(definition)
    } else {
        policy_definition_error(definition)
    };
    if let Some(why) = refused {
        return Err(ApiError::bad_request(why));
    }
    let policy = Policy::new(
        &vhost,
        &name,
        pattern,
        apply_to,
        priority,
        definition.clone(),
    );
    let access = api.broker.access();
    let rows = access.rows();
    let list = if operator {
        rows.operator_policies
    } else {
        rows.policies
    };
    let created = !list.iter().any(|p| p.vhost == vhost && p.name == name);
    if operator {
        access.set_operator_policy(policy);
    } else {
        access.set_policy(policy);
    }
    saved(&api).await?;
    target.apply_policies(access);
    Ok(put_done(created))
}

async fn delete_one_policy(
    api: Api,
    peer: SocketAddr,
    headers: HeaderMap,
    (vhost, name): (String, String),
    operator: bool,
) -> ApiResult<StatusCode> {
    let need = if operator {
        Need::Administrator
    } else {
        Need::Policymaker
    };
    let u = auth::user(&api, &headers, peer, need)?;
    if !may_change_policies(&api, &u, &vhost) {
        return Err(ApiError::not_authorised("Access refused."));
    }
    let access = api.broker.access();
    if !access.delete_policy(&vhost, &name, operator) {
        return Err(ApiError::not_found());
    }
    saved(&api).await?;
    if let Some(v) = api.broker.vhost(&vhost) {
        v.apply_policies(access);
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_all_policies(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    list_policies(api, peer, headers, None, false).await
}

pub async fn list_vhost_policies(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Value>> {
    list_policies(api, peer, headers, Some(vhost), false).await
}

pub async fn get_policy(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(key): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    get_one_policy(api, peer, headers, key, false).await
}

pub async fn put_policy(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(key): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    put_one_policy(api, peer, headers, key, body, false).await
}

pub async fn delete_policy(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(key): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    delete_one_policy(api, peer, headers, key, false).await
}

pub async fn list_all_operator_policies(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    list_policies(api, peer, headers, None, true).await
}

pub async fn list_vhost_operator_policies(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Value>> {
    list_policies(api, peer, headers, Some(vhost), true).await
}

pub async fn get_operator_policy(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(key): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    get_one_policy(api, peer, headers, key, true).await
}

pub async fn put_operator_policy(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(key): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    put_one_policy(api, peer, headers, key, body, true).await
}

pub async fn delete_operator_policy(
    State(api): State<Api>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(key): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    delete_one_policy(api, peer, headers, key, true).await
}

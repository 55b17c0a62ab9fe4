//! The management HTTP API, as RabbitMQ's management plugin serves it (`/api` on port 15672,
//! HTTP Basic auth, JSON): so that the tools people point at RabbitMQ work unchanged. The
//! second I/O shell beside `server`: it only calls the broker.
//!
//! Tenancy (whoami, vhosts, users, permissions, policies), definitions, health checks, and
//! the broker's objects: overview, nodes, queues, exchanges, bindings, connections, channels
//! and consumers, with message rates.

mod access_api;
mod auth;
mod connections_api;
mod exchanges_api;
mod health;
mod https;
mod listing;
mod node;
mod objects;
mod overview_api;
pub mod prometheus;
mod queues_api;
mod reply;
mod request;
mod scope;
mod ui;

use crate::broker::Broker;
use axum::routing::{delete, get, post};
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The largest definitions file an import takes (RabbitMQ's management listener also caps
/// request bodies; only logged-in users get this far).
const DEFINITIONS_LIMIT: usize = 64 << 20;

/// What every handler gets.
#[derive(Clone)]
struct Api {
    broker: Arc<Broker>,
    /// The node's listeners by RabbitMQ's protocol names (`amqp`, `amqp/ssl`, `http`, …).
    listeners: Arc<Vec<(&'static str, SocketAddr)>>,
    management_port: u16,
}

/// The API's routes.
fn router(api: Api) -> Router {
    use access_api as a;
    use connections_api as c;
    use exchanges_api as x;
    use overview_api as o;
    use queues_api as q;
    Router::new()
        .route("/api/overview", get(o::overview))
        .route("/api/nodes", get(o::nodes))
        .route("/api/nodes/{node}", get(o::node))
        .route("/api/queues", get(q::list_all))
        // Celery Flower asks for the default vhost's queues as `queues/` (urljoin drops %2F).
        .route("/api/queues/", get(q::list_all))
        .route("/api/queues/{vhost}", get(q::list_in_vhost))
        .route(
            "/api/queues/{vhost}/{name}",
            get(q::show).put(q::declare).delete(q::delete),
        )
        .route("/api/queues/{vhost}/{name}/contents", delete(q::purge))
        .route("/api/queues/{vhost}/{name}/get", post(q::get_messages))
        .route("/api/queues/{vhost}/{name}/bindings", get(q::bindings))
        .route("/api/exchanges", get(x::list_all))
        .route("/api/exchanges/{vhost}", get(x::list_in_vhost))
        .route(
            "/api/exchanges/{vhost}/{name}",
            get(x::show).put(x::declare).delete(x::delete),
        )
        .route("/api/exchanges/{vhost}/{name}/publish", post(x::publish))
        // The default exchange as rabbitmqadmin names it: an empty segment.
        .route("/api/exchanges/{vhost}//publish", post(x::publish_default))
        .route(
            "/api/exchanges/{vhost}/{name}/bindings/{side}",
            get(x::exchange_bindings),
        )
        .route("/api/bindings", get(x::list_bindings))
        .route("/api/bindings/{vhost}", get(x::list_vhost_bindings))
        .route(
            "/api/bindings/{vhost}/e/{source}/{kind}/{dest}",
            get(x::list_between).post(x::create_binding),
        )
        .route(
            "/api/bindings/{vhost}/e/{source}/{kind}/{dest}/{props}",
            get(x::show_binding).delete(x::delete_binding),
        )
        .route("/api/connections", get(c::list_all))
        .route("/api/connections/{name}", get(c::show).delete(c::close))
        .route(
            "/api/connections/{name}/channels",
            get(c::connection_channels),
        )
        .route("/api/vhosts/{vhost}/connections", get(c::list_in_vhost))
        .route("/api/channels", get(c::list_channels))
        .route("/api/channels/{name}", get(c::show_channel))
        .route("/api/vhosts/{vhost}/channels", get(c::list_vhost_channels))
        .route("/api/consumers", get(c::list_consumers))
        .route("/api/consumers/{vhost}", get(c::list_vhost_consumers))
        .route("/api/whoami", get(a::whoami))
        .route("/api/vhosts", get(a::list_vhosts))
        .route(
            "/api/vhosts/{vhost}",
            get(a::get_vhost).put(a::put_vhost).delete(a::delete_vhost),
        )
        .route("/api/vhosts/{vhost}/permissions", get(a::vhost_permissions))
        .route("/api/users", get(a::list_users))
        .route(
            "/api/users/{user}",
            get(a::get_user).put(a::put_user).delete(a::delete_user),
        )
        .route("/api/users/{user}/permissions", get(a::user_permissions))
        .route("/api/permissions", get(a::list_permissions))
        .route(
            "/api/permissions/{vhost}/{user}",
            get(a::get_permission)
                .put(a::put_permission)
                .delete(a::delete_permission),
        )
        .route("/api/topic-permissions", get(a::list_topic_permissions))
        .route(
            "/api/topic-permissions/{vhost}/{user}",
            get(a::get_topic_permissions).put(a::put_topic_permission),
        )
        .route("/api/policies", get(a::list_all_policies))
        .route("/api/policies/{vhost}", get(a::list_vhost_policies))
        .route(
            "/api/policies/{vhost}/{name}",
            get(a::get_policy)
                .put(a::put_policy)
                .delete(a::delete_policy),
        )
        .route("/api/operator-policies", get(a::list_all_operator_policies))
        .route(
            "/api/operator-policies/{vhost}",
            get(a::list_vhost_operator_policies),
        )
        .route(
            "/api/operator-policies/{vhost}/{name}",
            get(a::get_operator_policy)
                .put(a::put_operator_policy)
                .delete(a::delete_operator_policy),
        )
        .route(
            "/api/definitions",
            get(health::export_definitions)
                .post(health::import_definitions)
                // Exports of large brokers run to many megabytes.
                .layer(axum::extract::DefaultBodyLimit::max(DEFINITIONS_LIMIT)),
        )
        .route("/api/health/checks/alarms", get(health::alarms))
        .route("/api/health/checks/local-alarms", get(health::alarms))
        .route(
            "/api/health/checks/port-listener/{port}",
            get(health::port_listener),
        )
        .route(
            "/api/health/checks/protocol-listener/{protocol}",
            get(health::protocol_listener),
        )
        .route(
            "/api/health/checks/virtual-hosts",
            get(health::virtual_hosts),
        )
        .route(
            "/api/health/checks/ready-to-serve-clients",
            get(health::ready_to_serve_clients),
        )
        .fallback(reply::not_found)
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            auth::require_login,
        ))
        .layer(axum::middleware::from_fn(auth::no_browser_prompt))
        // The UI's files need no login (the page asks for it and sends it to /api).
        .merge(ui::routes())
        .layer(axum::middleware::from_fn(request::well_formed_url))
        .with_state(api)
}

/// Serves the API on `listener` until `shutdown` completes. `listeners` are the node's
/// listeners as the overview shows them (RabbitMQ's protocol names).
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    broker: Arc<Broker>,
    listeners: Vec<(&'static str, SocketAddr)>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let management_port = listener.local_addr().map_or(0, |a| a.port());
    let api = Api {
        broker,
        listeners: Arc::new(listeners),
        management_port,
    };
    if let Some(acceptor) = tls {
        return https::serve(listener, acceptor, router(api), shutdown).await;
    }
    let app = router(api).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "management API stopped");
    }
}

//! The management HTTP API, as RabbitMQ's management plugin serves it (`/api` on port 15672,
//! HTTP Basic auth, JSON): so that the tools people point at RabbitMQ work unchanged. The
//! second I/O shell beside `server`: it only calls the broker.
//!
//! This first part covers what tenancy needs at run time: whoami, vhosts, users,
//! permissions, topic permissions, policies and operator policies, definitions export and
//! import, and the health checks.

mod access_api;
mod auth;
mod health;
mod reply;

use crate::broker::Broker;
use axum::routing::get;
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
}

/// The API's routes.
fn router(broker: Arc<Broker>) -> Router {
    use access_api as a;
    let api = Api { broker };
    Router::new()
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
        .with_state(api)
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let app = router(broker).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "management API stopped");
    }
}

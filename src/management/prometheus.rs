//! The Prometheus endpoint (RabbitMQ's rabbitmq_prometheus plugin, port 15692): `/metrics`
//! aggregated, `/metrics/per-object` with `{vhost, queue}` labels, in the text format 0.0.4
//! written by hand from a snapshot taken at scrape time. RabbitMQ's metric names, so that
//! its Grafana dashboards (which join every panel on `rabbitmq_identity_info`) show data.

use super::node::{facts, totals};
use super::objects::NODE;
use crate::broker::Broker;
use crate::broker::RABBITMQ_COMPATIBLE_VERSION;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::fmt::Write;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes metrics in the text format.
struct Text {
    out: String,
}

impl Text {
    /// `# HELP` and `# TYPE` for a family.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# TYPE {name} {kind}\n# HELP {name} {help}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A family with one unlabelled sample.
    fn one(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// Label values escape backslash, quote and newline (text format 0.0.4).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What every endpoint starts with: identity and build.
fn identity(t: &mut Text, endpoint: &str) {
    t.family(
        "rabbitmq_identity_info",
        "gauge",
        "RabbitMQ node & cluster identity info",
    );
    t.sample(
        "rabbitmq_identity_info",
        &[
            ("rabbitmq_node", NODE),
            ("rabbitmq_cluster", NODE),
            ("rabbitmq_cluster_permanent_id", "warren"),
            ("rabbitmq_endpoint", endpoint),
        ],
        1,
    );
    t.family(
        "rabbitmq_build_info",
        "untyped",
        "RabbitMQ & Erlang/OTP version info",
    );
    t.sample(
        "rabbitmq_build_info",
        &[
            ("rabbitmq_version", RABBITMQ_COMPATIBLE_VERSION),
            ("prometheus_plugin_version", RABBITMQ_COMPATIBLE_VERSION),
            ("prometheus_client_version", "4.6.0"),
            ("erlang_version", "none"),
            ("product_name", "Warren"),
            ("product_version", env!("CARGO_PKG_VERSION")),
        ],
        1,
    );
}

/// The node-wide metrics, same in both endpoints.
/// `queue_totals`: the queue families unlabelled (per-object writes them per queue).
fn node_metrics(t: &mut Text, broker: &Broker, queue_totals: bool) {
    let f = facts(broker);
    let o = totals(broker);
    let m = crate::broker::rates::current_totals(broker);
    let churn = &broker.registry().churn;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    t.one(
        "rabbitmq_connections",
        "gauge",
        "Connections currently open",
        o.connections,
    );
    t.one(
        "rabbitmq_channels",
        "gauge",
        "Channels currently open",
        o.channels,
    );
    t.one(
        "rabbitmq_consumers",
        "gauge",
        "Consumers currently connected",
        o.consumers,
    );
    t.one("rabbitmq_queues", "gauge", "Queues available", o.queues);
    t.one(
        "rabbitmq_connections_opened_total",
        "counter",
        "Total number of connections opened",
        n(&churn.connections_opened),
    );
    t.one(
        "rabbitmq_connections_closed_total",
        "counter",
        "Total number of connections closed or terminated",
        n(&churn.connections_closed),
    );
    t.one(
        "rabbitmq_channels_opened_total",
        "counter",
        "Total number of channels opened",
        n(&churn.channels_opened),
    );
    t.one(
        "rabbitmq_channels_closed_total",
        "counter",
        "Total number of channels closed",
        n(&churn.channels_closed),
    );
    t.one(
        "rabbitmq_queues_declared_total",
        "counter",
        "Total number of queues declared",
        o.queues_declared,
    );
    t.one(
        "rabbitmq_queues_created_total",
        "counter",
        "Total number of queues created",
        o.queues_created,
    );
    t.one(
        "rabbitmq_queues_deleted_total",
        "counter",
        "Total number of queues deleted",
        o.queues_deleted,
    );
    if queue_totals {
        t.one(
            "rabbitmq_queue_messages_ready",
            "gauge",
            "Messages ready to be delivered to consumers",
            o.messages_ready,
        );
        t.one(
            "rabbitmq_queue_messages_unacked",
            "gauge",
            "Messages delivered to consumers but not yet acknowledged",
            o.messages_unacknowledged,
        );
        t.one(
            "rabbitmq_queue_messages",
            "gauge",
            "Sum of ready and unacknowledged messages - total queue depth",
            o.messages_ready + o.messages_unacknowledged,
        );
    }
    // The channel families the RabbitMQ-Overview dashboard plots (summed over channels).
    t.one(
        "rabbitmq_channel_messages_published_total",
        "counter",
        "Total number of messages published into an exchange on a channel",
        m.publish,
    );
    t.one(
        "rabbitmq_channel_messages_confirmed_total",
        "counter",
        "Total number of messages published into an exchange and confirmed on the channel",
        m.confirm,
    );
    t.one("rabbitmq_channel_messages_unroutable_returned_total", "counter", "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable", m.unroutable_returned);
    t.one("rabbitmq_channel_messages_unroutable_dropped_total", "counter", "Total number of messages published as non-mandatory into an exchange and dropped as unroutable", m.unroutable_dropped);
    t.one(
        "rabbitmq_channel_messages_delivered_total",
        "counter",
        "Total number of messages delivered to consumers in automatic acknowledgement mode",
        m.deliver_no_ack,
    );
    t.one(
        "rabbitmq_channel_messages_delivered_ack_total",
        "counter",
        "Total number of messages delivered to consumers in manual acknowledgement mode",
        m.deliver - m.deliver_no_ack,
    );
    t.one(
        "rabbitmq_channel_get_total",
        "counter",
        "Total number of messages fetched with basic.get in automatic acknowledgement mode",
        m.get_no_ack,
    );
    t.one(
        "rabbitmq_channel_get_ack_total",
        "counter",
        "Total number of messages fetched with basic.get in manual acknowledgement mode",
        m.get - m.get_no_ack,
    );
    t.one(
        "rabbitmq_channel_get_empty_total",
        "counter",
        "Total number of times basic.get operations fetched no message",
        m.get_empty,
    );
    t.one(
        "rabbitmq_channel_messages_redelivered_total",
        "counter",
        "Total number of messages redelivered to consumers",
        m.redeliver,
    );
    t.one(
        "rabbitmq_channel_messages_acked_total",
        "counter",
        "Total number of messages acknowledged by consumers",
        m.ack,
    );
    t.one(
        "rabbitmq_channel_consumers",
        "gauge",
        "Consumers on a channel",
        o.consumers,
    );
    let global = [
        ("received", "Total number of messages received from publishers", m.publish),
        ("received_confirm", "Total number of messages received from publishers expecting confirmations", m.confirm),
        ("routed", "Total number of messages routed to queues or streams", m.routed),
        ("unroutable_dropped", "Total number of messages published as non-mandatory into an exchange and dropped as unroutable", m.unroutable_dropped),
        ("unroutable_returned", "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable", m.unroutable_returned),
        ("confirmed", "Total number of messages confirmed to publishers", m.confirm),
        ("delivered", "Total number of messages delivered to consumers", m.deliver_get()),
        ("delivered_consume_manual_ack", "Total number of messages delivered to consumers using basic.consume with manual acknowledgment", m.deliver - m.deliver_no_ack),
        ("delivered_consume_auto_ack", "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment", m.deliver_no_ack),
        ("delivered_get_manual_ack", "Total number of messages delivered to consumers using basic.get with manual acknowledgment", m.get - m.get_no_ack),
        ("delivered_get_auto_ack", "Total number of messages delivered to consumers using basic.get with automatic acknowledgment", m.get_no_ack),
        ("get_empty", "Total number of times basic.get operations fetched no message", m.get_empty),
        ("redelivered", "Total number of messages redelivered to consumers", m.redeliver),
        ("acknowledged", "Total number of messages acknowledged by consumers", m.ack),
    ];
    for (what, help, value) in global {
        let name = format!("rabbitmq_global_messages_{what}_total");
        t.family(&name, "counter", help);
        t.sample(&name, &[("protocol", "amqp091")], value);
    }
    t.family(
        "rabbitmq_global_publishers",
        "gauge",
        "Current number of publishers",
    );
    t.sample(
        "rabbitmq_global_publishers",
        &[("protocol", "amqp091")],
        o.channels.saturating_sub(o.consumers),
    );
    t.family(
        "rabbitmq_global_consumers",
        "gauge",
        "Current number of consumers",
    );
    t.sample(
        "rabbitmq_global_consumers",
        &[("protocol", "amqp091")],
        o.consumers,
    );
    t.one(
        "rabbitmq_process_open_fds",
        "gauge",
        "Open file descriptors",
        f.fd_used,
    );
    t.one(
        "rabbitmq_process_max_fds",
        "gauge",
        "Open file descriptors limit",
        f.fd_total,
    );
    t.one(
        "rabbitmq_process_resident_memory_bytes",
        "gauge",
        "Memory used in bytes",
        f.mem_used,
    );
    t.one(
        "rabbitmq_resident_memory_limit_bytes",
        "gauge",
        "Memory high watermark in bytes",
        f.mem_limit,
    );
    t.one(
        "rabbitmq_disk_space_available_bytes",
        "gauge",
        "Disk space available in bytes",
        f.disk_free,
    );
    t.one(
        "rabbitmq_disk_space_available_limit_bytes",
        "gauge",
        "Free disk space low watermark in bytes",
        f.disk_free_limit,
    );
    t.one(
        "rabbitmq_alarms_memory_used_watermark",
        "gauge",
        "is 1 if VM memory watermark alarm is in effect",
        u8::from(f.mem_alarm),
    );
    t.one(
        "rabbitmq_alarms_free_disk_space_watermark",
        "gauge",
        "is 1 if free disk space watermark alarm is in effect",
        u8::from(f.disk_free_alarm),
    );
    // The node's uptime (RabbitMQ reports its Erlang VM's; the dashboards' node table reads it).
    t.one(
        "rabbitmq_erlang_uptime_seconds",
        "gauge",
        "Node uptime",
        f.uptime_ms as f64 / 1000.0,
    );
    t.one(
        "rabbitmq_process_start_time_seconds",
        "gauge",
        "Process start time seconds",
        crate::broker::clock::unix_ms().saturating_sub(f.uptime_ms) / 1000,
    );
}

/// GET /metrics: aggregated.
fn aggregated(broker: &Broker) -> String {
    let mut t = Text { out: String::new() };
    identity(&mut t, "aggregated");
    node_metrics(&mut t, broker, true);
    t.out
}

/// One queue's numbers at the scrape.
struct QueueRow {
    vhost: Arc<str>,
    queue: Arc<crate::broker::queue::Queue>,
    depth: crate::broker::queue::QueueDepth,
    totals: crate::broker::stats::MessageTotals,
    unacked: u64,
}

/// GET /metrics/per-object: every queue with `{vhost, queue}` labels.
fn per_object(broker: &Broker) -> String {
    let mut t = Text { out: String::new() };
    identity(&mut t, "per-object");
    node_metrics(&mut t, broker, false);
    let mut rows = Vec::new();
    for v in broker.vhosts() {
        for queue in v.queue_list() {
            rows.push(QueueRow {
                vhost: v.name.clone(),
                depth: queue.depth(),
                totals: queue.stats.totals(),
                unacked: queue.stats.unacked(),
                queue,
            });
        }
    }
    type Value = fn(&QueueRow) -> u64;
    let families: [(&str, &str, &str, Value); 7] = [
        (
            "rabbitmq_queue_messages_ready",
            "gauge",
            "Messages ready to be delivered to consumers",
            |r| r.depth.ready,
        ),
        (
            "rabbitmq_queue_messages_unacked",
            "gauge",
            "Messages delivered to consumers but not yet acknowledged",
            |r| r.unacked,
        ),
        (
            "rabbitmq_queue_messages",
            "gauge",
            "Sum of ready and unacknowledged messages - total queue depth",
            |r| r.depth.ready + r.unacked,
        ),
        (
            "rabbitmq_queue_consumers",
            "gauge",
            "Consumers on a queue",
            |r| r.depth.consumers,
        ),
        (
            "rabbitmq_queue_messages_bytes",
            "gauge",
            "Size in bytes of ready and unacknowledged messages",
            |r| r.depth.ready_bytes,
        ),
        (
            "rabbitmq_queue_messages_published_total",
            "counter",
            "Total number of messages published to queues",
            |r| r.totals.publish,
        ),
        (
            "rabbitmq_queue_messages_acked_total",
            "counter",
            "Total number of messages acknowledged by consumers on a queue",
            |r| r.totals.ack,
        ),
    ];
    for (name, kind, help, value) in families {
        t.family(name, kind, help);
        for r in &rows {
            t.sample(
                name,
                &[("vhost", &r.vhost), ("queue", r.queue.name())],
                value(r),
            );
        }
    }
    t.out
}

async fn metrics(State(broker): State<Arc<Broker>>) -> impl IntoResponse {
    let body = tokio::task::spawn_blocking(move || aggregated(&broker))
        .await
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body)
}

async fn metrics_per_object(State(broker): State<Arc<Broker>>) -> impl IntoResponse {
    let body = tokio::task::spawn_blocking(move || per_object(&broker))
        .await
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body)
}

/// Serves the metrics on `listener` until `shutdown` completes (no authentication, as
/// RabbitMQ's plugin: it listens on localhost by default).
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    broker: Arc<Broker>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/metrics/per-object", get(metrics_per_object))
        .route("/metrics/detailed", get(metrics_per_object))
        .with_state(broker);
    if let Some(acceptor) = tls {
        return super::https::serve(listener, acceptor, app, shutdown).await;
    }
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "Prometheus endpoint stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut t = Text { out: String::new() };
        t.sample("m", &[("queue", "a\"b\\c\nd")], 3);
        assert_eq!(t.out, "m{queue=\"a\\\"b\\\\c\\nd\"} 3\n");
    }

    #[test]
    fn the_aggregated_endpoint_has_the_identity_the_dashboards_join_on() {
        let broker = Broker::new();
        let text = aggregated(&broker);
        assert!(text.contains("rabbitmq_identity_info{rabbitmq_node=\"warren@localhost\",rabbitmq_cluster=\"warren@localhost\",rabbitmq_cluster_permanent_id=\"warren\",rabbitmq_endpoint=\"aggregated\"} 1\n"), "{text}");
        assert!(text.contains("\nrabbitmq_queues 0\n"));
        assert!(text.contains("rabbitmq_global_messages_received_total{protocol=\"amqp091\"} 0\n"));
    }
}

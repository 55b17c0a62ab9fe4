//! The management API's view of the broker's objects, as RabbitMQ 3.10's management plugin
//! answers it: queues (declare, list, page, get with each ackmode, purge, delete), exchanges
//! and bindings, connections (close with X-Reason), channels, consumers, the overview's
//! totals and message rates.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps

mod common;
use common::*;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::{json, Value};

const GUEST: Option<(&str, &str)> = Some(("guest", "guest"));

async fn get_json(api: std::net::SocketAddr, path: &str) -> Value {
    let r = http(api, "GET", path, GUEST, None).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.json()
}

#[tokio::test]
async fn queues_are_declared_listed_paged_and_deleted_as_rabbitmq_does() {
    let b = start().await;
    let api = management(&b).await;
    let r = http(
        api,
        "PUT",
        "/api/queues/%2F/orders",
        GUEST,
        Some(r#"{"durable": true, "arguments": {"x-max-length": 10}}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let same = r#"{"durable": true, "arguments": {"x-max-length": 10}}"#;
    assert_eq!(
        http(api, "PUT", "/api/queues/%2F/orders", GUEST, Some(same))
            .await
            .status,
        204
    );
    let r = http(
        api,
        "PUT",
        "/api/queues/%2F/orders",
        GUEST,
        Some(r#"{"durable": false}"#),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["reason"],
        "inequivalent arg 'durable' for queue 'orders' in vhost '/': received 'false' but current is 'true'"
    );
    for i in 0..7 {
        let name = format!("/api/queues/%2F/q{i}");
        assert_eq!(http(api, "PUT", &name, GUEST, Some("{}")).await.status, 201);
    }
    // The queue is a real one: AMQP sees it, with its arguments.
    let (_c, ch) = b.channel().await;
    for n in 0..3 {
        publish(&ch, "", "orders", format!("m{n}").as_bytes()).await;
    }
    assert_eq!(count(&ch, "orders").await, 3);

    let q = get_json(api, "/api/queues/%2F/orders").await;
    for key in [
        "name",
        "vhost",
        "type",
        "durable",
        "auto_delete",
        "exclusive",
        "arguments",
        "node",
        "state",
        "consumers",
        "messages",
        "messages_ready",
        "messages_unacknowledged",
        "message_bytes",
        "memory",
        "message_stats",
    ] {
        assert!(q.get(key).is_some(), "queue field {key} missing: {q}");
    }
    assert_eq!(
        (q["messages"].clone(), q["messages_ready"].clone()),
        (json!(3), json!(3))
    );
    assert_eq!(q["arguments"], json!({"x-max-length": 10}));
    assert_eq!(q["type"], "classic");
    assert!(q["idle_since"].is_string());

    // Without `page` a plain array; with it RabbitMQ's page object; name filters and sorts.
    let all = get_json(api, "/api/queues").await;
    assert_eq!(all.as_array().map(Vec::len), Some(8));
    let page = get_json(
        api,
        "/api/queues/%2F?page=2&page_size=3&sort=name&columns=name,messages",
    )
    .await;
    assert_eq!(
        page,
        json!({"filtered_count": 8, "item_count": 3, "page": 2, "page_count": 3, "page_size": 3, "total_count": 8,
               "items": [{"name": "q2", "messages": 0}, {"name": "q3", "messages": 0}, {"name": "q4", "messages": 0}]})
    );
    let top = get_json(
        api,
        "/api/queues?sort=messages&sort_reverse=true&columns=name",
    )
    .await;
    assert_eq!(top[0], json!({"name": "orders"}));
    let filtered = get_json(api, "/api/queues?name=ORD&page=1").await;
    assert_eq!(filtered["filtered_count"], 1);
    // Paging errors with RabbitMQ 3.10's atoms and texts.
    for (query, error, reason) in [
        (
            "page=5",
            "page_out_of_range",
            "Page out of range, page: 5 page size: 100, len: 8",
        ),
        (
            "page=abc",
            "bad_request",
            "Pagination parameters are invalid",
        ),
        (
            "page=1&page_size=x",
            "bad_request",
            "Pagination parameters are invalid",
        ),
        (
            "page=0",
            "invalid_pagination_parameters",
            "Invalid pagination parameters: page number 0, page size undefined",
        ),
        (
            "page=1&page_size=600",
            "invalid_pagination_parameters",
            "Invalid pagination parameters: page number 1, page size 600",
        ),
    ] {
        let r = http(api, "GET", &format!("/api/queues?{query}"), GUEST, None).await;
        assert_eq!(
            (r.status, r.json()),
            (400, json!({"error": error, "reason": reason})),
            "{query}"
        );
    }
    // Celery Flower's URL for the default vhost.
    assert_eq!(
        get_json(api, "/api/queues/").await.as_array().map(Vec::len),
        Some(8)
    );

    // if-empty refuses, purge empties, delete removes.
    let r = http(
        api,
        "DELETE",
        "/api/queues/%2F/orders?if-empty=true",
        GUEST,
        None,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["reason"], "queue 'orders' in vhost '/' not empty");
    assert_eq!(
        http(
            api,
            "DELETE",
            "/api/queues/%2F/orders/contents",
            GUEST,
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(count(&ch, "orders").await, 0);
    assert_eq!(
        http(api, "DELETE", "/api/queues/%2F/orders", GUEST, None)
            .await
            .status,
        204
    );
    let gone = ch
        .queue_declare(
            "orders".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(&gone), Some(404));
    let r = http(api, "GET", "/api/queues/%2F/orders", GUEST, None).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        http(api, "GET", "/api/queues/nowhere", GUEST, None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn get_messages_honours_each_ackmode() {
    let b = start().await;
    let api = management(&b).await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "dead").await;
    declare_with(
        &ch,
        "work",
        args(&[
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text("dead")),
        ]),
    )
    .await;
    for (i, body) in [b"first".as_slice(), b"second", &[0xff, 0xfe]]
        .iter()
        .enumerate()
    {
        let props = BasicProperties::default()
            .with_content_type("text/plain".into())
            .with_headers(args(&[(
                "n",
                lapin::types::AMQPValue::LongLongInt(i as i64),
            )]));
        ch.basic_publish(
            "".into(),
            "work".into(),
            BasicPublishOptions::default(),
            body,
            props,
        )
        .await
        .unwrap();
    }
    let get = |body: &'static str| async move {
        let r = http(api, "POST", "/api/queues/%2F/work/get", GUEST, Some(body)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };
    // Peek: both come back, flagged redelivered the next time.
    let peek = get(r#"{"count": 2, "ackmode": "ack_requeue_true", "encoding": "auto"}"#).await;
    assert_eq!(peek.as_array().map(Vec::len), Some(2));
    assert_eq!(peek[0]["payload"], "first");
    assert_eq!(peek[0]["payload_encoding"], "string");
    assert_eq!(peek[0]["redelivered"], false);
    assert_eq!(peek[0]["message_count"], 2);
    assert_eq!(
        peek[0]["properties"],
        json!({"content_type": "text/plain", "headers": {"n": 0}})
    );
    assert_eq!(peek[1]["message_count"], 1);
    let again = get(r#"{"count": 1, "ackmode": "reject_requeue_true", "encoding": "auto"}"#).await;
    assert_eq!(
        (again[0]["payload"].clone(), again[0]["redelivered"].clone()),
        (json!("first"), json!(true))
    );
    // Taken for good: the first message leaves the queue.
    let taken = get(r#"{"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"}"#).await;
    assert_eq!(taken[0]["payload"], "first");
    assert_eq!(count(&ch, "work").await, 2);
    // Rejected without requeue: dead-lettered.
    let rejected =
        get(r#"{"count": 1, "ackmode": "reject_requeue_false", "encoding": "base64"}"#).await;
    assert_eq!(rejected[0]["payload"], "c2Vjb25k");
    assert_eq!(rejected[0]["payload_encoding"], "base64");
    let dead = get_message(&ch, "dead").await;
    assert_eq!(dead.data, b"second");
    // Not UTF-8: base64 even in auto.
    let binary = get(r#"{"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto"}"#).await;
    assert_eq!(binary.as_array().map(Vec::len), Some(1));
    assert_eq!(
        (
            binary[0]["payload"].clone(),
            binary[0]["payload_encoding"].clone()
        ),
        (json!("//4="), json!("base64"))
    );
    let r = http(
        api,
        "POST",
        "/api/queues/%2F/work/get",
        GUEST,
        Some(r#"{"count": 1, "ackmode": "nope"}"#),
    )
    .await;
    assert_eq!(r.status, 400);
}

async fn get_message(ch: &lapin::Channel, queue: &str) -> lapin::message::BasicGetMessage {
    assert!(
        eventually(|| async { count(ch, queue).await > 0 }).await,
        "a message in {queue}"
    );
    get(ch, queue).await.expect("a message")
}

#[tokio::test]
async fn exchanges_bindings_and_publish_work_through_the_api() {
    let b = start().await;
    let api = management(&b).await;
    let r = http(
        api,
        "PUT",
        "/api/exchanges/%2F/events",
        GUEST,
        Some(r#"{"type": "topic", "durable": true}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        http(api, "PUT", "/api/queues/%2F/audit", GUEST, Some("{}"))
            .await
            .status,
        201
    );
    let r = http(
        api,
        "POST",
        "/api/bindings/%2F/e/events/q/audit",
        GUEST,
        Some(r#"{"routing_key": "order.*", "arguments": {}}"#),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("location"),
        Some("/api/bindings/%2F/e/events/q/audit/order.%2A")
    );
    let bindings = get_json(api, "/api/queues/%2F/audit/bindings").await;
    assert_eq!(
        bindings,
        json!([
            {"source": "", "vhost": "/", "destination": "audit", "destination_type": "queue", "routing_key": "audit", "arguments": {}, "properties_key": "audit"},
            {"source": "events", "vhost": "/", "destination": "audit", "destination_type": "queue", "routing_key": "order.*", "arguments": {}, "properties_key": "order.%2A"},
        ])
    );
    let x = get_json(api, "/api/exchanges/%2F/events").await;
    assert_eq!(
        (x["type"].clone(), x["durable"].clone()),
        (json!("topic"), json!(true))
    );
    let names: Vec<Value> = get_json(api, "/api/exchanges/%2F")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].clone())
        .collect();
    assert!(
        names.contains(&json!(""))
            && names.contains(&json!("amq.topic"))
            && names.contains(&json!("events"))
    );

    let publish = |exchange: &'static str, key: &'static str| async move {
        let body = format!(
            r#"{{"routing_key": "{key}", "payload": "hi", "payload_encoding": "string", "properties": {{"delivery_mode": 2}}}}"#
        );
        let path = format!("/api/exchanges/%2F/{exchange}/publish");
        let r = http(api, "POST", &path, GUEST, Some(&body)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["routed"].clone()
    };
    assert_eq!(publish("events", "order.new").await, json!(true));
    assert_eq!(publish("events", "invoice.new").await, json!(false));
    assert_eq!(publish("amq.default", "audit").await, json!(true));
    // rabbitmqadmin names the default exchange with an empty segment.
    let r = http(
        api,
        "POST",
        "/api/exchanges/%2F//publish",
        GUEST,
        Some(r#"{"routing_key": "audit", "payload": "x", "properties": {}}"#),
    )
    .await;
    assert_eq!((r.status, r.json()), (200, json!({"routed": true})));
    let (_c, ch) = b.channel().await;
    assert_eq!(count(&ch, "audit").await, 3);
    let m = get(&ch, "audit").await.unwrap();
    assert_eq!(m.properties.delivery_mode(), &Some(2));

    // Deleting the binding by its properties key stops the routing.
    let r = http(
        api,
        "DELETE",
        "/api/bindings/%2F/e/events/q/audit/order.%2A",
        GUEST,
        None,
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(publish("events", "order.new").await, json!(false));
    assert_eq!(
        http(api, "DELETE", "/api/exchanges/%2F/events", GUEST, None)
            .await
            .status,
        204
    );
    let r = http(api, "DELETE", "/api/exchanges/%2F/amq.direct", GUEST, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        http(api, "GET", "/api/exchanges/%2F/events", GUEST, None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn connections_channels_and_consumers_are_listed_and_a_connection_can_be_closed() {
    let b = start().await;
    let api = management(&b).await;
    let props = ConnectionProperties::default().with_connection_name("billing-worker".into());
    let conn = Connection::connect(&b.uri(), props).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.basic_qos(7, BasicQosOptions::default()).await.unwrap();
    declare(&ch, "jobs").await;
    let _consumer = ch
        .basic_consume(
            "jobs".into(),
            "worker-1".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let conns = get_json(api, "/api/connections").await;
    assert_eq!(conns.as_array().map(Vec::len), Some(1));
    let c = &conns[0];
    assert_eq!(
        (c["user"].clone(), c["vhost"].clone(), c["protocol"].clone()),
        (json!("guest"), json!("/"), json!("AMQP 0-9-1"))
    );
    assert_eq!(c["client_properties"]["connection_name"], "billing-worker");
    assert_eq!(c["client_properties"]["product"], "lapin");
    assert_eq!(c["channels"], 1);
    let name = c["name"].as_str().unwrap().to_string();
    assert_eq!(
        name,
        format!(
            "{} -> {}",
            c["peer_host"].as_str().unwrap().to_string() + ":" + &c["peer_port"].to_string(),
            b.addr
        )
    );

    let channels = get_json(api, "/api/channels").await;
    assert_eq!(channels[0]["number"], 1);
    assert_eq!(channels[0]["connection_details"]["name"], name.as_str());
    assert!(
        eventually(|| async {
            let ch = get_json(api, "/api/channels").await;
            ch[0]["consumer_count"] == 1 && ch[0]["prefetch_count"] == 7
        })
        .await
    );
    let consumers = get_json(api, "/api/consumers/%2F").await;
    assert_eq!(consumers[0]["consumer_tag"], "worker-1");
    assert_eq!(consumers[0]["queue"], json!({"name": "jobs", "vhost": "/"}));
    assert_eq!(consumers[0]["ack_required"], true);
    assert_eq!(consumers[0]["prefetch_count"], 7);
    assert_eq!(
        consumers[0]["channel_details"]["connection_name"],
        name.as_str()
    );

    // DELETE with X-Reason: the client is told 320 with that text.
    let mut raw = b.raw().await;
    let raw_name = eventually(|| async {
        get_json(api, "/api/connections")
            .await
            .as_array()
            .unwrap()
            .len()
            == 2
    })
    .await;
    assert!(raw_name, "the second connection is listed");
    let conns = get_json(api, "/api/connections").await;
    let other = conns
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .find(|n| *n != name)
        .unwrap();
    let path = |n: &str| {
        format!(
            "/api/connections/{}",
            n.replace(' ', "%20").replace('>', "%3E")
        )
    };
    let r = http_with(
        api,
        "DELETE",
        &path(&other),
        GUEST,
        &[("X-Reason", "maintenance window")],
        None,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        raw.expect_connection_close(320).await,
        "CONNECTION_FORCED - maintenance window"
    );
    // Without X-Reason, RabbitMQ's default text; the connection leaves the list.
    assert_eq!(
        http(api, "DELETE", &path(&name), GUEST, None).await.status,
        204
    );
    assert!(
        eventually(|| async { !conn.status().connected() }).await,
        "the connection closes"
    );
    assert!(eventually(|| async { get_json(api, "/api/connections").await == json!([]) }).await);
    assert_eq!(
        http(api, "GET", &path(&name), GUEST, None).await.status,
        404
    );
}

#[tokio::test]
async fn a_management_user_sees_only_its_own_connections_and_vhosts() {
    let b = start().await;
    let api = management(&b).await;
    for (path, body) in [
        (
            "/api/users/ann",
            r#"{"password": "pw", "tags": "management"}"#,
        ),
        ("/api/vhosts/ann-vh", "{}"),
        ("/api/vhosts/secret", "{}"),
        (
            "/api/permissions/secret/guest",
            r#"{"configure": ".*", "write": ".*", "read": ".*"}"#,
        ),
        (
            "/api/permissions/ann-vh/ann",
            r#"{"configure": ".*", "write": ".*", "read": ".*"}"#,
        ),
        ("/api/queues/secret/hidden", "{}"),
        (
            "/api/permissions/ann-vh/guest",
            r#"{"configure": ".*", "write": ".*", "read": ".*"}"#,
        ),
        ("/api/queues/ann-vh/mine", "{}"),
    ] {
        let r = http(api, "PUT", path, GUEST, Some(body)).await;
        assert!(r.status == 201 || r.status == 204, "{path}: {}", r.body);
    }
    let _guest = b.connect().await;
    let ann = Some(("ann", "pw"));
    let _ann_conn = Connection::connect(
        &format!("amqp://ann:pw@{}/ann-vh", b.addr),
        ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let r = http(api, "GET", "/api/connections", ann, None).await;
    let seen: Vec<Value> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["user"].clone())
        .collect();
    assert_eq!(seen, vec![json!("ann")]);
    assert_eq!(
        get_json(api, "/api/connections")
            .await
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let r = http(api, "GET", "/api/queues", ann, None).await;
    let names: Vec<Value> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("mine")]);
    let r = http(api, "GET", "/api/queues/secret", ann, None).await;
    assert_eq!(r.status, 401);
    let r = http(api, "PUT", "/api/queues/ann-vh/amq.mine", ann, Some("{}")).await;
    assert_eq!(r.status, 401, "{}", r.body);
}

#[tokio::test]
async fn the_overview_counts_objects_and_messages_and_rates_follow_the_traffic() {
    let b = start_with(|c| c.collect_statistics_interval = 100).await;
    let api = management(&b).await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "rated").await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for _ in 0..200 {
        ch.basic_publish(
            "".into(),
            "rated".into(),
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    // Prefetch 10 with manual acks: four acked, so four more are delivered.
    let ch2 = b.connect().await.create_channel().await.unwrap();
    ch2.basic_qos(10, BasicQosOptions::default()).await.unwrap();
    let mut consumer = consume(&ch2, "rated", false).await;
    let mut last = 0;
    for _ in 0..10 {
        last = next(&mut consumer).await.delivery_tag;
    }
    ch2.basic_ack(last - 6, BasicAckOptions { multiple: true })
        .await
        .unwrap();
    let settled = eventually(|| async {
        let o = get_json(api, "/api/overview").await;
        o["queue_totals"]["messages_ready"] == 186
            && o["queue_totals"]["messages_unacknowledged"] == 10
            && o["message_stats"]["publish"] == 200
            && o["message_stats"]["confirm"] == 200
            && o["message_stats"]["deliver_get"] == 14
            && o["message_stats"]["ack"] == 4
    })
    .await;
    assert!(settled, "{}", get_json(api, "/api/overview").await);
    let o = get_json(api, "/api/overview").await;
    assert_eq!(o["object_totals"]["queues"], 1);
    assert_eq!(o["object_totals"]["connections"], 2);
    assert_eq!(o["object_totals"]["consumers"], 1);
    assert_eq!(o["rabbitmq_version"], "3.10.0");
    assert_eq!(o["listeners"][0]["protocol"], "amqp");
    let q = get_json(api, "/api/queues/%2F/rated").await;
    assert_eq!(
        (
            q["messages_ready"].clone(),
            q["messages_unacknowledged"].clone(),
            q["messages"].clone()
        ),
        (json!(186), json!(10), json!(196))
    );
    assert_eq!(q["message_stats"]["publish"], 200);
    assert_eq!(q["message_stats"]["deliver_get"], 14);
    assert_eq!(q["message_stats"]["ack"], 4);
    assert_eq!(q["consumers"], 1);

    // A steady publisher shows a publish rate; once it stops, the rate falls to 0.
    let publishing = steady_publisher(&ch, "", "rated");
    let rising = eventually(|| async {
        let q = get_json(api, "/api/queues/%2F/rated").await;
        q["message_stats"]["publish_details"]["rate"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0
    })
    .await;
    assert!(rising, "a publish rate appears");
    publishing.abort();
    let falling = eventually(|| async {
        let o = get_json(api, "/api/overview").await;
        o["message_stats"]["publish_details"]["rate"].as_f64() == Some(0.0)
    })
    .await;
    assert!(falling, "the rate falls back to 0");
    let nodes = get_json(api, "/api/nodes").await;
    assert_eq!(nodes[0]["name"], "warren@localhost");
    assert!(nodes[0]["mem_used"].as_u64().unwrap() > 0);
    assert_eq!(nodes[0]["being_drained"], false);
}

#[tokio::test]
async fn prometheus_metrics_carry_rabbitmq_names_and_the_numbers_of_the_moment() {
    let b = start().await;
    let metrics = prometheus(&b).await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "scraped").await;
    for _ in 0..5 {
        publish(&ch, "", "scraped", b"m").await;
    }
    publish(&ch, "", "nowhere", b"lost").await;
    assert_eq!(count(&ch, "scraped").await, 5);
    let r = http(metrics, "GET", "/metrics", None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let lines: Vec<&str> = r.body.lines().collect();
    for expected in [
        "rabbitmq_identity_info{rabbitmq_node=\"warren@localhost\",rabbitmq_cluster=\"warren@localhost\",rabbitmq_cluster_permanent_id=\"warren\",rabbitmq_endpoint=\"aggregated\"} 1",
        "rabbitmq_queues 1",
        "rabbitmq_connections 1",
        "rabbitmq_queue_messages_ready 5",
        "rabbitmq_queue_messages 5",
        "rabbitmq_channel_messages_published_total 6",
        "rabbitmq_global_messages_received_total{protocol=\"amqp091\"} 6",
        "rabbitmq_global_messages_routed_total{protocol=\"amqp091\"} 5",
        "rabbitmq_global_messages_unroutable_dropped_total{protocol=\"amqp091\"} 1",
    ] {
        assert!(lines.contains(&expected), "{expected} missing from:\n{}", r.body);
    }
    // Every sample's family is declared once, before its samples (text format 0.0.4).
    let mut declared = std::collections::HashSet::new();
    for l in &lines {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap();
            assert!(declared.insert(name.to_string()), "{name} declared twice");
        } else if !l.starts_with('#') {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(declared.contains(name), "{name} has no TYPE line");
        }
    }
    let r = http(metrics, "GET", "/metrics/per-object", None, None).await;
    assert!(
        r.body
            .lines()
            .any(|l| l == "rabbitmq_queue_messages_ready{vhost=\"/\",queue=\"scraped\"} 5"),
        "{}",
        r.body
    );
    assert!(r
        .body
        .lines()
        .any(|l| l == "rabbitmq_queue_messages_published_total{vhost=\"/\",queue=\"scraped\"} 5"));
    assert!(!r
        .body
        .lines()
        .any(|l| l == "rabbitmq_queue_messages_ready 5"));
}

#[tokio::test]
async fn a_classic_queue_is_the_same_with_or_without_x_queue_type() {
    // rabbitmqadmin and RabbitMQ's UI declare x-queue-type "classic"; applications declare the
    // same queue without it. RabbitMQ takes both orders; a quorum queue stays different.
    let b = start().await;
    let api = management(&b).await;
    let typed = r#"{"durable": true, "arguments": {"x-queue-type": "classic"}}"#;
    assert_eq!(
        http(api, "PUT", "/api/queues/%2F/shared", GUEST, Some(typed))
            .await
            .status,
        201
    );
    let (_c, ch) = b.channel().await;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare("shared".into(), durable, FieldTable::default())
        .await
        .unwrap();
    ch.queue_declare("plain".into(), durable, FieldTable::default())
        .await
        .unwrap();
    assert_eq!(
        http(api, "PUT", "/api/queues/%2F/plain", GUEST, Some(typed))
            .await
            .status,
        204
    );
    let quorum = r#"{"durable": true, "arguments": {"x-queue-type": "quorum"}}"#;
    let r = http(api, "PUT", "/api/queues/%2F/plain", GUEST, Some(quorum)).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["reason"],
        "inequivalent arg 'x-queue-type' for queue 'plain' in vhost '/': received the value 'quorum' of type 'longstr' but current is none"
    );
    let o = get_json(api, "/api/overview").await;
    assert_eq!(
        (
            o["churn_rates"]["queue_created"].clone(),
            o["churn_rates"]["queue_declared"].clone()
        ),
        (json!(2), json!(5))
    );
}

/// Publishes a message every 2 ms until the task is aborted (or the channel fails): a rate
/// for the sampler to see.
fn steady_publisher(
    ch: &lapin::Channel,
    exchange: &'static str,
    key: &'static str,
) -> tokio::task::JoinHandle<()> {
    let ch = ch.clone();
    tokio::spawn(async move {
        loop {
            let sent = ch
                .basic_publish(
                    exchange.into(),
                    key.into(),
                    BasicPublishOptions::default(),
                    b"y",
                    BasicProperties::default(),
                )
                .await;
            if sent.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    })
}

/// Publishes `n` messages to `exchange` with `key` and waits for their confirms.
async fn publish_confirmed(ch: &lapin::Channel, exchange: &str, key: &str, n: usize) {
    for _ in 0..n {
        ch.basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            b"m",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn exchanges_channels_and_connections_count_their_traffic_and_show_rates() {
    let b = start_with(|c| c.collect_statistics_interval = 100).await;
    let api = management(&b).await;
    let (_c, ch) = b.channel().await;
    for q in ["fan-a", "fan-b"] {
        declare(&ch, q).await;
    }
    for x in ["fan", "nowhere"] {
        ch.exchange_declare(
            x.into(),
            lapin::ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    for q in ["fan-a", "fan-b"] {
        ch.queue_bind(
            q.into(),
            "fan".into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    publish_confirmed(&ch, "fan", "", 50).await;
    publish_confirmed(&ch, "", "fan-a", 3).await;
    publish_confirmed(&ch, "nowhere", "", 2).await;

    // publish_in counts what was published to the exchange, publish_out each queue it
    // reached (RabbitMQ's exchange message_stats).
    let fan = get_json(api, "/api/exchanges/%2F/fan").await;
    assert_eq!(fan["message_stats"]["publish_in"], 50, "{fan}");
    assert_eq!(fan["message_stats"]["publish_out"], 100, "{fan}");
    let default = get_json(api, "/api/exchanges/%2F/amq.default").await;
    assert_eq!(default["message_stats"]["publish_in"], 3, "{default}");
    assert_eq!(default["message_stats"]["publish_out"], 3, "{default}");
    let nowhere = get_json(api, "/api/exchanges/%2F/nowhere").await;
    assert_eq!(nowhere["message_stats"]["publish_in"], 2, "{nowhere}");
    // Nothing routed: no publish_out at all (RabbitMQ 3.10).
    assert!(
        nowhere["message_stats"].get("publish_out").is_none(),
        "{nowhere}"
    );
    // An exchange nothing was published to has no message_stats, as on RabbitMQ.
    let untouched = get_json(api, "/api/exchanges/%2F/amq.topic").await;
    assert!(untouched.get("message_stats").is_none(), "{untouched}");
    let listed = get_json(
        api,
        "/api/exchanges/%2F?columns=name,message_stats.publish_in",
    )
    .await;
    let listed_fan = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "fan")
        .cloned();
    assert_eq!(
        listed_fan,
        Some(json!({"name": "fan", "message_stats": {"publish_in": 50}}))
    );

    // A steady publisher: the channel's and the exchange's rates rise above 0.
    let publishing = steady_publisher(&ch, "fan", "");
    let rising = eventually(|| async {
        let channels = get_json(api, "/api/channels").await;
        let connections = get_json(api, "/api/connections").await;
        let fan = get_json(api, "/api/exchanges/%2F/fan").await;
        let rate = |v: &Value| v.as_f64().unwrap_or(0.0);
        rate(&channels[0]["message_stats"]["publish_details"]["rate"]) > 0.0
            && rate(&connections[0]["recv_oct_details"]["rate"]) > 0.0
            && rate(&fan["message_stats"]["publish_in_details"]["rate"]) > 0.0
            && rate(&fan["message_stats"]["publish_out_details"]["rate"])
                > rate(&fan["message_stats"]["publish_in_details"]["rate"])
    })
    .await;
    assert!(
        rising,
        "{} {}",
        get_json(api, "/api/channels").await,
        get_json(api, "/api/exchanges/%2F/fan").await
    );
    publishing.abort();
    let _ = publishing.await;

    // The counts of a closed channel stay with the exchange.
    let (_c2, ch2) = b.channel().await;
    let before = get_json(api, "/api/exchanges/%2F/nowhere").await;
    assert_eq!(before["message_stats"]["publish_in"], 2);
    ch.close(200, "bye".into()).await.unwrap();
    ch2.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    publish_confirmed(&ch2, "nowhere", "", 1).await;
    let after = get_json(api, "/api/exchanges/%2F/nowhere").await;
    assert_eq!(after["message_stats"]["publish_in"], 3, "{after}");

    // The API's own publishes count too (RabbitMQ makes them through a channel).
    let before = get_json(api, "/api/exchanges/%2F/fan").await;
    let r = http(
        api,
        "POST",
        "/api/exchanges/%2F/fan/publish",
        GUEST,
        Some(r#"{"properties": {}, "routing_key": "", "payload": "p", "payload_encoding": "string"}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let after = get_json(api, "/api/exchanges/%2F/fan").await;
    let count = |x: &Value, field: &str| x["message_stats"][field].as_u64().unwrap();
    assert_eq!(
        count(&after, "publish_in"),
        count(&before, "publish_in") + 1
    );
    assert_eq!(
        count(&after, "publish_out"),
        count(&before, "publish_out") + 2
    );
}

#[tokio::test]
async fn a_connections_byte_counts_include_its_handshake() {
    let b = start().await;
    let api = management(&b).await;
    // Open, with no channel: everything it sent and received so far was the handshake.
    let _conn = b.connect().await;
    let listed = get_json(api, "/api/connections").await;
    let c = &listed[0];
    // The protocol header, start-ok (with lapin's client properties), tune-ok and open.
    assert!(c["recv_oct"].as_u64().unwrap() > 100, "{c}");
    assert!(c["recv_cnt"].as_u64().unwrap() >= 1, "{c}");
    // connection.start (with the server properties), tune and open-ok.
    assert!(c["send_oct"].as_u64().unwrap() > 300, "{c}");
    assert!(c["send_cnt"].as_u64().unwrap() >= 3, "{c}");
}

#[tokio::test]
async fn the_apis_own_publishes_count_in_the_overview_totals() {
    // RabbitMQ publishes through a channel of its own, in confirm mode and with `mandatory`:
    // each is a publish and a confirm, and an unroutable one is returned.
    let b = start_with(|c| c.collect_statistics_interval = 100).await;
    let api = management(&b).await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "api-q").await;
    for (key, routed) in [("api-q", true), ("nowhere", false)] {
        let body = format!(
            r#"{{"properties": {{}}, "routing_key": "{key}", "payload": "p", "payload_encoding": "string"}}"#
        );
        let r = http(
            api,
            "POST",
            "/api/exchanges/%2F/amq.default/publish",
            GUEST,
            Some(&body),
        )
        .await;
        assert_eq!((r.status, r.json()), (200, json!({ "routed": routed })));
    }
    let counted = eventually(|| async {
        let o = get_json(api, "/api/overview").await;
        let m = &o["message_stats"];
        m["publish"] == 2 && m["confirm"] == 2 && m["return_unroutable"] == 1
    })
    .await;
    assert!(
        counted,
        "{}",
        get_json(api, "/api/overview").await["message_stats"]
    );
}

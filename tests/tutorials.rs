//! The six RabbitMQ tutorials, written with lapin as a RabbitMQ user would write them.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, ExchangeKind};

#[tokio::test]
async fn hello_world() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "hello").await;
    publish(&ch, "", "hello", b"Hello World!").await;
    let mut c = consume(&ch, "hello", true).await;
    assert_eq!(next(&mut c).await.data, b"Hello World!");
}

#[tokio::test]
async fn work_queues_fair_dispatch_with_prefetch_one() {
    let b = start().await;
    let (_c, producer) = b.channel().await;
    producer
        .queue_declare(
            "task_queue".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let (_w1c, w1) = b.channel().await;
    let (_w2c, w2) = b.channel().await;
    for w in [&w1, &w2] {
        w.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    }
    let mut c1 = consume(&w1, "task_queue", false).await;
    let mut c2 = consume(&w2, "task_queue", false).await;
    for i in 0..4 {
        producer
            .basic_publish(
                "".into(),
                "task_queue".into(),
                BasicPublishOptions::default(),
                format!("task {i}").as_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap();
    }
    // Worker 1 holds its task without acking: worker 2 gets every other one.
    let held = next(&mut c1).await;
    let mut done = vec![];
    for _ in 0..3 {
        let d = next(&mut c2).await;
        done.push(String::from_utf8(d.data.clone()).unwrap());
        d.acker.ack(BasicAckOptions::default()).await.unwrap();
    }
    assert_eq!(held.data, b"task 0");
    assert_eq!(done, ["task 1", "task 2", "task 3"]);
    assert_eq!(held.properties.delivery_mode(), &Some(2));
}

#[tokio::test]
async fn publish_subscribe_with_server_named_queues() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.exchange_declare(
        "logs".into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let mut consumers = Vec::new();
    for _ in 0..2 {
        let q = ch
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        ch.queue_bind(
            q.name().clone(),
            "logs".into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        consumers.push(consume(&ch, q.name().as_str(), true).await);
    }
    publish(&ch, "logs", "", b"info: hi").await;
    for c in &mut consumers {
        assert_eq!(next(c).await.data, b"info: hi");
    }
}

#[tokio::test]
async fn routing_by_severity() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.exchange_declare(
        "direct_logs".into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let q = declare(&ch, "").await;
    for sev in ["warning", "error"] {
        ch.queue_bind(
            q.as_str().into(),
            "direct_logs".into(),
            sev.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    let mut c = consume(&ch, &q, true).await;
    for sev in ["info", "warning", "error"] {
        publish(&ch, "direct_logs", sev, sev.as_bytes()).await;
    }
    assert_eq!(next(&mut c).await.routing_key.as_str(), "warning");
    assert_eq!(next(&mut c).await.routing_key.as_str(), "error");
}

#[tokio::test]
async fn topics() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.exchange_declare(
        "topic_logs".into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let q = declare(&ch, "").await;
    for key in ["kern.*", "*.critical"] {
        ch.queue_bind(
            q.as_str().into(),
            "topic_logs".into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    let mut c = consume(&ch, &q, true).await;
    for key in [
        "kern.critical",
        "anonymous.info",
        "cron.critical",
        "kern.info.x",
    ] {
        publish(&ch, "topic_logs", key, key.as_bytes()).await;
    }
    publish(&ch, "", &q, b"end").await;
    let mut got = vec![];
    loop {
        let d = next(&mut c).await;
        if d.data == b"end" {
            break;
        }
        got.push(d.routing_key.to_string());
    }
    assert_eq!(got, ["kern.critical", "cron.critical"]);
}

#[tokio::test]
async fn rpc_with_reply_to_and_correlation_id() {
    let b = start().await;
    let (_s, server) = b.channel().await;
    declare(&server, "rpc_queue").await;
    let mut requests = consume(&server, "rpc_queue", false).await;
    let server_task = tokio::spawn(async move {
        for _ in 0..3 {
            let req = next(&mut requests).await;
            let n: u64 = String::from_utf8(req.data.clone())
                .unwrap()
                .parse()
                .unwrap();
            let fib = (0..n).fold((0u64, 1u64), |(a, b), _| (b, a + b)).0;
            let props = req.properties.clone();
            server
                .basic_publish(
                    "".into(),
                    props.reply_to().clone().unwrap(),
                    BasicPublishOptions::default(),
                    fib.to_string().as_bytes(),
                    BasicProperties::default()
                        .with_correlation_id(props.correlation_id().clone().unwrap()),
                )
                .await
                .unwrap();
            req.acker.ack(BasicAckOptions::default()).await.unwrap();
        }
    });
    let (_cc, client) = b.channel().await;
    let callback = client
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut replies = consume(&client, callback.name().as_str(), true).await;
    for (i, n) in [10u64, 20, 30].iter().enumerate() {
        let id = format!("req-{i}");
        client
            .basic_publish(
                "".into(),
                "rpc_queue".into(),
                BasicPublishOptions::default(),
                n.to_string().as_bytes(),
                BasicProperties::default()
                    .with_reply_to(callback.name().clone())
                    .with_correlation_id(id.as_str().into()),
            )
            .await
            .unwrap();
        let reply = next(&mut replies).await;
        assert_eq!(
            reply
                .properties
                .correlation_id()
                .as_ref()
                .map(|s| s.as_str()),
            Some(id.as_str())
        );
        let expected = [55u64, 6765, 832040][i];
        assert_eq!(String::from_utf8(reply.data).unwrap(), expected.to_string());
    }
    server_task.await.unwrap();
}

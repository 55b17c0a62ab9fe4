//! The x-jms-topic exchange (RabbitMQ's rabbitmq_jms_topic_exchange): each queue binding
//! carries a JMS selector, compiled by the JMS client into an Erlang term, and a message goes
//! where its headers pass the selector. The JMS client itself is exercised in interop/jms.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use amq_protocol::protocol::{connection, queue, AMQPClass};
use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel};

const JMS_TOPIC: &str = "x-jms-topic";

async fn declare_jms_topic(ch: &Channel, name: &str) {
    ch.exchange_declare(
        name.into(),
        lapin::ExchangeKind::Custom(JMS_TOPIC.into()),
        ExchangeDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        args(&[("rjms_version", text("3.4.0"))]),
    )
    .await
    .expect("declare x-jms-topic");
}

/// The binding arguments the JMS client sends for a selector.
fn selector(term: &str) -> FieldTable {
    args(&[
        ("rjms_erlang_selector", text(term)),
        ("rjms_version", text("3.4.0")),
    ])
}

async fn bind_selector(ch: &Channel, queue: &str, exchange: &str, key: &str, term: &str) {
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        key.into(),
        QueueBindOptions::default(),
        selector(term),
    )
    .await
    .expect("queue.bind with a selector");
}

/// Publishes with these headers and waits for the confirm, so the routing is done.
async fn publish_with(
    ch: &Channel,
    exchange: &str,
    key: &str,
    body: &str,
    headers: &[(&str, AMQPValue)],
) {
    let mut h = FieldTable::default();
    for (k, v) in headers {
        h.insert(ShortString::from(*k), v.clone());
    }
    ch.basic_publish(
        exchange.into(),
        key.into(),
        BasicPublishOptions::default(),
        body.as_bytes(),
        BasicProperties::default().with_headers(h),
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

#[tokio::test]
async fn each_binding_gets_the_messages_its_selector_passes() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare_jms_topic(&ch, "jms-ndtop-slx-1").await;
    declare(&ch, "reds").await;
    declare(&ch, "heavy-cars").await;
    declare(&ch, "no-colour").await;
    bind_selector(
        &ch,
        "reds",
        "jms-ndtop-slx-1",
        "t",
        r#"{'=',{'ident',<<"colour">>},<<"red">>}."#,
    )
    .await;
    bind_selector(
        &ch,
        "heavy-cars",
        "jms-ndtop-slx-1",
        "t",
        r#"{'and',{'>',{'ident',<<"weight">>},10},{'like',{'ident',<<"JMSType">>},<<"car%">>,'no_escape'}}."#,
    )
    .await;
    bind_selector(
        &ch,
        "no-colour",
        "jms-ndtop-slx-1",
        "t",
        r#"{'is_null',{'ident',<<"colour">>}}."#,
    )
    .await;

    let car = text("car");
    publish_with(
        &ch,
        "jms-ndtop-slx-1",
        "t",
        "a",
        &[("colour", text("red")), ("weight", AMQPValue::LongInt(5))],
    )
    .await;
    publish_with(
        &ch,
        "jms-ndtop-slx-1",
        "t",
        "b",
        &[("weight", AMQPValue::LongInt(12)), ("JMSType", car.clone())],
    )
    .await;
    publish_with(
        &ch,
        "jms-ndtop-slx-1",
        "t",
        "c",
        &[
            ("colour", text("blue")),
            ("weight", AMQPValue::Double(10.5)),
            ("JMSType", text("cart")),
        ],
    )
    .await;
    // Unknown is not true: a weight that is a string sorts above every number, but LIKE on
    // the missing JMSType is unknown.
    publish_with(
        &ch,
        "jms-ndtop-slx-1",
        "t",
        "d",
        &[("colour", text("red")), ("weight", text("heavy"))],
    )
    .await;
    // As in RabbitMQ, the routing key is not looked at.
    publish_with(
        &ch,
        "jms-ndtop-slx-1",
        "other-key",
        "e",
        &[("colour", text("red"))],
    )
    .await;
    publish_with(&ch, "jms-ndtop-slx-1", "t", "f", &[]).await;

    assert_eq!(drain(&ch, "reds").await, ["a", "d", "e"]);
    assert_eq!(drain(&ch, "heavy-cars").await, ["b", "c"]);
    assert_eq!(drain(&ch, "no-colour").await, ["b", "f"]);
}

#[tokio::test]
async fn a_queue_reached_by_two_selector_exchanges_gets_one_copy() {
    // A durable subscription re-created by a second connection: two per-session selector
    // exchanges, both fed from jms.durable.topic, both bound to the subscription's queue.
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.exchange_declare(
        "jms.durable.topic".into(),
        lapin::ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    declare(&ch, "subscription").await;
    for session in ["jms-dutop-slx-1", "jms-dutop-slx-2"] {
        declare_jms_topic(&ch, session).await;
        ch.exchange_bind(
            session.into(),
            "jms.durable.topic".into(),
            "prices.*".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        bind_selector(
            &ch,
            "subscription",
            session,
            "prices.*",
            r#"{'>=',{'ident',<<"price">>},100}."#,
        )
        .await;
    }
    publish_with(
        &ch,
        "jms.durable.topic",
        "prices.acme",
        "cheap",
        &[("price", AMQPValue::LongInt(99))],
    )
    .await;
    publish_with(
        &ch,
        "jms.durable.topic",
        "prices.acme",
        "dear",
        &[("price", AMQPValue::LongInt(100))],
    )
    .await;
    publish_with(
        &ch,
        "jms.durable.topic",
        "news.acme",
        "elsewhere",
        &[("price", AMQPValue::LongInt(500))],
    )
    .await;
    assert_eq!(drain(&ch, "subscription").await, ["dear"]);

    // Unsubscribing deletes the queue; the auto-delete selector exchanges go with it.
    ch.queue_delete("subscription".into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    let err = ch
        .exchange_declare(
            "jms-dutop-slx-1".into(),
            lapin::ExchangeKind::Custom(JMS_TOPIC.into()),
            ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(404));
}

/// Sends queue.bind to the x-jms-topic exchange `sel` with these arguments and returns the
/// connection.close it gets: (code, text, class, method).
async fn refused_bind(b: &TestBroker, arguments: FieldTable) -> (u16, String, u16, u16) {
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    raw.send_method(
        1,
        AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
            queue: "q".into(),
            exchange: "sel".into(),
            routing_key: "t".into(),
            nowait: false,
            arguments,
        })),
    )
    .await;
    match raw.read_method().await {
        Some((0, AMQPClass::Connection(connection::AMQPMethod::Close(c)))) => (
            c.reply_code,
            c.reply_text.to_string(),
            c.class_id,
            c.method_id,
        ),
        other => panic!("expected connection.close, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unreadable_selector_is_refused_as_rabbitmq_3_10_does() {
    // RabbitMQ 3.10's plugin crashes on a selector it cannot read, which the client sees as
    // connection.close 541 INTERNAL_ERROR naming no method; no binding is made.
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare_jms_topic(&ch, "sel").await;
    declare(&ch, "q").await;
    bind_selector(&ch, "q", "sel", "keep", r#"{'=',{'ident',<<"a">>},1}."#).await;
    for arguments in [
        selector("not a term"),
        selector(r#"{'=',{'ident',<<"a">>},1}"#), // no final dot
        selector(r#"{'=',{'ident',<<"e3">>},Infinity}."#),
        args(&[("rjms_erlang_selector", AMQPValue::LongInt(1))]),
        FieldTable::default(),
    ] {
        assert_eq!(
            refused_bind(&b, arguments).await,
            (541, "INTERNAL_ERROR".to_string(), 0, 0)
        );
    }
    // The other connection and the existing binding are untouched; nothing else was bound.
    publish_with(&ch, "sel", "t", "one", &[("a", AMQPValue::LongInt(1))]).await;
    publish_with(&ch, "sel", "t", "two", &[("a", AMQPValue::LongInt(2))]).await;
    assert_eq!(drain(&ch, "q").await, ["one"]);
}

#[tokio::test]
async fn a_header_the_plugin_cannot_evaluate_routes_nowhere_and_keeps_the_connection() {
    // RabbitMQ closes the publisher's connection (541) when evaluation crashes: LIKE on a
    // number, arithmetic on a string, an unsigned or timestamp header. Warren treats that
    // binding as not matching, and other bindings still get the message.
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare_jms_topic(&ch, "sel").await;
    declare(&ch, "like").await;
    declare(&ch, "sum").await;
    declare(&ch, "all").await;
    bind_selector(
        &ch,
        "like",
        "sel",
        "t",
        r#"{'like',{'ident',<<"v">>},<<"1%">>,'no_escape'}."#,
    )
    .await;
    bind_selector(
        &ch,
        "sum",
        "sel",
        "t",
        r#"{'=',{'+',{'ident',<<"v">>},1},2}."#,
    )
    .await;
    bind_selector(&ch, "all", "sel", "t", r#"{'not_null',{'ident',<<"w">>}}."#).await;
    publish_with(
        &ch,
        "sel",
        "t",
        "number",
        &[
            ("v", AMQPValue::LongInt(1)),
            ("w", AMQPValue::Boolean(true)),
        ],
    )
    .await;
    publish_with(
        &ch,
        "sel",
        "t",
        "string",
        &[("v", text("1")), ("w", AMQPValue::Boolean(true))],
    )
    .await;
    publish_with(
        &ch,
        "sel",
        "t",
        "unsigned",
        &[
            ("v", AMQPValue::LongUInt(1)),
            ("w", AMQPValue::Boolean(true)),
        ],
    )
    .await;
    assert_eq!(drain(&ch, "like").await, ["string"]);
    assert_eq!(drain(&ch, "sum").await, ["number"]);
    assert_eq!(drain(&ch, "all").await, ["number", "string", "unsigned"]);
}

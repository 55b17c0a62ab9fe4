//! queue.* and exchange.* declarations: passive, exclusive, server-named, equivalence,
//! reserved names, purge and delete with their conditions.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::ExchangeKind;

#[tokio::test]
async fn server_named_queue_and_declare_ok_counts() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
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
    assert!(q.name().as_str().starts_with("amq.gen-"), "{}", q.name());
    assert_eq!(q.name().as_str().len(), "amq.gen-".len() + 22);
    publish(&ch, "", q.name().as_str(), b"1").await;
    assert_eq!(count(&ch, q.name().as_str()).await, 1);
}

#[tokio::test]
async fn redeclare_reports_messages_and_consumers() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "counted").await;
    publish(&ch, "", "counted", b"1").await;
    publish(&ch, "", "counted", b"2").await;
    let again = ch
        .queue_declare(
            "counted".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!((again.message_count(), again.consumer_count()), (2, 0));
    let (_c2, ch2) = b.channel().await;
    let _consumer = ch2
        .basic_consume(
            "counted".into(),
            "c".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let again = ch
        .queue_declare(
            "counted".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(again.consumer_count(), 1);
}

#[tokio::test]
async fn passive_declare_of_a_missing_queue_is_404() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let err = ch
        .queue_declare(
            "missing".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        reply_of(&err),
        (404, "NOT_FOUND - no queue 'missing' in vhost '/'".into())
    );
}

#[tokio::test]
async fn inequivalent_durable_is_406() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "q").await;
    let err = ch
        .queue_declare(
            "q".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        reply_of(&err),
        (406, "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q' in vhost '/': received 'true' but current is 'false'".into())
    );
}

#[tokio::test]
async fn inequivalent_arguments_are_406_and_equal_ones_are_fine() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let mut args = FieldTable::default();
    args.insert(ShortString::from("x-max-length"), AMQPValue::LongInt(10));
    ch.queue_declare("qa".into(), QueueDeclareOptions::default(), args.clone())
        .await
        .unwrap();
    ch.queue_declare("qa".into(), QueueDeclareOptions::default(), args)
        .await
        .expect("same args");
    let mut other = FieldTable::default();
    other.insert(ShortString::from("x-max-length"), AMQPValue::LongInt(20));
    let err = ch
        .queue_declare("qa".into(), QueueDeclareOptions::default(), other)
        .await
        .unwrap_err();
    let (code, text) = reply_of(&err);
    assert_eq!(code, 406);
    assert!(
        text.starts_with("PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'qa'"),
        "{text}"
    );
}

#[tokio::test]
async fn amq_prefix_is_reserved_for_queues_and_exchanges() {
    let b = start().await;
    let (c, ch) = b.channel().await;
    let err = ch
        .queue_declare(
            "amq.mine".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        reply_of(&err),
        (
            403,
            "ACCESS_REFUSED - queue name 'amq.mine' contains reserved prefix 'amq.*'".into()
        )
    );
    let ch = c.create_channel().await.unwrap();
    let err = ch
        .exchange_declare(
            "amq.mine".into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        reply_of(&err),
        (
            403,
            "ACCESS_REFUSED - exchange name 'amq.mine' contains reserved prefix 'amq.*'".into()
        )
    );
    // Redeclaring a predeclared exchange with its own properties is fine.
    let ch = c.create_channel().await.unwrap();
    ch.exchange_declare(
        "amq.topic".into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("equivalent redeclare of amq.topic");
}

#[tokio::test]
async fn exchange_redeclare_with_another_type_is_406() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.exchange_declare(
        "e".into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let err = ch
        .exchange_declare(
            "e".into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        reply_of(&err),
        (406, "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'e' in vhost '/': received 'fanout' but current is 'direct'".into())
    );
}

#[tokio::test]
async fn passive_exchange_declare_of_a_missing_exchange_is_404() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let err = ch
        .exchange_declare(
            "nope".into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        reply_of(&err),
        (404, "NOT_FOUND - no exchange 'nope' in vhost '/'".into())
    );
}

#[tokio::test]
async fn exclusive_queue_is_locked_to_its_connection_and_deleted_with_it() {
    let b = start().await;
    let (c1, ch1) = b.channel().await;
    ch1.queue_declare(
        "mine".into(),
        QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let (_c2, ch2) = b.channel().await;
    let err = ch2
        .basic_consume(
            "mine".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    let (code, text) = reply_of(&err);
    assert_eq!(code, 405);
    assert!(
        text.starts_with(
            "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'mine' in vhost '/'"
        ),
        "{text}"
    );
    c1.close(200, "bye".into()).await.unwrap();
    let ch3 = b.channel().await.1;
    let err = ch3
        .queue_declare(
            "mine".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(404));
}

#[tokio::test]
async fn purge_and_delete_return_message_counts() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "p").await;
    for _ in 0..3 {
        publish(&ch, "", "p", b"x").await;
    }
    assert_eq!(
        ch.queue_purge("p".into(), QueuePurgeOptions::default())
            .await
            .unwrap(),
        3
    );
    publish(&ch, "", "p", b"y").await;
    assert_eq!(
        ch.queue_delete("p".into(), QueueDeleteOptions::default())
            .await
            .unwrap(),
        1
    );
    // Deleting a missing queue is not an error (RabbitMQ is idempotent here).
    assert_eq!(
        ch.queue_delete("p".into(), QueueDeleteOptions::default())
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn delete_if_empty_and_if_unused_are_406_when_they_do_not_hold() {
    let b = start().await;
    let (c, ch) = b.channel().await;
    declare(&ch, "busy").await;
    publish(&ch, "", "busy", b"x").await;
    let err = ch
        .queue_delete(
            "busy".into(),
            QueueDeleteOptions {
                if_empty: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        reply_of(&err),
        (
            406,
            "PRECONDITION_FAILED - queue 'busy' in vhost '/' not empty".into()
        )
    );
    let ch = c.create_channel().await.unwrap();
    let _consumer = consume(&ch, "busy", false).await;
    let ch2 = c.create_channel().await.unwrap();
    let err = ch2
        .queue_delete(
            "busy".into(),
            QueueDeleteOptions {
                if_unused: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        reply_of(&err),
        (
            406,
            "PRECONDITION_FAILED - queue 'busy' in vhost '/' in use".into()
        )
    );
}

#[tokio::test]
async fn binding_to_the_default_exchange_is_403_and_to_missing_things_404() {
    let b = start().await;
    let (c, ch) = b.channel().await;
    declare(&ch, "q").await;
    let err = ch
        .queue_bind(
            "q".into(),
            "".into(),
            "q".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        reply_of(&err),
        (
            403,
            "ACCESS_REFUSED - operation not permitted on the default exchange".into()
        )
    );
    let ch = c.create_channel().await.unwrap();
    let err = ch
        .queue_bind(
            "q".into(),
            "nope".into(),
            "k".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        reply_of(&err),
        (404, "NOT_FOUND - no exchange 'nope' in vhost '/'".into())
    );
    let ch = c.create_channel().await.unwrap();
    let err = ch
        .queue_bind(
            "nope".into(),
            "amq.direct".into(),
            "k".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        reply_of(&err),
        (404, "NOT_FOUND - no queue 'nope' in vhost '/'".into())
    );
}

#[tokio::test]
async fn exchange_delete_if_unused_with_bindings_is_406() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.exchange_declare(
        "used".into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    declare(&ch, "q").await;
    ch.queue_bind(
        "q".into(),
        "used".into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let err = ch
        .exchange_delete(
            "used".into(),
            ExchangeDeleteOptions {
                if_unused: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        reply_of(&err),
        (
            406,
            "PRECONDITION_FAILED - exchange 'used' in vhost '/' in use".into()
        )
    );
}

/// RabbitMQ's exclusive check on redeclare is strict: the owning connection redeclaring its
/// exclusive queue without the flag (from another channel too) gets 405, and so does
/// redeclaring a shared queue as exclusive.
#[tokio::test]
async fn the_exclusive_property_must_match_on_redeclare() {
    let b = start().await;
    let (c, ch) = b.channel().await;
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    ch.queue_declare("mine".into(), exclusive, FieldTable::default())
        .await
        .expect("exclusive declare");
    ch.queue_declare("mine".into(), exclusive, FieldTable::default())
        .await
        .expect("the same declare again is fine");
    let other = c.create_channel().await.expect("channel");
    let err = other
        .queue_declare(
            "mine".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    let locked = "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue";
    let (code, text) = reply_of(&err);
    assert_eq!(code, 405);
    assert!(text.starts_with(locked), "{text}");
    let ch = c.create_channel().await.expect("channel");
    declare(&ch, "shared").await;
    let err = ch
        .queue_declare("shared".into(), exclusive, FieldTable::default())
        .await
        .unwrap_err();
    let (code, text) = reply_of(&err);
    assert_eq!(code, 405);
    assert!(text.starts_with(locked), "{text}");
}

/// Every exchange.declare of the default exchange is refused, passive ones too (RabbitMQ).
#[tokio::test]
async fn declaring_the_default_exchange_is_403_even_passive() {
    let b = start().await;
    let (c, _ch) = b.channel().await;
    for passive in [true, false] {
        let ch = c.create_channel().await.expect("channel");
        let err = ch
            .exchange_declare(
                "".into(),
                lapin::ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    passive,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(
            reply_of(&err),
            (
                403,
                "ACCESS_REFUSED - operation not permitted on the default exchange".into()
            ),
            "passive: {passive}"
        );
    }
}

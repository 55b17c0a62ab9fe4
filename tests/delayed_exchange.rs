//! The delayed-message exchange (type x-delayed-message, header x-delay).
mod common;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::BasicProperties;

#[tokio::test]
async fn delayed_messages_are_routed_after_their_delay() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.exchange_declare(
        "later".into(),
        lapin::ExchangeKind::Custom("x-delayed-message".into()),
        ExchangeDeclareOptions::default(),
        args(&[("x-delayed-type", text("direct"))]),
    )
    .await
    .expect("declare x-delayed-message");
    declare(&ch, "dq").await;
    ch.queue_bind(
        "dq".into(),
        "later".into(),
        "k".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let mut h = FieldTable::default();
    h.insert(ShortString::from("x-delay"), AMQPValue::LongInt(1000));
    let sent = std::time::Instant::now();
    ch.basic_publish(
        "later".into(),
        "k".into(),
        BasicPublishOptions::default(),
        b"delayed",
        BasicProperties::default().with_headers(h),
    )
    .await
    .unwrap();
    ch.basic_publish(
        "later".into(),
        "k".into(),
        BasicPublishOptions::default(),
        b"now",
        BasicProperties::default(),
    )
    .await
    .unwrap();
    let mut c = consume(&ch, "dq", true).await;
    assert_eq!(next(&mut c).await.data, b"now");
    assert_eq!(next(&mut c).await.data, b"delayed");
    assert!(
        sent.elapsed() >= std::time::Duration::from_millis(1000),
        "delivered before its delay"
    );
}

#[tokio::test]
async fn a_delayed_exchange_needs_a_valid_delayed_type() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let err = ch
        .exchange_declare(
            "bad".into(),
            lapin::ExchangeKind::Custom("x-delayed-message".into()),
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(406));
}

#[tokio::test]
async fn persistent_delayed_messages_survive_a_crash() {
    let w = WarrenProcess::start_fresh().await;
    {
        let (_c, ch) = w.channel().await;
        ch.exchange_declare(
            "later".into(),
            lapin::ExchangeKind::Custom("x-delayed-message".into()),
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args(&[("x-delayed-type", text("direct"))]),
        )
        .await
        .unwrap();
        ch.queue_declare(
            "due".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.queue_bind(
            "due".into(),
            "later".into(),
            "k".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let mut h = FieldTable::default();
        h.insert(ShortString::from("x-delay"), AMQPValue::LongInt(800));
        ch.basic_publish(
            "later".into(),
            "k".into(),
            BasicPublishOptions::default(),
            b"survivor",
            BasicProperties::default()
                .with_headers(h)
                .with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .expect("confirmed once on disk");
    }
    // Crash before the delay is over; the message must still be delivered after the restart.
    let w = w.crash_and_restart().await;
    let (_c, ch) = w.channel().await;
    let mut c = consume(&ch, "due", true).await;
    assert_eq!(next(&mut c).await.data, b"survivor");
}

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
    h.insert(ShortString::from("x-delay"), AMQPValue::LongInt(300));
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
        sent.elapsed() >= std::time::Duration::from_millis(300),
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

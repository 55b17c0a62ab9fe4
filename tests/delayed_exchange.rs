//! The delayed-message exchange (type x-delayed-message, header x-delay).
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::BasicProperties;

/// A transient delayed exchange `later` (direct) with queue `dq` bound by key `k`.
async fn delayed_direct_to_dq(ch: &lapin::Channel) {
    ch.exchange_declare(
        "later".into(),
        lapin::ExchangeKind::Custom("x-delayed-message".into()),
        ExchangeDeclareOptions::default(),
        args(&[("x-delayed-type", text("direct"))]),
    )
    .await
    .expect("declare x-delayed-message");
    declare(ch, "dq").await;
    ch.queue_bind(
        "dq".into(),
        "later".into(),
        "k".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn delayed_messages_are_routed_after_their_delay() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    delayed_direct_to_dq(&ch).await;
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

/// A durable delayed exchange `later` routing key `k` to the durable queue `due`.
async fn declare_durable_delayed(ch: &lapin::Channel) {
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
    .expect("declare the delayed exchange");
    ch.queue_declare(
        "due".into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("declare the queue");
    ch.queue_bind(
        "due".into(),
        "later".into(),
        "k".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("bind");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
}

/// Publishes a persistent message to `later` with `x-delay` and waits for its confirm.
async fn publish_delayed(ch: &lapin::Channel, body: &[u8], delay_ms: i32) {
    let mut h = FieldTable::default();
    h.insert(ShortString::from("x-delay"), AMQPValue::LongInt(delay_ms));
    ch.basic_publish(
        "later".into(),
        "k".into(),
        BasicPublishOptions::default(),
        body,
        BasicProperties::default()
            .with_headers(h)
            .with_delivery_mode(2),
    )
    .await
    .expect("publish")
    .await
    .expect("confirmed once on disk");
}

#[tokio::test]
async fn persistent_delayed_messages_survive_a_crash() {
    let w = WarrenProcess::start_fresh().await;
    {
        let (_c, ch) = w.channel().await;
        declare_durable_delayed(&ch).await;
        publish_delayed(&ch, b"survivor", 800).await;
    }
    // Crash before the delay is over; the message must still be delivered after the restart.
    let w = w.crash_and_restart().await;
    let (_c, ch) = w.channel().await;
    let mut c = consume(&ch, "due", true).await;
    assert_eq!(next(&mut c).await.data, b"survivor");
}

/// The delayed log holds messages in publish order, not due order. Acks must be counted
/// against the segment that holds each message: counted by due time, a segment was deleted
/// while a message with a long delay still waited in it, and a restart lost that message.
#[tokio::test]
async fn a_long_delay_survives_a_restart_after_shorter_ones_filled_a_segment() {
    let w = WarrenProcess::start_fresh().await;
    {
        let (conn, ch) = w.channel().await;
        declare_durable_delayed(&ch).await;
        publish_delayed(&ch, b"first", 1000).await;
        publish_delayed(&ch, b"keeper", 9000).await;
        // More than one 16 MiB segment of messages due before the keeper.
        let big = vec![b'x'; 1 << 20];
        for _ in 0..20 {
            publish_delayed(&ch, &big, 5000).await;
        }
        publish_delayed(&ch, b"in the next segment", 2000).await;
        // Never due during the test: the last number written to the second segment.
        publish_delayed(&ch, b"much later", 60_000).await;
        let mut c = consume(&ch, "due", true).await;
        for _ in 0..22 {
            let d = next(&mut c).await;
            assert_ne!(d.data, b"keeper", "delivered too early");
        }
        // Closed, so that the restart below does not wait for this client.
        conn.close(200, "done".into()).await.expect("close");
    }
    // Every shorter delay was delivered and its ack written; the keeper still waits.
    let w = w.restart().await;
    let (_c, ch) = w.channel().await;
    let mut c = consume(&ch, "due", true).await;
    assert_eq!(next(&mut c).await.data, b"keeper");
}

#[tokio::test]
async fn a_shorter_delay_published_later_is_routed_first() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    delayed_direct_to_dq(&ch).await;
    // The vhost's one timer waits for the 1.5 s message first; the later, shorter delays
    // must wake it sooner.
    for (body, delay) in [("slow", 1500), ("fast", 200), ("middle", 700)] {
        let mut h = FieldTable::default();
        h.insert(ShortString::from("x-delay"), AMQPValue::LongInt(delay));
        ch.basic_publish(
            "later".into(),
            "k".into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            BasicProperties::default().with_headers(h),
        )
        .await
        .unwrap();
    }
    let mut c = consume(&ch, "dq", true).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(String::from_utf8(next(&mut c).await.data).unwrap());
    }
    assert_eq!(got, ["fast", "middle", "slow"]);
}

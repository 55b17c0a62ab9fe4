//! Message TTL (x-message-ttl and the expiration property) and queue expiry (x-expires).
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;

#[tokio::test]
async fn queue_ttl_expires_messages_into_the_dlx() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "expired").await;
    declare_with(
        &ch,
        "ttl",
        args(&[
            ("x-message-ttl", AMQPValue::LongInt(30)),
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text("expired")),
        ]),
    )
    .await;
    publish(&ch, "", "ttl", b"old").await;
    let mut c = consume(&ch, "expired", true).await;
    let d = next(&mut c).await;
    assert_eq!(d.data, b"old");
    assert_eq!(
        count(&ch, "ttl").await,
        0,
        "never delivered from the TTL queue"
    );
}

#[tokio::test]
async fn per_message_expiration_is_honoured_and_removed_when_dead_lettered() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "dl").await;
    declare_with(
        &ch,
        "q",
        args(&[
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text("dl")),
        ]),
    )
    .await;
    ch.basic_publish(
        "".into(),
        "q".into(),
        BasicPublishOptions::default(),
        b"short-lived",
        BasicProperties::default().with_expiration("25".into()),
    )
    .await
    .unwrap();
    publish(&ch, "", "q", b"forever").await;
    let mut c = consume(&ch, "dl", true).await;
    let d = next(&mut c).await;
    assert_eq!(d.data, b"short-lived");
    assert!(
        d.properties.expiration().is_none(),
        "expiration is removed when dead-lettered"
    );
    let deaths = match d
        .properties
        .headers()
        .clone()
        .unwrap()
        .inner()
        .get("x-death")
    {
        Some(AMQPValue::FieldArray(a)) => a.as_slice().to_vec(),
        other => panic!("{other:?}"),
    };
    match &deaths[0] {
        AMQPValue::FieldTable(t) => {
            assert_eq!(t.inner().get("original-expiration"), Some(&text("25")));
            assert_eq!(t.inner().get("reason"), Some(&text("expired")));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        count(&ch, "q").await,
        1,
        "the message without expiration stays"
    );
}

#[tokio::test]
async fn ttl_zero_still_reaches_a_waiting_consumer() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare_with(
        &ch,
        "zero",
        args(&[("x-message-ttl", AMQPValue::LongInt(0))]),
    )
    .await;
    let mut c = consume(&ch, "zero", true).await;
    publish(&ch, "", "zero", b"now").await;
    assert_eq!(next(&mut c).await.data, b"now");
}

#[tokio::test]
async fn an_unused_queue_with_x_expires_is_deleted() {
    let b = start().await;
    let (c, ch) = b.channel().await;
    declare_with(
        &ch,
        "ephemeral",
        args(&[("x-expires", AMQPValue::LongInt(100))]),
    )
    .await;
    let c = std::sync::Arc::new(c);
    let gone = eventually(|| {
        let c = c.clone();
        async move {
            // Polled with queue.bind: a passive declare would count as use and keep it alive.
            let ch = c.create_channel().await.unwrap();
            ch.queue_bind(
                "ephemeral".into(),
                "amq.direct".into(),
                "poll".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .is_err()
        }
    })
    .await;
    assert!(gone, "queue with x-expires=100 still exists");
}

#[tokio::test]
async fn a_passive_declare_keeps_an_x_expires_queue_alive() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare_with(
        &ch,
        "kept",
        args(&[("x-expires", AMQPValue::LongInt(1000))]),
    )
    .await;
    // Each passive declare is a use (RabbitMQ): 2.5 s of them (every 50 ms, so with a second of
    // slack for a loaded machine) keep a queue that would otherwise expire after 1 s.
    let until = std::time::Instant::now() + std::time::Duration::from_millis(2500);
    while std::time::Instant::now() < until {
        count(&ch, "kept").await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(count(&ch, "kept").await, 0, "still there");
}

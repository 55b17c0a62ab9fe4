//! Priority queues (x-max-priority), consumer priorities (x-priority) and single active
//! consumer (x-single-active-consumer).
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;

#[tokio::test]
async fn higher_priority_first_fifo_within_a_priority() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare_with(
        &ch,
        "pq",
        args(&[("x-max-priority", AMQPValue::LongInt(5))]),
    )
    .await;
    for (body, p) in [
        ("low-1", 1u8),
        ("high-1", 5),
        ("none", 0),
        ("high-2", 5),
        ("capped", 9),
        ("low-2", 1),
    ] {
        ch.basic_publish(
            "".into(),
            "pq".into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            BasicProperties::default().with_priority(p),
        )
        .await
        .unwrap();
    }
    let mut got = vec![];
    while let Some(m) = get(&ch, "pq").await {
        got.push(String::from_utf8(m.delivery.data.clone()).unwrap());
    }
    assert_eq!(
        got,
        ["high-1", "high-2", "capped", "low-1", "low-2", "none"]
    );
}

#[tokio::test]
async fn higher_priority_consumers_are_served_first() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "cq").await;
    let _low = ch
        .basic_consume(
            "cq".into(),
            "low".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut high = ch
        .basic_consume(
            "cq".into(),
            "high".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            args(&[("x-priority", AMQPValue::LongInt(10))]),
        )
        .await
        .unwrap();
    for i in 0..3 {
        publish(&ch, "", "cq", format!("{i}").as_bytes()).await;
    }
    for i in 0..3 {
        assert_eq!(next(&mut high).await.data, format!("{i}").as_bytes());
    }
    // The low-priority consumer got nothing while the high one had credit.
    publish(&ch, "", "cq", b"end").await;
    assert_eq!(next(&mut high).await.data, b"end");
}

#[tokio::test]
async fn single_active_consumer_hands_over_in_registration_order() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare_with(
        &ch,
        "sac",
        args(&[("x-single-active-consumer", AMQPValue::Boolean(true))]),
    )
    .await;
    let (_c2, ch2) = b.channel().await;
    let (_c3, ch3) = b.channel().await;
    let mut first = consume(&ch, "sac", true).await;
    let mut second = consume(&ch2, "sac", true).await;
    let mut third = consume(&ch3, "sac", true).await;
    for i in 0..3 {
        publish(&ch, "", "sac", format!("a{i}").as_bytes()).await;
    }
    for i in 0..3 {
        assert_eq!(next(&mut first).await.data, format!("a{i}").as_bytes());
    }
    ch.basic_cancel(first.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    publish(&ch2, "", "sac", b"b0").await;
    assert_eq!(next(&mut second).await.data, b"b0");
    ch2.basic_cancel(second.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    publish(&ch3, "", "sac", b"c0").await;
    assert_eq!(next(&mut third).await.data, b"c0");
}

//! Length limits: x-max-length, x-max-length-bytes and x-overflow.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use lapin::options::*;
use lapin::types::AMQPValue;
use lapin::{BasicProperties, Confirmation};

#[tokio::test]
async fn drop_head_keeps_the_newest() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare_with(&ch, "q", args(&[("x-max-length", AMQPValue::LongInt(3))])).await;
    for i in 0..5 {
        publish(&ch, "", "q", format!("{i}").as_bytes()).await;
    }
    let mut got = vec![];
    while let Some(m) = get(&ch, "q").await {
        got.push(String::from_utf8(m.delivery.data.clone()).unwrap());
    }
    assert_eq!(got, ["2", "3", "4"]);
}

#[tokio::test]
async fn max_length_bytes_counts_body_bytes() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare_with(
        &ch,
        "q",
        args(&[("x-max-length-bytes", AMQPValue::LongInt(10))]),
    )
    .await;
    for body in ["aaaa", "bbbb", "cccc"] {
        publish(&ch, "", "q", body.as_bytes()).await;
    }
    assert_eq!(count(&ch, "q").await, 2);
    assert_eq!(get(&ch, "q").await.unwrap().delivery.data, b"bbbb");
}

#[tokio::test]
async fn reject_publish_nacks_the_publisher() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare_with(
        &ch,
        "full",
        args(&[
            ("x-max-length", AMQPValue::LongInt(1)),
            ("x-overflow", text("reject-publish")),
        ]),
    )
    .await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut outcomes = vec![];
    for i in 0..3 {
        let c = ch
            .basic_publish(
                "".into(),
                "full".into(),
                BasicPublishOptions::default(),
                format!("{i}").as_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        outcomes.push(matches!(c, Confirmation::Ack(_)));
    }
    assert_eq!(outcomes, [true, false, false]);
    assert_eq!(get(&ch, "full").await.unwrap().delivery.data, b"0");
}

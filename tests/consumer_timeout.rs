//! The consumer acknowledgement timeout cancels the slow consumer, not the channel.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use lapin::types::AMQPValue;

#[tokio::test]
async fn a_consumer_holding_a_delivery_too_long_is_cancelled_and_its_messages_requeued() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare_with(
        &ch,
        "slow",
        args(&[("x-consumer-timeout", AMQPValue::LongInt(100))]),
    )
    .await;
    publish(&ch, "", "slow", b"job").await;
    let mut c = consume(&ch, "slow", false).await;
    let held = next(&mut c).await;
    assert!(!held.redelivered);
    // The server cancels the consumer: lapin ends its stream on basic.cancel.
    let end = tokio::time::timeout(WAIT, futures_lite::StreamExt::next(&mut c))
        .await
        .expect("cancelled in time");
    assert!(
        end.is_none(),
        "expected the consumer to be cancelled, got {end:?}"
    );
    // The message is back in the queue, marked redelivered, and the channel still works.
    let again = get(&ch, "slow").await.expect("requeued");
    assert_eq!(again.delivery.data, b"job");
    assert!(again.delivery.redelivered);
}

/// The connection keeps one timer for its channels' deadlines: a later, shorter deadline must
/// re-arm it earlier (here the first delivery's deadline is an hour away).
#[tokio::test]
async fn a_shorter_timeout_on_another_channel_is_enforced_while_a_long_one_is_pending() {
    let b = start().await;
    let (conn, patient_ch) = b.channel().await;
    declare_with(
        &patient_ch,
        "patient",
        args(&[("x-consumer-timeout", AMQPValue::LongInt(3_600_000))]),
    )
    .await;
    publish(&patient_ch, "", "patient", b"long").await;
    let mut patient = consume(&patient_ch, "patient", false).await;
    let _held_long = next(&mut patient).await;

    let slow_ch = conn.create_channel().await.unwrap();
    declare_with(
        &slow_ch,
        "slow",
        args(&[("x-consumer-timeout", AMQPValue::LongInt(100))]),
    )
    .await;
    publish(&slow_ch, "", "slow", b"short").await;
    let mut slow = consume(&slow_ch, "slow", false).await;
    let _held_short = next(&mut slow).await;
    let end = tokio::time::timeout(WAIT, futures_lite::StreamExt::next(&mut slow))
        .await
        .expect("the short timeout fires although the long one is pending");
    assert!(end.is_none(), "expected a cancel, got {end:?}");
    let again = get(&slow_ch, "slow").await.expect("requeued");
    assert_eq!(again.delivery.data, b"short");
    assert!(again.delivery.redelivered);
}

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

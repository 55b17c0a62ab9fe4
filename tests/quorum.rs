//! x-queue-type quorum on a single node: durable-only, x-delivery-count, x-delivery-limit.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};

fn quorum_args(extra: &[(&str, AMQPValue)]) -> FieldTable {
    let mut entries = vec![("x-queue-type", text("quorum"))];
    entries.extend(extra.iter().cloned());
    args(&entries)
}

#[tokio::test]
async fn quorum_queues_must_be_durable() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let err = ch
        .queue_declare(
            "qq".into(),
            QueueDeclareOptions::default(),
            quorum_args(&[]),
        )
        .await
        .unwrap_err();
    assert_eq!(
        reply_of(&err),
        (
            406,
            "PRECONDITION_FAILED - invalid property 'non-durable' for queue 'qq' in vhost '/'"
                .into()
        )
    );
}

#[tokio::test]
async fn redeliveries_are_counted_and_the_limit_dead_letters() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "poison").await;
    ch.queue_declare(
        "qq".into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        quorum_args(&[
            ("x-delivery-limit", AMQPValue::LongInt(2)),
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text("poison")),
        ]),
    )
    .await
    .unwrap();
    publish(&ch, "", "qq", b"bad").await;
    let mut c = consume(&ch, "qq", false).await;
    let mut counts = vec![];
    for _ in 0..3 {
        let d = next(&mut c).await;
        counts.push(
            d.properties
                .headers()
                .as_ref()
                .and_then(|h| h.inner().get("x-delivery-count").cloned()),
        );
        d.acker
            .nack(BasicNackOptions {
                requeue: true,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    assert_eq!(
        counts,
        [
            None,
            Some(AMQPValue::LongLongInt(1)),
            Some(AMQPValue::LongLongInt(2))
        ]
    );
    let mut dl = consume(&ch, "poison", true).await;
    let d = next(&mut dl).await;
    assert_eq!(d.data, b"bad");
    let deaths = match d
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-death").cloned())
    {
        Some(AMQPValue::FieldArray(a)) => a,
        other => panic!("{other:?}"),
    };
    match &deaths.as_slice()[0] {
        AMQPValue::FieldTable(t) => {
            assert_eq!(t.inner().get("reason"), Some(&text("delivery_limit")))
        }
        other => panic!("{other:?}"),
    }
}

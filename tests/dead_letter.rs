//! Dead-lettering: rejected, expired and overflowed messages go to the dead-letter exchange
//! with RabbitMQ's x-death history.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;

fn death(d: &lapin::message::Delivery) -> Vec<FieldTable> {
    let headers = d.properties.headers().clone().expect("headers");
    match headers.inner().get("x-death") {
        Some(AMQPValue::FieldArray(a)) => a
            .as_slice()
            .iter()
            .map(|v| match v {
                AMQPValue::FieldTable(t) => t.clone(),
                other => panic!("x-death entry {other:?}"),
            })
            .collect(),
        other => panic!("no x-death: {other:?}"),
    }
}

fn s(t: &FieldTable, k: &str) -> String {
    match t.inner().get(k) {
        Some(AMQPValue::LongString(v)) => String::from_utf8(v.as_bytes().to_vec()).unwrap(),
        other => panic!("{k}: {other:?}"),
    }
}

fn count(t: &FieldTable) -> i64 {
    match t.inner().get("count") {
        Some(AMQPValue::LongLongInt(n)) => *n,
        other => panic!("count: {other:?}"),
    }
}

#[tokio::test]
async fn rejected_messages_go_to_the_dlx_with_x_death() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "dlq").await;
    ch.queue_bind(
        "dlq".into(),
        "amq.direct".into(),
        "dead".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    declare_with(
        &ch,
        "work",
        args(&[
            ("x-dead-letter-exchange", text("amq.direct")),
            ("x-dead-letter-routing-key", text("dead")),
        ]),
    )
    .await;
    ch.basic_publish(
        "".into(),
        "work".into(),
        BasicPublishOptions::default(),
        b"job",
        BasicProperties::default().with_message_id("m1".into()),
    )
    .await
    .unwrap();
    let mut work = consume(&ch, "work", false).await;
    next(&mut work)
        .await
        .acker
        .reject(BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    let mut dlq = consume(&ch, "dlq", true).await;
    let d = next(&mut dlq).await;
    assert_eq!(d.data, b"job");
    assert_eq!(d.exchange.as_str(), "amq.direct");
    assert_eq!(d.routing_key.as_str(), "dead");
    assert_eq!(
        d.properties.message_id().as_ref().map(|m| m.as_str()),
        Some("m1")
    );
    let deaths = death(&d);
    assert_eq!(deaths.len(), 1);
    assert_eq!(s(&deaths[0], "reason"), "rejected");
    assert_eq!(s(&deaths[0], "queue"), "work");
    assert_eq!(s(&deaths[0], "exchange"), "");
    assert_eq!(count(&deaths[0]), 1);
    match deaths[0].inner().get("routing-keys") {
        Some(AMQPValue::FieldArray(a)) => assert_eq!(a.as_slice(), &[text("work")]),
        other => panic!("routing-keys {other:?}"),
    }
    assert!(matches!(
        deaths[0].inner().get("time"),
        Some(AMQPValue::Timestamp(_))
    ));
    let h = d.properties.headers().clone().unwrap();
    assert_eq!(s(&h, "x-first-death-reason"), "rejected");
    assert_eq!(s(&h, "x-first-death-queue"), "work");
    assert_eq!(s(&h, "x-first-death-exchange"), "");
}

#[tokio::test]
async fn retry_loop_through_ttl_counts_deaths_per_queue_and_reason() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    // work --reject--> retry (TTL 20 ms) --expire--> back to work: the classic retry pattern.
    declare_with(
        &ch,
        "work",
        args(&[
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text("retry")),
        ]),
    )
    .await;
    declare_with(
        &ch,
        "retry",
        args(&[
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text("work")),
            ("x-message-ttl", AMQPValue::LongInt(20)),
        ]),
    )
    .await;
    publish(&ch, "", "work", b"flaky").await;
    let mut work = consume(&ch, "work", false).await;
    for attempt in 1..=3i64 {
        let d = next(&mut work).await;
        if attempt > 1 {
            let deaths = death(&d);
            // Newest first: the expiry from retry, then the rejection from work.
            assert_eq!(s(&deaths[0], "queue"), "retry");
            assert_eq!(s(&deaths[0], "reason"), "expired");
            assert_eq!(s(&deaths[1], "queue"), "work");
            assert_eq!(s(&deaths[1], "reason"), "rejected");
            assert_eq!(count(&deaths[1]), attempt - 1);
        }
        d.acker
            .nack(BasicNackOptions {
                requeue: false,
                ..Default::default()
            })
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_dead_letter_cycle_without_rejection_drops_the_message() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare_with(
        &ch,
        "a",
        args(&[
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text("b")),
            ("x-message-ttl", AMQPValue::LongInt(5)),
        ]),
    )
    .await;
    declare_with(
        &ch,
        "b",
        args(&[
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text("a")),
            ("x-message-ttl", AMQPValue::LongInt(5)),
        ]),
    )
    .await;
    publish(&ch, "", "a", b"loop").await;
    // a expires it to b, b expires it back to a: a cycle of expiries is dropped.
    assert!(
        eventually(|| async {
            self::count_of(&ch, "a").await + self::count_of(&ch, "b").await == 0
        })
        .await
    );
}

async fn count_of(ch: &lapin::Channel, q: &str) -> u32 {
    common::count(ch, q).await
}

#[tokio::test]
async fn max_length_drop_head_dead_letters_the_oldest() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "overflowed").await;
    declare_with(
        &ch,
        "short",
        args(&[
            ("x-max-length", AMQPValue::LongInt(2)),
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text("overflowed")),
        ]),
    )
    .await;
    for i in 0..4 {
        publish(&ch, "", "short", format!("{i}").as_bytes()).await;
    }
    let mut kept = vec![];
    while let Some(m) = get(&ch, "short").await {
        kept.push(String::from_utf8(m.delivery.data.clone()).unwrap());
    }
    assert_eq!(kept, ["2", "3"]);
    let mut c = consume(&ch, "overflowed", true).await;
    for expected in ["0", "1"] {
        let d = next(&mut c).await;
        assert_eq!(d.data, expected.as_bytes());
        assert_eq!(s(&death(&d)[0], "reason"), "maxlen");
    }
}

/// Rejected together from `first`, five messages pass through `second` (TTL 0, no consumer:
/// they expire at once) into `last`: every queue down the chain gets them in order.
#[tokio::test]
async fn a_chain_of_dead_letter_queues_keeps_the_order() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "last").await;
    let to = |next: &str| {
        vec![
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text(next)),
        ]
    };
    let mut second = to("last");
    second.push(("x-message-ttl", AMQPValue::LongInt(0)));
    declare_with(&ch, "second", args(&second)).await;
    declare_with(&ch, "first", args(&to("second"))).await;
    for i in 0..5 {
        publish(&ch, "", "first", format!("m{i}").as_bytes()).await;
    }
    let mut c = consume(&ch, "first", false).await;
    let mut last_tag = 0;
    for _ in 0..5 {
        last_tag = next(&mut c).await.delivery_tag;
    }
    ch.basic_nack(
        last_tag,
        BasicNackOptions {
            multiple: true,
            requeue: false,
        },
    )
    .await
    .unwrap();
    let mut out = consume(&ch, "last", true).await;
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(String::from_utf8(next(&mut out).await.data).unwrap());
    }
    assert_eq!(got, ["m0", "m1", "m2", "m3", "m4"]);
}

/// Head-first expiry with the head taken and put back: "short" expires when it becomes the
/// head (not when the old head would have), and "held", put back before its TTL with no
/// other message left to expire, still expires when its TTL passes.
#[tokio::test]
async fn a_requeued_message_still_expires_when_its_ttl_passes() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "expired").await;
    declare_with(
        &ch,
        "timed",
        args(&[
            ("x-message-ttl", AMQPValue::LongInt(1500)),
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text("expired")),
        ]),
    )
    .await;
    publish(&ch, "", "timed", b"held").await;
    ch.basic_publish(
        "".into(),
        "timed".into(),
        BasicPublishOptions::default(),
        b"short",
        BasicProperties::default().with_expiration("200".into()),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let held = ch
        .basic_get("timed".into(), BasicGetOptions { no_ack: false })
        .await
        .unwrap()
        .expect("held");
    assert_eq!(held.delivery.data, b"held");
    // "short" expiring shows the timer ran; with nothing left to expire it stops.
    let mut dead = consume(&ch, "expired", true).await;
    assert_eq!(next(&mut dead).await.data, b"short");
    ch.basic_nack(
        held.delivery.delivery_tag,
        BasicNackOptions {
            multiple: false,
            requeue: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        next(&mut dead).await.data,
        b"held",
        "dead-lettered when its TTL passed"
    );
}

//! Consumers and acknowledgements: round-robin, prefetch, ack/nack/reject, requeue order and
//! the redelivered flag, cancel from either side, basic.get, recover.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use lapin::options::*;
use lapin::types::FieldTable;

fn body(d: &lapin::message::Delivery) -> String {
    String::from_utf8(d.data.clone()).unwrap()
}

#[tokio::test]
async fn round_robin_between_two_consumers() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "rr").await;
    let (_c2, ch2) = b.channel().await;
    let mut c1 = consume(&ch, "rr", true).await;
    let mut c2 = consume(&ch2, "rr", true).await;
    for i in 0..10 {
        publish(&ch, "", "rr", format!("{i}").as_bytes()).await;
    }
    let mut first = Vec::new();
    let mut second = Vec::new();
    for _ in 0..5 {
        first.push(body(&next(&mut c1).await));
        second.push(body(&next(&mut c2).await));
    }
    assert_eq!(first, ["0", "2", "4", "6", "8"]);
    assert_eq!(second, ["1", "3", "5", "7", "9"]);
}

#[tokio::test]
async fn prefetch_limits_unacked_deliveries_per_consumer() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "pf").await;
    ch.basic_qos(2, BasicQosOptions::default()).await.unwrap();
    for i in 0..5 {
        publish(&ch, "", "pf", format!("{i}").as_bytes()).await;
    }
    let mut c = consume(&ch, "pf", false).await;
    let d0 = next(&mut c).await;
    let d1 = next(&mut c).await;
    // Credit is exhausted: the other three stay in the queue.
    assert_eq!(count(&ch, "pf").await, 3);
    d0.acker.ack(BasicAckOptions::default()).await.unwrap();
    let d2 = next(&mut c).await;
    assert_eq!(body(&d2), "2");
    assert_eq!(count(&ch, "pf").await, 2);
    // multiple=true acks d1 and d2 together, opening two slots.
    d2.acker
        .ack(BasicAckOptions { multiple: true })
        .await
        .unwrap();
    assert_eq!(body(&next(&mut c).await), "3");
    assert_eq!(body(&next(&mut c).await), "4");
    drop(d1);
}

#[tokio::test]
async fn global_qos_limits_the_whole_channel() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    for q in ["g1", "g2"] {
        declare(&ch, q).await;
        for i in 0..3 {
            publish(&ch, "", q, format!("{q}-{i}").as_bytes()).await;
        }
    }
    ch.basic_qos(3, BasicQosOptions { global: true })
        .await
        .unwrap();
    let mut a = consume(&ch, "g1", false).await;
    let mut bq = consume(&ch, "g2", false).await;
    let mut got = vec![next(&mut a).await, next(&mut a).await, next(&mut a).await];
    // The channel holds 3 unacked: g2's consumer gets nothing yet.
    assert_eq!(count(&ch, "g2").await, 3);
    got.pop()
        .unwrap()
        .acker
        .ack(BasicAckOptions::default())
        .await
        .unwrap();
    assert_eq!(body(&next(&mut bq).await), "g2-0");
}

#[tokio::test]
async fn reject_and_nack_with_requeue_redeliver_in_original_order() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "rq").await;
    for i in 0..4 {
        publish(&ch, "", "rq", format!("{i}").as_bytes()).await;
    }
    let mut c = consume(&ch, "rq", false).await;
    let ds = [
        next(&mut c).await,
        next(&mut c).await,
        next(&mut c).await,
        next(&mut c).await,
    ];
    assert!(ds.iter().all(|d| !d.redelivered));
    // Stop the consumer so requeued messages stay in the queue for inspection; its
    // deliveries remain unacked on the channel.
    ch.basic_cancel(c.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    // Requeue 2 first, then 0 and 1 with nack multiple: the queue restores 0,1,2 order.
    ds[2]
        .acker
        .reject(BasicRejectOptions { requeue: true })
        .await
        .unwrap();
    ds[1]
        .acker
        .nack(BasicNackOptions {
            multiple: true,
            requeue: true,
        })
        .await
        .unwrap();
    ds[3].acker.ack(BasicAckOptions::default()).await.unwrap();
    let mut again = Vec::new();
    while let Some(m) = get(&ch, "rq").await {
        assert!(m.delivery.redelivered);
        again.push(body(&m.delivery));
    }
    assert_eq!(again, ["0", "1", "2"]);
}

#[tokio::test]
async fn nack_without_requeue_drops_the_message() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "drop").await;
    publish(&ch, "", "drop", b"x").await;
    let mut c = consume(&ch, "drop", false).await;
    next(&mut c)
        .await
        .acker
        .nack(BasicNackOptions::default())
        .await
        .unwrap();
    ch.basic_cancel(c.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    assert_eq!(count(&ch, "drop").await, 0);
}

#[tokio::test]
async fn closing_a_channel_requeues_its_unacked_messages_in_order() {
    let b = start().await;
    let (c, ch) = b.channel().await;
    declare(&ch, "back").await;
    for i in 0..3 {
        publish(&ch, "", "back", format!("{i}").as_bytes()).await;
    }
    let ch2 = c.create_channel().await.unwrap();
    let mut cons = consume(&ch2, "back", false).await;
    for _ in 0..3 {
        next(&mut cons).await;
    }
    assert_eq!(count(&ch, "back").await, 0);
    ch2.close(200, "bye".into()).await.unwrap();
    let mut again = Vec::new();
    while let Some(m) = get(&ch, "back").await {
        assert!(m.delivery.redelivered);
        again.push(String::from_utf8(m.delivery.data.clone()).unwrap());
    }
    assert_eq!(again, ["0", "1", "2"]);
}

#[tokio::test]
async fn losing_the_connection_requeues_unacked_messages() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "lost").await;
    publish(&ch, "", "lost", b"m").await;
    let (c2, ch2) = b.channel().await;
    let mut cons = consume(&ch2, "lost", false).await;
    next(&mut cons).await;
    c2.close(200, "bye".into()).await.unwrap();
    let mut other = consume(&ch, "lost", false).await;
    let d = next(&mut other).await;
    assert_eq!(d.data, b"m");
    assert!(d.redelivered);
}

#[tokio::test]
async fn double_ack_is_406_unknown_delivery_tag_and_only_the_channel_closes() {
    // Raw frames: lapin reports the asynchronous channel.close to the next call either as the
    // AMQP error or as a closed-channel state, depending on timing.
    use amq_protocol::protocol::{basic, AMQPClass};
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "dup").await;
    publish(&ch, "", "dup", b"x").await;
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    raw.send_method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get {
            queue: "dup".into(),
            no_ack: false,
        })),
    )
    .await;
    assert!(matches!(
        raw.read_method().await,
        Some((1, AMQPClass::Basic(basic::AMQPMethod::GetOk(_))))
    ));
    let ack = AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
        delivery_tag: 1,
        multiple: false,
    }));
    raw.send_method(1, ack.clone()).await;
    raw.send_method(1, ack).await;
    let text = raw.expect_channel_close(1, 406).await;
    assert_eq!(text, "PRECONDITION_FAILED - unknown delivery tag 1");
    // Only the channel closed: the connection opens another one, and the message is gone.
    raw.open_channel(2).await;
    assert_eq!(count(&ch, "dup").await, 0);
}

#[tokio::test]
async fn basic_get_reports_remaining_count_and_get_empty() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "g").await;
    for i in 0..3 {
        publish(&ch, "", "g", format!("{i}").as_bytes()).await;
    }
    let m = get(&ch, "g").await.unwrap();
    assert_eq!(m.message_count, 2);
    assert_eq!(m.delivery.data, b"0");
    get(&ch, "g").await.unwrap();
    get(&ch, "g").await.unwrap();
    assert!(get(&ch, "g").await.is_none());
}

#[tokio::test]
async fn recover_requeues_unacked_with_redelivered() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "rc").await;
    publish(&ch, "", "rc", b"x").await;
    let m = ch
        .basic_get("rc".into(), BasicGetOptions::default())
        .await
        .unwrap()
        .unwrap();
    assert!(!m.delivery.redelivered);
    ch.basic_recover(BasicRecoverOptions { requeue: true })
        .await
        .unwrap();
    let again = get(&ch, "rc").await.expect("requeued");
    assert!(again.delivery.redelivered);
}

#[tokio::test]
async fn cancel_stops_deliveries() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "cx").await;
    let mut c = consume(&ch, "cx", true).await;
    publish(&ch, "", "cx", b"1").await;
    assert_eq!(next(&mut c).await.data, b"1");
    ch.basic_cancel(c.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    publish(&ch, "", "cx", b"2").await;
    assert_eq!(count(&ch, "cx").await, 1);
}

#[tokio::test]
async fn deleting_a_queue_cancels_its_consumers_from_the_server() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "gone").await;
    let mut c = consume(&ch, "gone", true).await;
    let (_c2, other) = b.channel().await;
    let n = other
        .queue_delete("gone".into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(n, 0);
    // lapin ends the consumer stream when it receives the server's basic.cancel.
    let end = tokio::time::timeout(WAIT, futures_lite::StreamExt::next(&mut c))
        .await
        .expect("consumer must be cancelled");
    assert!(end.is_none(), "expected the stream to end, got {end:?}");
}

#[tokio::test]
async fn auto_delete_queue_goes_with_its_last_consumer() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.queue_declare(
        "ad".into(),
        QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    // Never consumed from: it stays.
    assert_eq!(count(&ch, "ad").await, 0);
    let c = consume(&ch, "ad", true).await;
    ch.basic_cancel(c.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    let err = ch
        .queue_declare(
            "ad".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect_err("queue must be gone");
    assert_eq!(code_of(&err), Some(404));
}

#[tokio::test]
async fn exclusive_consumer_blocks_others_with_403() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "ex").await;
    // Keep the consumer alive: lapin cancels a consumer when it is dropped.
    let _first = ch
        .basic_consume(
            "ex".into(),
            "first".into(),
            BasicConsumeOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let (_c2, ch2) = b.channel().await;
    let err = ch2
        .basic_consume(
            "ex".into(),
            "second".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect_err("exclusive use");
    assert_eq!(
        reply_of(&err),
        (
            403,
            "ACCESS_REFUSED - queue 'ex' in vhost '/' in exclusive use".to_string()
        )
    );
}

#[tokio::test]
async fn large_messages_are_split_and_reassembled() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "big").await;
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    publish(&ch, "", "big", &payload).await;
    publish(&ch, "", "big", b"").await;
    let mut c = consume(&ch, "big", true).await;
    assert_eq!(next(&mut c).await.data, payload);
    assert!(next(&mut c).await.data.is_empty());
}

/// Bodies of every size arrive byte for byte and in order, whether they are copied into the
/// output (small ones) or written from the stored message (large ones, split at frame_max
/// into pieces both above and below the by-reference threshold).
#[tokio::test]
async fn bodies_of_all_sizes_arrive_intact_and_in_order() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "sizes").await;
    let sizes = [
        0usize,
        1,
        100,
        4095,
        4096,
        4097,
        16 * 1024 - 1,
        16 * 1024,
        65536,
        131_063,
        131_064,
        131_065,
        140_000,
        300_000,
        5,
        1_000_000,
        17,
    ];
    let pattern = |n: usize, seed: usize| -> Vec<u8> {
        (0..n).map(|i| ((i * 31 + seed * 7) % 251) as u8).collect()
    };
    let mut consumer = consume(&ch, "sizes", true).await;
    for (seed, &n) in sizes.iter().enumerate() {
        publish(&ch, "", "sizes", &pattern(n, seed)).await;
    }
    for (seed, &n) in sizes.iter().enumerate() {
        let d = next(&mut consumer).await;
        assert_eq!(d.data.len(), n, "message {seed} has the wrong size");
        assert!(
            d.data == pattern(n, seed),
            "message {seed} ({n} bytes) differs"
        );
    }
    // basic.get takes the other (copying) path.
    declare(&ch, "sizes-get").await;
    publish(&ch, "", "sizes-get", &pattern(300_000, 99)).await;
    let got = get(&ch, "sizes-get").await.expect("a message");
    assert!(got.delivery.data == pattern(300_000, 99));
}

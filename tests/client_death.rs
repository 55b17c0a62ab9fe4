//! A client that dies never takes messages with it: every delivery it had not acked goes back
//! to its queue, whatever stage the delivery was at when the client went away (still queued
//! for its connection, encoded but not yet written, written but unacked), in every prefetch
//! mode and for basic.get. RabbitMQ requeues every unacked delivery the same way.
//!
//! The consumer is a raw socket that stops reading after its first delivery, so the broker
//! holds deliveries at every stage at once: some in the socket buffers, some encoded in the
//! connection's output, the rest in its inbox.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps

mod common;

use amq_protocol::protocol::{basic, connection};
use common::*;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::BasicProperties;
use warren::protocol::AMQPClass;

/// Enough 1 KiB messages that the consumer's socket buffers, its connection's output and its
/// inbox are all full when it dies.
const MESSAGES: u32 = 20_000;
const SIZE: usize = 1024;

/// Prefetch settings a consumer can have.
#[derive(Clone, Copy, Debug)]
enum Prefetch {
    /// No basic.qos (pika's default): unlimited.
    Unlimited,
    /// basic.qos global=false.
    PerConsumer(u16),
    /// basic.qos global=true.
    PerChannel(u16),
}

/// How the client goes away.
#[derive(Clone, Copy, Debug)]
enum Death {
    /// The socket is reset (kill -9 of the client).
    Reset,
    /// connection.close, without reading anything more.
    Close,
}

/// Publishes `MESSAGES` numbered messages with confirms.
async fn fill(ch: &lapin::Channel, queue: &str, persistent: bool) {
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    let props = if persistent {
        BasicProperties::default().with_delivery_mode(2)
    } else {
        BasicProperties::default()
    };
    let mut body = vec![7u8; SIZE];
    let mut last = None;
    for i in 0..MESSAGES {
        body[..4].copy_from_slice(&i.to_be_bytes());
        let confirm = ch
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                &body,
                props.clone(),
            )
            .await
            .expect("publish");
        last = Some(confirm);
    }
    if let Some(confirm) = last {
        assert!(confirm.await.expect("confirm").is_ack());
    }
}

/// A raw consumer that takes one delivery's worth of bytes and then stops reading.
async fn stalled_consumer(w: &TestBroker, queue: &str, prefetch: Prefetch) -> RawClient {
    let mut c = w.raw().await;
    c.open_channel(1).await;
    let qos = match prefetch {
        Prefetch::Unlimited => None,
        Prefetch::PerConsumer(n) => Some((n, false)),
        Prefetch::PerChannel(n) => Some((n, true)),
    };
    if let Some((prefetch_count, global)) = qos {
        c.send_method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
                prefetch_count,
                global,
            })),
        )
        .await;
        assert!(matches!(
            c.read_method().await,
            Some((1, AMQPClass::Basic(basic::AMQPMethod::QosOk(_))))
        ));
    }
    c.send_method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
            queue: queue.into(),
            consumer_tag: "stalled".into(),
            no_local: false,
            no_ack: false,
            exclusive: false,
            nowait: false,
            arguments: FieldTable::default(),
        })),
    )
    .await;
    assert!(matches!(
        c.read_method().await,
        Some((1, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_))))
    ));
    // The first delivery is on its way: the broker has already queued the next batches.
    assert!(matches!(
        c.read_method().await,
        Some((1, AMQPClass::Basic(basic::AMQPMethod::Deliver(_))))
    ));
    c
}

async fn die(mut c: RawClient, death: Death) {
    match death {
        Death::Reset => {
            c.stream.set_zero_linger().ok();
            drop(c);
        }
        Death::Close => {
            c.send_method(
                0,
                AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
                    reply_code: 200,
                    reply_text: "bye".into(),
                    class_id: 0,
                    method_id: 0,
                })),
            )
            .await;
            // Close the socket once the broker's close-ok is in (skipping the deliveries).
            loop {
                match c.read_frame().await {
                    RawFrame::Method(
                        0,
                        AMQPClass::Connection(connection::AMQPMethod::CloseOk(_)),
                    )
                    | RawFrame::Closed => break,
                    _ => {}
                }
            }
        }
    }
}

/// Waits until the queue holds every message again, then consumes them all and checks that
/// each comes back exactly once, in publish order, with the redelivered flag on the first
/// (which the dead client saw) and off the last (which never left the queue).
async fn all_back_in_order(ch: &lapin::Channel, queue: &str) {
    let back = eventually(|| async { count(ch, queue).await == MESSAGES }).await;
    assert!(
        back,
        "only {} of {MESSAGES} messages are back in the queue",
        count(ch, queue).await
    );
    ch.basic_qos(500, BasicQosOptions::default())
        .await
        .expect("qos");
    let mut consumer = consume(ch, queue, false).await;
    for expected in 0..MESSAGES {
        let d = next(&mut consumer).await;
        let n = u32::from_be_bytes([d.data[0], d.data[1], d.data[2], d.data[3]]);
        assert_eq!(n, expected, "message out of order");
        if expected == 0 {
            assert!(d.redelivered, "the dead client saw message 0");
        }
        if expected == MESSAGES - 1 {
            assert!(!d.redelivered, "the last message never left the queue");
        }
        d.ack(BasicAckOptions::default()).await.expect("ack");
    }
}

async fn consumer_dies(prefetch: Prefetch, death: Death, persistent: bool) {
    let w = start().await;
    let (_c, ch) = w.channel().await;
    let queue = "work";
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions {
            durable: persistent,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("declare");
    fill(&ch, queue, persistent).await;
    let consumer = stalled_consumer(&w, queue, prefetch).await;
    die(consumer, death).await;
    all_back_in_order(&ch, queue).await;
}

#[tokio::test]
async fn unlimited_prefetch_consumer_killed() {
    consumer_dies(Prefetch::Unlimited, Death::Reset, true).await;
}

#[tokio::test]
async fn unlimited_prefetch_consumer_closes_its_connection() {
    consumer_dies(Prefetch::Unlimited, Death::Close, false).await;
}

#[tokio::test]
async fn per_consumer_prefetch_consumer_killed() {
    consumer_dies(Prefetch::PerConsumer(10_000), Death::Reset, false).await;
}

#[tokio::test]
async fn per_channel_prefetch_consumer_closes_its_connection() {
    consumer_dies(Prefetch::PerChannel(10_000), Death::Close, true).await;
}

#[tokio::test]
async fn small_prefetch_consumer_killed() {
    consumer_dies(Prefetch::PerConsumer(50), Death::Reset, true).await;
}

/// Messages taken with basic.get and not acked come back when the client dies.
#[tokio::test]
async fn basic_get_client_killed() {
    let w = start().await;
    let (_c, ch) = w.channel().await;
    let queue = "gets";
    declare(&ch, queue).await;
    fill(&ch, queue, false).await;
    let mut c = w.raw().await;
    c.open_channel(1).await;
    for _ in 0..3 {
        c.send_method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get {
                queue: queue.into(),
                no_ack: false,
            })),
        )
        .await;
        assert!(matches!(
            c.read_method().await,
            Some((1, AMQPClass::Basic(basic::AMQPMethod::GetOk(_))))
        ));
    }
    die(c, Death::Reset).await;
    all_back_in_order(&ch, queue).await;
}

/// A consumer that cancels while deliveries are still queued for it gets none of them, and
/// none is lost.
#[tokio::test]
async fn cancel_with_deliveries_in_flight_loses_nothing() {
    let w = start().await;
    let (_c, ch) = w.channel().await;
    let queue = "cancelled";
    declare(&ch, queue).await;
    fill(&ch, queue, false).await;
    let mut c = stalled_consumer(&w, queue, Prefetch::Unlimited).await;
    c.send_method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Cancel(basic::Cancel {
            consumer_tag: "stalled".into(),
            nowait: false,
        })),
    )
    .await;
    // Read (and count) every delivery up to cancel-ok, then close the channel: the
    // unacked ones go back too.
    let mut seen = 1u32;
    loop {
        match c.read_method().await {
            Some((1, AMQPClass::Basic(basic::AMQPMethod::Deliver(_)))) => seen += 1,
            Some((1, AMQPClass::Basic(basic::AMQPMethod::CancelOk(_)))) => break,
            other => panic!("expected deliveries then cancel-ok, got {other:?}"),
        }
    }
    assert!(
        seen < MESSAGES,
        "the consumer should not have got everything"
    );
    die(c, Death::Close).await;
    all_back_in_order(&ch, queue).await;
}

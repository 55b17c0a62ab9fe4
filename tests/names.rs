//! Names that are not plain text: bytes that are not UTF-8 and line breaks. RabbitMQ checks
//! the shortstrs of methods without content for UTF-8 (501 "Malformed UTF-8 in shortstr"),
//! but not those of basic.publish: a routing key is delivered as the bytes that were sent.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps

mod common;

use common::*;
use lapin::options::*;
use lapin::types::FieldTable;
use warren::protocol::AMQPClass;

/// The payload of a basic.publish method with raw names.
fn publish_payload(exchange: &[u8], routing_key: &[u8]) -> Vec<u8> {
    let mut p = vec![0, 60, 0, 40, 0, 0];
    p.push(exchange.len() as u8);
    p.extend_from_slice(exchange);
    p.push(routing_key.len() as u8);
    p.extend_from_slice(routing_key);
    p.push(0);
    p
}

async fn publish_raw(
    c: &mut RawClient,
    exchange: &[u8],
    routing_key: &[u8],
    props: u16,
    body: &[u8],
) {
    c.send_bytes(&frame(1, 1, &publish_payload(exchange, routing_key)))
        .await;
    let mut header = vec![0, 60, 0, 0];
    header.extend_from_slice(&(body.len() as u64).to_be_bytes());
    header.extend_from_slice(&props.to_be_bytes());
    if props != 0 {
        header.push(2); // delivery-mode 2 (the only property flagged below)
    }
    c.send_bytes(&frame(2, 1, &header)).await;
    c.send_bytes(&frame(3, 1, body)).await;
}

/// Property flags with only delivery-mode set.
const PERSISTENT: u16 = 0x1000;

/// Sends basic.get on channel 1 and returns the routing key of its get-ok, parsed by hand
/// (amq-protocol refuses shortstrs that are not UTF-8).
async fn get_routing_key(c: &mut RawClient, queue: &str) -> Vec<u8> {
    let mut p = vec![0, 60, 0, 70, 0, 0, queue.len() as u8];
    p.extend_from_slice(queue.as_bytes());
    p.push(1); // no-ack
    c.send_bytes(&frame(1, 1, &p)).await;
    let (kind, _, payload) = c.read_raw().await.expect("get-ok");
    assert_eq!(
        (kind, &payload[..4]),
        (1, &[0, 60, 0, 71][..]),
        "basic.get-ok"
    );
    // delivery tag (8), redelivered (1), exchange shortstr, routing key shortstr
    let mut at = 4 + 8 + 1;
    at += 1 + payload[at] as usize;
    let n = payload[at] as usize;
    let key = payload[at + 1..at + 1 + n].to_vec();
    // The content: a header with the body size, then body frames.
    let (_, _, header) = c.read_raw().await.expect("content header");
    let size = u64::from_be_bytes(header[4..12].try_into().expect("body size"));
    let mut got = 0;
    while got < size {
        let (_, _, body) = c.read_raw().await.expect("content body");
        got += body.len() as u64;
    }
    key
}

async fn bound_queue(ch: &lapin::Channel, durable: bool) {
    ch.queue_declare(
        "anything".into(),
        QueueDeclareOptions {
            durable,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("declare");
    ch.queue_bind(
        "anything".into(),
        "amq.topic".into(),
        "rk.*".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("bind");
}

#[tokio::test]
async fn a_routing_key_that_is_not_utf8_is_routed_and_delivered_as_sent() {
    let b = start().await;
    let (_l, ch) = b.channel().await;
    bound_queue(&ch, false).await;
    let mut c = b.raw().await;
    c.open_channel(1).await;
    publish_raw(&mut c, b"amq.topic", b"rk.\xff\xfe", 0, b"binary key").await;
    assert_eq!(get_routing_key(&mut c, "anything").await, b"rk.\xff\xfe");
}

/// Such a message is stored and recovered like any other (a record whose routing key is not
/// UTF-8 must not look damaged to recovery).
#[tokio::test]
async fn a_persistent_message_with_such_a_key_survives_a_restart() {
    let w = WarrenProcess::start_fresh().await;
    let (_l, ch) = w.channel().await;
    bound_queue(&ch, true).await;
    let mut c = RawClient::connect(w.addr).await;
    c.open_channel(1).await;
    publish_raw(&mut c, b"amq.topic", b"rk.\xc3", PERSISTENT, b"one").await;
    publish_raw(&mut c, b"amq.topic", b"rk.ok", PERSISTENT, b"two").await;
    assert!(eventually(|| async { count(&ch, "anything").await == 2 }).await);
    drop(c);
    let w = w.restart().await;
    let mut c = RawClient::connect(w.addr).await;
    c.open_channel(1).await;
    assert_eq!(get_routing_key(&mut c, "anything").await, b"rk.\xc3");
    assert_eq!(get_routing_key(&mut c, "anything").await, b"rk.ok");
}

/// An exchange name that is not UTF-8 names no exchange: 404 on the channel.
#[tokio::test]
async fn publishing_to_an_exchange_name_that_is_not_utf8_is_404() {
    let b = start().await;
    let mut c = b.raw().await;
    c.open_channel(1).await;
    publish_raw(&mut c, b"ex\xff", b"rk", 0, b"x").await;
    let text = c.expect_channel_close(1, 404).await;
    assert!(text.starts_with("NOT_FOUND - no exchange 'ex"), "{text}");
}

/// queue.declare with such a name: 501, RabbitMQ's text, no method named.
#[tokio::test]
async fn declaring_a_queue_whose_name_is_not_utf8_is_501() {
    let b = start().await;
    let mut c = b.raw().await;
    c.open_channel(1).await;
    let mut p = vec![0, 50, 0, 10, 0, 0, 3];
    p.extend_from_slice(b"q\xff\xfe");
    p.extend_from_slice(&[0, 0, 0, 0, 0]);
    c.send_bytes(&frame(1, 1, &p)).await;
    let (code, text, class, method) = match c.read_method().await {
        Some((
            0,
            AMQPClass::Connection(amq_protocol::protocol::connection::AMQPMethod::Close(m)),
        )) => (
            m.reply_code,
            m.reply_text.to_string(),
            m.class_id,
            m.method_id,
        ),
        other => panic!("expected connection.close, got {other:?}"),
    };
    assert_eq!(
        (code, text.as_str(), class, method),
        (501, "FRAME_ERROR - Malformed UTF-8 in shortstr", 0, 0)
    );
}

/// CR and LF are stripped from queue names on declare, as RabbitMQ does, but not elsewhere
/// (basic.get of the unstripped name is 404). A name with a line break cannot forge a log
/// line: names are escaped in the log.
#[tokio::test]
async fn line_breaks_are_stripped_from_declared_names_and_escaped_in_the_log() {
    let w = WarrenProcess::start_fresh().await;
    let (_c, ch) = w.channel().await;
    let declared = ch
        .queue_declare(
            "a\nb\r".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("declare");
    assert_eq!(declared.name().as_str(), "ab");
    let e = ch
        .basic_get("a\nWARN forged".into(), BasicGetOptions::default())
        .await
        .expect_err("no such queue");
    let (code, text) = reply_of(&e);
    assert_eq!(code, 404);
    assert_eq!(text, "NOT_FOUND - no queue 'a\nWARN forged' in vhost '/'");
    assert!(
        eventually(|| async { w.logged("channel error") }).await,
        "the error is logged"
    );
    assert!(w.logged("a\\nWARN forged"), "the name is logged escaped");
    let log = w.log.lock().expect("log").clone();
    assert!(
        !log.iter().any(|line| line.starts_with("WARN forged")),
        "a log line was forged"
    );
}

//! Bad input from the network: each gets RabbitMQ's reply code, and nothing else is harmed.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use amq_protocol::protocol::{basic, channel, exchange};
use common::*;
use lapin::types::FieldTable;
use tokio::io::AsyncWriteExt;
use warren::protocol::AMQPClass;

/// A hard error on one connection must leave the broker serving others.
async fn broker_still_serves(b: &TestBroker) {
    let (_c, ch) = b.channel().await;
    declare(&ch, "alive").await;
    publish(&ch, "", "alive", b"ok").await;
    assert!(get(&ch, "alive").await.is_some());
}

#[tokio::test]
async fn oversize_frame_is_501_before_it_is_buffered() {
    let b = start().await;
    let mut raw = RawClient::connect_with(b.addr, 0, 8192).await;
    raw.open_channel(1).await;
    // Only the 7-byte header: declares 1 GB; the server must refuse without waiting for it.
    raw.send_bytes(&[3, 0, 1, 0x40, 0, 0, 0]).await;
    raw.expect_connection_close(501).await;
    broker_still_serves(&b).await;
}

#[tokio::test]
async fn bad_frame_end_octet_is_501() {
    let b = start().await;
    let mut raw = b.raw().await;
    let mut f = frame(8, 0, &[]);
    *f.last_mut().unwrap() = 0x00;
    raw.send_bytes(&f).await;
    raw.expect_connection_close(501).await;
}

#[tokio::test]
async fn unknown_frame_type_is_501() {
    let b = start().await;
    let mut raw = b.raw().await;
    raw.send_bytes(&frame(9, 0, &[])).await;
    raw.expect_connection_close(501).await;
}

#[tokio::test]
async fn frame_on_an_unopened_channel_is_504() {
    let b = start().await;
    let mut raw = b.raw().await;
    raw.send_bytes(&publish_frame(5, "", "q", 0)).await;
    raw.expect_connection_close(504).await;
    broker_still_serves(&b).await;
}

#[tokio::test]
async fn second_channel_open_is_504() {
    let b = start().await;
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    raw.send_method(
        1,
        AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
    )
    .await;
    raw.expect_connection_close(504).await;
}

#[tokio::test]
async fn content_header_without_publish_is_505() {
    let b = start().await;
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    raw.send_bytes(&header_frame(1, 60, 0)).await;
    raw.expect_connection_close(505).await;
}

#[tokio::test]
async fn body_without_header_is_505() {
    let b = start().await;
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    raw.send_bytes(&publish_frame(1, "", "q", 0)).await;
    raw.send_bytes(&frame(3, 1, b"body")).await;
    raw.expect_connection_close(505).await;
}

#[tokio::test]
async fn method_in_the_middle_of_content_is_505() {
    let b = start().await;
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    raw.send_bytes(&publish_frame(1, "", "q", 0)).await;
    raw.send_bytes(&header_frame(1, 60, 10)).await;
    raw.send_bytes(&publish_frame(1, "", "q", 0)).await;
    raw.expect_connection_close(505).await;
}

#[tokio::test]
async fn content_header_of_another_class_is_505() {
    let b = start().await;
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    raw.send_bytes(&publish_frame(1, "", "q", 0)).await;
    raw.send_bytes(&header_frame(1, 10, 0)).await;
    raw.expect_connection_close(505).await;
}

#[tokio::test]
async fn immediate_publish_is_540() {
    let b = start().await;
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    raw.send_bytes(&publish_frame(1, "", "q", 2)).await;
    let text = raw.expect_connection_close(540).await;
    assert_eq!(text, "NOT_IMPLEMENTED - immediate=true");
}

#[tokio::test]
async fn qos_with_prefetch_size_is_540() {
    let b = start().await;
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    // basic.qos prefetch_size=5 prefetch_count=1 global=0 (amq-protocol cannot encode a size).
    raw.send_bytes(&frame(1, 1, &[0, 60, 0, 10, 0, 0, 0, 5, 0, 1, 0]))
        .await;
    let text = raw.expect_connection_close(540).await;
    assert_eq!(text, "NOT_IMPLEMENTED - prefetch_size!=0 (5)");
}

#[tokio::test]
async fn flow_off_and_recover_without_requeue_are_540() {
    let b = start().await;
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    raw.send_method(
        1,
        AMQPClass::Channel(channel::AMQPMethod::Flow(channel::Flow { active: false })),
    )
    .await;
    assert_eq!(
        raw.expect_connection_close(540).await,
        "NOT_IMPLEMENTED - active=false"
    );
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    raw.send_method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Recover(basic::Recover {
            requeue: false,
        })),
    )
    .await;
    assert_eq!(
        raw.expect_connection_close(540).await,
        "NOT_IMPLEMENTED - requeue=false"
    );
}

#[tokio::test]
async fn reused_consumer_tag_is_530() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "q").await;
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    let consume = || {
        AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
            queue: "q".into(),
            consumer_tag: "t".into(),
            no_local: false,
            no_ack: false,
            exclusive: false,
            nowait: false,
            arguments: FieldTable::default(),
        }))
    };
    raw.send_method(1, consume()).await;
    assert!(matches!(
        raw.read_method().await,
        Some((1, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_))))
    ));
    raw.send_method(1, consume()).await;
    assert_eq!(
        raw.expect_connection_close(530).await,
        "NOT_ALLOWED - attempt to reuse consumer tag 't'"
    );
}

#[tokio::test]
async fn unknown_exchange_type_is_503_connection_error() {
    let b = start().await;
    // RabbitMQ says "invalid" for a name its VM knows as an atom, "unknown" for the rest
    // (a typo).
    for (kind, text) in [
        ("foo", "COMMAND_INVALID - invalid exchange type 'foo'"),
        (
            "directt",
            "COMMAND_INVALID - unknown exchange type 'directt'",
        ),
    ] {
        let mut raw = b.raw().await;
        raw.open_channel(1).await;
        raw.send_method(
            1,
            AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
                exchange: "x".into(),
                kind: kind.into(),
                passive: false,
                durable: false,
                auto_delete: false,
                internal: false,
                nowait: false,
                arguments: FieldTable::default(),
            })),
        )
        .await;
        assert_eq!(raw.expect_connection_close(503).await, text);
    }
}

#[tokio::test]
async fn truncated_method_is_a_connection_error() {
    let b = start().await;
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    // queue.declare cut after the ticket: RabbitMQ says 501 "cannot decode".
    raw.send_bytes(&frame(1, 1, &[0, 50, 0, 10, 0, 0])).await;
    assert_eq!(
        raw.expect_connection_close(501).await,
        "FRAME_ERROR - cannot decode <<0,0>>"
    );
    broker_still_serves(&b).await;
}

#[tokio::test]
async fn too_many_channels_is_530() {
    let b = start_with(|c| c.channel_max = 2).await;
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    raw.open_channel(7).await;
    raw.send_method(
        3,
        AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
    )
    .await;
    let text = raw.expect_connection_close(530).await;
    assert_eq!(
        text,
        "NOT_ALLOWED - number of channels opened (2) has reached the negotiated channel_max (2)"
    );
}

#[tokio::test]
async fn after_a_channel_error_frames_are_discarded_until_close_ok() {
    let b = start().await;
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    // ack an unknown tag: 406 closes channel 1.
    raw.send_bytes(&frame(1, 1, &[0, 60, 0, 80, 0, 0, 0, 0, 0, 0, 0, 9, 0]))
        .await;
    assert_eq!(
        raw.expect_channel_close(1, 406).await,
        "PRECONDITION_FAILED - unknown delivery tag 9"
    );
    // More frames on channel 1 are ignored (no second close, no connection error).
    raw.send_bytes(&publish_frame(1, "", "q", 0)).await;
    raw.send_bytes(&header_frame(1, 60, 0)).await;
    raw.send_method(
        1,
        AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
    )
    .await;
    // The channel number can be reused after close-ok.
    raw.open_channel(1).await;
}

#[tokio::test]
async fn garbage_before_the_protocol_header_never_panics() {
    let b = start().await;
    for garbage in [&b"GET / HTTP/1.1\r\n\r\n"[..], &[0xFF; 64][..], b""] {
        let mut raw = RawClient::socket(b.addr).await;
        raw.send_bytes(garbage).await;
        let _ = raw.stream.shutdown().await;
        drop(raw);
    }
    broker_still_serves(&b).await;
}

#[tokio::test]
async fn heartbeat_on_a_channel_is_505_and_unknown_methods_503() {
    let b = start().await;
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    raw.send_bytes(&frame(8, 1, &[])).await;
    raw.expect_connection_close(505).await;
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    // channel.open-ok is a server-only method.
    raw.send_bytes(&frame(1, 1, &[0, 20, 0, 11, 0, 0, 0, 0]))
        .await;
    assert_eq!(
        raw.expect_connection_close(503).await,
        "COMMAND_INVALID - unimplemented method"
    );
    let mut raw = b.raw().await;
    raw.send_bytes(&frame(1, 0, &[0, 99, 0, 10])).await;
    raw.expect_connection_close(503).await;
}

#[tokio::test]
async fn frames_sent_after_our_own_channel_close_are_ignored() {
    let b = start().await;
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    let close = AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
        reply_code: 200,
        reply_text: "bye".into(),
        class_id: 0,
        method_id: 0,
    }));
    // Sent with the close, before the client saw close-ok: must not kill the connection.
    let mut both = bytes::BytesMut::new();
    warren::protocol::encode::put_method(&mut both, 1, close.clone());
    both.extend_from_slice(&publish_frame(1, "", "q", 0));
    raw.send_bytes(&both).await;
    assert!(matches!(
        raw.read_method().await,
        Some((1, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))))
    ));
    raw.open_channel(1).await;
    // When both sides close at once, the client's close still gets a close-ok.
    raw.send_bytes(&frame(1, 1, &[0, 60, 0, 80, 0, 0, 0, 0, 0, 0, 0, 9, 0]))
        .await;
    raw.expect_channel_close(1, 406).await;
    raw.send_method(1, close).await;
    assert!(matches!(
        raw.read_method().await,
        Some((1, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))))
    ));
    raw.open_channel(1).await;
}

#[tokio::test]
async fn content_frames_out_of_order_get_rabbitmq_texts() {
    let b = start().await;
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    raw.send_bytes(&publish_frame(1, "", "q", 0)).await;
    raw.send_bytes(&frame(3, 1, b"x")).await;
    assert_eq!(
        raw.expect_connection_close(505).await,
        "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead"
    );
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    raw.send_bytes(&header_frame(1, 60, 0)).await;
    assert_eq!(
        raw.expect_connection_close(505).await,
        "UNEXPECTED_FRAME - expected method frame, got non method frame instead"
    );
}

#[tokio::test]
async fn deeply_nested_argument_tables_are_refused_not_a_crash() {
    let b = start().await;
    let mut raw = b.raw().await;
    raw.open_channel(1).await;
    // queue.declare whose arguments nest 17,000 tables deep (amq-protocol would recurse).
    let mut table: Vec<u8> = vec![0, 0, 0, 0];
    for _ in 0..17_000 {
        let mut outer = Vec::with_capacity(table.len() + 7);
        outer.extend_from_slice(&((table.len() + 3) as u32).to_be_bytes());
        outer.extend_from_slice(&[1, b'k', b'F']);
        outer.extend_from_slice(&table);
        table = outer;
    }
    let mut payload = vec![0, 50, 0, 10, 0, 0, 5];
    payload.extend_from_slice(b"deepq");
    payload.push(0);
    payload.extend_from_slice(&table);
    raw.send_bytes(&frame(1, 1, &payload)).await;
    raw.expect_connection_close(501).await;
    broker_still_serves(&b).await;
}

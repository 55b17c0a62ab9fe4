//! How connections end: the close handshake after a server-side error, shutdown of a blocked
//! connection, the reason connection.blocked gives, and the connection limit.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps

mod common;

use amq_protocol::protocol::{basic, connection};
use common::*;
use std::time::{Duration, Instant};
use warren::protocol::AMQPClass;

/// Publishes one message on channel 1 with raw frames.
async fn publish_one(c: &mut RawClient) {
    c.send_bytes(&publish_frame(1, "", "nowhere", 0)).await;
    c.send_bytes(&header_frame(1, 60, 1)).await;
    c.send_bytes(&frame(3, 1, b"x")).await;
}

/// Reads until connection.blocked and returns its reason.
async fn blocked_reason(c: &mut RawClient) -> String {
    loop {
        match c.read_method().await {
            Some((0, AMQPClass::Connection(connection::AMQPMethod::Blocked(b)))) => {
                return b.reason.to_string()
            }
            Some(_) => {}
            None => panic!("closed before connection.blocked"),
        }
    }
}

async fn reason_for(adjust: impl FnOnce(&mut warren::config::Config)) -> String {
    let b = start_with(adjust).await;
    let mut c = RawClient::connect_capable(b.addr, &["connection.blocked"]).await;
    c.open_channel(1).await;
    publish_one(&mut c).await;
    blocked_reason(&mut c).await
}

/// connection.blocked names the alarm as RabbitMQ does (rabbit_reader).
#[tokio::test]
async fn blocked_reason_names_the_alarm() {
    assert_eq!(
        reason_for(|c| c.memory_high_watermark_bytes = 1).await,
        "low on memory"
    );
    assert_eq!(
        reason_for(|c| c.disk_free_limit = u64::MAX).await,
        "low on disk"
    );
    assert_eq!(
        reason_for(|c| {
            c.memory_high_watermark_bytes = 1;
            c.disk_free_limit = u64::MAX;
        })
        .await,
        "low on disk & memory"
    );
}

/// Shutdown closes a blocked connection as fast as any other: its close-ok is read although
/// reads are paused by the alarm (before, shutdown waited out its 5 s grace).
#[tokio::test]
async fn shutdown_reads_the_close_ok_of_a_blocked_connection() {
    let w = WarrenProcess::start_in(
        fresh_dir(),
        &[("WARREN_DISK_FREE_LIMIT", &u64::MAX.to_string())],
    )
    .await;
    let mut c = RawClient::connect_capable(w.addr, &["connection.blocked"]).await;
    c.open_channel(1).await;
    publish_one(&mut c).await;
    assert_eq!(blocked_reason(&mut c).await, "low on disk");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &w.child.id().to_string()])
        .status();
    let text = c.expect_connection_close(320).await;
    assert!(text.contains("shutdown"), "{text}");
    assert_eq!(c.read_frame().await, RawFrame::Closed);
    let mut w = w;
    let _ = w.child.wait();
    assert!(w.logged("Warren stopped"), "a clean exit");
    assert!(
        !w.logged("did not close within"),
        "shutdown must not wait for the blocked connection"
    );
}

/// Time from our close-ok to the server closing the socket.
async fn close_ok_to_eof(c: &mut RawClient, code: u16) -> Duration {
    c.expect_connection_close(code).await;
    let sent = Instant::now();
    assert_eq!(c.read_frame().await, RawFrame::Closed);
    sent.elapsed()
}

/// Warren used to keep the socket 2 s after the client's close-ok.
const LINGER: Duration = Duration::from_secs(2);

/// After a connection error Warren sent, the client's close-ok ends the connection at once
/// (spec 4.2.2: the peer that sent close closes the socket), as RabbitMQ does; clients that
/// wait for EOF (amqp091-go, aio-pika) are not kept waiting.
#[tokio::test]
async fn the_socket_closes_on_close_ok_after_a_connection_error() {
    let b = start().await;
    // A method on a channel that was never opened: 504.
    let mut c = b.raw().await;
    c.send_method(
        5,
        AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
            prefetch_count: 1,
            global: false,
        })),
    )
    .await;
    assert!(close_ok_to_eof(&mut c, 504).await < LINGER / 2);

    // prefetch_size != 0: 540 NOT_IMPLEMENTED.
    let mut c = b.raw().await;
    c.open_channel(1).await;
    c.send_bytes(&frame(1, 1, &[0, 60, 0, 10, 0, 0, 0, 9, 0, 1, 0]))
        .await;
    assert!(close_ok_to_eof(&mut c, 540).await < LINGER / 2);

    // A frame whose end octet is wrong: 501, and the close-ok after it is still read.
    let mut c = b.raw().await;
    let mut bad = frame(8, 0, &[]);
    if let Some(end) = bad.last_mut() {
        *end = 0;
    }
    c.send_bytes(&bad).await;
    assert!(close_ok_to_eof(&mut c, 501).await < LINGER / 2);
}

/// max_connections counts open connections, not sockets in the handshake: sockets that only
/// send the protocol header do not lock real clients out, and the connection beyond the limit
/// is refused with 530 at connection.open, where the client can read why.
#[tokio::test]
async fn max_connections_counts_open_connections() {
    let b = start_with(|c| c.max_connections = 3).await;
    let mut silent = Vec::new();
    for _ in 0..5 {
        let mut s = RawClient::socket(b.addr).await;
        s.send_bytes(b"AMQP\x00\x00\x09\x01").await;
        silent.push(s);
    }
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(b.connect().await);
    }
    let refused = lapin::Connection::connect(&b.uri(), lapin::ConnectionProperties::default())
        .await
        .expect_err("the fourth open connection must be refused");
    assert_eq!(
        reply_of(&refused),
        (
            530,
            "NOT_ALLOWED - connection refused: node connection limit (3) is reached".into()
        )
    );
    // A slot comes free when a connection closes.
    if let Some(c) = open.pop() {
        c.close(200, "bye".into()).await.expect("close");
    }
    let reopened = eventually(|| async {
        lapin::Connection::connect(&b.uri(), lapin::ConnectionProperties::default())
            .await
            .is_ok()
    })
    .await;
    assert!(reopened, "a closed connection frees its slot");
}

/// After the client's channel.close and our close-ok, a method on that channel is the
/// connection error 504 RabbitMQ sends (Warren ignored it and the client waited forever);
/// frames sent together with the close, before the client could see close-ok, are ignored.
#[tokio::test]
async fn a_method_on_a_channel_closed_by_the_client_is_504_once_close_ok_was_seen() {
    use amq_protocol::protocol::channel;
    let b = start().await;
    let close = AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
        reply_code: 200,
        reply_text: "bye".into(),
        class_id: 0,
        method_id: 0,
    }));
    let qos = AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
        prefetch_count: 10,
        global: false,
    }));
    // Together with the close: ignored, the connection carries on.
    let mut c = RawClient::connect(b.addr).await;
    c.open_channel(1).await;
    let mut both = bytes::BytesMut::new();
    warren::protocol::encode::put_method(&mut both, 1, close.clone());
    warren::protocol::encode::put_method(&mut both, 1, qos.clone());
    c.send_bytes(&both).await;
    match c.read_method().await {
        Some((1, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_)))) => {}
        other => panic!("expected channel.close-ok, got {other:?}"),
    }
    c.open_channel(2).await;
    // After close-ok was read: 504.
    let mut c = RawClient::connect(b.addr).await;
    c.open_channel(1).await;
    c.send_method(1, close).await;
    match c.read_method().await {
        Some((1, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_)))) => {}
        other => panic!("expected channel.close-ok, got {other:?}"),
    }
    c.send_method(1, qos).await;
    let text = c.expect_connection_close(504).await;
    assert_eq!(text, "CHANNEL_ERROR - expected 'channel.open'");
}

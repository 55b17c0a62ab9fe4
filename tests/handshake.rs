//! Connection handshake, authentication, vhosts, heartbeats and the close handshake.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use amq_protocol::protocol::connection;
use common::*;
use lapin::{Connection, ConnectionProperties};
use warren::protocol::AMQPClass;

#[tokio::test]
async fn lapin_connects_and_closes_cleanly() {
    let b = start().await;
    let c = b.connect().await;
    let ch = c.create_channel().await.unwrap();
    declare(&ch, "hello").await;
    c.close(200, "bye".into()).await.expect("close handshake");
}

#[tokio::test]
async fn server_properties_advertise_capabilities() {
    let b = start().await;
    let mut raw = RawClient::socket(b.addr).await;
    raw.send_bytes(b"AMQP\x00\x00\x09\x01").await;
    match raw.read_frame().await {
        RawFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(s))) => {
            assert_eq!((s.version_major, s.version_minor), (0, 9));
            assert_eq!(s.mechanisms.as_bytes(), b"AMQPLAIN PLAIN");
            assert_eq!(s.locales.as_bytes(), b"en_US");
            let caps = match s.server_properties.inner().get("capabilities") {
                Some(lapin::types::AMQPValue::FieldTable(t)) => t.clone(),
                other => panic!("no capabilities: {other:?}"),
            };
            for cap in [
                "publisher_confirms",
                "basic.nack",
                "consumer_cancel_notify",
                "per_consumer_qos",
            ] {
                assert!(caps.inner().contains_key(cap), "missing {cap}");
            }
            assert!(s.server_properties.inner().contains_key("product"));
        }
        other => panic!("expected connection.start, got {other:?}"),
    }
}

#[tokio::test]
async fn a_bad_protocol_header_gets_ours_back_and_the_socket_closes() {
    let b = start().await;
    let mut raw = RawClient::socket(b.addr).await;
    raw.send_bytes(b"AMQP\x00\x00\x08\x00").await;
    assert_eq!(raw.read_bytes(8).await, b"AMQP\x00\x00\x09\x01");
    assert_eq!(raw.read_frame().await, RawFrame::Closed);
}

#[tokio::test]
async fn wrong_password_is_403_access_refused() {
    let b = start().await;
    let uri = format!("amqp://guest:wrong@{}/%2f", b.addr);
    let err = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .expect_err("login must fail");
    let (code, text) = reply_of(&err);
    assert_eq!(code, 403);
    assert!(
        text.starts_with("ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN"),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_vhost_is_530_not_allowed() {
    let b = start().await;
    let uri = format!("amqp://guest:guest@{}/other", b.addr);
    let err = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .expect_err("vhost must be refused");
    assert_eq!(code_of(&err), Some(530));
}

#[tokio::test]
async fn a_client_that_stalls_in_the_handshake_is_dropped() {
    let b = start_with(|c| c.handshake_timeout = 1).await;
    let mut raw = RawClient::socket(b.addr).await;
    // Say nothing: the server must hang up after handshake_timeout.
    assert_eq!(raw.read_frame().await, RawFrame::Closed);
}

#[tokio::test]
async fn server_sends_heartbeats_and_drops_a_silent_peer() {
    let b = start().await;
    let mut raw = RawClient::connect_with(b.addr, 1, 131072).await;
    // With a 1 s interval the server sends a heartbeat within about half a second...
    assert_eq!(raw.read_frame().await, RawFrame::Heartbeat);
    // ...and, since we never send anything, closes the socket after two intervals.
    loop {
        match raw.read_frame().await {
            RawFrame::Heartbeat => continue,
            RawFrame::Closed => break,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn client_heartbeats_keep_the_connection_alive() {
    let b = start().await;
    // A 2 s interval leaves 4 s of slack before the server gives up, even on a loaded machine.
    let mut raw = RawClient::connect_with(b.addr, 2, 131072).await;
    // Answer every server heartbeat with one of ours for several intervals (well past 2 × 2 s).
    for _ in 0..6 {
        assert_eq!(raw.read_frame().await, RawFrame::Heartbeat);
        raw.send_bytes(&frame(8, 0, &[])).await;
    }
    raw.open_channel(1).await;
}

#[tokio::test]
async fn connection_close_from_the_client_gets_close_ok() {
    let b = start().await;
    let mut raw = b.raw().await;
    raw.send_method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
            reply_code: 200,
            reply_text: "bye".into(),
            class_id: 0,
            method_id: 0,
        })),
    )
    .await;
    assert!(matches!(
        raw.read_frame().await,
        RawFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_)))
    ));
    assert_eq!(raw.read_frame().await, RawFrame::Closed);
}

#[tokio::test]
async fn tune_ok_above_our_offer_closes_the_socket_without_a_reply() {
    use amq_protocol::protocol::connection::{AMQPMethod, StartOk, TuneOk};
    let b = start().await;
    let mut raw = RawClient::socket(b.addr).await;
    raw.send_bytes(b"AMQP\x00\x00\x09\x01").await;
    raw.read_frame().await;
    raw.send_method(
        0,
        AMQPClass::Connection(AMQPMethod::StartOk(StartOk {
            client_properties: Default::default(),
            mechanism: "PLAIN".into(),
            response: b"\0guest\0guest".to_vec().into(),
            locale: "en_US".into(),
        })),
    )
    .await;
    raw.read_frame().await;
    raw.send_method(
        0,
        AMQPClass::Connection(AMQPMethod::TuneOk(TuneOk {
            channel_max: 2047,
            frame_max: 262_144,
            heartbeat: 0,
        })),
    )
    .await;
    // Before connection.open RabbitMQ answers nothing: the reason is only logged and the
    // socket closes.
    assert_eq!(raw.read_frame().await, RawFrame::Closed);
}

/// connection.update-secret (RabbitMQ 3.8+): the user's password is accepted with
/// update-secret-ok and the connection carries on; any other secret closes the connection
/// with 530 and RabbitMQ's text for a refused secret. (RabbitMQ's internal user store
/// accepts any secret here: Warren checks it, as a login would.)
#[tokio::test]
async fn update_secret_is_checked_like_a_login() {
    let b = start().await;
    let update = |secret: &str| {
        AMQPClass::Connection(connection::AMQPMethod::UpdateSecret(
            connection::UpdateSecret {
                new_secret: secret.as_bytes().to_vec().into(),
                reason: "token refresh".into(),
            },
        ))
    };
    let mut c = RawClient::connect(b.addr).await;
    c.send_method(0, update("guest")).await;
    match c.read_method().await {
        Some((0, AMQPClass::Connection(connection::AMQPMethod::UpdateSecretOk(_)))) => {}
        other => panic!("expected update-secret-ok, got {other:?}"),
    }
    c.open_channel(1).await;
    c.send_method(0, update("not the password")).await;
    assert_eq!(
        c.expect_connection_close(530).await,
        "NOT_ALLOWED - New secret was refused by one of the backends"
    );
}

/// A failed login by a client that did not announce authentication_failure_close gets no
/// connection.close: the socket just closes, as on RabbitMQ (which waits 3 s first).
#[tokio::test]
async fn a_failed_login_without_authentication_failure_close_just_closes_the_socket() {
    let b = start().await;
    let mut raw = RawClient::socket(b.addr).await;
    raw.send_bytes(b"AMQP\x00\x00\x09\x01").await;
    assert!(matches!(
        raw.read_frame().await,
        RawFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(_)))
    ));
    raw.send_method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: lapin::types::FieldTable::default(),
            mechanism: "PLAIN".into(),
            response: b"\0guest\0wrong".to_vec().into(),
            locale: "en_US".into(),
        })),
    )
    .await;
    assert_eq!(raw.read_frame().await, RawFrame::Closed);
}

/// A wrong-password attempt on a fresh socket: announcing authentication_failure_close, it is
/// answered with connection.close; without it, the socket is left to close silently later.
async fn wrong_password(addr: std::net::SocketAddr, announce: bool) -> RawClient {
    let mut props = lapin::types::FieldTable::default();
    if announce {
        let mut caps = lapin::types::FieldTable::default();
        caps.insert(
            "authentication_failure_close".into(),
            lapin::types::AMQPValue::Boolean(true),
        );
        props.insert(
            "capabilities".into(),
            lapin::types::AMQPValue::FieldTable(caps),
        );
    }
    let mut c = RawClient::socket(addr).await;
    c.send_bytes(b"AMQP\x00\x00\x09\x01").await;
    assert!(matches!(
        c.read_frame().await,
        RawFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(_)))
    ));
    c.send_method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: props,
            mechanism: "PLAIN".into(),
            response: b"\0guest\0wrong".to_vec().into(),
            locale: "en_US".into(),
        })),
    )
    .await;
    c
}

/// A thousand failed logins in a row, and a few hundred refused sockets still waiting for
/// their silent close, take nothing from anyone else: the handshake slots are free again (a
/// small max_handshakes shows it), an open connection keeps working, a new login succeeds.
#[tokio::test]
async fn a_thousand_failed_logins_leave_everyone_else_served() {
    let b = start_with(|c| c.max_handshakes = 8).await;
    let (_conn, ch) = b.channel().await;
    let q = declare(&ch, "during-failed-logins").await;
    // Refused silently: each socket stays open (RabbitMQ waits 3 s before closing it).
    let mut pending = Vec::new();
    for _ in 0..200 {
        pending.push(wrong_password(b.addr, false).await);
    }
    for i in 0..1000 {
        let mut c = wrong_password(b.addr, true).await;
        assert_eq!(
            c.expect_connection_close(403).await,
            "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.",
            "attempt {i}"
        );
    }
    publish(&ch, "", &q, b"still served").await;
    let got = get(&ch, &q).await.expect("the message");
    assert_eq!(got.delivery.data, b"still served");
    let (_fresh, ch2) = b.channel().await;
    publish(&ch2, "", &q, b"new login").await;
    assert_eq!(
        get(&ch2, &q).await.expect("the message").delivery.data,
        b"new login"
    );
    drop(pending);
}

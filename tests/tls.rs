//! AMQPS: messages over TLS beside the plain listener, SASL EXTERNAL from the client
//! certificate, and the handshakes that must fail (unknown CA, expired certificate, no
//! certificate where one is required, plain AMQP on the TLS port) without touching anyone else.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps

mod common;
use amq_protocol::protocol::{basic, connection};
use common::*;
use lapin::types::{AMQPValue, FieldTable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use warren::protocol::AMQPClass;

type TlsClient = RawClient<TlsStream<TcpStream>>;

/// A broker with both listeners, trusting `pki`'s CA; `app` (no password) may use `/`.
async fn broker(
    pki: &Pki,
    verify_peer: bool,
    adjust: impl FnOnce(&mut warren::config::Config),
) -> TestBroker {
    let defs = pki.dir.join("definitions.json");
    std::fs::write(
        &defs,
        r#"{"users":[{"name":"guest","password_hash":"A0EX/2hiwrIDKFS+nEqwbCGcVxwEkDBFF3mBfkNW53KFFk64","tags":["administrator"]},
                     {"name":"O=client,CN=app","password_hash":"","tags":[]},
                     {"name":"app","password_hash":"","tags":[]}],
            "vhosts":[{"name":"/"}],
            "permissions":[{"user":"guest","vhost":"/","configure":".*","write":".*","read":".*"},
                           {"user":"O=client,CN=app","vhost":"/","configure":".*","write":".*","read":".*"},
                           {"user":"app","vhost":"/","configure":".*","write":".*","read":".*"}]}"#,
    )
    .unwrap();
    start_with(|c| {
        pki.configure(c, verify_peer);
        c.auth_mechanisms = vec!["PLAIN".into(), "AMQPLAIN".into(), "EXTERNAL".into()];
        c.load_definitions = defs.display().to_string();
        adjust(c);
    })
    .await
}

/// Connection.start's mechanisms, then a login with `mechanism`; the client announces
/// authentication_failure_close so that a refusal arrives as connection.close.
async fn open(
    b: &TestBroker,
    pki: &Pki,
    cert: Option<&ClientCert>,
    mechanism: &str,
    response: &[u8],
) -> (TlsClient, Result<(), String>) {
    let stream = pki
        .connect(b.tls_addr.unwrap(), cert)
        .await
        .expect("TLS connect");
    let mut c = RawClient::over(stream);
    let mut caps = FieldTable::default();
    caps.insert(
        "authentication_failure_close".into(),
        AMQPValue::Boolean(true),
    );
    let mut props = FieldTable::default();
    props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    let r = c.log_in(mechanism, response, (0, 131072), props, "/").await;
    (c, r)
}

/// The mechanisms the broker offers on a fresh TLS connection.
async fn mechanisms(b: &TestBroker, pki: &Pki, cert: Option<&ClientCert>) -> String {
    let stream = pki
        .connect(b.tls_addr.unwrap(), cert)
        .await
        .expect("TLS connect");
    let mut c = RawClient::over(stream);
    c.send_bytes(b"AMQP\x00\x00\x09\x01").await;
    match c.read_method().await {
        Some((0, AMQPClass::Connection(connection::AMQPMethod::Start(s)))) => {
            String::from_utf8(s.mechanisms.as_bytes().to_vec()).unwrap()
        }
        other => panic!("expected connection.start, got {other:?}"),
    }
}

fn consume(queue: &str) -> AMQPClass {
    AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
        queue: queue.into(),
        consumer_tag: "tls".into(),
        no_local: false,
        no_ack: true,
        exclusive: false,
        nowait: false,
        arguments: FieldTable::default(),
    }))
}

/// The next delivery's body (its body frames joined).
async fn next_body(c: &mut TlsClient) -> Vec<u8> {
    match c.read_method().await {
        Some((1, AMQPClass::Basic(basic::AMQPMethod::Deliver(_)))) => {}
        other => panic!("expected basic.deliver, got {other:?}"),
    }
    let size = match c.read_frame().await {
        RawFrame::Header(1, p) => u64::from_be_bytes(p[4..12].try_into().unwrap()) as usize,
        other => panic!("expected a content header, got {other:?}"),
    };
    let mut body = Vec::with_capacity(size);
    while body.len() < size {
        match c.read_frame().await {
            RawFrame::Body(1, p) => body.extend_from_slice(&p),
            other => panic!("expected a body frame, got {other:?}"),
        }
    }
    body
}

/// Publishes `body` to the default exchange on channel 1.
async fn publish_raw(c: &mut TlsClient, queue: &str, body: &[u8]) {
    c.send_bytes(&publish_frame(1, "", queue, 0)).await;
    c.send_bytes(&header_frame(1, 60, body.len() as u64)).await;
    c.send_bytes(&frame(3, 1, body)).await;
}

#[tokio::test]
async fn messages_flow_over_tls_beside_the_plain_listener() {
    let pki = Pki::new();
    let b = broker(&pki, false, |_| {}).await;
    let (_plain, ch) = b.channel().await;
    let q = declare(&ch, "over-tls").await;
    // Big enough that a delivery is many TLS records and fills the socket.
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    for _ in 0..20 {
        publish(&ch, "", &q, &big).await;
    }
    let (mut c, r) = open(&b, &pki, None, "PLAIN", b"\0guest\0guest").await;
    r.unwrap();
    c.open_channel(1).await;
    publish_raw(&mut c, &q, b"from tls 1").await;
    publish_raw(&mut c, &q, b"from tls 2").await;
    c.send_method(1, consume(&q)).await;
    assert!(matches!(
        c.read_method().await,
        Some((1, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_))))
    ));
    for i in 0..20 {
        assert_eq!(next_body(&mut c).await, big, "message {i}");
    }
    assert_eq!(next_body(&mut c).await, b"from tls 1");
    assert_eq!(next_body(&mut c).await, b"from tls 2");
    // The plain listener is served all along.
    publish(&ch, "", &q, b"from plain").await;
    assert_eq!(next_body(&mut c).await, b"from plain");
}

#[tokio::test]
async fn external_logs_in_as_the_certificates_distinguished_name() {
    let pki = Pki::new();
    let b = broker(&pki, true, |_| {}).await;
    let cert = pki.client("app");
    assert_eq!(
        mechanisms(&b, &pki, Some(&cert)).await,
        "EXTERNAL AMQPLAIN PLAIN"
    );
    // RabbitMQ ignores EXTERNAL's response; the user is "O=client,CN=app".
    let (mut c, r) = open(&b, &pki, Some(&cert), "EXTERNAL", b"").await;
    r.unwrap();
    c.open_channel(1).await;
    // The connection is that user's: a passive declare of a missing queue is its 404.
    c.send_method(
        1,
        AMQPClass::Queue(amq_protocol::protocol::queue::AMQPMethod::Declare(
            amq_protocol::protocol::queue::Declare {
                queue: "nothing-here".into(),
                passive: true,
                durable: false,
                exclusive: false,
                auto_delete: false,
                nowait: false,
                arguments: FieldTable::default(),
            },
        )),
    )
    .await;
    assert_eq!(
        c.expect_channel_close(1, 404).await,
        "NOT_FOUND - no queue 'nothing-here' in vhost '/'"
    );
}

#[tokio::test]
async fn external_can_take_the_common_name() {
    let pki = Pki::new();
    let b = broker(&pki, true, |c| {
        c.tls.ssl_cert_login_from = "common_name".into();
    })
    .await;
    let (_c, r) = open(&b, &pki, Some(&pki.client("app")), "EXTERNAL", b"").await;
    r.unwrap();
}

#[tokio::test]
async fn external_is_refused_with_rabbitmqs_reply() {
    let pki = Pki::new();
    let b = broker(&pki, true, |_| {}).await;
    let stream = pki
        .connect(b.tls_addr.unwrap(), Some(&pki.client("nobody")))
        .await
        .unwrap();
    let mut c = RawClient::over(stream);
    c.send_bytes(b"AMQP\x00\x00\x09\x01").await;
    c.read_method().await.unwrap();
    let mut caps = FieldTable::default();
    caps.insert(
        "authentication_failure_close".into(),
        AMQPValue::Boolean(true),
    );
    let mut props = FieldTable::default();
    props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    c.send_method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: props,
            mechanism: "EXTERNAL".into(),
            response: b"".to_vec().into(),
            locale: "en_US".into(),
        })),
    )
    .await;
    assert_eq!(
        c.expect_connection_close(403).await,
        "ACCESS_REFUSED - Login was refused using authentication mechanism EXTERNAL. For details see the broker logfile."
    );
    // The same certificate may still log in with a password.
    let (_c, r) = open(
        &b,
        &pki,
        Some(&pki.client("nobody")),
        "PLAIN",
        b"\0guest\0guest",
    )
    .await;
    r.unwrap();
}

#[tokio::test]
async fn external_is_offered_only_when_auth_mechanisms_names_it() {
    let pki = Pki::new();
    let b = broker(&pki, true, |c| {
        c.auth_mechanisms = vec!["PLAIN".into(), "AMQPLAIN".into()];
    })
    .await;
    let cert = pki.client("app");
    assert_eq!(mechanisms(&b, &pki, Some(&cert)).await, "AMQPLAIN PLAIN");
    // Asked for anyway, it is refused like an unknown mechanism: the socket closes.
    let (_c, r) = open(&b, &pki, Some(&cert), "EXTERNAL", b"").await;
    assert!(r.unwrap_err().contains("Closed"));
}

#[tokio::test]
async fn without_a_client_certificate_external_is_not_offered() {
    let pki = Pki::new();
    // verify_peer, but fail_if_no_peer_cert = false (RabbitMQ's default): let in, by password.
    let b = broker(&pki, true, |_| {}).await;
    assert_eq!(mechanisms(&b, &pki, None).await, "AMQPLAIN PLAIN");
    let (_c, r) = open(&b, &pki, None, "PLAIN", b"\0guest\0guest").await;
    r.unwrap();
    // With verify_none no certificate is asked for, so none is seen.
    let b = broker(&pki, false, |_| {}).await;
    assert_eq!(
        mechanisms(&b, &pki, Some(&pki.client("app"))).await,
        "AMQPLAIN PLAIN"
    );
}

/// A TLS connection the server refused shows as a failed connect, or a socket that ends
/// (with an alert) before any AMQP frame.
async fn refused(b: &TestBroker, pki: &Pki, cert: Option<&ClientCert>) -> bool {
    let Ok(stream) = pki.connect(b.tls_addr.unwrap(), cert).await else {
        return true;
    };
    // TLS 1.3: the client finishes first; the server's verdict arrives with the first read.
    let mut c = RawClient::over(stream);
    c.send_bytes(b"AMQP\x00\x00\x09\x01").await;
    let mut byte = [0u8; 1];
    !matches!(
        tokio::time::timeout(WAIT, c.stream.read(&mut byte)).await,
        Ok(Ok(1))
    )
}

#[tokio::test]
async fn bad_handshakes_are_refused_and_nobody_else_notices() {
    let pki = Pki::new();
    let b = broker(&pki, true, |c| c.tls.fail_if_no_peer_cert = true).await;
    // A client already talking over TLS.
    let (mut ok, r) = open(&b, &pki, Some(&pki.client("app")), "EXTERNAL", b"").await;
    r.unwrap();
    ok.open_channel(1).await;

    assert!(refused(&b, &pki, None).await, "no certificate");
    assert!(
        refused(&b, &pki, Some(&Pki::stranger("app"))).await,
        "unknown CA"
    );
    let expired = pki.client_with("app", |p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    assert!(refused(&b, &pki, Some(&expired)).await, "expired");
    // Plain AMQP on the TLS port: no AMQP answer, the socket ends.
    let mut plain = TcpStream::connect(b.tls_addr.unwrap()).await.unwrap();
    plain.write_all(b"AMQP\x00\x00\x09\x01").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut answer))
        .await
        .expect("the TLS port closes a plain AMQP socket");
    assert!(!answer.starts_with(b"AMQP") && !answer.starts_with(&[1, 0, 0]));

    // The first connection still works, and so does the plain listener.
    let (_plain, ch) = b.channel().await;
    let q = declare(&ch, "still-here").await;
    publish(&ch, "", &q, b"after the failures").await;
    ok.send_method(1, consume(&q)).await;
    assert!(matches!(
        ok.read_method().await,
        Some((1, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_))))
    ));
    assert_eq!(next_body(&mut ok).await, b"after the failures");
}

#[tokio::test]
async fn either_listener_can_be_off() {
    let pki = Pki::new();
    let mut config = warren::config::Config::default();
    pki.configure(&mut config, false);
    config.listen = "127.0.0.1".into();
    config.port = 0;
    config.tls.port = free_addr().port();
    let l = warren::server::bind(&config).await.unwrap();
    assert!(l.amqp_addr().is_none());
    assert_eq!(l.amqps_addr().unwrap().port(), config.tls.port);
    drop(l);
    config.tls.certfile.clear();
    let e = warren::server::bind(&config).await.err().unwrap();
    assert!(e.to_string().contains("no listener"), "{e}");
    // A key file that is not a key is named in the error.
    config.tls.certfile = pki.path("server.pem");
    config.tls.keyfile = pki.path("ca.pem");
    let e = warren::server::bind(&config).await.err().unwrap();
    assert!(e.to_string().contains("tls.keyfile"), "{e}");
}

#[tokio::test]
async fn the_management_api_and_metrics_are_served_over_https_with_the_same_certificate() {
    let pki = Pki::new();
    let b = start_with(|c| pki.configure(c, false)).await;
    let mut config = warren::config::Config::default();
    pki.configure(&mut config, false);
    let acceptor = warren::server::tls::acceptor(&config.tls).unwrap();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (api_addr, metrics_addr) = (api.local_addr().unwrap(), metrics.local_addr().unwrap());
    tokio::spawn(warren::management::serve(
        api,
        Some(acceptor.clone()),
        b.broker.clone(),
        vec![],
        std::future::pending(),
    ));
    tokio::spawn(warren::management::prometheus::serve(
        metrics,
        Some(acceptor),
        b.broker.clone(),
        std::future::pending(),
    ));
    // guest:guest in Basic auth.
    for (addr, request) in [
        (api_addr, "GET /api/whoami HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\nConnection: close\r\n\r\n"),
        (metrics_addr, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    ] {
        let mut s = pki.connect(addr, None).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap_or_default();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("\"name\":\"guest\"") || answer.contains("rabbitmq_identity_info"), "{answer}");
    }
    // Plain HTTP on the HTTPS port gets no answer, and the listener serves the next client.
    let mut plain = tokio::net::TcpStream::connect(api_addr).await.unwrap();
    plain
        .write_all(b"GET /api/whoami HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut buf))
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
    assert!(pki.connect(api_addr, None).await.is_ok());
}

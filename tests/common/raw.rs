//! A raw-socket AMQP client for protocol-level tests, and frames built by hand.

use super::WAIT;
use bytes::{Buf, BytesMut};
use lapin::types::FieldTable;
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use warren::protocol::encode::put_method;
use warren::protocol::frame::split_frame;
use warren::protocol::AMQPClass;

/// A raw AMQP client for protocol-level tests, over TCP or any other stream (TLS).
pub struct RawClient<S = TcpStream> {
    pub stream: S,
    buf: BytesMut,
}

/// A frame as the raw client sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum RawFrame {
    Method(u16, AMQPClass),
    Header(u16, Vec<u8>),
    Body(u16, Vec<u8>),
    Heartbeat,
    /// The server closed the socket.
    Closed,
}

impl RawClient {
    /// Opens a socket and does the whole handshake with guest/guest, heartbeat off.
    pub async fn connect(addr: SocketAddr) -> RawClient {
        Self::connect_with(addr, 0, 131072).await
    }

    pub async fn connect_with(addr: SocketAddr, heartbeat: u16, frame_max: u32) -> RawClient {
        Self::connect_full(addr, heartbeat, frame_max, FieldTable::default()).await
    }

    /// Past the handshake, announcing the capabilities RabbitMQ's clients announce
    /// (connection.blocked, consumer_cancel_notify, authentication_failure_close, ...).
    pub async fn connect_capable(addr: SocketAddr, capabilities: &[&str]) -> RawClient {
        let mut caps = FieldTable::default();
        for c in capabilities {
            caps.insert((*c).into(), lapin::types::AMQPValue::Boolean(true));
        }
        let mut props = FieldTable::default();
        props.insert(
            "capabilities".into(),
            lapin::types::AMQPValue::FieldTable(caps),
        );
        Self::connect_full(addr, 0, 131072, props).await
    }

    pub async fn connect_full(
        addr: SocketAddr,
        heartbeat: u16,
        frame_max: u32,
        client_properties: FieldTable,
    ) -> RawClient {
        match Self::try_connect_full(addr, heartbeat, frame_max, client_properties).await {
            Ok(c) => c,
            Err(e) => panic!("handshake: {e}"),
        }
    }

    /// The handshake, reporting instead of panicking when the server goes away midway (the
    /// chaos suite restarts it under its clients).
    pub async fn try_connect_full(
        addr: SocketAddr,
        heartbeat: u16,
        frame_max: u32,
        client_properties: FieldTable,
    ) -> Result<RawClient, String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut c = RawClient::over(stream);
        c.log_in(
            "PLAIN",
            b"\0guest\0guest",
            (heartbeat, frame_max),
            client_properties,
            "/",
        )
        .await?;
        Ok(c)
    }
    /// Just a socket, no handshake.
    pub async fn socket(addr: SocketAddr) -> RawClient {
        RawClient::over(TcpStream::connect(addr).await.expect("connect"))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawClient<S> {
    /// A client on an open stream, before the protocol header.
    pub fn over(stream: S) -> RawClient<S> {
        RawClient {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// The handshake: protocol header, start-ok with `mechanism` and `response`, tune-ok with
    /// (heartbeat, frame_max), open `vhost`. An Err tells what arrived instead.
    pub async fn log_in(
        &mut self,
        mechanism: &str,
        response: &[u8],
        (heartbeat, frame_max): (u16, u32),
        client_properties: FieldTable,
        vhost: &str,
    ) -> Result<(), String> {
        self.send_bytes(b"AMQP\x00\x00\x09\x01").await;
        use amq_protocol::protocol::connection;
        match self.read_frame().await {
            RawFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(_))) => {}
            other => return Err(format!("expected connection.start, got {other:?}")),
        }
        self.send_method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties,
                mechanism: mechanism.into(),
                response: response.to_vec().into(),
                locale: "en_US".into(),
            })),
        )
        .await;
        let tune = match self.read_frame().await {
            RawFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Tune(t))) => t,
            other => return Err(format!("expected connection.tune, got {other:?}")),
        };
        self.send_method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: tune.channel_max,
                frame_max: frame_max.min(tune.frame_max),
                heartbeat,
            })),
        )
        .await;
        self.send_method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                virtual_host: vhost.into(),
            })),
        )
        .await;
        match self.read_frame().await {
            RawFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))) => Ok(()),
            other => Err(format!("expected connection.open-ok, got {other:?}")),
        }
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        // The server may already have closed; tests then observe Closed on read.
        if self.stream.write_all(bytes).await.is_ok() {
            let _ = self.stream.flush().await;
        }
    }

    pub async fn send_method(&mut self, channel: u16, m: AMQPClass) {
        let mut out = BytesMut::new();
        put_method(&mut out, channel, m);
        self.send_bytes(&out).await;
    }

    /// Opens channel `ch` and waits for open-ok.
    pub async fn open_channel(&mut self, ch: u16) {
        use amq_protocol::protocol::channel;
        self.send_method(
            ch,
            AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        )
        .await;
        match self.read_frame().await {
            RawFrame::Method(c, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))) if c == ch => {}
            other => panic!("expected channel.open-ok, got {other:?}"),
        }
    }

    /// Reads raw bytes (for the protocol-header reply test).
    pub async fn read_bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        tokio::time::timeout(WAIT, self.stream.read_exact(&mut v))
            .await
            .expect("timed out")
            .expect("read");
        v
    }

    /// The next frame, `Closed` on EOF; fails the test after `WAIT`.
    pub async fn read_frame(&mut self) -> RawFrame {
        let Some((kind, channel, payload)) = self.read_raw().await else {
            return RawFrame::Closed;
        };
        match kind {
            1 => RawFrame::Method(
                channel,
                warren::protocol::cold::parse_method(&payload).expect("bad method from server"),
            ),
            2 => RawFrame::Header(channel, payload),
            3 => RawFrame::Body(channel, payload),
            _ => RawFrame::Heartbeat,
        }
    }

    /// The next frame unparsed: (type, channel, payload); None on EOF.
    pub async fn read_raw(&mut self) -> Option<(u8, u16, Vec<u8>)> {
        loop {
            if let Some(f) = split_frame(&self.buf, 0).expect("server sent a bad frame") {
                let (len, raw) = (f.wire_len(), (f.kind, f.channel, f.payload.to_vec()));
                self.buf.advance(len);
                return Some(raw);
            }
            let n = tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("timed out waiting for a frame");
            match n {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Reads until a method frame arrives (skipping heartbeats) and returns it.
    pub async fn read_method(&mut self) -> Option<(u16, AMQPClass)> {
        loop {
            match self.read_frame().await {
                RawFrame::Method(c, m) => return Some((c, m)),
                RawFrame::Closed => return None,
                _ => {}
            }
        }
    }

    /// Expects connection.close with `code`; answers close-ok; returns the text.
    pub async fn expect_connection_close(&mut self, code: u16) -> String {
        use amq_protocol::protocol::connection;
        match self.read_method().await {
            Some((0, AMQPClass::Connection(connection::AMQPMethod::Close(c)))) => {
                assert_eq!(c.reply_code, code, "text: {}", c.reply_text);
                self.send_method(
                    0,
                    AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})),
                )
                .await;
                c.reply_text.to_string()
            }
            other => panic!("expected connection.close {code}, got {other:?}"),
        }
    }

    /// Expects channel.close with `code` on `ch`; returns the text.
    pub async fn expect_channel_close(&mut self, ch: u16, code: u16) -> String {
        use amq_protocol::protocol::channel;
        match self.read_method().await {
            Some((c, AMQPClass::Channel(channel::AMQPMethod::Close(m)))) if c == ch => {
                assert_eq!(m.reply_code, code, "text: {}", m.reply_text);
                m.reply_text.to_string()
            }
            other => panic!("expected channel.close {code} on {ch}, got {other:?}"),
        }
    }
}

/// A frame built by hand: type, channel, payload, end octet.
pub fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![kind];
    v.extend_from_slice(&channel.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v.push(0xCE);
    v
}

/// The wire bytes of a basic.publish method frame.
pub fn publish_frame(channel: u16, exchange: &str, key: &str, flags: u8) -> Vec<u8> {
    let mut p = vec![0, 60, 0, 40, 0, 0];
    p.push(exchange.len() as u8);
    p.extend_from_slice(exchange.as_bytes());
    p.push(key.len() as u8);
    p.extend_from_slice(key.as_bytes());
    p.push(flags);
    frame(1, channel, &p)
}

/// A content header frame with no properties.
pub fn header_frame(channel: u16, class: u16, body_size: u64) -> Vec<u8> {
    let mut p = class.to_be_bytes().to_vec();
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&body_size.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    frame(2, channel, &p)
}

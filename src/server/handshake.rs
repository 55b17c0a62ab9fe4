//! The connection handshake (spec 2.2.4): protocol header, start / start-ok (PLAIN, AMQPLAIN,
//! and EXTERNAL for TLS clients with a certificate), tune / tune-ok, open / open-ok. Bounded by `handshake_timeout` (RabbitMQ: 10 s).

use super::peer::Peer;
use crate::broker::access::usage::ConnectionSlot;
use crate::broker::access::{Grant, LoginError, User};
use crate::broker::vhost::VHost;
use crate::broker::Broker;
use crate::config::Config;
use crate::error::AmqpError;
use crate::protocol::cold::parse_method;
use crate::protocol::connection;
use crate::protocol::encode::put_method;
use crate::protocol::frame::{
    split_frame, FRAME_HEARTBEAT, FRAME_METHOD, PRE_TUNE_FRAME_MAX, PROTOCOL_HEADER,
};
use crate::protocol::methods::CONNECTION_OPEN;
use crate::protocol::{AMQPClass, AMQPValue, FieldTable, LongString, ShortString};
use bytes::{Buf, BytesMut};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The smallest frame_max a client may negotiate (RabbitMQ 3.x: 4096).
const MIN_FRAME_MAX: u32 = 4096;

/// What the handshake settled.
#[derive(Debug)]
pub struct Negotiated {
    pub user: String,
    /// What the user may do in its vhost.
    pub grant: Arc<Grant>,
    pub vhost: Arc<VHost>,
    pub frame_max: u32,
    pub channel_max: u16,
    pub heartbeat: u16,
    /// The client asked for basic.cancel when its queue goes away.
    pub consumer_cancel_notify: bool,
    /// The client understands connection.blocked / unblocked.
    pub connection_blocked: bool,
    /// The SASL mechanism it logged in with.
    pub mechanism: String,
    /// What the client said about itself in connection.start-ok.
    pub client_properties: crate::protocol::FieldTable,
    /// This connection's place under max_connections, held while it is open.
    _slot: OwnedSemaphorePermit,
    /// Its place in the per-vhost and per-user counts (connection and channel limits).
    pub usage: ConnectionSlot,
    /// What the handshake read and wrote.
    pub traffic: Traffic,
}

/// Why a handshake ended without a connection.
#[derive(Debug)]
pub enum HandshakeError {
    /// The peer went away, sent garbage, or an I/O error occurred; nothing more to send.
    Dropped(String),
    /// An AMQP error to report with connection.close before closing.
    Refused(AmqpError),
    /// A failed login by a client that did not announce `authentication_failure_close`:
    /// RabbitMQ sends it nothing and closes the socket after `SILENT_CLOSE_DELAY` (the error
    /// is only logged), which also slows down password guessing.
    RefusedSilently(AmqpError),
}

/// How long RabbitMQ waits before closing the socket of a login it refuses silently.
pub const SILENT_CLOSE_DELAY: std::time::Duration = std::time::Duration::from_secs(3);

impl From<std::io::Error> for HandshakeError {
    fn from(e: std::io::Error) -> Self {
        HandshakeError::Dropped(e.to_string())
    }
}

/// Bytes and reads/writes of the handshake, which count in the connection's totals as
/// everything after it does (RabbitMQ's recv_oct / send_oct start with the protocol header).
#[derive(Debug, Default, Clone, Copy)]
pub struct Traffic {
    pub recv_oct: u64,
    pub recv_cnt: u64,
    pub send_oct: u64,
    pub send_cnt: u64,
}

/// Reads more of the handshake: false when the peer closed the socket.
async fn read_more<R: AsyncRead + Unpin>(
    reader: &mut R,
    inbuf: &mut BytesMut,
    traffic: &mut Traffic,
) -> std::io::Result<bool> {
    let n = reader.read_buf(inbuf).await?;
    traffic.recv_oct += n as u64;
    traffic.recv_cnt += 1;
    Ok(n > 0)
}

/// Writes one handshake step and pushes it to the socket (a TLS writer buffers).
async fn send<W: AsyncWrite + Unpin>(
    writer: &mut W,
    bytes: &[u8],
    traffic: &mut Traffic,
) -> std::io::Result<()> {
    writer.write_all(bytes).await?;
    traffic.send_oct += bytes.len() as u64;
    traffic.send_cnt += 1;
    writer.flush().await
}

/// Runs the handshake over the two socket halves.
pub async fn handshake<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    reader: &mut R,
    writer: &mut W,
    inbuf: &mut BytesMut,
    config: &Config,
    broker: &Broker,
    open_slots: &Arc<Semaphore>,
    peer: &Peer,
) -> Result<Negotiated, HandshakeError> {
    let mut traffic = Traffic::default();
    while inbuf.len() < 8 {
        if !read_more(reader, inbuf, &mut traffic).await? {
            return Err(HandshakeError::Dropped(
                "closed before the protocol header".into(),
            ));
        }
    }
    if &inbuf[..8] != PROTOCOL_HEADER {
        // Spec 4.2.2: answer a bad header with the header we speak, then close.
        send(writer, PROTOCOL_HEADER, &mut traffic).await?;
        return Err(HandshakeError::Dropped("bad protocol header".into()));
    }
    inbuf.advance(8);

    let mut out = BytesMut::new();
    put_method(
        &mut out,
        0,
        AMQPClass::Connection(connection::AMQPMethod::Start(start_method(&mechanisms(
            config, peer,
        )))),
    );
    send(writer, &out, &mut traffic).await?;

    // Until tune-ok is accepted RabbitMQ answers nothing: it logs the error and closes the
    // socket after SILENT_CLOSE_DELAY. From connection.open on it sends connection.close.
    let start_ok = match next_method(reader, inbuf, &mut traffic)
        .await
        .map_err(silently)?
    {
        AMQPClass::Connection(connection::AMQPMethod::StartOk(m)) => m,
        _ => return Err(silently(refused_unexpected())),
    };
    // An IPv4 client of a dual-stack listener shows as ::ffff:127.0.0.1: still loopback.
    let from_loopback = peer.addr.ip().to_canonical().is_loopback();
    let user =
        authenticate(&start_ok, broker, config, peer, from_loopback).map_err(|e| match e {
            HandshakeError::Refused(e)
                if !client_capability(
                    &start_ok.client_properties,
                    "authentication_failure_close",
                ) =>
            {
                HandshakeError::RefusedSilently(e)
            }
            other => other,
        })?;
    let consumer_cancel_notify =
        client_capability(&start_ok.client_properties, "consumer_cancel_notify");
    let connection_blocked = client_capability(&start_ok.client_properties, "connection.blocked");

    out.clear();
    let tune = connection::Tune {
        channel_max: config.channel_max,
        frame_max: config.frame_max,
        heartbeat: config.heartbeat,
    };
    put_method(
        &mut out,
        0,
        AMQPClass::Connection(connection::AMQPMethod::Tune(tune)),
    );
    send(writer, &out, &mut traffic).await?;

    let tune_ok = match next_method(reader, inbuf, &mut traffic)
        .await
        .map_err(silently)?
    {
        AMQPClass::Connection(connection::AMQPMethod::TuneOk(m)) => m,
        _ => return Err(silently(refused_unexpected())),
    };
    // The client may lower our offers, not raise them; 0 means "no limit", which is above
    // any limit we offered (RabbitMQ refuses both the same way).
    let refuse = |what: &str, value: u32, bound: &str, limit: u32| {
        Err(HandshakeError::RefusedSilently(AmqpError::not_allowed(
            format!(
                "negotiated {what} = {value} is {bound} than the {} allowed value ({limit})",
                if bound == "higher" {
                    "maximum"
                } else {
                    "minimum"
                }
            ),
        )))
    };
    let channel_max = tune_ok.channel_max;
    if channel_max == 0 || channel_max > config.channel_max {
        return refuse(
            "channel_max",
            channel_max as u32,
            "higher",
            config.channel_max as u32,
        );
    }
    let frame_max = tune_ok.frame_max;
    if frame_max == 0 || frame_max > config.frame_max {
        return refuse("frame_max", frame_max, "higher", config.frame_max);
    }
    if frame_max < MIN_FRAME_MAX {
        return refuse("frame_max", frame_max, "lower", MIN_FRAME_MAX);
    }
    let heartbeat = tune_ok.heartbeat;

    let open = match next_method(reader, inbuf, &mut traffic).await? {
        AMQPClass::Connection(connection::AMQPMethod::Open(m)) => m,
        _ => return Err(refused_unexpected()),
    };
    // Connections count toward max_connections from here on (RabbitMQ 3.12+ checks its node
    // limit at connection.open too, with this text).
    let Ok(slot) = open_slots.clone().try_acquire_owned() else {
        return Err(HandshakeError::Refused(
            AmqpError::not_allowed(format!(
                "connection refused: node connection limit ({}) is reached",
                config.max_connections
            ))
            .with_method(CONNECTION_OPEN),
        ));
    };
    let vhost_name = open.virtual_host.as_str();
    let Some(vhost) = broker.vhost(vhost_name).filter(|v| !v.is_deleted()) else {
        return Err(HandshakeError::Refused(
            AmqpError::not_allowed(format!("vhost {vhost_name} not found"))
                .with_method(CONNECTION_OPEN),
        ));
    };
    if !broker.access().may_open(&user.name, vhost_name) {
        tracing::warn!(user = ?user.name, vhost = vhost_name, "access to vhost refused");
        return Err(HandshakeError::Refused(
            AmqpError::not_allowed(format!(
                "access to vhost '{vhost_name}' refused for user '{}'",
                user.name
            ))
            .with_method(CONNECTION_OPEN),
        ));
    }
    // RabbitMQ's order at connection.open: access to the vhost, then its connection limit,
    // then the user's.
    let usage = broker
        .usage()
        .open_connection(
            vhost_name,
            broker.access().vhost_limits(vhost_name),
            &user.name,
            user.limits,
        )
        .map_err(|e| HandshakeError::Refused(e.with_method(CONNECTION_OPEN)))?;
    out.clear();
    put_method(
        &mut out,
        0,
        AMQPClass::Connection(connection::AMQPMethod::OpenOk(connection::OpenOk {})),
    );
    send(writer, &out, &mut traffic).await?;
    let grant = Arc::new(Grant::new(
        broker.access().clone(),
        user.clone(),
        vhost.name.clone(),
    ));
    Ok(Negotiated {
        user: user.name.clone(),
        grant,
        vhost,
        frame_max,
        channel_max,
        heartbeat,
        consumer_cancel_notify,
        connection_blocked,
        mechanism: start_ok.mechanism.to_string(),
        client_properties: start_ok.client_properties,
        _slot: slot,
        usage,
        traffic,
    })
}

/// Before the connection is open, RabbitMQ reports errors only in its log.
fn silently(e: HandshakeError) -> HandshakeError {
    match e {
        HandshakeError::Refused(e) => HandshakeError::RefusedSilently(e),
        other => other,
    }
}

fn refused_unexpected() -> HandshakeError {
    HandshakeError::Refused(AmqpError::command_invalid(
        "unexpected method during the handshake",
    ))
}

/// Reads frames until a method on channel 0 arrives (heartbeats are skipped).
async fn next_method<R: AsyncRead + Unpin>(
    reader: &mut R,
    inbuf: &mut BytesMut,
    traffic: &mut Traffic,
) -> Result<AMQPClass, HandshakeError> {
    loop {
        let parsed = split_frame(inbuf, PRE_TUNE_FRAME_MAX).map_err(HandshakeError::Refused)?;
        if let Some(frame) = parsed {
            let len = frame.wire_len();
            let result = match frame.kind {
                FRAME_HEARTBEAT => None,
                FRAME_METHOD if frame.channel == 0 => {
                    Some(parse_method(frame.payload).ok_or_else(|| {
                        HandshakeError::Refused(AmqpError::syntax_error("malformed method frame"))
                    }))
                }
                // RabbitMQ quotes the frame (a method on a channel before connection.open).
                kind => Some(Err(HandshakeError::Refused(AmqpError::unexpected_frame(
                    format!(
                        "type {kind}, all octets = {}",
                        crate::protocol::cold::erlang_binary(frame.payload)
                    ),
                )))),
            };
            inbuf.advance(len);
            match result {
                None => continue,
                Some(r) => return r,
            }
        }
        if !read_more(reader, inbuf, traffic).await? {
            return Err(HandshakeError::Dropped(
                "closed during the handshake".into(),
            ));
        }
    }
}

pub use crate::broker::RABBITMQ_COMPATIBLE_VERSION;

fn authenticate(
    m: &connection::StartOk,
    broker: &Broker,
    config: &Config,
    peer: &Peer,
    from_loopback: bool,
) -> Result<Arc<User>, HandshakeError> {
    let mechanism = m.mechanism.as_str();
    let refused = AmqpError::access_refused(format!(
        "Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."
    ));
    let offered = mechanisms(config, peer);
    if !offered.split(' ').any(|o| o == mechanism) {
        // A mechanism this connection was not offered: RabbitMQ closes silently.
        return Err(HandshakeError::RefusedSilently(refused));
    }
    if mechanism == "EXTERNAL" {
        return authenticate_external(broker, peer, from_loopback, refused);
    }
    let credentials = match mechanism {
        "PLAIN" => parse_plain(m.response.as_bytes()),
        "AMQPLAIN" => parse_amqplain(m.response.as_bytes()),
        _ => None,
    };
    // An unknown mechanism (EXTERNAL where it is not offered) or a response that cannot be
    // read: RabbitMQ closes silently whatever the client announced.
    let Some((user, pass)) = credentials else {
        return Err(HandshakeError::RefusedSilently(refused));
    };
    match broker.access().login(&user, pass.as_bytes(), from_loopback) {
        Ok(u) => Ok(u),
        Err(LoginError::Invalid) => {
            tracing::warn!("{mechanism} login refused: user '{user}' - invalid credentials");
            Err(HandshakeError::Refused(refused))
        }
        Err(LoginError::LoopbackOnly) => {
            tracing::warn!(
                "{mechanism} login refused: user '{user}' can only connect via localhost"
            );
            Err(HandshakeError::Refused(AmqpError::access_refused(format!(
                "user '{user}' can only connect via localhost"
            ))))
        }
    }
}

/// The mechanisms offered on this connection, space-separated as connection.start carries
/// them: those `auth_mechanisms` names, EXTERNAL only to a TLS client that presented a
/// verified certificate (RabbitMQ's rabbitmq_auth_mechanism_ssl offers it only when the
/// socket has a peer certificate, which takes verify_peer).
fn mechanisms(config: &Config, peer: &Peer) -> String {
    let enabled = |m: &str| config.auth_mechanisms.iter().any(|c| c == m);
    let with_cert = peer.tls.as_ref().is_some_and(|t| t.client_cert);
    let mut offered: Vec<&str> = Vec::new();
    if enabled("EXTERNAL") && with_cert {
        offered.push("EXTERNAL");
    }
    offered.extend(["AMQPLAIN", "PLAIN"].into_iter().filter(|m| enabled(m)));
    offered.join(" ")
}

/// EXTERNAL: the user named by the certificate, which must exist; no password is checked (the
/// TLS handshake proved the certificate). The client's response is ignored, as RabbitMQ does.
fn authenticate_external(
    broker: &Broker,
    peer: &Peer,
    from_loopback: bool,
    refused: AmqpError,
) -> Result<Arc<User>, HandshakeError> {
    let Some(name) = peer.tls.as_ref().and_then(|t| t.cert_login.as_deref()) else {
        tracing::warn!("EXTERNAL login refused: the client certificate names no user");
        return Err(HandshakeError::Refused(refused));
    };
    match broker.access().login_external(name, from_loopback) {
        Ok(u) => Ok(u),
        Err(LoginError::Invalid) => {
            tracing::warn!("EXTERNAL login refused: user '{name}' - invalid credentials");
            Err(HandshakeError::Refused(refused))
        }
        Err(LoginError::LoopbackOnly) => {
            tracing::warn!("EXTERNAL login refused: user '{name}' can only connect via localhost");
            Err(HandshakeError::Refused(AmqpError::access_refused(format!(
                "user '{name}' can only connect via localhost"
            ))))
        }
    }
}

/// PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`.
fn parse_plain(response: &[u8]) -> Option<(String, String)> {
    let mut parts = response.split(|b| *b == 0);
    let _authzid = parts.next()?;
    let user = std::str::from_utf8(parts.next()?).ok()?.to_string();
    let pass = std::str::from_utf8(parts.next()?).ok()?.to_string();
    if parts.next().is_some() {
        return None;
    }
    Some((user, pass))
}

/// AMQPLAIN: a field table without its length prefix, with LOGIN and PASSWORD.
fn parse_amqplain(response: &[u8]) -> Option<(String, String)> {
    let mut framed = Vec::with_capacity(response.len() + 4);
    framed.extend_from_slice(&(response.len() as u32).to_be_bytes());
    framed.extend_from_slice(response);
    // decode_table bounds the nesting before parsing (this is pre-authentication input).
    let table = crate::protocol::table::decode_table(&framed)?;
    let text = |k: &str| match table.inner().get(k)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    };
    Some((text("LOGIN")?, text("PASSWORD")?))
}

fn client_capability(props: &FieldTable, name: &str) -> bool {
    match props.inner().get("capabilities") {
        Some(AMQPValue::FieldTable(caps)) => {
            matches!(caps.inner().get(name), Some(AMQPValue::Boolean(true)))
        }
        _ => false,
    }
}

fn start_method(mechanisms: &str) -> connection::Start {
    let mut caps = FieldTable::default();
    // Advertise only what works (Spring and the Java client act on these).
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "per_consumer_qos",
        "authentication_failure_close",
        "consumer_priorities",
        "direct_reply_to",
        "connection.blocked",
    ] {
        caps.insert(ShortString::from(cap), AMQPValue::Boolean(true));
    }
    let mut props = FieldTable::default();
    let mut text = |k: &str, v: &str| {
        props.insert(
            ShortString::from(k),
            AMQPValue::LongString(LongString::from(v.as_bytes().to_vec())),
        );
    };
    text("product", "Warren");
    // Clients gate features on `version` as a RabbitMQ version (the Java client's tests,
    // for instance, skip update-secret below 3.8): Warren announces the RabbitMQ release
    // whose behaviour it reproduces, and its own version in `warren_version`.
    text("version", RABBITMQ_COMPATIBLE_VERSION);
    text("warren_version", env!("CARGO_PKG_VERSION"));
    text("platform", "Rust");
    text("cluster_name", "warren");
    text("copyright", "Copyright (c) the Warren authors");
    text(
        "information",
        concat!(
            "Warren ",
            env!("CARGO_PKG_VERSION"),
            ", compatible with RabbitMQ 3.10. Licensed under the Apache License 2.0"
        ),
    );
    props.insert(
        ShortString::from("capabilities"),
        AMQPValue::FieldTable(caps),
    );
    connection::Start {
        version_major: 0,
        version_minor: 9,
        server_properties: props,
        mechanisms: LongString::from(mechanisms.as_bytes().to_vec()),
        locales: LongString::from(b"en_US".to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_amqplain_credentials() {
        assert_eq!(
            parse_plain(b"\0guest\0guest"),
            Some(("guest".into(), "guest".into()))
        );
        assert_eq!(parse_plain(b"guest"), None);
        assert_eq!(parse_plain(b"\0a\0b\0c"), None);
        let mut t = Vec::new();
        for (k, v) in [("LOGIN", "u"), ("PASSWORD", "p")] {
            t.push(k.len() as u8);
            t.extend_from_slice(k.as_bytes());
            t.push(b'S');
            t.extend_from_slice(&(v.len() as u32).to_be_bytes());
            t.extend_from_slice(v.as_bytes());
        }
        assert_eq!(parse_amqplain(&t), Some(("u".into(), "p".into())));
        // A response nesting tables thousands deep is refused before amq-protocol recurses.
        let mut deep: Vec<u8> = vec![0, 0, 0, 0];
        for _ in 0..20_000 {
            let mut outer = Vec::with_capacity(deep.len() + 7);
            outer.extend_from_slice(&((deep.len() + 3) as u32).to_be_bytes());
            outer.extend_from_slice(&[1, b'k', b'F']);
            outer.extend_from_slice(&deep);
            deep = outer;
        }
        assert_eq!(parse_amqplain(&deep[4..]), None);
        assert_eq!(parse_amqplain(&t[..5]), None);
    }
}

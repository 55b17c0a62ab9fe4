//! One client connection: a single task that reads frames, runs its channels, receives
//! deliveries from queues, sends heartbeats and writes, all from one `select!` loop.
//!
//! Reads and writes are batched: every complete frame in a read is handled before anything is
//! written, deliveries are drained from the inbox in bulk, and the output buffer goes out in as
//! few `write` calls as the socket allows. Reading continues while writing is blocked (and the
//! reverse), so a client that publishes without reading can never deadlock with us.
//!
//! Errors: soft codes close the channel; hard codes (or errors on channel 0) close the
//! connection; that choice is made only in `fail`.

use super::channel::{Channel, Ctx, HeldReply, Signal};
use super::handshake::{handshake, HandshakeError, Negotiated};
use super::output::Output;
use super::peer::{Peer, TlsPeer};
use super::Slots;
use crate::broker::alarm::Alarms;
use crate::broker::queue::Queue;
use crate::broker::queue::{Delivery, Outbound};
use crate::broker::registry::{ConnectionDetails, Registered};
use crate::broker::signal;
use crate::broker::Broker;
use crate::config::Config;
use crate::error::{AmqpError, AmqpResult};
use crate::protocol::cold::{erlang_binary, is_known_method, parse_method};
use crate::protocol::encode::{put_heartbeat, put_method};
use crate::protocol::fast::{method_ids, parse_fast_method, FastMethod};
use crate::protocol::frame::{
    frame_end_fault_len, split_frame, FRAME_BODY, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD,
};
use crate::protocol::methods::{
    BASIC_ACK, BASIC_NACK, BASIC_PUBLISH, BASIC_QOS, BASIC_REJECT, CHANNEL_OPEN,
    CONNECTION_UPDATE_SECRET,
};
use crate::protocol::AMQPClass;
use crate::protocol::{channel, connection};
use bytes::{Buf, BytesMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

/// Stop taking deliveries from the inbox while this much output is waiting for the socket.
const OUTPUT_HIGH_WATER: usize = 1 << 20;
/// Stop reading the socket while this much output is waiting (a client that never reads).
const OUTPUT_READ_STOP: usize = 16 << 20;
/// Inbox events handled per wake before going back to the socket (fairness).
const INBOX_BATCH: usize = 1024;
/// How long a closed connection waits for the client to close the socket.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Initial read buffer; grows to one frame_max when needed.
const READ_BUFFER: usize = 64 * 1024;

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// We sent connection.close: discard everything but close / close-ok (spec 4.2.2).
    Closing,
    /// Done: flush what is left and drop the socket.
    Done,
}

/// Serves one accepted plain TCP socket until it closes.
pub async fn serve_tcp(
    stream: TcpStream,
    addr: SocketAddr,
    config: Arc<Config>,
    broker: Arc<Broker>,
    slots: Slots,
    stop: watch::Receiver<bool>,
) {
    let accepted = Instant::now();
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().unwrap_or(addr);
    // Owned halves: reads and writes go straight to the socket, no lock between them.
    let (reader, writer) = stream.into_split();
    let peer = Peer {
        addr,
        local,
        tls: None,
    };
    let socket = Socket {
        reader,
        writer,
        buffered: false,
    };
    serve(socket, peer, accepted, None, config, broker, slots, stop).await;
}

/// Serves one socket of the AMQPS listener: the TLS handshake, then AMQP over it. The TLS
/// handshake holds a handshake slot and counts against `handshake_timeout` like the AMQP one.
#[allow(clippy::too_many_arguments)]
pub async fn serve_tls(
    stream: TcpStream,
    addr: SocketAddr,
    tls: tokio_rustls::TlsAcceptor,
    login_from: super::tls::LoginFrom,
    config: Arc<Config>,
    broker: Arc<Broker>,
    slots: Slots,
    stop: watch::Receiver<bool>,
) {
    let accepted = Instant::now();
    let deadline = accepted + Duration::from_secs(config.handshake_timeout);
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().unwrap_or(addr);
    let Ok(Ok(slot)) =
        tokio::time::timeout_at(deadline, slots.handshakes.clone().acquire_owned()).await
    else {
        tracing::warn!(peer = %addr, "handshake timeout: connection dropped");
        return;
    };
    let stream = match tokio::time::timeout_at(deadline, tls.accept(stream)).await {
        Ok(Ok(s)) => s,
        // Wrong CA, expired or missing certificate, plain AMQP on the TLS port: one line
        // for this connection, nothing for anyone else.
        Ok(Err(e)) => {
            tracing::warn!(peer = %addr, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::warn!(peer = %addr, "TLS handshake timeout: connection dropped");
            return;
        }
    };
    let cert = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first());
    let peer = Peer {
        addr,
        local,
        tls: Some(TlsPeer {
            client_cert: cert.is_some(),
            cert_login: cert.and_then(|c| super::tls::cert_login(c, login_from)),
        }),
    };
    let (reader, writer) = tokio::io::split(stream);
    // rustls keeps what the socket did not take: the writer must be flushed.
    let socket = Socket {
        reader,
        writer,
        buffered: true,
    };
    serve(
        socket,
        peer,
        accepted,
        Some(slot),
        config,
        broker,
        slots,
        stop,
    )
    .await;
}

/// What one turn of the writer did.
enum Pushed {
    Wrote(usize),
    Flushed,
}

/// Writes what the output holds or, once it is empty, flushes a buffering writer.
async fn push<W: AsyncWrite + Unpin>(out: &Output, w: &mut W) -> std::io::Result<Pushed> {
    if out.is_empty() {
        w.flush().await.map(|()| Pushed::Flushed)
    } else {
        out.write_to(w).await.map(Pushed::Wrote)
    }
}

/// The two halves of a client socket.
struct Socket<R, W> {
    reader: R,
    writer: W,
    /// Writes may stay in a buffer (TLS records) until the writer is flushed.
    buffered: bool,
}

/// Serves one connection until it closes: the AMQP handshake, then the connection's loop.
#[allow(clippy::too_many_arguments)]
async fn serve<R, W>(
    socket: Socket<R, W>,
    peer: Peer,
    accepted: Instant,
    handshake_slot: Option<tokio::sync::OwnedSemaphorePermit>,
    config: Arc<Config>,
    broker: Arc<Broker>,
    slots: Slots,
    stop: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let Socket {
        mut reader,
        mut writer,
        buffered,
    } = socket;
    let addr = peer.addr;
    let mut inbuf = BytesMut::with_capacity(READ_BUFFER);
    let deadline = accepted + Duration::from_secs(config.handshake_timeout);
    // The timeout runs from accept, including any wait for a handshake slot (RabbitMQ's
    // handshake_timeout also runs from accept).
    let handshaken = tokio::time::timeout_at(deadline, async {
        let _in_handshake = match handshake_slot {
            Some(slot) => Ok(slot),
            None => slots.handshakes.clone().acquire_owned().await,
        };
        handshake(
            &mut reader,
            &mut writer,
            &mut inbuf,
            &config,
            &broker,
            &slots.open,
            &peer,
        )
        .await
    });
    let negotiated = match handshaken.await {
        Ok(Ok(n)) => n,
        Ok(Err(HandshakeError::Refused(e))) => {
            tracing::warn!(peer = %addr, code = e.code, text = ?e.text, "connection refused during handshake");
            let mut out = BytesMut::new();
            put_close(&mut out, &e);
            if writer.write_all(&out).await.is_ok() && writer.flush().await.is_ok() {
                // Like RabbitMQ, let the client answer close-ok (or hang up) before the
                // socket goes, so it reads our close rather than a reset.
                let mut scratch = [0u8; 64];
                let _ = tokio::time::timeout(
                    super::handshake::SILENT_CLOSE_DELAY,
                    reader.read(&mut scratch),
                )
                .await;
            }
            return;
        }
        Ok(Err(HandshakeError::RefusedSilently(e))) => {
            tracing::warn!(peer = %addr, code = e.code, text = ?e.text, "handshake refused: the socket closes without connection.close, as RabbitMQ does before a connection is open");
            tokio::time::sleep(super::handshake::SILENT_CLOSE_DELAY).await;
            return;
        }
        Ok(Err(HandshakeError::Dropped(why))) => {
            tracing::info!(peer = %addr, reason = %why, "connection dropped during handshake");
            return;
        }
        Err(_) => {
            tracing::warn!(peer = %addr, "handshake timeout: connection dropped");
            return;
        }
    };
    let id = broker.next_connection_id();
    tracing::info!(peer = %addr, tls = peer.tls.is_some(), user = ?negotiated.user, vhost = ?negotiated.vhost.name, "connection opened");
    let registered = broker.registry().register(
        id,
        ConnectionDetails {
            peer: addr,
            local: peer.local,
            tls: peer.tls.is_some(),
            user: negotiated.user.clone(),
            vhost: negotiated.vhost.name.to_string(),
            auth_mechanism: negotiated.mechanism.clone(),
            client_properties: crate::protocol::json::table_to_json(&negotiated.client_properties),
            frame_max: negotiated.frame_max,
            channel_max: negotiated.channel_max,
            heartbeat: negotiated.heartbeat,
        },
        crate::broker::clock::unix_ms(),
    );
    let traffic = negotiated.traffic;
    let info = &registered.info;
    info.recv_oct.add(traffic.recv_oct);
    info.recv_cnt.add(traffic.recv_cnt);
    info.send_oct.add(traffic.send_oct);
    info.send_cnt.add(traffic.send_cnt);
    let (sink, inbox) = unbounded_channel();
    let mut conn = Connection {
        id,
        registered,
        peer: addr,
        n: negotiated,
        channels: crate::FastMap::default(),
        sink,
        out: Output::with_capacity(READ_BUFFER),
        phase: Phase::Open,
        redispatch: Vec::new(),
        held: None,
        recently_closed: Vec::new(),
        batches: 0,
        published: false,
        blocked: false,
        alarms: Alarms::default(),
        consumer_timeout: config.consumer_timeout,
        max_message_size: config.max_message_size,
        close_reason: String::from("client closed the connection"),
        released: false,
        linger: false,
    };
    let mut signals = Signals {
        durable: broker.durable_rounds(),
        alarm: broker.alarms(),
    };
    // What was raised before this connection registered, it would never hear of: shutdown
    // and the vhost's deletion set their flags before they raise on the registered
    // connections, and the alarms are read here.
    let mut missed = signal::ALARM;
    if *stop.borrow() {
        missed |= signal::SHUTDOWN;
    }
    if conn.n.vhost.is_deleted() {
        missed |= signal::VHOST_DELETED;
    }
    conn.registered.info.signal.raise(missed);
    conn.run(
        &mut reader,
        &mut writer,
        buffered,
        inbuf,
        inbox,
        &mut signals,
    )
    .await;
    tracing::info!(peer = %addr, user = ?conn.n.user, vhost = ?conn.n.vhost.name, reason = ?conn.close_reason, "connection closed");
}

/// The context a channel gets from its connection. A macro rather than a method: it borrows
/// the connection's fields one by one, so a channel from `self.channels` can be borrowed too.
macro_rules! channel_ctx {
    ($conn:ident) => {
        Ctx {
            vhost: &$conn.n.vhost,
            grant: &$conn.n.grant,
            conn_id: $conn.id,
            sink: &$conn.sink,
            out: &mut $conn.out,
            frame_max: $conn.n.frame_max,
            redispatch: &mut $conn.redispatch,
            consumer_timeout: $conn.consumer_timeout,
            max_message_size: $conn.max_message_size,
            held: &mut $conn.held,
        }
    };
}

/// What a connection watches besides its socket, its inbox and its registry entry's
/// `signal` (operator close, vhost deleted, shutdown, alarms changed).
struct Signals {
    /// Completed disk flush rounds (publisher confirms of persistent messages).
    durable: Option<watch::Receiver<u64>>,
    /// The resource alarms, read when `signal::ALARM` is raised.
    alarm: Option<watch::Receiver<Alarms>>,
}

struct Connection {
    id: u64,
    /// Its entry in the broker's list of connections (management API, metrics).
    registered: Registered,
    peer: SocketAddr,
    n: Negotiated,
    /// Boxed: a map of a few channels reserves room for several, and a channel is large.
    channels: crate::FastMap<u16, Box<Channel>>,
    /// Given to queues as each consumer's sink.
    sink: UnboundedSender<Outbound>,
    out: Output,
    phase: Phase,
    redispatch: Vec<Arc<Queue>>,
    /// A reply waiting for its durable change to be recorded: input stops until it is sent,
    /// so nothing the client does next can overtake it.
    held: Option<HeldReply>,
    /// Channels the client closed, with the input batch that carried the close. Frames that
    /// came with the close (sent before the client could see our close-ok) are ignored, as
    /// RabbitMQ ignores what reaches a channel that is still shutting down; a method in a
    /// later batch is 504 `expected 'channel.open'`, as on RabbitMQ once the channel is gone.
    /// Content frames (the rest of a publish sent with the close) are ignored until the
    /// next method on that channel.
    recently_closed: Vec<(u16, u64)>,
    /// Input batches processed so far.
    batches: u64,
    /// This connection has published (the resource alarms block publishers only).
    published: bool,
    /// Reads are paused by a resource alarm.
    blocked: bool,
    /// The resource alarms as last read.
    alarms: Alarms,
    /// Default consumer acknowledgement timeout, ms (0: none).
    consumer_timeout: u64,
    /// Largest message body accepted.
    max_message_size: u64,

    close_reason: String,
    /// Everything the connection held has been given back (see `release_all`).
    released: bool,
    /// Wait (briefly) for the client to close the socket first: it sent connection.close, or
    /// we could not read its close-ok.
    linger: bool,
}

impl Connection {
    async fn run<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
        &mut self,
        reader: &mut R,
        writer: &mut W,
        buffered: bool,
        mut inbuf: BytesMut,
        mut inbox: UnboundedReceiver<Outbound>,
        signals: &mut Signals,
    ) {
        let hb = Duration::from_secs(self.n.heartbeat as u64);
        let tick_every = if hb.is_zero() {
            Duration::from_secs(3600)
        } else {
            hb / 2
        };
        let mut ticker = tokio::time::interval_at(Instant::now() + tick_every, tick_every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_read = Instant::now();
        let mut wrote_since_tick = false;
        // Written into a buffering writer (TLS) and not yet flushed to the socket.
        let mut unflushed = false;
        let mut ack_timer = AckTimer::default();
        let mut eof = false;
        while self.phase != Phase::Done {
            if self.phase == Phase::Closing && !self.released {
                // Nothing more will be delivered on this connection: give everything back now,
                // not after the close handshake.
                self.release_all(&mut inbox);
            }
            self.apply_alarm();
            let durable = &mut signals.durable;
            // A blocked connection is still read once it is closing: its close-ok must not
            // wait for the alarm to clear (shutdown would stall).
            let paused = self.blocked && self.phase == Phase::Open;
            let can_read =
                !eof && !paused && self.held.is_none() && self.out.len() < OUTPUT_READ_STOP;
            let can_take = self.out.len() < OUTPUT_HIGH_WATER && self.phase == Phase::Open;
            let awaits_disk = durable.is_some() && self.channels.values().any(|c| c.awaits_disk());
            let ack_deadline = self
                .channels
                .values()
                .filter_map(|c| c.next_ack_deadline())
                .min();
            if let Some(deadline) = ack_deadline {
                ack_timer.arm(deadline);
            }
            tokio::select! {
                r = reader.read_buf(&mut inbuf), if can_read => match r {
                    Ok(0) | Err(_) => {
                        eof = true;
                        self.close_reason = "client closed the socket".into();
                        self.phase = Phase::Done;
                    }
                    Ok(n) => {
                        let info = &self.registered.info;
                        info.recv_oct.add(n as u64);
                        info.recv_cnt.add(1);
                        last_read = Instant::now();
                        self.process_input(&mut inbuf);
                    }
                },
                ev = inbox.recv(), if can_take => {
                    if let Some(ev) = ev {
                        self.handle_outbound(ev);
                        for _ in 0..INBOX_BATCH {
                            // Large deliveries fill the output fast: stop at the high-water
                            // mark so it stays small enough to be written from cache.
                            if self.out.len() >= OUTPUT_HIGH_WATER {
                                break;
                            }
                            match inbox.try_recv() {
                                Ok(ev) => self.handle_outbound(ev),
                                Err(_) => break,
                            }
                        }
                        self.after_batch();
                    }
                },
                w = push(&self.out, writer), if !self.out.is_empty() || unflushed => match w {
                    Ok(Pushed::Wrote(n)) if n > 0 => {
                        let info = &self.registered.info;
                        info.send_oct.add(n as u64);
                        info.send_cnt.add(1);
                        self.out.advance(n);
                        wrote_since_tick = true;
                        unflushed = buffered;
                    }
                    Ok(Pushed::Flushed) => unflushed = false,
                    _ => {
                        self.close_reason = "socket write failed".into();
                        self.out.clear();
                        self.phase = Phase::Done;
                    }
                },
                _ = next_round(durable), if awaits_disk => self.after_batch(),
                recorded = held_recorded(&mut self.held), if self.held.is_some() => {
                    self.release_held(recorded);
                    // The frames that arrived behind the held method.
                    self.process_input(&mut inbuf);
                }
                _ = ack_timer.fired(), if ack_deadline.is_some() => self.enforce_ack_timeouts(),
                raised = self.registered.info.signal.taken() => {
                    self.on_signals(raised, signals.alarm.as_ref());
                }
                _ = ticker.tick(), if !hb.is_zero() => {
                    // Spec 4.2.7: a peer silent for two intervals is gone.
                    // A blocked connection's client may not send heartbeats (lapin stops all
                    // writes when blocked), so silence then is not a failure.
                    // Nor is a connection whose input waits for a held reply.
                    if self.blocked || self.held.is_some() {
                        last_read = Instant::now();
                    }
                    if last_read.elapsed() > hb * 2 {
                        tracing::warn!(peer = %self.peer, "missed heartbeats from client, timeout: {}s", hb.as_secs());
                        self.close_reason = "missed heartbeats".into();
                        self.out.clear();
                        self.phase = Phase::Done;
                    } else if !wrote_since_tick && self.out.is_empty() {
                        put_heartbeat(&mut self.out);
                    }
                    wrote_since_tick = false;
                },
            }
        }
        self.release_all(&mut inbox);
        // Best effort: flush what is left (a close or close-ok) before dropping the socket.
        if !self.out.is_empty() {
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                self.out.write_all_to(writer).await?;
                writer.flush().await
            })
            .await;
        } else if unflushed {
            let _ = tokio::time::timeout(Duration::from_secs(1), writer.flush()).await;
        }
        // After the client's connection.close, let it close the socket first, like RabbitMQ:
        // closing while its frames are still unread would send a reset, and the client could
        // miss our close-ok. After our own close and its close-ok the socket goes at once
        // (spec 4.2.2: the peer that sent close closes the socket), so clients that wait for
        // EOF are not kept waiting.
        if !eof && self.linger {
            // What arrives is read into the input buffer and thrown away (a buffer on the
            // stack would make every connection's future that much larger).
            let _ = tokio::time::timeout(CLOSE_LINGER, async {
                loop {
                    inbuf.clear();
                    match reader.read_buf(&mut inbuf).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            })
            .await;
        }
        // Bounded: a TLS shutdown writes (close_notify) and a client that stopped reading
        // must not keep this connection's slots.
        let _ = tokio::time::timeout(Duration::from_secs(1), writer.shutdown()).await;
    }

    /// Handles every complete frame in `inbuf`.
    fn process_input(&mut self, inbuf: &mut BytesMut) {
        self.batches += 1;
        let mut consumed = 0;
        while self.phase != Phase::Done && self.held.is_none() {
            let frame = match split_frame(&inbuf[consumed..], self.n.frame_max) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    let skip = frame_end_fault_len(&inbuf[consumed..], self.n.frame_max);
                    self.fail(0, e);
                    if let Some(len) = skip {
                        // Only the end octet was wrong: frames after it can still be read,
                        // the client's close-ok among them.
                        consumed += len;
                        continue;
                    }
                    // The stream can no longer be framed: nothing after this can be read.
                    // Give the client time to read our close before the socket goes.
                    self.phase = Phase::Done;
                    self.linger = true;
                    break;
                }
            };
            consumed += frame.wire_len();
            let (kind, ch, payload) = (frame.kind, frame.channel, frame.payload);
            if kind == FRAME_METHOD && payload.starts_with(&[0, 60, 0, 40]) {
                self.published = true;
            }
            if let Err(e) = self.handle_frame(kind, ch, payload) {
                self.fail(ch, e);
            }
        }
        inbuf.advance(consumed);
        if inbuf.capacity() < READ_BUFFER {
            inbuf.reserve(READ_BUFFER);
        }
        self.after_batch();
    }

    /// Sends the held reply once its change is recorded, or closes with the error if it could
    /// not be.
    fn release_held(&mut self, recorded: AmqpResult<()>) {
        let Some(held) = self.held.take() else {
            return;
        };
        if self.phase != Phase::Open {
            return;
        }
        match recorded {
            Ok(()) => {
                if let Some(reply) = held.reply {
                    put_method(&mut self.out, held.channel, reply);
                }
            }
            Err(e) => self.fail(held.channel, e.with_method(held.method)),
        }
        self.after_batch();
    }

    /// Blocks a publishing connection while a resource alarm is on (RabbitMQ: reads stop and
    /// clients that asked for it get connection.blocked, once, with the alarms on at that
    /// moment), and unblocks it when the last alarm clears.
    /// What other tasks raised: closes (the first that applies wins) and alarm changes.
    fn on_signals(&mut self, raised: u8, alarm: Option<&watch::Receiver<Alarms>>) {
        if raised & signal::ALARM != 0 {
            self.alarms = alarm.map(|a| *a.borrow()).unwrap_or_default();
        }
        if raised & signal::SHUTDOWN != 0 && self.phase == Phase::Open {
            let e = AmqpError::connection_forced(
                "broker forced connection closure with reason 'shutdown'",
            );
            self.fail(0, e);
            self.close_reason = "broker shutdown".into();
        }
        // The vhost's flag, not the name: a vhost of the same name created since is another.
        if raised & signal::VHOST_DELETED != 0
            && self.phase == Phase::Open
            && self.n.vhost.is_deleted()
        {
            // RabbitMQ closes a deleted vhost's connections with 320 and this text.
            let text = format!("vhost '{}' is deleted", self.n.vhost.name);
            self.fail(0, AmqpError::connection_forced(&text));
            self.close_reason = text;
        }
        if raised & signal::OPERATOR_CLOSE != 0 {
            if let Some(reason) = self.registered.info.take_close_request() {
                if self.phase == Phase::Open {
                    // management API: DELETE connections/{name}, the X-Reason header's text.
                    tracing::info!(peer = %self.peer, reason = %reason, "connection closed by an operator");
                    self.fail(0, AmqpError::connection_forced(&reason));
                    self.close_reason = reason;
                }
            }
        }
    }

    /// Blocks the connection's publishers while an alarm is on (connection.blocked), and
    /// unblocks them when none is. Runs at every turn: a connection is blocked only once it
    /// has published.
    fn apply_alarm(&mut self) {
        use crate::protocol::connection::{Blocked, Unblocked};
        let alarms = self.alarms;
        if alarms.any() && self.published && !self.blocked && self.phase == Phase::Open {
            self.blocked = true;
            if self.n.connection_blocked {
                let blocked = Blocked {
                    reason: alarms.reason().into(),
                };
                put_method(
                    &mut self.out,
                    0,
                    AMQPClass::Connection(connection::AMQPMethod::Blocked(blocked)),
                );
            }
        } else if !alarms.any() && self.blocked {
            self.blocked = false;
            if self.n.connection_blocked {
                put_method(
                    &mut self.out,
                    0,
                    AMQPClass::Connection(connection::AMQPMethod::Unblocked(Unblocked {})),
                );
            }
        }
    }

    /// Cancels consumers that held deliveries past the acknowledgement timeout.
    fn enforce_ack_timeouts(&mut self) {
        let now = crate::broker::clock::now_ms();
        for channel in self.channels.values_mut() {
            let mut ctx = channel_ctx!(self);
            channel.enforce_ack_timeouts(&mut ctx, now, self.n.consumer_cancel_notify);
        }
        self.after_batch();
    }

    /// Confirms and re-dispatch once per batch of frames or deliveries.
    fn after_batch(&mut self) {
        for ch in self.channels.values_mut() {
            ch.flush_confirms(&mut self.out);
        }
        for q in self.redispatch.drain(..) {
            let fx = q.dispatch();
            self.n.vhost.carry_out(&q, fx);
        }
    }

    fn handle_frame(&mut self, kind: u8, ch: u16, payload: &[u8]) -> AmqpResult<()> {
        if self.phase == Phase::Closing {
            return self.while_closing(kind, ch, payload);
        }
        match (kind, ch) {
            (FRAME_HEARTBEAT, 0) if payload.is_empty() => Ok(()),
            (FRAME_HEARTBEAT, 0) => Err(AmqpError::frame_error(format!(
                "type 8, all octets = {}: unknown_frame",
                crate::protocol::cold::erlang_printed(payload)
            ))),
            (FRAME_HEARTBEAT, _) => Err(AmqpError::unexpected_frame("type 8, all octets = <<>>")),
            (FRAME_METHOD, 0) => self.connection_method(payload),
            (_, 0) => Err(AmqpError::unexpected_frame(
                "expected method frame, got non method frame instead",
            )),
            _ => self.channel_frame(kind, ch, payload),
        }
    }

    /// Spec 4.2.2: after sending connection.close, discard all but close and close-ok.
    fn while_closing(&mut self, kind: u8, ch: u16, payload: &[u8]) -> AmqpResult<()> {
        if kind != FRAME_METHOD || ch != 0 {
            return Ok(());
        }
        match parse_method(payload) {
            Some(AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))) => {
                self.phase = Phase::Done
            }
            Some(AMQPClass::Connection(connection::AMQPMethod::Close(_))) => {
                put_method(&mut self.out, 0, close_ok());
                self.phase = Phase::Done;
            }
            _ => {}
        }
        Ok(())
    }

    fn connection_method(&mut self, payload: &[u8]) -> AmqpResult<()> {
        match decode_method(payload)? {
            AMQPClass::Connection(connection::AMQPMethod::Close(m)) => {
                self.close_reason = format!("client closed: {} {}", m.reply_code, m.reply_text);
                put_method(&mut self.out, 0, close_ok());
                self.phase = Phase::Done;
                self.linger = true;
                Ok(())
            }
            AMQPClass::Connection(connection::AMQPMethod::CloseOk(_)) => {
                self.phase = Phase::Done;
                Ok(())
            }
            AMQPClass::Connection(
                connection::AMQPMethod::Blocked(_) | connection::AMQPMethod::Unblocked(_),
            ) => Ok(()),
            AMQPClass::Connection(connection::AMQPMethod::UpdateSecret(m)) => {
                // RabbitMQ 3.8+ (clients refresh OAuth 2 tokens this way): the new secret is
                // checked like a login; refused, the connection closes with 530 and
                // RabbitMQ's text.
                let secret = m.new_secret.as_bytes();
                if self
                    .n
                    .grant
                    .access()
                    .login(&self.n.user, secret, true)
                    .is_err()
                {
                    tracing::warn!(peer = %self.peer, user = ?self.n.user, reason = ?m.reason.as_str(), "secret update refused");
                    return Err(AmqpError::not_allowed(
                        "New secret was refused by one of the backends",
                    )
                    .with_method(CONNECTION_UPDATE_SECRET));
                }
                tracing::info!(peer = %self.peer, user = ?self.n.user, reason = ?m.reason.as_str(), "secret updated");
                put_method(
                    &mut self.out,
                    0,
                    AMQPClass::Connection(connection::AMQPMethod::UpdateSecretOk(
                        connection::UpdateSecretOk {},
                    )),
                );
                Ok(())
            }
            other => Err(
                AmqpError::channel_error("unexpected method in connection state running")
                    .with_method((other.get_amqp_class_id(), other.get_amqp_method_id())),
            ),
        }
    }

    fn channel_frame(&mut self, kind: u8, ch: u16, payload: &[u8]) -> AmqpResult<()> {
        let Some(channel) = self.channels.get_mut(&ch) else {
            return self.open_channel(kind, ch, payload);
        };
        if channel.is_closing() {
            // Spec 4.2.2 (channels too): after our channel.close, only close / close-ok count.
            if kind == FRAME_METHOD {
                match parse_method(payload) {
                    Some(AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))) => {
                        self.forget_channel(ch);
                    }
                    Some(AMQPClass::Channel(channel::AMQPMethod::Close(_))) => {
                        // Both sides closed at once: answer theirs as well.
                        put_method(&mut self.out, ch, close_ok_channel());
                        self.forget_channel(ch);
                    }
                    _ => {}
                }
            }
            return Ok(());
        }
        let mut ctx = channel_ctx!(self);
        let signal = match kind {
            FRAME_HEADER => channel.content_header(&mut ctx, payload),
            FRAME_BODY => channel.content_body(&mut ctx, payload),
            _ => match channel.content_expected_error() {
                Some(e) => return Err(e),
                None => channel_method(channel, &mut ctx, payload),
            },
        };
        match signal? {
            Signal::Continue => {}
            Signal::Finished => {
                self.forget_channel(ch);
                // Frames the client sent before our close-ok are ignored, as RabbitMQ does.
                if self.recently_closed.len() >= 64 {
                    self.recently_closed.remove(0);
                }
                self.recently_closed.push((ch, self.batches));
            }
        }
        Ok(())
    }

    /// A frame on a channel that is not open: only channel.open is allowed (else 504).
    fn open_channel(&mut self, kind: u8, ch: u16, payload: &[u8]) -> AmqpResult<()> {
        let closed_in = self
            .recently_closed
            .iter()
            .find(|(c, _)| *c == ch)
            .map(|(_, batch)| *batch);
        if kind != FRAME_METHOD {
            if closed_in.is_some() {
                return Ok(());
            }
            return Err(AmqpError::unexpected_frame(
                "expected method frame, got non method frame instead",
            ));
        }
        let with_close = closed_in == Some(self.batches);
        if !with_close {
            self.recently_closed.retain(|(c, _)| *c != ch);
        }
        let method = decode_method(payload)?;
        if let AMQPClass::Channel(channel::AMQPMethod::Open(_)) = method {
            if with_close {
                // Reopened before our close-ok could have been seen (RabbitMQ: the old
                // channel is still there).
                return Err(AmqpError::channel_error("second 'channel.open' seen")
                    .with_method(CHANNEL_OPEN));
            }
            // RabbitMQ closes the connection with class/method 0/0 here.
            if self.channels.len() >= self.n.channel_max as usize {
                return Err(AmqpError::not_allowed(format!(
                    "number of channels opened ({}) has reached the negotiated channel_max ({})",
                    self.channels.len(),
                    self.n.channel_max
                )));
            }
            self.n
                .usage
                .open_channel()
                .map_err(|e| e.with_method(CHANNEL_OPEN))?;
            let channel = Box::new(Channel::new(ch));
            self.registered.channel_opened(ch, channel.stats.clone());
            self.channels.insert(ch, channel);
            put_method(
                &mut self.out,
                ch,
                AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {})),
            );
            return Ok(());
        }
        if with_close {
            return Ok(());
        }
        Err(AmqpError::channel_error("expected 'channel.open'")
            .with_method((method.get_amqp_class_id(), method.get_amqp_method_id())))
    }

    /// A channel is gone (closed both ways): it no longer counts toward the user's limit.
    fn forget_channel(&mut self, ch: u16) {
        if self.channels.remove(&ch).is_some() {
            self.n.usage.close_channels(1);
            self.registered.channel_closed(ch);
        }
    }

    /// The one place that turns an AMQP error into channel.close or connection.close.
    fn fail(&mut self, ch: u16, e: AmqpError) {
        if e.is_hard() || ch == 0 || !self.channels.contains_key(&ch) {
            tracing::warn!(peer = %self.peer, code = e.code, text = ?e.text, class_id = e.class_id, method_id = e.method_id, "connection error");
            self.close_reason = format!("connection error: {}", e.text);
            put_close(&mut self.out, &e);
            let open = self.channels.len() as u64;
            for (n, mut c) in self.channels.drain() {
                c.release(&self.n.vhost, self.id);
                self.registered.channel_closed(n);
            }
            self.n.usage.close_channels(open);
            self.phase = Phase::Closing;
            return;
        }
        tracing::warn!(peer = %self.peer, channel = ch, code = e.code, text = ?e.text, class_id = e.class_id, method_id = e.method_id, "channel error");
        if let Some(mut c) = self.channels.remove(&ch) {
            c.release(&self.n.vhost, self.id);
            self.registered.channel_closed(ch);
        }
        let close = channel::Close {
            reply_code: e.code,
            reply_text: e.text.as_str().into(),
            class_id: e.class_id,
            method_id: e.method_id,
        };
        put_method(
            &mut self.out,
            ch,
            AMQPClass::Channel(channel::AMQPMethod::Close(close)),
        );
        // Until close-ok arrives, frames on this channel are discarded: a closing placeholder.
        self.channels.insert(ch, Box::new(Channel::closing(ch)));
    }

    fn handle_outbound(&mut self, ev: Outbound) {
        match ev {
            Outbound::Deliver(d) => {
                let Some(channel) = self.channels.get_mut(&d.channel) else {
                    give_back(&self.n.vhost, d);
                    return;
                };
                let mut ctx = channel_ctx!(self);
                if let Err(d) = channel.deliver(&mut ctx, d) {
                    give_back(&self.n.vhost, d);
                }
            }
            Outbound::Cancelled {
                channel,
                consumer_tag,
            } => {
                if let Some(c) = self.channels.get_mut(&channel) {
                    let mut ctx = channel_ctx!(self);
                    c.consumer_cancelled(&mut ctx, &consumer_tag, self.n.consumer_cancel_notify);
                }
            }
        }
    }

    /// Returns everything this connection held, whatever stage its deliveries were at:
    /// written or encoded but unacked ones (the channels' unacked lists) and those still
    /// waiting in the inbox go back marked redelivered, as RabbitMQ requeues every delivery
    /// that was not acked. Consumers are removed first, so no queue sends
    /// anything more; then the inbox is closed and drained. Exclusive queues are deleted.
    fn release_all(&mut self, inbox: &mut UnboundedReceiver<Outbound>) {
        if self.released {
            return;
        }
        self.released = true;
        for (_, mut c) in self.channels.drain() {
            c.release(&self.n.vhost, self.id);
        }
        inbox.close();
        while let Ok(ev) = inbox.try_recv() {
            if let Outbound::Deliver(d) = ev {
                give_back(&self.n.vhost, d);
            }
        }
        self.n.vhost.connection_closed(self.id);
    }
}

/// The timer of the consumer acknowledgement timeout, made when first needed and kept.
/// A deadline that moves later leaves it armed for the earlier time: it fires, nothing is
/// late, and it is armed again. So a busy manual-ack consumer, whose earliest deadline moves
/// with every ack, does not register a timer with the runtime at every turn of the loop.
#[derive(Default)]
struct AckTimer {
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The deadline it is armed for (broker clock, ms); None once it fired.
    armed_for: Option<u64>,
}

impl AckTimer {
    /// Makes sure it fires at `deadline` or before.
    fn arm(&mut self, deadline: u64) {
        if self.armed_for.is_some_and(|armed| armed <= deadline) {
            return;
        }
        let wait = deadline.saturating_sub(crate::broker::clock::now_ms());
        let at = Instant::now() + Duration::from_millis(wait);
        match &mut self.sleep {
            Some(sleep) => sleep.as_mut().reset(at),
            None => self.sleep = Some(Box::pin(tokio::time::sleep_until(at))),
        }
        self.armed_for = Some(deadline);
    }

    /// Completes when the armed time comes (never when it was not armed).
    async fn fired(&mut self) {
        match &mut self.sleep {
            Some(sleep) if self.armed_for.is_some() => {
                sleep.as_mut().await;
                self.armed_for = None;
            }
            _ => std::future::pending().await,
        }
    }
}

/// Waits for the held reply's recording (never called without one).
async fn held_recorded(held: &mut Option<HeldReply>) -> AmqpResult<()> {
    match held {
        Some(h) => h.recording.finished().await,
        None => std::future::pending().await,
    }
}

/// Waits for the next completed flush round.
async fn next_round(durable: &mut Option<watch::Receiver<u64>>) -> u64 {
    match durable {
        Some(rx) => {
            if rx.changed().await.is_err() {
                // The flusher is gone (shutdown): nothing will become durable any more.
                std::future::pending::<()>().await;
            }
            *rx.borrow_and_update()
        }
        None => std::future::pending().await,
    }
}

/// A delivery whose consumer is gone before it was written goes back to its queue.
fn give_back(vhost: &crate::broker::vhost::VHost, d: Delivery) {
    let queue = d.queue.clone();
    let no_ack = d.no_ack;
    let fx = queue.return_unsent(d.into_messages(), no_ack);
    vhost.carry_out(&queue, fx);
}

/// Hot-path methods are decoded by hand; the rest through amq-protocol.
fn channel_method(channel: &mut Channel, ctx: &mut Ctx<'_>, payload: &[u8]) -> AmqpResult<Signal> {
    match parse_fast_method(payload) {
        Some(Ok(FastMethod::Publish(p))) => channel
            .start_publish(&p)
            .map_err(|e| e.with_method(BASIC_PUBLISH)),
        Some(Ok(FastMethod::Ack {
            delivery_tag,
            multiple,
        })) => channel
            .settle(ctx, delivery_tag, multiple, None)
            .map_err(|e| e.with_method(BASIC_ACK)),
        Some(Ok(FastMethod::Reject {
            delivery_tag,
            requeue,
        })) => channel
            .settle(ctx, delivery_tag, false, Some(requeue))
            .map_err(|e| e.with_method(BASIC_REJECT)),
        Some(Ok(FastMethod::Nack {
            delivery_tag,
            multiple,
            requeue,
        })) => channel
            .settle(ctx, delivery_tag, multiple, Some(requeue))
            .map_err(|e| e.with_method(BASIC_NACK)),
        Some(Err(_)) => Err(cannot_decode(payload)),
        None => {
            let ids = method_ids(payload).unwrap_or((0, 0));
            if ids == BASIC_QOS {
                // basic.qos: amq-protocol drops prefetch_size, so check it on the raw bytes.
                let size = payload
                    .get(4..8)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                if let Some(size) = size.filter(|s| *s != 0) {
                    return Err(
                        AmqpError::not_implemented(format!("prefetch_size!=0 ({size})"))
                            .with_method(BASIC_QOS),
                    );
                }
            }
            channel.handle_method(ctx, decode_method(payload)?)
        }
    }
}

/// Parses a cold-path method with RabbitMQ's errors: too short to name a method is 501
/// unknown_frame, unknown ids are 503 "unimplemented method", bad arguments 501 "cannot decode".
fn decode_method(payload: &[u8]) -> AmqpResult<AMQPClass> {
    let Some((class_id, method_id)) = method_ids(payload) else {
        return Err(AmqpError::frame_error(format!(
            "type 1, all octets = {}: unknown_frame",
            erlang_binary(payload)
        )));
    };
    if let Some(m) = parse_method(payload) {
        return Ok(m);
    }
    if !is_known_method(class_id, method_id) {
        return Err(
            AmqpError::command_invalid("unimplemented method").with_method((class_id, method_id))
        );
    }
    // RabbitMQ checks every shortstr of a method without content for UTF-8 and answers a
    // bad one with this text, naming no method. The arguments failed to decode for that
    // cause when they decode with their non-ASCII bytes made ASCII (same lengths); other
    // damage (trailing garbage, bad lengths) is "cannot decode", as on RabbitMQ.
    if std::str::from_utf8(payload.get(4..).unwrap_or(&[])).is_err() {
        let ascii: Vec<u8> = payload
            .iter()
            .enumerate()
            .map(|(i, b)| if i >= 4 && *b >= 0x80 { b'?' } else { *b })
            .collect();
        if parse_method(&ascii).is_some() {
            return Err(AmqpError::frame_error("Malformed UTF-8 in shortstr"));
        }
    }
    Err(cannot_decode(payload))
}

/// RabbitMQ: 501 FRAME_ERROR "cannot decode <<args>>" for malformed method arguments.
fn cannot_decode(payload: &[u8]) -> AmqpError {
    let (class_id, method_id) = method_ids(payload).unwrap_or((0, 0));
    AmqpError::frame_error(format!(
        "cannot decode {}",
        erlang_binary(payload.get(4..).unwrap_or(&[]))
    ))
    .with_method((class_id, method_id))
}

fn close_ok_channel() -> AMQPClass {
    AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {}))
}

fn close_ok() -> AMQPClass {
    AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {}))
}

/// connection.close carrying an error.
pub fn put_close(out: &mut BytesMut, e: &AmqpError) {
    let close = connection::Close {
        reply_code: e.code,
        reply_text: e.text.as_str().into(),
        class_id: e.class_id,
        method_id: e.method_id,
    };
    put_method(
        out,
        0,
        AMQPClass::Connection(connection::AMQPMethod::Close(close)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{basic, queue};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    /// The client side of an in-memory connection: hand-built frames out, methods in.
    struct Client {
        io: DuplexStream,
        inbuf: BytesMut,
    }

    impl Client {
        async fn send(&mut self, channel: u16, m: AMQPClass) {
            let mut out = BytesMut::new();
            put_method(&mut out, channel, m);
            self.io.write_all(&out).await.unwrap();
        }

        /// The next method; None if nothing arrives within a second (the test's verdict, not
        /// a synchronisation: a working broker answers in microseconds).
        async fn method(&mut self) -> Option<AMQPClass> {
            loop {
                if let Some(f) = split_frame(&self.inbuf, 0).unwrap() {
                    let (len, kind) = (f.wire_len(), f.kind);
                    let m = (kind == FRAME_METHOD).then(|| parse_method(f.payload).unwrap());
                    self.inbuf.advance(len);
                    match m {
                        Some(m) => return Some(m),
                        None => continue,
                    }
                }
                let read = self.io.read_buf(&mut self.inbuf);
                match tokio::time::timeout(Duration::from_secs(1), read).await {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return None,
                }
            }
        }
    }

    /// A TLS writer keeps records the socket did not take until it is flushed; the connection
    /// must flush it once its output is written, or a reply can sit unsent. A BufWriter that
    /// only sends on flush (or when full) stands in for it here.
    #[tokio::test]
    async fn a_buffering_writer_is_flushed_after_every_reply() {
        let dir = std::env::temp_dir().join(format!("warren-unit-flush-{}", std::process::id()));
        let config = Arc::new(Config {
            data_dir: dir.clone(),
            ..Config::default()
        });
        let broker = Broker::open(
            dir.clone(),
            crate::store::SyncPolicy::Write,
            &config.access_defaults(),
        )
        .unwrap();
        let (client_end, server_end) = tokio::io::duplex(1 << 16);
        let (reader, writer) = tokio::io::split(server_end);
        let socket = Socket {
            reader,
            writer: tokio::io::BufWriter::with_capacity(1 << 20, writer),
            buffered: true,
        };
        let slots = Slots {
            open: Arc::new(tokio::sync::Semaphore::new(8)),
            handshakes: Arc::new(tokio::sync::Semaphore::new(8)),
        };
        let (_stop_tx, stop) = watch::channel(false);
        let peer = Peer {
            addr: "127.0.0.1:1".parse().unwrap(),
            local: "127.0.0.1:5672".parse().unwrap(),
            tls: None,
        };
        tokio::spawn(serve(
            socket,
            peer,
            Instant::now(),
            None,
            config,
            broker,
            slots,
            stop,
        ));
        let mut c = Client {
            io: client_end,
            inbuf: BytesMut::new(),
        };
        c.io.write_all(b"AMQP\x00\x00\x09\x01").await.unwrap();
        assert!(c.method().await.is_some(), "connection.start");
        c.send(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: Default::default(),
                mechanism: "PLAIN".into(),
                response: b"\0guest\0guest".to_vec().into(),
                locale: "en_US".into(),
            })),
        )
        .await;
        assert!(c.method().await.is_some(), "connection.tune");
        c.send(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: 16,
                frame_max: 131072,
                heartbeat: 0,
            })),
        )
        .await;
        c.send(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                virtual_host: "/".into(),
            })),
        )
        .await;
        assert!(c.method().await.is_some(), "connection.open-ok");
        // From here on replies come from the connection's loop.
        c.send(
            1,
            AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        )
        .await;
        assert!(
            matches!(
                c.method().await,
                Some(AMQPClass::Channel(channel::AMQPMethod::OpenOk(_)))
            ),
            "channel.open-ok stayed in the writer's buffer"
        );
        c.send(
            1,
            AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
                queue: "flushed".into(),
                passive: false,
                durable: false,
                exclusive: false,
                auto_delete: false,
                nowait: false,
                arguments: Default::default(),
            })),
        )
        .await;
        assert!(matches!(
            c.method().await,
            Some(AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_)))
        ));
        c.send(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get {
                queue: "flushed".into(),
                no_ack: true,
            })),
        )
        .await;
        assert!(matches!(
            c.method().await,
            Some(AMQPClass::Basic(basic::AMQPMethod::GetEmpty(_)))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

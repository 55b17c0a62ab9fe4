//! warren-bench: a load generator that speaks AMQP 0-9-1 through Warren's own codec, pipelined,
//! so the client is not the bottleneck (a general-purpose client spends ~3 µs of CPU per
//! message). Options follow RabbitMQ PerfTest's. `--sink` measures the tool's own ceiling
//! against a socket that discards everything.
//!
//! ```text
//! warren-bench --uri 127.0.0.1:5672 --producers 1 --consumers 1 --size 16 --time 10
//! ```

use bytes::{Buf, BufMut, BytesMut};
use clap::Parser;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren::protocol::cold::parse_method;
use warren::protocol::encode::put_method;
use warren::protocol::frame::{split_frame, FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_METHOD};
use warren::protocol::{
    basic, channel, confirm, connection, exchange, queue, AMQPClass, AMQPValue, FieldTable,
};

#[derive(Debug, Parser, Clone)]
#[command(about = "AMQP 0-9-1 load generator built on Warren's codec")]
struct Args {
    /// Broker address host:port.
    #[arg(long, default_value = "127.0.0.1:5672")]
    uri: String,
    #[arg(long, default_value_t = 1)]
    producers: usize,
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    /// Message body size in bytes (at least 8: the send timestamp).
    #[arg(long, default_value_t = 16)]
    size: usize,
    /// Run time in seconds.
    #[arg(long, default_value_t = 10)]
    time: u64,
    /// Queue name (declared non-durable, auto-delete unless --durable).
    #[arg(long, default_value = "warren-bench")]
    queue: String,
    /// Consumers ack automatically (no-ack).
    #[arg(long)]
    autoack: bool,
    /// With manual acks, ack every N deliveries with multiple=true.
    #[arg(long, default_value_t = 1)]
    multi_ack_every: u64,
    /// Consumer prefetch (0: unlimited).
    #[arg(long, default_value_t = 0)]
    qos: u16,
    /// Publisher confirms with at most N outstanding (0: no confirms).
    #[arg(long, default_value_t = 0)]
    confirm: u64,
    /// Persistent messages into a durable queue.
    #[arg(long)]
    persistent: bool,
    /// Total publish rate limit, messages per second (0: unlimited).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Measure the tool itself against a local socket that discards everything.
    #[arg(long)]
    sink: bool,
    /// Number of queues (`<queue>-0` … `<queue>-N-1`); producer and consumer i use queue i % N.
    #[arg(long, default_value_t = 1)]
    queues: usize,
    /// Only open this many idle connections (one channel each) and hold them for --time.
    #[arg(long, default_value_t = 0)]
    idle: usize,
    /// Publish to this exchange (declared with --exchange-type) instead of the default exchange;
    /// every queue is bound to it with --routing-key.
    #[arg(long, default_value = "")]
    exchange: String,
    /// Type of --exchange: direct, fanout, topic or headers.
    #[arg(long, default_value = "direct")]
    exchange_type: String,
    /// Routing key of publishes (and binding key of the queues) when --exchange is set.
    #[arg(long, default_value = "bench")]
    routing_key: String,
    /// Stop after this many messages are published (in total) and all their deliveries are
    /// received, or when --time runs out (0: run for --time). With --producers 0 the consumers
    /// stop after receiving this many (draining an existing backlog).
    #[arg(long, default_value_t = 0)]
    count: u64,
    /// Delete the queues (and --exchange) at the end.
    #[arg(long)]
    cleanup: bool,
    /// Only time bindings: declare this many queues, bind each to --exchange (a topic exchange
    /// by default) with its own key `<routing-key>.<i>.#`, unbind them all, delete them, and
    /// print how long each step took. Methods are pipelined in windows of 1,000.
    #[arg(long, default_value_t = 0)]
    bindings: usize,
    /// Spread the queues over this many vhosts, `<vhost-prefix>-0` … (they must exist, with
    /// guest allowed): queue i and the workers using it are in vhost i % N. 0: vhost `/`.
    #[arg(long, default_value_t = 0)]
    vhosts: usize,
    /// Name prefix of --vhosts.
    #[arg(long, default_value = "bench")]
    vhost_prefix: String,
    /// An argument of --exchange's exchange.declare, NAME=VALUE (repeatable). VALUE is sent as
    /// a signedint if it is an integer that fits 32 bits (a long if it needs 64), as a boolean
    /// if it is true or false, and as a longstr otherwise: `--exchange-arg x-cache-size=100000`.
    #[arg(long = "exchange-arg", value_name = "NAME=VALUE")]
    exchange_args: Vec<String>,
    /// Bind each queue to --exchange with this JMS selector, compiled to the text of an Erlang
    /// term, for an x-jms-topic exchange: the binding arguments are `rjms_erlang_selector` =
    /// TERM and `rjms_version` = "3.4.0", as the RabbitMQ JMS client sends them. colour = 'red'
    /// is `{'=',{'ident',<<"colour">>},<<"red">>}.`
    #[arg(long, value_name = "TERM")]
    selector: Option<String>,
    /// Also bind --exchange this many times to one extra queue, `<queue>-extra`, that nobody
    /// consumes: binding i has routing key `<routing-key>-extra-<i>` and the selector
    /// --extra-selector, so the exchange evaluates N more selectors per message while only the
    /// real queues receive. The queue is exclusive to a connection held for the run: it goes
    /// when the run ends.
    #[arg(long, default_value_t = 0, value_name = "N")]
    extra_selector_bindings: usize,
    /// The selector of the --extra-selector-bindings, `<i>` replaced by the binding's number
    /// (0 to N-1); it should match no message.
    #[arg(
        long,
        value_name = "TERM",
        default_value = "{'=',{'ident',<<\"colour\">>},<<\"blue-<i>\">>}."
    )]
    extra_selector: String,
    /// A longstr header on every message, NAME=VALUE (repeatable): `--header colour=red`.
    #[arg(long = "header", value_name = "NAME=VALUE")]
    headers: Vec<String>,
    /// Give every message the longstr header `x-deduplication-header` with a value of its own:
    /// 32 hex digits (the producer's start time, its number, the message's number), written
    /// into the prebuilt frame, for an x-message-deduplication exchange.
    #[arg(long)]
    dedup_header: bool,
}

/// The header --dedup-header sets.
const DEDUP_HEADER: &str = "x-deduplication-header";

/// NAME=VALUE of --exchange-arg and --header.
fn name_value<'a>(option: &str, s: &'a str) -> Result<(&'a str, &'a str), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() && name.len() <= 255 => Ok((name, value)),
        _ => Err(format!(
            "{option} {s:?}: expected NAME=VALUE (NAME 1 to 255 bytes)"
        )),
    }
}

/// The binding arguments the RabbitMQ JMS client sends for a selector.
fn selector_arguments(term: &str) -> FieldTable {
    let mut t = FieldTable::default();
    t.insert(
        "rjms_erlang_selector".into(),
        AMQPValue::LongString(term.into()),
    );
    t.insert("rjms_version".into(), AMQPValue::LongString("3.4.0".into()));
    t
}

/// Writes `n` as hex digits, the last at the end of `to` (as many low digits as fit).
fn put_hex(to: &mut [u8], mut n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in to.iter_mut().rev() {
        *b = DIGITS[(n & 15) as usize];
        n >>= 4;
    }
}

impl Args {
    /// Exchange and routing key of producer `i`'s publishes.
    fn publish_target(&self, i: usize) -> (String, String) {
        if self.exchange.is_empty() {
            (String::new(), self.queue_for(i))
        } else {
            (self.exchange.clone(), self.routing_key.clone())
        }
    }

    /// Deliveries each published message makes: one per queue that has a consumer when an
    /// exchange binds them all, one otherwise.
    fn copies_per_message(&self) -> u64 {
        if self.exchange.is_empty() {
            1
        } else {
            self.queues.max(1).min(self.consumers) as u64
        }
    }

    /// Messages producer `i` publishes with --count (0: unlimited).
    fn count_for(&self, i: usize) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let n = self.producers.max(1) as u64;
        self.count / n + u64::from((i as u64) < self.count % n)
    }

    /// The vhost of queue `i` (and of the workers that use it).
    fn vhost_for(&self, i: usize) -> String {
        if self.vhosts == 0 {
            "/".to_string()
        } else {
            format!(
                "{}-{}",
                self.vhost_prefix,
                (i % self.queues.max(1)) % self.vhosts
            )
        }
    }

    /// --exchange-arg as a field table.
    fn exchange_arguments(&self) -> Result<FieldTable, String> {
        let mut t = FieldTable::default();
        for arg in &self.exchange_args {
            let (name, value) = name_value("--exchange-arg", arg)?;
            let value = if let Ok(n) = value.parse::<i32>() {
                AMQPValue::LongInt(n)
            } else if let Ok(n) = value.parse::<i64>() {
                AMQPValue::LongLongInt(n)
            } else if let Ok(b) = value.parse::<bool>() {
                AMQPValue::Boolean(b)
            } else {
                AMQPValue::LongString(value.into())
            };
            t.insert(name.into(), value);
        }
        Ok(t)
    }

    /// The arguments of each queue's binding to --exchange.
    fn binding_arguments(&self) -> FieldTable {
        self.selector
            .as_deref()
            .map_or_else(FieldTable::default, selector_arguments)
    }

    /// The encoded headers table of producer `i`'s publishes (with its length; empty without
    /// --header and --dedup-header), and where in it the 16 hex digits of the message number
    /// go (with --dedup-header).
    fn headers_table(&self, i: usize) -> Result<(Vec<u8>, Option<usize>), String> {
        let mut t = vec![0u8; 4];
        let put = |t: &mut Vec<u8>, name: &str, value: &[u8]| {
            t.push(name.len() as u8);
            t.extend_from_slice(name.as_bytes());
            t.push(b'S');
            t.extend_from_slice(&(value.len() as u32).to_be_bytes());
            t.extend_from_slice(value);
        };
        for h in &self.headers {
            let (name, value) = name_value("--header", h)?;
            put(&mut t, name, value.as_bytes());
        }
        let mut number_at = None;
        if self.dedup_header {
            // The producer's start time (low 32 bits of its nanoseconds) and number, then the
            // message's number: unique within a run and, almost surely, across runs.
            let mut value = [0u8; 32];
            put_hex(&mut value[..8], now_nanos());
            put_hex(&mut value[8..16], i as u64);
            put(&mut t, DEDUP_HEADER, &value);
            number_at = Some(t.len() - 16);
        }
        if t.len() == 4 {
            return Ok((Vec::new(), None));
        }
        let len = (t.len() - 4) as u32;
        t[..4].copy_from_slice(&len.to_be_bytes());
        Ok((t, number_at))
    }

    /// The queue worker `i` uses.
    fn queue_for(&self, i: usize) -> String {
        if self.queues <= 1 {
            self.queue.clone()
        } else {
            format!("{}-{}", self.queue, i % self.queues)
        }
    }
}

#[derive(Default)]
struct Stats {
    sent: AtomicU64,
    confirmed: AtomicU64,
    received: AtomicU64,
    latencies_us: Mutex<Vec<u32>>,
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

type Io = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A connection past the handshake, with one open channel.
struct Client {
    stream: TcpStream,
    buf: BytesMut,
    frame_max: u32,
}

impl Client {
    async fn connect(addr: &str) -> Result<Client, Box<dyn std::error::Error + Send + Sync>> {
        Self::connect_to(addr, "/").await
    }

    async fn connect_to(
        addr: &str,
        vhost: &str,
    ) -> Result<Client, Box<dyn std::error::Error + Send + Sync>> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut c = Client {
            stream,
            buf: BytesMut::with_capacity(1 << 20),
            frame_max: 131072,
        };
        c.stream.write_all(b"AMQP\x00\x00\x09\x01").await?;
        c.expect_method().await?; // start
        c.send(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: Default::default(),
                mechanism: "PLAIN".into(),
                response: b"\0guest\0guest".to_vec().into(),
                locale: "en_US".into(),
            })),
        )
        .await?;
        if let AMQPClass::Connection(connection::AMQPMethod::Tune(t)) = c.expect_method().await? {
            c.frame_max = t.frame_max;
            c.send(
                0,
                AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                    channel_max: t.channel_max,
                    frame_max: t.frame_max,
                    heartbeat: 0,
                })),
            )
            .await?;
        }
        c.send(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                virtual_host: vhost.into(),
            })),
        )
        .await?;
        c.expect_method().await?; // open-ok
        c.send(
            1,
            AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        )
        .await?;
        c.expect_method().await?; // channel open-ok
        Ok(c)
    }

    /// Sends a method on channel 1 and waits for its reply.
    async fn call(&mut self, m: AMQPClass) -> Io {
        self.send(1, m).await?;
        self.expect_method().await?;
        Ok(())
    }

    async fn send(&mut self, ch: u16, m: AMQPClass) -> Io {
        let mut out = BytesMut::new();
        put_method(&mut out, ch, m);
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// Reads until a method frame arrives and returns it (content frames are skipped).
    async fn expect_method(
        &mut self,
    ) -> Result<AMQPClass, Box<dyn std::error::Error + Send + Sync>> {
        loop {
            if let Some(f) = split_frame(&self.buf, 0)? {
                let (kind, len) = (f.kind, f.wire_len());
                let m = if kind == FRAME_METHOD {
                    parse_method(f.payload)
                } else {
                    None
                };
                self.buf.advance(len);
                if let Some(m) = m {
                    match &m {
                        AMQPClass::Connection(connection::AMQPMethod::Close(c)) => {
                            return Err(format!(
                                "connection closed by the broker: {}",
                                c.reply_text
                            )
                            .into())
                        }
                        AMQPClass::Channel(channel::AMQPMethod::Close(c)) => {
                            return Err(
                                format!("channel closed by the broker: {}", c.reply_text).into()
                            )
                        }
                        _ => {}
                    }
                    return Ok(m);
                }
                continue;
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err("connection closed".into());
            }
        }
    }
}

/// Where a producer publishes.
struct Target<'a> {
    exchange: &'a str,
    routing_key: &'a str,
    persistent: bool,
    frame_max: u32,
    /// The encoded headers table of every message (with its length), or empty.
    headers: &'a [u8],
    /// Where in `headers` the message's number goes, as 16 hex digits (--dedup-header).
    number_at: Option<usize>,
}

/// Appends one publish (method, header, body frames split at frame_max) to `out`; `number` is
/// the message's number within its producer (for --dedup-header).
fn put_publish(out: &mut BytesMut, to: &Target<'_>, body: &[u8], number: u64) {
    let persistent = to.persistent;
    let start = out.len();
    out.put_u8(FRAME_METHOD);
    out.put_u16(1);
    out.put_u32(0);
    out.put_slice(&[0, 60, 0, 40, 0, 0]);
    out.put_u8(to.exchange.len() as u8);
    out.put_slice(to.exchange.as_bytes());
    out.put_u8(to.routing_key.len() as u8);
    out.put_slice(to.routing_key.as_bytes());
    out.put_u8(0);
    let size = (out.len() - start - 7) as u32;
    out[start + 3..start + 7].copy_from_slice(&size.to_be_bytes());
    out.put_u8(FRAME_END);
    // Content header: class 60, weight 0, body size, flags, then headers (if any) and
    // delivery-mode (only if persistent).
    out.put_u8(FRAME_HEADER);
    out.put_u16(1);
    out.put_u32(if persistent { 15 } else { 14 } + to.headers.len() as u32);
    out.put_slice(&[0, 60, 0, 0]);
    out.put_u64(body.len() as u64);
    if to.headers.is_empty() {
        if persistent {
            out.put_slice(&[0x10, 0x00, 2]);
        } else {
            out.put_slice(&[0, 0]);
        }
    } else {
        out.put_slice(&[if persistent { 0x30 } else { 0x20 }, 0x00]);
        let at = out.len();
        out.put_slice(to.headers);
        if let Some(n) = to.number_at {
            put_hex(&mut out[at + n..at + n + 16], number);
        }
        if persistent {
            out.put_u8(2);
        }
    }
    out.put_u8(FRAME_END);
    let chunk = (to.frame_max as usize).saturating_sub(8).max(4096);
    for piece in body.chunks(chunk) {
        out.put_u8(FRAME_BODY);
        out.put_u16(1);
        out.put_u32(piece.len() as u32);
        out.put_slice(piece);
        out.put_u8(FRAME_END);
    }
}

async fn producer(
    args: Args,
    index: usize,
    addr: String,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) -> Io {
    let (exchange, routing_key) = args.publish_target(index);
    let limit = args.count_for(index);
    let (headers, number_at) = args.headers_table(index)?;
    let mut c = Client::connect_to(&addr, &args.vhost_for(index)).await?;
    let target = Target {
        exchange: &exchange,
        routing_key: &routing_key,
        persistent: args.persistent,
        frame_max: if c.frame_max == 0 {
            131072
        } else {
            c.frame_max
        },
        headers: &headers,
        number_at,
    };
    if args.confirm > 0 {
        c.send(
            1,
            AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select {
                nowait: false,
            })),
        )
        .await?;
        c.expect_method().await?;
    }
    let (mut reader, mut writer) = c.stream.into_split();
    let outstanding = Arc::new(AtomicU64::new(0));
    let acked = outstanding.clone();
    let confirm_stats = stats.clone();
    // Confirms arrive on the read half: each ack (multiple or not) settles up to its tag.
    let confirms = tokio::spawn(async move {
        let mut buf = c.buf;
        let mut settled = 0u64;
        loop {
            while let Ok(Some(f)) = split_frame(&buf, 0) {
                let len = f.wire_len();
                if f.kind == FRAME_METHOD
                    && f.payload.len() >= 13
                    && f.payload[..4] == [0, 60, 0, 80]
                {
                    let tag = u64::from_be_bytes(f.payload[4..12].try_into().unwrap_or([0; 8]));
                    let multiple = f.payload[12] & 1 != 0;
                    let n = if multiple {
                        tag.saturating_sub(settled)
                    } else {
                        1
                    };
                    settled = settled.max(tag);
                    acked.fetch_sub(n.min(acked.load(Ordering::Relaxed)), Ordering::Relaxed);
                    confirm_stats.confirmed.fetch_add(n, Ordering::Relaxed);
                }
                buf.advance(len);
            }
            match reader.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    let mut body = vec![0u8; args.size.max(8)];
    let mut out = BytesMut::with_capacity(1 << 20);
    // About 1 MiB per write, so large bodies are not sent in 16 MiB bursts.
    let max_batch = ((1u64 << 20) / args.size.max(8) as u64).clamp(1, 256);
    let per_producer_rate = if args.rate > 0 {
        (args.rate / args.producers as u64).max(1)
    } else {
        0
    };
    let started = Instant::now();
    let mut sent = 0u64;
    let mut number = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut batch = max_batch;
        if limit > 0 {
            if sent >= limit {
                break;
            }
            batch = batch.min(limit - sent);
        }
        if args.confirm > 0 {
            let room = args
                .confirm
                .saturating_sub(outstanding.load(Ordering::Relaxed));
            if room == 0 {
                tokio::task::yield_now().await;
                continue;
            }
            batch = batch.min(room);
        }
        if per_producer_rate > 0 {
            let due = (started.elapsed().as_secs_f64() * per_producer_rate as f64) as u64;
            if due <= sent {
                tokio::time::sleep(Duration::from_micros(200)).await;
                continue;
            }
            batch = batch.min(due - sent);
        }
        out.clear();
        for _ in 0..batch {
            body[..8].copy_from_slice(&now_nanos().to_be_bytes());
            put_publish(&mut out, &target, &body, number);
            number += 1;
        }
        if args.confirm > 0 {
            outstanding.fetch_add(batch, Ordering::Relaxed);
        }
        writer.write_all(&out).await?;
        sent += batch;
        stats.sent.fetch_add(batch, Ordering::Relaxed);
    }
    // With --count, wait for the last confirms before the connection goes.
    while limit > 0 && args.confirm > 0 && !stop.load(Ordering::Relaxed) {
        if outstanding.load(Ordering::Relaxed) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    if limit > 0 {
        // Keep the connection (and so the unconfirmed publishes) until the run ends.
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    confirms.abort();
    Ok(())
}

async fn consumer(
    args: Args,
    index: usize,
    addr: String,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) -> Io {
    let queue = args.queue_for(index);
    let mut c = Client::connect_to(&addr, &args.vhost_for(index)).await?;
    if args.qos > 0 {
        c.send(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
                prefetch_count: args.qos,
                global: false,
            })),
        )
        .await?;
        c.expect_method().await?;
    }
    c.send(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
            queue: queue.as_str().into(),
            consumer_tag: "".into(),
            no_local: false,
            no_ack: args.autoack,
            exclusive: false,
            nowait: false,
            arguments: Default::default(),
        })),
    )
    .await?;
    c.expect_method().await?;
    let mut latencies = Vec::with_capacity(1 << 20);
    let mut last_tag = 0u64;
    let mut acked_upto = 0u64;
    let mut out = BytesMut::new();
    let mut expect_body_ts = false;
    while !stop.load(Ordering::Relaxed) {
        let mut received = 0;
        while let Ok(Some(f)) = split_frame(&c.buf, 0) {
            let len = f.wire_len();
            match f.kind {
                FRAME_METHOD if f.payload.starts_with(&[0, 60, 0, 60]) => {
                    // deliver: consumer tag (shortstr), then the delivery tag.
                    let tag_len = f.payload[4] as usize;
                    let at = 5 + tag_len;
                    last_tag =
                        u64::from_be_bytes(f.payload[at..at + 8].try_into().unwrap_or([0; 8]));
                    received += 1;
                    expect_body_ts = true;
                }
                FRAME_BODY if expect_body_ts && f.payload.len() >= 8 => {
                    let sent = u64::from_be_bytes(f.payload[..8].try_into().unwrap_or([0; 8]));
                    latencies.push(
                        (now_nanos().saturating_sub(sent) / 1000).min(u32::MAX as u64) as u32,
                    );
                    expect_body_ts = false;
                }
                _ => {}
            }
            c.buf.advance(len);
        }
        if received > 0 {
            stats.received.fetch_add(received, Ordering::Relaxed);
        }
        if !args.autoack && last_tag >= acked_upto + args.multi_ack_every {
            out.clear();
            out.put_u8(FRAME_METHOD);
            out.put_u16(1);
            out.put_u32(13);
            out.put_slice(&[0, 60, 0, 80]);
            out.put_u64(last_tag);
            out.put_u8(1);
            out.put_u8(FRAME_END);
            c.stream.write_all(&out).await?;
            acked_upto = last_tag;
        }
        tokio::select! {
            r = c.stream.read_buf(&mut c.buf) => if matches!(r, Ok(0) | Err(_)) { break },
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    stats
        .latencies_us
        .lock()
        .map_err(|_| "poisoned")?
        .extend(latencies);
    Ok(())
}

/// A socket that reads and discards everything (for `--sink`).
async fn sink() -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Play just enough of a broker for the handshake, then swallow bytes.
                let mut buf = vec![0u8; 1 << 16];
                let mut out = BytesMut::new();
                let _ = s.read(&mut buf).await;
                put_method(
                    &mut out,
                    0,
                    AMQPClass::Connection(connection::AMQPMethod::Start(connection::Start {
                        version_major: 0,
                        version_minor: 9,
                        server_properties: Default::default(),
                        mechanisms: b"PLAIN".to_vec().into(),
                        locales: b"en_US".to_vec().into(),
                    })),
                );
                let _ = s.write_all(&out).await;
                for reply in [
                    AMQPClass::Connection(connection::AMQPMethod::Tune(connection::Tune {
                        channel_max: 2047,
                        frame_max: 131072,
                        heartbeat: 0,
                    })),
                    AMQPClass::Connection(connection::AMQPMethod::OpenOk(connection::OpenOk {})),
                    AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {})),
                ] {
                    let _ = s.read(&mut buf).await;
                    out.clear();
                    put_method(
                        &mut out,
                        if matches!(reply, AMQPClass::Channel(_)) {
                            1
                        } else {
                            0
                        },
                        reply,
                    );
                    let _ = s.write_all(&out).await;
                }
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// Opens `--idle` connections with one channel each and holds them (RSS per connection).
async fn hold_idle(args: &Args, addr: &str) -> Io {
    let mut held = Vec::with_capacity(args.idle);
    for _ in 0..args.idle {
        held.push(Client::connect(addr).await?);
    }
    println!("holding {} idle connections", held.len());
    tokio::time::sleep(Duration::from_secs(args.time)).await;
    Ok(())
}

/// --bindings: how long declaring, binding, unbinding and deleting N queues take.
async fn time_bindings(args: &Args, addr: &str) -> Io {
    let n = args.bindings;
    let exchange = if args.exchange.is_empty() {
        "warren-bench.bindings".to_string()
    } else {
        args.exchange.clone()
    };
    let kind = if args.exchange.is_empty() {
        "topic"
    } else {
        args.exchange_type.as_str()
    };
    let mut admin = Client::connect(addr).await?;
    admin
        .call(AMQPClass::Exchange(exchange::AMQPMethod::Declare(
            exchange::Declare {
                exchange: exchange.as_str().into(),
                kind: kind.into(),
                passive: false,
                durable: false,
                auto_delete: false,
                internal: false,
                nowait: false,
                arguments: args.exchange_arguments()?,
            },
        )))
        .await?;
    let queue_name = |i: usize| format!("{}-b{i}", args.queue);
    let key = |i: usize| format!("{}.{i}.#", args.routing_key);
    let steps: [(&str, &dyn Fn(usize) -> AMQPClass); 4] = [
        ("declare", &|i| {
            AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
                queue: queue_name(i).as_str().into(),
                passive: false,
                durable: false,
                exclusive: false,
                auto_delete: false,
                nowait: false,
                arguments: Default::default(),
            }))
        }),
        ("bind", &|i| {
            AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
                queue: queue_name(i).as_str().into(),
                exchange: exchange.as_str().into(),
                routing_key: key(i).as_str().into(),
                nowait: false,
                arguments: Default::default(),
            }))
        }),
        ("unbind", &|i| {
            AMQPClass::Queue(queue::AMQPMethod::Unbind(queue::Unbind {
                queue: queue_name(i).as_str().into(),
                exchange: exchange.as_str().into(),
                routing_key: key(i).as_str().into(),
                arguments: Default::default(),
            }))
        }),
        ("delete", &|i| {
            AMQPClass::Queue(queue::AMQPMethod::Delete(queue::Delete {
                queue: queue_name(i).as_str().into(),
                if_unused: false,
                if_empty: false,
                nowait: false,
            }))
        }),
    ];
    const WINDOW: usize = 1000;
    for (what, method) in steps {
        let started = Instant::now();
        let mut at = 0;
        while at < n {
            let end = (at + WINDOW).min(n);
            let mut out = BytesMut::new();
            for i in at..end {
                put_method(&mut out, 1, method(i));
            }
            admin.stream.write_all(&out).await?;
            for _ in at..end {
                admin.expect_method().await?;
            }
            at = end;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{what:>7} {n} queues on a {kind} exchange: {secs:.2} s ({:.0} per second)",
            n as f64 / secs.max(1e-9)
        );
    }
    admin
        .call(AMQPClass::Exchange(exchange::AMQPMethod::Delete(
            exchange::Delete {
                exchange: exchange.as_str().into(),
                if_unused: false,
                nowait: false,
            },
        )))
        .await?;
    Ok(())
}

/// --extra-selector-bindings: declares `<queue>-extra`, exclusive to the connection returned,
/// and binds --exchange to it N times, each with its own routing key and selector. The binds
/// are pipelined in windows of 1,000.
async fn bind_extra_selectors(
    args: &Args,
    addr: &str,
) -> Result<Client, Box<dyn std::error::Error + Send + Sync>> {
    let name = format!("{}-extra", args.queue);
    let mut holder = Client::connect(addr).await?;
    holder
        .call(AMQPClass::Queue(queue::AMQPMethod::Declare(
            queue::Declare {
                queue: name.as_str().into(),
                passive: false,
                durable: false,
                exclusive: true,
                auto_delete: false,
                nowait: false,
                arguments: Default::default(),
            },
        )))
        .await?;
    const WINDOW: usize = 1000;
    let n = args.extra_selector_bindings;
    let mut at = 0;
    while at < n {
        let end = (at + WINDOW).min(n);
        let mut out = BytesMut::new();
        for i in at..end {
            let term = args.extra_selector.replace("<i>", &i.to_string());
            put_method(
                &mut out,
                1,
                AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
                    queue: name.as_str().into(),
                    exchange: args.exchange.as_str().into(),
                    routing_key: format!("{}-extra-{i}", args.routing_key).into(),
                    nowait: false,
                    arguments: selector_arguments(&term),
                })),
            );
        }
        holder.stream.write_all(&out).await?;
        for _ in at..end {
            holder.expect_method().await?;
        }
        at = end;
    }
    Ok(holder)
}

/// Deletes the run's queues and exchange (--cleanup).
async fn cleanup(args: &Args, addr: &str) -> Io {
    // One connection per vhost (queue i is in vhost i % vhosts).
    let mut admins = Vec::new();
    for v in 0..args.vhosts.max(1) {
        admins.push(Client::connect_to(addr, &args.vhost_for(v)).await?);
    }
    for i in 0..args.queues.max(1) {
        let name = args.queue_for(i);
        let admin = &mut admins[i % args.vhosts.max(1)];
        admin
            .send(
                1,
                AMQPClass::Queue(queue::AMQPMethod::Delete(queue::Delete {
                    queue: name.as_str().into(),
                    if_unused: false,
                    if_empty: false,
                    nowait: false,
                })),
            )
            .await?;
        admin.expect_method().await?;
    }
    if !args.exchange.is_empty() {
        let admin = &mut admins[0];
        admin
            .send(
                1,
                AMQPClass::Exchange(exchange::AMQPMethod::Delete(exchange::Delete {
                    exchange: args.exchange.as_str().into(),
                    if_unused: false,
                    nowait: false,
                })),
            )
            .await?;
        admin.expect_method().await?;
    }
    Ok(())
}

/// With --count: everything published, confirmed (with --confirm) and received.
fn count_done(args: &Args, stats: &Stats) -> bool {
    if args.count == 0 {
        return false;
    }
    let sent = stats.sent.load(Ordering::Relaxed);
    let received = stats.received.load(Ordering::Relaxed);
    if args.producers == 0 {
        return received >= args.count;
    }
    let expected = if args.consumers == 0 {
        0
    } else {
        args.count * args.copies_per_message()
    };
    sent >= args.count
        && received >= expected
        && (args.confirm == 0 || stats.confirmed.load(Ordering::Relaxed) >= args.count)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Io {
    let mut args = Args::parse();
    let addr = if args.sink {
        sink().await?
    } else {
        args.uri.clone()
    };
    if args.sink {
        args.consumers = 0;
    }
    if args.idle > 0 {
        return hold_idle(&args, &addr).await;
    }
    if args.bindings > 0 {
        return time_bindings(&args, &addr).await;
    }
    // Malformed NAME=VALUE options fail here, before any connection.
    let exchange_arguments = args.exchange_arguments()?;
    args.headers_table(0)?;
    if args.extra_selector_bindings > 0 && (args.exchange.is_empty() || args.sink) {
        return Err("--extra-selector-bindings needs --exchange".into());
    }
    let queue_count = if args.sink { 0 } else { args.queues.max(1) };
    if !args.sink && !args.exchange.is_empty() {
        let mut admin = Client::connect(&addr).await?;
        admin
            .send(
                1,
                AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
                    exchange: args.exchange.as_str().into(),
                    kind: args.exchange_type.as_str().into(),
                    passive: false,
                    durable: args.persistent,
                    auto_delete: false,
                    internal: false,
                    nowait: false,
                    arguments: exchange_arguments,
                })),
            )
            .await?;
        admin.expect_method().await?;
    }
    if args.vhosts > 0 && !args.exchange.is_empty() {
        return Err("--vhosts works with the default exchange only".into());
    }
    // Held until the workers are done: its exclusive queue carries the extra bindings.
    let extra_holder = if args.extra_selector_bindings > 0 {
        Some(bind_extra_selectors(&args, &addr).await?)
    } else {
        None
    };
    for i in 0..queue_count {
        let name = args.queue_for(i);
        let mut admin = Client::connect_to(&addr, &args.vhost_for(i)).await?;
        // Draining an existing backlog (--producers 0) only checks that the queue is there.
        let passive = args.producers == 0;
        admin
            .call(AMQPClass::Queue(queue::AMQPMethod::Declare(
                queue::Declare {
                    queue: name.as_str().into(),
                    passive,
                    durable: args.persistent,
                    exclusive: false,
                    auto_delete: false,
                    nowait: false,
                    arguments: Default::default(),
                },
            )))
            .await?;
        if !args.exchange.is_empty() {
            // A headers binding without arguments matches every message (x-match all over
            // no headers); the other types match the routing key.
            admin
                .call(AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
                    queue: name.as_str().into(),
                    exchange: args.exchange.as_str().into(),
                    routing_key: args.routing_key.as_str().into(),
                    nowait: false,
                    arguments: args.binding_arguments(),
                })))
                .await?;
        }
        if !passive {
            admin
                .call(AMQPClass::Queue(queue::AMQPMethod::Purge(queue::Purge {
                    queue: name.as_str().into(),
                    nowait: false,
                })))
                .await?;
        }
    }
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..args.consumers {
        tasks.push(tokio::spawn(consumer(
            args.clone(),
            i,
            addr.clone(),
            stats.clone(),
            stop.clone(),
        )));
    }
    for i in 0..args.producers {
        tasks.push(tokio::spawn(producer(
            args.clone(),
            i,
            addr.clone(),
            stats.clone(),
            stop.clone(),
        )));
    }
    let started = Instant::now();
    let mut last = (0u64, 0u64);
    let mut second = 1;
    let deadline = started + Duration::from_secs(args.time);
    let finished = |stats: &Stats| count_done(&args, stats);
    while Instant::now() < deadline && !finished(&stats) {
        let tick = (started + Duration::from_secs(second)).min(deadline);
        while Instant::now() < tick && !finished(&stats) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if Instant::now() >= started + Duration::from_secs(second) {
            let (s, r) = (
                stats.sent.load(Ordering::Relaxed),
                stats.received.load(Ordering::Relaxed),
            );
            eprintln!(
                "time {second}s, sent {} msg/s, received {} msg/s",
                s - last.0,
                r - last.1
            );
            last = (s, r);
            second += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        if let Ok(Err(e)) = t.await {
            eprintln!("worker error: {e}");
        }
    }
    drop(extra_holder);
    if args.cleanup {
        cleanup(&args, &addr).await?;
    }
    let mut lat = std::mem::take(&mut *stats.latencies_us.lock().map_err(|_| "poisoned")?);
    lat.sort_unstable();
    println!(
        "sent {} ({:.0} msg/s), confirmed {}, received {} ({:.0} msg/s), latency ms p50 {:.3} p95 {:.3} p99 {:.3} max {:.3}",
        stats.sent.load(Ordering::Relaxed),
        stats.sent.load(Ordering::Relaxed) as f64 / secs,
        stats.confirmed.load(Ordering::Relaxed),
        stats.received.load(Ordering::Relaxed),
        stats.received.load(Ordering::Relaxed) as f64 / secs,
        percentile(&lat, 0.5),
        percentile(&lat, 0.95),
        percentile(&lat, 0.99),
        lat.last().map_or(0.0, |m| *m as f64 / 1000.0),
    );
    Ok(())
}

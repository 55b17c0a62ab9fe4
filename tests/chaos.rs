//! Chaos: many clients of different kinds work against one Warren while faults are injected,
//! and invariants are checked all along.
//!
//! Clients: publishers with confirms (persistent, to durable queues; transient, to a transient
//! queue; with priorities), transactional publishers, consumers in every prefetch mode (none,
//! per consumer, per channel, no-ack), basic.get, a consumer that dies abruptly (socket reset)
//! after a few deliveries, a publisher that closes its channel mid-flight, and a TTL queue
//! that dead-letters into another.
//!
//! Faults: kill -9 and SIGTERM of the broker (and restart), a disk filled past its limit (a
//! tmpfs, when this machine lets the test mount one), the memory alarm tripped by a backlog
//! that is then purged, clients that vanish.
//!
//! Invariants:
//! - every confirmed persistent message in a durable queue is delivered at least once;
//! - a message delivered again carries redelivered;
//! - a message is never delivered again after its ack was processed (a round trip on its
//!   channel proves that), unless a crash came in between (acks are written behind);
//! - each consumer sees each publisher's messages in publish order, apart from redeliveries;
//! - alarms clear once their cause is gone;
//! - the broker always answers (a probe connection, except while it restarts).
//!
//! `CHAOS_SECONDS` sets the length (30 by default, for the test suite); `.ci/chaos` runs long
//! ones. `CHAOS_SEED` repeats a run's choices. The figures are printed at the end.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps

mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DURABLE: [&str; 3] = ["chaos.d0", "chaos.d1", "chaos.d2"];
const TRANSIENT: &str = "chaos.t0";
const PRIORITY: &str = "chaos.prio";
const TTL: &str = "chaos.ttl";
const DEAD: &str = "chaos.dead";
const MEMORY: &str = "chaos.mem";

/// Queues whose confirmed persistent messages must all be delivered.
fn must_deliver(queue: &str) -> bool {
    DURABLE.contains(&queue) || queue == PRIORITY
}

/// A small xorshift generator: runs repeat from their seed.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A message's identity, carried in its first 12 body bytes.
type Id = (u32, u64);

fn body(publisher: u32, seq: u64, size: usize) -> Vec<u8> {
    let mut b = vec![0u8; size.max(12)];
    b[..4].copy_from_slice(&publisher.to_be_bytes());
    b[4..12].copy_from_slice(&seq.to_be_bytes());
    b
}

fn id_of(data: &[u8]) -> Option<Id> {
    let p = u32::from_be_bytes(data.get(..4)?.try_into().ok()?);
    let s = u64::from_be_bytes(data.get(4..12)?.try_into().ok()?);
    Some((p, s))
}

/// What happened, and what must hold.
#[derive(Default)]
struct Ledger {
    /// Confirmed persistent messages per queue.
    confirmed: HashMap<&'static str, HashSet<Id>>,
    /// Per (queue, id): the first delivery (when, to whom, in which incarnation) and how
    /// many there were.
    delivered: HashMap<(&'static str, Id), FirstDelivery>,
    /// The broker incarnation in which a message's ack was proven processed.
    acked_in: HashMap<(&'static str, Id), u64>,
    /// Per broker incarnation: whether it started after a clean shutdown.
    clean_start: Vec<bool>,
    violations: Vec<String>,
    notes: Vec<String>,
    published: u64,
    confirms: u64,
    nacks: u64,
    deliveries: u64,
    acks: u64,
    gets: u64,
    dead_lettered: u64,
    faults: HashMap<&'static str, u32>,
    /// What each consumer did last, and when (for the report when something is stuck).
    activity: HashMap<u32, (&'static str, Instant)>,
    /// When the run started (for the report's times).
    started: Option<Instant>,
    /// Per confirmed persistent message: the incarnation and the time (ms into the run) of
    /// its confirm, so the report can place what went missing.
    confirmed_when: HashMap<(&'static str, Id), (u64, u64)>,
    /// Faults and restarts, with their time (ms into the run) and incarnation.
    timeline: Vec<(u64, u64, String)>,
}

impl Ledger {
    fn millis(&self) -> u64 {
        self.started.map_or(0, |s| s.elapsed().as_millis() as u64)
    }

    /// Records a confirmed persistent message (confirm or committed transaction).
    fn confirmed(&mut self, queue: &'static str, id: Id, epoch: u64) {
        self.confirmed.entry(queue).or_default().insert(id);
        let at = self.millis();
        self.confirmed_when.insert((queue, id), (epoch, at));
    }

    fn event(&mut self, epoch: u64, what: String) {
        let at = self.millis();
        self.timeline.push((at, epoch, what));
    }

    fn violation(&mut self, v: String) {
        if self.violations.len() < 50 {
            eprintln!("VIOLATION: {v}");
            self.violations.push(v);
        }
    }

    /// Checks a delivery against what came before, and records it. `by` names the consumer
    /// (see `FirstDelivery`).
    fn delivery(&mut self, queue: &'static str, id: Id, redelivered: bool, epoch: u64, by: u32) {
        self.deliveries += 1;
        let key = (queue, id);
        let at = self.millis() as u32;
        let first = *self.delivered.entry(key).or_insert(FirstDelivery {
            count: 0,
            unflagged: 0,
            epoch: epoch as u16,
            at,
            by,
        });
        let n = first.count.saturating_add(1);
        let unflagged = first.unflagged + u16::from(!redelivered);
        if let Some(f) = self.delivered.get_mut(&key) {
            f.count = n;
            f.unflagged = unflagged;
        }
        // Every delivery after the first must be flagged: a message comes unflagged at most
        // once. (Not "the second one seen must be flagged": a connection that is closing
        // writes deliveries it had encoded while the queue already redelivers them, flagged,
        // to another consumer, whose client may see its copy first.) Dead-lettering makes a
        // new copy; a crash between the copy and the removal of the original may make two
        // (RabbitMQ's classic dead-lettering gives no guarantee either).
        if unflagged > 1 && !redelivered && queue != DEAD {
            // How each incarnation since the first delivery started: c = clean, k = crash.
            let starts: String = (first.epoch as usize + 1..=epoch as usize)
                .map(|e| match self.clean_start.get(e) {
                    Some(true) => 'c',
                    _ => 'k',
                })
                .collect();
            let near: Vec<String> = self
                .timeline
                .iter()
                .filter(|(t, _, _)| *t + 10_000 >= u64::from(first.at) && *t <= u64::from(at))
                .filter(|(_, _, what)| !what.starts_with("its log"))
                .map(|(t, e, what)| format!("{t} ms #{e} {what}"))
                .collect();
            self.violation(format!(
                "{queue} {id:?}: delivery {n} is the second without the redelivered flag (first delivery: {} ms, consumer {}, incarnation {}; this one: {at} ms, consumer {by}, incarnation {epoch}; starts since: {starts}; events: {near:?})",
                first.at, first.by, first.epoch
            ));
        }
        if let Some(&acked) = self.acked_in.get(&key) {
            // A crash after the ack may lose it (acks are written behind); a clean restart
            // may not.
            let crash_between = (acked as usize + 1..=epoch as usize)
                .any(|e| !self.clean_start.get(e).copied().unwrap_or(false));
            if acked == epoch || !crash_between {
                self.violation(format!(
                    "{queue} {id:?}: delivered again after its ack (acked in incarnation {acked}, now {epoch})"
                ));
            }
        }
    }
}

/// What the report needs about a message's first delivery (kept small: one per message).
#[derive(Clone, Copy)]
struct FirstDelivery {
    count: u16,
    /// Deliveries seen without the redelivered flag.
    unflagged: u16,
    epoch: u16,
    /// Milliseconds into the run.
    at: u32,
    /// The consumer (its id; 0 for basic.get, 1 for the vanishing raw consumer).
    by: u32,
}

/// The shared state of one run.
struct Run {
    uri: String,
    /// The run's seed; every client's choices derive from it.
    seed: u64,
    ledger: Mutex<Ledger>,
    /// The broker's incarnation (restarts so far).
    epoch: AtomicU64,
    /// False while the broker is being restarted.
    up: AtomicBool,
    /// Set at the end: clients stop.
    stop: AtomicBool,
    /// Publishers stop (the final drain).
    stop_publishing: AtomicBool,
}

impl Run {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// Connects, retrying while the broker restarts; None once the run stops.
    async fn connect(&self) -> Option<(Connection, Channel)> {
        while !self.stopping() {
            if let Ok(Ok(c)) = tokio::time::timeout(
                Duration::from_secs(5),
                Connection::connect(&self.uri, ConnectionProperties::default()),
            )
            .await
            {
                if let Ok(ch) = c.create_channel().await {
                    if declare_all(&ch).await.is_ok() {
                        return Some((c, ch));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
}

/// Awaits a consumer's call to the broker, which must answer within 10 s (consumers are never
/// blocked by alarms); a silence is recorded.
async fn within<T>(run: &Run, what: &str, f: impl std::future::Future<Output = T>) -> Option<T> {
    match tokio::time::timeout(Duration::from_secs(10), f).await {
        Ok(v) => Some(v),
        Err(_) => {
            if run.up.load(Ordering::Relaxed) {
                run.ledger()
                    .notes
                    .push(format!("{what}: no answer within 10 s"));
            }
            None
        }
    }
}

/// Ends a client's session: its connection is closed, so whatever it held goes back at once
/// (a dropped lapin connection may linger).
async fn end_session(conn: Connection) {
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.close(200, "bye".into())).await;
}

fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

/// Declares the topology (again after a restart: transient things are gone).
async fn declare_all(ch: &Channel) -> lapin::Result<()> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    for q in DURABLE {
        ch.queue_declare(q.into(), durable, FieldTable::default())
            .await?;
    }
    ch.queue_declare(
        TRANSIENT.into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(
        PRIORITY.into(),
        durable,
        args(&[("x-max-priority", AMQPValue::ShortShortUInt(5))]),
    )
    .await?;
    ch.queue_declare(DEAD.into(), durable, FieldTable::default())
        .await?;
    ch.queue_declare(
        TTL.into(),
        durable,
        args(&[
            ("x-message-ttl", AMQPValue::LongInt(50)),
            ("x-dead-letter-exchange", AMQPValue::LongString("".into())),
            (
                "x-dead-letter-routing-key",
                AMQPValue::LongString(DEAD.into()),
            ),
        ]),
    )
    .await?;
    ch.queue_declare(
        MEMORY.into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await?;
    Ok(())
}

/// A publisher with confirms: up to 64 unconfirmed messages in flight.
async fn confirm_publisher(run: Arc<Run>, id: u32, queue: &'static str, persistent: bool) {
    let mut seq = 0u64;
    let mut rng = Rng((run.seed ^ u64::from(id).wrapping_mul(7919)) | 1);
    while !run.stop_publishing.load(Ordering::Relaxed) {
        let Some((conn, ch)) = run.connect().await else {
            return;
        };
        if ch
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .is_err()
        {
            end_session(conn).await;
            continue;
        }
        let mut in_flight = std::collections::VecDeque::new();
        while !run.stop_publishing.load(Ordering::Relaxed) {
            seq += 1;
            let mut props = BasicProperties::default();
            if persistent {
                props = props.with_delivery_mode(2);
            }
            if queue == PRIORITY {
                props = props.with_priority(rng.below(6) as u8);
            }
            let sent = ch
                .basic_publish(
                    "".into(),
                    queue.into(),
                    BasicPublishOptions::default(),
                    &body(id, seq, 12 + rng.below(300) as usize),
                    props,
                )
                .await;
            let Ok(confirm) = sent else { break };
            run.ledger().published += 1;
            if seq.is_multiple_of(10) {
                // About 2,000 messages a second each: consumers can keep up, so the run ends
                // with queues that drain, not with a backlog bigger than the run.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            in_flight.push_back((seq, confirm));
            if in_flight.len() >= 64 || rng.below(20) == 0 {
                let Some((s, c)) = in_flight.pop_front() else {
                    continue;
                };
                match c.await {
                    Ok(c) if c.is_ack() => {
                        let mut l = run.ledger();
                        l.confirms += 1;
                        if persistent {
                            l.confirmed(queue, (id, s), run.epoch.load(Ordering::Relaxed));
                        }
                    }
                    Ok(_) => run.ledger().nacks += 1,
                    Err(_) => break,
                }
            }
        }
        // Whatever is still unconfirmed may or may not have arrived: neither counts.
        end_session(conn).await;
    }
}

/// Publishes in transactions of up to 10; a commit-ok confirms them all.
async fn tx_publisher(run: Arc<Run>, id: u32, queue: &'static str) {
    let mut seq = 0u64;
    while !run.stop_publishing.load(Ordering::Relaxed) {
        let Some((conn, ch)) = run.connect().await else {
            return;
        };
        if ch.tx_select().await.is_err() {
            end_session(conn).await;
            continue;
        }
        'session: while !run.stop_publishing.load(Ordering::Relaxed) {
            let first = seq + 1;
            for _ in 0..10 {
                seq += 1;
                let sent = ch
                    .basic_publish(
                        "".into(),
                        queue.into(),
                        BasicPublishOptions::default(),
                        &body(id, seq, 64),
                        BasicProperties::default().with_delivery_mode(2),
                    )
                    .await;
                if sent.is_err() {
                    break 'session;
                }
                run.ledger().published += 1;
            }
            if ch.tx_commit().await.is_err() {
                break;
            }
            let mut l = run.ledger();
            l.confirms += seq + 1 - first;
            let epoch = run.epoch.load(Ordering::Relaxed);
            for s in first..=seq {
                l.confirmed(queue, (id, s), epoch);
            }
        }
        end_session(conn).await;
    }
}

/// A publisher that fires a burst and closes its channel before the confirms arrive.
async fn channel_closer(run: Arc<Run>, id: u32) {
    let mut seq = 0u64;
    while !run.stop_publishing.load(Ordering::Relaxed) {
        let Some((c, ch)) = run.connect().await else {
            return;
        };
        let _ = ch.confirm_select(ConfirmSelectOptions::default()).await;
        let mut sent_all = true;
        for _ in 0..50 {
            seq += 1;
            let sent = ch
                .basic_publish(
                    "".into(),
                    DURABLE[2].into(),
                    BasicPublishOptions::default(),
                    &body(id, seq, 32),
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await;
            if sent.is_err() {
                sent_all = false;
                break;
            }
            run.ledger().published += 1;
        }
        if sent_all {
            let _ = ch.close(200, "closing mid-flight".into()).await;
        }
        end_session(c).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How a consumer limits its deliveries.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Unlimited,
    PerConsumer(u16),
    PerChannel(u16),
    NoAck,
}

/// A consumer: checks every delivery, acks (sometimes several at once), and proves its acks
/// with a round trip on the channel now and then.
async fn consumer(run: Arc<Run>, cid: u32, queue: &'static str, mode: Mode) {
    let mut rng = Rng((run.seed ^ u64::from(cid).wrapping_mul(104_729)) | 1);
    while !run.stopping() {
        // The incarnation this session talks to: read before connecting and checked after, so
        // that a restart in between cannot mix them up (a delivery read just after a restart
        // began comes from the old broker, and its ack may die with it: it must not be
        // counted as an ack of the new one).
        let epoch = run.epoch();
        let Some((conn, ch)) = run.connect().await else {
            return;
        };
        if run.epoch() != epoch {
            // A restart began meanwhile: which broker this is cannot be told. Again.
            end_session(conn).await;
            continue;
        }
        consume_session(&run, &ch, (cid, epoch), queue, mode, &mut rng).await;
        end_session(conn).await;
    }
}

/// One connection's worth of consuming; returns when the connection or channel fails.
async fn consume_session(
    run: &Run,
    ch: &Channel,
    (cid, epoch): (u32, u64),
    queue: &'static str,
    mode: Mode,
    rng: &mut Rng,
) {
    {
        let qos = match mode {
            Mode::PerConsumer(n) => Some((n, false)),
            Mode::PerChannel(n) => Some((n, true)),
            _ => None,
        };
        if let Some((n, global)) = qos {
            if ch.basic_qos(n, BasicQosOptions { global }).await.is_err() {
                return;
            }
        }
        let no_ack = matches!(mode, Mode::NoAck);
        let Ok(mut deliveries) = ch
            .basic_consume(
                queue.into(),
                format!("c{cid}").as_str().into(),
                BasicConsumeOptions {
                    no_ack,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
        else {
            return;
        };
        // Publish order per publisher, among first deliveries, for this consumer.
        let mut last_seq: HashMap<u32, u64> = HashMap::new();
        let mut unproven: Vec<Id> = Vec::new();
        let mut pending_ack: Option<lapin::message::Delivery> = None;
        loop {
            if run.stopping() {
                return;
            }
            run.ledger()
                .activity
                .insert(cid, ("waiting for a delivery", Instant::now()));
            let next = tokio::time::timeout(Duration::from_millis(500), deliveries.next()).await;
            let d = match next {
                Err(_) => {
                    // Idle: settle what is waiting.
                    if let Some(d) = pending_ack.take() {
                        let acked = within(
                            run,
                            "multiple ack",
                            d.ack(BasicAckOptions { multiple: true }),
                        )
                        .await;
                        if !matches!(acked, Some(Ok(_))) {
                            return;
                        }
                    }
                    continue;
                }
                Ok(Some(Ok(d))) => d,
                Ok(other) => {
                    let what = if other.is_none() {
                        "stream ended"
                    } else {
                        "stream error"
                    };
                    run.ledger().activity.insert(cid, (what, Instant::now()));
                    return;
                }
            };
            run.ledger()
                .activity
                .insert(cid, ("got a delivery", Instant::now()));
            let Some(id) = id_of(&d.data) else { continue };
            {
                let mut l = run.ledger();
                l.delivery(queue, id, d.redelivered, epoch, cid);
                if queue == DEAD {
                    l.dead_lettered += 1;
                    let has_death = d
                        .properties
                        .headers()
                        .as_ref()
                        .is_some_and(|h| h.inner().contains_key("x-death"));
                    if !has_death {
                        l.violation(format!("{DEAD} {id:?}: dead-lettered without x-death"));
                    }
                }
                if !d.redelivered && queue != PRIORITY && queue != DEAD {
                    let last = last_seq.entry(id.0).or_insert(0);
                    if id.1 <= *last {
                        let was = *last;
                        l.violation(format!(
                            "{queue} consumer {cid}: publisher {} message {} after {} (out of order)",
                            id.0, id.1, was
                        ));
                    }
                    *last = (*last).max(id.1);
                }
            }
            if no_ack {
                unproven.push(id);
            } else if rng.below(4) == 0 {
                // Multiple acks: settle later together.
                pending_ack = Some(d);
                unproven.push(id);
                continue;
            } else {
                if let Some(p) = pending_ack.take() {
                    let acked = within(
                        run,
                        "multiple ack",
                        p.ack(BasicAckOptions { multiple: true }),
                    )
                    .await;
                    if !matches!(acked, Some(Ok(_))) {
                        return;
                    }
                }
                let acked = within(run, "ack", d.ack(BasicAckOptions::default())).await;
                if !matches!(acked, Some(Ok(_))) {
                    return;
                }
                unproven.push(id);
            }
            if unproven.len() >= 50 && pending_ack.is_none() {
                // Everything acked before this round trip has been processed.
                let proof = ch.queue_declare(
                    queue.into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                );
                let what = format!("consumer {cid} on {queue}: round trip after acks");
                let proven = matches!(within(run, &what, proof).await, Some(Ok(_)));
                if !proven {
                    return;
                }
                let mut l = run.ledger();
                l.acks += unproven.len() as u64;
                for id in unproven.drain(..) {
                    l.acked_in.insert((queue, id), epoch);
                }
            }
        }
    }
}

/// basic.get with manual acks, proven by the get that follows.
async fn getter(run: Arc<Run>, queue: &'static str) {
    while !run.stopping() {
        let epoch = run.epoch(); // before and after connecting, as for consumers
        let Some((conn, ch)) = run.connect().await else {
            return;
        };
        if run.epoch() != epoch {
            end_session(conn).await;
            continue;
        }
        get_session(&run, &ch, queue, epoch).await;
        end_session(conn).await;
    }
}

/// One connection's worth of basic.get.
async fn get_session(run: &Run, ch: &Channel, queue: &'static str, epoch: u64) {
    {
        let mut previous: Option<(Id, u64)> = None;
        while !run.stopping() {
            let got = ch
                .basic_get(queue.into(), BasicGetOptions { no_ack: false })
                .await;
            let Ok(got) = got else { return };
            if let Some((id, epoch)) = previous.take() {
                // This get came back: the ack before it was processed.
                run.ledger().acked_in.insert((queue, id), epoch);
            }
            let Some(m) = got else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let Some(id) = id_of(&m.delivery.data) else {
                continue;
            };
            {
                let mut l = run.ledger();
                l.gets += 1;
                l.delivery(queue, id, m.delivery.redelivered, epoch, 0);
            }
            if m.delivery.ack(BasicAckOptions::default()).await.is_err() {
                return;
            }
            previous = Some((id, epoch));
        }
    }
}

/// A consumer on a raw socket that takes a few deliveries without acking and then vanishes
/// (the socket is reset): its deliveries must come back, flagged redelivered.
async fn vanishing_consumer(run: Arc<Run>, addr: std::net::SocketAddr, queue: &'static str) {
    let mut rng = Rng((run.seed ^ 0xDEAD_BEEF) | 1);
    while !run.stopping() {
        if !run.up.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        // Each life runs in a task of its own: the raw client panics on anything unexpected
        // (a restart mid-handshake), which ends only that life.
        let life = tokio::spawn({
            let run = run.clone();
            let take = 1 + rng.below(200) as u32;
            async move { raw_consume_then_vanish(&run, addr, queue, take).await }
        });
        if matches!(life.await, Ok(Some(_))) {
            run.ledger()
                .faults
                .entry("client reset mid-delivery")
                .and_modify(|n| *n += 1)
                .or_insert(1);
        }
        tokio::time::sleep(Duration::from_millis(300 + rng.below(700))).await;
    }
}

/// One life of the vanishing consumer; the number of deliveries it saw.
async fn raw_consume_then_vanish(
    run: &Run,
    addr: std::net::SocketAddr,
    queue: &'static str,
    take: u32,
) -> Option<u32> {
    // The broker may be restarted midway: a failed handshake just ends this life.
    let epoch = run.epoch();
    let handshake = RawClient::try_connect_full(addr, 0, 131072, FieldTable::default());
    let mut c = tokio::time::timeout(Duration::from_secs(5), handshake)
        .await
        .ok()?
        .ok()?;
    if run.epoch() != epoch {
        return None; // which broker this is cannot be told
    }
    c.send_bytes(&frame(1, 1, &[0, 20, 0, 10, 0])).await; // channel.open
    match tokio::time::timeout(Duration::from_secs(5), c.read_raw()).await {
        Ok(Some((1, 1, payload))) if payload.starts_with(&[0, 20, 0, 11]) => {}
        _ => return None,
    }
    let mut consume = vec![0, 60, 0, 20, 0, 0, queue.len() as u8];
    consume.extend_from_slice(queue.as_bytes());
    consume.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // tag "", flags, no arguments
    c.send_bytes(&frame(1, 1, &consume)).await;
    let mut seen = 0;
    let mut redelivered = false;
    let mut in_content = false;
    while seen < take {
        let next = tokio::time::timeout(Duration::from_secs(2), c.read_raw()).await;
        let Ok(Some((kind, _, payload))) = next else {
            break;
        };
        match kind {
            1 if payload.starts_with(&[0, 60, 0, 60]) => {
                // basic.deliver: consumer tag, delivery tag, redelivered
                let tag_len = payload[4] as usize;
                redelivered = payload[5 + tag_len + 8] != 0;
                in_content = true;
            }
            3 if in_content => {
                in_content = false;
                if let Some(id) = id_of(&payload) {
                    run.ledger().delivery(queue, id, redelivered, epoch, 1);
                }
                seen += 1;
            }
            _ => {}
        }
    }
    let _ = c.stream.set_zero_linger();
    drop(c);
    Some(seen)
}

/// Answers within 5 s whenever the broker is up.
async fn probe(run: Arc<Run>) {
    let mut conn: Option<(Connection, Channel)> = None;
    let mut failures_in_a_row = 0;
    while !run.stopping() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if !run.up.load(Ordering::Relaxed) {
            conn = None;
            failures_in_a_row = 0;
            continue;
        }
        if conn.is_none() {
            let c = tokio::time::timeout(
                Duration::from_secs(5),
                Connection::connect(&run.uri, ConnectionProperties::default()),
            )
            .await;
            if let Ok(Ok(c)) = c {
                if let Ok(ch) = c.create_channel().await {
                    conn = Some((c, ch));
                }
            }
        }
        let answered = match &conn {
            Some((_, ch)) => matches!(
                tokio::time::timeout(
                    Duration::from_secs(5),
                    ch.queue_declare(
                        DURABLE[0].into(),
                        QueueDeclareOptions {
                            passive: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    ),
                )
                .await,
                Ok(Ok(_))
            ),
            None => false,
        };
        if answered {
            failures_in_a_row = 0;
        } else {
            conn = None;
            failures_in_a_row += 1;
            // One failure may be a restart that just began; three in a row are not.
            if failures_in_a_row == 3 && run.up.load(Ordering::Relaxed) {
                run.ledger()
                    .violation("the broker stopped answering the probe".into());
            }
        }
    }
}

/// A connection that has published, so the alarms block it; for checking that they clear.
async fn blockable(run: &Run) -> Option<(Connection, Channel)> {
    let (c, ch) = run.connect().await?;
    ch.basic_publish(
        "".into(),
        MEMORY.into(),
        BasicPublishOptions::default(),
        b"x",
        BasicProperties::default(),
    )
    .await
    .ok()?;
    Some((c, ch))
}

/// Waits (up to `limit`) until `conn` is blocked (true) or unblocked (false).
async fn wait_blocked(conn: &Connection, blocked: bool, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if conn.status().blocked() == blocked {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Fills the data disk past its limit, then frees it: publishers must be blocked, then not.
async fn fill_the_disk(run: &Run, disk: &SmallDisk) {
    let Some((conn, _ch)) = blockable(run).await else {
        return;
    };
    let ballast = Ballast::new(
        &disk.path.join("ballast"),
        disk.free().saturating_sub(16 << 20),
    );
    let blocked = wait_blocked(&conn, true, Duration::from_secs(10)).await;
    ballast.remove();
    if !blocked {
        run.ledger()
            .notes
            .push("a full disk did not block a publisher within 10 s".into());
    }
    if !wait_blocked(&conn, false, Duration::from_secs(15)).await {
        run.ledger()
            .violation("the disk alarm did not clear once space was back".into());
    }
}

/// Builds a backlog until the memory alarm blocks its publisher, purges it: the alarm must
/// clear.
async fn trip_the_memory_alarm(run: &Run) {
    let Some((conn, ch)) = blockable(run).await else {
        return;
    };
    let big = vec![7u8; 64 * 1024];
    let publishing = tokio::spawn({
        let ch = ch.clone();
        async move {
            for i in 0..20_000u32 {
                let q = format!("{MEMORY}.{}", i % 16);
                if i < 16 {
                    let _ = ch
                        .queue_declare(
                            q.as_str().into(),
                            QueueDeclareOptions::default(),
                            FieldTable::default(),
                        )
                        .await;
                }
                if ch
                    .basic_publish(
                        "".into(),
                        q.as_str().into(),
                        BasicPublishOptions::default(),
                        &big,
                        BasicProperties::default(),
                    )
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    let blocked = wait_blocked(&conn, true, Duration::from_secs(20)).await;
    publishing.abort();
    if !blocked {
        run.ledger()
            .notes
            .push("the memory backlog did not raise the alarm within 20 s".into());
    }
    // Purge from a connection that never published (the alarm does not block it).
    if let Some((_c, admin)) = run.connect().await {
        for i in 0..16 {
            let q = format!("{MEMORY}.{i}");
            let _ = admin
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }
    if blocked && !wait_blocked(&conn, false, Duration::from_secs(30)).await {
        run.ledger()
            .violation("the memory alarm did not clear once the backlog was gone".into());
    }
}

fn count_fault(run: &Run, name: &'static str) {
    let mut l = run.ledger();
    *l.faults.entry(name).or_insert(0) += 1;
    l.event(run.epoch.load(Ordering::Relaxed), name.to_string());
}

/// Restarts the broker: kill -9 (`clean` false) or SIGTERM.
async fn restart(run: &Run, w: WarrenProcess, clean: bool) -> WarrenProcess {
    run.up.store(false, Ordering::Relaxed);
    // The new incarnation starts now: whatever is delivered from here on counts as after
    // the restart.
    run.ledger().clean_start.push(clean);
    run.epoch.fetch_add(1, Ordering::Relaxed);
    // The ending incarnation's warnings and errors go to the timeline (its log goes with it).
    let ending_log = w.log.clone();
    // Stopping and starting the process blocks (waiting for it to exit, then to be ready):
    // not on a runtime worker, which the clients need.
    let restarted = tokio::task::spawn_blocking(move || {
        futures_lite::future::block_on(async move {
            if clean {
                w.restart().await
            } else {
                w.crash_and_restart().await
            }
        })
    })
    .await;
    let w = match restarted {
        Ok(w) => w,
        Err(e) => panic!("restarting warren failed: {e}"),
    };
    let warnings: Vec<String> = ending_log
        .lock()
        .map(|l| {
            l.iter()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .rev()
                .take(10)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut l = run.ledger();
    let epoch = run.epoch.load(Ordering::Relaxed);
    for line in warnings.into_iter().rev() {
        l.event(epoch - 1, format!("its log: {line}"));
    }
    l.event(epoch, "broker up again".into());
    drop(l);
    run.up.store(true, Ordering::Relaxed);
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos() {
    let seconds: u64 = std::env::var("CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
        | 1;
    eprintln!("chaos: {seconds} s, CHAOS_SEED={seed}");
    let mut rng = Rng(seed);
    let disk = SmallDisk::mount(1 << 30);
    let dir = disk
        .as_ref()
        .map_or_else(fresh_dir, |d| d.path.join("data"));
    let watermark = (400u64 << 20).to_string();
    let disk_limit = (64u64 << 20).to_string();
    let mut warren = Some(
        WarrenProcess::start_in(
            dir,
            &[
                ("WARREN_MEMORY_HIGH_WATERMARK_BYTES", watermark.as_str()),
                ("WARREN_DISK_FREE_LIMIT", disk_limit.as_str()),
            ],
        )
        .await,
    );
    let (uri, addr) = match &warren {
        Some(w) => (w.uri(), w.addr),
        None => unreachable!(),
    };
    let run = Arc::new(Run {
        uri,
        seed,
        ledger: Mutex::new(Ledger {
            clean_start: vec![true],
            started: Some(Instant::now()),
            ..Ledger::default()
        }),
        epoch: AtomicU64::new(0),
        up: AtomicBool::new(true),
        stop: AtomicBool::new(false),
        stop_publishing: AtomicBool::new(false),
    });
    let mut tasks = Vec::new();
    let mut publishers = Vec::new();
    for (i, q) in DURABLE.iter().enumerate() {
        publishers.push(tokio::spawn(confirm_publisher(
            run.clone(),
            i as u32 + 1,
            q,
            true,
        )));
    }
    publishers.push(tokio::spawn(confirm_publisher(
        run.clone(),
        10,
        DURABLE[0],
        true,
    )));
    publishers.push(tokio::spawn(confirm_publisher(
        run.clone(),
        11,
        TRANSIENT,
        false,
    )));
    publishers.push(tokio::spawn(confirm_publisher(
        run.clone(),
        12,
        PRIORITY,
        true,
    )));
    publishers.push(tokio::spawn(confirm_publisher(run.clone(), 13, TTL, true)));
    publishers.push(tokio::spawn(tx_publisher(run.clone(), 20, DURABLE[1])));
    publishers.push(tokio::spawn(channel_closer(run.clone(), 30)));
    let modes = [
        (DURABLE[0], Mode::Unlimited),
        (DURABLE[0], Mode::PerConsumer(10)),
        (DURABLE[1], Mode::PerChannel(20)),
        (DURABLE[1], Mode::PerConsumer(1)),
        (DURABLE[2], Mode::Unlimited),
        (TRANSIENT, Mode::NoAck),
        (PRIORITY, Mode::PerConsumer(5)),
        (DEAD, Mode::PerConsumer(50)),
    ];
    for (i, (q, mode)) in modes.iter().enumerate() {
        tasks.push(tokio::spawn(consumer(
            run.clone(),
            100 + i as u32,
            q,
            *mode,
        )));
    }
    tasks.push(tokio::spawn(getter(run.clone(), DURABLE[2])));
    let vanishing = tokio::spawn(vanishing_consumer(run.clone(), addr, DURABLE[0]));
    tasks.push(tokio::spawn(probe(run.clone())));

    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(1000 + rng.below(3000))).await;
        if Instant::now() >= end {
            break;
        }
        match rng.below(10) {
            0..=2 => {
                count_fault(&run, "kill -9 of the broker");
                if let Some(w) = warren.take() {
                    warren = Some(restart(&run, w, false).await);
                }
            }
            3..=4 => {
                count_fault(&run, "SIGTERM of the broker");
                if let Some(w) = warren.take() {
                    warren = Some(restart(&run, w, true).await);
                }
            }
            5..=6 => {
                if let Some(d) = &disk {
                    count_fault(&run, "disk filled past its limit");
                    fill_the_disk(&run, d).await;
                }
            }
            7 => {
                count_fault(&run, "memory alarm");
                trip_the_memory_alarm(&run).await;
            }
            _ => {} // a quiet spell
        }
    }

    // The end: publishers stop, the vanishing consumer too; then the other consumers drain
    // every queue that must deliver, until each confirmed message has been seen.
    run.stop_publishing.store(true, Ordering::Relaxed);
    for p in publishers {
        let _ = tokio::time::timeout(Duration::from_secs(30), p).await;
    }
    vanishing.abort();
    let missing = all_delivered(&run).await;
    let state = queue_state(&run).await;
    if !missing.is_empty() {
        // Is the queue itself stuck, or its consumer? A basic.get tells.
        if let Some((_c, ch)) = run.connect().await {
            for q in DURABLE.iter().chain([&PRIORITY]) {
                let got = ch
                    .basic_get((*q).into(), BasicGetOptions { no_ack: false })
                    .await;
                eprintln!(
                    "diagnosis: basic.get on {q}: {:?}",
                    got.map(|m| m.map(|m| id_of(&m.delivery.data)))
                );
            }
        }
    }
    run.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    let l = run.ledger();
    for (queue, id) in missing.iter().take(10) {
        eprintln!("VIOLATION: {queue} {id:?}: confirmed but never delivered");
    }
    if !missing.is_empty() {
        eprintln!(
            "{} missing; queues (name, ready, consumers): {state:?}",
            missing.len()
        );
        report_missing(&l, &missing);
        if let Some(w) = &warren {
            let log = w.log.lock().map(|l| l.clone()).unwrap_or_default();
            for line in log
                .iter()
                .filter(|l| l.contains("alarm") || l.contains("disk"))
                .rev()
                .take(6)
            {
                eprintln!("warren: {line}");
            }
            if let Ok(statm) = std::fs::read_to_string(format!("/proc/{}/statm", w.child.id())) {
                eprintln!("warren statm: {statm}");
            }
        }
        for (cid, (what, when)) in &l.activity {
            eprintln!("consumer {cid}: {what}, {:?} ago", when.elapsed());
        }
        if let Some(w) = &warren {
            let log = w.log.lock().map(|l| l.clone()).unwrap_or_default();
            for line in log
                .iter()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .take(40)
            {
                eprintln!("warren: {line}");
            }
        }
    }
    let checked: usize = l
        .confirmed
        .iter()
        .filter(|(q, _)| must_deliver(q))
        .map(|(_, ids)| ids.len())
        .sum();
    eprintln!(
        "chaos figures: {seconds} s, seed {seed}; published {}, confirmed {} (nacked {}), \
         deliveries checked {} (basic.get {}), acks proven {}, dead-lettered {}; faults {:?}; \
         confirmed persistent messages checked for delivery {checked}; broker incarnations {}; \
         notes {:?}",
        l.published,
        l.confirms,
        l.nacks,
        l.deliveries,
        l.gets,
        l.acks,
        l.dead_lettered,
        l.faults,
        l.clean_start.len(),
        l.notes
    );
    if !missing.is_empty() || !l.violations.is_empty() {
        print_timeline(&l);
    }
    assert!(
        missing.is_empty(),
        "{} confirmed persistent messages were never delivered",
        missing.len()
    );
    assert!(l.violations.is_empty(), "violations: {:#?}", l.violations);
    assert!(
        l.confirms > 0 && l.deliveries > 0,
        "the clients did no work"
    );
    drop(l);
    drop(warren);
}

/// Confirmed persistent messages of the queues that must deliver that no consumer has seen.
/// Groups what went missing by queue, publisher and the incarnation that confirmed it, with
/// the range of sequence numbers and confirm times, next to the run's timeline.
fn report_missing(l: &Ledger, missing: &[(&'static str, Id)]) {
    /// Count, lowest and highest sequence number, earliest and latest confirm (ms).
    #[derive(Clone, Copy)]
    struct Group {
        n: usize,
        seqs: (u64, u64),
        times: (u64, u64),
    }
    let mut groups: std::collections::BTreeMap<(&str, u32, u64), Group> = Default::default();
    for (queue, id) in missing {
        let (epoch, at) = l
            .confirmed_when
            .get(&(*queue, *id))
            .copied()
            .unwrap_or((0, 0));
        let g = groups.entry((*queue, id.0, epoch)).or_insert(Group {
            n: 0,
            seqs: (u64::MAX, 0),
            times: (u64::MAX, 0),
        });
        g.n += 1;
        g.seqs = (g.seqs.0.min(id.1), g.seqs.1.max(id.1));
        g.times = (g.times.0.min(at), g.times.1.max(at));
    }
    for ((queue, publisher, epoch), g) in groups {
        let (n, (lo, hi), (t0, t1)) = (g.n, g.seqs, g.times);
        eprintln!(
            "missing: {queue} publisher {publisher}, confirmed in incarnation {epoch}: {n} \
             (seq {lo}..={hi}, confirmed {t0}..={t1} ms)"
        );
    }
}

/// Faults, restarts and each ending incarnation's warnings, in order.
fn print_timeline(l: &Ledger) {
    for (at, epoch, what) in &l.timeline {
        eprintln!("timeline: {at} ms, incarnation {epoch}: {what}");
    }
}

fn undelivered(run: &Run) -> Vec<(&'static str, Id)> {
    let l = run.ledger();
    let mut out = Vec::new();
    for (queue, ids) in l.confirmed.iter().filter(|(q, _)| must_deliver(q)) {
        for id in ids {
            if !l.delivered.contains_key(&(*queue, *id)) {
                out.push((*queue, *id));
            }
        }
    }
    out
}

/// Waits (up to two minutes) until the consumers have seen every confirmed persistent message
/// and the queues that must deliver are empty; returns what is still missing.
async fn all_delivered(run: &Run) -> Vec<(&'static str, Id)> {
    let mut admin: Option<(Connection, Channel)> = None;
    // As long as the queues keep shrinking the consumers are given time (a loaded machine
    // drains slowly); 30 s without progress is the end.
    let mut best = u64::MAX;
    let mut progress_at = Instant::now();
    loop {
        // The queues first (cheap); the ledger scan only once they are empty.
        let ready = ready_messages(run, &mut admin).await;
        if ready == Some(0) {
            let missing = undelivered(run);
            if missing.is_empty() {
                return missing;
            }
        }
        if let Some(n) = ready.filter(|n| *n < best) {
            best = n;
            progress_at = Instant::now();
        }
        if progress_at.elapsed() > Duration::from_secs(30) {
            return undelivered(run);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// (queue, ready messages, consumers) of the queues that must deliver, for the report.
async fn queue_state(run: &Run) -> Vec<(&'static str, u32, u32)> {
    let mut out = Vec::new();
    let Some((_c, ch)) = run.connect().await else {
        return out;
    };
    for q in DURABLE.iter().chain([&PRIORITY]) {
        if let Ok(d) = ch
            .queue_declare(
                (*q).into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
        {
            out.push((*q, d.message_count(), d.consumer_count()));
        }
    }
    out
}

/// Ready messages in all the queues that must deliver (None: no answer).
async fn ready_messages(run: &Run, admin: &mut Option<(Connection, Channel)>) -> Option<u64> {
    if admin.is_none() {
        *admin = run.connect().await;
    }
    let (_, ch) = admin.as_ref()?;
    let mut total = 0u64;
    for q in DURABLE.iter().chain([&PRIORITY]) {
        let declared = ch
            .queue_declare(
                (*q).into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await;
        match declared {
            Ok(d) => total += u64::from(d.message_count()),
            Err(_) => {
                *admin = None;
                return None;
            }
        }
    }
    Some(total)
}

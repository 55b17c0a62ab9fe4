//! Durability: what survives a restart or a crash, and what does not.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, ExchangeKind};

fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

/// A channel in confirm mode on the broker.
async fn confirming(w: &WarrenProcess) -> (lapin::Connection, Channel) {
    let (c, ch) = w.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    (c, ch)
}

async fn publish_confirmed(
    ch: &Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
    props: BasicProperties,
) {
    let c = ch
        .basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            body,
            props,
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    assert!(matches!(c, Confirmation::Ack(_)), "{c:?}");
}

async fn bodies(ch: &Channel, q: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    while let Some(m) = get(ch, q).await {
        out.push((
            String::from_utf8(m.delivery.data.clone()).unwrap(),
            m.delivery.redelivered,
        ));
    }
    out
}

#[tokio::test]
async fn durable_definitions_survive_a_restart_and_transient_ones_do_not() {
    let w = WarrenProcess::start_fresh().await;
    {
        let (_c, ch) = w.channel().await;
        ch.exchange_declare(
            "dx".into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.exchange_declare(
            "tx".into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        durable_queue(&ch, "dq").await;
        declare(&ch, "tq").await;
        ch.queue_bind(
            "dq".into(),
            "dx".into(),
            "a.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        // A deleted durable queue stays deleted.
        durable_queue(&ch, "gone").await;
        ch.queue_delete("gone".into(), QueueDeleteOptions::default())
            .await
            .unwrap();
    }
    let w = w.restart().await;
    let (c, ch) = w.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    // The binding came back: routing through dx works.
    publish_confirmed(&ch, "dx", "a.b", b"routed", persistent()).await;
    assert_eq!(bodies(&ch, "dq").await, [("routed".to_string(), false)]);
    for (name, what) in [("tq", "queue"), ("gone", "queue")] {
        let ch = c.create_channel().await.unwrap();
        let err = ch
            .queue_declare(
                name.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(code_of(&err), Some(404), "{what} {name}");
    }
    let ch = c.create_channel().await.unwrap();
    let err = ch
        .exchange_declare(
            "tx".into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(404));
}

#[tokio::test]
async fn persistent_messages_survive_and_unacked_ones_come_back_redelivered() {
    let w = WarrenProcess::start_fresh().await;
    {
        let (_c, ch) = w.channel().await;
        durable_queue(&ch, "pq").await;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        for i in 0..5 {
            publish_confirmed(&ch, "", "pq", format!("p{i}").as_bytes(), persistent()).await;
        }
        publish_confirmed(&ch, "", "pq", b"transient", BasicProperties::default()).await;
        // p0 acked, p1 delivered but never acked.
        let m0 = ch
            .basic_get("pq".into(), BasicGetOptions::default())
            .await
            .unwrap()
            .unwrap();
        ch.basic_ack(m0.delivery.delivery_tag, BasicAckOptions::default())
            .await
            .unwrap();
        let _m1 = ch
            .basic_get("pq".into(), BasicGetOptions::default())
            .await
            .unwrap()
            .unwrap();
        // Make sure the ack reached the broker before the restart.
        assert_eq!(count(&ch, "pq").await, 4);
    }
    let w = w.restart().await;
    let (_c, ch) = w.channel().await;
    let got = bodies(&ch, "pq").await;
    let names: Vec<&str> = got.iter().map(|(b, _)| b.as_str()).collect();
    assert_eq!(
        names,
        ["p1", "p2", "p3", "p4"],
        "order kept, acked and transient gone"
    );
    assert!(got[0].1, "the delivered-but-unacked message is redelivered");
    assert!(
        got[1..].iter().all(|(_, r)| !r),
        "never-delivered messages are not flagged redelivered"
    );
}

#[tokio::test]
async fn every_confirmed_message_survives_kill_9() {
    let mut w = WarrenProcess::start_fresh().await;
    let mut confirmed: Vec<u32> = Vec::new();
    let mut next = 0u32;
    // Several rounds: publish with confirms, crash mid-stream, restart, check.
    // The crash point varies per run (seed printed on failure) and per round.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut rng = seed;
    let mut random = move |below: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % below.max(1) as u64) as usize
    };
    eprintln!("crash test seed {seed}");
    for round in 0..6u32 {
        let (_c, ch) = w.channel().await;
        durable_queue(&ch, "crash").await;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let mut pending = Vec::new();
        for _ in 0..(200 + round * 150) {
            let id = next;
            next += 1;
            match ch
                .basic_publish(
                    "".into(),
                    "crash".into(),
                    BasicPublishOptions::default(),
                    &id.to_be_bytes(),
                    persistent(),
                )
                .await
            {
                Ok(p) => pending.push((id, p)),
                Err(_) => break,
            }
        }
        // Wait for a random number of confirms, then crash while the rest are in flight.
        let cut = random(pending.len() + 1);
        let mut rest = pending.split_off(cut);
        for (id, p) in pending {
            if matches!(p.await, Ok(Confirmation::Ack(_))) {
                confirmed.push(id);
            }
        }
        w = w.crash_and_restart().await;
        // Publishes that were confirmed before the crash may be among `rest` too.
        for (id, p) in rest.drain(..) {
            if let Ok(Ok(Confirmation::Ack(_))) =
                tokio::time::timeout(std::time::Duration::from_millis(1), p).await
            {
                confirmed.push(id);
            }
        }
    }
    let (_c, ch) = w.channel().await;
    let mut found = std::collections::HashMap::new();
    while let Some(m) = get(&ch, "crash").await {
        let id = u32::from_be_bytes(m.delivery.data[..4].try_into().unwrap());
        *found.entry(id).or_insert(0u32) += 1;
    }
    for id in &confirmed {
        assert_eq!(
            found.get(id),
            Some(&1),
            "confirmed message {id} must be there exactly once"
        );
    }
    assert!(found.values().all(|n| *n == 1), "no duplicates");
    assert!(!confirmed.is_empty());
}

#[tokio::test]
async fn fully_acked_segments_give_their_disk_space_back() {
    let w = WarrenProcess::start_fresh().await;
    let (_c, ch) = w.channel().await;
    durable_queue(&ch, "space").await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let body = vec![7u8; 64 * 1024];
    let mut pending = Vec::new();
    // ~40 MB: at least two full 16 MiB segments.
    for _ in 0..640 {
        pending.push(
            ch.basic_publish(
                "".into(),
                "space".into(),
                BasicPublishOptions::default(),
                &body,
                persistent(),
            )
            .await
            .unwrap(),
        );
    }
    for p in pending {
        p.await.unwrap();
    }
    let dir_size = |w: &WarrenProcess| -> u64 { walk(&w.data_dir.join("queues")) };
    let full = dir_size(&w);
    assert!(full > 40_000_000, "{full}");
    let mut c = ch
        .basic_consume(
            "space".into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    for _ in 0..640 {
        next(&mut c).await;
    }
    // Drain confirms the acks reached the log; a durable publish afterwards forces a flush.
    publish_confirmed(&ch, "", "space", b"x", persistent()).await;
    let after = dir_size(&w);
    assert!(
        after < 20_000_000,
        "segments were not deleted: {after} bytes left"
    );
}

/// Every queue segment file under a data folder, sorted.
fn segment_files(data_dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut segments: Vec<std::path::PathBuf> = std::fs::read_dir(data_dir.join("queues"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    segments
}

fn walk(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            total += if p.is_dir() {
                walk(&p)
            } else {
                e.metadata().map_or(0, |m| m.len())
            };
        }
    }
    total
}

#[tokio::test]
async fn a_torn_tail_is_cut_off_and_the_rest_is_served() {
    let w = WarrenProcess::start_fresh().await;
    {
        let (_c, ch) = w.channel().await;
        durable_queue(&ch, "torn").await;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        for i in 0..3 {
            publish_confirmed(&ch, "", "torn", format!("m{i}").as_bytes(), persistent()).await;
        }
    }
    let mut w = w;
    w.terminate();
    // Simulate a write torn by a crash: half a record at the end of the segment.
    let seg = segment_files(&w.data_dir)
        .into_iter()
        .next()
        .expect("a segment file");
    let mut data = std::fs::read(&seg).unwrap();
    let len = data.len();
    data.extend_from_within(..len / 6);
    std::fs::write(&seg, &data).unwrap();
    let w = WarrenProcess::start(w.addr, std::mem::take(&mut w.data_dir)).await;
    let (_c, ch) = w.channel().await;
    let got: Vec<String> = bodies(&ch, "torn")
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    assert_eq!(got, ["m0", "m1", "m2"]);
    assert_eq!(
        std::fs::metadata(&seg).unwrap().len() as usize,
        len,
        "tail cut back to the last good record"
    );
}

#[tokio::test]
async fn committed_persistent_messages_survive_a_crash() {
    let w = WarrenProcess::start_fresh().await;
    {
        let (_c, ch) = w.channel().await;
        durable_queue(&ch, "txd").await;
        ch.tx_select().await.unwrap();
        for i in 0..3 {
            ch.basic_publish(
                "".into(),
                "txd".into(),
                BasicPublishOptions::default(),
                format!("t{i}").as_bytes(),
                persistent(),
            )
            .await
            .unwrap();
        }
        // commit-ok arrives only once the messages are on disk.
        ch.tx_commit().await.unwrap();
    }
    let w = w.crash_and_restart().await;
    let (_c, ch) = w.channel().await;
    let got: Vec<String> = bodies(&ch, "txd")
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    assert_eq!(got, ["t0", "t1", "t2"]);
}

#[tokio::test]
async fn a_damaged_older_segment_loses_only_its_damaged_part() {
    let w = WarrenProcess::start_fresh().await;
    {
        let (_c, ch) = w.channel().await;
        durable_queue(&ch, "damaged").await;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let mut body = vec![0u8; 64 * 1024];
        let mut pending = Vec::new();
        // ~19 MiB: more than one 16 MiB segment.
        for i in 0..300u32 {
            body[..4].copy_from_slice(&i.to_be_bytes());
            pending.push(
                ch.basic_publish(
                    "".into(),
                    "damaged".into(),
                    BasicPublishOptions::default(),
                    &body,
                    persistent(),
                )
                .await
                .unwrap(),
            );
        }
        for p in pending {
            p.await.unwrap();
        }
    }
    let mut w = w;
    w.terminate();
    let segments = segment_files(&w.data_dir);
    assert!(
        segments.len() >= 2,
        "expected two segments, got {segments:?}"
    );
    // Flip a byte in the middle of the first segment.
    let mut data = std::fs::read(&segments[0]).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xFF;
    std::fs::write(&segments[0], &data).unwrap();
    let w = WarrenProcess::start(w.addr, std::mem::take(&mut w.data_dir)).await;
    let (_c, ch) = w.channel().await;
    let mut ids = Vec::new();
    while let Some(m) = get(&ch, "damaged").await {
        ids.push(u32::from_be_bytes(m.delivery.data[..4].try_into().unwrap()));
    }
    assert_eq!(
        ids.first(),
        Some(&0),
        "records before the damage are served"
    );
    assert_eq!(
        ids.last(),
        Some(&299),
        "the later segment is served in full"
    );
    assert!(ids.len() < 300, "the damaged part was skipped");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "order kept");
}

/// A persistent message delivered to a consumer (not only through basic.get) and never acked
/// comes back flagged redelivered after a restart; the others do not.
#[tokio::test]
async fn a_consumer_delivery_left_unacked_comes_back_redelivered_after_a_restart() {
    let w = WarrenProcess::start_fresh().await;
    {
        let (_c, ch) = w.channel().await;
        durable_queue(&ch, "cq").await;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        for i in 0..4 {
            publish_confirmed(&ch, "", "cq", format!("c{i}").as_bytes(), persistent()).await;
        }
        ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
        let mut consumer = consume(&ch, "cq", false).await;
        let first = next(&mut consumer).await;
        assert_eq!(first.data, b"c0");
        assert_eq!(count(&ch, "cq").await, 3);
    }
    let w = w.restart().await;
    let (_c, ch) = w.channel().await;
    let got = bodies(&ch, "cq").await;
    let names: Vec<&str> = got.iter().map(|(b, _)| b.as_str()).collect();
    assert_eq!(names, ["c0", "c1", "c2", "c3"]);
    assert!(got[0].1, "the consumer's unacked delivery is redelivered");
    assert!(
        got[1..].iter().all(|(_, r)| !r),
        "never-delivered messages are not flagged redelivered"
    );
}

/// A queue.delete that was not answered delete-ok may come back after a crash, but whole:
/// here the definitions cannot be written (a directory sits where their temporary file goes),
/// so the delete fails with 541 and the queue's log must be left intact. Before, the log was
/// removed anyway and the queue came back empty after the crash.
#[tokio::test]
async fn a_delete_that_could_not_be_recorded_leaves_the_queue_whole() {
    let w = WarrenProcess::start_fresh().await;
    let (c, ch) = confirming(&w).await;
    durable_queue(&ch, "doomed").await;
    for i in 0..200 {
        publish_confirmed(&ch, "", "doomed", format!("m{i}").as_bytes(), persistent()).await;
    }
    let blocker = w.data_dir.join("definitions/vhost-2f.tmp");
    std::fs::create_dir(&blocker).expect("block the definitions file");
    let deleted = ch
        .queue_delete("doomed".into(), QueueDeleteOptions::default())
        .await;
    let e = deleted.expect_err("the delete could not be recorded, so it must fail");
    assert_eq!(code_of(&e), Some(541), "{e}");
    drop(c);
    std::fs::remove_dir(&blocker).expect("unblock");
    let w = w.crash_and_restart().await;
    let (_c, ch) = w.channel().await;
    let back = bodies(&ch, "doomed").await;
    assert_eq!(back.len(), 200, "the queue must come back whole");
}

/// A delete answered delete-ok stays deleted after an immediate kill -9.
#[tokio::test]
async fn an_answered_delete_stays_deleted_after_kill_9() {
    let w = WarrenProcess::start_fresh().await;
    let (_c, ch) = confirming(&w).await;
    durable_queue(&ch, "gone").await;
    for i in 0..200 {
        publish_confirmed(&ch, "", "gone", format!("m{i}").as_bytes(), persistent()).await;
    }
    let n = ch
        .queue_delete("gone".into(), QueueDeleteOptions::default())
        .await
        .expect("delete-ok");
    assert_eq!(n, 200);
    let w = w.crash_and_restart().await;
    let (_c, ch) = w.channel().await;
    let e = ch
        .queue_declare(
            "gone".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect_err("the queue must stay deleted");
    assert_eq!(code_of(&e), Some(404));
}

/// After a crash Warren cannot know which recovered messages had already been delivered
/// (delivery records are written behind the deliveries), so every one comes back flagged
/// redelivered, the spec's "may have been delivered before"; after a clean shutdown only the
/// ones that were delivered are.
#[tokio::test]
async fn after_a_crash_every_recovered_message_is_flagged_redelivered() {
    let w = WarrenProcess::start_fresh().await;
    let (_c, ch) = confirming(&w).await;
    durable_queue(&ch, "flags").await;
    for i in 0..4 {
        publish_confirmed(&ch, "", "flags", format!("m{i}").as_bytes(), persistent()).await;
    }
    let w = w.restart().await;
    let (_c, ch) = w.channel().await;
    let after_clean: Vec<bool> = bodies(&ch, "flags").await.iter().map(|b| b.1).collect();
    assert_eq!(after_clean, [false; 4], "never delivered, clean shutdown");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    for i in 0..4 {
        publish_confirmed(&ch, "", "flags", format!("n{i}").as_bytes(), persistent()).await;
    }
    let w = w.crash_and_restart().await;
    let (_c, ch) = w.channel().await;
    let after_crash: Vec<bool> = bodies(&ch, "flags").await.iter().map(|b| b.1).collect();
    assert_eq!(after_crash, [true; 4], "after a crash: possibly delivered");
}

/// A message recovered after a crash is flagged redelivered without a delivery record; when
/// it is then delivered, that delivery must be recorded, or a clean restart after it would
/// bring it back unflagged (found by the chaos suite).
#[tokio::test]
async fn a_delivery_after_a_crash_is_recorded_for_the_next_restart() {
    let w = WarrenProcess::start_fresh().await;
    let (_c, ch) = confirming(&w).await;
    durable_queue(&ch, "twice").await;
    publish_confirmed(&ch, "", "twice", b"m", persistent()).await;
    let w = w.crash_and_restart().await;
    let (c, ch) = w.channel().await;
    let m = ch
        .basic_get("twice".into(), BasicGetOptions { no_ack: false })
        .await
        .expect("basic.get")
        .expect("the message");
    assert!(m.delivery.redelivered, "after a crash");
    // Not acked: the clean shutdown requeues it.
    drop(c);
    let w = w.restart().await;
    let (_c, ch) = w.channel().await;
    let back = bodies(&ch, "twice").await;
    assert_eq!(
        back,
        vec![("m".to_string(), true)],
        "it was delivered before"
    );
}

/// Sequence numbers must never be reused across restarts: the ack log still holds the acks
/// of earlier messages, so a new message that got an old number was taken for acked at the
/// next recovery and lost. Here the queue is empty at the restart (everything acked).
#[tokio::test]
async fn a_message_published_after_a_restart_onto_an_emptied_queue_survives_the_next() {
    let w = WarrenProcess::start_fresh().await;
    let (_c, ch) = confirming(&w).await;
    durable_queue(&ch, "emptied").await;
    publish_confirmed(&ch, "", "emptied", b"first", persistent()).await;
    assert_eq!(bodies(&ch, "emptied").await.len(), 1);
    let w = w.restart().await;
    let (_c, ch) = confirming(&w).await;
    publish_confirmed(&ch, "", "emptied", b"second", persistent()).await;
    let w = w.crash_and_restart().await;
    let (_c, ch) = w.channel().await;
    assert_eq!(
        bodies(&ch, "emptied").await,
        vec![("second".to_string(), true)],
        "confirmed after the first restart"
    );
}

/// The same with priorities (found by the chaos suite): the newest message is consumed first,
/// so the highest number recovered is below numbers already acked.
#[tokio::test]
async fn priorities_do_not_make_a_restart_reuse_acked_message_numbers() {
    use lapin::types::AMQPValue;
    let w = WarrenProcess::start_fresh().await;
    let (_c, ch) = w.channel().await;
    let mut args = FieldTable::default();
    args.insert("x-max-priority".into(), AMQPValue::ShortShortUInt(5));
    ch.queue_declare(
        "prio".into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        args,
    )
    .await
    .expect("priority queue");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    publish_confirmed(&ch, "", "prio", b"low", persistent().with_priority(0)).await;
    publish_confirmed(&ch, "", "prio", b"high", persistent().with_priority(5)).await;
    let high = get(&ch, "prio").await.expect("the high one");
    assert_eq!(high.delivery.data, b"high");
    let w = w.restart().await;
    let (_c, ch) = confirming(&w).await;
    publish_confirmed(&ch, "", "prio", b"later", persistent().with_priority(0)).await;
    let w = w.crash_and_restart().await;
    let (_c, ch) = w.channel().await;
    let got: Vec<String> = bodies(&ch, "prio").await.into_iter().map(|b| b.0).collect();
    assert_eq!(got, ["low", "later"], "every confirmed message");
}

/// A durable TTL queue that dead-letters into another durable queue, through a named
/// exchange: messages that were waiting at a crash expire after the restart (their TTL starts
/// again at recovery) and reach the dead-letter queue exactly once, also across the next
/// restart. Expiry starts only once every queue, log and binding is back.
#[tokio::test]
async fn messages_waiting_out_a_ttl_at_a_crash_are_dead_lettered_once_after_it() {
    use lapin::types::AMQPValue;
    let w = WarrenProcess::start_fresh().await;
    {
        let (_c, ch) = w.channel().await;
        ch.exchange_declare(
            "dlx".into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("dead-letter exchange");
        durable_queue(&ch, "dead").await;
        ch.queue_bind(
            "dead".into(),
            "dlx".into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
        let mut args = FieldTable::default();
        args.insert("x-message-ttl".into(), AMQPValue::LongInt(1500));
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("dlx".into()),
        );
        ch.queue_declare(
            "waiting".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        )
        .await
        .expect("TTL queue");
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirm.select");
        for i in 0..20 {
            publish_confirmed(&ch, "", "waiting", format!("m{i}").as_bytes(), persistent()).await;
        }
    }
    let w = w.crash_and_restart().await;
    let (c, ch) = w.channel().await;
    let mut consumer = consume(&ch, "dead", false).await;
    for i in 0..20 {
        let d = next(&mut consumer).await;
        assert_eq!(d.data, format!("m{i}").as_bytes(), "in order, once each");
        assert!(d.properties.headers().is_some(), "x-death");
    }
    // Not acked: a clean restart keeps them, and nothing is dead-lettered a second time.
    c.close(200, "done".into()).await.expect("close");
    let w = w.restart().await;
    let (_c, ch) = w.channel().await;
    let back: Vec<String> = bodies(&ch, "dead").await.into_iter().map(|b| b.0).collect();
    let want: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    assert_eq!(back, want);
    assert_eq!(count(&ch, "waiting").await, 0);
}

/// Durable auto-delete exchanges front -> middle -> a transient queue: deleting the queue takes
/// middle, then front (the cascade), and a restart does not bring them back.
#[tokio::test]
async fn an_auto_delete_cascade_is_remembered_after_a_restart() {
    let w = WarrenProcess::start_fresh().await;
    let durable_auto_delete = ExchangeDeclareOptions {
        durable: true,
        auto_delete: true,
        ..Default::default()
    };
    {
        let (_c, ch) = w.channel().await;
        for x in ["front", "middle"] {
            ch.exchange_declare(
                x.into(),
                ExchangeKind::Fanout,
                durable_auto_delete,
                FieldTable::default(),
            )
            .await
            .unwrap();
        }
        ch.exchange_bind(
            "middle".into(),
            "front".into(),
            "".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        declare(&ch, "q").await;
        ch.queue_bind(
            "q".into(),
            "middle".into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.queue_delete("q".into(), QueueDeleteOptions::default())
            .await
            .unwrap();
    }
    let w = w.restart().await;
    let (c, _ch) = w.channel().await;
    for x in ["middle", "front"] {
        let ch = c.create_channel().await.unwrap();
        let err = ch
            .exchange_declare(
                x.into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(code_of(&err), Some(404), "exchange {x}");
    }
}

/// Once flagged redelivered by a crash, a message stays flagged: a client may have seen it
/// before the crash, and a clean restart after one without deliveries must not clear the flag
/// (found by the chaos suite: crash, clean restart, then a second delivery without the flag).
#[tokio::test]
async fn the_flag_a_crash_gives_survives_a_later_clean_restart() {
    let w = WarrenProcess::start_fresh().await;
    let (_c, ch) = confirming(&w).await;
    durable_queue(&ch, "kept").await;
    for i in 0..3 {
        publish_confirmed(&ch, "", "kept", format!("m{i}").as_bytes(), persistent()).await;
    }
    let w = w.crash_and_restart().await;
    {
        // Published after the crash and never delivered: not flagged later.
        let (_c, ch) = confirming(&w).await;
        publish_confirmed(&ch, "", "kept", b"new", persistent()).await;
    }
    let w = w.restart().await;
    let (_c, ch) = w.channel().await;
    assert_eq!(
        bodies(&ch, "kept").await,
        [
            ("m0".to_string(), true),
            ("m1".to_string(), true),
            ("m2".to_string(), true),
            ("new".to_string(), false),
        ]
    );
}

#[tokio::test]
async fn a_publish_refused_by_reject_publish_dlx_leaves_the_stored_messages_alone() {
    let w = WarrenProcess::start_fresh().await;
    {
        let (_c, ch) = confirming(&w).await;
        ch.queue_declare(
            "capped".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args(&[
                ("x-max-length", lapin::types::AMQPValue::LongInt(1)),
                ("x-overflow", text("reject-publish-dlx")),
                ("x-dead-letter-exchange", text("")),
                ("x-dead-letter-routing-key", text("overflow")),
            ]),
        )
        .await
        .expect("capped queue");
        durable_queue(&ch, "overflow").await;
        publish_confirmed(&ch, "", "capped", b"kept", persistent()).await;
        let refused = ch
            .basic_publish(
                "".into(),
                "capped".into(),
                BasicPublishOptions::default(),
                b"refused",
                persistent(),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(matches!(refused, Confirmation::Nack(_)), "{refused:?}");
        assert_eq!(
            count(&ch, "overflow").await,
            1,
            "the refused one is dead-lettered"
        );
    }
    let w = w.restart().await;
    let (_c, ch) = w.channel().await;
    assert_eq!(bodies(&ch, "capped").await, [("kept".to_string(), false)]);
    assert_eq!(
        bodies(&ch, "overflow").await,
        [("refused".to_string(), false)]
    );
}

/// An exchange-to-exchange binding answered bind-ok survives an immediate kill -9 (it used to
/// reach the disk only with the next durable change).
#[tokio::test]
async fn an_answered_exchange_binding_survives_kill_9() {
    let w = WarrenProcess::start_fresh().await;
    {
        let (_c, ch) = w.channel().await;
        for x in ["upstream", "downstream"] {
            ch.exchange_declare(
                x.into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        }
        durable_queue(&ch, "end").await;
        ch.queue_bind(
            "end".into(),
            "downstream".into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.exchange_bind(
            "downstream".into(),
            "upstream".into(),
            "".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    let w = w.crash_and_restart().await;
    let (_c, ch) = confirming(&w).await;
    publish_confirmed(&ch, "upstream", "", b"through both", persistent()).await;
    assert_eq!(
        bodies(&ch, "end").await,
        [("through both".to_string(), false)]
    );
}

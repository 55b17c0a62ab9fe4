//! Resource faults: a disk that fills up under a persistent publisher, a restart onto a full
//! disk, and a memory alarm that must clear once the backlog is gone. Nothing confirmed may
//! be lost or hidden, and alarms clear when their cause goes.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps

mod common;

use common::*;
use lapin::options::*;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::time::Duration;

const MIB: u64 = 1 << 20;

/// Publishes messages numbered `from..to` (the number in the first 4 bytes), persistent, and
/// returns their confirms without waiting for them.
async fn publish_numbered(
    ch: &Channel,
    queue: &str,
    from: u32,
    to: u32,
    size: usize,
) -> Vec<lapin::PublisherConfirm> {
    let mut body = vec![0u8; size.max(4)];
    let mut confirms = Vec::new();
    for i in from..to {
        body[..4].copy_from_slice(&i.to_be_bytes());
        let c = ch
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("publish");
        confirms.push(c);
    }
    confirms
}

async fn all_acked(confirms: Vec<lapin::PublisherConfirm>) {
    for c in confirms {
        let c = c.await.expect("confirm");
        assert!(c.is_ack(), "a message was nacked: {c:?}");
    }
}

/// Gets every message and checks they are numbered 0..n in order.
async fn drain_in_order(ch: &Channel, queue: &str, n: u32) {
    for expected in 0..n {
        let m = ch
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get")
            .unwrap_or_else(|| panic!("message {expected} of {n} is missing"));
        let d = &m.delivery.data;
        assert_eq!(u32::from_be_bytes([d[0], d[1], d[2], d[3]]), expected);
    }
    assert!(ch
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .expect("basic.get")
        .is_none());
}

/// The disk fills up while a persistent publisher is writing (no disk_free_limit to warn
/// first): writes fail with ENOSPC, possibly half-way through a record. The publisher is
/// blocked, its confirms wait, nothing is nacked; once space is back every message is
/// confirmed, and after a kill -9 every one of them comes back, in order.
#[tokio::test]
async fn a_disk_that_fills_up_loses_nothing_confirmed() {
    let Some(disk) = SmallDisk::mount(32 * MIB) else {
        return;
    };
    let data = disk.path.join("data");
    let w = WarrenProcess::start_in(data, &[("WARREN_DISK_FREE_LIMIT", "0")]).await;
    let conn = Connection::connect(&w.uri(), ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    durable_queue(&ch, "full").await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    all_acked(publish_numbered(&ch, "full", 0, 5_000, 1000).await).await;
    // Leave 300 KB: the next writes fail part-way through.
    let ballast = Ballast::new(&disk.path.join("ballast"), disk.free() - 300 * 1024);
    let more = tokio::spawn({
        let ch = ch.clone();
        async move { publish_numbered(&ch, "full", 5_000, 8_000, 1000).await }
    });
    assert!(
        eventually(|| async { conn.status().blocked() }).await,
        "the publisher must be blocked once writes fail"
    );
    assert!(
        w.logged("disk resource alarm set"),
        "the disk alarm is logged"
    );
    ballast.remove();
    let confirms = more.await.expect("publisher task");
    all_acked(confirms).await;
    assert!(
        eventually(|| async { !conn.status().blocked() }).await,
        "unblocked once writes succeed again"
    );
    drop(conn);
    let w = w.crash_and_restart().await;
    let (_c, ch) = w.channel().await;
    drain_in_order(&ch, "full", 8_000).await;
}

/// With disk_free_limit set, the flusher raises the alarm before a write round would take the
/// disk below the limit: a fast publisher is blocked before the disk is full.
#[tokio::test]
async fn the_disk_alarm_fires_before_the_disk_is_full() {
    let Some(disk) = SmallDisk::mount(64 * MIB) else {
        return;
    };
    let data = disk.path.join("data");
    let limit = MIB.to_string();
    let w = WarrenProcess::start_in(data, &[("WARREN_DISK_FREE_LIMIT", limit.as_str())]).await;
    let conn = Connection::connect(&w.uri(), ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    durable_queue(&ch, "fast").await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    // 120 MB of messages would not fit: the publisher must be stopped by the alarm.
    let publisher = tokio::spawn({
        let ch = ch.clone();
        async move { publish_numbered(&ch, "fast", 0, 30_000, 4000).await }
    });
    assert!(
        eventually(|| async { conn.status().blocked() }).await,
        "the publisher must be blocked"
    );
    publisher.abort();
    // Whatever was accepted before the block is written; then nothing more. Stop warren and
    // look at the disk: it never filled up.
    let mut w = w;
    w.kill9();
    assert!(
        disk.free() > 0,
        "the disk filled up before the alarm stopped the publisher"
    );
}

/// A restart onto a full disk reads every stored message back on the first try: the queue's
/// window is 20,000 messages and paging the rest out fails, so they stay in memory instead of
/// being dropped ("are lost") until a second restart.
#[tokio::test]
async fn a_restart_onto_a_full_disk_brings_every_message_back() {
    let Some(disk) = SmallDisk::mount(32 * MIB) else {
        return;
    };
    let data = disk.path.join("data");
    let w = WarrenProcess::start_in(data, &[("WARREN_DISK_FREE_LIMIT", "0")]).await;
    let (_c, ch) = w.channel().await;
    durable_queue(&ch, "big").await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    all_acked(publish_numbered(&ch, "big", 0, 50_000, 100).await).await;
    let mut w = w;
    w.kill9();
    let _ballast = Ballast::new(&disk.path.join("ballast"), disk.free());
    let w = w.crash_and_restart().await;
    let (_c, ch) = w.channel().await;
    drain_in_order(&ch, "big", 50_000).await;
    assert!(!w.logged("lost"), "nothing may be reported lost");
}

/// The memory alarm follows what Warren holds: after a backlog that raised it is purged, the
/// allocator's free memory goes back to the kernel and the alarm clears.
#[tokio::test]
async fn the_memory_alarm_clears_when_the_backlog_is_purged() {
    let watermark = (150 * MIB).to_string();
    let w = WarrenProcess::start_in(
        fresh_dir(),
        &[("WARREN_MEMORY_HIGH_WATERMARK_BYTES", watermark.as_str())],
    )
    .await;
    let publisher = Connection::connect(&w.uri(), ConnectionProperties::default())
        .await
        .expect("connect");
    let pch = publisher.create_channel().await.expect("channel");
    let (_admin, admin) = w.channel().await;
    let queues: Vec<String> = (0..8).map(|i| format!("backlog-{i}")).collect();
    for q in &queues {
        declare(&admin, q).await;
    }
    // 8 queues × 20,000 in-memory messages of 1 KiB: about 180 MB, over the watermark.
    let filling = tokio::spawn({
        let queues = queues.clone();
        async move {
            let body = vec![1u8; 1024];
            for i in 0..200_000usize {
                let q = &queues[i % queues.len()];
                let sent = pch
                    .basic_publish(
                        "".into(),
                        q.as_str().into(),
                        BasicPublishOptions::default(),
                        &body,
                        BasicProperties::default(),
                    )
                    .await;
                if sent.is_err() {
                    return;
                }
            }
        }
    });
    // However slowly a loaded machine publishes: the alarm must be up by the time the
    // publisher has sent everything (or is stuck because it is blocked).
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !publisher.status().blocked()
        && !filling.is_finished()
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        publisher.status().blocked(),
        "the backlog must raise the memory alarm"
    );
    filling.abort();
    for q in &queues {
        admin
            .queue_purge(q.as_str().into(), QueuePurgeOptions::default())
            .await
            .expect("purge");
    }
    assert!(
        eventually(|| async { !publisher.status().blocked() }).await,
        "the alarm must clear once the backlog is gone"
    );
}

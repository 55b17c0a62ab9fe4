//! Bounded memory: a queue holding far more than its window keeps RSS flat (the rest is paged
//! out) and still delivers everything in order.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use lapin::options::*;
use lapin::BasicProperties;

fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// The process's peak RSS so far (VmHWM).
fn peak_rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

#[tokio::test]
async fn a_backlog_beyond_the_window_is_paged_out_and_read_back_in_order() {
    let w = WarrenProcess::start_fresh().await;
    let (_c, ch) = w.channel().await;
    declare(&ch, "backlog").await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    const N: u32 = 150_000;
    fill(&ch, "backlog", N, 1024, false).await;
    assert_eq!(count(&ch, "backlog").await, N);
    // ~150 MB of bodies are queued; the window keeps at most 32 MiB of them in RAM.
    let rss = rss_bytes(w.child.id());
    assert!(
        rss < 120 * 1024 * 1024,
        "RSS {} MiB with 150 MB queued",
        rss / (1024 * 1024)
    );
    let spool_bytes: u64 = std::fs::read_dir(w.data_dir.join("spool"))
        .map(|d| {
            d.flatten()
                .map(|e| e.metadata().map_or(0, |m| m.len()))
                .sum()
        })
        .unwrap_or(0);
    assert!(
        spool_bytes > 100_000_000,
        "paged out only {spool_bytes} bytes"
    );
    ch.basic_qos(1000, BasicQosOptions::default())
        .await
        .unwrap();
    let mut c = consume(&ch, "backlog", false).await;
    for i in 0..N {
        let d = next(&mut c).await;
        assert_eq!(
            u32::from_be_bytes(d.data[..4].try_into().unwrap()),
            i,
            "out of order"
        );
        if i % 500 == 499 {
            d.acker
                .ack(BasicAckOptions { multiple: true })
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn a_priority_queue_pages_out_and_keeps_priority_then_fifo_order() {
    let w = WarrenProcess::start_fresh().await;
    let (_c, ch) = w.channel().await;
    ch.queue_declare(
        "prio-backlog".into(),
        QueueDeclareOptions::default(),
        args(&[("x-max-priority", lapin::types::AMQPValue::LongInt(5))]),
    )
    .await
    .unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    const N: u32 = 50_000;
    let mut last = None;
    let mut body = vec![0u8; 256];
    for i in 0..N {
        let priority = if i % 2 == 0 { 5 } else { 1 };
        body[..4].copy_from_slice(&i.to_be_bytes());
        last = Some(
            ch.basic_publish(
                "".into(),
                "prio-backlog".into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default().with_priority(priority),
            )
            .await
            .unwrap(),
        );
    }
    last.unwrap().await.unwrap();
    assert_eq!(count(&ch, "prio-backlog").await, N);
    let paged = std::fs::read_dir(w.data_dir.join("spool"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(paged > 0, "nothing was paged out");
    let mut c = consume(&ch, "prio-backlog", true).await;
    let expected = (0..N).step_by(2).chain((1..N).step_by(2));
    for want in expected {
        let d = next(&mut c).await;
        assert_eq!(u32::from_be_bytes(d.data[..4].try_into().unwrap()), want);
    }
}

/// A no-ack consumer that stops reading holds at most a small window of large messages in the
/// broker's memory: the rest stays in the queue (and pages out), and all of it arrives, in
/// order, once the consumer reads again.
#[tokio::test]
async fn a_stalled_no_ack_consumer_of_large_messages_keeps_memory_bounded() {
    use amq_protocol::protocol::{basic, AMQPClass};
    let w = WarrenProcess::start_fresh().await;
    let (_c, ch) = w.channel().await;
    declare(&ch, "large").await;
    let mut reader = RawClient::connect(w.addr).await;
    reader.open_channel(1).await;
    reader
        .send_method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
                queue: "large".into(),
                consumer_tag: "stalled".into(),
                no_local: false,
                no_ack: true,
                exclusive: false,
                nowait: false,
                arguments: Default::default(),
            })),
        )
        .await;
    assert!(matches!(
        reader.read_method().await,
        Some((1, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_))))
    ));
    // The consumer now reads nothing while 3,000 x 64 KiB (192 MiB) are published.
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    const N: u32 = 3000;
    fill(&ch, "large", N, 64 * 1024, false).await;
    let rss = rss_bytes(w.child.id());
    assert!(
        rss < 110 * 1024 * 1024,
        "RSS {} MiB with 192 MiB published to a stalled consumer",
        rss / (1024 * 1024)
    );
    let mut expected = 0u32;
    let mut body_so_far = Vec::new();
    while expected < N {
        match reader.read_frame().await {
            RawFrame::Body(1, part) => {
                body_so_far.extend_from_slice(&part);
                if body_so_far.len() == 64 * 1024 {
                    let seq = u32::from_be_bytes(body_so_far[..4].try_into().unwrap());
                    assert_eq!(seq, expected, "out of order");
                    expected += 1;
                    body_so_far.clear();
                }
            }
            RawFrame::Closed => panic!("connection closed after {expected} messages"),
            _ => {}
        }
    }
}

/// Publishes `n` messages of `size` bytes (persistent or not) to `queue`, each starting with
/// its number (u32, big-endian), and waits for the confirms (the channel is in confirm mode).
async fn fill(ch: &lapin::Channel, queue: &str, n: u32, size: usize, persistent: bool) {
    let props = if persistent {
        BasicProperties::default().with_delivery_mode(2)
    } else {
        BasicProperties::default()
    };
    let mut body = vec![1u8; size.max(4)];
    let mut last = None;
    for i in 0..n {
        body[..4].copy_from_slice(&i.to_be_bytes());
        last = Some(
            ch.basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                &body,
                props.clone(),
            )
            .await
            .unwrap(),
        );
    }
    last.unwrap().await.unwrap();
}

/// Purging or deleting a paged-out backlog does not read it back into memory, and a purged
/// durable queue stays empty after a restart.
#[tokio::test]
async fn purging_or_deleting_a_paged_out_backlog_keeps_memory_bounded() {
    let w = WarrenProcess::start_fresh().await;
    let (_c, ch) = w.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.queue_declare(
        "durable-backlog".into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        Default::default(),
    )
    .await
    .unwrap();
    declare(&ch, "transient-backlog").await;
    const N: u32 = 80_000;
    fill(&ch, "durable-backlog", N, 1024, true).await;
    fill(&ch, "transient-backlog", N, 1024, false).await;
    let before = peak_rss_bytes(w.child.id());
    let purged = ch
        .queue_purge("durable-backlog".into(), QueuePurgeOptions::default())
        .await
        .unwrap();
    assert_eq!(purged, N);
    let deleted = ch
        .queue_delete("transient-backlog".into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(deleted, N);
    let after = peak_rss_bytes(w.child.id());
    // 160 MB were queued, all but two 32 MiB windows of it on disk.
    assert!(
        after < before + 40 * 1024 * 1024,
        "peak RSS grew from {} to {} MiB",
        before / (1024 * 1024),
        after / (1024 * 1024)
    );
    drop(ch);
    drop(_c);
    let w = w.restart().await;
    let (_c, ch) = w.channel().await;
    assert_eq!(count(&ch, "durable-backlog").await, 0);
}

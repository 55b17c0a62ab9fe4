//! Resource alarms (memory, disk): publishers are blocked with connection.blocked, consumers
//! keep working.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use lapin::options::*;
use lapin::types::FieldTable;

#[tokio::test]
async fn memory_alarm_blocks_publishers_while_consumers_keep_working() {
    // A watermark of one byte: the alarm is on from the start.
    blocks_publishers_only(start_with(|c| c.memory_high_watermark_bytes = 1).await).await;
}

#[tokio::test]
async fn disk_alarm_blocks_publishers_while_consumers_keep_working() {
    // No disk has this much free space: the disk alarm is on from the start.
    blocks_publishers_only(start_with(|c| c.disk_free_limit = u64::MAX).await).await;
}

async fn blocks_publishers_only(b: TestBroker) {
    let (consumer_conn, consumer) = b.channel().await;
    declare(&consumer, "during-alarm").await;
    let mut deliveries = consume(&consumer, "during-alarm", true).await;
    let (publisher_conn, publisher) = b.channel().await;
    publish(&publisher, "", "during-alarm", b"first").await;
    // The publish that arrived is delivered; then the publisher is told it is blocked.
    assert_eq!(next(&mut deliveries).await.data, b"first");
    assert!(
        eventually(|| async { publisher_conn.status().blocked() }).await,
        "the publishing connection must receive connection.blocked"
    );
    assert!(
        !consumer_conn.status().blocked(),
        "a connection that never published stays unblocked"
    );
    // The consuming connection still works normally.
    let ch = consumer_conn.create_channel().await.unwrap();
    ch.queue_declare(
        "other".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("consumers keep working during an alarm");
}

#[tokio::test]
async fn publishers_are_unblocked_when_the_disk_alarm_clears() {
    // Take 2 GiB of real disk space, set the limit 1 GiB above what is then free, and give the
    // space back: the alarm goes on, then off, with a wide margin against other tests' writes.
    let ballast = Ballast::new(
        &std::env::temp_dir().join(format!("warren-ballast-{}", std::process::id())),
        2 << 30,
    );
    let free = fs4::available_space(std::env::temp_dir()).unwrap();
    let b = start_with(|c| c.disk_free_limit = free + (1 << 30)).await;
    let (publisher_conn, publisher) = b.channel().await;
    declare(&publisher, "disk").await;
    publish(&publisher, "", "disk", b"first").await;
    assert!(
        eventually(|| async { publisher_conn.status().blocked() }).await,
        "blocked while the disk is short"
    );
    ballast.remove();
    assert!(
        eventually(|| async { !publisher_conn.status().blocked() }).await,
        "connection.unblocked once space is back"
    );
    publish(&publisher, "", "disk", b"second").await;
    assert_eq!(count(&publisher, "disk").await, 2);
}

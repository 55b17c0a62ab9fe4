//! Exactly-once publishing within a window: the deduplication exchange of the community plugin
//! (type x-message-deduplication) and LavinMQ's x-message-deduplication argument. A message
//! whose x-deduplication-header was seen recently routes nowhere but is still confirmed.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use lapin::options::*;

use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation};

const DEDUP: &str = "x-message-deduplication";
const HEADER: &str = "x-deduplication-header";

async fn declare_dedup(
    ch: &Channel,
    name: &str,
    durable: bool,
    arguments: FieldTable,
) -> Result<(), lapin::Error> {
    ch.exchange_declare(
        name.into(),
        lapin::ExchangeKind::Custom(DEDUP.into()),
        ExchangeDeclareOptions {
            durable,
            ..Default::default()
        },
        arguments,
    )
    .await
}

/// The arguments of a cache of `size` keys with this persistence (`disk` or `memory`).
fn cache_args(size: i32, persistence: &str) -> FieldTable {
    args(&[
        ("x-cache-size", AMQPValue::LongInt(size)),
        ("x-cache-persistence", text(persistence)),
    ])
}

async fn bind(ch: &Channel, queue: &str, exchange: &str, key: &str) {
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
}

fn with_key(key: Option<&str>) -> BasicProperties {
    let mut h = FieldTable::default();
    if let Some(k) = key {
        h.insert(ShortString::from(HEADER), text(k));
    }
    BasicProperties::default()
        .with_headers(h)
        .with_delivery_mode(2)
}

/// Publishes and waits for the confirm.
async fn publish_keyed(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &str,
    key: Option<&str>,
    mandatory: bool,
) -> Confirmation {
    ch.basic_publish(
        exchange.into(),
        routing_key.into(),
        BasicPublishOptions {
            mandatory,
            ..Default::default()
        },
        body.as_bytes(),
        with_key(key),
    )
    .await
    .unwrap()
    .await
    .unwrap()
}

#[tokio::test]
async fn a_duplicate_routes_nowhere_and_is_still_confirmed() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare_dedup(
        &ch,
        "once",
        false,
        args(&[("x-cache-size", AMQPValue::LongInt(100))]),
    )
    .await
    .unwrap();
    declare(&ch, "q1").await;
    declare(&ch, "q2").await;
    // It routes like fanout: the binding keys do not matter.
    bind(&ch, "q1", "once", "a").await;
    bind(&ch, "q2", "once", "b").await;
    for (body, key) in [
        ("first", Some("k1")),
        ("again", Some("k1")),
        ("second", Some("k2")),
        ("plain", None),
        ("plain again", None),
        ("third", Some("k2 ")),
    ] {
        let confirmed = publish_keyed(&ch, "once", "any", body, key, false).await;
        assert!(confirmed.is_ack(), "{body}: {confirmed:?}");
        assert!(confirmed.take_message().is_none(), "{body} came back");
    }
    let expected = ["first", "second", "plain", "plain again", "third"];
    assert_eq!(drain(&ch, "q1").await, expected);
    assert_eq!(drain(&ch, "q2").await, expected);

    // Mandatory: a duplicate comes back as unroutable (312 NO_ROUTE), then is acked.
    let confirmed = publish_keyed(&ch, "once", "any", "dup", Some("k1"), true).await;
    assert!(confirmed.is_ack());
    let returned = confirmed
        .take_message()
        .expect("a mandatory duplicate is returned");
    assert_eq!(returned.reply_code, 312);
    assert_eq!(returned.reply_text.as_str(), "NO_ROUTE");
    assert_eq!(returned.data, b"dup");
}

#[tokio::test]
async fn arguments_are_checked_as_the_plugin_checks_them() {
    let b = start().await;
    for (arguments, text_wanted) in [
        (
            FieldTable::default(),
            "PRECONDITION_FAILED - Missing or invalid argument, 'x-cache-size' must be an integer greater than 0",
        ),
        (
            args(&[("x-cache-size", AMQPValue::LongInt(0))]),
            "PRECONDITION_FAILED - Missing or invalid argument, 'x-cache-size' must be an integer greater than 0",
        ),
        (
            args(&[("x-cache-size", AMQPValue::LongInt(5)), ("x-cache-ttl", text("soon"))]),
            "PRECONDITION_FAILED - Invalid argument, 'x-cache-ttl' must be an integer greater than 0",
        ),
        (
            args(&[("x-cache-size", AMQPValue::LongInt(5)), ("x-cache-persistence", text("tape"))]),
            "PRECONDITION_FAILED - Invalid argument, 'x-cache-persistence' must be either 'disk' or 'memory'",
        ),
    ] {
        let (_c, ch) = b.channel().await;
        let e = declare_dedup(&ch, "bad", false, arguments).await.unwrap_err();
        assert_eq!(reply_of(&e), (406, text_wanted.to_string()));
    }
    // Nothing was declared.
    let (_c, ch) = b.channel().await;
    let e = ch
        .exchange_declare(
            "bad".into(),
            lapin::ExchangeKind::Custom(DEDUP.into()),
            ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), Some(404));
}

#[tokio::test]
async fn lavinmq_style_a_flag_on_any_exchange_with_a_named_header() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.exchange_declare(
        "orders".into(),
        lapin::ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        args(&[
            ("x-message-deduplication", AMQPValue::Boolean(true)),
            ("x-cache-size", AMQPValue::LongInt(2)),
            ("x-deduplication-header", text("order-id")),
        ]),
    )
    .await
    .unwrap();
    declare(&ch, "eu").await;
    declare(&ch, "us").await;
    bind(&ch, "eu", "orders", "eu").await;
    bind(&ch, "us", "orders", "us").await;
    let order = |id: i64| {
        let mut h = FieldTable::default();
        h.insert(ShortString::from("order-id"), AMQPValue::LongLongInt(id));
        BasicProperties::default().with_headers(h)
    };
    for (key, body, id) in [
        ("eu", "o1", 1),
        ("us", "o1 again", 1),
        ("us", "o2", 2),
        ("eu", "o3", 3),
        ("eu", "o1 after eviction", 1),
    ] {
        ch.basic_publish(
            "orders".into(),
            key.into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            order(id),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    // Routing is the exchange type's (direct); a cache of two keys forgot o1 when o3 came.
    assert_eq!(drain(&ch, "eu").await, ["o1", "o3", "o1 after eviction"]);
    assert_eq!(drain(&ch, "us").await, ["o2"]);
}

#[tokio::test]
async fn a_publisher_that_retries_after_a_lost_confirm_delivers_each_message_once() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare_dedup(
        &ch,
        "once",
        true,
        args(&[("x-cache-size", AMQPValue::LongInt(10_000))]),
    )
    .await
    .unwrap();
    durable_queue(&ch, "work").await;
    bind(&ch, "work", "once", "").await;
    const N: usize = 50;
    {
        // The first attempt: everything is published, then the connection dies before the
        // publisher has read a single confirm.
        let (c, pch) = b.channel().await;
        pch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        for i in 0..N {
            let _unread = pch
                .basic_publish(
                    "once".into(),
                    "".into(),
                    BasicPublishOptions::default(),
                    format!("m{i}").as_bytes(),
                    with_key(Some(&format!("id-{i}"))),
                )
                .await
                .unwrap();
        }
        // The broker has them all (the publisher cannot know that).
        assert!(eventually(|| async { count(&ch, "work").await as usize == N }).await);
        drop(pch);
        drop(c);
    }
    // The retry: every message again, each confirmed.
    let (_c2, rch) = b.channel().await;
    rch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for i in 0..N {
        let confirmed = publish_keyed(
            &rch,
            "once",
            "",
            &format!("m{i}"),
            Some(&format!("id-{i}")),
            false,
        )
        .await;
        assert!(confirmed.is_ack());
    }
    let got = drain(&ch, "work").await;
    let expected: Vec<String> = (0..N).map(|i| format!("m{i}")).collect();
    assert_eq!(got, expected, "each message exactly once, in order");
}

#[tokio::test]
async fn a_disk_cache_survives_restarts_and_crashes_a_memory_cache_does_not() {
    let mut w = WarrenProcess::start_fresh().await;
    {
        let (c, ch) = w.channel().await;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let disk = cache_args(1000, "disk");
        let memory = cache_args(1000, "memory");
        declare_dedup(&ch, "on-disk", true, disk).await.unwrap();
        declare_dedup(&ch, "in-memory", true, memory).await.unwrap();
        durable_queue(&ch, "kept").await;
        bind(&ch, "kept", "on-disk", "").await;
        bind(&ch, "kept", "in-memory", "").await;
        publish_keyed(&ch, "on-disk", "", "d1", Some("a"), false).await;
        publish_keyed(&ch, "in-memory", "", "m1", Some("a"), false).await;
        c.close(200, "bye".into()).await.unwrap();
    }
    w = w.restart().await;
    {
        let (c, ch) = w.channel().await;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        publish_keyed(&ch, "on-disk", "", "d1 retried", Some("a"), false).await;
        publish_keyed(&ch, "in-memory", "", "m1 after restart", Some("a"), false).await;
        publish_keyed(&ch, "on-disk", "", "d2", Some("b"), false).await;
        c.close(200, "bye".into()).await.unwrap();
    }
    w = w.crash_and_restart().await;
    let (_c, ch) = w.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    publish_keyed(
        &ch,
        "on-disk",
        "",
        "d2 retried after kill -9",
        Some("b"),
        false,
    )
    .await;
    publish_keyed(&ch, "on-disk", "", "d1 retried again", Some("a"), false).await;
    assert_eq!(
        drain(&ch, "kept").await,
        ["d1", "m1", "m1 after restart", "d2"]
    );
}

#[tokio::test]
async fn confirmed_messages_retried_after_kill_9_are_not_duplicated() {
    let w = WarrenProcess::start_fresh().await;
    const N: usize = 300;
    let mut confirmed = Vec::new();
    {
        let (_c, ch) = w.channel().await;
        let disk = args(&[
            ("x-cache-size", AMQPValue::LongInt(100_000)),
            ("x-cache-persistence", text("disk")),
        ]);
        declare_dedup(&ch, "once", true, disk).await.unwrap();
        durable_queue(&ch, "work").await;
        bind(&ch, "work", "once", "").await;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let mut pending = Vec::new();
        for i in 0..N {
            pending.push((
                i,
                ch.basic_publish(
                    "once".into(),
                    "".into(),
                    BasicPublishOptions::default(),
                    format!("m{i}").as_bytes(),
                    with_key(Some(&format!("id-{i}"))),
                )
                .await
                .unwrap(),
            ));
            if i == N / 2 {
                // Half of them confirmed for sure; the rest in flight when the broker dies.
                for (id, p) in pending.drain(..) {
                    if p.await.is_ok_and(|c| c.is_ack()) {
                        confirmed.push(id);
                    }
                }
            }
        }
    }
    let w = w.crash_and_restart().await;
    // The publisher retries everything it has no confirm for, and (not knowing) some it has.
    let (_c, ch) = w.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for i in 0..N {
        let c = publish_keyed(
            &ch,
            "once",
            "",
            &format!("m{i}"),
            Some(&format!("id-{i}")),
            false,
        )
        .await;
        assert!(c.is_ack());
    }
    let mut seen = std::collections::HashMap::new();
    for body in drain(&ch, "work").await {
        *seen.entry(body).or_insert(0) += 1;
    }
    for i in 0..N {
        assert_eq!(
            seen.get(&format!("m{i}")),
            Some(&1),
            "m{i} exactly once ({} confirmed before the crash)",
            confirmed.len()
        );
    }
}

/// Publishes keyed messages to the default exchange (straight to `queue`), confirmed.
async fn to_queue(ch: &Channel, queue: &str, body: &str, key: &str) {
    let c = publish_keyed(ch, "", queue, body, Some(key), false).await;
    assert!(c.is_ack(), "{body}: {c:?}");
}

#[tokio::test]
async fn a_deduplicating_queue_holds_each_key_once_while_the_message_is_in_it() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.queue_declare(
        "jobs".into(),
        QueueDeclareOptions::default(),
        args(&[("x-message-deduplication", AMQPValue::Boolean(true))]),
    )
    .await
    .unwrap();
    to_queue(&ch, "jobs", "a1", "a").await;
    to_queue(&ch, "jobs", "a2", "a").await; // dropped: a is ready in the queue
    to_queue(&ch, "jobs", "b1", "b").await;
    assert_eq!(count(&ch, "jobs").await, 2);

    // Delivered but not acked: the key is still held.
    let a = get_unacked(&ch, "jobs").await;
    assert_eq!(a.delivery.data, b"a1");
    to_queue(&ch, "jobs", "a3", "a").await;
    assert_eq!(count(&ch, "jobs").await, 1);
    // Requeued: still held.
    a.delivery
        .nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await
        .unwrap();
    to_queue(&ch, "jobs", "a4", "a").await;
    assert_eq!(count(&ch, "jobs").await, 2);
    // Acked: released.
    let a = get_unacked(&ch, "jobs").await;
    assert_eq!(a.delivery.data, b"a1");
    assert!(a.delivery.redelivered);
    a.delivery.ack(BasicAckOptions::default()).await.unwrap();
    to_queue(&ch, "jobs", "a5", "a").await;
    // Rejected without requeue: released.
    let b1 = get_unacked(&ch, "jobs").await;
    assert_eq!(b1.delivery.data, b"b1");
    b1.delivery
        .reject(BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    to_queue(&ch, "jobs", "b2", "b").await;
    // Purged: released.
    ch.queue_purge("jobs".into(), QueuePurgeOptions::default())
        .await
        .unwrap();
    to_queue(&ch, "jobs", "a6", "a").await;
    // Taken with no-ack: released at once.
    let got = get(&ch, "jobs").await.expect("a6");
    assert_eq!(got.delivery.data, b"a6");
    to_queue(&ch, "jobs", "a7", "a").await;
    assert_eq!(drain(&ch, "jobs").await, ["a7"]);
}

#[tokio::test]
async fn an_expired_message_releases_its_key() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.queue_declare(
        "short".into(),
        QueueDeclareOptions::default(),
        args(&[
            ("x-message-deduplication", AMQPValue::Boolean(true)),
            ("x-message-ttl", AMQPValue::LongInt(50)),
        ]),
    )
    .await
    .unwrap();
    to_queue(&ch, "short", "first", "k").await;
    assert!(eventually(|| async { count(&ch, "short").await == 0 }).await);
    to_queue(&ch, "short", "second", "k").await;
    let got = get(&ch, "short")
        .await
        .expect("the key was released by the expiry");
    assert_eq!(got.delivery.data, b"second");
}

/// basic.get with manual ack.
async fn get_unacked(ch: &Channel, queue: &str) -> lapin::message::BasicGetMessage {
    ch.basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await
        .unwrap()
        .expect("a message")
}

#[tokio::test]
async fn any_header_type_is_a_key_and_long_strings_are_not_cut() {
    // The plugin keys on the header's value whatever its type (integers of any width being
    // one key) and has no length limit: a longstr id is not a shortstr.
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare_dedup(
        &ch,
        "ids",
        false,
        args(&[("x-cache-size", AMQPValue::LongInt(100))]),
    )
    .await
    .unwrap();
    declare(&ch, "seen").await;
    bind(&ch, "seen", "ids", "").await;
    let long_a = "a".repeat(1000);
    let long_b = format!("{}b", "a".repeat(999));
    for (body, id) in [
        ("int 7", AMQPValue::LongInt(7)),
        ("long 7", AMQPValue::LongLongInt(7)),
        ("string 7", text("7")),
        ("true", AMQPValue::Boolean(true)),
        ("true again", AMQPValue::Boolean(true)),
        ("long a", text(&long_a)),
        ("long a again", text(&long_a)),
        ("long b", text(&long_b)),
    ] {
        let mut h = FieldTable::default();
        h.insert(ShortString::from(HEADER), id);
        let c = ch
            .basic_publish(
                "ids".into(),
                "".into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default().with_headers(h),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(c.is_ack(), "{body}");
    }
    assert_eq!(
        drain(&ch, "seen").await,
        ["int 7", "string 7", "true", "long a", "long b"]
    );
}

#[tokio::test]
async fn a_rejected_message_dead_lettered_back_to_its_own_queue_is_not_its_own_duplicate() {
    // RabbitMQ drops the rejected message (releasing its key) before the dead letter arrives
    // back: a retry loop through the queue's own dead-letter settings keeps the message.
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.queue_declare(
        "retry".into(),
        QueueDeclareOptions::default(),
        args(&[
            ("x-message-deduplication", AMQPValue::Boolean(true)),
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text("retry")),
        ]),
    )
    .await
    .unwrap();
    to_queue(&ch, "retry", "job", "k").await;
    let first = get_unacked(&ch, "retry").await;
    first
        .delivery
        .reject(BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    assert!(eventually(|| async { count(&ch, "retry").await == 1 }).await);
    let again = get_unacked(&ch, "retry").await;
    assert_eq!(again.delivery.data, b"job");
    let deaths = again
        .delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-death").cloned());
    assert!(deaths.is_some(), "dead-lettered, with x-death");
    // The key is held by the dead letter now.
    to_queue(&ch, "retry", "job again", "k").await;
    again
        .delivery
        .ack(BasicAckOptions::default())
        .await
        .unwrap();
    assert!(drain(&ch, "retry").await.is_empty());
}

#[tokio::test]
async fn a_publish_a_queue_refused_is_not_remembered_as_seen() {
    // A queue at its limit with x-overflow reject-publish nacks the message: the publisher
    // retries later, and that retry must not be taken for a duplicate of a message that was
    // never kept.
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare_dedup(
        &ch,
        "once",
        false,
        args(&[("x-cache-size", AMQPValue::LongInt(100))]),
    )
    .await
    .unwrap();
    declare_with(
        &ch,
        "small",
        args(&[
            ("x-max-length", AMQPValue::LongInt(1)),
            ("x-overflow", text("reject-publish")),
        ]),
    )
    .await;
    bind(&ch, "small", "once", "").await;
    assert!(publish_keyed(&ch, "once", "", "m1", Some("1"), false)
        .await
        .is_ack());
    let refused = publish_keyed(&ch, "once", "", "m2", Some("2"), false).await;
    assert!(refused.is_nack(), "the queue is full: {refused:?}");
    assert_eq!(drain(&ch, "small").await, ["m1"]);
    let retried = publish_keyed(&ch, "once", "", "m2", Some("2"), false).await;
    assert!(retried.is_ack());
    assert_eq!(drain(&ch, "small").await, ["m2"], "the retry was kept");
}

#[tokio::test]
async fn an_old_backlog_does_not_push_newer_keys_out_of_a_disk_cache_at_restart() {
    // Keys come back from the cache's log; keys of recovered messages only fill spare room
    // (they may be keys the log lost in a crash). An old backlog in another queue must not
    // evict the newest keys.
    let mut w = WarrenProcess::start_fresh().await;
    {
        let (c, ch) = w.channel().await;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let disk = cache_args(2, "disk");
        declare_dedup(&ch, "ids", true, disk).await.unwrap();
        durable_queue(&ch, "old").await;
        durable_queue(&ch, "new").await;
        bind(&ch, "old", "ids", "").await;
        for k in ["a", "b"] {
            assert!(publish_keyed(&ch, "ids", "", k, Some(k), false)
                .await
                .is_ack());
        }
        ch.queue_unbind("old".into(), "ids".into(), "".into(), FieldTable::default())
            .await
            .unwrap();
        bind(&ch, "new", "ids", "").await;
        for k in ["c", "d"] {
            assert!(publish_keyed(&ch, "ids", "", k, Some(k), false)
                .await
                .is_ack());
        }
        c.close(200, "bye".into()).await.unwrap();
    }
    w = w.restart().await;
    let (_c, ch) = w.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for k in ["c", "d"] {
        let retried = format!("{k} retried");
        assert!(publish_keyed(&ch, "ids", "", &retried, Some(k), false)
            .await
            .is_ack());
    }
    assert_eq!(drain(&ch, "new").await, ["c", "d"]);
    assert_eq!(drain(&ch, "old").await, ["a", "b"]);
}

/// The deduplication logs in a data folder.
fn dedup_files(data_dir: &std::path::Path) -> usize {
    let Ok(vhosts) = std::fs::read_dir(data_dir.join("dedup")) else {
        return 0;
    };
    vhosts
        .flatten()
        .filter_map(|v| std::fs::read_dir(v.path()).ok())
        .map(|files| files.count())
        .sum()
}

#[tokio::test]
async fn disk_caches_leave_no_files_behind_their_exchange_or_vhost() {
    let disk = || cache_args(10, "disk");
    // A transient exchange's keys go with it at the next start.
    let mut w = WarrenProcess::start_fresh().await;
    {
        let (c, ch) = w.channel().await;
        declare_dedup(&ch, "kept", true, disk()).await.unwrap();
        declare_dedup(&ch, "transient", false, disk())
            .await
            .unwrap();
        c.close(200, "bye".into()).await.unwrap();
    }
    assert_eq!(dedup_files(&w.data_dir), 2);
    w = w.restart().await;
    assert_eq!(
        dedup_files(&w.data_dir),
        1,
        "only the durable exchange's log"
    );
    drop(w);

    // Deleting a vhost removes its exchanges' logs.
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare_dedup(&ch, "kept", true, disk()).await.unwrap();
    assert_eq!(dedup_files(&b.data_dir), 1);
    assert!(b.broker.delete_vhost("/").expect("delete /"));
    assert_eq!(dedup_files(&b.data_dir), 0);
}

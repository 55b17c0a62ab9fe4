//! The queue core on its own: no runtime, no socket, no vhost. Each test publishes, consumes
//! and settles through the queue's operations and reads what a client would see (order,
//! redelivered flags, what was dead-lettered and why) from the deliveries and the effects.

use super::*;
use crate::broker::clock;
use crate::broker::consumer::{Credit, NO_ACK_WINDOW};
use crate::protocol::properties::rewrite;
use crate::protocol::{AMQPValue, ShortString};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

fn queue_with(args: &[(&str, AMQPValue)]) -> Arc<Queue> {
    queue_spooling_to(args, None)
}

/// A queue that pages out to `spool` (None: never).
fn queue_spooling_to(args: &[(&str, AMQPValue)], spool: Option<std::path::PathBuf>) -> Arc<Queue> {
    let mut arguments = FieldTable::default();
    for (k, v) in args {
        arguments.insert(ShortString::from(*k), v.clone());
    }
    let spec = QueueSpec {
        name: "q".into(),
        durable: false,
        exclusive_owner: None,
        auto_delete: false,
        arguments,
    };
    Queue::new(spec, "/".into(), None, spool, None)
}

fn long(v: i64) -> AMQPValue {
    AMQPValue::LongLongInt(v)
}

fn text(v: &str) -> AMQPValue {
    AMQPValue::LongString(v.as_bytes().to_vec().into())
}

fn message(body: &str) -> Message {
    Message::new("", b"q", &[], body.as_bytes())
}

fn with_priority(body: &str, priority: u8) -> Message {
    let props = rewrite(&[], |p| *p = p.clone().with_priority(priority));
    Message::new("", b"q", &props, body.as_bytes())
}

fn with_expiration(body: &str, ms: u64) -> Message {
    let props = rewrite(&[], |p| {
        *p = p.clone().with_expiration(ms.to_string().into())
    });
    Message::new("", b"q", &props, body.as_bytes())
}

/// A consumer taking acks, with `prefetch` (0: unlimited), and the inbox of its connection.
fn consumer(
    tag: &str,
    prefetch: u32,
    priority: i64,
) -> (ConsumerEntry, UnboundedReceiver<Outbound>) {
    let (tx, rx) = unbounded_channel();
    let entry = ConsumerEntry {
        tag: tag.into(),
        conn_id: 1,
        channel: 1,
        tx,
        no_ack: false,
        exclusive: false,
        credit: Arc::new(Credit::with_limit(prefetch)),
        channel_credit: Arc::new(Credit::with_limit(0)),
        priority,
        window: Arc::new(Credit::with_limit(NO_ACK_WINDOW)),
    };
    (entry, rx)
}

/// Everything delivered so far: (consumer tag, body, redelivered).
fn received(rx: &mut UnboundedReceiver<Outbound>) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        if let Outbound::Deliver(d) = ev {
            let tag = d.consumer_tag.to_string();
            for m in d.into_messages() {
                out.push((tag.clone(), body(&m), m.redelivered));
            }
        }
    }
    out
}

/// The delivered messages themselves, for settling them.
fn delivered(rx: &mut UnboundedReceiver<Outbound>) -> Vec<QueuedMessage> {
    let mut out = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        if let Outbound::Deliver(d) = ev {
            out.extend(d.into_messages());
        }
    }
    out
}

fn body(m: &QueuedMessage) -> String {
    String::from_utf8_lossy(m.message.body()).into_owned()
}

fn bodies(ms: &[&QueuedMessage]) -> Vec<String> {
    ms.iter().map(|m| body(m)).collect()
}

fn publish(q: &Arc<Queue>, m: Message) -> Effects {
    let (enqueued, fx) = q.publish(m);
    assert!(!enqueued.rejected);
    fx
}

fn get_all(q: &Arc<Queue>) -> Vec<String> {
    let mut out = Vec::new();
    while let (Some((m, _)), _) = q.get(false) {
        out.push(body(&m));
    }
    out
}

#[test]
fn messages_reach_a_consumer_in_publish_order() {
    let q = queue_with(&[]);
    for b in ["m0", "m1", "m2"] {
        assert!(publish(&q, message(b)).is_empty());
    }
    let (c, mut rx) = consumer("c", 0, 0);
    assert!(q.add_consumer(c).unwrap().is_empty());
    let got: Vec<String> = received(&mut rx).into_iter().map(|r| r.1).collect();
    assert_eq!(got, ["m0", "m1", "m2"]);
    assert_eq!(q.message_count(), 0);
}

#[test]
fn requeued_messages_go_back_to_their_places_flagged_redelivered() {
    let q = queue_with(&[]);
    let (c, mut rx) = consumer("c", 2, 0);
    let credit = c.credit.clone();
    assert!(q.add_consumer(c).unwrap().is_empty());
    for b in ["m0", "m1", "m2", "m3"] {
        assert!(publish(&q, message(b)).is_empty());
    }
    let first = delivered(&mut rx);
    assert_eq!(first.iter().map(body).collect::<Vec<_>>(), ["m0", "m1"]);
    // Nacked with requeue, in reverse order: they come back first, in their old order.
    credit.give_back(2);
    let mut back = first;
    back.reverse();
    assert!(q.requeue(back).is_empty());
    let again = received(&mut rx);
    assert_eq!(
        again,
        [
            ("c".into(), "m0".into(), true),
            ("c".into(), "m1".into(), true)
        ]
    );
    assert_eq!(get_all(&q), ["m2", "m3"]);
}

#[test]
fn a_message_past_its_ttl_is_dead_lettered_not_delivered() {
    clock::set_for_test(10_000);
    let q = queue_with(&[("x-message-ttl", long(100))]);
    assert!(publish(&q, message("old")).dead.is_empty());
    clock::advance_for_test(50);
    let fx = publish(&q, message("young"));
    assert!(fx.dead.is_empty());
    clock::advance_for_test(60); // "old" is 110 ms old, "young" 60 ms
    let (c, mut rx) = consumer("c", 0, 0);
    let fx = q.add_consumer(c).unwrap();
    assert_eq!(bodies(&fx.dead_for(Reason::Expired)), ["old"]);
    assert_eq!(received(&mut rx), [("c".into(), "young".into(), false)]);
}

#[test]
fn the_shorter_of_queue_ttl_and_message_expiration_applies() {
    clock::set_for_test(10_000);
    let q = queue_with(&[("x-message-ttl", long(1_000))]);
    let fx = publish(&q, with_expiration("short", 10));
    let timer = fx
        .arm_expiry
        .expect("a message that expires needs the expiry timer");
    assert_eq!(timer.at, 10_010);
    let fx = publish(&q, message("long"));
    assert_eq!(
        fx.arm_expiry, None,
        "the running timer looks at the head in time"
    );
    clock::advance_for_test(20);
    let (next, fx) = q.expire_due(timer.generation);
    assert_eq!(bodies(&fx.dead_for(Reason::Expired)), ["short"]);
    assert_eq!(
        next,
        Some(11_000),
        "the timer wakes when the new head is due"
    );
    assert_eq!(get_all(&q), ["long"]);
}

#[test]
fn a_message_with_ttl_0_reaches_a_waiting_consumer_and_expires_otherwise() {
    clock::set_for_test(10_000);
    let q = queue_with(&[("x-message-ttl", long(0))]);
    let (c, mut rx) = consumer("c", 1, 0);
    let credit = c.credit.clone();
    assert!(q.add_consumer(c).unwrap().is_empty());
    assert!(publish(&q, message("m0")).dead.is_empty());
    // The consumer's one credit is taken: the next message cannot wait.
    clock::advance_for_test(1);
    let fx = publish(&q, message("m1"));
    clock::advance_for_test(1);
    let generation = fx.arm_expiry.map_or(0, |t| t.generation);
    let (_, later) = q.expire_due(generation);
    let mut dead = bodies(&fx.dead_for(Reason::Expired));
    dead.extend(bodies(&later.dead_for(Reason::Expired)));
    assert_eq!(dead, ["m1"]);
    assert_eq!(received(&mut rx), [("c".into(), "m0".into(), false)]);
    credit.give_back(1);
}

#[test]
fn max_length_drops_the_oldest_by_default() {
    let q = queue_with(&[("x-max-length", long(2))]);
    let _ = publish(&q, message("m0"));
    let _ = publish(&q, message("m1"));
    let fx = publish(&q, message("m2"));
    assert_eq!(bodies(&fx.dead_for(Reason::Maxlen)), ["m0"]);
    assert!(fx.dead.iter().all(|d| d.in_log));
    assert_eq!(get_all(&q), ["m1", "m2"]);
}

#[test]
fn reject_publish_refuses_the_new_message_and_keeps_the_old() {
    let q = queue_with(&[
        ("x-max-length", long(1)),
        ("x-overflow", text("reject-publish")),
    ]);
    let _ = publish(&q, message("m0"));
    let (enqueued, fx) = q.publish(message("m1"));
    assert!(enqueued.rejected);
    assert!(fx.is_empty(), "reject-publish dead-letters nothing");
    assert_eq!(get_all(&q), ["m0"]);
}

#[test]
fn reject_publish_dlx_dead_letters_the_refused_message_without_touching_the_log() {
    let q = queue_with(&[
        ("x-max-length", long(1)),
        ("x-overflow", text("reject-publish-dlx")),
    ]);
    let _ = publish(&q, message("m0"));
    let (enqueued, fx) = q.publish(message("m1"));
    assert!(enqueued.rejected);
    assert_eq!(bodies(&fx.dead_for(Reason::Maxlen)), ["m1"]);
    // It never had a log record; releasing its made-up number would release another's.
    assert!(fx.dead.iter().all(|d| !d.in_log));
    assert_eq!(get_all(&q), ["m0"]);
}

#[test]
fn higher_priority_messages_leave_first_and_fifo_within_a_priority() {
    let q = queue_with(&[("x-max-priority", long(5))]);
    for (b, p) in [("low-a", 1), ("high", 9), ("mid", 3), ("low-b", 1)] {
        let _ = publish(&q, with_priority(b, p));
    }
    // 9 is capped at x-max-priority 5 and still the highest.
    assert_eq!(get_all(&q), ["high", "mid", "low-a", "low-b"]);
}

#[test]
fn consumers_take_turns_and_a_higher_priority_consumer_goes_first() {
    let q = queue_with(&[]);
    let (a, mut rx_a) = consumer("a", 1, 0);
    let (b, mut rx_b) = consumer("b", 1, 0);
    let (vip, mut rx_vip) = consumer("vip", 2, 10);
    for c in [a, b, vip] {
        assert!(q.add_consumer(c).unwrap().is_empty());
    }
    for m in ["m0", "m1", "m2", "m3"] {
        let _ = publish(&q, message(m));
    }
    let vip_got: Vec<String> = received(&mut rx_vip).into_iter().map(|r| r.1).collect();
    assert_eq!(
        vip_got,
        ["m0", "m1"],
        "the priority consumer fills its credit first"
    );
    let a_got: Vec<String> = received(&mut rx_a).into_iter().map(|r| r.1).collect();
    let b_got: Vec<String> = received(&mut rx_b).into_iter().map(|r| r.1).collect();
    assert_eq!((a_got, b_got), (vec!["m2".into()], vec!["m3".into()]));
}

#[test]
fn a_single_active_consumer_gets_everything_until_it_goes() {
    let q = queue_with(&[("x-single-active-consumer", AMQPValue::Boolean(true))]);
    let (first, mut rx1) = consumer("first", 0, 0);
    let (second, mut rx2) = consumer("second", 0, 0);
    assert!(q.add_consumer(first).unwrap().is_empty());
    assert!(q.add_consumer(second).unwrap().is_empty());
    let _ = publish(&q, message("m0"));
    let _ = publish(&q, message("m1"));
    assert_eq!(received(&mut rx1).len(), 2);
    assert!(received(&mut rx2).is_empty());
    assert!(q.remove_consumer(1, 1, "first").is_empty());
    let _ = publish(&q, message("m2"));
    assert_eq!(received(&mut rx2), [("second".into(), "m2".into(), false)]);
}

#[test]
fn an_auto_delete_queue_asks_to_go_when_its_last_consumer_leaves() {
    let spec = QueueSpec {
        name: "auto".into(),
        durable: false,
        exclusive_owner: None,
        auto_delete: true,
        arguments: FieldTable::default(),
    };
    let q = Queue::new(spec, "/".into(), None, None, None);
    let (a, _rx_a) = consumer("a", 0, 0);
    let (b, _rx_b) = consumer("b", 0, 0);
    assert!(q.add_consumer(a).unwrap().is_empty());
    assert!(q.add_consumer(b).unwrap().is_empty());
    assert!(!q.remove_consumer(1, 1, "a").delete);
    assert!(q.remove_consumer(1, 1, "b").delete);
}

#[test]
fn a_quorum_queue_dead_letters_a_message_returned_more_than_its_delivery_limit() {
    let q = queue_with(&[
        ("x-queue-type", text("quorum")),
        ("x-delivery-limit", long(1)),
    ]);
    let (c, mut rx) = consumer("c", 1, 0);
    let credit = c.credit.clone();
    assert!(q.add_consumer(c).unwrap().is_empty());
    let _ = publish(&q, message("m0"));
    for round in 0..2 {
        let got = delivered(&mut rx);
        assert_eq!(got.len(), 1, "round {round}");
        credit.give_back(1);
        let fx = q.requeue(got);
        if round == 1 {
            assert_eq!(bodies(&fx.dead_for(Reason::DeliveryLimit)), ["m0"]);
        } else {
            assert!(fx.dead.is_empty());
        }
    }
    assert_eq!(q.message_count(), 0);
}

#[test]
fn an_unused_queue_expires_after_x_expires_and_a_consumer_keeps_it() {
    clock::set_for_test(10_000);
    let q = queue_with(&[("x-expires", long(500))]);
    assert_eq!(q.idle_check(), IdleCheck::At(10_500));
    let (c, _rx) = consumer("c", 0, 0);
    assert!(q.add_consumer(c).unwrap().is_empty());
    clock::advance_for_test(1_000);
    assert_eq!(
        q.idle_check(),
        IdleCheck::At(11_500),
        "in use while it has a consumer"
    );
    assert!(q.remove_consumer(1, 1, "c").is_empty());
    clock::advance_for_test(499);
    assert_eq!(q.idle_check(), IdleCheck::At(11_500));
    clock::advance_for_test(1);
    assert_eq!(q.idle_check(), IdleCheck::Expired);
    q.delete();
    assert_eq!(q.idle_check(), IdleCheck::Stop);
}

#[test]
fn rejected_messages_are_handed_back_for_dead_lettering() {
    let q = queue_with(&[("x-dead-letter-exchange", text("dlx"))]);
    let (c, mut rx) = consumer("c", 0, 0);
    assert!(q.add_consumer(c).unwrap().is_empty());
    let _ = publish(&q, message("m0"));
    let fx = q.reject(delivered(&mut rx));
    assert_eq!(bodies(&fx.dead_for(Reason::Rejected)), ["m0"]);
}

#[test]
fn a_deleted_queue_cancels_its_consumers_and_takes_nothing_more() {
    let q = queue_with(&[]);
    let (c, mut rx) = consumer("c", 0, 0);
    assert!(q.add_consumer(c).unwrap().is_empty());
    let _ = publish(&q, message("m0"));
    assert_eq!(received(&mut rx).len(), 1);
    q.delete();
    assert!(matches!(rx.try_recv(), Ok(Outbound::Cancelled { .. })));
    let (enqueued, fx) = q.publish(message("m1"));
    assert!(!enqueued.rejected && fx.is_empty());
    assert_eq!(q.message_count(), 0);
}

#[test]
fn taking_the_head_wakes_the_expiry_timer_for_an_earlier_new_head() {
    clock::set_for_test(10_000);
    let q = queue_with(&[]);
    let first = publish(&q, with_expiration("long", 5_000))
        .arm_expiry
        .expect("a timer for the head");
    assert_eq!(first.at, 15_000);
    let fx = publish(&q, with_expiration("short", 100));
    assert_eq!(
        fx.arm_expiry, None,
        "behind the head it waits (head-first expiry)"
    );
    // basic.get takes "long": "short" is the head now and due long before 15 s.
    let (got, fx) = q.get(false);
    assert_eq!(got.map(|(m, _)| body(&m)).as_deref(), Some("long"));
    let second = fx.arm_expiry.expect("a timer for the new head");
    assert_eq!(second.at, 10_100);
    clock::advance_for_test(100);
    let (next, fx) = q.expire_due(second.generation);
    assert_eq!(bodies(&fx.dead_for(Reason::Expired)), ["short"]);
    assert_eq!(next, None, "nothing left to expire");
    let (next, fx) = q.expire_due(first.generation);
    assert_eq!((next, fx.is_empty()), (None, true), "the older timer ends");
}

#[test]
fn a_message_put_back_before_its_time_gets_a_timer_when_none_runs() {
    clock::set_for_test(10_000);
    let q = queue_with(&[("x-message-ttl", long(1_000))]);
    let _ = publish(&q, message("held"));
    let _ = publish(&q, with_expiration("short", 100));
    let (got, fx) = q.get(false);
    let (held, _) = got.expect("held");
    let timer = fx.arm_expiry.expect("a timer for the new head");
    clock::advance_for_test(100);
    let (next, fx) = q.expire_due(timer.generation);
    assert_eq!(bodies(&fx.dead_for(Reason::Expired)), ["short"]);
    assert_eq!(next, None, "nothing left to expire: the timer ends");
    // Nacked with requeue before its TTL has passed: a timer for it.
    clock::advance_for_test(100);
    let fx = q.requeue(vec![held]);
    assert_eq!(fx.arm_expiry.map(|t| t.at), Some(11_000));
}

#[test]
fn keys_of_paged_out_messages_that_could_not_be_read_back_are_forgotten() {
    let dir = std::env::temp_dir().join(format!("warren-spool-loss-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let q = queue_spooling_to(
        &[("x-message-deduplication", AMQPValue::Boolean(true))],
        Some(dir.join("q")),
    );
    let keyed = |i: usize| {
        let props = rewrite(&[], |p| {
            let mut h = FieldTable::default();
            h.insert(
                crate::broker::dedup_key::DEFAULT_HEADER.into(),
                text(&format!("k{i}")),
            );
            *p = p.clone().with_headers(h)
        });
        Message::new("", b"q", &props, &[0u8; 256])
    };
    let total = spool::WINDOW_MESSAGES + 20_000;
    for i in 0..total {
        let (out, _) = q.publish(keyed(i));
        assert!(!out.duplicate);
    }
    // The spool file is damaged under the queue.
    let spool_file = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".spool"))
        .expect("messages were paged out");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&spool_file)
        .unwrap()
        .set_len(0)
        .unwrap();
    // Draining the window reads the spool back, which fails: those messages are lost.
    while q.get(true).0.is_some() {}
    let (out, _) = q.publish(keyed(total - 1));
    assert!(
        !out.duplicate,
        "a lost message's key does not refuse its retry"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! Exchanges and routing: default, direct, fanout, topic, headers; mandatory returns.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, ExchangeKind};

async fn exchange(ch: &Channel, name: &str, kind: ExchangeKind) {
    ch.exchange_declare(
        name.into(),
        kind,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("exchange.declare");
}

async fn bind(ch: &Channel, q: &str, x: &str, key: &str, args: FieldTable) {
    ch.queue_bind(
        q.into(),
        x.into(),
        key.into(),
        QueueBindOptions::default(),
        args,
    )
    .await
    .expect("queue.bind");
}

/// Publishes one message and waits for its confirm (the channel is in confirm mode).
async fn confirmed(
    ch: &Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
) -> lapin::Result<lapin::Confirmation> {
    ch.basic_publish(
        exchange.into(),
        key.into(),
        BasicPublishOptions::default(),
        body,
        BasicProperties::default(),
    )
    .await?
    .await
}

#[tokio::test]
async fn default_exchange_routes_by_queue_name() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "q1").await;
    publish(&ch, "", "q1", b"a").await;
    publish(&ch, "", "nowhere", b"b").await;
    let m = get(&ch, "q1").await.expect("a message");
    assert_eq!(m.delivery.data, b"a");
    assert_eq!(m.delivery.exchange.as_str(), "");
    assert_eq!(m.delivery.routing_key.as_str(), "q1");
    assert!(get(&ch, "q1").await.is_none());
}

#[tokio::test]
async fn direct_exchange_matches_the_exact_key() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    exchange(&ch, "logs", ExchangeKind::Direct).await;
    for q in ["errors", "all"] {
        declare(&ch, q).await;
    }
    bind(&ch, "errors", "logs", "error", FieldTable::default()).await;
    for key in ["error", "info", "warning"] {
        bind(&ch, "all", "logs", key, FieldTable::default()).await;
    }
    for key in ["info", "error", "debug", "warning"] {
        publish(&ch, "logs", key, key.as_bytes()).await;
    }
    assert_eq!(drain(&ch, "errors").await, ["error"]);
    assert_eq!(drain(&ch, "all").await, ["info", "error", "warning"]);
}

#[tokio::test]
async fn predeclared_amq_direct_and_one_copy_per_queue() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "q").await;
    // Two bindings that both match must still deliver once.
    bind(&ch, "q", "amq.direct", "k", FieldTable::default()).await;
    bind(&ch, "q", "amq.topic", "k", FieldTable::default()).await;
    bind(&ch, "q", "amq.topic", "#", FieldTable::default()).await;
    publish(&ch, "amq.direct", "k", b"1").await;
    publish(&ch, "amq.topic", "k", b"2").await;
    assert_eq!(drain(&ch, "q").await, ["1", "2"]);
}

#[tokio::test]
async fn fanout_copies_to_every_bound_queue() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    exchange(&ch, "fan", ExchangeKind::Fanout).await;
    for q in ["f1", "f2", "f3"] {
        declare(&ch, q).await;
        bind(&ch, q, "fan", "ignored", FieldTable::default()).await;
    }
    publish(&ch, "fan", "any", b"x").await;
    for q in ["f1", "f2", "f3"] {
        assert_eq!(drain(&ch, q).await, ["x"]);
    }
}

#[tokio::test]
async fn topic_star_and_hash() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    exchange(&ch, "t", ExchangeKind::Topic).await;
    let patterns = [
        ("star", "*.orange.*"),
        ("lazy", "lazy.#"),
        ("rabbit", "*.*.rabbit"),
        ("hash", "#"),
        ("a_star", "a.*"),
        ("a_hash", "a.#"),
        ("mid", "a.#.z"),
    ];
    for (q, p) in patterns {
        declare(&ch, q).await;
        bind(&ch, q, "t", p, FieldTable::default()).await;
    }
    for key in [
        "quick.orange.rabbit",
        "lazy",
        "lazy.pink.rabbit",
        "a",
        "a.b",
        "a.z",
        "a.b.c.z",
        "orange",
    ] {
        publish(&ch, "t", key, key.as_bytes()).await;
    }
    assert_eq!(drain(&ch, "star").await, ["quick.orange.rabbit"]);
    assert_eq!(drain(&ch, "lazy").await, ["lazy", "lazy.pink.rabbit"]);
    assert_eq!(
        drain(&ch, "rabbit").await,
        ["quick.orange.rabbit", "lazy.pink.rabbit"]
    );
    assert_eq!(drain(&ch, "hash").await.len(), 8);
    assert_eq!(drain(&ch, "a_star").await, ["a.b", "a.z"]);
    assert_eq!(drain(&ch, "a_hash").await, ["a", "a.b", "a.z", "a.b.c.z"]);
    assert_eq!(drain(&ch, "mid").await, ["a.z", "a.b.c.z"]);
}

/// An empty routing key has no words (RabbitMQ): only `""` and `#` match it; `*`, `#.*` and
/// `*.#` need a word. "." is two empty words.
#[tokio::test]
async fn topic_empty_routing_key_has_no_words() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    exchange(&ch, "t", ExchangeKind::Topic).await;
    let patterns = [
        ("empty", ""),
        ("hash", "#"),
        ("star", "*"),
        ("hash_star", "#.*"),
        ("star_hash", "*.#"),
        ("star_star", "*.*"),
    ];
    for (q, p) in patterns {
        declare(&ch, q).await;
        bind(&ch, q, "t", p, FieldTable::default()).await;
    }
    for key in ["", ".", "a"] {
        publish(&ch, "t", key, format!("<{key}>").as_bytes()).await;
    }
    assert_eq!(drain(&ch, "empty").await, ["<>"]);
    assert_eq!(drain(&ch, "hash").await, ["<>", "<.>", "<a>"]);
    assert_eq!(drain(&ch, "star").await, ["<a>"]);
    assert_eq!(drain(&ch, "hash_star").await, ["<.>", "<a>"]);
    assert_eq!(drain(&ch, "star_hash").await, ["<.>", "<a>"]);
    assert_eq!(drain(&ch, "star_star").await, ["<.>"]);
}

fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert(ShortString::from(*k), v.clone());
    }
    t
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.as_bytes().to_vec().into())
}

#[tokio::test]
async fn headers_exchange_all_any_with_x_and_void() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let bindings = [
        (
            "all",
            table(&[
                ("x-match", text("all")),
                ("a", text("1")),
                ("b", AMQPValue::LongInt(2)),
            ]),
        ),
        (
            "any",
            table(&[
                ("x-match", text("any")),
                ("a", text("1")),
                ("b", AMQPValue::LongInt(2)),
            ]),
        ),
        ("default_all", table(&[("a", text("1"))])),
        (
            "void",
            table(&[("x-match", text("all")), ("c", AMQPValue::Void)]),
        ),
        (
            "x_ignored",
            table(&[("x-match", text("all")), ("x-k", text("v"))]),
        ),
        (
            "all_with_x",
            table(&[("x-match", text("all-with-x")), ("x-k", text("v"))]),
        ),
        (
            "any_with_x",
            table(&[
                ("x-match", text("any-with-x")),
                ("x-k", text("v")),
                ("zz", text("no")),
            ]),
        ),
    ];
    for (q, args) in bindings {
        declare(&ch, q).await;
        bind(&ch, q, "amq.headers", "", args).await;
    }
    let send = |name: &'static str, headers: FieldTable| {
        let ch = ch.clone();
        async move {
            ch.basic_publish(
                "amq.headers".into(),
                "".into(),
                BasicPublishOptions::default(),
                name.as_bytes(),
                BasicProperties::default().with_headers(headers),
            )
            .await
            .expect("publish");
        }
    };
    // LongLongInt 2 must equal the binding's LongInt 2 (RabbitMQ compares values).
    send(
        "both",
        table(&[("a", text("1")), ("b", AMQPValue::LongLongInt(2))]),
    )
    .await;
    send("a_only", table(&[("a", text("1"))])).await;
    send("c_any_value", table(&[("c", AMQPValue::Boolean(false))])).await;
    send("xk", table(&[("x-k", text("v"))])).await;
    send("wrong_b", table(&[("a", text("1")), ("b", text("2"))])).await;
    assert_eq!(drain(&ch, "all").await, ["both"]);
    assert_eq!(drain(&ch, "any").await, ["both", "a_only", "wrong_b"]);
    assert_eq!(
        drain(&ch, "default_all").await,
        ["both", "a_only", "wrong_b"]
    );
    assert_eq!(drain(&ch, "void").await, ["c_any_value"]);
    assert_eq!(
        drain(&ch, "x_ignored").await.len(),
        5,
        "no non-x keys under all: everything matches"
    );
    assert_eq!(drain(&ch, "all_with_x").await, ["xk"]);
    assert_eq!(drain(&ch, "any_with_x").await, ["xk"]);
}

#[tokio::test]
async fn unbind_stops_routing_and_deleting_a_queue_drops_its_bindings() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    exchange(&ch, "d", ExchangeKind::Direct).await;
    declare(&ch, "q").await;
    bind(&ch, "q", "d", "k", FieldTable::default()).await;
    publish(&ch, "d", "k", b"1").await;
    ch.queue_unbind("q".into(), "d".into(), "k".into(), FieldTable::default())
        .await
        .expect("unbind");
    publish(&ch, "d", "k", b"2").await;
    assert_eq!(drain(&ch, "q").await, ["1"]);
    // exchange.delete if-unused now succeeds because the binding is gone.
    ch.exchange_delete(
        "d".into(),
        ExchangeDeleteOptions {
            if_unused: true,
            ..Default::default()
        },
    )
    .await
    .expect("delete unused exchange");
}

#[tokio::test]
async fn mandatory_unroutable_is_returned_with_312_before_its_confirm() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let confirm = ch
        .basic_publish(
            "amq.direct".into(),
            "nobody".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"lost",
            BasicProperties::default().with_message_id("m1".into()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    match confirm {
        lapin::Confirmation::Ack(Some(ret)) => {
            assert_eq!(ret.reply_code, 312);
            assert_eq!(ret.reply_text.as_str(), "NO_ROUTE");
            assert_eq!(ret.delivery.data, b"lost");
            assert_eq!(ret.delivery.routing_key.as_str(), "nobody");
            assert_eq!(
                ret.delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|s| s.as_str()),
                Some("m1")
            );
        }
        other => panic!("expected an ack carrying the returned message, got {other:?}"),
    }
}

#[tokio::test]
async fn publish_to_a_missing_exchange_closes_the_channel_with_404() {
    let b = start().await;
    let (c, ch) = b.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let r = ch
        .basic_publish(
            "nope".into(),
            "k".into(),
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default(),
        )
        .await;
    let err = match r {
        Ok(confirm) => confirm.await.expect_err("publish must fail"),
        Err(e) => e,
    };
    assert_eq!(
        reply_of(&err),
        (
            404,
            "NOT_FOUND - no exchange 'nope' in vhost '/'".to_string()
        )
    );
    // The connection survives.
    let ch2 = c.create_channel().await.expect("connection still usable");
    declare(&ch2, "still-fine").await;
}

#[tokio::test]
async fn properties_rabbitmq_refuses_close_the_channel_with_406() {
    let b = start().await;
    let (c, _) = b.channel().await;
    let cases = [
        (
            BasicProperties::default().with_user_id("bob".into()),
            "PRECONDITION_FAILED - user_id property set to 'bob' but authenticated user was 'guest'",
        ),
        (
            BasicProperties::default().with_expiration("abc".into()),
            "PRECONDITION_FAILED - invalid expiration 'abc': no_integer",
        ),
        (
            BasicProperties::default().with_delivery_mode(9),
            "PRECONDITION_FAILED - invalid message: {delivery_mode_unknown,9}",
        ),
    ];
    for (props, text) in cases {
        let ch = c.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let r = ch
            .basic_publish(
                "".into(),
                "q".into(),
                BasicPublishOptions::default(),
                b"x",
                props,
            )
            .await;
        let err = match r {
            Ok(confirm) => confirm.await.expect_err("must be refused"),
            Err(e) => e,
        };
        assert_eq!(reply_of(&err), (406, text.to_string()));
    }
    let ch = c.create_channel().await.unwrap();
    declare(&ch, "q").await;
    ch.basic_publish(
        "".into(),
        "q".into(),
        BasicPublishOptions::default(),
        b"x",
        BasicProperties::default().with_user_id("guest".into()),
    )
    .await
    .unwrap();
    assert_eq!(count(&ch, "q").await, 1);
}

#[tokio::test]
async fn unbinding_from_missing_things_is_fine() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.queue_unbind(
        "nope".into(),
        "nope".into(),
        "k".into(),
        FieldTable::default(),
    )
    .await
    .expect("idempotent unbind");
}

#[tokio::test]
async fn exchange_to_exchange_bindings_route_once_even_through_loops() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    exchange(&ch, "src", ExchangeKind::Direct).await;
    exchange(&ch, "mid", ExchangeKind::Fanout).await;
    declare(&ch, "e2e").await;
    bind(&ch, "e2e", "mid", "", FieldTable::default()).await;
    ch.exchange_bind(
        "mid".into(),
        "src".into(),
        "k".into(),
        ExchangeBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("exchange.bind");
    // A loop back to the source must not duplicate or hang.
    ch.exchange_bind(
        "src".into(),
        "mid".into(),
        "".into(),
        ExchangeBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("exchange.bind loop");
    bind(&ch, "e2e", "src", "k", FieldTable::default()).await;
    publish(&ch, "src", "k", b"once").await;
    publish(&ch, "src", "other", b"not-routed-by-src").await;
    assert_eq!(drain(&ch, "e2e").await, ["once"]);
    ch.exchange_unbind(
        "mid".into(),
        "src".into(),
        "k".into(),
        ExchangeUnbindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("exchange.unbind");
    ch.queue_unbind(
        "e2e".into(),
        "src".into(),
        "k".into(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    publish(&ch, "src", "k", b"gone").await;
    assert!(drain(&ch, "e2e").await.is_empty());
    let err = ch
        .exchange_bind(
            "mid".into(),
            "missing".into(),
            "".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        reply_of(&err),
        (404, "NOT_FOUND - no exchange 'missing' in vhost '/'".into())
    );
}

#[tokio::test]
async fn unroutable_messages_go_to_the_alternate_exchange() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    exchange(&ch, "ae", ExchangeKind::Fanout).await;
    declare(&ch, "unrouted").await;
    bind(&ch, "unrouted", "ae", "", FieldTable::default()).await;
    let mut a = FieldTable::default();
    a.insert(ShortString::from("alternate-exchange"), text("ae"));
    ch.exchange_declare(
        "main".into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        a,
    )
    .await
    .unwrap();
    declare(&ch, "routed").await;
    bind(&ch, "routed", "main", "k", FieldTable::default()).await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for key in ["k", "other"] {
        let confirm = ch
            .basic_publish(
                "main".into(),
                key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                key.as_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        // Routed through the alternate exchange: no basic.return.
        assert!(
            matches!(confirm, lapin::Confirmation::Ack(None)),
            "{confirm:?}"
        );
    }
    assert_eq!(drain(&ch, "routed").await, ["k"]);
    assert_eq!(drain(&ch, "unrouted").await, ["other"]);
}

#[tokio::test]
async fn cc_and_bcc_headers_add_routing_keys_and_bcc_is_stripped() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    for q in ["to", "cc", "bcc"] {
        declare(&ch, q).await;
        bind(&ch, q, "amq.direct", q, FieldTable::default()).await;
    }
    let mut h = FieldTable::default();
    let list = |k: &str| {
        let mut a = lapin::types::FieldArray::default();
        a.push(text(k));
        AMQPValue::FieldArray(a)
    };
    h.insert(ShortString::from("CC"), list("cc"));
    h.insert(ShortString::from("BCC"), list("bcc"));
    ch.basic_publish(
        "amq.direct".into(),
        "to".into(),
        BasicPublishOptions::default(),
        b"memo",
        BasicProperties::default().with_headers(h),
    )
    .await
    .unwrap();
    for q in ["to", "cc", "bcc"] {
        let m = get(&ch, q)
            .await
            .unwrap_or_else(|| panic!("nothing in {q}"));
        assert_eq!(m.delivery.routing_key.as_str(), "to");
        let headers = m.delivery.properties.headers().clone().unwrap();
        assert!(headers.inner().contains_key("CC"), "CC is kept");
        assert!(!headers.inner().contains_key("BCC"), "BCC is removed");
    }
}

/// Each exchange type's index changes one binding at a time: unbinding one of a queue's
/// bindings keeps the others routing, one copy per queue however many bindings match.
#[tokio::test]
async fn unbinding_one_of_several_bindings_keeps_the_others() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let unbind = |q: &'static str, x: &'static str, key: &'static str, args: FieldTable| {
        let ch = ch.clone();
        async move {
            ch.queue_unbind(q.into(), x.into(), key.into(), args)
                .await
                .expect("queue.unbind");
        }
    };
    let send = |x: &'static str, key: &'static str, body: &'static str, headers: FieldTable| {
        let ch = ch.clone();
        async move {
            ch.basic_publish(
                x.into(),
                key.into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default().with_headers(headers),
            )
            .await
            .expect("publish");
        }
    };
    let none = FieldTable::default;
    for (x, kind) in [
        ("d", ExchangeKind::Direct),
        ("f", ExchangeKind::Fanout),
        ("t", ExchangeKind::Topic),
    ] {
        exchange(&ch, x, kind).await;
    }
    for q in ["q1", "q2", "h"] {
        declare(&ch, q).await;
    }
    // direct: q1 and q2 share a key; q1 has a second key.
    bind(&ch, "q1", "d", "k", none()).await;
    bind(&ch, "q2", "d", "k", none()).await;
    bind(&ch, "q1", "d", "k2", none()).await;
    unbind("q1", "d", "k", none()).await;
    send("d", "k", "d-k", none()).await;
    send("d", "k2", "d-k2", none()).await;
    // fanout: q1 bound twice (keys do not matter); one unbind keeps it bound once.
    bind(&ch, "q1", "f", "a", none()).await;
    bind(&ch, "q1", "f", "b", none()).await;
    unbind("q1", "f", "a", none()).await;
    send("f", "", "f-1", none()).await;
    unbind("q1", "f", "b", none()).await;
    send("f", "", "f-2", none()).await;
    // topic: q2 by "a.*" and "#"; removing "#" prunes nothing "a.*" needs.
    bind(&ch, "q2", "t", "a.*", none()).await;
    bind(&ch, "q2", "t", "#", none()).await;
    bind(&ch, "q1", "t", "a.b.c", none()).await;
    unbind("q2", "t", "#", none()).await;
    send("t", "a.x", "t-ax", none()).await;
    send("t", "b", "t-b", none()).await;
    send("t", "a.b.c", "t-abc", none()).await;
    unbind("q1", "t", "a.b.c", none()).await;
    send("t", "a.b.c", "t-abc-2", none()).await;
    // headers: h bound twice with different arguments; unbinding one keeps the other.
    let on = |k: &str| table(&[("x-match", text("any")), (k, AMQPValue::Void)]);
    bind(&ch, "h", "amq.headers", "", on("p")).await;
    bind(&ch, "h", "amq.headers", "", on("q")).await;
    unbind("h", "amq.headers", "", on("p")).await;
    send("amq.headers", "", "h-p", table(&[("p", text("1"))])).await;
    send("amq.headers", "", "h-q", table(&[("q", text("1"))])).await;
    assert_eq!(drain(&ch, "q1").await, ["d-k2", "f-1", "t-abc"]);
    assert_eq!(drain(&ch, "q2").await, ["d-k", "t-ax"]);
    assert_eq!(drain(&ch, "h").await, ["h-q"]);
}

#[tokio::test]
async fn a_publisher_follows_its_exchange_being_deleted_and_declared_again() {
    // The channel keeps the exchange it publishes to: after a delete and a new declare of
    // the name (by another connection), its publishes go where the new exchange routes, and
    // with no exchange they fail with 404.
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let (_admin_conn, admin) = b.channel().await;
    for q in ["old-q", "new-q"] {
        declare(&admin, q).await;
    }
    exchange(&admin, "moving", ExchangeKind::Fanout).await;
    bind(&admin, "old-q", "moving", "", FieldTable::default()).await;
    confirmed(&ch, "moving", "", b"1").await.unwrap();

    admin
        .exchange_delete("moving".into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
    exchange(&admin, "moving", ExchangeKind::Direct).await;
    bind(&admin, "new-q", "moving", "k", FieldTable::default()).await;
    confirmed(&ch, "moving", "k", b"2").await.unwrap();
    confirmed(&ch, "moving", "other", b"unroutable now")
        .await
        .unwrap();
    assert_eq!(drain(&admin, "old-q").await, ["1"]);
    assert_eq!(drain(&admin, "new-q").await, ["2"]);

    admin
        .exchange_delete("moving".into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
    let err = confirmed(&ch, "moving", "k", b"3")
        .await
        .expect_err("publish must fail");
    assert_eq!(
        reply_of(&err),
        (
            404,
            "NOT_FOUND - no exchange 'moving' in vhost '/'".to_string()
        )
    );
}

#[tokio::test]
async fn a_publisher_repeating_one_key_sees_every_binding_change_at_its_next_publish() {
    // A channel that publishes to one exchange with one key reuses its last routing until
    // the exchange's bindings change: every change another connection makes (bind, unbind,
    // queue deletion, and the bindings of an exchange bound to this one) shows at the next
    // publish. Confirms order each publish against the changes.
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let (_admin_conn, admin) = b.channel().await;
    exchange(&admin, "x", ExchangeKind::Topic).await;
    exchange(&admin, "y", ExchangeKind::Fanout).await;
    for q in ["a", "b", "c"] {
        declare(&admin, q).await;
    }
    bind(&admin, "a", "x", "k.#", FieldTable::default()).await;
    confirmed(&ch, "x", "k.1", b"1").await.unwrap();
    bind(&admin, "b", "x", "k.*", FieldTable::default()).await;
    confirmed(&ch, "x", "k.1", b"2").await.unwrap();
    admin
        .queue_unbind("a".into(), "x".into(), "k.#".into(), FieldTable::default())
        .await
        .unwrap();
    confirmed(&ch, "x", "k.1", b"3").await.unwrap();
    confirmed(&ch, "x", "k.2", b"4").await.unwrap();
    assert_eq!(drain(&admin, "a").await, ["1", "2"]);
    assert_eq!(drain(&admin, "b").await, ["2", "3", "4"]);
    admin
        .queue_delete("b".into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    confirmed(&ch, "x", "k.2", b"unroutable").await.unwrap();

    // Through an exchange bound to this one: its bindings change without this one's.
    admin
        .exchange_bind(
            "y".into(),
            "x".into(),
            "k.2".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    bind(&admin, "c", "y", "", FieldTable::default()).await;
    confirmed(&ch, "x", "k.2", b"5").await.unwrap();
    confirmed(&ch, "x", "k.2", b"6").await.unwrap();
    admin
        .queue_unbind("c".into(), "y".into(), "".into(), FieldTable::default())
        .await
        .unwrap();
    confirmed(&ch, "x", "k.2", b"unroutable too").await.unwrap();
    assert_eq!(drain(&admin, "c").await, ["5", "6"]);
    assert!(get(&admin, "a").await.is_none());
}

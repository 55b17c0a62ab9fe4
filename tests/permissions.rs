//! Vhosts, users and permissions: every row of RabbitMQ's permission table, allowed and
//! refused with RabbitMQ 3.10's reply; vhost access; topic permissions; impersonation;
//! definitions loaded at boot (`load_definitions`).
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

/// The vhost `shop` and one user per kind of right. Passwords are the user names.
fn definitions() -> String {
    let users = [
        "admin", "cfg", "wr", "rd", "none", "outsider", "boss", "topical", "limited",
    ];
    let hash = |name: &str| {
        // The same format RabbitMQ writes (sha256, 4-byte salt): made by the broker's own
        // hasher, checked against RabbitMQ's test vector in the unit tests.
        warren::broker::access::PasswordHash::new(name).to_base64()
    };
    let user_json: Vec<String> = users
        .iter()
        .map(|u| {
            let tags = if *u == "boss" { "[\"impersonator\"]" } else { "[]" };
            let limits = if *u == "limited" {
                r#"{"max-connections":1,"max-channels":2}"#
            } else {
                "{}"
            };
            format!(
                r#"{{"name":"{u}","password_hash":"{}","hashing_algorithm":"rabbit_password_hashing_sha256","tags":{tags},"limits":{limits}}}"#,
                hash(u)
            )
        })
        .collect();
    let perm = |u: &str, c: &str, w: &str, r: &str| {
        format!(r#"{{"user":"{u}","vhost":"shop","configure":"{c}","write":"{w}","read":"{r}"}}"#)
    };
    let perms = [
        perm("admin", ".*", ".*", ".*"),
        perm("cfg", ".*", "", ""),
        perm("wr", "", ".*", ""),
        perm("rd", "", "", ".*"),
        perm("none", "", "", ""),
        perm("boss", ".*", ".*", ".*"),
        perm("topical", ".*", ".*", ".*"),
        perm("limited", ".*", ".*", ".*"),
        r#"{"user":"admin","vhost":"tiny","configure":".*","write":".*","read":".*"}"#.into(),
    ];
    format!(
        r#"{{"users":[{}],"vhosts":[{{"name":"shop"}},{{"name":"tiny","limits":{{"max-connections":1,"max-queues":2}}}}],"permissions":[{}],
        "topic_permissions":[{{"user":"topical","vhost":"shop","exchange":"amq.topic","write":"^{{username}}\\.","read":"^public\\."}}],
        "exchanges":[{{"name":"events","vhost":"shop","type":"fanout","durable":true,"auto_delete":false,"internal":false,"arguments":{{}}}},
                     {{"name":"audit","vhost":"shop","type":"fanout","durable":true,"auto_delete":false,"internal":false,"arguments":{{}}}}],
        "queues":[{{"name":"orders","vhost":"shop","durable":true,"auto_delete":false,"arguments":{{}}}}],
        "bindings":[]}}"#,
        user_json.join(","),
        perms.join(",")
    )
}

async fn broker() -> TestBroker {
    let file = std::env::temp_dir().join(format!(
        "warren-defs-{}-{}.json",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::write(&file, definitions()).unwrap();
    start_with(|c| c.load_definitions = file.display().to_string()).await
}

async fn connect_as(b: &TestBroker, user: &str) -> Connection {
    let uri = format!("amqp://{user}:{user}@{}/shop", b.addr);
    Connection::connect(&uri, ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| panic!("{user} connects: {e}"))
}

/// A fresh channel of `user` (each refusal closes its channel).
async fn channel_as(b: &TestBroker, user: &str) -> (Connection, Channel) {
    let c = connect_as(b, user).await;
    let ch = c.create_channel().await.unwrap();
    (c, ch)
}

fn refused_text(kind: &str, name: &str, user: &str) -> String {
    format!("ACCESS_REFUSED - access to {kind} '{name}' in vhost 'shop' refused for user '{user}'")
}

fn assert_refused<T: std::fmt::Debug>(r: Result<T, lapin::Error>, text: &str) {
    let e = r.expect_err("refused");
    assert_eq!(reply_of(&e), (403, text.to_string()));
}

fn durable() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn exchange_declare_needs_configure_and_with_an_ae_read_and_write() {
    let b = broker().await;
    let (_c, ch) = channel_as(&b, "wr").await;
    let r = ch
        .exchange_declare(
            "x1".into(),
            ExchangeKind::Direct,
            durable(),
            FieldTable::default(),
        )
        .await;
    assert_refused(r, &refused_text("exchange", "x1", "wr"));
    let (_c, ch) = channel_as(&b, "cfg").await;
    ch.exchange_declare(
        "x1".into(),
        ExchangeKind::Direct,
        durable(),
        FieldTable::default(),
    )
    .await
    .expect("configure is enough");
    let with_ae = args(&[("alternate-exchange", text("audit"))]);
    let r = ch
        .exchange_declare(
            "x2".into(),
            ExchangeKind::Direct,
            durable(),
            with_ae.clone(),
        )
        .await;
    assert_refused(r, &refused_text("exchange", "x2", "cfg"));
    let (_c, ch) = channel_as(&b, "admin").await;
    ch.exchange_declare("x2".into(), ExchangeKind::Direct, durable(), with_ae)
        .await
        .expect("admin has all three");
}

#[tokio::test]
async fn queue_declare_needs_configure_and_with_a_dlx_read_and_write() {
    let b = broker().await;
    let (_c, ch) = channel_as(&b, "rd").await;
    let r = ch
        .queue_declare(
            "q1".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_refused(r, &refused_text("queue", "q1", "rd"));
    let (_c, ch) = channel_as(&b, "cfg").await;
    declare(&ch, "q1").await;
    let with_dlx = args(&[("x-dead-letter-exchange", text("audit"))]);
    let r = ch
        .queue_declare(
            "q2".into(),
            QueueDeclareOptions::default(),
            with_dlx.clone(),
        )
        .await;
    assert_refused(r, &refused_text("queue", "q2", "cfg"));
    let (_c, ch) = channel_as(&b, "admin").await;
    declare_with(&ch, "q2", with_dlx).await;
    // A server-named queue is checked under its generated name.
    let (_c, ch) = channel_as(&b, "none").await;
    let e = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect_err("refused");
    let (code, text) = reply_of(&e);
    assert_eq!(code, 403);
    assert!(
        text.starts_with("ACCESS_REFUSED - access to queue 'amq.gen-"),
        "{text}"
    );
}

#[tokio::test]
async fn deletes_need_configure() {
    let b = broker().await;
    let (_c, ch) = channel_as(&b, "rd").await;
    let r = ch
        .exchange_delete("events".into(), ExchangeDeleteOptions::default())
        .await;
    assert_refused(r, &refused_text("exchange", "events", "rd"));
    let (_c, ch) = channel_as(&b, "rd").await;
    let r = ch
        .queue_delete("orders".into(), QueueDeleteOptions::default())
        .await;
    assert_refused(r, &refused_text("queue", "orders", "rd"));
    let (_c, ch) = channel_as(&b, "cfg").await;
    ch.exchange_delete("events".into(), ExchangeDeleteOptions::default())
        .await
        .expect("configure deletes an exchange");
    ch.queue_delete("orders".into(), QueueDeleteOptions::default())
        .await
        .expect("configure deletes a queue");
}

#[tokio::test]
async fn queue_bind_and_unbind_need_write_on_the_queue_and_read_on_the_exchange() {
    let b = broker().await;
    for unbind in [false, true] {
        let attempt = |ch: Channel| async move {
            if unbind {
                ch.queue_unbind(
                    "orders".into(),
                    "events".into(),
                    "".into(),
                    FieldTable::default(),
                )
                .await
            } else {
                ch.queue_bind(
                    "orders".into(),
                    "events".into(),
                    "".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
            }
        };
        let (_c, ch) = channel_as(&b, "rd").await;
        assert_refused(attempt(ch).await, &refused_text("queue", "orders", "rd"));
        let (_c, ch) = channel_as(&b, "wr").await;
        assert_refused(attempt(ch).await, &refused_text("exchange", "events", "wr"));
        let (_c, ch) = channel_as(&b, "admin").await;
        attempt(ch).await.expect("write and read");
    }
}

#[tokio::test]
async fn exchange_bind_needs_write_on_the_destination_and_read_on_the_source() {
    let b = broker().await;
    let bind = |ch: Channel| async move {
        ch.exchange_bind(
            "audit".into(),
            "events".into(),
            "".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await
    };
    let (_c, ch) = channel_as(&b, "rd").await;
    assert_refused(bind(ch).await, &refused_text("exchange", "audit", "rd"));
    let (_c, ch) = channel_as(&b, "wr").await;
    assert_refused(bind(ch).await, &refused_text("exchange", "events", "wr"));
    let (_c, ch) = channel_as(&b, "admin").await;
    bind(ch).await.expect("write and read");
}

#[tokio::test]
async fn publishing_needs_write_on_the_exchange_the_default_one_named_amq_default() {
    let b = broker().await;
    let (_c, ch) = channel_as(&b, "rd").await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let r = ch
        .basic_publish(
            "".into(),
            "orders".into(),
            BasicPublishOptions::default(),
            b"no",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await;
    assert_refused(r, &refused_text("exchange", "amq.default", "rd"));
    let (_c, ch) = channel_as(&b, "wr").await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for i in 0..3 {
        let confirm = ch
            .basic_publish(
                "".into(),
                "orders".into(),
                BasicPublishOptions::default(),
                format!("m{i}").as_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .expect("write permitted");
        assert!(confirm.is_ack());
    }
    let (_c, ch) = channel_as(&b, "admin").await;
    assert_eq!(count(&ch, "orders").await, 3);
}

#[tokio::test]
async fn get_consume_and_purge_need_read_on_the_queue() {
    let b = broker().await;
    let (_c, ch) = channel_as(&b, "wr").await;
    let r = ch
        .basic_get("orders".into(), BasicGetOptions::default())
        .await;
    assert_refused(r, &refused_text("queue", "orders", "wr"));
    let (_c, ch) = channel_as(&b, "wr").await;
    let r = ch
        .basic_consume(
            "orders".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_refused(r, &refused_text("queue", "orders", "wr"));
    let (_c, ch) = channel_as(&b, "wr").await;
    let r = ch
        .queue_purge("orders".into(), QueuePurgeOptions::default())
        .await;
    assert_refused(r, &refused_text("queue", "orders", "wr"));
    let (_c, ch) = channel_as(&b, "rd").await;
    assert!(get(&ch, "orders").await.is_none());
    ch.queue_purge("orders".into(), QueuePurgeOptions::default())
        .await
        .expect("read purges");
    consume(&ch, "orders", false).await;
}

#[tokio::test]
async fn a_passive_declare_needs_no_permission() {
    let b = broker().await;
    let (_c, ch) = channel_as(&b, "none").await;
    ch.queue_declare(
        "orders".into(),
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("passive queue.declare");
    ch.exchange_declare(
        "events".into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("passive exchange.declare");
}

#[tokio::test]
async fn a_vhost_without_a_permission_row_is_refused_and_a_missing_one_not_found() {
    let b = broker().await;
    let uri = format!("amqp://outsider:outsider@{}/shop", b.addr);
    let e = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .expect_err("no permission row for shop");
    assert_eq!(
        reply_of(&e),
        (
            530,
            "NOT_ALLOWED - access to vhost 'shop' refused for user 'outsider'".into()
        )
    );
    let uri = format!("amqp://admin:admin@{}/nowhere", b.addr);
    let e = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .expect_err("no such vhost");
    assert_eq!(
        reply_of(&e),
        (530, "NOT_ALLOWED - vhost nowhere not found".into())
    );
    // guest (the default user) has no permission in shop either, but has its own `/`.
    let (_c, ch) = b.channel().await;
    declare(&ch, "guest-queue").await;
}

#[tokio::test]
async fn vhosts_are_separate_namespaces() {
    let b = broker().await;
    let (_c, shop) = channel_as(&b, "admin").await;
    let (_c2, root) = b.channel().await;
    declare(&root, "orders").await;
    publish(&root, "", "orders", b"for /").await;
    assert_eq!(
        count(&shop, "orders").await,
        0,
        "shop's orders is another queue"
    );
    assert_eq!(count(&root, "orders").await, 1);
}

#[tokio::test]
async fn topic_permissions_check_routing_keys_on_publish_and_binding_keys_on_bind() {
    let b = broker().await;
    let (_c, ch) = channel_as(&b, "topical").await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare(&ch, "mine").await;
    ch.queue_bind(
        "mine".into(),
        "amq.topic".into(),
        "public.news".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("binding key matches the read pattern");
    let confirm = ch
        .basic_publish(
            "amq.topic".into(),
            "topical.news".into(),
            BasicPublishOptions::default(),
            b"ok",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .expect("routing key matches {username}");
    assert!(confirm.is_ack());
    let r = ch
        .basic_publish(
            "amq.topic".into(),
            "other.news".into(),
            BasicPublishOptions::default(),
            b"no",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await;
    assert_refused(
        r,
        "ACCESS_REFUSED - access to topic 'other.news' in exchange 'amq.topic' in vhost 'shop' refused for user 'topical'",
    );
    let (_c, ch) = channel_as(&b, "topical").await;
    let r = ch
        .queue_bind(
            "mine".into(),
            "amq.topic".into(),
            "private.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_refused(
        r,
        "ACCESS_REFUSED - access to topic 'private.#' in exchange 'amq.topic' in vhost 'shop' refused for user 'topical'",
    );
}

#[tokio::test]
async fn only_an_impersonator_may_publish_under_another_user_id() {
    let b = broker().await;
    let as_alice = BasicProperties::default().with_user_id("alice".into());
    let (_c, ch) = channel_as(&b, "boss").await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let confirm = ch
        .basic_publish(
            "".into(),
            "orders".into(),
            BasicPublishOptions::default(),
            b"signed",
            as_alice.clone(),
        )
        .await
        .unwrap()
        .await
        .expect("impersonator");
    assert!(confirm.is_ack());
    let (_c, ch) = channel_as(&b, "admin").await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let e = ch
        .basic_publish(
            "".into(),
            "orders".into(),
            BasicPublishOptions::default(),
            b"forged",
            as_alice,
        )
        .await
        .unwrap()
        .await
        .expect_err("not an impersonator");
    assert_eq!(
        reply_of(&e),
        (
            406,
            "PRECONDITION_FAILED - user_id property set to 'alice' but authenticated user was 'admin'".into()
        )
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_like_rabbitmq() {
    let b = broker().await;
    let uri = format!("amqp://admin:wrong@{}/shop", b.addr);
    let e = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .expect_err("wrong password");
    assert_eq!(
        reply_of(&e),
        (
            403,
            "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.".into()
        )
    );
}

#[tokio::test]
async fn users_and_vhosts_survive_a_restart() {
    let data_dir = fresh_dir();
    let defs = data_dir.with_extension("json");
    std::fs::write(&defs, definitions()).unwrap();
    let defs_path = defs.display().to_string();
    let mut w = WarrenProcess::start_in(data_dir, &[("WARREN_LOAD_DEFINITIONS", &defs_path)]).await;
    // Started again without the file: users, vhosts and permissions come from data_dir.
    w.env.clear();
    let w = w.restart().await;
    let _ = std::fs::remove_file(&defs);
    let uri = format!("amqp://wr:wr@{}/shop", w.addr);
    let c = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .expect("wr logs in after the restart");
    let ch = c.create_channel().await.unwrap();
    let r = ch
        .queue_declare(
            "q".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_refused(r, &refused_text("queue", "q", "wr"));
}

#[tokio::test]
async fn deleting_a_vhost_closes_its_connections_and_removes_its_queues() {
    let b = broker().await;
    let mut on_root = b.raw().await;
    let (_c, ch) = channel_as(&b, "admin").await;
    publish(&ch, "", "orders", b"doomed").await;
    assert!(b.broker.delete_vhost("/").expect("delete /"));
    let text = on_root.expect_connection_close(320).await;
    assert_eq!(text, "CONNECTION_FORCED - vhost '/' is deleted");
    // Another vhost's connection goes on.
    assert_eq!(count(&ch, "orders").await, 1);
    assert!(b.broker.delete_vhost("shop").expect("delete shop"));
    let e = Connection::connect(
        &format!("amqp://admin:admin@{}/shop", b.addr),
        ConnectionProperties::default(),
    )
    .await
    .expect_err("the vhost is gone");
    assert_eq!(
        reply_of(&e),
        (530, "NOT_ALLOWED - vhost shop not found".into())
    );
    // Created again, it starts empty: the old durable queue is gone.
    b.broker
        .add_vhost(warren::broker::access::VhostRecord {
            name: "shop".into(),
            ..Default::default()
        })
        .expect("add");
    b.broker
        .access()
        .set_permission(warren::broker::access::PermissionRow {
            user: "admin".into(),
            vhost: "shop".into(),
            configure: ".*".into(),
            write: ".*".into(),
            read: ".*".into(),
        });
    let (_c, ch) = channel_as(&b, "admin").await;
    let e = ch
        .queue_declare(
            "orders".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect_err("no queue orders any more");
    assert_eq!(code_of(&e), Some(404));
}

#[tokio::test]
async fn user_limits_cap_connections_and_channels() {
    let b = broker().await;
    let c = connect_as(&b, "limited").await;
    let uri = format!("amqp://limited:limited@{}/shop", b.addr);
    let e = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .expect_err("max-connections 1");
    assert_eq!(
        reply_of(&e),
        (
            530,
            "NOT_ALLOWED - Connection refused for user 'limited': user connection limit (1) is reached".into()
        )
    );
    let _one = c.create_channel().await.unwrap();
    let _two = c.create_channel().await.unwrap();
    let e = c.create_channel().await.expect_err("max-channels 2");
    assert_eq!(
        reply_of(&e),
        (
            530,
            "NOT_ALLOWED - number of channels opened for user 'limited' has reached the maximum allowed user limit of (2)".into()
        )
    );
    // The refused channel closed the connection; its place is free again.
    let back = eventually(|| {
        let uri = uri.clone();
        async move {
            Connection::connect(&uri, ConnectionProperties::default())
                .await
                .is_ok()
        }
    })
    .await;
    assert!(back, "the user's connection slot is given back");
}

#[tokio::test]
async fn vhost_limits_cap_connections_and_queues() {
    let b = broker().await;
    let uri = format!("amqp://admin:admin@{}/tiny", b.addr);
    let c = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .unwrap();
    let e = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .expect_err("max-connections 1");
    assert_eq!(
        reply_of(&e),
        (
            530,
            "NOT_ALLOWED - access to vhost 'tiny' refused for user 'admin': connection limit (1) is reached".into()
        )
    );
    let ch = c.create_channel().await.unwrap();
    declare(&ch, "q1").await;
    declare(&ch, "q2").await;
    declare(&ch, "q1").await; // an existing queue is not a new one
    let e = ch
        .queue_declare(
            "q3".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect_err("max-queues 2");
    assert_eq!(
        reply_of(&e),
        (
            406,
            "PRECONDITION_FAILED - cannot declare queue 'q3': queue limit in vhost 'tiny' (2) is reached".into()
        )
    );
}

#[tokio::test]
async fn a_message_above_max_message_size_is_refused() {
    let b = start_with(|c| c.max_message_size = 1024).await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "q").await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let fits = ch
        .basic_publish(
            "".into(),
            "q".into(),
            BasicPublishOptions::default(),
            &[7u8; 1024],
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .expect("1024 bytes fit");
    assert!(fits.is_ack());
    let e = ch
        .basic_publish(
            "".into(),
            "q".into(),
            BasicPublishOptions::default(),
            &[7u8; 1025],
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .expect_err("too large");
    assert_eq!(
        reply_of(&e),
        (
            406,
            "PRECONDITION_FAILED - message size 1025 is larger than configured max size 1024"
                .into()
        )
    );
}

/// This machine's address on its default route, if it has one (no packet is sent).
fn non_loopback_address() -> Option<std::net::IpAddr> {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    probe.connect("192.0.2.1:9").ok()?;
    let ip = probe.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn guest_may_only_log_in_from_localhost() {
    let Some(ip) = non_loopback_address() else {
        panic!("this test needs a non-loopback address to connect from (none found)");
    };
    let data_dir = fresh_dir();
    let config = warren::config::Config {
        port: 0,
        data_dir: data_dir.clone(),
        load_definitions: {
            let file = data_dir.with_extension("json");
            std::fs::write(&file, definitions()).unwrap();
            file.display().to_string()
        },
        ..warren::config::Config::default()
    };
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let (addr, _broker) = warren::server::start_serving(listener, config).unwrap();
    let remote = std::net::SocketAddr::new(ip, addr.port());
    let e = Connection::connect(
        &format!("amqp://guest:guest@{remote}/%2f"),
        ConnectionProperties::default(),
    )
    .await
    .expect_err("guest from another host");
    assert_eq!(
        reply_of(&e),
        (
            403,
            "ACCESS_REFUSED - user 'guest' can only connect via localhost".into()
        )
    );
    // Other users may, and guest may from localhost.
    Connection::connect(
        &format!("amqp://admin:admin@{remote}/shop"),
        ConnectionProperties::default(),
    )
    .await
    .expect("admin from another host");
    let local = std::net::SocketAddr::new([127, 0, 0, 1].into(), addr.port());
    Connection::connect(
        &format!("amqp://guest:guest@{local}/%2f"),
        ConnectionProperties::default(),
    )
    .await
    .expect("guest from localhost");
    let _ = std::fs::remove_dir_all(&data_dir);
    let _ = std::fs::remove_file(data_dir.with_extension("json"));
}

/// A vhost deletion records the vhost as gone first, then removes its data. A kill -9 between
/// the two leaves its queue logs and its definitions snapshot on disk: the next start removes
/// them, and every other vhost keeps its messages.
#[tokio::test]
async fn a_vhost_deletion_cut_short_by_a_crash_is_finished_at_the_next_start() {
    let defs = std::env::temp_dir().join(format!("warren-vhost-crash-{}.json", std::process::id()));
    std::fs::write(
        &defs,
        r#"{"vhosts": [{"name": "shop"}],
            "permissions": [{"user": "guest", "vhost": "shop", "configure": ".*", "write": ".*", "read": ".*"}],
            "queues": [{"name": "orders", "vhost": "shop", "durable": true, "auto_delete": false, "arguments": {}},
                       {"name": "keep", "vhost": "/", "durable": true, "auto_delete": false, "arguments": {}}]}"#,
    )
    .unwrap();
    let defs_path = defs.display().to_string();
    let mut w =
        WarrenProcess::start_in(fresh_dir(), &[("WARREN_LOAD_DEFINITIONS", &defs_path)]).await;
    for (vhost, queue) in [("shop", "orders"), ("%2f", "keep")] {
        let c = Connection::connect(
            &format!("amqp://guest:guest@{}/{vhost}", w.addr),
            ConnectionProperties::default(),
        )
        .await
        .unwrap();
        let ch = c.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let confirm = ch
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                b"persistent",
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack());
    }
    let queue_logs = |dir: &std::path::Path| std::fs::read_dir(dir.join("queues")).unwrap().count();
    assert_eq!(queue_logs(&w.data_dir), 2);
    let snapshot = w.data_dir.join("definitions").join("vhost-73686f70.bin");
    assert!(snapshot.exists(), "shop's definitions are on disk");
    w.kill9();
    // The deletion's first step, as Broker::delete_vhost writes it: the vhost and its
    // permissions are gone from access.json. The crash came before anything else.
    let access_file = w.data_dir.join("access.json");
    let mut access: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&access_file).unwrap()).unwrap();
    for list in ["vhosts", "permissions"] {
        access[list]
            .as_array_mut()
            .unwrap()
            .retain(|item| item["name"] != "shop" && item["vhost"] != "shop");
    }
    std::fs::write(&access_file, serde_json::to_vec(&access).unwrap()).unwrap();
    let dir = w.data_dir.clone();
    std::mem::forget(w);
    let w = WarrenProcess::start_in(dir, &[]).await;
    let e = Connection::connect(
        &format!("amqp://guest:guest@{}/shop", w.addr),
        ConnectionProperties::default(),
    )
    .await
    .expect_err("shop is gone");
    assert_eq!(
        reply_of(&e),
        (530, "NOT_ALLOWED - vhost shop not found".into())
    );
    assert_eq!(queue_logs(&w.data_dir), 1, "shop's queue log is removed");
    assert!(
        eventually(|| async { !snapshot.exists() }).await,
        "shop's definitions snapshot is removed"
    );
    let (_c, ch) = w.channel().await;
    assert_eq!(
        count(&ch, "keep").await,
        1,
        "the other vhost keeps its message"
    );
    let _ = std::fs::remove_file(&defs);
}

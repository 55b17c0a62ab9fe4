//! Policies: the highest-priority matching policy gives a queue the arguments its declare
//! left out (client x-arguments win), at declare time and for queues recovered after a restart.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;

const DEFINITIONS: &str = r#"{
  "policies": [
    {"vhost": "/", "name": "short", "pattern": "^pol\\.", "apply-to": "queues", "priority": 1,
     "definition": {"max-length": 1, "dead-letter-exchange": "", "dead-letter-routing-key": "dlq",
                    "ha-mode": "all"}},
    {"vhost": "/", "name": "weaker", "pattern": "^pol\\.", "apply-to": "all", "priority": 0,
     "definition": {"max-length": 100}},
    {"vhost": "/", "name": "exchanges-only", "pattern": "^pol\\.x", "apply-to": "exchanges",
     "priority": 9, "definition": {"max-length": 1000, "alternate-exchange": "pol.ae"}}
  ]
}"#;

fn definitions_file() -> String {
    let file = std::env::temp_dir().join(format!(
        "warren-policies-{}-{}.json",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::write(&file, DEFINITIONS).unwrap();
    file.display().to_string()
}

async fn publish_confirmed(ch: &lapin::Channel, queue: &str, body: &str) {
    let confirm = ch
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
}

async fn bodies(ch: &lapin::Channel, queue: &str) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(m) = get(ch, queue).await {
        out.push(String::from_utf8(m.delivery.data.clone()).unwrap());
    }
    out
}

#[tokio::test]
async fn a_matching_policy_sets_limits_and_dead_lettering_and_client_arguments_win() {
    let file = definitions_file();
    let b = start_with(|c| c.load_definitions = file.clone()).await;
    let (_c, ch) = b.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare(&ch, "dlq").await;
    declare(&ch, "pol.q").await;
    declare_with(
        &ch,
        "pol.client",
        args(&[("x-max-length", AMQPValue::LongInt(3))]),
    )
    .await;
    declare(&ch, "other").await;
    for i in 1..=4 {
        for q in ["pol.q", "pol.client", "other"] {
            publish_confirmed(&ch, q, &format!("m{i}")).await;
        }
    }
    // The priority-1 policy: max-length 1, the dropped head dead-lettered to dlq.
    assert_eq!(bodies(&ch, "pol.q").await, ["m4"]);
    // The client's own x-max-length wins over the policy's.
    assert_eq!(bodies(&ch, "pol.client").await, ["m2", "m3", "m4"]);
    // No policy matches: nothing limits it (the exchanges-only one applies to exchanges).
    assert_eq!(bodies(&ch, "other").await, ["m1", "m2", "m3", "m4"]);
    let dead = ch
        .basic_get("dlq".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("a dead letter");
    let headers = dead.delivery.properties.headers().clone().unwrap();
    let Some(AMQPValue::FieldArray(deaths)) = headers.inner().get("x-death") else {
        panic!("x-death missing: {headers:?}");
    };
    let Some(AMQPValue::FieldTable(first)) = deaths.as_slice().first() else {
        panic!("empty x-death");
    };
    assert_eq!(
        first.inner().get("reason"),
        Some(&AMQPValue::LongString("maxlen".into()))
    );
    // A redeclare with the client's (empty) arguments is still equivalent.
    declare(&ch, "pol.q").await;
}

#[tokio::test]
async fn policies_apply_to_queues_recovered_after_a_restart() {
    let file = definitions_file();
    let mut w = WarrenProcess::start_in(fresh_dir(), &[("WARREN_LOAD_DEFINITIONS", &file)]).await;
    {
        let (_c, ch) = w.channel().await;
        ch.queue_declare(
            "pol.durable".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    w.env.clear();
    let w = w.restart().await;
    let (_c, ch) = w.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare(&ch, "dlq").await;
    for i in 1..=3 {
        publish_confirmed(&ch, "pol.durable", &format!("m{i}")).await;
    }
    assert_eq!(bodies(&ch, "pol.durable").await, ["m3"]);
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn a_policy_gives_an_exchange_its_alternate_exchange() {
    let file = definitions_file();
    let b = start_with(|c| c.load_definitions = file.clone()).await;
    let (_c, ch) = b.channel().await;
    for (x, kind) in [
        ("pol.x", lapin::ExchangeKind::Direct),
        ("pol.ae", lapin::ExchangeKind::Fanout),
    ] {
        ch.exchange_declare(
            x.into(),
            kind,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    declare(&ch, "caught").await;
    ch.queue_bind(
        "caught".into(),
        "pol.ae".into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let confirm = ch
        .basic_publish(
            "pol.x".into(),
            "no-binding".into(),
            BasicPublishOptions::default(),
            b"unroutable",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
    assert_eq!(bodies(&ch, "caught").await, ["unroutable"]);
}

/// Operator policies as Debian's RabbitMQ 3.10 exports them (a vhost parameter, the definition
/// as [key, value] pairs), with the lengths RabbitMQ showed for the same declares: the lesser
/// of the operator's limit and the client's or the policy's wins.
const OPERATOR_DEFINITIONS: &str = r#"{
  "parameters": [
    {"vhost": "/", "component": "operator_policy", "name": "op-limit",
     "value": {"apply-to": "queues", "definition": [["max-length", 5], ["message-ttl", 60000]],
               "pattern": "^op-", "priority": 1}}
  ],
  "policies": [
    {"vhost": "/", "name": "user-d", "pattern": "^op-d", "apply-to": "queues", "priority": 0,
     "definition": {"max-length": 4}}
  ]
}"#;

#[tokio::test]
async fn operator_policies_cap_what_clients_and_policies_set() {
    let file = std::env::temp_dir().join(format!("warren-operator-{}.json", std::process::id()));
    std::fs::write(&file, OPERATOR_DEFINITIONS).unwrap();
    let path = file.display().to_string();
    let b = start_with(|c| c.load_definitions = path.clone()).await;
    let (_c, ch) = b.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare(&ch, "op-a").await;
    declare_with(
        &ch,
        "op-b",
        args(&[("x-max-length", AMQPValue::LongInt(10))]),
    )
    .await;
    declare_with(
        &ch,
        "op-c",
        args(&[("x-max-length", AMQPValue::LongInt(3))]),
    )
    .await;
    declare(&ch, "op-d").await;
    declare(&ch, "xq").await;
    for i in 0..8 {
        for q in ["op-a", "op-b", "op-c", "op-d", "xq"] {
            publish_confirmed(&ch, q, &format!("m{i}")).await;
        }
    }
    // RabbitMQ 3.10 with the same definitions and declares: 5, 5, 3, 4, 8 messages.
    assert_eq!(bodies(&ch, "op-a").await, ["m3", "m4", "m5", "m6", "m7"]);
    assert_eq!(bodies(&ch, "op-b").await.len(), 5);
    assert_eq!(bodies(&ch, "op-c").await.len(), 3);
    assert_eq!(bodies(&ch, "op-d").await.len(), 4);
    assert_eq!(bodies(&ch, "xq").await.len(), 8);
    // The declare's own arguments are unchanged: redeclaring with them is equivalent.
    declare_with(
        &ch,
        "op-b",
        args(&[("x-max-length", AMQPValue::LongInt(10))]),
    )
    .await;
    // An export carries the operator policy as a parameter again.
    let exported = serde_json::to_value(b.broker.export_definitions()).unwrap();
    let params = exported["parameters"].as_array().unwrap();
    assert_eq!(params.len(), 1);
    assert_eq!(params[0]["component"], "operator_policy");
    assert_eq!(params[0]["value"]["definition"]["max-length"], 5);
    let _ = std::fs::remove_file(&file);
}

/// A policy file naming `^later` queues (max-length 3) and `^later` exchanges (alternate
/// exchange `later.ae`).
fn later_policies() -> std::path::PathBuf {
    let file = std::env::temp_dir().join(format!(
        "warren-later-{}-{}.json",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::write(
        &file,
        r#"{"policies": [
            {"vhost": "/", "name": "later", "pattern": "^later", "apply-to": "all", "priority": 0,
             "definition": {"max-length": 3, "alternate-exchange": "later.ae"}}]}"#,
    )
    .unwrap();
    file
}

/// Policies set after a queue and an exchange exist apply to them at once, as on RabbitMQ
/// (checked on 3.10: a queue holding 8 messages keeps the newest 3 when a max-length 3
/// policy arrives).
#[tokio::test]
async fn policies_set_later_apply_to_existing_queues_and_exchanges() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare(&ch, "later.q").await;
    declare(&ch, "later.caught").await;
    for (x, kind) in [
        ("later.x", lapin::ExchangeKind::Direct),
        ("later.ae", lapin::ExchangeKind::Fanout),
    ] {
        ch.exchange_declare(
            x.into(),
            kind,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    ch.queue_bind(
        "later.caught".into(),
        "later.ae".into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    for i in 0..8 {
        publish_confirmed(&ch, "later.q", &format!("m{i}")).await;
    }
    let file = later_policies();
    let defs: warren::broker::definitions::DefinitionsFile =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    b.broker.import_definitions(&defs).unwrap();
    assert_eq!(bodies(&ch, "later.q").await, ["m5", "m6", "m7"]);
    // The exchange declared before the policy now sends what it cannot route to later.ae.
    ch.basic_publish(
        "later.x".into(),
        "nowhere".into(),
        BasicPublishOptions::default(),
        b"unroutable",
        BasicProperties::default(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    assert_eq!(bodies(&ch, "later.caught").await, ["unroutable"]);
    let _ = std::fs::remove_file(&file);
}

/// A policy that first appears in the load_definitions file of a later start applies to the
/// durable queue recovered at that start.
#[tokio::test]
async fn a_policy_new_in_load_definitions_applies_to_recovered_queues() {
    let mut w = WarrenProcess::start_in(fresh_dir(), &[]).await;
    {
        let (_c, ch) = w.channel().await;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        ch.queue_declare(
            "later.durable".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        for i in 0..8 {
            publish_confirmed(&ch, "later.durable", &format!("m{i}")).await;
        }
    }
    let file = later_policies();
    w.env = vec![(
        "WARREN_LOAD_DEFINITIONS".to_string(),
        file.display().to_string(),
    )];
    let w = w.restart().await;
    let (_c, ch) = w.channel().await;
    assert_eq!(bodies(&ch, "later.durable").await, ["m5", "m6", "m7"]);
    let _ = std::fs::remove_file(&file);
}

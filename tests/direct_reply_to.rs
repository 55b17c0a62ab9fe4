//! Direct reply-to (amq.rabbitmq.reply-to): RPC without declaring a reply queue.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::BasicProperties;

#[tokio::test]
async fn rpc_over_direct_reply_to() {
    let b = start().await;
    let (_s, server) = b.channel().await;
    declare(&server, "rpc").await;
    let mut requests = consume(&server, "rpc", true).await;
    let (_c, client) = b.channel().await;
    let mut replies = client
        .basic_consume(
            "amq.rabbitmq.reply-to".into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consume amq.rabbitmq.reply-to");
    client
        .basic_publish(
            "".into(),
            "rpc".into(),
            BasicPublishOptions::default(),
            b"ping",
            BasicProperties::default()
                .with_reply_to("amq.rabbitmq.reply-to".into())
                .with_correlation_id("c1".into()),
        )
        .await
        .unwrap();
    let req = next(&mut requests).await;
    let reply_to = req.properties.reply_to().clone().expect("reply_to");
    assert!(
        reply_to.as_str().starts_with("amq.rabbitmq.reply-to."),
        "{reply_to}"
    );
    server
        .basic_publish(
            "".into(),
            reply_to.clone(),
            BasicPublishOptions::default(),
            b"pong",
            BasicProperties::default().with_correlation_id("c1".into()),
        )
        .await
        .unwrap();
    let reply = next(&mut replies).await;
    assert_eq!(reply.data, b"pong");
    assert_eq!(reply.routing_key.as_str(), reply_to.as_str());
    assert_eq!(
        reply
            .properties
            .correlation_id()
            .as_ref()
            .map(|c| c.as_str()),
        Some("c1")
    );
}

#[tokio::test]
async fn direct_reply_to_errors_match_rabbitmq() {
    let b = start().await;
    let (c, ch) = b.channel().await;
    let err = ch
        .basic_consume(
            "amq.rabbitmq.reply-to".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        reply_of(&err),
        (
            406,
            "PRECONDITION_FAILED - reply consumer cannot acknowledge".into()
        )
    );
    let ch = c.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let r = ch
        .basic_publish(
            "".into(),
            "anything".into(),
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default().with_reply_to("amq.rabbitmq.reply-to".into()),
        )
        .await;
    let err = match r {
        Ok(p) => p.await.unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(
        reply_of(&err),
        (
            406,
            "PRECONDITION_FAILED - fast reply consumer does not exist".into()
        )
    );
}

#[tokio::test]
async fn passive_declare_of_the_reply_to_pseudo_queue_succeeds() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let q = ch
        .queue_declare(
            "amq.rabbitmq.reply-to".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("clients probe direct reply-to support this way");
    assert_eq!(q.name().as_str(), "amq.rabbitmq.reply-to");
}

//! Publisher confirms and transactions.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation};

#[tokio::test]
async fn every_publish_is_confirmed_in_order() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "conf").await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut pending = Vec::new();
    for i in 0..500u32 {
        let p = ch
            .basic_publish(
                "".into(),
                "conf".into(),
                BasicPublishOptions::default(),
                &i.to_be_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap();
        pending.push(p);
    }
    for p in pending {
        assert!(matches!(p.await.unwrap(), Confirmation::Ack(None)));
    }
    assert_eq!(count(&ch, "conf").await, 500);
    // Unroutable, non-mandatory messages are confirmed too (and dropped).
    let p = ch
        .basic_publish(
            "amq.direct".into(),
            "none".into(),
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    assert!(matches!(p.await.unwrap(), Confirmation::Ack(None)));
}

#[tokio::test]
async fn transaction_publishes_appear_only_at_commit() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "txq").await;
    ch.tx_select().await.unwrap();
    publish(&ch, "", "txq", b"1").await;
    publish(&ch, "", "txq", b"2").await;
    let (_c2, observer) = b.channel().await;
    assert_eq!(count(&observer, "txq").await, 0);
    ch.tx_commit().await.unwrap();
    assert_eq!(count(&observer, "txq").await, 2);
    publish(&ch, "", "txq", b"3").await;
    ch.tx_rollback().await.unwrap();
    ch.tx_commit().await.unwrap();
    assert_eq!(count(&observer, "txq").await, 2);
}

#[tokio::test]
async fn transaction_acks_apply_at_commit_and_rollback_keeps_them_unacked() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "txa").await;
    for i in 0..2 {
        publish(&ch, "", "txa", format!("{i}").as_bytes()).await;
    }
    ch.tx_select().await.unwrap();
    let m0 = ch
        .basic_get("txa".into(), BasicGetOptions::default())
        .await
        .unwrap()
        .unwrap();
    let m1 = ch
        .basic_get("txa".into(), BasicGetOptions::default())
        .await
        .unwrap()
        .unwrap();
    ch.basic_ack(m0.delivery.delivery_tag, BasicAckOptions::default())
        .await
        .unwrap();
    ch.tx_rollback().await.unwrap();
    // After rollback m0 is unacked again: ack both and commit.
    ch.basic_ack(m1.delivery.delivery_tag, BasicAckOptions { multiple: true })
        .await
        .unwrap();
    ch.tx_commit().await.unwrap();
    ch.basic_recover(BasicRecoverOptions { requeue: true })
        .await
        .unwrap();
    assert_eq!(
        count(&ch, "txa").await,
        0,
        "both acks took effect at commit"
    );
}

#[tokio::test]
async fn confirm_and_tx_modes_exclude_each_other() {
    let b = start().await;
    let (c, ch) = b.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let err = ch.tx_select().await.unwrap_err();
    assert_eq!(
        reply_of(&err),
        (
            406,
            "PRECONDITION_FAILED - cannot switch from confirm to tx mode".into()
        )
    );
    let ch = c.create_channel().await.unwrap();
    ch.tx_select().await.unwrap();
    let err = ch
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        reply_of(&err),
        (
            406,
            "PRECONDITION_FAILED - cannot switch from tx to confirm mode".into()
        )
    );
    let ch = c.create_channel().await.unwrap();
    let err = ch.tx_commit().await.unwrap_err();
    assert_eq!(
        reply_of(&err),
        (
            406,
            "PRECONDITION_FAILED - channel is not transactional".into()
        )
    );
    let _ = FieldTable::default();
}

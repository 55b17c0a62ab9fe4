//! The panic policy: a panic anywhere aborts the broker, as a crash would, and the next start
//! recovers as after a crash. Serving on after a panic could serve a half-updated queue.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation};
use std::os::unix::process::ExitStatusExt;

const SIGABRT: i32 = 6;

#[tokio::test]
async fn a_panic_aborts_the_broker_and_the_restart_recovers_every_confirmed_message() {
    let mut w =
        WarrenProcess::start_in(fresh_dir(), &[("FAULT_INJECTION_PANIC_ON_DECLARE", "boom")]).await;
    let (c, ch) = w.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare("kept".into(), durable, FieldTable::default())
        .await
        .expect("declare");
    for i in 0..3 {
        let confirm = ch
            .basic_publish(
                "".into(),
                "kept".into(),
                BasicPublishOptions::default(),
                format!("m{i}").as_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(matches!(confirm, Confirmation::Ack(_)));
    }
    // The bug: a second connection's declare panics inside the broker.
    let (_c2, ch2) = w.channel().await;
    let declared = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        ch2.queue_declare(
            "boom".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("the connection of the declare that panicked is still open 20 s later");
    assert!(declared.is_err(), "the declare that panics gets no answer");
    // Without the policy tokio would catch the panic and warren would serve on: bounded wait.
    let mut child = std::mem::replace(&mut w.child, placeholder_child());
    let pid = child.id().to_string();
    let waited = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tokio::task::spawn_blocking(move || child.wait()),
    )
    .await;
    let Ok(waited) = waited else {
        // Ends the blocked wait, so the failing test does not hang.
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status();
        panic!("warren is still running 20 s after the panic");
    };
    let status = waited.expect("join").expect("wait for warren");
    assert_eq!(status.signal(), Some(SIGABRT), "warren aborts: {status:?}");
    assert!(
        w.logged("panic injected by FAULT_INJECTION_PANIC_ON_DECLARE"),
        "the panic is logged"
    );
    assert!(
        ch.queue_declare(
            "other".into(),
            QueueDeclareOptions::default(),
            FieldTable::default()
        )
        .await
        .is_err(),
        "nothing goes on serving after the panic"
    );
    drop(c);

    let w = w.crash_and_restart().await;
    let (_c, ch) = w.channel().await;
    let mut got = Vec::new();
    while let Some(m) = get(&ch, "kept").await {
        got.push((
            String::from_utf8_lossy(&m.delivery.data).into_owned(),
            m.delivery.redelivered,
        ));
    }
    // Recovered as after a crash: everything that may have been delivered is flagged.
    assert_eq!(
        got,
        [
            ("m0".to_string(), true),
            ("m1".to_string(), true),
            ("m2".to_string(), true)
        ]
    );
}

/// An exited process to stand in for warren's once it has been reaped.
fn placeholder_child() -> std::process::Child {
    let mut c = std::process::Command::new("true")
        .spawn()
        .expect("start true");
    let _ = c.wait();
    c
}

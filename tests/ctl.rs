//! `warren ctl`: rabbitmqctl's everyday commands through the management API, as an operator
//! types them, with table and JSON output and rabbitmqctl's exit codes.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps

mod common;
use common::*;
use serde_json::{json, Value};

/// Runs `warren ctl --api-port PORT ARGS…`; answers (exit code, stdout, stderr).
async fn ctl(port: u16, args: &[&str]) -> (i32, String, String) {
    let mut all = vec![
        "ctl".to_string(),
        "--api-port".to_string(),
        port.to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_warren"))
            .args(&all)
            .env("WARREN_PROMETHEUS_PORT", "0")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn an_operator_manages_users_vhosts_permissions_and_policies() {
    let b = start().await;
    let port = management(&b).await.port();
    assert_eq!(ctl(port, &["await_startup"]).await.0, 0);
    let (code, out, _) = ctl(port, &["ping"]).await;
    assert_eq!((code, out.as_str()), (0, "Ping succeeded\n"));
    for args in [
        &["add_vhost", "shop"][..],
        &["set_permissions", "-p", "shop", "guest", ".*", ".*", ".*"],
        &["add_user", "bob", "s3cret"],
        &["set_permissions", "-p", "shop", "bob", "^bob-", ".*", ".*"],
        &["set_user_tags", "bob", "management"],
        &[
            "set_policy",
            "-p",
            "shop",
            "--apply-to",
            "queues",
            "--priority",
            "3",
            "short",
            "^bob-",
            r#"{"max-length": 2}"#,
        ],
    ] {
        let (code, _, err) = ctl(port, args).await;
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    let (code, _, err) = ctl(port, &["add_user", "bob", "again"]).await;
    assert_eq!(
        (code, err.as_str()),
        (70, "Error: User \"bob\" already exists\n")
    );
    let (_, out, _) = ctl(port, &["-q", "list_users"]).await;
    assert_eq!(
        out,
        "user\ttags\nbob\t[\"management\"]\nguest\t[\"administrator\"]\n"
    );
    let (_, out, _) = ctl(
        port,
        &["--formatter", "json", "list_permissions", "-p", "shop"],
    )
    .await;
    assert_eq!(
        json_of(&out),
        json!([
            {"user": "guest", "configure": ".*", "write": ".*", "read": ".*"},
            {"user": "bob", "configure": "^bob-", "write": ".*", "read": ".*"}
        ])
    );

    // Bob uses his vhost with his password; the policy caps his queue.
    let uri = format!("amqp://bob:s3cret@{}/shop", b.addr);
    let conn = lapin::Connection::connect(&uri, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    declare(&ch, "bob-q").await;
    for i in 0..5 {
        publish(&ch, "", "bob-q", format!("m{i}").as_bytes()).await;
    }
    assert_eq!(count(&ch, "bob-q").await, 2);
    let (_, out, _) = ctl(
        port,
        &[
            "--formatter",
            "json",
            "list_queues",
            "-p",
            "shop",
            "name",
            "messages",
            "policy",
        ],
    )
    .await;
    assert_eq!(
        json_of(&out),
        json!([{"name": "bob-q", "messages": 2, "policy": "short"}])
    );
    let (_, out, _) = ctl(port, &["list_queues", "-p", "shop"]).await;
    assert_eq!(
        out,
        "Listing queues for vhost shop ...\nname\tmessages\nbob-q\t2\n"
    );
    assert_eq!(
        ctl(port, &["purge_queue", "-p", "shop", "bob-q"]).await.0,
        0
    );
    assert_eq!(count(&ch, "bob-q").await, 0);
    let (_, out, _) = ctl(port, &["-s", "list_connections", "user", "vhost"]).await;
    assert_eq!(out, "bob\tshop\n");

    // change_password: the old one stops working, the new one works.
    assert_eq!(ctl(port, &["change_password", "bob", "n3w"]).await.0, 0);
    assert!(
        lapin::Connection::connect(&uri, lapin::ConnectionProperties::default())
            .await
            .is_err()
    );
    let new_uri = format!("amqp://bob:n3w@{}/shop", b.addr);
    assert!(
        lapin::Connection::connect(&new_uri, lapin::ConnectionProperties::default())
            .await
            .is_ok()
    );

    // close_all_connections: everyone in the vhost is told 320 with the reason.
    let mut raw = b.raw().await;
    assert_eq!(
        ctl(port, &["close_all_connections", "-p", "/", "going down"])
            .await
            .0,
        0
    );
    assert_eq!(
        raw.expect_connection_close(320).await,
        "CONNECTION_FORCED - going down"
    );
    assert!(
        conn.status().connected(),
        "another vhost's connection stays"
    );

    // Definitions out and back in.
    let file = b.data_dir.join("defs.json");
    let path = file.to_str().unwrap();
    assert_eq!(ctl(port, &["export_definitions", path]).await.0, 0);
    let defs = json_of(&std::fs::read_to_string(&file).unwrap());
    assert!(defs["policies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "short"));
    assert_eq!(
        ctl(port, &["clear_policy", "-p", "shop", "short"]).await.0,
        0
    );
    let (code, _, err) = ctl(port, &["import_definitions", path]).await;
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = ctl(port, &["-s", "list_policies", "-p", "shop"]).await;
    assert!(out.starts_with("shop\tshort\t^bob-\tqueues\t"), "{out}");
    assert_eq!(ctl(port, &["delete_user", "bob"]).await.0, 0);
    assert_eq!(ctl(port, &["delete_vhost", "shop"]).await.0, 0);
    let (_, out, _) = ctl(port, &["-s", "list_vhosts"]).await;
    assert_eq!(out, "/\n");
}

#[tokio::test]
async fn health_commands_answer_as_container_checks_expect() {
    let b = start().await;
    let port = management(&b).await.port();
    assert_eq!(ctl(port, &["check_running"]).await.0, 0);
    assert_eq!(ctl(port, &["check_local_alarms"]).await.0, 0);
    assert_eq!(ctl(port, &["check_port_connectivity"]).await.0, 0);
    let (code, out, _) = ctl(port, &["status"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("RabbitMQ version (compatible): 3.10.0"),
        "{out}"
    );
    // Wrong password: a software error; nobody listening: unavailable (69), as rabbitmqctl.
    let (code, _, err) = ctl(port, &["--password", "wrong", "ping"]).await;
    assert_eq!((code, err.as_str()), (70, "Error: Login failed\n"));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = closed.local_addr().unwrap().port();
    drop(closed);
    let (code, _, _) = ctl(dead_port, &["ping"]).await;
    assert_eq!(code, 69);
    let (code, _, _) = ctl(dead_port, &["--timeout", "1", "await_startup"]).await;
    assert_eq!(code, 69);
}

#[tokio::test]
async fn the_offline_definitions_commands_still_work_beside_ctl() {
    // `warren definitions export -` works on a data directory and exits: it must not serve.
    let dir = std::env::temp_dir().join(format!("warren-ctl-defs-{}", std::process::id()));
    let out = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || {
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_warren"))
                .args(["--port", "0", "--data-dir"])
                .arg(&dir)
                .args(["definitions", "export", "-"])
                .env("WARREN_MANAGEMENT_PORT", "0")
                .env("WARREN_PROMETHEUS_PORT", "0")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let deadline = std::time::Instant::now() + WAIT;
            while child.try_wait().unwrap().is_none() {
                if std::time::Instant::now() > deadline {
                    child.kill().unwrap();
                    panic!("`warren definitions export -` did not exit: it served instead");
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            child.wait_with_output().unwrap()
        }
    })
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success());
    let defs = json_of(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(defs["vhosts"][0]["name"], "/");
}

//! The `warren` binary: defaults, config errors, and SIGTERM closing clients with 320.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps
mod common;

use common::*;
use std::process::Command;

#[tokio::test]
async fn sigterm_closes_connections_with_320_and_exits_cleanly() {
    let dir = std::env::temp_dir().join(format!("warren-sigterm-{}", std::process::id()));
    let (mut child, addr) = (0..5)
        .find_map(|_| {
            let addr = free_addr();
            spawn_ready(addr, &dir).map(|child| (child, addr))
        })
        .expect("warren did not start on any of 5 free ports");
    let mut raw = RawClient::connect(addr).await;
    raw.open_channel(1).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let text = raw.expect_connection_close(320).await;
    assert_eq!(
        text,
        "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"
    );
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_config_file_stops_startup_naming_the_key() {
    let path = std::env::temp_dir().join(format!("warren-bad-{}.toml", std::process::id()));
    std::fs::write(&path, "heartbeat = \"often\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_warren"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("heartbeat"), "{err}");
    let _ = std::fs::remove_file(&path);
}

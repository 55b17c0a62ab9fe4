//! Recovery of a damaged data directory: the input becomes a definitions file, one queue's
//! segment and its ack log; opening the broker on it must end in a broker or an error,
//! never a panic, a stack overflow or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use warren::broker::Broker;
use warren::store::{Definitions, QueueDef, SyncPolicy};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    // Three parts, each prefixed by a 16-bit length: definitions, segment, acks.
    let mut parts: Vec<&[u8]> = Vec::new();
    let mut rest = data;
    for _ in 0..3 {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            break;
        };
        let n = (u16::from_be_bytes(*len) as usize).min(tail.len());
        parts.push(&tail[..n]);
        rest = &tail[n..];
    }
    let dir = std::env::temp_dir().join(format!("warren-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let log = dir.join("queues").join("log0");
    if std::fs::create_dir_all(&log).is_err() {
        return;
    }
    let write = |path: std::path::PathBuf, bytes: Option<&&[u8]>| {
        if let Some(b) = bytes {
            let _ = std::fs::write(path, b);
        }
    };
    // Mostly a valid definitions file naming the queue (the first part is its arguments),
    // so the segment and the acks are read; sometimes the raw first part instead.
    let raw_definitions = data.first().is_some_and(|b| b & 1 == 1);
    if raw_definitions {
        write(dir.join("definitions.bin"), parts.first());
    } else {
        let defs = Definitions {
            queues: vec![QueueDef {
                vhost: "/".into(),
                name: "q".into(),
                auto_delete: false,
                arguments: parts.first().map(|p| p.to_vec()).unwrap_or_default(),
                log: "log0".into(),
            }],
            ..Definitions::default()
        };
        if defs.save(&dir).is_err() {
            return;
        }
    }
    write(log.join("00000000000000000000.seg"), parts.get(1));
    write(log.join("acks.log"), parts.get(2));
    let opened = runtime().block_on(async { Broker::open(dir.clone(), SyncPolicy::Write) });
    drop(opened);
    let _ = std::fs::remove_dir_all(&dir);
});

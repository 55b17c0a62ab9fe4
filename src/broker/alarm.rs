//! The memory alarm: like RabbitMQ's vm_memory_high_watermark, a task samples the process's
//! resident memory and raises the alarm above the watermark. Publishing connections are then
//! blocked (connection.blocked, reads paused) until it clears; consumers keep working.

use std::time::Duration;
use tokio::sync::watch;

/// How often resident memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// Resident memory of this process, in bytes (Linux; 0 where unknown).
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Total memory of the machine, in bytes (Linux; 0 where unknown).
pub fn total_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Starts sampling in the current runtime; the receiver is `true` while the alarm is on.
pub fn start(watermark_bytes: u64) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(resident_bytes() > watermark_bytes && watermark_bytes > 0);
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tick.tick().await;
                let used = resident_bytes();
                let on = watermark_bytes > 0 && used > watermark_bytes;
                if *tx.borrow() != on {
                    if on {
                        tracing::warn!(
                            used,
                            watermark = watermark_bytes,
                            "memory alarm set: publishers are blocked"
                        );
                    } else {
                        tracing::info!(used, watermark = watermark_bytes, "memory alarm cleared");
                    }
                    tx.send_replace(on);
                }
                if tx.is_closed() {
                    return;
                }
            }
        });
    }
    rx
}

//! Resource alarms, as in RabbitMQ: a task samples the process's resident memory against the
//! memory high watermark and the free space of the data directory's disk against the disk free
//! limit. While either is raised, publishing connections are blocked (connection.blocked,
//! reads paused); consumers keep working, so queues can drain.

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

/// What the alarm watches.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Resident memory above this raises the alarm (0: never).
    pub memory_bytes: u64,
    /// The data directory, whose disk is watched.
    pub data_dir: std::path::PathBuf,
    /// Free disk space below this raises the alarm (0: never).
    pub disk_free_bytes: u64,
}

impl Limits {
    /// Which alarm is raised now, if any.
    fn check(&self) -> Option<String> {
        let used = resident_bytes();
        if self.memory_bytes > 0 && used > self.memory_bytes {
            return Some(format!(
                "memory: {used} bytes used, watermark {}",
                self.memory_bytes
            ));
        }
        if self.disk_free_bytes > 0 {
            if let Ok(free) = fs4::available_space(&self.data_dir) {
                if free < self.disk_free_bytes {
                    return Some(format!(
                        "disk: {free} bytes free, limit {}",
                        self.disk_free_bytes
                    ));
                }
            }
        }
        None
    }
}

/// Starts sampling in the current runtime; the receiver is `true` while an alarm is on.
pub fn start(limits: Limits) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(limits.check().is_some());
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tick.tick().await;
                let raised = limits.check();
                let on = raised.is_some();
                if *tx.borrow() != on {
                    match raised {
                        Some(why) => {
                            tracing::warn!(%why, "resource alarm set: publishers are blocked")
                        }
                        None => tracing::info!("resource alarm cleared"),
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

//! Resource alarms, as in RabbitMQ: a task samples the process's resident memory against the
//! memory high watermark and the free space of the data directory's disk against the disk free
//! limit. While either is raised, publishing connections are blocked (connection.blocked,
//! reads paused); consumers keep working, so queues can drain.
//!
//! Memory: glibc's allocator keeps freed memory resident, so after a burst is consumed or
//! purged RSS would stay above the watermark with nothing stored, and publishers would stay
//! blocked for good. Before deciding, the sampler hands free memory back to the kernel
//! (`malloc_trim`), and it does so every few seconds anyway, so RSS follows what Warren holds
//! (memory also goes back when thousands of connections close).
//!
//! Disk: the flusher raises the alarm itself before a write round that would cross the limit
//! and when a write fails (`store::DiskGuard`); the sampler clears it once space is back.

use crate::store::DiskGuard;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often resident memory and free disk space are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// Free memory goes back to the kernel at most this often when no alarm asks for it.
const TRIM_EVERY: Duration = Duration::from_secs(10);
/// Below this resident size a periodic trim is not worth its pause.
const TRIM_ABOVE: u64 = 64 << 20;

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

/// Returns free heap memory to the kernel (glibc's `malloc_trim`); a no-op elsewhere.
pub fn give_back_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim takes no pointers and only walks glibc's own free lists under
        // its arena locks; any thread may call it at any time.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Which alarms are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Alarms {
    pub memory: bool,
    pub disk: bool,
}

impl Alarms {
    pub fn any(&self) -> bool {
        self.memory || self.disk
    }

    /// The reason connection.blocked carries, in RabbitMQ's words (rabbit_reader).
    pub fn reason(&self) -> &'static str {
        match (self.memory, self.disk) {
            (true, true) => "low on disk & memory",
            (false, true) => "low on disk",
            _ => "low on memory",
        }
    }
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

/// The sampler's state between two samples.
struct Sampler {
    limits: Limits,
    disk: Arc<DiskGuard>,
    last_trim: Instant,
}

impl Sampler {
    fn memory_over(&mut self) -> bool {
        let mut used = resident_bytes();
        let over = self.limits.memory_bytes > 0 && used > self.limits.memory_bytes;
        if over || (used > TRIM_ABOVE && self.last_trim.elapsed() >= TRIM_EVERY) {
            give_back_free_memory();
            self.last_trim = Instant::now();
            used = resident_bytes();
        }
        self.limits.memory_bytes > 0 && used > self.limits.memory_bytes
    }

    fn sample(&mut self) -> Alarms {
        Alarms {
            memory: self.memory_over(),
            disk: self.disk.check(0),
        }
    }
}

/// Starts sampling in the current runtime; the receiver shows which alarms are on. `disk` is
/// the store's guard, which the flusher raises too (a standalone one without a store).
pub fn start(limits: Limits, disk: Option<Arc<DiskGuard>>) -> watch::Receiver<Alarms> {
    let disk = disk.unwrap_or_else(|| Arc::new(DiskGuard::new(limits.data_dir.clone())));
    disk.set_limit(limits.disk_free_bytes);
    let mut disk_changes = disk.subscribe();
    let mut sampler = Sampler {
        limits,
        disk,
        last_trim: Instant::now(),
    };
    let (tx, rx) = watch::channel(sampler.sample());
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            loop {
                let alarms = tokio::select! {
                    _ = tick.tick() => sampler.sample(),
                    // The flusher raised (or a sample cleared) the disk alarm: act at once.
                    changed = disk_changes.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        Alarms { disk: *disk_changes.borrow_and_update(), ..*tx.borrow() }
                    }
                };
                let was = *tx.borrow();
                if was != alarms {
                    log_change(was, alarms, &sampler.limits);
                    tx.send_replace(alarms);
                }
                if tx.is_closed() {
                    return;
                }
            }
        });
    }
    rx
}

fn log_change(was: Alarms, now: Alarms, limits: &Limits) {
    if now.memory && !was.memory {
        tracing::warn!(
            used = resident_bytes(),
            watermark = limits.memory_bytes,
            "memory resource alarm set: publishers are blocked"
        );
    }
    if !now.memory && was.memory {
        tracing::info!("memory resource alarm cleared");
    }
    if now.disk && !was.disk {
        let free = fs4::available_space(&limits.data_dir).unwrap_or(0);
        tracing::warn!(
            free,
            limit = limits.disk_free_bytes,
            "disk resource alarm set: publishers are blocked"
        );
    }
    if !now.disk && was.disk {
        tracing::info!("disk resource alarm cleared");
    }
}

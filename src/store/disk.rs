//! The data directory's free space, watched where the writes happen.
//!
//! The alarm task samples the disk twice a second, but a fast persistent publisher can fill
//! tens of megabytes between two samples. So the flusher asks here before every write round,
//! with the size of what it is about to write, and a failed write (ENOSPC) raises the alarm at
//! once. The alarm task reads `low()` and blocks publishers while it is `true`; it clears when
//! a sample finds enough space again and no write is failing.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::watch;

/// Free space of the data directory's disk against `disk_free_limit`.
#[derive(Debug)]
pub struct DiskGuard {
    root: PathBuf,
    /// `disk_free_limit` in bytes (0: no limit, only failed writes raise the alarm).
    limit: AtomicU64,
    /// A write failed and none has succeeded since.
    failing: AtomicBool,
    low: watch::Sender<bool>,
}

impl DiskGuard {
    pub fn new(root: PathBuf) -> DiskGuard {
        DiskGuard {
            root,
            limit: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            low: watch::channel(false).0,
        }
    }

    /// Sets `disk_free_limit` (0: off).
    pub fn set_limit(&self, bytes: u64) {
        self.limit.store(bytes, Ordering::Relaxed);
    }

    /// Watches whether the disk is low (the alarm task subscribes).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.low.subscribe()
    }

    /// Checks free space against the limit plus `about_to_write` bytes; returns (and
    /// publishes) whether the disk is low.
    pub fn check(&self, about_to_write: u64) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        let short = limit > 0
            && fs4::available_space(&self.root)
                .is_ok_and(|free| free < limit.saturating_add(about_to_write));
        let low = short || self.failing.load(Ordering::Relaxed);
        self.publish(low);
        low
    }

    /// A write failed: the alarm goes on now. Returns true the first time (log it once).
    pub fn write_failed(&self) -> bool {
        let first = !self.failing.swap(true, Ordering::Relaxed);
        self.publish(true);
        first
    }

    /// A write succeeded; returns true when it ends a run of failures.
    pub fn write_succeeded(&self) -> bool {
        self.failing.swap(false, Ordering::Relaxed)
    }

    fn publish(&self, low: bool) {
        self.low
            .send_if_modified(|v| std::mem::replace(v, low) != low);
    }
}

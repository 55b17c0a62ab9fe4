//! Group commit: one thread writes and syncs every dirty queue log, then publishes how far
//! durability has come. One fsync round serves every publisher that wrote before it started.
//!
//! Each log tracks how far its appends are durable (`QueueLog::is_durable`); `done` (a watch
//! channel) counts completed rounds so that waiting connections know when to look again.
//! The flusher knows a log only as something that can `Flush`.

use super::disk::DiskGuard;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What a confirm promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Confirm after fdatasync: the message survives power loss (the default).
    Fsync,
    /// Confirm after write(): survives a crash of Warren, not of the machine.
    Write,
}

/// A log that can tell whether a position in it is on disk: what a publisher confirm and a
/// tx.commit-ok wait for.
pub trait Durable: Send + Sync + std::fmt::Debug {
    fn is_durable(&self, position: u64) -> bool;
}

/// A position in a log that must be on disk before a confirm.
pub type DurableAt = (Arc<dyn Durable>, u64);

/// A file with writes pending, flushed on the flusher thread.
pub trait Flush: Send + Sync {
    /// Bytes waiting to be written (for the disk alarm).
    fn pending_bytes(&self) -> u64;
    /// Writes what is pending and, under `SyncPolicy::Fsync`, syncs it.
    fn flush(&self, policy: SyncPolicy) -> io::Result<()>;
    /// Written after the other logs of the same round (deduplication keys go after the
    /// messages they stand for).
    fn flush_last(&self) -> bool {
        false
    }
}

/// Shared between writers (queues) and the flusher thread.
#[derive(Debug)]
pub struct FlushState {
    started: AtomicU64,
    done: watch::Sender<u64>,
    dirty: Sender<Job>,
}

/// What the flusher thread is asked to do.
enum Job {
    /// Write and sync this log.
    Dirty(Arc<dyn Flush>),
    /// Answer once everything asked before is on disk.
    Barrier(Sender<()>),
}

impl FlushState {
    /// Watch the last durable round.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.done.subscribe()
    }

    /// Queues a log for the next round.
    pub fn mark_dirty(&self, log: Arc<dyn Flush>) {
        // The flusher only stops with the process; a send error cannot lose acknowledged data.
        let _ = self.dirty.send(Job::Dirty(log));
    }

    /// Waits until everything written before the call is on disk, at most `limit`; false
    /// when that did not happen in time (a full or failing disk).
    pub fn drain(&self, limit: Duration) -> bool {
        let (tx, rx) = channel();
        if self.dirty.send(Job::Barrier(tx)).is_err() {
            return false;
        }
        rx.recv_timeout(limit).is_ok()
    }
}

/// Starts the flusher thread.
pub fn start(policy: SyncPolicy, disk: Arc<DiskGuard>) -> std::io::Result<Arc<FlushState>> {
    let (dirty, inbox) = channel();
    let (done, _) = watch::channel(0);
    let state = Arc::new(FlushState {
        started: AtomicU64::new(0),
        done,
        dirty,
    });
    // The thread holds the state weakly: when the store goes, the last sender goes with it,
    // recv() fails and the thread ends (a strong reference would keep both alive forever).
    let for_thread = Arc::downgrade(&state);
    std::thread::Builder::new()
        .name("warren-flusher".into())
        .spawn(move || run(for_thread, inbox, policy, disk))?;
    Ok(state)
}

/// Rounds repeat until every log is written. Logs that fail (a full disk) are retried after
/// this pause, together with whatever became dirty meanwhile: other queues' acks may be what
/// frees the space, so they must not wait behind the failing writes.
const RETRY_AFTER: Duration = Duration::from_millis(200);

fn run(
    state: std::sync::Weak<FlushState>,
    inbox: Receiver<Job>,
    policy: SyncPolicy,
    disk: Arc<DiskGuard>,
) {
    let mut batch: Vec<Arc<dyn Flush>> = Vec::new();
    let mut barriers: Vec<Sender<()>> = Vec::new();
    let take = |job: Job, batch: &mut Vec<Arc<dyn Flush>>, barriers: &mut Vec<Sender<()>>| match job
    {
        Job::Dirty(log) => batch.push(log),
        Job::Barrier(reply) => barriers.push(reply),
    };
    loop {
        if batch.is_empty() {
            match inbox.recv() {
                Ok(first) => take(first, &mut batch, &mut barriers),
                Err(_) => return,
            }
        }
        while let Ok(more) = inbox.try_recv() {
            take(more, &mut batch, &mut barriers);
        }
        let Some(state) = state.upgrade() else {
            return;
        };
        batch.sort_unstable_by_key(|l| (l.flush_last(), Arc::as_ptr(l) as *const () as usize));
        batch.dedup_by(|a, b| std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b)));
        let round = state.started.fetch_add(1, Ordering::SeqCst) + 1;
        // Raise the disk alarm before writing what would take the disk below its limit.
        disk.check(batch.iter().map(|l| l.pending_bytes()).sum());
        let mut first_error = None;
        // Never confirm what is not on disk: a log that fails keeps its data and is retried.
        batch.retain(|log| match log.flush(policy) {
            Ok(()) => false,
            Err(e) => {
                first_error.get_or_insert(e);
                true
            }
        });
        tracing::trace!(round, "flush round done");
        state.done.send_replace(round);
        match first_error {
            None => {
                if disk.write_succeeded() {
                    tracing::info!("queue data is written to disk again");
                }
                for reply in barriers.drain(..) {
                    let _ = reply.send(());
                }
            }
            Some(e) => {
                if disk.write_failed() {
                    tracing::error!(error = %e, logs = batch.len(), "cannot write queue data to disk: publishers are blocked and confirms wait until it can be written");
                }
                std::thread::sleep(RETRY_AFTER);
            }
        }
    }
}

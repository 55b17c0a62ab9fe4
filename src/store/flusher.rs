//! Group commit: one thread writes and syncs every dirty queue log, then publishes how far
//! durability has come. One fsync round serves every publisher that wrote before it started.
//!
//! Each log tracks how far its appends are durable (`QueueLog::is_durable`); `done` (a watch
//! channel) counts completed rounds so that waiting connections know when to look again.

use super::queue_log::QueueLog;
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

/// Shared between writers (queues) and the flusher thread.
#[derive(Debug)]
pub struct FlushState {
    started: AtomicU64,
    done: watch::Sender<u64>,
    dirty: Sender<Arc<QueueLog>>,
}

impl FlushState {
    /// Watch the last durable round.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.done.subscribe()
    }

    /// Queues a log for the next round.
    pub fn mark_dirty(&self, log: Arc<QueueLog>) {
        // The flusher only stops with the process; a send error cannot lose acknowledged data.
        let _ = self.dirty.send(log);
    }
}

/// Starts the flusher thread.
pub fn start(policy: SyncPolicy) -> std::io::Result<Arc<FlushState>> {
    let (dirty, inbox) = channel();
    let (done, _) = watch::channel(0);
    let state = Arc::new(FlushState {
        started: AtomicU64::new(0),
        done,
        dirty,
    });
    let for_thread = state.clone();
    std::thread::Builder::new()
        .name("warren-flusher".into())
        .spawn(move || run(for_thread, inbox, policy))?;
    Ok(state)
}

fn run(state: Arc<FlushState>, inbox: Receiver<Arc<QueueLog>>, policy: SyncPolicy) {
    let mut batch: Vec<Arc<QueueLog>> = Vec::new();
    while let Ok(first) = inbox.recv() {
        let round = state.started.fetch_add(1, Ordering::SeqCst) + 1;
        batch.push(first);
        while let Ok(more) = inbox.try_recv() {
            batch.push(more);
        }
        batch.sort_unstable_by_key(|l| Arc::as_ptr(l) as usize);
        batch.dedup_by(|a, b| Arc::ptr_eq(a, b));
        loop {
            let failed = batch
                .iter()
                .filter(|log| log.flush(policy).is_err())
                .count();
            if failed == 0 {
                break;
            }
            // Never confirm what is not on disk: retry until the disk accepts it.
            tracing::error!(failed, "could not write queue data to disk; retrying");
            std::thread::sleep(Duration::from_millis(500));
        }
        tracing::trace!(round, logs = batch.len(), "flush round done");
        batch.clear();
        state.done.send_replace(round);
    }
}

//! Group commit: one thread writes and syncs every dirty queue log, then publishes how far
//! durability has come. One fsync round serves every publisher that wrote before it started.
//!
//! Each log tracks how far its appends are durable (`QueueLog::is_durable`); `done` counts
//! completed rounds, and the tasks waiting for one (`Rounds`) are woken when it moves, so that
//! they know when to look again. The flusher knows a log only as something that can `Flush`.

use super::disk::DiskGuard;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

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
    /// Completed rounds.
    done: AtomicU64,
    /// Tasks to wake when the next round completes (each `Rounds` registers once per round).
    waiting: parking_lot::Mutex<Vec<Waker>>,
    dirty: Sender<Job>,
}

/// Waits for flush rounds. A connection whose confirms wait for the disk polls it at every
/// turn of its loop: it registers its task once per round, under one lock, and the polls in
/// between are a load (a `watch` would register and drop a waiter, two locks, at every turn).
#[derive(Debug)]
pub struct Rounds {
    state: Arc<FlushState>,
    /// The last completed round this waiter saw.
    seen: u64,
    /// Registered for the round after `seen`.
    registered: bool,
}

impl Rounds {
    /// Completes once a round has completed since the last time this did (or since it was
    /// made): then whatever waited for the disk may be durable.
    pub async fn next(&mut self) {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.moved() {
            return Poll::Ready(());
        }
        if !self.registered {
            self.state.waiting.lock().push(cx.waker().clone());
            self.registered = true;
            // A round that completed before the registration woke nobody: look again.
            if self.moved() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }

    fn moved(&mut self) -> bool {
        let done = self.state.done.load(Ordering::Acquire);
        if done == self.seen {
            return false;
        }
        self.seen = done;
        self.registered = false;
        true
    }
}

/// What the flusher thread is asked to do.
enum Job {
    /// Write and sync this log.
    Dirty(Arc<dyn Flush>),
    /// Answer once everything asked before is on disk.
    Barrier(Sender<()>),
}

impl FlushState {
    /// A waiter for the rounds that complete from now on.
    pub fn rounds(self: &Arc<Self>) -> Rounds {
        Rounds {
            state: self.clone(),
            seen: self.done.load(Ordering::Acquire),
            registered: false,
        }
    }

    /// A round completed: every registered waiter is woken.
    fn round_done(&self, round: u64) {
        self.done.store(round, Ordering::Release);
        let waiting = std::mem::take(&mut *self.waiting.lock());
        for waker in waiting {
            waker.wake();
        }
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
    let state = Arc::new(FlushState {
        started: AtomicU64::new(0),
        done: AtomicU64::new(0),
        waiting: Default::default(),
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
        state.round_done(round);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct Counting(AtomicUsize);
    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_waiter_is_woken_once_per_completed_round_and_sees_each_round_once() {
        let state = Arc::new(FlushState {
            started: AtomicU64::new(0),
            done: AtomicU64::new(0),
            waiting: Default::default(),
            dirty: channel().0,
        });
        let mut rounds = state.rounds();
        let woken = Arc::new(Counting(AtomicUsize::new(0)));
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        assert_eq!(rounds.poll_next(&mut cx), Poll::Pending);
        assert_eq!(rounds.poll_next(&mut cx), Poll::Pending);
        assert_eq!(
            state.waiting.lock().len(),
            1,
            "registered once, not per poll"
        );
        state.round_done(1);
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        assert_eq!(rounds.poll_next(&mut cx), Poll::Ready(()));
        assert_eq!(
            rounds.poll_next(&mut cx),
            Poll::Pending,
            "round 1 is seen once"
        );
        state.round_done(2);
        assert_eq!(woken.0.load(Ordering::SeqCst), 2);
        // Two rounds before the next poll: one wake-up says "look again".
        state.round_done(3);
        assert_eq!(rounds.poll_next(&mut cx), Poll::Ready(()));
        assert_eq!(rounds.poll_next(&mut cx), Poll::Pending);
    }

    #[test]
    fn a_round_completed_before_the_first_wait_after_creation_is_not_reported() {
        let state = Arc::new(FlushState {
            started: AtomicU64::new(0),
            done: AtomicU64::new(0),
            waiting: Default::default(),
            dirty: channel().0,
        });
        state.round_done(5);
        let mut rounds = state.rounds();
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert_eq!(rounds.poll_next(&mut cx), Poll::Pending);
        state.round_done(6);
        assert_eq!(rounds.poll_next(&mut cx), Poll::Ready(()));
    }
}

//! The storage thread that writes definition snapshots. A declare or delete hands its vhost's
//! snapshot here and its reply waits for the answer, so no async worker ever waits on a
//! rewrite or an fsync.
//!
//! Snapshots are written in the order they were handed over. When several of one vhost are
//! waiting, only the newest is written: it contains every change the others do, and all of
//! their waiters are answered by it.

use super::definitions::Definitions;
use std::io;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Writes (or, given None, removes) one vhost's snapshot under the data directory.
pub type Write = fn(&std::path::Path, &str, Option<&Definitions>) -> io::Result<()>;

/// What runs once a snapshot is on disk (removing a deleted queue's log, say).
pub type AfterSave = Box<dyn FnOnce() + Send>;

/// Answers whether the snapshot (or a newer one of the same vhost) reached the disk.
pub type Saved = oneshot::Receiver<bool>;

/// One vhost's snapshot, waiting to be written (None: the vhost is deleted, remove it).
struct Save {
    vhost: Arc<str>,
    defs: Option<Definitions>,
    then: Option<AfterSave>,
    done: oneshot::Sender<bool>,
}

enum Job {
    Save(Save),
    /// Answer once every snapshot handed over before is written.
    Barrier(Sender<()>),
}

/// The handle the store keeps; the thread ends when it is dropped.
#[derive(Debug)]
pub struct SnapshotWriter {
    jobs: Sender<Job>,
}

impl SnapshotWriter {
    /// Starts the thread; `write` puts one vhost's snapshot on disk.
    pub fn start(root: PathBuf, write: Write) -> io::Result<SnapshotWriter> {
        let (jobs, inbox) = channel();
        std::thread::Builder::new()
            .name("warren-definitions".into())
            .spawn(move || run(&root, write, inbox))?;
        Ok(SnapshotWriter { jobs })
    }

    /// Hands a snapshot over; `then` runs after it is on disk, and not at all if the write
    /// fails.
    pub fn save(
        &self,
        vhost: Arc<str>,
        defs: Option<Definitions>,
        then: Option<AfterSave>,
    ) -> Saved {
        let (done, saved) = oneshot::channel();
        // If the thread is gone, `done` is dropped with the job and the waiter sees a failure.
        let _ = self.jobs.send(Job::Save(Save {
            vhost,
            defs,
            then,
            done,
        }));
        saved
    }

    /// Waits until everything handed over so far is written, at most `limit`.
    pub fn drain(&self, limit: std::time::Duration) -> bool {
        let (tx, rx) = channel();
        if self.jobs.send(Job::Barrier(tx)).is_err() {
            return false;
        }
        rx.recv_timeout(limit).is_ok()
    }
}

fn run(root: &std::path::Path, write: Write, inbox: Receiver<Job>) {
    while let Ok(first) = inbox.recv() {
        let mut saves: Vec<Save> = Vec::new();
        let mut barriers = Vec::new();
        let mut take = |job| match job {
            Job::Save(s) => saves.push(s),
            Job::Barrier(reply) => barriers.push(reply),
        };
        take(first);
        while let Ok(more) = inbox.try_recv() {
            take(more);
        }
        write_newest(root, write, saves);
        for reply in barriers {
            let _ = reply.send(());
        }
    }
}

/// Writes the newest snapshot of each vhost in `saves` and answers every waiter.
fn write_newest(root: &std::path::Path, write: Write, saves: Vec<Save>) {
    let mut by_vhost: Vec<(Arc<str>, Vec<Save>)> = Vec::new();
    for s in saves {
        match by_vhost.iter_mut().find(|(v, _)| *v == s.vhost) {
            Some((_, group)) => group.push(s),
            None => by_vhost.push((s.vhost.clone(), vec![s])),
        }
    }
    for (vhost, group) in by_vhost {
        let Some(newest) = group.last() else {
            continue;
        };
        let ok = match write(root, &vhost, newest.defs.as_ref()) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(vhost = %vhost, error = %e, "cannot write durable definitions");
                false
            }
        };
        for s in group {
            if ok {
                if let Some(then) = s.then {
                    then();
                }
            }
            let _ = s.done.send(ok);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static WRITES: AtomicUsize = AtomicUsize::new(0);

    fn counting_write(_: &std::path::Path, _: &str, _: Option<&Definitions>) -> io::Result<()> {
        WRITES.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn failing_write(_: &std::path::Path, _: &str, _: Option<&Definitions>) -> io::Result<()> {
        Err(io::Error::other("disk full"))
    }

    fn save(vhost: &str, then: Option<AfterSave>) -> (Save, Saved) {
        let (done, saved) = oneshot::channel();
        let s = Save {
            vhost: vhost.into(),
            defs: Some(Definitions::default()),
            then,
            done,
        };
        (s, saved)
    }

    #[test]
    fn waiting_snapshots_of_one_vhost_are_written_once_and_answer_everyone() {
        let ran = Arc::new(AtomicUsize::new(0));
        let mut saves = Vec::new();
        let mut answers = Vec::new();
        for vhost in ["/", "/", "orders", "/"] {
            let ran = ran.clone();
            let (s, a) = save(
                vhost,
                Some(Box::new(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                })),
            );
            saves.push(s);
            answers.push(a);
        }
        let before = WRITES.load(Ordering::SeqCst);
        write_newest(std::path::Path::new("."), counting_write, saves);
        assert_eq!(
            WRITES.load(Ordering::SeqCst) - before,
            2,
            "one write per vhost"
        );
        assert_eq!(ran.load(Ordering::SeqCst), 4, "every follow-up ran");
        for mut a in answers {
            assert_eq!(a.try_recv(), Ok(true));
        }
    }

    #[test]
    fn a_failed_write_answers_false_and_skips_the_follow_up() {
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        let (s, mut a) = save(
            "/",
            Some(Box::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            })),
        );
        write_newest(std::path::Path::new("."), failing_write, vec![s]);
        assert_eq!(a.try_recv(), Ok(false));
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }
}

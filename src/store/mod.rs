//! Durable storage: definitions and per-queue message logs under the data directory, synced by
//! one group-commit flusher. Knows bytes and files, not AMQP.
//!
//! Layout: `data_dir/definitions/vhost-<hex>.bin` (one snapshot per vhost, its name in hex:
//! `vhost-2f.bin` is `/`), `data_dir/queues/<log>/NNN.seg` + `acks.log`, where `<log>` is a unique
//! name per queue incarnation, recorded in the queue's definition. A data directory from
//! before per-vhost snapshots (`data_dir/definitions.bin`) is split at start-up.

pub mod dedup_log;
pub mod definitions;
pub(crate) mod disk;
pub(crate) mod flusher;
pub(crate) mod queue_log;
pub mod record;
pub(crate) mod snapshots;
pub(crate) mod spool;

pub use dedup_log::{DedupEntry, DedupLog};
pub use definitions::{BindingDef, Definitions, ExchangeDef, QueueDef};
pub use disk::DiskGuard;
pub use flusher::{Durable, DurableAt, FlushState, SyncPolicy};
pub use queue_log::QueueLog;
pub use record::StoredMessage;
pub use snapshots::{AfterSave, Saved};
pub use spool::Spool;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

/// The data directory and its flusher.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    flush: Arc<FlushState>,
    /// The storage thread that writes definition snapshots.
    snapshots: snapshots::SnapshotWriter,
    disk: Arc<DiskGuard>,
    /// The previous run ended with `close` (not a crash).
    clean: bool,
}

/// The folder of per-vhost definition snapshots.
const DEFINITIONS_DIR: &str = "definitions";
/// The one snapshot of every vhost that data directories had before.
const SINGLE_SNAPSHOT: &str = "definitions.bin";

/// A vhost's snapshot file: its name in hex, so any vhost name makes a safe file name.
fn definitions_file_name(vhost: &str) -> String {
    let mut name = String::from("vhost-");
    for b in vhost.bytes() {
        name.push_str(&format!("{b:02x}"));
    }
    name.push_str(".bin");
    name
}

/// Replaces the snapshot of `vhost` under `root` atomically; None removes it.
fn write_snapshot(
    root: &std::path::Path,
    vhost: &str,
    defs: Option<&Definitions>,
) -> io::Result<()> {
    let dir = root.join(DEFINITIONS_DIR);
    let path = dir.join(definitions_file_name(vhost));
    let Some(defs) = defs else {
        return match std::fs::remove_file(&path) {
            Ok(()) => std::fs::File::open(&dir)?.sync_all(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        };
    };
    if !dir.exists() {
        std::fs::create_dir_all(&dir)?;
        // The new folder's entry must be durable too, or a power loss could lose it.
        std::fs::File::open(root)?.sync_all()?;
    }
    defs.save_file(&path)
}

/// The folder of deduplication key logs: `dedup/<vhost>/<exchange>.log`.
const DEDUP_DIR: &str = "dedup";

/// A file name for any object name: its first 60 bytes in hex and a CRC of the whole name
/// (names are up to 255 bytes, file names too).
fn safe_file_name(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes().take(60) {
        out.push_str(&format!("{b:02x}"));
    }
    out.push_str(&format!("-{:08x}", crc32fast::hash(name.as_bytes())));
    out
}

/// Users, vhosts and permissions (RabbitMQ's definitions JSON, without queues and the rest).
const ACCESS_FILE: &str = "access.json";

/// Written by a clean shutdown once everything is on disk; removed at start-up. Without it,
/// a restart follows a crash.
const CLEAN_SHUTDOWN: &str = "clean-shutdown";

impl Store {
    /// Opens (creating) the data directory and starts the flusher thread.
    pub fn open(root: PathBuf, policy: SyncPolicy) -> io::Result<Arc<Store>> {
        std::fs::create_dir_all(root.join("queues"))?;
        // Paged-out messages are scratch: whatever a previous run left is stale.
        match std::fs::remove_dir_all(root.join("spool")) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let marker = root.join(CLEAN_SHUTDOWN);
        let clean = marker.exists();
        if clean {
            std::fs::remove_file(&marker)?;
            std::fs::File::open(&root)?.sync_all()?;
        }
        let disk = Arc::new(DiskGuard::new(root.clone()));
        Ok(Arc::new(Store {
            snapshots: snapshots::SnapshotWriter::start(root.clone(), write_snapshot)?,
            root,
            flush: flusher::start(policy, disk.clone())?,
            disk,
            clean,
        }))
    }

    /// Whether the previous run shut down cleanly. After a crash, which recovered messages
    /// had been delivered is not known for sure (delivery records are written behind the
    /// deliveries), so they all count as possibly delivered.
    pub fn recovered_cleanly(&self) -> bool {
        self.clean
    }

    /// Clean shutdown: waits (at most `limit`) until everything is on disk, then records
    /// that the run ended cleanly. Returns false if the disk did not take everything.
    pub fn close(&self, limit: std::time::Duration) -> bool {
        if !self.snapshots.drain(limit) || !self.flush.drain(limit) {
            return false;
        }
        let marker = self.root.join(CLEAN_SHUTDOWN);
        std::fs::File::create(&marker)
            .and_then(|f| f.sync_all())
            .and_then(|_| std::fs::File::open(&self.root)?.sync_all())
            .is_ok()
    }

    /// The data directory's free space, as the writers see it (the disk alarm reads it).
    pub fn disk(&self) -> &Arc<DiskGuard> {
        &self.disk
    }

    /// Creates the log of a newly declared durable queue in a fresh directory, so a queue
    /// deleted and declared again never sees its predecessor's files.
    pub fn create_queue_log(&self) -> io::Result<Arc<QueueLog>> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{nanos:016x}{n:04x}");
        QueueLog::recover(
            self.root.join("queues").join(&name),
            name,
            self.flush.clone(),
            &mut |_| {},
        )
    }

    /// The key log of a deduplication exchange with a persistent cache, and the keys it holds
    /// (none when `fresh`: a newly declared exchange starts empty).
    pub fn dedup_log(
        &self,
        vhost: &str,
        exchange: &str,
        capacity: usize,
        fresh: bool,
    ) -> io::Result<(Arc<DedupLog>, Vec<DedupEntry>)> {
        let path = self.dedup_log_path(vhost, exchange);
        DedupLog::open(path, capacity, fresh, self.flush.clone())
    }

    fn dedup_log_path(&self, vhost: &str, exchange: &str) -> PathBuf {
        self.root
            .join(DEDUP_DIR)
            .join(safe_file_name(vhost))
            .join(format!("{}.log", safe_file_name(exchange)))
    }

    /// A fresh path for one queue's spool of paged-out messages.
    pub fn spool_path(&self) -> PathBuf {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.root.join("spool").join(format!("{n:016x}.spool"))
    }

    /// Opens an existing queue log by its directory name, returning the messages it still holds.
    pub fn open_queue_log(
        &self,
        dir_name: &str,
        each: &mut dyn FnMut(StoredMessage),
    ) -> io::Result<Arc<QueueLog>> {
        let log = QueueLog::recover(
            self.root.join("queues").join(dir_name),
            dir_name.to_string(),
            self.flush.clone(),
            each,
        )?;
        if !self.clean {
            // Recovered messages are flagged redelivered after a crash; this keeps the flag
            // across later clean restarts.
            if let Err(e) = log.mark_all_possibly_delivered() {
                tracing::warn!(queue_log = dir_name, error = %e, "cannot record that the recovered messages were possibly delivered: after a later clean restart, those not delivered meanwhile come back without the redelivered flag");
            }
        }
        Ok(log)
    }

    /// Loads the durable definitions of every vhost.
    pub fn load_definitions(&self) -> io::Result<Definitions> {
        self.split_single_snapshot()?;
        let mut all = Definitions::default();
        let dir = self.root.join(DEFINITIONS_DIR);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(all),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|x| x == "bin") {
                all.extend(Definitions::load_file(&path)?);
            }
        }
        Ok(all)
    }

    /// Replaces the durable definitions of `vhost` atomically, on this thread; other vhosts'
    /// stay as they are.
    pub fn save_definitions(&self, vhost: &str, defs: &Definitions) -> io::Result<()> {
        write_snapshot(&self.root, vhost, Some(defs))
    }

    /// Removes a deleted vhost's snapshot, in order with the snapshots handed over before.
    pub fn delete_definitions_later(&self, vhost: Arc<str>) -> Saved {
        self.snapshots.save(vhost, None, None)
    }

    /// Waits (at most `limit`) until every snapshot handed over so far is written.
    pub fn drain_definitions(&self, limit: std::time::Duration) -> bool {
        self.snapshots.drain(limit)
    }

    /// The saved users, vhosts and permissions; None in a data directory that has none yet.
    pub fn load_access(&self) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.root.join(ACCESS_FILE)) {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the saved users, vhosts and permissions atomically (written where it is
    /// called: they change at start-up and by an operator, never per message).
    pub fn save_access(&self, data: &[u8]) -> io::Result<()> {
        let path = self.root.join(ACCESS_FILE);
        let tmp = path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        // Password hashes: readable by the broker's user only.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        std::io::Write::write_all(&mut f, data)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&self.root)?.sync_all()
    }

    /// Hands the durable definitions of `vhost` to the storage thread, which replaces them
    /// atomically and then runs `then`; the answer says whether they reached the disk.
    pub fn save_definitions_later(
        &self,
        vhost: Arc<str>,
        defs: Definitions,
        then: Option<AfterSave>,
    ) -> Saved {
        self.snapshots.save(vhost, Some(defs), then)
    }

    /// A data directory written before per-vhost snapshots has every vhost in one file: it is
    /// split into one file per vhost, then removed. Interrupted, it is simply done again (the
    /// old file stays the source until it is gone; nothing is saved before this runs).
    fn split_single_snapshot(&self) -> io::Result<()> {
        let single = self.root.join(SINGLE_SNAPSHOT);
        if !single.exists() {
            return Ok(());
        }
        let all = Definitions::load(&self.root)?;
        for vhost in all.vhosts() {
            self.save_definitions(&vhost, &all.of_vhost(&vhost))?;
        }
        std::fs::remove_file(&single)?;
        std::fs::File::open(&self.root)?.sync_all()
    }

    /// Watch the last durable flush round (publisher confirms wait on it).
    pub fn durable_rounds(&self) -> watch::Receiver<u64> {
        self.flush.subscribe()
    }

    /// Removes deduplication logs of exchanges that did not come back (a transient exchange
    /// with `x-cache-persistence: disk`, a vhost deleted before a crash): `keep` names
    /// (vhost, exchange) of the recovered ones.
    pub fn remove_orphan_dedup_logs(&self, keep: &[(String, String)]) -> io::Result<()> {
        let kept: std::collections::HashSet<PathBuf> = keep
            .iter()
            .map(|(vhost, exchange)| self.dedup_log_path(vhost, exchange))
            .collect();
        let dir = self.root.join(DEDUP_DIR);
        let vhost_dirs = match std::fs::read_dir(&dir) {
            Ok(dirs) => dirs,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for vhost_dir in vhost_dirs {
            let vhost_dir = vhost_dir?.path();
            let mut left = 0;
            for file in std::fs::read_dir(&vhost_dir)? {
                let path = file?.path();
                if kept.contains(&path) {
                    left += 1;
                } else {
                    std::fs::remove_file(&path)?;
                }
            }
            if left == 0 {
                std::fs::remove_dir(&vhost_dir)?;
            }
        }
        Ok(())
    }

    /// Removes queue logs that no definition refers to (deleted queues, crashes mid-delete).
    pub fn remove_orphans(&self, keep: &[String]) -> io::Result<()> {
        for entry in std::fs::read_dir(self.root.join("queues"))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) {
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(vhost: &str, name: &str) -> QueueDef {
        QueueDef {
            vhost: vhost.into(),
            name: name.into(),
            auto_delete: false,
            arguments: Vec::new(),
            log: format!("log-{name}"),
        }
    }

    fn fresh_root(tag: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("warren-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        root
    }

    #[test]
    fn each_vhost_has_its_own_snapshot_and_saving_one_keeps_the_others() {
        let root = fresh_root("per-vhost");
        let store = Store::open(root.clone(), SyncPolicy::Write).expect("open");
        let one = |vhost: &str, name: &str| Definitions {
            queues: vec![queue(vhost, name)],
            ..Definitions::default()
        };
        store.save_definitions("/", &one("/", "a")).expect("save /");
        store
            .save_definitions("orders", &one("orders", "b"))
            .expect("save orders");
        store
            .save_definitions("/", &one("/", "c"))
            .expect("save / again");
        let mut names: Vec<String> = store
            .load_definitions()
            .expect("load")
            .queues
            .into_iter()
            .map(|q| format!("{}:{}", q.vhost, q.name))
            .collect();
        names.sort();
        assert_eq!(names, ["/:c", "orders:b"]);
        assert!(root.join("definitions/vhost-2f.bin").exists());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[cfg(unix)]
    #[test]
    fn the_users_file_is_readable_by_the_broker_only() {
        use std::os::unix::fs::PermissionsExt;
        let root = fresh_root("access-mode");
        let store = Store::open(root.clone(), SyncPolicy::Write).expect("open");
        store.save_access(b"{}").expect("save");
        let mode = std::fs::metadata(root.join(ACCESS_FILE))
            .expect("written")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            store.load_access().expect("load").as_deref(),
            Some(&b"{}"[..])
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_single_snapshot_from_before_is_split_by_vhost() {
        let root = fresh_root("split");
        let old = Definitions {
            queues: vec![queue("/", "a"), queue("orders", "b")],
            ..Definitions::default()
        };
        old.save(&root).expect("old layout");
        let store = Store::open(root.clone(), SyncPolicy::Write).expect("open");
        assert_eq!(store.load_definitions().expect("load").queues.len(), 2);
        assert!(!root.join(SINGLE_SNAPSHOT).exists());
        store
            .save_definitions("/", &Definitions::default())
            .expect("save /");
        let left = store.load_definitions().expect("load again");
        assert_eq!(left.queues, [queue("orders", "b")]);
        let _ = std::fs::remove_dir_all(&root);
    }
}

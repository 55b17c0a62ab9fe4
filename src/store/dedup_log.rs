//! The remembered keys of one deduplication exchange whose cache is persistent
//! (`x-cache-persistence: disk`): an append-only file of framed records (`record.rs`), each
//! `expires_unix_ms u64 (0 = never) | key bytes`, written and synced by the flusher thread.
//! When it holds many more records than the cache can, it is compacted (on the flusher
//! thread: read back, the latest live records kept, written to a temporary file, renamed).
//!
//! A key must never be on disk without its message, or a publisher retrying a message lost in
//! a crash would see its retry dropped as a duplicate. So each key waits for the log positions
//! of its message (`deps`): the flusher writes dedup logs after the queue logs of a round
//! (`Flush::flush_last`), and a key whose message is not durable yet waits for a later round.
//! Its confirm waits for the key in turn (`Durable`), so a confirmed message's retry is
//! always recognised, even after kill -9.

use super::flusher::{Durable, DurableAt, Flush, FlushState, SyncPolicy};
use super::record::{begin_framed, end_framed, read_framed, Checksum, Framed};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// A key is at most a longstr's worth; anything larger on disk is damage.
const MAX_KEY_RECORD: usize = 16 * 1024 * 1024;

/// One remembered key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupEntry {
    pub key: Vec<u8>,
    /// Wall-clock expiry (ms since the Unix epoch); 0 = never.
    pub expires_unix_ms: u64,
}

/// A key record waiting to be written.
#[derive(Debug)]
struct PendingKey {
    record: Vec<u8>,
    /// Where its message sits in its queue logs: written only once these are durable.
    deps: Vec<DurableAt>,
    position: u64,
}

#[derive(Debug, Default)]
struct Pending {
    keys: VecDeque<PendingKey>,
    /// Positions handed out so far.
    appended: u64,
    /// The exchange is gone: remove the file.
    delete: bool,
}

#[derive(Debug)]
struct Files {
    file: Option<File>,
    /// Records in the file (compaction is due when far above `capacity`).
    records: usize,
}

#[derive(Debug)]
pub struct DedupLog {
    path: PathBuf,
    /// The cache's size: the most keys worth keeping.
    capacity: usize,
    files: Mutex<Files>,
    pending: Mutex<Pending>,
    /// Every position up to this one is on disk.
    synced: AtomicU64,
    queued: AtomicBool,
    flusher: Arc<FlushState>,
    /// Itself, to ask the flusher for another round from inside one.
    me: std::sync::Weak<DedupLog>,
}

fn put(out: &mut Vec<u8>, key: &[u8], expires_unix_ms: u64) {
    let start = begin_framed(out);
    out.extend_from_slice(&expires_unix_ms.to_be_bytes());
    out.extend_from_slice(key);
    end_framed(out, start, Checksum::Crc32);
}

impl DedupLog {
    /// Opens the log at `path` for a cache of `capacity` keys: `fresh` starts it empty (a
    /// newly declared exchange), otherwise its live entries are read back, oldest first (a
    /// torn tail from a crash is dropped).
    pub(crate) fn open(
        path: PathBuf,
        capacity: usize,
        fresh: bool,
        flusher: Arc<FlushState>,
    ) -> io::Result<(Arc<DedupLog>, Vec<DedupEntry>)> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let entries = if fresh {
            Vec::new()
        } else {
            live_entries(read_entries(&path)?, capacity, unix_now_ms())
        };
        // Start from exactly these entries (this also drops a torn tail).
        write_whole(&path, &entries)?;
        let log = Arc::new_cyclic(|me| DedupLog {
            path,
            capacity,
            files: Mutex::new(Files {
                file: None,
                records: entries.len(),
            }),
            pending: Mutex::new(Pending::default()),
            synced: AtomicU64::new(0),
            queued: AtomicBool::new(false),
            flusher,
            me: me.clone(),
        });
        Ok((log, entries))
    }

    /// Appends one key, to be written once `deps` (its message's log positions) are on
    /// disk. Returns its position, for the publisher's confirm.
    pub fn append(self: &Arc<Self>, key: &[u8], expires_unix_ms: u64, deps: Vec<DurableAt>) -> u64 {
        let mut record = Vec::with_capacity(key.len() + 16);
        put(&mut record, key, expires_unix_ms);
        let mut p = self.pending.lock();
        p.appended += 1;
        let position = p.appended;
        p.keys.push_back(PendingKey {
            record,
            deps,
            position,
        });
        drop(p);
        self.schedule();
        position
    }

    /// The exchange was deleted: its file goes now (not on the flusher thread, where it
    /// could come after a new exchange of the same name has created its own), and nothing is
    /// written any more. Removing a file is quick; exchange deletes are rare.
    pub fn delete(&self) {
        self.pending.lock().delete = true;
        let _files = self.files.lock();
        self.synced.store(u64::MAX, Ordering::Release);
        if let Err(e) = fs::remove_file(&self.path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove a deleted exchange's deduplication log");
            }
        }
    }

    fn schedule(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::SeqCst) {
            self.flusher.mark_dirty(self.clone());
        }
    }

    fn write_now(&self, policy: SyncPolicy) -> io::Result<()> {
        let mut files = self.files.lock();
        // The keys whose messages are durable, in order; the first that is not stops the
        // rest (positions are confirmed in order).
        let (ready, last, more, delete) = {
            let mut p = self.pending.lock();
            let mut bytes = Vec::new();
            let mut last = None;
            while let Some(k) = p.keys.front() {
                if !k.deps.iter().all(|(log, at)| log.is_durable(*at)) {
                    break;
                }
                if let Some(k) = p.keys.pop_front() {
                    bytes.extend_from_slice(&k.record);
                    last = Some((k.position, k.record.len()));
                }
            }
            (bytes, last, !p.keys.is_empty(), p.delete)
        };
        if delete {
            files.file = None;
            return Ok(());
        }
        if more {
            // Written with a later round, once the messages are durable.
            if let Some(me) = self.me.upgrade() {
                self.queued.store(true, Ordering::SeqCst);
                self.flusher.mark_dirty(me);
            }
        }
        let Some((position, _)) = last else {
            return Ok(());
        };
        let count = count_records(&ready);
        if files.records.saturating_add(count)
            > self.capacity.saturating_mul(2).saturating_add(1024)
        {
            // A failed compaction leaves the file as it was: the keys are appended anyway.
            if let Err(e) = self.compact(&mut files) {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot compact a deduplication log");
            }
        }
        if files.file.is_none() {
            files.file = Some(
                OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&self.path)?,
            );
        }
        let written = match files.file.as_mut() {
            Some(f) => {
                let before = f.metadata().ok().map(|m| m.len());
                let result = f.write_all(&ready).and_then(|()| match policy {
                    SyncPolicy::Fsync => f.sync_data(),
                    SyncPolicy::Write => Ok(()),
                });
                if let (Err(_), Some(len)) = (&result, before) {
                    // A torn record would hide every key appended after it: cut it off.
                    let _ = f.set_len(len);
                }
                result
            }
            None => Ok(()),
        };
        match written {
            Ok(()) => {
                files.records += count;
                self.synced.fetch_max(position, Ordering::AcqRel);
                Ok(())
            }
            Err(e) => {
                // Retried with the next round, in front of anything appended meanwhile. A
                // partly written record is a torn tail, dropped when the log is next opened.
                files.file = None;
                let mut p = self.pending.lock();
                let mut again = split_records(&ready, position);
                again.extend(p.keys.drain(..));
                p.keys = again;
                self.queued.store(true, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    /// Rewrites the file with its latest live records only.
    fn compact(&self, files: &mut Files) -> io::Result<()> {
        files.file = None;
        let entries = live_entries(read_entries(&self.path)?, self.capacity, unix_now_ms());
        write_whole(&self.path, &entries)?;
        files.records = entries.len();
        Ok(())
    }
}

/// The records of `bytes` again as pending keys (their deps are durable already), the last
/// one at `last_position`.
fn split_records(bytes: &[u8], last_position: u64) -> VecDeque<PendingKey> {
    let mut out = VecDeque::new();
    let mut rest = bytes;
    while let Framed::Record(_, used) = read_framed(rest, MAX_KEY_RECORD, Checksum::Crc32) {
        out.push_back(PendingKey {
            record: rest[..used].to_vec(),
            deps: Vec::new(),
            position: 0,
        });
        rest = &rest[used..];
    }
    let n = out.len() as u64;
    for (i, k) in out.iter_mut().enumerate() {
        k.position = last_position + 1 - n + i as u64;
    }
    out
}

fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn count_records(mut bytes: &[u8]) -> usize {
    let mut n = 0;
    while let Framed::Record(_, used) = read_framed(bytes, MAX_KEY_RECORD, Checksum::Scratch) {
        n += 1;
        bytes = &bytes[used..];
    }
    n
}

/// Replaces the file's content with these entries (through a temporary file and a rename).
fn write_whole(path: &Path, entries: &[DedupEntry]) -> io::Result<()> {
    let mut content = Vec::new();
    for e in entries {
        put(&mut content, &e.key, e.expires_unix_ms);
    }
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(&content)?;
    f.sync_data()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The latest record of each key, unexpired, at most `capacity` of them (the newest), in the
/// order they were written.
fn live_entries(entries: Vec<DedupEntry>, capacity: usize, now_unix_ms: u64) -> Vec<DedupEntry> {
    let mut latest: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        latest.insert(&e.key, i);
    }
    let mut keep: Vec<usize> = latest
        .into_values()
        .filter(|&i| entries[i].expires_unix_ms == 0 || entries[i].expires_unix_ms > now_unix_ms)
        .collect();
    keep.sort_unstable();
    let skip = keep.len().saturating_sub(capacity);
    let keep: std::collections::HashSet<usize> = keep.into_iter().skip(skip).collect();
    entries
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, e)| e)
        .collect()
}

impl Durable for DedupLog {
    fn is_durable(&self, position: u64) -> bool {
        self.synced.load(Ordering::Acquire) >= position
    }
}

impl Flush for DedupLog {
    fn pending_bytes(&self) -> u64 {
        self.pending
            .lock()
            .keys
            .iter()
            .map(|k| k.record.len() as u64)
            .sum()
    }

    fn flush(&self, policy: SyncPolicy) -> io::Result<()> {
        self.queued.store(false, Ordering::SeqCst);
        self.write_now(policy)
    }

    fn flush_last(&self) -> bool {
        true
    }
}

/// The entries of a log file, in the order written; a missing file has none.
fn read_entries(path: &Path) -> io::Result<Vec<DedupEntry>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut entries = Vec::new();
    let mut rest = &bytes[..];
    while let Framed::Record(payload, used) = read_framed(rest, MAX_KEY_RECORD, Checksum::Crc32) {
        if let (Some(expires), Some(key)) = (payload.get(..8), payload.get(8..)) {
            let mut at = [0u8; 8];
            at.copy_from_slice(expires);
            entries.push(DedupEntry {
                key: key.to_vec(),
                expires_unix_ms: u64::from_be_bytes(at),
            });
        }
        rest = &rest[used..];
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_tail_is_ignored() {
        let dir = std::env::temp_dir().join(format!("warren-dedup-log-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap_or_default();
        let path = dir.join("x.log");
        let mut content = Vec::new();
        put(&mut content, b"a", 0);
        put(&mut content, b"bb", 42);
        let whole = content.len();
        put(&mut content, b"ccc", 7);
        fs::write(&path, &content[..whole + 5]).unwrap_or_default();
        let entries = read_entries(&path).unwrap_or_default();
        assert_eq!(
            entries,
            vec![
                DedupEntry {
                    key: b"a".to_vec(),
                    expires_unix_ms: 0
                },
                DedupEntry {
                    key: b"bb".to_vec(),
                    expires_unix_ms: 42
                }
            ]
        );
        let _ = fs::remove_dir_all(&dir);
    }
}

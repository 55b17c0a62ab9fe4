//! One durable queue's log: append-only segment files of message records and an ack log.
//!
//! Queues append records into `pending` (memory only, under the queue's lock); the flusher
//! thread alone touches the files: it writes pending bytes, syncs, and deletes segments whose
//! messages are all acked. Recovery replays segments minus acks, streaming, in order; a torn tail is cut off with a
//! warning, a damaged record in an older segment skips the rest of that segment.

use super::flusher::{Flush, FlushState, SyncPolicy};
use super::record::{self, put_ack, put_message, read_acks, Read, StoredMessage, RECORD_HEADER};
use parking_lot::Mutex;
use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// A new segment starts once the current one passes this size.
pub const SEGMENT_MAX: u64 = 16 * 1024 * 1024;
/// The ack log is rewritten (dropping acks of deleted segments) beyond this many records.
const ACK_COMPACT_THRESHOLD: u64 = 1 << 20;

#[derive(Debug, Default)]
struct Pending {
    records: Vec<u8>,
    acks: Vec<u8>,
    /// Messages appended since the log was opened (positions are counted in messages).
    appended: u64,
}

#[derive(Debug)]
struct Segment {
    no: u64,
    first_seq: u64,
    last_seq: u64,
    /// Records not yet acked.
    live: u64,
    size: u64,
}

#[derive(Debug, Default)]
struct Files {
    segments: VecDeque<Segment>,
    current: Option<File>,
    acks: Option<File>,
    ack_records: u64,
}

/// The durable log of one queue.
#[derive(Debug)]
pub struct QueueLog {
    dir: PathBuf,
    /// The directory's name under `queues/`, recorded in the queue's definition.
    name: String,
    flush: Arc<FlushState>,
    pending: Mutex<Pending>,
    files: Mutex<Files>,
    queued: AtomicBool,
    deleted: AtomicBool,
    /// Position up to which appended messages are durable (see `append`).
    synced: AtomicU64,
    /// One past the highest sequence number found at recovery, in records or acks.
    next_seq: u64,
}

fn segment_path(dir: &Path, no: u64) -> PathBuf {
    dir.join(format!("{no:020}.seg"))
}

/// Holds a sequence number below which every message counts as possibly delivered: written
/// when the log is recovered after a crash (delivery records are written behind the
/// deliveries, so any of its messages may have reached a client). Without it, a clean
/// restart after the crash would bring those messages back without the redelivered flag.
const DELIVERED_BELOW: &str = "delivered-below";

fn read_delivered_below(dir: &Path) -> u64 {
    fs::read(dir.join(DELIVERED_BELOW))
        .ok()
        .and_then(|b| Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?)))
        .unwrap_or(0)
}

impl super::flusher::Durable for QueueLog {
    fn is_durable(&self, position: u64) -> bool {
        QueueLog::is_durable(self, position)
    }
}

impl Flush for QueueLog {
    fn pending_bytes(&self) -> u64 {
        QueueLog::pending_bytes(self)
    }
    fn flush(&self, policy: SyncPolicy) -> io::Result<()> {
        QueueLog::flush(self, policy)
    }
}

impl QueueLog {
    /// The log's directory name (stored in the queue definition).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Appends a message; returns its position: it is durable once `is_durable(position)`.
    pub fn append(
        self: &Arc<Self>,
        seq: u64,
        exchange: &str,
        routing_key: &[u8],
        properties: &[u8],
        body: &[u8],
    ) -> u64 {
        let position = {
            let mut p = self.pending.lock();
            put_message(&mut p.records, seq, exchange, routing_key, properties, body);
            p.appended += 1;
            p.appended
        };
        self.schedule();
        position
    }

    /// The first sequence number the queue may give a new message: beyond every number the
    /// files mention. The ack log keeps acks of messages long gone, so a reused number would
    /// make a new message look acked at the next recovery (and be lost).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// After a crash: every message the log holds now counts as possibly delivered, at this
    /// and every later recovery (see `DELIVERED_BELOW`). Written atomically and synced.
    pub fn mark_all_possibly_delivered(&self) -> io::Result<()> {
        let tmp = self.dir.join("delivered-below.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&self.next_seq.to_be_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, self.dir.join(DELIVERED_BELOW))?;
        File::open(&self.dir)?.sync_all()
    }

    /// Bytes waiting to be written at the next flush.
    pub fn pending_bytes(&self) -> u64 {
        let p = self.pending.lock();
        (p.records.len() + p.acks.len()) as u64
    }

    /// Whether the message appended at `position` is on disk (or its queue is gone).
    pub fn is_durable(&self, position: u64) -> bool {
        self.synced.load(Ordering::Acquire) >= position
    }

    /// Records that messages left the queue for good (acked, dropped, purged).
    pub fn ack(self: &Arc<Self>, seqs: impl IntoIterator<Item = u64>) {
        {
            let mut p = self.pending.lock();
            for seq in seqs {
                put_ack(&mut p.acks, seq);
            }
        }
        self.schedule();
    }

    /// Records that a message was handed to a consumer (for the redelivered flag after a
    /// restart).
    pub fn delivered(self: &Arc<Self>, seqs: impl IntoIterator<Item = u64>) {
        {
            let mut p = self.pending.lock();
            for seq in seqs {
                put_ack(&mut p.acks, seq | record::DELIVERED_BIT);
            }
        }
        self.schedule();
    }

    /// The queue was deleted: its files go at the next flush.
    pub fn delete(self: &Arc<Self>) {
        self.deleted.store(true, Ordering::SeqCst);
        self.schedule();
    }

    fn schedule(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::SeqCst) {
            self.flush.mark_dirty(self.clone());
        }
    }

    /// Writes and syncs pending data (flusher thread only).
    pub fn flush(&self, policy: SyncPolicy) -> io::Result<()> {
        self.queued.store(false, Ordering::SeqCst);
        let mut files = self.files.lock();
        if self.deleted.load(Ordering::SeqCst) {
            files.current = None;
            files.acks = None;
            files.segments.clear();
            self.pending.lock().records.clear();
            // Nothing more will be written: publishers waiting on this queue are released.
            self.synced.store(u64::MAX, Ordering::Release);
            return match fs::remove_dir_all(&self.dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let (records, acks, target) = {
            let mut p = self.pending.lock();
            (
                std::mem::take(&mut p.records),
                std::mem::take(&mut p.acks),
                p.appended,
            )
        };
        // Acks are written even when the records cannot be: on a full disk they are what
        // lets fully acked segments go and give their space back.
        let mut unwritten: &[u8] = &records;
        let records_written = self.write_records(&mut files, &mut unwritten, policy);
        let acks_written = self.write_acks(&mut files, &acks, policy);
        if records_written.is_ok() {
            self.synced.fetch_max(target, Ordering::AcqRel);
        }
        if records_written.is_err() || acks_written.is_err() {
            // Put the bytes back in front of anything appended meanwhile, for the retry.
            let mut p = self.pending.lock();
            if records_written.is_err() {
                // Only what did not reach the segment: written chunks must not be repeated.
                let mut r = unwritten.to_vec();
                r.extend_from_slice(&p.records);
                p.records = r;
            }
            if acks_written.is_err() {
                let mut a = acks;
                a.extend_from_slice(&p.acks);
                p.acks = a;
            }
            self.queued.store(true, Ordering::SeqCst);
        }
        records_written.and(acks_written)
    }

    /// Writes whole records to the segments; `records` is advanced past each chunk that
    /// reached the disk, so on an error it holds exactly what is still to be written.
    fn write_records(
        &self,
        files: &mut Files,
        records: &mut &[u8],
        policy: SyncPolicy,
    ) -> io::Result<()> {
        while !records.is_empty() {
            let need_new = match files.segments.back() {
                None => true,
                Some(s) => s.size >= SEGMENT_MAX || files.current.is_none(),
            };
            if need_new {
                self.roll(files, policy)?;
            }
            // Take whole records up to the segment limit (at least one).
            let (mut take, mut first, mut last) = (0usize, None, 0u64);
            let room = SEGMENT_MAX.saturating_sub(files.segments.back().map_or(0, |s| s.size));
            while take < records.len() {
                let len = u32::from_be_bytes(records[take..take + 4].try_into().unwrap_or([0; 4]))
                    as usize;
                let seq_at = take + RECORD_HEADER;
                let seq =
                    u64::from_be_bytes(records[seq_at..seq_at + 8].try_into().unwrap_or([0; 8]));
                let total = RECORD_HEADER + len;
                if take > 0 && (take + total) as u64 > room {
                    break;
                }
                first.get_or_insert(seq);
                last = seq;
                take += total;
            }
            let (chunk, rest) = records.split_at(take);
            let file = files
                .current
                .as_mut()
                .ok_or_else(|| io::Error::other("no open segment"))?;
            let written = file.write_all(chunk).and_then(|_| match policy {
                SyncPolicy::Fsync => file.sync_data(),
                SyncPolicy::Write => Ok(()),
            });
            if let Err(e) = written {
                // A partial write (ENOSPC) must not stay in the segment: the retry appends
                // the whole records again, and recovery would stop at the torn one. Cut the
                // file back to its last whole record, or start a new segment if even that
                // fails (recovery skips a damaged tail in an older segment).
                let good = files.segments.back().map_or(0, |s| s.size);
                if file.set_len(good).is_err() {
                    files.current = None;
                }
                return Err(e);
            }
            if let Some(seg) = files.segments.back_mut() {
                if seg.live == 0 && seg.size == 0 {
                    seg.first_seq = first.unwrap_or(0);
                }
                seg.last_seq = last;
                seg.live += count_records(chunk);
                seg.size += chunk.len() as u64;
            }
            *records = rest;
        }
        Ok(())
    }

    /// Closes the current segment and opens the next.
    fn roll(&self, files: &mut Files, policy: SyncPolicy) -> io::Result<()> {
        if let Some(f) = files.current.take() {
            if policy == SyncPolicy::Fsync {
                f.sync_data()?;
            }
        }
        fs::create_dir_all(&self.dir)?;
        let no = files.segments.back().map_or(0, |s| s.no + 1);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(&self.dir, no))?;
        if policy == SyncPolicy::Fsync {
            // The new file's directory entry must survive too.
            File::open(&self.dir)?.sync_all()?;
        }
        files.current = Some(file);
        files.segments.push_back(Segment {
            no,
            first_seq: 0,
            last_seq: 0,
            live: 0,
            size: 0,
        });
        Ok(())
    }

    fn write_acks(&self, files: &mut Files, acks: &[u8], policy: SyncPolicy) -> io::Result<()> {
        if acks.is_empty() {
            return Ok(());
        }
        if files.acks.is_none() {
            fs::create_dir_all(&self.dir)?;
            files.acks = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join("acks.log"))?,
            );
        }
        if let Some(f) = files.acks.as_mut() {
            let written = f.write_all(acks).and_then(|_| match policy {
                SyncPolicy::Fsync => f.sync_data(),
                SyncPolicy::Write => Ok(()),
            });
            if let Err(e) = written {
                // As for segments: no torn ack record may stay before the retried ones.
                let good = files.ack_records * record::ACK_RECORD as u64;
                if f.set_len(good).is_err() {
                    files.acks = None;
                }
                return Err(e);
            }
        }
        files.ack_records += (acks.len() / record::ACK_RECORD) as u64;
        read_acks(acks, |seq| {
            if seq & record::DELIVERED_BIT != 0 {
                return;
            }
            let at = files.segments.partition_point(|s| s.last_seq < seq);
            if let Some(seg) = files.segments.get_mut(at) {
                if seg.first_seq <= seq {
                    seg.live = seg.live.saturating_sub(1);
                }
            }
        });
        self.drop_empty_segments(files)?;
        if files.ack_records > ACK_COMPACT_THRESHOLD {
            self.compact_acks(files)?;
        }
        Ok(())
    }

    /// Deletes fully acked segments, except the one being written.
    fn drop_empty_segments(&self, files: &mut Files) -> io::Result<()> {
        while files.segments.len() > 1 && files.segments.front().is_some_and(|s| s.live == 0) {
            if let Some(seg) = files.segments.pop_front() {
                match fs::remove_file(segment_path(&self.dir, seg.no)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Rewrites the ack log with only the acks that still refer to existing segments.
    fn compact_acks(&self, files: &mut Files) -> io::Result<()> {
        let oldest = files.segments.front().map_or(u64::MAX, |s| s.first_seq);
        let path = self.dir.join("acks.log");
        let data = fs::read(&path)?;
        let mut kept = Vec::new();
        read_acks(&data, |seq| {
            if seq & !record::DELIVERED_BIT >= oldest {
                put_ack(&mut kept, seq);
            }
        });
        let tmp = self.dir.join("acks.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&kept)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        File::open(&self.dir)?.sync_all()?;
        files.acks = Some(OpenOptions::new().append(true).open(&path)?);
        files.ack_records = (kept.len() / record::ACK_RECORD) as u64;
        Ok(())
    }

    /// Opens (creating if needed) the log in `dir` and returns the messages not yet acked, in
    /// order.
    /// Messages are handed to `each` one at a time, in order, as segments are read, so
    /// recovery never holds the whole backlog in memory.
    pub fn recover(
        dir: PathBuf,
        name: String,
        flush: Arc<FlushState>,
        each: &mut dyn FnMut(StoredMessage),
    ) -> io::Result<Arc<QueueLog>> {
        fs::create_dir_all(&dir)?;
        let delivered_below = read_delivered_below(&dir);
        let mut acked = HashSet::new();
        let mut delivered = HashSet::new();
        let ack_path = dir.join("acks.log");
        let mut ack_records = 0;
        let mut next_seq = 0u64;
        if let Ok(data) = fs::read(&ack_path) {
            let good = read_acks(&data, |seq| {
                next_seq = next_seq.max((seq & !record::DELIVERED_BIT).saturating_add(1));
                if seq & record::DELIVERED_BIT != 0 {
                    delivered.insert(seq & !record::DELIVERED_BIT);
                } else {
                    acked.insert(seq);
                }
            });
            ack_records = (good / record::ACK_RECORD) as u64;
            if good < data.len() {
                tracing::warn!(path = %ack_path.display(), "torn ack log tail cut off");
                OpenOptions::new()
                    .write(true)
                    .open(&ack_path)?
                    .set_len(good as u64)?;
            }
        }
        let mut numbers: Vec<u64> = fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".seg")?.parse().ok())
            .collect();
        numbers.sort_unstable();
        let mut files = Files {
            ack_records,
            ..Files::default()
        };
        for (i, no) in numbers.iter().enumerate() {
            let is_last = i + 1 == numbers.len();
            let path = segment_path(&dir, *no);
            let data = fs::read(&path)?;
            let mut at = 0;
            let mut seg = Segment {
                no: *no,
                first_seq: 0,
                last_seq: 0,
                live: 0,
                size: 0,
            };
            loop {
                match record::read_message(&data[at..]) {
                    Read::Record(m, used) => {
                        if seg.size == 0 && seg.live == 0 && at == 0 {
                            seg.first_seq = m.seq;
                        }
                        seg.last_seq = m.seq;
                        next_seq = next_seq.max(m.seq.saturating_add(1));
                        at += used;
                        if !acked.contains(&m.seq) {
                            seg.live += 1;
                            let delivered = m.seq < delivered_below || delivered.contains(&m.seq);
                            each(StoredMessage { delivered, ..m });
                        }
                    }
                    Read::End => break,
                    Read::Damaged => {
                        if is_last {
                            tracing::warn!(path = %path.display(), offset = at, "torn write at the end of a segment cut off");
                            OpenOptions::new()
                                .write(true)
                                .open(&path)?
                                .set_len(at as u64)?;
                        } else {
                            tracing::warn!(path = %path.display(), offset = at, "damaged record: the rest of this segment is skipped");
                        }
                        break;
                    }
                }
            }
            seg.size = at as u64;
            files.segments.push_back(seg);
        }
        if let Some(last) = files.segments.back() {
            files.current = Some(
                OpenOptions::new()
                    .append(true)
                    .open(segment_path(&dir, last.no))?,
            );
        }
        let log = QueueLog {
            dir,
            name,
            flush,
            pending: Mutex::new(Pending::default()),
            files: Mutex::new(files),
            queued: AtomicBool::new(false),
            deleted: AtomicBool::new(false),
            synced: AtomicU64::new(0),
            next_seq,
        };
        {
            let mut files = log.files.lock();
            log.drop_empty_segments(&mut files)?;
        }
        Ok(Arc::new(log))
    }
}

fn count_records(mut chunk: &[u8]) -> u64 {
    let mut n = 0;
    while chunk.len() >= RECORD_HEADER {
        let len = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) as usize;
        chunk = chunk.get(RECORD_HEADER + len..).unwrap_or(&[]);
        n += 1;
    }
    n
}

//! Exchange-level message deduplication, with the arguments of the two implementations RabbitMQ
//! users have: the community plugin's exchange type `x-message-deduplication` (routes like
//! fanout; `x-cache-size` required, `x-cache-ttl`, `x-cache-persistence`), and LavinMQ's
//! `x-message-deduplication: true` argument on an exchange of any type (`x-cache-size`
//! defaults to 128; `x-deduplication-header` names the header).
//!
//! A message carrying the header (`x-deduplication-header` unless renamed) whose value was
//! seen within the window routes nowhere: the publisher still gets its confirm (basic.ack),
//! and a mandatory publish comes back with 312 NO_ROUTE, as in both implementations. The
//! alternate exchange is not tried for a duplicate (LavinMQ; the plugin would send it there,
//! which would hand the duplicate to whoever reads the alternate's queues).
//!
//! The key is the header's value: any type, integers compared by value across widths (the
//! plugin's Erlang terms), strings of any length (a longstr has no shortstr limit), void a
//! key of its own (the plugin's `undefined`), tables and arrays by their encoded bytes
//! (LavinMQ; the plugin fails on them). The check and the insert are one step under the
//! cache's lock. A full cache forgets its oldest key; a key lives `x-cache-ttl` ms from its
//! insert (or the message's own `x-cache-ttl` header), or until evicted. A cache costs
//! nothing on exchanges without these arguments: they have none.

use crate::broker::clock::{now_ms, unix_ms};
use crate::broker::dedup_key::with_key;
use crate::error::{AmqpError, AmqpResult};
use crate::protocol::raw_table::{self, RawValue};
use crate::protocol::table::as_int;
use crate::protocol::{AMQPValue, FieldTable};
use crate::store::{DedupEntry, DedupLog, Durable, DurableAt};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::{Arc, OnceLock, Weak};

pub use crate::broker::dedup_key::DEFAULT_HEADER;
/// LavinMQ's default cache size when `x-cache-size` is not given.
const DEFAULT_SIZE: u64 = 128;

/// A deduplicating exchange's settings, from its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub size: usize,
    /// Default lifetime of a key (ms); None: until evicted.
    pub ttl_ms: Option<u64>,
    /// `x-cache-persistence: disk`: the keys survive restarts.
    pub persistent: bool,
    pub header: Box<str>,
}

/// An integer argument > 0; a longstr holding one is accepted too (the plugin parses it).
fn positive(v: &AMQPValue) -> Option<u64> {
    let n = match v {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes())
            .ok()?
            .trim()
            .parse()
            .ok()?,
        other => as_int(other)?,
    };
    u64::try_from(n).ok().filter(|n| *n > 0)
}

impl Settings {
    /// The settings of an exchange of type `plugin_type` (`x-message-deduplication`) or with
    /// `x-message-deduplication: true`; None when it does not deduplicate. Invalid arguments
    /// are 406, checked in the plugin's order (size, ttl, persistence), with its texts.
    pub fn from_arguments(
        plugin_type: bool,
        arguments: &FieldTable,
    ) -> AmqpResult<Option<Settings>> {
        let args = arguments.inner();
        // LavinMQ turns it on with a boolean true; any other value leaves it off.
        let flagged = matches!(
            args.get("x-message-deduplication"),
            Some(AMQPValue::Boolean(true))
        );
        if !plugin_type && !flagged {
            return Ok(None);
        }
        let size = match args.get("x-cache-size") {
            None if !plugin_type => DEFAULT_SIZE,
            found => found.and_then(positive).ok_or_else(|| {
                AmqpError::precondition_failed(
                    "Missing or invalid argument, 'x-cache-size' must be an integer greater than 0",
                )
            })?,
        };
        let ttl_ms = match args.get("x-cache-ttl") {
            None => None,
            Some(v) => Some(positive(v).ok_or_else(|| {
                AmqpError::precondition_failed(
                    "Invalid argument, 'x-cache-ttl' must be an integer greater than 0",
                )
            })?),
        };
        let persistent = match args.get("x-cache-persistence") {
            None => false,
            Some(AMQPValue::LongString(s)) if s.as_bytes() == b"memory" => false,
            Some(AMQPValue::LongString(s)) if s.as_bytes() == b"disk" => true,
            Some(_) => {
                return Err(AmqpError::precondition_failed(
                    "Invalid argument, 'x-cache-persistence' must be either 'disk' or 'memory'",
                ))
            }
        };
        let header = match args.get("x-deduplication-header") {
            None => DEFAULT_HEADER.into(),
            Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into(),
            Some(_) => {
                return Err(AmqpError::precondition_failed(
                    "Invalid argument, 'x-deduplication-header' must be a string",
                ))
            }
        };
        Ok(Some(Settings {
            size: usize::try_from(size).unwrap_or(usize::MAX),
            ttl_ms,
            persistent,
            header,
        }))
    }
}

/// What the cache decided about one message.
#[derive(Debug)]
pub enum Admission {
    /// No deduplication header (or a per-message TTL of 0): routed as usual, nothing
    /// remembered.
    Pass,
    /// Seen within the window: routed nowhere. The first message's durability positions
    /// were added to the caller's list: the duplicate's confirm waits for them.
    Duplicate,
    /// First seen: routed, and remembered until [`Admitted::withdraw`] says otherwise.
    /// [`Admitted::settle`] must follow once the message is in its queues.
    New(Admitted),
}

/// A key remembered while routing, waiting for its message's fate.
#[derive(Debug)]
pub struct Admitted {
    cache: Arc<Cache>,
    key: Arc<[u8]>,
    /// The entry's insert number: a later insert of the same key is not touched.
    seq: u64,
    /// Monotonic expiry (ms); 0 = never.
    expires: u64,
}

impl Admitted {
    /// The message is in its queues, on disk once `message_at` is. A persistent cache writes
    /// the key after those positions and adds the key's own position to `deps` (what the
    /// publisher's confirm waits for). A later duplicate's confirm waits for the same.
    pub fn settle(self, message_at: &[DurableAt], deps: &mut Vec<DurableAt>) {
        let wait = match self.cache.log.get() {
            Some(log) => {
                let expires_unix = match self.expires {
                    0 => 0,
                    at => unix_ms().saturating_add(at.saturating_sub(now_ms())).max(1),
                };
                let position = log.append(&self.key, expires_unix, message_at.to_vec());
                let log: Arc<dyn Durable> = log.clone();
                let wait = Some(Wait::One(Arc::downgrade(&log), position));
                deps.push((log, position));
                wait
            }
            None => Wait::of(message_at),
        };
        if let Some(wait) = wait {
            let mut keys = self.cache.keys.lock();
            if let Some(e) = keys.map.get_mut(&self.key[..]) {
                if e.seq == self.seq {
                    e.wait = Some(Box::new(wait));
                }
            }
        }
    }

    /// No queue kept the message (one refused it, or the publish failed): the key is
    /// forgotten, so the publisher's retry is not taken for a duplicate of a message that
    /// was never kept.
    pub fn withdraw(self) {
        let mut keys = self.cache.keys.lock();
        if keys
            .map
            .get(&self.key[..])
            .is_some_and(|e| e.seq == self.seq)
        {
            keys.map.remove(&self.key[..]);
        }
    }
}

/// What a duplicate's confirm waits for: the first message's log positions, held weakly (a
/// log that is gone took the message with it, and keeps no file open for the cache's sake).
#[derive(Debug, Clone)]
enum Wait {
    One(Weak<dyn Durable>, u64),
    All(Arc<[(Weak<dyn Durable>, u64)]>),
}

impl Wait {
    /// None when there is nothing to wait for (a transient message).
    fn of(positions: &[DurableAt]) -> Option<Wait> {
        match positions {
            [] => None,
            [(log, at)] => Some(Wait::One(Arc::downgrade(log), *at)),
            many => Some(Wait::All(
                many.iter()
                    .map(|(l, at)| (Arc::downgrade(l), *at))
                    .collect(),
            )),
        }
    }

    /// Adds the positions not yet on disk to `out`.
    fn add_to(&self, out: &mut Vec<DurableAt>) {
        let mut add = |log: &Weak<dyn Durable>, at: u64| {
            if let Some(log) = log.upgrade() {
                if !log.is_durable(at) {
                    out.push((log, at));
                }
            }
        };
        match self {
            Wait::One(log, at) => add(log, *at),
            Wait::All(all) => all.iter().for_each(|(log, at)| add(log, *at)),
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    /// Monotonic expiry (ms); 0 = never.
    expires: u64,
    /// Insert order: the oldest is evicted first.
    seq: u64,
    /// Boxed: most entries have none, and the map stays small.
    wait: Option<Box<Wait>>,
}

#[derive(Debug, Default)]
struct Keys {
    map: crate::FastMap<Arc<[u8]>, Entry>,
    /// Keys in insert order, with the seq they had then (stale ones are skipped).
    order: VecDeque<(Arc<[u8]>, u64)>,
    next_seq: u64,
}

/// One exchange's remembered keys.
#[derive(Debug)]
pub struct Cache {
    settings: Settings,
    keys: Mutex<Keys>,
    log: OnceLock<Arc<DedupLog>>,
}

impl Cache {
    pub fn new(settings: Settings) -> Arc<Cache> {
        Arc::new(Cache {
            settings,
            keys: Mutex::new(Keys::default()),
            log: OnceLock::new(),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Attaches the persistent cache's log and the keys it held (in the order written).
    pub fn attach_log(&self, log: Arc<DedupLog>, entries: Vec<DedupEntry>) {
        let now = now_ms();
        let mut keys = self.keys.lock();
        for e in entries {
            let expires = match e.expires_unix_ms {
                0 => 0,
                at if at <= unix_ms() => continue,
                at => crate::broker::clock::from_unix_ms(at).max(1),
            };
            let key: Arc<[u8]> = e.key.into();
            keys.insert(key, expires, now, self.settings.size);
        }
        drop(keys);
        let _ = self.log.set(log);
    }

    /// The exchange was deleted: a persistent cache's file goes with it.
    pub fn delete_log(&self) {
        if let Some(log) = self.log.get() {
            log.delete();
        }
    }

    /// How many keys it remembers (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.keys.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A recovered message's key, remembered (and written) if the log lost it (a crash
    /// between the message's write and its key's). Only into spare room: the keys the log
    /// kept are newer than a backlog's, and are not evicted for them.
    pub fn recover_key(self: &Arc<Self>, headers: Option<&[u8]>) {
        with_key(headers, self.settings.header.as_bytes(), |key| {
            self.recover(key)
        });
    }

    fn recover(self: &Arc<Self>, key: &[u8]) {
        let now = now_ms();
        let expires = self.settings.ttl_ms.map_or(0, |t| now.saturating_add(t));
        let mut keys = self.keys.lock();
        if keys.map.len() >= self.settings.size || keys.map.contains_key(key) {
            return;
        }
        let key: Arc<[u8]> = key.into();
        let seq = keys.insert(key.clone(), expires, now, self.settings.size);
        drop(keys);
        let admitted = Admitted {
            cache: self.clone(),
            key,
            seq,
            expires,
        };
        admitted.settle(&[], &mut Vec::new());
    }

    /// Checks the message's key and remembers it if new, in one step. For a duplicate, what
    /// the first one's confirm waited for and is not on disk yet goes to `waits`.
    pub fn admit(
        self: &Arc<Self>,
        headers: Option<&[u8]>,
        waits: &mut Vec<DurableAt>,
    ) -> Admission {
        with_key(headers, self.settings.header.as_bytes(), |key| {
            self.admit_key(key, headers, waits)
        })
        .unwrap_or(Admission::Pass)
    }

    fn admit_key(
        self: &Arc<Self>,
        key: &[u8],
        headers: Option<&[u8]>,
        waits: &mut Vec<DurableAt>,
    ) -> Admission {
        let now = now_ms();
        let ttl = headers
            .and_then(|h| raw_table::lookup(h, b"x-cache-ttl"))
            .and_then(|v| match v {
                RawValue::Signed(n) => Some(u64::try_from(n).unwrap_or(0)),
                RawValue::Unsigned(n) => Some(n.into()),
                _ => None,
            })
            .or(self.settings.ttl_ms);
        // A per-message TTL of 0 (or less) is already over: the key is not kept.
        let expires = ttl.map_or(0, |t| now.saturating_add(t));
        let mut keys = self.keys.lock();
        if let Some(e) = keys.map.get(key) {
            if e.expires == 0 || e.expires > now {
                if let Some(wait) = &e.wait {
                    wait.add_to(waits);
                }
                return Admission::Duplicate;
            }
        }
        if ttl == Some(0) {
            return Admission::Pass;
        }
        let key: Arc<[u8]> = key.into();
        let seq = keys.insert(key.clone(), expires, now, self.settings.size);
        drop(keys);
        Admission::New(Admitted {
            cache: self.clone(),
            key,
            seq,
            expires,
        })
    }
}

impl Keys {
    /// Inserts (or replaces an expired) key; evicts the oldest when full. Returns its seq.
    fn insert(&mut self, key: Arc<[u8]>, expires: u64, now: u64, size: usize) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if !self.map.contains_key(&key[..]) {
            while self.map.len() >= size.max(1) {
                let Some((old, old_seq)) = self.order.pop_front() else {
                    break;
                };
                if self.map.get(&old[..]).is_some_and(|e| e.seq == old_seq) {
                    self.map.remove(&old[..]);
                }
            }
        }
        self.map.insert(
            key.clone(),
            Entry {
                expires,
                seq,
                wait: None,
            },
        );
        self.order.push_back((key, seq));
        if self.order.len() > 2 * self.map.len() + 64 {
            // Re-inserted expired keys left stale entries behind: keep only the live ones.
            let map = &self.map;
            self.order
                .retain(|(k, s)| map.get(&k[..]).is_some_and(|e| e.seq == *s));
        }
        // Expired keys at the head are dropped as they are met (an expired key is not a
        // duplicate, so keeping it costs only memory, bounded by the size).
        while let Some((k, s)) = self.order.front() {
            match self.map.get(&k[..]) {
                Some(e) if e.seq == *s && (e.expires == 0 || e.expires > now) => break,
                Some(e) if e.seq == *s => {
                    let k = k.clone();
                    self.map.remove(&k[..]);
                    self.order.pop_front();
                }
                _ => {
                    self.order.pop_front();
                }
            }
        }
        seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::clock::{advance_for_test, set_for_test};
    use crate::protocol::table::encode_table;

    fn headers(entries: &[(&str, AMQPValue)]) -> Vec<u8> {
        let mut t = FieldTable::default();
        for (k, v) in entries {
            t.insert((*k).into(), v.clone());
        }
        encode_table(&t)
    }

    fn keyed(v: AMQPValue) -> Vec<u8> {
        headers(&[(DEFAULT_HEADER, v)])
    }

    fn cache(size: usize, ttl_ms: Option<u64>) -> Arc<Cache> {
        Cache::new(Settings {
            size,
            ttl_ms,
            persistent: false,
            header: DEFAULT_HEADER.into(),
        })
    }

    fn admit(c: &Arc<Cache>, headers: Option<&[u8]>) -> Admission {
        c.admit(headers, &mut Vec::new())
    }

    fn is_new(a: Admission) -> bool {
        matches!(a, Admission::New(_))
    }

    #[test]
    fn a_key_seen_before_is_a_duplicate() {
        let c = cache(10, None);
        let a = keyed(AMQPValue::LongString("a".into()));
        assert!(is_new(admit(&c, Some(&a))));
        assert!(matches!(admit(&c, Some(&a)), Admission::Duplicate));
        assert!(matches!(admit(&c, None), Admission::Pass));
        assert!(matches!(
            admit(&c, Some(&headers(&[("other", AMQPValue::LongInt(1))]))),
            Admission::Pass
        ));
        // Integers of any width are one key; the string "1" is another.
        assert!(is_new(admit(&c, Some(&keyed(AMQPValue::LongInt(1))))));
        assert!(matches!(
            admit(&c, Some(&keyed(AMQPValue::LongLongInt(1)))),
            Admission::Duplicate
        ));
        assert!(is_new(admit(
            &c,
            Some(&keyed(AMQPValue::LongString("1".into())))
        )));
    }

    #[test]
    fn a_full_cache_forgets_its_oldest_key() {
        let c = cache(2, None);
        let k = |s: &str| keyed(AMQPValue::LongString(s.into()));
        assert!(is_new(admit(&c, Some(&k("a")))));
        assert!(is_new(admit(&c, Some(&k("b")))));
        assert!(is_new(admit(&c, Some(&k("c")))));
        assert_eq!(c.len(), 2);
        assert!(matches!(admit(&c, Some(&k("c"))), Admission::Duplicate));
        assert!(matches!(admit(&c, Some(&k("b"))), Admission::Duplicate));
        assert!(is_new(admit(&c, Some(&k("a")))), "a was evicted");
    }

    #[test]
    fn keys_expire_after_their_ttl() {
        set_for_test(10_000);
        let c = cache(10, Some(1_000));
        let a = keyed(AMQPValue::LongString("a".into()));
        assert!(is_new(admit(&c, Some(&a))));
        advance_for_test(999);
        assert!(matches!(admit(&c, Some(&a)), Admission::Duplicate));
        advance_for_test(1);
        assert!(is_new(admit(&c, Some(&a))), "expired after 1000 ms");
        // A message's own x-cache-ttl wins; 0 keeps nothing.
        let short = headers(&[
            (DEFAULT_HEADER, AMQPValue::LongString("b".into())),
            ("x-cache-ttl", AMQPValue::LongInt(10)),
        ]);
        assert!(is_new(admit(&c, Some(&short))));
        advance_for_test(10);
        assert!(is_new(admit(&c, Some(&short))));
        let none = headers(&[
            (DEFAULT_HEADER, AMQPValue::LongString("z".into())),
            ("x-cache-ttl", AMQPValue::LongInt(0)),
        ]);
        assert!(matches!(admit(&c, Some(&none)), Admission::Pass));
        assert!(matches!(admit(&c, Some(&none)), Admission::Pass));
    }

    #[test]
    fn arguments_are_checked_in_the_plugins_order() {
        let args = |entries: &[(&str, AMQPValue)]| {
            let mut t = FieldTable::default();
            for (k, v) in entries {
                t.insert((*k).into(), v.clone());
            }
            t
        };
        let text = |r: AmqpResult<Option<Settings>>| r.err().map(|e| e.text).unwrap_or_default();
        assert!(text(Settings::from_arguments(true, &args(&[])))
            .contains("'x-cache-size' must be an integer greater than 0"));
        assert!(text(Settings::from_arguments(
            true,
            &args(&[("x-cache-size", AMQPValue::LongInt(0))])
        ))
        .contains("x-cache-size"));
        assert!(text(Settings::from_arguments(
            true,
            &args(&[
                ("x-cache-size", AMQPValue::LongInt(5)),
                ("x-cache-ttl", AMQPValue::LongInt(-1))
            ])
        ))
        .contains("'x-cache-ttl' must be an integer greater than 0"));
        assert!(text(Settings::from_arguments(
            true,
            &args(&[
                ("x-cache-size", AMQPValue::LongInt(5)),
                ("x-cache-persistence", AMQPValue::LongString("tape".into()))
            ])
        ))
        .contains("must be either 'disk' or 'memory'"));
        let s = Settings::from_arguments(
            true,
            &args(&[("x-cache-size", AMQPValue::LongString("7".into()))]),
        );
        assert_eq!(s.ok().flatten().map(|s| s.size), Some(7));
        // LavinMQ style: a flag on any exchange, 128 keys by default.
        let s = Settings::from_arguments(
            false,
            &args(&[("x-message-deduplication", AMQPValue::Boolean(true))]),
        );
        assert_eq!(s.ok().flatten().map(|s| s.size), Some(128));
        assert_eq!(
            Settings::from_arguments(false, &args(&[])).ok().flatten(),
            None
        );
    }

    /// A log whose positions reach the disk when the test says so.
    #[derive(Debug, Default)]
    struct SlowLog(std::sync::atomic::AtomicU64);

    impl Durable for SlowLog {
        fn is_durable(&self, position: u64) -> bool {
            position <= self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    #[test]
    fn a_duplicates_confirm_waits_for_the_first_message_to_be_on_disk() {
        let c = cache(10, None);
        let a = keyed(AMQPValue::LongString("a".into()));
        let log = Arc::new(SlowLog::default());
        let dyn_log: Arc<dyn Durable> = log.clone();
        let Admission::New(first) = admit(&c, Some(&a)) else {
            panic!("new")
        };
        first.settle(&[(dyn_log, 5)], &mut Vec::new());
        let mut waits = Vec::new();
        assert!(matches!(
            c.admit(Some(&a), &mut waits),
            Admission::Duplicate
        ));
        assert_eq!(waits.len(), 1, "the first one is not on disk yet");
        assert_eq!(waits[0].1, 5);
        log.0.store(5, std::sync::atomic::Ordering::SeqCst);
        let mut waits = Vec::new();
        assert!(matches!(
            c.admit(Some(&a), &mut waits),
            Admission::Duplicate
        ));
        assert!(waits.is_empty(), "on disk: nothing to wait for");
    }

    #[test]
    fn a_withdrawn_key_is_forgotten_and_a_later_insert_is_kept() {
        let c = cache(10, None);
        let a = keyed(AMQPValue::LongString("a".into()));
        let Admission::New(first) = admit(&c, Some(&a)) else {
            panic!("new")
        };
        first.withdraw();
        let Admission::New(second) = admit(&c, Some(&a)) else {
            panic!("the withdrawn key is not a duplicate")
        };
        second.settle(&[], &mut Vec::new());
        assert!(matches!(admit(&c, Some(&a)), Admission::Duplicate));
    }

    #[test]
    fn recovered_keys_fill_spare_room_only() {
        let c = cache(2, None);
        let k = |s: &str| keyed(AMQPValue::LongString(s.into()));
        assert!(is_new(admit(&c, Some(&k("new1")))));
        c.recover_key(Some(&k("old")));
        assert!(is_new(admit(&c, Some(&k("new2")))));
        // Full now: an older recovered key does not evict the newest.
        c.recover_key(Some(&k("older")));
        assert!(matches!(admit(&c, Some(&k("new2"))), Admission::Duplicate));
        assert!(is_new(admit(&c, Some(&k("older")))));
    }
}

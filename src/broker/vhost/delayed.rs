//! The delayed-message exchange's waiting room. Messages wait for their `x-delay` in a map
//! ordered by due time, watched by one timer task per vhost (not a task per message: a
//! million delayed messages are a million map entries, not a million timers); persistent
//! messages published to a durable delayed exchange also wait in a vhost-wide
//! durable log (recorded in the definitions like a queue), so they survive a restart and are
//! routed when due, or at once if their time passed while Warren was down.
//!
//! That log is numbered in publish order like a queue's log (acks are counted against the
//! segment holding each number, which needs ascending numbers), and each stored body starts
//! with the message's due time: `DUE_TAG`, then the due time in ms (big-endian u64).

use super::VHost;
use crate::broker::clock::{from_unix_ms, now_ms, unix_ms};
use crate::broker::exchange::Routed;
use crate::broker::message::Message;
use crate::store::QueueLog;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// A delayed message waiting for its time, and its record in the durable log, if any.
#[derive(Debug)]
struct Held {
    message: Message,
    stored: Option<(Arc<QueueLog>, u64)>,
}

/// Delayed messages by (due time on the broker clock, arrival number): the same due time
/// keeps arrival order.
#[derive(Debug, Default)]
pub(super) struct Waiting {
    held: Mutex<BTreeMap<(u64, u64), Held>>,
    next_number: AtomicU64,
    /// A message came due earlier than the timer's current wait.
    pub(super) sooner: Notify,
    timer_started: AtomicBool,
}

impl Waiting {
    /// The messages due at `now`, in order, and the next due time after them.
    fn take_due(&self, now: u64) -> (Vec<Held>, Option<u64>) {
        let mut held = self.held.lock();
        let later = held.split_off(&(now.saturating_add(1), 0));
        let due = std::mem::replace(&mut *held, later);
        let next = held.keys().next().map(|(at, _)| *at);
        (due.into_values().collect(), next)
    }
}

/// The definitions entry that names the delayed-message log (never a real queue name: the
/// `amq.` prefix is reserved).
pub const DELAYED_LOG_NAME: &str = "amq.warren.delayed";

/// Marks a stored body that starts with its due time. Logs written before carried the due
/// time in the sequence number (`due_ms << 12 | counter`) and are still read.
const DUE_TAG: &[u8; 4] = b"wdue";

/// The durable log of persistent delayed messages and the number for the next one.
#[derive(Debug)]
pub(super) struct DelayedLog {
    pub(super) log: Arc<QueueLog>,
    next_seq: AtomicU64,
}

impl DelayedLog {
    fn new(log: Arc<QueueLog>) -> DelayedLog {
        DelayedLog {
            next_seq: AtomicU64::new(log.next_seq()),
            log,
        }
    }

    /// Appends a message due at `due_ms` (wall clock, ms since the Unix epoch: it must mean
    /// the same after a restart); returns its number and log position.
    fn append(&self, message: &Message, due_ms: u64) -> (u64, u64) {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let mut stored = Vec::with_capacity(12 + message.body().len());
        stored.extend_from_slice(DUE_TAG);
        stored.extend_from_slice(&due_ms.to_be_bytes());
        stored.extend_from_slice(message.body());
        let position = self.log.append(
            seq,
            message.exchange(),
            message.routing_key_bytes(),
            message.properties(),
            &stored,
        );
        (seq, position)
    }
}

/// A stored body's due time and the message's own body.
fn split_due(seq: u64, stored: &[u8]) -> (u64, &[u8]) {
    match stored.strip_prefix(DUE_TAG.as_slice()) {
        Some(rest) if rest.len() >= 8 => {
            let (due, body) = rest.split_at(8);
            let due = u64::from_be_bytes(due.try_into().unwrap_or([0; 8]));
            (due, body)
        }
        _ => (seq >> 12, stored),
    }
}

impl VHost {
    /// Holds `message` for `delay` ms, then routes it through its exchange. Returns the log
    /// position that must be durable before the publish is confirmed, when it was persisted.
    pub fn hold_delayed(&self, message: Message, delay: u64) -> Option<(Arc<QueueLog>, u64)> {
        let due = now_ms().saturating_add(delay);
        let durable_exchange = self
            .exchange(message.exchange())
            .is_ok_and(|x| x.spec.durable);
        let mut persisted = None;
        if message.is_persistent() && durable_exchange {
            if let Some(delayed) = self.delayed_log() {
                let (seq, position) = delayed.append(&message, unix_ms().saturating_add(delay));
                persisted = Some((delayed.log.clone(), seq, position));
            }
        }
        let out = persisted
            .as_ref()
            .map(|(log, _, position)| (log.clone(), *position));
        self.schedule_delayed(message, due, persisted.map(|(log, seq, _)| (log, seq)));
        out
    }

    /// Starts the timer that routes a delayed message when it is due (`due_ms` on the
    /// monotonic clock).
    pub(super) fn schedule_delayed(
        &self,
        message: Message,
        due_ms: u64,
        stored: Option<(Arc<QueueLog>, u64)>,
    ) {
        let number = self.waiting.next_number.fetch_add(1, Ordering::Relaxed);
        let earliest = {
            let mut held = self.waiting.held.lock();
            held.insert((due_ms, number), Held { message, stored });
            held.keys().next() == Some(&(due_ms, number))
        };
        if !self.waiting.timer_started.swap(true, Ordering::AcqRel) {
            self.start_delayed_timer();
        } else if earliest {
            self.waiting.sooner.notify_one();
        }
    }

    /// The vhost's timer for delayed messages: sleeps until the earliest is due (or until an
    /// earlier one arrives), then routes everything due, in due order.
    fn start_delayed_timer(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.waiting.timer_started.store(false, Ordering::Release);
            return;
        };
        // The task holds the vhost weakly (and ends when it goes: see VHost's Drop).
        let vhost = self.me.clone();
        let waiting = self.waiting.clone();
        runtime.spawn(async move {
            loop {
                let Some(v) = vhost.upgrade() else { return };
                let (due, next) = waiting.take_due(now_ms());
                for held in due {
                    v.route_delayed(held);
                }
                drop(v);
                let wait = next.map(|at| Duration::from_millis(at.saturating_sub(now_ms())));
                let sooner = waiting.sooner.notified();
                match wait {
                    Some(wait) => {
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = sooner => {}
                        }
                    }
                    None => sooner.await,
                }
            }
        });
    }

    /// Routes a delayed message whose time has come through its exchange.
    fn route_delayed(&self, held: Held) {
        let Held { message, stored } = held;
        let mut routed = Routed::default();
        let headers = message.view().headers;
        if self
            .route(
                message.exchange(),
                &message.routing_key(),
                headers,
                &mut routed,
            )
            .is_ok()
        {
            let mut message_at = Vec::new();
            for q in routed.queues.drain(..) {
                let (outcome, fx) = q.publish(message.clone());
                if let (Some(position), Some(log)) = (outcome.position, q.log()) {
                    let log: Arc<dyn crate::store::Durable> = log.clone();
                    message_at.push((log, position));
                }
                self.carry_out(&q, fx);
            }
            routed.settle_keys(&mut message_at);
        }
        if let Some((log, seq)) = stored {
            log.ack(std::iter::once(seq));
        }
    }

    /// The durable log of delayed messages, once a durable delayed exchange exists.
    fn delayed_log(&self) -> Option<&DelayedLog> {
        self.delayed.get()
    }

    /// Creates the durable log of delayed messages if there is none yet. The caller records
    /// it: the declare of the first durable delayed exchange, before its declare-ok, so a
    /// confirmed delayed message is always in a log the definitions know.
    pub(super) fn create_delayed_log(&self) -> std::io::Result<()> {
        let Some(store) = self.store.as_ref() else {
            return Ok(());
        };
        if self.delayed.get().is_some() {
            return Ok(());
        }
        let log = store.create_queue_log()?;
        // Lost race: the other declare's log is the one kept, this empty one is an orphan
        // removed at the next start.
        let _ = self.delayed.set(DelayedLog::new(log));
        Ok(())
    }

    /// Recovery: reopens the delayed-message log and schedules what it holds.
    pub(super) fn recover_delayed(&self, dir_name: &str) -> std::io::Result<usize> {
        let Some(store) = &self.store else {
            return Ok(0);
        };
        let mut waiting = Vec::new();
        let log = store.open_queue_log(dir_name, &mut |m| waiting.push(m))?;
        let log = self
            .delayed
            .get_or_init(|| DelayedLog::new(log))
            .log
            .clone();
        let count = waiting.len();
        for m in waiting {
            let (due, body) = split_due(m.seq, &m.body);
            let message = Message::new(&m.exchange, &m.routing_key, &m.properties, body);
            self.schedule_delayed(message, from_unix_ms(due), Some((log.clone(), m.seq)));
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_messages_leave_in_due_order_and_arrival_order_within_a_due_time() {
        let waiting = Waiting::default();
        for (due, body) in [(300, "c"), (100, "a1"), (200, "b"), (100, "a2"), (400, "d")] {
            let n = waiting.next_number.fetch_add(1, Ordering::Relaxed);
            let message = Message::new("x", b"k", &[], body.as_bytes());
            waiting.held.lock().insert(
                (due, n),
                Held {
                    message,
                    stored: None,
                },
            );
        }
        let bodies = |held: Vec<Held>| -> Vec<String> {
            held.iter()
                .map(|h| String::from_utf8_lossy(h.message.body()).into_owned())
                .collect()
        };
        let (due, next) = waiting.take_due(50);
        assert!(due.is_empty());
        assert_eq!(next, Some(100));
        let (due, next) = waiting.take_due(300);
        assert_eq!(bodies(due), ["a1", "a2", "b", "c"]);
        assert_eq!(next, Some(400));
        let (due, next) = waiting.take_due(1_000);
        assert_eq!(bodies(due), ["d"]);
        assert_eq!(next, None);
    }

    #[test]
    fn the_due_time_is_read_from_the_body_or_from_an_older_logs_number() {
        let mut stored = DUE_TAG.to_vec();
        stored.extend_from_slice(&1234u64.to_be_bytes());
        stored.extend_from_slice(b"body");
        assert_eq!(split_due(7, &stored), (1234, &b"body"[..]));
        // Written before the tag: the number is `due_ms << 12 | counter`.
        assert_eq!(split_due(5678 << 12 | 9, b"body"), (5678, &b"body"[..]));
    }
}

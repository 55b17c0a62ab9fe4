//! The delayed-message exchange's waiting room. Messages wait for their `x-delay` in a timer
//! task; persistent messages published to a durable delayed exchange also wait in a vhost-wide
//! durable log (recorded in the definitions like a queue), so they survive a restart and are
//! routed when due, or at once if their time passed while Warren was down.
//!
//! In that log a message's sequence number carries its due time: `due_ms << 12 | counter`.

use super::VHost;
use crate::broker::exchange::Routed;
use crate::broker::message::Message;
use crate::broker::queue::now_ms;
use crate::store::QueueLog;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The definitions entry that names the delayed-message log (never a real queue name: the
/// `amq.` prefix is reserved).
pub const DELAYED_LOG_NAME: &str = "amq.warren.delayed";

fn sequence(due_ms: u64) -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    (due_ms << 12) | (COUNTER.fetch_add(1, Ordering::Relaxed) & 0xFFF)
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
            if let Some(log) = self.delayed_log() {
                let seq = sequence(due);
                let m = &message;
                let position = log.append(
                    seq,
                    m.exchange(),
                    m.routing_key_bytes(),
                    m.properties(),
                    m.body(),
                );
                persisted = Some((log, seq, position));
            }
        }
        let out = persisted
            .as_ref()
            .map(|(log, _, position)| (log.clone(), *position));
        self.schedule_delayed(message, due, persisted.map(|(log, seq, _)| (log, seq)));
        out
    }

    /// Starts the timer that routes a delayed message when it is due.
    pub(super) fn schedule_delayed(
        &self,
        message: Message,
        due_ms: u64,
        stored: Option<(Arc<QueueLog>, u64)>,
    ) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let vhost = self.me.clone();
        runtime.spawn(async move {
            tokio::time::sleep(Duration::from_millis(due_ms.saturating_sub(now_ms()))).await;
            let Some(vhost) = vhost.upgrade() else { return };
            let mut routed = Routed::default();
            let headers = message.view().headers;
            if vhost
                .route(
                    message.exchange(),
                    &message.routing_key(),
                    headers,
                    &mut routed,
                )
                .is_ok()
            {
                for q in routed.queues.drain(..) {
                    q.publish(message.clone());
                }
            }
            if let Some((log, seq)) = stored {
                log.ack(std::iter::once(seq));
            }
        });
    }

    /// The durable log of delayed messages, created (and recorded) on first use.
    fn delayed_log(&self) -> Option<Arc<QueueLog>> {
        if let Some(log) = self.delayed.get() {
            return Some(log.clone());
        }
        let store = self.store.as_ref()?;
        let log = match store.create_queue_log() {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot create the delayed-message log; delayed messages stay in memory");
                return None;
            }
        };
        let log = self.delayed.get_or_init(|| log).clone();
        let _ = self.persist_if(true);
        Some(log)
    }

    /// Recovery: reopens the delayed-message log and schedules what it holds.
    pub(super) fn recover_delayed(&self, dir_name: &str) -> std::io::Result<usize> {
        let Some(store) = &self.store else {
            return Ok(0);
        };
        let mut waiting = Vec::new();
        let log = store.open_queue_log(dir_name, &mut |m| waiting.push(m))?;
        let log = self.delayed.get_or_init(|| log).clone();
        let count = waiting.len();
        for m in waiting {
            let message = Message::new(&m.exchange, &m.routing_key, &m.properties, &m.body);
            self.schedule_delayed(message, m.seq >> 12, Some((log.clone(), m.seq)));
        }
        Ok(count)
    }
}

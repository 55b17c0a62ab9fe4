//! Timer tasks for message expiry and x-expires. They hold only a `Weak` reference, so a
//! deleted queue's timer ends by itself.

use super::{now_ms, Queue};
use std::sync::Arc;
use std::time::Duration;

fn spawn(queue: &Arc<Queue>, first_check: u64, check: fn(&Arc<Queue>) -> Option<u64>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = Arc::downgrade(queue);
    runtime.spawn(async move {
        let mut at = first_check;
        loop {
            let wait = at.saturating_sub(now_ms());
            tokio::time::sleep(Duration::from_millis(wait)).await;
            let Some(q) = weak.upgrade() else { return };
            match check(&q) {
                Some(next) => at = next,
                None => return,
            }
        }
    });
}

/// Expires messages at the head when they are due.
pub(super) fn start_expiry_timer(queue: &Arc<Queue>) {
    let first = queue.state.lock().ready.front().map_or_else(now_ms, |m| {
        if m.expires_at == 0 {
            now_ms()
        } else {
            m.expires_at
        }
    });
    spawn(queue, first, Queue::expire_due);
}

/// Deletes the queue after x-expires of disuse.
pub(super) fn start_idle_timer(queue: &Arc<Queue>) {
    let first = now_ms() + queue.policy.expires.unwrap_or(0);
    spawn(queue, first, Queue::expire_if_unused);
}

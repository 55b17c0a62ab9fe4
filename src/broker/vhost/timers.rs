//! The timers of a vhost's queues: message expiry (one timer per queue while it holds
//! messages that expire) and x-expires (one per queue that has it). A timer holds its queue
//! and vhost weakly, so it ends by itself when either goes; what it finds due is carried out
//! like the effects of any other queue operation.

use super::VHost;
use crate::broker::clock::now_ms;
use crate::broker::queue::{Effects, ExpiryTimer, IdleCheck, Queue};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Runs `check` at `first_check` and then whenever it asks (None: the timer ends).
fn spawn(
    vhost: &VHost,
    queue: &Arc<Queue>,
    first_check: u64,
    check: impl Fn(&VHost, &Arc<Queue>) -> Option<u64> + Send + 'static,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let vhost: Weak<VHost> = vhost.me.clone();
    let queue = Arc::downgrade(queue);
    runtime.spawn(async move {
        let mut at = first_check;
        loop {
            let wait = at.saturating_sub(now_ms());
            tokio::time::sleep(Duration::from_millis(wait)).await;
            let (Some(vhost), Some(queue)) = (vhost.upgrade(), queue.upgrade()) else {
                return;
            };
            match check(&vhost, &queue) {
                Some(next) => at = next,
                None => return,
            }
        }
    });
}

/// Expires messages at the head of `queue` when they are due, until nothing is left to
/// expire or a newer timer of the queue takes over.
pub(super) fn start_expiry_timer(vhost: &VHost, queue: &Arc<Queue>, timer: ExpiryTimer) {
    spawn(vhost, queue, timer.at, move |vhost, queue| {
        let (next, fx): (Option<u64>, Effects) = queue.expire_due(timer.generation);
        vhost.carry_out(queue, fx);
        next
    });
}

/// Deletes `queue` after x-expires of disuse (RabbitMQ: no consumers, no basic.get, no
/// redeclare for that long).
pub(super) fn start_idle_timer(vhost: &VHost, queue: &Arc<Queue>) {
    let Some(expires) = queue.policy().expires else {
        return;
    };
    spawn(
        vhost,
        queue,
        now_ms() + expires,
        |vhost, queue| match queue.idle_check() {
            IdleCheck::At(next) => Some(next),
            IdleCheck::Stop => None,
            IdleCheck::Expired => {
                // A failed write is logged by the storage thread; the queue's log stays.
                let _ = vhost.remove_queue(queue);
                None
            }
        },
    );
}

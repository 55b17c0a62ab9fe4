//! Carrying out what queue operations return (`queue::Effects`): dead letters are routed
//! through the dead-letter exchange to their queues, whose own effects join the work list (a
//! loop, not recursion, so a long chain of dead-letter queues cannot exhaust the stack; first
//! in, first out, so each queue down the chain receives them in the order they died),
//! expiry timers start, and queues that ask to go are deleted.

use super::{timers, VHost};
use crate::broker::clock::unix_ms;
use crate::broker::dead_letter::dead_letter;
use crate::broker::exchange::Routed;
use crate::broker::queue::{DeadLetters, Effects, Queue};
use std::collections::VecDeque;
use std::sync::Arc;

impl VHost {
    /// Carries out `fx`, the effects of an operation on `queue`.
    #[inline]
    pub fn carry_out(&self, queue: &Arc<Queue>, fx: Effects) {
        if !fx.is_empty() {
            self.carry_out_all(queue.clone(), fx);
        }
    }

    fn carry_out_all(&self, queue: Arc<Queue>, fx: Effects) {
        let mut work = VecDeque::from([(queue, fx)]);
        while let Some((queue, fx)) = work.pop_front() {
            for batch in fx.dead {
                self.dead_letter(&queue, batch, &mut work);
            }
            if let Some(timer) = fx.arm_expiry {
                timers::start_expiry_timer(self, &queue, timer);
            }
            if fx.delete {
                // A failure is logged where it happens.
                let _ = self.remove_queue(&queue);
            }
        }
    }

    /// Republishes dead letters to `queue`'s dead-letter exchange, if it has one (dropped
    /// otherwise), then releases them from its log; their deduplication keys go first.
    fn dead_letter(
        &self,
        queue: &Arc<Queue>,
        batch: DeadLetters,
        work: &mut VecDeque<(Arc<Queue>, Effects)>,
    ) {
        if batch.in_log {
            queue.release_keys(batch.messages.iter());
        }
        let policy = queue.policy();
        if let Some(dlx) = &policy.dead_letter_exchange {
            let now_secs = unix_ms() / 1000;
            let new_key = policy.dead_letter_routing_key.as_deref().map(str::as_bytes);
            let mut routed = Routed::default();
            for m in &batch.messages {
                let dl = dead_letter(
                    &m.message,
                    queue.name(),
                    batch.reason,
                    dlx,
                    new_key,
                    now_secs,
                );
                // Headers exchanges route on the rewritten headers.
                let headers = dl.message.view().headers;
                if self
                    .route_keys(dlx, &dl.routing_keys, headers, &mut routed)
                    .is_err()
                {
                    continue; // A missing dead-letter exchange drops the message, as in RabbitMQ.
                }
                let mut message_at = Vec::new();
                for target in routed.queues.drain(..) {
                    // A cycle of dead-lettering with no rejection in it drops the message.
                    if !dl.any_rejected && dl.earlier_queues.iter().any(|q| q == target.name()) {
                        continue;
                    }
                    let (outcome, fx) = target.publish(dl.message.clone());
                    if let (Some(position), Some(log)) = (outcome.position, target.log()) {
                        let log: Arc<dyn crate::store::Durable> = log.clone();
                        message_at.push((log, position));
                    }
                    if !fx.is_empty() {
                        work.push_back((target, fx));
                    }
                }
                routed.settle_keys(&mut message_at);
            }
        }
        if batch.in_log {
            queue.forget_in_log(batch.messages.iter());
        }
    }
}

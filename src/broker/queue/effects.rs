//! What a queue operation leaves for its vhost to carry out. The queue decides under its own
//! lock and never calls back into the vhost: dead letters must be routed through exchanges to
//! other queues (whose locks it must not take while holding its own), timers belong to the
//! runtime, and deleting a queue changes the vhost's tables.

use crate::broker::dead_letter::Reason;
use crate::broker::message::QueuedMessage;

/// Messages that left a queue for one dead-letter reason.
#[derive(Debug)]
pub struct DeadLetters {
    pub reason: Reason,
    pub messages: Vec<QueuedMessage>,
    /// Their records are in the queue's log (and are released once they are dead-lettered);
    /// false for a publish the queue refused (x-overflow reject-publish-dlx), never written.
    pub in_log: bool,
}

/// An expiry timer to start: its generation (a timer whose generation is no longer the
/// queue's ends) and when it first looks (`clock` ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryTimer {
    pub generation: u64,
    pub at: u64,
}

/// The effects of one queue operation, to be carried out once its lock is released.
#[must_use = "a queue's effects are carried out by its vhost (`VHost::carry_out`)"]
#[derive(Debug, Default)]
pub struct Effects {
    /// Messages to republish to the queue's dead-letter exchange (dropped when it has none).
    pub dead: Vec<DeadLetters>,
    /// Messages with an expiry wait and no expiry timer looks at the head in time: one must
    /// start (an earlier one, if any, ends at its next look).
    pub arm_expiry: Option<ExpiryTimer>,
    /// The queue asks to be deleted: an auto-delete queue lost its last consumer, or an
    /// x-expires queue stayed unused long enough.
    pub delete: bool,
}

impl Effects {
    /// Nothing to do (the common case: one branch on the hot path).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.dead.is_empty() && self.arm_expiry.is_none() && !self.delete
    }

    /// Adds dead letters, if there are any.
    #[inline]
    pub(super) fn dead_letter(&mut self, reason: Reason, messages: Vec<QueuedMessage>) {
        if !messages.is_empty() {
            self.dead.push(DeadLetters {
                reason,
                messages,
                in_log: true,
            });
        }
    }

    /// Every message dead-lettered for `reason` (tests).
    #[cfg(test)]
    pub fn dead_for(&self, reason: Reason) -> Vec<&QueuedMessage> {
        self.dead
            .iter()
            .filter(|d| d.reason == reason)
            .flat_map(|d| d.messages.iter())
            .collect()
    }
}

//! Rare events for one connection, raised by other tasks: an operator's close, the deletion
//! of its vhost, broker shutdown, a change of the resource alarms.
//!
//! The connection loop waits for them at every turn beside its socket and inbox, so the wait
//! must cost next to nothing: one flag word and one waker. Registering the loop's waker again
//! is a compare-and-swap (the same task's waker is not cloned), and nothing is left to remove
//! when the turn ends; a `Notify` or a `watch` takes a lock to register a waiter and another
//! to drop it, at every turn.

use atomic_waker::AtomicWaker;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

/// An operator asked the connection to close (management API, `warren ctl`).
pub const OPERATOR_CLOSE: u8 = 1;
/// The connection's vhost is being deleted.
pub const VHOST_DELETED: u8 = 2;
/// The broker is shutting down.
pub const SHUTDOWN: u8 = 4;
/// The resource alarms changed.
pub const ALARM: u8 = 8;

/// The signals raised for a connection and not yet taken, and the task to wake for them.
#[derive(Debug, Default)]
pub struct Signal {
    raised: AtomicU8,
    waker: AtomicWaker,
}

impl Signal {
    /// Raises `bits` and wakes the connection's task.
    pub fn raise(&self, bits: u8) {
        self.raised.fetch_or(bits, Ordering::AcqRel);
        self.waker.wake();
    }

    /// The signals raised since the last take, or Pending (the task is woken by the next).
    pub fn poll_take(&self, cx: &mut Context<'_>) -> Poll<u8> {
        if let Some(bits) = self.take() {
            return Poll::Ready(bits);
        }
        self.waker.register(cx.waker());
        // A raise between the check and the registration woke nobody: look again.
        match self.take() {
            Some(bits) => Poll::Ready(bits),
            None => Poll::Pending,
        }
    }

    /// Completes with the signals raised (as bits) once there are any.
    pub async fn taken(&self) -> u8 {
        std::future::poll_fn(|cx| self.poll_take(cx)).await
    }

    fn take(&self) -> Option<u8> {
        // A load first: the common answer is "nothing", and a load does not take the cache
        // line away from a core that raises.
        if self.raised.load(Ordering::Acquire) == 0 {
            return None;
        }
        Some(self.raised.swap(0, Ordering::AcqRel)).filter(|b| *b != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    struct Counting(std::sync::atomic::AtomicUsize);
    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn raised_signals_are_taken_together_once_and_wake_the_waiting_task() {
        let signal = Signal::default();
        let woken = Arc::new(Counting(Default::default()));
        let waker = std::task::Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        assert_eq!(signal.poll_take(&mut cx), Poll::Pending);
        signal.raise(OPERATOR_CLOSE);
        signal.raise(ALARM);
        assert_eq!(
            woken.0.load(Ordering::SeqCst),
            1,
            "the first raise wakes the task"
        );
        assert_eq!(
            signal.poll_take(&mut cx),
            Poll::Ready(OPERATOR_CLOSE | ALARM)
        );
        assert_eq!(signal.poll_take(&mut cx), Poll::Pending, "taken once");
        signal.raise(SHUTDOWN);
        assert_eq!(woken.0.load(Ordering::SeqCst), 2);
        assert_eq!(signal.poll_take(&mut cx), Poll::Ready(SHUTDOWN));
    }

    #[test]
    fn a_signal_raised_before_anyone_waits_is_not_lost() {
        let signal = Signal::default();
        signal.raise(VHOST_DELETED);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert_eq!(signal.poll_take(&mut cx), Poll::Ready(VHOST_DELETED));
    }
}

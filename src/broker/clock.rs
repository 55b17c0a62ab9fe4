//! Time, read in one place. Deadlines (message TTL, x-expires, consumer timeouts) are
//! milliseconds on a monotonic clock, so a wall-clock step neither expires messages early nor
//! keeps them late; the wall clock is read only where RabbitMQ shows or stores it (x-death
//! `time`, the due time of a persisted delayed message).
//!
//! Unit tests set the time of their own thread with `set_for_test` and move it with
//! `advance_for_test`; no test of the broker core sleeps.

use std::sync::OnceLock;
use std::time::Instant;

/// The monotonic clock starts here, so 0 is never a real time: expiry fields use 0 for
/// "never", and dispatch passes 0 for "nothing here can expire".
const START_MS: u64 = 1_000;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Milliseconds on the monotonic clock (since the first call in this process, plus 1 s).
#[inline]
pub fn now_ms() -> u64 {
    #[cfg(test)]
    if let Some(t) = test_clock::get() {
        return t;
    }
    let epoch = *EPOCH.get_or_init(Instant::now);
    START_MS + epoch.elapsed().as_millis() as u64
}

/// Milliseconds since the Unix epoch (wall clock).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Converts a wall-clock time (ms since the Unix epoch, as stored on disk) to the monotonic
/// clock; a time already past becomes now.
pub fn from_unix_ms(at: u64) -> u64 {
    now_ms().saturating_add(at.saturating_sub(unix_ms()))
}

#[cfg(test)]
mod test_clock {
    use std::cell::Cell;

    thread_local! {
        static NOW: Cell<Option<u64>> = const { Cell::new(None) };
    }

    pub fn get() -> Option<u64> {
        NOW.with(Cell::get)
    }

    pub fn set(t: u64) {
        NOW.with(|n| n.set(Some(t)));
    }
}

/// Fixes this thread's clock at `t` ms (unit tests only).
#[cfg(test)]
pub fn set_for_test(t: u64) {
    test_clock::set(t.max(START_MS));
}

/// Moves this thread's fixed clock forward by `ms` (unit tests only).
#[cfg(test)]
pub fn advance_for_test(ms: u64) {
    test_clock::set(now_ms() + ms);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monotonic_clock_never_reads_zero_and_never_goes_back() {
        let a = now_ms();
        let b = now_ms();
        assert!(a >= START_MS);
        assert!(b >= a);
    }

    #[test]
    fn a_test_can_fix_and_move_its_clock() {
        set_for_test(5_000);
        assert_eq!(now_ms(), 5_000);
        advance_for_test(250);
        assert_eq!(now_ms(), 5_250);
    }

    #[test]
    fn a_stored_wall_clock_time_maps_to_the_monotonic_clock() {
        set_for_test(10_000);
        let due = unix_ms() + 60_000;
        let mapped = from_unix_ms(due);
        assert!((69_000..=70_000).contains(&mapped), "{mapped}");
        assert_eq!(from_unix_ms(0), 10_000);
    }
}

//! Wall-clock helpers of the loop: Unix seconds and milliseconds, and waits until a Unix time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The first whole second of the Unix epoch at least `wait` from now: an attempt the loop starts
/// once `now_unix()` reaches it has waited `wait` or longer, never less (§3.2.1.1's minimum wait,
/// a Retry-After), and less than a second more. With no wait, now rounded up: a time
/// `unix_after(Duration::ZERO) + n` is at least `n` seconds away.
pub(super) fn unix_after(wait: Duration) -> i64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(wait);
    i64::try_from(t.as_secs())
        .unwrap_or(i64::MAX)
        .saturating_add(i64::from(t.subsec_nanos() > 0))
}

/// How long from now until the Unix time `at` (whole seconds) begins; zero when it has.
pub(super) fn until_unix(at: i64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(u64::try_from(at).unwrap_or(0)).saturating_sub(now)
}

/// How long from now until the Unix time `at_ms` (milliseconds); zero when it has passed.
pub(super) fn until_unix_ms(at_ms: i64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_millis(u64::try_from(at_ms).unwrap_or(0)).saturating_sub(now)
}

/// Milliseconds since the Unix epoch.
pub(super) fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn now_secs() -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
    }

    #[test]
    pub(super) fn a_retry_time_is_never_early_and_less_than_a_second_late() {
        for ms in [0, 1, 999, 1000, 1500, 7300] {
            let wait = Duration::from_millis(ms);
            let before = now_secs();
            let at = unix_after(wait);
            let after = now_secs();
            assert!(
                at as f64 >= before + wait.as_secs_f64(),
                "{ms} ms: {at} < {before}"
            );
            assert!(
                at as f64 <= after + wait.as_secs_f64() + 1.0,
                "{ms} ms: {at} > {after}"
            );
        }
        assert_eq!(unix_after(Duration::MAX), i64::MAX);
    }

    #[test]
    pub(super) fn the_sleep_until_a_time_ends_when_its_second_begins() {
        assert_eq!(until_unix(now_unix() - 5), Duration::ZERO);
        assert_eq!(until_unix(-1), Duration::ZERO);
        let at = now_unix() + 2;
        let sleep = until_unix(at);
        assert!(
            sleep > Duration::from_secs(1) && sleep <= Duration::from_secs(2),
            "{sleep:?}"
        );
        let wake = now_secs() + sleep.as_secs_f64();
        assert!((wake - at as f64).abs() < 0.05, "wakes at {wake}, not {at}");
    }
}

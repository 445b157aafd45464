//! The timing rules of the session, as pure functions of the time and a random number the caller
//! passes in (so that they are tested without a clock): the session retry wait (TR-069 Amendment
//! 6 §3.2.1.1, Table 3) and the periodic inform phase (§3.2.1 and the TR-181 description of
//! `ManagementServer.PeriodicInformTime`). The `xsd:dateTime` text is [`crate::cwmp::time`]'s.

use std::time::Duration;

use crate::cwmp::time::{parse_datetime_ms, UNKNOWN_TIME_MS};

/// Default `CWMPRetryMinimumWaitInterval`, in seconds (TR-181 default; Table 3).
pub const DEFAULT_RETRY_MIN_WAIT: u32 = 5;
/// Default `CWMPRetryIntervalMultiplier`, in thousandths (2000 = ×2.000; Table 3).
pub const DEFAULT_RETRY_MULTIPLIER: u32 = 2000;
/// From the tenth retry on, the wait range stops growing (§3.2.1.1: "#10 and subsequent").
pub const RETRY_GROWTH_CAP: u32 = 10;

/// The wait before the `retry_count`-th retry of a failed session (§3.2.1.1). The n-th retry
/// waits a time drawn uniformly from `[m·(k/1000)^(n-1), m·(k/1000)^n]` seconds, where `m` is
/// `CWMPRetryMinimumWaitInterval` and `k` is `CWMPRetryIntervalMultiplier`; from the tenth retry on
/// the range stays that of the tenth (Table 3: 5–10 s, 10–20 s, … 2560–5120 s with the defaults).
/// `random` picks the point in the range; `retry_count` 0 (the first attempt) waits nothing.
/// Multipliers below 1000 are taken as 1000 (TR-181 range `[1000:65535]`). Millisecond precision.
pub fn retry_wait(retry_count: u32, min_wait_s: u32, multiplier: u32, random: u64) -> Duration {
    let (lo, hi) = retry_range_ms(retry_count, min_wait_s, multiplier);
    let span = hi - lo;
    let offset = if span == u64::MAX {
        random
    } else {
        random % (span + 1)
    };
    Duration::from_millis(lo + offset)
}

/// The bounds of [`retry_wait`]'s range, in milliseconds.
pub fn retry_range_ms(retry_count: u32, min_wait_s: u32, multiplier: u32) -> (u64, u64) {
    if retry_count == 0 {
        return (0, 0);
    }
    // Each step is capped so that a large multiplier cannot overflow; the cap (about 31 years) is
    // far above anything a sane configuration yields.
    const CAP_MS: u128 = 1_000_000_000_000;
    let k = u128::from(multiplier.max(1000));
    let n = retry_count.min(RETRY_GROWTH_CAP);
    let mut lo = u128::from(min_wait_s) * 1000;
    for _ in 1..n {
        lo = (lo * k / 1000).min(CAP_MS);
    }
    let hi = (lo * k / 1000).min(CAP_MS);
    // Both are at most CAP_MS, which fits in u64.
    (lo as u64, hi as u64)
}

/// When the next periodic Inform is due, in Unix **milliseconds**: the first instant after
/// `now_ms` that is `reference_ms` plus a whole multiple of `interval` seconds (TR-181
/// PeriodicInformTime: "each Inform … MUST occur at this reference time plus or minus an
/// integer multiple of the PeriodicInformInterval"; the reference may lie arbitrarily far in the
/// past or future). Milliseconds, because the reference may carry a fraction (GenieACS sends
/// `…T03:00:00.500Z`): a phase truncated to whole seconds would make every Inform early.
/// Without a reference (`None`, or the unknown time) the CPE picks the phase:
/// `now_ms + interval`. An interval of 0 is taken as 1 second (TR-181 range `[1:]`).
pub fn next_periodic(now_ms: i64, interval: u32, reference_ms: Option<i64>) -> i64 {
    let interval_ms = i64::from(interval.max(1)) * 1000;
    match reference_ms {
        Some(reference) if reference != UNKNOWN_TIME_MS => {
            let ahead =
                (i128::from(reference) - i128::from(now_ms)).rem_euclid(i128::from(interval_ms));
            // ahead < interval_ms <= u32::MAX * 1000, so it fits in i64.
            let ahead = ahead as i64;
            if ahead == 0 {
                now_ms.saturating_add(interval_ms)
            } else {
                now_ms.saturating_add(ahead)
            }
        }
        _ => now_ms.saturating_add(interval_ms),
    }
}

/// The PeriodicInformTime reference from its parameter value, in Unix milliseconds (the
/// fraction kept): `None` for the unknown time or an unparsable value (then the CPE picks the
/// phase).
pub fn periodic_reference(value: &str) -> Option<i64> {
    parse_datetime_ms(value).filter(|&t| t != UNKNOWN_TIME_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cwmp::time::format_datetime_utc;

    #[test]
    fn retry_ranges_match_table_3() {
        // Table 3 of TR-069 §3.2.1.1 with the default m = 5 s, k = 2000.
        let table: [(u32, u64, u64); 11] = [
            (1, 5, 10),
            (2, 10, 20),
            (3, 20, 40),
            (4, 40, 80),
            (5, 80, 160),
            (6, 160, 320),
            (7, 320, 640),
            (8, 640, 1280),
            (9, 1280, 2560),
            (10, 2560, 5120),
            (11, 2560, 5120),
        ];
        for (n, lo, hi) in table {
            let d = DEFAULT_RETRY_MIN_WAIT;
            let k = DEFAULT_RETRY_MULTIPLIER;
            assert_eq!(retry_range_ms(n, d, k), (lo * 1000, hi * 1000), "retry {n}");
            assert_eq!(
                retry_wait(n, d, k, 0),
                Duration::from_secs(lo),
                "retry {n} low"
            );
            let top = hi * 1000 - lo * 1000;
            assert_eq!(
                retry_wait(n, d, k, top),
                Duration::from_secs(hi),
                "retry {n} high"
            );
            // Any random number lands inside the range.
            for r in [1, 7_777, 123_456_789, u64::MAX] {
                let w = retry_wait(n, d, k, r);
                assert!(w >= Duration::from_secs(lo) && w <= Duration::from_secs(hi));
            }
        }
        assert_eq!(retry_wait(1000, 5, 2000, 0), Duration::from_secs(2560));
    }

    #[test]
    fn retry_with_other_parameters() {
        assert_eq!(retry_wait(0, 5, 2000, 99), Duration::ZERO);
        // m = 10 s, k = 1.5: [10, 15], then [15, 22.5].
        assert_eq!(retry_range_ms(1, 10, 1500), (10_000, 15_000));
        assert_eq!(retry_range_ms(2, 10, 1500), (15_000, 22_500));
        // A multiplier below 1000 is taken as 1000: a constant wait.
        assert_eq!(retry_range_ms(5, 30, 10), (30_000, 30_000));
        // The largest values do not overflow.
        let (lo, hi) = retry_range_ms(u32::MAX, u32::MAX, u32::MAX);
        assert!(lo <= hi && hi > 0);
        let _ = retry_wait(u32::MAX, u32::MAX, u32::MAX, u64::MAX);
    }

    /// Unix milliseconds of a dateTime, for the periodic tests.
    fn ms(s: &str) -> i64 {
        parse_datetime_ms(s).unwrap()
    }

    /// A time in milliseconds as `…T03:00:00.250Z`.
    fn text_ms(t: i64) -> String {
        let mut s = format_datetime_utc(t.div_euclid(1000));
        s.insert_str(s.len() - 1, &format!(".{:03}", t.rem_euclid(1000)));
        s
    }

    #[test]
    fn periodic_without_reference_is_now_plus_interval() {
        assert_eq!(next_periodic(1_000_250, 300, None), 1_300_250);
        assert_eq!(
            next_periodic(1_000_000, 300, Some(UNKNOWN_TIME_MS)),
            1_300_000
        );
        assert_eq!(next_periodic(1_000_000, 0, None), 1_001_000);
    }

    #[test]
    fn periodic_aligns_to_the_reference_phase() {
        // Daily informs at 03:00 UTC; the reference is years in the past.
        let reference = ms("2001-01-01T03:00:00Z");
        let now = ms("2026-11-21T05:50:26Z");
        let next = next_periodic(now, 86_400, Some(reference));
        assert_eq!(text_ms(next), "2026-11-22T03:00:00.000Z");
        // A reference in the future works the same way.
        let future = ms("2100-06-01T03:00:00Z");
        assert_eq!(next_periodic(now, 86_400, Some(future)), next);
        // Exactly on a phase point: the next one, not now.
        let on = ms("2026-11-21T03:00:00Z");
        assert_eq!(next_periodic(on, 86_400, Some(reference)), on + 86_400_000);
        // Hourly at :15 with a reference given in another zone.
        let r = ms("2020-01-01T10:15:00+02:00");
        let n = next_periodic(ms("2026-03-01T12:16:00Z"), 3600, Some(r));
        assert_eq!(text_ms(n), "2026-03-01T13:15:00.000Z");
        // Extremes do not overflow.
        assert_eq!(next_periodic(i64::MAX - 1, 10, Some(0)), i64::MAX);
    }

    #[test]
    fn periodic_keeps_the_fraction_of_the_reference() {
        // GenieACS writes milliseconds: the phase is 03:00:00.750, not 03:00:00 (which would
        // make every Inform 750 ms early).
        let reference = ms("2001-01-01T03:00:00.750Z");
        let next = next_periodic(ms("2026-11-21T05:50:26Z"), 86_400, Some(reference));
        assert_eq!(text_ms(next), "2026-11-22T03:00:00.750Z");
        // Between the whole second and the fraction, the phase point is still ahead.
        let now = ms("2026-11-22T03:00:00.300Z");
        assert_eq!(next_periodic(now, 86_400, Some(reference)), next);
        // Every 10 s at .125.
        let r = ms("2020-01-01T00:00:00.125Z");
        let n = next_periodic(ms("2026-03-01T12:16:03.500Z"), 10, Some(r));
        assert_eq!(text_ms(n), "2026-03-01T12:16:10.125Z");
        // The unknown time with a fraction of zeros is still the unknown time.
        assert_eq!(periodic_reference("0001-01-01T00:00:00.000Z"), None);
    }

    #[test]
    fn periodic_reference_ignores_unknown_time() {
        assert_eq!(periodic_reference("0001-01-01T00:00:00Z"), None);
        assert_eq!(periodic_reference("garbage"), None);
        assert_eq!(periodic_reference("1970-01-01T00:01:00Z"), Some(60_000));
        assert_eq!(periodic_reference("1970-01-01T00:01:00.042Z"), Some(60_042));
    }
}

//! Wall-clock helpers of the loop: the time since the Unix epoch, in whole seconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time since the Unix epoch (zero before it).
pub(super) fn wall() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

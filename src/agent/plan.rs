//! The loop's timers as a pure planner: what is due now, and when the loop must wake next.
//!
//! In the style of smoltcp's `poll_at`: plain data in, decisions out; no clock, no I/O. The loop
//! reads the clock once per turn and hands the time in as a [`Duration`] since the Unix epoch; it
//! does what [`Planner::due`] says, tells the planner what happened (an event queued, a session
//! ended, a trigger arrived), and sleeps until [`Planner::poll_at`].
//!
//! The decisions (TR-069 §3.2.1 session initiation):
//! - periodic Informs at the phase of PeriodicInformTime, re-planned only when the periodic
//!   settings change, so that other sessions do not push the next one away; Heartbeat Informs
//!   (CWMP 1.4) the same way, at the phase of HeartbeatPolicy.InitiationTime;
//! - ScheduleInform requests when their time comes (§A.4.1.4);
//! - the poll of the values with notification on, every `poll_interval` seconds, and a session
//!   for an active notification no sooner than DefaultActiveNotificationThrottle after the end
//!   of the last completed session (TR-181 ManagementServer);
//! - after a failed session, the next attempt after the §3.2.1.1 backoff, never sooner than a
//!   `Retry-After` the ACS sent (RFC 9110 §10.2.3); a new event ends the backoff.

use std::time::Duration;

use crate::schedule;

/// The shortest sleep of the loop: a busy loop is never possible, whatever the timers say.
pub const MIN_WAIT: Duration = Duration::from_millis(200);

/// The periodic Inform settings (ManagementServer.PeriodicInform*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periodic {
    pub enable: bool,
    /// Seconds, at least 1.
    pub interval: u32,
    /// PeriodicInformTime in Unix milliseconds; `None` for the unknown time.
    pub reference_ms: Option<i64>,
}

/// What the loop knows at the start of a turn, besides the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub periodic: Periodic,
    /// ManagementServer.HeartbeatPolicy (its reference always set: the agent picks a random
    /// one for the unknown time).
    pub heartbeat: Periodic,
    /// Seconds between two polls of the values with notification on.
    pub poll_interval: u32,
    /// The earliest pending ScheduleInform (Unix seconds).
    pub next_scheduled: Option<i64>,
    /// Events are waiting for a session.
    pub events_pending: bool,
    /// When the next transfer step comes due (Unix seconds).
    pub transfer_wake: Option<i64>,
    /// When the wait for the device to restart after a hook ends (Unix seconds).
    pub hold_until: Option<i64>,
    /// When the Connection Request listener wants to look at its address again.
    pub connreq_check: Option<Duration>,
}

/// What is due in this turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Due {
    /// A periodic Inform: queue `2 PERIODIC`.
    pub periodic: bool,
    /// A Heartbeat Inform: a session of its own with `14 HEARTBEAT` alone.
    pub heartbeat: bool,
    /// ScheduleInform requests came due: queue `3 SCHEDULED` and their `M ScheduleInform`.
    pub scheduled: bool,
    /// Poll the values with notification on (and the RequestDownload requests).
    pub poll: bool,
}

/// Why a session failed, as far as the next attempt's time is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The Inform's RetryCount after this session (at least 1 is used).
    pub retry_count: u32,
    /// CWMPRetryMinimumWaitInterval, seconds.
    pub min_wait: u32,
    /// CWMPRetryIntervalMultiplier, per thousand.
    pub multiplier: u32,
    /// Random bits to place the wait in its range (§3.2.1.1).
    pub random: u64,
    /// The `Retry-After` of the ACS's last 503/429, in seconds: the least wait.
    pub retry_after: Option<u32>,
}

/// The loop's timers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Planner {
    /// The next periodic Inform, Unix milliseconds (PeriodicInformTime may carry a fraction).
    next_periodic: Option<i64>,
    /// The periodic settings `next_periodic` was planned from.
    planned_for: Option<Periodic>,
    /// The next Heartbeat Inform (Unix milliseconds) and the settings it was planned from.
    next_heartbeat: Option<i64>,
    heartbeat_for: Option<Periodic>,
    /// No session before this Unix second while events are pending (the retry backoff).
    retry_at: i64,
    /// The next poll of the notified values, Unix seconds.
    next_poll: i64,
    /// When the last successfully completed session ended (Unix seconds, rounded up): the
    /// reference of DefaultActiveNotificationThrottle (RAM only, as TR-181 allows).
    last_completed: Option<i64>,
}

/// One timer at the phase of its reference (the periodic Inform, the heartbeat): whether it is
/// due at `now_ms`, the next time planned as it is; planned anew only when its settings change
/// (so sessions in between do not push it away), none while disabled.
fn tick(next: &mut Option<i64>, planned: &mut Option<Periodic>, p: Periodic, now_ms: i64) -> bool {
    if *planned != Some(p) {
        *planned = Some(p);
        *next = None;
    }
    if !p.enable {
        *next = None;
        return false;
    }
    let at =
        *next.get_or_insert_with(|| schedule::next_periodic(now_ms, p.interval, p.reference_ms));
    if now_ms < at {
        return false;
    }
    *next = Some(schedule::next_periodic(now_ms, p.interval, p.reference_ms));
    true
}

/// Whole Unix seconds of `now`, rounded down.
pub fn secs(now: Duration) -> i64 {
    i64::try_from(now.as_secs()).unwrap_or(i64::MAX)
}

/// Unix milliseconds of `now`, rounded down.
fn millis(now: Duration) -> i64 {
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// The first whole Unix second at least `wait` after `now`: an attempt started once the clock
/// reaches it has waited `wait` or longer, never less (§3.2.1.1's minimum wait, a Retry-After),
/// and less than a second more. With no wait, `now` rounded up: a time `unix_after(now, 0) + n`
/// is at least `n` seconds away.
pub fn unix_after(now: Duration, wait: Duration) -> i64 {
    let t = now.saturating_add(wait);
    i64::try_from(t.as_secs())
        .unwrap_or(i64::MAX)
        .saturating_add(i64::from(t.subsec_nanos() > 0))
}

/// How long from `now` until the Unix second `at` begins; zero when it has.
pub fn until_unix(now: Duration, at: i64) -> Duration {
    Duration::from_secs(u64::try_from(at).unwrap_or(0)).saturating_sub(now)
}

/// How long from `now` until the Unix millisecond `at_ms`; zero when it has passed.
pub fn until_unix_ms(now: Duration, at_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(at_ms).unwrap_or(0)).saturating_sub(now)
}

impl Planner {
    /// A planner for a loop starting at `now`: the values are polled at once, nothing else is
    /// planned yet.
    pub fn new(now: Duration) -> Planner {
        Planner {
            next_poll: secs(now),
            ..Planner::default()
        }
    }

    /// What is due at `now`. The periodic Inform and the poll are taken: their next times are
    /// planned as they are reported due.
    pub fn due(&mut self, now: Duration, facts: &Facts) -> Due {
        let now_s = secs(now);
        let mut due = Due::default();
        let now_ms = millis(now);
        due.periodic = tick(
            &mut self.next_periodic,
            &mut self.planned_for,
            facts.periodic,
            now_ms,
        );
        due.heartbeat = tick(
            &mut self.next_heartbeat,
            &mut self.heartbeat_for,
            facts.heartbeat,
            now_ms,
        );
        due.scheduled = facts.next_scheduled.is_some_and(|at| at <= now_s);
        if now_s >= self.next_poll {
            due.poll = true;
            self.next_poll = now_s.saturating_add(i64::from(facts.poll_interval));
        }
        due
    }

    /// The poll found a value with active notification changed: whether a session may be started
    /// for it now. Not while DefaultActiveNotificationThrottle (`throttle` seconds, 0 = none) has
    /// not passed since the last completed session: then the next poll comes when it has (the
    /// change stays pending and goes with any earlier session).
    pub fn active_change(&mut self, now: Duration, throttle: u32) -> bool {
        let now_s = secs(now);
        let until = self
            .last_completed
            .filter(|_| throttle > 0)
            .map(|t| t.saturating_add(i64::from(throttle)))
            .filter(|&until| now_s < until);
        match until {
            Some(until) => {
                self.next_poll = self.next_poll.min(until);
                false
            }
            None => true,
        }
    }

    /// A new event was queued (a periodic or scheduled Inform, an active notification, a
    /// Connection Request): it ends a retry backoff, the session is attempted now.
    pub fn event_queued(&mut self) {
        self.retry_at = 0;
    }

    /// A watched file changed, or ConnectionRequestURL moved: the values are polled now.
    pub fn poll_now(&mut self, now: Duration) {
        self.next_poll = secs(now);
    }

    /// Whether a session is due: events are pending, the agent does not hold, and no backoff
    /// runs.
    pub fn session_due(&self, now: Duration, events_pending: bool, hold: bool) -> bool {
        !hold && events_pending && secs(now) >= self.retry_at
    }

    /// A session ended at `now`: completed (`None`), or failed. Returns the Unix second of the
    /// next attempt after a failure (§3.2.1.1: the wait of the retry count, with a Retry-After
    /// as its floor), 0 after a completed session.
    pub fn session_ended(&mut self, now: Duration, failure: Option<Failure>) -> i64 {
        self.retry_at = match failure {
            None => {
                // Rounded up: the throttle is never shorter than asked.
                self.last_completed = Some(unix_after(now, Duration::ZERO));
                0
            }
            Some(f) => {
                let wait =
                    schedule::retry_wait(f.retry_count.max(1), f.min_wait, f.multiplier, f.random)
                        .max(Duration::from_secs(f.retry_after.unwrap_or(0).into()));
                unix_after(now, wait)
            }
        };
        self.retry_at
    }

    /// How long the loop may sleep from `now` before something is due (at least [`MIN_WAIT`]);
    /// a trigger from another thread wakes it sooner.
    pub fn poll_at(&self, now: Duration, facts: &Facts) -> Duration {
        let now_s = secs(now);
        let mut deadline = self.next_poll;
        if let Some(x) = facts.next_scheduled {
            deadline = deadline.min(x);
        }
        if facts.events_pending && self.retry_at > now_s {
            deadline = deadline.min(self.retry_at);
        }
        if let Some(t) = facts.transfer_wake {
            deadline = deadline.min(t);
        }
        if let Some(t) = facts.hold_until {
            deadline = deadline.min(t);
        }
        let mut wait = until_unix(now, deadline);
        for p in [self.next_periodic, self.next_heartbeat]
            .into_iter()
            .flatten()
        {
            wait = wait.min(until_unix_ms(now, p));
        }
        if let Some(c) = facts.connreq_check {
            wait = wait.min(c);
        }
        wait.max(MIN_WAIT)
    }

    /// The next periodic Inform (Unix milliseconds), when one is planned.
    pub fn next_periodic(&self) -> Option<i64> {
        self.next_periodic
    }

    /// The Unix second before which no session is attempted while events are pending.
    pub fn retry_at(&self) -> i64 {
        self.retry_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000;

    fn at(s: i64) -> Duration {
        Duration::from_secs(s as u64)
    }

    fn at_ms(ms: i64) -> Duration {
        Duration::from_millis(ms as u64)
    }

    fn facts() -> Facts {
        Facts {
            periodic: Periodic {
                enable: false,
                interval: 3600,
                reference_ms: None,
            },
            heartbeat: Periodic {
                enable: false,
                interval: 60,
                reference_ms: None,
            },
            poll_interval: 30,
            next_scheduled: None,
            events_pending: false,
            transfer_wake: None,
            hold_until: None,
            connreq_check: None,
        }
    }

    fn periodic(interval: u32, reference_ms: Option<i64>) -> Facts {
        Facts {
            periodic: Periodic {
                enable: true,
                interval,
                reference_ms,
            },
            ..facts()
        }
    }

    fn failure(retry_count: u32) -> Failure {
        Failure {
            retry_count,
            min_wait: 5,
            multiplier: 2000,
            random: 0,
            retry_after: None,
        }
    }

    #[test]
    fn a_new_planner_polls_at_once_and_nothing_else() {
        let mut p = Planner::new(at(T0));
        let due = p.due(at(T0), &facts());
        assert_eq!(
            due,
            Due {
                poll: true,
                ..Due::default()
            }
        );
        // The next poll after poll_interval.
        assert!(!p.due(at(T0 + 29), &facts()).poll);
        assert!(p.due(at(T0 + 30), &facts()).poll);
        assert_eq!(p.poll_at(at(T0 + 30), &facts()), Duration::from_secs(30));
    }

    #[test]
    fn a_periodic_inform_comes_at_the_phase_of_periodic_inform_time() {
        // Reference at T0 + 10.5 s, interval 60 s: due at T0 + 10.5, + 70.5, + 130.5, ...
        let reference = (T0 + 10) * 1000 + 500;
        let f = periodic(60, Some(reference));
        let mut p = Planner::new(at(T0));
        assert!(!p.due(at(T0), &f).periodic);
        assert_eq!(p.next_periodic(), Some(reference));
        // The loop sleeps until the phase, to the millisecond.
        assert_eq!(
            p.poll_at(
                at(T0),
                &Facts {
                    poll_interval: 3600,
                    ..f
                }
            ),
            Duration::from_millis(10_500)
        );
        assert!(!p.due(at_ms(reference - 1), &f).periodic);
        assert!(p.due(at_ms(reference), &f).periodic);
        assert_eq!(p.next_periodic(), Some(reference + 60_000));
        // Late by 25 s (a long session): the next one keeps the phase.
        assert!(p.due(at_ms(reference + 85_000), &f).periodic);
        assert_eq!(p.next_periodic(), Some(reference + 120_000));
    }

    #[test]
    fn without_a_reference_the_first_periodic_inform_is_one_interval_away() {
        let f = periodic(300, None);
        let mut p = Planner::new(at(T0));
        assert!(!p.due(at(T0), &f).periodic);
        assert_eq!(p.next_periodic(), Some(T0 * 1000 + 300_000));
    }

    #[test]
    fn other_sessions_do_not_move_the_periodic_plan_but_a_settings_change_does() {
        let f = periodic(100, None);
        let mut p = Planner::new(at(T0));
        p.due(at(T0), &f);
        // A session ends in between: nothing moves.
        p.session_ended(at(T0 + 50), None);
        p.due(at(T0 + 50), &f);
        assert_eq!(p.next_periodic(), Some((T0 + 100) * 1000));
        // The ACS sets a new interval: planned anew from now.
        let g = periodic(200, None);
        p.due(at(T0 + 50), &g);
        assert_eq!(p.next_periodic(), Some((T0 + 250) * 1000));
        // Disabled: nothing planned, nothing due.
        let mut off = g;
        off.periodic.enable = false;
        assert!(!p.due(at(T0 + 1000), &off).periodic);
        assert_eq!(p.next_periodic(), None);
        // Enabled again with the same settings as before: planned anew.
        p.due(at(T0 + 1000), &g);
        assert_eq!(p.next_periodic(), Some((T0 + 1200) * 1000));
    }

    #[test]
    fn a_scheduled_inform_is_due_at_its_time_and_wakes_the_loop() {
        let mut p = Planner::new(at(T0));
        let f = Facts {
            next_scheduled: Some(T0 + 7),
            poll_interval: 3600,
            ..facts()
        };
        assert!(!p.due(at(T0), &f).scheduled);
        assert_eq!(p.poll_at(at(T0), &f), Duration::from_secs(7));
        assert!(p.due(at(T0 + 7), &f).scheduled);
    }

    #[test]
    fn a_failed_session_backs_off_per_retry_count() {
        // §3.2.1.1: the first retry waits m..m*k/1000 seconds, the next grows by k/1000.
        let mut p = Planner::new(at(T0));
        let retry_at = p.session_ended(at(T0), Some(failure(1)));
        assert_eq!(retry_at, T0 + 5);
        assert!(!p.session_due(at(T0 + 4), true, false));
        assert!(p.session_due(at(T0 + 5), true, false));
        let retry_at = p.session_ended(at(T0 + 5), Some(failure(2)));
        assert_eq!(retry_at, T0 + 5 + 10);
        // The highest random places the wait at the top of its range (20 s for the second).
        let mut f = failure(2);
        f.random = u64::MAX;
        let (lo, hi) = schedule::retry_range_ms(2, 5, 2000);
        let retry_at = p.session_ended(at(T0), Some(f));
        assert!(retry_at >= T0 + (lo / 1000) as i64 && retry_at <= T0 + hi.div_ceil(1000) as i64);
        // A retry count of 0 (the Inform was accepted, the session failed later) still waits.
        assert_eq!(p.session_ended(at(T0), Some(failure(0))), T0 + 5);
    }

    #[test]
    fn a_retry_time_is_never_early_and_less_than_a_second_late() {
        let now = Duration::from_millis(1_800_000_000_400);
        let mut p = Planner::new(now);
        // 5 s from T0 + 0.4 s is T0 + 5.4 s: the attempt starts at T0 + 6.
        assert_eq!(p.session_ended(now, Some(failure(1))), 1_800_000_006);
        for ms in [0, 1, 999, 1000, 1500, 7300] {
            let wait = Duration::from_millis(ms);
            let t = unix_after(now, wait);
            assert!(Duration::from_secs(t as u64) >= now + wait);
            assert!(Duration::from_secs(t as u64) < now + wait + Duration::from_secs(1));
        }
        assert_eq!(unix_after(now, Duration::MAX), i64::MAX);
    }

    #[test]
    fn retry_after_is_the_floor_of_the_backoff() {
        let mut p = Planner::new(at(T0));
        let mut f = failure(1);
        f.retry_after = Some(120);
        assert_eq!(p.session_ended(at(T0), Some(f)), T0 + 120);
        // A Retry-After shorter than the backoff does not shorten it.
        f.retry_after = Some(1);
        assert_eq!(p.session_ended(at(T0), Some(f)), T0 + 5);
    }

    #[test]
    fn the_backoff_wakes_the_loop_only_while_events_are_pending() {
        let mut p = Planner::new(at(T0));
        let f = Facts {
            poll_interval: 3600,
            ..facts()
        };
        p.due(at(T0), &f);
        p.session_ended(at(T0), Some(failure(1)));
        let pending = Facts {
            events_pending: true,
            ..f
        };
        assert_eq!(p.poll_at(at(T0), &pending), Duration::from_secs(5));
        assert_eq!(p.poll_at(at(T0), &f), Duration::from_secs(3600));
    }

    #[test]
    fn a_new_event_or_a_connection_request_ends_the_backoff() {
        let mut p = Planner::new(at(T0));
        p.session_ended(at(T0), Some(failure(3)));
        assert!(!p.session_due(at(T0 + 1), true, false));
        p.event_queued();
        assert!(p.session_due(at(T0 + 1), true, false));
        // A completed session clears it too.
        p.session_ended(at(T0), Some(failure(3)));
        assert_eq!(p.session_ended(at(T0 + 1), None), 0);
        assert!(p.session_due(at(T0 + 1), true, false));
    }

    #[test]
    fn no_session_without_events_or_while_holding() {
        let p = Planner::new(at(T0));
        assert!(!p.session_due(at(T0), false, false));
        // After a Reboot hook returned, the agent holds until the device goes down.
        assert!(!p.session_due(at(T0), true, true));
        assert!(p.session_due(at(T0), true, false));
    }

    #[test]
    fn the_hold_after_a_reboot_hook_wakes_the_loop_when_it_ends() {
        let p = Planner::new(at(T0 + 1000));
        let f = Facts {
            hold_until: Some(T0 + 1061),
            poll_interval: 3600,
            ..facts()
        };
        // Until the hold ends, the poll (due now) sets the pace.
        assert_eq!(p.poll_at(at(T0 + 1000), &f), MIN_WAIT);
        let mut p = Planner::new(at(T0));
        p.due(at(T0), &f);
        assert_eq!(p.poll_at(at(T0), &f), Duration::from_secs(1061));
    }

    #[test]
    fn the_active_notification_throttle_counts_from_the_last_completed_session() {
        let mut p = Planner::new(at(T0));
        // No session completed yet: no throttle.
        assert!(p.active_change(at(T0), 60));
        // A session completed at T0 + 0.3 s: the reference is T0 + 1 (rounded up).
        p.session_ended(at_ms(T0 * 1000 + 300), None);
        let f = Facts {
            poll_interval: 3600,
            ..facts()
        };
        p.due(at(T0 + 10), &f);
        assert!(!p.active_change(at(T0 + 10), 60));
        // The next poll comes when the throttle has passed.
        assert_eq!(p.poll_at(at(T0 + 10), &f), Duration::from_secs(51));
        assert!(!p.active_change(at(T0 + 60), 60));
        assert!(p.due(at(T0 + 61), &f).poll);
        assert!(p.active_change(at(T0 + 61), 60));
        // A throttle of 0 never holds a change back.
        assert!(p.active_change(at(T0 + 2), 0));
        // A failed session does not move the reference.
        p.session_ended(at(T0 + 100), Some(failure(1)));
        assert!(!p.active_change(at(T0 + 100), 120));
    }

    #[test]
    fn a_change_seen_by_a_watch_is_polled_at_once() {
        let mut p = Planner::new(at(T0));
        let f = Facts {
            poll_interval: 3600,
            ..facts()
        };
        assert!(p.due(at(T0), &f).poll);
        assert!(!p.due(at(T0 + 5), &f).poll);
        p.poll_now(at(T0 + 5));
        assert_eq!(p.poll_at(at(T0 + 5), &f), MIN_WAIT);
        assert!(p.due(at(T0 + 5), &f).poll);
    }

    #[test]
    fn the_loop_wakes_for_the_earliest_of_its_timers_and_never_busy_loops() {
        let mut p = Planner::new(at(T0));
        let f = Facts {
            poll_interval: 3600,
            transfer_wake: Some(T0 + 40),
            next_scheduled: Some(T0 + 50),
            connreq_check: Some(Duration::from_secs(45)),
            ..facts()
        };
        p.due(at(T0), &f);
        assert_eq!(p.poll_at(at(T0), &f), Duration::from_secs(40));
        let g = Facts {
            connreq_check: Some(Duration::from_secs(3)),
            ..f
        };
        assert_eq!(p.poll_at(at(T0), &g), Duration::from_secs(3));
        let h = Facts {
            transfer_wake: Some(T0 - 10),
            ..f
        };
        assert_eq!(p.poll_at(at(T0), &h), MIN_WAIT);
    }

    #[test]
    fn the_sleep_until_a_time_ends_when_its_second_begins() {
        let now = Duration::from_millis(1_800_000_000_250);
        assert_eq!(until_unix(now, 1_800_000_000 - 5), Duration::ZERO);
        assert_eq!(until_unix(now, -1), Duration::ZERO);
        assert_eq!(until_unix(now, 1_800_000_002), Duration::from_millis(1750));
        assert_eq!(
            until_unix_ms(now, 1_800_000_000_900),
            Duration::from_millis(650)
        );
        assert_eq!(until_unix_ms(now, 0), Duration::ZERO);
    }
}

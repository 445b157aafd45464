//! A clock of the test's for the agent driven in memory ([`cwmpd::agent::Clock`]): no real time
//! passes. It moves only when the agent waits without a trigger (to the end of the wait) or when
//! the test moves it, so every time the agent reads (session times, `CurrentTime`, the backoff,
//! the periodic phase) is a pure function of the start time and the agent's own decisions.

use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cwmpd::agent::{Clock, Trigger};

/// 2026-01-01T00:00:00Z, the start of the in-memory session tests.
pub const T0: u64 = 1_767_225_600;

/// The fake clock; clones share the time.
#[derive(Clone)]
pub struct FakeClock(Arc<Mutex<Time>>);

struct Time {
    start_wall: Duration,
    start_instant: Instant,
    /// Time since the clock's start.
    elapsed: Duration,
}

impl FakeClock {
    /// A clock that starts at `start_unix` (seconds since the epoch).
    pub fn new(start_unix: u64) -> FakeClock {
        FakeClock(Arc::new(Mutex::new(Time {
            start_wall: Duration::from_secs(start_unix),
            start_instant: Instant::now(),
            elapsed: Duration::ZERO,
        })))
    }

    fn time(&self) -> MutexGuard<'_, Time> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.time().elapsed += by;
    }

    /// Time since the clock's start.
    pub fn elapsed(&self) -> Duration {
        self.time().elapsed
    }

    /// The wall time in Unix milliseconds.
    pub fn unix_ms(&self) -> i64 {
        i64::try_from(self.wall().as_millis()).unwrap_or(i64::MAX)
    }
}

impl Clock for FakeClock {
    fn wall(&self) -> Duration {
        let t = self.time();
        t.start_wall + t.elapsed
    }

    fn instant(&self) -> Instant {
        let t = self.time();
        t.start_instant + t.elapsed
    }

    /// A trigger already sent is taken at once; without one the clock jumps to the end of the
    /// wait.
    fn wait(
        &mut self,
        triggers: &Receiver<Trigger>,
        timeout: Duration,
    ) -> Result<Trigger, RecvTimeoutError> {
        match triggers.try_recv() {
            Ok(t) => Ok(t),
            Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) => {
                self.advance(timeout);
                Err(RecvTimeoutError::Timeout)
            }
        }
    }
}

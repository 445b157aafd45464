//! The agent's time and its wait for work: the [`Clock`] trait, and [`SystemClock`], the real one.
//!
//! The loop and the sessions read the time only through the clock, and sleep only in
//! [`Clock::wait`], so that a test can drive them with a clock of its own: no real time passes,
//! and a wait without a trigger moves the clock to the end of the wait.

use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::Trigger;

/// Where the agent gets its time, and how it waits.
pub trait Clock: Send {
    /// The wall-clock time since the Unix epoch (zero before it).
    fn wall(&self) -> Duration;
    /// A monotonic instant, for the deadlines of a session.
    fn instant(&self) -> Instant;
    /// Waits at most `timeout` for the next trigger; [`RecvTimeoutError::Timeout`] when none
    /// came.
    fn wait(
        &mut self,
        triggers: &Receiver<Trigger>,
        timeout: Duration,
    ) -> Result<Trigger, RecvTimeoutError>;
}

/// The system's clocks, and a blocking wait on the trigger channel.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn wall(&self) -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }

    fn instant(&self) -> Instant {
        Instant::now()
    }

    fn wait(
        &mut self,
        triggers: &Receiver<Trigger>,
        timeout: Duration,
    ) -> Result<Trigger, RecvTimeoutError> {
        triggers.recv_timeout(timeout)
    }
}

/// A clock that no real time moves: it moves only when the agent waits without a trigger (to the
/// end of the wait) or when its owner moves it ([`ManualClock::advance`]), so every time the agent
/// reads (session times, `CurrentTime`, the backoff, the periodic phase) follows from the start
/// time and the agent's own decisions. For driving the agent in memory (tests, simulations);
/// clones share the time.
#[derive(Clone)]
pub struct ManualClock(Arc<Mutex<ManualTime>>);

struct ManualTime {
    start_wall: Duration,
    start_instant: Instant,
    /// Time since the clock's start.
    elapsed: Duration,
}

impl ManualClock {
    /// A clock that starts at `start_unix` (seconds since the epoch).
    pub fn new(start_unix: u64) -> ManualClock {
        ManualClock(Arc::new(Mutex::new(ManualTime {
            start_wall: Duration::from_secs(start_unix),
            start_instant: Instant::now(),
            elapsed: Duration::ZERO,
        })))
    }

    fn time(&self) -> MutexGuard<'_, ManualTime> {
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

impl Clock for ManualClock {
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

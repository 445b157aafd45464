//! The agent's time and its wait for work: the [`Clock`] trait, and [`SystemClock`], the real one.
//!
//! The loop and the sessions read the time only through the clock, and sleep only in
//! [`Clock::wait`], so that a test can drive them with a clock of its own: no real time passes,
//! and a wait without a trigger moves the clock to the end of the wait.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
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

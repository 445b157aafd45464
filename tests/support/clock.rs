//! The in-memory tests' time: they drive the agent with the library's
//! [`cwmpd::agent::ManualClock`] (no real time passes), from one start.

/// 2026-01-01T00:00:00Z, the start of the in-memory session tests.
pub const T0: u64 = 1_767_225_600;

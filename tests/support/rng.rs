//! The one seeded pseudo-random generator of the tests and benches (xorshift64*, Vigna 2016):
//! reproducible choices from a seed the test prints, so that a failure can be replayed. Not
//! for secrets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// xorshift64*; the state is never 0 (a fixed point).
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The generator with `seed` as its state (0 is taken as 1).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The generator for `seed` spread by the golden-ratio multiplier, so that nearby seeds
    /// (0, 1, 2…) start far apart.
    pub fn spread(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A generator seeded from the clock and a process-wide count (two made in the same
    /// nanosecond differ), for benches: nothing to replay.
    pub fn from_clock() -> Rng {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        Rng::spread(clock_seed() ^ SEQ.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// [`Rng::below`] for an index into `n` items.
    pub fn index(&mut self, n: usize) -> usize {
        usize::try_from(self.below(n as u64)).unwrap_or(0)
    }

    /// One of `items` (which must not be empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        (self.next_u64() >> 32) as u8
    }

    /// A duration of `lo..=hi` milliseconds.
    pub fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi.saturating_sub(lo) + 1))
    }
}

/// An odd, never-zero seed from the clock.
pub fn clock_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1
}

/// The seed given in the environment variable `var`, else one from the clock, for an [`Rng`]
/// whose seed the test prints so that a failure can be replayed.
pub fn seed_from_env(var: &str) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(clock_seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_bounds_hold() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(Rng::new(0).next_u64(), 0);
        let mut r = Rng::spread(7);
        for _ in 0..1000 {
            assert!(r.below(10) < 10);
            assert_eq!(r.below(0), 0);
            let d = r.ms(5, 9);
            assert!((5..=9).contains(&d.as_millis()));
        }
        assert_eq!(*Rng::new(3).pick(&[7]), 7);
    }
}

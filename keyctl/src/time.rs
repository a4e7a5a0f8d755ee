//! Time as the state machines see it: a number the caller passes in.

use core::ops::Add;

/// A point in time in milliseconds: wall-clock unix milliseconds in real drivers,
/// virtual milliseconds in tests. State machines never read a clock; every input carries
/// the current `Millis`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

impl Millis {
    /// The time `ms` milliseconds later, saturating.
    pub fn after(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Self) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<u64> for Millis {
    type Output = Self;

    fn add(self, ms: u64) -> Self {
        self.after(ms)
    }
}

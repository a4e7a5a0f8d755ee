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

/// Where a driver reads the [`Millis`] it passes to the cores. Drivers hold a `Clock` instead of
/// reading the system time themselves, so the same driver code (the board server, the meeting
/// pump) can run on a virtual clock in a simulation. The state machines never hold one.
pub trait Clock: Send + Sync + core::fmt::Debug {
    /// The current time.
    fn now(&self) -> Millis;
}

/// Wall-clock unix milliseconds (0 before 1970, saturating far in the future): the clock of
/// every real driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Millis(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
    }
}

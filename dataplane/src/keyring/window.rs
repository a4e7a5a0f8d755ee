//! Replay windows shared by every worker, lock-free: one per (mkSeqNum, KID), owned by the epoch.
//!
//! Per-worker windows would let an attacker replay a packet from another source port: SO_REUSEPORT
//! would hand it to another worker whose window never saw it. So the window lives with the epoch
//! and workers update it with compare-and-swap.
//!
//! Layout (RFC 6479's word-wise window, with the block number kept in each word so no shared
//! "highest" has to move with it): 256 words of `tag (48 bits) | bitmap (16 bits)`. Counter `c`
//! belongs to block `c >> 4`, bit `c & 15`, word `block % 256`. A word holds the newest block
//! that touched it; a counter whose word has moved on to a newer block is too old, one whose bit
//! is set is a duplicate. Tags only grow, so once a counter was accepted it is refused forever
//! after, from any worker. The window reaches 255 * 16 = 4080 counters back.

use std::sync::OnceLock;

// Under `--cfg loom` the words are loom's atomics, so dataplane/tests/loom_window.rs can explore
// every interleaving of racing marks (docs/RELIABILITY.md).
#[cfg(loom)]
use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU64, Ordering};

use crate::replay::ReplayError;

const WORDS: usize = 256;
const BITS: u64 = 16;
/// Counters whose block no longer fits the 48-bit tag (beyond 2^52 packets in one epoch) are
/// refused as too old rather than aliased.
const MAX_BLOCK: u64 = 1 << 48;

/// How far behind the newest counter a packet may still be accepted.
pub const SHARED_WINDOW: u64 = (WORDS as u64 - 1) * BITS;

/// One stream's window.
pub struct SharedWindow {
    words: Box<[AtomicU64]>,
}

impl Default for SharedWindow {
    fn default() -> Self {
        Self {
            words: (0..WORDS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

fn split(ctr: u64) -> Result<(u64, usize, u64), ReplayError> {
    let block = ctr / BITS;
    if block >= MAX_BLOCK {
        return Err(ReplayError::TooOld);
    }
    Ok((block, (block % WORDS as u64) as usize, 1 << (ctr % BITS)))
}

fn verdict(word: u64, block: u64, bit: u64) -> Result<(), ReplayError> {
    let tag = word >> BITS;
    if tag > block {
        Err(ReplayError::TooOld)
    } else if tag == block && word & bit != 0 {
        Err(ReplayError::Duplicate)
    } else {
        Ok(())
    }
}

impl SharedWindow {
    /// Whether `ctr` may be new. Changes nothing.
    pub fn check(&self, ctr: u64) -> Result<(), ReplayError> {
        let (block, index, bit) = split(ctr)?;
        verdict(self.words[index].load(Ordering::Acquire), block, bit)
    }

    /// Records `ctr` (after its packet authenticated). Of two threads marking the same counter,
    /// exactly one succeeds.
    pub fn mark(&self, ctr: u64) -> Result<(), ReplayError> {
        let (block, index, bit) = split(ctr)?;
        let word = &self.words[index];
        let mut current = word.load(Ordering::Acquire);
        loop {
            verdict(current, block, bit)?;
            let next = if current >> BITS == block {
                current | bit
            } else {
                (block << BITS) | bit
            };
            match word.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }
}

/// How many streams (an instance and stream index each, that is, a KID) one roster member may
/// have windows for in one epoch. A sender draws one instance per epoch it installs, so this is
/// restarts and reloads times streams: a datagram-mode sender restarted 31 times under one key
/// still fits. Reaching it refuses the next new stream (`stream_limit`) rather than evicting an
/// old window: an evicted window would forget which counters were used and accept their replay.
pub const MAX_STREAMS_PER_SENDER: usize = 32;

/// One stream's window and the KID it belongs to.
struct StreamWindow {
    kid: u64,
    window: SharedWindow,
}

/// Why a window could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AdmitError {
    /// The slot is not in the epoch's roster.
    NotInRoster,
    /// The roster member has [`MAX_STREAMS_PER_SENDER`] windows already.
    Full,
}

/// The windows of one epoch: per roster member, up to [`MAX_STREAMS_PER_SENDER`], each created
/// only when the first packet of its KID authenticated (so nothing a forger sends allocates).
///
/// A member's entries fill from the front and never change once set, so the set entries are
/// always a prefix: a reader may stop at the first empty one. Two workers admitting the same KID
/// at once agree on one entry (`OnceLock` initializes each entry exactly once, and an entry
/// holding another KID is passed over).
pub(super) struct EpochWindows {
    senders: Box<[OnceLock<SenderWindows>]>,
}

/// One roster member's entries.
type SenderWindows = Box<[OnceLock<StreamWindow>]>;

impl EpochWindows {
    pub(super) fn new(roster_len: usize) -> Self {
        Self {
            senders: (0..roster_len).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The window of `kid` from roster member `position` and its entry index, if it exists.
    pub(super) fn find(&self, position: usize, kid: u64) -> Option<(usize, &SharedWindow)> {
        let entries = self.senders.get(position)?.get()?;
        for (index, entry) in entries.iter().enumerate() {
            let entry = entry.get()?;
            if entry.kid == kid {
                return Some((index, &entry.window));
            }
        }
        None
    }

    /// The window at an index [`Self::find`] or [`Self::admit`] returned for `kid`.
    pub(super) fn at(&self, position: usize, index: usize, kid: u64) -> Option<&SharedWindow> {
        let entry = self.senders.get(position)?.get()?.get(index)?.get()?;
        (entry.kid == kid).then_some(&entry.window)
    }

    /// The window of `kid`, created if there is room. Call only once a packet under `kid`
    /// authenticated.
    pub(super) fn admit(
        &self,
        position: usize,
        kid: u64,
    ) -> Result<(usize, &SharedWindow), AdmitError> {
        let entries = self
            .senders
            .get(position)
            .ok_or(AdmitError::NotInRoster)?
            .get_or_init(|| {
                (0..MAX_STREAMS_PER_SENDER)
                    .map(|_| OnceLock::new())
                    .collect()
            });
        for (index, entry) in entries.iter().enumerate() {
            let entry = entry.get_or_init(|| StreamWindow {
                kid,
                window: SharedWindow::default(),
            });
            if entry.kid == kid {
                return Ok((index, &entry.window));
            }
        }
        Err(AdmitError::Full)
    }

    /// How many windows exist, over every roster member.
    pub(super) fn count(&self) -> usize {
        self.senders
            .iter()
            .filter_map(OnceLock::get)
            .map(|entries| entries.iter().filter(|e| e.get().is_some()).count())
            .sum()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn accept(w: &SharedWindow, ctr: u64) -> Result<(), ReplayError> {
        w.check(ctr)?;
        w.mark(ctr)
    }

    #[test]
    fn reaches_at_least_2048_back() {
        const { assert!(SHARED_WINDOW >= 2048) };
        let w = SharedWindow::default();
        accept(&w, 10_000).unwrap();
        for ctr in (10_000 - SHARED_WINDOW..10_000).rev() {
            assert_eq!(accept(&w, ctr), Ok(()), "ctr {ctr}");
        }
        for ctr in 10_000 - SHARED_WINDOW..=10_000 {
            assert_eq!(accept(&w, ctr), Err(ReplayError::Duplicate));
        }
        assert_eq!(accept(&w, 10_000 - 4096 - 1), Err(ReplayError::TooOld));
    }

    #[test]
    fn an_accepted_counter_is_never_accepted_again() {
        let w = SharedWindow::default();
        let mut seen = std::collections::BTreeSet::new();
        let mut x: u64 = 12345;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let ctr = (x >> 33) % 30_000;
            match accept(&w, ctr) {
                Ok(()) => assert!(seen.insert(ctr), "{ctr} accepted twice"),
                Err(ReplayError::Duplicate) => assert!(seen.contains(&ctr)),
                Err(_) => {}
            }
        }
    }

    #[test]
    fn check_alone_records_nothing_and_huge_counters_are_refused() {
        let w = SharedWindow::default();
        assert_eq!(w.check(5), Ok(()));
        assert_eq!(w.check(5), Ok(()));
        w.mark(5).unwrap();
        assert_eq!(w.check(5), Err(ReplayError::Duplicate));
        assert_eq!(w.check(u64::MAX), Err(ReplayError::TooOld));
    }

    #[test]
    fn racing_threads_accept_each_counter_once() {
        let w = std::sync::Arc::new(SharedWindow::default());
        let accepted: Vec<u64> = (0..2)
            .map(|_| {
                let w = w.clone();
                std::thread::spawn(move || (0..3000).filter(|&c| w.mark(c).is_ok()).count() as u64)
            })
            .map(|t| t.join().unwrap())
            .collect();
        assert_eq!(accepted.iter().sum::<u64>(), 3000);
    }

    #[test]
    fn windows_are_created_only_on_request_and_capped_per_sender() {
        let windows = EpochWindows::new(2);
        assert!(windows.find(1, 0x300).is_none());
        let (index, window) = windows.admit(1, 0x300).unwrap();
        window.mark(7).unwrap();
        assert_eq!(windows.find(1, 0x300).map(|(i, _)| i), Some(index));
        assert_eq!(
            windows.at(1, index, 0x300).unwrap().check(7),
            Err(ReplayError::Duplicate)
        );
        assert!(windows.at(1, index, 0x301).is_none(), "another KID's index");
        assert!(windows.find(1, 0x400).is_none());
        assert_eq!(
            windows.admit(2, 0).map(|(i, _)| i),
            Err(AdmitError::NotInRoster)
        );
        for kid in 1..MAX_STREAMS_PER_SENDER as u64 {
            windows.admit(1, 0x300 + kid).unwrap();
        }
        assert_eq!(
            windows.admit(1, 0x999).map(|(i, _)| i),
            Err(AdmitError::Full)
        );
        // A full member still finds its own windows, and the other member is unaffected.
        assert_eq!(windows.admit(1, 0x300).map(|(i, _)| i), Ok(index));
        assert_eq!(windows.admit(0, 0x999).map(|(i, _)| i), Ok(0));
        assert_eq!(windows.count(), MAX_STREAMS_PER_SENDER + 1);
    }
}

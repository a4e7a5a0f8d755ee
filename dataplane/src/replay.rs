//! The replay window (RFC 6479 style, as in WireGuard): one per (mkSeqNum, KID).
//!
//! A bitmap of `WORDS` 64-bit words records which counters at or below the highest seen have
//! arrived. Receivers [`ReplayWindow::check`] a counter before decrypting and
//! [`ReplayWindow::mark`] it only after the tag verified, so a forged header can neither advance
//! the window nor burn a counter that a genuine packet will later need.

use rustc_hash::FxHashMap;

/// Words in the bitmap. One word is kept as slack for block-wise clearing (RFC 6479 3.2), so the
/// usable window is `(WORDS - 1) * 64` counters.
const WORDS: usize = 64;
const BITS_PER_WORD: u64 = 64;

/// How far behind the highest counter a packet may arrive and still be accepted.
pub const WINDOW: u64 = (WORDS as u64 - 1) * BITS_PER_WORD;

/// Why a counter was refused.
///
/// Exhaustive on purpose (no `#[non_exhaustive]`): the workspace's drivers (libveil's result
/// codes, the sidecar's counters) match every variant, so a new one is a compile error where it
/// must be mapped instead of a silent `_` arm (docs/ARCHITECTURE.md, "Exhaustive errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// This counter already arrived.
    #[error("replayed packet")]
    Duplicate,
    /// This counter is further behind the newest than the window reaches.
    #[error("packet too old for the replay window")]
    TooOld,
}

/// A sliding window over one stream's counters.
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    /// The highest counter marked so far, if any.
    highest: Option<u64>,
    bitmap: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

fn word_index(ctr: u64) -> usize {
    ((ctr / BITS_PER_WORD) % WORDS as u64) as usize
}

fn bit(ctr: u64) -> u64 {
    1 << (ctr % BITS_PER_WORD)
}

impl ReplayWindow {
    /// A window that has seen nothing.
    pub fn new() -> Self {
        Self {
            highest: None,
            bitmap: [0; WORDS],
        }
    }

    /// The highest counter accepted so far.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Whether `ctr` may be new. Does not change the window.
    pub fn check(&self, ctr: u64) -> Result<(), ReplayError> {
        let Some(highest) = self.highest else {
            return Ok(());
        };
        if ctr > highest {
            return Ok(());
        }
        if highest - ctr >= WINDOW {
            return Err(ReplayError::TooOld);
        }
        if self.bitmap[word_index(ctr)] & bit(ctr) != 0 {
            return Err(ReplayError::Duplicate);
        }
        Ok(())
    }

    /// Records `ctr` as received. Call it only after the packet authenticated; it checks again,
    /// so two copies that both passed [`Self::check`] cannot both be accepted.
    pub fn mark(&mut self, ctr: u64) -> Result<(), ReplayError> {
        self.check(ctr)?;
        self.record(ctr);
        Ok(())
    }

    /// Records `ctr`, which [`Self::check`] has just accepted with no change to the window since.
    fn record(&mut self, ctr: u64) {
        match self.highest {
            Some(highest) if ctr <= highest => {}
            previous => {
                self.advance(previous, ctr);
                self.highest = Some(ctr);
            }
        }
        self.bitmap[word_index(ctr)] |= bit(ctr);
    }

    /// Clears the words that slide into the window as the top moves from `previous` to `ctr`.
    fn advance(&mut self, previous: Option<u64>, ctr: u64) {
        let new_word = ctr / BITS_PER_WORD;
        let Some(previous) = previous else {
            return;
        };
        let old_word = previous / BITS_PER_WORD;
        let steps = new_word - old_word;
        if steps >= WORDS as u64 {
            self.bitmap = [0; WORDS];
            return;
        }
        for step in 1..=steps {
            self.bitmap[((old_word + step) % WORDS as u64) as usize] = 0;
        }
    }
}

/// The windows of every stream a receiver has heard, keyed by (mkSeqNum, KID).
///
/// A window is created when its stream's first packet authenticates, so steady-state traffic
/// allocates nothing; [`Self::forget_epoch`] drops an epoch's windows with its key.
///
/// The map uses the Fx hash rather than a keyed one: entries are created only for streams whose
/// packets authenticated, so an attacker cannot choose what goes in, and the hot path saves two
/// SipHash rounds per packet.
#[derive(Clone, Debug, Default)]
pub struct ReplayWindows {
    windows: FxHashMap<(u32, u64), ReplayWindow>,
}

impl ReplayWindows {
    /// No windows yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// [`ReplayWindow::check`] for the stream `(mk_seq, kid)`; an unheard stream accepts anything.
    pub fn check(&self, mk_seq: u32, kid: u64, ctr: u64) -> Result<(), ReplayError> {
        self.windows
            .get(&(mk_seq, kid))
            .map_or(Ok(()), |window| window.check(ctr))
    }

    /// [`ReplayWindow::mark`] for the stream `(mk_seq, kid)`.
    pub fn mark(&mut self, mk_seq: u32, kid: u64, ctr: u64) -> Result<(), ReplayError> {
        self.windows.entry((mk_seq, kid)).or_default().mark(ctr)
    }

    /// Screens `ctr`, runs `open` (the authentication), and records `ctr` only if it succeeded,
    /// with a single map lookup for a stream already heard.
    pub fn guard<T, E: From<ReplayError>>(
        &mut self,
        mk_seq: u32,
        kid: u64,
        ctr: u64,
        open: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        match self.windows.get_mut(&(mk_seq, kid)) {
            Some(window) => {
                window.check(ctr)?;
                let opened = open()?;
                // `window` is borrowed mutably throughout, so the check above still holds.
                window.record(ctr);
                Ok(opened)
            }
            None => {
                let opened = open()?;
                self.mark(mk_seq, kid, ctr)?;
                Ok(opened)
            }
        }
    }

    /// Drops every window of the epoch `mk_seq`.
    pub fn forget_epoch(&mut self, mk_seq: u32) {
        self.windows.retain(|&(epoch, _), _| epoch != mk_seq);
    }

    /// How many streams have a window.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// Whether no stream has a window yet.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn accept(window: &mut ReplayWindow, ctr: u64) -> Result<(), ReplayError> {
        window.check(ctr)?;
        window.mark(ctr)
    }

    #[test]
    fn the_window_is_at_least_2048_wide() {
        const { assert!(WINDOW >= 2048) };
    }

    #[test]
    fn duplicates_are_refused() {
        let mut w = ReplayWindow::new();
        assert_eq!(accept(&mut w, 0), Ok(()));
        assert_eq!(accept(&mut w, 0), Err(ReplayError::Duplicate));
        assert_eq!(accept(&mut w, 5), Ok(()));
        assert_eq!(accept(&mut w, 5), Err(ReplayError::Duplicate));
        assert_eq!(accept(&mut w, 0), Err(ReplayError::Duplicate));
    }

    #[test]
    fn reordering_inside_the_window_is_accepted_once() {
        let mut w = ReplayWindow::new();
        let top = 5000;
        assert_eq!(accept(&mut w, top), Ok(()));
        // Everything still inside the window, newest first: the worst reordering it can take.
        let behind = (top - WINDOW + 1)..top;
        for ctr in behind.clone().rev() {
            assert_eq!(accept(&mut w, ctr), Ok(()), "ctr {ctr}");
        }
        for ctr in behind {
            assert_eq!(accept(&mut w, ctr), Err(ReplayError::Duplicate));
        }
    }

    #[test]
    fn far_old_packets_are_too_old() {
        let mut w = ReplayWindow::new();
        assert_eq!(accept(&mut w, 10_000), Ok(()));
        assert_eq!(accept(&mut w, 10_000 - WINDOW), Err(ReplayError::TooOld));
        assert_eq!(accept(&mut w, 0), Err(ReplayError::TooOld));
        assert_eq!(accept(&mut w, 10_000 - WINDOW + 1), Ok(()));
    }

    #[test]
    fn far_ahead_packets_slide_the_window_and_clear_stale_bits() {
        let mut w = ReplayWindow::new();
        for ctr in 0..100 {
            accept(&mut w, ctr).unwrap();
        }
        let far = 1_000_000;
        assert_eq!(accept(&mut w, far), Ok(()));
        // Counters that share bitmap positions with the old ones are fresh, not duplicates.
        let alias = far - (WORDS as u64 * BITS_PER_WORD) + 64 * 3;
        assert!(far - alias < WINDOW);
        assert_eq!(accept(&mut w, alias), Ok(()));
        assert_eq!(accept(&mut w, 50), Err(ReplayError::TooOld));
        assert_eq!(accept(&mut w, u64::MAX), Ok(()));
        assert_eq!(accept(&mut w, u64::MAX), Err(ReplayError::Duplicate));
    }

    #[test]
    fn check_alone_records_nothing() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.check(7), Ok(()));
        assert_eq!(w.check(7), Ok(()));
        assert_eq!(w.highest(), None);
        w.mark(7).unwrap();
        assert_eq!(w.mark(7), Err(ReplayError::Duplicate));
    }

    #[test]
    fn streams_and_epochs_have_separate_windows() {
        let mut w = ReplayWindows::new();
        w.mark(1, 10, 0).unwrap();
        assert_eq!(w.check(1, 10, 0), Err(ReplayError::Duplicate));
        assert_eq!(w.check(1, 11, 0), Ok(()));
        assert_eq!(w.check(2, 10, 0), Ok(()));
        w.mark(2, 10, 0).unwrap();
        w.forget_epoch(1);
        assert_eq!((w.len(), w.check(1, 10, 0)), (1, Ok(())));
    }

    #[test]
    fn guard_records_only_what_authenticated() {
        let mut w = ReplayWindows::new();
        let forged: Result<(), ReplayError> = w.guard(1, 2, 5, || Err(ReplayError::TooOld));
        assert!(forged.is_err());
        assert!(w.is_empty(), "a failed open creates no window");
        assert_eq!(w.guard(1, 2, 5, || Ok::<_, ReplayError>(())), Ok(()));
        let mut ran = false;
        let again = w.guard(1, 2, 5, || {
            ran = true;
            Ok::<_, ReplayError>(())
        });
        assert_eq!((again, ran), (Err(ReplayError::Duplicate), false));
        // A failed open on a known stream leaves the counter free for the genuine packet.
        let failed: Result<(), ReplayError> = w.guard(1, 2, 6, || Err(ReplayError::TooOld));
        assert!(failed.is_err());
        assert_eq!(w.guard(1, 2, 6, || Ok::<_, ReplayError>(())), Ok(()));
    }

    proptest! {
        /// Against a model that remembers every counter: the window accepts exactly the new
        /// counters that are within WINDOW of the highest accepted so far.
        #[test]
        fn agrees_with_a_set_model(steps in proptest::collection::vec((0u64..6000, any::<bool>()), 1..400)) {
            let mut w = ReplayWindow::new();
            let mut seen = std::collections::BTreeSet::new();
            for (ctr, _) in steps {
                let highest = seen.iter().next_back().copied();
                let expected = match highest {
                    Some(h) if ctr <= h && h - ctr >= WINDOW => Err(ReplayError::TooOld),
                    _ if seen.contains(&ctr) => Err(ReplayError::Duplicate),
                    _ => Ok(()),
                };
                prop_assert_eq!(accept(&mut w, ctr), expected, "ctr {}", ctr);
                if expected.is_ok() {
                    seen.insert(ctr);
                }
            }
        }
    }
}

//! The invariants checked at every step, and what a violation reports.

use core::fmt;

use keyctl::meeting::Millis;

use crate::action::{Action, Repro};

/// The security invariants of the issue ("Security hardening", section 2), numbered as in
/// /work/shared/DESIGN.md's I1-I7 where they coincide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Invariant {
    /// I1: a participant removed (kick or leave) never obtains a key the leader made
    /// after it removed them, while that leader still lists them as removed.
    I1RemovedGetsNoNewKey,
    /// I2: no live participant sends under key N more than [`crate::i2_bound`] after it
    /// verified a heartbeat certifying a newer key.
    I2NoStaleSending,
    /// I3: a participant with no verified heartbeat for missed x interval has left.
    I3HeartbeatsKeepAlive,
    /// I4: key updates strictly increase per session, and after a leader change a
    /// participant that keeps hearing the new leader sends under its key within 10 s of
    /// its first heartbeat.
    I4NewLeaderKey,
    /// I5: a kicked identity never obtains a key made after its kick was seen (there is
    /// no command to lift a ban).
    I5KickedStaysOut,
    /// I6: state per meeting stays bounded (output queued per input), and a session that
    /// left holds no key material.
    I6StateBound,
    /// I6, the participant cap: no roster lists more than [`crate::MEETING_CAP`]
    /// identities, whatever the board announces.
    I6RosterCap,
    /// I7 (issue 16): every session of the world has an ML-KEM-768 key (`pq = preferred`), so
    /// no meeting key travels in a classical box: no leader posts one and no session takes one,
    /// whatever the board strips from the announcements ([`crate::Action::StripPq`]).
    I7NoClassicalBox,
    /// I8 (issue 16 part 2): the parties have hybrid identities (Ed25519 + ML-DSA-65), so a
    /// post of theirs the board strips of its ML-DSA half ([`crate::Action::StripPqSig`]) is
    /// refused by whoever reads it: no session takes a classical signature from a hybrid
    /// signer.
    I8NoStrippedSignature,
    /// I9 (keyctl revision 5): a session the adversary forges under a party's `IVK`
    /// ([`crate::Action::ForgeRejoin`]: a classical identity, or a hybrid one with another
    /// ML-DSA-65 key) is never admitted or keyed by an honest party, whether the party it
    /// poses as is present, left or was kicked: no honest session takes its announcement
    /// (but the victim's own, which ignores its own ID), lists its binding or lets the list
    /// record another identity for any party, boxes a key to its nonce, or takes a key it
    /// made (when the server names the victim leader, the forgery leads); the forgery
    /// takes no key an honest leader made; and an honest session that refuses a forged post
    /// lists the same as before.
    I9NoForgedRejoin,
    /// The world could not be built (not an invariant of keyctl; a harness failure).
    Setup,
}

impl Invariant {
    /// Every invariant of keyctl (not [`Invariant::Setup`], which is always enabled).
    pub const ALL: [Self; 10] = [
        Self::I1RemovedGetsNoNewKey,
        Self::I2NoStaleSending,
        Self::I3HeartbeatsKeepAlive,
        Self::I4NewLeaderKey,
        Self::I5KickedStaysOut,
        Self::I6StateBound,
        Self::I6RosterCap,
        Self::I7NoClassicalBox,
        Self::I8NoStrippedSignature,
        Self::I9NoForgedRejoin,
    ];
}

/// Invariants keyctl is known to violate; the CI proptest and the fuzz smoke leave these
/// out. Empty since keyctl revision 2 fixed findings F1-F5 (docs/RELIABILITY.md,
/// "Adversarial exploration"); a new finding goes here only with its ignored test in
/// tests/findings.rs.
pub const KNOWN_OPEN: &[Invariant] = &[];

/// The invariants a CI run enforces: all but [`KNOWN_OPEN`].
pub fn enforced() -> Vec<Invariant> {
    Invariant::ALL
        .into_iter()
        .filter(|i| !KNOWN_OPEN.contains(i))
        .collect()
}

/// One invariant violated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which.
    pub invariant: Invariant,
    /// What was observed.
    pub detail: String,
    /// Virtual time.
    pub at: Millis,
    /// Index of the action that revealed it (set by [`crate::run`]).
    pub step: Option<usize>,
}

impl Violation {
    pub(crate) fn setup(detail: String) -> Self {
        Self {
            invariant: Invariant::Setup,
            detail,
            at: Millis(0),
            step: None,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} at t={} ms (step {:?}): {}",
            self.invariant, self.at.0, self.step, self.detail
        )
    }
}

/// A violation with the (minimized) action list that reproduces it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The violation.
    pub violation: Violation,
    /// The actions that reproduce it from [`crate::World::new`].
    pub actions: Vec<Action>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.violation)?;
        write!(
            f,
            "reproduce with keyctl_adversary::run(&{}, ..)",
            Repro(&self.actions)
        )
    }
}

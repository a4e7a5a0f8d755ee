//! `--tamper SCENARIO`: the board as the adversary it is assumed to be. Each scenario is
//! something a compromised server could really do; the tests check participants notice.

use keyctl::crypto::sha256;
use keyctl::wire::Message;

/// A misbehaviour of the board, for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "net", derive(clap::ValueEnum))]
#[non_exhaustive]
pub enum Tamper {
    /// Replace the box public key in every KeyAnnouncement delivered to others (a
    /// machine-in-the-middle on the key exchange; whitepaper 3.7.4 step 5 catches it).
    SwapKey,
    /// Deliver the announcements, nonces and list links recorded in the previous instance
    /// of the same meeting to every participant of the next one.
    ReplayInstance,
    /// Drop every heartbeat (whitepaper 3.7.7: participants leave after ten missed).
    WithholdHeartbeats,
    /// Once a meeting has four participants, split it by join order (1st, 3rd | 2nd, 4th;
    /// later joiners alternate): each half is told the other left, the half without the
    /// leader is given a leader of its own, and neither sees the other's posts from then on.
    Partition,
}

impl Tamper {
    /// How many participants a meeting has when `Partition` splits it.
    pub const PARTITION_AT: usize = 4;

    /// Whether to record posts so the next instance can be fed them.
    pub(crate) fn records_instances(self) -> bool {
        self == Self::ReplayInstance
    }

    /// Whether to withhold a post from everyone.
    pub(crate) fn withholds(self, msg: &Message) -> bool {
        self == Self::WithholdHeartbeats && matches!(msg, Message::Heartbeat(_))
    }

    /// The bytes to deliver in place of `msg`, or `None` to deliver it unchanged.
    pub(crate) fn rewrite(self, msg: &Message) -> Option<Vec<u8>> {
        match (self, msg) {
            (Self::SwapKey, Message::KeyAnnouncement(a)) => {
                let mut a = a.clone();
                // The adversary's own key in place of the participant's (any other key
                // breaks the binding signature just the same).
                a.binding.pk = sha256(&a.binding.pk);
                Some(Message::KeyAnnouncement(a).to_bytes())
            }
            _ => None,
        }
    }
}

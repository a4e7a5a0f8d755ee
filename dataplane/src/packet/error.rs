//! Errors of the packet framing, and the drop reasons they are counted under.

use super::rtp::RtpError;
use crate::replay::ReplayError;
use crate::sframe;

/// Why a packet could not be protected or unprotected.
///
/// Exhaustive on purpose (no `#[non_exhaustive]`): the workspace's drivers (libveil's result
/// codes, the sidecar's counters) match every variant, so a new one is a compile error where it
/// must be mapped instead of a silent `_` arm (docs/ARCHITECTURE.md, "Exhaustive errors").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Too short to hold the 4-byte mkSeqNum.
    #[error("packet shorter than the mkSeqNum prefix")]
    Truncated,
    /// The clear RTP header is malformed.
    #[error("malformed RTP header: {0}")]
    Rtp(#[from] RtpError),
    /// The SFrame layer refused it (header, key, or authentication).
    #[error(transparent)]
    Sframe(#[from] sframe::Error),
    /// No key epoch is installed for this mkSeqNum.
    #[error("no key epoch for mkSeqNum {0}")]
    UnknownEpoch(u32),
    /// The replay window refused its counter.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The KID is this device's own sender slot: its own packet reflected back (by a relay, for
    /// example). A receiver never decrypts with a send key (RFC 9605 4.4.1).
    #[error("KID {0:#x} is this device's own sender slot")]
    Reflected(u64),
    /// The packet authenticated, but its sender already has the most stream windows an epoch
    /// keeps for one sender (`keyring::MAX_STREAMS_PER_SENDER`).
    #[error("KID {0:#x}: the sender has no stream window left in this epoch")]
    StreamLimit(u64),
}

/// The reasons a received packet is dropped, each with its own counter.
///
/// Exhaustive on purpose (no `#[non_exhaustive]`): the workspace's drivers (libveil's result
/// codes, the sidecar's counters) match every variant, so a new one is a compile error where it
/// must be mapped instead of a silent `_` arm (docs/ARCHITECTURE.md, "Exhaustive errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Malformed framing: mkSeqNum, RTP header or SFrame header.
    BadHeader,
    /// No key for its mkSeqNum or KID.
    UnknownKey,
    /// The tag did not verify.
    AuthFailure,
    /// A counter already received.
    Replay,
    /// A counter behind the replay window.
    TooOld,
    /// This device's own KID came back (RFC 9605 4.4.1: never decrypt with a send key).
    Reflected,
    /// An authentic packet of a sender that has used up its stream windows for the epoch.
    StreamLimit,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 7] = [
        Self::BadHeader,
        Self::UnknownKey,
        Self::AuthFailure,
        Self::Replay,
        Self::TooOld,
        Self::Reflected,
        Self::StreamLimit,
    ];

    /// A short stable name, for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadHeader => "bad_header",
            Self::UnknownKey => "unknown_key",
            Self::AuthFailure => "auth_failure",
            Self::Replay => "replay",
            Self::TooOld => "too_old",
            Self::Reflected => "reflected",
            Self::StreamLimit => "stream_limit",
        }
    }
}

impl Error {
    /// The counter a receiver files this rejection under.
    pub fn drop_reason(&self) -> DropReason {
        use sframe::Error as S;
        match self {
            Self::Truncated | Self::Rtp(_) => DropReason::BadHeader,
            Self::UnknownEpoch(_) => DropReason::UnknownKey,
            Self::Replay(ReplayError::Duplicate) => DropReason::Replay,
            Self::Replay(_) => DropReason::TooOld,
            Self::Reflected(_) => DropReason::Reflected,
            Self::StreamLimit(_) => DropReason::StreamLimit,
            Self::Sframe(S::UnknownKid(_) | S::KeyIsSendOnly(_)) => DropReason::UnknownKey,
            Self::Sframe(S::AuthenticationFailed | S::CiphertextTooShort) => {
                DropReason::AuthFailure
            }
            Self::Sframe(_) => DropReason::BadHeader,
        }
    }
}

/// Drop counts by reason: a plain array, one slot per [`DropReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounters([u64; DropReason::ALL.len()]);

impl DropCounters {
    /// Counts one drop.
    pub fn record(&mut self, reason: DropReason) {
        self.0[reason as usize] += 1;
    }

    /// Counts `count` drops for one reason at once.
    pub fn record_many(&mut self, reason: DropReason, count: u64) {
        self.0[reason as usize] += count;
    }

    /// The count for one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason as usize]
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

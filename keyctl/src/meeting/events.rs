//! What a session tells its driver: key handoffs to the dataplane, alerts, departure.

use core::fmt;
use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::time::Millis;
use crate::wire::{ParticipantId, PqPolicy};

/// A 32-byte meeting key `MK`; zeroized on drop, redacted in Debug.
#[derive(Clone, PartialEq, Eq)]
pub struct MeetingKey(Zeroizing<[u8; 32]>);

impl MeetingKey {
    pub(crate) fn new(bytes: &[u8; 32]) -> Self {
        Self(Zeroizing::new(*bytes))
    }

    /// The key bytes, for the dataplane's key schedule.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for MeetingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MeetingKey(<redacted>)")
    }
}

/// The handoff to the dataplane: a meeting key and who it is shared with.
///
/// On receiving it the dataplane installs `meeting_key` under `mk_seq` for decryption at
/// once, and starts sending with it at `activate_at`. It is emitted only once the leader's
/// heartbeat has certified `mk_seq` together with the participant list (v4.6 meetings
/// 3.7.6), so `roster` is exactly who can read what is sent under this key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUpdate {
    /// `mkSeqNum`, the 4-byte prefix of every packet sent under this key.
    pub mk_seq: u32,
    /// `MK`.
    pub meeting_key: MeetingKey,
    /// Sender slot -> sender identity, for every participant present in the LPL that the
    /// heartbeat certified for exactly this `mk_seq`.
    pub roster: BTreeMap<u32, ParticipantId>,
    /// When to start encrypting with this key: about 2 s after it arrived, and not before
    /// the heartbeat that certified it (whitepaper 3.7.6, v4.6).
    pub activate_at: Millis,
}

/// An event for the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A certified meeting key for the dataplane.
    KeyUpdate(KeyUpdate),
    /// Stop decrypting with `mk_seq` at `at` and zeroize it (10 s after a newer key
    /// arrived, v4.6 meetings: liveness). The session drops its copy at that time too.
    RetireEpoch {
        /// The epoch to retire.
        mk_seq: u32,
        /// When.
        at: Millis,
    },
    /// Something the user interface must show.
    Alert(Alert),
    /// The session ended and holds no key material any more (whitepaper 3.7.8).
    Left(LeftReason),
}

/// Security-relevant conditions to surface in the user interface.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Alert {
    /// A participant's binding signature did not verify; their join was aborted
    /// (whitepaper 3.7.4 step 6).
    BadBindingSignature {
        /// Who the announcement claimed to be.
        participant: ParticipantId,
    },
    /// A message bound to another meeting instance was replayed into this one.
    WrongMeeting,
    /// A user was seen leaving this many times, over all of their devices (whitepaper
    /// 3.10: alert at four).
    RepeatedLeaves {
        /// The device whose leave reached the count.
        participant: ParticipantId,
        /// How many leaves by this userID.
        count: u16,
    },
    /// A participant came back with a different IVK, or (revision 5) with another ML-DSA key
    /// than the hybrid identity the list or its held binding records, or none; refused
    /// (whitepaper 3.7.7).
    IvkChanged {
        /// Who.
        participant: ParticipantId,
    },
    /// The leader changed: verify the security code again (whitepaper 3.8).
    VerifySecurityCode {
        /// The new leader.
        leader: ParticipantId,
        /// Their 39-digit security code.
        code: String,
    },
    /// The server named a leader who was not in the previous LPL (whitepaper 3.7.7).
    LeaderNotInPreviousList {
        /// The named leader.
        leader: ParticipantId,
    },
    /// The meeting was unlocked (v4.6 meetings: locked meetings, a prominent warning).
    MeetingUnlocked,
    /// A join was refused: missing, invalid or banned invite.
    InviteRejected {
        /// Who tried.
        participant: ParticipantId,
    },
    /// A join was refused because the meeting is locked.
    RefusedLocked {
        /// Who tried.
        participant: ParticipantId,
    },
    /// A heartbeat does not extend the chain this participant accepted: the meeting may
    /// be partitioned (v4.6 meetings: heartbeats).
    HeartbeatChainMismatch,
    /// An LPL link does not extend the chain this participant holds.
    LplChainMismatch,
    /// A verified heartbeat certified key `mk_seq`, which never arrived: sending stopped
    /// (the older key may be held by someone removed) and the key was asked for again. The
    /// session leaves if it does not come within the heartbeat timeout.
    KeyWithheld {
        /// The certified key.
        mk_seq: u32,
    },
    /// A join by a kicked identity was refused (the host may lift the ban).
    RefusedKicked {
        /// Who tried.
        participant: ParticipantId,
    },
    /// A join was refused because the list says the meeting is invite-only and this leader
    /// does not hold the host's invite secret (it cannot check invites).
    InviteCheckUnavailable {
        /// Who tried.
        participant: ParticipantId,
    },
    /// A join was refused because the meeting is full.
    MeetingFull {
        /// Who tried.
        participant: ParticipantId,
    },
    /// A join was refused because the meeting's policy is post-quantum `required` and the
    /// joiner's binding carries no ML-KEM-768 key (issue 16).
    PqRequired {
        /// Who tried.
        participant: ParticipantId,
    },
    /// A meeting key boxed classically was refused: this participant's binding carries an
    /// ML-KEM-768 key, and the leader's does too (or this participant requires the hybrid),
    /// so the classical box is a downgrade (issue 16).
    ClassicalKeyRefused {
        /// The refused key's `mkSeqNum`.
        mk_seq: u32,
    },
    /// This participant requires post-quantum key delivery and the leader's signed binding
    /// states a weaker policy: its key was refused and the session leaves
    /// ([`LeftReason::WeakPqPolicy`]; issue 16).
    WeakPqPolicy {
        /// The leader.
        leader: ParticipantId,
        /// The policy its binding states.
        policy: PqPolicy,
    },
    /// A classically signed message by a signer whose binding is a hybrid identity was
    /// refused ([`super::MeetingError::SignatureDowngrade`]): its Ed25519 signature is the
    /// signer's, so the board stripped the ML-DSA half (or the signer downgraded; revision
    /// 4, issue 16 part 2).
    ClassicalSignatureRefused {
        /// Whose signature.
        signer: ParticipantId,
    },
}

/// How one member of the certified list gets the meeting key, as this session sees it
/// ([`super::Session::key_delivery`]): from the signed bindings the list's binding hashes
/// name, so a board can neither hide a classical delivery nor invent one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyDelivery {
    /// The leader: it makes the key.
    Leader,
    /// Boxed with the v4.6 hybrid (X25519 + ML-KEM-768): both its binding and the leader's
    /// carry an ML-KEM-768 key.
    Hybrid,
    /// Boxed classically (X25519 only): its binding or the leader's has no ML-KEM-768 key. A
    /// recording quantum adversary that later breaks X25519 recovers the meeting key from
    /// this member's box.
    Classical,
    /// This session has not seen the binding the list certifies for the member.
    Unknown,
}

impl KeyDelivery {
    /// The name used in status output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leader => "leader",
            Self::Hybrid => "hybrid",
            Self::Classical => "classical",
            Self::Unknown => "unknown",
        }
    }
}

/// Why a session ended.
///
/// Exhaustive on purpose (no `#[non_exhaustive]`): the workspace's drivers (libveil's result
/// codes, the sidecar's counters) match every variant, so a new one is a compile error where it
/// must be mapped instead of a silent `_` arm (docs/ARCHITECTURE.md, "Exhaustive errors").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeftReason {
    /// The driver called [`super::Session::leave`].
    Requested,
    /// Ten heartbeat periods passed without a valid heartbeat (whitepaper 3.7.7).
    HeartbeatsMissed,
    /// The leader removed this participant.
    Kicked,
    /// The leader's list records this participant as gone (for example a new leader
    /// could not key it); the driver may rejoin.
    ListedAsLeft,
    /// The server named a leader outside the locked meeting's list (v4.6 locked meetings).
    LeaderNotInLockedList,
    /// A verified heartbeat certified a key that never arrived, also after asking the
    /// leader for it, for the whole heartbeat timeout; the driver may rejoin.
    KeyWithheld,
    /// This participant requires post-quantum key delivery and the leader keyed it under a
    /// weaker policy (its signed binding says `preferred` or `off`): the key was refused and the
    /// session left (issue 16). Rejoining would meet the same leader; the driver stays out.
    WeakPqPolicy,
}

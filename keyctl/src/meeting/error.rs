//! Why a session refused an input.

use thiserror::Error;

use crate::crypto::CryptoError;
use crate::wire::WireError;

/// Why an input was refused. Refusals leave the session's state unchanged; the ones a
/// user must see are also raised as [`super::Alert`]s.
///
/// Exhaustive on purpose (no `#[non_exhaustive]`): the workspace's drivers (libveil's result
/// codes, the sidecar's counters) match every variant, so a new one is a compile error where it
/// must be mapped instead of a silent `_` arm (docs/ARCHITECTURE.md, "Exhaustive errors").
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MeetingError {
    /// The bytes are not a valid message.
    #[error("malformed message: {0}")]
    Wire(#[from] WireError),
    /// A primitive failed (bad box, random source, low-order key).
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// The configured timings break a bound of the protocol ([`super::Timings::validate`]).
    #[error("timings outside the protocol's bounds")]
    InvalidTimings,
    /// The session has ended.
    #[error("session has ended")]
    Ended,
    /// A leader command on a session that does not lead.
    #[error("not the leader")]
    NotLeader,
    /// The message belongs to another meeting instance.
    #[error("message is for another meeting")]
    WrongMeeting,
    /// A signature did not verify.
    #[error("bad signature")]
    BadSignature,
    /// A rekey whose `mkSeqNum` is not above the highest seen (whitepaper 3.7.6: ignored).
    #[error("stale key {mk_seq}, already have {highest}")]
    StaleKey {
        /// The rekey's sequence number.
        mk_seq: u32,
        /// The highest held.
        highest: u32,
    },
    /// A rekey answering none of this participant's two latest liveness nonces.
    #[error("rekey does not carry a recent liveness nonce")]
    StaleNonce,
    /// The rekey's sealed sequence number differs from its envelope's.
    #[error("rekey sequence number mismatch")]
    SeqMismatch,
    /// The leader's announcement has not been seen, so its messages cannot be checked.
    #[error("leader binding unknown")]
    UnknownLeader,
    /// A message from or about a participant this session does not know.
    #[error("unknown participant")]
    UnknownParticipant,
    /// A heartbeat does not extend the accepted chain, or certifies another LPL.
    #[error("heartbeat does not extend the chain")]
    HeartbeatChain,
    /// A heartbeat's counter or timestamp did not increase.
    #[error("heartbeat out of order")]
    HeartbeatOrder,
    /// A heartbeat certifies an LPL state this participant does not hold (a link is
    /// missing or was withheld).
    #[error("heartbeat certifies an unknown LPL state")]
    HeartbeatLpl,
    /// An LPL link does not extend the held chain.
    #[error("LPL link does not extend the chain")]
    LplChain,
    /// An announcement tried to replace the current leader's binding.
    #[error("announcement replaces the current leader's binding")]
    LeaderBindingChanged,
    /// A lock request from someone the server does not list as a present co-host.
    #[error("lock request from a non-co-host")]
    NotCohost,
    /// A lock request signed over an LPL head that is no longer the latest; the co-host
    /// asks again.
    #[error("lock request over an outdated LPL head")]
    StaleLockRequest,
    /// An LPL link or announcement changes the identity of a known participant: its IVK, or
    /// (revision 5) the ML-DSA key of a hybrid one, which the list records as `ml_dsa_id`.
    #[error("LPL link changes a participant's IVK")]
    IvkChanged,
    /// A rekey older than the newest key a verified heartbeat certified: superseded, never
    /// handed to the dataplane (a removed member may hold it).
    #[error("key {mk_seq} is superseded by certified key {certified}")]
    SupersededKey {
        /// The rekey's sequence number.
        mk_seq: u32,
        /// The newest certified one.
        certified: u32,
    },
    /// An LPL link breaks the list's continuity (whitepaper 3.7.7): it re-adds a present
    /// or kicked member, reuses a slot, removes someone not present, or a snapshot changes
    /// the list it coalesces or leaves out the leader that signed it.
    #[error("LPL link breaks the list's continuity")]
    LplContinuity,
    /// The meeting holds as many participants (or list entries, or slots) as it may.
    #[error("meeting is full")]
    MeetingFull,
    /// Too many announced participants are waiting for admission.
    #[error("too many pending participants")]
    TooManyPending,
    /// A join by a kicked identity (its participant ID or its IVK) while the ban stands.
    #[error("participant was kicked from this meeting")]
    Banned,
    /// A join by someone outside the locked meeting's list (v4.6 locked meetings).
    #[error("meeting is locked")]
    Locked,
    /// A join without a valid, unbanned invite in an invite-only meeting.
    #[error("invite missing, invalid or banned")]
    InviteRejected,
    /// A key request from someone the leader does not key.
    #[error("key request from a non-member")]
    NotMember,
    /// A member asked for a key again sooner than the leader answers.
    #[error("key request too soon after the last one")]
    KeyRequestTooSoon,
    /// A join without an ML-KEM-768 key in a meeting whose policy is post-quantum
    /// `required` (issue 16).
    #[error("post-quantum key required")]
    PqRequired,
    /// A classically boxed key for a participant whose binding carries an ML-KEM-768 key,
    /// from a leader whose binding does too (or when this participant requires the hybrid):
    /// a downgrade, refused with its contents dropped (issue 16).
    #[error("classical box refused: downgrade from the hybrid")]
    Downgrade,
    /// A key from a leader whose binding states a weaker post-quantum policy than this
    /// participant requires (issue 16).
    #[error("leader's post-quantum policy is weaker than required")]
    WeakPqPolicy,
    /// A classically signed message (binding, list link, heartbeat, nonce, lock or key
    /// request) from a signer whose binding is a hybrid identity (kind 0x0B), signed by its
    /// Ed25519 key: the ML-DSA half was stripped, or the signer downgraded; refused
    /// (revision 4, issue 16 part 2).
    #[error("classical signature from a hybrid identity refused")]
    SignatureDowngrade,
}

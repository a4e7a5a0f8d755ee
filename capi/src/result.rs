//! `veil_result`: the status every fallible call returns, and how Rust errors map onto it.

use core::ffi::c_char;

use dataplane::keyring::{HandoffError, KeyringError, SealError};
use dataplane::packet;
use dataplane::replay::ReplayError;
use dataplane::sframe;
use keyctl::meeting::MeetingError;

/// The status of a libveil call. `VEIL_RESULT_OK` is 0; every other value names one reason
/// for refusing the call, and `veil_result_str` gives a short English text for it.
///
/// The values are stable: new reasons get new numbers, existing ones never change.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum veil_result {
    /// Success.
    Ok = 0,
    /// Rust code inside libveil panicked; the call had no effect that can be relied on and
    /// the object it was given should be freed.
    Panic = 1,
    /// A required pointer argument was NULL (or a buffer pointer was NULL with a non-zero length).
    NullPointer = 2,
    /// An argument is outside its documented range (a mode, a length, a duplicate roster slot).
    InvalidArgument = 3,
    /// The output buffer is too small. Where the function has a length out-parameter, the
    /// needed size was written to it.
    BufferTooSmall = 4,
    /// Nothing to return: no queued message or event, no timeout, no security code yet.
    Empty = 5,
    /// The SFrame cipher suite is not one libveil implements.
    UnsupportedSuite = 6,
    /// No key for this KID or mkSeqNum.
    UnknownKey = 7,
    /// A key is already installed under this KID.
    DuplicateKey = 8,
    /// The key under this KID is for the other direction (RFC 9605 4.4.1).
    WrongKeyDirection = 9,
    /// The key's counters are used up; install a fresh key.
    CounterExhausted = 10,
    /// A frame or packet is malformed: truncated, a bad RTP header, a non-minimal SFrame header.
    Malformed = 11,
    /// The authentication tag did not verify.
    AuthenticationFailed = 12,
    /// The packet's counter was already received.
    Replay = 13,
    /// The packet's counter is behind the replay window.
    TooOld = 14,
    /// No key epoch sends yet (none installed, or none activated at this time).
    NoSendKey = 15,
    /// This device's sender slot is not in the sending epoch's roster.
    NotInRoster = 16,
    /// A key epoch's mkSeqNum must be newer than every one installed before.
    KeyNotNewer = 17,
    /// The call is not allowed in the object's current state.
    WrongState = 18,
    /// The session has ended and holds no keys.
    SessionEnded = 19,
    /// The session's role does not allow this (for example a leader command on a participant).
    NotPermitted = 20,
    /// A board message's signature did not verify.
    BadSignature = 21,
    /// A board message belongs to another meeting instance.
    WrongMeeting = 22,
    /// A board message is out of date (an old key, nonce, heartbeat or lock request).
    Stale = 23,
    /// A board message from or about a participant whose announcement was not seen.
    UnknownParticipant = 24,
    /// A board message does not extend the heartbeat or participant-list chain held.
    ChainMismatch = 25,
    /// The bytes are not a valid board message.
    MalformedMessage = 26,
    /// The crypto backend or the operating system's random source failed.
    Crypto = 27,
    /// An error this version of libveil has no code for.
    Unexpected = 28,
}

impl veil_result {
    /// A short English description, NUL-terminated, static.
    pub(crate) fn as_cstr(self) -> &'static core::ffi::CStr {
        match self {
            Self::Ok => c"success",
            Self::Panic => c"internal panic in libveil",
            Self::NullPointer => c"a required pointer was NULL",
            Self::InvalidArgument => c"an argument is out of range",
            Self::BufferTooSmall => c"output buffer too small",
            Self::Empty => c"nothing to return",
            Self::UnsupportedSuite => c"unsupported SFrame cipher suite",
            Self::UnknownKey => c"no key for this KID or mkSeqNum",
            Self::DuplicateKey => c"a key is already installed under this KID",
            Self::WrongKeyDirection => c"the key is for the other direction",
            Self::CounterExhausted => c"the key's counters are exhausted",
            Self::Malformed => c"malformed frame or packet",
            Self::AuthenticationFailed => c"authentication failed",
            Self::Replay => c"replayed packet",
            Self::TooOld => c"packet too old for the replay window",
            Self::NoSendKey => c"no key epoch is active for sending",
            Self::NotInRoster => c"own sender slot is not in the roster",
            Self::KeyNotNewer => c"mkSeqNum is not newer than the installed keys",
            Self::WrongState => c"not allowed in the current state",
            Self::SessionEnded => c"the session has ended",
            Self::NotPermitted => c"not permitted in this role",
            Self::BadSignature => c"bad signature",
            Self::WrongMeeting => c"message is for another meeting",
            Self::Stale => c"stale message",
            Self::UnknownParticipant => c"unknown participant",
            Self::ChainMismatch => c"message does not extend the chain held",
            Self::MalformedMessage => c"malformed board message",
            Self::Crypto => c"crypto backend or random source failure",
            Self::Unexpected => c"unexpected error",
        }
    }
}

impl veil_result {
    /// Every code, in numeric order.
    const ALL: [veil_result; 29] = [
        Self::Ok,
        Self::Panic,
        Self::NullPointer,
        Self::InvalidArgument,
        Self::BufferTooSmall,
        Self::Empty,
        Self::UnsupportedSuite,
        Self::UnknownKey,
        Self::DuplicateKey,
        Self::WrongKeyDirection,
        Self::CounterExhausted,
        Self::Malformed,
        Self::AuthenticationFailed,
        Self::Replay,
        Self::TooOld,
        Self::NoSendKey,
        Self::NotInRoster,
        Self::KeyNotNewer,
        Self::WrongState,
        Self::SessionEnded,
        Self::NotPermitted,
        Self::BadSignature,
        Self::WrongMeeting,
        Self::Stale,
        Self::UnknownParticipant,
        Self::ChainMismatch,
        Self::MalformedMessage,
        Self::Crypto,
        Self::Unexpected,
    ];
}

/// A static, NUL-terminated English description of a `veil_result` value. Never NULL (a
/// value no version of libveil defines gets "unknown result code"); the string must not be
/// freed. Takes the code as an integer so that any value a C caller holds is safe to pass.
#[unsafe(no_mangle)]
pub extern "C" fn veil_result_str(result: u32) -> *const c_char {
    let text = veil_result::ALL
        .iter()
        .find(|code| **code as u32 == result)
        .map_or(c"unknown result code", |code| code.as_cstr());
    text.as_ptr()
}

impl From<sframe::Error> for veil_result {
    fn from(e: sframe::Error) -> Self {
        use sframe::Error as E;
        match e {
            E::Truncated | E::NonMinimalKid | E::NonMinimalCtr | E::CiphertextTooShort => {
                Self::Malformed
            }
            E::UnsupportedSuite(_) => Self::UnsupportedSuite,
            E::UnknownKid(_) => Self::UnknownKey,
            E::DuplicateKid(_) => Self::DuplicateKey,
            E::KeyIsSendOnly(_) | E::KeyIsReceiveOnly(_) => Self::WrongKeyDirection,
            E::CounterExhausted(_) => Self::CounterExhausted,
            E::AuthenticationFailed => Self::AuthenticationFailed,
            E::BufferTooSmall { .. } | E::HeadroomTooSmall { .. } => Self::BufferTooSmall,
            E::Crypto => Self::Crypto,
        }
    }
}

impl From<packet::Error> for veil_result {
    fn from(e: packet::Error) -> Self {
        use packet::Error as E;
        match e {
            E::Truncated | E::Rtp(_) => Self::Malformed,
            E::Sframe(e) => e.into(),
            E::UnknownEpoch(_) => Self::UnknownKey,
            E::Replay(ReplayError::Duplicate) => Self::Replay,
            E::Replay(_) => Self::TooOld,
            // RFC 9605 4.4.1: the KID holds this device's send key.
            E::Reflected(_) => Self::WrongKeyDirection,
            // The receiver keeps no key for it.
            E::StreamLimit(_) => Self::UnknownKey,
        }
    }
}

impl From<SealError> for veil_result {
    fn from(e: SealError) -> Self {
        match e {
            SealError::NoSendEpoch => Self::NoSendKey,
            SealError::NotInRoster(_) => Self::NotInRoster,
            SealError::CountersExhausted => Self::CounterExhausted,
            SealError::SlotOutOfRange(_) => Self::NotInRoster,
            SealError::DatagramStream(_) => Self::InvalidArgument,
            SealError::StreamKey(_) => Self::Crypto,
            SealError::Packet(e) => e.into(),
        }
    }
}

impl From<KeyringError> for veil_result {
    fn from(e: KeyringError) -> Self {
        match e {
            KeyringError::NotNewer { .. } => Self::KeyNotNewer,
            KeyringError::SlotOutOfRange(_) => Self::InvalidArgument,
            KeyringError::Random => Self::Crypto,
        }
    }
}

impl From<HandoffError> for veil_result {
    fn from(e: HandoffError) -> Self {
        match e {
            HandoffError::WrongMeeting { .. } => Self::WrongMeeting,
            // A roster naming this participant twice is an argument out of its range.
            HandoffError::NamedTwice { .. } => Self::InvalidArgument,
            HandoffError::Keyring(e) => e.into(),
        }
    }
}

impl From<MeetingError> for veil_result {
    fn from(e: MeetingError) -> Self {
        use MeetingError as E;
        match e {
            E::Wire(_) => Self::MalformedMessage,
            E::Crypto(_) => Self::Crypto,
            E::InvalidTimings => Self::InvalidArgument,
            E::Ended => Self::SessionEnded,
            E::NotLeader | E::NotCohost => Self::NotPermitted,
            E::WrongMeeting => Self::WrongMeeting,
            E::BadSignature => Self::BadSignature,
            E::StaleKey { .. }
            | E::SupersededKey { .. }
            | E::StaleNonce
            | E::HeartbeatOrder
            | E::StaleLockRequest => Self::Stale,
            // The leader refused a join or a key request by the meeting's rules (bans, lock,
            // invites, caps, pacing): not permitted, whatever the caller's role.
            E::Banned
            | E::Locked
            | E::InviteRejected
            | E::MeetingFull
            | E::TooManyPending
            | E::NotMember
            | E::KeyRequestTooSoon => Self::NotPermitted,
            // Issue 16: refusals by the post-quantum policy, the meeting's (a join without an
            // ML-KEM key) or this participant's (a classical box where the hybrid was
            // possible, a leader weaker than required); the alert event says which.
            E::PqRequired | E::Downgrade | E::WeakPqPolicy | E::SignatureDowngrade => {
                Self::NotPermitted
            }
            E::UnknownLeader | E::UnknownParticipant => Self::UnknownParticipant,
            E::SeqMismatch
            | E::HeartbeatChain
            | E::HeartbeatLpl
            | E::LplChain
            | E::LeaderBindingChanged
            | E::IvkChanged
            | E::LplContinuity => Self::ChainMismatch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_code_at_its_own_value() {
        for (i, code) in veil_result::ALL.iter().enumerate() {
            assert_eq!(*code as usize, i);
        }
        let unknown = veil_result_str(veil_result::ALL.len() as u32);
        // SAFETY: veil_result_str returns a static NUL-terminated string.
        let text = unsafe { core::ffi::CStr::from_ptr(unknown) };
        assert_eq!(text, c"unknown result code");
    }

    #[test]
    fn the_leaders_refusals_have_codes_of_their_own_not_unexpected() {
        use MeetingError as E;
        for (error, code) in [
            (E::Banned, veil_result::NotPermitted),
            (E::Locked, veil_result::NotPermitted),
            (E::InviteRejected, veil_result::NotPermitted),
            (E::MeetingFull, veil_result::NotPermitted),
            (E::TooManyPending, veil_result::NotPermitted),
            (E::NotMember, veil_result::NotPermitted),
            (E::KeyRequestTooSoon, veil_result::NotPermitted),
            (E::PqRequired, veil_result::NotPermitted),
            (E::Downgrade, veil_result::NotPermitted),
            (E::WeakPqPolicy, veil_result::NotPermitted),
            (E::SignatureDowngrade, veil_result::NotPermitted),
            (E::LplContinuity, veil_result::ChainMismatch),
            (
                E::SupersededKey {
                    mk_seq: 1,
                    certified: 2,
                },
                veil_result::Stale,
            ),
        ] {
            assert_eq!(veil_result::from(error), code);
        }
    }

    /// A linked session's key refused by the handoff reports why in `protector_result`, with
    /// the codes the header already has.
    #[test]
    fn handoff_refusals_map_to_existing_codes() {
        let cases = [
            (
                HandoffError::WrongMeeting { mk_seq: 1 },
                veil_result::WrongMeeting,
            ),
            (
                HandoffError::NamedTwice {
                    mk_seq: 1,
                    first: 1,
                    second: 2,
                },
                veil_result::InvalidArgument,
            ),
            (
                HandoffError::Keyring(KeyringError::NotNewer {
                    mk_seq: 1,
                    newest: 1,
                }),
                veil_result::KeyNotNewer,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(veil_result::from(error), code);
        }
    }
}

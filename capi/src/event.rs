//! `veil_event`: what a session reports to its driver, flattened into one C struct.

use core::ffi::c_char;

use keyctl::meeting::{Alert, LeftReason};
use keyctl::wire::ParticipantId;

use crate::result::veil_result;

/// A certified meeting key arrived (`mk_seq`, `at_ms` = when sending switches to it,
/// `roster_len`, `own_slot`, `protector_result`).
pub const VEIL_EVENT_KEY_UPDATE: u32 = 1;
/// The epoch `mk_seq` stops decrypting at `at_ms` (`protector_result`).
pub const VEIL_EVENT_RETIRE: u32 = 2;
/// Something the user must see (`alert`, `text`).
pub const VEIL_EVENT_ALERT: u32 = 3;
/// The session ended and holds no keys (`left_reason`); a linked protector's keys were
/// retired at the same time.
pub const VEIL_EVENT_LEFT: u32 = 4;

/// An alert this version of libveil has no code for; `text` describes it.
pub const VEIL_ALERT_OTHER: u32 = 0;
/// A participant's binding signature did not verify; their join was aborted (whitepaper 3.7.4).
pub const VEIL_ALERT_BAD_BINDING_SIGNATURE: u32 = 1;
/// A message bound to another meeting instance was replayed into this one.
pub const VEIL_ALERT_WRONG_MEETING: u32 = 2;
/// A user left repeatedly (whitepaper 3.10).
pub const VEIL_ALERT_REPEATED_LEAVES: u32 = 3;
/// A participant came back with a different identity key; refused (whitepaper 3.7.7).
pub const VEIL_ALERT_IVK_CHANGED: u32 = 4;
/// The leader changed: verify the security code again (whitepaper 3.8); `text` holds it.
pub const VEIL_ALERT_VERIFY_SECURITY_CODE: u32 = 5;
/// The server named a leader who was not in the previous participant list.
pub const VEIL_ALERT_LEADER_NOT_IN_PREVIOUS_LIST: u32 = 6;
/// The meeting was unlocked.
pub const VEIL_ALERT_MEETING_UNLOCKED: u32 = 7;
/// A join was refused: missing, invalid or banned invite.
pub const VEIL_ALERT_INVITE_REJECTED: u32 = 8;
/// A join was refused because the meeting is locked.
pub const VEIL_ALERT_REFUSED_LOCKED: u32 = 9;
/// A heartbeat does not extend the accepted chain: the meeting may be partitioned.
pub const VEIL_ALERT_HEARTBEAT_CHAIN_MISMATCH: u32 = 10;
/// A participant-list link does not extend the chain held.
pub const VEIL_ALERT_LPL_CHAIN_MISMATCH: u32 = 11;
/// A verified heartbeat certified a key that never arrived: sending stopped and the key was
/// asked for again; the session leaves if it does not come.
pub const VEIL_ALERT_KEY_WITHHELD: u32 = 12;
/// A join by a kicked identity was refused.
pub const VEIL_ALERT_REFUSED_KICKED: u32 = 13;
/// A join was refused because the meeting is full.
pub const VEIL_ALERT_MEETING_FULL: u32 = 14;
/// A join was refused: the meeting is invite-only and this leader cannot check invites.
pub const VEIL_ALERT_INVITE_CHECK_UNAVAILABLE: u32 = 15;
/// A join was refused: the meeting's post-quantum policy is `required` and the joiner has no
/// ML-KEM-768 key.
pub const VEIL_ALERT_PQ_REQUIRED: u32 = 16;
/// A classically boxed meeting key was refused as a downgrade: this participant and the
/// leader both have ML-KEM-768 keys (or this participant requires the hybrid box).
pub const VEIL_ALERT_CLASSICAL_KEY_REFUSED: u32 = 17;
/// This participant requires post-quantum key delivery and the leader's policy is weaker: its
/// keys are refused (`text` names the policy).
pub const VEIL_ALERT_WEAK_PQ_POLICY: u32 = 18;

/// A reason this version of libveil has no code for.
pub const VEIL_LEFT_OTHER: u32 = 0;
/// The driver called `veil_session_leave`.
pub const VEIL_LEFT_REQUESTED: u32 = 1;
/// Ten heartbeat periods passed without a valid heartbeat (whitepaper 3.7.7).
pub const VEIL_LEFT_HEARTBEATS_MISSED: u32 = 2;
/// The leader removed this participant.
pub const VEIL_LEFT_KICKED: u32 = 3;
/// The leader's list records this participant as gone; the driver may rejoin.
pub const VEIL_LEFT_LISTED_AS_LEFT: u32 = 4;
/// The server named a leader outside the locked meeting's list.
pub const VEIL_LEFT_LEADER_NOT_IN_LOCKED_LIST: u32 = 5;
/// A certified key never arrived, also after asking the leader, for the heartbeat timeout.
pub const VEIL_LEFT_KEY_WITHHELD: u32 = 6;
/// This participant requires post-quantum key delivery (`VEIL_PQ_REQUIRED`) and the leader
/// keyed it under a weaker policy: the key was refused. Rejoining meets the same leader.
pub const VEIL_LEFT_WEAK_PQ_POLICY: u32 = 7;

/// Size of `veil_event.text`, NUL included.
pub const VEIL_EVENT_TEXT_SIZE: usize = 512;

/// One event from `veil_session_poll_event`. Fields not listed for the event's `kind` are 0.
/// The meeting key itself never leaves libveil: link a protector
/// (`veil_session_link_protector`) to use it.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy)]
pub struct veil_event {
    /// `VEIL_EVENT_KEY_UPDATE`, `_RETIRE`, `_ALERT` or `_LEFT`.
    pub kind: u32,
    /// KEY_UPDATE, RETIRE: the epoch's mkSeqNum.
    pub mk_seq: u32,
    /// KEY_UPDATE: when sending switches to the key; RETIRE: when it stops decrypting (ms).
    pub at_ms: u64,
    /// KEY_UPDATE: how many senders the key was certified for.
    pub roster_len: u32,
    /// KEY_UPDATE: this participant's sender slot in the roster, or `VEIL_SLOT_UNSET`.
    pub own_slot: u32,
    /// KEY_UPDATE, RETIRE, LEFT: `VEIL_RESULT_OK` if applied to the linked protector,
    /// `VEIL_RESULT_EMPTY` if none is linked, otherwise why applying it failed.
    pub protector_result: veil_result,
    /// ALERT: a `VEIL_ALERT_*` code.
    pub alert: u32,
    /// LEFT: a `VEIL_LEFT_*` code.
    pub left_reason: u32,
    /// ALERT: a NUL-terminated English description (server-assigned IDs escaped, truncated
    /// to fit). Empty for the other kinds.
    pub text: [c_char; VEIL_EVENT_TEXT_SIZE],
}

impl veil_event {
    /// An event of `kind` with every other field zero.
    pub(crate) fn new(kind: u32) -> Self {
        Self {
            kind,
            mk_seq: 0,
            at_ms: 0,
            roster_len: 0,
            own_slot: 0,
            protector_result: veil_result::Empty,
            alert: 0,
            left_reason: 0,
            text: [0; VEIL_EVENT_TEXT_SIZE],
        }
    }

    /// An ALERT event.
    pub(crate) fn alert(alert: &Alert) -> Self {
        let mut event = Self::new(VEIL_EVENT_ALERT);
        let (code, text) = describe(alert);
        event.alert = code;
        event.set_text(&text);
        event
    }

    /// A LEFT event.
    pub(crate) fn left(reason: LeftReason) -> Self {
        let mut event = Self::new(VEIL_EVENT_LEFT);
        event.left_reason = match reason {
            LeftReason::Requested => VEIL_LEFT_REQUESTED,
            LeftReason::HeartbeatsMissed => VEIL_LEFT_HEARTBEATS_MISSED,
            LeftReason::Kicked => VEIL_LEFT_KICKED,
            LeftReason::ListedAsLeft => VEIL_LEFT_LISTED_AS_LEFT,
            LeftReason::LeaderNotInLockedList => VEIL_LEFT_LEADER_NOT_IN_LOCKED_LIST,
            LeftReason::KeyWithheld => VEIL_LEFT_KEY_WITHHELD,
            LeftReason::WeakPqPolicy => VEIL_LEFT_WEAK_PQ_POLICY,
        };
        event
    }

    /// Copies `text` in, cut at a character boundary so it stays valid UTF-8, NUL-terminated.
    fn set_text(&mut self, text: &str) {
        let mut end = text.len().min(VEIL_EVENT_TEXT_SIZE - 1);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        for (slot, byte) in self.text.iter_mut().zip(&text.as_bytes()[..end]) {
            *slot = *byte as c_char;
        }
        self.text[end] = 0;
    }
}

/// A participant as text: server-assigned bytes, so escaped (no control characters reach a
/// log or a UI through here).
fn who(p: &ParticipantId) -> String {
    let part = |bytes: &[u8]| String::from_utf8_lossy(bytes).escape_debug().to_string();
    format!("{}/{}", part(p.user.as_bytes()), part(p.device.as_bytes()))
}

fn describe(alert: &Alert) -> (u32, String) {
    match alert {
        Alert::BadBindingSignature { participant } => (
            VEIL_ALERT_BAD_BINDING_SIGNATURE,
            format!(
                "bad binding signature from {}: join aborted",
                who(participant)
            ),
        ),
        Alert::WrongMeeting => (
            VEIL_ALERT_WRONG_MEETING,
            "a message for another meeting instance was replayed into this one".into(),
        ),
        Alert::RepeatedLeaves { participant, count } => (
            VEIL_ALERT_REPEATED_LEAVES,
            format!("{} has left {count} times", who(participant)),
        ),
        Alert::IvkChanged { participant } => (
            VEIL_ALERT_IVK_CHANGED,
            format!(
                "{} came back with another identity key: refused",
                who(participant)
            ),
        ),
        Alert::VerifySecurityCode { leader, code } => (
            VEIL_ALERT_VERIFY_SECURITY_CODE,
            format!("leader is now {}: verify security code {code}", who(leader)),
        ),
        Alert::LeaderNotInPreviousList { leader } => (
            VEIL_ALERT_LEADER_NOT_IN_PREVIOUS_LIST,
            format!(
                "leader {} was not in the previous participant list",
                who(leader)
            ),
        ),
        Alert::MeetingUnlocked => (
            VEIL_ALERT_MEETING_UNLOCKED,
            "the meeting was unlocked".into(),
        ),
        Alert::InviteRejected { participant } => (
            VEIL_ALERT_INVITE_REJECTED,
            format!(
                "join of {} refused: invite missing, invalid or banned",
                who(participant)
            ),
        ),
        Alert::RefusedLocked { participant } => (
            VEIL_ALERT_REFUSED_LOCKED,
            format!(
                "join of {} refused: the meeting is locked",
                who(participant)
            ),
        ),
        Alert::HeartbeatChainMismatch => (
            VEIL_ALERT_HEARTBEAT_CHAIN_MISMATCH,
            "a heartbeat does not extend the accepted chain: the meeting may be partitioned".into(),
        ),
        Alert::LplChainMismatch => (
            VEIL_ALERT_LPL_CHAIN_MISMATCH,
            "a participant list link does not extend the chain held".into(),
        ),
        Alert::KeyWithheld { mk_seq } => (
            VEIL_ALERT_KEY_WITHHELD,
            format!("key {mk_seq} was certified but never arrived: sending stopped, asked again"),
        ),
        Alert::RefusedKicked { participant } => (
            VEIL_ALERT_REFUSED_KICKED,
            format!(
                "join of {} refused: kicked from this meeting",
                who(participant)
            ),
        ),
        Alert::InviteCheckUnavailable { participant } => (
            VEIL_ALERT_INVITE_CHECK_UNAVAILABLE,
            format!(
                "join of {} refused: invite-only meeting, and this leader cannot check invites",
                who(participant)
            ),
        ),
        Alert::MeetingFull { participant } => (
            VEIL_ALERT_MEETING_FULL,
            format!("join of {} refused: the meeting is full", who(participant)),
        ),
        Alert::PqRequired { participant } => (
            VEIL_ALERT_PQ_REQUIRED,
            format!(
                "join of {} refused: post-quantum key delivery required and it has no ML-KEM key",
                who(participant)
            ),
        ),
        Alert::ClassicalKeyRefused { mk_seq } => (
            VEIL_ALERT_CLASSICAL_KEY_REFUSED,
            format!("key {mk_seq} came in a classical box where the hybrid was due: refused"),
        ),
        Alert::WeakPqPolicy { leader, policy } => (
            VEIL_ALERT_WEAK_PQ_POLICY,
            format!(
                "leader {} has post-quantum policy {}, weaker than required: its keys are refused",
                who(leader),
                policy.as_str()
            ),
        ),
        other => (VEIL_ALERT_OTHER, format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn text_is_cut_at_a_character_boundary_and_terminated() {
        let mut event = veil_event::new(VEIL_EVENT_ALERT);
        let long = "é".repeat(VEIL_EVENT_TEXT_SIZE);
        event.set_text(&long);
        let bytes: Vec<u8> = event.text.iter().map(|&c| c as u8).collect();
        let nul = bytes.iter().position(|&b| b == 0).unwrap();
        assert_eq!(nul, VEIL_EVENT_TEXT_SIZE - 2);
        assert!(core::str::from_utf8(&bytes[..nul]).is_ok());
    }

    #[test]
    fn server_bytes_are_escaped() {
        let p = ParticipantId::new(b"ev\nil\x1b", b"d").unwrap();
        assert_eq!(who(&p), "ev\\nil\\u{1b}/d");
    }
}

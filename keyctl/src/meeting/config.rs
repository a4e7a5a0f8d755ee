//! What a session is told when it starts, and its timing constants.

use super::error::MeetingError;
use super::invite::{Invite, InviteSecret};
use super::limits::MAX_PARTICIPANTS;
use crate::wire::{Id, MeetingRef, ParticipantId, PqPolicy};

/// Timing rules of the protocol, in milliseconds. The defaults are the whitepaper's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// Wait after receiving a key before sending with it (whitepaper 3.7.6: "about 2 seconds").
    pub activation_delay_ms: u64,
    /// An older key stops decrypting this long after a newer one arrives (v4.6 meetings:
    /// liveness, 10 s).
    pub retire_after_ms: u64,
    /// The leader's heartbeat period (whitepaper 3.7.7: at least every 10 s).
    pub heartbeat_interval_ms: u64,
    /// Participants leave after this many heartbeat periods without a valid heartbeat
    /// (whitepaper 3.7.7: ten).
    pub missed_heartbeats: u32,
    /// The leader rotates the key at least this often (v4.6 meetings: five minutes).
    pub rotation_interval_ms: u64,
    /// Joins arriving within this window share one rekey (v4.6 meetings 3.7.6).
    pub join_batch_ms: u64,
    /// Delay of the rekey after a leave; at most 10 s (v4.6 meetings 3.7.6).
    pub leave_rekey_ms: u64,
    /// How often a participant posts a fresh liveness nonce (v4.6 footnote: about
    /// 3 minutes for meetings of up to 10).
    pub nonce_interval_ms: u64,
    /// The leader coalesces the LPL once it has more links than this (whitepaper 3.7.7: 20).
    pub max_links: usize,
    /// Leaves by one user at which the leader raises an alert (whitepaper 3.10: four).
    pub leave_alert_threshold: u16,
    /// Most participants present at once; the leader refuses further joins with
    /// [`super::Alert::MeetingFull`], and keeps at most four times as many list entries
    /// (present, left and kicked). At most [`super::MAX_PARTICIPANTS`], the default.
    pub max_participants: usize,
}

impl Timings {
    /// Checks the bounds the protocol requires: heartbeats at least every 10 s and leave
    /// rekeys within 10 s (whitepaper 3.7.7, v4.6 3.7.6), rotation at least every five
    /// minutes (v4.6), at least one missed heartbeat and one link before coalescing.
    pub fn validate(&self) -> Result<(), MeetingError> {
        let ok = (1..=10_000).contains(&self.heartbeat_interval_ms)
            && self.leave_rekey_ms <= 10_000
            && (1..=5 * 60_000).contains(&self.rotation_interval_ms)
            && self.missed_heartbeats >= 1
            && self.max_links >= 1
            && self.nonce_interval_ms >= 1
            && (1..=MAX_PARTICIPANTS).contains(&self.max_participants);
        if ok {
            Ok(())
        } else {
            Err(MeetingError::InvalidTimings)
        }
    }
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            activation_delay_ms: 2_000,
            retire_after_ms: 10_000,
            heartbeat_interval_ms: 10_000,
            missed_heartbeats: 10,
            rotation_interval_ms: 5 * 60_000,
            join_batch_ms: 1_000,
            leave_rekey_ms: 1_000,
            nonce_interval_ms: 3 * 60_000,
            max_links: 20,
            leave_alert_threshold: 4,
            max_participants: MAX_PARTICIPANTS,
        }
    }
}

/// What the server tells a participant when it joins, and local settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The meeting instance (meetingID, meetingUUID).
    pub meeting: MeetingRef,
    /// This participant (userID, deviceID).
    pub me: ParticipantId,
    /// The display name to announce.
    pub display_name: Id,
    /// The leader the server names; if it is `me`, the session starts as leader.
    pub leader: ParticipantId,
    /// This participant's invite, when the host handed one out; it never leaves the
    /// session (the announcement carries a proof bound to the binding).
    pub invite: Option<Invite>,
    /// The host's meeting secret: when set and this session leads, only participants
    /// with a valid, unbanned invite ID are admitted.
    pub host_secret: Option<InviteSecret>,
    /// Timing rules.
    pub timings: Timings,
    /// Post-quantum key delivery (v4.6 hybrid box, issue 16): unless `Off`, the session
    /// makes an ML-KEM-768 key and its binding carries it. As leader this is the meeting's
    /// policy; as participant, `Required` takes keys only from a `Required` leader.
    pub pq: PqPolicy,
}

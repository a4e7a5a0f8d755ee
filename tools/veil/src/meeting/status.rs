//! The participant's status snapshot, as the sidecar's admin endpoint serves it.

use keyctl::meeting::{RosterView, Session};
use keyctl::wire::{MemberState, ParticipantId};
use serde::Serialize;

use veil_board::client::Welcome;

/// One sender slot of the leader participant list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RosterEntry {
    /// The sender slot (the dataplane's KID is `slot << 48 | instance << 8 | stream`).
    pub slot: u32,
    /// The participant, as `user#device`.
    pub participant: String,
    /// The display name the LPL records.
    pub name: String,
    /// `present`, `left` or `kicked`.
    pub state: String,
}

/// A cheap copy of what a participant knows; holds no key.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ParticipantStatus {
    /// This participant, as `user#device`.
    pub me: String,
    /// The meeting instance, as `meetingID/meetingUUID`.
    pub meeting: String,
    /// The current leader.
    pub leader: String,
    /// Whether this participant leads.
    pub is_leader: bool,
    /// The leader's 39-digit security code, once its binding is known (whitepaper 3.8).
    pub security_code: Option<String>,
    /// The LPL's participant list.
    pub roster: Vec<RosterEntry>,
    /// Whether the LPL says the meeting is locked.
    pub locked: bool,
    /// The highest `mkSeqNum` held.
    pub mk_seq: u32,
    /// Joins the board announced.
    pub joins: u64,
    /// Leaves the board announced.
    pub leaves: u64,
    /// Key updates received (rotations, the first key included).
    pub rotations: u64,
    /// Alerts raised, newest last.
    pub alerts: Vec<String>,
    /// Board messages keyctl refused (untrusted input; counted, not fatal).
    pub refused_messages: u64,
    /// Why the session ended, once it has.
    pub ended: Option<String>,
}

/// A participant ID as text: `user#device`, lossy where not UTF-8.
pub fn display(p: &ParticipantId) -> String {
    format!(
        "{}#{}",
        String::from_utf8_lossy(p.user.as_bytes()),
        String::from_utf8_lossy(p.device.as_bytes())
    )
}

fn state_name(s: MemberState) -> &'static str {
    match s {
        MemberState::Present => "present",
        MemberState::Left => "left",
        MemberState::Kicked => "kicked",
    }
}

fn roster(view: &RosterView) -> Vec<RosterEntry> {
    view.entries
        .iter()
        .map(|e| RosterEntry {
            slot: e.slot,
            participant: display(&e.participant),
            name: String::from_utf8_lossy(e.display_name.as_bytes()).into_owned(),
            state: state_name(e.state).to_owned(),
        })
        .collect()
}

impl ParticipantStatus {
    pub(crate) fn new(welcome: &Welcome) -> Self {
        Self {
            me: display(&welcome.me),
            meeting: format!(
                "{}/{}",
                String::from_utf8_lossy(welcome.meeting.meeting_id.as_bytes()),
                String::from_utf8_lossy(welcome.meeting.meeting_uuid.as_bytes())
            ),
            leader: display(&welcome.leader),
            is_leader: welcome.me == welcome.leader,
            ..Self::default()
        }
    }

    /// Refreshes what the session knows (leader, code, roster, mkSeqNum).
    pub(crate) fn refresh(&mut self, session: &Session) {
        if let Some(leader) = session.leader() {
            self.leader = display(leader);
            self.is_leader = leader == session.me();
        }
        self.security_code = session.leader_security_code();
        if let Some(view) = session.roster() {
            self.roster = roster(&view);
            self.locked = view.locked;
        }
        self.mk_seq = self.mk_seq.max(session.mk_seq());
    }
}

//! The participant's status snapshot, as the sidecar's admin endpoint serves it.

use std::collections::BTreeMap;

use keyctl::meeting::{KeyDelivery, RosterView, Session};
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
    /// For a present member: how it gets the meeting key, `leader`, `hybrid` (X25519 +
    /// ML-KEM-768), `classical` (X25519 only) or `unknown` (its binding not seen).
    pub key_delivery: Option<String>,
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
    /// This participant's post-quantum setting (`--pq`): `required`, `preferred` or `off`.
    pub pq_local: String,
    /// The meeting's post-quantum policy, as the leader's signed binding states it, once known.
    pub pq_policy: Option<String>,
    /// This participant's identity: `hybrid` (Ed25519 + ML-DSA-65, keyctl revision 4: under
    /// `--pq required`) or `classical` (Ed25519).
    pub identity: Option<String>,
    /// How the leader authenticates the list, heartbeats and its binding, from its signed
    /// binding once known: `hybrid` (every signature of the leader carries both halves, and a
    /// classical one is refused) or `classical`.
    pub authentication: Option<String>,
    /// Present members whose meeting key is boxed classically (X25519 only): what a recording
    /// quantum adversary could read once X25519 falls.
    pub classical: Vec<String>,
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

fn roster(view: &RosterView, delivery: &BTreeMap<ParticipantId, KeyDelivery>) -> Vec<RosterEntry> {
    view.entries
        .iter()
        .map(|e| RosterEntry {
            slot: e.slot,
            participant: display(&e.participant),
            name: String::from_utf8_lossy(e.display_name.as_bytes()).into_owned(),
            state: state_name(e.state).to_owned(),
            key_delivery: delivery.get(&e.participant).map(|d| d.as_str().to_owned()),
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
        let delivery = session.key_delivery().unwrap_or_default();
        if let Some(view) = session.roster() {
            self.roster = roster(&view, &delivery);
            self.locked = view.locked;
        }
        if let Some(pq) = session.local_pq() {
            self.pq_local = pq.as_str().to_owned();
        }
        self.pq_policy = session.pq_policy().map(|p| p.as_str().to_owned());
        let kind = |hybrid: bool| if hybrid { "hybrid" } else { "classical" }.to_owned();
        self.identity = session.hybrid_identity().map(kind);
        self.authentication = session.leader_hybrid_auth().map(kind);
        self.classical = delivery
            .iter()
            .filter(|(_, d)| **d == KeyDelivery::Classical)
            .map(|(p, _)| display(p))
            .collect();
        self.mk_seq = self.mk_seq.max(session.mk_seq());
    }
}

//! `--tamper SCENARIO`: the board as the adversary it is assumed to be. Each scenario is
//! something a compromised server could really do; the tests check participants notice.

use keyctl::crypto::sha256;
use keyctl::wire::Message;

use keyctl::wire::{LeaderChange, Leave};

use crate::core::{ConnId, Instance, Member};
use crate::frame::ServerFrame;
use crate::policy::Policy;

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
    /// Strip the ML-KEM-768 key from every KeyAnnouncement delivered to others, so the leader
    /// would box that participant's keys classically (a downgrade to what a recording quantum
    /// adversary can read later; issue 16). The binding signature covers the key, so it fails.
    StripPq,
    /// Deliver every hybrid-signed post (keyctl revision 4: announcements, nonces, list links,
    /// heartbeats, lock and key requests of hybrid identities) to others as the classical
    /// message it carries, its ML-DSA-65 half dropped (a downgrade to what a quantum adversary
    /// acting during the meeting could forge; issue 16 part 2). Every reader whose signer is a
    /// hybrid identity refuses it with a `ClassicalSignatureRefused` alert.
    StripPqSig,
    /// Once a meeting has four participants, split it by join order (1st, 3rd | 2nd, 4th;
    /// later joiners alternate): each half is told the other left, the half without the
    /// leader is given a leader of its own, and neither sees the other's posts from then on.
    Partition,
}

impl Tamper {
    /// How many participants a meeting has when `Partition` splits it.
    pub const PARTITION_AT: usize = 4;
}

impl Policy for Tamper {
    fn records_instances(&self) -> bool {
        *self == Self::ReplayInstance
    }

    fn withholds(&self, msg: &Message) -> bool {
        *self == Self::WithholdHeartbeats && matches!(msg, Message::Heartbeat(_))
    }

    fn partition_at(&self) -> Option<usize> {
        (*self == Self::Partition).then_some(Self::PARTITION_AT)
    }

    fn rewrites(&self) -> bool {
        matches!(self, Self::SwapKey | Self::StripPq | Self::StripPqSig)
    }

    fn rewrite(&self, msg: &Message) -> Option<Vec<u8>> {
        match (self, msg) {
            (Self::SwapKey, Message::KeyAnnouncement(a)) => {
                let mut a = a.clone();
                // The adversary's own key in place of the participant's (any other key
                // breaks the binding signature just the same).
                a.binding.pk = sha256(&a.binding.pk);
                Some(Message::KeyAnnouncement(a).to_bytes())
            }
            (Self::StripPq, Message::KeyAnnouncement(a)) if a.binding.pq.is_some() => {
                let mut a = a.clone();
                a.binding.pq = None;
                Some(Message::KeyAnnouncement(a).to_bytes())
            }
            // The board routes by the classical kind a post carries, so `msg` is already the
            // post without its ML-DSA half: deliver those bytes.
            (
                Self::StripPqSig,
                Message::KeyAnnouncement(_)
                | Message::NoncePost(_)
                | Message::LinkPost(_)
                | Message::Heartbeat(_)
                | Message::LockRequest(_)
                | Message::KeyRequest(_),
            ) => Some(msg.to_bytes()),
            _ => None,
        }
    }
}

/// `--tamper partition`'s plan for an instance that reached [`Tamper::PARTITION_AT`]: split it by
/// join order (1st, 3rd | 2nd, 4th). Each half is told the other half left (Left and keyctl's
/// Leave) and, where its leader is on the other side, a new leader (LeaderChange); from then on
/// neither sees the other's posts. Marks the instance split and returns the frames to send.
pub(crate) fn split(inst: &mut Instance) -> Vec<(ConnId, Vec<u8>)> {
    inst.split = true;
    for (i, m) in inst.members.iter_mut().enumerate() {
        m.group = u8::from(i % 2 == 1);
    }
    let old_leader = inst.leaders[0].clone();
    let mut plan: Vec<(ConnId, Vec<u8>)> = Vec::new();
    for group in [0u8, 1] {
        let mine: Vec<&Member> = inst.group_members(group).collect();
        let others: Vec<&Member> = inst.group_members(1 - group).collect();
        let leader = if mine.iter().any(|m| Some(&m.id) == old_leader.as_ref()) {
            old_leader.clone()
        } else {
            mine.first().map(|m| m.id.clone())
        };
        for m in &mine {
            // The new leader first, so that it acts on the leaves that follow (a
            // participant only acts on a Leave while it leads).
            if leader != old_leader
                && let Some(l) = &leader
            {
                let change = Message::LeaderChange(LeaderChange { leader: l.clone() });
                plan.push((m.conn, ServerFrame::Deliver(&change.to_bytes()).encode()));
            }
            for gone in &others {
                plan.push((m.conn, ServerFrame::Left(gone.id.clone()).encode()));
                let leave = Message::Leave(Leave {
                    participant: gone.id.clone(),
                });
                plan.push((m.conn, ServerFrame::Deliver(&leave.to_bytes()).encode()));
            }
        }
        if let Some(slot) = inst.leaders.get_mut(usize::from(group)) {
            slot.clone_from(&leader);
        }
    }
    plan
}

//! The leader participant list as a hash chain of links (whitepaper 3.7.7, v4.6 meetings:
//! LPL and locked meetings). Leader and participants hold the same structure; the leader
//! appends links, participants check and apply them.

use std::collections::BTreeMap;

use super::error::MeetingError;
use crate::wire::{Id, LplLink, LplOp, MeetingRef, MemberState, ParticipantId, RosterEntry};

/// A read-only view of the list, for user interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterView {
    /// Whether the LPL says the meeting is locked.
    pub locked: bool,
    /// Everyone present or seen leaving, by participant.
    pub entries: Vec<RosterEntry>,
}

/// What applying a link changed, for the session to react to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Applied {
    Other,
    Left { participant: ParticipantId },
    Kicked { participant: ParticipantId },
    Unlocked,
}

/// The chain head and the list it describes.
#[derive(Debug, Clone)]
pub(crate) struct Lpl {
    meeting: MeetingRef,
    v: u64,
    head: [u8; 32],
    links_since_snapshot: usize,
    locked: bool,
    next_slot: u32,
    roster: BTreeMap<ParticipantId, RosterEntry>,
}

impl Lpl {
    pub(crate) fn new(meeting: MeetingRef) -> Self {
        Self {
            meeting,
            v: 0,
            head: [0; 32],
            links_since_snapshot: 0,
            locked: false,
            next_slot: 0,
            roster: BTreeMap::new(),
        }
    }

    /// `v`, the number of operations.
    pub(crate) fn v(&self) -> u64 {
        self.v
    }

    /// `SHA256(LPL_v)`: the hash of the latest link.
    pub(crate) fn head(&self) -> [u8; 32] {
        self.head
    }

    pub(crate) fn locked(&self) -> bool {
        self.locked
    }

    pub(crate) fn links_since_snapshot(&self) -> usize {
        self.links_since_snapshot
    }

    pub(crate) fn entry(&self, p: &ParticipantId) -> Option<&RosterEntry> {
        self.roster.get(p)
    }

    /// Leaves recorded for `user` over all of their devices.
    pub(crate) fn leaves_of_user(&self, user: &Id) -> u16 {
        self.roster
            .values()
            .filter(|e| &e.participant.user == user)
            .fold(0u16, |n, e| n.saturating_add(e.leaves))
    }

    /// Present participants.
    pub(crate) fn present(&self) -> impl Iterator<Item = &RosterEntry> {
        self.roster
            .values()
            .filter(|e| e.state == MemberState::Present)
    }

    /// Slot -> identity of the present participants.
    pub(crate) fn slots(&self) -> BTreeMap<u32, ParticipantId> {
        self.present()
            .map(|e| (e.slot, e.participant.clone()))
            .collect()
    }

    pub(crate) fn view(&self) -> RosterView {
        RosterView {
            locked: self.locked,
            entries: self.roster.values().cloned().collect(),
        }
    }

    /// The next slot a leader assigns; never reused within the meeting.
    pub(crate) fn take_slot(&mut self) -> u32 {
        let s = self.next_slot;
        self.next_slot = self.next_slot.saturating_add(1);
        s
    }

    /// The link a leader appends for `op`.
    pub(crate) fn next_link(&self, op: LplOp) -> LplLink {
        LplLink {
            meeting: self.meeting.clone(),
            v: self.v + 1,
            prev: self.head,
            op,
        }
    }

    /// A snapshot of the whole list, for coalescing or a leader change.
    pub(crate) fn snapshot(&self) -> LplOp {
        LplOp::Snapshot {
            locked: self.locked,
            next_slot: self.next_slot,
            roster: self.roster.values().cloned().collect(),
        }
    }

    /// Checks that `link` extends the chain (or, for a participant that holds no chain
    /// yet, starts one) and applies it.
    pub(crate) fn apply(&mut self, link: &LplLink) -> Result<Applied, MeetingError> {
        if link.meeting != self.meeting {
            return Err(MeetingError::WrongMeeting);
        }
        let fresh = self.v == 0;
        let anchors =
            matches!(link.op, LplOp::Snapshot { .. }) || (link.v == 1 && link.prev == [0; 32]);
        if fresh {
            if !anchors {
                return Err(MeetingError::LplChain);
            }
        } else if link.v != self.v + 1 || link.prev != self.head {
            return Err(MeetingError::LplChain);
        }
        let applied = self.apply_op(&link.op)?;
        self.v = link.v;
        self.head = link.hash();
        self.links_since_snapshot = match link.op {
            LplOp::Snapshot { .. } => 0,
            _ => self.links_since_snapshot + 1,
        };
        Ok(applied)
    }

    fn check_ivk(&self, p: &ParticipantId, ivk: &[u8; 32]) -> Result<(), MeetingError> {
        // 3.7.7: whoever rejoins with the same (userID, deviceID) must keep the same IVK.
        match self.roster.get(p) {
            Some(e) if &e.ivk != ivk => Err(MeetingError::IvkChanged),
            _ => Ok(()),
        }
    }

    fn apply_op(&mut self, op: &LplOp) -> Result<Applied, MeetingError> {
        Ok(match op {
            LplOp::Add {
                slot,
                participant,
                ivk,
                binding_hash,
                display_name,
            } => {
                self.check_ivk(participant, ivk)?;
                let leaves = self.roster.get(participant).map_or(0, |e| e.leaves);
                self.roster.insert(
                    participant.clone(),
                    RosterEntry {
                        slot: *slot,
                        participant: participant.clone(),
                        ivk: *ivk,
                        binding_hash: *binding_hash,
                        display_name: display_name.clone(),
                        state: MemberState::Present,
                        leaves,
                    },
                );
                self.next_slot = self.next_slot.max(slot.saturating_add(1));
                Applied::Other
            }
            LplOp::Leave { participant, .. } | LplOp::Kick { participant, .. } => {
                let kicked = matches!(op, LplOp::Kick { .. });
                let e = self
                    .roster
                    .get_mut(participant)
                    .ok_or(MeetingError::UnknownParticipant)?;
                e.binding_hash = [0; 32];
                if kicked {
                    e.state = MemberState::Kicked;
                    Applied::Kicked {
                        participant: participant.clone(),
                    }
                } else {
                    e.state = MemberState::Left;
                    e.leaves = e.leaves.saturating_add(1);
                    Applied::Left {
                        participant: participant.clone(),
                    }
                }
            }
            LplOp::Lock => {
                self.locked = true;
                Applied::Other
            }
            LplOp::Unlock => {
                let was = self.locked;
                self.locked = false;
                if was {
                    Applied::Unlocked
                } else {
                    Applied::Other
                }
            }
            LplOp::Snapshot {
                locked,
                next_slot,
                roster,
            } => {
                for e in roster {
                    self.check_ivk(&e.participant, &e.ivk)?;
                }
                let was = self.locked;
                self.locked = *locked;
                self.next_slot = *next_slot;
                self.roster = roster
                    .iter()
                    .map(|e| (e.participant.clone(), e.clone()))
                    .collect();
                if was && !locked {
                    Applied::Unlocked
                } else {
                    Applied::Other
                }
            }
        })
    }
}

/// An Add operation for an admitted participant.
pub(crate) fn add_op(
    slot: u32,
    participant: &ParticipantId,
    ivk: &[u8; 32],
    binding_hash: [u8; 32],
    display_name: &Id,
) -> LplOp {
    LplOp::Add {
        slot,
        participant: participant.clone(),
        ivk: *ivk,
        binding_hash,
        display_name: display_name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meeting() -> MeetingRef {
        MeetingRef::new(b"m", b"u").unwrap()
    }

    fn add(lpl: &mut Lpl, name: &[u8], ivk: u8) -> LplLink {
        let slot = lpl.take_slot();
        let p = ParticipantId::new(name, b"d").unwrap();
        let name = Id::new(crate::wire::Field::DisplayName, name).unwrap();
        lpl.next_link(add_op(slot, &p, &[ivk; 32], [ivk; 32], &name))
    }

    #[test]
    fn chain_must_be_contiguous_and_anchored() {
        let mut leader = Lpl::new(meeting());
        let l1 = add(&mut leader, b"a", 1);
        leader.apply(&l1).unwrap();
        let l2 = add(&mut leader, b"b", 2);
        leader.apply(&l2).unwrap();

        let mut late = Lpl::new(meeting());
        assert_eq!(
            late.apply(&l2),
            Err(MeetingError::LplChain),
            "not an anchor"
        );
        late.apply(&l1).unwrap();
        late.apply(&l2).unwrap();
        assert_eq!((late.v(), late.head()), (leader.v(), leader.head()));
        assert_eq!(late.apply(&l2), Err(MeetingError::LplChain), "replay");

        let snap = leader.next_link(leader.snapshot());
        leader.apply(&snap).unwrap();
        let mut newcomer = Lpl::new(meeting());
        newcomer.apply(&snap).unwrap();
        assert_eq!(newcomer.slots(), leader.slots());
        assert_eq!(newcomer.links_since_snapshot(), 0);

        let mut other = Lpl::new(MeetingRef::new(b"m", b"other").unwrap());
        assert_eq!(other.apply(&l1), Err(MeetingError::WrongMeeting));
    }

    #[test]
    fn ivk_is_stable_for_a_participant() {
        let mut lpl = Lpl::new(meeting());
        let l1 = add(&mut lpl, b"a", 1);
        lpl.apply(&l1).unwrap();
        let p = ParticipantId::new(b"a", b"d").unwrap();
        let leave = lpl.next_link(LplOp::Leave {
            slot: 0,
            participant: p,
        });
        assert!(matches!(lpl.apply(&leave), Ok(Applied::Left { .. })));
        let user = Id::new(crate::wire::Field::UserId, b"a").unwrap();
        assert_eq!(lpl.leaves_of_user(&user), 1);
        let back = add(&mut lpl, b"a", 9);
        assert_eq!(lpl.apply(&back), Err(MeetingError::IvkChanged));
        let back = add(&mut lpl, b"a", 1);
        lpl.apply(&back).unwrap();
        assert_eq!(
            lpl.slots().keys().copied().collect::<Vec<_>>(),
            vec![2],
            "new slot"
        );
    }
}

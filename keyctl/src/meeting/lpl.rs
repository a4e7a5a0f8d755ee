//! The leader participant list as a hash chain of links (whitepaper 3.7.7, v4.6 meetings:
//! LPL and locked meetings). Leader and participants hold the same structure; the leader
//! appends links, participants check and apply them.

use std::collections::BTreeMap;

use super::error::MeetingError;
use super::limits::{MAX_ROSTER, MAX_SLOT};
use crate::wire::{
    Binding, Id, LplLink, LplOp, MeetingRef, MemberState, ParticipantId, RosterEntry,
};

/// A read-only view of the list, for user interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterView {
    /// Whether the LPL says the meeting is locked.
    pub locked: bool,
    /// Whether the LPL says only invitees are admitted.
    pub invite_only: bool,
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
    invite_only: bool,
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
            invite_only: false,
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

    pub(crate) fn invite_only(&self) -> bool {
        self.invite_only
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

    /// Every entry: present, left and kicked.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &RosterEntry> {
        self.roster.values()
    }

    /// How many entries the list holds.
    pub(crate) fn len(&self) -> usize {
        self.roster.len()
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
            invite_only: self.invite_only,
            entries: self.roster.values().cloned().collect(),
        }
    }

    /// The next slot a leader assigns (an applied Add moves it on); never reused within
    /// the meeting. `None` once the slots are used up.
    pub(crate) fn next_slot(&self) -> Option<u32> {
        (self.next_slot <= MAX_SLOT).then_some(self.next_slot)
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
            invite_only: self.invite_only,
            next_slot: self.next_slot,
            roster: self.roster.values().cloned().collect(),
        }
    }

    /// Checks that `link`, signed by `signer`, extends the chain (or, for a participant
    /// that holds no chain yet, starts one) and keeps the list's continuity, then applies
    /// it. A refused link changes nothing.
    pub(crate) fn apply(
        &mut self,
        link: &LplLink,
        signer: &ParticipantId,
    ) -> Result<Applied, MeetingError> {
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
        // Work on a copy so that a refused operation leaves the list as it was.
        let mut next = self.clone();
        let applied = next.apply_op(&link.op, signer, fresh)?;
        next.v = link.v;
        next.head = link.hash();
        next.links_since_snapshot = match link.op {
            LplOp::Snapshot { .. } => 0,
            _ => self.links_since_snapshot + 1,
        };
        *self = next;
        Ok(applied)
    }

    /// Whether `ivk` and `ml_dsa_id` are the identity the list records for `p` (true for
    /// someone it does not record). 3.7.7: whoever rejoins with the same (userID, deviceID)
    /// keeps the same IVK; revision 5: a hybrid member also the same ML-DSA key, and a
    /// classical one stays classical, so a rejoin cannot rest on the Ed25519 key alone.
    pub(crate) fn keeps_identity(
        &self,
        p: &ParticipantId,
        ivk: &[u8; 32],
        ml_dsa_id: Option<&[u8; 32]>,
    ) -> bool {
        self.roster
            .get(p)
            .is_none_or(|e| &e.ivk == ivk && e.ml_dsa_id.as_ref() == ml_dsa_id)
    }

    fn apply_op(
        &mut self,
        op: &LplOp,
        signer: &ParticipantId,
        fresh: bool,
    ) -> Result<Applied, MeetingError> {
        Ok(match op {
            LplOp::Add {
                slot,
                participant,
                ivk,
                binding_hash,
                display_name,
                ml_dsa_id,
            } => {
                if !self.keeps_identity(participant, ivk, ml_dsa_id.as_ref()) {
                    return Err(MeetingError::IvkChanged);
                }
                // Continuity (3.7.7): a present member's binding hash stays stable (a rejoin
                // is a Leave, then an Add); a kicked member comes back only after an Unban;
                // slots are never reused.
                let leaves = match self.roster.get(participant).map(|e| e.state) {
                    None => 0,
                    Some(MemberState::Left) => self.roster.get(participant).map_or(0, |e| e.leaves),
                    Some(MemberState::Present | MemberState::Kicked) => {
                        return Err(MeetingError::LplContinuity);
                    }
                };
                if *slot < self.next_slot || *slot > MAX_SLOT {
                    return Err(MeetingError::LplContinuity);
                }
                if !self.roster.contains_key(participant) && self.roster.len() >= MAX_ROSTER {
                    return Err(MeetingError::MeetingFull);
                }
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
                        ml_dsa_id: *ml_dsa_id,
                    },
                );
                self.next_slot = slot.saturating_add(1);
                Applied::Other
            }
            LplOp::Leave { slot, participant } | LplOp::Kick { slot, participant } => {
                let kicked = matches!(op, LplOp::Kick { .. });
                let e = self
                    .roster
                    .get_mut(participant)
                    .ok_or(MeetingError::UnknownParticipant)?;
                // A leave ends a presence; a kick also bans someone who already left.
                let allowed = match e.state {
                    MemberState::Present => true,
                    MemberState::Left => kicked,
                    MemberState::Kicked => false,
                };
                if !allowed || e.slot != *slot {
                    return Err(MeetingError::LplContinuity);
                }
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
            LplOp::Unban { slot, participant } => {
                let e = self
                    .roster
                    .get_mut(participant)
                    .ok_or(MeetingError::UnknownParticipant)?;
                if e.state != MemberState::Kicked || e.slot != *slot {
                    return Err(MeetingError::LplContinuity);
                }
                e.state = MemberState::Left;
                Applied::Other
            }
            LplOp::Lock => {
                self.locked = true;
                Applied::Other
            }
            // One way: nothing signed turns invite-only off for the meeting's life.
            LplOp::InviteOnly => {
                if self.invite_only {
                    return Err(MeetingError::LplContinuity);
                }
                self.invite_only = true;
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
                invite_only,
                next_slot,
                roster,
            } => {
                let mut map = BTreeMap::new();
                for e in roster {
                    if e.slot >= *next_slot
                        || map.insert(e.participant.clone(), e.clone()).is_some()
                    {
                        return Err(MeetingError::LplContinuity);
                    }
                }
                if map.len() > MAX_ROSTER {
                    return Err(MeetingError::MeetingFull);
                }
                // 3.7.7: the leader that signs a list is present in it.
                if map
                    .get(signer)
                    .is_none_or(|e| e.state != MemberState::Present)
                {
                    return Err(MeetingError::LplContinuity);
                }
                // A snapshot coalesces the chain; it never changes the list it coalesces
                // (membership changes are links of their own, which participants check).
                if !fresh
                    && (map != self.roster
                        || *locked != self.locked
                        || *invite_only != self.invite_only
                        || *next_slot != self.next_slot)
                {
                    return Err(MeetingError::LplContinuity);
                }
                let was = self.locked;
                self.locked = *locked;
                self.invite_only = *invite_only;
                self.next_slot = *next_slot;
                self.roster = map;
                if was && !locked {
                    Applied::Unlocked
                } else {
                    Applied::Other
                }
            }
        })
    }
}

/// An Add operation for a participant admitted with `binding` (an `AddHybrid` for a hybrid
/// identity, which the list then records, revision 5).
pub(crate) fn add_op(
    slot: u32,
    participant: &ParticipantId,
    binding: &Binding,
    binding_hash: [u8; 32],
    display_name: &Id,
) -> LplOp {
    LplOp::Add {
        slot,
        participant: participant.clone(),
        ivk: binding.ivk,
        binding_hash,
        display_name: display_name.clone(),
        ml_dsa_id: binding.ml_dsa_id(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meeting() -> MeetingRef {
        MeetingRef::new(b"m", b"u").unwrap()
    }

    fn pid(name: &[u8]) -> ParticipantId {
        ParticipantId::new(name, b"d").unwrap()
    }

    /// The leader of these lists.
    fn a() -> ParticipantId {
        pid(b"a")
    }

    /// A classical binding of `name` with IVK `[ivk; 32]`.
    fn binding(name: &[u8], ivk: u8) -> Binding {
        Binding {
            meeting: meeting(),
            participant: pid(name),
            ivk: [ivk; 32],
            pk: [ivk; 32],
            pq: None,
        }
    }

    fn add(lpl: &Lpl, name: &[u8], ivk: u8) -> LplLink {
        let slot = lpl.next_slot().unwrap();
        let name_id = Id::new(crate::wire::Field::DisplayName, name).unwrap();
        lpl.next_link(add_op(
            slot,
            &pid(name),
            &binding(name, ivk),
            [ivk; 32],
            &name_id,
        ))
    }

    /// A list led by `a` with `a` and `b` present.
    fn two() -> Lpl {
        let mut lpl = Lpl::new(meeting());
        let l = add(&lpl, b"a", 1);
        lpl.apply(&l, &a()).unwrap();
        let l = add(&lpl, b"b", 2);
        lpl.apply(&l, &a()).unwrap();
        lpl
    }

    #[test]
    fn chain_must_be_contiguous_and_anchored() {
        let mut leader = Lpl::new(meeting());
        let l1 = add(&leader, b"a", 1);
        leader.apply(&l1, &a()).unwrap();
        let l2 = add(&leader, b"b", 2);
        leader.apply(&l2, &a()).unwrap();

        let mut late = Lpl::new(meeting());
        assert_eq!(
            late.apply(&l2, &a()),
            Err(MeetingError::LplChain),
            "not an anchor"
        );
        late.apply(&l1, &a()).unwrap();
        late.apply(&l2, &a()).unwrap();
        assert_eq!((late.v(), late.head()), (leader.v(), leader.head()));
        assert_eq!(late.apply(&l2, &a()), Err(MeetingError::LplChain), "replay");

        let snap = leader.next_link(leader.snapshot());
        leader.apply(&snap, &a()).unwrap();
        let mut newcomer = Lpl::new(meeting());
        newcomer.apply(&snap, &a()).unwrap();
        assert_eq!(newcomer.slots(), leader.slots());
        assert_eq!(newcomer.links_since_snapshot(), 0);

        let mut other = Lpl::new(MeetingRef::new(b"m", b"other").unwrap());
        assert_eq!(other.apply(&l1, &a()), Err(MeetingError::WrongMeeting));
    }

    #[test]
    fn ivk_is_stable_for_a_participant() {
        let mut lpl = Lpl::new(meeting());
        let l1 = add(&lpl, b"a", 1);
        lpl.apply(&l1, &a()).unwrap();
        let leave = lpl.next_link(LplOp::Leave {
            slot: 0,
            participant: a(),
        });
        assert!(matches!(lpl.apply(&leave, &a()), Ok(Applied::Left { .. })));
        let user = Id::new(crate::wire::Field::UserId, b"a").unwrap();
        assert_eq!(lpl.leaves_of_user(&user), 1);
        let back = add(&lpl, b"a", 9);
        assert_eq!(lpl.apply(&back, &a()), Err(MeetingError::IvkChanged));
        let back = add(&lpl, b"a", 1);
        lpl.apply(&back, &a()).unwrap();
        assert_eq!(
            lpl.slots().keys().copied().collect::<Vec<_>>(),
            vec![1],
            "new slot"
        );
        assert_eq!(lpl.leaves_of_user(&user), 1, "an Add keeps the leave count");
    }

    /// Revision 5: the list keeps a hybrid member's ML-DSA identity across its leave, so a
    /// link that re-adds it under the same IVK with another ML-DSA id, or none (a classical
    /// binding), is refused as another IVK is, and changes nothing; the same id is accepted.
    #[test]
    fn the_ml_dsa_identity_is_stable_for_a_participant() {
        let mut lpl = two();
        let b = pid(b"b");
        let name = Id::new(crate::wire::Field::DisplayName, b"b").unwrap();
        let add_b = |lpl: &Lpl, ml_dsa_id: Option<[u8; 32]>| {
            let slot = lpl.next_slot().unwrap();
            let op = LplOp::Add {
                slot,
                participant: b.clone(),
                ivk: [2; 32],
                binding_hash: [slot as u8; 32],
                display_name: name.clone(),
                ml_dsa_id,
            };
            lpl.next_link(op)
        };
        // b is classical: re-added classical fine; now make a hybrid "c" and leave it.
        let c = pid(b"c");
        let l = lpl.next_link(LplOp::Add {
            slot: 2,
            participant: c.clone(),
            ivk: [3; 32],
            binding_hash: [3; 32],
            display_name: name.clone(),
            ml_dsa_id: Some([5; 32]),
        });
        lpl.apply(&l, &a()).unwrap();
        let leave = lpl.next_link(LplOp::Leave {
            slot: 2,
            participant: c.clone(),
        });
        lpl.apply(&leave, &a()).unwrap();
        assert_eq!(lpl.entry(&c).and_then(|e| e.ml_dsa_id), Some([5; 32]));
        let snapshot = lpl.next_link(lpl.snapshot());
        lpl.apply(&snapshot, &a()).unwrap();
        assert_eq!(lpl.entry(&c).and_then(|e| e.ml_dsa_id), Some([5; 32]));
        let readd_c = |lpl: &Lpl, ml_dsa_id| {
            lpl.next_link(LplOp::Add {
                slot: lpl.next_slot().unwrap(),
                participant: c.clone(),
                ivk: [3; 32],
                binding_hash: [4; 32],
                display_name: name.clone(),
                ml_dsa_id,
            })
        };
        for (what, id) in [("none", None), ("another", Some([6; 32]))] {
            let before = (lpl.v(), lpl.head(), lpl.view());
            let link = readd_c(&lpl, id);
            assert_eq!(
                lpl.apply(&link, &a()),
                Err(MeetingError::IvkChanged),
                "{what}"
            );
            assert_eq!(before, (lpl.v(), lpl.head(), lpl.view()), "{what}");
        }
        let link = readd_c(&lpl, Some([5; 32]));
        lpl.apply(&link, &a()).unwrap();
        // A classical member stays classical: b left, then comes back hybrid.
        let leave = lpl.next_link(LplOp::Leave {
            slot: 1,
            participant: b.clone(),
        });
        lpl.apply(&leave, &a()).unwrap();
        let link = add_b(&lpl, Some([7; 32]));
        assert_eq!(lpl.apply(&link, &a()), Err(MeetingError::IvkChanged));
        let link = add_b(&lpl, None);
        lpl.apply(&link, &a()).unwrap();
    }

    /// Finding 9 of the security review: a snapshot or add could rewrite a present member's
    /// binding hash, reset leave counts, drop entries or turn Kicked back into Present.
    #[test]
    fn a_snapshot_may_not_rewrite_the_list_it_coalesces() {
        let mut lpl = two();
        let b = pid(b"b");
        // b left, then was banned: Kicked with one leave.
        let leave = lpl.next_link(LplOp::Leave {
            slot: 1,
            participant: b.clone(),
        });
        lpl.apply(&leave, &a()).unwrap();
        let kick = lpl.next_link(LplOp::Kick {
            slot: 1,
            participant: b.clone(),
        });
        lpl.apply(&kick, &a()).unwrap();
        let c = add(&lpl, b"c", 3);
        lpl.apply(&c, &a()).unwrap();
        let honest = lpl.snapshot();
        let LplOp::Snapshot {
            locked,
            invite_only,
            next_slot,
            roster,
        } = honest.clone()
        else {
            unreachable!()
        };
        let edit = |f: &dyn Fn(&mut Vec<RosterEntry>)| {
            let mut r = roster.clone();
            f(&mut r);
            LplOp::Snapshot {
                locked,
                invite_only,
                next_slot,
                roster: r,
            }
        };
        let forged = [
            (
                "rewrites a present member's binding hash",
                edit(&|r| r[2].binding_hash = [9; 32]),
            ),
            ("resets a leave count", edit(&|r| r[1].leaves = 0)),
            (
                "drops an entry",
                edit(&|r| {
                    r.remove(2);
                }),
            ),
            ("un-kicks", edit(&|r| r[1].state = MemberState::Present)),
            (
                "duplicates an entry",
                edit(&|r| {
                    let e = r[2].clone();
                    r.push(e);
                }),
            ),
            (
                "drops the signer",
                edit(&|r| {
                    r.remove(0);
                }),
            ),
            (
                "moves next_slot back",
                LplOp::Snapshot {
                    locked,
                    invite_only,
                    next_slot: 1,
                    roster: roster.clone(),
                },
            ),
            (
                "unlocks",
                LplOp::Snapshot {
                    locked: !locked,
                    invite_only,
                    next_slot,
                    roster: roster.clone(),
                },
            ),
            (
                "turns invite-only off or on",
                LplOp::Snapshot {
                    locked,
                    invite_only: !invite_only,
                    next_slot,
                    roster: roster.clone(),
                },
            ),
        ];
        for (what, op) in forged {
            let before = (lpl.v(), lpl.head(), lpl.view());
            let link = lpl.next_link(op);
            assert!(lpl.apply(&link, &a()).is_err(), "a snapshot that {what}");
            assert_eq!(
                before,
                (lpl.v(), lpl.head(), lpl.view()),
                "{what}: unchanged"
            );
        }
        // The honest coalescing snapshot is accepted; one signed by someone not present
        // in it is not.
        let link = lpl.next_link(honest);
        assert_eq!(
            lpl.clone().apply(&link, &b),
            Err(MeetingError::LplContinuity),
            "the signer must be present"
        );
        lpl.apply(&link, &a()).unwrap();
    }

    #[test]
    fn adds_and_removals_keep_continuity() {
        let mut lpl = two();
        let b = pid(b"b");
        let name = Id::new(crate::wire::Field::DisplayName, b"b").unwrap();
        let refused = [
            (
                "re-adds a present member under a new binding",
                add_op(2, &b, &binding(b"b", 2), [7; 32], &name),
            ),
            (
                "reuses a slot",
                add_op(0, &pid(b"c"), &binding(b"c", 3), [3; 32], &name),
            ),
            (
                "assigns a slot past the KID's range",
                add_op(MAX_SLOT + 1, &pid(b"c"), &binding(b"c", 3), [3; 32], &name),
            ),
            (
                "removes with the wrong slot",
                LplOp::Leave {
                    slot: 0,
                    participant: b.clone(),
                },
            ),
            (
                "unbans someone not kicked",
                LplOp::Unban {
                    slot: 1,
                    participant: b.clone(),
                },
            ),
        ];
        for (what, op) in refused {
            let before = lpl.view();
            let link = lpl.next_link(op);
            assert!(lpl.apply(&link, &a()).is_err(), "a link that {what}");
            assert_eq!(before, lpl.view(), "{what}: unchanged");
        }
        // Kicked: not re-added until unbanned; then back as Left, and may be added again.
        let kick = lpl.next_link(LplOp::Kick {
            slot: 1,
            participant: b.clone(),
        });
        lpl.apply(&kick, &a()).unwrap();
        let back = add(&lpl, b"b", 2);
        assert_eq!(lpl.apply(&back, &a()), Err(MeetingError::LplContinuity));
        let again = lpl.next_link(LplOp::Leave {
            slot: 1,
            participant: b.clone(),
        });
        assert_eq!(lpl.apply(&again, &a()), Err(MeetingError::LplContinuity));
        let unban = lpl.next_link(LplOp::Unban {
            slot: 1,
            participant: b.clone(),
        });
        lpl.apply(&unban, &a()).unwrap();
        assert_eq!(lpl.entry(&b).map(|e| e.state), Some(MemberState::Left));
        let back = add(&lpl, b"b", 2);
        lpl.apply(&back, &a()).unwrap();
        assert_eq!(lpl.entry(&b).map(|e| e.slot), Some(2));
    }
}

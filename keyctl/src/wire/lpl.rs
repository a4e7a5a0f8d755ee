//! Links of the leader participant list (whitepaper 3.7.7, v4.6 meetings: LPL, locked
//! meetings).

use super::codec::{Reader, Writer};
use super::ids::{Id, MeetingRef, ParticipantId};
use super::{Field, Kind, WireError, encoding, parse_header};
use crate::crypto::{self, CTX_SIG_LPL, SigningKey};

/// Longest display name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// The tag of [`LplOp::Add`] for a classical member (`ml_dsa_id` none).
const TAG_ADD: u8 = 1;
/// The tag of [`LplOp::Add`] for a hybrid member (revision 5: `AddHybrid`).
const TAG_ADD_HYBRID: u8 = 9;
/// The tag of [`LplOp::Snapshot`] when no roster entry is hybrid.
const TAG_SNAPSHOT: u8 = 6;
/// The tag of [`LplOp::Snapshot`] when some roster entry is hybrid (revision 5:
/// `SnapshotHybrid`).
const TAG_SNAPSHOT_HYBRID: u8 = 10;

/// Writes a member's ML-DSA identity as `SnapshotHybrid` entries carry it: a presence byte,
/// then the 32-byte id when present.
fn emit_ml_dsa_id(w: &mut Vec<u8>, id: Option<&[u8; 32]>) {
    match id {
        None => w.u8(0),
        Some(id) => {
            w.u8(1);
            w.bytes(id);
        }
    }
}

/// Reads what [`emit_ml_dsa_id`] writes; a presence byte other than 0 or 1 is refused, so the
/// encoding stays canonical (links are signed and hashed as re-encoded).
fn parse_ml_dsa_id(r: &mut Reader<'_>) -> Result<Option<[u8; 32]>, WireError> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(r.array()?)),
        other => Err(WireError::UnknownPresence(other)),
    }
}

/// Whether a roster entry is in the meeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MemberState {
    /// In the meeting: has, or is being given, the current key.
    Present = 1,
    /// Left the meeting.
    Left = 2,
    /// Removed by the leader.
    Kicked = 3,
}

impl MemberState {
    fn parse(b: u8) -> Result<Self, WireError> {
        match b {
            1 => Ok(Self::Present),
            2 => Ok(Self::Left),
            3 => Ok(Self::Kicked),
            other => Err(WireError::UnknownState(other)),
        }
    }
}

/// One member in a [`LplOp::Snapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterEntry {
    /// The sender slot the leader assigned on admission.
    pub slot: u32,
    /// Who.
    pub participant: ParticipantId,
    /// Their long-term key.
    pub ivk: [u8; 32],
    /// `SHA256(Binding)` while present; all zero once they left (3.7.7: the LPL keeps
    /// only IVK, IDs and name for those who left).
    pub binding_hash: [u8; 32],
    /// Display name.
    pub display_name: Id,
    /// Present, left or kicked.
    pub state: MemberState,
    /// How many times the leader has seen them leave (alert at four, whitepaper 3.10).
    pub leaves: u16,
    /// `SHA256(pk_ML-DSA)` of a hybrid member's identity, kept for the meeting's life like
    /// the IVK (revision 5); none for a classical member.
    pub ml_dsa_id: Option<[u8; 32]>,
}

impl RosterEntry {
    /// Writes the entry; `hybrid` (a `SnapshotHybrid`) appends the ML-DSA identity.
    fn emit(&self, w: &mut Vec<u8>, hybrid: bool) {
        w.u32(self.slot);
        self.participant.emit(w);
        w.bytes(&self.ivk);
        w.bytes(&self.binding_hash);
        self.display_name.emit(w);
        w.u8(self.state as u8);
        w.u16(self.leaves);
        if hybrid {
            emit_ml_dsa_id(w, self.ml_dsa_id.as_ref());
        }
    }

    fn parse(r: &mut Reader<'_>, hybrid: bool) -> Result<Self, WireError> {
        Ok(Self {
            slot: r.u32()?,
            participant: ParticipantId::parse(r)?,
            ivk: r.array()?,
            binding_hash: r.array()?,
            display_name: Id::parse(r, Field::DisplayName)?,
            state: MemberState::parse(r.u8()?)?,
            leaves: r.u16()?,
            ml_dsa_id: if hybrid { parse_ml_dsa_id(r)? } else { None },
        })
    }
}

/// An operation recorded in the LPL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LplOp {
    /// Tag 1: a participant was admitted and given `slot`; tag 9 (`AddHybrid`, revision 5)
    /// when it was admitted with a hybrid identity, which the list then records.
    Add {
        /// Sender slot, never reused in the meeting.
        slot: u32,
        /// Who.
        participant: ParticipantId,
        /// Their long-term key.
        ivk: [u8; 32],
        /// `SHA256(Binding)`.
        binding_hash: [u8; 32],
        /// Display name.
        display_name: Id,
        /// `SHA256(pk_ML-DSA)` of a hybrid identity (the binding's 1,952-byte ML-DSA-65
        /// key): `Some` is encoded as tag 9 with these 32 bytes after the name, `None` as tag 1.
        ml_dsa_id: Option<[u8; 32]>,
    },
    /// Tag 2: a participant left.
    Leave {
        /// Their slot.
        slot: u32,
        /// Who.
        participant: ParticipantId,
    },
    /// Tag 3: the leader removed a participant.
    Kick {
        /// Their slot.
        slot: u32,
        /// Who.
        participant: ParticipantId,
    },
    /// Tag 4: the meeting is locked (v4.6 meetings: locked meetings).
    Lock,
    /// Tag 5: the meeting is unlocked.
    Unlock,
    /// Tag 7: the host lifted the ban on a kicked participant, who may join again; the
    /// entry becomes `Left` (Veil; v4.6 leaves bans to the server).
    Unban {
        /// Their slot.
        slot: u32,
        /// Who.
        participant: ParticipantId,
    },
    /// Tag 8: from now on only participants holding a host-issued invite are admitted
    /// (revision 2); a leader without the host's secret then admits no newcomer.
    InviteOnly,
    /// Tag 6: the whole list in one link: the start of a coalesced chain, written when
    /// the chain grows past 20 links or when a new leader takes over (3.7.7). Tag 10
    /// (`SnapshotHybrid`, revision 5) when some entry has an `ml_dsa_id`: each entry then
    /// ends with a presence byte and the id.
    Snapshot {
        /// Whether the meeting is locked (flags bit 0).
        locked: bool,
        /// Whether the meeting admits only invitees (flags bit 1, revision 2).
        invite_only: bool,
        /// The next slot to assign.
        next_slot: u32,
        /// Everyone present or seen leaving.
        roster: Vec<RosterEntry>,
    },
}

impl LplOp {
    fn emit(&self, w: &mut Vec<u8>) {
        match self {
            Self::Add {
                slot,
                participant,
                ivk,
                binding_hash,
                display_name,
                ml_dsa_id,
            } => {
                w.u8(if ml_dsa_id.is_some() {
                    TAG_ADD_HYBRID
                } else {
                    TAG_ADD
                });
                w.u32(*slot);
                participant.emit(w);
                w.bytes(ivk);
                w.bytes(binding_hash);
                display_name.emit(w);
                if let Some(id) = ml_dsa_id {
                    w.bytes(id);
                }
            }
            Self::Leave { slot, participant } => {
                w.u8(2);
                w.u32(*slot);
                participant.emit(w);
            }
            Self::Kick { slot, participant } => {
                w.u8(3);
                w.u32(*slot);
                participant.emit(w);
            }
            Self::Unban { slot, participant } => {
                w.u8(7);
                w.u32(*slot);
                participant.emit(w);
            }
            Self::InviteOnly => w.u8(8),
            Self::Lock => w.u8(4),
            Self::Unlock => w.u8(5),
            Self::Snapshot {
                locked,
                invite_only,
                next_slot,
                roster,
            } => {
                let n = u16::try_from(roster.len()).unwrap_or(u16::MAX);
                let entries = roster.iter().take(usize::from(n));
                // Classical meetings keep the revision 4 bytes.
                let hybrid = entries.clone().any(|e| e.ml_dsa_id.is_some());
                w.u8(if hybrid {
                    TAG_SNAPSHOT_HYBRID
                } else {
                    TAG_SNAPSHOT
                });
                w.u8(u8::from(*locked) | (u8::from(*invite_only) << 1));
                w.u32(*next_slot);
                w.u16(n);
                for e in entries {
                    e.emit(w, hybrid);
                }
            }
        }
    }

    fn parse(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(match r.u8()? {
            tag @ (TAG_ADD | TAG_ADD_HYBRID) => Self::Add {
                slot: r.u32()?,
                participant: ParticipantId::parse(r)?,
                ivk: r.array()?,
                binding_hash: r.array()?,
                display_name: Id::parse(r, Field::DisplayName)?,
                ml_dsa_id: if tag == TAG_ADD_HYBRID {
                    Some(r.array()?)
                } else {
                    None
                },
            },
            2 => Self::Leave {
                slot: r.u32()?,
                participant: ParticipantId::parse(r)?,
            },
            3 => Self::Kick {
                slot: r.u32()?,
                participant: ParticipantId::parse(r)?,
            },
            4 => Self::Lock,
            5 => Self::Unlock,
            8 => Self::InviteOnly,
            7 => Self::Unban {
                slot: r.u32()?,
                participant: ParticipantId::parse(r)?,
            },
            tag @ (TAG_SNAPSHOT | TAG_SNAPSHOT_HYBRID) => {
                let hybrid = tag == TAG_SNAPSHOT_HYBRID;
                let flags = r.u8()?;
                if flags > 0b11 {
                    return Err(WireError::UnknownState(flags));
                }
                let (locked, invite_only) = (flags & 1 == 1, flags & 2 == 2);
                let next_slot = r.u32()?;
                let n = usize::from(r.u16()?);
                let mut roster = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    roster.push(RosterEntry::parse(r, hybrid)?);
                }
                // One encoding per list: a SnapshotHybrid without a hybrid entry is the
                // tag 6 snapshot's list (and would not re-encode to these bytes).
                if hybrid && roster.iter().all(|e| e.ml_dsa_id.is_none()) {
                    return Err(WireError::NonCanonicalOp(tag));
                }
                Self::Snapshot {
                    locked,
                    invite_only,
                    next_slot,
                    roster,
                }
            }
            other => return Err(WireError::UnknownOp(other)),
        })
    }
}

/// A link of the LPL chain: the counter `v`, the hash of the previous link and one
/// operation (whitepaper 3.7.7), bound to the meeting instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LplLink {
    /// The meeting instance (so links cannot be replayed into another meeting).
    pub meeting: MeetingRef,
    /// `v`: the number of operations so far, counting this one.
    pub v: u64,
    /// SHA-256 of the previous link's encoding (all zero for the first link of a chain).
    pub prev: [u8; 32],
    /// The operation.
    pub op: LplOp,
}

impl LplLink {
    pub(crate) fn emit_body(&self, w: &mut Vec<u8>) {
        self.meeting.emit(w);
        w.u64(self.v);
        w.bytes(&self.prev);
        self.op.emit(w);
    }

    pub(crate) fn parse_body(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            meeting: MeetingRef::parse(r)?,
            v: r.u64()?,
            prev: r.array()?,
            op: LplOp::parse(r)?,
        })
    }

    /// SHA-256 of the link's encoding: what the next link's `prev` and the heartbeat's
    /// `SHA256(LPL_v)` carry.
    pub fn hash(&self) -> [u8; 32] {
        crypto::sha256(&self.to_bytes())
    }
}
encoding!(LplLink, Kind::LplLink);

/// A signed link, as the leader posts it to the board whenever membership changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkPost {
    /// The link.
    pub link: LplLink,
    /// `Sign.Sign(ISK_leader, "Zoombase1-ClientOnly-Sig-LeaderParticipantList", link)`.
    pub sig: [u8; 64],
}

impl LinkPost {
    /// Signs `link` with the leader's key.
    pub fn sign(link: LplLink, isk: &SigningKey) -> Self {
        let sig = isk.sign(CTX_SIG_LPL, &link.to_bytes());
        Self { link, sig }
    }

    /// Checks the signature against the leader's `ivk`.
    pub fn verify(&self, ivk: &[u8; 32]) -> bool {
        crypto::verify(ivk, &self.sig, CTX_SIG_LPL, &self.link.to_bytes())
    }

    pub(crate) fn emit_body(&self, w: &mut Vec<u8>) {
        w.extend_from_slice(&self.link.to_bytes());
        w.bytes(&self.sig);
    }

    pub(crate) fn parse_body(r: &mut Reader<'_>) -> Result<Self, WireError> {
        parse_header(r, Kind::LplLink)?;
        Ok(Self {
            link: LplLink::parse_body(r)?,
            sig: r.array()?,
        })
    }
}
encoding!(LinkPost, Kind::LinkPost);

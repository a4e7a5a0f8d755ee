//! The leader role: admission, key distribution and rotation, the LPL and heartbeats
//! (whitepaper 3.7.3-3.7.7, v4.6 meetings).

use std::collections::BTreeMap;

use rand_core::TryCryptoRng;
use zeroize::Zeroizing;

use super::config::Timings;
use super::error::MeetingError;
use super::events::Alert;
use super::invite::{Invite, invite_id};
use super::keys::Certification;
use super::limits::{KEY_REQUEST_MIN_GAP_MS, ROSTER_PER_PARTICIPANT};
use super::lpl::add_op;
use super::session::{Live, Outbox, fill};
use crate::crypto::hybrid::{self, BoxPublic};
use crate::crypto::{BOX_NONCE_LEN, BoxKey, CTX_CIPHER_MEETING_SEED, CTX_KDF_MEETING_SEED};
use crate::time::Millis;
use crate::wire::{
    Binding, BoxKind, KeyRequest, LinkPost, LockRequest, LplOp, MemberState, Message, Meta,
    MkPayload, ParticipantId, PqPolicy, Rekey,
};

/// How the leader boxes the meeting key for one member (issue 16).
enum Boxer {
    /// Whitepaper 3.5.2's box: `K` derived once at admission and cached (v4.6: "K may be
    /// cached for this key pair and context").
    Classical(BoxKey),
    /// v4.6's hybrid box, for a member whose binding carries an ML-KEM-768 key when the
    /// leader's does too. Nothing is cached: every box encapsulates anew, so `C_kem`, `K_kem`
    /// and the `K` derived from them (with `Meta` as salt) are fresh each time
    /// (v4.6 meetings.tex, Authenticated Public-Key Encryption).
    Hybrid {
        /// The member's `(pk, ek)`.
        public: BoxPublic,
        /// The member's IVK, `vk_R` in `CAD`.
        ivk: [u8; 32],
    },
}

/// A participant the leader has admitted and sends keys to.
struct Member {
    slot: u32,
    /// How this member's keys are boxed, fixed at admission by the two bindings.
    key: Boxer,
    /// When the leader last answered this member's key request.
    last_key_request: Option<Millis>,
}

/// An admitted participant waiting for the batched rekey: it enters the list (an Add
/// link) in the same rotation that boxes it the key, so that no heartbeat ever certifies
/// a key for a list naming someone who does not hold it (v4.6: heartbeats certify "the
/// list of participants for whom mkSeqNum is accessible").
struct Joining {
    key: Boxer,
    binding_hash: [u8; 32],
}

/// State only the leader has.
pub(crate) struct LeaderState {
    members: BTreeMap<ParticipantId, Member>,
    joining: BTreeMap<ParticipantId, Joining>,
    rekey_at: Option<Millis>,
    last_rotation: Millis,
    next_heartbeat: Millis,
    banned: Vec<Invite>,
}

impl LeaderState {
    pub(crate) fn timeouts(&self, t: &Timings) -> [Option<Millis>; 3] {
        [
            self.rekey_at,
            Some(self.last_rotation.after(t.rotation_interval_ms)),
            Some(self.next_heartbeat),
        ]
    }
}

impl Live {
    fn lead_mut(&mut self) -> Result<&mut LeaderState, MeetingError> {
        self.lead.as_mut().ok_or(MeetingError::NotLeader)
    }

    /// Takes the leader role: for a new meeting (3.7.3), or from `previous` when the
    /// server moves the role here (3.7.7: the new leader coalesces the chain).
    pub(crate) fn become_leader<R: TryCryptoRng + ?Sized>(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        rng: &mut R,
        previous: Option<ParticipantId>,
    ) -> Result<(), MeetingError> {
        self.lead = Some(LeaderState {
            members: BTreeMap::new(),
            joining: BTreeMap::new(),
            rekey_at: None,
            last_rotation: now,
            next_heartbeat: now,
            banned: Vec::new(),
        });
        match previous {
            None => {
                let slot = self.lpl.next_slot().ok_or(MeetingError::MeetingFull)?;
                let op = add_op(
                    slot,
                    &self.cfg.me,
                    &self.binding,
                    self.binding.hash(),
                    &self.cfg.display_name,
                );
                self.post_link(out, op)?;
            }
            Some(old) => {
                // Keys the old leader sent that no heartbeat certified are not history.
                self.keys.drop_uncertified();
                if let Some(e) = self
                    .lpl
                    .entry(&old)
                    .filter(|e| e.state == MemberState::Present)
                {
                    let op = LplOp::Leave {
                        slot: e.slot,
                        participant: old,
                    };
                    self.post_link(out, op)?;
                }
                // A leader is present in its own list (3.7.7). One named before the old
                // leader's rotation listed it (a joiner) adds itself, as a new meeting's
                // first leader does.
                if !self.listed() {
                    if let Some(e) = self
                        .lpl
                        .entry(&self.cfg.me)
                        .filter(|e| e.state == MemberState::Present)
                    {
                        let op = LplOp::Leave {
                            slot: e.slot,
                            participant: self.cfg.me.clone(),
                        };
                        self.post_link(out, op)?;
                    }
                    let slot = self.lpl.next_slot().ok_or(MeetingError::MeetingFull)?;
                    let op = add_op(
                        slot,
                        &self.cfg.me,
                        &self.binding,
                        self.binding.hash(),
                        &self.cfg.display_name,
                    );
                    self.post_link(out, op)?;
                }
                let present: Vec<ParticipantId> = self
                    .lpl
                    .present()
                    .map(|e| e.participant.clone())
                    .filter(|p| p != &self.cfg.me)
                    .collect();
                for p in present {
                    let Some(slot) = self.lpl.entry(&p).map(|e| e.slot) else {
                        continue;
                    };
                    // 3.7.7: the binding hash stays stable across leader changes: key only
                    // the binding the previous leader certified, to a holder of a nonce.
                    // Whoever cannot be keyed is recorded as gone, so the certified list
                    // stays exactly the list of key holders (v4.6 3.7.7).
                    // A leader whose policy is post-quantum `required` keys nobody without an
                    // ML-KEM-768 key (issue 16).
                    let required = self.cfg.pq == PqPolicy::Required;
                    let keyable = self.peers.get(&p).filter(|peer| {
                        peer.nonce.is_some()
                            && self.lpl.entry(&p).map(|e| e.binding_hash)
                                == Some(peer.binding.hash())
                            && (!required || self.meets_required(&peer.binding))
                    });
                    match keyable {
                        Some(peer) => {
                            let key = self.boxer(&peer.binding)?;
                            self.lead_mut()?.members.insert(
                                p,
                                Member {
                                    slot,
                                    key,
                                    last_key_request: None,
                                },
                            );
                        }
                        None => self.post_link(
                            out,
                            LplOp::Leave {
                                slot,
                                participant: p,
                            },
                        )?,
                    }
                }
                let snapshot = self.lpl.snapshot();
                self.post_link(out, snapshot)?;
            }
        }
        // A host holding the invite secret records in the signed list that the meeting is
        // invite-only, so a later leader without the secret admits no newcomer unchecked.
        if self.cfg.host_secret.is_some() && !self.lpl.invite_only() {
            self.post_link(out, LplOp::InviteOnly)?;
        }
        self.rotate(out, now, rng)
    }

    /// Appends `op` to the LPL and posts the signed link; coalesces past the limit.
    fn post_link(&mut self, out: &mut Outbox, op: LplOp) -> Result<(), MeetingError> {
        let link = self.lpl.next_link(op);
        let was_listed = self.listed();
        let me = self.cfg.me.clone();
        let applied = self.lpl.apply(&link, &me)?;
        self.react(out, applied, was_listed);
        out.transmit.push_back(self.sign_link(link)?);
        // 3.7.7: beyond 20 links the leader coalesces them into one.
        if self.lpl.links_since_snapshot() > self.cfg.timings.max_links {
            let link = self.lpl.next_link(self.lpl.snapshot());
            self.lpl.apply(&link, &me)?;
            out.transmit.push_back(self.sign_link(link)?);
        }
        Ok(())
    }

    /// Whether `binding` satisfies this leader's policy `required`: an ML-KEM-768 key, and,
    /// when the leader is a hybrid identity, an ML-DSA-65 key too (revision 4).
    pub(crate) fn meets_required(&self, binding: &Binding) -> bool {
        binding.pq.is_some() && (!self.binding.hybrid_auth() || binding.hybrid_auth())
    }

    /// The link signed by the leader: hybrid for a hybrid identity (revision 4).
    fn sign_link(&mut self, link: crate::wire::LplLink) -> Result<Message, MeetingError> {
        let signed = link.to_bytes();
        self.isk
            .sign(LinkPost { link, sig: [0; 64] }, &signed, &mut self.hedge)
    }

    /// Whether the leader may admit `p` with `binding` (and `invite_proof`): not kicked,
    /// not refused by a locked meeting, proving a valid invite where one is required, and room
    /// left. Each refusal raises an alert and is a typed error; nothing is stored.
    pub(crate) fn admission_check(
        &self,
        out: &mut Outbox,
        p: &ParticipantId,
        binding: &Binding,
        invite_proof: Option<[u8; 32]>,
    ) -> Result<(), MeetingError> {
        let lead = self.lead.as_ref().ok_or(MeetingError::NotLeader)?;
        let known = self.lpl.entry(p);
        // A member that re-announces the binding it was admitted with changes nothing.
        if known
            .is_some_and(|e| e.state == MemberState::Present && e.binding_hash == binding.hash())
        {
            return Ok(());
        }
        // Revision 5: a member the list records keeps both keys of its identity (checked on
        // the announcement too; the list may have moved since it was stored).
        if !self
            .lpl
            .keeps_identity(p, &binding.ivk, binding.ml_dsa_id().as_ref())
            && known.is_some_and(|e| e.ivk == binding.ivk)
        {
            out.alert(Alert::IvkChanged {
                participant: p.clone(),
            });
            return Err(MeetingError::IvkChanged);
        }
        // Finding 3: a kicked identity (its participant ID or its IVK) stays out for the
        // meeting's life, locked or not, unless the host lifts the ban.
        let kicked = known.is_some_and(|e| e.state == MemberState::Kicked)
            || self
                .lpl
                .entries()
                .any(|e| e.state == MemberState::Kicked && e.ivk == binding.ivk);
        if kicked {
            out.alert(Alert::RefusedKicked {
                participant: p.clone(),
            });
            return Err(MeetingError::Banned);
        }
        // v4.6 locked meetings: only someone the list records, with the same IVK, comes
        // back (a member whose connection dropped, before or after its leave was listed).
        if self.lpl.locked() && known.is_none_or(|e| e.ivk != binding.ivk) {
            out.alert(Alert::RefusedLocked {
                participant: p.clone(),
            });
            return Err(MeetingError::Locked);
        }
        // Finding 8: the joiner proves it holds the invite for its userID, bound to its own
        // binding; the invite never crossed the board.
        if let Some(secret) = &self.cfg.host_secret {
            let expected = invite_id(secret, &self.cfg.meeting, &p.user);
            let valid = invite_proof.is_some_and(|proof| expected.verifies(binding, &proof))
                && !lead.banned.contains(&expected);
            if !valid {
                out.alert(Alert::InviteRejected {
                    participant: p.clone(),
                });
                return Err(MeetingError::InviteRejected);
            }
        } else if self.lpl.invite_only() && known.is_none_or(|e| e.ivk != binding.ivk) {
            // An invite-only meeting led by someone without the host's secret: nobody new
            // is admitted unchecked (someone the list records may come back, as when locked).
            out.alert(Alert::InviteCheckUnavailable {
                participant: p.clone(),
            });
            return Err(MeetingError::InviteRejected);
        }
        // Issue 16: a meeting whose policy is post-quantum `required` delivers every key with
        // the hybrid box, so a joiner without an ML-KEM-768 key cannot be keyed.
        // Revision 4: a hybrid leader's `required` asks for a hybrid identity too.
        if self.cfg.pq == PqPolicy::Required && !self.meets_required(binding) {
            out.alert(Alert::PqRequired {
                participant: p.clone(),
            });
            return Err(MeetingError::PqRequired);
        }
        let cap = self.cfg.timings.max_participants;
        // Joiners waiting for the batched rekey hold seats too.
        let present = self.lpl.present().filter(|e| &e.participant != p).count()
            + lead.joining.keys().filter(|q| *q != p).count();
        let room = present < cap
            && self.lpl.next_slot().is_some()
            && (known.is_some() || self.lpl.len() < ROSTER_PER_PARTICIPANT * cap);
        if !room {
            out.alert(Alert::MeetingFull {
                participant: p.clone(),
            });
            return Err(MeetingError::MeetingFull);
        }
        Ok(())
    }

    /// 3.7.4: admits `p` once both its verified binding and a liveness nonce are known.
    pub(crate) fn admit(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        p: &ParticipantId,
    ) -> Result<(), MeetingError> {
        let peer = self
            .peers
            .get(p)
            .ok_or(MeetingError::UnknownParticipant)?
            .clone();
        if peer.nonce.is_none() {
            return Ok(());
        }
        let lead = self.lead.as_ref().ok_or(MeetingError::NotLeader)?;
        // A repeated announcement of an admitted (or joining) binding changes nothing.
        let hash = peer.binding.hash();
        if (lead.members.contains_key(p)
            && self.lpl.entry(p).is_some_and(|e| e.binding_hash == hash))
            || lead.joining.get(p).is_some_and(|j| j.binding_hash == hash)
        {
            return Ok(());
        }
        // The list, the lock and the bans may have moved since the announcement was stored.
        self.admission_check(out, p, &peer.binding, peer.invite_proof)?;
        let key = self.boxer(&peer.binding)?;
        // A present member back with a new binding (a restart) left first: its binding
        // hash in the list never changes while present (3.7.7).
        if let Some(e) = self
            .lpl
            .entry(p)
            .filter(|e| e.state == MemberState::Present)
        {
            let op = LplOp::Leave {
                slot: e.slot,
                participant: p.clone(),
            };
            self.lead_mut()?.members.remove(p);
            self.post_link(out, op)?;
        }
        let batch = self.cfg.timings.join_batch_ms;
        let lead = self.lead_mut()?;
        lead.joining.insert(
            p.clone(),
            Joining {
                key,
                binding_hash: hash,
            },
        );
        // v4.6 3.7.6: joins close together share one rekey, which lists and keys them.
        let at = now.after(batch);
        lead.rekey_at = Some(lead.rekey_at.map_or(at, |r| r.min(at)));
        Ok(())
    }

    /// A member left: record it and rekey within the leave delay (v4.6: at most 10 s).
    pub(crate) fn member_left(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        p: &ParticipantId,
    ) -> Result<(), MeetingError> {
        let delay = self.cfg.timings.leave_rekey_ms;
        let lead = self.lead_mut()?;
        // A joiner that leaves before its rekey was never listed nor keyed.
        if lead.joining.remove(p).is_some() {
            return Ok(());
        }
        let Some(m) = lead.members.remove(p) else {
            return Ok(());
        };
        self.post_link(
            out,
            LplOp::Leave {
                slot: m.slot,
                participant: p.clone(),
            },
        )?;
        let lead = self.lead_mut()?;
        let at = now.after(delay);
        lead.rekey_at = Some(lead.rekey_at.map_or(at, |r| r.min(at)));
        Ok(())
    }

    /// Removes `p` and rotates at once: the new key is never sent to them.
    pub(crate) fn kick<R: TryCryptoRng + ?Sized>(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        p: &ParticipantId,
        rng: &mut R,
    ) -> Result<(), MeetingError> {
        if let Some(j) = self.lead_mut()?.joining.remove(p) {
            // Kicked before its rekey: it never held a key. List it only to record the ban.
            let peer = self.peers.get(p).ok_or(MeetingError::UnknownParticipant)?;
            let (binding, name) = (peer.binding.clone(), peer.display_name.clone());
            let slot = self.lpl.next_slot().ok_or(MeetingError::MeetingFull)?;
            self.post_link(out, add_op(slot, p, &binding, j.binding_hash, &name))?;
            return self.post_link(
                out,
                LplOp::Kick {
                    slot,
                    participant: p.clone(),
                },
            );
        }
        let Some(m) = self.lead_mut()?.members.remove(p) else {
            // Someone who already left can still be banned; no key of theirs is current.
            let slot = self
                .lpl
                .entry(p)
                .filter(|e| e.state == MemberState::Left)
                .map(|e| e.slot)
                .ok_or(MeetingError::UnknownParticipant)?;
            return self.post_link(
                out,
                LplOp::Kick {
                    slot,
                    participant: p.clone(),
                },
            );
        };
        self.post_link(
            out,
            LplOp::Kick {
                slot: m.slot,
                participant: p.clone(),
            },
        )?;
        self.rotate(out, now, rng)
    }

    /// Lifts the ban on a kicked participant (an Unban link): it may join again.
    pub(crate) fn unban(
        &mut self,
        out: &mut Outbox,
        p: &ParticipantId,
    ) -> Result<(), MeetingError> {
        self.lead_mut()?;
        let slot = self
            .lpl
            .entry(p)
            .filter(|e| e.state == MemberState::Kicked)
            .map(|e| e.slot)
            .ok_or(MeetingError::UnknownParticipant)?;
        self.post_link(
            out,
            LplOp::Unban {
                slot,
                participant: p.clone(),
            },
        )
    }

    /// A member's request for the key a verified heartbeat certified (finding 1): signed
    /// with the IVK its list entry records, by a member the leader keys, at most once per
    /// [`KEY_REQUEST_MIN_GAP_MS`]. The answer is the current key, boxed again to the
    /// request's fresh nonce. Nobody the leader removed is ever answered (I1).
    pub(crate) fn on_key_request<R: TryCryptoRng + ?Sized>(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        req: &KeyRequest,
        ml_dsa: Option<&[u8]>,
        rng: &mut R,
    ) -> Result<(), MeetingError> {
        let Some(lead) = self.lead.as_ref() else {
            return Ok(());
        };
        let b = &req.body;
        self.same_meeting(out, &b.meeting)?;
        let member = lead
            .members
            .get(&b.participant)
            .ok_or(MeetingError::NotMember)?;
        let peer = self
            .peers
            .get(&b.participant)
            .ok_or(MeetingError::NotMember)?;
        let listed = self.lpl.entry(&b.participant).is_some_and(|e| {
            e.state == MemberState::Present && e.binding_hash == peer.binding.hash()
        });
        if !listed {
            return Err(MeetingError::NotMember);
        }
        let signed = b.to_bytes();
        Self::check_signed(out, &b.participant, &peer.binding, &signed, req, ml_dsa)?;
        if member
            .last_key_request
            .is_some_and(|at| now < at.after(KEY_REQUEST_MIN_GAP_MS))
        {
            return Err(MeetingError::KeyRequestTooSoon);
        }
        let mk_seq = self.keys.highest();
        if b.mk_seq > mk_seq {
            return Err(MeetingError::StaleKey {
                mk_seq: b.mk_seq,
                highest: mk_seq,
            });
        }
        let mk = Zeroizing::new(*self.keys.get(mk_seq).ok_or(MeetingError::NotLeader)?);
        let rekey = self.box_key(&b.participant, &member.key, mk_seq, &mk, b.nonce, rng)?;
        out.transmit.push_back(Message::Rekey(rekey));
        let p = b.participant.clone();
        let nonce = b.nonce;
        if let Some(m) = self.lead_mut()?.members.get_mut(&p) {
            m.last_key_request = Some(now);
        }
        // The signed request carries a fresh nonce: later rotations answer it too.
        if let Some(peer) = self.peers.get_mut(&p) {
            peer.nonce = Some(nonce);
        }
        Ok(())
    }

    /// 3.7.4 steps 7-11: `MK` and `mkSeqNum` boxed for one member, with its liveness nonce
    /// in the associated data (v4.6 liveness).
    fn box_key<R: TryCryptoRng + ?Sized>(
        &self,
        p: &ParticipantId,
        key: &Boxer,
        mk_seq: u32,
        mk: &[u8; 32],
        recipient_nonce: [u8; crate::wire::LIVENESS_NONCE_LEN],
        rng: &mut R,
    ) -> Result<Rekey, MeetingError> {
        let payload = MkPayload { mk_seq, mk: *mk };
        let meta = Meta {
            meeting: self.cfg.meeting.clone(),
            leader: self.cfg.me.clone(),
            participant: p.clone(),
            recipient_nonce,
        };
        let (boxed, ciphertext) = match key {
            Boxer::Classical(key) => {
                let nonce = fill::<R, BOX_NONCE_LEN>(rng)?;
                let c = key.seal(
                    CTX_CIPHER_MEETING_SEED,
                    &meta.to_bytes(),
                    &payload.to_bytes(),
                    &nonce,
                )?;
                (BoxKind::Classical, c)
            }
            Boxer::Hybrid { public, ivk } => {
                // v4.6 meetings.tex, Authenticated Public-Key Encryption: the same contexts
                // and Meta as the classical box, the leader's and member's IVKs in CAD.
                let sender = self.pq_secret.as_ref().ok_or(MeetingError::NotLeader)?;
                let c = hybrid::encrypt(
                    sender,
                    &self.binding.ivk,
                    public,
                    ivk,
                    CTX_KDF_MEETING_SEED,
                    CTX_CIPHER_MEETING_SEED,
                    &meta.to_bytes(),
                    &payload.to_bytes(),
                    rng,
                )?;
                (BoxKind::Hybrid, c)
            }
        };
        Ok(Rekey {
            boxed,
            mk_seq,
            recipient: p.clone(),
            recipient_nonce,
            ciphertext,
        })
    }

    /// How to box keys for the holder of `binding`: the hybrid when both this leader's
    /// binding and theirs carry an ML-KEM-768 key, the classical box otherwise (issue 16,
    /// policy `preferred`; `required` admitted nobody without one).
    fn boxer(&self, binding: &Binding) -> Result<Boxer, MeetingError> {
        match (&self.pq_secret, binding.box_public()) {
            (Some(_), Some(public)) => Ok(Boxer::Hybrid {
                public,
                ivk: binding.ivk,
            }),
            _ => Ok(Boxer::Classical(BoxKey::derive(
                self.box_pair.secret(),
                &binding.pk,
                CTX_KDF_MEETING_SEED,
            )?)),
        }
    }

    /// A co-host's lock request: from a listed co-host present in the LPL, signed with
    /// the IVK the LPL records, over the LPL head the leader holds (v4.6 meetings).
    pub(crate) fn on_lock_request(
        &mut self,
        out: &mut Outbox,
        req: &LockRequest,
        ml_dsa: Option<&[u8]>,
    ) -> Result<(), MeetingError> {
        if self.lead.is_none() {
            return Ok(());
        }
        let b = &req.body;
        self.same_meeting(out, &b.meeting)?;
        let entry = self
            .lpl
            .entry(&b.requester)
            .ok_or(MeetingError::UnknownParticipant)?;
        if !self.cohosts.contains(&b.requester) || entry.state != MemberState::Present {
            return Err(MeetingError::NotCohost);
        }
        // The binding the list certified for the co-host says how it signs (revision 4).
        // Without it, a classical leader takes a classical signature by the listed IVK, as
        // before; a hybrid leader takes nothing (the co-host may be a hybrid identity, whose
        // classical signature would be a downgrade).
        let certified = self
            .peers
            .get(&b.requester)
            .filter(|p| p.binding_hash == entry.binding_hash);
        match certified {
            Some(peer) => {
                let signed = b.to_bytes();
                Self::check_signed(out, &b.requester, &peer.binding, &signed, req, ml_dsa)?;
            }
            None if ml_dsa.is_none() && !self.binding.hybrid_auth() && req.verify(&entry.ivk) => {}
            None => return Err(MeetingError::BadSignature),
        }
        if b.lpl_head != self.lpl.head() {
            return Err(MeetingError::StaleLockRequest);
        }
        if b.locked == self.lpl.locked() {
            return Ok(());
        }
        self.set_locked(out, b.locked)
    }

    pub(crate) fn set_locked(
        &mut self,
        out: &mut Outbox,
        locked: bool,
    ) -> Result<(), MeetingError> {
        self.lead_mut()?;
        self.post_link(out, if locked { LplOp::Lock } else { LplOp::Unlock })
    }

    pub(crate) fn ban_invite<R: TryCryptoRng + ?Sized>(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        invite: &Invite,
        rng: &mut R,
    ) -> Result<(), MeetingError> {
        let lead = self.lead_mut()?;
        if !lead.banned.contains(invite) {
            lead.banned.push(invite.clone());
        }
        let holders: Vec<ParticipantId> =
            self.peers
                .iter()
                .filter(|(p, peer)| {
                    peer.invite_proof
                        .is_some_and(|proof| invite.verifies(&peer.binding, &proof))
                        && self.lead.as_ref().is_some_and(|l| {
                            l.members.contains_key(*p) || l.joining.contains_key(*p)
                        })
                })
                .map(|(p, _)| p.clone())
                .collect();
        for p in holders {
            self.kick(out, now, &p, rng)?;
        }
        Ok(())
    }

    pub(crate) fn leader_timeout<R: TryCryptoRng + ?Sized>(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        rng: &mut R,
    ) -> Result<(), MeetingError> {
        let t = self.cfg.timings;
        let lead = self.lead_mut()?;
        let batch_due = lead.rekey_at.is_some_and(|at| at <= now);
        // v4.6: rotate at least every five minutes.
        let periodic_due = now >= lead.last_rotation.after(t.rotation_interval_ms);
        if batch_due || periodic_due {
            return self.rotate(out, now, rng);
        }
        if now >= lead.next_heartbeat {
            self.heartbeat(out, now)?;
        }
        Ok(())
    }

    /// 3.7.6: a new, independent MK with the next mkSeqNum, boxed for every member
    /// (3.7.4 steps 7-11), followed by the heartbeat that certifies it.
    fn rotate<R: TryCryptoRng + ?Sized>(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        rng: &mut R,
    ) -> Result<(), MeetingError> {
        self.list_joiners(out)?;
        let mk = Zeroizing::new(fill::<R, 32>(rng)?);
        // v4.6 key rotation: above every key held and every key a verified heartbeat
        // certified, so a new leader that missed the last rotation is not refused as stale
        // (finding 2).
        let mk_seq = self
            .keys
            .highest()
            .max(self.keys.certified())
            .saturating_add(1);
        let lead = self.lead.as_ref().ok_or(MeetingError::NotLeader)?;
        for (p, m) in &lead.members {
            let Some(recipient_nonce) = self.peers.get(p).and_then(|peer| peer.nonce) else {
                continue;
            };
            let rekey = self.box_key(p, &m.key, mk_seq, &mk, recipient_nonce, rng)?;
            out.transmit.push_back(Message::Rekey(rekey));
        }
        let t = self.cfg.timings;
        let (retired, _) =
            self.keys
                .insert(mk_seq, &mk, now, t.retire_after_ms, t.activation_delay_ms);
        out.retire(retired);
        let roster = self.lpl.slots();
        if let Certification::Ready(ready) =
            self.keys
                .certify(mk_seq, roster, now, t.activation_delay_ms)
        {
            out.key_update(ready);
        }
        let lead = self.lead_mut()?;
        lead.rekey_at = None;
        lead.last_rotation = now;
        self.heartbeat(out, now)
    }

    /// Lists the joiners this rotation keys (an Add link each), checking them once more:
    /// the lock, the bans and the cap may have moved during the batch, and a joiner whose
    /// announcement changed since waits for its new admission.
    fn list_joiners(&mut self, out: &mut Outbox) -> Result<(), MeetingError> {
        let joining = core::mem::take(&mut self.lead_mut()?.joining);
        for (p, j) in joining {
            let Some(peer) = self.peers.get(&p).cloned() else {
                continue;
            };
            if peer.binding.hash() != j.binding_hash
                || self
                    .admission_check(out, &p, &peer.binding, peer.invite_proof)
                    .is_err()
            {
                continue;
            }
            let Some(slot) = self.lpl.next_slot() else {
                continue;
            };
            let op = add_op(slot, &p, &peer.binding, j.binding_hash, &peer.display_name);
            self.post_link(out, op)?;
            self.lead_mut()?.members.insert(
                p,
                Member {
                    slot,
                    key: j.key,
                    last_key_request: None,
                },
            );
        }
        Ok(())
    }

    /// Sends the next heartbeat (3.7.7, v4.6).
    fn heartbeat(&mut self, out: &mut Outbox, now: Millis) -> Result<(), MeetingError> {
        let mk_seq = self.keys.highest();
        let hb = self.chain.next(
            &self.isk,
            &mut self.hedge,
            &self.binding,
            &self.lpl,
            mk_seq,
            now,
        )?;
        out.transmit.push_back(hb);
        let interval = self.cfg.timings.heartbeat_interval_ms;
        self.lead_mut()?.next_heartbeat = now.after(interval);
        Ok(())
    }
}

//! How a session reacts to board messages and timers, in either role (whitepaper
//! 3.7.2-3.7.7, v4.6 meetings). Leader-only work is in `leader.rs`.

use rand_core::TryCryptoRng;
use zeroize::Zeroizing;

use super::error::MeetingError;
use super::events::{Alert, LeftReason};
use super::keys::Certification;
use super::limits::MAX_PENDING;
use super::lpl::Applied;
use super::session::{KeyChase, Live, Outbox, Peer, fill};
use crate::crypto::{self, BoxKey, CTX_CIPHER_MEETING_SEED, CTX_KDF_MEETING_SEED, hybrid};
use crate::time::Millis;
use crate::wire::{
    Binding, BoxKind, Heartbeat, KeyAnnouncement, KeyRequest, KeyRequestBody, Kind,
    LIVENESS_NONCE_LEN, LeaderChange, Leave, LinkPost, LplOp, Meta, MkPayload, NonceBody,
    NoncePost, PqPolicy, Rekey, SigRefusal, Signed, WireError,
};

impl Live {
    pub(crate) fn leader_ivk(&self) -> Option<[u8; 32]> {
        self.peers
            .get(&self.leader)
            .map(|p| p.binding.ivk)
            .or_else(|| self.lpl.entry(&self.leader).map(|e| e.ivk))
    }

    /// The leader's security code (whitepaper 3.8): over both keys of a hybrid identity
    /// (revision 4), else over its IVK (from the list when its binding is not held).
    pub(crate) fn leader_code(&self) -> Option<String> {
        if let Some(key) = self
            .peers
            .get(&self.leader)
            .and_then(|p| p.binding.hybrid_key())
        {
            return Some(crypto::security_code_hybrid(&key));
        }
        self.leader_ivk().map(|ivk| crypto::security_code(&ivk))
    }

    /// Checks a signature of `M` by `signer`, whose binding is `binding`, over `signed`
    /// (revision 4: both halves from a hybrid identity). A classical signature by a hybrid
    /// identity's Ed25519 key is refused with [`Alert::ClassicalSignatureRefused`]; any other
    /// failure is a plain [`MeetingError::BadSignature`] (anyone can post forgeries).
    pub(crate) fn check_signed<M: Signed>(
        out: &mut Outbox,
        signer: &crate::wire::ParticipantId,
        binding: &Binding,
        signed: &[u8],
        msg: &M,
        ml_dsa: Option<&[u8]>,
    ) -> Result<(), MeetingError> {
        match binding.check_signed::<M>(signed, msg.ed25519_sig(), ml_dsa) {
            Ok(()) => Ok(()),
            Err(SigRefusal::Forged) => Err(MeetingError::BadSignature),
            Err(SigRefusal::ClassicalFromHybrid) => {
                out.alert(Alert::ClassicalSignatureRefused {
                    signer: signer.clone(),
                });
                Err(MeetingError::SignatureDowngrade)
            }
        }
    }

    /// Refuses, with an alert, a message bound to another meeting instance (a replay by the
    /// server from another meetingUUID, whitepaper 3.10).
    pub(crate) fn same_meeting(
        &self,
        out: &mut Outbox,
        meeting: &crate::wire::MeetingRef,
    ) -> Result<(), MeetingError> {
        if meeting == &self.cfg.meeting {
            return Ok(());
        }
        out.alert(Alert::WrongMeeting);
        Err(MeetingError::WrongMeeting)
    }

    fn leader_binding(&self) -> Result<&Binding, MeetingError> {
        self.peers
            .get(&self.leader)
            .map(|p| &p.binding)
            .ok_or(MeetingError::UnknownLeader)
    }

    pub(crate) fn next_timeout(&self) -> Option<Millis> {
        let t = &self.cfg.timings;
        let mut next = vec![Some(self.next_nonce_at), self.keys.next_timeout()];
        match &self.lead {
            Some(lead) => next.extend(lead.timeouts(t)),
            None => {
                next.push(Some(self.heartbeat_deadline()));
                if let Some(c) = &self.chase {
                    next.push(Some(if c.stopped {
                        c.next_request
                    } else {
                        c.since.after(t.activation_delay_ms)
                    }));
                }
            }
        }
        next.into_iter().flatten().min()
    }

    fn heartbeat_deadline(&self) -> Millis {
        let t = &self.cfg.timings;
        self.last_heartbeat_ok.after(
            t.heartbeat_interval_ms
                .saturating_mul(u64::from(t.missed_heartbeats)),
        )
    }

    /// Posts a fresh 192-bit liveness nonce (v4.6 meetings: liveness).
    pub(crate) fn post_nonce<R: TryCryptoRng + ?Sized>(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        rng: &mut R,
    ) -> Result<(), MeetingError> {
        let nonce = fill::<R, LIVENESS_NONCE_LEN>(rng)?;
        self.my_nonces = [Some(nonce), self.my_nonces[0]];
        let body = NonceBody {
            meeting: self.cfg.meeting.clone(),
            participant: self.cfg.me.clone(),
            nonce,
        };
        let signed = body.to_bytes();
        let post = NoncePost { body, sig: [0; 64] };
        out.transmit
            .push_back(self.isk.sign(post, &signed, &mut self.hedge)?);
        self.next_nonce_at = now.after(self.cfg.timings.nonce_interval_ms);
        Ok(())
    }

    pub(crate) fn on_timeout<R: TryCryptoRng + ?Sized>(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        rng: &mut R,
    ) -> Result<(), MeetingError> {
        self.keys.expire(now);
        if now >= self.next_nonce_at {
            self.post_nonce(out, now, rng)?;
        }
        if self.lead.is_some() {
            return self.leader_timeout(out, now, rng);
        }
        self.chase_key(out, now, rng)?;
        // 3.7.7: ten heartbeats missed in a row -> drop out of the meeting. A heartbeat
        // certifying a key that never came does not count: the board may be withholding it.
        if now >= self.heartbeat_deadline() {
            self.end = Some(if self.chase.is_some() {
                LeftReason::KeyWithheld
            } else {
                LeftReason::HeartbeatsMissed
            });
        }
        Ok(())
    }

    /// While a certified key is missing: after the activation delay (the rekey may merely
    /// be behind its heartbeat) stop sending under every older key and alert; ask the
    /// leader for the key then and once per heartbeat interval after.
    fn chase_key<R: TryCryptoRng + ?Sized>(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        rng: &mut R,
    ) -> Result<(), MeetingError> {
        let t = self.cfg.timings;
        let Some(mut chase) = self.chase else {
            return Ok(());
        };
        if !chase.stopped && now >= chase.since.after(t.activation_delay_ms) {
            out.retire(self.keys.retire_older_than(chase.mk_seq, now));
            out.alert(Alert::KeyWithheld {
                mk_seq: chase.mk_seq,
            });
            chase.stopped = true;
        }
        if chase.stopped && now >= chase.next_request {
            let nonce = fill::<R, LIVENESS_NONCE_LEN>(rng)?;
            self.my_nonces = [Some(nonce), self.my_nonces[0]];
            let body = KeyRequestBody {
                meeting: self.cfg.meeting.clone(),
                participant: self.cfg.me.clone(),
                mk_seq: chase.mk_seq,
                nonce,
            };
            let signed = body.to_bytes();
            let req = KeyRequest { body, sig: [0; 64] };
            out.transmit
                .push_back(self.isk.sign(req, &signed, &mut self.hedge)?);
            chase.next_request = now.after(t.heartbeat_interval_ms);
        }
        self.chase = Some(chase);
        Ok(())
    }

    pub(crate) fn on_announcement(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        a: &KeyAnnouncement,
        ml_dsa: Option<&[u8]>,
    ) -> Result<(), MeetingError> {
        let p = a.binding.participant.clone();
        self.same_meeting(out, &a.binding.meeting)?;
        // 3.7.4 steps 5-6: verify Sig_i over Binding_i; abort this join on failure. A hybrid
        // binding (0x0B) needs both halves (revision 4).
        let signed = a.binding.to_bytes();
        match Self::check_signed(out, &p, &a.binding, &signed, a, ml_dsa) {
            Ok(()) => {}
            Err(MeetingError::BadSignature) => {
                if self.lead.is_some() {
                    out.alert(Alert::BadBindingSignature { participant: p });
                }
                return Err(MeetingError::BadSignature);
            }
            Err(e) => return Err(e),
        }
        if p == self.cfg.me {
            return Ok(());
        }
        // Every refusal comes before anything is stored (finding 7 of the security review:
        // a refused announcement overwrote a member's binding, and every later rotation
        // skipped the member).
        let old = self.peers.get(&p);
        // The current leader's binding is what its links, heartbeats and keys are checked
        // against: a different one mid-meeting is a substitution, never a rejoin (a leader
        // that rejoins is a leader change).
        if p == self.leader && old.is_some_and(|o| o.binding != a.binding) {
            out.alert(Alert::IvkChanged { participant: p });
            return Err(MeetingError::LeaderBindingChanged);
        }
        // 3.7.7: the same (userID, deviceID) keeps its IVK for the meeting's life, whether
        // the list records it or it is still waiting to be admitted.
        let listed_ivk = self.lpl.entry(&p).map(|e| e.ivk);
        // Revision 4: a hybrid identity is both keys; the same IVK with another ML-DSA key
        // (or none) than the binding held is another identity. Revision 5: the list records
        // both keys too, so a leader that no longer holds the binding (one that took over)
        // still refuses a rejoin resting on the Ed25519 key alone.
        let ml_dsa_of = |b: &Binding| b.pq.as_ref().and_then(|k| k.ml_dsa.clone());
        let other_ml_dsa = old.is_some_and(|o| ml_dsa_of(&o.binding) != ml_dsa_of(&a.binding));
        let listed_other =
            !self
                .lpl
                .keeps_identity(&p, &a.binding.ivk, a.binding.ml_dsa_id().as_ref());
        if other_ml_dsa
            || listed_other
            || old.is_some_and(|o| listed_ivk.is_none() && o.binding.ivk != a.binding.ivk)
        {
            out.alert(Alert::IvkChanged { participant: p });
            return Err(MeetingError::IvkChanged);
        }
        if self.lead.is_some() {
            self.admission_check(out, &p, &a.binding, a.invite_proof)?;
        }
        if old.is_none() && listed_ivk.is_none() {
            let pending = self
                .peers
                .keys()
                .filter(|q| self.lpl.entry(q).is_none())
                .count();
            if pending >= MAX_PENDING {
                return Err(MeetingError::TooManyPending);
            }
        }
        // A nonce answers one announcement: a new binding (a rejoin) waits for a new nonce.
        let nonce = old.and_then(|o| (o.binding == a.binding).then_some(o.nonce).flatten());
        self.peers.insert(
            p.clone(),
            Peer {
                binding_hash: a.binding.hash(),
                binding: a.binding.clone(),
                display_name: a.display_name.clone(),
                invite_proof: a.invite_proof,
                nonce,
            },
        );
        if self.lead.is_some() {
            self.admit(out, now, &p)?;
        }
        Ok(())
    }

    pub(crate) fn on_nonce(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        post: &NoncePost,
        ml_dsa: Option<&[u8]>,
    ) -> Result<(), MeetingError> {
        self.same_meeting(out, &post.body.meeting)?;
        let p = post.body.participant.clone();
        if p == self.cfg.me {
            return Ok(());
        }
        let peer = self
            .peers
            .get_mut(&p)
            .ok_or(MeetingError::UnknownParticipant)?;
        let signed = post.body.to_bytes();
        Self::check_signed(out, &p, &peer.binding, &signed, post, ml_dsa)?;
        peer.nonce = Some(post.body.nonce);
        if self.lead.is_some() {
            self.admit(out, now, &p)?;
        }
        Ok(())
    }

    pub(crate) fn on_rekey(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        r: &Rekey,
    ) -> Result<(), MeetingError> {
        if r.recipient != self.cfg.me || self.lead.is_some() {
            return Ok(());
        }
        // 3.7.6 (v4.6): a mkSeqNum not above the known one is ignored; nor is a key older
        // than one a verified heartbeat certified handed off (finding 1).
        self.keys.check_new(r.mk_seq)?;
        // v4.6 liveness: accept only keys answering one of our two latest nonces.
        if !self
            .my_nonces
            .iter()
            .flatten()
            .any(|n| n == &r.recipient_nonce)
        {
            return Err(MeetingError::StaleNonce);
        }
        let leader = self.leader_binding()?;
        // Issue 16: a participant that requires the hybrid takes keys only from a leader whose
        // signed binding requires it too, so nobody in the list got this key classically.
        // It leaves at once: every key of this leader would be refused (the policy is in its
        // signed binding, which a board cannot change), and waiting would only end the
        // session as a withheld key the driver rejoins after.
        // Revision 4: a hybrid identity that requires it takes keys only from a hybrid
        // leader too, so every signature it follows is hybrid.
        let weak = leader.pq_policy() != PqPolicy::Required
            || (self.binding.hybrid_auth() && !leader.hybrid_auth());
        if self.cfg.pq == PqPolicy::Required && weak {
            out.alert(Alert::WeakPqPolicy {
                leader: self.leader.clone(),
                policy: leader.pq_policy(),
            });
            self.end = Some(LeftReason::WeakPqPolicy);
            return Err(MeetingError::WeakPqPolicy);
        }
        // 3.7.5 steps 9-12: Meta, contexts, Box.Dec.
        let meta = Meta {
            meeting: self.cfg.meeting.clone(),
            leader: self.leader.clone(),
            participant: self.cfg.me.clone(),
            recipient_nonce: r.recipient_nonce,
        };
        let plain = match r.boxed {
            BoxKind::Hybrid => {
                // v4.6 meetings.tex, Authenticated Public-Key Encryption: Box.Dec with both
                // halves of both parties' keys (the leader's from its signed binding).
                let (Some(secret), Some(leader_public)) = (&self.pq_secret, leader.box_public())
                else {
                    return Err(WireError::UnexpectedKind(Kind::HybridRekey as u8).into());
                };
                Zeroizing::new(hybrid::decrypt(
                    secret,
                    &self.binding.ivk,
                    &leader_public,
                    &leader.ivk,
                    CTX_KDF_MEETING_SEED,
                    CTX_CIPHER_MEETING_SEED,
                    &meta.to_bytes(),
                    &r.ciphertext,
                )?)
            }
            BoxKind::Classical => {
                // Issue 16: with an ML-KEM-768 key of our own, a classical box is a downgrade
                // when the leader could have used the hybrid (its binding has a key too) or
                // when we require the hybrid.
                let downgrade = self.binding.pq.is_some()
                    && (leader.pq.is_some() || self.cfg.pq == PqPolicy::Required);
                let leader_pk = leader.pk;
                if self.leader_key.is_none() {
                    self.leader_key = Some(BoxKey::derive(
                        self.box_pair.secret(),
                        &leader_pk,
                        CTX_KDF_MEETING_SEED,
                    )?);
                }
                let key = self
                    .leader_key
                    .as_ref()
                    .ok_or(MeetingError::UnknownLeader)?;
                let plain = Zeroizing::new(key.open(
                    CTX_CIPHER_MEETING_SEED,
                    &meta.to_bytes(),
                    &r.ciphertext,
                )?);
                if downgrade {
                    // Opened only to tell a forgery (any board can post one: a plain BadTag
                    // above, no alert) from a box made with the leader's X25519 key (by the
                    // leader, or by whoever recovered that key): the latter is refused with an
                    // alert, its contents dropped (zeroized) and nothing changed.
                    out.alert(Alert::ClassicalKeyRefused { mk_seq: r.mk_seq });
                    return Err(MeetingError::Downgrade);
                }
                plain
            }
        };
        let payload = MkPayload::from_bytes(&plain)?;
        if payload.mk_seq != r.mk_seq {
            return Err(MeetingError::SeqMismatch);
        }
        let t = self.cfg.timings;
        let (retired, ready) = self.keys.insert(
            payload.mk_seq,
            &payload.mk,
            now,
            t.retire_after_ms,
            t.activation_delay_ms,
        );
        out.retire(retired);
        // The certifying heartbeat may have arrived first: the key goes out with the roster
        // that heartbeat certified.
        if let Some(ready) = ready {
            out.key_update(ready);
        }
        if self.chase.is_some() && !self.keys.missing() {
            // The key (or a newer one) came: the heartbeat that certified it counts now.
            self.chase = None;
            self.last_heartbeat_ok = self.last_heartbeat_seen;
        }
        Ok(())
    }

    pub(crate) fn on_heartbeat(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        hb: &Heartbeat,
        ml_dsa: Option<&[u8]>,
    ) -> Result<(), MeetingError> {
        if self.lead.is_some() {
            return Ok(());
        }
        // The leader's mkSeqNum never goes down (v4.6 key rotation); checked before the
        // chain moves, so a refused heartbeat changes nothing.
        if hb.mk_seq < self.keys.certified() {
            return Err(MeetingError::HeartbeatOrder);
        }
        let binding = self.leader_binding()?.clone();
        let h = hb.input(&binding).hash();
        Self::check_signed(out, &self.leader, &binding, &h, hb, ml_dsa)?;
        let mk_seq = match self.chain.accept(hb, h, &self.lpl) {
            Ok(s) => s,
            Err(MeetingError::HeartbeatChain) => {
                out.alert(Alert::HeartbeatChainMismatch);
                return Err(MeetingError::HeartbeatChain);
            }
            Err(e) => return Err(e),
        };
        self.last_heartbeat_seen = now;
        // v4.6: start using a key only after the heartbeat that certifies it, with exactly
        // the list that heartbeat certified.
        let delay = self.cfg.timings.activation_delay_ms;
        match self.keys.certify(mk_seq, self.lpl.slots(), now, delay) {
            Certification::Ready(ready) => {
                out.key_update(ready);
                self.chase = None;
                self.last_heartbeat_ok = now;
            }
            Certification::Held => {
                self.chase = None;
                self.last_heartbeat_ok = now;
            }
            Certification::Missing if !self.listed() => {
                // A key made for a list this participant is not (yet) in: not its key to
                // hold. The meeting is alive; admission brings the next key.
                self.chase = None;
                self.last_heartbeat_ok = now;
            }
            Certification::Missing => {
                // Finding 1: a heartbeat for a key this participant never got proves the
                // meeting alive, not this participant in it. Chase the key (handle_timeout).
                let chase = self.chase.get_or_insert(KeyChase {
                    mk_seq,
                    since: now,
                    stopped: false,
                    next_request: now,
                });
                chase.mk_seq = mk_seq;
            }
        }
        Ok(())
    }

    pub(crate) fn on_link(
        &mut self,
        out: &mut Outbox,
        post: &LinkPost,
        ml_dsa: Option<&[u8]>,
    ) -> Result<(), MeetingError> {
        if self.lead.is_some() {
            return Ok(());
        }
        self.same_meeting(out, &post.link.meeting)?;
        let binding = self.leader_binding()?;
        let signed = post.link.to_bytes();
        Self::check_signed(out, &self.leader, binding, &signed, post, ml_dsa)?;
        let was_listed = self.listed();
        let leader = self.leader.clone();
        match self.lpl.apply(&post.link, &leader) {
            Ok(applied) => {
                self.react(out, applied, was_listed);
                Ok(())
            }
            Err(e @ (MeetingError::LplChain | MeetingError::LplContinuity)) => {
                out.alert(Alert::LplChainMismatch);
                Err(e)
            }
            Err(MeetingError::IvkChanged) => {
                let participant = match &post.link.op {
                    LplOp::Add { participant, .. } => participant.clone(),
                    _ => self.leader.clone(),
                };
                out.alert(Alert::IvkChanged { participant });
                Err(MeetingError::IvkChanged)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the LPL lists this session as present with its current binding (a link
    /// about an earlier session of the same participant, replayed to a rejoiner, is not
    /// about this one).
    pub(crate) fn listed(&self) -> bool {
        self.lpl.entry(&self.cfg.me).is_some_and(|e| {
            e.state == crate::wire::MemberState::Present && e.binding_hash == self.binding.hash()
        })
    }

    /// Reacts to an applied LPL link; `was_listed` is [`Live::listed`] before it.
    pub(crate) fn react(&mut self, out: &mut Outbox, applied: Applied, was_listed: bool) {
        match applied {
            Applied::Kicked { participant } if participant == self.cfg.me && was_listed => {
                self.end = Some(LeftReason::Kicked);
            }
            Applied::Left { participant } if participant == self.cfg.me && was_listed => {
                // The certified list no longer has us: no key will come; leave cleanly so
                // the driver can rejoin.
                self.end = Some(LeftReason::ListedAsLeft);
            }
            Applied::Left { participant } => {
                // 3.10: count the user's leaves over all of their devices.
                let count = self.lpl.leaves_of_user(&participant.user);
                if count >= self.cfg.timings.leave_alert_threshold {
                    out.alert(Alert::RepeatedLeaves { participant, count });
                }
            }
            Applied::Unlocked => out.alert(Alert::MeetingUnlocked),
            _ => {}
        }
    }

    pub(crate) fn on_leave(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        l: &Leave,
    ) -> Result<(), MeetingError> {
        if self.lead.is_some() {
            self.member_left(out, now, &l.participant)?;
        }
        Ok(())
    }

    pub(crate) fn on_leader_change<R: TryCryptoRng + ?Sized>(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        c: &LeaderChange,
        rng: &mut R,
    ) -> Result<(), MeetingError> {
        if c.leader == self.leader {
            return Ok(());
        }
        // 3.7.7 / v4.6 locked meetings: the new leader must be in the previous LPL, with
        // the binding that list certified.
        let listed = self.lpl.entry(&c.leader).is_some_and(|e| {
            e.state == crate::wire::MemberState::Present
                && self
                    .peers
                    .get(&c.leader)
                    .is_some_and(|p| p.binding.hash() == e.binding_hash)
        });
        if !listed {
            if self.lpl.locked() {
                self.end = Some(LeftReason::LeaderNotInLockedList);
                return Ok(());
            }
            out.alert(Alert::LeaderNotInPreviousList {
                leader: c.leader.clone(),
            });
        }
        let old = core::mem::replace(&mut self.leader, c.leader.clone());
        self.leader_key = None;
        // Finding 6: the notice is the board's word, not proof the meeting lives; only a
        // verified heartbeat moves the deadline. Keys the old leader sent that no heartbeat
        // certified are not part of the agreed history: forget them, so the new leader's
        // first key (numbered above every certified one) is accepted (finding 2).
        self.keys.drop_uncertified();
        self.chase = None;
        // 3.8: prompt everyone to check the new leader's security code.
        if let Some(code) = self.leader_code() {
            out.alert(Alert::VerifySecurityCode {
                leader: c.leader.clone(),
                code,
            });
        }
        if c.leader == self.cfg.me {
            self.become_leader(out, now, rng, Some(old))?;
        } else {
            self.lead = None;
        }
        Ok(())
    }
}

//! How a session reacts to board messages and timers, in either role (whitepaper
//! 3.7.2-3.7.7, v4.6 meetings). Leader-only work is in `leader.rs`.

use rand_core::TryCryptoRng;
use zeroize::Zeroizing;

use super::error::MeetingError;
use super::events::{Alert, LeftReason};
use super::lpl::Applied;
use super::session::{Live, Outbox, Peer, fill};
use crate::crypto::{self, BoxKey, CTX_CIPHER_MEETING_SEED, CTX_KDF_MEETING_SEED};
use crate::time::Millis;
use crate::wire::{
    Binding, Heartbeat, KeyAnnouncement, LIVENESS_NONCE_LEN, LeaderChange, Leave, LinkPost, LplOp,
    Message, Meta, MkPayload, NonceBody, NoncePost, Rekey,
};

impl Live {
    pub(crate) fn leader_ivk(&self) -> Option<[u8; 32]> {
        self.peers
            .get(&self.leader)
            .map(|p| p.binding.ivk)
            .or_else(|| self.lpl.entry(&self.leader).map(|e| e.ivk))
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
            None => next.push(Some(self.heartbeat_deadline())),
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
        out.transmit
            .push_back(Message::NoncePost(NoncePost::sign(body, &self.isk)));
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
        // 3.7.7: ten heartbeats missed in a row -> drop out of the meeting.
        if now >= self.heartbeat_deadline() {
            self.end = Some(LeftReason::HeartbeatsMissed);
        }
        Ok(())
    }

    pub(crate) fn on_announcement(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        a: &KeyAnnouncement,
    ) -> Result<(), MeetingError> {
        let p = a.binding.participant.clone();
        if a.binding.meeting != self.cfg.meeting {
            // A binding from another meeting instance, replayed by the server.
            out.alert(Alert::WrongMeeting);
            return Err(MeetingError::WrongMeeting);
        }
        // 3.7.4 steps 5-6: verify Sig_i over Binding_i; abort this join on failure.
        if !a.binding.verify(&a.sig) {
            if self.lead.is_some() {
                out.alert(Alert::BadBindingSignature { participant: p });
            }
            return Err(MeetingError::BadSignature);
        }
        if p == self.cfg.me {
            return Ok(());
        }
        let old = self.peers.get(&p);
        // The current leader's binding is what its links, heartbeats and keys are checked
        // against: a different one mid-meeting is a substitution, never a rejoin (a leader
        // that rejoins is a leader change).
        if p == self.leader && old.is_some_and(|o| o.binding != a.binding) {
            out.alert(Alert::IvkChanged { participant: p });
            return Err(MeetingError::LeaderBindingChanged);
        }
        // A nonce answers one announcement: a new binding (a rejoin) waits for a new nonce.
        let nonce = old.and_then(|o| (o.binding == a.binding).then_some(o.nonce).flatten());
        self.peers.insert(
            p.clone(),
            Peer {
                binding: a.binding.clone(),
                display_name: a.display_name.clone(),
                invite: a.invite,
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
    ) -> Result<(), MeetingError> {
        if post.body.meeting != self.cfg.meeting {
            out.alert(Alert::WrongMeeting);
            return Err(MeetingError::WrongMeeting);
        }
        let p = post.body.participant.clone();
        if p == self.cfg.me {
            return Ok(());
        }
        let peer = self
            .peers
            .get_mut(&p)
            .ok_or(MeetingError::UnknownParticipant)?;
        if !post.verify(&peer.binding.ivk) {
            return Err(MeetingError::BadSignature);
        }
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
        // 3.7.6 (v4.6): a mkSeqNum not above the known one is ignored.
        if r.mk_seq <= self.keys.highest() {
            return Err(MeetingError::StaleKey {
                mk_seq: r.mk_seq,
                highest: self.keys.highest(),
            });
        }
        // v4.6 liveness: accept only keys answering one of our two latest nonces.
        if !self
            .my_nonces
            .iter()
            .flatten()
            .any(|n| n == &r.recipient_nonce)
        {
            return Err(MeetingError::StaleNonce);
        }
        let leader_pk = self.leader_binding()?.pk;
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
        // 3.7.5 steps 9-12: Meta, contexts, Box.Dec.
        let meta = Meta {
            meeting: self.cfg.meeting.clone(),
            leader: self.leader.clone(),
            participant: self.cfg.me.clone(),
            recipient_nonce: r.recipient_nonce,
        };
        let plain =
            Zeroizing::new(key.open(CTX_CIPHER_MEETING_SEED, &meta.to_bytes(), &r.ciphertext)?);
        let payload = MkPayload::from_bytes(&plain)?;
        if payload.mk_seq != r.mk_seq {
            return Err(MeetingError::SeqMismatch);
        }
        let t = self.cfg.timings;
        out.retire(
            self.keys
                .insert(payload.mk_seq, &payload.mk, now, t.retire_after_ms),
        );
        // The certifying heartbeat may have arrived first.
        if self.keys.is_certified(payload.mk_seq)
            && let Some(ready) = self
                .keys
                .certify(payload.mk_seq, now, t.activation_delay_ms)
        {
            out.key_update(ready, self.lpl.slots());
        }
        Ok(())
    }

    pub(crate) fn on_heartbeat(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        hb: &Heartbeat,
    ) -> Result<(), MeetingError> {
        if self.lead.is_some() {
            return Ok(());
        }
        let binding = self.leader_binding()?.clone();
        let mk_seq = match self.chain.accept(hb, &binding, &self.lpl) {
            Ok(s) => s,
            Err(MeetingError::HeartbeatChain) => {
                out.alert(Alert::HeartbeatChainMismatch);
                return Err(MeetingError::HeartbeatChain);
            }
            Err(e) => return Err(e),
        };
        self.last_heartbeat_ok = now;
        // v4.6: start using a key only after the heartbeat that certifies it.
        if let Some(ready) = self
            .keys
            .certify(mk_seq, now, self.cfg.timings.activation_delay_ms)
        {
            out.key_update(ready, self.lpl.slots());
        }
        Ok(())
    }

    pub(crate) fn on_link(
        &mut self,
        out: &mut Outbox,
        post: &LinkPost,
    ) -> Result<(), MeetingError> {
        if self.lead.is_some() {
            return Ok(());
        }
        if post.link.meeting != self.cfg.meeting {
            out.alert(Alert::WrongMeeting);
            return Err(MeetingError::WrongMeeting);
        }
        let ivk = self.leader_binding()?.ivk;
        if !post.verify(&ivk) {
            return Err(MeetingError::BadSignature);
        }
        let was_listed = self.listed();
        match self.lpl.apply(&post.link) {
            Ok(applied) => {
                self.react(out, applied, was_listed);
                Ok(())
            }
            Err(MeetingError::LplChain) => {
                out.alert(Alert::LplChainMismatch);
                Err(MeetingError::LplChain)
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
        self.last_heartbeat_ok = now;
        // 3.8: prompt everyone to check the new leader's security code.
        if let Some(ivk) = self.leader_ivk() {
            out.alert(Alert::VerifySecurityCode {
                leader: c.leader.clone(),
                code: crypto::security_code(&ivk),
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

//! The per-participant state machine and its participant-role handlers.

use std::collections::{BTreeMap, VecDeque};

use rand_core::TryCryptoRng;
use zeroize::Zeroizing;

use super::config::Config;
use super::error::MeetingError;
use super::events::{Alert, Event, KeyUpdate, LeftReason, MeetingKey};
use super::heartbeat::Chain;
use super::keyring::{KeyRing, Ready};
use super::leader::LeaderState;
use super::lpl::{Applied, Lpl, RosterView};
use crate::crypto::{
    self, BoxKey, BoxKeyPair, CTX_CIPHER_MEETING_SEED, CTX_KDF_MEETING_SEED, CryptoError,
    SigningKey,
};
use crate::time::Millis;
use crate::wire::{
    Binding, Heartbeat, KeyAnnouncement, LIVENESS_NONCE_LEN, LeaderChange, Leave, LinkPost, LplOp,
    Message, Meta, MkPayload, NonceBody, NoncePost, ParticipantId, Rekey,
};

/// Which role a session plays now; the server can move the leader role at any time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Generates, distributes and rotates meeting keys; keeps the LPL; sends heartbeats.
    Leader,
    /// Receives keys from the leader and checks the LPL and heartbeats.
    Participant,
}

/// Messages and events waiting for the driver.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub(crate) transmit: VecDeque<Message>,
    pub(crate) events: VecDeque<Event>,
}

impl Outbox {
    pub(crate) fn alert(&mut self, a: Alert) {
        self.events.push_back(Event::Alert(a));
    }

    pub(crate) fn key_update(&mut self, ready: Ready, roster: BTreeMap<u32, ParticipantId>) {
        self.events.push_back(Event::KeyUpdate(KeyUpdate {
            mk_seq: ready.mk_seq,
            meeting_key: MeetingKey::new(&ready.mk),
            roster,
            activate_at: ready.activate_at,
        }));
    }

    pub(crate) fn retire(&mut self, retired: Vec<(u32, Millis)>) {
        for (mk_seq, at) in retired {
            self.events.push_back(Event::RetireEpoch { mk_seq, at });
        }
    }
}

/// What the session knows of another participant from the board.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) binding: Binding,
    pub(crate) display_name: crate::wire::Id,
    pub(crate) invite: Option<[u8; 32]>,
    /// Their latest verified liveness nonce.
    pub(crate) nonce: Option<[u8; LIVENESS_NONCE_LEN]>,
}

/// Everything that exists only while the participant is in the meeting. Dropping it
/// zeroizes every meeting key, derived key and the ephemeral secret key (3.7.8).
pub(crate) struct Live {
    pub(crate) cfg: Config,
    pub(crate) isk: SigningKey,
    pub(crate) box_pair: BoxKeyPair,
    pub(crate) binding: Binding,
    pub(crate) leader: ParticipantId,
    pub(crate) peers: BTreeMap<ParticipantId, Peer>,
    /// `K` shared with the current leader, cached.
    pub(crate) leader_key: Option<BoxKey>,
    pub(crate) lpl: Lpl,
    pub(crate) chain: Chain,
    pub(crate) keys: KeyRing,
    /// This participant's two most recent liveness nonces, latest first.
    pub(crate) my_nonces: [Option<[u8; LIVENESS_NONCE_LEN]>; 2],
    pub(crate) next_nonce_at: Millis,
    pub(crate) last_heartbeat_ok: Millis,
    pub(crate) lead: Option<LeaderState>,
    /// Set by a handler that ends the session.
    pub(crate) end: Option<LeftReason>,
}

/// One participant's view of one meeting instance, in either role.
///
/// See the [module documentation](super) for how a driver pumps it.
pub struct Session {
    me: ParticipantId,
    out: Outbox,
    live: Option<Live>,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("me", &self.me)
            .field("role", &self.role())
            .field("ended", &self.live.is_none())
            .finish_non_exhaustive()
    }
}

pub(crate) fn fill<R: TryCryptoRng + ?Sized, const N: usize>(
    rng: &mut R,
) -> Result<[u8; N], MeetingError> {
    let mut b = [0u8; N];
    rng.try_fill_bytes(&mut b).map_err(|_| CryptoError::Rng)?;
    Ok(b)
}

impl Session {
    /// Joins a meeting (whitepaper 3.7.2): generates the ephemeral box key pair, signs the
    /// binding, and queues the announcement and a first liveness nonce. If the server
    /// named this participant the leader, it starts leading (3.7.3).
    pub fn new<R: TryCryptoRng + ?Sized>(
        cfg: Config,
        isk: SigningKey,
        now: Millis,
        rng: &mut R,
    ) -> Result<Self, MeetingError> {
        // 3.7.2 step 1: a fresh ephemeral key pair, kept for the meeting only.
        let box_pair = BoxKeyPair::generate(rng)?;
        // step 3: Binding_i = meetingID || meetingUUID || i || deviceID || IVK_i || pk_i
        let binding = Binding {
            meeting: cfg.meeting.clone(),
            participant: cfg.me.clone(),
            ivk: isk.verifying_key(),
            pk: *box_pair.public(),
        };
        // steps 4-5: Sig_i over the binding.
        let sig = binding.sign(&isk);
        let me = cfg.me.clone();
        let mut out = Outbox::default();
        let ann = KeyAnnouncement {
            binding: binding.clone(),
            sig,
            display_name: cfg.display_name.clone(),
            invite: cfg.invite,
        };
        // step 7: post to the board.
        out.transmit.push_back(Message::KeyAnnouncement(ann));
        let mut peers = BTreeMap::new();
        peers.insert(
            me.clone(),
            Peer {
                binding: binding.clone(),
                display_name: cfg.display_name.clone(),
                invite: cfg.invite,
                nonce: None,
            },
        );
        let mut live = Live {
            leader: cfg.leader.clone(),
            lpl: Lpl::new(cfg.meeting.clone()),
            cfg,
            isk,
            box_pair,
            binding,
            peers,
            leader_key: None,
            chain: Chain::default(),
            keys: KeyRing::default(),
            my_nonces: [None, None],
            next_nonce_at: now,
            last_heartbeat_ok: now,
            lead: None,
            end: None,
        };
        live.post_nonce(&mut out, now, rng)?;
        if live.leader == me {
            live.become_leader(&mut out, now, rng, None)?;
        }
        Ok(Self {
            me,
            out,
            live: Some(live),
        })
    }

    /// This participant.
    pub fn me(&self) -> &ParticipantId {
        &self.me
    }

    /// The current role, or `None` once the session ended.
    pub fn role(&self) -> Option<Role> {
        self.live.as_ref().map(|l| {
            if l.lead.is_some() {
                Role::Leader
            } else {
                Role::Participant
            }
        })
    }

    /// The leader this session follows (or is).
    pub fn leader(&self) -> Option<&ParticipantId> {
        self.live.as_ref().map(|l| &l.leader)
    }

    /// The 39-digit security code of the current leader (whitepaper 3.8), once its
    /// binding is known.
    pub fn leader_security_code(&self) -> Option<String> {
        let live = self.live.as_ref()?;
        let ivk = live.leader_ivk()?;
        Some(crypto::security_code(&ivk))
    }

    /// The participant list as the LPL says.
    pub fn roster(&self) -> Option<RosterView> {
        self.live.as_ref().map(|l| l.lpl.view())
    }

    /// The highest `mkSeqNum` this session holds (0 before the first key).
    pub fn mk_seq(&self) -> u32 {
        self.live.as_ref().map_or(0, |l| l.keys.highest())
    }

    /// The hash of the last heartbeat accepted or sent, to compare chains in tests.
    pub fn heartbeat_head(&self) -> Option<[u8; 32]> {
        self.live.as_ref().and_then(|l| l.chain.last)
    }

    /// Whether the session still holds any key material: meeting keys, derived keys, the
    /// ephemeral box secret key or the identity key. False once it has ended.
    pub fn holds_key_material(&self) -> bool {
        self.live.is_some()
    }

    /// The next message to post to the board.
    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.out.transmit.pop_front()
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }

    /// When [`Session::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.live.as_ref().and_then(Live::next_timeout)
    }

    /// Processes one message from the board (untrusted bytes).
    pub fn handle<R: TryCryptoRng + ?Sized>(
        &mut self,
        now: Millis,
        bytes: &[u8],
        rng: &mut R,
    ) -> Result<(), MeetingError> {
        let msg = Message::from_bytes(bytes)?;
        self.handle_message(now, &msg, rng)
    }

    /// Processes one already-parsed board message.
    pub fn handle_message<R: TryCryptoRng + ?Sized>(
        &mut self,
        now: Millis,
        msg: &Message,
        rng: &mut R,
    ) -> Result<(), MeetingError> {
        let live = self.live.as_mut().ok_or(MeetingError::Ended)?;
        let out = &mut self.out;
        let r = match msg {
            Message::KeyAnnouncement(a) => live.on_announcement(out, now, a, rng),
            Message::NoncePost(p) => live.on_nonce(out, now, p, rng),
            Message::Rekey(r) => live.on_rekey(out, now, r),
            Message::Heartbeat(h) => live.on_heartbeat(out, now, h),
            Message::LinkPost(l) => live.on_link(out, l),
            Message::Leave(l) => live.on_leave(out, now, l),
            Message::LeaderChange(c) => live.on_leader_change(out, now, c, rng),
        };
        self.finish();
        r
    }

    /// Runs the timers due at `now`: heartbeats, rotations, batched rekeys, nonce
    /// posts, key retirement, and the missed-heartbeat limit.
    pub fn handle_timeout<R: TryCryptoRng + ?Sized>(
        &mut self,
        now: Millis,
        rng: &mut R,
    ) -> Result<(), MeetingError> {
        let live = self.live.as_mut().ok_or(MeetingError::Ended)?;
        let r = live.on_timeout(&mut self.out, now, rng);
        self.finish();
        r
    }

    /// Leaves the meeting (whitepaper 3.7.8): posts a leave notice and discards every
    /// key. The session ends with [`LeftReason::Requested`].
    pub fn leave(&mut self) -> Result<(), MeetingError> {
        let live = self.live.as_mut().ok_or(MeetingError::Ended)?;
        self.out.transmit.push_back(Message::Leave(Leave {
            participant: self.me.clone(),
        }));
        live.end = Some(LeftReason::Requested);
        self.finish();
        Ok(())
    }

    /// Leader command: removes `participant` and rotates the key at once, so they cannot
    /// read anything sent afterwards.
    pub fn kick<R: TryCryptoRng + ?Sized>(
        &mut self,
        now: Millis,
        participant: &ParticipantId,
        rng: &mut R,
    ) -> Result<(), MeetingError> {
        let live = self.live.as_mut().ok_or(MeetingError::Ended)?;
        let r = live.kick(&mut self.out, now, participant, rng);
        self.finish();
        r
    }

    /// Leader command: locks the meeting (v4.6 meetings: locked meetings).
    pub fn lock(&mut self) -> Result<(), MeetingError> {
        let live = self.live.as_mut().ok_or(MeetingError::Ended)?;
        live.set_locked(&mut self.out, true)
    }

    /// Leader command: unlocks the meeting.
    pub fn unlock(&mut self) -> Result<(), MeetingError> {
        let live = self.live.as_mut().ok_or(MeetingError::Ended)?;
        live.set_locked(&mut self.out, false)
    }

    /// Leader command: bans an invite ID for the rest of the meeting and removes whoever
    /// joined with it.
    pub fn ban_invite<R: TryCryptoRng + ?Sized>(
        &mut self,
        now: Millis,
        invite: [u8; 32],
        rng: &mut R,
    ) -> Result<(), MeetingError> {
        let live = self.live.as_mut().ok_or(MeetingError::Ended)?;
        let r = live.ban_invite(&mut self.out, now, invite, rng);
        self.finish();
        r
    }

    /// Ends the session if a handler asked to: drops (and so zeroizes) all live state.
    fn finish(&mut self) {
        if let Some(reason) = self.live.as_ref().and_then(|l| l.end) {
            self.live = None;
            self.out.events.push_back(Event::Left(reason));
        }
    }
}

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

    fn next_timeout(&self) -> Option<Millis> {
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
    fn post_nonce<R: TryCryptoRng + ?Sized>(
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

    fn on_timeout<R: TryCryptoRng + ?Sized>(
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

    fn on_announcement<R: TryCryptoRng + ?Sized>(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        a: &KeyAnnouncement,
        rng: &mut R,
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
        if p == self.leader {
            self.leader_key = None;
        }
        let nonce = self.peers.get(&p).and_then(|old| {
            (old.binding.ivk == a.binding.ivk)
                .then_some(old.nonce)
                .flatten()
        });
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
            self.admit(out, now, &p, rng)?;
        }
        Ok(())
    }

    fn on_nonce<R: TryCryptoRng + ?Sized>(
        &mut self,
        out: &mut Outbox,
        now: Millis,
        post: &NoncePost,
        rng: &mut R,
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
            self.admit(out, now, &p, rng)?;
        }
        Ok(())
    }

    fn on_rekey(&mut self, out: &mut Outbox, now: Millis, r: &Rekey) -> Result<(), MeetingError> {
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

    fn on_heartbeat(
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

    fn on_link(&mut self, out: &mut Outbox, post: &LinkPost) -> Result<(), MeetingError> {
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
        match self.lpl.apply(&post.link) {
            Ok(applied) => {
                self.react(out, applied);
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

    /// Reacts to an applied LPL link, as leader or participant.
    pub(crate) fn react(&mut self, out: &mut Outbox, applied: Applied) {
        match applied {
            Applied::Kicked { participant } if participant == self.cfg.me => {
                self.end = Some(LeftReason::Kicked);
            }
            Applied::Left {
                participant,
                leaves,
            } if leaves >= self.cfg.timings.leave_alert_threshold => {
                out.alert(Alert::RepeatedLeaves {
                    participant,
                    count: leaves,
                });
            }
            Applied::Unlocked => out.alert(Alert::MeetingUnlocked),
            _ => {}
        }
    }

    fn on_leave(&mut self, out: &mut Outbox, now: Millis, l: &Leave) -> Result<(), MeetingError> {
        if self.lead.is_some() {
            self.member_left(out, now, &l.participant)?;
        }
        Ok(())
    }

    fn on_leader_change<R: TryCryptoRng + ?Sized>(
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

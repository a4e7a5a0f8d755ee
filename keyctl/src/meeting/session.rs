//! The per-participant state machine and its participant-role handlers.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand_core::{TryCryptoRng, TryRng};
use zeroize::Zeroizing;

use super::config::Config;
use super::error::MeetingError;
use super::events::{Alert, Event, KeyDelivery, KeyUpdate, LeftReason, MeetingKey};
use super::heartbeat::Chain;
use super::invite::Invite;
use super::keys::{HeldKeys, Ready};
use super::leader::LeaderState;
use super::lpl::{Lpl, RosterView};
use crate::crypto::hybrid::BoxSecret;
use crate::crypto::hybrid_sig::HybridSigningKey;
use crate::crypto::{self, BoxKey, BoxKeyPair, CryptoError, SigningKey};
use crate::time::Millis;
use crate::wire::{
    Binding, Hybrid, KeyAnnouncement, LIVENESS_NONCE_LEN, Leave, LockRequest, LockRequestBody,
    Message, ParticipantId, PqKey, PqPolicy, Signed,
};

/// The session's long-term identity: Ed25519, or Ed25519 + ML-DSA-65 (revision 4).
pub(crate) enum Identity {
    Classical(SigningKey),
    Hybrid(HybridSigningKey),
}

impl Identity {
    pub(crate) fn ed25519(&self) -> &SigningKey {
        match self {
            Self::Classical(k) => k,
            Self::Hybrid(k) => k.ed25519(),
        }
    }

    /// Signs `msg` over `signed` (the bytes its signature covers): classically under
    /// `M::CONTEXT`, or, for a hybrid identity, both halves under `M::HYBRID_CONTEXT`, as the
    /// message's hybrid kind.
    pub(crate) fn sign<M: Signed>(
        &self,
        mut msg: M,
        signed: &[u8],
        hedge: &mut SigHedge,
    ) -> Result<Message, MeetingError> {
        Ok(match self {
            Self::Classical(k) => {
                msg.set_ed25519_sig(k.sign(M::CONTEXT, signed));
                msg.into_message()
            }
            Self::Hybrid(k) => {
                let sig = k.sign(M::HYBRID_CONTEXT, signed, hedge)?;
                M::hybrid_message(Hybrid::new(msg, &sig))
            }
        })
    }
}

/// The `rnd` of hedged ML-DSA signing (FIPS 204 algorithm 2) for a sans-IO session, which
/// signs where no caller randomness reaches it (a lock, a leave): `SHA256(seed || counter)`,
/// `seed` 32 bytes from the caller's generator when the session starts, zeroized on drop.
/// (aws-lc-rs, the default provider, draws `rnd` from its own DRBG and ignores this.)
pub(crate) struct SigHedge {
    seed: Zeroizing<[u8; 32]>,
    counter: u64,
}

impl TryRng for SigHedge {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        rand_core::utils::next_word_via_fill(self)
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        rand_core::utils::next_word_via_fill(self)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(32) {
            let mut input = Zeroizing::new([0u8; 40]);
            input[..32].copy_from_slice(&self.seed[..]);
            input[32..].copy_from_slice(&self.counter.to_be_bytes());
            self.counter = self.counter.wrapping_add(1);
            let block = Zeroizing::new(crypto::sha256(&input[..]));
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
}

impl TryCryptoRng for SigHedge {}

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

    pub(crate) fn key_update(&mut self, ready: Ready) {
        self.events.push_back(Event::KeyUpdate(KeyUpdate {
            mk_seq: ready.mk_seq,
            meeting_key: MeetingKey::new(&ready.mk),
            roster: ready.roster,
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
    /// `SHA256(binding)`, kept so that comparing with the list's binding hashes (for every
    /// member, at every status refresh: [`Session::key_delivery`]) hashes nothing.
    pub(crate) binding_hash: [u8; 32],
    pub(crate) display_name: crate::wire::Id,
    /// The proof of an invite the announcement carried.
    pub(crate) invite_proof: Option<[u8; 32]>,
    /// Their latest verified liveness nonce.
    pub(crate) nonce: Option<[u8; LIVENESS_NONCE_LEN]>,
}

/// A participant chasing a key that a verified heartbeat certified but that never came
/// (finding 1 of the security review: a board withholding one participant's rekey).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyChase {
    /// The certified `mkSeqNum`.
    pub(crate) mk_seq: u32,
    /// When a heartbeat first certified a key this participant did not hold.
    pub(crate) since: Millis,
    /// Whether the superseded keys were retired (sending stopped) and the alert raised.
    pub(crate) stopped: bool,
    /// When to (re)send the key request.
    pub(crate) next_request: Millis,
}

/// Everything that exists only while the participant is in the meeting. Dropping it
/// zeroizes every meeting key, derived key and the ephemeral secret key (3.7.8).
pub(crate) struct Live {
    pub(crate) cfg: Config,
    pub(crate) isk: Identity,
    pub(crate) hedge: SigHedge,
    pub(crate) box_pair: BoxKeyPair,
    /// The hybrid key pair whose X25519 half is `box_pair`, unless the local policy is `Off`
    /// (v4.6 `Box.KeyGen`); zeroized on drop.
    pub(crate) pq_secret: Option<BoxSecret>,
    pub(crate) binding: Binding,
    pub(crate) leader: ParticipantId,
    pub(crate) peers: BTreeMap<ParticipantId, Peer>,
    /// `K` shared with the current leader, cached.
    pub(crate) leader_key: Option<BoxKey>,
    pub(crate) lpl: Lpl,
    pub(crate) chain: Chain,
    pub(crate) keys: HeldKeys,
    /// This participant's two most recent liveness nonces, latest first.
    pub(crate) my_nonces: [Option<[u8; LIVENESS_NONCE_LEN]>; 2],
    pub(crate) next_nonce_at: Millis,
    /// The last time a verified heartbeat proved this participant in the meeting: it
    /// extended the chain and certified a key this participant holds (whitepaper 3.7.7).
    pub(crate) last_heartbeat_ok: Millis,
    /// The last time any heartbeat verified; becomes `last_heartbeat_ok` when the key it
    /// certified arrives.
    pub(crate) last_heartbeat_seen: Millis,
    pub(crate) chase: Option<KeyChase>,
    pub(crate) lead: Option<LeaderState>,
    /// Participants the server says are co-hosts (trusted from the server, v4.6).
    pub(crate) cohosts: BTreeSet<ParticipantId>,
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
    /// named this participant the leader, it starts leading (3.7.3). Fails with
    /// [`MeetingError::InvalidTimings`] if the timings break the protocol's bounds.
    pub fn new<R: TryCryptoRng + ?Sized>(
        cfg: Config,
        isk: SigningKey,
        now: Millis,
        rng: &mut R,
    ) -> Result<Self, MeetingError> {
        Self::start(cfg, Identity::Classical(isk), now, rng)
    }

    /// Joins as [`Session::new`] does, with a hybrid identity (Ed25519 + ML-DSA-65; revision
    /// 4, issue 16 part 2): the binding is of kind 0x0B, carrying the ML-DSA-65 key as well as
    /// an ML-KEM-768 key (a local policy of `Off` counts as `Preferred`), and everything this
    /// session signs is hybrid-signed. The policy then covers authentication too: as leader,
    /// `Required` admits only hybrid identities; as participant, it takes keys only from a
    /// hybrid leader whose binding says `Required`.
    pub fn new_hybrid<R: TryCryptoRng + ?Sized>(
        mut cfg: Config,
        isk: HybridSigningKey,
        now: Millis,
        rng: &mut R,
    ) -> Result<Self, MeetingError> {
        if cfg.pq == PqPolicy::Off {
            cfg.pq = PqPolicy::Preferred;
        }
        Self::start(cfg, Identity::Hybrid(isk), now, rng)
    }

    fn start<R: TryCryptoRng + ?Sized>(
        cfg: Config,
        isk: Identity,
        now: Millis,
        rng: &mut R,
    ) -> Result<Self, MeetingError> {
        cfg.timings.validate()?;

        // 3.7.2 step 1: a fresh ephemeral key pair, kept for the meeting only; unless the
        // local policy is off, v4.6's hybrid pair (X25519, ML-KEM-768), whose X25519 half is
        // the binding's pk (v4.6 meetings.tex, Authenticated Public-Key Encryption).
        let (box_pair, pq_secret) = match cfg.pq {
            PqPolicy::Off => (BoxKeyPair::generate(rng)?, None),
            PqPolicy::Preferred | PqPolicy::Required => {
                let secret = BoxSecret::generate(rng)?;
                (
                    BoxKeyPair::from_secret(secret.x25519_secret())?,
                    Some(secret),
                )
            }
        };
        let pq = match &pq_secret {
            Some(secret) => {
                let mlkem = secret
                    .public()
                    .mlkem
                    .as_slice()
                    .try_into()
                    .map_err(|_| CryptoError::BadMlKemKey)?;
                let ml_dsa = match &isk {
                    Identity::Classical(_) => None,
                    Identity::Hybrid(k) => Some(Box::new(
                        k.verifying_key()
                            .ml_dsa()
                            .try_into()
                            .map_err(|_| CryptoError::KeyRejected)?,
                    )),
                };
                Some(PqKey {
                    policy: cfg.pq,
                    mlkem: Box::new(mlkem),
                    ml_dsa,
                })
            }
            None => None,
        };
        // The ML-DSA hedge of a hybrid identity, drawn after the box keys (a classical
        // session draws exactly what it drew before revision 4, and never uses it).
        let mut hedge = SigHedge {
            seed: Zeroizing::new([0; 32]),
            counter: 0,
        };
        if let Identity::Hybrid(_) = isk {
            hedge.seed = Zeroizing::new(fill::<R, 32>(rng)?);
        }
        // step 3: Binding_i = meetingID || meetingUUID || i || deviceID || IVK_i || pk_i,
        // with the policy and ek appended when there is one (revision 3).
        let binding = Binding {
            meeting: cfg.meeting.clone(),
            participant: cfg.me.clone(),
            ivk: isk.ed25519().verifying_key(),
            pk: *box_pair.public(),
            pq,
        };
        // The invite stays here; the board sees a proof bound to this binding.
        let invite_proof = cfg.invite.as_ref().map(|i| i.proof(&binding));
        let me = cfg.me.clone();
        let mut out = Outbox::default();
        let ann = KeyAnnouncement {
            binding: binding.clone(),
            sig: [0; 64],
            display_name: cfg.display_name.clone(),
            invite_proof,
        };
        // steps 4-5 and 7: Sig_i over the binding (both halves for a hybrid identity), posted
        // to the board.
        let ann = isk.sign(ann, &binding.to_bytes(), &mut hedge)?;
        out.transmit.push_back(ann);
        let mut peers = BTreeMap::new();
        peers.insert(
            me.clone(),
            Peer {
                binding_hash: binding.hash(),
                binding: binding.clone(),
                display_name: cfg.display_name.clone(),
                invite_proof,
                nonce: None,
            },
        );
        let mut live = Live {
            leader: cfg.leader.clone(),
            lpl: Lpl::new(cfg.meeting.clone()),
            cfg,
            isk,
            hedge,
            box_pair,
            pq_secret,
            binding,
            peers,
            leader_key: None,
            chain: Chain::default(),
            keys: HeldKeys::default(),
            my_nonces: [None, None],
            next_nonce_at: now,
            last_heartbeat_ok: now,
            last_heartbeat_seen: now,
            chase: None,
            lead: None,
            cohosts: BTreeSet::new(),
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
    ///
    /// For a leader whose binding is a hybrid identity (kind 0x0B) it is
    /// [`crypto::security_code_hybrid`] over both keys (revision 4).
    pub fn leader_security_code(&self) -> Option<String> {
        self.live.as_ref()?.leader_code()
    }

    /// Whether this session's own identity is hybrid (Ed25519 + ML-DSA-65: a 0x0B binding,
    /// hybrid signatures; [`Session::new_hybrid`]). `None` once the session ended.
    pub fn hybrid_identity(&self) -> Option<bool> {
        self.live.as_ref().map(|l| l.binding.hybrid_auth())
    }

    /// Whether the current leader signs hybrid (Ed25519 + ML-DSA-65): its signed binding is a
    /// hybrid identity (kind 0x0B), so its links and heartbeats are accepted only with both
    /// signatures. `None` until this session holds the leader's binding.
    pub fn leader_hybrid_auth(&self) -> Option<bool> {
        let live = self.live.as_ref()?;
        live.peers
            .get(&live.leader)
            .map(|p| p.binding.hybrid_auth())
    }

    /// The participant list as the LPL says.
    pub fn roster(&self) -> Option<RosterView> {
        self.live.as_ref().map(|l| l.lpl.view())
    }

    /// This session's own post-quantum setting ([`Config::pq`]).
    pub fn local_pq(&self) -> Option<PqPolicy> {
        self.live.as_ref().map(|l| l.cfg.pq)
    }

    /// The meeting's post-quantum policy: what the current leader's signed binding states,
    /// once this session holds it (a board cannot change it; issue 16).
    pub fn pq_policy(&self) -> Option<PqPolicy> {
        let live = self.live.as_ref()?;
        live.peers.get(&live.leader).map(|p| p.binding.pq_policy())
    }

    /// How each member present in the LPL gets the meeting key: hybrid or classical, read
    /// from the bindings whose hashes the signed list records (issue 16: every participant
    /// can see which of its peers got the key classically). `None` once the session ended.
    pub fn key_delivery(&self) -> Option<BTreeMap<ParticipantId, KeyDelivery>> {
        let live = self.live.as_ref()?;
        let leader_pq = live.peers.get(&live.leader).map(|p| p.binding.pq.is_some());
        let out = live
            .lpl
            .present()
            .map(|e| {
                let binding = live
                    .peers
                    .get(&e.participant)
                    .filter(|p| p.binding_hash == e.binding_hash)
                    .map(|p| &p.binding);
                let delivery = match (leader_pq, binding) {
                    _ if e.participant == live.leader => KeyDelivery::Leader,
                    (Some(false), _) => KeyDelivery::Classical,
                    (Some(true), Some(b)) if b.pq.is_some() => KeyDelivery::Hybrid,
                    (Some(true), Some(_)) => KeyDelivery::Classical,
                    (None, _) | (Some(true), None) => KeyDelivery::Unknown,
                };
                (e.participant.clone(), delivery)
            })
            .collect();
        Some(out)
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
            Message::KeyAnnouncement(a) => live.on_announcement(out, now, a, None),
            Message::NoncePost(p) => live.on_nonce(out, now, p, None),
            Message::Rekey(r) => live.on_rekey(out, now, r),
            Message::Heartbeat(h) => live.on_heartbeat(out, now, h, None),
            Message::LinkPost(l) => live.on_link(out, l, None),
            Message::Leave(l) => live.on_leave(out, now, l),
            Message::LeaderChange(c) => live.on_leader_change(out, now, c, rng),
            Message::LockRequest(l) => live.on_lock_request(out, l, None),
            Message::KeyRequest(k) => live.on_key_request(out, now, k, None, rng),
            Message::HybridKeyAnnouncement(h) => {
                live.on_announcement(out, now, &h.msg, Some(&h.ml_dsa[..]))
            }
            Message::HybridNoncePost(h) => live.on_nonce(out, now, &h.msg, Some(&h.ml_dsa[..])),
            Message::HybridHeartbeat(h) => live.on_heartbeat(out, now, &h.msg, Some(&h.ml_dsa[..])),
            Message::HybridLinkPost(h) => live.on_link(out, &h.msg, Some(&h.ml_dsa[..])),
            Message::HybridLockRequest(h) => live.on_lock_request(out, &h.msg, Some(&h.ml_dsa[..])),
            Message::HybridKeyRequest(h) => {
                live.on_key_request(out, now, &h.msg, Some(&h.ml_dsa[..]), rng)
            }
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

    /// Leader command: lifts the ban on a kicked participant, who may then join again (its
    /// list entry becomes `Left`).
    pub fn unban(&mut self, participant: &ParticipantId) -> Result<(), MeetingError> {
        let live = self.live.as_mut().ok_or(MeetingError::Ended)?;
        let r = live.unban(&mut self.out, participant);
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

    /// Records who the server says the co-hosts are; a leader accepts lock requests only
    /// from them (v4.6 meetings: locked meetings).
    pub fn set_cohosts(
        &mut self,
        cohosts: impl IntoIterator<Item = ParticipantId>,
    ) -> Result<(), MeetingError> {
        let live = self.live.as_mut().ok_or(MeetingError::Ended)?;
        live.cohosts = cohosts.into_iter().collect();
        Ok(())
    }

    /// Co-host command: asks the leader to lock (or unlock) the meeting, signing over the
    /// LPL head this session holds. If the list moves on first, the leader refuses it and
    /// the co-host asks again (v4.6 meetings: locked meetings).
    pub fn request_lock(&mut self, locked: bool) -> Result<(), MeetingError> {
        let live = self.live.as_mut().ok_or(MeetingError::Ended)?;
        let body = LockRequestBody {
            meeting: live.cfg.meeting.clone(),
            requester: live.cfg.me.clone(),
            lpl_head: live.lpl.head(),
            locked,
        };
        let signed = body.to_bytes();
        let req = LockRequest { body, sig: [0; 64] };
        let msg = live.isk.sign(req, &signed, &mut live.hedge)?;
        self.out.transmit.push_back(msg);
        Ok(())
    }

    /// Leader command: bans an invite for the rest of the meeting and kicks whoever joined
    /// with it.
    pub fn ban_invite<R: TryCryptoRng + ?Sized>(
        &mut self,
        now: Millis,
        invite: &Invite,
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

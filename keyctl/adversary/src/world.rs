//! The deterministic world: four sessions of one meeting, an adversary-controlled board
//! holding every post, virtual time, and the oracle state the invariants are checked
//! against. Everything is driven through keyctl's public API (`Session`, `wire`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use keyctl::crypto::hybrid_sig::HybridSigningKey;
use keyctl::crypto::{SigningKey, sha256};
use keyctl::meeting::{
    Alert, Config, Event, LeftReason, MeetingError, Millis, ROSTER_PER_PARTICIPANT, Role,
    RosterView, Session, Timings,
};
use keyctl::wire::{
    BoxKind, Field, Id, LIVENESS_NONCE_LEN, LeaderChange, Leave, MeetingRef, MemberState, Message,
    ParticipantId, Rekey,
};

use crate::action::{ADVANCE_MS, Action, Kind};
use crate::invariant::{Invariant, Violation};
use keyctl::test_rng::TestRng;

/// Sessions in the world: the host (0), two honest participants (1, 2) and the
/// adversary's own participant (3, [`MALLORY`]).
pub const PARTIES: usize = 4;
/// The index of the participant the adversary controls.
pub const MALLORY: usize = 3;
/// Honest sessions are `0..HONEST`; I2-I4 are promised to them only.
pub const HONEST: usize = 3;
/// I4: a participant sends under the new leader's key within this long after its first
/// heartbeat (v4.6 meetings: leader change).
pub const NEW_LEADER_KEY_MS: u64 = 10_000;
/// I6: at most this many messages leave one session in answer to one input, given every
/// identity the world can hold ([`MAX_IDENTITIES`]; keyctl has no cap to size this by): a
/// rotation boxes one rekey per member and posts a heartbeat and a nonce, a leader change
/// adds a leave link per member it cannot key and coalescing snapshots.
pub const TRANSMIT_BOUND: usize = 3 * MAX_IDENTITIES + 8;
/// I6: at most this many events per input (a key update, retirements of the held epochs,
/// alerts, one per member at most, a departure).
pub const EVENT_BOUND: usize = 2 * MAX_IDENTITIES + 8;
/// The list bound the harness holds keyctl to (I6): the roster never lists more identities
/// than this. The world sets keyctl's participant cap ([`Timings::max_participants`]) to a
/// quarter of it, since a leader keeps [`ROSTER_PER_PARTICIPANT`] list entries per
/// participant it may have present; the Sybils the board can announce exceed it.
pub const MEETING_CAP: usize = 16;
/// At most this many [`Action::InjectIdentity`] per run take effect (the world's own
/// memory bound; above [`MEETING_CAP`], so a missing cap shows).
pub const MAX_INJECTED: u32 = 24;
/// At most this many [`Action::ForgeRejoin`] per run take effect (each forged session
/// reads the whole board when it starts).
pub const MAX_FORGED: u32 = 8;
/// Every identity a world can hold: its parties and the most Sybils it lets the board
/// announce.
pub const MAX_IDENTITIES: usize = PARTIES + MAX_INJECTED as usize;
/// Rounds of delivery a [`Action::FlushAll`] runs before it gives up (each round hands
/// every pending post to its recipients; answers make new posts).
const FLUSH_ROUNDS: usize = 16;
/// The board never holds more posts than this, so a run's memory is bounded; beyond it
/// posts are lost (as if the board dropped them) and I4, whose precondition is that the
/// board delivered the leader's posts, is no longer judged.
const MAX_POSTS: usize = 4_096;

/// The protocol's timings, made small (within [`Timings::validate`]) so a short run
/// reaches every timeout: heartbeats every second, three missed ones end a session. The
/// rotation stays above the 10 s of I4 so a key nobody accepts is not papered over by the
/// next periodic rotation.
pub fn timings() -> Timings {
    Timings {
        activation_delay_ms: 200,
        retire_after_ms: 1_000,
        heartbeat_interval_ms: 1_000,
        missed_heartbeats: 3,
        rotation_interval_ms: 30_000,
        join_batch_ms: 100,
        leave_rekey_ms: 100,
        nonce_interval_ms: 4_000,
        max_links: 20,
        leave_alert_threshold: 4,
        max_participants: MEETING_CAP / ROSTER_PER_PARTICIPANT,
    }
}

/// I2's bound: a participant that verified a heartbeat certifying a newer key sends under
/// it within the time receivers keep the older key (v4.6 liveness: `retire_after`), plus
/// the activation delay (whitepaper 3.7.6).
pub fn i2_bound(t: &Timings) -> u64 {
    t.retire_after_ms + t.activation_delay_ms
}

/// I3's bound: missed heartbeats times the interval (whitepaper 3.7.7).
pub fn i3_bound(t: &Timings) -> u64 {
    t.heartbeat_interval_ms
        .saturating_mul(u64::from(t.missed_heartbeats))
}

/// Who posted to the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Poster {
    Party(usize),
    Server,
    /// The adversary's session forged under this party's identity key
    /// ([`Action::ForgeRejoin`]).
    Forger(usize),
}

/// One board post.
#[derive(Debug, Clone)]
struct Post {
    from: Poster,
    /// The poster's session instance (for I4's "keeps receiving the new leader's
    /// messages").
    from_instance: Option<Instance>,
    bytes: Vec<u8>,
    kind: Kind,
    /// For a rekey: its recipient. Other posts go to everyone.
    recipient: Option<ParticipantId>,
    posted_at: Millis,
}

/// A session instance: a party index and how many times it (re)joined.
pub type Instance = (usize, u32);

/// What happened to one post, per recipient instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Pending,
    Delivered,
    Dropped,
    /// Not for this recipient (its own post, or a rekey for someone else).
    NotForMe,
}

/// A meeting key some leader made, by the hash of its bytes.
#[derive(Debug, Clone)]
struct Made {
    by: Instance,
    /// Instances the maker listed as removed (LPL left or kicked, not re-admitted since)
    /// when it made the key (I1).
    removed: BTreeSet<Instance>,
    /// Identities the maker had seen kicked when it made the key (I5; there is no
    /// un-ban command, so a kick is for the rest of the meeting).
    kicked: BTreeSet<usize>,
}

/// One key update as the dataplane would see it.
#[derive(Debug, Clone)]
struct Update {
    mk_seq: u32,
    key_hash: [u8; 32],
    activate_at: Millis,
}

struct Party {
    session: Session,
    generation: u32,
    fates: Vec<Fate>,
    left: Option<LeftReason>,
    /// I3's reference: when this instance started, last accepted a heartbeat, or stopped
    /// leading.
    hb_reference: Millis,
    was_leader: bool,
    became_leader_at: Millis,
    updates: Vec<Update>,
    /// mkSeqNum -> when the session retired it (`Event::RetireEpoch`): the dataplane sends
    /// and opens nothing under it from then on.
    retired: BTreeMap<u32, Millis>,
    /// I2: mkSeqNum certified by an accepted heartbeat -> when first accepted.
    certified: BTreeMap<u32, Millis>,
    /// The leader this session follows, as last observed.
    following: Option<ParticipantId>,
    /// Whether this session's leader ever changed (I4 concerns new leaders only).
    leader_changed: bool,
    /// I4: the first heartbeat accepted under the current (changed-to) leader.
    /// The leader is recorded as the session instance that posted the heartbeat.
    first_hb_of_leader: Option<(ParticipantId, Instance, Millis)>,
    /// I4: leader instances whose posts the board held back from this session.
    starved_by: BTreeSet<Instance>,
    /// Last observed roster state per identity (party index), with the binding hash of a
    /// present entry.
    roster: BTreeMap<usize, (MemberState, [u8; 32])>,
    /// Instances this session has seen removed (I1), identities seen kicked (I5).
    removed: BTreeSet<Instance>,
    kicked: BTreeSet<usize>,
    /// The latest refusals (typed errors) of this instance, for [`World::describe`].
    refusals: Vec<(Millis, MeetingError)>,
    /// The latest alerts of this instance ([`World::alerts`]).
    alerts: Vec<Alert>,
}

/// How many refusals per party [`World::describe`] keeps.
const KEEP_REFUSALS: usize = 6;
/// How many alerts per party the world keeps ([`World::alerts`]).
const KEEP_ALERTS: usize = 16;

/// Keeps the last `keep` items of `list`, then `item`.
fn push_bounded<T>(list: &mut Vec<T>, keep: usize, item: T) {
    if list.len() >= keep {
        list.remove(0);
    }
    list.push(item);
}

/// What a party's identity key is, as the list should record it for the meeting's life
/// (3.7.7, revision 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Listed {
    ivk: [u8; 32],
    ml_dsa_id: Option<[u8; 32]>,
}

/// The session the adversary forged under a party's Ed25519 key ([`Action::ForgeRejoin`]).
struct Forger {
    session: Session,
    /// Whose participant ID and `IVK` it uses.
    victim: usize,
    other_ml_dsa: bool,
    /// The board posts before this one have been handed to it.
    cursor: usize,
    left: Option<LeftReason>,
}

impl Party {
    fn live(&self) -> bool {
        self.left.is_none()
    }

    /// The sending key: the newest key update whose activation time has passed, unless the
    /// session has retired it since (then it sends nothing: a retired key is erased from the
    /// dataplane, and no older key is used again).
    fn sending(&self, now: Millis) -> Option<&Update> {
        self.updates
            .iter()
            .rev()
            .find(|u| u.activate_at <= now)
            .filter(|u| self.retired.get(&u.mk_seq).is_none_or(|at| *at > now))
    }
}

/// The world. Build with [`World::new`], drive with [`World::step`].
pub struct World {
    meeting: MeetingRef,
    ids: Vec<ParticipantId>,
    parties: Vec<Party>,
    board: Vec<Post>,
    foreign: &'static [Vec<u8>],
    /// Binding hash -> instance, from each instance's announcement.
    bindings: BTreeMap<[u8; 32], Instance>,
    made: BTreeMap<[u8; 32], Made>,
    /// Whom the server last named leader (a rejoining mallory is told this).
    server_leader: usize,
    now: Millis,
    rng: TestRng,
    timings: Timings,
    /// Which invariants fail a run.
    enabled: BTreeSet<Invariant>,
    /// Set once the board reached [`MAX_POSTS`].
    saturated: bool,
    /// Identities the board injected so far.
    injected: u32,
    /// What the last delivery's `Session::handle` returned (I8).
    last_result: Option<Result<(), MeetingError>>,
    /// What each party's identity is (I9).
    listed: Vec<Listed>,
    /// The current forged session, if any (I9).
    forger: Option<Forger>,
    /// Forged sessions started so far.
    forged: u32,
    /// Binding hashes and liveness nonces of every forged session (I9).
    forged_bindings: BTreeSet<[u8; 32]>,
    forged_nonces: BTreeSet<[u8; LIVENESS_NONCE_LEN]>,
    /// Hashes of the keys a forged session made while it led (I9).
    forged_keys: BTreeSet<[u8; 32]>,
}

fn pid(i: usize) -> ParticipantId {
    // Four fixed names are valid IDs; `new` only refuses empty or oversized ones.
    let name: &[u8] = match i {
        0 => b"host",
        1 => b"alice",
        2 => b"bob",
        _ => b"mallory",
    };
    match ParticipantId::new(name, b"dev") {
        Ok(p) => p,
        Err(_) => unreachable!("fixed short names are valid"),
    }
}

/// The parties' identities are hybrid (Ed25519 + ML-DSA-65, revision 4), so every post of
/// theirs is hybrid-signed and [`Action::StripPqSig`] has something to strip; the board's
/// Sybils stay classical, so meetings mix the two.
fn identity(i: usize) -> Result<HybridSigningKey, Violation> {
    HybridSigningKey::generate(&mut TestRng::new(&format!("adversary-identity-{i}")))
        .map_err(|e| Violation::setup(format!("identity key: {e}")))
}

/// What [`World::fingerprint`] covers of one session: role, leader, keys, heartbeat head
/// and roster.
fn session_state(s: &Session) -> String {
    format!(
        "{:?}:{:?}:{}:{:?}:{:?}",
        s.role(),
        s.leader(),
        s.mk_seq(),
        s.heartbeat_head(),
        s.roster()
    )
}

/// A hybrid-signed message as the classical message it carries (for classifying posts and
/// the oracles, which look at the fields, not the signature).
fn inner(msg: Message) -> Message {
    msg.into_classical()
}

/// The classical message a board makes of a hybrid-signed one by dropping its ML-DSA half;
/// `None` for anything else.
fn strip_sig(msg: &Message) -> Option<Message> {
    let inner = inner(msg.clone());
    (inner != *msg).then_some(inner)
}

fn classify(msg: &Message) -> (Kind, Option<ParticipantId>) {
    match &inner(msg.clone()) {
        Message::Rekey(r) => (Kind::Rekey, Some(r.recipient.clone())),
        Message::Heartbeat(_) => (Kind::Heartbeat, None),
        Message::LinkPost(_) => (Kind::Link, None),
        Message::KeyAnnouncement(_) | Message::NoncePost(_) | Message::LockRequest(_) => {
            (Kind::Join, None)
        }
        _ => (Kind::Notice, None),
    }
}

impl World {
    /// A formed meeting of [`PARTIES`] sessions, all keyed, with every invariant enabled.
    pub fn new() -> Result<Self, Violation> {
        let foreign = foreign_recording()?;
        let mut w = Self::bare(b"adversary-uuid-A", foreign)?;
        w.form()?;
        Ok(w)
    }

    /// Restricts which invariants fail a run (the others are still computed).
    pub fn with_enabled(mut self, enabled: impl IntoIterator<Item = Invariant>) -> Self {
        self.enabled = enabled.into_iter().collect();
        self
    }

    fn bare(uuid: &[u8], foreign: &'static [Vec<u8>]) -> Result<Self, Violation> {
        let meeting = MeetingRef::new(b"adversary-meeting", uuid)
            .map_err(|e| Violation::setup(format!("meeting: {e}")))?;
        let listed = (0..PARTIES)
            .map(|i| {
                let key = identity(i)?;
                let public = key.verifying_key();
                Ok(Listed {
                    ivk: *public.ed25519(),
                    ml_dsa_id: Some(sha256(public.ml_dsa())),
                })
            })
            .collect::<Result<_, Violation>>()?;
        let mut w = Self {
            meeting,
            ids: (0..PARTIES).map(pid).collect(),
            parties: Vec::new(),
            board: Vec::new(),
            foreign,
            bindings: BTreeMap::new(),
            made: BTreeMap::new(),
            server_leader: 0,
            now: Millis(1_700_000_000_000),
            rng: TestRng::new(&format!("adversary-world-{}", uuid.len())),
            timings: timings(),
            enabled: Invariant::ALL.into_iter().collect(),
            saturated: false,
            injected: 0,
            last_result: None,
            listed,
            forger: None,
            forged: 0,
            forged_bindings: BTreeSet::new(),
            forged_nonces: BTreeSet::new(),
            forged_keys: BTreeSet::new(),
        };
        for i in 0..PARTIES {
            let session = w.start_session(i)?;
            w.parties.push(Party {
                session,
                generation: 0,
                // What others posted before this session started is news to it.
                fates: vec![Fate::Pending; w.board.len()],
                left: None,
                hb_reference: w.now,
                was_leader: false,
                became_leader_at: w.now,
                updates: Vec::new(),
                retired: BTreeMap::new(),
                certified: BTreeMap::new(),
                following: None,
                leader_changed: false,
                first_hb_of_leader: None,
                starved_by: BTreeSet::new(),
                roster: BTreeMap::new(),
                removed: BTreeSet::new(),
                kicked: BTreeSet::new(),
                refusals: Vec::new(),
                alerts: Vec::new(),
            });
            w.collect(i)?;
        }
        Ok(w)
    }

    fn start_session(&mut self, i: usize) -> Result<Session, Violation> {
        let cfg = self.config(i)?;
        Session::new_hybrid(cfg, identity(i)?, self.now, &mut self.rng)
            .map_err(|e| Violation::setup(format!("session: {e}")))
    }

    /// The configuration a session of party `i` (or one forged under its ID) joins with.
    fn config(&self, i: usize) -> Result<Config, Violation> {
        let me = self.ids[i].clone();
        Ok(Config {
            meeting: self.meeting.clone(),
            display_name: Id::new(Field::DisplayName, me.user.as_bytes())
                .map_err(|e| Violation::setup(format!("display name: {e}")))?,
            me,
            leader: self.ids[self.server_leader].clone(),
            invite: None,
            host_secret: None,
            timings: self.timings,
            pq: keyctl::wire::PqPolicy::default(),
        })
    }

    /// Forms the meeting with a fair board, so exploration starts from a keyed meeting.
    fn form(&mut self) -> Result<(), Violation> {
        for _ in 0..4 {
            self.step(&Action::FlushAll)?;
            self.step(&Action::Advance {
                step: 1,
                deliver: true,
            })?;
        }
        for (i, p) in self.parties.iter().enumerate() {
            if p.updates.is_empty() || !p.live() {
                return Err(Violation::setup(format!(
                    "party {i} not keyed after forming"
                )));
            }
        }
        Ok(())
    }

    /// The current virtual time.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// The highest mkSeqNum each party holds (for reports).
    pub fn mk_seqs(&self) -> Vec<u32> {
        self.parties.iter().map(|p| p.session.mk_seq()).collect()
    }

    /// Party `i`'s current session's role (`None` once it ended, or for no such party).
    pub fn role(&self, i: usize) -> Option<Role> {
        self.parties.get(i).and_then(|p| p.session.role())
    }

    /// The board's posts in the world's encoding (the recording another world replays).
    pub fn recording(&self) -> Vec<Vec<u8>> {
        self.board.iter().map(|p| p.bytes.clone()).collect()
    }

    /// The latest alerts (at most 16, oldest first) of party `i`'s current session.
    pub fn alerts(&self, i: usize) -> &[Alert] {
        self.parties.get(i).map_or(&[], |p| p.alerts.as_slice())
    }

    /// The latest refusals (at most 6, oldest first) of party `i`'s current session: when,
    /// and the typed error `Session::handle` returned.
    pub fn refusals(&self, i: usize) -> &[(Millis, MeetingError)] {
        self.parties.get(i).map_or(&[], |p| p.refusals.as_slice())
    }

    /// How many forged sessions ([`Action::ForgeRejoin`]) started so far.
    pub fn forgeries(&self) -> u32 {
        self.forged
    }

    /// The current forged session's role, highest mkSeqNum (0 while it holds no key), and
    /// whether it has ended; `None` before any [`Action::ForgeRejoin`].
    pub fn forger_state(&self) -> Option<(Option<Role>, u32, bool)> {
        self.forger
            .as_ref()
            .map(|f| (f.session.role(), f.session.mk_seq(), f.left.is_some()))
    }

    /// A digest of what the world shows from outside and what the oracle tracks: time,
    /// each session's role, leader, keys, roster and heartbeat head, what the board
    /// delivered to whom, and the oracle's per-session state. Two action lists that reach
    /// the same fingerprint are treated as one state by the model checker (a sound
    /// pruning only as far as the fingerprint covers the sessions' hidden state).
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut s = format!("{:?}|{}|{}", self.now, self.server_leader, self.board.len());
        for p in &self.parties {
            let sending: Vec<_> = p
                .updates
                .iter()
                .map(|u| (u.mk_seq, u.activate_at))
                .collect();
            s.push_str(&format!(
                "|{}:{:?}:{}:{:?}:{:?}:{:?}:{:?}:{:?}:{:?}",
                p.generation,
                p.left,
                session_state(&p.session),
                sending,
                p.fates,
                p.hb_reference,
                p.certified,
                p.first_hb_of_leader,
                p.starved_by,
            ));
        }
        if let Some(f) = &self.forger {
            s.push_str(&format!(
                "|forger {}:{}:{}:{:?}:{}",
                f.victim,
                f.other_ml_dsa,
                f.cursor,
                f.left,
                session_state(&f.session),
            ));
        }
        sha256(s.as_bytes())
    }

    /// A one-line-per-party summary (for reading a reproduction step by step): role,
    /// leader followed, highest mkSeqNum, the roster as the party sees it, whether it left.
    pub fn describe(&self) -> String {
        let mut s = format!("t={} board={}\n", self.now.0, self.board.len());
        for (i, p) in self.parties.iter().enumerate() {
            let roster: Vec<String> = p
                .session
                .roster()
                .map(|v| {
                    v.entries
                        .iter()
                        .map(|e| {
                            let who = self.ids.iter().position(|id| id == &e.participant);
                            let inst = self.bindings.get(&e.binding_hash);
                            format!("{who:?}:{:?}{inst:?}", e.state)
                        })
                        .collect()
                })
                .unwrap_or_default();
            s.push_str(&format!(
                "  party {i} gen {} {:?} follows {:?} mk_seq {} left {:?} roster {roster:?} \
                 refused {:?}\n",
                p.generation,
                p.session.role(),
                p.session
                    .leader()
                    .and_then(|l| self.ids.iter().position(|id| id == l)),
                p.session.mk_seq(),
                p.left,
                p.refusals
                    .iter()
                    .map(|(t, e)| format!("t={} {e}", t.0))
                    .collect::<Vec<_>>(),
            ));
        }
        if let Some(f) = &self.forger {
            s.push_str(&format!(
                "  forged as party {} ({}) {:?} mk_seq {} left {:?}\n",
                f.victim,
                if f.other_ml_dsa {
                    "hybrid, another ML-DSA key"
                } else {
                    "classical"
                },
                f.session.role(),
                f.session.mk_seq(),
                f.left,
            ));
        }
        s
    }

    fn instance(&self, i: usize) -> Instance {
        (i, self.parties[i].generation)
    }

    fn fail(&self, invariant: Invariant, detail: String) -> Result<(), Violation> {
        if self.enabled.contains(&invariant) {
            Err(Violation {
                invariant,
                detail,
                at: self.now,
                step: None,
            })
        } else {
            Ok(())
        }
    }

    /// Performs one action, then checks every enabled invariant.
    pub fn step(&mut self, action: &Action) -> Result<(), Violation> {
        let pick = |b: u8| usize::from(b) % PARTIES;
        match *action {
            Action::Deliver { to, pick: n } => {
                let to = pick(to);
                let pending = self.pending(to);
                if !pending.is_empty() {
                    // Counted from the newest: `pick: 0` delivers last-in first.
                    let k = pending[pending.len() - 1 - usize::from(n) % pending.len()];
                    self.deliver_post(to, k)?;
                }
            }
            Action::Flush { to } => self.flush(pick(to))?,
            Action::FlushAll => self.flush_all()?,
            Action::Drop { to, kind } => {
                let to = pick(to);
                if let Some(k) = self
                    .pending(to)
                    .into_iter()
                    .find(|&k| kind == Kind::Any || self.board[k].kind == kind)
                {
                    self.parties[to].fates[k] = Fate::Dropped;
                }
            }
            Action::Replay { to, index } => {
                if !self.board.is_empty() {
                    let k = usize::from(index) % self.board.len();
                    let bytes = self.board[k].bytes.clone();
                    self.deliver_bytes(pick(to), &bytes, Some(k))?;
                }
            }
            Action::ReplayForeign { to, index } => {
                if !self.foreign.is_empty() {
                    let bytes = self.foreign[usize::from(index) % self.foreign.len()].clone();
                    self.deliver_bytes(pick(to), &bytes, None)?;
                }
            }
            Action::NoticeLeave { who } => {
                let participant = self.ids[pick(who)].clone();
                self.post(Poster::Server, None, Message::Leave(Leave { participant }));
            }
            Action::NoticeLeaderChange { who } => {
                self.server_leader = pick(who);
                let leader = self.ids[self.server_leader].clone();
                self.post(
                    Poster::Server,
                    None,
                    Message::LeaderChange(LeaderChange { leader }),
                );
            }
            Action::MalloryRejoin => self.rejoin(MALLORY)?,
            Action::StripPq { to } => self.strip_pq(pick(to))?,
            Action::StripPqSig { to } => self.strip_pq_sig(pick(to))?,
            Action::ForgeRejoin {
                victim,
                other_ml_dsa,
            } => self.forge_rejoin(pick(victim), other_ml_dsa)?,
            Action::InjectIdentity => self.inject_identity()?,
            Action::Kick { by, who } => {
                let (by, who) = (pick(by), pick(who));
                let id = self.ids[who].clone();
                let now = self.now;
                let p = &mut self.parties[by];
                let _refused = p.session.kick(now, &id, &mut self.rng);
                self.collect(by)?;
            }
            Action::Leave { who } => {
                let who = pick(who);
                let _refused = self.parties[who].session.leave();
                self.collect(who)?;
            }
            Action::Lock { by } => {
                let by = pick(by);
                let _refused = self.parties[by].session.lock();
                self.collect(by)?;
            }
            Action::Unlock { by } => {
                let by = pick(by);
                let _refused = self.parties[by].session.unlock();
                self.collect(by)?;
            }
            Action::Advance { step, deliver } => {
                let ms = ADVANCE_MS[usize::from(step) % ADVANCE_MS.len()];
                self.advance(ms, deliver)?;
            }
        }
        // The board hands its own forged session everything as soon as it is posted.
        self.feed_forger()?;
        self.check_state()
    }

    /// Board indices still pending for `to`, in order.
    fn pending(&self, to: usize) -> Vec<usize> {
        let p = &self.parties[to];
        if !p.live() {
            return Vec::new();
        }
        (0..self.board.len())
            .filter(|&k| p.fates.get(k) == Some(&Fate::Pending))
            .collect()
    }

    fn flush(&mut self, to: usize) -> Result<(), Violation> {
        // Delivering may make `to` post, which is never pending for itself; what others
        // post in answer waits for their turn, so one pass suffices.
        let mut k = 0;
        while k < self.board.len() {
            if self.parties[to].live() && self.parties[to].fates.get(k) == Some(&Fate::Pending) {
                self.deliver_post(to, k)?;
            }
            k += 1;
        }
        Ok(())
    }

    fn flush_all(&mut self) -> Result<(), Violation> {
        for _ in 0..FLUSH_ROUNDS {
            if (0..PARTIES).all(|i| self.pending(i).is_empty()) && !self.forger_pending() {
                break;
            }
            for i in 0..PARTIES {
                self.flush(i)?;
            }
            self.feed_forger()?;
        }
        Ok(())
    }

    fn advance(&mut self, ms: u64, deliver: bool) -> Result<(), Violation> {
        let target = self.now.after(ms);
        // A fair board delivers what is pending before time moves, not only after the next
        // timer: otherwise a post made "now" would wait for that timer, a delay the
        // adversary did not choose.
        if deliver {
            self.flush_all()?;
        }
        loop {
            let forger = self
                .forger
                .as_ref()
                .filter(|f| f.left.is_none())
                .and_then(|f| f.session.poll_timeout());
            let next = self
                .parties
                .iter()
                .filter(|p| p.live())
                .filter_map(|p| p.session.poll_timeout())
                .chain(forger)
                .min();
            match next {
                Some(t) if t <= target => {
                    self.now = self.now.max(t);
                    for i in 0..PARTIES {
                        let due = self.parties[i].live()
                            && self.parties[i]
                                .session
                                .poll_timeout()
                                .is_some_and(|d| d <= self.now);
                        if due {
                            let now = self.now;
                            let p = &mut self.parties[i];
                            let _refused = p.session.handle_timeout(now, &mut self.rng);
                            self.collect(i)?;
                        }
                    }
                    let now = self.now;
                    if let Some(f) = self.forger.as_mut()
                        && f.left.is_none()
                        && f.session.poll_timeout().is_some_and(|d| d <= now)
                    {
                        let _refused = f.session.handle_timeout(now, &mut self.rng);
                        self.collect_forger()?;
                    }
                    if deliver {
                        self.flush_all()?;
                    }
                    self.feed_forger()?;
                    // The invariants hold at every instant, not only at the end of a jump.
                    self.check_state()?;
                }
                _ => break,
            }
        }
        self.now = target;
        Ok(())
    }

    /// A Sybil: the board makes a session with a fresh identity, posts its announcement
    /// and first nonce as a server post, and drops the session.
    fn inject_identity(&mut self) -> Result<(), Violation> {
        if self.injected >= MAX_INJECTED {
            return Ok(());
        }
        self.injected += 1;
        let n = self.injected;
        let me = ParticipantId::new(format!("sybil{n}").as_bytes(), b"dev")
            .map_err(|e| Violation::setup(format!("sybil id: {e}")))?;
        let cfg = Config {
            meeting: self.meeting.clone(),
            display_name: Id::new(Field::DisplayName, me.user.as_bytes())
                .map_err(|e| Violation::setup(format!("display name: {e}")))?,
            me,
            leader: self.ids[self.server_leader].clone(),
            invite: None,
            host_secret: None,
            timings: self.timings,
            pq: keyctl::wire::PqPolicy::default(),
        };
        let key = SigningKey::generate(&mut TestRng::new(&format!("adversary-sybil-{n}")))
            .map_err(|e| Violation::setup(format!("sybil key: {e}")))?;
        let mut sybil = Session::new(cfg, key, self.now, &mut self.rng)
            .map_err(|e| Violation::setup(format!("sybil session: {e}")))?;
        while let Some(msg) = sybil.poll_transmit() {
            self.post(Poster::Server, None, msg);
        }
        Ok(())
    }

    /// [`Action::StripPq`]: the next pending announcement for `to` that carries an
    /// ML-KEM-768 key is delivered without it (the signature left as it was).
    fn strip_pq(&mut self, to: usize) -> Result<(), Violation> {
        let stripped = self.pending(to).into_iter().find_map(|k| {
            match Message::from_bytes(&self.board[k].bytes).map(inner) {
                Ok(Message::KeyAnnouncement(mut a)) if a.binding.pq.is_some() => {
                    a.binding.pq = None;
                    Some((k, Message::KeyAnnouncement(a).to_bytes()))
                }
                _ => None,
            }
        });
        match stripped {
            Some((k, bytes)) => self.deliver_bytes(to, &bytes, Some(k)),
            None => Ok(()),
        }
    }

    /// [`Action::StripPqSig`]: the next pending hybrid-signed post for `to` is delivered as
    /// the classical message the board makes by dropping its ML-DSA half. I8: `to` refuses
    /// it, unless its role ignores that message unread (a leader: links and heartbeats; a
    /// participant: lock and key requests) or it is a post forged under `to`'s own ID.
    fn strip_pq_sig(&mut self, to: usize) -> Result<(), Violation> {
        let stripped = self.pending(to).into_iter().find_map(|k| {
            let msg = Message::from_bytes(&self.board[k].bytes).ok()?;
            strip_sig(&msg).map(|m| (k, m))
        });
        let Some((k, msg)) = stripped else {
            return Ok(());
        };
        let role = self.parties[to].session.role();
        // A post forged under `to`'s own ID ([`Action::ForgeRejoin`]) is one it ignores
        // unread, as it ignores its own.
        let own = self.board.get(k).map(|p| p.from) == Some(Poster::Forger(to));
        let ignored = own
            || matches!(
                (&msg, role),
                (
                    Message::LinkPost(_) | Message::Heartbeat(_),
                    Some(Role::Leader)
                ) | (
                    Message::LockRequest(_) | Message::KeyRequest(_),
                    Some(Role::Participant)
                ) | (_, None)
            );
        self.last_result = None;
        self.deliver_bytes(to, &msg.to_bytes(), Some(k))?;
        if !ignored && matches!(self.last_result, Some(Ok(()))) {
            self.fail(
                Invariant::I8NoStrippedSignature,
                format!(
                    "party {to} took a post of kind {:#04x} stripped of its ML-DSA half",
                    msg.to_bytes()[1]
                ),
            )?;
        }
        Ok(())
    }

    /// [`Action::ForgeRejoin`]: the adversary, granted `victim`'s Ed25519 seed (the oracle
    /// of a quantum computer that recovered the secret scalar from `IVK`; it signs the
    /// same), starts a session under `victim`'s participant ID, classical or with an
    /// ML-DSA-65 key of its own, and the board posts what it queues.
    fn forge_rejoin(&mut self, victim: usize, other_ml_dsa: bool) -> Result<(), Violation> {
        if self.forged >= MAX_FORGED {
            return Ok(());
        }
        self.forged += 1;
        let seed = *identity(victim)?.ed25519().seed();
        let cfg = self.config(victim)?;
        let session = if other_ml_dsa {
            let xi = sha256(format!("adversary-forged-ml-dsa-{}", self.forged).as_bytes());
            let key = HybridSigningKey::from_seeds(&seed, &xi)
                .map_err(|e| Violation::setup(format!("forged hybrid key: {e}")))?;
            Session::new_hybrid(cfg, key, self.now, &mut self.rng)
        } else {
            let key = SigningKey::from_seed(&seed)
                .map_err(|e| Violation::setup(format!("forged key: {e}")))?;
            Session::new(cfg, key, self.now, &mut self.rng)
        }
        .map_err(|e| Violation::setup(format!("forged session: {e}")))?;
        self.forger = Some(Forger {
            session,
            victim,
            other_ml_dsa,
            cursor: 0,
            left: None,
        });
        self.collect_forger()
    }

    /// Whether the board holds a post the forged session has not been handed yet.
    fn forger_pending(&self) -> bool {
        self.forger.as_ref().is_some_and(|f| {
            f.left.is_none()
                && self
                    .board
                    .iter()
                    .skip(f.cursor)
                    .any(|p| !matches!(p.from, Poster::Forger(_)))
        })
    }

    /// Hands the forged session every post it has not seen (but forged ones), in order.
    fn feed_forger(&mut self) -> Result<(), Violation> {
        loop {
            let now = self.now;
            let Some(f) = self.forger.as_mut() else {
                return Ok(());
            };
            let Some(post) = self.board.get(f.cursor).filter(|_| f.left.is_none()) else {
                return Ok(());
            };
            f.cursor += 1;
            if matches!(post.from, Poster::Forger(_)) {
                continue;
            }
            let _refused = f.session.handle(now, &post.bytes, &mut self.rng);
            self.collect_forger()?;
        }
    }

    /// Posts what the forged session queued, records its bindings, nonces and the keys it
    /// made, and checks the keys it obtained (I9).
    fn collect_forger(&mut self) -> Result<(), Violation> {
        let Some(f) = self.forger.as_mut() else {
            return Ok(());
        };
        let victim = f.victim;
        let leading = f.session.role() == Some(Role::Leader);
        let mut posts = Vec::new();
        while let Some(msg) = f.session.poll_transmit() {
            posts.push(msg);
        }
        let mut keys = Vec::new();
        while let Some(ev) = f.session.poll_event() {
            match ev {
                Event::KeyUpdate(u) => {
                    keys.push((u.mk_seq, sha256(u.meeting_key.expose_secret())));
                }
                Event::Left(reason) => f.left = Some(reason),
                _ => {}
            }
        }
        for msg in posts {
            match inner(msg.clone()) {
                Message::KeyAnnouncement(a) => {
                    self.forged_bindings.insert(a.binding.hash());
                }
                Message::NoncePost(n) => {
                    self.forged_nonces.insert(n.body.nonce);
                }
                Message::KeyRequest(r) => {
                    self.forged_nonces.insert(r.body.nonce);
                }
                _ => {}
            }
            self.post(Poster::Forger(victim), None, msg);
        }
        for (mk_seq, key_hash) in keys {
            if leading {
                self.forged_keys.insert(key_hash);
            } else if let Some(made) = self.made.get(&key_hash)
                && made.by.0 < HONEST
            {
                self.fail(
                    Invariant::I9NoForgedRejoin,
                    format!(
                        "the session forged under party {victim}'s IVK obtained key {mk_seq} \
                         made by {:?}",
                        made.by
                    ),
                )?;
            }
        }
        Ok(())
    }

    /// I9 on one post `bytes` forged under `victim`'s ID that honest party `to` read: a
    /// refusal leaves its list as `before`, and an announcement is refused unless `to` is
    /// `victim` itself (a session ignores posts under its own ID).
    fn check_forged_input(
        &self,
        to: usize,
        victim: usize,
        bytes: &[u8],
        result: &Result<(), MeetingError>,
        before: Option<RosterView>,
    ) -> Result<(), Violation> {
        match result {
            Err(e) if self.parties[to].session.roster() != before => self.fail(
                Invariant::I9NoForgedRejoin,
                format!(
                    "party {to} refused a post forged under party {victim}'s IVK ({e}) but its \
                     list moved"
                ),
            ),
            Ok(())
                if to != victim
                    && matches!(
                        Message::from_bytes(bytes).map(inner),
                        Ok(Message::KeyAnnouncement(_))
                    ) =>
            {
                self.fail(
                    Invariant::I9NoForgedRejoin,
                    format!("party {to} took an announcement forged under party {victim}'s IVK"),
                )
            }
            _ => Ok(()),
        }
    }

    fn rejoin(&mut self, i: usize) -> Result<(), Violation> {
        let session = self.start_session(i)?;
        let p = &mut self.parties[i];
        p.session = session;
        p.generation += 1;
        // A new session: everything on the board is news to it (the board replays its
        // history to a joiner), and its oracle state starts afresh.
        p.fates = vec![Fate::Pending; self.board.len()];
        for (k, post) in self.board.iter().enumerate() {
            let ours = post.from == Poster::Party(i);
            let not_ours = post.recipient.as_ref().is_some_and(|r| r != &self.ids[i]);
            if ours || not_ours {
                p.fates[k] = Fate::NotForMe;
            }
        }
        p.left = None;
        p.hb_reference = self.now;
        p.was_leader = false;
        p.updates.clear();
        p.retired.clear();
        p.certified.clear();
        p.following = None;
        p.leader_changed = false;
        p.first_hb_of_leader = None;
        p.starved_by.clear();
        p.roster.clear();
        p.removed.clear();
        p.kicked.clear();
        p.refusals.clear();
        p.alerts.clear();
        self.collect(i)
    }

    fn post(&mut self, from: Poster, from_instance: Option<Instance>, msg: Message) {
        if self.board.len() >= MAX_POSTS {
            self.saturated = true;
            return;
        }
        let (kind, recipient) = classify(&msg);
        for (j, p) in self.parties.iter_mut().enumerate() {
            let not_for_me =
                from == Poster::Party(j) || recipient.as_ref().is_some_and(|r| r != &self.ids[j]);
            p.fates.push(if not_for_me {
                Fate::NotForMe
            } else {
                Fate::Pending
            });
        }
        self.board.push(Post {
            from,
            from_instance,
            bytes: msg.to_bytes(),
            kind,
            recipient,
            posted_at: self.now,
        });
    }

    fn deliver_post(&mut self, to: usize, k: usize) -> Result<(), Violation> {
        let bytes = self.board[k].bytes.clone();
        self.deliver_bytes(to, &bytes, Some(k))
    }

    /// Hands `bytes` to `to`'s session and records what it says.
    fn deliver_bytes(
        &mut self,
        to: usize,
        bytes: &[u8],
        k: Option<usize>,
    ) -> Result<(), Violation> {
        if let Some(k) = k
            && let Some(f) = self.parties[to].fates.get_mut(k)
            && *f != Fate::NotForMe
        {
            *f = Fate::Delivered;
        }
        if !self.parties[to].live() {
            return Ok(());
        }
        let now = self.now;
        // I9: which party's identity the post was forged under, and what an honest reader
        // listed before reading it.
        let forged_as = k
            .and_then(|k| self.board.get(k))
            .and_then(|post| match post.from {
                Poster::Forger(victim) => Some(victim),
                _ => None,
            })
            .filter(|_| to < HONEST);
        let p = &mut self.parties[to];
        let before = forged_as.map(|_| p.session.roster());
        let was_participant = p.session.role() == Some(Role::Participant);
        let held = p.session.mk_seq();
        let result = p.session.handle(now, bytes, &mut self.rng);
        self.last_result = Some(result.clone());
        let took_classical = p.session.mk_seq() > held
            && matches!(
                Message::from_bytes(bytes),
                Ok(Message::Rekey(Rekey {
                    boxed: BoxKind::Classical,
                    ..
                }))
            );
        if let Err(e) = &result {
            push_bounded(&mut p.refusals, KEEP_REFUSALS, (now, e.clone()));
        }
        if let (Some(victim), Some(before)) = (forged_as, before) {
            self.check_forged_input(to, victim, bytes, &result, before)?;
        }
        if took_classical {
            self.fail(
                Invariant::I7NoClassicalBox,
                format!("party {to} took a meeting key from a classical box"),
            )?;
        }
        let p = &mut self.parties[to];
        let poster = k
            .and_then(|k| self.board.get(k))
            .and_then(|post| post.from_instance);
        // The heartbeat oracle: a heartbeat a participant accepted verified and extended
        // its chain (whitepaper 3.7.7, v4.6 heartbeats).
        if result.is_ok()
            && was_participant
            && let Ok(Message::Heartbeat(hb)) = Message::from_bytes(bytes).map(inner)
        {
            p.hb_reference = now;
            p.certified.entry(hb.mk_seq).or_insert(now);
            if p.leader_changed
                && p.first_hb_of_leader.as_ref().is_none_or(|(l, inst, _)| {
                    Some(l) != p.session.leader() || Some(*inst) != poster
                })
                && let Some(l) = p.session.leader()
                && let Some(inst) = poster
            {
                p.first_hb_of_leader = Some((l.clone(), inst, now));
            }
        }
        self.collect(to)
    }

    /// Drains `i`'s transmits and events after one input, and checks the per-event
    /// invariants (I1, I4 monotonicity, I5, I6 per input).
    fn collect(&mut self, i: usize) -> Result<(), Violation> {
        let inst = self.instance(i);
        let now = self.now;
        let role = self.parties[i].session.role();
        // Role transitions (I3's reference restarts when a leader steps down; I4's
        // starvation is judged on a leader's posts since it took the role).
        {
            let p = &mut self.parties[i];
            let leading = role == Some(Role::Leader);
            if leading && !p.was_leader {
                p.became_leader_at = now;
            }
            if !leading && p.was_leader && role.is_some() {
                p.hb_reference = now;
            }
            p.was_leader = leading;
            let following = p.session.leader().cloned();
            if p.following.is_some() && following.is_some() && following != p.following {
                p.leader_changed = true;
                // I2 compares mkSeqNums of one leader's numbering: certificates of the old
                // leader say nothing about the new one's keys.
                p.certified.clear();
                // I4 counts from the first heartbeat accepted in this leadership, not from
                // one accepted when the same identity led before (the campaign after
                // revision 2: the role moved 1 -> 2 -> 1, and party 2, whose own brief lead
                // diverged its chain, was judged by a heartbeat of the first era).
                p.first_hb_of_leader = None;
            }
            if following.is_some() {
                p.following = following;
            }
        }
        // Roster transitions first: within one input a leader removes before it rotates.
        if let Some(view) = self.parties[i].session.roster() {
            if view.entries.len() > MEETING_CAP {
                self.fail(
                    Invariant::I6RosterCap,
                    format!(
                        "party {i} roster has {} entries, above the cap of {MEETING_CAP}",
                        view.entries.len()
                    ),
                )?;
            }
            for e in &view.entries {
                let Some(who) = self.ids.iter().position(|id| id == &e.participant) else {
                    continue;
                };
                // I9: an honest list keeps each party's identity, and lists no forged binding.
                let entry = Listed {
                    ivk: e.ivk,
                    ml_dsa_id: e.ml_dsa_id,
                };
                if i < HONEST && self.listed.get(who) != Some(&entry) {
                    self.fail(
                        Invariant::I9NoForgedRejoin,
                        format!("party {i} lists another identity for party {who}: {entry:?}"),
                    )?;
                }
                if i < HONEST && self.forged_bindings.contains(&e.binding_hash) {
                    self.fail(
                        Invariant::I9NoForgedRejoin,
                        format!(
                            "party {i} lists a binding forged under party {who}'s IVK as {:?}",
                            e.state
                        ),
                    )?;
                }
                let prev = self.parties[i].roster.get(&who).copied();
                if let Some((MemberState::Present, bh)) = prev
                    && e.state != MemberState::Present
                    && let Some(&removed) = self.bindings.get(&bh)
                {
                    self.parties[i].removed.insert(removed);
                }
                // Re-admitted (the same binding listed present again, through the leader's
                // own admission): no longer removed. I1 is about keys made while the maker
                // lists the session as gone; whether a removed session may be re-admitted
                // at all is I5's business for kicks.
                if e.state == MemberState::Present
                    && let Some(&back) = self.bindings.get(&e.binding_hash)
                {
                    self.parties[i].removed.remove(&back);
                }
                if e.state == MemberState::Kicked {
                    self.parties[i].kicked.insert(who);
                }
                self.parties[i]
                    .roster
                    .insert(who, (e.state, e.binding_hash));
            }
        }
        let mut transmits = 0;
        while let Some(msg) = self.parties[i].session.poll_transmit() {
            transmits += 1;
            if i < HONEST
                && let Message::Rekey(r) = &msg
                && self.forged_nonces.contains(&r.recipient_nonce)
            {
                self.fail(
                    Invariant::I9NoForgedRejoin,
                    format!(
                        "party {i} boxed key {} to a session forged under {:?}'s IVK",
                        r.mk_seq, r.recipient
                    ),
                )?;
            }
            if let Message::Rekey(r) = &msg
                && r.boxed == BoxKind::Classical
            {
                self.fail(
                    Invariant::I7NoClassicalBox,
                    format!(
                        "party {i} boxed key {} classically for {:?}",
                        r.mk_seq, r.recipient
                    ),
                )?;
            }
            if let Message::KeyAnnouncement(a) = &inner(msg.clone())
                && a.binding.participant == self.ids[i]
            {
                self.bindings.insert(a.binding.hash(), inst);
            }
            self.post(Poster::Party(i), Some(inst), msg);
        }
        if transmits > TRANSMIT_BOUND {
            self.fail(
                Invariant::I6StateBound,
                format!("party {i} queued {transmits} transmits for one input"),
            )?;
        }
        let mut events = 0;
        while let Some(ev) = self.parties[i].session.poll_event() {
            events += 1;
            match ev {
                Event::KeyUpdate(u) => {
                    let key_hash = sha256(u.meeting_key.expose_secret());
                    if i < HONEST && self.forged_keys.contains(&key_hash) {
                        self.fail(
                            Invariant::I9NoForgedRejoin,
                            format!(
                                "party {i} obtained key {} made by a forged session",
                                u.mk_seq
                            ),
                        )?;
                    }
                    let last = self.parties[i].updates.last().map_or(0, |l| l.mk_seq);
                    if u.mk_seq <= last {
                        self.fail(
                            Invariant::I4NewLeaderKey,
                            format!(
                                "party {i}: sending mkSeqNum went from {last} to {}",
                                u.mk_seq
                            ),
                        )?;
                    }
                    if role == Some(Role::Leader) {
                        let p = &self.parties[i];
                        self.made.entry(key_hash).or_insert_with(|| Made {
                            by: inst,
                            removed: p.removed.clone(),
                            kicked: p.kicked.clone(),
                        });
                    } else if let Some(made) = self.made.get(&key_hash) {
                        if made.removed.contains(&inst) {
                            self.fail(
                                Invariant::I1RemovedGetsNoNewKey,
                                format!(
                                    "party {i} (instance {inst:?}) obtained key {} made by \
                                     {:?} after that leader removed it",
                                    u.mk_seq, made.by
                                ),
                            )?;
                        }
                        if made.kicked.contains(&i) {
                            self.fail(
                                Invariant::I5KickedStaysOut,
                                format!(
                                    "party {i} (instance {inst:?}) obtained key {} made by \
                                     {:?} after that leader saw it kicked",
                                    u.mk_seq, made.by
                                ),
                            )?;
                        }
                    }
                    self.parties[i].updates.push(Update {
                        mk_seq: u.mk_seq,
                        key_hash,
                        activate_at: u.activate_at,
                    });
                }
                Event::RetireEpoch { mk_seq, at } => {
                    self.parties[i].retired.insert(mk_seq, at);
                }
                Event::Left(reason) => self.parties[i].left = Some(reason),
                Event::Alert(a) => push_bounded(&mut self.parties[i].alerts, KEEP_ALERTS, a),
            }
        }
        if events > EVENT_BOUND {
            self.fail(
                Invariant::I6StateBound,
                format!("party {i} queued {events} events for one input"),
            )?;
        }
        let p = &self.parties[i];
        if p.left.is_some() && p.session.holds_key_material() {
            self.fail(
                Invariant::I6StateBound,
                format!("party {i} left but still holds key material"),
            )?;
        }
        Ok(())
    }

    /// The time-based invariants (I2, I3, I4), checked at every instant the world stops.
    fn check_state(&mut self) -> Result<(), Violation> {
        let now = self.now;
        let t = self.timings;
        // I4's precondition: the board held back none of the leader's posts for longer
        // than a heartbeat interval.
        for i in 0..HONEST {
            let mut starved = Vec::new();
            for (k, post) in self.board.iter().enumerate() {
                let Some(from) = post.from_instance else {
                    continue;
                };
                let leader = &self.parties[from.0];
                if from.1 != leader.generation
                    || post.posted_at < leader.became_leader_at
                    || self.parties[i].fates.get(k) == Some(&Fate::NotForMe)
                    || self.parties[i].fates.get(k) == Some(&Fate::Delivered)
                {
                    continue;
                }
                if now.since(post.posted_at) > t.heartbeat_interval_ms {
                    starved.push(from);
                }
            }
            self.parties[i].starved_by.extend(starved);
        }
        for i in 0..HONEST {
            let p = &self.parties[i];
            if !p.live() || p.session.role() != Some(Role::Participant) {
                continue;
            }
            let sending = p.sending(now);
            let sending_seq = sending.map_or(0, |u| u.mk_seq);
            // I2: verified a heartbeat certifying a newer key more than the bound ago (a
            // session that sends nothing, its keys retired, sends under no stale key).
            if let Some((&m, &at)) = sending.and_then(|_| {
                p.certified
                    .range(sending_seq.saturating_add(1)..)
                    .find(|(_, at)| now.since(**at) > i2_bound(&t))
            }) {
                self.fail(
                    Invariant::I2NoStaleSending,
                    format!(
                        "party {i} still sends under {sending_seq} {} ms after it verified \
                         a heartbeat certifying {m}",
                        now.since(at)
                    ),
                )?;
            }
            // I3: only verified heartbeats keep a session alive.
            if now.since(p.hb_reference) >= i3_bound(&t) {
                self.fail(
                    Invariant::I3HeartbeatsKeepAlive,
                    format!(
                        "party {i} is live {} ms after its last verified heartbeat",
                        now.since(p.hb_reference)
                    ),
                )?;
            }
            // I4: under a new leader it keeps hearing from, the new leader's key within
            // 10 s of its first heartbeat.
            if let Some((leader_id, linst, first)) = &p.first_hb_of_leader
                && !self.saturated
                && Some(leader_id) == p.session.leader()
                && now.since(*first) >= NEW_LEADER_KEY_MS
            {
                let (l, linst) = (linst.0, *linst);
                let leader = &self.parties[l];
                // The instance whose heartbeat it accepted still runs and leads.
                let leads = leader.generation == linst.1
                    && leader.live()
                    && leader.session.role() == Some(Role::Leader);
                let by_leader = sending
                    .and_then(|u| self.made.get(&u.key_hash))
                    .is_some_and(|m| m.by == linst);
                // A participant that sends nothing (its keys retired while it asks for a
                // withheld one) sends under no wrong key: I2 and I3 judge that case.
                if leads && !p.starved_by.contains(&linst) && sending.is_some() && !by_leader {
                    self.fail(
                        Invariant::I4NewLeaderKey,
                        format!(
                            "party {i} follows new leader {l} since its heartbeat {} ms ago, \
                             hears all it posts, but sends under {sending_seq} (not that \
                             leader's key)",
                            now.since(*first)
                        ),
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// The posts of another instance of the same meeting (same meeting ID and identities,
/// another UUID): formed, then mallory kicked and a rotation, so every kind of message is
/// there to replay. Deterministic, so computed once per process.
fn foreign_recording() -> Result<&'static [Vec<u8>], Violation> {
    static FOREIGN: OnceLock<Result<Vec<Vec<u8>>, Violation>> = OnceLock::new();
    let r = FOREIGN.get_or_init(|| {
        // Only a recording: the invariants are this crate's business in the main world.
        let mut w = World::bare(b"adversary-uuid-B", &[])?.with_enabled([]);
        w.form()?;
        w.step(&Action::Kick { by: 0, who: 3 })?;
        w.step(&Action::Advance {
            step: 4,
            deliver: true,
        })?;
        Ok(w.recording())
    });
    match r {
        Ok(v) => Ok(v.as_slice()),
        Err(e) => Err(e.clone()),
    }
}

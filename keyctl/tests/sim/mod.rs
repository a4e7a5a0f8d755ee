//! A deterministic meeting simulation: N sessions, an in-memory untrusted board that can
//! drop, rewrite or partition traffic, and virtual time (quinn-proto's `Pair`, for N).
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::{BTreeMap, VecDeque};

use keyctl::crypto::SigningKey;
use keyctl::crypto::hybrid_sig::HybridSigningKey;
use keyctl::meeting::{
    Alert, Config, Event, Invite, InviteSecret, KeyUpdate, LeftReason, MeetingError, Millis,
    PqPolicy, Session, Timings,
};
pub use keyctl::test_rng::TestRng;
use keyctl::wire::{Field, Id, LeaderChange, LplOp, MeetingRef, Message, ParticipantId};

/// What the board does with one delivery.
pub enum Verdict {
    Deliver,
    Drop,
}

/// A board hook: sees (recipient index, message) and may rewrite or drop it.
pub type Tamper = Box<dyn FnMut(usize, &mut Message) -> Verdict>;

pub struct Node {
    pub id: ParticipantId,
    pub session: Session,
    pub updates: BTreeMap<u32, KeyUpdate>,
    pub retired: Vec<(u32, Millis)>,
    pub alerts: Vec<Alert>,
    pub errors: Vec<MeetingError>,
    pub left: Option<LeftReason>,
    pub group: u8,
}

impl Node {
    pub fn latest(&self) -> Option<&KeyUpdate> {
        self.updates.values().next_back()
    }

    pub fn live(&self) -> bool {
        self.left.is_none()
    }
}

pub struct Sim {
    pub now: Millis,
    pub meeting: MeetingRef,
    pub nodes: Vec<Node>,
    pub rng: TestRng,
    pub timings: Timings,
    pub tamper: Option<Tamper>,
    pub host_secret: Option<InviteSecret>,
    /// The post-quantum setting of the next participant to join.
    pub pq: PqPolicy,
    /// Every message posted, with its poster, for inspection.
    pub log: Vec<(usize, Message)>,
    history_ann: BTreeMap<ParticipantId, Message>,
    history_nonce: BTreeMap<ParticipantId, Message>,
    history_links: Vec<Message>,
    queue: VecDeque<(usize, Message)>,
}

/// A meeting of `n` participants `p0`..: `p0` leads, the others join 50 ms apart, and
/// five seconds pass so that every key is certified and active.
pub fn meeting_of(n: usize, uuid: &str) -> Sim {
    let mut sim = Sim::new(uuid);
    sim.join("p0", "p0");
    for i in 1..n {
        sim.join(&format!("p{i}"), "p0");
        sim.advance(50);
    }
    sim.advance(5_000);
    sim
}

pub fn pid(name: &str) -> ParticipantId {
    ParticipantId::new(name.as_bytes(), b"dev").unwrap()
}

impl Sim {
    pub fn new(uuid: &str) -> Self {
        Self {
            now: Millis(1_700_000_000_000),
            meeting: MeetingRef::new(b"meeting-42", uuid.as_bytes()).unwrap(),
            nodes: Vec::new(),
            rng: TestRng::new(uuid),
            timings: Timings::default(),
            tamper: None,
            host_secret: None,
            pq: PqPolicy::default(),
            log: Vec::new(),
            history_ann: BTreeMap::new(),
            history_nonce: BTreeMap::new(),
            history_links: Vec::new(),
            queue: VecDeque::new(),
        }
    }

    pub fn index(&self, name: &str) -> usize {
        let p = pid(name);
        self.nodes
            .iter()
            .rposition(|n| n.id == p)
            .expect("known node")
    }

    pub fn node(&self, name: &str) -> &Node {
        &self.nodes[self.index(name)]
    }

    /// A participant joins with a fresh identity; `leader` is whom the server names.
    pub fn join(&mut self, name: &str, leader: &str) -> usize {
        let key = SigningKey::generate(&mut TestRng::new(&format!("id-{name}"))).unwrap();
        self.join_with(name, leader, key, None)
    }

    pub fn join_with(
        &mut self,
        name: &str,
        leader: &str,
        key: SigningKey,
        invite: Option<Invite>,
    ) -> usize {
        let cfg = Config {
            meeting: self.meeting.clone(),
            me: pid(name),
            display_name: Id::new(Field::DisplayName, name.as_bytes()).unwrap(),
            leader: pid(leader),
            invite,
            host_secret: if name == leader {
                self.host_secret.clone()
            } else {
                None
            },
            timings: self.timings,
            pq: self.pq,
        };
        let session = Session::new(cfg, key, self.now, &mut self.rng).unwrap();
        self.add_node(name, session)
    }

    /// The hybrid identity (Ed25519 + ML-DSA-65) of `name`, the same at every call.
    pub fn hybrid_identity(name: &str) -> HybridSigningKey {
        HybridSigningKey::generate(&mut TestRng::new(&format!("hid-{name}"))).unwrap()
    }

    /// A participant joins with its hybrid identity (revision 4); `leader` is whom the
    /// server names.
    pub fn join_hybrid(&mut self, name: &str, leader: &str) -> usize {
        self.join_hybrid_with(name, leader, Self::hybrid_identity(name))
    }

    /// A participant joins with the hybrid identity `key`.
    pub fn join_hybrid_with(&mut self, name: &str, leader: &str, key: HybridSigningKey) -> usize {
        let cfg = Config {
            meeting: self.meeting.clone(),
            me: pid(name),
            display_name: Id::new(Field::DisplayName, name.as_bytes()).unwrap(),
            leader: pid(leader),
            invite: None,
            host_secret: None,
            timings: self.timings,
            pq: self.pq,
        };
        let session = Session::new_hybrid(cfg, key, self.now, &mut self.rng).unwrap();
        self.add_node(name, session)
    }

    fn add_node(&mut self, name: &str, session: Session) -> usize {
        let idx = self.nodes.len();
        self.nodes.push(Node {
            id: pid(name),
            session,
            updates: BTreeMap::new(),
            retired: Vec::new(),
            alerts: Vec::new(),
            errors: Vec::new(),
            left: None,
            group: 0,
        });
        // The board replays what it holds: announcements, nonces, links since the last
        // snapshot.
        let history: Vec<Message> = self
            .history_ann
            .values()
            .chain(self.history_nonce.values())
            .chain(self.history_links.iter())
            .cloned()
            .collect();
        for m in history {
            self.queue.push_back((idx, m));
        }
        self.pump();
        idx
    }

    fn record(&mut self, from: usize, msg: &Message) {
        match msg {
            Message::KeyAnnouncement(a)
            | Message::HybridKeyAnnouncement(keyctl::wire::Hybrid { msg: a, .. }) => {
                self.history_ann
                    .insert(a.binding.participant.clone(), msg.clone());
            }
            Message::NoncePost(p)
            | Message::HybridNoncePost(keyctl::wire::Hybrid { msg: p, .. }) => {
                self.history_nonce
                    .insert(p.body.participant.clone(), msg.clone());
            }
            Message::LinkPost(l) | Message::HybridLinkPost(keyctl::wire::Hybrid { msg: l, .. }) => {
                if matches!(l.link.op, LplOp::Snapshot { .. }) {
                    self.history_links.clear();
                }
                self.history_links.push(msg.clone());
            }
            _ => {}
        }
        self.log.push((from, msg.clone()));
    }

    /// The server's notice of a leave or leader change, to every live node of a group.
    pub fn server_post(&mut self, msg: Message, group: u8) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].live() && self.nodes[i].group == group {
                self.queue.push_back((i, msg.clone()));
            }
        }
        self.pump();
    }

    pub fn leader_change(&mut self, new_leader: &str, group: u8) {
        self.server_post(
            Message::LeaderChange(LeaderChange {
                leader: pid(new_leader),
            }),
            group,
        );
    }

    fn collect(&mut self, i: usize) {
        loop {
            let Some(ev) = self.nodes[i].session.poll_event() else {
                break;
            };
            let node = &mut self.nodes[i];
            match ev {
                Event::KeyUpdate(u) => {
                    node.updates.insert(u.mk_seq, u);
                }
                Event::RetireEpoch { mk_seq, at } => node.retired.push((mk_seq, at)),
                Event::Alert(a) => node.alerts.push(a),
                Event::Left(r) => node.left = Some(r),
            }
        }
        while let Some(msg) = self.nodes[i].session.poll_transmit() {
            self.record(i, &msg);
            let group = self.nodes[i].group;
            let targets: Vec<usize> = match &msg {
                Message::Rekey(r) => self
                    .nodes
                    .iter()
                    .rposition(|n| n.id == r.recipient && n.live() && n.group == group)
                    .into_iter()
                    .collect(),
                _ => (0..self.nodes.len())
                    .filter(|&j| j != i && self.nodes[j].live() && self.nodes[j].group == group)
                    .collect(),
            };
            for j in targets {
                self.queue.push_back((j, msg.clone()));
            }
        }
    }

    /// The board hands `msg` to node `to` alone, then delivers what follows.
    pub fn deliver(&mut self, to: usize, msg: Message) {
        self.queue.push_back((to, msg));
        self.pump();
    }

    /// Delivers until nothing is in flight.
    pub fn pump(&mut self) {
        for i in 0..self.nodes.len() {
            self.collect(i);
        }
        while let Some((to, mut msg)) = self.queue.pop_front() {
            if let Some(t) = self.tamper.as_mut()
                && let Verdict::Drop = t(to, &mut msg)
            {
                continue;
            }
            if !self.nodes[to].live() {
                continue;
            }
            let bytes = msg.to_bytes();
            let now = self.now;
            if let Err(e) = self.nodes[to].session.handle(now, &bytes, &mut self.rng) {
                self.nodes[to].errors.push(e);
            }
            self.collect(to);
        }
    }

    /// Advances virtual time by `ms`, firing every timer on the way.
    pub fn advance(&mut self, ms: u64) {
        let target = self.now.after(ms);
        loop {
            let next = self
                .nodes
                .iter()
                .filter(|n| n.live())
                .filter_map(|n| n.session.poll_timeout())
                .min();
            match next {
                Some(t) if t <= target => {
                    self.now = self.now.max(t);
                    for i in 0..self.nodes.len() {
                        if self.nodes[i].live()
                            && self.nodes[i]
                                .session
                                .poll_timeout()
                                .is_some_and(|d| d <= self.now)
                        {
                            let now = self.now;
                            if let Err(e) = self.nodes[i].session.handle_timeout(now, &mut self.rng)
                            {
                                self.nodes[i].errors.push(e);
                            }
                            self.collect(i);
                        }
                    }
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = target;
    }

    /// Every live node holds the same latest key, certified for the same roster.
    pub fn assert_converged(&self) -> u32 {
        let live: Vec<&Node> = self.nodes.iter().filter(|n| n.live()).collect();
        let first = live[0].latest().expect("a key");
        for n in &live {
            let u = n
                .latest()
                .unwrap_or_else(|| panic!("{:?} has no key", n.id));
            assert_eq!(u.mk_seq, first.mk_seq, "{:?}", n.id);
            assert_eq!(u.meeting_key, first.meeting_key, "{:?}", n.id);
            assert_eq!(u.roster, first.roster, "{:?}", n.id);
        }
        assert_eq!(first.roster.len(), live.len());
        first.mk_seq
    }
}

//! A meeting across both planes on virtual time: keyctl sessions joined through the real board
//! core ([`veil_board::BoardCore`], the routing `veil board` runs, not a copy of it), each node's
//! key events applied to a dataplane keyring through the one handoff
//! ([`dataplane::keyring::Handoff`]), and media sealed and opened with the workers' code
//! ([`dataplane::keyring::WorkerKeys`]) every 20 virtual milliseconds.
//!
//! Everything runs in one thread on virtual milliseconds with a seeded generator, so a run is
//! exact and repeatable. Every packet and what each node made of it is kept
//! ([`Sim::packets`]); the checks ([`Sim::check_media`]) are the properties the two planes
//! promise together:
//! - nothing is sealed under a key before that key's activation time (whitepaper 3.7.6);
//! - no packet is lost at a rotation: every packet of an honest member opens at every honest
//!   member that was given its key and is still in the meeting;
//! - a removed member's packets stop opening once its key retires at a receiver (v4.6: the old
//!   key goes 10 s after the new one arrives);
//! - a removed member opens nothing sealed under a key newer than the rotation that followed
//!   its removal, even one that ignores the kick and keeps every key it had ([`Sim::disobey`]).

use std::collections::BTreeMap;

use dataplane::keyring::{Handoff, WorkerKeys};
use dataplane::packet::{HEADROOM, Mode};
use dataplane::sframe::CipherSuite;
use keyctl::crypto::SigningKey;
use keyctl::meeting::{Config, Event, LeftReason, Millis, Session, Timings};
use keyctl::test_rng::TestRng;
use keyctl::wire::{Field, Id, MeetingRef, ParticipantId};
use veil_board::frame::{ClientFrame, Hello, ServerFrame};
use veil_board::{BoardCore, ConnId, Honest, Output};

/// Virtual milliseconds between two media packets of a sender.
pub const MEDIA_INTERVAL_MS: u64 = 20;
/// The virtual clock's step.
const TICK_MS: u64 = 10;
/// The length prefix of a board frame.
const PREFIX: usize = 4;
/// Bytes of media payload per packet.
const PAYLOAD: usize = 64;

/// Why the simulation could not do what a test asked: a setup mistake, not a finding.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The board did not welcome a join.
    #[error("the board did not welcome {0}")]
    NotWelcomed(String),
    /// keyctl refused to start or drive a session.
    #[error("{name}: {error}")]
    Session {
        /// The node.
        name: String,
        /// keyctl's error.
        error: keyctl::meeting::MeetingError,
    },
    /// No node of that name.
    #[error("no node named {0}")]
    UnknownNode(String),
}

/// One participant: its connection to the board, its keyctl session, its keyring.
#[derive(Debug)]
pub struct Node {
    /// The name it joined with.
    pub name: String,
    conn: ConnId,
    /// Its participant ID, as the board assigned it.
    pub me: ParticipantId,
    meeting: MeetingRef,
    session: Option<Session>,
    /// Its keyring and the handoff that feeds it.
    pub handoff: Handoff,
    worker: WorkerKeys,
    /// Every key keyctl gave it: mkSeqNum to activation time.
    pub keys: BTreeMap<u32, Millis>,
    /// For each key, how many packets had been sealed (by anyone) when it arrived: packets
    /// from that index on were sealed after this node had it.
    keyed_after: BTreeMap<u32, usize>,
    /// Retirements keyctl asked for: mkSeqNum to when.
    pub retired: BTreeMap<u32, Millis>,
    /// Why its session ended, and when.
    pub left: Option<(LeftReason, Millis)>,
    /// How many packets had been sealed when its session ended (orders a leave against the
    /// packets of the same millisecond).
    left_after: Option<usize>,
    /// Whether it applies keyctl's retirements and its leave to its keyring. A disobedient
    /// node is a removed member that keeps every key it ever had and goes on sealing.
    obeys: bool,
    /// Whether its keyring gets the keys keyctl gives it (false only to show the checks catch
    /// a broken handoff: [`Sim::break_handoff`]).
    installs: bool,
    /// Whether it sends media.
    pub sending: bool,
    sent: u64,
}

impl Node {
    /// Records that its session ended for `reason` at `now`, after `sealed` packets (the first
    /// reason recorded stands).
    fn mark_left(&mut self, reason: LeftReason, now: Millis, sealed: usize) {
        if self.left.is_none() {
            self.left = Some((reason, now));
            self.left_after = Some(sealed);
        }
    }

    /// Whether its keyring opens `wire` at `now`, as its worker would on receiving it (which
    /// advances its replay windows).
    fn opens(&mut self, now: Millis, wire: &[u8]) -> bool {
        let snapshot = self.handoff.keyring().load_full();
        let mut copy = wire.to_vec();
        self.worker.open(&snapshot, now, &mut copy).is_ok()
    }

    /// Whether its session is still running.
    pub fn in_meeting(&self) -> bool {
        self.left.is_none()
    }
}

/// One packet a node sealed, and what every other node made of it.
#[derive(Debug, Clone)]
pub struct Packet {
    /// The sender's index.
    pub from: usize,
    /// When it was sealed (and delivered: the network is instant).
    pub at: Millis,
    /// The key it was sealed under.
    pub mk_seq: u32,
    /// Per receiver index: whether it opened.
    pub opened: BTreeMap<usize, bool>,
    /// The datagram as it crossed the network, for replays.
    pub wire: Vec<u8>,
}

/// The whole meeting: see the module docs.
#[derive(Debug)]
pub struct Sim {
    now: Millis,
    board: BoardCore,
    nodes: Vec<Node>,
    rng: TestRng,
    timings: Timings,
    next_conn: ConnId,
    next_media: Millis,
    packets: Vec<Packet>,
    /// Messages a session refused: (node, error). Refusals are normal under an adversary;
    /// tests read them.
    pub refusals: Vec<(usize, keyctl::meeting::MeetingError)>,
}

impl Sim {
    /// An empty board at a fixed virtual time; `seed` names the run (generator and meetingUUID
    /// salt derive from it).
    pub fn new(seed: &str) -> Self {
        let salt = keyctl::crypto::sha256(seed.as_bytes());
        let mut uuid_salt = [0; 16];
        uuid_salt.copy_from_slice(&salt[..16]);
        Self {
            now: Millis(1_700_000_000_000),
            board: BoardCore::new(Box::new(Honest), uuid_salt),
            nodes: Vec::new(),
            rng: TestRng::new(seed),
            timings: Timings::default(),
            next_conn: 1,
            next_media: Millis(0),
            packets: Vec::new(),
            refusals: Vec::new(),
        }
    }

    /// The virtual time.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// The nodes, in join order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Every packet sealed so far.
    pub fn packets(&self) -> &[Packet] {
        &self.packets
    }

    /// The index of the node called `name`.
    pub fn index(&self, name: &str) -> Result<usize, SimError> {
        self.nodes
            .iter()
            .rposition(|n| n.name == name)
            .ok_or_else(|| SimError::UnknownNode(name.to_owned()))
    }

    /// `name` connects and joins "meeting" (the first to join leads, as the board decides);
    /// returns its index once the board welcomed it and its session started.
    pub fn join(&mut self, name: &str, host: bool) -> Result<usize, SimError> {
        let identity = SigningKey::generate(&mut TestRng::new(&format!("identity-{name}")))
            .map_err(|e| SimError::Session {
                name: name.to_owned(),
                error: e.into(),
            })?;
        let conn = self.next_conn;
        self.next_conn += 1;
        self.board.connected(conn, self.now);
        let hello = ClientFrame::Hello(Hello {
            meeting_id: "meeting",
            name,
            host,
            ivk: identity.verifying_key(),
        })
        .encode();
        self.board.handle(conn, &hello[PREFIX..], self.now);
        // The welcome comes first on this connection; what follows it is routed as usual.
        let mut welcome = None;
        let mut rest = Vec::new();
        while let Some(out) = self.board.poll_output() {
            match out {
                Output::Send { to, frame } if to == conn && welcome.is_none() => {
                    if let Ok(ServerFrame::Welcome(w)) = ServerFrame::parse(&frame[PREFIX..]) {
                        welcome = Some(w);
                    }
                }
                other => rest.push(other),
            }
        }
        let welcome = welcome.ok_or_else(|| SimError::NotWelcomed(name.to_owned()))?;
        let config = Config {
            meeting: welcome.meeting.clone(),
            me: welcome.me.clone(),
            display_name: Id::new(Field::DisplayName, name.as_bytes()).map_err(|e| {
                SimError::Session {
                    name: name.to_owned(),
                    error: e.into(),
                }
            })?,
            leader: welcome.leader.clone(),
            invite: None,
            host_secret: None,
            timings: self.timings,
            pq: keyctl::wire::PqPolicy::default(),
        };
        let mut session =
            Session::new(config, identity, self.now, &mut self.rng).map_err(|error| {
                SimError::Session {
                    name: name.to_owned(),
                    error,
                }
            })?;
        let _ = session.set_cohosts(welcome.cohosts.iter().cloned());
        let index = self.nodes.len();
        self.nodes.push(Node {
            name: name.to_owned(),
            conn,
            me: welcome.me.clone(),
            handoff: Handoff::new(
                welcome.me.clone(),
                &welcome.meeting,
                CipherSuite::Aes256GcmSha512_128,
            ),
            meeting: welcome.meeting,
            session: Some(session),
            worker: WorkerKeys::new(Mode::Datagram),
            keys: BTreeMap::new(),
            keyed_after: BTreeMap::new(),
            retired: BTreeMap::new(),
            left: None,
            left_after: None,
            obeys: true,
            installs: true,
            sending: true,
            sent: 0,
        });
        for out in rest {
            self.route(out);
        }
        self.pump();
        Ok(index)
    }

    /// Node `leader` kicks `victim` (a leader command; keyctl refuses it from anyone else).
    pub fn kick(&mut self, leader: usize, victim: &str) -> Result<(), SimError> {
        let victim_id = self.nodes[self.index(victim)?].me.clone();
        let now = self.now;
        let node = &mut self.nodes[leader];
        if let Some(session) = node.session.as_mut() {
            session
                .kick(now, &victim_id, &mut self.rng)
                .map_err(|error| SimError::Session {
                    name: node.name.clone(),
                    error,
                })?;
        }
        self.pump();
        Ok(())
    }

    /// Node `index` leaves on request.
    pub fn leave(&mut self, index: usize) {
        if let Some(session) = self.nodes[index].session.as_mut() {
            let _ = session.leave();
        }
        self.pump();
    }

    /// Node `index`'s connection to the board breaks (as a crash or a network cut would): the
    /// driver drops its session and erases its keys, and the board tells the others it left.
    /// A later [`Sim::join`] under the same name is the same identity rejoining.
    pub fn lose_connection(&mut self, index: usize) {
        let now = self.now;
        let sealed = self.packets.len();
        let node = &mut self.nodes[index];
        if node.session.take().is_some() {
            node.handoff.erase();
            node.mark_left(LeftReason::HeartbeatsMissed, now, sealed);
            let conn = node.conn;
            self.board.disconnected(conn, now);
            self.pump();
        }
    }

    /// Whether node `index`'s keyring opens `wire` now (an attacker replaying a datagram it
    /// captured earlier). Opening advances the node's replay windows, as a real receive does.
    pub fn replay_to(&mut self, index: usize, wire: &[u8]) -> bool {
        let now = self.now;
        self.nodes[index].opens(now, wire)
    }

    /// Node `index` becomes a removed member that will not let go: it ignores retirements
    /// and its own removal, keeps every key, and goes on sealing with the newest it has.
    pub fn disobey(&mut self, index: usize) {
        self.nodes[index].obeys = false;
    }

    /// Fault injection for the checks' own tests: node `index`'s keyring no longer gets the keys
    /// keyctl gives it, as a broken handoff would; [`Sim::check_media`] must then report loss.
    pub fn break_handoff(&mut self, index: usize) {
        self.nodes[index].installs = false;
    }

    /// Runs `ms` virtual milliseconds: timers, the board's tick, and media every
    /// [`MEDIA_INTERVAL_MS`].
    pub fn run(&mut self, ms: u64) {
        let end = self.now.after(ms);
        while self.now < end {
            self.now = self.now.after(TICK_MS).min(end);
            let now = self.now;
            for index in 0..self.nodes.len() {
                let Some(session) = self.nodes[index].session.as_mut() else {
                    continue;
                };
                if session.poll_timeout().is_some_and(|t| t <= now)
                    && let Err(error) = session.handle_timeout(now, &mut self.rng)
                {
                    self.refusals.push((index, error));
                }
            }
            self.board.tick(now);
            self.pump();
            if now >= self.next_media {
                self.media();
                self.next_media = now.after(MEDIA_INTERVAL_MS);
            }
        }
    }

    /// Delivers until nothing moves: each session's events go to its keyring, its posts to
    /// the board, the board's frames to the sessions.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            for index in 0..self.nodes.len() {
                moved |= self.drain_node(index);
            }
            while let Some(out) = self.board.poll_output() {
                moved = true;
                self.route(out);
            }
            if !moved {
                break;
            }
        }
    }

    /// A node's events and posts; returns whether there were any.
    fn drain_node(&mut self, index: usize) -> bool {
        let now = self.now;
        let sealed = self.packets.len();
        let node = &mut self.nodes[index];
        let Some(session) = node.session.as_mut() else {
            return false;
        };
        let mut moved = false;
        let mut ended = false;
        while let Some(event) = session.poll_event() {
            moved = true;
            match &event {
                Event::KeyUpdate(update) => {
                    node.keys.insert(update.mk_seq, update.activate_at);
                    node.keyed_after.insert(update.mk_seq, sealed);
                }
                Event::RetireEpoch { mk_seq, at } => {
                    node.retired.insert(*mk_seq, *at);
                }
                Event::Left(reason) => {
                    // Fields, not `mark_left`: `session` is borrowed for the loop.
                    if node.left.is_none() {
                        node.left = Some((*reason, now));
                        node.left_after = Some(sealed);
                    }
                    ended = true;
                }
                Event::Alert(_) => {}
            }
            let applies = match event {
                Event::KeyUpdate(_) => node.installs,
                Event::RetireEpoch { .. } | Event::Left(_) | Event::Alert(_) => node.obeys,
            };
            if applies {
                // A refusal here is a finding the checks report (a key not installed).
                let _ = node.handoff.handle(&node.meeting, &event, now);
            }
        }
        let mut posts = Vec::new();
        while let Some(msg) = session.poll_transmit() {
            posts.push(ClientFrame::Post(&msg.to_bytes()).encode());
        }
        let conn = node.conn;
        if ended {
            // The driver drops the session (and its keys) and the connection, as the
            // participant driver does; the board then tells the others.
            node.session = None;
        }
        for post in &posts {
            moved = true;
            self.board.handle(conn, &post[PREFIX..], now);
        }
        if ended {
            self.board.disconnected(conn, now);
        }
        moved
    }

    /// Hands one board output to its connection.
    fn route(&mut self, out: Output) {
        let now = self.now;
        match out {
            Output::Send { to, frame } => {
                let Some(index) = self.nodes.iter().position(|n| n.conn == to) else {
                    return;
                };
                let node = &mut self.nodes[index];
                let Some(session) = node.session.as_mut() else {
                    return;
                };
                match ServerFrame::parse(frame.get(PREFIX..).unwrap_or_default()) {
                    Ok(ServerFrame::Deliver(bytes)) => {
                        if let Err(error) = session.handle(now, bytes, &mut self.rng) {
                            self.refusals.push((index, error));
                        }
                    }
                    Ok(ServerFrame::Cohosts(list)) => {
                        let _ = session.set_cohosts(list);
                    }
                    // The board's lists are untrusted and keyctl's notices come as Deliver;
                    // a driver only logs these.
                    Ok(
                        ServerFrame::Welcome(_)
                        | ServerFrame::Joined(_)
                        | ServerFrame::Left(_)
                        | ServerFrame::Refused(_)
                        | ServerFrame::Ended
                        | ServerFrame::RelayTicket(_),
                    )
                    | Err(_) => {}
                }
            }
            Output::Close(conn) => {
                let sealed = self.packets.len();
                if let Some(node) = self.nodes.iter_mut().find(|n| n.conn == conn) {
                    node.session = None;
                    node.mark_left(LeftReason::Requested, now, sealed);
                }
                self.board.disconnected(conn, now);
            }
        }
    }

    /// Every sending node seals one packet with the key its keyring sends with now, and every
    /// other node tries to open it.
    fn media(&mut self) {
        let now = self.now;
        for from in 0..self.nodes.len() {
            let sender = &mut self.nodes[from];
            if !sender.sending || (sender.obeys && !sender.in_meeting()) {
                continue;
            }
            let mut buf = vec![0u8; HEADROOM + PAYLOAD + 32];
            buf[HEADROOM..HEADROOM + 8].copy_from_slice(&sender.sent.to_be_bytes());
            sender.sent += 1;
            let snapshot = sender.handoff.keyring().load_full();
            let Ok(range) = sender
                .worker
                .seal(&snapshot, now, 0, &mut buf, HEADROOM, PAYLOAD)
            else {
                continue;
            };
            let wire = buf[range].to_vec();
            let mk_seq = wire
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_be_bytes);
            let mut opened = BTreeMap::new();
            for to in (0..self.nodes.len()).filter(|&to| to != from) {
                opened.insert(to, self.nodes[to].opens(now, &wire));
            }
            self.packets.push(Packet {
                from,
                at: now,
                mk_seq,
                opened,
                wire,
            });
        }
    }

    /// Checks the media properties over every packet so far (see the module docs); returns
    /// each violation found, none if the run is clean.
    pub fn check_media(&self) -> Vec<String> {
        let mut violations = Vec::new();
        for (index, p) in self.packets.iter().enumerate() {
            let sender = &self.nodes[p.from];
            // Nothing sealed before its key's activation.
            match sender.keys.get(&p.mk_seq) {
                Some(activate_at) if *activate_at <= p.at => {}
                Some(activate_at) => violations.push(format!(
                    "{} sealed under key {} at {} before its activation at {}",
                    sender.name, p.mk_seq, p.at.0, activate_at.0
                )),
                None => violations.push(format!(
                    "{} sealed under key {} that keyctl never gave it",
                    sender.name, p.mk_seq
                )),
            }
            let present = |node: &Node| node.left_after.is_none_or(|after| index < after);
            let sender_present = present(sender);
            for (&to, &opened) in &p.opened {
                let receiver = &self.nodes[to];
                let receiver_present = present(receiver);
                let receiver_holds = receiver
                    .keyed_after
                    .get(&p.mk_seq)
                    .is_some_and(|after| *after <= index);
                let retired_at_receiver = receiver
                    .retired
                    .get(&p.mk_seq)
                    .is_some_and(|at| *at <= p.at);
                let what = || {
                    format!(
                        "{}'s packet under key {} at {} at {}",
                        sender.name, p.mk_seq, p.at.0, receiver.name
                    )
                };
                // No packet lost: between members, with the key given and not retired.
                if sender_present
                    && receiver_present
                    && receiver_holds
                    && !retired_at_receiver
                    && !opened
                {
                    violations.push(format!("lost: {}", what()));
                }
                // A removed member's packets stop opening once its key retired.
                if !sender_present && receiver_present && retired_at_receiver && opened {
                    violations.push(format!("opened after retirement: {}", what()));
                }
                // A member that left erased every key; a removed one that kept them opens
                // nothing under a key newer than the newest it was given.
                if !receiver_present && opened {
                    let newest_held = receiver.keys.keys().next_back().copied().unwrap_or(0);
                    if receiver.obeys || p.mk_seq > newest_held {
                        violations.push(format!("opened by a removed member: {}", what()));
                    }
                }
            }
        }
        violations
    }
}

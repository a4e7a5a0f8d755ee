//! `BoardCore`: the board's state machine, sans-IO. The event loop feeds it connection
//! events and frame bodies with the time; it answers with frames to send and connections to
//! close. It holds no secret and verifies nothing cryptographic (the board is untrusted by
//! design, whitepaper 3.1); it only routes.
//!
//! Routing follows the whitepaper's bulletin board (3.7.2-3.7.7): every post goes to every
//! other participant of the meeting instance, except a Rekey, which goes to its recipient
//! only. A late joiner first receives the board's backlog: each present participant's latest
//! key announcement and liveness nonce, and the LPL links since the last snapshot.
//!
//! The board ties every post to the connection that sent it (it checks no signature, but it
//! knows who is on each connection): a participant posts only what a participant sends, about
//! itself, in its own meeting instance; only the connection the board made leader posts what a
//! leader sends; the board's own notices (Leave for someone else, LeaderChange) never come
//! from a client. See [`vet`]. A post that breaks this is refused, counted by reason, and its
//! connection closed, before any state changes.
//!
//! Everything fed from outside is bounded ([`BoardLimits`], [`MAX_BACKLOG_LINKS`],
//! [`MAX_BACKLOG_LINK_BYTES`], [`MAX_DEPARTED_POSTS`]); docs/PROTOCOL.md "Board wire format"
//! lists the bounds and why.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use keyctl::crypto::sha256;
use keyctl::meeting::Millis;
use keyctl::wire::{LeaderChange, Leave, LplOp, MeetingRef, Message, ParticipantId};

use super::frame::{ClientFrame, Hello, MAX_FRAME, ServerFrame, WelcomeFrame};
use super::policy::Policy;
use super::stats::{BoardStats, ErrorReason};
use veil_relay::ticket::{relay_meeting, relay_token};

/// How long a connection may stay without a hello, in milliseconds.
pub const HELLO_TIMEOUT_MS: u64 = 10_000;

/// Most list links a meeting's backlog holds since its last snapshot. An honest leader
/// coalesces into a snapshot beyond `max_links` links (whitepaper 3.7.7; 20 by default, the
/// sidecar's setting), so 64 leaves room for both halves of a partition and a larger setting;
/// past it a late joiner could not be served anyway. A link beyond it closes the poster
/// ([`ErrorReason::BacklogFull`]).
pub const MAX_BACKLOG_LINKS: usize = 64;

/// Most bytes of list links a meeting's backlog holds: one snapshot of the largest frame
/// ([`MAX_FRAME`]) and as much again for the links after it.
pub const MAX_BACKLOG_LINK_BYTES: usize = 2 * MAX_FRAME;

/// Posts of departed participants kept per meeting, for `--tamper replay-instance` only (an
/// honest board keeps nothing of a participant once it left).
pub const MAX_DEPARTED_POSTS: usize = 64;

/// The board's caps on what outsiders can make it hold. Exceeding one refuses the connection
/// or the hello with a typed reason and a counter; nothing grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoardLimits {
    /// Open connections, greeting or joined. Each holds a socket and buffers; a connection
    /// beyond it is closed at once ([`ErrorReason::ConnectionsFull`]).
    pub max_connections: usize,
    /// Meeting instances at once. A hello that would start one more is refused
    /// ([`ErrorReason::MeetingsFull`]).
    pub max_meetings: usize,
    /// Participants in one meeting instance: the design's largest meeting is 1,000
    /// (/work/shared/DESIGN.md). A hello beyond it is refused ([`ErrorReason::MeetingFull`]).
    pub max_participants: usize,
    /// Bytes queued for one connection and not yet taken by its socket. A late joiner of a
    /// 1,000-participant meeting is sent, at most, the welcome, every announcement and nonce
    /// and the list links: with every participant on a revision-4 hybrid identity (ML-KEM and
    /// ML-DSA keys, both signatures) and every ID at its longest, 15.5 MB, under the 16 MiB
    /// (`the_largest_meeting_with_hybrid_keys_fits_the_bounds` checks the sum); a
    /// connection that does not read past it is closed ([`ErrorReason::SlowConsumer`]). It
    /// must be at least one frame ([`MAX_FRAME`]) or large frames close their recipients.
    /// The queues share each frame with its other recipients (the event loop's `OutQueue`),
    /// so this bounds how far one connection may fall behind, not a copy per connection: a
    /// 1,000-member all-hybrid join storm peaks near 150 MiB for the whole board
    /// (docs/BENCHMARKS.md, "Join storm").
    pub max_pending_out: usize,
}

impl Default for BoardLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_meetings: 5_000,
            max_participants: 1_000,
            max_pending_out: 16 << 20,
        }
    }
}

/// A connection, numbered by the event loop.
pub type ConnId = usize;

/// What the event loop must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this frame (length prefix included) on the connection.
    Send {
        /// The connection.
        to: ConnId,
        /// The encoded frame, shared by every recipient of one post: a leader's 1 MiB list
        /// snapshot to 999 others is one allocation here, not 999.
        frame: Arc<[u8]>,
    },
    /// Flush what is queued, then close the connection.
    Close(ConnId),
}

/// One joined participant.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) conn: ConnId,
    pub(crate) id: ParticipantId,
    host: bool,
    /// The partition half (always 0 unless `--tamper partition`).
    pub(crate) group: u8,
}

/// What a late joiner is shown (whitepaper 3.7.2: the bulletin board). Each entry is tagged
/// with the partition half that may see it (`None`: everyone; only `--tamper partition` ever
/// tags one).
///
/// Bounds: one announcement and one nonce per present participant (keyed by the poster,
/// replaced on repost, dropped when it leaves), so at most
/// [`BoardLimits::max_participants`] of each; links as [`MAX_BACKLOG_LINKS`] and
/// [`MAX_BACKLOG_LINK_BYTES`]; departed posts as [`MAX_DEPARTED_POSTS`].
#[derive(Debug, Default)]
struct Backlog {
    announcements: BTreeMap<ParticipantId, (Option<u8>, Vec<u8>)>,
    nonces: BTreeMap<ParticipantId, (Option<u8>, Vec<u8>)>,
    links: Vec<(Option<u8>, Vec<u8>)>,
    /// `--tamper replay-instance` only: the posts of participants who left, oldest first.
    departed: VecDeque<Vec<u8>>,
}

impl Backlog {
    /// Keeps `msg`, already vetted as `poster`'s own, for late joiners; refuses (changing
    /// nothing) a link beyond the bounds.
    fn record(
        &mut self,
        half: Option<u8>,
        poster: &ParticipantId,
        msg: &Message,
        bytes: &[u8],
    ) -> Result<(), ErrorReason> {
        match msg {
            Message::KeyAnnouncement(_) => {
                self.announcements
                    .insert(poster.clone(), (half, bytes.to_vec()));
            }
            Message::NoncePost(_) => {
                self.nonces.insert(poster.clone(), (half, bytes.to_vec()));
            }
            Message::LinkPost(l) => {
                // A snapshot restates the whole list: older links of the same audience are
                // no longer needed (whitepaper 3.7.7).
                let snapshot = matches!(l.link.op, LplOp::Snapshot { .. });
                let (kept, kept_bytes) = self
                    .links
                    .iter()
                    .filter(|(h, _)| !snapshot || *h != half)
                    .fold((0, 0), |(n, b), (_, l)| (n + 1, b + l.len()));
                if kept + 1 > MAX_BACKLOG_LINKS || kept_bytes + bytes.len() > MAX_BACKLOG_LINK_BYTES
                {
                    return Err(ErrorReason::BacklogFull);
                }
                if snapshot {
                    self.links.retain(|(h, _)| *h != half);
                }
                self.links.push((half, bytes.to_vec()));
            }
            _ => {}
        }
        Ok(())
    }

    /// Drops what `gone` posted: late joiners have no use for a departed participant's key
    /// or nonce. With `keep` (`--tamper replay-instance`) the last [`MAX_DEPARTED_POSTS`]
    /// are kept aside for the next instance.
    fn forget(&mut self, gone: &ParticipantId, keep: bool) {
        for (_, bytes) in [self.announcements.remove(gone), self.nonces.remove(gone)]
            .into_iter()
            .flatten()
        {
            if keep {
                if self.departed.len() == MAX_DEPARTED_POSTS {
                    self.departed.pop_front();
                }
                self.departed.push_back(bytes);
            }
        }
    }

    fn for_group(&self, group: u8) -> impl Iterator<Item = &Vec<u8>> {
        self.announcements
            .values()
            .chain(self.nonces.values())
            .chain(self.links.iter())
            .filter(move |(h, _)| h.is_none_or(|h| h == group))
            .map(|(_, b)| b)
    }
}

/// One instance of a meeting: from its first join to its last leave.
#[derive(Debug)]
pub(crate) struct Instance {
    meeting: MeetingRef,
    /// Present participants, in join order.
    pub(crate) members: Vec<Member>,
    /// The leader of each half (one half unless partitioned).
    pub(crate) leaders: [Option<ParticipantId>; 2],
    backlog: Backlog,
    joins: u64,
    /// Whether `--tamper partition` has split this instance.
    pub(crate) split: bool,
    /// Who left and has not come back (most recent last, at most [`MAX_DEPARTED`]): a new
    /// leader is told again, since a Leave that reached it before it led was ignored.
    departed: Vec<ParticipantId>,
}

/// How many departures an instance remembers for its next leader.
const MAX_DEPARTED: usize = 1024;

impl Instance {
    pub(crate) fn group_members(&self, group: u8) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(move |m| m.group == group)
    }

    fn cohosts(&self) -> Vec<ParticipantId> {
        self.members
            .iter()
            .filter(|m| m.host)
            .map(|m| m.id.clone())
            .collect()
    }
}

#[derive(Debug)]
enum Conn {
    /// Connected at the given time; the first frame must be a hello.
    Greeting(Millis),
    /// Joined `meeting_id`; `last_ticket` is when its last TicketRequest was answered.
    Joined {
        meeting_id: String,
        last_ticket: Option<Millis>,
    },
    /// Refused or said goodbye: waiting for the event loop to close it; input is ignored.
    Closing,
}

/// The board's state: meetings, connections, and what to send.
pub struct BoardCore {
    conns: HashMap<ConnId, Conn>,
    instances: HashMap<String, Instance>,
    /// Posts of each meeting's last finished instance, kept only for `--tamper
    /// replay-instance`.
    previous: HashMap<String, Vec<Vec<u8>>>,
    out: VecDeque<Output>,
    /// What the core asks before it routes: [`Honest`](crate::Honest) unless a test plays the
    /// adversary.
    policy: Box<dyn Policy>,
    stats: BoardStats,
    uuid_counter: u64,
    uuid_salt: [u8; 16],
    limits: BoardLimits,
    /// Issues relay tickets in each Welcome (`--ticket-key`), or `None`.
    tickets: Option<RelayTickets>,
}

/// A ticket issued at `now` (the driver's clock, unix milliseconds) expires `lifetime` later, in
/// the unix seconds the relay compares it against.
fn ticket_expiry(now: Millis, lifetime: std::time::Duration) -> u64 {
    (now.0 / 1000).saturating_add(lifetime.as_secs())
}

/// The least time between two answered TicketRequests of one connection; an ask sooner is
/// counted (`ticket_too_soon`) and ignored. Participants ask every 30 s at most.
pub const TICKET_REQUEST_INTERVAL_MS: u64 = 10_000;

/// The board's side of relay tickets (docs/PROTOCOL.md "Relay registration").
#[derive(Debug)]
pub struct RelayTickets {
    /// The key shared with the relay.
    pub key: veil_relay::ticket::TicketKey,
    /// How long a ticket is valid after its Welcome.
    pub lifetime: std::time::Duration,
}

impl core::fmt::Debug for BoardCore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BoardCore")
            .field("connections", &self.conns.len())
            .field("meetings", &self.instances.len())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The deviceID the board gives an identity: the first 8 bytes of SHA-256(IVK), in hex. The
/// same identity always gets the same participant ID, so a rejoin is recognised by keyctl
/// (whitepaper 3.7.7: same IVK, same participant).
pub fn device_id(ivk: &[u8; 32]) -> String {
    hex::encode(sha256(ivk).get(..8).unwrap_or_default())
}

impl BoardCore {
    /// A board; `uuid_salt` makes its meetingUUIDs unique to this process (pass random
    /// bytes; tests may pass a constant).
    pub fn new(policy: Box<dyn Policy>, uuid_salt: [u8; 16]) -> Self {
        Self::with_limits(policy, uuid_salt, BoardLimits::default())
    }

    /// A board with other caps than the defaults.
    pub fn with_limits(policy: Box<dyn Policy>, uuid_salt: [u8; 16], limits: BoardLimits) -> Self {
        Self {
            conns: HashMap::new(),
            instances: HashMap::new(),
            previous: HashMap::new(),
            out: VecDeque::new(),
            policy,
            stats: BoardStats::default(),
            uuid_counter: 0,
            uuid_salt,
            limits,
            tickets: None,
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> &BoardStats {
        &self.stats
    }

    /// Counts a refusal the event loop saw itself (a TLS or socket error, a broken frame).
    pub fn count_error(&mut self, reason: ErrorReason) {
        self.stats.error(reason);
    }

    /// Counts a frame the event loop received.
    pub fn count_frame_in(&mut self, len: usize) {
        self.stats.frame_in(len);
    }

    /// Issues a relay ticket in every Welcome from now on.
    pub fn set_relay_tickets(&mut self, tickets: RelayTickets) {
        self.tickets = Some(tickets);
    }

    /// The next thing for the event loop to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// A new connection was accepted. Beyond [`BoardLimits::max_connections`] it is closed at
    /// once, and the board holds nothing for it.
    pub fn connected(&mut self, conn: ConnId, now: Millis) {
        if !self.conns.contains_key(&conn) && self.conns.len() >= self.limits.max_connections {
            self.stats.error(ErrorReason::ConnectionsFull);
            tracing::debug!(conn, "connection cap reached: closing");
            self.out.push_back(Output::Close(conn));
            return;
        }
        self.conns.insert(conn, Conn::Greeting(now));
        self.update_gauges();
    }

    /// The connection closed (by the peer, an I/O error, or after [`Output::Close`]).
    pub fn disconnected(&mut self, conn: ConnId, now: Millis) {
        self.depart(conn, now);
        self.conns.remove(&conn);
        self.update_gauges();
    }

    /// A connection failed below the frame layer (I/O, TLS, oversize prefix): counts it and
    /// closes.
    pub fn refuse(&mut self, conn: ConnId, reason: ErrorReason, now: Millis) {
        self.stats.error(reason);
        tracing::debug!(conn, reason = reason.as_str(), "closing connection");
        self.close(conn, now);
    }

    /// Removes the participant, ignores the connection's further input, and asks the event
    /// loop to close it.
    fn close(&mut self, conn: ConnId, now: Millis) {
        self.depart(conn, now);
        if let Some(state) = self.conns.get_mut(&conn) {
            *state = Conn::Closing;
        }
        self.out.push_back(Output::Close(conn));
    }

    /// Closes connections that sent no hello within [`HELLO_TIMEOUT_MS`] (they hold a socket
    /// and buffers without being anyone). Call it now and then; the event loop does every
    /// 100 ms.
    pub fn tick(&mut self, now: Millis) {
        let idle: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                matches!(c, Conn::Greeting(since) if now.since(*since) >= HELLO_TIMEOUT_MS)
            })
            .map(|(id, _)| *id)
            .collect();
        for conn in idle {
            self.refuse(conn, ErrorReason::HelloTimeout, now);
        }
    }

    /// Tells every connection the board is shutting down.
    pub fn shutdown(&mut self) {
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.send(conn, &ServerFrame::Ended);
            self.out.push_back(Output::Close(conn));
        }
    }

    /// Handles one frame body received on `conn`.
    pub fn handle(&mut self, conn: ConnId, body: &[u8], now: Millis) {
        self.stats.frame_in(body.len() + 4);
        let frame = match ClientFrame::parse(body) {
            Ok(f) => f,
            Err(e) => return self.refuse(conn, ErrorReason::from(&e), now),
        };
        let joined = match self.conns.get(&conn) {
            Some(Conn::Joined { meeting_id, .. }) => Some(meeting_id.clone()),
            Some(Conn::Greeting(_)) => None,
            Some(Conn::Closing) | None => return,
        };
        match (frame, joined) {
            (ClientFrame::Hello(h), None) => self.join(conn, &h, now),
            (ClientFrame::Hello(_), Some(_)) => self.refuse(conn, ErrorReason::SecondHello, now),
            (ClientFrame::Post(_) | ClientFrame::Bye | ClientFrame::TicketRequest, None) => {
                self.refuse(conn, ErrorReason::NotJoined, now);
            }
            (ClientFrame::TicketRequest, Some(meeting_id)) => {
                if self.ticket_request_allowed(conn, now) {
                    self.reissue_ticket(conn, &meeting_id, now);
                } else {
                    self.stats.error(ErrorReason::TicketTooSoon);
                }
            }
            (ClientFrame::Post(bytes), Some(meeting_id)) => {
                self.post(conn, &meeting_id, bytes, now);
            }
            (ClientFrame::Bye, Some(_)) => self.close(conn, now),
        }
    }

    /// Whether `conn` may be answered a ticket at `now`: its first ask, or one at least
    /// [`TICKET_REQUEST_INTERVAL_MS`] after the last answered one (each answer costs an HMAC and
    /// a frame; participants ask half way to expiry and every 30 s at most). Records the answer.
    fn ticket_request_allowed(&mut self, conn: ConnId, now: Millis) -> bool {
        let Some(Conn::Joined { last_ticket, .. }) = self.conns.get_mut(&conn) else {
            return false;
        };
        if last_ticket.is_some_and(|at| now < at.after(TICKET_REQUEST_INTERVAL_MS)) {
            return false;
        }
        *last_ticket = Some(now);
        true
    }

    /// A fresh relay ticket for the connection's participant in its instance (the sidecar
    /// asks before its ticket expires). A board without `--ticket-key` has none to give: the
    /// request is counted as a misdirected frame type, and the connection stays.
    fn reissue_ticket(&mut self, conn: ConnId, meeting_id: &str, now: Millis) {
        let Some(tickets) = &self.tickets else {
            self.stats.error(ErrorReason::BadType);
            return;
        };
        let Some(inst) = self.instances.get(meeting_id) else {
            return;
        };
        let Some(member) = inst.members.iter().find(|m| m.conn == conn) else {
            return;
        };
        let expiry = ticket_expiry(now, tickets.lifetime);
        let ticket = tickets.key.issue(
            &relay_meeting(&inst.meeting),
            &relay_token(&member.id),
            expiry,
        );
        self.send(conn, &ServerFrame::RelayTicket(ticket));
    }

    fn fresh_uuid(&mut self, meeting_id: &str) -> String {
        self.uuid_counter += 1;
        let mut input = self.uuid_salt.to_vec();
        input.extend_from_slice(&self.uuid_counter.to_be_bytes());
        input.extend_from_slice(meeting_id.as_bytes());
        hex::encode(sha256(&input).get(..16).unwrap_or_default())
    }

    fn join(&mut self, conn: ConnId, hello: &Hello<'_>, now: Millis) {
        let id = match ParticipantId::new(hello.name.as_bytes(), device_id(&hello.ivk).as_bytes()) {
            Ok(id) => id,
            Err(_) => return self.refuse_join(conn, ErrorReason::BadField, "invalid name"),
        };
        match self.instances.get(hello.meeting_id) {
            None if self.instances.len() >= self.limits.max_meetings => {
                return self.refuse_join(conn, ErrorReason::MeetingsFull, "the board is full");
            }
            Some(inst) if inst.members.len() >= self.limits.max_participants => {
                return self.refuse_join(conn, ErrorReason::MeetingFull, "the meeting is full");
            }
            _ => {}
        }
        if !self.instances.contains_key(hello.meeting_id) {
            let uuid = self.fresh_uuid(hello.meeting_id);
            let Ok(meeting) = MeetingRef::new(hello.meeting_id.as_bytes(), uuid.as_bytes()) else {
                return self.refuse_join(conn, ErrorReason::BadField, "invalid meeting ID");
            };
            tracing::info!(meeting = hello.meeting_id, uuid, "meeting instance starts");
            self.instances.insert(
                hello.meeting_id.to_owned(),
                Instance {
                    meeting,
                    members: Vec::new(),
                    leaders: [None, None],
                    backlog: Backlog::default(),
                    joins: 0,
                    split: false,
                    departed: Vec::new(),
                },
            );
        }
        let Some(inst) = self.instances.get_mut(hello.meeting_id) else {
            return;
        };
        if inst.members.iter().any(|m| m.id == id) {
            return self.refuse_join(
                conn,
                ErrorReason::DuplicateParticipant,
                "this identity is already in the meeting",
            );
        }
        // After a partition, newcomers alternate between the halves.
        inst.departed.retain(|d| *d != id);
        let group = if inst.split {
            u8::from(inst.joins % 2 == 1)
        } else {
            0
        };
        inst.joins += 1;
        // Leader selection: the first participant of a fresh instance (or half) leads; a
        // host joining later does not displace a working leader, but is preferred when
        // the leader goes (see `depart`).
        let leader = inst.leaders[usize::from(group)]
            .get_or_insert_with(|| id.clone())
            .clone();
        let relay_ticket = self.tickets.as_ref().map(|t| {
            let expiry = ticket_expiry(now, t.lifetime);
            t.key
                .issue(&relay_meeting(&inst.meeting), &relay_token(&id), expiry)
        });
        let welcome = ServerFrame::Welcome(WelcomeFrame {
            meeting: inst.meeting.clone(),
            me: id.clone(),
            leader,
            cohosts: inst.cohosts(),
            relay_ticket,
        });
        let present: Vec<(ConnId, ParticipantId)> = inst
            .group_members(group)
            .map(|m| (m.conn, m.id.clone()))
            .collect();
        let backlog: Vec<Vec<u8>> = inst.backlog.for_group(group).cloned().collect();
        inst.members.push(Member {
            conn,
            id: id.clone(),
            host: hello.host,
            group,
        });
        self.conns.insert(
            conn,
            Conn::Joined {
                meeting_id: hello.meeting_id.to_owned(),
                last_ticket: None,
            },
        );
        tracing::info!(meeting = hello.meeting_id, participant = ?id, group, "joined");
        self.send(conn, &welcome);
        for (_, p) in &present {
            self.send(conn, &ServerFrame::Joined(p.clone()));
        }
        for bytes in &backlog {
            self.deliver(conn, bytes);
        }
        if self.policy.records_instances()
            && let Some(old) = self.previous.get(hello.meeting_id).cloned()
        {
            for bytes in &old {
                self.stats.tampered();
                self.send(conn, &ServerFrame::Deliver(bytes));
            }
        }
        for (other, _) in &present {
            self.send(*other, &ServerFrame::Joined(id.clone()));
        }
        if hello.host {
            self.announce_cohosts(hello.meeting_id, group);
        }
        if let Some(at) = self.policy.partition_at() {
            self.maybe_split(hello.meeting_id, at);
        }
        self.update_gauges();
    }

    /// Splits an instance in two once it has `at` participants, when the policy partitions
    /// (`--tamper partition`); the adversary's plan is [`crate::tamper::split`].
    fn maybe_split(&mut self, meeting_id: &str, at: usize) {
        let Some(inst) = self.instances.get_mut(meeting_id) else {
            return;
        };
        if inst.split || inst.members.len() < at {
            return;
        }
        let plan = crate::tamper::split(inst);
        tracing::warn!(meeting = meeting_id, "TAMPER: meeting partitioned in two");
        for (to, frame) in plan {
            self.stats.tampered();
            self.stats.frame_out(frame.len());
            self.out.push_back(Output::Send {
                to,
                frame: frame.into(),
            });
        }
    }

    /// Sends the current co-host list to a half of the meeting (whitepaper v4.6 locked
    /// meetings: the leader takes lock requests from the co-hosts the server names).
    fn announce_cohosts(&mut self, meeting_id: &str, group: u8) {
        let Some(inst) = self.instances.get(meeting_id) else {
            return;
        };
        let frame: Arc<[u8]> = ServerFrame::Cohosts(inst.cohosts()).encode().into();
        let targets: Vec<ConnId> = inst.group_members(group).map(|m| m.conn).collect();
        for to in targets {
            self.stats.frame_out(frame.len());
            self.out.push_back(Output::Send {
                to,
                frame: Arc::clone(&frame),
            });
        }
    }

    fn refuse_join(&mut self, conn: ConnId, reason: ErrorReason, text: &str) {
        self.stats.error(reason);
        self.send(conn, &ServerFrame::Refused(text));
        if let Some(state) = self.conns.get_mut(&conn) {
            *state = Conn::Closing;
        }
        self.out.push_back(Output::Close(conn));
    }

    fn post(&mut self, conn: ConnId, meeting_id: &str, bytes: &[u8], now: Millis) {
        // The board parses only to route; it checks no signature (it is untrusted). A
        // hybrid-signed post (keyctl revision 4) is routed and kept as the classical kind it
        // carries; its bytes go on unchanged.
        let Ok(msg) = Message::from_bytes(bytes).map(Message::into_classical) else {
            return self.refuse(conn, ErrorReason::MalformedPost, now);
        };
        let Some(inst) = self.instances.get_mut(meeting_id) else {
            return;
        };
        let Some(poster) = inst.members.iter().find(|m| m.conn == conn) else {
            return;
        };
        let (group, me) = (poster.group, poster.id.clone());
        let leads = inst
            .leaders
            .get(usize::from(group))
            .and_then(Option::as_ref)
            == Some(&me);
        match vet(&msg, &me, &inst.meeting, leads) {
            Err(reason) => {
                // One line per offending connection (it is closed): no flood.
                tracing::warn!(
                    conn,
                    participant = ?me,
                    reason = reason.as_str(),
                    "post refused: the participant is closed"
                );
                return self.refuse(conn, reason, now);
            }
            // Its own leave: the same as a bye (the board then posts the Leave notice to
            // the others, whitepaper 3.7.8).
            Ok(Vetted::OwnLeave) => return self.close(conn, now),
            Ok(Vetted::Relay) => {}
        }
        let half = inst.split.then_some(group);
        if let Err(reason) = inst.backlog.record(half, &me, &msg, bytes) {
            return self.refuse(conn, reason, now);
        }
        if self.policy.withholds(&msg) {
            self.stats.tampered();
            return;
        }
        let targets: Vec<ConnId> = match &msg {
            Message::Rekey(r) => inst
                .group_members(group)
                .filter(|m| m.id == r.recipient)
                .map(|m| m.conn)
                .collect(),
            // Only the leader answers a key request; nobody else needs to see it.
            Message::KeyRequest(_) => {
                let leader = inst
                    .leaders
                    .get(usize::from(group))
                    .and_then(Option::as_ref);
                inst.group_members(group)
                    .filter(|m| Some(&m.id) == leader && m.conn != conn)
                    .map(|m| m.conn)
                    .collect()
            }
            _ => inst
                .group_members(group)
                .filter(|m| m.conn != conn)
                .map(|m| m.conn)
                .collect(),
        };
        if targets.is_empty() && matches!(msg, Message::Rekey(_)) {
            // Its recipient left meanwhile (or never was here): nothing to deliver.
            self.stats.error(ErrorReason::UnknownRecipient);
        }
        // Encoded once, copied per recipient.
        let frame: Arc<[u8]> = match self.policy.rewrite(&msg) {
            Some(b) => {
                for _ in &targets {
                    self.stats.tampered();
                }
                ServerFrame::Deliver(&b).encode().into()
            }
            None => ServerFrame::Deliver(bytes).encode().into(),
        };
        for to in targets {
            self.stats.frame_out(frame.len());
            self.out.push_back(Output::Send {
                to,
                frame: Arc::clone(&frame),
            });
        }
    }

    /// Delivers a stored post to `conn`, through the tamper hook.
    fn deliver(&mut self, conn: ConnId, bytes: &[u8]) {
        let rewritten = if self.policy.rewrites() {
            Message::from_bytes(bytes)
                .ok()
                .and_then(|m| self.policy.rewrite(&m.into_classical()))
        } else {
            None
        };
        match rewritten {
            Some(b) => {
                self.stats.tampered();
                self.send(conn, &ServerFrame::Deliver(&b));
            }
            None => self.send(conn, &ServerFrame::Deliver(bytes)),
        }
    }

    /// Removes `conn`'s participant, if any: the others get a Left notice and keyctl's
    /// Leave; if it led, a LeaderChange (whitepaper 3.7.7). An empty instance is dropped
    /// with its posts, so the next join starts a fresh meetingUUID.
    fn depart(&mut self, conn: ConnId, _now: Millis) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        // A departed connection is only ever closed: its further input is ignored.
        let Conn::Joined { meeting_id, .. } = core::mem::replace(state, Conn::Closing) else {
            return;
        };
        let Some(inst) = self.instances.get_mut(&meeting_id) else {
            return;
        };
        let Some(pos) = inst.members.iter().position(|m| m.conn == conn) else {
            return;
        };
        let gone = inst.members.remove(pos);
        inst.backlog
            .forget(&gone.id, self.policy.records_instances());
        if inst.departed.len() == MAX_DEPARTED {
            inst.departed.remove(0);
        }
        inst.departed.push(gone.id.clone());
        tracing::info!(meeting = meeting_id, participant = ?gone.id, "left");
        let slot = usize::from(gone.group);
        let leave = Message::Leave(Leave {
            participant: gone.id.clone(),
        })
        .to_bytes();
        let mut change = None;
        let mut reminders: Vec<(ConnId, Vec<u8>)> = Vec::new();
        if inst.leaders.get(slot).and_then(Option::as_ref) == Some(&gone.id) {
            // The host if present, else the longest-present participant.
            let next = inst
                .group_members(gone.group)
                .find(|m| m.host)
                .or_else(|| inst.group_members(gone.group).next())
                .map(|m| m.id.clone());
            if let Some(l) = inst.leaders.get_mut(slot) {
                l.clone_from(&next);
            }
            // Leaves the new leader saw before it led were ignored (keyctl acts on a Leave
            // only while leading): tell it again after the change; a Leave for someone no
            // longer listed is a no-op.
            if let Some(new) = inst.members.iter().find(|m| Some(&m.id) == next.as_ref()) {
                for d in inst.departed.iter().filter(|d| **d != gone.id) {
                    let leave = Message::Leave(Leave {
                        participant: d.clone(),
                    });
                    reminders.push((new.conn, ServerFrame::Deliver(&leave.to_bytes()).encode()));
                }
            }
            change = next.map(|leader| Message::LeaderChange(LeaderChange { leader }).to_bytes());
        }
        let mut notices = vec![
            ServerFrame::Left(gone.id.clone()),
            ServerFrame::Deliver(&leave),
        ];
        if let Some(c) = &change {
            notices.push(ServerFrame::Deliver(c));
        }
        let targets: Vec<ConnId> = inst.group_members(gone.group).map(|m| m.conn).collect();
        if inst.members.is_empty()
            && let Some(inst) = self.instances.remove(&meeting_id)
        {
            tracing::info!(meeting = meeting_id, "meeting instance ends; posts cleared");
            if self.policy.records_instances()
                && (self.previous.len() < self.limits.max_meetings
                    || self.previous.contains_key(&meeting_id))
            {
                let posts = inst
                    .backlog
                    .departed
                    .iter()
                    .chain(inst.backlog.for_group(0))
                    .cloned()
                    .collect();
                self.previous.insert(meeting_id.clone(), posts);
            }
        }
        for to in targets {
            for n in &notices {
                self.send(to, n);
            }
        }
        for (to, frame) in reminders {
            self.stats.frame_out(frame.len());
            self.out.push_back(Output::Send {
                to,
                frame: frame.into(),
            });
        }
        if gone.host {
            self.announce_cohosts(&meeting_id, gone.group);
        }
        self.update_gauges();
    }

    fn send(&mut self, to: ConnId, frame: &ServerFrame<'_>) {
        let frame = frame.encode();
        self.stats.frame_out(frame.len());
        self.out.push_back(Output::Send {
            to,
            frame: frame.into(),
        });
    }

    fn update_gauges(&mut self) {
        let participants = self.instances.values().map(|i| i.members.len()).sum();
        self.stats
            .set_gauges(self.instances.len(), participants, self.conns.len());
    }
}

/// What an accepted post is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vetted {
    /// Relay it (and keep it for late joiners where it belongs in the backlog).
    Relay,
    /// The poster's own Leave: it leaves.
    OwnLeave,
}

/// Whether participant `me` of `meeting` may post `msg` (whitepaper 3.7.2-3.7.8: who sends
/// what). The board cannot check signatures, but it knows who is on each connection, so a
/// participant can speak only for itself:
///
/// - a key announcement (3.7.4 step 1), a liveness nonce (3.7.3) and a lock request (v4.6)
///   must name the poster and its meeting instance;
/// - a Leave only the poster's own (3.7.8); the board's Leave notices about others come from
///   the board alone;
/// - a LeaderChange is the board's notice (3.7.7): never from a client;
/// - a rekey (3.7.4 step 5), a heartbeat (3.7.6) and a list link (3.7.5) only from the
///   connection the board made leader, a link in its meeting instance.
fn vet(
    msg: &Message,
    me: &ParticipantId,
    meeting: &MeetingRef,
    leads: bool,
) -> Result<Vetted, ErrorReason> {
    let own = |who: &ParticipantId, about: &MeetingRef| {
        if about != meeting {
            Err(ErrorReason::WrongMeeting)
        } else if who != me {
            Err(ErrorReason::Impersonation)
        } else {
            Ok(Vetted::Relay)
        }
    };
    match msg {
        Message::KeyAnnouncement(a) => own(&a.binding.participant, &a.binding.meeting),
        Message::NoncePost(n) => own(&n.body.participant, &n.body.meeting),
        Message::LockRequest(l) => own(&l.body.requester, &l.body.meeting),
        Message::KeyRequest(k) => own(&k.body.participant, &k.body.meeting),
        Message::Leave(l) if l.participant == *me => Ok(Vetted::OwnLeave),
        Message::Leave(_) => Err(ErrorReason::Impersonation),
        Message::Rekey(_) | Message::Heartbeat(_) | Message::LinkPost(_) if !leads => {
            Err(ErrorReason::NotLeader)
        }
        Message::LinkPost(l) if l.link.meeting != *meeting => Err(ErrorReason::WrongMeeting),
        Message::Rekey(_) | Message::Heartbeat(_) | Message::LinkPost(_) => Ok(Vetted::Relay),
        // LeaderChange, and any kind keyctl adds later: only the board speaks for itself.
        _ => Err(ErrorReason::BoardNotice),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use keyctl::wire::{
        Binding, Field, Heartbeat, Id, KeyAnnouncement, KeyRequest, KeyRequestBody, LinkPost,
        LockRequest, LockRequestBody, LplLink, NonceBody, NoncePost, Rekey,
    };

    use super::*;
    use crate::{Tamper, policy_for};

    const NOW: Millis = Millis(1_700_000_000_000);

    fn core(tamper: Option<Tamper>) -> BoardCore {
        BoardCore::new(policy_for(tamper), [0; 16])
    }

    fn hello(meeting: &str, name: &str, host: bool) -> Vec<u8> {
        let f = ClientFrame::Hello(Hello {
            meeting_id: meeting,
            name,
            host,
            ivk: sha256(name.as_bytes()),
        })
        .encode();
        f[4..].to_vec()
    }

    fn post(msg: &Message) -> Vec<u8> {
        ClientFrame::Post(&msg.to_bytes()).encode()[4..].to_vec()
    }

    /// Every frame sent since the last call, by connection, as owned bodies.
    fn sent(core: &mut BoardCore) -> Vec<(ConnId, Vec<u8>)> {
        std::iter::from_fn(|| core.poll_output())
            .filter_map(|o| match o {
                Output::Send { to, frame } => Some((to, frame[4..].to_vec())),
                Output::Close(_) => None,
            })
            .collect()
    }

    fn to(sent: &[(ConnId, Vec<u8>)], conn: ConnId) -> Vec<ServerFrame<'_>> {
        sent.iter()
            .filter(|(c, _)| *c == conn)
            .map(|(_, b)| ServerFrame::parse(b).unwrap())
            .collect()
    }

    fn join(
        core: &mut BoardCore,
        conn: ConnId,
        meeting: &str,
        name: &str,
        host: bool,
    ) -> WelcomeFrame {
        core.connected(conn, NOW);
        core.handle(conn, &hello(meeting, name, host), NOW);
        let out = sent(core);
        match to(&out, conn).first() {
            Some(ServerFrame::Welcome(w)) => w.clone(),
            other => panic!("{other:?}"),
        }
    }

    fn announcement(meeting: &MeetingRef, who: &ParticipantId) -> Message {
        Message::KeyAnnouncement(KeyAnnouncement {
            binding: Binding {
                meeting: meeting.clone(),
                participant: who.clone(),
                ivk: [1; 32],
                pk: [2; 32],
                pq: None,
            },
            sig: [3; 64],
            display_name: Id::new(Field::DisplayName, b"x").unwrap(),
            invite_proof: None,
        })
    }

    fn nonce(meeting: &MeetingRef, who: &ParticipantId) -> Message {
        Message::NoncePost(NoncePost {
            body: NonceBody {
                meeting: meeting.clone(),
                participant: who.clone(),
                nonce: [4; 24],
            },
            sig: [5; 64],
        })
    }

    fn lock_request(meeting: &MeetingRef, who: &ParticipantId) -> Message {
        Message::LockRequest(LockRequest {
            body: LockRequestBody {
                meeting: meeting.clone(),
                requester: who.clone(),
                lpl_head: [6; 32],
                locked: true,
            },
            sig: [7; 64],
        })
    }

    fn key_request(meeting: &MeetingRef, who: &ParticipantId) -> Message {
        Message::KeyRequest(KeyRequest {
            body: KeyRequestBody {
                meeting: meeting.clone(),
                participant: who.clone(),
                mk_seq: 2,
                nonce: [8; 24],
            },
            sig: [9; 64],
        })
    }

    fn link(meeting: &MeetingRef, v: u64, op: LplOp) -> Message {
        Message::LinkPost(LinkPost {
            link: LplLink {
                meeting: meeting.clone(),
                v,
                prev: [8; 32],
                op,
            },
            sig: [9; 64],
        })
    }

    fn snapshot() -> LplOp {
        LplOp::Snapshot {
            locked: false,
            invite_only: false,
            next_slot: 1,
            roster: Vec::new(),
        }
    }

    fn heartbeat() -> Message {
        Message::Heartbeat(Heartbeat {
            lpl_hash: [1; 32],
            v: 1,
            t: 1,
            mk_seq: 1,
            prev: [2; 32],
            timestamp_ms: 3,
            sig: [4; 64],
        })
    }

    fn rekey(to: &ParticipantId) -> Message {
        Message::Rekey(Rekey {
            boxed: keyctl::wire::BoxKind::Classical,
            mk_seq: 2,
            recipient: to.clone(),
            recipient_nonce: [0; 24],
            ciphertext: vec![9; 40],
        })
    }

    fn closed(out: &[Output], conn: ConnId) -> bool {
        out.contains(&Output::Close(conn))
    }

    fn delivered(out: &[Output]) -> Vec<(ConnId, Vec<u8>)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send { to, frame } => match ServerFrame::parse(&frame[4..]) {
                    Ok(ServerFrame::Deliver(b)) => Some((*to, b.to_vec())),
                    _ => None,
                },
                Output::Close(_) => None,
            })
            .collect()
    }

    fn outputs(core: &mut BoardCore) -> Vec<Output> {
        std::iter::from_fn(|| core.poll_output()).collect()
    }

    /// alice (leader), bob, and mallory (3) in meeting "m", with alice's announcement and
    /// nonce on the board.
    fn meeting_with_mallory() -> (BoardCore, WelcomeFrame, WelcomeFrame) {
        let mut core = BoardCore::new(policy_for(None), [0; 16]);
        let wa = join(&mut core, 1, "m", "alice", false);
        join(&mut core, 2, "m", "bob", false);
        let wm = join(&mut core, 3, "m", "mallory", false);
        core.handle(1, &post(&announcement(&wa.meeting, &wa.me)), NOW);
        core.handle(1, &post(&nonce(&wa.meeting, &wa.me)), NOW);
        let _ = outputs(&mut core);
        (core, wa, wm)
    }

    /// What a participant joining now is shown of the backlog.
    fn backlog_seen_by_newcomer(core: &mut BoardCore, conn: ConnId) -> Vec<Vec<u8>> {
        core.connected(conn, NOW);
        core.handle(conn, &hello("m", &format!("late{conn}"), false), NOW);
        delivered(&outputs(core))
            .into_iter()
            .filter(|(to, _)| *to == conn)
            .map(|(_, b)| b)
            .collect()
    }

    #[test]
    fn a_client_posting_a_leader_change_is_closed_and_nobody_receives_it() {
        let (mut core, wa, wm) = meeting_with_mallory();
        let forged = Message::LeaderChange(LeaderChange {
            leader: wm.me.clone(),
        });
        core.handle(3, &post(&forged), NOW);
        let out = outputs(&mut core);
        assert!(
            !delivered(&out).iter().any(|(_, b)| *b == forged.to_bytes()),
            "the forged LeaderChange was relayed: {out:?}"
        );
        assert!(closed(&out, 3), "the forger stays connected");
        assert_eq!(core.stats().errors(ErrorReason::BoardNotice), 1);
        // The board still names alice: a newcomer is welcomed with her as leader.
        let w = join(&mut core, 4, "m", "dave", false);
        assert_eq!(w.leader, wa.me);
    }

    #[test]
    fn a_post_about_another_participant_is_refused_and_changes_nothing() {
        let alice = |w: &WelcomeFrame| w.me.clone();
        type Forge = fn(&MeetingRef, &ParticipantId) -> Message;
        let forgeries: [(&str, Forge); 5] = [
            ("announcement", announcement),
            ("nonce", nonce),
            ("lock request", lock_request),
            ("key request", key_request),
            ("leave", |_, p| {
                Message::Leave(Leave {
                    participant: p.clone(),
                })
            }),
        ];
        for (what, forge) in forgeries {
            let (mut core, wa, _) = meeting_with_mallory();
            let before = backlog_seen_by_newcomer(&mut core, 10);
            let forged = forge(&wa.meeting, &alice(&wa));
            core.handle(3, &post(&forged), NOW);
            let out = outputs(&mut core);
            assert!(
                !delivered(&out).iter().any(|(_, b)| *b == forged.to_bytes()),
                "{what}: the forgery was relayed"
            );
            assert!(closed(&out, 3), "{what}: the forger stays connected");
            assert_eq!(core.stats().errors(ErrorReason::Impersonation), 1, "{what}");
            // alice's stored announcement and nonce are still hers, unchanged.
            let after = backlog_seen_by_newcomer(&mut core, 11);
            assert_eq!(before, after, "{what}: the backlog changed");
            assert_eq!(
                core.stats().snapshot().participants,
                4,
                "{what}: only mallory left"
            );
        }
    }

    /// A participant's own key request (keyctl revision 2) reaches the leader and nobody
    /// else; the board keeps no copy of it.
    #[test]
    fn a_key_request_goes_to_the_leader_only() {
        let (mut core, wa, wm) = meeting_with_mallory();
        let before = backlog_seen_by_newcomer(&mut core, 10);
        let request = key_request(&wm.meeting, &wm.me);
        core.handle(3, &post(&request), NOW);
        let out = outputs(&mut core);
        let to: Vec<ConnId> = delivered(&out)
            .into_iter()
            .filter(|(_, b)| *b == request.to_bytes())
            .map(|(c, _)| c)
            .collect();
        assert_eq!(to, vec![1], "only alice, the leader");
        assert!(!closed(&out, 3));
        assert_eq!(core.stats().errors(ErrorReason::Impersonation), 0);
        assert_eq!(before, backlog_seen_by_newcomer(&mut core, 11));
        let _ = wa;
    }

    /// Hybrid-signed posts (keyctl revision 4) are routed and kept as the classical kinds
    /// they carry, their bytes unchanged: a participant's own announcement and nonce reach
    /// the others and a late joiner; one about someone else is refused as impersonation; a
    /// hybrid key request goes to the leader only.
    #[test]
    fn hybrid_posts_are_routed_and_vetted_as_their_classical_kinds() {
        use keyctl::wire::Hybrid;
        let hybrid = |m: Message| match m {
            Message::KeyAnnouncement(a) => Message::HybridKeyAnnouncement(Hybrid {
                msg: a,
                ml_dsa: Box::new([5; 3309]),
            }),
            Message::NoncePost(n) => Message::HybridNoncePost(Hybrid {
                msg: n,
                ml_dsa: Box::new([5; 3309]),
            }),
            Message::KeyRequest(k) => Message::HybridKeyRequest(Hybrid {
                msg: k,
                ml_dsa: Box::new([5; 3309]),
            }),
            other => other,
        };
        let (mut core, wa, wm) = meeting_with_mallory();
        let own = [
            hybrid(announcement(&wm.meeting, &wm.me)),
            hybrid(nonce(&wm.meeting, &wm.me)),
        ];
        for m in &own {
            core.handle(3, &post(m), NOW);
            let out = outputs(&mut core);
            assert!(!closed(&out, 3));
            assert!(
                delivered(&out)
                    .iter()
                    .any(|(c, b)| *c == 1 && *b == m.to_bytes()),
                "relayed unchanged to alice"
            );
        }
        let seen = backlog_seen_by_newcomer(&mut core, 10);
        for m in &own {
            assert!(seen.contains(&m.to_bytes()), "kept for late joiners");
        }
        let request = hybrid(key_request(&wm.meeting, &wm.me));
        core.handle(3, &post(&request), NOW);
        let to: Vec<ConnId> = delivered(&outputs(&mut core))
            .into_iter()
            .filter(|(_, b)| *b == request.to_bytes())
            .map(|(c, _)| c)
            .collect();
        assert_eq!(to, vec![1], "only alice, the leader");
        let forged = hybrid(announcement(&wa.meeting, &wa.me));
        core.handle(3, &post(&forged), NOW);
        let out = outputs(&mut core);
        assert!(closed(&out, 3));
        assert_eq!(core.stats().errors(ErrorReason::Impersonation), 1);
    }

    #[test]
    fn a_post_naming_another_meeting_is_refused() {
        let (mut core, wa, wm) = meeting_with_mallory();
        let other = MeetingRef::new(b"m", b"another-uuid").unwrap();
        assert_ne!(other, wa.meeting);
        let forged = announcement(&other, &wm.me);
        core.handle(3, &post(&forged), NOW);
        let out = outputs(&mut core);
        assert!(!delivered(&out).iter().any(|(_, b)| *b == forged.to_bytes()));
        assert!(closed(&out, 3));
        assert_eq!(core.stats().errors(ErrorReason::WrongMeeting), 1);
    }

    #[test]
    fn only_the_leader_posts_rekeys_heartbeats_and_list_links() {
        let (mut core, wa, wm) = meeting_with_mallory();
        let leader_only = [rekey(&wa.me), heartbeat(), link(&wa.meeting, 1, snapshot())];
        for (i, msg) in leader_only.iter().enumerate() {
            // From alice, the leader: relayed.
            core.handle(1, &post(msg), NOW);
            let out = outputs(&mut core);
            assert!(!delivered(&out).is_empty() && !closed(&out, 1), "{msg:?}");
            // From bob or mallory: refused, the poster closed, nothing relayed.
            let (conn, name) = [(2, "bob"), (3, "mallory")][i % 2];
            let mut forged = msg.clone();
            if let Message::Rekey(r) = &mut forged {
                r.recipient = wm.me.clone();
            }
            core.handle(conn, &post(&forged), NOW);
            let out = outputs(&mut core);
            assert!(
                !delivered(&out).iter().any(|(_, b)| *b == forged.to_bytes()),
                "{name}'s {forged:?} was relayed"
            );
            assert!(closed(&out, conn));
            core.disconnected(conn, NOW);
            let _ = outputs(&mut core);
            join(&mut core, conn, "m", name, false);
        }
        assert_eq!(core.stats().errors(ErrorReason::NotLeader), 3);
    }

    #[test]
    fn a_participants_own_leave_ends_its_membership_like_a_bye() {
        let (mut core, _, wm) = meeting_with_mallory();
        core.handle(
            3,
            &post(&Message::Leave(Leave {
                participant: wm.me.clone(),
            })),
            NOW,
        );
        let out = outputs(&mut core);
        assert!(closed(&out, 3));
        assert_eq!(core.stats().snapshot().participants, 2);
        let leave = Message::Leave(Leave { participant: wm.me }).to_bytes();
        let leaves = delivered(&out).into_iter().filter(|(_, b)| *b == leave);
        assert_eq!(leaves.count(), 2, "one Leave to each of alice and bob");
    }

    /// Revision 3's hybrid announcements carry a 1,185-byte ML-KEM-768 key and policy byte
    /// more, and hybrid rekeys a 1,088-byte KEM ciphertext more; revision 4's hybrid identities
    /// add a 1,952-byte ML-DSA-65 key to the announcement and a 3,309-byte ML-DSA-65 signature
    /// to the announcement and to the nonce. A late joiner of the largest meeting, every
    /// participant hybrid and every ID, name and invite proof at its longest, is still sent
    /// less than `max_pending_out`: the welcome (at most one frame), every present
    /// participant's announcement and nonce, and the list links the backlog holds at most.
    #[test]
    fn the_largest_meeting_with_hybrid_keys_fits_the_bounds() {
        use keyctl::crypto::hybrid::ML_KEM_768_EK_LEN;
        use keyctl::crypto::hybrid_sig::{ML_DSA_65_PK_LEN, ML_DSA_65_SIG_LEN};
        use keyctl::wire::{BoxKind, Hybrid, MAX_HYBRID_BOX_LEN, MAX_ID_LEN, PqKey, PqPolicy};
        let long = [b'x'; MAX_ID_LEN];
        let meeting = MeetingRef::new(&long, &long).unwrap();
        let who = ParticipantId::new(&long, &long).unwrap();
        let Message::KeyAnnouncement(mut ann) = announcement(&meeting, &who) else {
            unreachable!()
        };
        ann.binding.pq = Some(PqKey {
            policy: PqPolicy::Required,
            mlkem: Box::new([0; ML_KEM_768_EK_LEN]),
            ml_dsa: Some(Box::new([0; ML_DSA_65_PK_LEN])),
        });
        ann.display_name = Id::new(Field::DisplayName, &long).unwrap();
        ann.invite_proof = Some([9; 32]);
        let frame = |m: &Message| ServerFrame::Deliver(&m.to_bytes()).encode().len();
        let ml_dsa = || Box::new([0; ML_DSA_65_SIG_LEN]);
        let ann_frame = frame(&Message::HybridKeyAnnouncement(Hybrid {
            msg: ann,
            ml_dsa: ml_dsa(),
        }));
        let Message::NoncePost(nonce_post) = nonce(&meeting, &who) else {
            unreachable!()
        };
        let nonce_frame = frame(&Message::HybridNoncePost(Hybrid {
            msg: nonce_post,
            ml_dsa: ml_dsa(),
        }));
        let limits = BoardLimits::default();
        let late_joiner = MAX_FRAME
            + limits.max_participants * (ann_frame + nonce_frame)
            + MAX_BACKLOG_LINK_BYTES;
        eprintln!(
            "late joiner of the largest all-hybrid meeting: {late_joiner} bytes, bound {} \
             (announcement frame {ann_frame} B, nonce frame {nonce_frame} B)",
            limits.max_pending_out
        );
        assert!(
            late_joiner <= limits.max_pending_out,
            "{late_joiner} bytes for a late joiner, bound {}",
            limits.max_pending_out
        );
        let rekey = Message::Rekey(Rekey {
            boxed: BoxKind::Hybrid,
            mk_seq: 1,
            recipient: who,
            recipient_nonce: [0; 24],
            ciphertext: vec![0; MAX_HYBRID_BOX_LEN],
        });
        assert!(frame(&rekey) <= MAX_FRAME);
        assert!(ann_frame <= MAX_FRAME);
    }

    #[test]
    fn the_backlog_holds_one_announcement_and_nonce_per_present_participant() {
        let mut core = BoardCore::new(policy_for(None), [0; 16]);
        let wa = join(&mut core, 1, "m", "alice", false);
        // Reposting replaces; churn of fresh identities leaves nothing behind.
        for _ in 0..3 {
            core.handle(1, &post(&announcement(&wa.meeting, &wa.me)), NOW);
            core.handle(1, &post(&nonce(&wa.meeting, &wa.me)), NOW);
        }
        for i in 0..2_000usize {
            let conn = 100 + i;
            let w = join(&mut core, conn, "m", &format!("churn{i}"), false);
            core.handle(conn, &post(&announcement(&w.meeting, &w.me)), NOW);
            core.handle(conn, &post(&nonce(&w.meeting, &w.me)), NOW);
            core.disconnected(conn, NOW);
            let _ = outputs(&mut core);
        }
        let inst = &core.instances["m"];
        assert_eq!(inst.backlog.announcements.len(), 1);
        assert_eq!(inst.backlog.nonces.len(), 1);
        assert_eq!(backlog_seen_by_newcomer(&mut core, 9).len(), 2);
    }

    #[test]
    fn list_links_past_the_bound_without_a_snapshot_are_refused() {
        let mut core = BoardCore::new(policy_for(None), [0; 16]);
        let wa = join(&mut core, 1, "m", "alice", false);
        join(&mut core, 2, "m", "bob", false);
        let add = |v: u64| link(&wa.meeting, v, LplOp::Lock);
        core.handle(1, &post(&link(&wa.meeting, 1, snapshot())), NOW);
        for v in 2..=u64::try_from(MAX_BACKLOG_LINKS).unwrap() {
            core.handle(1, &post(&add(v)), NOW);
        }
        let out = outputs(&mut core);
        assert!(!closed(&out, 1));
        assert_eq!(core.stats().errors(ErrorReason::BacklogFull), 0);
        let over = add(1_000);
        core.handle(1, &post(&over), NOW);
        let out = outputs(&mut core);
        assert!(closed(&out, 1), "the leader went past the bound and stayed");
        assert!(!delivered(&out).iter().any(|(_, b)| *b == over.to_bytes()));
        assert_eq!(core.stats().errors(ErrorReason::BacklogFull), 1);
        let inst = &core.instances["m"];
        assert_eq!(inst.backlog.links.len(), MAX_BACKLOG_LINKS);
    }

    #[test]
    fn caps_on_connections_meetings_and_participants_refuse_and_count() {
        let limits = BoardLimits {
            max_connections: 5,
            max_meetings: 2,
            max_participants: 2,
            ..BoardLimits::default()
        };
        let mut core = BoardCore::with_limits(policy_for(None), [0; 16], limits);
        join(&mut core, 1, "a", "alice", false);
        join(&mut core, 2, "a", "bob", false);
        // A third participant in "a": refused, counted, the meeting unchanged.
        core.connected(3, NOW);
        core.handle(3, &hello("a", "carol", false), NOW);
        let out = outputs(&mut core);
        assert!(closed(&out, 3));
        assert_eq!(core.stats().errors(ErrorReason::MeetingFull), 1);
        assert_eq!(core.instances["a"].members.len(), 2);
        core.disconnected(3, NOW);
        // A second meeting fits, a third does not.
        join(&mut core, 3, "b", "carol", false);
        core.connected(4, NOW);
        core.handle(4, &hello("c", "dave", false), NOW);
        let out = outputs(&mut core);
        assert!(closed(&out, 4));
        assert_eq!(core.stats().errors(ErrorReason::MeetingsFull), 1);
        assert_eq!(core.instances.len(), 2);
        // Five connections at most, greeting or joined.
        core.connected(5, NOW);
        core.connected(6, NOW);
        let out = outputs(&mut core);
        assert!(!closed(&out, 5) && closed(&out, 6));
        assert_eq!(core.stats().errors(ErrorReason::ConnectionsFull), 1);
        assert_eq!(core.conns.len(), 5);
        assert_eq!(core.stats().snapshot().connections, 5);
    }

    #[test]
    fn a_rekey_reaches_its_recipient_only_and_other_posts_everyone_else() {
        let mut core = core(None);
        let wa = join(&mut core, 1, "m", "alice", false);
        let wb = join(&mut core, 2, "m", "bob", false);
        join(&mut core, 3, "m", "carol", false);
        assert_eq!(wa.leader, wa.me);
        assert_eq!(wb.leader, wa.me);
        assert_eq!(wa.meeting, wb.meeting);
        let rekey = Message::Rekey(Rekey {
            boxed: keyctl::wire::BoxKind::Classical,
            mk_seq: 2,
            recipient: wb.me.clone(),
            recipient_nonce: [0; 24],
            ciphertext: vec![9; 40],
        });
        core.handle(1, &post(&rekey), NOW);
        let out = sent(&mut core);
        assert_eq!(to(&out, 2), vec![ServerFrame::Deliver(&rekey.to_bytes())]);
        assert!(to(&out, 1).is_empty() && to(&out, 3).is_empty());
        let ann = announcement(&wa.meeting, &wa.me);
        core.handle(1, &post(&ann), NOW);
        let out = sent(&mut core);
        assert!(to(&out, 1).is_empty(), "no echo to the poster");
        assert_eq!(to(&out, 2).len(), 1);
        assert_eq!(to(&out, 3).len(), 1);
    }

    #[test]
    fn a_late_joiner_sees_the_roster_then_the_backlog() {
        let mut core = core(None);
        let wa = join(&mut core, 1, "m", "alice", false);
        let ann = announcement(&wa.meeting, &wa.me);
        core.handle(1, &post(&ann), NOW);
        // Heartbeats and rekeys are not kept for late joiners.
        let _ = sent(&mut core);
        core.connected(2, NOW);
        core.handle(2, &hello("m", "bob", false), NOW);
        let out = sent(&mut core);
        let frames = to(&out, 2);
        assert!(matches!(frames[0], ServerFrame::Welcome(_)));
        assert_eq!(frames[1], ServerFrame::Joined(wa.me.clone()));
        assert_eq!(frames[2], ServerFrame::Deliver(&ann.to_bytes()));
        assert_eq!(frames.len(), 3);
        assert!(matches!(to(&out, 1)[..], [ServerFrame::Joined(_)]));
    }

    #[test]
    fn the_leader_leaving_names_the_host_else_the_longest_present() {
        let mut core = core(None);
        let wa = join(&mut core, 1, "m", "alice", false);
        let wb = join(&mut core, 2, "m", "bob", false);
        let wc = join(&mut core, 3, "m", "carol", true);
        core.disconnected(1, NOW);
        let out = sent(&mut core);
        let leave = Message::Leave(Leave {
            participant: wa.me.clone(),
        })
        .to_bytes();
        let change = Message::LeaderChange(LeaderChange {
            leader: wc.me.clone(),
        })
        .to_bytes();
        for conn in [2, 3] {
            assert_eq!(
                to(&out, conn),
                vec![
                    ServerFrame::Left(wa.me.clone()),
                    ServerFrame::Deliver(&leave),
                    ServerFrame::Deliver(&change),
                ]
            );
        }
        // Without a host, the longest present leads next, and is reminded of the earlier
        // leave it ignored while it did not lead.
        core.disconnected(3, NOW);
        let out = sent(&mut core);
        let leave_c = Message::Leave(Leave {
            participant: wc.me.clone(),
        })
        .to_bytes();
        let change = Message::LeaderChange(LeaderChange { leader: wb.me }).to_bytes();
        assert_eq!(
            to(&out, 2),
            vec![
                ServerFrame::Left(wc.me.clone()),
                ServerFrame::Deliver(&leave_c),
                ServerFrame::Deliver(&change),
                ServerFrame::Deliver(&leave),
                // carol was the only co-host.
                ServerFrame::Cohosts(vec![]),
            ]
        );
    }

    #[test]
    fn an_emptied_meeting_starts_over_with_a_fresh_uuid() {
        let mut core = core(None);
        let first = join(&mut core, 1, "m", "alice", false);
        let ann = announcement(&first.meeting, &first.me);
        core.handle(1, &post(&ann), NOW);
        core.handle(1, &ClientFrame::Bye.encode()[4..], NOW);
        let _ = sent(&mut core);
        let second = join(&mut core, 2, "m", "alice", false);
        assert_ne!(first.meeting.meeting_uuid, second.meeting.meeting_uuid);
        assert_eq!(first.me, second.me, "same identity, same participant");
        core.connected(3, NOW);
        core.handle(3, &hello("m", "bob", false), NOW);
        let out = sent(&mut core);
        assert!(
            !to(&out, 3)
                .iter()
                .any(|f| matches!(f, ServerFrame::Deliver(_))),
            "the old instance's posts were cleared"
        );
    }

    #[test]
    fn a_connection_without_a_hello_is_closed_after_the_timeout() {
        let mut core = BoardCore::new(policy_for(None), [0; 16]);
        core.connected(1, NOW);
        join(&mut core, 2, "m", "alice", false);
        core.tick(NOW.after(HELLO_TIMEOUT_MS - 1));
        assert_eq!(core.poll_output(), None);
        core.tick(NOW.after(HELLO_TIMEOUT_MS));
        assert_eq!(core.poll_output(), Some(Output::Close(1)));
        assert_eq!(core.poll_output(), None, "a joined participant stays");
        assert_eq!(core.stats().errors(ErrorReason::HelloTimeout), 1);
    }

    /// Random connects, hellos, posts (valid and not), byes, garbage, disconnects and ticks,
    /// under every tamper mode: the core never panics, only ever addresses connections it
    /// knows, and its participant gauge matches its members.
    #[test]
    fn random_sessions_keep_the_core_consistent() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for tamper in [
            None,
            Some(Tamper::SwapKey),
            Some(Tamper::StripPq),
            Some(Tamper::StripPqSig),
            Some(Tamper::ReplayInstance),
            Some(Tamper::WithholdHeartbeats),
            Some(Tamper::Partition),
        ] {
            let mut core = BoardCore::new(policy_for(tamper), [1; 16]);
            let mut open: Vec<ConnId> = Vec::new();
            let meeting = MeetingRef::new(b"m0", b"u").unwrap();
            let mut peak = 0;
            for step in 0..3_000u64 {
                let now = NOW.after(step * 7);
                let conn = open
                    .get(usize::try_from(next(8)).unwrap())
                    .copied()
                    .unwrap_or(0);
                match next(9) {
                    0 | 1 => {
                        let id = usize::try_from(step).unwrap();
                        core.connected(id, now);
                        open.push(id);
                    }
                    2 | 3 => {
                        let name = format!("p{}", next(6));
                        let meeting = format!("m{}", next(2));
                        core.handle(conn, &hello(&meeting, &name, next(4) == 0), now);
                    }
                    4 => {
                        let who =
                            ParticipantId::new(format!("p{}", next(6)).as_bytes(), b"d").unwrap();
                        core.handle(conn, &post(&announcement(&meeting, &who)), now);
                    }
                    5 => {
                        let rekey = Message::Rekey(Rekey {
                            boxed: keyctl::wire::BoxKind::Classical,
                            mk_seq: 1,
                            recipient: ParticipantId::new(b"p1", b"d").unwrap(),
                            recipient_nonce: [0; 24],
                            ciphertext: vec![0; 8],
                        });
                        core.handle(conn, &post(&rekey), now);
                    }
                    6 => {
                        let len = usize::try_from(next(12)).unwrap();
                        let junk: Vec<u8> = (0..len).map(|_| next(256).to_le_bytes()[0]).collect();
                        core.handle(conn, &junk, now);
                    }
                    7 => core.handle(conn, &ClientFrame::Bye.encode()[4..], now),
                    _ => {
                        core.disconnected(conn, now);
                        open.retain(|c| *c != conn);
                    }
                }
                core.tick(now);
                while let Some(out) = core.poll_output() {
                    match out {
                        Output::Send { to, frame } => {
                            assert!(open.contains(&to), "a frame to unknown connection {to}");
                            assert!(ServerFrame::parse(&frame[4..]).is_ok());
                        }
                        Output::Close(c) => {
                            core.disconnected(c, now);
                            open.retain(|o| *o != c);
                        }
                    }
                }
                let members: usize = core.instances.values().map(|i| i.members.len()).sum();
                peak = peak.max(members);
                assert_eq!(
                    usize::try_from(core.stats().snapshot().participants).unwrap(),
                    members
                );
                assert!(core.instances.values().all(|i| !i.members.is_empty()));
            }
            assert!(
                peak >= 4,
                "{tamper:?}: the run never had a meeting going ({peak})"
            );
        }
    }

    #[test]
    fn bad_input_is_counted_and_closed_without_touching_others() {
        let mut core = BoardCore::new(policy_for(None), [0; 16]);
        join(&mut core, 1, "m", "alice", false);
        core.connected(2, NOW);
        core.handle(
            2,
            &post(&Message::Leave(Leave {
                participant: ParticipantId::new(b"a", b"b").unwrap(),
            })),
            NOW,
        );
        assert!(std::iter::from_fn(|| core.poll_output()).any(|o| o == Output::Close(2)));
        assert_eq!(core.stats().errors(ErrorReason::NotJoined), 1);
        core.handle(1, &[1, 0x02, 1, 0x99], NOW);
        assert!(std::iter::from_fn(|| core.poll_output()).any(|o| o == Output::Close(1)));
        assert_eq!(core.stats().errors(ErrorReason::MalformedPost), 1);
        core.handle(1, &hello("m", "alice", false), NOW);
        assert_eq!(core.stats().snapshot().participants, 0);
    }

    /// A board issuing relay tickets under key [5; 32], valid 600 s.
    fn ticketed_core() -> BoardCore {
        use veil_relay::ticket::{KEY_LEN, TicketKey};
        let mut core = BoardCore::new(policy_for(None), [0; 16]);
        core.set_relay_tickets(RelayTickets {
            key: TicketKey::from_bytes(&[5; KEY_LEN]),
            lifetime: std::time::Duration::from_secs(600),
        });
        core
    }

    /// Relay tickets (finding 14.12): the Welcome carries one for exactly this participant in
    /// exactly this instance, a joined participant gets a fresh one on request, and nobody
    /// else gets one.
    #[test]
    fn the_welcome_and_a_renewal_carry_a_ticket_for_this_participant_and_instance() {
        use veil_relay::ticket::{KEY_LEN, TicketKey, relay_meeting, relay_token};
        let mut core = ticketed_core();
        let relay = TicketKey::from_bytes(&[5; KEY_LEN]);
        let wa = join(&mut core, 1, "m", "alice", false);
        let wb = join(&mut core, 2, "m", "bob", false);
        let scope = relay_meeting(&wa.meeting);
        let ta = wa.relay_ticket.unwrap();
        assert!(relay.verify(&scope, &relay_token(&wa.me), &ta));
        assert!(!relay.verify(&scope, &relay_token(&wb.me), &ta));
        // Issued at the time the core was told, not a clock of its own.
        assert_eq!(ta.expiry, NOW.0 / 1000 + 600);
        let request = ClientFrame::TicketRequest.encode();
        core.handle(2, &request[4..], NOW);
        let out = sent(&mut core);
        let frames = to(&out, 2);
        let [ServerFrame::RelayTicket(tb)] = frames.as_slice() else {
            panic!("{frames:?}");
        };
        assert!(relay.verify(&scope, &relay_token(&wb.me), tb));
        assert!(to(&out, 1).is_empty(), "alice got bob's ticket");
        // Not joined: refused and closed, no ticket.
        core.connected(3, NOW);
        core.handle(3, &request[4..], NOW);
        let out = outputs(&mut core);
        assert!(closed(&out, 3));
        assert_eq!(core.stats().errors(ErrorReason::NotJoined), 1);
        // A board without a key has none to give: counted, no frame, the connection stays.
        let mut keyless = BoardCore::new(policy_for(None), [0; 16]);
        let w = join(&mut keyless, 1, "m", "alice", false);
        assert_eq!(w.relay_ticket, None);
        keyless.handle(1, &request[4..], NOW);
        assert!(outputs(&mut keyless).is_empty());
        assert_eq!(keyless.stats().errors(ErrorReason::BadType), 1);
    }

    /// A participant flooding TicketRequests gets one answer per interval: each answer costs
    /// the board an HMAC and a frame, each ask five bytes. The rest are counted and ignored,
    /// and the connection stays.
    #[test]
    fn ticket_requests_are_answered_once_per_interval() {
        let mut core = ticketed_core();
        join(&mut core, 1, "m", "alice", false);
        let request = ClientFrame::TicketRequest.encode();
        let tickets = |out: &[Output]| {
            out.iter()
                .filter(|o| match o {
                    Output::Send { to, frame } => {
                        *to == 1
                            && matches!(
                                ServerFrame::parse(&frame[4..]),
                                Ok(ServerFrame::RelayTicket(_))
                            )
                    }
                    Output::Close(_) => false,
                })
                .count()
        };
        let mut answered = 0;
        for ms in (0..25_000).step_by(100) {
            core.handle(1, &request[4..], NOW.after(ms));
            let out = outputs(&mut core);
            assert!(!closed(&out, 1), "closed at {ms} ms");
            answered += tickets(&out);
        }
        // At 0, 10 and 20 s.
        assert_eq!(answered, 3);
        assert_eq!(core.stats().errors(ErrorReason::TicketTooSoon), 250 - 3);
        core.handle(1, &request[4..], NOW.after(30_000));
        assert_eq!(tickets(&outputs(&mut core)), 1);
    }
}

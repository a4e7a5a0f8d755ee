//! The relay's loop: receive a batch, apply registrations, fan media out to each meeting.
//!
//! The dataplane engines' `Forwarder` moves a batch from one socket to one destination; a relay
//! sends each datagram to every other member of its meeting, from one socket, so the loop is
//! written here on the same parts: mio readiness, `BatchIo` (UDP GRO on receive, so a sidecar's
//! GSO run arrives as one buffer instead of being cut into datagrams by the kernel; sendmmsg with
//! UDP GSO for runs of equal-sized datagrams) and the dataplane's `Batch` slab. For each destination the
//! datagrams it should get are copied into an outgoing batch and sent in one call. The bytes are
//! never looked at beyond the registration magic: what leaves is what arrived.
//!
//! One thread: the table is shared by every source of a meeting, and SO_REUSEPORT would split a
//! meeting's sources across workers with separate tables.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use dataplane::batch::Batch;
use dataplane_udp::BatchIo;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use wtransport::Connection;
use wtransport::error::SendDatagramError;

use super::counters::{Refusal, RelayCounters, RelayDrop};
use super::fanout::Fanout;
use super::registration::{Kind, Registration, emit_challenge, is_registration};
use super::table::{Applied, Limit, MeetingKey, Request, Table};
use super::ticket::{TicketKey, cookie_matches, unix_now};
use super::web::{Member, REGISTER_DEADLINE, Wake, WebEvent};

/// How often an idle loop looks at its stop flag and expires registrations.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// Batches read from the UDP socket before the WebTransport queue gets its turn: a socket that
/// never empties (a busy relay, a flood) must not starve the browsers.
const UDP_BATCHES_PER_TURN: usize = 16;

/// How the relay checks a registration before it touches the table.
#[derive(Debug)]
pub(crate) struct Admission {
    /// The key the board issues tickets with; cookies are derived from it.
    pub(crate) key: TicketKey,
    /// Whether a registration without a ticket is taken (`--open`, for PSK meetings).
    pub(crate) open: bool,
}

/// The relay's state between batches.
pub(crate) struct Relay<'a> {
    socket: &'a UdpSocket,
    io: BatchIo,
    table: Table<Member>,
    admission: Admission,
    counters: &'a RelayCounters,
    batch: Batch,
    fanout: Fanout,
    /// Per datagram of the batch: who sent it, if anyone can be named.
    sources: Vec<Option<Member>>,
    /// Per datagram of the batch: its meeting and sender, if it is media to forward.
    media: Vec<Option<(MeetingKey, Member)>>,
    /// The WebTransport listener's side, when there is one.
    web: Option<WebSide<'a>>,
}

/// What the loop keeps of the WebTransport listener.
pub(crate) struct WebSide<'a> {
    /// Its events.
    pub(crate) events: &'a Receiver<WebEvent>,
    /// How it wakes the loop.
    pub(crate) wake: &'a Wake,
    /// The open sessions, to send to, and when each opened. Bounded by `--max-web-sessions`
    /// (the listener opens no more), emptied of closed ones by their `Closed` event or the
    /// sweep.
    pub(crate) sessions: HashMap<u64, (Connection, Instant)>,
    /// Sessions whose `Closed` event came in the batch being drained: forgotten after that
    /// batch, whose datagrams (a last refresh) came before it.
    pub(crate) closed: Vec<u64>,
}

impl WebSide<'_> {
    /// Forgets session `session` and its registration.
    fn close(&mut self, table: &mut Table<Member>, session: u64) {
        if let Some((connection, _)) = self.sessions.remove(&session) {
            let remote = connection.remote_address();
            table.forget(Member::Web { session, remote });
        }
    }
}

/// Token of the media socket.
const SOCKET: Token = Token(0);
/// Token of the WebTransport listener's waker.
pub(crate) const WEB: Token = Token(1);

impl<'a> Relay<'a> {
    /// A relay on `socket` with `table`, admitting by `admission`, counting into `counters`;
    /// `web` is the WebTransport listener's side, if it runs.
    pub(crate) fn new(
        socket: &'a UdpSocket,
        table: Table<Member>,
        admission: Admission,
        counters: &'a RelayCounters,
        web: Option<WebSide<'a>>,
    ) -> Self {
        Self {
            socket,
            io: BatchIo::with_gro(socket),
            table,
            admission,
            counters,
            batch: Batch::new(),
            fanout: Fanout::new(),
            sources: Vec::new(),
            media: Vec::new(),
            web,
        }
    }

    /// Runs until `stop` is set, polling with `poll` (where the listener's waker, if any, is
    /// registered as [`WEB`]).
    pub(crate) fn run(&mut self, mut poll: Poll, stop: &AtomicBool) -> io::Result<()> {
        let fd = self.socket.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), SOCKET, Interest::READABLE)?;
        let mut events = Events::with_capacity(4);
        let mut next_sweep = Instant::now();
        // The socket was left unread (its turn ended first): no readiness edge will say so.
        let mut udp_left = false;
        while !stop.load(Ordering::Relaxed) {
            let wait = if udp_left { Duration::ZERO } else { IDLE_POLL };
            if let Err(e) = poll.poll(&mut events, Some(wait))
                && e.kind() != io::ErrorKind::Interrupted
            {
                return Err(e);
            }
            // Edge-triggered: read until the socket says it is empty, or the turn ends.
            udp_left = true;
            for _ in 0..UDP_BATCHES_PER_TURN {
                match self.io.recv(self.socket, &mut self.batch, 0) {
                    Ok(_) => self.handle_udp_batch(Instant::now()),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        udp_left = false;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "receive failed");
                        udp_left = false;
                        break;
                    }
                }
            }
            self.drain_web();
            // The sweep walks the whole table: at most once per IDLE_POLL, not per wakeup
            // (a busy relay wakes thousands of times a second).
            let now = Instant::now();
            if now >= next_sweep {
                next_sweep = now + IDLE_POLL;
                let expired = self.table.expire(now);
                RelayCounters::add(&self.counters.expired, expired as u64);
                self.sweep_sessions(now);
            }
            self.publish_gauges();
        }
        Ok(())
    }

    fn publish_gauges(&self) {
        self.counters
            .registered
            .store(self.table.len() as u64, Ordering::Relaxed);
        self.counters
            .meetings
            .store(self.table.meetings() as u64, Ordering::Relaxed);
    }

    /// Names the sender of each datagram the socket gave, then forwards.
    fn handle_udp_batch(&mut self, now: Instant) {
        self.sources.clear();
        for i in 0..self.batch.len() {
            self.sources.push(self.batch.addr(i).map(Member::Udp));
        }
        self.handle_batch(now);
    }

    /// Takes what the WebTransport sessions queued, a batch at a time, and forwards it.
    fn drain_web(&mut self) {
        let Some(web) = &mut self.web else {
            return;
        };
        // Cleared before reading, so an event queued during the drain wakes the next poll.
        web.wake.pending.store(false, Ordering::Release);
        loop {
            self.batch.clear();
            self.sources.clear();
            let Some(web) = &mut self.web else {
                return;
            };
            while !self.batch.is_full() {
                let Ok(event) = web.events.try_recv() else {
                    break;
                };
                match event {
                    WebEvent::Opened {
                        session,
                        connection,
                    } => {
                        web.sessions.insert(session, (connection, Instant::now()));
                    }
                    WebEvent::Closed { session } => web.closed.push(session),
                    WebEvent::Datagram {
                        session,
                        remote,
                        payload,
                    } => {
                        if !self.batch.push_wire(&payload, None) {
                            self.counters.count_drop(RelayDrop::Truncated, 1);
                            continue;
                        }
                        self.sources.push(Some(Member::Web { session, remote }));
                    }
                }
            }
            if !self.batch.is_empty() {
                self.handle_batch(Instant::now());
            }
            let Some(web) = &mut self.web else {
                return;
            };
            let done = self.batch.is_empty();
            for session in std::mem::take(&mut web.closed) {
                web.close(&mut self.table, session);
            }
            if done {
                return;
            }
        }
    }

    /// Forgets sessions that ended without their `Closed` event reaching the loop (the queue
    /// was full), and their registrations; closes sessions that did not register within
    /// [`REGISTER_DEADLINE`] (a session holds a place of `--max-web-sessions`, and one that
    /// never registers would hold it for nothing).
    fn sweep_sessions(&mut self, now: Instant) {
        let Some(web) = &mut self.web else {
            return;
        };
        let table = &self.table;
        let mut ended = Vec::new();
        for (&session, (connection, opened)) in &web.sessions {
            let remote = connection.remote_address();
            if connection.quic_connection().close_reason().is_some() {
                ended.push(session);
            } else if now.duration_since(*opened) > REGISTER_DEADLINE
                && !table.contains(&Member::Web { session, remote })
            {
                connection.close(2u32.into(), b"not registered");
                RelayCounters::add(&self.counters.web_unregistered, 1);
                ended.push(session);
            }
        }
        for session in ended {
            web.close(&mut self.table, session);
        }
    }

    /// Classifies every datagram of the batch, then sends each destination its share.
    fn handle_batch(&mut self, now: Instant) {
        let counters = self.counters;
        RelayCounters::add(&counters.received, self.batch.len() as u64);
        self.media.clear();
        let unix = unix_now();
        for i in 0..self.batch.len() {
            let source = self.sources.get(i).copied().flatten();
            let forward = self.classify(i, source, now, unix);
            self.media.push(forward);
        }
        self.publish_gauges();
        let (socket, io) = (self.socket, &mut self.io);
        let sessions = self.web.as_ref().map(|w| &w.sessions);
        self.fanout
            .route(&self.batch, &self.media, &self.table, |dest, out| {
                let wanted = out.len() as u64;
                let (sent, too_large) = match dest {
                    Member::Udp(addr) => (send_udp(io, socket, out, addr), 0),
                    Member::Web { session, .. } => {
                        send_web(sessions.and_then(|s| s.get(&session)).map(|(c, _)| c), out)
                    }
                };
                let bytes: u64 = out
                    .live()
                    .take(usize::try_from(sent).unwrap_or(usize::MAX))
                    .map(|p| p.len() as u64)
                    .sum();
                RelayCounters::add(&counters.forwarded, sent);
                RelayCounters::add(&counters.forwarded_bytes, bytes);
                counters.count_drop(RelayDrop::WebTooLarge, too_large);
                counters.count_drop(
                    RelayDrop::SendFailed,
                    wanted.saturating_sub(sent + too_large),
                );
            });
    }

    /// Applies datagram `i` if it is a registration; says which meeting it is media of.
    fn classify(
        &mut self,
        i: usize,
        source: Option<Member>,
        now: Instant,
        unix: u64,
    ) -> Option<(MeetingKey, Member)> {
        let counters = self.counters;
        if self.batch.is_dropped(i) {
            counters.count_drop(RelayDrop::Truncated, 1);
            return None;
        }
        let Some(source) = source else {
            counters.count_drop(RelayDrop::Unregistered, 1);
            return None;
        };
        let datagram = self.batch.packet(i);
        if is_registration(datagram) {
            match Registration::parse(datagram) {
                Ok(registration) => self.register(&registration, source, now, unix),
                Err(error) => {
                    tracing::debug!(?source, %error, "registration refused");
                    RelayCounters::add(&counters.bad_registrations[error.index()], 1);
                }
            }
            return None;
        }
        match self.table.destinations(source, now) {
            None => {
                counters.count_drop(RelayDrop::Unregistered, 1);
                None
            }
            Some((_, members)) if members.len() < 2 => {
                counters.count_drop(RelayDrop::NoPeers, 1);
                None
            }
            Some((key, _)) => {
                RelayCounters::add(&counters.media, 1);
                Some((key, source))
            }
        }
    }

    /// Checks a well-formed registration (ticket, then cookie) and applies it to the table.
    fn register(&mut self, registration: &Registration, source: Member, now: Instant, unix: u64) {
        let counters = self.counters;
        if let Err(reason) = self.admit(registration, source, unix) {
            tracing::debug!(?source, reason = reason.as_str(), "registration refused");
            counters.count_refusal(reason);
            return;
        }
        let request = Request {
            kind: registration.kind,
            meeting_id: &registration.meeting_id,
            token: &registration.token,
        };
        let counter = match self.table.apply(request, source, now) {
            Applied::Joined => {
                tracing::info!(
                    ?source,
                    meeting = %String::from_utf8_lossy(&registration.meeting_id),
                    "registered"
                );
                &counters.joins
            }
            Applied::Refreshed => &counters.refreshes,
            Applied::Left | Applied::NotRegistered => &counters.leaves,
            Applied::Refused(limit) => {
                counters.count_refusal(match limit {
                    Limit::Table => Refusal::TableFull,
                    Limit::Meeting => Refusal::MeetingFull,
                    Limit::Source => Refusal::SourceFull,
                });
                return;
            }
        };
        RelayCounters::add(counter, 1);
    }

    /// The ticket must be the board's for this meeting and participant and unexpired (unless
    /// the relay is open and there is none); the cookie must be the one this address was
    /// sent. A register without it is answered with a challenge carrying it (smaller than the
    /// registration, so never an amplifier), a leave without it is refused.
    fn admit(&self, registration: &Registration, source: Member, unix: u64) -> Result<(), Refusal> {
        let meeting = registration.meeting_id.as_slice();
        let token = registration.token.as_str();
        match &registration.ticket {
            None if self.admission.open => {}
            None => return Err(Refusal::NoTicket),
            Some(ticket) => {
                if !self.admission.key.verify(meeting, token, ticket) {
                    return Err(Refusal::BadTicket);
                }
                if ticket.expiry <= unix {
                    return Err(Refusal::ExpiredTicket);
                }
            }
        }
        let expected = self.admission.key.cookie(source.address(), meeting, token);
        if registration
            .cookie
            .is_some_and(|cookie| cookie_matches(&expected, &cookie))
        {
            return Ok(());
        }
        if registration.kind == Kind::Leave {
            return Err(Refusal::BadCookie);
        }
        // Return routability: only the address (or the session) itself learns the cookie.
        let challenge = emit_challenge(&expected);
        let sent = match source {
            Member::Udp(addr) => self.socket.send_to(&challenge, addr).map(drop),
            Member::Web { session, .. } => self
                .web
                .as_ref()
                .and_then(|w| w.sessions.get(&session))
                .map(|(c, _)| c)
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
                .and_then(|c| c.send_datagram(challenge).map_err(io::Error::other)),
        };
        match sent {
            Ok(()) => RelayCounters::add(&self.counters.challenges, 1),
            Err(error) => tracing::debug!(?source, %error, "challenge not sent"),
        }
        Err(Refusal::Unverified)
    }
}

/// Sends `out` to a UDP member; how many the kernel took. A failed send loses these copies,
/// not the relay: the caller counts them.
fn send_udp(io: &mut BatchIo, socket: &UdpSocket, out: &Batch, dest: SocketAddr) -> u64 {
    match io.send(socket, out, dest) {
        Ok(sent) => sent,
        Err(error) => {
            tracing::debug!(%dest, %error, "send failed");
            0
        }
    }
}

/// Sends `out` to a WebTransport member, one datagram each: how many its connection took,
/// and how many were larger than its path allows (the QUIC path MTU less the datagram
/// framing). The rest of a shortfall is a session that is gone.
fn send_web(connection: Option<&Connection>, out: &Batch) -> (u64, u64) {
    let Some(connection) = connection else {
        return (0, 0);
    };
    let (mut sent, mut too_large) = (0, 0);
    for packet in out.live() {
        match connection.send_datagram(packet) {
            Ok(()) => sent += 1,
            Err(SendDatagramError::TooLarge) => too_large += 1,
            Err(SendDatagramError::NotConnected | SendDatagramError::UnsupportedByPeer) => {}
        }
    }
    (sent, too_large)
}

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

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dataplane::batch::Batch;
use dataplane_udp::BatchIo;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::counters::{Refusal, RelayCounters, RelayDrop};
use super::fanout::Fanout;
use super::registration::{Kind, Registration, emit_challenge, is_registration};
use super::table::{Applied, Limit, MeetingKey, Request, Table};
use super::ticket::{TicketKey, cookie_matches, unix_now};

/// How often an idle loop looks at its stop flag and expires registrations.
const IDLE_POLL: Duration = Duration::from_millis(100);

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
    table: Table,
    admission: Admission,
    counters: &'a RelayCounters,
    batch: Batch,
    fanout: Fanout,
    /// Per packet of the batch: its meeting, if it is media to forward.
    media: Vec<Option<MeetingKey>>,
}

impl<'a> Relay<'a> {
    /// A relay on `socket` with `table`, admitting by `admission`, counting into `counters`.
    pub(crate) fn new(
        socket: &'a UdpSocket,
        table: Table,
        admission: Admission,
        counters: &'a RelayCounters,
    ) -> Self {
        Self {
            socket,
            io: BatchIo::with_gro(socket),
            table,
            admission,
            counters,
            batch: Batch::new(),
            fanout: Fanout::new(),
            media: Vec::new(),
        }
    }

    /// Runs until `stop` is set.
    pub(crate) fn run(&mut self, stop: &AtomicBool) -> io::Result<()> {
        let mut poll = Poll::new()?;
        let fd = self.socket.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), Token(0), Interest::READABLE)?;
        let mut events = Events::with_capacity(4);
        let mut next_sweep = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = poll.poll(&mut events, Some(IDLE_POLL))
                && e.kind() != io::ErrorKind::Interrupted
            {
                return Err(e);
            }
            // Edge-triggered: read until the socket says it is empty.
            loop {
                match self.io.recv(self.socket, &mut self.batch, 0) {
                    Ok(_) => self.handle_batch(Instant::now()),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "receive failed");
                        break;
                    }
                }
            }
            // The sweep walks the whole table: at most once per IDLE_POLL, not per wakeup
            // (a busy relay wakes thousands of times a second).
            let now = Instant::now();
            if now >= next_sweep {
                next_sweep = now + IDLE_POLL;
                let expired = self.table.expire(now);
                RelayCounters::add(&self.counters.expired, expired as u64);
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

    /// Classifies every datagram of the batch, then sends each destination its share.
    fn handle_batch(&mut self, now: Instant) {
        let counters = self.counters;
        RelayCounters::add(&counters.received, self.batch.len() as u64);
        self.media.clear();
        let unix = unix_now();
        for i in 0..self.batch.len() {
            let forward = self.classify(i, now, unix);
            self.media.push(forward);
        }
        self.publish_gauges();
        let (socket, io) = (self.socket, &mut self.io);
        self.fanout
            .route(&self.batch, &self.media, &self.table, |dest, out| {
                let wanted = out.len() as u64;
                // A failed send loses these copies, not the relay: counted, and on to the next.
                let sent = match io.send(socket, out, dest) {
                    Ok(sent) => sent,
                    Err(error) => {
                        tracing::debug!(%dest, %error, "send failed");
                        0
                    }
                };
                let bytes: u64 = out
                    .live()
                    .take(usize::try_from(sent).unwrap_or(usize::MAX))
                    .map(|p| p.len() as u64)
                    .sum();
                RelayCounters::add(&counters.forwarded, sent);
                RelayCounters::add(&counters.forwarded_bytes, bytes);
                counters.count_drop(RelayDrop::SendFailed, wanted.saturating_sub(sent));
            });
    }

    /// Applies datagram `i` if it is a registration; says which meeting it is media of.
    fn classify(&mut self, i: usize, now: Instant, unix: u64) -> Option<MeetingKey> {
        let counters = self.counters;
        if self.batch.is_dropped(i) {
            counters.count_drop(RelayDrop::Truncated, 1);
            return None;
        }
        let Some(source) = self.batch.addr(i) else {
            counters.count_drop(RelayDrop::Unregistered, 1);
            return None;
        };
        let datagram = self.batch.packet(i);
        if is_registration(datagram) {
            match Registration::parse(datagram) {
                Ok(registration) => self.register(&registration, source, now, unix),
                Err(error) => {
                    tracing::debug!(%source, %error, "registration refused");
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
                Some(key)
            }
        }
    }

    /// Checks a well-formed registration (ticket, then cookie) and applies it to the table.
    fn register(
        &mut self,
        registration: &Registration,
        source: SocketAddr,
        now: Instant,
        unix: u64,
    ) {
        let counters = self.counters;
        if let Err(reason) = self.admit(registration, source, unix) {
            tracing::debug!(%source, reason = reason.as_str(), "registration refused");
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
                    %source,
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
    fn admit(
        &self,
        registration: &Registration,
        source: SocketAddr,
        unix: u64,
    ) -> Result<(), Refusal> {
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
        let expected = self.admission.key.cookie(source, meeting, token);
        if registration
            .cookie
            .is_some_and(|cookie| cookie_matches(&expected, &cookie))
        {
            return Ok(());
        }
        if registration.kind == Kind::Leave {
            return Err(Refusal::BadCookie);
        }
        // Return routability: only the address itself learns the cookie.
        match self.socket.send_to(&emit_challenge(&expected), source) {
            Ok(_) => RelayCounters::add(&self.counters.challenges, 1),
            Err(error) => tracing::debug!(%source, %error, "challenge not sent"),
        }
        Err(Refusal::Unverified)
    }
}

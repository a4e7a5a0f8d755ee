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
use dataplane::io::BatchIo;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::counters::{RelayCounters, RelayDrop};
use super::registration::{Registration, is_registration};
use super::table::{Applied, Table};

/// How often an idle loop looks at its stop flag and expires registrations.
const IDLE_POLL: Duration = Duration::from_millis(100);

/// The relay's state between batches.
pub(crate) struct Relay<'a> {
    socket: &'a UdpSocket,
    io: BatchIo,
    table: Table,
    counters: &'a RelayCounters,
    batch: Batch,
    out: Batch,
    /// Per packet of the batch: forward it (its source is registered).
    media: Vec<bool>,
    /// Destinations already served for this batch.
    served: Vec<SocketAddr>,
}

impl<'a> Relay<'a> {
    /// A relay on `socket` with `table`, counting into `counters`.
    pub(crate) fn new(socket: &'a UdpSocket, table: Table, counters: &'a RelayCounters) -> Self {
        Self {
            socket,
            io: BatchIo::with_gro(socket),
            table,
            counters,
            batch: Batch::new(),
            out: Batch::new(),
            media: Vec::new(),
            served: Vec::new(),
        }
    }

    /// Runs until `stop` is set.
    pub(crate) fn run(&mut self, stop: &AtomicBool) -> io::Result<()> {
        let mut poll = Poll::new()?;
        let fd = self.socket.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), Token(0), Interest::READABLE)?;
        let mut events = Events::with_capacity(4);
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
            let expired = self.table.expire(Instant::now());
            RelayCounters::add(&self.counters.expired, expired as u64);
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
        for i in 0..self.batch.len() {
            let forward = self.classify(i, now);
            self.media.push(forward);
        }
        self.publish_gauges();
        // Every destination of every meeting present in this batch, each served once.
        self.served.clear();
        for i in 0..self.batch.len() {
            let Some(source) = self.batch.addr(i).filter(|_| self.media[i]) else {
                continue;
            };
            let Some(destinations) = self.table.destinations(source, now) else {
                continue;
            };
            for &dest in destinations {
                if self.served.contains(&dest) {
                    continue;
                }
                self.served.push(dest);
                self.out.clear();
                for j in 0..self.batch.len() {
                    let from = self.batch.addr(j);
                    if self.media[j]
                        && from != Some(dest)
                        && from.and_then(|f| self.table.destinations(f, now)) == Some(destinations)
                    {
                        self.out.push_wire(self.batch.packet(j), None);
                    }
                }
                if self.out.is_empty() {
                    continue;
                }
                let wanted = self.out.len() as u64;
                // A failed send loses these copies, not the relay: counted, and on to the next.
                let sent = match self.io.send(self.socket, &self.out, dest) {
                    Ok(sent) => sent,
                    Err(error) => {
                        tracing::debug!(%dest, %error, "send failed");
                        0
                    }
                };
                let bytes: u64 = self
                    .out
                    .live()
                    .take(usize::try_from(sent).unwrap_or(usize::MAX))
                    .map(|p| p.len() as u64)
                    .sum();
                RelayCounters::add(&counters.forwarded, sent);
                RelayCounters::add(&counters.forwarded_bytes, bytes);
                counters.count_drop(RelayDrop::SendFailed, wanted.saturating_sub(sent));
            }
        }
    }

    /// Applies datagram `i` if it is a registration; says whether it is media to forward.
    fn classify(&mut self, i: usize, now: Instant) -> bool {
        let counters = self.counters;
        if self.batch.is_dropped(i) {
            counters.count_drop(RelayDrop::Truncated, 1);
            return false;
        }
        let Some(source) = self.batch.addr(i) else {
            counters.count_drop(RelayDrop::Unregistered, 1);
            return false;
        };
        let datagram = self.batch.packet(i);
        if is_registration(datagram) {
            match Registration::parse(datagram) {
                Ok(registration) => {
                    let applied = self.table.apply(&registration, source, now);
                    let counter = match applied {
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
                        Applied::Full => {
                            counters.count_drop(RelayDrop::TableFull, 1);
                            return false;
                        }
                    };
                    RelayCounters::add(counter, 1);
                }
                Err(error) => {
                    tracing::debug!(%source, %error, "registration refused");
                    RelayCounters::add(&counters.bad_registrations[error.index()], 1);
                }
            }
            return false;
        }
        match self.table.destinations(source, now) {
            None => {
                counters.count_drop(RelayDrop::Unregistered, 1);
                false
            }
            Some(members) if members.len() < 2 => {
                counters.count_drop(RelayDrop::NoPeers, 1);
                false
            }
            Some(_) => {
                RelayCounters::add(&counters.media, 1);
                true
            }
        }
    }
}

//! Keeps the sidecar registered with a `veil relay`: sends the registration datagram from the
//! sidecar's network socket (so the relay learns the address media comes from) at start and
//! every [`REFRESH_INTERVAL`], and a leave when the meeting session ends and on the way out.
//! A rejoin into a new meeting instance moves the registration there, with that session's
//! ticket.
//!
//! Return routability (docs/PROTOCOL.md "Relay registration"): the relay registers an address
//! only once it echoes the cookie the relay sent to it. The workers read the `--bind` socket
//! and drop anything that is not media, so to hear the challenge the registrar opens a probe: a
//! second socket on the same address (SO_REUSEPORT) connected to the relay. Linux delivers a
//! datagram to the connected member of a reuseport group whose peer matches it before hashing
//! among the others, so the probe gets what the relay sends while it is open, and the workers
//! get everything else. The cookie is stateless on the relay and derived from its ticket key,
//! so it stays valid across relay restarts and ticket renewals; a probe is needed only at
//! start and after a move, and is closed as soon as the challenge arrives (or after
//! [`PROBE_TIMEOUT`], to be retried at the next refresh).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use veil_relay::registration::{Kind, REFRESH_INTERVAL, Registrant, RegistrationError, TicketMac};

/// How long a probe waits for the relay's challenge.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The registration side of a sidecar whose `--remote` is a relay.
#[derive(Debug)]
pub(crate) struct Registrar {
    socket: UdpSocket,
    relay: SocketAddr,
    me: Registrant,
    probe: Option<(UdpSocket, Instant)>,
    /// Unix seconds when the current ticket arrived: renewal is due half way to its expiry.
    ticket_since: u64,
    next: Instant,
    failures: u64,
}

impl Registrar {
    /// Registers `token` in `meeting_id` with `relay` under `ticket` (`None` for an `--open`
    /// relay), sending from `socket` (a clone of the sidecar's `--bind` socket).
    pub(crate) fn new(
        socket: UdpSocket,
        relay: SocketAddr,
        meeting_id: &[u8],
        token: &str,
        ticket: Option<TicketMac>,
    ) -> Result<Self, RegistrationError> {
        let registrar = Self {
            socket,
            relay,
            me: Registrant {
                meeting_id: meeting_id.to_vec(),
                token: token.to_owned(),
                ticket,
                cookie: None,
            },
            probe: None,
            ticket_since: veil_relay::ticket::unix_now(),
            next: Instant::now(),
            failures: 0,
        };
        registrar.me.datagram(Kind::Register)?;
        Ok(registrar)
    }

    /// Registers in `meeting_id` under `ticket` instead, at once (a rejoin into a new meeting
    /// instance). The relay moves an address that registers for another meeting;
    /// [`Registrar::leave`] at the end of the last session has already taken it out of the
    /// old one.
    pub(crate) fn move_to(
        &mut self,
        meeting_id: &[u8],
        ticket: Option<TicketMac>,
    ) -> Result<(), RegistrationError> {
        let moved = Registrant {
            meeting_id: meeting_id.to_vec(),
            ticket,
            cookie: None,
            ..self.me.clone()
        };
        moved.datagram(Kind::Register)?;
        self.me = moved;
        self.ticket_since = veil_relay::ticket::unix_now();
        self.next = Instant::now();
        Ok(())
    }

    /// Presents `ticket` from the next refresh on (a renewal within the session; the cookie
    /// stays good, it does not cover the ticket).
    pub(crate) fn renew(&mut self, ticket: TicketMac) {
        if self.me.ticket != Some(ticket) {
            self.me.ticket = Some(ticket);
            self.ticket_since = veil_relay::ticket::unix_now();
            tracing::debug!(expiry = ticket.expiry, "relay ticket renewed");
        }
    }

    /// Whether the ticket is past half its lifetime (as this sidecar saw it), so a fresh one
    /// should be asked for.
    pub(crate) fn renewal_due(&self, unix_now: u64) -> bool {
        self.me.ticket.is_some_and(|t| {
            let half = t.expiry.saturating_sub(self.ticket_since) / 2;
            unix_now >= self.ticket_since.saturating_add(half)
        })
    }

    /// Reads the probe, then sends the registration if it is due.
    pub(crate) fn tick(&mut self, now: Instant) {
        self.read_probe(now);
        if now < self.next {
            return;
        }
        self.next = now + REFRESH_INTERVAL;
        let Ok(register) = self.me.datagram(Kind::Register) else {
            return;
        };
        let sent = if self.me.cookie.is_none() {
            self.open_probe(now)
                .and_then(|probe| probe.send(&register).map(drop))
        } else {
            self.socket.send_to(&register, self.relay).map(drop)
        };
        if let Err(error) = sent {
            self.failures += 1;
            tracing::warn!(%error, relay = %self.relay, failures = self.failures, "relay registration not sent");
        }
    }

    fn open_probe(&mut self, now: Instant) -> std::io::Result<&UdpSocket> {
        if self.probe.is_none() {
            let probe = dataplane_udp::bind_reuseport(self.socket.local_addr()?)?;
            probe.connect(self.relay)?;
            self.probe = Some((probe, now + PROBE_TIMEOUT));
        }
        match &self.probe {
            Some((probe, _)) => Ok(probe),
            None => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    /// Takes the challenge off the probe (anything else the relay sent meanwhile is media the
    /// workers would have dropped: this address is not registered yet) and closes it.
    fn read_probe(&mut self, now: Instant) {
        let Some((probe, deadline)) = &self.probe else {
            return;
        };
        let mut buf = [0u8; 64];
        let mut challenged = false;
        // Bounded: at most a batch per tick, the rest waits for the next.
        for _ in 0..64 {
            match probe.recv(&mut buf) {
                Ok(n) => {
                    if buf.get(..n).is_some_and(|d| self.me.take_challenge(d)) {
                        challenged = true;
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        if challenged {
            self.probe = None;
            // Echo it now, from the media address.
            self.next = now;
            tracing::debug!(relay = %self.relay, "relay cookie received");
        } else if now >= *deadline {
            self.probe = None;
            tracing::debug!(relay = %self.relay, "no relay challenge yet; retrying at the next refresh");
        }
    }

    /// Tells the relay this address is gone (best effort: the entry expires anyway).
    pub(crate) fn leave(&self) {
        let Ok(leave) = self.me.datagram(Kind::Leave) else {
            return;
        };
        if let Err(error) = self.socket.send_to(&leave, self.relay) {
            tracing::debug!(%error, "relay leave not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use veil_relay::registration::Registration;

    fn ticket(expiry: u64) -> TicketMac {
        TicketMac {
            expiry,
            mac: [1; 32],
        }
    }

    #[test]
    fn a_ticket_is_renewed_half_way_to_its_expiry_and_the_new_one_presented() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let relay = "127.0.0.1:9".parse().unwrap();
        let now = veil_relay::ticket::unix_now();
        let mut registrar =
            Registrar::new(socket, relay, b"m/u", "ab", Some(ticket(now + 600))).unwrap();
        assert!(!registrar.renewal_due(now));
        assert!(!registrar.renewal_due(now + 299));
        assert!(registrar.renewal_due(now + 300));
        registrar.renew(ticket(now + 1200));
        let register =
            Registration::parse(&registrar.me.datagram(Kind::Register).unwrap()).unwrap();
        assert_eq!(register.ticket, Some(ticket(now + 1200)));
        assert!(!registrar.renewal_due(now + 300));
        assert!(registrar.renewal_due(now + 600));
        // Without a ticket (PSK, an open relay) there is nothing to renew.
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let open = Registrar::new(socket, relay, b"m", "slot-0", None).unwrap();
        assert!(!open.renewal_due(u64::MAX));
    }
}

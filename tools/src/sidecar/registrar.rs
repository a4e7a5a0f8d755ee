//! Keeps the sidecar registered with a `veil relay`: sends the registration datagram from the
//! sidecar's network socket (so the relay learns the address media comes from) at start and
//! every [`REFRESH_INTERVAL`], and a leave when the meeting session ends and on the way out.
//! A rejoin into a new meeting instance moves the registration there.

use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

use crate::relay::registration::{Kind, REFRESH_INTERVAL, Registration, RegistrationError};

/// The registration side of a sidecar whose `--remote` is a relay.
#[derive(Debug)]
pub(crate) struct Registrar {
    socket: UdpSocket,
    relay: SocketAddr,
    token: String,
    register: Vec<u8>,
    leave: Vec<u8>,
    next: Instant,
    failures: u64,
}

impl Registrar {
    /// Registers `token` in `meeting_id` with `relay`, sending from `socket` (a clone of the
    /// sidecar's `--bind` socket).
    pub(crate) fn new(
        socket: UdpSocket,
        relay: SocketAddr,
        meeting_id: &[u8],
        token: &str,
    ) -> Result<Self, RegistrationError> {
        let (register, leave) = messages(meeting_id, token)?;
        Ok(Self {
            socket,
            relay,
            token: token.to_owned(),
            register,
            leave,
            next: Instant::now(),
            failures: 0,
        })
    }

    /// Registers in `meeting_id` instead, at once (a rejoin into a new meeting instance). The
    /// relay moves an address that registers for another meeting; [`Registrar::leave`] at the
    /// end of the last session has already taken it out of the old one.
    pub(crate) fn move_to(&mut self, meeting_id: &[u8]) -> Result<(), RegistrationError> {
        (self.register, self.leave) = messages(meeting_id, &self.token)?;
        self.next = Instant::now();
        Ok(())
    }

    /// Sends the registration if it is due.
    pub(crate) fn tick(&mut self, now: Instant) {
        if now < self.next {
            return;
        }
        self.next = now + REFRESH_INTERVAL;
        if let Err(error) = self.socket.send_to(&self.register, self.relay) {
            self.failures += 1;
            tracing::warn!(%error, relay = %self.relay, failures = self.failures, "relay registration not sent");
        }
    }

    /// Tells the relay this address is gone (best effort: the entry expires anyway).
    pub(crate) fn leave(&self) {
        if let Err(error) = self.socket.send_to(&self.leave, self.relay) {
            tracing::debug!(%error, "relay leave not sent");
        }
    }
}

/// The register and leave datagrams of `token` in `meeting_id`.
fn messages(meeting_id: &[u8], token: &str) -> Result<(Vec<u8>, Vec<u8>), RegistrationError> {
    let registration = Registration {
        kind: Kind::Register,
        meeting_id: meeting_id.to_vec(),
        token: token.to_owned(),
    };
    let register = registration.emit()?;
    let leave = Registration {
        kind: Kind::Leave,
        ..registration
    }
    .emit()?;
    Ok((register, leave))
}

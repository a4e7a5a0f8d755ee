//! The per-batch work between an engine's receive and its send, without any I/O.
//!
//! A UDP engine (the `dataplane-udp` crate) owns the sockets and calls a [`Pipeline`] with each
//! batch it received; the [`Forwarder`] is the pipeline of a sidecar's worker: it seals what the
//! local client sent and opens what the network sent, in place, under the [`crate::keyring`]'s
//! current keys, and counts every packet it drops ([`Counters`]). Nothing here touches a socket
//! or a clock: the engine passes `now` in, as quinn-proto's endpoint takes it.

mod counters;
mod forwarder;

use std::net::{IpAddr, SocketAddr};

pub use counters::{Counters, CountersSnapshot, Direction, IoDrop};
pub use forwarder::Forwarder;

use crate::batch::Batch;
use crate::keyring::Millis;

/// Which socket a batch came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The local client's side: plaintext.
    Local,
    /// The network side: protected packets.
    Network,
}

impl Side {
    /// Where a packet received on this side is written in its slot: plaintext leaves headroom
    /// for in-place sealing; protected packets start at the slot's start.
    pub fn recv_offset(self) -> usize {
        match self {
            Self::Local => crate::packet::HEADROOM,
            Self::Network => 0,
        }
    }
}

/// The per-batch work between receive and send.
pub trait Pipeline {
    /// Processes a batch that arrived on `from` in place, marking what must not be sent on.
    fn process(&mut self, from: Side, now: Millis, batch: &mut Batch);
    /// Counts packets an engine lost outside the pipeline.
    fn io_drop(&mut self, side: Side, reason: IoDrop, packets: u64);
    /// Counts packets handed to the kernel for sending out of `to`.
    fn sent(&mut self, to: Side, packets: u64);
    /// Makes the counts so far visible to readers. Engines call it once per pass of their
    /// loop, after processing and before the batch reaches the kernel (so nothing is delivered
    /// before it is counted), and before they sleep (so an idle worker's counts are current).
    /// `process`, `io_drop` and `sent` only count locally: a paced packet costs one publish,
    /// not three.
    fn publish(&mut self);
    /// Housekeeping that must not wait for traffic. Engines call it at least every idle period
    /// (50 ms), busy or not; the forwarder drops its cached keys of retired epochs here, so a
    /// worker whose traffic stopped erases them in bounded time (review finding 19.6).
    fn tick(&mut self, now: Millis);
}

/// Who may hand a worker plaintext to seal: the local client's address. Whatever arrives on the
/// local socket is sealed and sent authenticated as this device's stream, so a datagram from any
/// other address is refused ([`IoDrop::ForeignSource`]) before sealing.
///
/// UDP gives no finer binding than the source address: with port 0 every port of the client's
/// IP is admitted (any process on that host can send from it); a port pins one socket, which
/// another process can only take once the client let it go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalClient {
    ip: IpAddr,
    /// `None`: any port of `ip`.
    port: Option<u16>,
}

impl LocalClient {
    /// The client at `addr`; port 0 admits every port of its IP. IPv4-mapped IPv6 addresses
    /// are the IPv4 address they carry.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            ip: addr.ip().to_canonical(),
            port: (addr.port() != 0).then_some(addr.port()),
        }
    }

    /// Whether a datagram from `source` is the client's. An unknown source is not.
    pub fn admits(&self, source: Option<SocketAddr>) -> bool {
        source.is_some_and(|source| {
            source.ip().to_canonical() == self.ip
                && self.port.is_none_or(|port| port == source.port())
        })
    }
}

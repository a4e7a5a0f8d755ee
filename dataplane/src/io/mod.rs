//! UDP engines: move batches between the local client's socket and the network socket.
//!
//! An engine owns one worker's two sockets and a [`Pipeline`], the sans-IO core that seals or
//! opens a batch in place. It receives a batch on one side, hands it to the pipeline, and sends
//! what survived out of the other side: local plaintext goes sealed to the remote, network
//! packets go opened to the local client. Two engines:
//! - [`mio_engine`]: readiness (epoll through mio) with recvmmsg / sendmmsg and UDP GSO;
//! - [`uring`]: io_uring, multishot receive over a provided buffer ring, GSO sends.
//!
//! [`EngineKind::probe`] picks one at start. All `unsafe` of the dataplane lives in this module.

mod batch_io;
mod counters;
mod forwarder;
mod gro;
pub mod mio_engine;
mod mmsg;
mod socket;
pub mod uring;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{SystemTime, UNIX_EPOCH};

pub use batch_io::BatchIo;
pub use counters::{Counters, CountersSnapshot, Direction, IoDrop};
pub use forwarder::Forwarder;
pub use socket::bind_reuseport;

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

/// One worker's sockets and where each side's output goes.
#[derive(Debug)]
pub struct WorkerSockets {
    /// Where the local client sends plaintext (`--local-listen`).
    pub local: UdpSocket,
    /// The network socket (`--bind`).
    pub network: UdpSocket,
    /// Where opened packets go (`--local-deliver`).
    pub deliver: SocketAddr,
    /// Where sealed packets go (`--remote`).
    pub remote: SocketAddr,
}

/// Which engine runs the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// io_uring.
    Uring,
    /// mio readiness with recvmmsg / sendmmsg.
    Mio,
}

impl EngineKind {
    /// The engine's name in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uring => "uring",
            Self::Mio => "mio",
        }
    }

    /// Picks io_uring if this kernel lets us build the ring we need (it can be missing, or
    /// forbidden by seccomp in containers), else mio. Returns the choice and why.
    pub fn probe() -> (Self, String) {
        match uring::probe() {
            Ok(()) => (
                Self::Uring,
                "io_uring available with multishot receive and sendto".into(),
            ),
            Err(reason) => (Self::Mio, format!("io_uring unusable: {reason}")),
        }
    }
}

/// Wall-clock unix milliseconds: drivers own the clock; the cores take it as an argument.
pub fn now() -> Millis {
    Millis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    )
}

//! dataplane-udp: the UDP engines that move a dataplane [`Pipeline`]'s batches between a local
//! client's socket and the network, and the only crate of the dataplane allowed `unsafe` (system
//! calls the standard library does not wrap: recvmmsg / sendmmsg, UDP GSO and GRO, io_uring), each
//! block with a `// SAFETY:` note.
//!
//! An engine owns one worker's two sockets and a [`Pipeline`], the sans-IO core that seals or
//! opens a batch in place. It receives a batch on one side, hands it to the pipeline, and sends
//! what survived out of the other side: local plaintext goes sealed to the remote, network
//! packets go opened to the local client. Two engines:
//! - [`mio_engine`]: readiness (epoll through mio) with recvmmsg / sendmmsg and UDP GSO;
//! - [`uring`]: io_uring, multishot receive over a provided buffer ring, GSO sends.
//!
//! [`EngineKind::probe`] picks one at start. The split follows quinn's (quinn-proto, quinn-udp):
//! the codec and pipeline in `dataplane` forbid `unsafe` and build anywhere, wasm32 included;
//! the sockets live here.

mod batch_io;
mod gro;
pub mod mio_engine;
mod mmsg;
mod socket;
pub mod uring;

use std::net::{SocketAddr, UdpSocket};

pub use batch_io::BatchIo;
pub use socket::{bind_reuseport, pin_current_thread};
pub use uring::UringUnusable;

pub use dataplane::keyring::Millis;
pub use dataplane::pipeline::{IoDrop, Pipeline, Side};

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

/// What one side's receives did in an engine's run ([`uring::RunReport`],
/// [`mio_engine::RunReport`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceiveReport {
    /// Datagrams copied from a receive buffer into a batch slot. Only GRO segments of the
    /// local side are: sealing grows a datagram, and back to back in a GRO buffer there is no
    /// room. The network side's datagrams are opened where they landed, with GRO or without,
    /// and so are the local side's without GRO (the io_uring engine's provided buffers, or the
    /// batch slots the mio engine's recvmmsg writes into).
    pub copied: u64,
    /// Receives that brought more than one datagram (GRO coalesced a burst).
    pub coalesced: u64,
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
    /// forbidden by seccomp in containers), else mio, and says why io_uring was passed over.
    pub fn probe() -> (Self, Option<UringUnusable>) {
        match uring::probe() {
            Ok(()) => (Self::Uring, None),
            Err(reason) => (Self::Mio, Some(reason)),
        }
    }
}

/// Wall-clock unix milliseconds ([`keyctl::time::SystemClock`]), the time an engine passes to its
/// pipeline: drivers own the clock; the cores take it as an argument.
pub fn now() -> Millis {
    use keyctl::time::Clock as _;
    keyctl::time::SystemClock.now()
}

//! `veil board`: the bulletin board and signalling server of the meeting handshake, and its
//! client.
//!
//! The board is untrusted by design (whitepaper 3.1): it sees public keys, signatures and
//! sealed meeting keys, never a secret, and checks nothing cryptographic. It routes keyctl's
//! messages between the participants of each meeting instance, picks the leader, and tells
//! everyone who joined and left. Participants detect what a malicious board can do; the
//! `--tamper` scenarios ([`Tamper`]) play that board in tests.
//!
//! - [`frame`]: the wire format (docs/PROTOCOL.md "Board wire format").
//! - [`BoardCore`]: the routing state machine, sans-IO.
//! - [`BoardServer`]: the mio event loop around it, with rustls.
//! - [`client`]: the blocking client a participant uses.
//!
//! The server, client and CLI need the default feature `net`; without it the crate is the frame
//! codec and the sans-IO core, which the fuzz target drives.

#![forbid(unsafe_code)]

#[cfg(feature = "net")]
mod admin;
#[cfg(feature = "net")]
mod cli;
#[cfg(feature = "net")]
pub mod client;
mod core;
pub mod frame;
mod policy;
#[cfg(feature = "net")]
mod server;
mod stats;
mod tamper;
#[cfg(feature = "net")]
pub mod tls;

pub use self::core::{
    BoardCore, BoardLimits, ConnId, HELLO_TIMEOUT_MS, MAX_BACKLOG_LINK_BYTES, MAX_BACKLOG_LINKS,
    MAX_DEPARTED_POSTS, Output, device_id,
};
#[cfg(feature = "net")]
pub use admin::serve_admin;
#[cfg(feature = "net")]
pub use cli::{BoardArgs, run};
pub use policy::{Honest, Policy, policy_for};
#[cfg(feature = "net")]
pub use server::{BoardConfig, BoardHandle, BoardServer};
pub use stats::{BoardStats, ErrorReason, PublishedStats, StatsSnapshot};
pub use tamper::Tamper;

#[cfg(feature = "net")]
use frame::FrameError;

/// Why a board connection, or the board itself, failed.
#[cfg(feature = "net")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BoardError {
    /// The TCP connection could not be made.
    #[error("cannot connect to the board: {0}")]
    Connect(std::io::Error),
    /// A socket error.
    #[error("board connection: {0}")]
    Io(std::io::Error),
    /// TLS failed (for example the certificate does not match the pinned fingerprint).
    #[error("TLS: {0}")]
    Tls(rustls::Error),
    /// The peer sent bytes that are not a valid frame.
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    /// The board refused the join.
    #[error("the board refused: {0}")]
    Refused(String),
    /// The peer closed the connection.
    #[error("the board closed the connection")]
    Closed,
    /// No welcome within the connect timeout.
    #[error("no answer from the board in time")]
    Timeout,
    /// A valid frame where it makes no sense.
    #[error("unexpected frame: {0}")]
    Unexpected(&'static str),
    /// A certificate, key or fingerprint could not be used.
    #[error("{0}")]
    Config(String),
    /// `--insecure-plaintext` on an address other than loopback.
    #[error(
        "refusing --insecure-plaintext on {0}: plaintext is allowed on loopback only (127.0.0.0/8, ::1); drop the flag to use TLS"
    )]
    PlaintextNotLoopback(std::net::SocketAddr),
}

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
#[cfg(feature = "net")]
mod out_queue;
mod policy;
#[cfg(feature = "net")]
mod server;
mod stats;
mod tamper;
#[cfg(feature = "net")]
pub mod tls;
#[cfg(feature = "net")]
pub mod ws;

pub use self::core::{
    BoardCore, BoardLimits, ConnId, HELLO_TIMEOUT_MS, MAX_BACKLOG_LINK_BYTES, MAX_BACKLOG_LINKS,
    MAX_DEPARTED_POSTS, Output, RelayTickets, TICKET_REQUEST_INTERVAL_MS, device_id,
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
    /// A meeting ID or name outside 1 to [`frame::MAX_TEXT`] bytes.
    #[error("the {what} must be 1 to {max} bytes, not {len}", max = frame::MAX_TEXT)]
    TextLength {
        /// Which text.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// A pinned fingerprint that is not hex.
    #[error("fingerprint is not hex")]
    FingerprintNotHex,
    /// A pinned fingerprint of another length than SHA-256's.
    #[error("fingerprint is not 32 bytes (SHA-256) but {0}")]
    FingerprintLength(usize),
    /// A PEM file (certificate chain, key or CA) could not be read or parsed.
    #[error("{}: {error}", path.display())]
    Pem {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        error: rustls::pki_types::pem::Error,
    },
    /// A PEM certificate file held no certificate.
    #[error("no certificate in the PEM file")]
    NoCertificate,
    /// The self-signed certificate could not be made.
    #[error("cannot generate a certificate: {0}")]
    CertificateGeneration(rcgen::Error),
    /// The generated key is not a key rustls takes.
    #[error("generated key: {0}")]
    GeneratedKey(&'static str),
    /// The admin endpoint could not start (or a public address lacks the opt-in).
    #[error(transparent)]
    Admin(#[from] veil_admin::AdminError),
    /// The relay ticket key file could not be read or made.
    #[error(transparent)]
    TicketKey(#[from] veil_relay::ticket::TicketKeyError),
    /// `--fingerprint-file` could not be written.
    #[error("{}: {error}", path.display())]
    FingerprintFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// `--insecure-plaintext` on an address other than loopback.
    #[error(
        "refusing --insecure-plaintext on {0}: plaintext is allowed on loopback only (127.0.0.0/8, ::1); drop the flag to use TLS"
    )]
    PlaintextNotLoopback(std::net::SocketAddr),
}

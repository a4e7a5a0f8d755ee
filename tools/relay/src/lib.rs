//! `veil relay`: the media relay (the role of Zoom's multimedia router). It forwards every
//! datagram from a registered participant to the other participants of the same meeting and
//! never decrypts: it holds no media key, reads no meeting key file and opens no board
//! connection. The only secret it reads is the relay ticket key it shares with the board
//! (`--ticket-key`), which authenticates registrations and can decrypt nothing.
//!
//! Participants register their media address with a clear datagram ([`registration`]) carrying
//! the board's ticket ([`ticket`]) and the cookie the relay sent that address (return
//! routability); entries expire unless refreshed, so a restarted relay heals as the sidecars
//! re-register. Datagrams from unregistered sources are dropped and counted.
//!
//! Without the default feature `net` the crate is only its sans-IO parts ([`registration`],
//! [`ticket`], [`table`], [`fanout`]): what the board needs to issue tickets, the sidecar to
//! register, and the benches to measure routing, without a server.
#![forbid(unsafe_code)]

#[cfg(feature = "net")]
mod counters;
pub mod fanout;
#[cfg(feature = "net")]
mod forward;
pub mod registration;
#[cfg(feature = "net")]
mod server;
pub mod table;
pub mod ticket;
#[cfg(feature = "net")]
pub mod web;

#[cfg(feature = "net")]
pub use counters::{Refusal, RelayCounters, RelayDrop};
#[cfg(feature = "net")]
pub use server::{RelayArgs, RelayError, run};

//! keyctl: the keying control plane of Veil.
//!
//! It implements the meeting key agreement of Zoom's end-to-end encryption design
//! (whitepaper v2.3 section 3, hardened per v4.6): device identities, signed key bindings,
//! the leader's meeting key distribution and rotation, the leader participant list and
//! heartbeats, and the meeting security code.
//!
//! It is not a network client: there are no sockets, threads or clocks in here. Every input
//! carries the current time and every output is pulled by a driver (the sidecar, the C ABI,
//! or a test with virtual time). Randomness comes in from the caller as a
//! [`rand_core::TryCryptoRng`]; [`rng::OsRng`] is the one real drivers use.
//!
//! Modules:
//! - [`crypto`]: Sign, Box, the security code and CtE1, byte-compatible with libsodium.
//! - [`identity`]: the CtE1-wrapped long-term identity store.
//! - [`meeting`]: the per-participant meeting state machine (leader and participant).
//! - [`provider`]: the crypto provider every primitive comes from (aws-lc-rs by default, or
//!   RustCrypto), shared with the dataplane.
//! - [`rng`]: the operating system random source for drivers.
//! - [`time`]: [`time::Millis`], the time every input carries.
//! - [`wire`]: the canonical, versioned binary encoding of every message and signed or
//!   hashed structure (byte-exact in docs/PROTOCOL.md).
#![forbid(unsafe_code)]

pub mod crypto;
pub mod identity;
pub mod meeting;
pub mod provider;
pub mod rng;
#[cfg(any(test, feature = "test-util"))]
pub mod test_rng;
pub mod time;
pub mod wire;

pub use rand_core;

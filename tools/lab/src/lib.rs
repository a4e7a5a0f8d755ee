//! veil-lab: Veil run as its users run it, for demonstration and endurance. Both drive the real
//! `veil` binaries as separate processes on loopback.
//!
//! - [`demo`]: `veil demo`, a whole meeting (board, relay, sidecars, media) that exits 0 only if
//!   every packet arrived; the README's run command.
//! - [`soak`]: `veil-soak`, a long meeting under rotations, restarts, kills and network cuts that
//!   measures loss, recovery, memory and descriptors.
//! - `sim` (feature `sim`): a meeting across both planes on virtual time (keyctl sessions, the real board core,
//!   a dataplane keyring per node through the handoff) and the media properties it checks.
#![forbid(unsafe_code)]

pub mod demo;
#[cfg(feature = "sim")]
pub mod sim;
pub mod soak;

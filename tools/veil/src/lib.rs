//! The library behind the `veil` command (`veil_cli`): the sidecar, the participant driver, and the
//! small subcommands, so integration tests can drive them in process as well as through the
//! binary. The board, the relay, the admin server and the lab (demo, soak) are crates of their
//! own under tools/; `veil board`, `veil relay` and `veil demo` call into them.
//!
//! This crate is tooling around the two planes (keyctl and dataplane); it holds no protocol of
//! its own beyond what each module documents.
#![forbid(unsafe_code)]

pub mod inspect;
pub mod keygen;
pub mod meeting;
pub mod sidecar;
pub mod web;

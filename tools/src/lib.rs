//! The library behind the `veil` command: one module per subcommand, so integration tests and
//! benches can drive the servers and the sidecar in process as well as through the binary.
//!
//! This crate is tooling around the two planes (keyctl and dataplane); it holds no protocol of
//! its own beyond what each module documents.
#![forbid(unsafe_code)]

pub mod admin;
pub mod board;
pub mod demo;
pub mod inspect;
pub mod keygen;
pub mod meeting;
pub mod relay;
pub mod sidecar;
pub mod soak;

//! veil-bench: benchmarks for Veil, each measured beside a baseline in the same run.
//!
//! - `benches/sframe`: whole-codec seal and open (with the replay check) against raw aws-lc-rs
//!   and ring AES-256-GCM on the same bytes (criterion); `ratios.py` beside it turns a run's
//!   criterion estimates into the ratios docs/BENCHMARKS.md records.
//! - `bin/codec_ratios`: the same ratios from interleaved bursts, steadier on a shared machine.
//! - `bin/compare`: Veil's RTP packet seal and open against what users would pick instead
//!   (libsrtp, the `sframe` crate, raw aws-lc-rs), per packet on one core.
//! - `bin/loopback`: the UDP engines end to end.
//!
//! The library holds what the interleaving harnesses share ([`interleave`]).
#![forbid(unsafe_code)]

pub mod interleave;

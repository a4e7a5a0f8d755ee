//! veil-bench: criterion benchmarks for Veil, each measured beside a baseline in the same run.
//!
//! - `sframe`: whole-codec seal and open (with the replay check) against raw aws-lc-rs and ring
//!   AES-256-GCM on the same bytes.
//!
//! This crate holds no library code of its own; `ratios.py` beside it turns a run's criterion
//! estimates into the ratios docs/BENCHMARKS.md records.
#![forbid(unsafe_code)]

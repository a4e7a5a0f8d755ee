//! `veil-soak`: the soak test of issue 7 (run it with `tools/soak`). See `veil-soak --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use veil_lab::soak::{SoakArgs, run};

fn main() -> ExitCode {
    match run(SoakArgs::parse()) {
        Ok(outcome) if outcome.passed => ExitCode::SUCCESS,
        Ok(outcome) => {
            eprintln!("veil-soak: FAILED (logs in {})", outcome.logs.display());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("veil-soak: {e}");
            ExitCode::from(2)
        }
    }
}

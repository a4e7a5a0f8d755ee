//! Random exploration of the adversary's action space over byte strings, on stable Rust.
//!
//! - `enforced_invariants_hold` runs in CI (a few seconds): every invariant except the
//!   ones listed in `KNOWN_OPEN` (open findings; none since keyctl revision 2).
//! - `hunt` searches random action lists for a violation of each invariant and reports
//!   how long it took and the minimized reproduction (`cargo test -p keyctl-adversary
//!   --test explore -- --ignored hunt --nocapture`).
#![allow(clippy::panic)]

use std::time::{Duration, Instant};

use keyctl::rand_core::TryRng;
use keyctl_adversary::{Action, Invariant, TestRng, check, enforced, run};
use proptest::prelude::*;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // `check` shrinks a failing action list itself (and prints it as Rust); proptest's
        // own shrinking of the bytes would only repeat that, slower.
        max_shrink_iters: 0,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn holds(bytes: &[u8], enabled: &[Invariant]) -> Result<(), TestCaseError> {
    let actions = Action::decode(bytes);
    if run(&actions, enabled).is_err()
        && let Err(failure) = check(&actions, enabled)
    {
        return Err(TestCaseError::fail(failure.to_string()));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]
    #[test]
    fn enforced_invariants_hold(bytes in proptest::collection::vec(any::<u8>(), 0..240)) {
        holds(&bytes, &enforced())?;
    }
}

/// Random byte strings, one invariant at a time, until it fires or the budget ends.
#[test]
#[ignore = "a search, not a regression test: reports time to each finding"]
fn hunt() {
    let budget = Duration::from_secs(
        std::env::var("HUNT_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    for invariant in Invariant::ALL {
        let mut rng = TestRng::new(&format!("hunt-{invariant:?}"));
        let started = Instant::now();
        let mut runs = 0u64;
        let mut found = None;
        while started.elapsed() < budget {
            let len = 8 + (rng.try_next_u32().unwrap_or(0) % 120) as usize;
            let mut bytes = vec![0u8; len];
            let _ = rng.try_fill_bytes(&mut bytes);
            runs += 1;
            let actions = Action::decode(&bytes);
            if run(&actions, &[invariant]).is_err() {
                found = Some(actions);
                break;
            }
        }
        let elapsed = started.elapsed();
        match found {
            None => println!("{invariant:?}: none in {runs} runs, {elapsed:.1?}"),
            Some(actions) => {
                let failure = check(&actions, &[invariant]).err();
                println!(
                    "{invariant:?}: found after {runs} runs, {elapsed:.1?} (minimized in {:.1?})",
                    started.elapsed() - elapsed
                );
                if let Some(f) = failure {
                    println!("{f}");
                }
            }
        }
    }
}

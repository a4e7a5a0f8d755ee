//! Coverage-guided exploration of keyctl meetings under an adversarial board: the input is
//! a byte string of actions for keyctl-adversary's world (deliver, drop, delay, reorder,
//! replay, foreign-instance replay, server notices, mallory's rejoin, host commands, time,
//! announcements stripped of their ML-KEM key, hybrid-signed posts stripped of their ML-DSA
//! half, and a quantum adversary's rejoin under a party's IVK with a classical identity or
//! another ML-DSA key), and every invariant of that crate (I1-I9) is checked after every
//! step. A violation panics with the minimized action list, printed as Rust.
//!
//! By default the invariants in `keyctl_adversary::KNOWN_OPEN` (open findings; none since
//! keyctl revision 2 fixed F1-F5) are computed but not enforced, so the CI fuzz smoke stays
//! green while a fix lands; `VEIL_ADVERSARY_INVARIANTS=all` enforces every one (a campaign
//! after a fix), and `VEIL_ADVERSARY_INVARIANTS=I2,I4` only those named.
#![no_main]
#![forbid(unsafe_code)]

use std::sync::OnceLock;

use keyctl_adversary::{Action, Invariant, check, enforced, run};
use libfuzzer_sys::fuzz_target;

/// At most this many actions per input: deep enough for a leader change after a withheld
/// rotation, short enough that one input runs in milliseconds.
const MAX_ACTIONS: usize = 64;

fn enabled() -> &'static [Invariant] {
    static ENABLED: OnceLock<Vec<Invariant>> = OnceLock::new();
    ENABLED.get_or_init(|| match std::env::var("VEIL_ADVERSARY_INVARIANTS").as_deref() {
        Ok("all") => Invariant::ALL.to_vec(),
        // A comma-separated list such as "I2,I4": hunt those alone.
        Ok(list) => Invariant::ALL
            .into_iter()
            .filter(|i| {
                let name = format!("{i:?}");
                list.split(',')
                    .any(|want| !want.is_empty() && name.starts_with(want.trim()))
            })
            .collect(),
        Err(_) => enforced(),
    })
}

fuzz_target!(|data: &[u8]| {
    let mut actions = Action::decode(data);
    actions.truncate(MAX_ACTIONS);
    if run(&actions, enabled()).is_ok() {
        return;
    }
    match check(&actions, enabled()) {
        Ok(()) => panic!("a violation that does not reproduce: the world is not deterministic"),
        Err(failure) => panic!("{failure}"),
    }
});

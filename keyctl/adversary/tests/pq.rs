//! Post-quantum key delivery under the adversary (issue 16): the board strips ML-KEM-768 keys
//! from announcements so the leader would box classically. Every session of the world has an
//! ML-KEM key, so I7 (`I7NoClassicalBox`) says no meeting key ever travels classically.

#![allow(clippy::panic)]

use keyctl_adversary::{Action, Invariant, run};

fn assert_holds(invariant: Invariant, actions: &[Action]) {
    if let Err(v) = run(actions, &[invariant]) {
        panic!("{v}");
    }
}

/// Mallory's new session announces itself; the board hands the leader that announcement with
/// the ML-KEM key stripped (and never the genuine one). The binding signature covers the key,
/// so the leader refuses it: no rotation ever boxes mallory's key classically (seen failing
/// when the signature left the key out).
#[test]
fn a_stripped_announcement_never_gets_a_classical_box() {
    let actions = STRIPPED;
    assert_holds(Invariant::I7NoClassicalBox, actions);
    for invariant in Invariant::ALL {
        assert_holds(invariant, actions);
    }
    // The fuzz target starts from the same list.
    assert_eq!(
        Action::decode(include_bytes!(
            "../../../fuzz/corpus/keyctl_adversary/seed-strip-pq"
        )),
        actions
    );
}

const STRIPPED: &[Action] = &[
    Action::MalloryRejoin,
    Action::StripPq { to: 0 },
    Action::FlushAll,
    Action::Advance {
        step: 4,
        deliver: true,
    },
    Action::Advance {
        step: 7,
        deliver: true,
    },
];

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

/// Issue 16 part 2: the parties sign hybrid, and the board strips the ML-DSA half off their
/// posts (announcements, nonces, links, heartbeats), delivering each as the classical message
/// it carries, to the leader and to participants, before and after a leader change and a
/// rejoin. I8 (`I8NoStrippedSignature`): every reader refuses every stripped post it does not
/// ignore by its role; the other invariants hold too (seen failing when a verifier accepted
/// the Ed25519 half of a hybrid signer).
#[test]
fn stripped_hybrid_signatures_are_never_taken() {
    let actions = STRIPPED_SIG;
    assert_holds(Invariant::I8NoStrippedSignature, actions);
    for invariant in Invariant::ALL {
        assert_holds(invariant, actions);
    }
    assert_eq!(
        Action::decode(include_bytes!(
            "../../../fuzz/corpus/keyctl_adversary/seed-strip-pq-sig"
        )),
        actions
    );
}

const STRIPPED_SIG: &[Action] = &[
    Action::MalloryRejoin,
    Action::StripPqSig { to: 0 },
    Action::StripPqSig { to: 0 },
    Action::StripPqSig { to: 1 },
    Action::Advance {
        step: 3,
        deliver: false,
    },
    Action::StripPqSig { to: 1 },
    Action::StripPqSig { to: 2 },
    Action::StripPqSig { to: 2 },
    Action::FlushAll,
    Action::Advance {
        step: 2,
        deliver: false,
    },
    Action::StripPqSig { to: 0 },
    Action::StripPqSig { to: 1 },
    Action::NoticeLeaderChange { who: 1 },
    Action::StripPqSig { to: 0 },
    Action::StripPqSig { to: 2 },
    Action::StripPqSig { to: 1 },
    Action::FlushAll,
    Action::Advance {
        step: 4,
        deliver: true,
    },
    Action::StripPqSig { to: 0 },
    Action::StripPqSig { to: 2 },
    Action::Advance {
        step: 7,
        deliver: true,
    },
];

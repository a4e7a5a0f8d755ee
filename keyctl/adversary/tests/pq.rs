//! Post-quantum key delivery under the adversary (issue 16): the board strips ML-KEM-768 keys
//! from announcements so the leader would box classically. Every session of the world has an
//! ML-KEM key, so I7 (`I7NoClassicalBox`) says no meeting key ever travels classically.

#![allow(clippy::panic, clippy::unwrap_used)]

use keyctl::meeting::{Alert, MeetingError, Role};
use keyctl::wire::ParticipantId;
use keyctl_adversary::{Action, Invariant, replay, run};

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

/// Keyctl revision 5's threat: a quantum adversary that forges Ed25519 (the world hands it
/// bob's Ed25519 seed) comes back as bob after bob left, under bob's `IVK`: first with a
/// classical identity, then with a hybrid one whose ML-DSA-65 key is its own. The board
/// delivers the forgeries' posts to everyone and every post to the forgeries. I9
/// (`I9NoForgedRejoin`): nobody honest lists or keys either forgery, and each refusal leaves
/// the refuser's list as it was; the leader refused each announcement with `IvkChanged` and
/// raised the alert (seen failing when keyctl's identity checks were disabled).
#[test]
fn a_forged_rejoin_under_a_departed_members_ivk_is_refused() {
    let actions = FORGED_REJOIN;
    assert_holds(Invariant::I9NoForgedRejoin, actions);
    for invariant in Invariant::ALL {
        assert_holds(invariant, actions);
    }
    let bob = ParticipantId::new(b"bob", b"dev").unwrap();
    // After each forgery's stretch: the leader (the host) refused it and raised the alert,
    // and the forgery holds no key.
    for (what, end) in [("classical", 5), ("another ML-DSA key", 8)] {
        let world = replay(&actions[..end], &Invariant::ALL).unwrap();
        let seen = world.describe();
        assert_eq!(world.role(0), Some(Role::Leader), "{what}: {seen}");
        assert!(
            world.alerts(0).contains(&Alert::IvkChanged {
                participant: bob.clone()
            }),
            "{what}: {:?}\n{seen}",
            world.alerts(0)
        );
        assert!(
            world
                .refusals(0)
                .iter()
                .any(|(_, e)| *e == MeetingError::IvkChanged),
            "{what}: {seen}"
        );
        assert_eq!(
            world.forger_state(),
            Some((Some(Role::Participant), 0, false)),
            "{what}: {seen}"
        );
    }
    let world = replay(actions, &Invariant::ALL).unwrap();
    assert_eq!(world.forgeries(), 2);
    assert_eq!(
        Action::decode(include_bytes!(
            "../../../fuzz/corpus/keyctl_adversary/seed-forge-rejoin"
        )),
        actions
    );
}

const FORGED_REJOIN: &[Action] = &[
    Action::Leave { who: 2 },
    Action::Advance {
        step: 3,
        deliver: true,
    },
    Action::ForgeRejoin {
        victim: 2,
        other_ml_dsa: false,
    },
    Action::FlushAll,
    Action::Advance {
        step: 4,
        deliver: true,
    },
    Action::ForgeRejoin {
        victim: 2,
        other_ml_dsa: true,
    },
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

/// The same forgery at other moments: under a present participant's `IVK` (alice), under
/// the leader's own while it leads (the server named the host leader, so the forged host
/// session starts leading and boxes keys of its own), and under a kicked member's
/// (mallory's). I9 holds throughout: nobody honest takes the forged announcements, lists
/// them or takes the forged leader's keys.
#[test]
fn a_forged_rejoin_is_refused_while_present_as_leader_and_after_a_kick() {
    let actions = FORGED_ELSEWHEN;
    for invariant in Invariant::ALL {
        assert_holds(invariant, actions);
    }
    // The forged host session leads while the real host does.
    let world = replay(&actions[..6], &Invariant::ALL).unwrap();
    let seen = world.describe();
    assert_eq!(world.role(0), Some(Role::Leader), "{seen}");
    assert!(
        matches!(world.forger_state(), Some((Some(Role::Leader), _, false))),
        "{seen}"
    );
    let world = replay(actions, &Invariant::ALL).unwrap();
    let seen = world.describe();
    assert_eq!(world.forgeries(), 3);
    for who in [b"alice".as_slice(), b"mallory"] {
        let participant = ParticipantId::new(who, b"dev").unwrap();
        assert!(
            world.alerts(0).contains(&Alert::IvkChanged { participant }),
            "{:?}\n{seen}",
            world.alerts(0)
        );
    }
}

const FORGED_ELSEWHEN: &[Action] = &[
    Action::ForgeRejoin {
        victim: 1,
        other_ml_dsa: true,
    },
    Action::FlushAll,
    Action::Advance {
        step: 4,
        deliver: true,
    },
    Action::ForgeRejoin {
        victim: 0,
        other_ml_dsa: false,
    },
    Action::FlushAll,
    Action::Advance {
        step: 4,
        deliver: true,
    },
    Action::Kick { by: 0, who: 3 },
    Action::Advance {
        step: 3,
        deliver: true,
    },
    Action::ForgeRejoin {
        victim: 3,
        other_ml_dsa: false,
    },
    Action::FlushAll,
    Action::Advance {
        step: 7,
        deliver: true,
    },
];

/// Found while adding `ForgeRejoin` (I8's oracle, not keyctl): a post forged under bob's ID
/// with another ML-DSA key, stripped of its ML-DSA half and handed to bob itself, is a post
/// under bob's own ID, which bob ignores unread (as it ignores its own); I8 no longer counts
/// that as taking a stripped signature. Every invariant holds.
#[test]
fn a_stripped_forgery_under_the_readers_own_id_is_ignored() {
    let actions = &[
        Action::ForgeRejoin {
            victim: 2,
            other_ml_dsa: true,
        },
        Action::Leave { who: 0 },
        Action::Deliver { to: 2, pick: 68 },
        Action::StripPqSig { to: 2 },
    ];
    for invariant in Invariant::ALL {
        assert_holds(invariant, actions);
    }
}

//! The violations the exploration found on keyctl revision 1, one test per finding, each the
//! minimized action list the search printed (participant indices reduced modulo 4). Each
//! failed on revision 1 and passes since revision 2 fixed it; a new finding is added here
//! `#[ignore]`d, with its invariant in `KNOWN_OPEN`, until its fix lands.
//! docs/RELIABILITY.md, "Adversarial exploration", has how and how fast each was found.

#![allow(clippy::panic)]

use keyctl_adversary::{Action, Invariant, Kind, run};

fn assert_holds(invariant: Invariant, actions: &[Action]) {
    if let Err(v) = run(actions, &[invariant]) {
        panic!("{v}");
    }
}

/// F1 (I2): the board withholds one participant's rekey but delivers the heartbeat that
/// certifies it; the participant keeps sending under the superseded key forever (it never
/// leaves, never complains).
#[test]
// Finding F1 (I2): withheld rekey with a certifying heartbeat; fixed in keyctl revision 2.
fn f1_withheld_rekey_keeps_participant_on_superseded_key() {
    assert_holds(Invariant::I2NoStaleSending, F1_WITHHELD_REKEY);
}

/// F1 again, reached by reordering alone (found by the fuzzer hunting I4): mallory is named
/// leader and rekeys; the board hands participant 1 its rekey before the `LeaderChange`, so
/// participant 1 refuses it (it is sealed by a leader it does not follow yet), then follows
/// mallory, accepts its heartbeats certifying the key, and never gets the key.
#[test]
// Finding F1 (I2): a rekey delivered before its leader change is lost for good; fixed in keyctl revision 2.
fn f1_rekey_delivered_before_its_leader_change() {
    assert_holds(Invariant::I2NoStaleSending, F1_REKEY_BEFORE_LEADER_CHANGE);
    assert_holds(Invariant::I4NewLeaderKey, F1_REKEY_BEFORE_LEADER_CHANGE);
}

/// F2 (I3): a bare `LeaderChange` notice, with no heartbeat from anyone, restarts a
/// participant's missed-heartbeat deadline; repeated, it keeps a session alive forever.
#[test]
// Finding F2 (I3): a bare LeaderChange resets the heartbeat deadline; fixed in keyctl revision 2.
fn f2_bare_leader_change_resets_heartbeat_deadline() {
    assert_holds(Invariant::I3HeartbeatsKeepAlive, F2_BARE_LEADER_CHANGE);
}

/// F3 (I5): after the host kicks mallory, mallory's new session (same identity key, new
/// binding) is admitted again and gets the next key.
#[test]
// Finding F3 (I5): a kicked identity can rejoin; fixed in keyctl revision 2.
fn f3_kicked_identity_rejoins() {
    assert_holds(Invariant::I5KickedStaysOut, F3_KICKED_REJOIN);
}

/// F3, as the search found it: the rejoin is posted before the kick.
#[test]
// Finding F3 (I5): a kicked identity can rejoin; fixed in keyctl revision 2.
fn f3_rejoin_posted_before_kick() {
    assert_holds(Invariant::I5KickedStaysOut, F3_REJOIN_BEFORE_KICK);
}

/// F4 (I4): the board withholds a rotation's rekey from participant 1, then the server
/// makes it leader. It numbers its first key after the last key it holds, which the
/// others already hold from the old leader: they refuse it as stale and keep sending
/// under the old leader's key, though they accept the new leader's heartbeats.
#[test]
// Finding F4 (I4): a new leader that missed a rotation issues keys everyone refuses; fixed in keyctl revision 2.
fn f4_new_leader_missed_rotation() {
    assert_holds(Invariant::I4NewLeaderKey, F4_NEW_LEADER_MISSED_ROTATION);
}

/// F4, as the search found it: mallory's fresh session, holding no key at all, is named
/// leader and starts again at mkSeqNum 1.
#[test]
// Finding F4 (I4): a new leader that missed a rotation issues keys everyone refuses; fixed in keyctl revision 2.
fn f4_fresh_session_named_leader() {
    assert_holds(Invariant::I4NewLeaderKey, F4_FRESH_SESSION_LEADER);
}

const F1_WITHHELD_REKEY: &[Action] = &[
    Action::Kick { by: 0, who: 3 },
    Action::Drop {
        to: 1,
        kind: Kind::Rekey,
    },
    Action::Advance {
        step: 3,
        deliver: true,
    },
    Action::Advance {
        step: 3,
        deliver: true,
    },
];

const F1_REKEY_BEFORE_LEADER_CHANGE: &[Action] = &[
    Action::NoticeLeaderChange { who: 3 },
    Action::Deliver { to: 3, pick: 0 },
    Action::Deliver { to: 1, pick: 11 },
    Action::Advance {
        step: 7,
        deliver: true,
    },
];

const F2_BARE_LEADER_CHANGE: &[Action] = &[
    Action::NoticeLeaderChange { who: 1 },
    Action::Deliver { to: 2, pick: 0 },
    Action::Advance {
        step: 5,
        deliver: false,
    },
];

const F3_KICKED_REJOIN: &[Action] = &[
    Action::Kick { by: 0, who: 3 },
    Action::MalloryRejoin,
    Action::FlushAll,
    Action::Advance {
        step: 1,
        deliver: true,
    },
];

const F3_REJOIN_BEFORE_KICK: &[Action] = &[
    Action::MalloryRejoin,
    Action::Kick { by: 0, who: 3 },
    Action::Advance {
        step: 7,
        deliver: true,
    },
];

const F4_NEW_LEADER_MISSED_ROTATION: &[Action] = &[
    Action::Kick { by: 0, who: 3 },
    Action::Drop {
        to: 1,
        kind: Kind::Rekey,
    },
    Action::NoticeLeaderChange { who: 1 },
    Action::Advance {
        step: 7,
        deliver: true,
    },
];

const F4_FRESH_SESSION_LEADER: &[Action] = &[
    Action::MalloryRejoin,
    Action::NoticeLeaderChange { who: 3 },
    Action::Advance {
        step: 7,
        deliver: true,
    },
];

/// The fuzz target's committed seeds (fuzz/corpus/keyctl_adversary/seed-f*) are these
/// findings, so a campaign after the fixes starts from them.
#[test]
fn fuzz_seeds_are_the_findings() {
    let seeds: [(&[u8], &[Action]); 5] = [
        (
            include_bytes!("../../../fuzz/corpus/keyctl_adversary/seed-f1-withheld-rekey"),
            F1_WITHHELD_REKEY,
        ),
        (
            include_bytes!("../../../fuzz/corpus/keyctl_adversary/seed-f2-bare-leader-change"),
            F2_BARE_LEADER_CHANGE,
        ),
        (
            include_bytes!("../../../fuzz/corpus/keyctl_adversary/seed-f3-kicked-rejoin"),
            F3_KICKED_REJOIN,
        ),
        (
            include_bytes!(
                "../../../fuzz/corpus/keyctl_adversary/seed-f4-new-leader-missed-rotation"
            ),
            F4_NEW_LEADER_MISSED_ROTATION,
        ),
        (
            include_bytes!("../../../fuzz/corpus/keyctl_adversary/seed-f4-fresh-session-leader"),
            F4_FRESH_SESSION_LEADER,
        ),
    ];
    for (bytes, actions) in seeds {
        assert_eq!(Action::decode(bytes), actions);
    }
    let sybils = include_bytes!("../../../fuzz/corpus/keyctl_adversary/seed-f5-sybils");
    assert_eq!(Action::decode(sybils), f5_sybils());
}

/// The same worlds with nothing adversarial in them hold every invariant (so the tests
/// above fail for the finding, not for the harness).
#[test]
fn fair_meeting_with_kick_leave_and_leader_change_holds_everything() {
    let fair = Action::Advance {
        step: 7,
        deliver: true,
    };
    for actions in [
        vec![fair, fair],
        vec![Action::Kick { by: 0, who: 3 }, fair, fair],
        vec![Action::Leave { who: 2 }, fair, Action::Lock { by: 0 }, fair],
        vec![Action::NoticeLeaderChange { who: 1 }, fair, fair],
    ] {
        if let Err(v) = run(&actions, &Invariant::ALL) {
            panic!("{v}\n{actions:?}");
        }
    }
}

/// F5 (I6): keyctl has no participant cap. The board announces fresh identities (each a
/// valid self-signed binding and a nonce for this meeting); the leader admits every one, so
/// every session's peer map and roster, and each rotation's rekeys, grow with what the
/// board posts.
#[test]
// Finding F5 (I6): no participant cap; Sybil identities grow every roster; fixed in keyctl revision 2.
fn f5_injected_identities_grow_the_roster_without_bound() {
    assert_holds(Invariant::I6RosterCap, &f5_sybils());
}

/// Twenty identities announced by the board, then a second of fair board.
fn f5_sybils() -> Vec<Action> {
    let mut actions = vec![Action::InjectIdentity; 20];
    actions.push(Action::Advance {
        step: 3,
        deliver: true,
    });
    actions
}

/// I6's output bounds are sized for every identity the world can hold: with all the Sybils
/// admitted, a leader change and a kick, one input still queues no more than the bounds.
#[test]
fn output_bounds_hold_with_every_sybil_admitted() {
    let fair = Action::Advance {
        step: 3,
        deliver: true,
    };
    let mut actions = vec![Action::InjectIdentity; keyctl_adversary::MAX_INJECTED as usize];
    actions.extend([
        fair,
        Action::NoticeLeaderChange { who: 1 },
        fair,
        Action::Kick { by: 1, who: 3 },
        fair,
        Action::NoticeLeaderChange { who: 2 },
        fair,
    ]);
    if let Err(v) = run(
        &actions,
        &[Invariant::I1RemovedGetsNoNewKey, Invariant::I6StateBound],
    ) {
        panic!("{v}");
    }
}

/// Found by the first campaign after revision 2, and a flaw of the oracle, not of keyctl:
/// a participant whose rekey is withheld while the board delivers nothing retires its older
/// keys (`Event::RetireEpoch`) 200 ms after the certifying heartbeat and so sends under no
/// key at all; I2 counted the retired key as still sending. The sending key is now the newest
/// activated key not yet retired.
#[test]
fn a_participant_that_retired_its_superseded_key_sends_nothing_stale() {
    assert_holds(
        Invariant::I2NoStaleSending,
        &[
            Action::Kick { by: 0, who: 3 },
            Action::Drop {
                to: 1,
                kind: Kind::Rekey,
            },
            Action::Advance {
                step: 1,
                deliver: true,
            },
            Action::Advance {
                step: 21,
                deliver: false,
            },
        ],
    );
    assert_holds(
        Invariant::I2NoStaleSending,
        &[
            Action::NoticeLeaderChange { who: 255 },
            Action::Flush { to: 255 },
            Action::Leave { who: 255 },
            Action::Drop {
                to: 49,
                kind: Kind::Rekey,
            },
            Action::Advance {
                step: 6,
                deliver: true,
            },
        ],
    );
}

/// Found by the campaign after revision 2, a flaw of the oracle: the board moves the leader
/// role 1 -> 2 -> 1 with nothing delivered in between. Party 2 led briefly, so its chain
/// diverged from party 1's (a partition, whitepaper 3.10: it refuses party 1's heartbeats
/// and leaves at the heartbeat timeout), yet I4 judged it by a heartbeat it accepted from
/// party 1's first leadership. I4 now counts from the first heartbeat of each leadership.
#[test]
fn leader_role_moved_back_and_forth() {
    assert_holds(
        Invariant::I4NewLeaderKey,
        &[
            Action::NoticeLeaderChange { who: 1 },
            Action::Advance {
                step: 7,
                deliver: true,
            },
            Action::NoticeLeaderChange { who: 170 },
            Action::NoticeLeaderChange { who: 85 },
            Action::Advance {
                step: 5,
                deliver: true,
            },
        ],
    );
    assert_holds(
        Invariant::I4NewLeaderKey,
        &[
            Action::NoticeLeaderChange { who: 142 },
            Action::Advance {
                step: 127,
                deliver: true,
            },
            Action::NoticeLeaderChange { who: 13 },
            Action::NoticeLeaderChange { who: 142 },
            Action::Advance {
                step: 127,
                deliver: true,
            },
        ],
    );
}

/// Found by the campaign after revision 2, a flaw of the oracle: under a new leader, the
/// board withholds one participant's kick rekey; the participant retires its older key 200 ms
/// later and asks for the new one, sending nothing meanwhile, and I4 counted that as sending
/// under a key the new leader did not make.
#[test]
fn a_participant_asking_for_a_withheld_key_under_a_new_leader_sends_nothing_stale() {
    let actions = [
        Action::NoticeLeaderChange { who: 3 },
        Action::Advance {
            step: 126,
            deliver: true,
        },
        Action::Advance {
            step: 126,
            deliver: true,
        },
        Action::Kick { by: 255, who: 98 },
        Action::Drop {
            to: 253,
            kind: Kind::Rekey,
        },
        Action::Advance {
            step: 126,
            deliver: true,
        },
    ];
    assert_holds(Invariant::I4NewLeaderKey, &actions);
    assert_holds(Invariant::I2NoStaleSending, &actions);
}

//! `veil board --tamper SCENARIO` as a separate process, attacking in-process participants
//! over TLS: each scenario must be detected (an alert, a refusal or leaving), never silently
//! accepted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod board_util;

use std::time::Duration;

use board_util::{BoardProcess, converged, wait_until};
use keyctl::meeting::{Alert, LeftReason};

const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn swap_key_is_caught_by_the_binding_signature() {
    let board = BoardProcess::start(&["--tamper", "swap-key"]);
    let mut a = board.join("m-swap", "alice");
    let mut b = board.join("m-swap", "bob");
    let bob = b.p.me().clone();
    // whitepaper 3.7.4 step 5: the leader verifies the binding and aborts the join.
    wait_until(&mut [&mut a], LIMIT, "the leader's alert", |m| {
        m[0].alerts.contains(&Alert::BadBindingSignature {
            participant: bob.clone(),
        })
    });
    std::thread::sleep(Duration::from_millis(500));
    b.drain();
    assert!(b.keys.is_empty(), "bob got a key through a swapped binding");
    a.drain();
    assert!(
        a.latest()
            .is_none_or(|u| !u.roster.values().any(|p| p == &bob)),
        "the leader keyed a swapped binding"
    );
    assert!(board.admin_get("/stats").contains("\"tampered\""));
}

#[test]
fn replayed_posts_from_an_earlier_instance_are_rejected() {
    let board = BoardProcess::start(&["--tamper", "replay-instance"]);
    {
        let mut a = board.join("m-replay", "alice");
        let mut b = board.join("m-replay", "bob");
        wait_until(
            &mut [&mut a, &mut b],
            LIMIT,
            "the first instance's key",
            |m| converged(m, 2),
        );
        a.p.leave().unwrap();
        b.p.leave().unwrap();
    }
    // The board drops an instance when its last participant leaves; wait for that.
    let deadline = std::time::Instant::now() + LIMIT;
    while !board.admin_get("/stats").contains("\"meetings\": 0") {
        assert!(
            std::time::Instant::now() < deadline,
            "the instance never ended"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut a = board.join("m-replay", "alice");
    let mut b = board.join("m-replay", "bob");
    wait_until(&mut [&mut a, &mut b], LIMIT, "the replay detected", |m| {
        m.iter().all(|x| x.alerts.contains(&Alert::WrongMeeting))
    });
    // The replay changed nothing: the new instance still agrees on a key of its own.
    wait_until(
        &mut [&mut a, &mut b],
        LIMIT,
        "the new instance's key",
        |m| converged(m, 2),
    );
}

#[test]
fn withheld_heartbeats_end_the_session() {
    let board = BoardProcess::start(&["--tamper", "withhold-heartbeats"]);
    let _a = board.join("m-hb", "alice");
    let mut b = board.join("m-hb", "bob");
    let mut c = board.join("m-hb", "carol");
    wait_until(&mut [&mut b, &mut c], LIMIT, "both leaving", |m| {
        m.iter()
            .all(|x| x.left == Some(LeftReason::HeartbeatsMissed))
    });
    for m in [&b, &c] {
        assert!(m.keys.is_empty(), "a key no heartbeat certified");
        assert_eq!(m.p.status().ended.as_deref(), Some("HeartbeatsMissed"));
    }
}

#[test]
fn a_partitioned_meeting_is_flagged_by_a_leader_change() {
    let board = BoardProcess::start(&["--tamper", "partition"]);
    let mut a = board.join("m-split", "alice");
    let mut b = board.join("m-split", "bob");
    let mut c = board.join("m-split", "carol");
    wait_until(&mut [&mut a, &mut b, &mut c], LIMIT, "three keyed", |m| {
        converged(m, 3)
    });
    let first_code = a.p.status().security_code.unwrap();
    // The fourth join triggers the split: alice, carol | bob, dave.
    let mut d = board.join("m-split", "dave");
    let bob = b.p.me().clone();
    wait_until(
        &mut [&mut b, &mut d],
        LIMIT,
        "bob's half keyed by bob",
        |m| converged(m, 2) && m[0].p.status().is_leader,
    );
    wait_until(&mut [&mut a, &mut c], LIMIT, "alice's half rekeyed", |m| {
        converged(m, 2)
    });
    // whitepaper 3.8: a leader change prompts everyone to compare the new leader's security
    // code out of band; in bob's half it no longer matches the one the meeting compared.
    let code = b.p.status().security_code.unwrap();
    assert_ne!(code, first_code);
    assert_eq!(d.p.status().security_code.as_deref(), Some(code.as_str()));
    assert!(
        d.alerts.contains(&Alert::VerifySecurityCode {
            leader: bob.clone(),
            code: code.clone(),
        }),
        "{:?}",
        d.alerts
    );
    assert_eq!(c.p.status().security_code, Some(first_code));
    assert_ne!(
        a.latest().unwrap().meeting_key,
        b.latest().unwrap().meeting_key
    );
    // Each half sees the other leave: nothing in-band tells alice or carol that bob and dave
    // did not (see the report on partitions).
    assert_eq!(c.p.status().leaves, 2);
}

//! The board and the participant driver end to end, over real loopback TCP: join, leave,
//! kick, leader change, rejoin, lock, heartbeat loss.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod board_util;

use std::time::Duration;

use board_util::{Member, converged, plain_board, wait_until};
use keyctl::crypto::SigningKey;
use keyctl::meeting::{Alert, LeftReason};
use keyctl::wire::ParticipantId;
use veil_board::client::ClientTls;
use veil_board::{BoardError, ErrorReason, Tamper};
use veil_cli::meeting::MeetingDriverError;

const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn three_participants_agree_on_key_and_security_code() {
    let board = plain_board(None);
    let mut a = Member::join(&board, "m-join", "alice");
    let mut b = Member::join(&board, "m-join", "bob");
    let mut c = Member::join(&board, "m-join", "carol");
    wait_until(&mut [&mut a, &mut b, &mut c], LIMIT, "a common key", |m| {
        converged(m, 3)
    });
    let code = a.p.status().security_code.unwrap();
    assert_eq!(code.len(), 39);
    for m in [&b, &c] {
        assert_eq!(m.p.status().security_code.as_deref(), Some(code.as_str()));
        assert_eq!(m.p.status().leader, a.p.status().me);
    }
    assert!(a.p.status().is_leader);
    assert_eq!(a.p.status().roster.len(), 3);
    for m in [&a, &b, &c] {
        assert!(m.alerts.is_empty(), "{:?}", m.alerts);
    }
}

fn three(board: &veil_board::BoardHandle, meeting: &str) -> (Member, Member, Member) {
    let mut a = Member::join(board, meeting, "alice");
    let mut b = Member::join(board, meeting, "bob");
    let mut c = Member::join(board, meeting, "carol");
    wait_until(&mut [&mut a, &mut b, &mut c], LIMIT, "a common key", |m| {
        converged(m, 3)
    });
    (a, b, c)
}

fn in_roster(m: &Member, who: &ParticipantId) -> bool {
    m.latest()
        .is_some_and(|u| u.roster.values().any(|p| p == who))
}

#[test]
fn leave_rotates_and_drops_the_leaver_from_the_roster() {
    let board = plain_board(None);
    let (mut a, mut b, c) = three(&board, "m-leave");
    let before = a.latest().unwrap().mk_seq;
    let carol = c.p.me().clone();
    c.p.leave().unwrap();
    wait_until(&mut [&mut a, &mut b], LIMIT, "a rekey without carol", |m| {
        converged(m, 2) && m[0].latest().is_some_and(|u| u.mk_seq > before)
    });
    assert!(!in_roster(&a, &carol));
    assert_eq!(a.p.status().leaves, 1);
    assert_eq!(b.p.status().leaves, 1);
}

#[test]
fn kicked_participant_leaves_and_the_rest_rekey() {
    let board = plain_board(None);
    let (mut a, mut b, mut c) = three(&board, "m-kick");
    let before = a.latest().unwrap().mk_seq;
    let carol = c.p.me().clone();
    a.p.kick(&carol);
    wait_until(&mut [&mut c], LIMIT, "carol kicked", |m| {
        m[0].left == Some(LeftReason::Kicked)
    });
    wait_until(&mut [&mut a, &mut b], LIMIT, "a rekey without carol", |m| {
        converged(m, 2) && m[0].latest().is_some_and(|u| u.mk_seq > before)
    });
    assert!(!in_roster(&b, &carol));
    assert_eq!(c.p.status().ended.as_deref(), Some("Kicked"));
}

#[test]
fn leader_vanishing_gets_a_new_leader_and_a_new_key() {
    let board = plain_board(None);
    let (a, mut b, mut c) = three(&board, "m-leader");
    let before = b.latest().unwrap().mk_seq;
    let old_code = b.p.status().security_code.unwrap();
    a.p.vanish().unwrap();
    wait_until(&mut [&mut b, &mut c], LIMIT, "a key from bob", |m| {
        converged(m, 2) && m[0].latest().is_some_and(|u| u.mk_seq > before)
    });
    let bob = b.p.status();
    assert!(bob.is_leader);
    assert_eq!(c.p.status().leader, bob.me);
    let code = bob.security_code.unwrap();
    assert_ne!(code, old_code);
    assert_eq!(c.p.status().security_code.as_deref(), Some(code.as_str()));
    // whitepaper 3.8: everyone is asked to check the new leader's code.
    assert!(c.alerts.iter().any(|al| matches!(
        al,
        Alert::VerifySecurityCode { code: c2, .. } if *c2 == code
    )));
}

#[test]
fn rejoin_with_the_same_identity_is_the_same_participant() {
    let board = plain_board(None);
    let seed = [7u8; 32];
    let mut a = Member::join(&board, "m-rejoin", "alice");
    let key = || SigningKey::from_seed(&seed).unwrap();
    let bob = || {
        Member::join_with(
            board.addr,
            ClientTls::Plaintext,
            "m-rejoin",
            "bob",
            false,
            key(),
        )
    };
    let mut b = bob();
    wait_until(&mut [&mut a, &mut b], LIMIT, "a common key", |m| {
        converged(m, 2)
    });
    let first_id = b.p.me().clone();
    b.p.leave().unwrap();
    wait_until(&mut [&mut a], LIMIT, "alice alone", |m| converged(m, 1));
    let mut b = bob();
    assert_eq!(b.p.me(), &first_id);
    wait_until(&mut [&mut a, &mut b], LIMIT, "bob back in", |m| {
        converged(m, 2)
    });
    // A different identity under the same name is a different participant.
    let other = Member::join(&board, "m-rejoin", "bob");
    assert_ne!(other.p.me(), &first_id);
}

#[test]
fn same_identity_twice_at_once_is_refused() {
    let board = plain_board(None);
    let key = || SigningKey::from_seed(&[9u8; 32]).unwrap();
    let _first = Member::join_with(
        board.addr,
        ClientTls::Plaintext,
        "m-dup",
        "dan",
        false,
        key(),
    );
    let second = board_util::spawn(
        board.addr,
        ClientTls::Plaintext,
        "m-dup",
        "dan",
        false,
        key(),
    );
    assert!(
        matches!(
            second,
            Err(MeetingDriverError::Board(BoardError::Refused(_)))
        ),
        "{second:?}"
    );
    assert_eq!(board.stats.errors(ErrorReason::DuplicateParticipant), 1);
}

#[test]
fn locked_meeting_refuses_a_newcomer() {
    let board = plain_board(None);
    let (mut a, mut b, _c) = three(&board, "m-locked");
    a.p.lock();
    wait_until(&mut [&mut a, &mut b], LIMIT, "the lock in the LPL", |m| {
        m.iter().all(|x| x.p.status().locked)
    });
    let seq = a.latest().unwrap().mk_seq;
    let mut stranger = Member::join(&board, "m-locked", "mallory");
    let who = stranger.p.me().clone();
    wait_until(&mut [&mut a], LIMIT, "the refusal", |m| {
        m[0].alerts.contains(&Alert::RefusedLocked {
            participant: who.clone(),
        })
    });
    std::thread::sleep(Duration::from_millis(500));
    stranger.drain();
    assert!(stranger.keys.is_empty(), "a refused newcomer got a key");
    a.drain();
    assert!(!in_roster(&a, &who));
    assert_eq!(
        a.latest().unwrap().mk_seq,
        seq,
        "no rekey for a refused join"
    );
}

#[test]
fn withheld_heartbeats_make_participants_leave() {
    let board = plain_board(Some(Tamper::WithholdHeartbeats));
    let mut a = Member::join(&board, "m-hb", "alice");
    let mut b = Member::join(&board, "m-hb", "bob");
    // whitepaper 3.7.7: leave after `missed_heartbeats` periods (here 8 x 200 ms).
    wait_until(&mut [&mut b], LIMIT, "bob leaving", |m| {
        m[0].left == Some(LeftReason::HeartbeatsMissed)
    });
    assert!(b.keys.is_empty(), "a key certified by no heartbeat");
    a.drain();
    assert!(board.stats.snapshot().tampered > 0);
}

#[test]
fn a_cohost_named_by_the_board_can_have_the_meeting_locked() {
    let board = plain_board(None);
    let mut a = Member::join(&board, "m-cohost", "alice");
    let mut b = Member::join_with(
        board.addr,
        ClientTls::Plaintext,
        "m-cohost",
        "bob",
        true,
        board_util::identity(),
    );
    let mut c = Member::join(&board, "m-cohost", "carol");
    wait_until(&mut [&mut a, &mut b, &mut c], LIMIT, "a common key", |m| {
        converged(m, 3)
    });
    // carol is no co-host: the leader ignores her request.
    c.p.request_lock(true);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!a.p.status().locked);
    assert!(a.p.status().is_leader && !b.p.status().is_leader);
    b.p.request_lock(true);
    wait_until(&mut [&mut a, &mut b, &mut c], LIMIT, "the lock", |m| {
        m.iter().all(|x| x.p.status().locked)
    });
}

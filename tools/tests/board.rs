//! The board and the participant driver end to end, over real loopback TCP: join, leave,
//! kick, leader change, rejoin, lock, heartbeat loss.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod board_util;

use std::time::Duration;

use board_util::{Member, converged, plain_board, wait_until};

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

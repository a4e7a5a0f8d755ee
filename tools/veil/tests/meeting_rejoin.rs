//! Meeting-mode sidecars rejoin by themselves: the board process restarted on the same port
//! (same certificate, a new meeting instance) and every sidecar back in the meeting without
//! being restarted, under a new leader and security code, with media end to end through the
//! relay; `--no-rejoin` keeps the old behaviour; SIGTERM during the backoff exits at once.
//! (That a kicked sidecar stays out is in meeting_e2e.rs, with the kick.) Processes on
//! loopback with `--test-timings fast`, like meeting_e2e.rs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod media_support;

use std::time::{Duration, Instant};

use media_support::meeting::{
    LIMIT, Net, converge, count, has_key, holds, media_blocked, media_flows, text,
};
use serde_json::Value;

#[test]
fn every_sidecar_rejoins_a_restarted_board_and_media_flows_again() {
    let mut net = Net::restartable("rejoin-board");
    let mut a = net.join_with("m", "alice", &["--host"]);
    let mut b = net.join("m", "bob");
    let mut c = net.join("m", "carol");
    converge(&[&a, &b, &c], 3, 1);
    media_flows(&mut a, &[&b, &c]);
    let before = a.status().unwrap();
    let pids: Vec<u32> = [&a, &b, &c].iter().map(|s| s.proc.child.id()).collect();

    net.restart_board();
    for s in [&a, &b, &c] {
        s.wait(LIMIT, "a rejoin into the new meeting instance", |st| {
            count(st, "rejoins") >= 1 && st["meeting"] != before["meeting"] && has_key(st)
        });
    }
    converge(&[&a, &b, &c], 3, 1);
    let statuses: Vec<Value> = [&a, &b, &c].iter().map(|s| s.status().unwrap()).collect();
    let leaders: Vec<&Value> = statuses.iter().filter(|s| s["is_leader"] == true).collect();
    assert_eq!(leaders.len(), 1, "one leader: {statuses:#?}");
    for s in &statuses {
        assert_eq!(s["meeting"], statuses[0]["meeting"], "{statuses:#?}");
        assert_eq!(s["leader"], leaders[0]["me"], "{statuses:#?}");
        assert_eq!(
            s["security_code"], leaders[0]["security_code"],
            "{statuses:#?}"
        );
        assert!(s["security_code"].is_string(), "{s}");
        assert!(text(s, "last_end").starts_with("board lost"), "{s}");
        assert!(s["ended"].is_null() && s["rejoining"] == false, "{s}");
        assert!(s["meeting"].as_str().unwrap().starts_with("m/"), "{s}");
    }
    // Each printed the new leader's code on stdout, as it did the first one's.
    for s in [&mut a, &mut b, &mut c] {
        let code = s.status().unwrap()["security_code"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut printed = Vec::new();
        while printed.len() < 2 {
            printed.push(s.proc.line());
        }
        assert!(
            printed[1].contains(&code),
            "{}: printed {printed:?}",
            s.name
        );
    }
    // Media end to end through the relay again, every way.
    media_flows(&mut a, &[&b, &c]);
    media_flows(&mut b, &[&a, &c]);
    media_flows(&mut c, &[&a, &b]);
    for (s, pid) in [&mut a, &mut b, &mut c].into_iter().zip(pids) {
        assert_eq!(s.proc.child.id(), pid);
        assert!(
            s.proc.child.try_wait().unwrap().is_none(),
            "{} exited",
            s.name
        );
        let status = s.status().unwrap();
        assert_eq!(status["packets"]["drops"]["auth_failure"], 0, "{status}");
        assert!(
            s.proc.log().contains("rejoining the meeting attempt=1"),
            "{}",
            s.proc.log()
        );
    }
}

#[test]
fn no_rejoin_keeps_the_old_behaviour() {
    let mut net = Net::restartable("rejoin-off");
    let mut a = net.join_with("m", "alice", &["--host"]);
    let mut b = net.join_with("m", "bob", &["--no-rejoin"]);
    converge(&[&a, &b], 2, 1);
    net.restart_board();
    b.wait(LIMIT, "the session to end", |s| {
        text(s, "ended").starts_with("board lost")
    });
    a.wait(LIMIT, "alice back in the meeting", |s| {
        count(s, "rejoins") >= 1 && has_key(s)
    });
    holds(&b, Duration::from_secs(2), |s| {
        text(s, "ended").starts_with("board lost")
            && count(s, "rejoin_attempts") == 0
            && count(s, "rejoins") == 0
            && !has_key(s)
    });
    // Bob's media is dropped, never sent in the clear; alice is alone in the new instance.
    media_blocked(&mut b, &[&a]);
    let status = b.status().unwrap();
    assert!(
        count(&status["packets"]["send_drops"], "no_key") >= 20,
        "{status}"
    );
    media_blocked(&mut a, &[&b]);
    b.proc.stop(Duration::from_secs(5));
    let help = media_support::veil()
        .args(["sidecar", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--no-rejoin"));
}

#[test]
fn sigterm_during_the_backoff_exits_at_once() {
    let mut net = Net::restartable("rejoin-stop");
    let a = net.join_with("m", "alice", &["--host"]);
    converge(&[&a], 1, 1);
    net.stop_board();
    a.wait(LIMIT, "failed rejoin attempts", |s| {
        count(s, "rejoin_attempts") >= 3 && s["rejoining"] == true && !has_key(s)
    });
    let asked = Instant::now();
    a.proc.stop(Duration::from_secs(2));
    assert!(asked.elapsed() < Duration::from_secs(2));
}

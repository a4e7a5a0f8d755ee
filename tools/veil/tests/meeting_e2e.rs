//! Whole meetings as processes on loopback: `veil board`, `veil relay` and one `veil sidecar`
//! per participant in meeting mode (with `--test-timings fast`, so heartbeats come every
//! 200 ms and a session ends after 1 s without one), media flowing between the sidecars'
//! clients. Join, leave, kick through the leader's admin endpoint, a leader that dies, a rejoin
//! with the same identity, a locked meeting refusing a newcomer, heartbeat loss, and each
//! `veil board --tamper` scenario, which the sidecars must detect (an alert, a refusal or
//! leaving, visible in their `/status`), never silently accept.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod media_support;

use std::path::Path;
use std::time::Duration;

use media_support::meeting::{
    LIMIT, Net, Sidecar, converge, count, has_key, holds, media_blocked, media_flows, roster_len,
    slot,
};
use serde_json::Value;

fn alerts(status: &Value) -> String {
    status["alerts"].to_string()
}

#[test]
fn join_leave_and_media_between_three() {
    let net = Net::start("join-leave", None);
    let mut a = net.join_with("m", "alice", &["--host"]);
    let b = net.join("m", "bob");
    let c = net.join("m", "carol");
    let seq = converge(&[&a, &b, &c], 3, 1);
    let code = a.status().unwrap()["security_code"].clone();
    for s in [&b, &c] {
        assert_eq!(s.status().unwrap()["security_code"], code);
    }
    media_flows(&mut a, &[&b, &c]);
    // Bob leaves (SIGTERM: he posts a leave and exits 0); the others rotate the key.
    b.proc.stop(Duration::from_secs(10));
    let after = converge(&[&a, &c], 2, seq + 1);
    assert!(after > seq);
    let status = c.status().unwrap();
    assert!(status["leaves"].as_u64().unwrap() >= 1, "{status}");
    assert!(
        status["roster"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "bob" && e["state"] == "left"),
        "{status}"
    );
    media_flows(&mut a, &[&c]);
    let status = c.status().unwrap();
    assert_eq!(status["packets"]["drops"]["auth_failure"], 0);
}

#[test]
fn the_leader_kicks_through_its_admin_endpoint() {
    let net = Net::start("kick", None);
    let a = net.join_with("m", "alice", &["--host"]);
    let mut b = net.join("m", "bob");
    let c = net.join("m", "carol");
    let seq = converge(&[&a, &b, &c], 3, 1);
    let bob_slot = slot(&b.status().unwrap()).unwrap();
    a.post(&format!("/kick/{bob_slot}"));
    b.wait(LIMIT, "being kicked", |s| s["ended"] == "Kicked");
    // A kick is the leader's decision, not an outage: well past the first rejoin's backoff
    // and a join, bob is still out and never tried to rejoin.
    holds(&b, Duration::from_secs(2), |s| {
        s["ended"] == "Kicked"
            && count(s, "rejoin_attempts") == 0
            && count(s, "rejoins") == 0
            && !has_key(s)
    });
    assert!(!b.proc.log().contains("rejoining the meeting"));
    converge(&[&a, &c], 2, seq + 1);
    // Bob's sidecar dropped every key: his media goes nowhere.
    media_blocked(&mut b, &[&a, &c]);
    let status = b.status().unwrap();
    assert!(status["packets"]["send_drops"]["no_key"].as_u64().unwrap() >= 20);
    // A non-leader's kick is refused by keyctl.
    let seq = Sidecar::mk_seq(&a.status().unwrap());
    let a_slot = slot(&a.status().unwrap()).unwrap();
    c.post(&format!("/kick/{a_slot}"));
    std::thread::sleep(Duration::from_millis(800));
    assert!(a.status().unwrap()["ended"].is_null());
    assert_eq!(Sidecar::mk_seq(&c.status().unwrap()), seq);
}

#[test]
fn a_new_leader_takes_over_when_the_leader_dies() {
    let net = Net::start("leader", None);
    let a = net.join_with("m", "alice", &["--host"]);
    let mut b = net.join("m", "bob");
    let c = net.join("m", "carol");
    let seq = converge(&[&a, &b, &c], 3, 1);
    let old_code = b.status().unwrap()["security_code"].clone();
    a.proc.signal("KILL");
    let after = converge(&[&b, &c], 2, seq + 1);
    assert!(after > seq);
    let (sb, sc) = (b.status().unwrap(), c.status().unwrap());
    assert!(
        sb["is_leader"] == true || sc["is_leader"] == true,
        "{sb} {sc}"
    );
    assert_eq!(sb["leader"], sc["leader"]);
    assert!(!sb["leader"].as_str().unwrap().starts_with("alice"));
    assert_eq!(sb["security_code"], sc["security_code"]);
    assert_ne!(sb["security_code"], old_code, "a new leader, a new code");
    media_flows(&mut b, &[&c]);
}

#[test]
fn the_same_identity_rejoins_as_the_same_participant() {
    let net = Net::start("rejoin", None);
    let identity = net.dir.join("bob.identity");
    let id = identity.to_str().unwrap();
    let mut a = net.join_with("m", "alice", &["--host"]);
    let b = net.join_with("m", "bob", &["--identity", id]);
    converge(&[&a, &b], 2, 1);
    let me = b.status().unwrap()["me"].clone();
    assert!(
        Path::new(&format!("{id}.kwk")).exists(),
        "no key-wrapping key beside the identity"
    );
    b.proc.stop(Duration::from_secs(10));
    let b = net.join_with("m", "bob", &["--identity", id]);
    converge(&[&a, &b], 2, 1);
    assert_eq!(b.status().unwrap()["me"], me);
    media_flows(&mut a, &[&b]);
    // Another identity is another participant.
    let other = net.join_with("m", "bob2", &[]);
    assert_ne!(other.status().unwrap()["me"], me);
}

#[test]
fn a_locked_meeting_refuses_a_newcomer() {
    let net = Net::start("locked", None);
    let a = net.join_with("m", "alice", &["--host"]);
    let b = net.join("m", "bob");
    let seq = converge(&[&a, &b], 2, 1);
    a.post("/lock");
    for s in [&a, &b] {
        s.wait(LIMIT, "the lock", |st| st["locked"] == true);
    }
    let mut mallory = net.join("m", "mallory");
    a.wait(LIMIT, "the refusal alert", |s| {
        alerts(s).contains("RefusedLocked")
    });
    std::thread::sleep(Duration::from_millis(500));
    let status = mallory.status().unwrap();
    assert!(!has_key(&status), "a refused newcomer got a key: {status}");
    // Without a key its media is dropped and counted, never sent in the clear.
    media_blocked(&mut mallory, &[&a, &b]);
    let status = mallory.status().unwrap();
    assert!(
        status["packets"]["send_drops"]["no_key"].as_u64().unwrap() >= 20,
        "{status}"
    );
    assert_eq!(status["packets"]["sealed"], 0);
    assert_eq!(
        Sidecar::mk_seq(&a.status().unwrap()),
        seq,
        "a rekey for a refused join"
    );
}

/// The key box each present member got, as `status` reports it (`roster[].key_delivery`).
fn key_boxes(status: &Value) -> Vec<(String, String)> {
    status["roster"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["state"] == "present")
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["key_delivery"].as_str().unwrap_or("none").to_owned(),
            )
        })
        .collect()
}

/// `--pq required` on the host: a sidecar without an ML-KEM key (`--pq off`) is refused with an
/// alert and gets no key; every member's key is boxed hybrid, as every `/status` shows.
#[test]
fn a_pq_required_meeting_refuses_a_classical_sidecar() {
    let net = Net::start("pq-required", None);
    let a = net.join_with("m", "alice", &["--host", "--pq", "required"]);
    let b = net.join("m", "bob");
    let seq = converge(&[&a, &b], 2, 1);
    let mallory = net.join_with("m", "mallory", &["--pq", "off"]);
    a.wait(LIMIT, "the refusal alert", |s| {
        alerts(s).contains("PqRequired")
    });
    std::thread::sleep(Duration::from_millis(500));
    let status = mallory.status().unwrap();
    assert!(!has_key(&status), "a classical joiner got a key: {status}");
    assert_eq!(Sidecar::mk_seq(&a.status().unwrap()), seq);
    for s in [&a, &b] {
        let status = s.status().unwrap();
        assert_eq!(status["pq_policy"], "required", "{status}");
        assert_eq!(status["classical"], serde_json::json!([]), "{status}");
        assert_eq!(
            key_boxes(&status),
            [
                ("alice".into(), "leader".into()),
                ("bob".into(), "hybrid".into())
            ],
            "{status}"
        );
    }
}

/// `--pq required` on a participant in a meeting whose host is `preferred`: the leader's key is
/// refused with an alert, the session ends with `WeakPqPolicy`, and the sidecar stays out (a
/// rejoin would meet the same leader) without any key.
#[test]
fn a_required_sidecar_leaves_a_weaker_meeting_and_stays_out() {
    let net = Net::start("pq-weak-leader", None);
    let _a = net.join_with("m", "alice", &["--host"]);
    let b = net.join_with("m", "bob", &["--pq", "required"]);
    b.wait(LIMIT, "leaving a weaker meeting", |s| {
        s["ended"] == "WeakPqPolicy"
    });
    holds(&b, Duration::from_secs(2), |s| {
        s["ended"] == "WeakPqPolicy"
            && alerts(s).contains("WeakPqPolicy")
            && count(s, "rejoin_attempts") == 0
            && !has_key(s)
    });
    assert!(!b.proc.log().contains("rejoining the meeting"));
}

/// `--pq preferred` (the default): a member without an ML-KEM key is keyed classically, and
/// every other member sees it named in `/status`.
#[test]
fn a_preferred_meeting_shows_who_got_the_key_classically() {
    let net = Net::start("pq-preferred", None);
    let a = net.join_with("m", "alice", &["--host"]);
    let b = net.join("m", "bob");
    let c = net.join_with("m", "carol", &["--pq", "off"]);
    converge(&[&a, &b, &c], 3, 1);
    for s in [&a, &b, &c] {
        let status = s.wait(LIMIT, "carol listed as classical", |st| {
            st["classical"].to_string().contains("carol")
        });
        assert_eq!(status["pq_policy"], "preferred", "{status}");
        assert_eq!(
            key_boxes(&status),
            [
                ("alice".into(), "leader".into()),
                ("bob".into(), "hybrid".into()),
                ("carol".into(), "classical".into())
            ],
            "{status}"
        );
    }
}

#[test]
fn heartbeat_loss_ends_the_session_and_drops_the_keys() {
    let net = Net::start("heartbeats", None);
    let mut a = net.join_with("m", "alice", &["--host"]);
    let mut b = net.join("m", "bob");
    let c = net.join("m", "carol");
    converge(&[&a, &b, &c], 3, 1);
    // The leader freezes: its connection stays open, its heartbeats stop.
    a.proc.signal("STOP");
    for s in [&b, &c] {
        s.wait(
            LIMIT,
            "leaving on missed heartbeats, then rejoining",
            |st| st["last_end"] == "HeartbeatsMissed" && st["rejoin_attempts"].as_u64() >= Some(1),
        );
    }
    // Rejoined under the same frozen leader: no key, so no media.
    media_blocked(&mut b, &[&c]);
    assert!(!has_key(&b.status().unwrap()));
    // The leader thaws and keys the rejoined sessions; nobody was restarted.
    a.proc.signal("CONT");
    converge(&[&a, &b, &c], 3, 1);
    for s in [&b, &c] {
        let status = s.status().unwrap();
        assert!(status["rejoins"].as_u64() >= Some(1), "{status}");
        assert!(status["ended"].is_null(), "{status}");
    }
    media_flows(&mut a, &[&b, &c]);
    media_flows(&mut b, &[&a, &c]);
}

/// A board `--tamper SCENARIO` that rewrites bob's announcement: the leader's binding check
/// refuses it with an alert, and bob is never keyed nor listed.
fn rewritten_announcement_is_refused(scenario: &str) {
    let net = Net::start(scenario, Some(scenario));
    let a = net.join_with("m", "alice", &["--host"]);
    let b = net.join("m", "bob");
    a.wait(LIMIT, "the bad binding alert", |s| {
        alerts(s).contains("BadBindingSignature")
    });
    std::thread::sleep(Duration::from_millis(500));
    let status = b.status().unwrap();
    assert!(
        !has_key(&status),
        "bob got a key through a {scenario} binding: {status}"
    );
    assert_eq!(
        roster_len(&a.status().unwrap()),
        1,
        "the leader keyed a {scenario} binding"
    );
}

/// `--tamper strip-pq`: the board strips bob's ML-KEM key so the leader would box his key
/// classically; the binding signature covers the key, so the downgrade is caught.
#[test]
fn tamper_strip_pq_is_detected() {
    rewritten_announcement_is_refused("strip-pq");
}

/// `--tamper strip-pq-sig` (issue 16 part 2): the board drops the ML-DSA half of every
/// hybrid-signed post and delivers the classical message it carries. The leader refuses bob's
/// stripped announcement (a classical signature from a hybrid identity) with an alert, and
/// bob refuses alice's stripped links and heartbeats the same way: bob is never listed nor
/// keyed.
#[test]
fn tamper_strip_pq_sig_is_detected() {
    let net = Net::start("strip-pq-sig", Some("strip-pq-sig"));
    let a = net.join_with("m", "alice", &["--host"]);
    let b = net.join("m", "bob");
    for s in [&a, &b] {
        let status = s.wait(LIMIT, "the stripped-signature alert", |st| {
            alerts(st).contains("ClassicalSignatureRefused")
        });
        assert_eq!(status["identity"], "hybrid", "{status}");
    }
    std::thread::sleep(Duration::from_millis(500));
    let status = b.status().unwrap();
    assert!(!has_key(&status), "bob got a key: {status}");
    assert_eq!(roster_len(&a.status().unwrap()), 1, "the leader listed bob");
}

#[test]
fn tamper_swap_key_is_detected() {
    rewritten_announcement_is_refused("swap-key");
}

#[test]
fn tamper_replayed_instance_is_detected() {
    let net = Net::start("replay", Some("replay-instance"));
    {
        let a = net.join_with("m", "alice", &["--host"]);
        let b = net.join("m", "bob");
        converge(&[&a, &b], 2, 1);
        b.proc.stop(Duration::from_secs(10));
        a.proc.stop(Duration::from_secs(10));
    }
    // The board ends the instance when its last participant leaves; the next is fresh.
    std::thread::sleep(Duration::from_millis(500));
    let a = net.join_with("m", "alice", &["--host"]);
    let b = net.join("m", "bob");
    for s in [&a, &b] {
        s.wait(LIMIT, "the replay detected", |st| {
            alerts(st).contains("WrongMeeting")
        });
    }
    converge(&[&a, &b], 2, 1);
}

#[test]
fn tamper_withheld_heartbeats_end_the_sessions() {
    let net = Net::start("withhold", Some("withhold-heartbeats"));
    let _a = net.join_with("m", "alice", &["--host"]);
    let b = net.join("m", "bob");
    let c = net.join("m", "carol");
    for s in [&b, &c] {
        // They leave, rejoin, and leave again: never keyed.
        let status = s.wait(LIMIT, "leaving", |st| st["last_end"] == "HeartbeatsMissed");
        assert!(!has_key(&status), "a key no heartbeat certified: {status}");
    }
    std::thread::sleep(Duration::from_millis(1500));
    for s in [&b, &c] {
        let status = s.status().unwrap();
        assert!(!has_key(&status), "a key no heartbeat certified: {status}");
    }
}

#[test]
fn tamper_partition_shows_two_security_codes() {
    let net = Net::start("partition", Some("partition"));
    let a = net.join_with("m", "alice", &["--host"]);
    let b = net.join("m", "bob");
    let c = net.join("m", "carol");
    let d = net.join("m", "dave");
    converge(&[&a, &c], 2, 1);
    converge(&[&b, &d], 2, 1);
    let code = |s: &Sidecar| s.status().unwrap()["security_code"].clone();
    assert_eq!(code(&a), code(&c));
    assert_eq!(code(&b), code(&d));
    assert_ne!(
        code(&a),
        code(&b),
        "a partition must show in the security codes"
    );
}

#[test]
fn exactly_one_key_source_and_a_way_to_trust_the_board() {
    let common = [
        "sidecar",
        "--local-listen",
        "127.0.0.1:0",
        "--local-deliver",
        "127.0.0.1:9",
        "--bind",
        "127.0.0.1:0",
        "--remote",
        "127.0.0.1:9",
    ];
    let run = |extra: &[&str]| {
        let out = media_support::veil()
            .args(common)
            .args(extra)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{extra:?} was accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let both = run(&[
        "--key-file",
        "k.toml",
        "--sender-slot",
        "0",
        "--board",
        "127.0.0.1:7700",
        "--meeting",
        "m",
        "--name",
        "n",
    ]);
    assert!(both.contains("cannot be used with"), "{both}");
    let neither = run(&[]);
    assert!(
        neither.contains("--key-file") && neither.contains("--board"),
        "{neither}"
    );
    let half = run(&["--key-file", "k.toml"]);
    assert!(half.contains("--sender-slot"), "{half}");
    let untrusted = run(&["--board", "127.0.0.1:7700", "--meeting", "m", "--name", "n"]);
    assert!(untrusted.contains("--board-fingerprint"), "{untrusted}");
}

//! Whole meetings as processes on loopback: `veil board`, `veil relay` and one `veil sidecar`
//! per participant in meeting mode (with `--test-timings fast`, so heartbeats come every
//! 200 ms and a session ends after 1 s without one), media flowing between the sidecars'
//! clients. Join, leave, kick through the leader's admin endpoint, a leader that dies, a rejoin
//! with the same identity, a locked meeting refusing a newcomer, heartbeat loss, and each
//! `veil board --tamper` scenario, which the sidecars must detect (an alert, a refusal or
//! leaving, visible in their `/status`), never silently accept.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod media_support;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use media_support::{Collector, Proc, Relay, free_tcp, free_udp, http, scratch_dir, veil};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(20);

/// A board and a relay for one test.
struct Net {
    dir: PathBuf,
    _board: Proc,
    board_addr: SocketAddr,
    fingerprint: String,
    relay: Relay,
}

impl Net {
    /// A TLS board (its fingerprint pinned by the sidecars), optionally tampering.
    fn start(name: &str, tamper: Option<&str>) -> Self {
        let dir = scratch_dir(name);
        let mut cmd = veil();
        cmd.args(["board", "--listen", "127.0.0.1:0"]);
        if let Some(scenario) = tamper {
            cmd.args(["--tamper", scenario]);
        }
        let mut board = Proc::spawn(cmd, &dir, "board");
        let mut board_addr = None;
        let mut fingerprint = None;
        while board_addr.is_none() || fingerprint.is_none() {
            let line = board.line();
            assert!(!line.is_empty(), "the board exited: {}", board.log());
            if let Some(rest) = line.split_once("listening on ") {
                board_addr = rest.1.split_whitespace().next().map(|a| a.parse().unwrap());
            }
            if let Some(rest) = line.split_once("fingerprint: ") {
                fingerprint = Some(rest.1.trim().to_owned());
            }
        }
        let relay = Relay::start(&dir, &[]);
        Self {
            dir,
            _board: board,
            board_addr: board_addr.unwrap(),
            fingerprint: fingerprint.unwrap(),
            relay,
        }
    }

    fn join(&self, meeting: &str, name: &str) -> Sidecar {
        self.join_with(meeting, name, &[])
    }

    fn join_with(&self, meeting: &str, name: &str, extra: &[&str]) -> Sidecar {
        let sink = Collector::new();
        let listen = free_udp();
        let admin = free_tcp();
        let mut cmd = veil();
        cmd.arg("sidecar")
            .args(["--board", &self.board_addr.to_string()])
            .args(["--board-fingerprint", &self.fingerprint])
            .args(["--meeting", meeting, "--name", name])
            .args(["--test-timings", "fast"])
            .args(["--local-listen", &listen.to_string()])
            .args(["--local-deliver", &sink.addr().to_string()])
            .args(["--bind", &free_udp().to_string()])
            .args(["--remote", &self.relay.media.to_string()])
            .args(["--admin", &admin.to_string()])
            .args(["--engine", "mio", "--workers", "1"])
            .args(extra);
        let proc = Proc::spawn(cmd, &self.dir, name);
        let sidecar = Sidecar {
            name: name.to_owned(),
            proc,
            admin,
            listen,
            sink,
            client: UdpSocket::bind("127.0.0.1:0").unwrap(),
            sent: 0,
        };
        sidecar.wait(LIMIT, "its admin endpoint", |_| true);
        sidecar
    }
}

struct Sidecar {
    name: String,
    proc: Proc,
    admin: SocketAddr,
    listen: SocketAddr,
    sink: Collector,
    client: UdpSocket,
    sent: u32,
}

impl Sidecar {
    fn status(&self) -> Option<Value> {
        serde_json::from_str(&http(self.admin, "GET", "/status")?).ok()
    }

    /// Waits until `check` holds for this sidecar's status.
    fn wait(&self, limit: Duration, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.status()
                && check(&status)
            {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{}: timed out waiting for {what}; status {:?}\nlog:\n{}",
                self.name,
                self.status(),
                self.proc.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn mk_seq(status: &Value) -> u64 {
        status["mk_seq"].as_u64().unwrap_or(0)
    }

    fn post(&self, path: &str) {
        assert!(
            http(self.admin, "POST", path).is_some(),
            "{}: POST {path} refused",
            self.name
        );
    }

    /// Sends `n` numbered packets from this participant's client through its sidecar.
    fn send(&mut self, n: u32) -> Vec<Vec<u8>> {
        let mut sent = Vec::new();
        for _ in 0..n {
            let mut p = format!("{}:{}:", self.name, self.sent).into_bytes();
            p.resize(200, b'.');
            self.client.send_to(&p, self.listen).unwrap();
            sent.push(p);
            self.sent += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        sent
    }
}

fn slot(status: &Value) -> Option<u64> {
    status["sender_slot"].as_u64()
}

fn has_key(status: &Value) -> bool {
    Sidecar::mk_seq(status) > 0 && slot(status).is_some()
}

fn roster_len(status: &Value) -> usize {
    status["roster"]
        .as_array()
        .map_or(0, |r| r.iter().filter(|e| e["state"] == "present").count())
}

/// Waits until everyone holds the same mkSeqNum, at least `min`, and lists `present` members;
/// then waits past the activation delay so everyone sends with it. Returns that mkSeqNum.
fn converge(members: &[&Sidecar], present: usize, min: u64) -> u64 {
    let deadline = Instant::now() + LIMIT;
    loop {
        let statuses: Vec<Value> = members.iter().filter_map(|m| m.status()).collect();
        let seqs: Vec<u64> = statuses.iter().map(Sidecar::mk_seq).collect();
        if statuses.len() == members.len()
            && seqs.iter().all(|s| *s == seqs[0] && *s >= min)
            && statuses
                .iter()
                .all(|s| has_key(s) && roster_len(s) == present)
        {
            std::thread::sleep(Duration::from_millis(400));
            return seqs[0];
        }
        assert!(Instant::now() < deadline, "no convergence: {statuses:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `from` sends 20 packets; each of `to` must deliver exactly those, in order.
fn media_flows(from: &mut Sidecar, to: &[&Sidecar]) {
    for t in to {
        t.sink.take(Duration::from_millis(50));
    }
    let sent = from.send(20);
    for t in to {
        let got = t.sink.take(Duration::from_millis(300));
        assert!(
            got == sent,
            "{} -> {}: {} of {} packets arrived",
            from.name,
            t.name,
            got.len(),
            sent.len()
        );
    }
}

/// `from` sends 20 packets; none of `to` may deliver any.
fn media_blocked(from: &mut Sidecar, to: &[&Sidecar]) {
    for t in to {
        t.sink.take(Duration::from_millis(50));
    }
    from.send(20);
    for t in to {
        let got = t.sink.take(Duration::from_millis(300));
        assert!(
            got.is_empty(),
            "{} -> {}: media got through",
            from.name,
            t.name
        );
    }
}

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
    let mallory = net.join("m", "mallory");
    a.wait(LIMIT, "the refusal alert", |s| {
        alerts(s).contains("RefusedLocked")
    });
    std::thread::sleep(Duration::from_millis(500));
    let status = mallory.status().unwrap();
    assert!(!has_key(&status), "a refused newcomer got a key: {status}");
    assert_eq!(
        Sidecar::mk_seq(&a.status().unwrap()),
        seq,
        "a rekey for a refused join"
    );
}

#[test]
fn heartbeat_loss_ends_the_session_and_drops_the_keys() {
    let net = Net::start("heartbeats", None);
    let a = net.join_with("m", "alice", &["--host"]);
    let mut b = net.join("m", "bob");
    let c = net.join("m", "carol");
    converge(&[&a, &b, &c], 3, 1);
    // The leader freezes: its connection stays open, its heartbeats stop.
    a.proc.signal("STOP");
    for s in [&b, &c] {
        s.wait(LIMIT, "leaving on missed heartbeats", |st| {
            st["ended"] == "HeartbeatsMissed"
        });
    }
    media_blocked(&mut b, &[&c]);
    a.proc.signal("CONT");
}

#[test]
fn tamper_swap_key_is_detected() {
    let net = Net::start("swap-key", Some("swap-key"));
    let a = net.join_with("m", "alice", &["--host"]);
    let b = net.join("m", "bob");
    a.wait(LIMIT, "the bad binding alert", |s| {
        alerts(s).contains("BadBindingSignature")
    });
    std::thread::sleep(Duration::from_millis(500));
    let status = b.status().unwrap();
    assert!(
        !has_key(&status),
        "bob got a key through a swapped binding: {status}"
    );
    assert_eq!(
        roster_len(&a.status().unwrap()),
        1,
        "the leader keyed a swapped binding"
    );
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
        let status = s.wait(LIMIT, "leaving", |st| st["ended"] == "HeartbeatsMissed");
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

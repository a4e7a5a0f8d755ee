//! Two `veil sidecar` processes back to back on loopback, through a tapping relay:
//! 100k packets each way arrive intact in both modes and both engines, the network side never
//! carries the plaintext, tampered packets are rejected and counted, and a SIGHUP rotation under
//! load loses nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod media_support;

use media_support::{free_tcp, free_udp as free_addr, scratch_dir, veil};

const MARKER: &[u8] = b"PLAINTEXT-MARKER";
const BURST: usize = 64;

fn keygen() -> String {
    let out = veil()
        .args(["keygen", "--psk", "--meeting", "test", "--slots", "2"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

struct Sidecar {
    child: Child,
    admin: SocketAddr,
    local_listen: SocketAddr,
    bind: SocketAddr,
}

struct Plan {
    local_listen: SocketAddr,
    local_deliver: SocketAddr,
    /// `--local-client`; `None` leaves the default, `--local-deliver`'s exact address.
    local_client: Option<SocketAddr>,
    bind: SocketAddr,
    remote: SocketAddr,
    slot: u32,
}

impl Sidecar {
    fn start(plan: &Plan, key_file: &Path, engine: &str, rtp: bool, workers: usize) -> Self {
        let admin = free_tcp();
        let mut cmd = veil();
        cmd.arg("sidecar")
            .args(["--local-listen", &plan.local_listen.to_string()])
            .args(["--local-deliver", &plan.local_deliver.to_string()])
            .args(["--bind", &plan.bind.to_string()])
            .args(["--remote", &plan.remote.to_string()])
            .args(["--key-file", key_file.to_str().unwrap()])
            .args(["--sender-slot", &plan.slot.to_string()])
            .args(["--engine", engine, "--workers", &workers.to_string()])
            .args(["--admin", &admin.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(client) = plan.local_client {
            cmd.args(["--local-client", &client.to_string()]);
        }
        if rtp {
            cmd.arg("--rtp");
        }
        let child = cmd.spawn().unwrap();
        let sidecar = Self {
            child,
            admin,
            local_listen: plan.local_listen,
            bind: plan.bind,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while sidecar.try_metrics().is_none() {
            assert!(Instant::now() < deadline, "sidecar did not come up");
            thread::sleep(Duration::from_millis(20));
        }
        sidecar
    }

    fn try_metrics(&self) -> Option<HashMap<String, f64>> {
        media_support::metrics(self.admin)
    }

    fn metric(&self, name: &str) -> f64 {
        self.try_metrics()
            .unwrap()
            .get(name)
            .copied()
            .unwrap_or(-1.0)
    }

    /// Waits (up to 5 s) for a counter to reach `value`: workers publish once per batch.
    fn expect_metric(&self, name: &str, value: f64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.metric(name) != value {
            assert!(
                Instant::now() < deadline,
                "{name} is {} not {value}",
                self.metric(name)
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, and the exit status must be success within five seconds.
    fn stop(mut self) -> String {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit status {status}");
                break;
            }
            assert!(Instant::now() < deadline, "sidecar did not exit on SIGTERM");
            thread::sleep(Duration::from_millis(20));
        }
        let mut log = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut log)
            .unwrap();
        log
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A relay between the two sidecars that looks at everything: it fails the test on plaintext,
/// notes the highest mkSeqNum it saw, keeps the last packets A sent, and reorders now and then.
struct Tap {
    stop: Arc<AtomicBool>,
    /// While set, packets from A are kept in `withheld` instead of forwarded.
    withhold: Arc<AtomicBool>,
    withheld: Arc<Mutex<Vec<Vec<u8>>>>,
    leaks: Arc<AtomicU64>,
    max_mk_seq: Arc<AtomicU32>,
    recent: Arc<Mutex<Vec<Vec<u8>>>>,
    oldest: Arc<Mutex<Option<Vec<u8>>>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Tap {
    fn start(
        a_side: UdpSocket,
        b_side: UdpSocket,
        a_bind: SocketAddr,
        b_bind: SocketAddr,
        rtp: bool,
    ) -> Self {
        let tap = Self {
            stop: Arc::default(),
            withhold: Arc::default(),
            withheld: Arc::default(),
            leaks: Arc::default(),
            max_mk_seq: Arc::default(),
            recent: Arc::default(),
            oldest: Arc::default(),
            threads: Vec::new(),
        };
        let mut threads = Vec::new();
        for (from, to, dest, record) in [
            (
                a_side.try_clone().unwrap(),
                b_side.try_clone().unwrap(),
                b_bind,
                true,
            ),
            (b_side, a_side, a_bind, false),
        ] {
            let (withhold, withheld) = (tap.withhold.clone(), tap.withheld.clone());
            let (stop, leaks, max, recent, oldest) = (
                tap.stop.clone(),
                tap.leaks.clone(),
                tap.max_mk_seq.clone(),
                tap.recent.clone(),
                tap.oldest.clone(),
            );
            from.set_read_timeout(Some(Duration::from_millis(5)))
                .unwrap();
            threads.push(thread::spawn(move || {
                let mut buf = vec![0u8; 4096];
                let mut held: Option<Vec<u8>> = None;
                let mut count = 0u64;
                let prefix = if rtp { 12 } else { 0 };
                while !stop.load(Ordering::SeqCst) {
                    let Ok(len) = from.recv(&mut buf) else {
                        if let Some(p) = held.take() {
                            to.send_to(&p, dest).unwrap();
                        }
                        continue;
                    };
                    let packet = &buf[..len];
                    if packet.windows(MARKER.len()).any(|w| w == MARKER) {
                        leaks.fetch_add(1, Ordering::SeqCst);
                    }
                    let mk_seq = u32::from_be_bytes(packet[prefix..prefix + 4].try_into().unwrap());
                    max.fetch_max(mk_seq, Ordering::SeqCst);
                    if record && withhold.load(Ordering::SeqCst) {
                        withheld.lock().unwrap().push(packet.to_vec());
                        continue;
                    }
                    if record {
                        let mut r = recent.lock().unwrap();
                        if r.len() == 8 {
                            r.remove(0);
                        }
                        r.push(packet.to_vec());
                        oldest
                            .lock()
                            .unwrap()
                            .get_or_insert_with(|| packet.to_vec());
                    }
                    count += 1;
                    // Reordering: every 97th packet goes after the one behind it.
                    if count.is_multiple_of(97) && held.is_none() {
                        held = Some(packet.to_vec());
                        continue;
                    }
                    to.send_to(packet, dest).unwrap();
                    if let Some(p) = held.take() {
                        to.send_to(&p, dest).unwrap();
                    }
                }
            }));
        }
        Self { threads, ..tap }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().unwrap();
        }
    }
}

fn payload(rtp: bool, n: u32, size: usize) -> Vec<u8> {
    let mut p = vec![(n % 251) as u8; size];
    let body = if rtp {
        p[..12].copy_from_slice(&[0x80, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34]);
        12
    } else {
        0
    };
    p[body..body + 4].copy_from_slice(&n.to_be_bytes());
    p[body + 4..body + 4 + MARKER.len()].copy_from_slice(MARKER);
    p
}

/// Sends `count` packets from `client` into `into` in bursts and checks every one arrives at
/// `sink` once and intact. `between` runs after each burst.
fn flow(
    client: &UdpSocket,
    into: SocketAddr,
    sink: &UdpSocket,
    rtp: bool,
    count: u32,
    size: usize,
    mut between: impl FnMut(u32),
) {
    let mut seen = vec![false; count as usize];
    let body = if rtp { 12 } else { 0 };
    let mut buf = vec![0u8; 4096];
    let mut n = 0;
    while n < count {
        let end = (n + BURST as u32).min(count);
        for i in n..end {
            client.send_to(&payload(rtp, i, size), into).unwrap();
        }
        for _ in n..end {
            let len = sink.recv(&mut buf).expect("a packet was lost");
            let i = u32::from_be_bytes(buf[body..body + 4].try_into().unwrap());
            assert_eq!(
                &buf[..len],
                &payload(rtp, i, size)[..],
                "packet {i} altered"
            );
            assert!(
                !std::mem::replace(&mut seen[i as usize], true),
                "packet {i} twice"
            );
        }
        n = end;
        between(n);
    }
}

struct Pair {
    a: Sidecar,
    b: Sidecar,
    tap: Tap,
    sink_a: UdpSocket,
    sink_b: UdpSocket,
    client: UdpSocket,
    keys: [PathBuf; 2],
}

/// Two sidecars whose client sends from its own socket, named by `--local-client`.
fn pair(engine: &str, rtp: bool, workers: usize) -> Pair {
    pair_with(engine, rtp, workers, true)
}

/// Two sidecars; `name_client`: the client sends from a socket of its own, named to both by
/// `--local-client`; otherwise no `--local-client` is given and the client sends from A's
/// sink (symmetric RTP), the default's one address.
fn pair_with(engine: &str, rtp: bool, workers: usize, name_client: bool) -> Pair {
    let dir = scratch_dir(engine);
    let key = keygen();
    let keys = [dir.join("a.toml"), dir.join("b.toml")];
    for k in &keys {
        std::fs::write(k, &key).unwrap();
    }
    let sink = || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    };
    let (sink_a, sink_b) = (sink(), sink());
    let (tap_a, tap_b) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    let client = if name_client {
        UdpSocket::bind("127.0.0.1:0").unwrap()
    } else {
        sink_a.try_clone().unwrap()
    };
    let named = name_client.then(|| client.local_addr().unwrap());
    let plan_a = Plan {
        local_listen: free_addr(),
        local_deliver: sink_a.local_addr().unwrap(),
        local_client: named,
        bind: free_addr(),
        remote: tap_a.local_addr().unwrap(),
        slot: 0,
    };
    let plan_b = Plan {
        local_listen: free_addr(),
        local_deliver: sink_b.local_addr().unwrap(),
        local_client: named,
        bind: free_addr(),
        remote: tap_b.local_addr().unwrap(),
        slot: 1,
    };
    let a = Sidecar::start(&plan_a, &keys[0], engine, rtp, workers);
    let b = Sidecar::start(&plan_b, &keys[1], engine, rtp, workers);
    let tap = Tap::start(tap_a, tap_b, a.bind, b.bind, rtp);
    Pair {
        a,
        b,
        tap,
        sink_a,
        sink_b,
        client,
        keys,
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

fn both_ways_then_tamper(engine: &str, rtp: bool, workers: usize) {
    const PACKETS: u32 = 100_000;
    let size = if rtp { 300 } else { 500 };
    let p = pair(engine, rtp, workers);
    flow(
        &p.client,
        p.a.local_listen,
        &p.sink_b,
        rtp,
        PACKETS,
        size,
        |_| {},
    );
    flow(
        &p.client,
        p.b.local_listen,
        &p.sink_a,
        rtp,
        PACKETS,
        size,
        |_| {},
    );
    assert_eq!(
        p.tap.leaks.load(Ordering::SeqCst),
        0,
        "plaintext on the network side"
    );
    for side in [&p.a, &p.b] {
        side.expect_metric(
            "veil_packets_total{direction=\"outbound\"}",
            f64::from(PACKETS),
        );
        side.expect_metric(
            "veil_packets_total{direction=\"inbound\"}",
            f64::from(PACKETS),
        );
        for reason in [
            "bad_header",
            "unknown_key",
            "auth_failure",
            "replay",
            "too_old",
        ] {
            assert_eq!(
                side.metric(&format!("veil_drops_total{{reason=\"{reason}\"}}")),
                0.0,
                "{reason}"
            );
        }
    }

    // Tampering, straight at B's network socket, with packets B has never seen: A seals them,
    // the tap keeps them.
    p.tap.withhold.store(true, Ordering::SeqCst);
    for i in 0..4 {
        p.client
            .send_to(&payload(rtp, PACKETS + i, size), p.a.local_listen)
            .unwrap();
    }
    wait_for("A's sealed packets at the tap", || {
        p.tap.withheld.lock().unwrap().len() == 4
    });
    let fresh = p.tap.withheld.lock().unwrap().clone();
    let oldest = p.tap.oldest.lock().unwrap().clone().unwrap();
    let prefix = if rtp { 12 } else { 0 };
    let mut flipped = fresh[1].clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let mut wrong_epoch = fresh[3].clone();
    wrong_epoch[prefix..prefix + 4].copy_from_slice(&99u32.to_be_bytes());
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    attacker.send_to(&fresh[0], p.b.bind).unwrap();
    let mut buf = [0u8; 2048];
    let len = p.sink_b.recv(&mut buf).unwrap();
    assert_eq!(&buf[..len], &payload(rtp, PACKETS, size)[..]);
    // Replays from eight other source ports: with SO_REUSEPORT they reach other workers, and
    // every one must still be refused.
    for _ in 0..8 {
        let replayer = UdpSocket::bind("127.0.0.1:0").unwrap();
        replayer.send_to(&fresh[0], p.b.bind).unwrap();
    }
    for bad in [
        &fresh[0][..],                    // duplicated: replay
        &oldest,                          // far behind the window: too_old
        &flipped,                         // bit-flipped ciphertext: auth_failure
        &fresh[2][..fresh[2].len() - 17], // truncated into the tag: auth_failure
        &fresh[2][..prefix + 3],          // truncated into the prefix: bad_header
        &wrong_epoch,                     // wrong epoch: unknown_key
    ] {
        attacker.send_to(bad, p.b.bind).unwrap();
    }
    let expect = [
        ("replay", 9.0),
        ("too_old", 1.0),
        ("auth_failure", 2.0),
        ("bad_header", 1.0),
        ("unknown_key", 1.0),
    ];
    let counted = || {
        expect
            .iter()
            .map(|(r, _)| p.b.metric(&format!("veil_drops_total{{reason=\"{r}\"}}")))
            .collect::<Vec<_>>()
    };
    let expected: Vec<f64> = expect.iter().map(|(_, n)| *n).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while counted() != expected {
        assert!(
            Instant::now() < deadline,
            "drops {:?} != {expected:?}",
            counted()
        );
        thread::sleep(Duration::from_millis(20));
    }
    p.sink_b
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(
        p.sink_b.recv(&mut [0u8; 2048]).is_err(),
        "a tampered packet was delivered"
    );
    assert_eq!(
        p.b.metric("veil_packets_total{direction=\"inbound\"}"),
        f64::from(PACKETS + 1)
    );
    assert_eq!(
        p.b.metric(&format!("veil_engine{{engine=\"{engine}\"}}")),
        1.0
    );
    assert_eq!(p.b.metric("veil_workers"), workers as f64);
    p.tap.stop();
    let log = p.a.stop();
    assert!(
        log.contains(&format!("engine=\"{engine}\"")) || log.contains(&format!("engine={engine}")),
        "{log}"
    );
    let key = std::fs::read_to_string(&p.keys[0]).unwrap();
    let hex = key.lines().find(|l| l.starts_with("meeting_key")).unwrap();
    assert!(!log.contains(&hex[15..40]), "the log holds key material");
    p.b.stop();
}

#[test]
fn mio_datagram_both_ways_and_tampering() {
    both_ways_then_tamper("mio", false, 1);
}

#[test]
fn mio_rtp_both_ways_and_tampering() {
    both_ways_then_tamper("mio", true, 1);
}

#[test]
fn uring_datagram_both_ways_and_tampering() {
    both_ways_then_tamper("uring", false, 1);
}

#[test]
fn uring_rtp_both_ways_and_tampering() {
    both_ways_then_tamper("uring", true, 1);
}

/// Two workers per sidecar: SO_REUSEPORT sockets on both sides, counters summed over workers.
#[test]
fn two_workers_uring_datagram_both_ways_and_tampering() {
    both_ways_then_tamper("uring", false, 2);
}

#[test]
fn a_sighup_rotation_under_load_loses_nothing() {
    let p = pair("auto", false, 2);
    let rotation = keygen();
    let new_mk = rotation
        .lines()
        .find(|l| l.starts_with("meeting_key"))
        .unwrap();
    let old = std::fs::read_to_string(&p.keys[0]).unwrap();
    let old_mk = old.lines().find(|l| l.starts_with("meeting_key")).unwrap();
    let rotated = old
        .replace("mk_seq = 1", "mk_seq = 2")
        .replace(old_mk, new_mk);
    let mut hupped = false;
    let mut switched_at = None;
    // Keep the load on until well after the senders switched (2 s after the SIGHUP).
    flow(
        &p.client,
        p.a.local_listen,
        &p.sink_b,
        false,
        400_000,
        400,
        |sent| {
            if !hupped && sent >= 20_000 {
                for k in &p.keys {
                    std::fs::write(k, &rotated).unwrap();
                }
                p.a.signal("HUP");
                p.b.signal("HUP");
                hupped = true;
            }
            if switched_at.is_none() && p.tap.max_mk_seq.load(Ordering::SeqCst) == 2 {
                switched_at = Some(sent);
            }
        },
    );
    let switched_at = switched_at.expect("the sender never switched to mkSeqNum 2");
    assert!(switched_at < 390_000, "too little traffic after the switch");
    assert_eq!(p.a.metric("veil_mk_seq"), 2.0);
    assert_eq!(p.b.metric("veil_newest_mk_seq"), 2.0);
    for reason in [
        "bad_header",
        "unknown_key",
        "auth_failure",
        "replay",
        "too_old",
    ] {
        assert_eq!(
            p.b.metric(&format!("veil_drops_total{{reason=\"{reason}\"}}")),
            0.0,
            "{reason}"
        );
    }
    p.tap.stop();
    p.a.stop();
    p.b.stop();
}

/// Review findings 14.4 and 14.10 at the process level: a sidecar restarted on the same key
/// file must not send the same datagram for the same plaintext (each start seals under a fresh
/// random sender instance, so under other keys and nonces), and a datagram of its own that a
/// relay sends back to it is refused and counted (RFC 9605 4.4.1), never delivered.
#[test]
fn a_restarted_sidecar_never_repeats_a_datagram_and_refuses_its_own_sent_back() {
    let dir = scratch_dir("restart");
    let key = dir.join("key.toml");
    std::fs::write(&key, keygen()).unwrap();
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let relay = UdpSocket::bind("127.0.0.1:0").unwrap();
    relay
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let plan = Plan {
        local_listen: free_addr(),
        local_deliver: sink.local_addr().unwrap(),
        local_client: Some(client.local_addr().unwrap()),
        bind: free_addr(),
        remote: relay.local_addr().unwrap(),
        slot: 0,
    };
    let plaintext = payload(false, 7, 200);
    let mut buf = vec![0u8; 4096];
    let mut sent = Vec::new();
    for start in 0..2 {
        let sidecar = Sidecar::start(&plan, &key, "mio", false, 1);
        client.send_to(&plaintext, sidecar.local_listen).unwrap();
        let len = relay.recv(&mut buf).expect("the sidecar sent nothing");
        sent.push(buf[..len].to_vec());
        if start == 0 {
            relay.send_to(&buf[..len], sidecar.bind).unwrap();
            sidecar.expect_metric("veil_drops_total{reason=\"reflected\"}", 1.0);
            assert!(
                sink.recv(&mut buf).is_err(),
                "its own datagram was opened and delivered"
            );
        }
        sidecar.stop();
    }
    assert_eq!(sent[0].len(), sent[1].len());
    assert_ne!(sent[0], sent[1], "a restart sent the same datagram again");
}

/// Finding 19.4: any local process could hand the sidecar plaintext and have it sealed as this
/// device's stream. A datagram from another loopback address (127.0.0.7: not the
/// `--local-client` the pair names) is refused and counted as
/// `foreign_source`, never sealed; the client's own packet behind it still goes through.
#[test]
fn a_packet_from_another_local_address_is_not_sealed() {
    let p = pair("mio", false, 1);
    let intruder = UdpSocket::bind("127.0.0.7:0").unwrap();
    let injected = payload(false, 1, 200);
    intruder.send_to(&injected, p.a.local_listen).unwrap();
    // The client's own packet, after it: the first thing B's client may receive.
    let genuine = payload(false, 2, 200);
    p.client.send_to(&genuine, p.a.local_listen).unwrap();
    let mut buf = vec![0u8; 4096];
    let len = p
        .sink_b
        .recv(&mut buf)
        .expect("the client's packet was lost");
    assert_eq!(
        &buf[..len],
        &genuine[..],
        "a packet from 127.0.0.7 was sealed as A's stream and delivered by B"
    );
    p.a.expect_metric(
        "veil_io_drops_total{direction=\"outbound\",reason=\"foreign_source\"}",
        1.0,
    );
    p.sink_b
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(p.sink_b.recv(&mut buf).is_err(), "something else arrived");
    p.tap.stop();
}

/// Finding 19.4, the default: without `--local-client` the client is `--local-deliver`'s exact
/// address (IP and port), not its IP on any port, so another process on 127.0.0.1 cannot
/// inject. Its datagram from another port is refused and counted as `foreign_source`; the
/// client's own packet, sent from its receiving socket, still goes through.
#[test]
fn by_default_a_packet_from_another_port_of_the_clients_ip_is_not_sealed() {
    let p = pair_with("mio", false, 1, false);
    let intruder = UdpSocket::bind("127.0.0.1:0").unwrap();
    let injected = payload(false, 1, 200);
    intruder.send_to(&injected, p.a.local_listen).unwrap();
    let genuine = payload(false, 2, 200);
    p.client.send_to(&genuine, p.a.local_listen).unwrap();
    let mut buf = vec![0u8; 4096];
    let len = p
        .sink_b
        .recv(&mut buf)
        .expect("the client's packet was lost");
    assert_eq!(
        &buf[..len],
        &genuine[..],
        "a packet from another port of 127.0.0.1 was sealed as A's stream and delivered by B"
    );
    p.a.expect_metric(
        "veil_io_drops_total{direction=\"outbound\",reason=\"foreign_source\"}",
        1.0,
    );
    p.sink_b
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(p.sink_b.recv(&mut buf).is_err(), "something else arrived");
    p.tap.stop();
}

/// Finding 19.4: a local address that is not loopback (`0.0.0.0`, a LAN address) lets other
/// hosts reach the unsealed side; the sidecar refuses it unless `--allow-remote-client` says
/// the client really is elsewhere.
#[test]
fn a_non_loopback_local_address_needs_an_explicit_opt_in() {
    let dir = scratch_dir("nonloopback");
    let key = dir.join("key.toml");
    std::fs::write(&key, keygen()).unwrap();
    let loopback = || free_addr().to_string();
    let wildcard = || format!("0.0.0.0:{}", free_addr().port());
    for (listen, deliver) in [(wildcard(), loopback()), (loopback(), wildcard())] {
        let run = |opt_in: bool| {
            let mut cmd = veil();
            cmd.arg("sidecar")
                .args(["--local-listen", &listen, "--local-deliver", &deliver])
                // Named, since a wildcard --local-deliver gives no client address to default to.
                .args(["--local-client", &loopback()])
                .args(["--bind", &loopback(), "--remote", &loopback()])
                .args(["--key-file", key.to_str().unwrap(), "--sender-slot", "0"])
                .args(["--engine", "mio", "--workers", "1"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            if opt_in {
                cmd.arg("--allow-remote-client");
            }
            let mut child = cmd.spawn().unwrap();
            let deadline = Instant::now() + Duration::from_secs(3);
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break Some(status);
                }
                if Instant::now() >= deadline {
                    break None;
                }
                thread::sleep(Duration::from_millis(20));
            };
            let mut stderr = String::new();
            if status.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            (status, stderr)
        };
        let (status, stderr) = run(false);
        let status = status.unwrap_or_else(|| {
            panic!("--local-listen {listen} --local-deliver {deliver} was accepted")
        });
        assert!(!status.success());
        assert!(stderr.contains("--allow-remote-client"), "{stderr}");
        let (status, stderr) = run(true);
        assert!(
            status.is_none(),
            "refused even with the opt-in: {status:?} {stderr}"
        );
    }
}

/// Finding 19.4: port 0 in the client's address no longer means "any port" (every process on
/// that IP could inject): `--local-client 127.0.0.1:0`, or a `--local-deliver` with port 0 when
/// it is the default client, is refused at start, even with `--allow-remote-client`.
#[test]
fn a_client_address_with_port_zero_is_refused() {
    let dir = scratch_dir("anyport");
    let key = dir.join("key.toml");
    std::fs::write(&key, keygen()).unwrap();
    let exact = || free_addr().to_string();
    for (deliver, client, flag) in [
        (exact(), Some("127.0.0.1:0"), "--local-client"),
        ("127.0.0.1:0".to_owned(), None, "--local-deliver"),
    ] {
        let mut cmd = veil();
        cmd.arg("sidecar")
            .args(["--local-listen", &exact(), "--local-deliver", &deliver])
            .args(["--bind", &exact(), "--remote", &exact()])
            .args(["--key-file", key.to_str().unwrap(), "--sender-slot", "0"])
            .args(["--engine", "mio", "--workers", "1", "--allow-remote-client"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(client) = client {
            cmd.args(["--local-client", client]);
        }
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{flag} with port 0 was accepted");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(!status.success());
        assert!(
            stderr.contains(&format!(
                "{flag} 127.0.0.1:0: the client's port must be exact"
            )),
            "{stderr}"
        );
    }
}

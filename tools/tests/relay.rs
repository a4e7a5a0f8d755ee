//! `veil relay` as a process on loopback: it forwards every datagram of a registered participant
//! byte for byte to the other participants of the same meeting and nobody else, drops and counts
//! everything else, lets registrations expire, holds no key material, and carries two PSK
//! sidecars' media without ever seeing the plaintext.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod media_support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use media_support::{
    Collector, Relay, count_at_offsets, free_udp, psk_key_file, psk_sidecar, registration,
    scratch_dir, veil, wait_for,
};

const MARKER: &[u8] = b"PLAINTEXT-MARKER";

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s
}

fn register(s: &UdpSocket, relay: SocketAddr, meeting: &str, token: &str) {
    s.send_to(
        &registration(1, meeting.as_bytes(), token.as_bytes()),
        relay,
    )
    .unwrap();
}

const QUIET: Duration = Duration::from_millis(300);

/// A meeting member: a socket registered with the relay and read on its own thread.
struct Member {
    socket: UdpSocket,
    inbox: Collector,
}

impl Member {
    fn new() -> Self {
        let socket = socket();
        let inbox = Collector::on(socket.try_clone().unwrap());
        Self { socket, inbox }
    }

    fn register(&self, relay: SocketAddr, meeting: &str, token: &str) {
        register(&self.socket, relay, meeting, token);
    }

    fn send(&self, datagram: &[u8], relay: SocketAddr) {
        self.socket.send_to(datagram, relay).unwrap();
    }

    fn drain(&self) -> Vec<Vec<u8>> {
        self.inbox.take(QUIET)
    }
}

/// Deterministic pseudo-random datagrams: runs of equal sizes (so sends use GSO) and odd sizes.
fn datagrams(count: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut x = seed;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..count)
        .map(|i| {
            let len = if i % 3 == 0 {
                1200
            } else {
                1 + (next() % 1400) as usize
            };
            let mut d: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Never the registration magic.
            d[0] |= 0x80;
            d
        })
        .collect()
}

fn wait_registered(relay: &Relay, n: f64) {
    wait_for(Duration::from_secs(5), "registrations", || {
        relay.metric("veil_relay_registered") == n
    });
}

#[test]
fn forwards_byte_identical_to_the_other_members_only() {
    let dir = scratch_dir("fanout");
    let relay = Relay::start(&dir, &[]);
    let [a, b, c, other, stranger] = [(); 5].map(|()| Member::new());
    a.register(relay.media, "m1", "a");
    b.register(relay.media, "m1", "b");
    c.register(relay.media, "m1", "c");
    other.register(relay.media, "m2", "a");
    wait_registered(&relay, 4.0);
    let sent = datagrams(300, 7);
    // Paced like media (bursts of 16): the test's own sockets have default-sized buffers.
    for (i, d) in sent.iter().enumerate() {
        a.send(d, relay.media);
        if i % 16 == 15 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let at_b = b.drain();
    let at_c = c.drain();
    assert_eq!(at_b.len(), sent.len());
    assert!(at_b == sent, "B got other bytes than A sent");
    assert!(at_c == sent, "C got other bytes than A sent");
    assert!(a.drain().is_empty(), "A got its own datagrams back");
    assert!(other.drain().is_empty(), "another meeting got m1's media");
    // A stranger's datagrams go nowhere and are counted.
    for d in &sent[..10] {
        stranger.send(d, relay.media);
    }
    wait_for(Duration::from_secs(5), "unregistered drops", || {
        relay.metric("veil_relay_drops_total{reason=\"unregistered_source\"}") == 10.0
    });
    assert!(b.drain().is_empty());
    // Alone in a meeting: nothing to forward, counted.
    other.send(&sent[0], relay.media);
    wait_for(Duration::from_secs(5), "no-peer drop", || {
        relay.metric("veil_relay_drops_total{reason=\"no_peers\"}") == 1.0
    });
    // A malformed registration is refused by reason.
    let mut bad = registration(1, b"m1", b"x");
    bad[6] = 9;
    stranger.send(&bad, relay.media);
    wait_for(Duration::from_secs(5), "bad registration", || {
        relay.metric("veil_relay_bad_registrations_total{reason=\"version\"}") == 1.0
    });
    assert_eq!(relay.metric("veil_relay_forwarded_total"), 600.0);
    assert_eq!(relay.metric("veil_relay_media_total"), 300.0);
    // A leave takes C out.
    c.send(&registration(2, b"m1", b"c"), relay.media);
    wait_registered(&relay, 3.0);
    a.send(&sent[1], relay.media);
    assert_eq!(b.drain(), vec![sent[1].clone()]);
    assert!(c.drain().is_empty());
    relay.proc.stop(Duration::from_secs(5));
}

#[test]
fn registrations_expire_unless_refreshed() {
    let dir = scratch_dir("expiry");
    let relay = Relay::start(&dir, &["--registration-ttl", "1"]);
    let (a, b) = (Member::new(), Member::new());
    a.register(relay.media, "m", "a");
    b.register(relay.media, "m", "b");
    wait_registered(&relay, 2.0);
    // A keeps refreshing; B does not.
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(400));
        a.register(relay.media, "m", "a");
    }
    wait_registered(&relay, 1.0);
    assert_eq!(
        relay.metric("veil_relay_registrations_total{outcome=\"expired\"}"),
        1.0
    );
    a.send(b"\x80media", relay.media);
    assert!(b.drain().is_empty(), "an expired member still got media");
    // B comes back (a relay restart heals the same way) and gets media again.
    b.register(relay.media, "m", "b");
    wait_registered(&relay, 2.0);
    a.send(b"\x80media", relay.media);
    assert_eq!(b.drain(), vec![b"\x80media".to_vec()]);
}

/// What the relay process holds open: every fd's link target.
fn open_files(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

/// The TCP states (hex, as in /proc/net/tcp) of the sockets with these inodes.
fn tcp_states(inodes: &[String]) -> Vec<String> {
    let mut states = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() > 9 && inodes.iter().any(|i| i == fields[9]) {
                states.push(fields[3].to_owned());
            }
        }
    }
    states
}

#[test]
fn holds_no_keys_and_never_sees_plaintext() {
    let dir = scratch_dir("nokeys");
    // Its flags: nothing that could name a key, a key file, an identity or a board.
    let help = veil().args(["relay", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let flags: Vec<&str> = help
        .lines()
        .take_while(|l| !l.starts_with("Examples"))
        .filter_map(|l| l.trim_start().strip_prefix("-h, ").or(Some(l.trim_start())))
        .filter(|l| l.starts_with("--"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        flags,
        [
            "--listen",
            "--admin",
            // The admin endpoint's own (an HTTP token, not a media key: tools/src/admin).
            "--admin-public",
            "--admin-token-file",
            "--registration-ttl",
            "--max-registrations",
            "--help"
        ]
    );
    let relay = Relay::start(&dir, &[]);
    let key_file = psk_key_file(&dir, "relay-test", 2);
    // A tap: a third member of the meeting, receiving every datagram the relay forwards.
    let tap = Member::new();
    tap.register(relay.media, "relay-test", "tap");
    let b_deliver = Collector::new();
    let (_a, a_listen) = psk_sidecar(&dir, &key_file, 0, free_udp(), relay.media, &[]);
    let (_b, _) = psk_sidecar(&dir, &key_file, 1, b_deliver.addr(), relay.media, &[]);
    wait_registered(&relay, 3.0);
    let client = socket();
    let mut expected = Vec::new();
    for i in 0..200u32 {
        let mut payload = MARKER.to_vec();
        payload.extend_from_slice(&i.to_be_bytes());
        payload.resize(300, 0x5a);
        client.send_to(&payload, a_listen).unwrap();
        expected.push(payload);
        if i % 16 == 15 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let delivered = b_deliver.take(QUIET);
    assert_eq!(
        delivered.len(),
        expected.len(),
        "B delivered {} of 200",
        delivered.len()
    );
    assert!(delivered == expected, "B delivered other plaintext");
    let relayed = tap.drain();
    assert_eq!(
        relayed.len(),
        200,
        "the tap saw {} datagrams",
        relayed.len()
    );
    for d in &relayed {
        assert_eq!(
            count_at_offsets(d, MARKER),
            0,
            "plaintext crossed the relay"
        );
        assert_eq!(
            count_at_offsets(d, &[0x5a; 16]),
            0,
            "plaintext padding crossed the relay"
        );
    }
    // The relay's process: no file but its standard streams and log, no TCP socket that is not
    // listening (no board connection), and it never touched the key file.
    let files = open_files(relay.proc.child.id());
    let inodes: Vec<String> = files
        .iter()
        .filter_map(|f| {
            f.strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_owned)
        })
        .collect();
    for f in &files {
        let allowed = f.starts_with("socket:")
            || f.starts_with("pipe:")
            || f.starts_with("anon_inode:")
            || f == "/dev/null"
            || f.ends_with("relay.log");
        assert!(allowed, "the relay holds {f} open");
        assert!(!f.ends_with(".toml"), "the relay opened a key file");
    }
    for state in tcp_states(&inodes) {
        assert_eq!(
            state, "0A",
            "the relay holds a TCP connection (state {state})"
        );
    }
}

#[test]
fn sidecars_heal_after_a_relay_restart() {
    let dir = scratch_dir("restart");
    let relay = Relay::start(&dir, &[]);
    let media = relay.media;
    let key_file = psk_key_file(&dir, "restart", 2);
    let b_deliver = Collector::new();
    let (_a, a_listen) = psk_sidecar(&dir, &key_file, 0, free_udp(), media, &[]);
    let (_b, _) = psk_sidecar(&dir, &key_file, 1, b_deliver.addr(), media, &[]);
    wait_registered(&relay, 2.0);
    let client = socket();
    let send = |tag: &[u8]| {
        for i in 0..20u8 {
            let mut p = tag.to_vec();
            p.push(i);
            client.send_to(&p, a_listen).unwrap();
        }
    };
    send(b"before");
    assert_eq!(b_deliver.take(QUIET).len(), 20);
    // A new relay on the same port knows nobody: media is dropped until the sidecars'
    // next refresh (every 2 s) registers them again.
    drop(relay);
    let relay = Relay::start_on(&dir, media, &[]);
    wait_for(
        Duration::from_secs(5),
        "the sidecars re-registering",
        || relay.metric("veil_relay_registered") == 2.0,
    );
    send(b"after");
    assert_eq!(b_deliver.take(QUIET).len(), 20, "media did not resume");
}

//! `veil relay` as a process on loopback: it forwards every datagram of a registered participant
//! byte for byte to the other participants of the same meeting and nobody else, drops and counts
//! everything else, lets registrations expire, holds no key material, and carries two PSK
//! sidecars' media without ever seeing the plaintext.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod media_support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use media_support::{
    Collector, Relay, challenge_cookie, count_at_offsets, free_udp, psk_key_file, psk_sidecar,
    register_verified, registration, registration_with, roomy_socket, scratch_dir, veil, wait_for,
};
use veil_relay::ticket::{TicketKey, unix_now};

const MARKER: &[u8] = b"PLAINTEXT-MARKER";

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s
}

const QUIET: Duration = Duration::from_millis(300);

/// A meeting member: a socket registered with the relay and read on its own thread.
struct Member {
    socket: UdpSocket,
    inbox: Collector,
}

impl Member {
    fn new() -> Self {
        Self::on(roomy_socket())
    }

    fn on(socket: UdpSocket) -> Self {
        let inbox = Collector::on(socket.try_clone().unwrap());
        Self { socket, inbox }
    }

    /// Registers without a ticket (an `--open` relay), answering the challenge.
    fn register(&self, relay: SocketAddr, meeting: &str, token: &str) -> [u8; 16] {
        self.register_with(relay, meeting, token, None)
    }

    fn register_with(
        &self,
        relay: SocketAddr,
        meeting: &str,
        token: &str,
        ticket: Option<(u64, [u8; 32])>,
    ) -> [u8; 16] {
        register_verified(
            &self.socket,
            &self.inbox,
            relay,
            meeting.as_bytes(),
            token.as_bytes(),
            ticket,
        )
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
    let relay = Relay::start(&dir, &["--open"]);
    let [a, b, c, other, stranger] = [(); 5].map(|()| Member::new());
    a.register(relay.media, "m1", "a");
    b.register(relay.media, "m1", "b");
    let c_cookie = c.register(relay.media, "m1", "c");
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
    // Loss on a busy machine is waited out (4 MiB socket buffers, a deadline), never
    // forgiven: the bytes must still be exactly what A sent.
    let at_b = b
        .inbox
        .take_at_least(sent.len(), Duration::from_secs(20), QUIET);
    let at_c = c
        .inbox
        .take_at_least(sent.len(), Duration::from_secs(20), QUIET);
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
    bad[6] = 1;
    stranger.send(&bad, relay.media);
    wait_for(Duration::from_secs(5), "bad registration", || {
        relay.metric("veil_relay_bad_registrations_total{reason=\"version\"}") == 1.0
    });
    assert_eq!(relay.metric("veil_relay_forwarded_total"), 600.0);
    assert_eq!(relay.metric("veil_relay_media_total"), 300.0);
    // A leave takes C out (with its cookie: a leave is verified like a register).
    c.send(
        &registration_with(2, b"m1", b"c", None, Some(c_cookie)),
        relay.media,
    );
    wait_registered(&relay, 3.0);
    a.send(&sent[1], relay.media);
    assert_eq!(b.drain(), vec![sent[1].clone()]);
    assert!(c.drain().is_empty());
    relay.proc.stop(Duration::from_secs(5));
}

#[test]
fn registrations_expire_unless_refreshed() {
    let dir = scratch_dir("expiry");
    let relay = Relay::start(&dir, &["--registration-ttl", "1", "--open"]);
    let (a, b) = (Member::new(), Member::new());
    let a_cookie = a.register(relay.media, "m", "a");
    b.register(relay.media, "m", "b");
    wait_registered(&relay, 2.0);
    // A keeps refreshing (with its cookie); B does not.
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(400));
        a.send(
            &registration_with(1, b"m", b"a", None, Some(a_cookie)),
            relay.media,
        );
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
            // The admin endpoint's own (an HTTP token, not a media key: tools/admin).
            "--admin-public",
            "--admin-token-file",
            "--registration-ttl",
            "--max-registrations",
            "--max-meeting-members",
            "--max-per-source",
            "--ticket-key",
            "--open",
            // WebTransport for browsers: a TLS certificate and its key, which authenticate
            // the relay to pages and decrypt no media (tests/relay_web.rs).
            "--web-listen",
            "--web-cert",
            "--web-key",
            "--web-name",
            "--max-web-sessions",
            "--help"
        ]
    );
    let relay = Relay::start(&dir, &["--open"]);
    let key_file = psk_key_file(&dir, "relay-test", 2);
    // A tap: a third member of the meeting, receiving every datagram the relay forwards.
    let tap = Member::new();
    tap.register(relay.media, "relay-test", "tap");
    let b_deliver = Collector::new();
    let client = socket();
    let a_client = Some(client.local_addr().unwrap());
    let (_a, a_listen) = psk_sidecar(&dir, &key_file, 0, free_udp(), a_client, relay.media, &[]);
    let (_b, _) = psk_sidecar(&dir, &key_file, 1, b_deliver.addr(), None, relay.media, &[]);
    wait_registered(&relay, 3.0);
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
    let relay = Relay::start(&dir, &["--open"]);
    let media = relay.media;
    let key_file = psk_key_file(&dir, "restart", 2);
    let b_deliver = Collector::new();
    let client = socket();
    let a_client = Some(client.local_addr().unwrap());
    let (_a, a_listen) = psk_sidecar(&dir, &key_file, 0, free_udp(), a_client, media, &[]);
    let (_b, _) = psk_sidecar(&dir, &key_file, 1, b_deliver.addr(), None, media, &[]);
    wait_registered(&relay, 2.0);
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
    // Same key file: the sidecars' cookies are still good, no new challenge needed.
    let relay = Relay::start_on(&dir, media, &["--open"]);
    wait_for(
        Duration::from_secs(5),
        "the sidecars re-registering",
        || relay.metric("veil_relay_registered") == 2.0,
    );
    send(b"after");
    assert_eq!(b_deliver.take(QUIET).len(), 20, "media did not resume");
}

/// A ticket as the registration carries it: (expiry, MAC).
type Ticket = (u64, [u8; 32]);

/// A ticket from the key file the relay created (as the board would issue it).
fn ticket(dir: &std::path::Path, meeting: &str, token: &str, expiry: u64) -> Ticket {
    let key = TicketKey::load_or_create(&dir.join("ticket.key")).unwrap();
    let t = key.issue(meeting.as_bytes(), token, expiry);
    (t.expiry, t.mac)
}

fn refused(relay: &Relay, reason: &str) -> f64 {
    relay.metric(&format!(
        "veil_relay_refused_registrations_total{{reason=\"{reason}\"}}"
    ))
}

/// Finding 14.12: registration was unauthenticated, so anyone who knew a meeting ID received
/// its ciphertext (with the relay before this change, /tmp/veil-old, the outsider's v1
/// registration joined and got every datagram). Now: no ticket, a forged ticket, meeting A's
/// ticket for meeting B, and an expired ticket are each refused and counted, and the
/// outsider gets nothing but the members still get everything.
#[test]
fn without_the_boards_ticket_an_outsider_gets_nothing() {
    let dir = scratch_dir("tickets");
    let relay = Relay::start(&dir, &[]);
    let later = unix_now() + 600;
    let (a, b, outsider) = (Member::new(), Member::new(), Member::new());
    a.register_with(relay.media, "A", "a", Some(ticket(&dir, "A", "a", later)));
    b.register_with(relay.media, "A", "b", Some(ticket(&dir, "A", "b", later)));
    wait_registered(&relay, 2.0);
    let attempts: [(&str, Option<Ticket>, &str); 5] = [
        ("A", None, "no_ticket"),
        ("A", Some((later, [0x41; 32])), "bad_ticket"),
        // A ticket for meeting B does not register into meeting A...
        ("A", Some(ticket(&dir, "B", "x", later)), "bad_ticket"),
        // ...nor one for another participant, nor one for the same but another expiry.
        (
            "A",
            Some((later + 1, ticket(&dir, "A", "x", later).1)),
            "bad_ticket",
        ),
        (
            "A",
            Some(ticket(&dir, "A", "x", unix_now() - 1)),
            "expired_ticket",
        ),
    ];
    let mut expected = std::collections::HashMap::<&str, f64>::new();
    for (meeting, t, reason) in attempts {
        outsider.send(
            &registration_with(1, meeting.as_bytes(), b"x", t, None),
            relay.media,
        );
        *expected.entry(reason).or_default() += 1.0;
        wait_for(Duration::from_secs(5), reason, || {
            refused(&relay, reason) == expected[reason]
        });
    }
    assert_eq!(
        relay.metric("veil_relay_challenges_total"),
        2.0,
        "only A and B"
    );
    assert_eq!(relay.metric("veil_relay_registered"), 2.0);
    a.send(b"\x80media", relay.media);
    assert_eq!(b.drain(), vec![b"\x80media".to_vec()]);
    assert!(outsider.drain().is_empty(), "the outsider got something");
    // A ticket for another meeting cannot move B there either.
    b.send(
        &registration_with(1, b"B", b"b", Some(ticket(&dir, "A", "b", later)), None),
        relay.media,
    );
    wait_for(Duration::from_secs(5), "the cross-meeting ticket", || {
        refused(&relay, "bad_ticket") == 4.0
    });
    a.send(b"\x80again", relay.media);
    assert_eq!(b.drain(), vec![b"\x80again".to_vec()]);
}

/// Finding 19.1: a registration from a spoofed source made the relay send that address a
/// meeting's media (the old relay registered any source at once). Now the address gets one
/// challenge, smaller than the registration, and no media until it echoes the cookie; a cookie
/// does not work from another address, and a leave without the cookie is refused.
#[test]
fn an_address_gets_media_only_after_echoing_its_cookie() {
    let dir = scratch_dir("cookie");
    let relay = Relay::start(&dir, &["--open"]);
    let (a, b) = (Member::new(), Member::new());
    let b_cookie = b.register(relay.media, "m", "b");
    a.register(relay.media, "m", "a");
    wait_registered(&relay, 2.0);
    // A's and B's first registrations were challenged too.
    let base = refused(&relay, "unverified");
    assert_eq!(base, 2.0);
    // The "victim" never asked for anything; the attacker registers it (as if spoofed: the
    // registration comes from the victim's own address, but nobody answers the challenge).
    let victim = Member::new();
    let claim = registration(1, b"m", b"v");
    victim.send(&claim, relay.media);
    wait_for(Duration::from_secs(5), "the challenge", || {
        refused(&relay, "unverified") == base + 1.0
    });
    a.send(b"\x80media", relay.media);
    let got = victim.drain();
    assert_eq!(got.len(), 1, "the victim got {got:?}");
    assert!(got[0].len() < claim.len(), "the challenge amplifies");
    let cookie = challenge_cookie(&got[0]).unwrap();
    assert_eq!(relay.metric("veil_relay_registered"), 2.0);
    // The cookie is bound to the victim's address: from elsewhere it earns only a challenge.
    let thief = Member::new();
    thief.send(
        &registration_with(1, b"m", b"v", None, Some(cookie)),
        relay.media,
    );
    wait_for(Duration::from_secs(5), "the thief's challenge", || {
        refused(&relay, "unverified") == base + 2.0
    });
    assert_ne!(challenge_cookie(&thief.drain()[0]).unwrap(), cookie);
    // A wrong cookie, even from the right address, is a challenge too.
    victim.send(
        &registration_with(1, b"m", b"v", None, Some([1; 16])),
        relay.media,
    );
    wait_for(Duration::from_secs(5), "the wrong cookie", || {
        refused(&relay, "unverified") == base + 3.0
    });
    // A forged leave for B (without B's cookie) is refused and B stays.
    thief.send(&registration(2, b"m", b"b"), relay.media);
    b.send(&registration(2, b"m", b"b"), relay.media);
    wait_for(Duration::from_secs(5), "the forged leaves", || {
        refused(&relay, "bad_cookie") == 2.0
    });
    assert_eq!(relay.metric("veil_relay_registered"), 2.0);
    assert_eq!(b.drain(), vec![b"\x80media".to_vec()]);
    // With the cookie, B's leave works.
    b.send(
        &registration_with(2, b"m", b"b", None, Some(b_cookie)),
        relay.media,
    );
    wait_registered(&relay, 1.0);
    assert_eq!(relay.metric("veil_relay_registered"), 1.0);
    let _ = victim.drain();
}

/// Finding 19.1: one host registered 3,000 of its ports in one meeting, and one datagram in
/// became 3,000 out (the old relay took them all: its only bound was --max-registrations).
/// Now a meeting holds at most --max-meeting-members addresses and a source IP at most
/// --max-per-source; each refusal is counted and changes nothing.
#[test]
fn a_meeting_and_a_source_ip_are_capped() {
    let dir = scratch_dir("caps");
    let relay = Relay::start(
        &dir,
        &[
            "--open",
            "--max-meeting-members",
            "3",
            "--max-per-source",
            "4",
        ],
    );
    let members: Vec<Member> = (0..3).map(|_| Member::new()).collect();
    for (i, m) in members.iter().enumerate() {
        m.register(relay.media, "big", &format!("t{i}"));
    }
    wait_registered(&relay, 3.0);
    let extra = Member::new();
    extra.register(relay.media, "big", "t3");
    wait_for(Duration::from_secs(5), "meeting_full", || {
        refused(&relay, "meeting_full") == 1.0
    });
    members[0].send(b"\x80one", relay.media);
    assert_eq!(members[1].drain().len(), 1);
    assert_eq!(members[2].drain().len(), 1);
    assert!(extra.drain().is_empty(), "a fourth member got media");
    assert_eq!(relay.metric("veil_relay_forwarded_total"), 2.0);
    // 127.0.0.1 holds 3; one more in another meeting, then the source is full.
    let fourth = Member::new();
    fourth.register(relay.media, "small", "a");
    wait_registered(&relay, 4.0);
    let fifth = Member::new();
    fifth.register(relay.media, "small", "b");
    wait_for(Duration::from_secs(5), "source_full", || {
        refused(&relay, "source_full") == 1.0
    });
    // Another source address is not affected.
    let elsewhere = UdpSocket::bind("127.0.0.2:0").unwrap();
    Member::on(elsewhere).register(relay.media, "small", "b");
    wait_registered(&relay, 5.0);
}

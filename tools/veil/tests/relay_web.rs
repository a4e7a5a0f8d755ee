//! `veil relay --web-listen`: browser members over WebTransport. A session registers with the
//! same datagram, board ticket and echoed cookie as a UDP member, shares its meeting, and
//! datagrams cross between the two byte for byte; a session without a ticket or cookie gets
//! nothing, a closed one leaves at once, a datagram larger than the session's path is counted,
//! and the session cap holds. The client is `wtransport`'s, pinning the relay's certificate by
//! the hash the relay printed, as a page does with `serverCertificateHashes`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod media_support;

use std::path::Path;
use std::time::Duration;

use media_support::{
    Collector, Relay, challenge_cookie, register_verified, registration_with, roomy_socket,
    scratch_dir, wait_for,
};
use veil_relay::ticket::{TicketKey, unix_now};
use wtransport::tls::Sha256Digest;
use wtransport::{ClientConfig, Connection, Endpoint};

type Ticket = (u64, [u8; 32]);

fn ticket(dir: &Path, meeting: &str, token: &str) -> Ticket {
    let key = TicketKey::load_or_create(&dir.join("ticket.key")).unwrap();
    let t = key.issue(meeting.as_bytes(), token, unix_now() + 600);
    (t.expiry, t.mac)
}

/// A runtime with a worker of its own: the QUIC connection must make progress (send what was
/// queued, answer the relay) while the test thread waits on the relay's counters.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A browser member: one WebTransport session to the relay.
struct Browser {
    /// The cookie the relay's challenge carried, once registered.
    cookie: Option<[u8; 16]>,
    runtime: tokio::runtime::Runtime,
    endpoint: Endpoint<wtransport::endpoint::endpoint_side::Client>,
    connection: Connection,
}

impl Browser {
    /// Connects to `path` on the relay's WebTransport address, pinning its certificate.
    fn try_connect(relay: &Relay, path: &str) -> Result<Self, String> {
        let (addr, hash) = relay.web.expect("relay started with --web-listen");
        let runtime = runtime();
        let (endpoint, connection) = runtime.block_on(async {
            let config = ClientConfig::builder()
                .with_bind_default()
                .with_server_certificate_hashes([Sha256Digest::new(hash)])
                .build();
            let endpoint = Endpoint::client(config).map_err(|e| e.to_string())?;
            let url = format!("https://{addr}{path}");
            let connection = tokio::time::timeout(Duration::from_secs(5), endpoint.connect(url))
                .await
                .map_err(|_| "timed out".to_owned())?
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((endpoint, connection))
        })?;
        Ok(Self {
            cookie: None,
            runtime,
            endpoint,
            connection,
        })
    }

    fn connect(relay: &Relay) -> Self {
        Self::try_connect(relay, "/veil").unwrap()
    }

    fn send(&self, datagram: &[u8]) {
        self.connection.send_datagram(datagram).unwrap();
    }

    /// The next datagram within `wait`.
    fn receive(&self, wait: Duration) -> Option<Vec<u8>> {
        self.runtime.block_on(async {
            tokio::time::timeout(wait, self.connection.receive_datagram())
                .await
                .ok()?
                .ok()
                .map(|d| d.payload().to_vec())
        })
    }

    /// Registers as a sidecar does: without a cookie, then with the one the challenge brought.
    fn register(&self, meeting: &str, token: &str, ticket: Option<Ticket>) -> Option<[u8; 16]> {
        let (meeting, token) = (meeting.as_bytes(), token.as_bytes());
        self.send(&registration_with(1, meeting, token, ticket, None));
        let cookie = challenge_cookie(&self.receive(Duration::from_secs(2))?)?;
        self.send(&registration_with(1, meeting, token, ticket, Some(cookie)));
        Some(cookie)
    }
}

impl Browser {
    /// Closes the session as a page does on leave, and lets the close reach the relay.
    fn close(self) {
        self.connection.close(0u32.into(), b"bye");
        self.runtime.block_on(async {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
        });
    }
}

fn wait_registered(relay: &Relay, n: f64) {
    wait_for(Duration::from_secs(5), "registrations", || {
        relay.metric("veil_relay_registered") == n
    });
}

fn start(dir: &Path, extra: &[&str]) -> Relay {
    let mut flags = vec!["--web-listen", "127.0.0.1:0"];
    flags.extend_from_slice(extra);
    Relay::start(dir, &flags)
}

/// A UDP member and a browser member of one meeting, each registered with its ticket.
fn pair(dir: &Path, relay: &Relay) -> (std::net::UdpSocket, Collector, Browser) {
    let udp = roomy_socket();
    let inbox = Collector::on(udp.try_clone().unwrap());
    let native = ticket(dir, "m", "native");
    register_verified(&udp, &inbox, relay.media, b"m", b"native", Some(native));
    let mut browser = Browser::connect(relay);
    browser.cookie = Some(
        browser
            .register("m", "browser", Some(ticket(dir, "m", "browser")))
            .expect("a challenge"),
    );
    wait_registered(relay, 2.0);
    (udp, inbox, browser)
}

#[test]
fn a_browser_and_a_udp_member_exchange_datagrams_byte_for_byte() {
    let dir = scratch_dir("web-pair");
    let relay = start(&dir, &[]);
    let (udp, inbox, browser) = pair(&dir, &relay);

    let from_browser: Vec<Vec<u8>> = (0..20u8)
        .map(|i| vec![0x80 | i; 100 + 50 * i as usize])
        .collect();
    for d in &from_browser {
        browser.send(d);
    }
    let got = inbox.take(Duration::from_millis(500));
    assert_eq!(
        got, from_browser,
        "the UDP member gets what the browser sent, in order"
    );

    let from_udp: Vec<Vec<u8>> = (0..20u8)
        .map(|i| vec![0x90 | (i & 0xf); 60 + 40 * i as usize])
        .collect();
    for d in &from_udp {
        udp.send_to(d, relay.media).unwrap();
    }
    let mut received = Vec::new();
    while let Some(d) = browser.receive(Duration::from_millis(500)) {
        received.push(d);
    }
    assert_eq!(
        received, from_udp,
        "the browser gets what the UDP member sent"
    );
    assert!(relay.metric("veil_relay_web_sessions_total{outcome=\"accepted\"}") >= 1.0);
    assert_eq!(relay.metric("veil_relay_forwarded_total"), 40.0);
}

#[test]
fn a_session_without_a_ticket_or_its_cookie_gets_nothing() {
    let dir = scratch_dir("web-refused");
    let relay = start(&dir, &[]);
    let (udp, _inbox, _browser) = pair(&dir, &relay);

    // No ticket: refused before any challenge.
    let outsider = Browser::connect(&relay);
    assert!(outsider.register("m", "outsider", None).is_none());
    wait_for(Duration::from_secs(5), "no_ticket", || {
        relay.metric("veil_relay_refused_registrations_total{reason=\"no_ticket\"}") >= 1.0
    });
    // A valid ticket but a made-up cookie: answered with a challenge, never registered.
    let guesser = Browser::connect(&relay);
    let t = ticket(&dir, "m", "guesser");
    guesser.send(&registration_with(
        1,
        b"m",
        b"guesser",
        Some(t),
        Some([7; 16]),
    ));
    let challenge = guesser.receive(Duration::from_secs(2)).unwrap();
    assert!(challenge_cookie(&challenge).is_some());
    // Media from either reaches nobody, and neither receives the meeting's media.
    outsider.send(&[0x80; 64]);
    guesser.send(&[0x81; 64]);
    udp.send_to(&[0x82; 64], relay.media).unwrap();
    assert_eq!(outsider.receive(Duration::from_millis(400)), None);
    assert_eq!(guesser.receive(Duration::from_millis(100)), None);
    assert_eq!(relay.metric("veil_relay_registered"), 2.0);
    assert!(relay.metric("veil_relay_drops_total{reason=\"unregistered_source\"}") >= 2.0);
}

#[test]
fn a_closed_session_leaves_its_meeting_at_once() {
    let dir = scratch_dir("web-close");
    // A TTL far beyond the test: only the session's end can remove it.
    let relay = start(&dir, &["--registration-ttl", "600"]);
    let (_udp, _inbox, browser) = pair(&dir, &relay);
    // A last refresh right before the close: the relay must not register it again after it
    // learned of the close (both can reach its loop in one drain).
    let cookie = browser.cookie.unwrap();
    let t = ticket(&dir, "m", "browser");
    browser.send(&registration_with(
        1,
        b"m",
        b"browser",
        Some(t),
        Some(cookie),
    ));
    browser.close();
    wait_registered(&relay, 1.0);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        relay.metric("veil_relay_registered"),
        1.0,
        "registered again"
    );
}

/// A session that never registers gives its place back: the relay closes it after 10 s.
#[test]
fn a_session_that_never_registers_is_closed() {
    let dir = scratch_dir("web-unregistered");
    let relay = start(&dir, &["--max-web-sessions", "1"]);
    let idle = Browser::connect(&relay);
    wait_for(Duration::from_secs(15), "the idle session closed", || {
        relay.metric("veil_relay_web_sessions_total{outcome=\"closed_unregistered\"}") == 1.0
    });
    let closed = idle.runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(2), idle.connection.closed()).await
    });
    assert!(closed.is_ok(), "the relay closed it");
    // Its place is free again.
    assert!(Browser::try_connect(&relay, "/veil").is_ok());
}

#[test]
fn a_datagram_larger_than_the_browsers_path_is_counted_not_lost_silently() {
    let dir = scratch_dir("web-large");
    let relay = start(&dir, &[]);
    let (udp, _inbox, browser) = pair(&dir, &relay);
    udp.send_to(&[0x80; 1450], relay.media).unwrap();
    udp.send_to(&[0x81; 200], relay.media).unwrap();
    assert_eq!(
        browser.receive(Duration::from_secs(2)),
        Some(vec![0x81; 200])
    );
    assert_eq!(
        relay.metric("veil_relay_drops_total{reason=\"web_too_large\"}"),
        1.0
    );
}

#[test]
fn sessions_beyond_the_cap_are_refused_until_a_place_is_free() {
    let dir = scratch_dir("web-cap");
    let relay = start(&dir, &["--max-web-sessions", "1"]);
    let refused = || relay.metric("veil_relay_web_sessions_total{outcome=\"refused\"}");
    let first = Browser::connect(&relay);
    assert!(
        Browser::try_connect(&relay, "/veil").is_err(),
        "a second session"
    );
    wait_for(Duration::from_secs(5), "refused", || refused() == 1.0);
    first.close();
    // The place comes back with the close.
    wait_for(Duration::from_secs(5), "the place back", || {
        Browser::try_connect(&relay, "/veil").is_ok()
    });
}

/// Only /veil is a session; with places to spare, any other path is refused (404) and
/// counted.
#[test]
fn another_path_is_refused() {
    let dir = scratch_dir("web-path");
    let relay = start(&dir, &[]);
    let refused = || relay.metric("veil_relay_web_sessions_total{outcome=\"refused\"}");
    for path in ["/", "/elsewhere", "/veil/x"] {
        let before = refused();
        assert!(
            Browser::try_connect(&relay, path).is_err(),
            "{path} accepted"
        );
        wait_for(Duration::from_secs(5), "counted", || {
            refused() == before + 1.0
        });
    }
    assert!(Browser::try_connect(&relay, "/veil").is_ok());
}

//! A browser participant's core (`veil-web`) and a native `veil sidecar` in meeting mode hold
//! one meeting through `veil board` (the browser over WebSocket) and carry media both ways
//! through `veil relay` (the browser over WebTransport, the sidecar over UDP): the browser
//! registers at the relay with the board's ticket and the relay's cookie, what it seals the
//! sidecar delivers to its client, what the sidecar's client sends the browser opens, and the
//! relay forwards without a key (no plaintext marker in what it carried to the browser). The
//! page's JavaScript pumps the same calls; here the test does, with a WebSocket and a
//! `wtransport` client in place of the browser's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod media_support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use media_support::meeting::{LIMIT, Net, Sidecar, converge};
use media_support::page::{now, pump_board};
use veil_relay::registration::{Kind, Registration, emit_challenge};
use veil_web::{MeetingLink, WebError, WebEvent, WebParticipant};
use wtransport::tls::Sha256Digest;
use wtransport::{ClientConfig, Connection, Endpoint};

const MARKER: &[u8] = b"BROWSER-PLAINTEXT-MARKER";

/// The browser: the wasm core's Rust twin, its board WebSocket and its relay session.
struct Browser {
    core: WebParticipant,
    rng: keyctl::rng::OsRng,
    ws: tungstenite::WebSocket<TcpStream>,
    runtime: tokio::runtime::Runtime,
    relay: Connection,
    keyed: Option<u32>,
    opened: Vec<Vec<u8>>,
    /// Every datagram the relay delivered, as it arrived (sealed).
    wire: Vec<Vec<u8>>,
}

impl Browser {
    /// Joins `meeting` with `extra` link fields (`&media=rtp`).
    fn join(net: &Net, meeting: &str, extra: &str) -> Self {
        let ws_addr = net.ws_addr.unwrap();
        let (relay_addr, hash) = net.relay.web.unwrap();
        let link = MeetingLink::parse(&format!(
            "veil1&board={ws_addr}&meeting={meeting}&relay={relay_addr}&relay_sha256={}{extra}",
            hex::encode(hash)
        ))
        .unwrap();
        let mut rng = keyctl::rng::OsRng::new();
        let core = WebParticipant::new(link, "browser", &mut rng).unwrap();
        let stream = TcpStream::connect(ws_addr).unwrap();
        let (ws, _) = tungstenite::client(format!("ws://{ws_addr}/board"), stream).unwrap();
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        // A worker of its own, so QUIC makes progress while the test thread pumps the board.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let relay = runtime.block_on(async {
            let config = ClientConfig::builder()
                .with_bind_default()
                .with_server_certificate_hashes([Sha256Digest::new(hash)])
                .build();
            let endpoint = Endpoint::client(config).unwrap();
            endpoint
                .connect(format!("https://{relay_addr}/veil"))
                .await
                .unwrap()
        });
        Self {
            core,
            rng,
            ws,
            runtime,
            relay,
            keyed: None,
            opened: Vec::new(),
            wire: Vec::new(),
        }
    }

    /// One round of what the page's event loop does.
    fn pump(&mut self) {
        pump_board(&mut self.core, &mut self.ws, &mut self.rng);
        while let Some(datagram) = self.core.poll_relay_transmit() {
            self.relay.send_datagram(datagram).unwrap();
        }
        loop {
            let received = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_millis(1), self.relay.receive_datagram()).await
            });
            let Ok(Ok(datagram)) = received else {
                break;
            };
            self.wire.push(datagram.to_vec());
            if let Ok(Some(plain)) = self.core.handle_relay(now(), &datagram) {
                self.opened.push(plain);
            }
        }
        while let Some(event) = self.core.poll_event() {
            if let WebEvent::Keyed { mk_seq } = event {
                self.keyed = Some(mk_seq);
            }
        }
    }

    /// Pumps until the browser and `alice` hold one key, both are registered at the relay, and
    /// the browser seals `probe` (its key active).
    fn converge(&mut self, net: &Net, alice: &Sidecar, probe: &[u8]) {
        self.until(
            "a common key, two registrations, and the browser sealing",
            |b| {
                let alice_seq = alice
                    .status()
                    .filter(|s| media_support::meeting::roster_len(s) == 2)
                    .map(|s| Sidecar::mk_seq(&s));
                alice_seq.is_some_and(|s| Some(s) == b.keyed.map(u64::from))
                    && net.relay.metric("veil_relay_registered") == 2.0
                    && b.core.seal(now(), probe).is_ok()
            },
        );
    }

    /// Pumps until `done` holds, at most [`LIMIT`].
    fn until(&mut self, what: &str, mut done: impl FnMut(&mut Self) -> bool) {
        let deadline = Instant::now() + LIMIT;
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            self.pump();
        }
    }
}

#[test]
fn a_browser_and_a_sidecar_exchange_media_through_the_relay_over_webtransport() {
    let net = Net::with_websocket("web-media");
    let mut alice = net.join("web-media", "alice");
    converge(&[&alice], 1, 1);
    let mut browser = Browser::join(&net, "web-media", "");
    browser.converge(&net, &alice, b"probe");
    assert_eq!(
        browser.core.security_code().as_deref(),
        alice.status().unwrap()["security_code"].as_str(),
        "one security code"
    );

    // Browser to sidecar: alice's client receives exactly what the browser sealed.
    alice.sink.take(Duration::from_millis(50));
    let sent: Vec<Vec<u8>> = (0..20u8)
        .map(|i| [MARKER, &[i; 300][..]].concat())
        .collect();
    for payload in &sent {
        let sealed = browser.core.seal(now(), payload).unwrap();
        assert!(!sealed.windows(MARKER.len()).any(|w| w == MARKER));
        browser.relay.send_datagram(sealed).unwrap();
    }
    let got = alice.sink.take(Duration::from_millis(500));
    assert_eq!(
        got, sent,
        "alice's client gets the browser's payloads, in order"
    );

    // Sidecar to browser: what alice's client sends, the browser opens.
    browser.opened.clear();
    browser.wire.clear();
    let from_alice = alice.send(20);
    browser.until("alice's 20 packets", |b| b.opened.len() >= 20);
    assert_eq!(browser.opened, from_alice);
    // The core says who sent them (the roster slot in the authenticated KID): alice, the leader.
    let alice_slot = alice.status().unwrap()["sender_slot"].as_u64().unwrap();
    assert_eq!(browser.core.last_sender().map(u64::from), Some(alice_slot));
    assert!(
        browser
            .wire
            .iter()
            .all(|d| !d.windows(5).any(|w| w == b"alice")),
        "the relay carried only ciphertext"
    );
    assert_eq!(browser.core.counters().media_opened, 20);

    // A forged challenge (the relay, or anyone who can inject into the session) makes the
    // next refresh carry a wrong cookie: the relay refuses that refresh, challenges again,
    // and the browser stays registered and keeps receiving.
    let unverified = || {
        net.relay
            .metric("veil_relay_refused_registrations_total{reason=\"unverified\"}")
    };
    let before = unverified();
    assert_eq!(
        browser
            .core
            .handle_relay(now(), &emit_challenge(&[9; 16]))
            .unwrap(),
        None
    );
    browser.until("the refresh with the wrong cookie refused", |_| {
        unverified() > before
    });
    let refreshed = || {
        net.relay
            .metric("veil_relay_registrations_total{outcome=\"refreshed\"}")
    };
    let after_refusal = refreshed();
    browser.until("a refresh with the relay's cookie again", |_| {
        refreshed() > after_refusal
    });
    browser.opened.clear();
    let again = alice.send(5);
    browser.until("media after the forged challenge", |b| b.opened.len() >= 5);
    assert_eq!(browser.opened, again);
    // Anything else with the registration magic is refused and counted, not opened.
    let stray = Registration {
        kind: Kind::Register,
        meeting_id: b"m".to_vec(),
        token: "t".to_owned(),
        ticket: None,
        cookie: None,
    }
    .emit()
    .unwrap();
    assert!(matches!(
        browser.core.handle_relay(now(), &stray),
        Err(WebError::RelayDatagram)
    ));
    assert_eq!(browser.core.counters().relay_refused, 1);
}

/// Real video both ways between the browser's core and ffmpeg behind a sidecar, in RTP mode:
/// ffmpeg's VP8 (RTP, RFC 7741) through the sidecar and the relay reaches the browser, whose
/// depacketizer gives back exactly the frames ffmpeg encoded; the browser packetizes frames
/// (ffmpeg's own, from the known-answer file), seals them, and ffmpeg behind the sidecar
/// receives exactly those frames.
#[test]
fn vp8_from_ffmpeg_reaches_the_browser_and_the_browsers_reaches_ffmpeg() {
    use media_support::ffmpeg::{self, Receiver, ivf_frames};
    use veil_web::vp8::{Depacketizer, Packetizer};
    if !ffmpeg::available() {
        eprintln!("ffmpeg with libvpx is not installed: skipped (CI installs it)");
        return;
    }
    const FRAMES: u32 = 30;
    let net = Net::with_websocket("web-video");
    let ffmpeg_out = ffmpeg::rtp_port();
    let ffmpeg_in = ffmpeg::rtp_port();
    let client = format!("127.0.0.1:{ffmpeg_out}");
    let deliver = format!("127.0.0.1:{ffmpeg_in}").parse().unwrap();
    let alice = net.join_to(
        "web-video",
        "alice",
        Some(deliver),
        &["--rtp", "--local-client", &client],
    );
    converge(&[&alice], 1, 1);
    let mut browser = Browser::join(&net, "web-video", "&media=rtp");
    let probe = Packetizer::new(7, ffmpeg::PAYLOAD_TYPE, 0)
        .packetize(&[0x10, 0, 0], 0, 100)
        .unwrap()
        .remove(0);
    browser.converge(&net, &alice, &probe);

    // ffmpeg -> alice's sidecar -> relay -> the browser.
    let sent_ivf = net.dir.join("from-ffmpeg.ivf");
    let sender = {
        let to = alice.listen;
        let ivf = sent_ivf.clone();
        std::thread::spawn(move || ffmpeg::send_vp8(to, ffmpeg_out, FRAMES, 1_000, &ivf))
    };
    browser.opened.clear();
    browser.until("ffmpeg to finish", |_| sender.is_finished());
    sender.join().unwrap();
    let quiet = Instant::now() + Duration::from_millis(300);
    browser.until("the last packets", |_| Instant::now() >= quiet);
    let mut depacketizer = Depacketizer::new(ffmpeg::PAYLOAD_TYPE);
    let frames: Vec<Vec<u8>> = browser
        .opened
        .iter()
        .filter_map(|rtp| depacketizer.push(rtp).ok().flatten())
        .map(|f| f.data)
        .collect();
    assert_eq!(frames.len(), FRAMES as usize);
    assert!(
        frames == ivf_frames(&sent_ivf),
        "the browser got ffmpeg's frames"
    );

    // The browser -> relay -> alice's sidecar -> ffmpeg.
    let kat: serde_json::Value =
        serde_json::from_str(include_str!("../../web/tests/data/vp8-rtp-kat.json")).unwrap();
    let frames: Vec<Vec<u8>> = kat["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| hex::decode(f.as_str().unwrap()).unwrap())
        .collect();
    let receiver = Receiver::start(&net.dir, ffmpeg_in, frames.len() as u32);
    let mut packetizer = Packetizer::new(0x5eed, ffmpeg::PAYLOAD_TYPE, 1_000);
    for (i, frame) in frames.iter().enumerate() {
        let timestamp = 9_000 * i as u32;
        for rtp in packetizer.packetize(frame, timestamp, 1_000).unwrap() {
            let sealed = browser.core.seal(now(), &rtp).unwrap();
            browser.relay.send_datagram(sealed).unwrap();
        }
        // Paced like a live camera.
        std::thread::sleep(Duration::from_millis(20));
        browser.pump();
    }
    let received = receiver.finish(Duration::from_secs(10));
    assert_eq!(received.len(), frames.len());
    assert!(received == frames, "ffmpeg got the browser's frames");
}

/// A meeting whose host requires post-quantum authentication (`--pq required`: hybrid
/// identities only) admits a browser, whose identity is hybrid unless its link says `pq=off`:
/// one hybrid security code, its key boxed hybrid; a browser with a classical identity is
/// refused and never keyed.
#[test]
fn a_browser_joins_a_meeting_that_requires_post_quantum_authentication() {
    let net = Net::with_websocket("web-pq");
    let alice = net.join_with("web-pq", "alice", &["--pq", "required"]);
    converge(&[&alice], 1, 1);
    let mut browser = Browser::join(&net, "web-pq", "&pq=required");
    browser.converge(&net, &alice, b"probe");
    let host = alice.status().unwrap();
    assert_eq!(host["authentication"], "hybrid", "{host}");
    assert_eq!(
        browser.core.security_code().as_deref(),
        host["security_code"].as_str(),
        "one (hybrid) security code"
    );
    let browser_entry = host["roster"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "browser")
        .cloned()
        .unwrap();
    assert_eq!(browser_entry["key_delivery"], "hybrid", "{browser_entry}");

    let mut classical = Browser::join(&net, "web-pq", "&pq=off");
    let deadline = Instant::now() + Duration::from_secs(3);
    classical.until("a while", |_| Instant::now() >= deadline);
    assert!(classical.keyed.is_none(), "a classical browser was keyed");
    assert_eq!(
        media_support::meeting::roster_len(&alice.status().unwrap()),
        2,
        "the leader's list has alice and the hybrid browser only"
    );
}

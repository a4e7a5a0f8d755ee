//! Host invites (issue 17): the host's sidecar (`--host --invites`) holds the meeting's invite
//! secret and answers `POST /invite?user=NAME` with the invite and a link; a browser
//! participant (`veil-web`'s core, driven over a real WebSocket to `veil board --ws-listen` as
//! a page would drive it) joins from that link. Without an invite, or with another user's, the
//! leader refuses it; a kick bans the kicked user's invite, so the same link (a reloaded page,
//! a fresh identity) no longer admits anyone, while a new user's invite does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod media_support;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use keyctl::meeting::LeftReason;
use keyctl::rng::OsRng;
use media_support::meeting::{LIMIT, Net, Sidecar, slot};
use media_support::page::pump_board;
use serde_json::Value;
use veil_web::{MeetingLink, WebEvent, WebParticipant};

/// One browser participant: the sans-IO core, its WebSocket, what it reported.
struct Browser {
    p: WebParticipant,
    ws: tungstenite::WebSocket<TcpStream>,
    rng: OsRng,
    keyed: Vec<u32>,
    events: Vec<WebEvent>,
}

impl Browser {
    /// Opens `url` as a page would: the fragment after `#` is the link.
    fn open(url: &str) -> Self {
        let fragment = url.split_once('#').map_or(url, |(_, f)| f);
        let link = MeetingLink::parse(fragment).unwrap();
        let board = link.board.clone();
        let mut rng = OsRng::new();
        let p = WebParticipant::new(link, "", &mut rng).unwrap();
        let sock = TcpStream::connect(&board).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let ws = tungstenite::client::client(format!("ws://{board}/board").as_str(), sock)
            .unwrap()
            .0;
        Self {
            p,
            ws,
            rng,
            keyed: Vec::new(),
            events: Vec::new(),
        }
    }

    /// One round of what a page's event loop does.
    fn step(&mut self) {
        pump_board(&mut self.p, &mut self.ws, &mut self.rng);
        while let Some(e) = self.p.poll_event() {
            if let WebEvent::Keyed { mk_seq } = e {
                self.keyed.push(mk_seq);
            }
            self.events.push(e);
        }
    }

    /// Pumps until `done` or `limit`; whether `done` came.
    fn until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            self.step();
            if done(self) {
                return true;
            }
        }
        false
    }
}

/// A POST to an admin endpoint: the status code and the body.
fn post(admin: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(admin).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let authorization = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {admin}\r\n{authorization}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let code = text[9..12].parse().unwrap();
    (code, text.split_once("\r\n\r\n").unwrap().1.to_owned())
}

fn token(s: &Sidecar) -> String {
    std::fs::read_to_string(&s.token_file)
        .unwrap()
        .trim()
        .to_owned()
}

/// The number of invite refusals the host (the leader) has alerted on.
fn rejected(host: &Sidecar) -> usize {
    host.status().unwrap()["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a.as_str().unwrap_or_default().starts_with("InviteRejected"))
        .count()
}

/// A browser from `url` must be refused: the host alerts on one more refused invite, and the
/// browser holds no key (its hello got a welcome from the board, which admits anyone; the
/// leader's list decides).
fn refused(host: &Sidecar, url: &str) {
    let before = rejected(host);
    let mut b = Browser::open(url);
    assert!(
        b.until(LIMIT, |_| rejected(host) > before),
        "no refusal; host {:?}",
        host.status()
    );
    // Well past the leader's join batch (100 ms under --test-timings fast): still no key.
    b.until(Duration::from_millis(1_500), |_| false);
    assert!(b.keyed.is_empty(), "{url}: keyed {:?}", b.keyed);
}

/// A browser from `url` is admitted: keyed under the key the host holds, one security code.
fn admitted(host: &Sidecar, url: &str) -> Browser {
    let mut b = Browser::open(url);
    let ok = b.until(LIMIT, |b| {
        b.keyed
            .last()
            .is_some_and(|k| u64::from(*k) == Sidecar::mk_seq(&host.status().unwrap()))
    });
    assert!(ok, "not keyed: {:?}; host {:?}", b.events, host.status());
    // What the page's window.veilStatus() returns agrees with the host.
    let status: Value = serde_json::from_str(&b.p.status().to_json()).unwrap();
    let host_status = host.status().unwrap();
    assert_eq!(status["securityCode"], host_status["security_code"]);
    assert_eq!(status["mkSeqNum"], host_status["mk_seq"]);
    let present = |s: &Value, name: &str, state: &str| {
        s["participants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == name && e["state"] == state)
    };
    assert!(present(&status, "alice", "present"), "{status}");
    assert!(present(&status, b.p.name(), "present"), "{status}");
    b
}

/// A board with a WebSocket listener and the host's sidecar (alice) issuing invites whose
/// links point at `web_url`, leading meeting `m`.
fn invite_host(name: &str, web_url: &str) -> (Net, Sidecar) {
    let net = Net::with_websocket(name);
    let ws = net.ws_addr.unwrap().to_string();
    let flags = [
        "--host",
        "--invites",
        "--web-url",
        web_url,
        "--board-ws",
        &ws,
    ];
    let host = net.join_with("m", "alice", &flags);
    host.wait(LIMIT, "the host leading", |s| s["is_leader"] == true);
    (net, host)
}

#[test]
fn an_invite_from_the_hosts_sidecar_admits_a_browser_and_only_its_own_user() {
    let (net, host) = invite_host("invites", "http://127.0.0.1:8080/");
    let ws = net.ws_addr.unwrap().to_string();

    let carol = host.invite("carol");
    assert_eq!(carol["user"], "carol");
    let hex = carol["invite"].as_str().unwrap();
    assert!(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    let link = carol["link"].as_str().unwrap();
    assert_eq!(
        link,
        format!("http://127.0.0.1:8080/#veil1&board={ws}&meeting=m&invite={hex}&user=carol")
    );
    // The same user's invite again is the same (HMAC of the meetingID and the userID).
    assert_eq!(host.invite("carol")["invite"], hex);
    let browser = admitted(&host, link);
    assert_eq!(browser.p.name(), "carol");
    let roster = host.status().unwrap()["roster"].clone();
    assert!(
        roster
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "carol" && e["state"] == "present"),
        "{roster}"
    );

    // No invite; carol's invite under another user; carol's invite copied into a link for
    // someone else (the invite admits only its own userID).
    refused(&host, &format!("veil1&board={ws}&meeting=m&user=dave"));
    refused(&host, &link.replace("user=carol", "user=erin"));
    let mut wrong = host.invite("frank")["link"].as_str().unwrap().to_owned();
    wrong = wrong.replace("user=frank", "user=carol2");
    refused(&host, &wrong);
}

#[test]
fn a_kicked_invitee_cannot_come_back_with_the_same_invite_but_a_new_one_works() {
    let (_net, host) = invite_host("invite-kick", "https://meet.example/");
    let link = host.invite("carol")["link"].as_str().unwrap().to_owned();
    let mut carol = admitted(&host, &link);
    let status = host.status().unwrap();
    let carol_slot = status["roster"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "carol")
        .unwrap()["slot"]
        .as_u64()
        .unwrap();
    assert_ne!(Some(carol_slot), slot(&status));
    host.post(&format!("/kick/{carol_slot}"));
    assert!(
        carol.until(LIMIT, |b| b
            .events
            .contains(&WebEvent::Left(LeftReason::Kicked))),
        "{:?}",
        carol.events
    );
    let status: Value = serde_json::from_str(&carol.p.status().to_json()).unwrap();
    assert_eq!(status["ended"], "Kicked");
    // A reloaded page: a fresh identity with the same link. keyctl's ban of the kicked
    // identity does not reach it; the banned invite does.
    refused(&host, &link);
    // A new invite (under another userID: an invite is a function of the userID) works.
    let again = host.invite("carol-2")["link"].as_str().unwrap().to_owned();
    admitted(&host, &again);
}

#[test]
fn invite_requests_are_refused_with_a_typed_error() {
    let net = Net::with_websocket("invite-refusals");
    let host = net.join_with("m", "alice", &["--host", "--invites"]);
    host.wait(LIMIT, "the host leading", |s| s["is_leader"] == true);
    let t = token(&host);
    let error_at = |admin, path: &str, token: Option<&str>| {
        let (code, body) = post(admin, path, token);
        let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        (code, json["error"].as_str().unwrap_or(&body).to_owned())
    };
    let error = |path: &str, token: Option<&str>| error_at(host.admin, path, token);
    assert_eq!(error("/invite", Some(&t)), (400, "no_user".into()));
    assert_eq!(
        error("/invite?user=a&user=b", Some(&t)),
        (400, "no_user".into())
    );
    assert_eq!(
        error("/invite?user=a%20b", Some(&t)),
        (400, "bad_user".into())
    );
    let long = format!("/invite?user={}", "u".repeat(veil_web::MAX_USER + 1));
    assert_eq!(error(&long, Some(&t)), (400, "bad_user".into()));
    // Admin access rules as for /kick: no token, no invite.
    assert_eq!(post(host.admin, "/invite?user=bob", None).0, 401);
    // Without --web-url the answer has no link.
    let (code, body) = post(host.admin, "/invite?user=bob", Some(&t));
    assert_eq!(code, 200);
    let json: Value = serde_json::from_str(&body).unwrap();
    assert!(json.get("link").is_none(), "{json}");
    // A sidecar that is not the invite host refuses, typed: not even a participant with
    // an admin token can mint invites without the host's secret.
    let other = net.join_with("other", "bob", &[]);
    assert_eq!(
        error_at(other.admin, "/invite?user=carol", Some(&token(&other))),
        (409, "not_invite_host".into())
    );
}

/// A native invitee: a sidecar given its invite in $VEIL_INVITE joins the invite-only meeting
/// beside a browser, and media flows between it and the host; a sidecar without one, or with
/// another user's, is refused by the leader; a malformed one stops the sidecar at start.
#[test]
fn a_sidecar_invitee_joins_with_veil_invite_and_one_without_is_refused() {
    let (net, mut host) = invite_host("invite-sidecar", "http://127.0.0.1:8080/");
    let bob_invite = host.invite("bob")["invite"].as_str().unwrap().to_owned();
    let bob = net.join_env("m", "bob", None, &[], &[("VEIL_INVITE", &bob_invite)]);
    let web = host.invite("carol")["link"].as_str().unwrap().to_owned();
    let _carol = admitted(&host, &web);
    media_support::meeting::converge(&[&host, &bob], 3, 1);
    media_support::meeting::media_flows(&mut host, &[&bob]);

    let before = rejected(&host);
    let eve = net.join("m", "eve");
    host.wait(LIMIT, "eve refused", |_| rejected(&host) > before);
    let mallory = net.join_env("m", "mallory", None, &[], &[("VEIL_INVITE", &bob_invite)]);
    host.wait(LIMIT, "mallory refused", |_| rejected(&host) > before + 1);
    std::thread::sleep(Duration::from_millis(500));
    for s in [&eve, &mallory] {
        assert!(
            !media_support::meeting::has_key(&s.status().unwrap()),
            "{}",
            s.name
        );
    }

    let bad = media_support::veil()
        .args(["sidecar", "--board", &net.board_addr.to_string()])
        .args([
            "--board-insecure-plaintext",
            "--meeting",
            "m",
            "--name",
            "x",
        ])
        .args([
            "--local-listen",
            "127.0.0.1:0",
            "--local-deliver",
            "127.0.0.1:9",
        ])
        .args([
            "--bind",
            "127.0.0.1:0",
            "--remote",
            &net.relay.media.to_string(),
        ])
        .env("VEIL_INVITE", "00")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("VEIL_INVITE must be"), "{stderr}");
}

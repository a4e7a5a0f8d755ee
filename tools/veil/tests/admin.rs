//! The admin endpoints of `veil sidecar`, `veil board` and `veil relay` as an adversary sees
//! them: a web page driving the browser at 127.0.0.1 (cross-site POSTs, DNS rebinding), a
//! caller without the per-run token, a slow client holding a connection open, a non-loopback
//! `--admin` without the opt-in (docs/RELIABILITY.md, "Bad inputs tried").

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod media_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use media_support::meeting::{LIMIT, Net};
use media_support::{Proc, Relay, free_tcp, free_udp, scratch_dir, veil};

/// Sends `request` as is and returns the status code and the body (0 and "" when the
/// connection closed without an answer).
fn raw(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut text = Vec::new();
    let _ = stream.read_to_end(&mut text);
    let text = String::from_utf8_lossy(&text).into_owned();
    let code = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

/// What a web page at https://evil.example can make a browser send to `admin`: a "simple"
/// cross-site POST (no preflight), with the browser's own Host, Origin and Sec-Fetch-Site.
fn cross_site_post(admin: SocketAddr, path: &str) -> (u16, String) {
    raw(
        admin,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {admin}\r\nOrigin: https://evil.example\r\n\
             Sec-Fetch-Site: cross-site\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
        ),
    )
}

/// The sample `name` (labels included) in a Prometheus exposition, 0 if absent.
fn sample(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0.0)
}

fn get(admin: SocketAddr, path: &str) -> (u16, String) {
    raw(
        admin,
        &format!("GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n"),
    )
}

/// The token a sidecar wrote to `--admin-token-file`.
fn token(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

fn post_with_token(admin: SocketAddr, path: &str, token: &str) -> (u16, String) {
    raw(
        admin,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {admin}\r\nAuthorization: Bearer {token}\r\n\
             Content-Length: 0\r\n\r\n"
        ),
    )
}

#[test]
fn a_web_page_cannot_kick_or_lock_and_a_caller_without_the_token_cannot_either() {
    let net = Net::start("admin-csrf", None);
    let a = net.join_with("m", "alice", &["--host"]);
    let b = net.join("m", "bob");
    a.wait(LIMIT, "two participants", |s| {
        s["roster"].as_array().is_some_and(|p| p.len() == 2)
    });
    let bob_slot = b.wait(LIMIT, "a slot", |s| s["sender_slot"].is_u64())["sender_slot"]
        .as_u64()
        .unwrap();
    // The reported attack: a cross-site POST from a web page (no token, foreign Origin).
    for path in [format!("/kick/{bob_slot}"), "/lock".to_owned()] {
        let (code, _) = cross_site_post(a.admin, &path);
        assert_eq!(code, 403, "cross-site POST {path} answered {code}");
    }
    // A local caller without the token, or with a wrong one.
    let (code, _) = raw(
        a.admin,
        &format!("POST /lock HTTP/1.1\r\nHost: {}\r\n\r\n", a.admin),
    );
    assert_eq!(code, 401, "POST /lock without a token answered {code}");
    let (code, _) = post_with_token(a.admin, "/lock", &"0".repeat(64));
    assert_eq!(code, 401, "POST /lock with a wrong token answered {code}");
    // With the right token but sent by a web page (the token is not enough on its own).
    let right = token(&a.token_file);
    let (code, _) = raw(
        a.admin,
        &format!(
            "POST /lock HTTP/1.1\r\nHost: {}\r\nOrigin: https://evil.example\r\n\
             Authorization: Bearer {right}\r\n\r\n",
            a.admin
        ),
    );
    assert_eq!(
        code, 403,
        "POST /lock with the token from evil.example: {code}"
    );
    // Nothing changed: bob is in, the meeting open.
    thread::sleep(Duration::from_millis(800));
    let (sa, sb) = (a.status().unwrap(), b.status().unwrap());
    assert!(sb["ended"].is_null(), "bob: {sb}");
    assert_eq!(sa["locked"], false, "alice: {sa}");
    // Every refusal was counted, by reason.
    let (_, metrics) = get(a.admin, "/metrics");
    assert_eq!(
        sample(&metrics, "veil_admin_refused_total{reason=\"cross_site\"}"),
        3.0
    );
    assert_eq!(
        sample(
            &metrics,
            "veil_admin_refused_total{reason=\"missing_token\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&metrics, "veil_admin_refused_total{reason=\"wrong_token\"}"),
        1.0
    );
    // The token is in no log.
    assert!(!a.proc.log().contains(&right));
    // The leader with the token still can.
    let (code, _) = post_with_token(a.admin, "/lock", &right);
    assert_eq!(code, 200);
    a.wait(LIMIT, "the lock", |s| s["locked"] == true);
    let (code, _) = post_with_token(a.admin, &format!("/kick/{bob_slot}"), &right);
    assert_eq!(code, 200);
    b.wait(LIMIT, "being kicked", |s| s["ended"] == "Kicked");
}

#[test]
fn dns_rebinding_cannot_read_the_status() {
    let net = Net::start("admin-rebind", None);
    let a = net.join_with("m", "alice", &["--host"]);
    // A rebound name resolves to 127.0.0.1, but the browser sends the page's own Host.
    for host in [
        "evil.example",
        "evil.example:80",
        &format!("evil.example:{}", a.admin.port()),
    ] {
        let (code, body) = raw(
            a.admin,
            &format!("GET /status HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        );
        assert_eq!(code, 421, "GET /status with Host {host}: {code} {body}");
        assert!(!body.contains("security_code"));
    }
    // A same-origin fetch from a page the endpoint itself served would be fine; a cross-site
    // one is refused even for a GET.
    let (code, _) = raw(
        a.admin,
        &format!(
            "GET /status HTTP/1.1\r\nHost: {}\r\nSec-Fetch-Site: cross-site\r\n\r\n",
            a.admin
        ),
    );
    assert_eq!(code, 403);
    // curl's requests pass: Host is the bound address (or localhost on loopback).
    assert_eq!(get(a.admin, "/status").0, 200);
    let (code, _) = raw(
        a.admin,
        &format!(
            "GET /status HTTP/1.1\r\nHost: localhost:{}\r\n\r\n",
            a.admin.port()
        ),
    );
    assert_eq!(code, 200);
    let (_, metrics) = get(a.admin, "/metrics");
    assert_eq!(
        sample(&metrics, "veil_admin_refused_total{reason=\"bad_host\"}"),
        3.0
    );
}

/// Waits for `proc` to exit; its exit status and log.
fn exit_within(mut proc: Proc, limit: Duration) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = proc.child.try_wait().unwrap() {
            return (status, proc.log());
        }
        assert!(
            Instant::now() < deadline,
            "still running with a public --admin; log:\n{}",
            proc.log()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

fn psk_sidecar(dir: &Path, admin: &str, extra: &[&str]) -> Command {
    let key_file = dir.join("meeting.toml");
    if !key_file.exists() {
        let out = veil()
            .args(["keygen", "--psk", "--meeting", "t", "--slots", "2"])
            .output()
            .unwrap();
        std::fs::write(&key_file, out.stdout).unwrap();
    }
    let mut cmd = veil();
    cmd.arg("sidecar")
        .args([
            "--key-file",
            key_file.to_str().unwrap(),
            "--sender-slot",
            "0",
        ])
        .args(["--local-listen", &free_udp().to_string()])
        .args(["--local-deliver", &free_udp().to_string()])
        .args(["--bind", &free_udp().to_string()])
        .args(["--remote", &free_udp().to_string()])
        .args(["--engine", "mio", "--workers", "1"])
        .args(["--admin", admin])
        .args(extra);
    cmd
}

#[test]
fn a_non_loopback_admin_needs_admin_public() {
    let dir = scratch_dir("admin-public");
    let mut relay = veil();
    relay.args(["relay", "--listen", "127.0.0.1:0", "--admin", "0.0.0.0:0"]);
    relay.arg("--ticket-key").arg(dir.join("relay.ticket-key"));
    let mut board = veil();
    board.args(["board", "--insecure-plaintext", "--listen", "127.0.0.1:0"]);
    board.args(["--admin", "0.0.0.0:0"]);
    let sidecar = psk_sidecar(&dir, "0.0.0.0:0", &[]);
    for (name, cmd) in [("relay", relay), ("board", board), ("sidecar", sidecar)] {
        let (status, log) = exit_within(Proc::spawn(cmd, &dir, name), Duration::from_secs(10));
        assert!(!status.success(), "{name}");
        assert!(log.contains("--admin-public"), "{name}: {log}");
    }
    // With the opt-in it runs, and then every request needs the token, GETs too.
    let token_file = dir.join("relay.token");
    let mut relay = veil();
    relay.args(["relay", "--listen", "127.0.0.1:0", "--admin", "0.0.0.0:0"]);
    relay.arg("--ticket-key").arg(dir.join("relay.ticket-key"));
    relay.args([
        "--admin-public",
        "--admin-token-file",
        token_file.to_str().unwrap(),
    ]);
    let mut proc = Proc::spawn(relay, &dir, "relay-public");
    let line = proc.line();
    let port: u16 = line
        .split_whitespace()
        .nth(5)
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .unwrap()
        .port();
    let admin: SocketAddr = ([127, 0, 0, 1], port).into();
    assert_eq!(get(admin, "/metrics").0, 401);
    let right = token(&token_file);
    let (code, body) = raw(
        admin,
        &format!("GET /metrics HTTP/1.1\r\nHost: {admin}\r\nAuthorization: Bearer {right}\r\n\r\n"),
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("veil_relay_received_total"));
}

/// One byte a second, as long as the server keeps the connection: how long it did.
fn slowloris(admin: SocketAddr) -> thread::JoinHandle<Duration> {
    let mut stream = TcpStream::connect(admin).unwrap();
    let started = Instant::now();
    thread::spawn(move || {
        let request = format!("GET /metrics HTTP/1.1\r\nHost: {admin}\r\nX-Slow: ");
        let mut bytes = request.bytes().chain(std::iter::repeat(b'a'));
        stream
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        while started.elapsed() < Duration::from_secs(30) {
            let byte = [bytes.next().unwrap()];
            if stream.write_all(&byte).is_err() {
                break;
            }
            // The server answering (408) or closing ends it too.
            let mut buf = [0u8; 256];
            match stream.read(&mut buf) {
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => break,
            }
            thread::sleep(Duration::from_secs(1));
        }
        started.elapsed()
    })
}

/// A slow client holds no one up, and is cut off at the total deadline.
fn slow_client_is_bounded(admin: SocketAddr, what: &str) {
    let slow = slowloris(admin);
    thread::sleep(Duration::from_millis(1500));
    for _ in 0..3 {
        let started = Instant::now();
        let (code, _) = get(admin, "/metrics");
        assert_eq!(code, 200, "{what}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{what}: /metrics took {:?} beside a slow client",
            started.elapsed()
        );
    }
    let held = slow.join().unwrap();
    assert!(
        held < Duration::from_secs(6),
        "{what}: the slow client was served for {held:?}"
    );
    let (_, metrics) = get(admin, "/metrics");
    assert_eq!(
        sample(&metrics, "veil_admin_refused_total{reason=\"deadline\"}"),
        1.0,
        "{what}"
    );
}

#[test]
fn a_slow_client_neither_stops_the_admin_servers_nor_outlives_the_deadline() {
    let dir = scratch_dir("admin-slow");
    let relay = Relay::start(&dir, &[]);
    slow_client_is_bounded(relay.admin, "relay");

    let mut board = veil();
    board.args(["board", "--insecure-plaintext", "--listen", "127.0.0.1:0"]);
    board.args(["--admin", "127.0.0.1:0"]);
    let mut board = Proc::spawn(board, &dir, "board");
    let admin = loop {
        let line = board.line();
        assert!(!line.is_empty(), "the board exited: {}", board.log());
        if let Some(rest) = line.strip_prefix("admin on ") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    slow_client_is_bounded(admin, "board");
    // The board has no commands: nothing but GET, token or not.
    let (code, _) = raw(
        admin,
        &format!("POST /stats HTTP/1.1\r\nHost: {admin}\r\nContent-Length: 0\r\n\r\n"),
    );
    assert_eq!(code, 405);

    let admin = free_tcp();
    let _sidecar = Proc::spawn(psk_sidecar(&dir, &admin.to_string(), &[]), &dir, "psk");
    media_support::wait_for(LIMIT, "the sidecar's admin endpoint", || {
        TcpStream::connect(admin).is_ok()
    });
    slow_client_is_bounded(admin, "sidecar");
}

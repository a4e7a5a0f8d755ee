//! A browser joins the meeting (issue 17), in headless Chromium driven through chromedriver
//! (fantoccini): the page `veil web` serves, from the link the host's sidecar hands out
//! (`POST /invite`), with its camera (Chromium's fake device) through WebCodecs VP8, over the
//! board's WebSocket and the relay's WebTransport, beside a native participant that is a
//! meeting-mode sidecar in RTP mode with ffmpeg behind it. Checked from outside, through
//! `window.veilStatus()` and ffmpeg's files:
//! - the browser and the sidecar show one security code and one key;
//! - ffmpeg's frames arrive at the browser (their SHA-256 among what it received, in order)
//!   and are decoded; the browser's camera frames arrive at ffmpeg (each one it sent);
//! - the host kicks the browser: the meeting rotates, the browser has left with its keys
//!   erased, the same link is refused, a new invite works; a link without an invite, or with
//!   someone else's, is refused;
//! - the page mid-meeting is saved as a screenshot (target/browser-call.png).
//!
//! Needs chromium, chromedriver, ffmpeg and the page's wasm (built here with
//! tools/web/js/build-page --pkg-only, which needs wasm-bindgen-cli 0.2.130 and the wasm32
//! target); .ci/run installs them all. Without them the test says what is missing and passes
//! without checking anything, unless $VEIL_REQUIRE_MEDIA_TOOLS is set (.ci/run sets it), where it
//! fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod media_support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use media_support::ffmpeg::{self, Receiver, decoded_frames, ivf_frames};
use media_support::meeting::{LIMIT, Net, Sidecar};
use media_support::{Proc, count_at_offsets, free_tcp, relay_tap, wait_for};
use serde_json::{Value, json};
use veil_cli::web::{Assets, PageServer};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What is missing to run this test, if anything.
fn missing() -> Option<String> {
    let have = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    for (cmd, arg) in [
        ("chromium", "--version"),
        ("chromedriver", "--version"),
        ("wasm-bindgen", "--version"),
    ] {
        if !have(cmd, arg) {
            return Some(format!("{cmd} is not installed"));
        }
    }
    (!ffmpeg::available()).then(|| "ffmpeg with libvpx is not installed".to_owned())
}

/// The page's wasm-bindgen output, built by tools/web/js/build-page --pkg-only.
fn page_assets() -> Assets {
    let dir = workspace().join("target/browser-test-pkg");
    let status = Command::new(workspace().join("tools/web/js/build-page"))
        .arg("--pkg-only")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success(), "build-page");
    let js = std::fs::read_to_string(dir.join("veil_web_js.js")).unwrap();
    let wasm = std::fs::read(dir.join("veil_web_js_bg.wasm")).unwrap();
    Assets {
        pkg: Some((js.leak(), wasm.leak())),
        ..Assets::built_in()
    }
}

/// `veil web` in this process, on a free port: its address.
fn page_server() -> SocketAddr {
    let server = PageServer::bind("127.0.0.1:0".parse().unwrap(), page_assets(), false).unwrap();
    let addr = server.local_addr().unwrap();
    std::thread::spawn(move || server.run());
    addr
}

/// chromedriver on a free port, and a headless Chromium session with a fake camera.
async fn browser(dir: &Path) -> (Proc, Client) {
    let port = free_tcp().port();
    let mut cmd = Command::new("chromedriver");
    cmd.arg(format!("--port={port}"));
    let driver = Proc::spawn(cmd, dir, "chromedriver");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                "--window-size=900,1100",
                format!("--user-data-dir={}", dir.join("chromium-profile").display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return (driver, client),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("chromedriver: {e}"),
        }
    }
}

/// The page's `window.veilStatus()`, parsed (`null` before the page runs).
async fn status(page: &Client) -> Value {
    let text = page
        .execute(
            "return window.veilStatus ? window.veilStatus() : null;",
            vec![],
        )
        .await
        .unwrap();
    text.as_str()
        .map_or(Value::Null, |t| serde_json::from_str(t).unwrap())
}

/// Polls the page's status until `done` holds, at most `limit`; the last status.
async fn until(page: &Client, limit: Duration, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let s = status(page).await;
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(keyctl::crypto::sha256(data))
}

/// Whether every item of `part` is in `whole`, in the same order.
fn in_order(part: &[String], whole: &[Value]) -> bool {
    let mut rest = whole.iter().filter_map(Value::as_str);
    part.iter().all(|p| rest.any(|w| w == p))
}

#[test]
fn a_browser_holds_an_encrypted_video_call_with_ffmpeg_behind_a_sidecar() {
    if let Some(what) = missing() {
        assert!(
            std::env::var_os(ffmpeg::REQUIRE).is_none(),
            "${} is set, and {what}",
            ffmpeg::REQUIRE
        );
        eprintln!("{what}: skipped");
        return;
    }
    let page_addr = page_server();
    let net = Net::with_websocket("browser");
    let (relay_web, relay_sha) = net.relay.web.unwrap();
    let ffmpeg_out = ffmpeg::rtp_port();
    let ffmpeg_in = ffmpeg::rtp_port();
    let (ws, web_url) = (
        net.ws_addr.unwrap().to_string(),
        format!("http://{page_addr}/"),
    );
    let (relay_web, relay_sha) = (relay_web.to_string(), hex::encode(relay_sha));
    let client = format!("127.0.0.1:{ffmpeg_out}");
    let flags = [
        "--host",
        "--invites",
        "--rtp",
        "--local-client",
        &client,
        "--web-url",
        &web_url,
        "--board-ws",
        &ws,
        "--web-relay",
        &relay_web,
        "--web-relay-sha256",
        &relay_sha,
    ];
    let deliver = format!("127.0.0.1:{ffmpeg_in}").parse().unwrap();
    let alice = net.join_to("m", "alice", Some(deliver), &flags);
    alice.wait(LIMIT, "the host leading", |s| s["is_leader"] == true);
    let link = alice.invite("webby")["link"].as_str().unwrap().to_owned();
    assert!(
        link.contains("&media=rtp") && link.contains("&relay="),
        "{link}"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(call(&net, &alice, &link, ffmpeg_out, ffmpeg_in));
}

async fn call(net: &Net, alice: &Sidecar, link: &str, ffmpeg_out: u16, ffmpeg_in: u16) {
    let (_driver, page) = browser(&net.dir).await;
    page.goto(link).await.unwrap();

    // One meeting: the same key and security code, the relay session up, media flowing.
    let s = until(&page, LIMIT, "the browser keyed like the host", |s| {
        let host = alice.status().unwrap_or_default();
        s["relay"] == "connected"
            && !s["mkSeqNum"].is_null()
            && s["mkSeqNum"] == host["mk_seq"]
            && s["framesSent"].as_u64() > Some(0)
    })
    .await;
    let host = alice.status().unwrap();
    assert_eq!(
        s["securityCode"], host["security_code"],
        "one security code"
    );
    assert_eq!(s["securityCode"].as_str().unwrap().len(), 39);

    // The browser's camera to ffmpeg behind the sidecar: every frame ffmpeg wrote is one the
    // browser sent, in order.
    // 40 frames hold a keyframe (the page asks for one every 30), so ffmpeg decodes from it on.
    let receiver = Receiver::start(&net.dir, ffmpeg_in, 40);
    let ivf = receiver.ivf.clone();
    let received = tokio::task::spawn_blocking(move || receiver.finish(Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(
        received.len(),
        40,
        "ffmpeg received 40 of the browser's frames"
    );
    let first_key = received.iter().position(|f| f[0] & 1 == 0).unwrap();
    assert_eq!(
        decoded_frames(&ivf),
        40 - first_key,
        "ffmpeg decodes every frame from the first keyframe on"
    );
    let sent = status(&page).await["sentFrameHashes"].clone();
    let received: Vec<String> = received.iter().map(|f| sha256_hex(f)).collect();
    assert!(
        in_order(&received, sent.as_array().unwrap()),
        "ffmpeg's frames are the browser's"
    );

    // ffmpeg to the browser: its frames arrive and are decoded.
    // A third member at the relay records everything it forwards to the meeting (registered
    // now: it does not refresh, and a registration lives 10 s).
    let instance = host["meeting"].as_str().unwrap().to_owned();
    let ticket_key = net.dir.join("ticket.key");
    let tap = relay_tap(&net.relay, instance.as_bytes(), Some(&ticket_key));
    wait_for(LIMIT, "the tap registered", || {
        net.relay.metric("veil_relay_registered") == 3.0
    });
    let sent_ivf = net.dir.join("ffmpeg-sent.ivf");
    let ivf = sent_ivf.clone();
    let to = alice.listen;
    tokio::task::spawn_blocking(move || ffmpeg::send_vp8(to, ffmpeg_out, 45, 1_000, &ivf))
        .await
        .unwrap();
    let frames: Vec<String> = ivf_frames(&sent_ivf)
        .iter()
        .map(|f| sha256_hex(f))
        .collect();
    assert_eq!(frames.len(), 45, "ffmpeg encoded its frames");
    until(
        &page,
        LIMIT,
        "ffmpeg's frames in the browser, decoded",
        |s| {
            s["receivedFrameHashes"]
                .as_array()
                .is_some_and(|got| in_order(&frames, got))
                && s["framesDecoded"].as_u64() >= Some(frames.len() as u64)
        },
    )
    .await;
    // What the relay forwarded meanwhile holds none of ffmpeg's frames in the clear: no
    // 16-byte run from anywhere in any of them.
    // (The camera keeps sending: take what arrived so far, not what arrives until a pause.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    let forwarded: Vec<u8> = tap.take(Duration::ZERO).concat();
    assert!(forwarded.len() > 10_000, "the tap saw the media");
    for frame in ivf_frames(&sent_ivf) {
        for at in [0, frame.len() / 3, frame.len() * 2 / 3, frame.len() - 16] {
            let marker = &frame[at..at + 16];
            assert_eq!(
                count_at_offsets(&forwarded, marker),
                0,
                "plaintext at the relay"
            );
        }
    }
    // Nothing kept: no storage, no cookie, no IndexedDB database.
    let kept = page
        .execute_async(
            "const done = arguments[arguments.length - 1];
             indexedDB.databases().then((dbs) => done(
               [localStorage.length, sessionStorage.length, document.cookie.length, dbs.length]));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(kept, json!([0, 0, 0, 0]), "the page stored something");
    let shot = page.screenshot().await.unwrap();
    std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("../browser-call.png"),
        shot,
    )
    .unwrap();

    // The host kicks the browser: the meeting rotates, the browser is out with its keys gone.
    let before = Sidecar::mk_seq(&alice.status().unwrap());
    let webby = alice.status().unwrap()["roster"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "webby")
        .unwrap()["slot"]
        .as_u64()
        .unwrap();
    alice.post(&format!("/kick/{webby}"));
    let s = until(&page, LIMIT, "the browser out", |s| !s["ended"].is_null()).await;
    assert_eq!(s["ended"], "Kicked", "{s}");
    alice.wait(LIMIT, "a rotation", |h| Sidecar::mk_seq(h) > before);

    // The same link again (a reloaded page, a fresh identity) is refused; so is a link
    // without an invite, or with another user's invite; a new invite works.
    for (what, url) in [
        ("the kicked link", link.to_owned()),
        ("no invite", strip_invite(link)),
        ("another user's invite", swap_user(link, "mallory")),
    ] {
        let before = rejected(alice);
        page.goto("about:blank").await.unwrap();
        page.goto(&url).await.unwrap();
        // The page runs and joins the board; the leader refuses it (an alert at the host).
        until(&page, LIMIT, what, |s| {
            !s.is_null() && rejected(alice) > before
        })
        .await;
        // Well past the leader's join batch: still no key.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let s = status(&page).await;
        assert!(s["mkSeqNum"].is_null(), "{what}: keyed anyway: {s}");
    }
    let fresh = alice.invite("webby-2")["link"].as_str().unwrap().to_owned();
    page.goto("about:blank").await.unwrap();
    page.goto(&fresh).await.unwrap();
    until(&page, LIMIT, "the new invitee keyed", |s| {
        !s["mkSeqNum"].is_null() && s["mkSeqNum"] == alice.status().unwrap_or_default()["mk_seq"]
    })
    .await;
    page.close().await.unwrap();
}

/// How many invite refusals the host (the leader) has raised an alert for.
fn rejected(host: &Sidecar) -> usize {
    host.status().unwrap_or_default()["alerts"]
        .as_array()
        .map_or(0, |alerts| {
            alerts
                .iter()
                .filter(|a| a.as_str().unwrap_or_default().starts_with("InviteRejected"))
                .count()
        })
}

/// `link` without its `&invite=...` field.
fn strip_invite(link: &str) -> String {
    let (head, fragment) = link.split_once('#').unwrap();
    let kept: Vec<&str> = fragment
        .split('&')
        .filter(|f| !f.starts_with("invite="))
        .collect();
    format!("{head}#{}", kept.join("&"))
}

/// `link` with its invite kept and its user changed: an invite is for one user only.
fn swap_user(link: &str, user: &str) -> String {
    let (head, fragment) = link.split_once('#').unwrap();
    let fields: Vec<String> = fragment
        .split('&')
        .map(|f| {
            if f.starts_with("user=") {
                format!("user={user}")
            } else {
                f.to_owned()
            }
        })
        .collect();
    format!("{head}#{}", fields.join("&"))
}

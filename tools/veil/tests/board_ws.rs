//! The board over WebSocket (`veil board --ws-listen`): participants on the framed stream and
//! on WebSocket meet in one meeting through the same core, over plaintext on loopback and over
//! TLS with a pinned certificate; a WebSocket message that is not exactly one frame, a text
//! message, an oversize message or an upgrade to another path is refused and counted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod board_util;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use board_util::{Member, converged, identity, options, wait_until};
use tungstenite::Message;
use veil_board::client::ClientTls;
use veil_board::frame::{ClientFrame, Hello, MAX_FRAME, ServerFrame};
use veil_board::tls::ServerTls;
use veil_board::{BoardConfig, BoardError, BoardHandle, BoardServer, ErrorReason};

const LIMIT: Duration = Duration::from_secs(20);

fn board(tls: Option<ServerTls>) -> BoardHandle {
    BoardServer::bind(BoardConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls,
        tamper: None,
    })
    .unwrap()
    .with_websocket("127.0.0.1:0".parse().unwrap())
    .unwrap()
    .spawn()
    .unwrap()
}

fn ws_member(board: &BoardHandle, tls: ClientTls, meeting: &str, name: &str) -> Member {
    let mut opts = options(board.ws_addr.unwrap(), tls);
    opts.websocket = true;
    Member::join_over(opts, meeting, name, false, identity())
}

#[test]
fn websocket_and_stream_participants_share_a_meeting() {
    let board = board(None);
    let mut alice = Member::join_with(
        board.addr,
        ClientTls::Plaintext,
        "m-ws",
        "alice",
        true,
        identity(),
    );
    let mut bob = ws_member(&board, ClientTls::Plaintext, "m-ws", "bob");
    let mut carol = ws_member(&board, ClientTls::Plaintext, "m-ws", "carol");
    wait_until(
        &mut [&mut alice, &mut bob, &mut carol],
        LIMIT,
        "a common key across both transports",
        |m| converged(m, 3),
    );
    assert_eq!(board.stats.snapshot().participants, 3);
}

#[test]
fn wss_with_the_pinned_fingerprint_carries_a_meeting() {
    let board = board(Some(
        ServerTls::self_signed(std::net::Ipv4Addr::LOCALHOST.into()).unwrap(),
    ));
    let pin = ClientTls::PinnedSha256(board.fingerprint.unwrap());
    let mut alice = Member::join_with(board.addr, pin.clone(), "m-wss", "alice", true, identity());
    let mut bob = ws_member(&board, pin, "m-wss", "bob");
    wait_until(&mut [&mut alice, &mut bob], LIMIT, "a common key", |m| {
        converged(m, 2)
    });
    // Plaintext WebSocket against the TLS listener fails, and the board counts it.
    let mut opts = options(board.ws_addr.unwrap(), ClientTls::Plaintext);
    opts.websocket = true;
    let err = board_util::spawn_over(opts, "m-wss", "eve", false, identity())
        .expect_err("plaintext WebSocket against wss");
    assert!(
        matches!(err, veil_cli::meeting::MeetingDriverError::Board(_)),
        "{err:?}"
    );
    wait_for(
        || board.stats.errors(ErrorReason::Tls) >= 1,
        "the TLS error counted",
    );
}

#[test]
fn plaintext_websocket_is_refused_off_loopback() {
    let err = BoardServer::bind(BoardConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: None,
        tamper: None,
    })
    .unwrap()
    .with_websocket("0.0.0.0:0".parse().unwrap())
    .expect_err("plaintext WebSocket on every interface");
    assert!(
        matches!(err, BoardError::PlaintextNotLoopback(_)),
        "{err:?}"
    );
}

fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + LIMIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A raw WebSocket to the board's /board, joined to `meeting` as `name` (the welcome read).
fn raw_joined(addr: SocketAddr, meeting: &str, name: &str) -> tungstenite::WebSocket<TcpStream> {
    let mut ws = raw(addr, "/board");
    let hello = ClientFrame::Hello(Hello {
        meeting_id: meeting,
        name,
        host: false,
        ivk: identity().verifying_key(),
    });
    ws.send(Message::Binary(hello.encode().into())).unwrap();
    match ws.read().unwrap() {
        Message::Binary(b) => {
            assert!(matches!(
                ServerFrame::parse(&b[4..]).unwrap(),
                ServerFrame::Welcome(_)
            ));
        }
        other => panic!("expected the welcome, got {other:?}"),
    }
    ws
}

fn raw(addr: SocketAddr, path: &str) -> tungstenite::WebSocket<TcpStream> {
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let config = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let url = format!("ws://{addr}{path}");
    tungstenite::client::client_with_config(url.as_str(), sock, Some(config))
        .unwrap()
        .0
}

/// Sends `message` on a joined socket and expects the board to refuse it (a Refused frame or
/// the close) and count `reason` once more.
fn refused(board: &BoardHandle, message: Message, reason: ErrorReason) {
    let before = board.stats.errors(reason);
    let mut ws = raw_joined(board.ws_addr.unwrap(), "m-bad", "mallory");
    // A message past the cap may be cut off while still being written: the board refuses it
    // from its header and closes, and the rest of the write then finds the socket gone.
    let sent = ws.send(message);
    let cut_off = matches!(
        &sent,
        Err(tungstenite::Error::Io(e))
            if matches!(e.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset)
    );
    assert!(sent.is_ok() || cut_off, "{sent:?}");
    // Whatever comes back (a Refused frame, then the close), the socket ends.
    let deadline = Instant::now() + LIMIT;
    let mut open = !cut_off;
    while open {
        match ws.read() {
            Ok(Message::Binary(b)) => {
                if let Ok(ServerFrame::Refused(_)) = ServerFrame::parse(&b[4..]) {
                    continue;
                }
            }
            Ok(Message::Close(_)) | Err(_) => open = false,
            Ok(_) => {}
        }
        assert!(Instant::now() < deadline, "the board kept the socket open");
    }
    wait_for(
        || board.stats.errors(reason) > before,
        &format!("{reason:?} counted"),
    );
}

/// A length-prefixed frame around `body`.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

#[test]
fn a_message_that_is_not_exactly_one_frame_is_refused_and_counted() {
    let board = board(None);
    let bye = ClientFrame::Bye.encode();
    // Two frames in one message.
    refused(
        &board,
        Message::Binary([bye.clone(), bye.clone()].concat().into()),
        ErrorReason::Trailing,
    );
    // Half a frame.
    refused(
        &board,
        Message::Binary(bye[..bye.len() - 1].to_vec().into()),
        ErrorReason::Truncated,
    );
    // A length prefix past the cap.
    refused(
        &board,
        Message::Binary(((MAX_FRAME + 1) as u32).to_be_bytes().to_vec().into()),
        ErrorReason::Oversize,
    );
    // Text is not the board's.
    refused(&board, Message::Text("hello".into()), ErrorReason::BadType);
    // A message past the cap is refused by the WebSocket layer before it is kept whole.
    refused(
        &board,
        Message::Binary(frame(&vec![0; MAX_FRAME + 1]).into()),
        ErrorReason::Oversize,
    );
    // Nobody else was disturbed: the board still serves a meeting.
    let mut a = ws_member(&board, ClientTls::Plaintext, "m-after", "a");
    let mut b = ws_member(&board, ClientTls::Plaintext, "m-after", "b");
    wait_until(&mut [&mut a, &mut b], LIMIT, "a common key", |m| {
        converged(m, 2)
    });
}

#[test]
fn an_upgrade_to_another_path_is_refused() {
    let board = board(None);
    let before = board.stats.errors(ErrorReason::WebSocket);
    let sock = TcpStream::connect(board.ws_addr.unwrap()).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let url = format!("ws://{}/other", board.ws_addr.unwrap());
    match tungstenite::client::client(url.as_str(), sock) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            assert_eq!(response.status(), 404);
        }
        other => panic!("expected a 404, got {:?}", other.map(|(_, r)| r.status())),
    }
    wait_for(
        || board.stats.errors(ErrorReason::WebSocket) > before,
        "the refused upgrade counted",
    );
    // A stream client that speaks frames to the WebSocket port gets nowhere either: the
    // handshake waits for a request (the hello timeout ends a socket that sends nothing more)
    // and fails when the peer gives up.
    let mut raw = TcpStream::connect(board.ws_addr.unwrap()).unwrap();
    std::io::Write::write_all(&mut raw, &ClientFrame::Bye.encode()).unwrap();
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    wait_for(
        || board.stats.errors(ErrorReason::WebSocket) > before + 1,
        &format!("the non-HTTP bytes counted: {:?}", board.stats.snapshot()),
    );
}

/// The browser participant's core (`veil-web`) driven over a real WebSocket to `veil board
/// --ws-listen`, as a page's JavaScript would pump it, beside a native participant on the
/// framed stream: both hold the same key, and media sealed by one opens at the other.
#[test]
fn the_browser_core_over_a_websocket_meets_a_native_participant() {
    use keyctl::meeting::Millis;
    use veil_web::{MeetingLink, WebEvent, WebParticipant};

    let board = board(None);
    let mut alice = Member::join_with(
        board.addr,
        ClientTls::Plaintext,
        "m-web",
        "alice",
        true,
        identity(),
    );
    let link = MeetingLink::parse(&format!(
        "veil1&board={}&meeting=m-web",
        board.ws_addr.unwrap()
    ))
    .unwrap();
    let mut rng = keyctl::rng::OsRng::new();
    let mut web = WebParticipant::new(link, "webby", &mut rng).unwrap();
    let mut ws = raw(board.ws_addr.unwrap(), "/board");
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    // The wall clock, as the native participant's driver reads it (a page reads Date.now()).
    let now = || {
        Millis(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64,
        )
    };
    let mut keyed = Vec::new();
    let mut web_me = None;
    let deadline = Instant::now() + LIMIT;
    loop {
        while let Some(message) = web.poll_transmit() {
            ws.send(Message::Binary(message.into())).unwrap();
        }
        match ws.read() {
            Ok(Message::Binary(b)) => web.handle_board(&b, now(), &mut rng).unwrap(),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("websocket: {e}"),
        }
        if web.poll_timeout().is_some_and(|t| t <= now()) {
            web.handle_timeout(now(), &mut rng).unwrap();
        }
        while let Some(e) = web.poll_event() {
            match e {
                WebEvent::Keyed { mk_seq } => keyed.push(mk_seq),
                WebEvent::Joined { me, .. } => web_me = Some(me),
                _ => {}
            }
        }
        alice.drain();
        let both = alice
            .latest()
            .is_some_and(|u| u.roster.len() == 2 && keyed.last() == Some(&u.mk_seq));
        // Keyed on both sides and past the web participant's activation (about 2 s after its
        // key arrived, whitepaper 3.7.6): it seals.
        if both && web.seal(now(), b"probe").is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no common key: web {keyed:?}, alice {:?}",
            alice.latest().map(|u| u.mk_seq)
        );
    }
    assert_eq!(
        web.security_code(),
        alice.p.status().security_code,
        "one security code"
    );
    assert_eq!(web.roster().unwrap().entries.len(), 2);
    let sealed = web.seal(now(), b"from the browser").unwrap();
    // Alice's media side is the dataplane: open it with a keyring keyed as her sidecar's.
    let update = alice.latest().unwrap().clone();
    let web_me = web_me.unwrap();
    let me = update
        .roster
        .values()
        .find(|p| **p != web_me)
        .unwrap()
        .clone();
    let meeting = web.meeting().unwrap().clone();
    let handoff = dataplane::keyring::Handoff::new(
        me,
        &meeting,
        dataplane::sframe::CipherSuite::Aes256GcmSha512_128,
    );
    handoff
        .handle(&meeting, &keyctl::meeting::Event::KeyUpdate(update), now())
        .unwrap();
    let mut worker = dataplane::keyring::WorkerKeys::new(dataplane::packet::Mode::Datagram);
    let mut buf = sealed.clone();
    let range = worker
        .open(&handoff.keyring().load_full(), now(), &mut buf)
        .unwrap();
    assert_eq!(&buf[range], b"from the browser");
}

/// A wss participant whose socket is full (it stopped reading while others post) and that
/// then posts itself, while more is queued for it, is backpressured, not disconnected, and
/// later reads everything queued for it. (Review finding: rustls' StreamOwned, which the
/// listener first used, returns `Ok(0)` from a write whose TLS buffer is full after its
/// `complete_io` read something, and tungstenite takes that for a reset. The race needs the
/// board to flush towards the participant while its post is unread; this test did not hit it
/// on the old code, so it guards the backpressure, and the adapter in ws.rs removes the case.)
#[test]
fn a_wss_participant_that_posts_while_its_output_waits_is_not_dropped() {
    use keyctl::wire::{Binding, Field, Id, KeyAnnouncement, Message as KeyctlMessage};
    use veil_board::client::{BoardClient, BoardEvent, Join};

    let board = board(Some(
        ServerTls::self_signed(std::net::Ipv4Addr::LOCALHOST.into()).unwrap(),
    ));
    let pin = ClientTls::PinnedSha256(board.fingerprint.unwrap());
    let mut opts = options(board.ws_addr.unwrap(), pin.clone());
    opts.websocket = true;
    let join = |name: &str, ivk: u8| Join {
        meeting_id: "m-full".to_owned(),
        name: name.to_owned(),
        host: false,
        ivk: [ivk; 32],
    };
    let (mut alice, wa) = BoardClient::connect(&opts, &join("alice", 1)).unwrap();
    let (mut bob, wb) = BoardClient::connect(&options(board.addr, pin), &join("bob", 2)).unwrap();
    let ann = |w: &veil_board::client::Welcome, byte: u8| {
        KeyctlMessage::KeyAnnouncement(KeyAnnouncement {
            binding: Binding {
                meeting: w.meeting.clone(),
                participant: w.me.clone(),
                ivk: [byte; 32],
                pk: [2; 32],
                pq: None,
            },
            sig: [3; 64],
            display_name: Id::new(Field::DisplayName, &[b'b'; 200]).unwrap(),
            invite_proof: None,
        })
    };
    // About 2 MiB towards alice, who does not read: well past TLS's window and the socket
    // buffers, well under the 16 MiB queue cap.
    let from_bob = ann(&wb, 2);
    for _ in 0..6_000 {
        bob.post(&from_bob).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    // Alice posts while her output waits, and more keeps coming her way.
    alice.post(&ann(&wa, 1)).unwrap();
    for _ in 0..2_000 {
        bob.post(&from_bob).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        board.stats.errors(ErrorReason::Io),
        0,
        "{:?}",
        board.stats.snapshot()
    );
    assert_eq!(board.stats.snapshot().participants, 2);
    // Alice reads: every one of bob's posts arrives.
    let mut got = 0;
    let deadline = Instant::now() + LIMIT;
    while got < 8_000 {
        assert!(Instant::now() < deadline, "alice got {got} of bob's posts");
        if let Some(BoardEvent::Message(_)) = alice.recv(Duration::from_millis(200)).unwrap() {
            got += 1;
        }
    }
}

/// A port probe (connect, close) and a page that goes away without a Close frame (a closed
/// tab) are disconnects, as on the stream, not refusals: no error is counted.
#[test]
fn probes_and_abrupt_closes_are_disconnects_not_errors() {
    let board = board(None);
    let probe = TcpStream::connect(board.ws_addr.unwrap()).unwrap();
    drop(probe);
    let mut ws = raw_joined(board.ws_addr.unwrap(), "m-tab", "tab");
    wait_for(
        || board.stats.snapshot().participants == 1,
        "the tab joined",
    );
    // The tab closes: the socket goes without a Close frame.
    ws.get_mut().shutdown(std::net::Shutdown::Both).unwrap();
    drop(ws);
    wait_for(|| board.stats.snapshot().participants == 0, "the tab gone");
    std::thread::sleep(Duration::from_millis(200));
    let errors = board.stats.snapshot().errors;
    assert!(
        errors.values().all(|&n| n == 0),
        "a disconnect counted as an error: {errors:?}"
    );
}

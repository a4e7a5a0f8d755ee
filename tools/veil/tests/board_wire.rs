//! The board's transport: TLS with a pinned certificate, plaintext only on loopback, and
//! hostile bytes (oversize, truncated, wrong version, garbage) counted and closed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod board_util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use board_util::{Member, converged, identity, plain_board, wait_until};
use veil_board::client::ClientTls;
use veil_board::frame::{ClientFrame, MAX_FRAME};
use veil_board::tls::ServerTls;
use veil_board::{BoardConfig, BoardError, BoardHandle, BoardServer, ErrorReason};
use veil_cli::meeting::MeetingDriverError;

const LIMIT: Duration = Duration::from_secs(20);

fn tls_board() -> BoardHandle {
    let listen = "127.0.0.1:0".parse().unwrap();
    BoardServer::bind(BoardConfig {
        listen,
        tls: Some(ServerTls::self_signed(std::net::Ipv4Addr::LOCALHOST.into()).unwrap()),
        tamper: None,
    })
    .unwrap()
    .spawn()
    .unwrap()
}

#[test]
fn tls_with_the_pinned_fingerprint_carries_a_meeting() {
    let board = tls_board();
    let pin = ClientTls::PinnedSha256(board.fingerprint.unwrap());
    let mut a = Member::join_with(board.addr, pin.clone(), "m-tls", "alice", true, identity());
    let mut b = Member::join_with(board.addr, pin, "m-tls", "bob", false, identity());
    wait_until(&mut [&mut a, &mut b], LIMIT, "a common key", |m| {
        converged(m, 2)
    });
}

#[test]
fn a_wrong_fingerprint_is_refused_before_any_post() {
    let board = tls_board();
    let mut wrong = board.fingerprint.unwrap();
    wrong[0] ^= 1;
    let err = Member::try_join(board.addr, ClientTls::PinnedSha256(wrong), "m-tls", "eve")
        .expect_err("joined a board with the wrong certificate");
    assert!(
        matches!(err, MeetingDriverError::Board(BoardError::Tls(_))),
        "{err:?}"
    );
    assert_eq!(board.stats.snapshot().participants, 0);
    // Plaintext against a TLS board fails too, and the board counts the bad handshake.
    let err = Member::try_join(board.addr, ClientTls::Plaintext, "m-tls", "eve")
        .expect_err("plaintext against TLS");
    assert!(matches!(err, MeetingDriverError::Board(_)), "{err:?}");
    wait_for(
        || board.stats.errors(ErrorReason::Tls) >= 1,
        "the TLS error counted",
    );
}

#[test]
fn tls_with_a_ca_file_and_pem_files() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = board_util::TempDir::new("ca");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let (ca_pem, cert_pem, key_pem) = (
        dir.0.join("ca.pem"),
        dir.0.join("board.pem"),
        dir.0.join("board.key"),
    );
    std::fs::write(&ca_pem, ca_cert.pem()).unwrap();
    std::fs::write(&cert_pem, leaf.pem()).unwrap();
    std::fs::write(&key_pem, leaf_key.serialize_pem()).unwrap();
    let board = BoardServer::bind(BoardConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: Some(ServerTls::from_pem_files(&cert_pem, &key_pem).unwrap()),
        tamper: None,
    })
    .unwrap()
    .spawn()
    .unwrap();
    let ca = ClientTls::CaFile(ca_pem);
    let mut a = Member::join_with(board.addr, ca.clone(), "m-ca", "alice", false, identity());
    let mut b = Member::join_with(board.addr, ca, "m-ca", "bob", false, identity());
    wait_until(&mut [&mut a, &mut b], LIMIT, "a common key", |m| {
        converged(m, 2)
    });
    // Another CA's file does not trust this board.
    let other = dir.0.join("other.pem");
    let mut other_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    other_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let other_cert = other_params
        .self_signed(&KeyPair::generate().unwrap())
        .unwrap();
    std::fs::write(&other, other_cert.pem()).unwrap();
    let err = Member::try_join(board.addr, ClientTls::CaFile(other), "m-ca", "eve")
        .expect_err("trusted a board another CA did not sign");
    assert!(
        matches!(err, MeetingDriverError::Board(BoardError::Tls(_))),
        "{err:?}"
    );
    // Missing files are a clear error.
    let err = ServerTls::from_pem_files(&dir.0.join("nope.pem"), &key_pem).unwrap_err();
    assert!(err.to_string().contains("nope.pem"), "{err}");
}

#[test]
fn plaintext_is_refused_off_loopback() {
    let err = BoardServer::bind(BoardConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        tls: None,
        tamper: None,
    })
    .expect_err("plaintext on a wildcard address");
    assert!(matches!(err, BoardError::PlaintextNotLoopback(_)));
    assert!(err.to_string().contains("loopback"), "{err}");
}

fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + LIMIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `bytes` on a fresh connection and returns once the board closed it.
fn send_and_expect_close(board: &BoardHandle, bytes: &[u8]) {
    let mut sock = TcpStream::connect(board.addr).unwrap();
    sock.set_read_timeout(Some(LIMIT)).unwrap();
    sock.write_all(bytes).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

#[test]
fn malformed_frames_are_counted_and_closed() {
    let board = plain_board(None);
    let oversize = u32::try_from(MAX_FRAME + 1).unwrap().to_be_bytes();
    send_and_expect_close(&board, &oversize);
    assert_eq!(board.stats.errors(ErrorReason::Oversize), 1);

    // A hello cut after its meeting ID's length.
    send_and_expect_close(&board, &frame(&[1, 0x01, 0, 5, b'm']));
    assert_eq!(board.stats.errors(ErrorReason::Truncated), 1);

    send_and_expect_close(&board, &frame(&[2, 0x01]));
    assert_eq!(board.stats.errors(ErrorReason::BadVersion), 1);

    send_and_expect_close(&board, &frame(&[1, 0x7f]));
    assert_eq!(board.stats.errors(ErrorReason::BadType), 1);

    // A post before the hello.
    send_and_expect_close(&board, &ClientFrame::Post(b"\x01\x14").encode());
    assert_eq!(board.stats.errors(ErrorReason::NotJoined), 1);

    // A peer that closes in the middle of a frame.
    {
        let mut sock = TcpStream::connect(board.addr).unwrap();
        sock.write_all(&[0, 0, 0, 50, 1, 1]).unwrap();
    }
    wait_for(
        || board.stats.errors(ErrorReason::Truncated) == 2,
        "the cut frame counted",
    );

    // After all that the board still serves meetings.
    let mut a = Member::join(&board, "m-after", "alice");
    let mut b = Member::join(&board, "m-after", "bob");
    wait_until(&mut [&mut a, &mut b], LIMIT, "a common key", |m| {
        converged(m, 2)
    });
}

#[test]
fn a_post_that_is_not_a_keyctl_message_closes_the_poster_only() {
    let board = plain_board(None);
    let mut a = Member::join(&board, "m-badpost", "alice");
    let mut b = Member::join(&board, "m-badpost", "bob");
    wait_until(&mut [&mut a, &mut b], LIMIT, "a common key", |m| {
        converged(m, 2)
    });
    let mut raw = veil_board::client::BoardClient::connect(
        &board_util::options(board.addr, ClientTls::Plaintext),
        &veil_board::client::Join {
            meeting_id: "m-badpost".to_owned(),
            name: "mallory".to_owned(),
            host: false,
            ivk: [3; 32],
        },
    )
    .unwrap()
    .0;
    raw.send_raw(&ClientFrame::Post(&[1, 0x99, 0, 0]).encode())
        .unwrap();
    let closed = loop {
        match raw.recv(LIMIT) {
            Ok(Some(_)) => {}
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(closed, "the board kept a connection that posted garbage");
    assert_eq!(board.stats.errors(ErrorReason::MalformedPost), 1);
    // The others see mallory leave and carry on.
    wait_until(&mut [&mut a, &mut b], LIMIT, "the meeting going on", |m| {
        converged(m, 2) && m.iter().all(|x| x.p.status().leaves == 1)
    });
}

#[test]
fn random_bytes_never_stop_the_board() {
    let board = plain_board(None);
    // A deterministic xorshift stream: every frame type byte, lengths and contents.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..200 {
        let len = usize::try_from(next() % 64).unwrap();
        let mut body: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
        if let Some(v) = body.first_mut() {
            *v = 1;
        }
        let mut sock = TcpStream::connect(board.addr).unwrap();
        let _ = sock.write_all(&frame(&body));
    }
    let mut a = Member::join(&board, "m-fuzz", "alice");
    let mut b = Member::join(&board, "m-fuzz", "bob");
    wait_until(&mut [&mut a, &mut b], LIMIT, "a common key", |m| {
        converged(m, 2)
    });
}

#[test]
fn an_overlong_name_is_refused_before_connecting() {
    let board = plain_board(None);
    let join = veil_board::client::Join {
        meeting_id: "m".to_owned(),
        name: "x".repeat(257),
        host: false,
        ivk: [0; 32],
    };
    let err = veil_board::client::BoardClient::connect(
        &board_util::options(board.addr, ClientTls::Plaintext),
        &join,
    )
    .expect_err("an overlong name");
    assert!(err.to_string().contains("256 bytes"), "{err}");
    assert_eq!(board.stats.snapshot().frames_in, 0);
}

/// A raw client in a meeting posts `LeaderChange(itself)` through the real `veil board`
/// process: the board closes it and counts it, and the honest participant, which leads, never
/// receives the forged notice (before the fix it was relayed, and an honest meeting-mode
/// sidecar switched its leader to the forger).
#[test]
fn a_forged_leader_change_from_a_client_never_reaches_an_honest_participant() {
    use keyctl::wire::{LeaderChange, Message};
    use veil_board::client::{BoardClient, BoardEvent, Join};

    let board = board_util::BoardProcess::start(&["--insecure-plaintext"]);
    let opts = board_util::options(board.addr, ClientTls::Plaintext);
    let join = |name: &str, ivk: u8| Join {
        meeting_id: "m-forge".to_owned(),
        name: name.to_owned(),
        host: false,
        ivk: [ivk; 32],
    };
    let (mut alice, wa) = BoardClient::connect(&opts, &join("alice", 1)).unwrap();
    let (mut mallory, wm) = BoardClient::connect(&opts, &join("mallory", 2)).unwrap();
    assert_eq!(wa.leader, wa.me);
    assert_eq!(wm.leader, wa.me);
    let forged = Message::LeaderChange(LeaderChange {
        leader: wm.me.clone(),
    });
    mallory.post(&forged).unwrap();
    // alice sees mallory join and leave, never the forgery: everything up to mallory's Left
    // (or the forgery), and anything after it for a while.
    let forged_event = BoardEvent::Message(forged.to_bytes());
    let mut seen = Vec::new();
    let deadline = Instant::now() + LIMIT;
    while !seen.contains(&BoardEvent::Left(wm.me.clone())) && !seen.contains(&forged_event) {
        assert!(Instant::now() < deadline, "no Left for mallory: {seen:?}");
        seen.extend(alice.recv(Duration::from_millis(100)).unwrap());
    }
    while let Some(ev) = alice.recv(Duration::from_millis(300)).unwrap() {
        seen.push(ev);
    }
    assert!(
        !seen.contains(&forged_event),
        "the honest participant received the forged LeaderChange: {seen:?}"
    );
    // The board closed mallory's connection.
    let deadline = Instant::now() + LIMIT;
    loop {
        match mallory.recv(Duration::from_millis(100)) {
            Err(_) => break,
            Ok(_) => assert!(Instant::now() < deadline, "mallory stayed connected"),
        }
    }
    let metrics = board.admin_get("/metrics");
    assert!(
        metrics.contains("veil_board_errors_total{reason=\"board_notice\"} 1"),
        "{metrics}"
    );
}

/// A participant that stops reading while another keeps posting: its queue at the board
/// reaches the cap, the board closes it and counts a slow consumer, and the poster stays.
/// (Before, the cap was 64 MiB per connection, counted as an I/O error.)
#[test]
fn a_participant_that_does_not_read_is_closed_at_the_queue_cap() {
    use keyctl::wire::{Binding, Field, Id, KeyAnnouncement, Message};
    use veil_board::BoardLimits;
    use veil_board::client::{BoardClient, Join};

    let limits = BoardLimits {
        max_pending_out: 64 << 10,
        ..BoardLimits::default()
    };
    let board = BoardServer::bind_with_limits(
        BoardConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: None,
            tamper: None,
        },
        limits,
    )
    .unwrap()
    .spawn()
    .unwrap();
    let opts = board_util::options(board.addr, ClientTls::Plaintext);
    let join = |name: &str, ivk: u8| Join {
        meeting_id: "m-slow".to_owned(),
        name: name.to_owned(),
        host: false,
        ivk: [ivk; 32],
    };
    // alice joins and never reads again.
    let (_alice, _) = BoardClient::connect(&opts, &join("alice", 1)).unwrap();
    let (mut bob, wb) = BoardClient::connect(&opts, &join("bob", 2)).unwrap();
    let ann = Message::KeyAnnouncement(KeyAnnouncement {
        binding: Binding {
            meeting: wb.meeting.clone(),
            participant: wb.me.clone(),
            ivk: [1; 32],
            pk: [2; 32],
            pq: None,
        },
        sig: [3; 64],
        display_name: Id::new(Field::DisplayName, &[b'b'; 200]).unwrap(),
        invite_proof: None,
    });
    let deadline = Instant::now() + LIMIT;
    while board.stats.errors(ErrorReason::SlowConsumer) == 0 {
        assert!(Instant::now() < deadline, "{:?}", board.stats.snapshot());
        for _ in 0..500 {
            bob.post(&ann).unwrap();
        }
    }
    wait_for(
        || board.stats.snapshot().participants == 1,
        "alice removed from the meeting",
    );
    // bob is still in: he hears alice leave.
    let deadline = Instant::now() + LIMIT;
    loop {
        assert!(Instant::now() < deadline, "bob never heard alice leave");
        if let Some(veil_board::client::BoardEvent::Left(_)) =
            bob.recv(Duration::from_millis(100)).unwrap()
        {
            break;
        }
    }
    assert_eq!(board.stats.errors(ErrorReason::Io), 0);
}

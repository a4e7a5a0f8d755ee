//! `veil board` as a process: flags, refusals, the admin endpoint, shutdown on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod board_util;

use std::process::Command;
use std::time::{Duration, Instant};

use board_util::{BoardProcess, Member, converged, wait_until};

const LIMIT: Duration = Duration::from_secs(20);

fn veil(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn plaintext_off_loopback_is_refused_with_a_clear_error() {
    let out = veil(&["board", "--insecure-plaintext", "--listen", "0.0.0.0:0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
}

#[test]
fn plaintext_websocket_off_loopback_is_refused_with_a_clear_error() {
    let out = veil(&[
        "board",
        "--insecure-plaintext",
        "--listen",
        "127.0.0.1:0",
        "--ws-listen",
        "0.0.0.0:0",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("0.0.0.0"), "{err}");
}

#[test]
fn help_names_every_flag_and_scenario() {
    let out = veil(&["board", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "--listen",
        "--cert",
        "--key",
        "--insecure-plaintext",
        "--fingerprint-file",
        "--ws-listen",
        "--admin",
        "--tamper",
        "swap-key",
        "strip-pq",
        "replay-instance",
        "withhold-heartbeats",
        "partition",
        "127.0.0.1:7700",
    ] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
}

#[test]
fn admin_counts_meetings_and_errors_and_sigterm_ends_the_meeting() {
    let mut board = BoardProcess::start(&[]);
    let mut a = board.join("m-cli", "alice");
    let mut b = board.join("m-cli", "bob");
    wait_until(&mut [&mut a, &mut b], LIMIT, "a common key", |m| {
        converged(m, 2)
    });
    // An oversize frame, counted by reason.
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(board.addr).unwrap();
        s.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
    }
    let deadline = Instant::now() + LIMIT;
    loop {
        let metrics = board.admin_get("/metrics");
        if metrics.contains("veil_board_errors_total{reason=\"tls\"} 1") {
            // The oversize prefix arrives as a bad TLS record on a TLS board.
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = board.admin_get("/stats");
    assert!(stats.contains("\"meetings\": 1"), "{stats}");
    assert!(stats.contains("\"participants\": 2"), "{stats}");
    let status = Command::new("kill")
        .args(["-TERM", &board.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = board.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    wait_until(&mut [&mut a, &mut b], LIMIT, "the board's end", |m| {
        m.iter().all(|x| x.lost.is_some())
    });
    assert!(
        matches!(a.lost, Some(veil_cli::meeting::BoardLost::Ended)),
        "{:?}",
        a.lost
    );
    let _ = Member::try_join(board.addr, board.tls(), "m-cli", "carol")
        .expect_err("joined a stopped board");
}

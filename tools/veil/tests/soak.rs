//! The soak in its smoke size: 4 sidecars, 12 s quiet periods, rotations every 5 s, a 5 s
//! network cut, every fault. Ignored in the default run (about 2 minutes: the soak is minutes long
//! by design); run it with `cargo test -p veil --test soak -- --ignored`, and the real soak
//! with `tools/soak`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
#[ignore = "about 2 minutes; the soak is run by tools/soak, not in CI"]
fn soak_smoke_meets_every_target() {
    let output = Command::new(env!("CARGO_BIN_EXE_veil-soak"))
        .args([
            "--minutes",
            "1",
            "--sidecars",
            "4",
            "--rotation",
            "5",
            "--cut-seconds",
            "5",
            "--veil",
            env!("CARGO_BIN_EXE_veil"),
        ])
        .output()
        .expect("veil-soak runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    for fault in [
        "board restart",
        "relay restart",
        "sidecar SIGKILL",
        "network cut",
        "leader SIGKILL",
        "leader cut",
    ] {
        assert!(
            stdout.contains(&format!("{fault}: media flows again")),
            "{fault} did not recover"
        );
    }
    assert!(stdout.contains("0 authentication failures"), "{stdout}");
    assert!(output.status.success(), "{stdout}");
}

#[test]
fn help_explains_every_phase() {
    let output = Command::new(env!("CARGO_BIN_EXE_veil-soak"))
        .arg("--help")
        .output()
        .expect("veil-soak runs");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    for phrase in [
        "warm-up",
        "board restart",
        "relay restart",
        "sidecar kill",
        "network cut",
        "leader kill",
        "leader cut",
        "rejoin",
        "--minutes",
        "--sidecars",
        "--rotation",
        "--cut-seconds",
        "flat",
    ] {
        assert!(help.contains(phrase), "--help lacks {phrase}");
    }
}

#[test]
fn a_missing_veil_binary_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_veil-soak"))
        .args(["--veil", "/nonexistent/veil"])
        .output()
        .expect("veil-soak runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no veil binary at /nonexistent/veil"),
        "{stderr}"
    );
}

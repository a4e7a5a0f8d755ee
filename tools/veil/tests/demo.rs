//! `veil demo --duration 8`: the README's run command, end to end. It must exit 0 and its
//! summary must say every receiver got every packet sent while it held the key, with a fourth
//! participant joining and one leaving on the way.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn the_demo_meeting_passes_its_own_checks() {
    let out = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(["demo", "--duration", "8"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "veil demo failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("PASS: every receiver got every packet sent while it held the key"));
    assert!(!stdout.contains("FAIL"), "{stdout}");
    // Three participants stayed to the end and agree on the leader's security code.
    assert!(stdout.contains("the same for all 3:"), "{stdout}");
    // The joiner and the leaver appear, and media reached the joiner.
    assert!(stdout.contains("dave <- alice"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("bob") && l.contains("left"))
    );
    let dave_from_alice = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("dave <- alice"))
        .unwrap();
    assert!(
        dave_from_alice.contains(", 0 missing, 0 duplicated"),
        "{dave_from_alice}"
    );
    assert!(!dave_from_alice.contains("nothing"), "{dave_from_alice}");
}

/// `veil demo --pq required`: every meeting key is delivered by the hybrid box and every
/// signature is hybrid (hybrid identities, keyctl revision 4), and the demo checks both from
/// every participant's `/status`.
#[test]
fn the_demo_with_pq_required_delivers_every_key_hybrid() {
    let out = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(["demo", "--duration", "8", "--pq", "required"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "veil demo failed:\n{stdout}");
    assert!(
        stdout.contains("every meeting key delivered by the hybrid box, every signature hybrid"),
        "{stdout}"
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
    for name in ["alice", "carol", "dave"] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(name) && l.contains("meeting policy"))
            .unwrap();
        assert!(line.contains("meeting policy required"), "{line}");
        assert!(line.contains("keyed classically: nobody"), "{line}");
        assert!(
            line.contains("identity hybrid, leader's signatures hybrid"),
            "{line}"
        );
    }
}

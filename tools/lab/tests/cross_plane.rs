//! The two planes together on virtual time (veil_lab::sim): keyctl sessions through the real
//! board core, each node's keys through the dataplane handoff, media every 20 ms.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keyctl::meeting::LeftReason;
use veil_lab::sim::Sim;

/// A meeting of `names` (the first leads), joined 50 ms apart, keyed and sending.
fn meeting(seed: &str, names: &[&str]) -> Sim {
    let mut sim = Sim::new(seed);
    for (i, name) in names.iter().enumerate() {
        sim.join(name, i == 0).unwrap();
        sim.run(50);
    }
    sim.run(5_000);
    sim
}

fn assert_clean(sim: &Sim) {
    let violations = sim.check_media();
    assert!(violations.is_empty(), "{violations:#?}");
}

/// Packets from `from` that `to` opened, and that it did not (before `to` held the key too).
fn tally(sim: &Sim, from: usize, to: usize) -> (usize, usize) {
    let mut counts = (0, 0);
    for p in sim.packets().iter().filter(|p| p.from == from) {
        match p.opened.get(&to) {
            Some(true) => counts.0 += 1,
            Some(false) => counts.1 += 1,
            None => {}
        }
    }
    counts
}

#[test]
fn every_member_opens_every_other_members_media() {
    let sim = meeting("keys-media", &["alice", "bob", "carol", "dave"]);
    assert_clean(&sim);
    for from in 0..4 {
        for to in (0..4).filter(|&to| to != from) {
            let (opened, _) = tally(&sim, from, to);
            assert!(opened > 100, "{from} -> {to}: only {opened} opened");
        }
    }
}

#[test]
fn a_rotation_loses_no_packet() {
    let mut sim = meeting("rotation", &["alice", "bob", "carol"]);
    let before = sim.nodes()[0].keys.keys().next_back().copied().unwrap();
    // A joiner makes the leader rotate; the old key retires 10 s after the new one arrives.
    sim.join("dave", false).unwrap();
    sim.run(15_000);
    assert_clean(&sim);
    let after = sim.nodes()[0].keys.keys().next_back().copied().unwrap();
    assert!(after > before, "no rotation: {before} then {after}");
    let under = |mk_seq| sim.packets().iter().filter(|p| p.mk_seq == mk_seq).count();
    assert!(
        under(before) > 0 && under(after) > 0,
        "media under both keys"
    );
    assert!(
        sim.nodes()[1].retired.contains_key(&before),
        "bob retired the old key"
    );
}

#[test]
fn a_kicked_member_that_keeps_its_keys_is_cut_off() {
    let mut sim = meeting("kick", &["alice", "bob", "carol", "mallory"]);
    let mallory = sim.index("mallory").unwrap();
    sim.disobey(mallory);
    let kicked_at = sim.now();
    sim.kick(0, "mallory").unwrap();
    sim.run(15_000);
    assert_clean(&sim);

    let node = &sim.nodes()[mallory];
    assert!(
        matches!(node.left, Some((LeftReason::Kicked, _))),
        "{:?}",
        node.left
    );
    let newest_held = node.keys.keys().next_back().copied().unwrap();
    // Not vacuous: the members moved to a key mallory never got within 10 s of the kick,
    // mallory went on sealing, and her packets were refused once her key retired.
    let late = |p: &&veil_lab::sim::Packet| p.at.0 > kicked_at.0 + 10_000;
    let honest_late: Vec<_> = sim
        .packets()
        .iter()
        .filter(late)
        .filter(|p| p.from != mallory)
        .collect();
    assert!(!honest_late.is_empty());
    assert!(honest_late.iter().all(|p| p.mk_seq > newest_held));
    assert!(honest_late.iter().all(|p| !p.opened[&mallory]));
    let hers_late: Vec<_> = sim
        .packets()
        .iter()
        .filter(late)
        .filter(|p| p.from == mallory)
        .collect();
    assert!(!hers_late.is_empty(), "mallory kept sealing");
    for p in hers_late {
        for (to, opened) in &p.opened {
            assert!(
                !opened,
                "{}'s keyring opened mallory's packet at {}",
                sim.nodes()[*to].name,
                p.at.0
            );
        }
    }
}

#[test]
fn a_member_that_leaves_erases_its_keys_and_the_rest_go_on() {
    let mut sim = meeting("leave", &["alice", "bob", "carol"]);
    let carol = sim.index("carol").unwrap();
    let before = sim.packets().len();
    sim.leave(carol);
    sim.run(12_000);
    assert_clean(&sim);
    assert!(
        sim.nodes()[carol]
            .handoff
            .keyring()
            .load()
            .newest()
            .is_none()
    );
    // From the leave on, through the rotation it causes: alice to bob loses nothing, and
    // carol opens nothing.
    let after = &sim.packets()[before..];
    let from_alice = after.iter().filter(|p| p.from == 0);
    assert!(from_alice.clone().count() > 500);
    assert!(from_alice.clone().all(|p| p.opened[&1]));
    assert!(
        after
            .iter()
            .all(|p| !p.opened.get(&carol).copied().unwrap_or(false))
    );
    let keys: std::collections::BTreeSet<u32> = after.iter().map(|p| p.mk_seq).collect();
    assert!(keys.len() >= 2, "the leave caused a rotation: {keys:?}");
}

#[test]
fn the_checks_catch_a_broken_handoff() {
    let mut sim = meeting("broken", &["alice", "bob", "carol"]);
    // bob's keyring stops taking keys: the next rotation's media cannot open there.
    sim.break_handoff(1);
    sim.join("dave", false).unwrap();
    sim.run(8_000);
    let violations = sim.check_media();
    assert!(
        violations
            .iter()
            .any(|v| v.starts_with("lost:") && v.ends_with("at bob")),
        "{violations:#?}"
    );
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let run = |seed| {
        let sim = meeting(seed, &["alice", "bob", "carol"]);
        sim.packets()
            .iter()
            .map(|p| (p.from, p.at, p.mk_seq, p.opened.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(run("replay"), run("replay"));
}

#[test]
fn the_checks_catch_a_keyring_that_keeps_a_retired_key() {
    let mut sim = meeting("keeps-retired", &["alice", "bob", "carol", "mallory"]);
    let mallory = sim.index("mallory").unwrap();
    sim.disobey(mallory);
    // bob's keyring takes neither the rotation after the kick nor keyctl's retirements (the
    // keyring retires a superseded key by itself, 10 s after its successor, so it must miss
    // both): it goes on opening mallory's old key.
    sim.disobey(1);
    sim.break_handoff(1);
    sim.kick(0, "mallory").unwrap();
    sim.run(15_000);
    let violations = sim.check_media();
    assert!(
        violations
            .iter()
            .any(|v| v.starts_with("opened after retirement: mallory's") && v.ends_with("at bob")),
        "{violations:#?}"
    );
    assert!(
        !violations.iter().any(|v| v.ends_with("at carol")),
        "carol retired it: {violations:#?}"
    );
}

/// A member whose connection broke rejoins under the same identity. Its new session must not
/// be keyed with a key it held before: its replay windows start empty, so a datagram captured
/// under such a key before the break would open once more (a replay).
#[test]
fn a_rejoined_member_gets_no_key_it_held_before_and_refuses_old_datagrams() {
    let mut sim = meeting("rejoin", &["alice", "bob", "carol"]);
    let carol = sim.index("carol").unwrap();
    let held_before: Vec<u32> = sim.nodes()[carol].keys.keys().copied().collect();
    // What an attacker on the path captured: bob's datagrams that carol opened.
    let captured: Vec<Vec<u8>> = sim
        .packets()
        .iter()
        .filter(|p| p.from == 1 && p.opened.get(&carol) == Some(&true))
        .map(|p| p.wire.clone())
        .collect();
    assert!(!captured.is_empty());
    sim.lose_connection(carol);
    sim.run(500);
    let again = sim.join("carol", false).unwrap();
    assert_ne!(again, carol);
    sim.run(6_000);
    assert_clean(&sim);
    let held_after: Vec<u32> = sim.nodes()[again].keys.keys().copied().collect();
    assert!(!held_after.is_empty(), "the rejoined carol is keyed");
    assert!(
        held_after.iter().all(|k| !held_before.contains(k)),
        "keys before {held_before:?}, after {held_after:?}"
    );
    for wire in &captured {
        assert!(
            !sim.replay_to(again, wire),
            "a captured datagram opened again"
        );
    }
}

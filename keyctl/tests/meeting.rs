//! Meeting scenarios over the simulated board, honest and malicious.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sim;

use keyctl::meeting::{Alert, LeftReason, MeetingError, Role};
use keyctl::wire::{LplOp, Message};
use sim::{Sim, Verdict, meeting_of, pid};

fn scenario(n: usize) {
    let mut sim = meeting_of(n, &format!("uuid-{n}"));
    let seq = sim.assert_converged();
    assert!(seq >= 2, "a join rotates the key");
    for node in &sim.nodes {
        assert!(node.errors.is_empty(), "{:?}: {:?}", node.id, node.errors);
        assert!(node.alerts.is_empty(), "{:?}: {:?}", node.id, node.alerts);
    }
    // Sender slots are distinct.
    let roster = &sim.nodes[0].latest().unwrap().roster;
    assert_eq!(roster.len(), n);
    // A leave rekeys within 10 s, and the leaver is out of the roster.
    let leaver = format!("p{}", n - 1);
    let li = sim.index(&leaver);
    sim.nodes[li].session.leave().unwrap();
    sim.pump();
    sim.server_post(
        Message::Leave(keyctl::wire::Leave {
            participant: pid(&leaver),
        }),
        0,
    );
    sim.advance(10_000);
    let after = sim.assert_converged();
    assert!(after > seq);
    assert!(!sim.nodes[li].session.holds_key_material());
    // Periodic rotation at least every five minutes, heartbeats keep everyone in.
    sim.advance(5 * 60_000 + 1_000);
    assert!(sim.assert_converged() > after);
    assert!(
        sim.nodes
            .iter()
            .filter(|n| n.id != pid(&leaver))
            .all(|n| n.live())
    );
}

#[test]
fn two_participants() {
    scenario(2);
}

#[test]
fn ten_participants() {
    scenario(10);
}

#[test]
fn two_hundred_participants() {
    scenario(200);
}

#[test]
fn keys_activate_after_delay_and_old_keys_retire() {
    let mut sim = meeting_of(3, "activation");
    let joined_at = sim.now;
    sim.join("late", "p0");
    sim.advance(3_000);
    let n = sim.node("p1");
    let latest = n.latest().unwrap();
    assert!(latest.activate_at >= joined_at);
    // The older epoch is scheduled to retire 10 s after the newer one arrived.
    let prev = latest.mk_seq - 1;
    let (_, at) = n.retired.iter().find(|(s, _)| *s == prev).copied().unwrap();
    assert!(at > latest.activate_at);
    assert_eq!(at.since(latest.activate_at), 10_000 - 2_000);
    assert_eq!(sim.node("late").latest().unwrap().mk_seq, latest.mk_seq);
}

#[test]
fn swapped_public_key_or_signature_aborts_join_with_alert() {
    let mut sim = meeting_of(2, "swap");
    sim.tamper = Some(Box::new(|_to, msg| {
        if let Message::KeyAnnouncement(a) = msg
            && a.binding.participant == pid("mallory-target")
        {
            a.binding.pk = [9; 32];
        }
        Verdict::Deliver
    }));
    sim.join("mallory-target", "p0");
    sim.advance(3_000);
    let leader = sim.node("p0");
    assert!(leader.alerts.contains(&Alert::BadBindingSignature {
        participant: pid("mallory-target")
    }));
    assert!(sim.node("mallory-target").updates.is_empty());
    assert!(
        !leader
            .latest()
            .unwrap()
            .roster
            .values()
            .any(|p| p == &pid("mallory-target"))
    );

    sim.tamper = Some(Box::new(|_to, msg| {
        if let Message::KeyAnnouncement(a) = msg
            && a.binding.participant == pid("sig-target")
        {
            a.sig[0] ^= 1;
        }
        Verdict::Deliver
    }));
    sim.join("sig-target", "p0");
    sim.advance(3_000);
    assert!(sim.node("p0").alerts.contains(&Alert::BadBindingSignature {
        participant: pid("sig-target")
    }));
    assert!(sim.node("sig-target").updates.is_empty());
}

#[test]
fn replay_from_another_meeting_uuid_is_rejected() {
    let mut other = meeting_of(2, "other-instance");
    let replayed: Vec<Message> = other
        .log
        .iter()
        .map(|(_, m)| m.clone())
        .filter(|m| {
            matches!(
                m,
                Message::KeyAnnouncement(_) | Message::LinkPost(_) | Message::NoncePost(_)
            )
        })
        .collect();
    other.advance(1);
    let mut sim = meeting_of(2, "this-instance");
    let before = sim.node("p1").latest().unwrap().mk_seq;
    for m in replayed {
        sim.server_post(m, 0);
    }
    sim.advance(3_000);
    for name in ["p0", "p1"] {
        let n = sim.node(name);
        assert!(
            n.errors.contains(&MeetingError::WrongMeeting),
            "{name}: {:?}",
            n.errors
        );
        assert!(n.alerts.contains(&Alert::WrongMeeting));
        assert!(n.live());
    }
    assert_eq!(sim.node("p1").latest().unwrap().mk_seq, before);
}

#[test]
fn withheld_heartbeats_make_participants_leave_after_ten() {
    let mut sim = meeting_of(3, "withhold");
    sim.tamper = Some(Box::new(|_to, msg| match msg {
        Message::Heartbeat(_) => Verdict::Drop,
        _ => Verdict::Deliver,
    }));
    sim.advance(9 * 10_000);
    assert!(sim.node("p1").live());
    sim.advance(11_000);
    assert_eq!(sim.node("p1").left, Some(LeftReason::HeartbeatsMissed));
    assert_eq!(sim.node("p2").left, Some(LeftReason::HeartbeatsMissed));
    assert!(!sim.node("p1").session.holds_key_material());
    assert!(
        sim.node("p0").live(),
        "the leader does not wait for its own heartbeats"
    );
}

#[test]
fn stale_rekey_is_ignored() {
    let mut sim = meeting_of(3, "stale");
    let old = sim
        .log
        .iter()
        .rev()
        .find_map(|(_, m)| match m {
            Message::Rekey(r) if r.recipient == pid("p1") => Some(m.clone()),
            _ => None,
        })
        .unwrap();
    sim.advance(5 * 60_000 + 1);
    let seq = sim.node("p1").latest().unwrap().mk_seq;
    let key = sim.node("p1").latest().unwrap().meeting_key.clone();
    sim.server_post(old, 0);
    let n = sim.node("p1");
    assert!(
        matches!(n.errors.last(), Some(MeetingError::StaleKey { .. })),
        "{:?}",
        n.errors
    );
    assert_eq!(n.latest().unwrap().mk_seq, seq);
    assert_eq!(n.latest().unwrap().meeting_key, key);
}

#[test]
fn partition_into_two_leaders_diverges_and_cannot_merge() {
    let mut sim = meeting_of(4, "partition");
    // The server splits {p0, p1} from {p2, p3} and names p2 leader of the second half.
    for name in ["p2", "p3"] {
        let i = sim.index(name);
        sim.nodes[i].group = 1;
    }
    sim.leader_change("p2", 1);
    assert_eq!(sim.node("p2").session.role(), Some(Role::Leader));
    sim.advance(30_000);
    let a = sim.node("p1").session.heartbeat_head().unwrap();
    let b = sim.node("p3").session.heartbeat_head().unwrap();
    assert_ne!(a, b, "the chains diverged");
    assert_eq!(a, sim.node("p0").session.heartbeat_head().unwrap());
    assert_eq!(b, sim.node("p2").session.heartbeat_head().unwrap());
    // Merging: p2's heartbeats reach p1 after the server names p2 leader there too.
    let hb = sim
        .log
        .iter()
        .rev()
        .find_map(|(from, m)| {
            (*from == sim.index("p2") && matches!(m, Message::Heartbeat(_))).then(|| m.clone())
        })
        .unwrap();
    let i1 = sim.index("p1");
    sim.nodes[i1].group = 1;
    sim.leader_change("p2", 1);
    sim.server_post(hb, 1);
    let n = sim.node("p1");
    assert!(
        n.alerts
            .iter()
            .any(|a| matches!(a, Alert::VerifySecurityCode { .. }))
    );
    assert!(
        n.errors
            .iter()
            .any(|e| matches!(e, MeetingError::HeartbeatChain | MeetingError::LplChain)),
        "{:?}",
        n.errors
    );
}

#[test]
fn kicked_participant_cannot_decrypt_the_new_key() {
    let mut sim = meeting_of(3, "kick");
    // A malicious client ignores its own removal: the board hides the Kick link from it.
    sim.tamper = Some(Box::new(|to, msg| {
        if to == 2
            && let Message::LinkPost(l) = msg
            && matches!(l.link.op, LplOp::Kick { .. })
        {
            return Verdict::Drop;
        }
        Verdict::Deliver
    }));
    let before = sim.node("p2").latest().unwrap().mk_seq;
    let now = sim.now;
    let i0 = sim.index("p0");
    let mut rng = sim::TestRng::new("kick");
    sim.nodes[i0]
        .session
        .kick(now, &pid("p2"), &mut rng)
        .unwrap();
    sim.pump();
    let new_seq = sim.node("p0").latest().unwrap().mk_seq;
    assert!(new_seq > before);
    // No box was made for p2...
    assert!(!sim.log.iter().any(
        |(_, m)| matches!(m, Message::Rekey(r) if r.recipient == pid("p2") && r.mk_seq == new_seq)
    ));
    // ...and p1's box, re-addressed to p2 with p2's own latest nonce, does not open.
    let p2_nonce = sim
        .log
        .iter()
        .rev()
        .find_map(|(_, m)| match m {
            Message::NoncePost(p) if p.body.participant == pid("p2") => Some(p.body.nonce),
            _ => None,
        })
        .unwrap();
    let mut stolen = sim
        .log
        .iter()
        .find_map(|(_, m)| match m {
            Message::Rekey(r) if r.recipient == pid("p1") && r.mk_seq == new_seq => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    stolen.recipient = pid("p2");
    stolen.recipient_nonce = p2_nonce;
    sim.server_post(Message::Rekey(stolen), 0);
    let p2 = sim.node("p2");
    assert!(
        matches!(p2.errors.last(), Some(MeetingError::Crypto(_))),
        "{:?}",
        p2.errors
    );
    assert_eq!(p2.latest().unwrap().mk_seq, before);
    assert_eq!(sim.node("p1").latest().unwrap().mk_seq, new_seq);
    assert!(
        !sim.node("p1")
            .latest()
            .unwrap()
            .roster
            .values()
            .any(|p| p == &pid("p2"))
    );
}

#[test]
fn kicked_honest_participant_leaves() {
    let mut sim = meeting_of(3, "kick-honest");
    let now = sim.now;
    let i0 = sim.index("p0");
    let mut rng = sim::TestRng::new("k");
    sim.nodes[i0]
        .session
        .kick(now, &pid("p2"), &mut rng)
        .unwrap();
    sim.pump();
    assert_eq!(sim.node("p2").left, Some(LeftReason::Kicked));
    assert!(!sim.node("p2").session.holds_key_material());
    sim.advance(3_000);
    sim.assert_converged();
}

#[test]
fn teardown_discards_all_key_material() {
    let mut sim = meeting_of(3, "teardown");
    let i = sim.index("p1");
    assert!(sim.nodes[i].session.holds_key_material());
    sim.nodes[i].session.leave().unwrap();
    sim.pump();
    let n = &sim.nodes[i];
    assert_eq!(n.left, Some(LeftReason::Requested));
    assert!(!n.session.holds_key_material());
    assert_eq!(n.session.mk_seq(), 0);
    assert!(n.session.role().is_none());
    assert!(n.session.poll_timeout().is_none());
    let mut rng = sim::TestRng::new("x");
    let now = sim.now;
    assert_eq!(
        sim.nodes[i].session.handle_timeout(now, &mut rng),
        Err(MeetingError::Ended)
    );
}

#[test]
fn repeated_leaves_raise_an_alert_and_rejoin_needs_same_ivk() {
    let mut sim = meeting_of(2, "leaves");
    for round in 0..4 {
        let name = "flaky";
        sim.join(name, "p0");
        sim.advance(2_000);
        let i = sim.index(name);
        sim.nodes[i].session.leave().unwrap();
        sim.pump();
        sim.server_post(
            Message::Leave(keyctl::wire::Leave {
                participant: pid(name),
            }),
            0,
        );
        sim.advance(2_000);
        let alerted = sim
            .node("p0")
            .alerts
            .iter()
            .any(|a| matches!(a, Alert::RepeatedLeaves { count: 4, .. }));
        assert_eq!(alerted, round == 3);
    }
    // Same (userID, deviceID) with another IVK is refused.
    let other = keyctl::crypto::SigningKey::generate(&mut sim::TestRng::new("other-ivk")).unwrap();
    sim.join_with("flaky", "p0", other, None);
    sim.advance(3_000);
    assert!(sim.node("p0").alerts.contains(&Alert::IvkChanged {
        participant: pid("flaky")
    }));
    assert!(sim.node("flaky").updates.is_empty());
}

#[test]
fn locked_meeting_refuses_newcomers_but_lets_members_rejoin() {
    let mut sim = meeting_of(3, "locked");
    let i0 = sim.index("p0");
    sim.nodes[i0].session.lock().unwrap();
    sim.pump();
    assert!(sim.node("p1").session.roster().unwrap().locked);
    sim.join("stranger", "p0");
    sim.advance(3_000);
    assert!(sim.node("p0").alerts.contains(&Alert::RefusedLocked {
        participant: pid("stranger")
    }));
    assert!(sim.node("stranger").updates.is_empty());
    // p2 drops and rejoins with the same identity: admitted.
    let i2 = sim.index("p2");
    sim.nodes[i2].session.leave().unwrap();
    sim.pump();
    sim.server_post(
        Message::Leave(keyctl::wire::Leave {
            participant: pid("p2"),
        }),
        0,
    );
    sim.advance(2_000);
    sim.join("p2", "p0");
    sim.advance(3_000);
    assert!(sim.node("p2").latest().is_some());
    // Unlocking warns everyone.
    sim.nodes[i0].session.unlock().unwrap();
    sim.pump();
    assert!(sim.node("p1").alerts.contains(&Alert::MeetingUnlocked));
}

#[test]
fn leader_change_coalesces_and_prompts_security_code_check() {
    let mut sim = meeting_of(4, "handover");
    let seq = sim.assert_converged();
    let i0 = sim.index("p0");
    sim.nodes[i0].session.leave().unwrap();
    sim.pump();
    sim.leader_change("p1", 0);
    sim.advance(3_000);
    assert_eq!(sim.node("p1").session.role(), Some(Role::Leader));
    let code = sim.node("p1").session.leader_security_code().unwrap();
    for name in ["p2", "p3"] {
        let n = sim.node(name);
        assert!(
            n.alerts.contains(&Alert::VerifySecurityCode {
                leader: pid("p1"),
                code: code.clone()
            }),
            "{name}"
        );
        assert_eq!(n.session.leader_security_code().unwrap(), code);
        assert!(n.errors.is_empty(), "{name}: {:?}", n.errors);
    }
    assert!(sim.assert_converged() > seq);
    assert_eq!(sim.node("p2").latest().unwrap().roster.len(), 3);
    // A leader the previous LPL never listed raises an alert.
    sim.leader_change("nobody", 0);
    assert!(
        sim.node("p2")
            .alerts
            .contains(&Alert::LeaderNotInPreviousList {
                leader: pid("nobody")
            })
    );
}

#[test]
fn lpl_coalesces_beyond_twenty_links() {
    let sim = meeting_of(30, "coalesce");
    let snapshots = sim
        .log
        .iter()
        .filter(|(_, m)| matches!(m, Message::LinkPost(l) if matches!(l.link.op, LplOp::Snapshot { .. })))
        .count();
    assert!(snapshots >= 1);
    sim.assert_converged();
}

#[test]
fn invites_gate_admission_and_can_be_banned() {
    use keyctl::meeting::{InviteSecret, invite_id};
    let mut sim = Sim::new("invites");
    let secret = InviteSecret::new([3; 32]);
    sim.host_secret = Some(secret.clone());
    sim.join("host", "host");
    let inv = |name: &str| invite_id(&secret, &sim::Sim::new("invites").meeting, &pid(name).user);
    let key =
        |name: &str| keyctl::crypto::SigningKey::generate(&mut sim::TestRng::new(name)).unwrap();
    let alice_inv = inv("alice");
    sim.join_with("alice", "host", key("alice"), Some(alice_inv.clone()));
    sim.join_with("bob", "host", key("bob"), Some(inv("not-bob")));
    sim.join_with("carol", "host", key("carol"), None);
    sim.advance(3_000);
    assert!(sim.node("alice").latest().is_some());
    for name in ["bob", "carol"] {
        assert!(sim.node("host").alerts.contains(&Alert::InviteRejected {
            participant: pid(name)
        }));
        assert!(sim.node(name).updates.is_empty());
    }
    let now = sim.now;
    let ih = sim.index("host");
    let mut rng = sim::TestRng::new("ban");
    sim.nodes[ih]
        .session
        .ban_invite(now, &alice_inv, &mut rng)
        .unwrap();
    sim.pump();
    assert_eq!(sim.node("alice").left, Some(LeftReason::Kicked));
    // Alice's next session with the banned invite is refused.
    sim.join_with("alice", "host", key("alice"), Some(alice_inv.clone()));
    sim.advance(3_000);
    assert!(sim.node("alice").updates.is_empty());
    assert!(
        sim.node("alice").live(),
        "refused by the leader, not ended by old history"
    );
    // Banning her invite kicked her, and a kicked identity stays out.
    assert!(sim.node("host").alerts.contains(&Alert::RefusedKicked {
        participant: pid("alice")
    }));
}

#[test]
fn liveness_nonce_must_be_recent() {
    let mut sim = meeting_of(2, "nonce");
    // The board replays an old rekey after p1 posted two newer nonces: refused even
    // with its sequence number rewritten upward.
    let mut old = sim
        .log
        .iter()
        .find_map(|(_, m)| match m {
            Message::Rekey(r) if r.recipient == pid("p1") => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    sim.advance(2 * 3 * 60_000 + 1_000);
    old.mk_seq = 1_000;
    sim.server_post(Message::Rekey(old), 0);
    assert_eq!(
        sim.node("p1").errors.last(),
        Some(&MeetingError::StaleNonce)
    );
}

#[test]
fn leader_change_to_a_substituted_binding_is_flagged() {
    let mut sim = meeting_of(3, "mitm-leader");
    // The server replaces p1's announcement with one for a key it controls (validly
    // self-signed), then names p1 leader.
    let evil = keyctl::crypto::SigningKey::generate(&mut sim::TestRng::new("evil")).unwrap();
    let evil_box =
        keyctl::crypto::BoxKeyPair::generate(&mut sim::TestRng::new("evil-box")).unwrap();
    let binding = keyctl::wire::Binding {
        meeting: sim.meeting.clone(),
        participant: pid("p1"),
        ivk: evil.verifying_key(),
        pk: *evil_box.public(),
        pq: None,
    };
    let ann = keyctl::wire::KeyAnnouncement {
        sig: binding.sign(&evil),
        binding,
        display_name: keyctl::wire::Id::new(keyctl::wire::Field::DisplayName, b"p1").unwrap(),
        invite_proof: None,
    };
    let i2 = sim.index("p2");
    sim.nodes[i2].group = 1;
    sim.server_post(Message::KeyAnnouncement(ann), 1);
    // p2 refuses the substitution outright (the list records p1's IVK) and keeps p1's
    // real binding; nothing of the refused announcement is stored.
    assert_eq!(
        sim.node("p2").errors.last(),
        Some(&MeetingError::IvkChanged)
    );
    assert!(sim.node("p2").alerts.contains(&Alert::IvkChanged {
        participant: pid("p1")
    }));
    sim.leader_change("p1", 1);
    let p2 = sim.node("p2");
    assert!(
        !p2.alerts
            .contains(&Alert::LeaderNotInPreviousList { leader: pid("p1") })
    );
    // The code p2 is asked to compare is the real leader's.
    let shown = p2.session.leader_security_code().unwrap();
    let real = keyctl::crypto::SigningKey::generate(&mut sim::TestRng::new("id-p1")).unwrap();
    assert_eq!(shown, keyctl::crypto::security_code(&real.verifying_key()));
    assert_ne!(shown, keyctl::crypto::security_code(&evil.verifying_key()));
}

#[test]
fn withheld_lpl_link_starves_heartbeats_and_participants_leave() {
    let mut sim = meeting_of(3, "withhold-link");
    // The server hides the lock link from p2: p2 can no longer verify any heartbeat,
    // because each certifies an LPL head p2 does not hold.
    let p2 = sim.index("p2");
    sim.tamper = Some(Box::new(move |to, msg| {
        if to == p2 && matches!(msg, Message::LinkPost(l) if matches!(l.link.op, LplOp::Lock)) {
            return Verdict::Drop;
        }
        Verdict::Deliver
    }));
    let i0 = sim.index("p0");
    sim.nodes[i0].session.lock().unwrap();
    sim.pump();
    sim.advance(30_000);
    assert!(sim.node("p2").errors.contains(&MeetingError::HeartbeatLpl));
    sim.advance(80_000);
    assert_eq!(sim.node("p2").left, Some(LeftReason::HeartbeatsMissed));
    assert!(sim.node("p1").live());
    assert!(sim.node("p1").session.roster().unwrap().locked);
}

#[test]
fn joins_close_together_share_one_rekey() {
    let mut sim = meeting_of(2, "batch");
    let before = sim.node("p0").latest().unwrap().mk_seq;
    sim.join("a", "p0");
    sim.advance(100);
    sim.join("b", "p0");
    sim.advance(100);
    sim.join("c", "p0");
    sim.advance(3_000);
    let after = sim.assert_converged();
    assert_eq!(after, before + 1, "one rekey for three joins");
    assert_eq!(sim.node("a").latest().unwrap().roster.len(), 5);
}

#[test]
fn substituting_the_current_leaders_binding_is_refused() {
    let mut sim = meeting_of(3, "leader-swap");
    let evil = keyctl::crypto::SigningKey::generate(&mut sim::TestRng::new("evil")).unwrap();
    let binding = keyctl::wire::Binding {
        meeting: sim.meeting.clone(),
        participant: pid("p0"),
        ivk: evil.verifying_key(),
        pk: [5; 32],
        pq: None,
    };
    let ann = keyctl::wire::KeyAnnouncement {
        sig: binding.sign(&evil),
        binding,
        display_name: keyctl::wire::Id::new(keyctl::wire::Field::DisplayName, b"p0").unwrap(),
        invite_proof: None,
    };
    let code = sim.node("p1").session.leader_security_code().unwrap();
    sim.server_post(Message::KeyAnnouncement(ann), 0);
    let p1 = sim.node("p1");
    assert_eq!(p1.errors.last(), Some(&MeetingError::LeaderBindingChanged));
    assert!(p1.alerts.contains(&Alert::IvkChanged {
        participant: pid("p0")
    }));
    assert_eq!(p1.session.leader_security_code().unwrap(), code);
    // The real leader's next rotation still reaches everyone.
    sim.advance(5 * 60_000 + 1_000);
    sim.assert_converged();
}

#[test]
fn cohost_lock_requests_are_checked() {
    let mut sim = meeting_of(4, "cohost");
    let i0 = sim.index("p0");
    sim.nodes[i0].session.set_cohosts([pid("p1")]).unwrap();
    // A listed co-host locks the meeting.
    let i1 = sim.index("p1");
    sim.nodes[i1].session.request_lock(true).unwrap();
    sim.pump();
    assert!(sim.node("p3").session.roster().unwrap().locked);
    // Someone else cannot unlock it.
    let i2 = sim.index("p2");
    sim.nodes[i2].session.request_lock(false).unwrap();
    sim.pump();
    assert_eq!(sim.node("p0").errors.last(), Some(&MeetingError::NotCohost));
    assert!(sim.node("p3").session.roster().unwrap().locked);
    // A replay of the co-host's first request is refused: the LPL moved on.
    let old = sim
        .log
        .iter()
        .find_map(|(_, m)| matches!(m, Message::LockRequest(r) if r.body.locked).then(|| m.clone()))
        .unwrap();
    sim.nodes[i0].session.unlock().unwrap();
    sim.pump();
    sim.server_post(old, 0);
    assert_eq!(
        sim.node("p0").errors.last(),
        Some(&MeetingError::StaleLockRequest)
    );
    assert!(!sim.node("p3").session.roster().unwrap().locked);
    assert!(sim.node("p3").alerts.contains(&Alert::MeetingUnlocked));
}

#[test]
fn timings_outside_the_protocol_bounds_are_refused() {
    use keyctl::meeting::Timings;
    assert!(Timings::default().validate().is_ok());
    for bad in [
        Timings {
            heartbeat_interval_ms: 10_001,
            ..Timings::default()
        },
        Timings {
            leave_rekey_ms: 10_001,
            ..Timings::default()
        },
        Timings {
            rotation_interval_ms: 5 * 60_000 + 1,
            ..Timings::default()
        },
        Timings {
            missed_heartbeats: 0,
            ..Timings::default()
        },
        Timings {
            max_participants: 0,
            ..Timings::default()
        },
        Timings {
            max_participants: keyctl::meeting::MAX_PARTICIPANTS + 1,
            ..Timings::default()
        },
    ] {
        assert_eq!(bad.validate(), Err(MeetingError::InvalidTimings));
    }
}

#[test]
fn new_leader_keys_only_bindings_the_previous_list_certified() {
    let mut sim = meeting_of(4, "takeover-swap");
    // The server shows the future leader p1 a different (validly self-signed) binding for p3.
    let evil = keyctl::crypto::SigningKey::generate(&mut sim::TestRng::new("evil-p3")).unwrap();
    let binding = keyctl::wire::Binding {
        meeting: sim.meeting.clone(),
        participant: pid("p3"),
        ivk: evil.verifying_key(),
        pk: [6; 32],
        pq: None,
    };
    let ann = keyctl::wire::KeyAnnouncement {
        sig: binding.sign(&evil),
        binding,
        display_name: keyctl::wire::Id::new(keyctl::wire::Field::DisplayName, b"p3").unwrap(),
        invite_proof: None,
    };
    let i1 = sim.index("p1");
    sim.nodes[i1].group = 1;
    sim.server_post(Message::KeyAnnouncement(ann), 1);
    sim.nodes[i1].group = 0;
    let i0 = sim.index("p0");
    sim.nodes[i0].session.leave().unwrap();
    sim.pump();
    sim.leader_change("p1", 0);
    sim.advance(3_000);
    // p1 refused the substituted binding (the list records p3's IVK), kept the one the
    // previous list certified, and keys the real p3.
    assert!(sim.node("p1").alerts.contains(&Alert::IvkChanged {
        participant: pid("p3")
    }));
    let seq = sim.assert_converged();
    let roster = &sim.node("p2").latest().unwrap().roster;
    assert!(roster.values().any(|p| p == &pid("p3")));
    // No box went to the substituted key: p3 opened its own.
    assert!(sim.node("p3").live());
    assert_eq!(sim.node("p3").latest().unwrap().mk_seq, seq);
}

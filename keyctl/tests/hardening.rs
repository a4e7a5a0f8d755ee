//! Regression tests for the control-plane findings of the security review ("Security
//! hardening" issue, section 1): each scenario is the attack as it was reproduced, and each
//! failed before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sim;

use keyctl::crypto::SigningKey;
use keyctl::meeting::{
    Alert, Event, InviteSecret, LeftReason, MAX_PENDING, MeetingError, Millis, Session, invite_id,
};
use keyctl::wire::{
    Binding, Field, Id, KeyAnnouncement, KeyRequest, KeyRequestBody, LeaderChange, Leave, Message,
};
use sim::{Sim, TestRng, Verdict, meeting_of, pid};

/// The identity key the simulation gives `name` (`Sim::join`).
fn identity(name: &str) -> SigningKey {
    SigningKey::generate(&mut TestRng::new(&format!("id-{name}"))).unwrap()
}

fn kick(sim: &mut Sim, leader: &str, who: &str) {
    let now = sim.now;
    let i = sim.index(leader);
    let mut rng = TestRng::new(&format!("kick-{who}"));
    sim.nodes[i].session.kick(now, &pid(who), &mut rng).unwrap();
    sim.pump();
}

/// Finding 1: the leader kicks M and the board withholds only the new rekey from V. V must
/// stop sending under M's key within the activation delay, ask for the key, and get it.
#[test]
fn a_withheld_rekey_is_asked_for_again_and_the_removed_members_key_stops() {
    let mut sim = meeting_of(3, "withheld-rekey");
    let old = sim.assert_converged();
    let v = sim.index("p1");
    let mut withheld = false;
    sim.tamper = Some(Box::new(move |to, msg| {
        if to == v
            && !withheld
            && let Message::Rekey(r) = msg
            && r.mk_seq == old + 1
        {
            withheld = true;
            return Verdict::Drop;
        }
        Verdict::Deliver
    }));
    let kicked_at = sim.now;
    kick(&mut sim, "p0", "p2");
    assert_eq!(
        sim.node("p1").latest().unwrap().mk_seq,
        old,
        "rekey withheld"
    );
    sim.advance(2_500);
    let node = sim.node("p1");
    // Sending under the superseded key stopped: it was retired within the delay.
    assert!(
        node.retired
            .iter()
            .any(|&(seq, at)| seq == old && at <= kicked_at.after(2_000)),
        "{:?}",
        node.retired
    );
    assert!(
        node.alerts
            .contains(&Alert::KeyWithheld { mk_seq: old + 1 })
    );
    assert!(
        sim.log
            .iter()
            .any(|(i, m)| *i == v && matches!(m, Message::KeyRequest(_)))
    );
    // The leader boxed the key again; V holds it with the roster certified for it.
    let new = sim.assert_converged();
    assert_eq!(new, old + 1);
    assert!(
        !sim.node("p1")
            .latest()
            .unwrap()
            .roster
            .values()
            .any(|p| p == &pid("p2"))
    );
    sim.advance(200_000);
    assert!(sim.node("p1").live(), "the recovered participant stays");
}

/// Finding 1: if the key never comes, V leaves within the heartbeat timeout, with a reason
/// and an alert, instead of living on M's key (20 minutes in the original report).
#[test]
fn a_rekey_withheld_for_good_ends_the_session() {
    let mut sim = meeting_of(3, "withheld-for-good");
    let old = sim.assert_converged();
    let v = sim.index("p1");
    sim.tamper = Some(Box::new(move |to, msg| {
        if to == v
            && let Message::Rekey(r) = msg
            && r.mk_seq > old
        {
            return Verdict::Drop;
        }
        Verdict::Deliver
    }));
    let kicked_at = sim.now;
    kick(&mut sim, "p0", "p2");
    let t = sim.timings;
    let timeout = t.heartbeat_interval_ms * u64::from(t.missed_heartbeats);
    sim.advance(timeout - t.heartbeat_interval_ms);
    assert!(sim.node("p1").live());
    assert!(
        sim.node("p1")
            .retired
            .iter()
            .any(|&(seq, at)| seq == old && at <= kicked_at.after(t.activation_delay_ms))
    );
    sim.advance(2 * t.heartbeat_interval_ms);
    let node = sim.node("p1");
    assert_eq!(node.left, Some(LeftReason::KeyWithheld));
    assert!(!node.session.holds_key_material());
    assert!(
        node.alerts
            .contains(&Alert::KeyWithheld { mk_seq: old + 1 })
    );
    // V asked about once per heartbeat interval: a bounded number of requests.
    let requests = sim
        .log
        .iter()
        .filter(|(i, m)| *i == v && matches!(m, Message::KeyRequest(_)))
        .count();
    assert!((5..=11).contains(&requests), "{requests} requests");
}

/// I1 through the new message: a removed member's key request is refused and answered with
/// nothing; a member's second request within a second is refused.
#[test]
fn key_requests_are_answered_only_for_members_and_rate_limited() {
    let mut sim = meeting_of(3, "key-requests");
    kick(&mut sim, "p0", "p2");
    sim.advance(3_000);
    let seq = sim.assert_converged();
    let meeting = sim.meeting.clone();
    let request = |name: &str, nonce: u8| {
        let body = KeyRequestBody {
            meeting: meeting.clone(),
            participant: pid(name),
            mk_seq: seq,
            nonce: [nonce; 24],
        };
        Message::KeyRequest(KeyRequest::sign(body, &identity(name)))
    };
    let (from_kicked, first, second) = (request("p2", 1), request("p1", 2), request("p1", 3));
    let logged = sim.log.len();
    sim.server_post(from_kicked, 0);
    let leader = sim.node("p0");
    assert_eq!(leader.errors.last(), Some(&MeetingError::NotMember));
    assert!(
        !sim.log[logged..]
            .iter()
            .any(|(_, m)| matches!(m, Message::Rekey(_)))
    );
    sim.server_post(first, 0);
    assert!(
        sim.log[logged..]
            .iter()
            .any(|(_, m)| matches!(m, Message::Rekey(r) if r.recipient == pid("p1")))
    );
    sim.server_post(second, 0);
    assert_eq!(
        sim.node("p0").errors.last(),
        Some(&MeetingError::KeyRequestTooSoon)
    );
    // A request signed by someone else is refused.
    let mut forged = match request("p1", 4) {
        Message::KeyRequest(k) => k,
        _ => unreachable!(),
    };
    forged.sig = KeyRequest::sign(forged.body.clone(), &identity("p2")).sig;
    sim.advance(2_000);
    sim.server_post(Message::KeyRequest(forged), 0);
    assert_eq!(
        sim.node("p0").errors.last(),
        Some(&MeetingError::BadSignature)
    );
}

/// Finding 2: a new leader that missed the latest rotation numbered its first key from the
/// highest key it held, and everyone refused it as stale. It now numbers above the highest
/// certified key, and within 10 s every live participant sends under its key.
#[test]
fn a_new_leader_that_missed_a_rotation_is_followed_within_ten_seconds() {
    let mut sim = meeting_of(3, "new-leader-missed-rotation");
    let old = sim.assert_converged();
    let a = sim.index("p1");
    sim.tamper = Some(Box::new(move |to, msg| {
        if to == a
            && let Message::Rekey(r) = msg
            && r.mk_seq == old + 1
        {
            return Verdict::Drop;
        }
        Verdict::Deliver
    }));
    // A join rotates to old + 1; p1 gets the heartbeat certifying it, not the key.
    sim.join("p3", "p0");
    sim.advance(1_500);
    assert_eq!(sim.node("p2").latest().unwrap().mk_seq, old + 1);
    assert_eq!(sim.node("p1").latest().unwrap().mk_seq, old);
    // The leader drops out before p1 asks again; the board names p1.
    let i0 = sim.index("p0");
    sim.nodes[i0].session.leave().unwrap();
    sim.pump();
    sim.leader_change("p1", 0);
    sim.advance(10_000);
    let new = sim.assert_converged();
    assert!(new > old + 1, "numbered above the certified key: {new}");
    for name in ["p2", "p3"] {
        let n = sim.node(name);
        assert!(
            !n.errors
                .iter()
                .any(|e| matches!(e, MeetingError::StaleKey { .. })),
            "{name}: {:?}",
            n.errors
        );
        let u = n.latest().unwrap();
        assert!(u.activate_at <= sim.now, "{name} sends under the new key");
    }
}

/// Finding 3: a kicked participant rejoined a locked meeting with the same identity and got
/// the next key. A kicked identity (participant ID or IVK) now stays out until the host
/// lifts the ban.
#[test]
fn a_kick_sticks_in_a_locked_meeting_until_the_host_lifts_the_ban() {
    for locked in [true, false] {
        let mut sim = meeting_of(3, &format!("kick-sticks-{locked}"));
        let i0 = sim.index("p0");
        if locked {
            sim.nodes[i0].session.lock().unwrap();
            sim.pump();
        }
        kick(&mut sim, "p0", "p2");
        sim.advance(3_000);
        let before = sim.assert_converged();
        // The same identity, and the same IVK under another device ID.
        sim.join("p2", "p0");
        sim.join_with("p2-laptop", "p0", identity("p2"), None);
        sim.advance(5_000);
        for name in ["p2", "p2-laptop"] {
            assert!(
                sim.node(name).updates.is_empty(),
                "{name} (locked {locked})"
            );
            assert!(
                sim.node("p0").alerts.contains(&Alert::RefusedKicked {
                    participant: pid(name)
                }),
                "{name} (locked {locked})"
            );
        }
        assert_eq!(sim.node("p1").latest().unwrap().mk_seq, before);
        // The host lifts the ban: the same identity comes back (also into the locked
        // meeting: the list records it as Left with that IVK).
        sim.nodes[i0].session.unban(&pid("p2")).unwrap();
        sim.pump();
        sim.join("p2", "p0");
        sim.advance(5_000);
        assert!(
            sim.node("p2").latest().is_some_and(|u| u.mk_seq > before),
            "locked {locked}"
        );
    }
}

/// Finding 6: a bare LeaderChange notice reset the missed-heartbeat deadline, so a board
/// that withheld everything and alternated notices every 90 s kept a victim in forever.
#[test]
fn leader_change_notices_do_not_keep_a_session_alive() {
    let mut sim = meeting_of(3, "notices-are-not-heartbeats");
    let v = sim.index("p2");
    sim.tamper = Some(Box::new(move |to, msg| {
        if to == v && matches!(msg, Message::Heartbeat(_)) {
            return Verdict::Drop;
        }
        Verdict::Deliver
    }));
    // The victim alone hears the notices.
    sim.nodes[v].group = 1;
    let t = sim.timings;
    let timeout = t.heartbeat_interval_ms * u64::from(t.missed_heartbeats);
    for leader in ["p1", "p0", "p1"] {
        sim.advance(timeout * 9 / 10);
        if !sim.node("p2").live() {
            break;
        }
        sim.server_post(
            Message::LeaderChange(LeaderChange {
                leader: pid(leader),
            }),
            1,
        );
    }
    assert_eq!(sim.node("p2").left, Some(LeftReason::HeartbeatsMissed));
}

/// Finding 7: a refused forged announcement (another IVK under p1's name) still overwrote
/// p1's stored binding, so every later rotation skipped p1 while the list showed it present.
#[test]
fn a_refused_forged_announcement_changes_nothing() {
    let mut sim = meeting_of(3, "forged-announcement");
    let before = sim.assert_converged();
    let attacker = SigningKey::generate(&mut TestRng::new("attacker")).unwrap();
    let binding = Binding {
        meeting: sim.meeting.clone(),
        participant: pid("p1"),
        ivk: attacker.verifying_key(),
        pk: [9; 32],
        pq: None,
    };
    let forged = KeyAnnouncement {
        sig: binding.sign(&attacker),
        binding,
        display_name: Id::new(Field::DisplayName, b"p1").unwrap(),
        invite_proof: None,
    };
    sim.server_post(Message::KeyAnnouncement(forged), 0);
    assert_eq!(
        sim.node("p0").errors.last(),
        Some(&MeetingError::IvkChanged)
    );
    assert!(sim.node("p0").alerts.contains(&Alert::IvkChanged {
        participant: pid("p1")
    }));
    // The next rotation still keys p1.
    kick(&mut sim, "p0", "p2");
    sim.advance(3_000);
    assert!(sim.assert_converged() > before);
}

/// Finding 11: announcements of strangers waiting for admission are bounded.
#[test]
fn pending_announcements_are_bounded() {
    let mut sim = meeting_of(2, "pending-bound");
    for i in 0..=MAX_PENDING {
        let name = format!("stranger-{i}");
        let key = SigningKey::generate(&mut TestRng::new(&name)).unwrap();
        let binding = Binding {
            meeting: sim.meeting.clone(),
            participant: pid(&name),
            ivk: key.verifying_key(),
            pk: [7; 32],
            pq: None,
        };
        let ann = KeyAnnouncement {
            sig: binding.sign(&key),
            binding,
            display_name: Id::new(Field::DisplayName, name.as_bytes()).unwrap(),
            invite_proof: None,
        };
        let bytes = Message::KeyAnnouncement(ann).to_bytes();
        let now = sim.now;
        let i0 = sim.index("p0");
        let r = sim.nodes[i0].session.handle(now, &bytes, &mut sim.rng);
        if i < MAX_PENDING {
            r.unwrap();
        } else {
            assert_eq!(r, Err(MeetingError::TooManyPending));
        }
    }
    // The members are unaffected.
    sim.advance(3_000);
    sim.assert_converged();
}

/// A participant's own key request never reaches a session that is not the leader, and a
/// non-leader ignores it (only the leader boxes keys).
#[test]
fn a_key_request_to_a_participant_is_ignored() {
    let mut rng = TestRng::new("ignored");
    let sim = Sim::new("ignored");
    let cfg = keyctl::meeting::Config {
        meeting: sim.meeting.clone(),
        me: pid("a"),
        display_name: Id::new(Field::DisplayName, b"a").unwrap(),
        leader: pid("b"),
        invite: None,
        host_secret: None,
        timings: sim.timings,
        pq: keyctl::wire::PqPolicy::default(),
    };
    let mut s = Session::new(cfg, identity("a"), Millis(1), &mut rng).unwrap();
    while s.poll_transmit().is_some() {}
    let body = KeyRequestBody {
        meeting: sim.meeting.clone(),
        participant: pid("c"),
        mk_seq: 1,
        nonce: [0; 24],
    };
    let msg = Message::KeyRequest(KeyRequest::sign(body, &identity("c")));
    s.handle(Millis(2), &msg.to_bytes(), &mut rng).unwrap();
    assert!(s.poll_transmit().is_none());
    assert!(!std::iter::from_fn(|| s.poll_event()).any(|e| matches!(e, Event::KeyUpdate(_))));
}

/// A Leave notice for a member, posted by the board, is a hint: the leader rekeys without
/// the member, and the member (still connected, honest) learns it is listed as gone.
#[test]
fn a_leave_notice_is_acted_on_only_by_the_leader() {
    let mut sim = meeting_of(3, "leave-notice");
    sim.server_post(
        Message::Leave(Leave {
            participant: pid("p2"),
        }),
        0,
    );
    sim.advance(3_000);
    assert_eq!(sim.node("p2").left, Some(LeftReason::ListedAsLeft));
    sim.assert_converged();
}

/// Finding 8: invites were bearer tokens posted in the clear, bound only to (meetingID,
/// userID). Now only a proof bound to the joiner's own binding crosses the board: replayed
/// under another key (or device) it is refused, and the invite bytes appear nowhere.
#[test]
fn an_observed_invite_proof_cannot_be_replayed_under_another_key() {
    let mut sim = Sim::new("invite-proof");
    let secret = InviteSecret::new([5; 32]);
    sim.host_secret = Some(secret.clone());
    sim.join("host", "host");
    let invite = invite_id(&secret, &sim.meeting, &pid("alice").user);
    sim.join_with("alice", "host", identity("alice"), Some(invite.clone()));
    sim.advance(3_000);
    assert!(sim.node("alice").latest().is_some());
    // The invite itself never crossed the board.
    let secret_bytes = invite.expose_secret();
    assert!(!sim.log.iter().any(|(_, m)| {
        m.to_bytes()
            .windows(secret_bytes.len())
            .any(|w| w == secret_bytes)
    }));
    // The board copies alice's proof into an announcement for mallory's key, as alice.
    let proof = sim
        .log
        .iter()
        .find_map(|(_, m)| match m {
            Message::KeyAnnouncement(a) if a.binding.participant == pid("alice") => a.invite_proof,
            _ => None,
        })
        .unwrap();
    let mallory = SigningKey::generate(&mut TestRng::new("mallory")).unwrap();
    for device in [&b"dev"[..], &b"other"[..]] {
        let participant = keyctl::wire::ParticipantId::new(b"alice", device).unwrap();
        let binding = Binding {
            meeting: sim.meeting.clone(),
            participant: participant.clone(),
            ivk: mallory.verifying_key(),
            pk: [8; 32],
            pq: None,
        };
        let replay = KeyAnnouncement {
            sig: binding.sign(&mallory),
            binding,
            display_name: Id::new(Field::DisplayName, b"alice").unwrap(),
            invite_proof: Some(proof),
        };
        let i = sim.index("host");
        let now = sim.now;
        let bytes = Message::KeyAnnouncement(replay).to_bytes();
        let r = sim.nodes[i].session.handle(now, &bytes, &mut sim.rng);
        // Same device: refused by the IVK the list records; another device: by the proof.
        assert!(
            matches!(
                r,
                Err(MeetingError::IvkChanged | MeetingError::InviteRejected)
            ),
            "{r:?}"
        );
    }
    sim.pump();
    assert!(sim.node("host").alerts.contains(&Alert::InviteRejected {
        participant: keyctl::wire::ParticipantId::new(b"alice", b"other").unwrap()
    }));
    // No Debug output shows an invite or the host's secret.
    let shown = format!("{invite:?} {secret:?} {:?}", sim.node("alice").session);
    assert!(!shown.contains(&format!("{:?}", secret_bytes)));
    assert!(shown.contains("Invite(<redacted>)") && shown.contains("InviteSecret(<redacted>)"));
}

/// Finding 8: the invite check lapsed when leadership left the host. The signed list now
/// records that the meeting is invite-only, and a leader without the host's secret admits no
/// newcomer, with an alert, instead of admitting unchecked.
#[test]
fn after_a_leader_change_invite_only_admission_stops_with_an_alert() {
    let mut sim = Sim::new("invite-handover");
    let secret = InviteSecret::new([6; 32]);
    sim.host_secret = Some(secret.clone());
    sim.join("host", "host");
    for name in ["alice", "carol"] {
        let invite = invite_id(&secret, &sim.meeting, &pid(name).user);
        sim.join_with(name, "host", identity(name), Some(invite));
    }
    sim.advance(3_000);
    assert!(sim.node("alice").session.roster().unwrap().invite_only);
    let ih = sim.index("host");
    sim.nodes[ih].session.leave().unwrap();
    sim.pump();
    sim.leader_change("alice", 0);
    sim.advance(3_000);
    let seq = sim.assert_converged();
    // Bob has no invite; eve has one for another user. Neither is admitted unchecked.
    sim.join("bob", "alice");
    let forged = invite_id(&InviteSecret::new([0; 32]), &sim.meeting, &pid("eve").user);
    sim.join_with("eve", "alice", identity("eve"), Some(forged));
    sim.advance(5_000);
    for name in ["bob", "eve"] {
        assert!(sim.node(name).updates.is_empty(), "{name}");
        assert!(
            sim.node("alice")
                .alerts
                .contains(&Alert::InviteCheckUnavailable {
                    participant: pid(name)
                }),
            "{name}"
        );
    }
    assert_eq!(sim.node("carol").latest().unwrap().mk_seq, seq);
}

/// Finding 11 (and the harness's F5): the leader admitted every identity the board
/// announced. It now stops at the participant cap, with an alert, and the members keep
/// their key.
#[test]
fn joins_past_the_participant_cap_are_refused() {
    let mut sim = Sim::new("participant-cap");
    sim.timings.max_participants = 3;
    sim.join("p0", "p0");
    for name in ["p1", "p2", "p3"] {
        sim.join(name, "p0");
        sim.advance(50);
    }
    sim.advance(3_000);
    assert!(sim.node("p3").updates.is_empty());
    assert!(sim.node("p0").alerts.contains(&Alert::MeetingFull {
        participant: pid("p3")
    }));
    assert!(sim.node("p0").errors.contains(&MeetingError::MeetingFull));
    let seq = sim.node("p1").latest().unwrap().mk_seq;
    assert_eq!(sim.node("p1").latest().unwrap().roster.len(), 3);
    // A seat freed by a leave is taken by the next join.
    let i2 = sim.index("p2");
    sim.nodes[i2].session.leave().unwrap();
    sim.pump();
    sim.join("p4", "p0");
    sim.advance(3_000);
    assert!(sim.node("p4").latest().is_some_and(|u| u.mk_seq > seq));
}

/// A joiner sees heartbeats certifying keys made before it was admitted (found by the real
/// board's test with fast timings): those keys were never its to hold, so it neither alerts
/// nor asks for them, and its admission's key arrives as usual.
#[test]
fn a_joiner_does_not_chase_keys_made_before_its_admission() {
    let mut sim = Sim::new("joiner-no-chase");
    sim.timings.activation_delay_ms = 100;
    sim.timings.join_batch_ms = 900;
    sim.timings.heartbeat_interval_ms = 200;
    sim.join("p0", "p0");
    sim.advance(500);
    let j = sim.join("p1", "p0");
    sim.advance(3_000);
    let node = sim.node("p1");
    assert!(
        !node
            .alerts
            .iter()
            .any(|a| matches!(a, Alert::KeyWithheld { .. })),
        "{:?}",
        node.alerts
    );
    assert!(
        !sim.log
            .iter()
            .any(|(i, m)| *i == j && matches!(m, Message::KeyRequest(_)))
    );
    sim.assert_converged();
}

/// Found by tools/veil/tests/meeting_e2e.rs once joiners are listed at their rotation: the
/// board names a joiner leader before the old leader's rotation listed it. It must still
/// lead a working meeting: it lists itself (a leader is present in its own list, 3.7.7),
/// keys the members and admits newcomers.
#[test]
fn a_joiner_named_leader_before_it_was_listed_lists_itself_and_leads() {
    let mut sim = Sim::new("joiner-leads");
    // Heartbeats faster than the join batch: the joiner accepts the chain before it is
    // listed (a leader without the chain could only lead a partition of its own).
    sim.timings.heartbeat_interval_ms = 200;
    sim.timings.join_batch_ms = 1_000;
    sim.join("p0", "p0");
    sim.join("p1", "p0");
    sim.advance(3_000);
    sim.join("p2", "p0");
    sim.advance(500);
    assert!(
        !sim.node("p0")
            .session
            .roster()
            .unwrap()
            .entries
            .iter()
            .any(|e| e.participant == pid("p2")),
        "not listed before the batched rotation"
    );
    let i0 = sim.index("p0");
    sim.nodes[i0].session.leave().unwrap();
    sim.pump();
    sim.leader_change("p2", 0);
    sim.advance(3_000);
    assert_eq!(
        sim.node("p2").session.role(),
        Some(keyctl::meeting::Role::Leader)
    );
    assert!(
        sim.node("p2").errors.is_empty(),
        "{:?}",
        sim.node("p2").errors
    );
    sim.join("p3", "p2");
    sim.advance(3_000);
    sim.assert_converged();
    assert_eq!(sim.node("p1").latest().unwrap().roster.len(), 3);
}

/// A participant whose device crashed rejoins with the same identity before anyone saw it
/// leave (the board withholds every notice of it). Its new session starts with empty replay
/// windows, so it must never be keyed with a key the crashed session held: media captured
/// under that key would open there once more.
#[test]
fn a_rejoin_nobody_saw_leave_is_never_given_an_old_key() {
    let mut sim = meeting_of(3, "rejoin-unseen");
    let old = sim.index("p2");
    let held: Vec<u32> = sim.nodes[old].updates.keys().copied().collect();
    assert!(!held.is_empty());
    // The crash: the old session is gone from the network, and no Leave is posted.
    sim.nodes[old].left = Some(LeftReason::Requested);
    sim.join("p2", "p0");
    sim.advance(30_000);
    let new = sim.index("p2");
    assert_ne!(new, old);
    let got: Vec<u32> = sim.nodes[new].updates.keys().copied().collect();
    // The leader admits the new binding in a rotation of its own (whitepaper 3.7.4).
    assert!(!got.is_empty(), "the rejoined session is keyed");
    assert!(
        got.iter().all(|k| !held.contains(k)),
        "the crashed session held {held:?}; the rejoined one got {got:?}"
    );
}

/// The same crash and rejoin, but the board also withholds the rotation that admits the new
/// session, and hands it instead the last rekey the crashed session got (boxed to the old
/// binding). The new session must refuse the replay and ask the leader for the key; the
/// leader answers only a session it has listed with the binding that signed the request,
/// and by then it has rotated, so the answer is still a key the crashed session never held.
#[test]
fn a_rejoin_whose_rotation_is_withheld_asks_and_still_gets_no_old_key() {
    let mut sim = meeting_of(3, "rejoin-withheld");
    let old = sim.index("p2");
    let held: Vec<u32> = sim.nodes[old].updates.keys().copied().collect();
    let held_top = *held.iter().max().unwrap();
    let replayed = sim
        .log
        .iter()
        .rev()
        .find_map(|(_, m)| match m {
            Message::Rekey(r) if r.recipient == pid("p2") && r.mk_seq == held_top => {
                Some(m.clone())
            }
            _ => None,
        })
        .expect("the crashed session's last rekey was posted");
    sim.nodes[old].left = Some(LeftReason::Requested);
    let new = sim.nodes.len();
    let mut swapped = false;
    sim.tamper = Some(Box::new(move |to, msg| {
        // The first rekey the new session would get is the admitting rotation's: replace it
        // with the old one. Later rekeys (answers to its requests) pass.
        if to == new && !swapped && matches!(msg, Message::Rekey(_)) {
            swapped = true;
            *msg = replayed.clone();
        }
        Verdict::Deliver
    }));
    sim.join("p2", "p0");
    assert_eq!(sim.index("p2"), new);
    sim.advance(30_000);
    let node = &sim.nodes[new];
    assert!(node.live(), "{:?}", node.errors);
    let got: Vec<u32> = node.updates.keys().copied().collect();
    assert!(
        !got.is_empty(),
        "the rejoined session is keyed after asking"
    );
    assert!(
        got.iter().all(|k| !held.contains(k)),
        "the crashed session held {held:?}; the rejoined one got {got:?}"
    );
    assert!(
        node.errors.contains(&MeetingError::StaleNonce),
        "the replayed rekey names a nonce the new session never sent: {:?}",
        node.errors
    );
    assert!(
        sim.log
            .iter()
            .any(|(i, m)| *i == new && matches!(m, Message::KeyRequest(_))),
        "the key came through the request path"
    );
    sim.assert_converged();
}

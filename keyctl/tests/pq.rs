//! Post-quantum key delivery (issue 16, part 1): the v4.6 hybrid box in the meeting, against a
//! board (or leader) that tries to take it away. Each test is an attack or a policy rule, and
//! each fails without the rule it names.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sim;

use std::collections::BTreeMap;

use keyctl::crypto::{
    BoxKeyPair, CTX_CIPHER_MEETING_SEED, CTX_KDF_MEETING_SEED, CryptoError, box_encrypt_with,
};
use keyctl::meeting::{Alert, KeyDelivery, LeftReason, MeetingError, PqPolicy};
use keyctl::rng::OsRng;
use keyctl::wire::{BoxKind, Message, Meta, MkPayload, ParticipantId, Rekey};
use sim::{Sim, TestRng, Verdict, pid};

/// A meeting whose participants join with the given local policies, `p0` (the first) leading.
fn meeting_with(uuid: &str, policies: &[PqPolicy]) -> Sim {
    let mut sim = Sim::new(uuid);
    for (i, pq) in policies.iter().enumerate() {
        sim.pq = *pq;
        sim.join(&format!("p{i}"), "p0");
        sim.advance(50);
    }
    sim.advance(5_000);
    sim
}

/// Which box each recipient's rekeys used, over the whole log.
fn boxes_to(sim: &Sim, who: &str) -> Vec<BoxKind> {
    sim.log
        .iter()
        .filter_map(|(_, m)| match m {
            Message::Rekey(r) if r.recipient == pid(who) => Some(r.boxed),
            _ => None,
        })
        .collect()
}

fn delivery(pairs: &[(&str, KeyDelivery)]) -> BTreeMap<ParticipantId, KeyDelivery> {
    pairs.iter().map(|(n, d)| (pid(n), *d)).collect()
}

/// The latest liveness nonce `who` posted.
fn latest_nonce(sim: &Sim, who: &str) -> [u8; 24] {
    sim.log
        .iter()
        .rev()
        .find_map(|(_, m)| match m {
            Message::NoncePost(p) if p.body.participant == pid(who) => Some(p.body.nonce),
            _ => None,
        })
        .expect("a nonce")
}

/// (a) A board that strips the ML-KEM key from an announcement (or swaps in its own) turns a
/// signed hybrid binding into bytes the signature does not cover: the leader refuses it with an
/// alert and nothing changes; the participant is never keyed classically.
#[test]
fn a_board_that_strips_the_mlkem_key_is_caught() {
    for swap in [false, true] {
        let mut sim = meeting_with(
            if swap { "swap-ek" } else { "strip-ek" },
            &[PqPolicy::Preferred, PqPolicy::Preferred],
        );
        let before = sim.assert_converged();
        let roster_before = sim.node("p0").session.roster().unwrap();
        let ek_of_p1 = sim
            .log
            .iter()
            .find_map(|(_, m)| match m {
                Message::KeyAnnouncement(a) if a.binding.participant == pid("p1") => {
                    a.binding.pq.clone()
                }
                _ => None,
            })
            .expect("p1 announced an ML-KEM key");
        let leader = sim.index("p0");
        sim.tamper = Some(Box::new(move |to, msg| {
            if to == leader
                && let Message::KeyAnnouncement(a) = msg
                && a.binding.participant == pid("p2")
            {
                // Strip the key, or replace it with another valid one (p1's).
                a.binding.pq = if swap { Some(ek_of_p1.clone()) } else { None };
            }
            Verdict::Deliver
        }));
        sim.pq = PqPolicy::Preferred;
        sim.join("p2", "p0");
        sim.advance(3_000);
        let p0 = sim.node("p0");
        assert!(
            p0.errors.contains(&MeetingError::BadSignature),
            "{:?}",
            p0.errors
        );
        assert!(p0.alerts.contains(&Alert::BadBindingSignature {
            participant: pid("p2")
        }));
        // Nothing changed: p2 is neither listed nor keyed, in any box.
        assert_eq!(p0.session.roster().unwrap(), roster_before);
        assert!(boxes_to(&sim, "p2").is_empty());
        assert!(sim.node("p2").updates.is_empty());
        assert_eq!(sim.node("p1").latest().unwrap().mk_seq, before);
    }
}

/// (b) A classical box for a participant whose binding carries an ML-KEM key, from a leader
/// whose binding carries one too, is a downgrade: refused with an alert, and the session holds
/// nothing new. A forged classical box that does not open is refused without the alert. The same box is a valid one (a participant without an ML-KEM key
/// accepts it), so only the rule refuses it.
#[test]
fn a_classical_box_to_a_hybrid_participant_is_refused_as_a_downgrade() {
    for (uuid, pq) in [
        ("downgrade", PqPolicy::Preferred),
        ("control", PqPolicy::Off),
    ] {
        let mut sim = meeting_with(uuid, &[PqPolicy::Preferred, pq]);
        let before = sim.assert_converged();
        // The leader's X25519 secret, as a party holding it would (a quantum adversary that
        // solved its public key, or a leader gone rogue): the first 32 bytes its session drew.
        let mut replay = TestRng::new(uuid);
        let sk = BoxKeyPair::generate(&mut replay).unwrap();
        let leader_binding = sim
            .log
            .iter()
            .find_map(|(_, m)| match m {
                Message::KeyAnnouncement(a) if a.binding.participant == pid("p0") => {
                    Some(a.binding.clone())
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(sk.public(), &leader_binding.pk, "the leader's X25519 key");
        assert!(leader_binding.pq.is_some());
        let p1_pk = sim
            .log
            .iter()
            .find_map(|(_, m)| match m {
                Message::KeyAnnouncement(a) if a.binding.participant == pid("p1") => {
                    Some(a.binding.pk)
                }
                _ => None,
            })
            .unwrap();
        let nonce = latest_nonce(&sim, "p1");
        let meta = Meta {
            meeting: sim.meeting.clone(),
            leader: pid("p0"),
            participant: pid("p1"),
            recipient_nonce: nonce,
        };
        let payload = MkPayload {
            mk_seq: before + 1,
            mk: [0x66; 32],
        };
        let ciphertext = box_encrypt_with(
            &mut OsRng::new(),
            sk.secret(),
            &p1_pk,
            CTX_KDF_MEETING_SEED,
            CTX_CIPHER_MEETING_SEED,
            &meta.to_bytes(),
            &payload.to_bytes(),
        )
        .unwrap();
        let forged = Message::Rekey(Rekey {
            boxed: BoxKind::Classical,
            mk_seq: before + 1,
            recipient: pid("p1"),
            recipient_nonce: nonce,
            ciphertext,
        });
        let p1 = sim.index("p1");
        // A board's forgery (not made with the leader's key): refused, no downgrade alarm.
        let Message::Rekey(mut garbage) = forged.clone() else {
            unreachable!()
        };
        garbage.ciphertext[0] ^= 1;
        let errors = sim.node("p1").errors.len();
        sim.deliver(p1, Message::Rekey(garbage));
        let node = sim.node("p1");
        assert_eq!(
            node.errors[errors..],
            [MeetingError::Crypto(CryptoError::BadTag)]
        );
        assert!(node.alerts.is_empty(), "{:?}", node.alerts);
        let errors = node.errors.len();
        sim.deliver(p1, forged);
        let node = sim.node("p1");
        if pq == PqPolicy::Off {
            // Control: the box opens for a classical participant.
            assert_eq!(node.session.mk_seq(), before + 1);
            assert_eq!(node.errors[errors..], []);
        } else {
            assert_eq!(node.errors[errors..], [MeetingError::Downgrade]);
            assert!(
                node.alerts
                    .contains(&Alert::ClassicalKeyRefused { mk_seq: before + 1 })
            );
            assert_eq!(node.session.mk_seq(), before, "nothing held");
            // The honest hybrid rotations still come through.
            sim.advance(5 * 60_000);
            assert!(sim.assert_converged() > before);
        }
    }
}

/// (c) Policy `required`: a joiner without an ML-KEM key is refused with an alert and nothing
/// changes; every key of the meeting is delivered by the hybrid box.
#[test]
fn required_refuses_a_classical_joiner_and_boxes_everything_hybrid() {
    let mut sim = meeting_with("required", &[PqPolicy::Required, PqPolicy::Preferred]);
    let before = sim.assert_converged();
    let roster = sim.node("p0").session.roster().unwrap();
    sim.pq = PqPolicy::Off;
    sim.join("p2", "p0");
    sim.advance(3_000);
    let p0 = sim.node("p0");
    assert!(p0.errors.contains(&MeetingError::PqRequired));
    assert!(p0.alerts.contains(&Alert::PqRequired {
        participant: pid("p2")
    }));
    assert_eq!(p0.session.roster().unwrap(), roster, "nothing changed");
    assert_eq!(sim.node("p1").latest().unwrap().mk_seq, before);
    assert!(sim.node("p2").updates.is_empty());
    assert!(boxes_to(&sim, "p2").is_empty());
    // A hybrid joiner is admitted; every rekey the log holds is hybrid.
    sim.pq = PqPolicy::Required;
    sim.join("p3", "p0");
    sim.advance(3_000);
    let i2 = sim.index("p2");
    sim.nodes[i2].session.leave().unwrap(); // never admitted
    sim.pump();
    assert!(sim.assert_converged() > before);
    for who in ["p1", "p3"] {
        let boxes = boxes_to(&sim, who);
        assert!(!boxes.is_empty());
        assert!(
            boxes.iter().all(|b| *b == BoxKind::Hybrid),
            "{who}: {boxes:?}"
        );
    }
    assert_eq!(
        sim.node("p3").session.key_delivery().unwrap(),
        delivery(&[
            ("p0", KeyDelivery::Leader),
            ("p1", KeyDelivery::Hybrid),
            ("p3", KeyDelivery::Hybrid)
        ])
    );
    assert_eq!(sim.node("p1").session.pq_policy(), Some(PqPolicy::Required));
}

/// (d) Policy `preferred` mixes both boxes, and every participant can see who got the key
/// classically: read from the signed bindings the certified list names.
#[test]
fn preferred_mixes_boxes_and_status_shows_who_got_the_key_classically() {
    let sim = meeting_with(
        "preferred",
        &[PqPolicy::Preferred, PqPolicy::Preferred, PqPolicy::Off],
    );
    sim.assert_converged();
    assert!(boxes_to(&sim, "p1").iter().all(|b| *b == BoxKind::Hybrid));
    assert!(
        boxes_to(&sim, "p2")
            .iter()
            .all(|b| *b == BoxKind::Classical)
    );
    assert!(!boxes_to(&sim, "p1").is_empty() && !boxes_to(&sim, "p2").is_empty());
    let expect = delivery(&[
        ("p0", KeyDelivery::Leader),
        ("p1", KeyDelivery::Hybrid),
        ("p2", KeyDelivery::Classical),
    ]);
    for who in ["p0", "p1", "p2"] {
        let s = &sim.node(who).session;
        assert_eq!(s.key_delivery().unwrap(), expect, "{who}");
        assert_eq!(s.pq_policy(), Some(PqPolicy::Preferred));
    }
}

/// A leader whose policy is `off` has no ML-KEM key, so its classical box is no downgrade: a
/// `preferred` participant takes it and shows it; a `required` one refuses the key, with an
/// alert naming the leader's policy, and leaves (nothing held).
#[test]
fn under_an_off_leader_preferred_takes_classical_and_required_refuses() {
    let sim = meeting_with(
        "off-leader",
        &[PqPolicy::Off, PqPolicy::Preferred, PqPolicy::Required],
    );
    let p1 = sim.node("p1");
    assert!(p1.latest().is_some());
    assert_eq!(
        p1.session.key_delivery().unwrap().get(&pid("p1")),
        Some(&KeyDelivery::Classical)
    );
    let p2 = sim.node("p2");
    assert!(p2.updates.is_empty(), "a required participant holds no key");
    assert_eq!(p2.session.mk_seq(), 0);
    assert!(p2.errors.contains(&MeetingError::WeakPqPolicy));
    assert!(p2.alerts.contains(&Alert::WeakPqPolicy {
        leader: pid("p0"),
        policy: PqPolicy::Off
    }));
    assert_eq!(p2.left, Some(LeftReason::WeakPqPolicy));
    assert!(!p2.session.holds_key_material());
    // Nor does a `preferred` leader satisfy it.
    let sim = meeting_with(
        "preferred-leader",
        &[PqPolicy::Preferred, PqPolicy::Required],
    );
    let p1 = sim.node("p1");
    assert!(p1.updates.is_empty());
    assert!(p1.alerts.contains(&Alert::WeakPqPolicy {
        leader: pid("p0"),
        policy: PqPolicy::Preferred
    }));
    assert_eq!(p1.left, Some(LeftReason::WeakPqPolicy));
}

/// (e) A hybrid rekey replayed into another instance of the meeting (another meetingUUID), to
/// the same participant with the same identity, X25519 keys and liveness nonce, does not open:
/// `Meta` names the instance and the hybrid box binds it (and both parties' keys) into `K`.
#[test]
fn a_hybrid_rekey_replayed_into_another_instance_is_refused() {
    let policies = [PqPolicy::Preferred, PqPolicy::Preferred];
    let mut a = meeting_with("instance-a", &policies);
    let mut b = Sim::new("instance-b");
    // The same randomness: same identities, X25519 keys and nonces in both instances.
    b.rng = TestRng::new("instance-a");
    for (i, pq) in policies.iter().enumerate() {
        b.pq = *pq;
        b.join(&format!("p{i}"), "p0");
        b.advance(50);
    }
    b.advance(5_000);
    let held = b.assert_converged();
    assert_eq!(a.assert_converged(), held);
    assert_eq!(latest_nonce(&a, "p1"), latest_nonce(&b, "p1"));
    // Instance A rotates (a join, before any new nonce); its rekey for p1 is replayed into B.
    a.join("p2", "p0");
    a.advance(3_000);
    let rekey = a
        .log
        .iter()
        .rev()
        .find_map(|(_, m)| match m {
            Message::Rekey(r) if r.recipient == pid("p1") && r.mk_seq == held + 1 => {
                Some(r.clone())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(rekey.boxed, BoxKind::Hybrid);
    assert_eq!(rekey.recipient_nonce, latest_nonce(&b, "p1"));
    let p1 = b.index("p1");
    b.deliver(p1, Message::Rekey(rekey));
    let node = b.node("p1");
    // Refused at the box, past the nonce and sequence checks.
    assert_eq!(
        node.errors.last(),
        Some(&MeetingError::Crypto(CryptoError::BadTag))
    );
    assert_eq!(node.session.mk_seq(), held);
}

/// A new leader whose policy is `required` keys nobody without an ML-KEM-768 key: it records
/// such a member as gone, so its certified list names only members keyed by the hybrid.
#[test]
fn a_required_new_leader_records_classical_members_as_gone() {
    let mut sim = Sim::new("required-takeover");
    // Heartbeats faster than the join batch: the joiner accepts the chain before it is listed
    // (as in hardening.rs, a_joiner_named_leader_before_it_was_listed_lists_itself_and_leads).
    sim.timings.heartbeat_interval_ms = 200;
    for (name, pq) in [
        ("p0", PqPolicy::Preferred),
        ("p1", PqPolicy::Preferred),
        ("p2", PqPolicy::Off),
    ] {
        sim.pq = pq;
        sim.join(name, "p0");
        sim.advance(50);
    }
    sim.advance(3_000);
    sim.assert_converged();
    // p3 requires the hybrid. It would leave at p0's first key; the board names it leader
    // before p0's batched rekey lists it (a joiner named leader lists itself), and from then
    // on its binding states the meeting's policy.
    sim.pq = PqPolicy::Required;
    sim.join("p3", "p0");
    sim.advance(500);
    let i0 = sim.index("p0");
    sim.nodes[i0].session.leave().unwrap();
    sim.pump();
    sim.leader_change("p3", 0);
    sim.advance(3_000);
    assert_eq!(sim.node("p3").left, None);
    assert_eq!(sim.node("p2").left, Some(LeftReason::ListedAsLeft));
    let p3 = &sim.node("p3").session;
    assert_eq!(p3.pq_policy(), Some(PqPolicy::Required));
    let delivery = p3.key_delivery().unwrap();
    assert!(!delivery.contains_key(&pid("p2")), "{delivery:?}");
    assert!(
        delivery
            .values()
            .all(|d| matches!(d, KeyDelivery::Leader | KeyDelivery::Hybrid)),
        "{delivery:?}"
    );
    assert_eq!(sim.node("p1").session.pq_policy(), Some(PqPolicy::Required));
    assert_eq!(sim.node("p1").latest().unwrap().mk_seq, p3.mk_seq());
}

//! Post-quantum authentication (issue 16 part 2, revision 4): hybrid identities (Ed25519 +
//! ML-DSA-65) on the wire, against a board that tries to take the ML-DSA half away, replays
//! hybrid messages into another meeting instance, or mixes halves of two identities. Each
//! attack test fails without the rule it names.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sim;

use keyctl::crypto::hybrid_sig::HybridSigningKey;
use keyctl::crypto::{
    self, CTX_SIG_HYBRID_LPL, CTX_SIG_LPL, SigningKey, security_code, security_code_hybrid,
};
use keyctl::meeting::{Alert, LeftReason, MeetingError, PqPolicy, Role};
use keyctl::wire::{
    Binding, BoxKind, Heartbeat, Hybrid, KeyAnnouncement, Kind, LinkPost, LplOp, Message, PqKey,
    Signed, WireError,
};
use sim::{Sim, Verdict, pid};

/// A meeting of hybrid identities `p0`.. (`p0` leads) with local policy `pq`.
fn hybrid_meeting(uuid: &str, n: usize, pq: PqPolicy) -> Sim {
    let mut sim = Sim::new(uuid);
    sim.pq = pq;
    for i in 0..n {
        sim.join_hybrid(&format!("p{i}"), "p0");
        sim.advance(50);
    }
    sim.advance(5_000);
    sim
}

/// The hybrid announcement `who` posted last.
fn hybrid_announcement(sim: &Sim, who: &str) -> Hybrid<KeyAnnouncement> {
    sim.log
        .iter()
        .rev()
        .find_map(|(_, m)| match m {
            Message::HybridKeyAnnouncement(h) if h.msg.binding.participant == pid(who) => {
                Some(h.clone())
            }
            _ => None,
        })
        .expect("a hybrid announcement")
}

/// Rewrites every hybrid message of type `M` for node `to` into the classical message the
/// board gets by dropping its ML-DSA half.
fn strip_for(to: usize, kind: Kind) -> sim::Tamper {
    Box::new(move |i, m| {
        if i == to {
            let stripped = match m {
                Message::HybridLinkPost(h) if kind == Kind::HybridLinkPost => {
                    Some(Message::LinkPost(h.strip()))
                }
                Message::HybridHeartbeat(h) if kind == Kind::HybridHeartbeat => {
                    Some(Message::Heartbeat(h.strip()))
                }
                Message::HybridKeyAnnouncement(h) if kind == Kind::HybridKeyAnnouncement => {
                    Some(Message::KeyAnnouncement(h.strip()))
                }
                Message::HybridNoncePost(h) if kind == Kind::HybridNoncePost => {
                    Some(Message::NoncePost(h.strip()))
                }
                _ => None,
            };
            if let Some(s) = stripped {
                *m = s;
            }
        }
        Verdict::Deliver
    })
}

/// `p2` joins through `p0` while the board hands `p1` what `tamper` makes of the traffic;
/// `p1` refuses with `error` and its list does not move. Returns `p1`.
fn p2_joins_while_p1_refuses_links(
    sim: &mut Sim,
    tamper: sim::Tamper,
    error: MeetingError,
) -> &sim::Node {
    let p1 = sim.index("p1");
    let roster_before = sim.nodes[p1].session.roster().unwrap();
    sim.tamper = Some(tamper);
    sim.join_hybrid("p2", "p0");
    sim.advance(3_000);
    let n = &sim.nodes[p1];
    assert!(n.errors.contains(&error), "{:?}", n.errors);
    assert_eq!(n.session.roster().unwrap(), roster_before);
    n
}

fn signer_alert(alerts: &[Alert], who: &str) -> bool {
    alerts.contains(&Alert::ClassicalSignatureRefused { signer: pid(who) })
}

/// The "done when", in keyctl: with policy `required` and hybrid identities, every
/// key is delivered by the hybrid box and every signature on the board is hybrid; the
/// security code is the hybrid one, over both of the leader's keys.
#[test]
fn a_required_hybrid_meeting_signs_everything_hybrid() {
    let mut sim = hybrid_meeting("pq-auth-all", 3, PqPolicy::Required);
    sim.advance(60_000);
    let mk_seq = sim.assert_converged();
    assert!(mk_seq >= 1);
    let mut kinds = std::collections::BTreeSet::new();
    for (_, m) in &sim.log {
        match m {
            Message::KeyAnnouncement(_)
            | Message::LinkPost(_)
            | Message::Heartbeat(_)
            | Message::NoncePost(_)
            | Message::LockRequest(_)
            | Message::KeyRequest(_) => panic!("a classical signature: {m:?}"),
            Message::Rekey(r) => assert_eq!(r.boxed, BoxKind::Hybrid),
            _ => {}
        }
        kinds.insert(m.to_bytes()[1]);
    }
    for k in [
        Kind::HybridKeyAnnouncement,
        Kind::HybridLinkPost,
        Kind::HybridHeartbeat,
        Kind::HybridNoncePost,
        Kind::HybridRekey,
    ] {
        assert!(kinds.contains(&(k as u8)), "{k:?} on the board");
    }
    let key = Sim::hybrid_identity("p0");
    let code = security_code_hybrid(key.verifying_key());
    assert_ne!(code, security_code(key.verifying_key().ed25519()));
    for n in &sim.nodes {
        assert_eq!(n.session.leader_hybrid_auth(), Some(true));
        assert_eq!(n.session.leader_security_code(), Some(code.clone()));
        assert!(n.errors.is_empty(), "{:?}: {:?}", n.id, n.errors);
        assert!(n.alerts.iter().all(|a| !matches!(
            a,
            Alert::ClassicalSignatureRefused { .. } | Alert::BadBindingSignature { .. }
        )));
    }
}

/// A board that strips the ML-DSA half off the leader's list links (reposting each as a
/// classical 0x15) is caught: the participant refuses every one with
/// `SignatureDowngrade` and an alert naming the leader, and its list does not move.
/// Without the rule (a verifier that accepts the Ed25519 half of a hybrid signer) the
/// participant applies the stripped link: `p2` would appear in `p1`'s list.
#[test]
fn a_link_stripped_of_its_ml_dsa_half_is_refused() {
    let mut sim = hybrid_meeting("pq-auth-strip-link", 2, PqPolicy::Preferred);
    sim.assert_converged();
    let p1 = sim.index("p1");
    let n = p2_joins_while_p1_refuses_links(
        &mut sim,
        strip_for(p1, Kind::HybridLinkPost),
        MeetingError::SignatureDowngrade,
    );
    assert!(signer_alert(&n.alerts, "p0"), "{:?}", n.alerts);
    // p0 and p2 moved on without it.
    let present = |n: &sim::Node| {
        n.session
            .roster()
            .unwrap()
            .entries
            .iter()
            .filter(|e| e.state == keyctl::wire::MemberState::Present)
            .count()
    };
    assert_eq!(present(sim.node("p2")), 3);
    assert_eq!(present(sim.node("p1")), 2);
}

/// The same for heartbeats: a heartbeat stripped to a classical 0x12 is refused with an
/// alert before the chain moves, so the participant's heartbeat head stays where it was.
#[test]
fn a_heartbeat_stripped_of_its_ml_dsa_half_is_refused() {
    let mut sim = hybrid_meeting("pq-auth-strip-hb", 2, PqPolicy::Preferred);
    sim.assert_converged();
    let p1 = sim.index("p1");
    let head = sim.nodes[p1].session.heartbeat_head();
    assert!(head.is_some());
    sim.tamper = Some(strip_for(p1, Kind::HybridHeartbeat));
    sim.advance(25_000);
    let n = &sim.nodes[p1];
    assert!(
        n.errors.contains(&MeetingError::SignatureDowngrade),
        "{:?}",
        n.errors
    );
    assert!(signer_alert(&n.alerts, "p0"));
    assert_eq!(n.session.heartbeat_head(), head);
    // Nothing but stripped heartbeats: after ten periods the participant leaves.
    sim.advance(100_000);
    assert_eq!(sim.node("p1").left, Some(LeftReason::HeartbeatsMissed));
}

/// A board that strips a joiner's hybrid announcement is caught by the leader, whichever way
/// it strips: the signature field alone (a classical 0x10 around the 0x0B binding) is
/// `SignatureDowngrade` with an alert; the ML-DSA key too (the binding rewritten as 0x0A) is
/// a binding signature that does not verify (`BadSignature`, `BadBindingSignature`). Either
/// way the joiner is neither listed nor keyed.
#[test]
fn an_announcement_stripped_of_its_hybrid_signature_is_refused() {
    for rewrite_binding in [false, true] {
        let mut sim = hybrid_meeting("pq-auth-strip-ann", 2, PqPolicy::Preferred);
        let before = sim.assert_converged();
        let p0 = sim.index("p0");
        let roster_before = sim.nodes[p0].session.roster().unwrap();
        sim.tamper = Some(Box::new(move |i, m| {
            if i == p0
                && let Message::HybridKeyAnnouncement(h) = m
                && h.msg.binding.participant == pid("p2")
            {
                let mut a = h.strip();
                if rewrite_binding {
                    a.binding.pq.as_mut().unwrap().ml_dsa = None;
                }
                *m = Message::KeyAnnouncement(a);
            }
            Verdict::Deliver
        }));
        sim.join_hybrid("p2", "p0");
        sim.advance(3_000);
        let n = &sim.nodes[p0];
        if rewrite_binding {
            assert!(n.errors.contains(&MeetingError::BadSignature));
            assert!(n.alerts.contains(&Alert::BadBindingSignature {
                participant: pid("p2")
            }));
        } else {
            assert!(n.errors.contains(&MeetingError::SignatureDowngrade));
            assert!(signer_alert(&n.alerts, "p2"));
        }
        assert_eq!(n.session.roster().unwrap(), roster_before);
        assert!(sim.node("p2").updates.is_empty());
        assert_eq!(sim.node("p1").latest().unwrap().mk_seq, before);
    }
}

/// A hybrid leader's Ed25519 key signing a classical link (the leader downgrading, or
/// whoever broke its Ed25519 key) is refused as the stripped link is, under either context;
/// a classical forgery that does not verify is a plain `BadSignature` without an alert.
#[test]
fn a_classical_signature_by_a_hybrid_leaders_ed25519_key_is_refused() {
    let mut sim = hybrid_meeting("pq-auth-ed-only", 2, PqPolicy::Preferred);
    sim.assert_converged();
    let p1 = sim.index("p1");
    let link = sim
        .log
        .iter()
        .rev()
        .find_map(|(_, m)| match m {
            Message::HybridLinkPost(h) => Some(h.msg.link.clone()),
            _ => None,
        })
        .unwrap();
    let ed = Sim::hybrid_identity("p0");
    let ed: &SigningKey = ed.ed25519();
    for ctx in [CTX_SIG_LPL, CTX_SIG_HYBRID_LPL] {
        let sig = ed.sign(ctx, &link.to_bytes());
        sim.deliver(
            p1,
            Message::LinkPost(LinkPost {
                link: link.clone(),
                sig,
            }),
        );
        assert_eq!(
            sim.nodes[p1].errors.pop(),
            Some(MeetingError::SignatureDowngrade)
        );
        assert!(signer_alert(&sim.nodes[p1].alerts, "p0"));
        sim.nodes[p1].alerts.clear();
    }
    let forged = LinkPost { link, sig: [7; 64] };
    sim.deliver(p1, Message::LinkPost(forged));
    assert_eq!(sim.nodes[p1].errors.pop(), Some(MeetingError::BadSignature));
    assert!(sim.nodes[p1].alerts.is_empty());
}

/// Halves of two identities do not make one: a 0x0B binding with p2's IVK and p3's ML-DSA
/// key, signed with p2's Ed25519 half and p3's ML-DSA half (each taken from their own
/// genuine announcements), is refused; so is a link whose ML-DSA half is another identity's.
#[test]
fn halves_of_two_identities_are_refused() {
    let mut sim = hybrid_meeting("pq-auth-mix", 4, PqPolicy::Preferred);
    sim.assert_converged();
    let a2 = hybrid_announcement(&sim, "p2");
    let a3 = hybrid_announcement(&sim, "p3");
    // Mallory presents p2's IVK with p3's ML-DSA key under a new device.
    let mut binding = a2.msg.binding.clone();
    binding.participant = keyctl::wire::ParticipantId::new(b"p2", b"other").unwrap();
    binding.pq.as_mut().unwrap().ml_dsa = a3.msg.binding.pq.as_ref().unwrap().ml_dsa.clone();
    let mixed = Hybrid {
        msg: KeyAnnouncement {
            binding,
            sig: a2.msg.sig,
            display_name: a2.msg.display_name.clone(),
            invite_proof: None,
        },
        ml_dsa: a3.ml_dsa.clone(),
    };
    let p0 = sim.index("p0");
    let roster = sim.nodes[p0].session.roster().unwrap();
    sim.deliver(p0, Message::HybridKeyAnnouncement(mixed));
    assert_eq!(sim.nodes[p0].errors.pop(), Some(MeetingError::BadSignature));
    assert_eq!(sim.nodes[p0].session.roster().unwrap(), roster);
    // A link with the leader's Ed25519 half and p3's ML-DSA signature over the same link.
    let link = sim
        .log
        .iter()
        .rev()
        .find_map(|(_, m)| match m {
            Message::HybridLinkPost(h) => Some(h.clone()),
            _ => None,
        })
        .unwrap();
    let p3 = Sim::hybrid_identity("p3");
    let theirs = p3
        .sign(
            CTX_SIG_HYBRID_LPL,
            &link.msg.link.to_bytes(),
            &mut sim.rng.clone(),
        )
        .unwrap();
    let mut mixed = link.clone();
    mixed.ml_dsa.copy_from_slice(theirs.ml_dsa());
    let p1 = sim.index("p1");
    sim.deliver(p1, Message::HybridLinkPost(mixed));
    assert_eq!(sim.nodes[p1].errors.pop(), Some(MeetingError::BadSignature));
}

/// Hybrid messages of one meeting instance replayed into another, among the same identities,
/// change nothing there: announcements are refused as another meeting's (with the alert),
/// links likewise, and heartbeats do not verify under this instance's leader binding.
#[test]
fn hybrid_messages_replayed_into_another_instance_are_refused() {
    let a = hybrid_meeting("pq-auth-instance-a", 3, PqPolicy::Required);
    let mut b = hybrid_meeting("pq-auth-instance-b", 3, PqPolicy::Required);
    b.assert_converged();
    let p1 = b.index("p1");
    let roster = b.nodes[p1].session.roster().unwrap();
    let head = b.nodes[p1].session.heartbeat_head();
    let mk_seq = b.nodes[p1].session.mk_seq();
    let foreign: Vec<Message> = a
        .log
        .iter()
        .filter(|(_, m)| {
            matches!(
                m,
                Message::HybridKeyAnnouncement(_)
                    | Message::HybridLinkPost(_)
                    | Message::HybridHeartbeat(_)
                    | Message::HybridNoncePost(_)
            )
        })
        .map(|(_, m)| m.clone())
        .collect();
    assert!(foreign.len() >= 8);
    for m in foreign {
        b.nodes[p1].errors.clear();
        b.deliver(p1, m.clone());
        let e = b.nodes[p1].errors.last().cloned();
        assert!(
            matches!(
                e,
                Some(
                    MeetingError::WrongMeeting
                        | MeetingError::BadSignature
                        | MeetingError::UnknownParticipant
                        | MeetingError::HeartbeatOrder
                )
            ),
            "kind {:#04x}: {e:?}",
            m.to_bytes()[1]
        );
    }
    let n = &b.nodes[p1];
    assert!(n.alerts.contains(&Alert::WrongMeeting));
    assert_eq!(n.session.roster().unwrap(), roster);
    assert_eq!(n.session.heartbeat_head(), head);
    assert_eq!(n.session.mk_seq(), mk_seq);
}

/// The policy: a hybrid leader whose policy is `required` refuses a classical identity (even
/// one with an ML-KEM key) with `PqRequired`; under `preferred` it admits it, keys it with
/// the hybrid box, and each side verifies the other by the other's binding (the leader's
/// links and heartbeats hybrid, the member's posts classical).
#[test]
fn a_hybrid_leaders_policy_decides_whether_a_classical_identity_is_admitted() {
    let mut sim = hybrid_meeting("pq-auth-policy-required", 2, PqPolicy::Required);
    sim.join("c", "p0");
    sim.advance(3_000);
    let p0 = sim.node("p0");
    assert!(p0.errors.contains(&MeetingError::PqRequired));
    assert!(p0.alerts.contains(&Alert::PqRequired {
        participant: pid("c")
    }));
    assert!(sim.node("c").updates.is_empty());

    let mut sim = hybrid_meeting("pq-auth-policy-preferred", 2, PqPolicy::Preferred);
    sim.join("c", "p0");
    sim.advance(5_000);
    sim.assert_converged();
    let c = sim.node("c");
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(c.session.leader_hybrid_auth(), Some(true));
    assert!(sim.log.iter().any(|(i, m)| *i == sim.index("c")
        && matches!(m, Message::KeyAnnouncement(a) if a.binding.kind() == Kind::HybridBinding)));
}

/// A hybrid identity whose local policy is `required` takes no key from a leader that signs
/// classically, even one whose (0x0A) binding says `required`: `WeakPqPolicy`, and it leaves.
#[test]
fn a_required_hybrid_participant_refuses_a_classical_leader() {
    let mut sim = Sim::new("pq-auth-weak-leader");
    sim.pq = PqPolicy::Required;
    sim.join("p0", "p0");
    sim.advance(50);
    sim.join_hybrid("p1", "p0");
    sim.advance(5_000);
    let p1 = sim.node("p1");
    assert_eq!(p1.left, Some(LeftReason::WeakPqPolicy));
    assert!(p1.errors.contains(&MeetingError::WeakPqPolicy));
    assert!(p1.updates.is_empty());
}

/// The wire: a 0x0B binding is the 0x0A binding plus the 1,952-byte ML-DSA key, and its kind
/// is inside what is signed; hybrid messages are their classical bodies plus the 3,309-byte
/// ML-DSA half under kinds 0x1A-0x1F, and decode back to themselves; a truncated one is
/// refused, and a revision-3 kind check refuses them as `UnexpectedKind`.
#[test]
fn hybrid_encodings_round_trip_and_differ_from_classical() {
    let sim = hybrid_meeting("pq-auth-wire", 2, PqPolicy::Required);
    let a = hybrid_announcement(&sim, "p1");
    let b = &a.msg.binding;
    assert_eq!(b.kind(), Kind::HybridAuthBinding);
    let bytes = b.to_bytes();
    assert_eq!(bytes[1], 0x0B);
    let mut classical = b.clone();
    classical.pq.as_mut().unwrap().ml_dsa = None;
    assert_eq!(bytes.len(), classical.to_bytes().len() + 1952);
    assert_eq!(
        &bytes[2..],
        &[
            &classical.to_bytes()[2..],
            &b.pq.as_ref().unwrap().ml_dsa.as_ref().unwrap()[..]
        ]
        .concat()[..]
    );
    assert_eq!(Binding::from_bytes(&bytes).unwrap(), *b);
    let hybrid_key = b.hybrid_key().unwrap();
    assert_eq!(
        crypto::security_code_hybrid(&hybrid_key),
        security_code_hybrid(Sim::hybrid_identity("p1").verifying_key())
    );
    for (_, m) in &sim.log {
        let bytes = m.to_bytes();
        assert_eq!(Message::from_bytes(&bytes).unwrap(), *m);
        let classical = match m {
            Message::HybridKeyAnnouncement(h) => h.msg.to_bytes(),
            Message::HybridLinkPost(h) => h.msg.to_bytes(),
            Message::HybridHeartbeat(h) => h.msg.to_bytes(),
            Message::HybridNoncePost(h) => h.msg.to_bytes(),
            _ => continue,
        };
        assert_eq!(bytes.len(), classical.len() + 3309);
        assert_eq!(&bytes[2..classical.len()], &classical[2..]);
        assert!(matches!(
            Message::from_bytes(&bytes[..bytes.len() - 1]),
            Err(WireError::Truncated { .. })
        ));
    }
    let hb = sim
        .log
        .iter()
        .find_map(|(_, m)| match m {
            Message::HybridHeartbeat(h) => Some(h.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        Heartbeat::from_bytes(&hb.to_bytes()),
        Err(WireError::UnexpectedKind(0x1C))
    );
    assert_eq!(<Heartbeat as Signed>::HYBRID_KIND, Kind::HybridHeartbeat);
    let _ = PqKey::clone(b.pq.as_ref().unwrap());
}

/// A stored Ed25519 identity (kind 0x08 file) yields its hybrid identity: the same IVK, and the
/// ML-DSA seed `SHA256("Veil-1-KDF-HybridIdentity" || seed)`, the same at every load.
#[test]
fn the_hybrid_identity_of_a_stored_ed25519_seed() {
    let seed = [42u8; 32];
    let h = keyctl::crypto::hybrid_sig::HybridSigningKey::from_ed25519_seed(&seed).unwrap();
    let classical = SigningKey::from_seed(&seed).unwrap();
    assert_eq!(h.verifying_key().ed25519(), &classical.verifying_key());
    let xi = crypto::sha256(&[&b"Veil-1-KDF-HybridIdentity"[..], &seed[..]].concat());
    assert_eq!(h.ml_dsa_seed(), &xi);
    let again = keyctl::crypto::hybrid_sig::HybridSigningKey::from_ed25519_seed(&seed).unwrap();
    assert_eq!(again.verifying_key(), h.verifying_key());
}

/// A hybrid co-host's lock request is hybrid-signed and applied; the same request stripped of
/// its ML-DSA half is refused with the alert, and the meeting stays unlocked.
#[test]
fn a_lock_request_stripped_of_its_ml_dsa_half_is_refused() {
    for strip in [true, false] {
        let mut sim = hybrid_meeting("pq-auth-lock", 2, PqPolicy::Preferred);
        let p0 = sim.index("p0");
        let p1 = sim.index("p1");
        sim.nodes[p0].session.set_cohosts([pid("p1")]).unwrap();
        if strip {
            sim.tamper = Some(Box::new(move |i, m| {
                if i == p0
                    && let Message::HybridLockRequest(h) = m
                {
                    *m = Message::LockRequest(h.strip());
                }
                Verdict::Deliver
            }));
        }
        sim.nodes[p1].session.request_lock(true).unwrap();
        sim.pump();
        assert!(
            sim.log
                .iter()
                .any(|(i, m)| *i == p1 && matches!(m, Message::HybridLockRequest(_)))
        );
        let n = &sim.nodes[p0];
        assert_eq!(n.session.roster().unwrap().locked, !strip);
        if strip {
            assert_eq!(n.errors.last(), Some(&MeetingError::SignatureDowngrade));
            assert!(signer_alert(&n.alerts, "p1"));
        }
    }
}

/// An adversary's way into the simulation: it joins, and says at which node index.
type Forge = Box<dyn Fn(&mut Sim) -> usize>;

/// `p2` (hybrid) leaves; `p3` joins after, and the board never hands it `p2`'s announcement,
/// so `p3` knows `p2` only from the signed list; the meeting is locked; `p0` leaves and `p3`
/// takes over. Returns the simulation with `p1` and `p3` (leading) live.
fn takeover_after_a_hybrid_member_left(uuid: &str) -> Sim {
    let mut sim = hybrid_meeting(uuid, 3, PqPolicy::Preferred);
    sim.assert_converged();
    let i2 = sim.index("p2");
    sim.nodes[i2].session.leave().unwrap();
    sim.pump();
    sim.advance(11_000);
    let newcomer = sim.nodes.len();
    let p2 = pid("p2");
    sim.tamper = Some(Box::new(move |i, m| {
        let from_p2 = match m {
            Message::HybridKeyAnnouncement(h) => h.msg.binding.participant == p2,
            Message::HybridNoncePost(h) => h.msg.body.participant == p2,
            _ => false,
        };
        if i == newcomer && from_p2 {
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    }));
    sim.join_hybrid("p3", "p0");
    sim.advance(5_000);
    sim.tamper = None;
    let i0 = sim.index("p0");
    sim.nodes[i0].session.lock().unwrap();
    sim.pump();
    sim.nodes[i0].session.leave().unwrap();
    sim.pump();
    sim.leader_change("p3", 0);
    sim.advance(5_000);
    assert_eq!(sim.node("p3").session.role(), Some(Role::Leader));
    assert!(sim.node("p3").session.roster().unwrap().locked);
    sim.assert_converged();
    sim
}

/// RELIABILITY, "a quantum adversary recording today": whoever can forge Ed25519 signatures
/// (a quantum adversary) is not re-admitted to a locked meeting as a departed hybrid member,
/// even by a leader that knows the member only from the list (after a takeover). The list
/// records the member's ML-DSA identity (`AddHybrid`, 0x09), so a classical binding under the
/// member's `IVK`, or a hybrid one with another ML-DSA key, is refused with `IvkChanged` and an
/// alert, and changes nothing; the member itself (same `IVK` and ML-DSA key, a fresh binding)
/// comes back. Without the listed identity the leader admits and keys both forgeries (a
/// locked meeting admits listed `IVK`s).
#[test]
fn a_departed_hybrid_member_is_not_readmitted_under_its_ivk_alone() {
    let mut sim = takeover_after_a_hybrid_member_left("pq-auth-rejoin");
    let ed25519_seed = *Sim::hybrid_identity("p2").ed25519().seed();
    let forgeries: [(&str, Forge); 2] = [
        (
            "a classical binding under p2's IVK",
            Box::new(move |sim: &mut Sim| {
                let key = SigningKey::from_seed(&ed25519_seed).unwrap();
                sim.join_with("p2", "p3", key, None)
            }),
        ),
        (
            "a hybrid binding under p2's IVK with another ML-DSA key",
            Box::new(move |sim: &mut Sim| {
                let key = HybridSigningKey::from_seeds(&ed25519_seed, &[7; 32]).unwrap();
                sim.join_hybrid_with("p2", "p3", key)
            }),
        ),
    ];
    for (what, forge) in forgeries {
        let state = |sim: &Sim| {
            ["p1", "p3"].map(|name| {
                let s = &sim.node(name).session;
                (s.roster(), s.mk_seq(), s.key_delivery())
            })
        };
        let before = state(&sim);
        for name in ["p1", "p3"] {
            let i = sim.index(name);
            sim.nodes[i].errors.clear();
            sim.nodes[i].alerts.clear();
        }
        let mallory = forge(&mut sim);
        sim.advance(3_000);
        assert!(sim.nodes[mallory].updates.is_empty(), "{what}: keyed");
        let leader = sim.node("p3");
        assert!(
            leader.errors.contains(&MeetingError::IvkChanged),
            "{what}: {:?}",
            leader.errors
        );
        assert!(
            leader.alerts.contains(&Alert::IvkChanged {
                participant: pid("p2")
            }),
            "{what}: {:?}",
            leader.alerts
        );
        assert_eq!(state(&sim), before, "{what}: the state moved");
        // Mallory gives up (its leave changes nothing: it was never listed).
        sim.nodes[mallory].session.leave().unwrap();
        sim.pump();
        assert_eq!(state(&sim), before, "{what}: its leave moved the state");
    }
    // The member itself, with a fresh binding, is admitted and keyed.
    let back = sim.join_hybrid("p2", "p3");
    sim.advance(3_000);
    assert!(sim.nodes[back].latest().is_some());
    sim.assert_converged();
}

/// The listed ML-DSA identity is what the leader signed: every participant reads it from the
/// leader's signed `AddHybrid` (and `SnapshotHybrid`) link, never from the board. A board that
/// swaps the id in a link breaks the link's signature (`BadSignature`), and the participant's
/// list does not move; the honest list records `SHA256(pk_ML-DSA)` of the member's binding.
#[test]
fn a_board_that_swaps_a_listed_ml_dsa_id_breaks_the_link() {
    let mut sim = hybrid_meeting("pq-auth-swap-id", 2, PqPolicy::Preferred);
    sim.assert_converged();
    let p1 = sim.index("p1");
    let swap: sim::Tamper = Box::new(move |i, m| {
        if i == p1
            && let Message::HybridLinkPost(h) = m
            && let LplOp::Add { ml_dsa_id, .. } = &mut h.msg.link.op
        {
            *ml_dsa_id = Some([7; 32]);
        }
        Verdict::Deliver
    });
    p2_joins_while_p1_refuses_links(&mut sim, swap, MeetingError::BadSignature);
    let id = crypto::sha256(Sim::hybrid_identity("p2").verifying_key().ml_dsa());
    for name in ["p0", "p2"] {
        let roster = sim.node(name).session.roster().unwrap();
        let entry = roster.entries.iter().find(|e| e.participant == pid("p2"));
        assert_eq!(entry.and_then(|e| e.ml_dsa_id), Some(id), "{name}");
    }
    assert!(sim.log.iter().any(|(_, m)| matches!(
        m,
        Message::HybridLinkPost(h) if matches!(h.msg.link.op, LplOp::Add { ml_dsa_id: Some(_), .. })
    )));
}

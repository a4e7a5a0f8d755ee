//! Round trips and rejections of the canonical encoding.
#![allow(clippy::unwrap_used, clippy::expect_used)] // proptest strategies are not #[test] fns

use keyctl::wire::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

fn id() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=40)
}

fn participant() -> impl Strategy<Value = ParticipantId> {
    (id(), id()).prop_map(|(u, d)| ParticipantId::new(&u, &d).unwrap())
}

fn meeting() -> impl Strategy<Value = MeetingRef> {
    (id(), id()).prop_map(|(m, u)| MeetingRef::new(&m, &u).unwrap())
}

fn name() -> impl Strategy<Value = Id> {
    id().prop_map(|n| Id::new(Field::DisplayName, &n).unwrap())
}

/// A canonical ML-KEM-768 encapsulation key: coefficients below q (here all `c`), then `rho`.
fn mlkem_key(c: u16, rho: [u8; 32]) -> Box<[u8; 1184]> {
    let c = c % 3329;
    let mut ek = Box::new([0u8; 1184]);
    for chunk in ek[..1152].chunks_exact_mut(3) {
        chunk[0] = (c & 0xff) as u8;
        chunk[1] = ((c >> 8) | ((c & 0x0f) << 4)) as u8;
        chunk[2] = (c >> 4) as u8;
    }
    ek[1152..].copy_from_slice(&rho);
    ek
}

fn pq_key() -> impl Strategy<Value = Option<PqKey>> {
    prop_oneof![
        Just(None),
        (
            prop_oneof![Just(PqPolicy::Preferred), Just(PqPolicy::Required)],
            any::<u16>(),
            any::<[u8; 32]>()
        )
            .prop_map(|(policy, c, rho)| Some(PqKey {
                policy,
                mlkem: mlkem_key(c, rho),
                ml_dsa: None,
            })),
    ]
}

fn binding() -> impl Strategy<Value = Binding> {
    (
        meeting(),
        participant(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        pq_key(),
    )
        .prop_map(|(meeting, participant, ivk, pk, pq)| Binding {
            meeting,
            participant,
            ivk,
            pk,
            pq,
        })
}

fn sig() -> impl Strategy<Value = [u8; 64]> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&a);
        s[32..].copy_from_slice(&b);
        s
    })
}

fn state() -> impl Strategy<Value = MemberState> {
    prop_oneof![
        Just(MemberState::Present),
        Just(MemberState::Left),
        Just(MemberState::Kicked)
    ]
}

fn entry() -> impl Strategy<Value = RosterEntry> {
    (
        any::<u32>(),
        participant(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        name(),
        state(),
        any::<u16>(),
        option::of(any::<[u8; 32]>()),
    )
        .prop_map(
            |(slot, participant, ivk, binding_hash, display_name, state, leaves, ml_dsa_id)| {
                RosterEntry {
                    slot,
                    participant,
                    ivk,
                    binding_hash,
                    display_name,
                    state,
                    leaves,
                    ml_dsa_id,
                }
            },
        )
}

fn op() -> impl Strategy<Value = LplOp> {
    prop_oneof![
        (
            any::<u32>(),
            participant(),
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            name(),
            option::of(any::<[u8; 32]>())
        )
            .prop_map(
                |(slot, participant, ivk, binding_hash, display_name, ml_dsa_id)| LplOp::Add {
                    slot,
                    participant,
                    ivk,
                    binding_hash,
                    display_name,
                    ml_dsa_id
                }
            ),
        (any::<u32>(), participant())
            .prop_map(|(slot, participant)| LplOp::Leave { slot, participant }),
        (any::<u32>(), participant())
            .prop_map(|(slot, participant)| LplOp::Kick { slot, participant }),
        (any::<u32>(), participant())
            .prop_map(|(slot, participant)| LplOp::Unban { slot, participant }),
        Just(LplOp::InviteOnly),
        Just(LplOp::Lock),
        Just(LplOp::Unlock),
        (
            any::<bool>(),
            any::<bool>(),
            any::<u32>(),
            vec(entry(), 0..5)
        )
            .prop_map(|(locked, invite_only, next_slot, roster)| LplOp::Snapshot {
                locked,
                invite_only,
                next_slot,
                roster
            }),
    ]
}

fn link() -> impl Strategy<Value = LplLink> {
    (meeting(), any::<u64>(), any::<[u8; 32]>(), op()).prop_map(|(meeting, v, prev, op)| LplLink {
        meeting,
        v,
        prev,
        op,
    })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            binding(),
            sig(),
            name(),
            proptest::option::of(any::<[u8; 32]>())
        )
            .prop_map(|(binding, sig, display_name, invite_proof)| {
                Message::KeyAnnouncement(KeyAnnouncement {
                    binding,
                    sig,
                    display_name,
                    invite_proof,
                })
            }),
        (
            prop_oneof![Just(BoxKind::Classical), Just(BoxKind::Hybrid)],
            any::<u32>(),
            participant(),
            any::<[u8; 24]>(),
            vec(any::<u8>(), 0..200)
        )
            .prop_map(|(boxed, mk_seq, recipient, recipient_nonce, ciphertext)| {
                Message::Rekey(Rekey {
                    boxed,
                    mk_seq,
                    recipient,
                    recipient_nonce,
                    ciphertext,
                })
            }),
        (
            any::<[u8; 32]>(),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            any::<[u8; 32]>(),
            any::<u64>(),
            sig()
        )
            .prop_map(|(lpl_hash, v, t, mk_seq, prev, timestamp_ms, sig)| {
                Message::Heartbeat(Heartbeat {
                    lpl_hash,
                    v,
                    t,
                    mk_seq,
                    prev,
                    timestamp_ms,
                    sig,
                })
            }),
        (meeting(), participant(), any::<[u8; 24]>(), sig()).prop_map(
            |(meeting, participant, nonce, sig)| Message::NoncePost(NoncePost {
                body: NonceBody {
                    meeting,
                    participant,
                    nonce
                },
                sig
            })
        ),
        participant().prop_map(|participant| Message::Leave(Leave { participant })),
        (link(), sig()).prop_map(|(link, sig)| Message::LinkPost(LinkPost { link, sig })),
        participant().prop_map(|leader| Message::LeaderChange(LeaderChange { leader })),
        (
            meeting(),
            participant(),
            any::<[u8; 32]>(),
            any::<bool>(),
            sig()
        )
            .prop_map(
                |(meeting, requester, lpl_head, locked, sig)| Message::LockRequest(LockRequest {
                    body: LockRequestBody {
                        meeting,
                        requester,
                        lpl_head,
                        locked
                    },
                    sig
                })
            ),
        (
            meeting(),
            participant(),
            any::<u32>(),
            any::<[u8; 24]>(),
            sig()
        )
            .prop_map(
                |(meeting, participant, mk_seq, nonce, sig)| Message::KeyRequest(KeyRequest {
                    body: KeyRequestBody {
                        meeting,
                        participant,
                        mk_seq,
                        nonce
                    },
                    sig
                })
            ),
    ]
}

proptest! {
    #[test]
    fn messages_round_trip(m in message()) {
        let bytes = m.to_bytes();
        prop_assert_eq!(Message::from_bytes(&bytes).unwrap(), m);
    }

    #[test]
    fn every_strict_prefix_is_rejected(m in message()) {
        let bytes = m.to_bytes();
        for cut in 0..bytes.len() {
            prop_assert!(Message::from_bytes(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn trailing_bytes_are_rejected(m in message(), extra in vec(any::<u8>(), 1..4)) {
        let mut bytes = m.to_bytes();
        bytes.extend_from_slice(&extra);
        prop_assert_eq!(
            Message::from_bytes(&bytes),
            Err(WireError::TrailingBytes { extra: extra.len() })
        );
    }

    #[test]
    fn signed_structures_round_trip(b in binding(), l in link(), m in meeting(), p in participant(), q in participant(), n in any::<[u8; 24]>()) {
        prop_assert_eq!(Binding::from_bytes(&b.to_bytes()).unwrap(), b.clone());
        prop_assert_eq!(LplLink::from_bytes(&l.to_bytes()).unwrap(), l);
        let meta = Meta { meeting: m, leader: p, participant: q, recipient_nonce: n };
        prop_assert_eq!(Meta::from_bytes(&meta.to_bytes()).unwrap(), meta);
        let hb = HeartbeatInput { leader_binding: b, lpl_hash: [1; 32], v: 2, t: 3, mk_seq: 4, prev: [5; 32], timestamp_ms: 6 };
        prop_assert_eq!(HeartbeatInput::from_bytes(&hb.to_bytes()).unwrap(), hb);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..300)) {
        if let Ok(m) = Message::from_bytes(&bytes) {
            // Canonical: whatever parses re-encodes to the same bytes.
            prop_assert_eq!(m.to_bytes(), bytes);
        }
    }
}

fn sample_binding() -> Binding {
    Binding {
        meeting: MeetingRef::new(b"m", b"u").unwrap(),
        participant: ParticipantId::new(b"alice", b"laptop").unwrap(),
        ivk: [1; 32],
        pk: [2; 32],
        pq: None,
    }
}

#[test]
fn binding_bytes_are_exact() {
    let b = sample_binding();
    let mut expect = vec![1, 0x01, 0, 1, b'm', 0, 1, b'u', 0, 5];
    expect.extend_from_slice(b"alice");
    expect.extend_from_slice(&[0, 6]);
    expect.extend_from_slice(b"laptop");
    expect.extend_from_slice(&[1; 32]);
    expect.extend_from_slice(&[2; 32]);
    assert_eq!(b.to_bytes(), expect);
}

/// Revision 3: the hybrid binding is kind 0x0A, the classical body, the policy byte and `ek`.
#[test]
fn hybrid_binding_bytes_are_exact_and_checked() {
    let mut b = sample_binding();
    let classical = b.to_bytes();
    b.pq = Some(PqKey {
        policy: PqPolicy::Required,
        mlkem: mlkem_key(3328, [9; 32]),
        ml_dsa: None,
    });
    let bytes = b.to_bytes();
    let mut expect = classical.clone();
    expect[1] = 0x0A;
    expect.push(2);
    expect.extend_from_slice(&b.pq.as_ref().unwrap().mlkem[..]);
    assert_eq!(bytes, expect);
    assert_eq!(bytes.len(), classical.len() + 1 + 1184);
    // docs/PROTOCOL.md's example: 87 bytes, 1,272 with the key.
    assert_eq!((classical.len(), bytes.len()), (87, 1272));
    assert_eq!(Binding::from_bytes(&bytes).unwrap(), b);
    assert_ne!(b.hash(), sample_binding().hash());
    // The policy byte is 1 or 2.
    for bad in [0, 3, 0xff] {
        let mut x = bytes.clone();
        x[classical.len()] = bad;
        assert_eq!(
            Binding::from_bytes(&x),
            Err(WireError::UnknownPqPolicy(bad))
        );
    }
    // The key passes FIPS 203 7.2's modulus check: a coefficient of q is refused.
    let mut x = bytes.clone();
    let ek = classical.len() + 1;
    x[ek] = 0x01; // 0xd01 = 3329 in the first 12 bits
    x[ek + 1] = (x[ek + 1] & 0xf0) | 0x0d;
    assert_eq!(Binding::from_bytes(&x), Err(WireError::BadMlKemKey));
    // A key cut short, or the classical body under the hybrid kind, is truncated.
    assert!(matches!(
        Binding::from_bytes(&bytes[..bytes.len() - 1]),
        Err(WireError::Truncated { .. })
    ));
    let mut x = classical.clone();
    x[1] = 0x0A;
    assert!(matches!(
        Binding::from_bytes(&x),
        Err(WireError::Truncated { .. })
    ));
    // The classical binding with the key appended is not canonical.
    let mut x = bytes.clone();
    x[1] = 0x01;
    assert_eq!(
        Binding::from_bytes(&x),
        Err(WireError::TrailingBytes { extra: 1185 })
    );
}

/// Revision 3: a hybrid rekey is kind 0x19 and may carry the 1,088-byte KEM ciphertext more.
#[test]
fn hybrid_rekey_kind_and_bound() {
    let mut rk = Rekey {
        boxed: BoxKind::Hybrid,
        mk_seq: 1,
        recipient: ParticipantId::new(b"a", b"b").unwrap(),
        recipient_nonce: [0; 24],
        ciphertext: vec![0; MAX_HYBRID_BOX_LEN],
    };
    let bytes = rk.to_bytes();
    assert_eq!(bytes[1], 0x19);
    assert_eq!(Message::from_bytes(&bytes), Ok(Message::Rekey(rk.clone())));
    rk.ciphertext.push(0);
    assert_eq!(
        Rekey::from_bytes(&rk.to_bytes()),
        Err(WireError::FieldTooLong {
            field: Field::BoxCiphertext,
            len: MAX_HYBRID_BOX_LEN + 1,
            max: MAX_HYBRID_BOX_LEN
        })
    );
    // The same ciphertext under the classical kind is over its bound.
    rk.ciphertext.pop();
    rk.boxed = BoxKind::Classical;
    assert_eq!(rk.to_bytes()[1], 0x11);
    assert_eq!(
        Rekey::from_bytes(&rk.to_bytes()),
        Err(WireError::FieldTooLong {
            field: Field::BoxCiphertext,
            len: MAX_HYBRID_BOX_LEN,
            max: MAX_BOX_LEN
        })
    );
    assert_eq!(MAX_HYBRID_BOX_LEN, MAX_BOX_LEN + 1088);
}

#[test]
fn unknown_version_and_kind_are_rejected() {
    let mut bytes = sample_binding().to_bytes();
    bytes[0] = 2;
    assert_eq!(
        Binding::from_bytes(&bytes),
        Err(WireError::UnknownVersion(2))
    );
    bytes[0] = 1;
    bytes[1] = 0x02;
    assert_eq!(
        Binding::from_bytes(&bytes),
        Err(WireError::UnexpectedKind(0x02))
    );
    assert_eq!(
        Message::from_bytes(&[1, 0x7f]),
        Err(WireError::UnexpectedKind(0x7f))
    );
    // A signed structure is not a board message.
    assert_eq!(
        Message::from_bytes(&sample_binding().to_bytes()),
        Err(WireError::UnexpectedKind(0x01))
    );
}

#[test]
fn over_long_fields_are_rejected() {
    assert!(matches!(
        Id::new(Field::UserId, &[0; MAX_ID_LEN + 1]),
        Err(WireError::FieldTooLong {
            field: Field::UserId,
            len: 257,
            max: 256
        })
    ));
    let mut bytes = vec![1, Kind::Leave as u8, 0x01, 0x01];
    bytes.extend_from_slice(&[b'a'; 257]);
    bytes.extend_from_slice(&[0, 0]);
    assert_eq!(
        Leave::from_bytes(&bytes),
        Err(WireError::FieldTooLong {
            field: Field::UserId,
            len: 257,
            max: 256
        })
    );
    let rk = Rekey {
        boxed: BoxKind::Classical,
        mk_seq: 1,
        recipient: ParticipantId::new(b"a", b"b").unwrap(),
        recipient_nonce: [0; 24],
        ciphertext: vec![0; MAX_BOX_LEN + 1],
    };
    assert!(matches!(
        Rekey::from_bytes(&rk.to_bytes()),
        Err(WireError::FieldTooLong {
            field: Field::BoxCiphertext,
            ..
        })
    ));
}

#[test]
fn bad_tags_and_lengths_are_rejected() {
    let link = LplLink {
        meeting: MeetingRef::new(b"m", b"u").unwrap(),
        v: 1,
        prev: [0; 32],
        op: LplOp::Lock,
    };
    let mut bytes = link.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] = 11;
    assert_eq!(LplLink::from_bytes(&bytes), Err(WireError::UnknownOp(11)));
    let ann = KeyAnnouncement {
        binding: sample_binding(),
        sig: [0; 64],
        display_name: Id::new(Field::DisplayName, b"A").unwrap(),
        invite_proof: None,
    };
    let mut bytes = ann.to_bytes();
    let n = bytes.len();
    bytes[n - 1] = 3; // invite length 3
    bytes.extend_from_slice(&[7, 7, 7]);
    assert_eq!(
        KeyAnnouncement::from_bytes(&bytes),
        Err(WireError::BadLength {
            field: Field::Invite,
            len: 3
        })
    );
}

/// Revision 5: a hybrid member's list entry carries `SHA256(pk_ML-DSA)`. `AddHybrid` (tag 9)
/// is `Add` (tag 1) plus the 32-byte id; `SnapshotHybrid` (tag 10) is `Snapshot` (tag 6) with
/// a presence byte (and the id) after each entry, used only when some entry is hybrid, so a
/// classical list keeps its revision 4 bytes. A `SnapshotHybrid` without a hybrid entry or
/// with a presence byte other than 0 or 1 is refused (one encoding per list).
#[test]
fn hybrid_list_entries_bytes_are_exact() {
    let link = |op| LplLink {
        meeting: MeetingRef::new(b"m", b"u").unwrap(),
        v: 1,
        prev: [0; 32],
        op,
    };
    let p = ParticipantId::new(b"p", b"d").unwrap();
    let name = Id::new(Field::DisplayName, b"P").unwrap();
    let add = |ml_dsa_id| LplOp::Add {
        slot: 3,
        participant: p.clone(),
        ivk: [1; 32],
        binding_hash: [2; 32],
        display_name: name.clone(),
        ml_dsa_id,
    };
    let classical = link(add(None)).to_bytes();
    let hybrid = link(add(Some([9; 32]))).to_bytes();
    // The op's tag follows the link header, where a Lock's only byte is.
    let op_at = link(LplOp::Lock).to_bytes().len() - 1;
    assert_eq!(classical[op_at], 1);
    assert_eq!(hybrid[op_at], 9);
    assert_eq!(hybrid[..op_at], classical[..op_at]);
    assert_eq!(hybrid[op_at + 1..classical.len()], classical[op_at + 1..]);
    assert_eq!(hybrid[classical.len()..], [9; 32]);
    assert_eq!(
        LplLink::from_bytes(&hybrid).unwrap(),
        link(add(Some([9; 32])))
    );

    let entry = |ml_dsa_id| RosterEntry {
        slot: 3,
        participant: p.clone(),
        ivk: [1; 32],
        binding_hash: [0; 32],
        display_name: name.clone(),
        state: MemberState::Left,
        leaves: 1,
        ml_dsa_id,
    };
    let snapshot = |roster| LplOp::Snapshot {
        locked: true,
        invite_only: false,
        next_slot: 4,
        roster,
    };
    let classical = link(snapshot(vec![entry(None), entry(None)])).to_bytes();
    let mixed = link(snapshot(vec![entry(None), entry(Some([9; 32]))])).to_bytes();
    let at = op_at;
    assert_eq!(classical[at], 6);
    assert_eq!(mixed[at], 10);
    let e = (classical.len() - at - 8) / 2;
    // The classical bytes under tag 10, each entry followed by its presence byte and id.
    let hybrid_form = |second: &[u8]| {
        [
            &classical[..at],
            &[10],
            &classical[at + 1..at + 8 + e],
            &[0],
            &classical[at + 8 + e..],
            second,
        ]
        .concat()
    };
    assert_eq!(mixed, hybrid_form(&[&[1][..], &[9; 32]].concat()));
    assert_eq!(
        LplLink::from_bytes(&mixed).unwrap(),
        link(snapshot(vec![entry(None), entry(Some([9; 32]))]))
    );
    // The classical list's entries in the hybrid form: not canonical.
    assert_eq!(
        LplLink::from_bytes(&hybrid_form(&[0])),
        Err(WireError::NonCanonicalOp(10))
    );
    let mut bad_presence = mixed.clone();
    bad_presence[at + 8 + e] = 2;
    assert_eq!(
        LplLink::from_bytes(&bad_presence),
        Err(WireError::UnknownPresence(2))
    );
    // A truncated id is refused.
    assert!(matches!(
        LplLink::from_bytes(&hybrid[..hybrid.len() - 1]),
        Err(WireError::Truncated { .. })
    ));
}

#[test]
fn mk_payload_is_redacted_and_round_trips() {
    let p = MkPayload {
        mk_seq: 7,
        mk: [0x5a; 32],
    };
    assert!(!format!("{p:?}").contains("90"));
    assert_eq!(MkPayload::from_bytes(&p.to_bytes()).unwrap(), p);
    assert_eq!(p.to_bytes().len(), MkPayload::LEN);
}

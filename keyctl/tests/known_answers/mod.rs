//! The known-answer cases, computed by libsodium (tools/kat/gen_keyctl_kat.py) and Python's
//! hmac. Each runs under whatever provider is the process default: kat.rs runs them under the
//! built-in default (aws-lc-rs), kat_rust_crypto.rs under the RustCrypto provider.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use keyctl::crypto::{self, CryptoError, cte1};
use keyctl::provider::CryptoProvider;
use serde_json::Value;

fn kat() -> Value {
    let text = include_str!("../data/keyctl-kat.json");
    serde_json::from_str(text).expect("valid json")
}

fn bytes(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(v[field].as_str().expect(field)).expect("hex")
}

fn arr<const N: usize>(v: &Value, field: &str) -> [u8; N] {
    bytes(v, field).try_into().expect("length")
}

fn cases<'a>(doc: &'a Value, section: &str) -> &'a Vec<Value> {
    let list = doc[section].as_array().expect(section);
    assert!(!list.is_empty(), "{section} has no cases");
    list
}

pub(crate) fn sign_matches_libsodium() {
    let doc = kat();
    for case in cases(&doc, "sign") {
        let seed: [u8; 32] = arr(case, "seed");
        let ivk: [u8; 32] = arr(case, "ivk");
        let sig: [u8; 64] = arr(case, "sig");
        let (ctx, msg) = (bytes(case, "context"), bytes(case, "msg"));
        assert_eq!(
            crypto::SigningKey::from_seed(&seed)
                .unwrap()
                .verifying_key(),
            ivk
        );
        assert_eq!(crypto::sign(&seed, &ctx, &msg), sig);
        assert!(crypto::verify(&ivk, &sig, &ctx, &msg));
        let mut other = msg.clone();
        other.push(0);
        assert!(!crypto::verify(&ivk, &sig, &ctx, &other));
        let mut ctx2 = ctx.clone();
        ctx2.push(b'x');
        assert!(!crypto::verify(&ivk, &sig, &ctx2, &msg));
    }
}

pub(crate) fn box_matches_libsodium_both_ways() {
    let doc = kat();
    for case in cases(&doc, "box") {
        let s_sk: [u8; 32] = arr(case, "sender_sk");
        let s_pk: [u8; 32] = arr(case, "sender_pk");
        let r_sk: [u8; 32] = arr(case, "receiver_sk");
        let r_pk: [u8; 32] = arr(case, "receiver_pk");
        let nonce: [u8; 24] = arr(case, "nonce");
        let (kdf, cipher, meta, msg, c) = (
            bytes(case, "ctx_kdf"),
            bytes(case, "ctx_cipher"),
            bytes(case, "meta"),
            bytes(case, "msg"),
            bytes(case, "c"),
        );
        assert_eq!(
            crypto::BoxKeyPair::from_secret(&s_sk).unwrap().public(),
            &s_pk
        );
        assert_eq!(
            crypto::BoxKeyPair::from_secret(&r_sk).unwrap().public(),
            &r_pk
        );
        assert_eq!(
            crypto::box_encrypt(&s_sk, &r_pk, &kdf, &cipher, &meta, &msg, &nonce),
            c
        );
        assert_eq!(
            crypto::box_decrypt(&r_sk, &s_pk, &kdf, &cipher, &meta, &c).unwrap(),
            msg
        );
        let mut meta2 = meta.clone();
        meta2.push(1);
        assert_eq!(
            crypto::box_decrypt(&r_sk, &s_pk, &kdf, &cipher, &meta2, &c),
            Err(CryptoError::BadTag)
        );
        let mut tampered = c.clone();
        tampered[0] ^= 0x80;
        assert_eq!(
            crypto::box_decrypt(&r_sk, &s_pk, &kdf, &cipher, &meta, &tampered),
            Err(CryptoError::BadTag)
        );
    }
}

pub(crate) fn security_code_matches() {
    let doc = kat();
    for case in cases(&doc, "security_code") {
        let ivk: [u8; 32] = arr(case, "ivk");
        let code = crypto::security_code(&ivk);
        assert_eq!(code, case["code"].as_str().unwrap());
        assert_eq!(code.len(), 39);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
    }
}

pub(crate) fn cte1_matches() {
    let doc = kat();
    for case in cases(&doc, "cte1") {
        let k: [u8; 32] = arr(case, "k");
        let opening: [u8; 32] = arr(case, "opening");
        let nonce: [u8; 12] = arr(case, "nonce");
        let (h, m, c) = (bytes(case, "h"), bytes(case, "m"), bytes(case, "c"));
        assert_eq!(cte1::seal(&k, &h, &m, &opening, &nonce).unwrap(), c);
        assert_eq!(cte1::open(&k, &h, &c).unwrap().as_slice(), m.as_slice());
    }
}

pub(crate) fn verify_agrees_with_libsodium_on_edge_cases() {
    let doc = kat();
    for (i, case) in cases(&doc, "verify").iter().enumerate() {
        let ivk: [u8; 32] = arr(case, "ivk");
        let sig: [u8; 64] = arr(case, "sig");
        let (ctx, msg) = (bytes(case, "context"), bytes(case, "msg"));
        let expect = case["valid"].as_bool().unwrap();
        assert_eq!(crypto::verify(&ivk, &sig, &ctx, &msg), expect, "case {i}");
    }
}

/// Invite IDs and the proof bound to a binding (revision 2), against Python's hmac.
pub(crate) fn invite_and_proof_match() {
    use keyctl::meeting::{InviteSecret, invite_id};
    use keyctl::wire::{Binding, MeetingRef, ParticipantId};
    let doc = kat();
    let invites = cases(&doc, "invite");
    assert_eq!(invites.len(), 3);
    for case in invites {
        let meeting = MeetingRef::new(&bytes(case, "meeting_id"), &bytes(case, "uuid")).unwrap();
        let participant = ParticipantId::new(&bytes(case, "user"), &bytes(case, "device")).unwrap();
        let invite = invite_id(
            &InviteSecret::new(arr(case, "secret")),
            &meeting,
            &participant.user,
        );
        assert_eq!(invite.expose_secret(), &arr::<32>(case, "invite"));
        let binding = Binding {
            meeting,
            participant,
            ivk: arr(case, "ivk"),
            pk: arr(case, "pk"),
            pq: None,
        };
        assert_eq!(invite.proof(&binding), arr::<32>(case, "proof"));
    }
}

/// Replays fixed bytes as randomness, in order; fails once they run out.
pub(crate) struct ReplayRng(pub(crate) Vec<u8>);

impl rand_core::TryRng for ReplayRng {
    type Error = CryptoError;

    fn try_next_u32(&mut self) -> Result<u32, CryptoError> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, CryptoError> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), CryptoError> {
        if dst.len() > self.0.len() {
            return Err(CryptoError::Rng);
        }
        dst.copy_from_slice(&self.0[..dst.len()]);
        self.0.drain(..dst.len());
        Ok(())
    }
}

impl rand_core::TryCryptoRng for ReplayRng {}

/// The v4.6 hybrid box against tools/kat/gen_hybrid_kat.py (libsodium, kyber-py, hashlib):
/// keys import and give the generator's public keys, every ciphertext opens; under the
/// RustCrypto provider, whose ML-KEM takes the caller's randomness, encryption with the
/// generator's nonce and `m` reproduces the ciphertext byte for byte. aws-lc-rs draws `m`
/// itself, so there the nonce is the generator's and the rest opens.
pub(crate) fn hybrid_matches_independent_implementation() {
    use keyctl::crypto::hybrid::{self, BoxPublic, BoxSecret};
    let text = include_str!("../data/hybrid-kat.json");
    let doc: Value = serde_json::from_str(text).expect("valid json");
    let parties: Vec<(BoxSecret, [u8; 32])> = cases(&doc, "parties")
        .iter()
        .map(|p| {
            let secret =
                BoxSecret::from_bytes(&arr(p, "x25519_sk"), &bytes(p, "mlkem_dk")).unwrap();
            let public = secret.public();
            assert_eq!(
                public,
                BoxPublic {
                    x25519: arr(p, "x25519_pk"),
                    mlkem: bytes(p, "mlkem_ek"),
                }
            );
            let vk = crypto::SigningKey::from_seed(&arr(p, "ed25519_seed"))
                .unwrap()
                .verifying_key();
            assert_eq!(vk, arr::<32>(p, "vk"));
            (secret, vk)
        })
        .collect();
    let deterministic = CryptoProvider::get_default().name == "rust-crypto";
    for case in cases(&doc, "cases") {
        let party = |field: &str| &parties[case[field].as_u64().expect(field) as usize];
        let ((s, s_vk), (r, r_vk)) = (party("sender"), party("receiver"));
        let (kdf, cipher, meta, msg, c) = (
            bytes(case, "ctx_kdf"),
            bytes(case, "ctx_cipher"),
            bytes(case, "meta"),
            bytes(case, "msg"),
            bytes(case, "c"),
        );
        let opened = hybrid::decrypt(r, r_vk, &s.public(), s_vk, &kdf, &cipher, &meta, &c);
        assert_eq!(opened.unwrap(), msg);
        let (nonce, m) = (bytes(case, "nonce"), bytes(case, "kem_m"));
        let mut rng = ReplayRng([nonce.as_slice(), m.as_slice()].concat());
        let sealed = hybrid::encrypt(
            s,
            s_vk,
            &r.public(),
            r_vk,
            &kdf,
            &cipher,
            &meta,
            &msg,
            &mut rng,
        )
        .unwrap();
        if deterministic {
            assert_eq!(hex::encode(&sealed), hex::encode(&c));
            assert!(rng.0.is_empty(), "nonce and m both drawn");
        } else {
            assert_eq!(sealed.len(), c.len());
            let n = msg.len() + 16;
            assert_eq!(sealed[n..n + 24], nonce[..]);
            assert_eq!(rng.0, m, "aws-lc-rs draws only the nonce");
        }
        let reopened = hybrid::decrypt(r, r_vk, &s.public(), s_vk, &kdf, &cipher, &meta, &sealed);
        assert_eq!(reopened.unwrap(), msg);
    }
}

/// Hybrid identities (Ed25519 + ML-DSA-65) against tools/kat/gen_hybrid_sig_kat.py (libsodium,
/// dilithium-py): keys from the generator's two seeds give its public keys; both halves sign
/// exactly `SHA256(context) || SHA256(msg)` (ML-DSA with the empty context, so `M'` is
/// `0x00 0x00 || m`), as the generator's signatures verify; every signature of the generator
/// verifies, and each it refuses (a bit flipped in either half, a message or context changed by
/// one bit, another party's key) is refused here with the half it names. Under the RustCrypto
/// provider, whose ML-DSA takes the caller's `rnd`, signing reproduces the signature byte for
/// byte; aws-lc-rs draws `rnd` itself, so there its signature only has to verify.
pub(crate) fn hybrid_sig_matches_independent_implementation() {
    use keyctl::crypto::hybrid_sig::{
        self, HybridSigError, HybridSignature, HybridSigningKey, HybridVerifyingKey,
    };
    let text = include_str!("../data/hybrid-sig-kat.json");
    let doc: Value = serde_json::from_str(text).expect("valid json");
    let keys: Vec<HybridSigningKey> = cases(&doc, "parties")
        .iter()
        .map(|p| {
            let key = HybridSigningKey::from_seeds(&arr(p, "ed25519_seed"), &arr(p, "mldsa_seed"))
                .unwrap();
            let vk = key.verifying_key();
            assert_eq!(*vk.ed25519(), arr::<32>(p, "ivk"));
            assert_eq!(hex::encode(vk.ml_dsa()), hex::encode(bytes(p, "mldsa_pk")));
            key
        })
        .collect();
    let key_of = |case: &Value| &keys[case["party"].as_u64().expect("party") as usize];
    let deterministic = CryptoProvider::get_default().name == "rust-crypto";
    for case in cases(&doc, "sign") {
        let key = key_of(case);
        let (ctx, msg, m) = (bytes(case, "context"), bytes(case, "msg"), bytes(case, "m"));
        assert_eq!(hybrid_sig::signed_input(&ctx, &msg)[..], m[..]);
        assert_eq!(bytes(case, "m_prime"), [&[0u8, 0][..], &m].concat());
        let sig = HybridSignature::from_bytes(&bytes(case, "sig")).unwrap();
        assert_eq!(key.verifying_key().verify(&sig, &ctx, &msg), Ok(()));
        assert_eq!(
            *sig.ed25519(),
            crypto::sign(key.ed25519().seed(), &ctx, &msg)
        );
        let rnd = bytes(case, "rnd");
        let mut rng = ReplayRng(rnd.clone());
        let ours = key.sign(&ctx, &msg, &mut rng).unwrap();
        if deterministic {
            assert_eq!(hex::encode(ours.to_bytes()), hex::encode(sig.to_bytes()));
            assert!(rng.0.is_empty(), "rnd drawn");
        } else {
            assert_eq!(ours.ed25519(), sig.ed25519());
            assert_eq!(rng.0, rnd, "aws-lc-rs draws rnd itself");
        }
        assert_eq!(key.verifying_key().verify(&ours, &ctx, &msg), Ok(()));
    }
    for case in cases(&doc, "reject") {
        let vk = HybridVerifyingKey::from_bytes(&key_of(case).verifying_key().to_bytes()).unwrap();
        let sig = HybridSignature::from_bytes(&bytes(case, "sig")).unwrap();
        let expected = match case["fails"].as_str().expect("fails") {
            "ed25519" => Some(HybridSigError::Ed25519),
            "ml_dsa" => Some(HybridSigError::MlDsa),
            "both" => Some(HybridSigError::Both),
            _ => None,
        }
        .expect("a known verdict");
        assert_eq!(
            vk.verify(&sig, &bytes(case, "context"), &bytes(case, "msg")),
            Err(expected),
            "{}",
            case["what"]
        );
    }
}

/// The hybrid security code over both verification keys, against the generator's (hashlib):
/// 39 digits, grouped in 13, different from the classical code of the same Ed25519 key, and
/// changed by the ML-DSA half alone.
pub(crate) fn security_code_hybrid_matches() {
    use keyctl::crypto::hybrid_sig::HybridVerifyingKey;
    let text = include_str!("../data/hybrid-sig-kat.json");
    let doc: Value = serde_json::from_str(text).expect("valid json");
    let mut seen = Vec::new();
    for case in cases(&doc, "security_code_hybrid") {
        let ivk: [u8; 32] = arr(case, "ivk");
        let key = HybridVerifyingKey::new(ivk, &bytes(case, "mldsa_pk")).unwrap();
        let code = crypto::security_code_hybrid(&key);
        assert_eq!(code, case["code"].as_str().unwrap());
        assert_eq!(code.len(), crypto::SECURITY_CODE_DIGITS);
        let grouped = crypto::security_code_hybrid_grouped(&key);
        assert_eq!(grouped.split(' ').count(), 13);
        assert_eq!(grouped.replace(' ', ""), code);
        assert_ne!(code, crypto::security_code(&ivk));
        seen.push((ivk, code));
    }
    // The generator's third key has the first's Ed25519 half and another ML-DSA half.
    assert_eq!(seen[0].0, seen[2].0);
    assert_ne!(seen[0].1, seen[2].1);
}

/// Under the RustCrypto provider (deterministic ML-DSA given `rnd`), signing `signed` with
/// the generator's `rnd` reproduces the hybrid message `wire` byte for byte.
fn resigned_matches<M: keyctl::wire::Signed + Clone>(
    key: &keyctl::crypto::hybrid_sig::HybridSigningKey,
    ctx: &[u8],
    signed: &[u8],
    rnd: Vec<u8>,
    h: &keyctl::wire::Hybrid<M>,
    wire: &[u8],
) {
    if CryptoProvider::get_default().name != "rust-crypto" {
        return;
    }
    let sig = key.sign(ctx, signed, &mut ReplayRng(rnd)).unwrap();
    assert_eq!(
        hex::encode(keyctl::wire::Hybrid::new(h.msg.clone(), &sig).to_bytes()),
        hex::encode(wire)
    );
}

/// Revision 4 on the wire against tools/kat/gen_pq_auth_kat.py (the encodings written out
/// from docs/PROTOCOL.md in Python, signed with libsodium and dilithium-py): the hybrid identity
/// derived from an Ed25519 seed, the 0x0B binding, the hybrid announcement (0x1A), link post
/// (0x1B) and heartbeat (0x1C) decode, re-encode to the same bytes and verify with both halves;
/// the announcement stripped to 0x10 is refused as a classical signature from a hybrid
/// identity; the security code is the hybrid one. Under the RustCrypto provider, signing with
/// the generator's `rnd` reproduces every message byte for byte.
pub(crate) fn pq_auth_matches_independent_implementation() {
    use keyctl::crypto::hybrid_sig::HybridSigningKey;
    use keyctl::wire::{
        Binding, Field, Heartbeat, Id, KeyAnnouncement, LinkPost, LplLink, LplOp, MemberState,
        Message, ParticipantId, RosterEntry, SigRefusal,
    };

    let text = include_str!("../data/pq-auth-kat.json");
    let doc: Value = serde_json::from_str(text).expect("valid json");
    let id = &doc["identity"];
    let key = HybridSigningKey::from_ed25519_seed(&arr(id, "ed25519_seed")).unwrap();
    assert_eq!(*key.verifying_key().ed25519(), arr::<32>(id, "ivk"));
    assert_eq!(key.ml_dsa_seed()[..], bytes(id, "mldsa_seed")[..]);
    assert_eq!(
        hex::encode(key.verifying_key().ml_dsa()),
        hex::encode(bytes(id, "mldsa_pk"))
    );
    let binding_bytes = bytes(&doc, "binding");
    let binding = Binding::from_bytes(&binding_bytes).unwrap();
    assert_eq!(binding.to_bytes(), binding_bytes);
    assert_eq!(binding.hybrid_key().as_ref(), Some(key.verifying_key()));
    assert_eq!(
        crypto::security_code_hybrid(key.verifying_key()),
        id["security_code"].as_str().unwrap()
    );

    let ann = &doc["announcement"];
    let wire = bytes(ann, "bytes");
    let Message::HybridKeyAnnouncement(h) = Message::from_bytes(&wire).unwrap() else {
        panic!("not a hybrid announcement");
    };
    assert_eq!(h.to_bytes(), wire);
    assert_eq!(h.msg.binding, binding);
    assert_eq!(
        binding.check_signed::<KeyAnnouncement>(&binding_bytes, &h.msg.sig, Some(&h.ml_dsa[..])),
        Ok(())
    );
    let Message::KeyAnnouncement(stripped) = Message::from_bytes(&bytes(ann, "stripped")).unwrap()
    else {
        panic!("not a classical announcement");
    };
    assert_eq!(
        binding.check_signed::<KeyAnnouncement>(&binding_bytes, &stripped.sig, None),
        Err(SigRefusal::ClassicalFromHybrid)
    );
    resigned_matches(
        &key,
        crypto::CTX_SIG_HYBRID_KEY_ANNOUNCEMENT,
        &binding_bytes,
        bytes(ann, "rnd"),
        &h,
        &wire,
    );

    // A hybrid link post: the link decodes and re-encodes, the post verifies with both halves
    // under the leader's binding, and (RustCrypto) re-signing reproduces it.
    let link_post = |section: &str| {
        let lp = &doc[section];
        let link_bytes = bytes(lp, "link");
        let link = LplLink::from_bytes(&link_bytes).unwrap();
        assert_eq!(link.to_bytes(), link_bytes, "{section}");
        let wire = bytes(lp, "bytes");
        let Message::HybridLinkPost(h) = Message::from_bytes(&wire).unwrap() else {
            panic!("{section}: not a hybrid link post");
        };
        assert_eq!(h.to_bytes(), wire);
        assert_eq!(h.msg.link, link);
        assert_eq!(
            binding.check_signed::<LinkPost>(&link_bytes, &h.msg.sig, Some(&h.ml_dsa[..])),
            Ok(())
        );
        resigned_matches(
            &key,
            crypto::CTX_SIG_HYBRID_LPL,
            &link_bytes,
            bytes(lp, "rnd"),
            &h,
            &wire,
        );
        link
    };
    let link = link_post("link_post");

    // Revision 5: the same member listed as hybrid (AddHybrid, 0x09), then a SnapshotHybrid
    // (0x0A), each built here from its fields and compared with the generator's bytes.
    let add_hybrid = link_post("add_hybrid");
    let LplOp::Add {
        slot,
        participant,
        ivk,
        binding_hash,
        display_name,
        ml_dsa_id: None,
    } = link.op.clone()
    else {
        panic!("the revision 4 link is a classical Add");
    };
    let ml_dsa_id = binding.ml_dsa_id();
    assert_eq!(
        ml_dsa_id,
        Some(crypto::sha256(key.verifying_key().ml_dsa()))
    );
    let add = LplOp::Add {
        slot,
        participant: participant.clone(),
        ivk,
        binding_hash,
        display_name: display_name.clone(),
        ml_dsa_id,
    };
    assert_eq!(
        hex::encode(
            LplLink {
                op: add,
                ..link.clone()
            }
            .to_bytes()
        ),
        hex::encode(add_hybrid.to_bytes())
    );
    let snapshot = link_post("snapshot_hybrid");
    let bob = RosterEntry {
        slot: 1,
        participant: ParticipantId::new(b"bob", b"phone").unwrap(),
        // The generator's `fixed("pq-auth/bob-ivk", 32)`.
        ivk: crypto::sha256(b"veil-kat/pq-auth/bob-ivk/0"),
        binding_hash: [0; 32],
        display_name: Id::new(Field::DisplayName, b"Bob").unwrap(),
        state: MemberState::Left,
        leaves: 1,
        ml_dsa_id: None,
    };
    let alice = RosterEntry {
        slot,
        participant,
        ivk,
        binding_hash,
        display_name,
        state: MemberState::Present,
        leaves: 0,
        ml_dsa_id,
    };
    let expected = LplLink {
        meeting: link.meeting.clone(),
        v: 2,
        prev: add_hybrid.hash(),
        op: LplOp::Snapshot {
            locked: true,
            invite_only: false,
            next_slot: 2,
            roster: vec![alice, bob],
        },
    };
    assert_eq!(
        hex::encode(expected.to_bytes()),
        hex::encode(snapshot.to_bytes())
    );

    let hb = &doc["heartbeat"];
    let wire = bytes(hb, "bytes");
    let Message::HybridHeartbeat(h) = Message::from_bytes(&wire).unwrap() else {
        panic!("not a hybrid heartbeat");
    };
    assert_eq!(h.to_bytes(), wire);
    let input = h.msg.input(&binding);
    assert_eq!(
        hex::encode(input.to_bytes()),
        hex::encode(bytes(hb, "input"))
    );
    let hash = input.hash();
    assert_eq!(hash, arr::<32>(hb, "h"));
    assert_eq!(h.msg.lpl_hash, link.hash());
    assert_eq!(
        binding.check_signed::<Heartbeat>(&hash, &h.msg.sig, Some(&h.ml_dsa[..])),
        Ok(())
    );
    resigned_matches(
        &key,
        crypto::CTX_SIG_HYBRID_LPL,
        &hash,
        bytes(hb, "rnd"),
        &h,
        &wire,
    );
}

//! The known-answer cases, computed by libsodium (tools/kat/gen_keyctl_kat.py) and Python's
//! hmac. Each runs under whatever provider is the process default: kat.rs runs them under the
//! built-in default (aws-lc-rs), kat_rust_crypto.rs under the RustCrypto provider.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers outside #[test] fns

use keyctl::crypto::{self, CryptoError, cte1};
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
        };
        assert_eq!(invite.proof(&binding), arr::<32>(case, "proof"));
    }
}

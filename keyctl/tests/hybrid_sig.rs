//! Hybrid identities (keyctl::crypto::hybrid_sig) under the default provider: a hybrid
//! signature verifies only when both halves do, the error names the half that failed, and the
//! encodings, seeds and Debug output behave. Known answers are in kat.rs / kat_rust_crypto.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use keyctl::crypto::hybrid_sig::{
    HYBRID_PUBLIC_KEY_LEN, HYBRID_SIGNATURE_LEN, HybridSigError, HybridSignature, HybridSigningKey,
    HybridVerifyingKey, ML_DSA_65_PK_LEN, ML_DSA_65_SIG_LEN,
};
use keyctl::crypto::{self, CTX_SIG_KEY_ANNOUNCEMENT, CTX_SIG_LPL, CryptoError};
use keyctl::test_rng::TestRng;

const MSG: &[u8] = b"a binding, a list link or a heartbeat";

fn key(label: &str) -> (HybridSigningKey, TestRng) {
    let mut rng = TestRng::new(label);
    (HybridSigningKey::generate(&mut rng).unwrap(), rng)
}

#[test]
fn sizes_are_fips_204s() {
    assert_eq!((ML_DSA_65_PK_LEN, ML_DSA_65_SIG_LEN), (1952, 3309));
    assert_eq!((HYBRID_PUBLIC_KEY_LEN, HYBRID_SIGNATURE_LEN), (1984, 3373));
    let (k, mut rng) = key("sizes");
    let sig = k.sign(CTX_SIG_LPL, MSG, &mut rng).unwrap();
    assert_eq!(sig.to_bytes().len(), HYBRID_SIGNATURE_LEN);
    assert_eq!(k.verifying_key().to_bytes().len(), HYBRID_PUBLIC_KEY_LEN);
}

#[test]
fn a_signature_verifies_and_round_trips_its_encoding() {
    let (k, mut rng) = key("round-trip");
    let vk = k.verifying_key();
    for msg in [&b""[..], MSG, &[0xa5; 5000]] {
        let sig = k.sign(CTX_SIG_KEY_ANNOUNCEMENT, msg, &mut rng).unwrap();
        assert_eq!(vk.verify(&sig, CTX_SIG_KEY_ANNOUNCEMENT, msg), Ok(()));
        let decoded = HybridSignature::from_bytes(&sig.to_bytes()).unwrap();
        assert_eq!(decoded, sig);
        let vk2 = HybridVerifyingKey::from_bytes(&vk.to_bytes()).unwrap();
        assert_eq!(&vk2, vk);
        assert_eq!(vk2.verify(&decoded, CTX_SIG_KEY_ANNOUNCEMENT, msg), Ok(()));
    }
}

#[test]
fn the_error_names_the_half_that_failed() {
    let (k, mut rng) = key("which-half");
    let vk = k.verifying_key();
    let sig = k.sign(CTX_SIG_LPL, MSG, &mut rng).unwrap();
    let bytes = sig.to_bytes();
    let flipped = |i: usize| {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        HybridSignature::from_bytes(&b).unwrap()
    };
    // Ed25519: R, then S.
    for i in [0, 31, 32, 63] {
        assert_eq!(
            vk.verify(&flipped(i), CTX_SIG_LPL, MSG),
            Err(HybridSigError::Ed25519),
            "byte {i}"
        );
    }
    // ML-DSA-65: c~ (48 bytes), z, then the hint at the end.
    for i in [64, 64 + 47, 64 + 48, 64 + 2000, HYBRID_SIGNATURE_LEN - 1] {
        assert_eq!(
            vk.verify(&flipped(i), CTX_SIG_LPL, MSG),
            Err(HybridSigError::MlDsa),
            "byte {i}"
        );
    }
    // Another message, another context, another key: both halves fail.
    assert_eq!(
        vk.verify(&sig, CTX_SIG_LPL, b"another"),
        Err(HybridSigError::Both)
    );
    assert_eq!(
        vk.verify(&sig, CTX_SIG_KEY_ANNOUNCEMENT, MSG),
        Err(HybridSigError::Both)
    );
    let (other, _) = key("other");
    assert_eq!(
        other.verifying_key().verify(&sig, CTX_SIG_LPL, MSG),
        Err(HybridSigError::Both)
    );
}

#[test]
fn mixing_halves_of_two_identities_is_refused() {
    let (a, mut rng) = key("mix-a");
    let (b, _) = key("mix-b");
    let sa = a.sign(CTX_SIG_LPL, MSG, &mut rng).unwrap();
    let sb = b.sign(CTX_SIG_LPL, MSG, &mut rng).unwrap();
    // a's Ed25519 half with b's ML-DSA half, under a key of a's Ed25519 and b's ML-DSA.
    let mixed_sig = HybridSignature::new(*sa.ed25519(), sb.ml_dsa()).unwrap();
    let a_vk = a.verifying_key();
    assert_eq!(
        a_vk.verify(&mixed_sig, CTX_SIG_LPL, MSG),
        Err(HybridSigError::MlDsa)
    );
    let mixed_vk = HybridVerifyingKey::new(*a_vk.ed25519(), b.verifying_key().ml_dsa()).unwrap();
    assert_eq!(mixed_vk.verify(&mixed_sig, CTX_SIG_LPL, MSG), Ok(()));
    assert_eq!(
        mixed_vk.verify(&sa, CTX_SIG_LPL, MSG),
        Err(HybridSigError::MlDsa)
    );
}

/// The Ed25519 half signs exactly what the classical `sign` signs (whitepaper 3.5.1), so it
/// verifies on its own as a classical signature of the same (context, msg); what is signed
/// hybrid must therefore differ from what is signed classically (its own kind byte or context).
#[test]
fn the_ed25519_half_is_the_classical_signature() {
    let (k, mut rng) = key("classical-half");
    let sig = k.sign(CTX_SIG_LPL, MSG, &mut rng).unwrap();
    assert_eq!(
        *sig.ed25519(),
        crypto::sign(k.ed25519().seed(), CTX_SIG_LPL, MSG)
    );
    assert!(crypto::verify(
        k.verifying_key().ed25519(),
        sig.ed25519(),
        CTX_SIG_LPL,
        MSG
    ));
}

#[test]
fn keys_come_from_their_two_seeds() {
    let (k, _) = key("seeds");
    let again = HybridSigningKey::from_seeds(k.ed25519().seed(), k.ml_dsa_seed()).unwrap();
    assert_eq!(again.verifying_key(), k.verifying_key());
    let mut other_seed = *k.ml_dsa_seed();
    other_seed[0] ^= 1;
    let other = HybridSigningKey::from_seeds(k.ed25519().seed(), &other_seed).unwrap();
    assert_eq!(other.verifying_key().ed25519(), k.verifying_key().ed25519());
    assert_ne!(other.verifying_key().ml_dsa(), k.verifying_key().ml_dsa());
}

#[test]
fn encodings_of_the_wrong_length_are_refused() {
    let (k, mut rng) = key("lengths");
    let vk = k.verifying_key().to_bytes();
    let sig = k.sign(CTX_SIG_LPL, MSG, &mut rng).unwrap().to_bytes();
    for (len, expected) in [
        (vk.len() - 1, HYBRID_PUBLIC_KEY_LEN),
        (0, HYBRID_PUBLIC_KEY_LEN),
    ] {
        assert!(matches!(
            HybridVerifyingKey::from_bytes(&vk[..len]),
            Err(HybridSigError::BadLength { len: l, expected: e, .. }) if l == len && e == expected
        ));
    }
    let mut longer = vk.clone();
    longer.push(0);
    assert!(HybridVerifyingKey::from_bytes(&longer).is_err());
    assert!(HybridSignature::from_bytes(&sig[..sig.len() - 1]).is_err());
    assert!(HybridSignature::from_bytes(&[sig.as_slice(), &[0]].concat()).is_err());
    assert!(HybridVerifyingKey::new([0; 32], &vk[32..vk.len() - 1]).is_err());
    assert!(HybridSignature::new([0; 64], &sig[64..sig.len() - 1]).is_err());
}

#[test]
fn debug_shows_no_secret() {
    let (k, _) = key("debug");
    let shown = format!("{k:?}");
    assert!(shown.contains("<redacted>"));
    for secret in [&k.ed25519().seed()[..], &k.ml_dsa_seed()[..]] {
        assert!(!shown.contains(&hex::encode(secret)));
    }
    assert!(shown.contains(&hex::encode(k.verifying_key().ed25519())));
}

#[test]
fn a_failing_rng_is_an_error_not_a_panic() {
    struct Broken;
    impl rand_core::TryRng for Broken {
        type Error = CryptoError;
        fn try_next_u32(&mut self) -> Result<u32, CryptoError> {
            Err(CryptoError::Rng)
        }
        fn try_next_u64(&mut self) -> Result<u64, CryptoError> {
            Err(CryptoError::Rng)
        }
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), CryptoError> {
            Err(CryptoError::Rng)
        }
    }
    impl rand_core::TryCryptoRng for Broken {}
    assert_eq!(
        HybridSigningKey::generate(&mut Broken).map(|_| ()),
        Err(CryptoError::Rng)
    );
}

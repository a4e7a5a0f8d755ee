//! The aws-lc-rs and RustCrypto providers agree on random inputs, primitive by primitive: the
//! same outputs, the same refusals, and each opens what the other sealed.
#![cfg(all(feature = "aws-lc-rs", feature = "rust-crypto"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use keyctl::provider::{
    AeadKey, AesGcm, CryptoProvider, GcmKey, HashAlg, OneShotAead, ProviderError, aws_lc_rs,
    rust_crypto,
};
use proptest::prelude::*;

const AWS: &CryptoProvider = &aws_lc_rs::PROVIDER;
const RUST: &CryptoProvider = &rust_crypto::PROVIDER;

/// A provider built outside keyctl: aws-lc-rs with one component swapped, as a driver would
/// swap in its own random source. Its AES-GCM is RustCrypto's behind a key of its own type,
/// which takes `GcmKey`'s path for keys of other providers.
static CUSTOM: CryptoProvider = CryptoProvider {
    name: "custom",
    aes_gcm: &WrappedGcm,
    ..aws_lc_rs::PROVIDER
};

#[derive(Debug)]
struct WrappedGcm;

struct WrappedKey(GcmKey);

impl AesGcm for WrappedGcm {
    fn key(&self, key: &[u8]) -> Result<GcmKey, ProviderError> {
        Ok(GcmKey::new(Box::new(WrappedKey(RUST.aes_gcm.key(key)?))))
    }
}

impl AeadKey for WrappedKey {
    fn seal_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; 16], ProviderError> {
        self.0.seal_in_place(nonce, aad, in_out)
    }

    fn open_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<usize, ProviderError> {
        self.0.open_in_place(nonce, aad, in_out)
    }
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

fn hash_alg() -> impl Strategy<Value = HashAlg> {
    prop_oneof![Just(HashAlg::Sha256), Just(HashAlg::Sha512)]
}

/// Up to four message parts, so that part boundaries are exercised too.
fn parts() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(bytes(300), 0..4)
}

fn refs(parts: &[Vec<u8>]) -> Vec<&[u8]> {
    parts.iter().map(Vec::as_slice).collect()
}

/// An AES key of either size.
fn aes_key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 16),
        prop::collection::vec(any::<u8>(), 32)
    ]
}

/// The group order L of edwards25519, little-endian (RFC 8032 5.1).
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// `a + b` for little-endian 256-bit numbers, mod 2^256.
fn add_le(a: &[u8], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = sum as u8;
        carry = sum >> 8;
    }
    out
}

/// Points of small order on Curve25519 (u-coordinates) and their non-canonical twins,
/// which X25519 must map to the all-zero output (RFC 7748 6.1; libsodium's blocklist).
fn low_order_u() -> impl Strategy<Value = [u8; 32]> {
    let mut one = [0u8; 32];
    one[0] = 1;
    let mut p_minus_1 = [0xffu8; 32];
    p_minus_1[0] = 0xec;
    p_minus_1[31] = 0x7f;
    let mut p = p_minus_1;
    p[0] = 0xed;
    let order8 = [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ];
    prop::sample::select(vec![[0u8; 32], one, p_minus_1, p, order8])
}

proptest! {
    #[test]
    fn sha2(data in bytes(2048)) {
        prop_assert_eq!(AWS.hash.sha256(&data), RUST.hash.sha256(&data));
        prop_assert_eq!(AWS.hash.sha512(&data), RUST.hash.sha512(&data));
    }

    #[test]
    fn sha3(data in bytes(2048)) {
        prop_assert_eq!(AWS.hash.sha3_256(&data), RUST.hash.sha3_256(&data));
    }

    /// Keys longer than a block (64 bytes for SHA-256, 128 for SHA-512) are hashed first.
    #[test]
    fn hmac(alg in hash_alg(), key in bytes(200), parts in parts()) {
        let parts = refs(&parts);
        let tag = AWS.hmac.sign(alg, &key, &parts);
        prop_assert_eq!(tag, RUST.hmac.sign(alg, &key, &parts));
        prop_assert_eq!(tag.as_ref().len(), alg.output_len());
        // A prepared key signs the same, and parts are only a concatenation.
        let whole = parts.concat();
        prop_assert_eq!(RUST.hmac.key(alg, &key).sign(&[&whole]), tag);
        prop_assert_eq!(AWS.hmac.key(alg, &key).sign(&[&whole]), tag);
    }

    #[test]
    fn hkdf(
        alg in hash_alg(),
        salt in bytes(100),
        ikm in bytes(100),
        info in parts(),
        len in 0usize..600,
    ) {
        let info = refs(&info);
        let (aws_prk, rust_prk) = (AWS.hkdf.extract(alg, &salt, &ikm), RUST.hkdf.extract(alg, &salt, &ikm));
        prop_assert_eq!(aws_prk.expose_secret(), rust_prk.expose_secret());
        let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
        prop_assert_eq!(AWS.hkdf.expand(&aws_prk, &info, &mut a), Ok(()));
        prop_assert_eq!(RUST.hkdf.expand(&rust_prk, &info, &mut b), Ok(()));
        prop_assert_eq!(&a, &b);
        // RFC 5869 2.3: L <= 255 * HashLen; one byte more is refused by both.
        let mut too_long = vec![0u8; 255 * alg.output_len() + 1];
        prop_assert_eq!(AWS.hkdf.expand(&aws_prk, &info, &mut too_long), Err(ProviderError::InvalidLength));
        prop_assert_eq!(RUST.hkdf.expand(&rust_prk, &info, &mut too_long), Err(ProviderError::InvalidLength));
    }

    /// Same public key and same (deterministic) signature; each verifies the other's; a
    /// flipped bit, a wrong key, or S + L (not below L) is refused by both alike.
    #[test]
    fn ed25519(seed in any::<[u8; 32]>(), msg in bytes(300), flip in 0usize..(64 * 8), other in any::<[u8; 32]>()) {
        let (aws_key, rust_key) = (AWS.ed25519.signing_key(&seed).unwrap(), RUST.ed25519.signing_key(&seed).unwrap());
        let pk = aws_key.public_key();
        prop_assert_eq!(pk, rust_key.public_key());
        let sig = aws_key.sign(&msg);
        prop_assert_eq!(sig, rust_key.sign(&msg));
        prop_assert!(AWS.ed25519.verify(&pk, &msg, &sig));
        prop_assert!(RUST.ed25519.verify(&pk, &msg, &sig));

        let mut flipped = sig;
        flipped[flip / 8] ^= 1 << (flip % 8);
        prop_assert_eq!(AWS.ed25519.verify(&pk, &msg, &flipped), RUST.ed25519.verify(&pk, &msg, &flipped));
        prop_assert_eq!(AWS.ed25519.verify(&other, &msg, &sig), RUST.ed25519.verify(&other, &msg, &sig));

        let mut malleated = sig;
        malleated[32..].copy_from_slice(&add_le(&sig[32..], &L));
        prop_assert!(!AWS.ed25519.verify(&pk, &msg, &malleated));
        prop_assert!(!RUST.ed25519.verify(&pk, &msg, &malleated));
    }

    /// Arbitrary 32-byte strings as public keys and signatures: mostly not points, mostly
    /// invalid, and refused alike.
    #[test]
    fn ed25519_verify_garbage(pk in any::<[u8; 32]>(), r in any::<[u8; 32]>(), s in any::<[u8; 32]>(), msg in bytes(64)) {
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r);
        sig[32..].copy_from_slice(&s);
        prop_assert_eq!(AWS.ed25519.verify(&pk, &msg, &sig), RUST.ed25519.verify(&pk, &msg, &sig));
    }

    /// Public keys, shared secrets, and the low-order refusal (RFC 7748 6.1), also for a peer
    /// u-coordinate with its top bit set (masked, RFC 7748 5).
    #[test]
    fn x25519(sk in any::<[u8; 32]>(), peer in any::<[u8; 32]>(), bad in low_order_u(), top_bit in any::<bool>()) {
        prop_assert_eq!(AWS.x25519.public_key(&sk), RUST.x25519.public_key(&sk));
        prop_assert_eq!(
            AWS.x25519.agree(&sk, &peer).map(|s| *s),
            RUST.x25519.agree(&sk, &peer).map(|s| *s)
        );
        let mut bad = bad;
        if top_bit {
            bad[31] |= 0x80;
        }
        prop_assert_eq!(AWS.x25519.agree(&sk, &bad).map(|s| *s), Err(ProviderError::LowOrder));
        prop_assert_eq!(RUST.x25519.agree(&sk, &bad).map(|s| *s), Err(ProviderError::LowOrder));
    }

    /// The box key of whitepaper 3.5.2 end to end: X25519, HSalsa20, HKDF-SHA256.
    #[test]
    fn box_key(sk in any::<[u8; 32]>(), peer_sk in any::<[u8; 32]>(), ctx in bytes(64), input in any::<[u8; 16]>()) {
        let key = |p: &CryptoProvider| {
            let peer = p.x25519.public_key(&peer_sk).unwrap();
            let shared = p.x25519.agree(&sk, &peer).unwrap();
            let k_prime = p.hsalsa20.hsalsa20(&shared, &[0; 16]);
            let mut k = [0u8; 32];
            p.hkdf.expand(&p.hkdf.extract(HashAlg::Sha256, &[], &*k_prime), &[&ctx], &mut k).unwrap();
            k
        };
        prop_assert_eq!(key(AWS), key(RUST));
        prop_assert_eq!(*AWS.hsalsa20.hsalsa20(&sk, &input), *RUST.hsalsa20.hsalsa20(&sk, &input));
    }

    /// AES-128-GCM and AES-256-GCM: equal ciphertexts and tags, each opens the other's, a
    /// flipped bit anywhere fails both.
    #[test]
    fn aes_gcm(key in aes_key(), nonce in any::<[u8; 12]>(), aad in bytes(64), pt in bytes(1500), flip in any::<prop::sample::Index>()) {
        let keys = [AWS, RUST, &CUSTOM].map(|p| (p.name, p.aes_gcm.key(&key).unwrap()));
        let (mut ca, mut cr) = (pt.clone(), pt.clone());
        let tag = keys[0].1.seal_in_place(&nonce, &aad, &mut ca).unwrap();
        prop_assert_eq!(tag, keys[1].1.seal_in_place(&nonce, &aad, &mut cr).unwrap());
        prop_assert_eq!(&ca, &cr);
        // The tag-into form (aws-lc-rs stores the tag where it is asked; the others through
        // the trait's default) gives the same bytes under every provider.
        for (name, sealer) in &keys {
            let mut c = pt.clone();
            let mut t = [0u8; 16];
            sealer.seal_in_place_tag_into(&nonce, &aad, &mut c, &mut t).unwrap();
            prop_assert_eq!(&c, &ca, "{}", name);
            prop_assert_eq!(t, tag, "{}", name);
        }
        let sealed = [ca, tag.to_vec()].concat();
        for (name, opener) in &keys {
            let mut buf = sealed.clone();
            prop_assert_eq!(opener.open_in_place(&nonce, &aad, &mut buf), Ok(pt.len()), "{}", name);
            prop_assert_eq!(&buf[..pt.len()], &pt[..]);
            let mut bad = sealed.clone();
            bad[flip.index(sealed.len())] ^= 1;
            prop_assert_eq!(opener.open_in_place(&nonce, &aad, &mut bad), Err(ProviderError::BadTag), "{}", name);
        }
    }

    /// AES-CTR, including counter blocks about to wrap, where the whole 128-bit block carries.
    #[test]
    fn aes_ctr(key in aes_key(), iv in any::<[u8; 16]>(), high in any::<bool>(), data in bytes(1500)) {
        let mut iv = iv;
        if high {
            iv[4..].fill(0xff);
        }
        let (mut a, mut r) = (data.clone(), data.clone());
        AWS.aes_ctr.key(&key).unwrap().apply_keystream(&iv, &mut a).unwrap();
        RUST.aes_ctr.key(&key).unwrap().apply_keystream(&iv, &mut r).unwrap();
        prop_assert_eq!(&a, &r);
        RUST.aes_ctr.key(&key).unwrap().apply_keystream(&iv, &mut a).unwrap();
        prop_assert_eq!(a, data);
    }

    #[test]
    fn chacha20_poly1305(key in any::<[u8; 32]>(), nonce in any::<[u8; 12]>(), aad in bytes(64), pt in bytes(600)) {
        one_shot_aeads_agree(|p| p.chacha20_poly1305, &key, &nonce, &aad, &pt)?;
    }

    #[test]
    fn xchacha20_poly1305(key in any::<[u8; 32]>(), nonce in any::<[u8; 24]>(), aad in bytes(64), pt in bytes(600)) {
        one_shot_aeads_agree(|p| p.xchacha20_poly1305, &key, &nonce, &aad, &pt)?;
    }
}

/// The same ciphertext and tag from both; each opens it; a flipped bit fails both.
fn one_shot_aeads_agree<const N: usize>(
    aead: impl Fn(&CryptoProvider) -> &'static dyn OneShotAead<N>,
    key: &[u8; 32],
    nonce: &[u8; N],
    aad: &[u8],
    pt: &[u8],
) -> Result<(), TestCaseError> {
    let (mut a, mut r) = (pt.to_vec(), pt.to_vec());
    let tag = aead(AWS).seal_in_place(key, nonce, aad, &mut a).unwrap();
    prop_assert_eq!(
        tag,
        aead(RUST).seal_in_place(key, nonce, aad, &mut r).unwrap()
    );
    prop_assert_eq!(&a, &r);
    let sealed = [a, tag.to_vec()].concat();
    for p in [AWS, RUST] {
        let mut buf = sealed.clone();
        prop_assert_eq!(
            aead(p).open_in_place(key, nonce, aad, &mut buf),
            Ok(pt.len())
        );
        prop_assert_eq!(&buf[..pt.len()], pt);
        let mut bad = sealed.clone();
        bad[0] ^= 0x80;
        prop_assert_eq!(
            aead(p).open_in_place(key, nonce, aad, &mut bad),
            Err(ProviderError::BadTag)
        );
    }
    Ok(())
}

#[test]
fn short_ciphertexts_and_wrong_key_sizes_are_refused_alike() {
    for p in [AWS, RUST] {
        for len in [0, 15, 24, 64] {
            assert_eq!(
                p.aes_gcm.key(&vec![0; len]).err(),
                Some(ProviderError::KeyRejected),
                "{}",
                p.name
            );
            assert_eq!(
                p.aes_ctr.key(&vec![0; len]).err(),
                Some(ProviderError::KeyRejected),
                "{}",
                p.name
            );
        }
        let key = p.aes_gcm.key(&[0; 16]).unwrap();
        assert_eq!(
            key.open_in_place(&[0; 12], b"", &mut [0; 15]),
            Err(ProviderError::InvalidLength),
            "{}",
            p.name
        );
        assert_eq!(
            p.chacha20_poly1305
                .open_in_place(&[0; 32], &[0; 12], b"", &mut [0; 15]),
            Err(ProviderError::InvalidLength),
            "{}",
            p.name
        );
        let mut random = [0u8; 64];
        assert_eq!(p.secure_random.fill(&mut random), Ok(()), "{}", p.name);
        assert_ne!(random, [0; 64], "{}", p.name);
    }
}

/// The process default is aws-lc-rs, and both providers are built in, aws-lc-rs first.
#[test]
fn aws_lc_rs_is_the_default() {
    assert!(core::ptr::eq(CryptoProvider::get_default(), AWS));
    let built_in = CryptoProvider::built_in();
    assert_eq!(built_in.len(), 2);
    assert!(core::ptr::eq(built_in[0], AWS) && core::ptr::eq(built_in[1], RUST));
}

/// Randomness for the ML-KEM calls: the system's (RustCrypto draws from it, aws-lc ignores it).
fn system_fill(buf: &mut [u8]) -> Result<(), ProviderError> {
    RUST.secure_random.fill(buf)
}

/// Each provider's ML-KEM-768 opens what the other encapsulated, keys and ciphertexts have
/// FIPS 203's lengths, and a tampered ciphertext decapsulates to another key under both
/// (implicit rejection), the same one.
#[test]
fn ml_kem_768_each_way() {
    use keyctl::provider::{ML_KEM_768_CT_LEN, ML_KEM_768_DK_LEN, ML_KEM_768_EK_LEN};
    for (gen_p, enc_p) in [(AWS, RUST), (RUST, AWS), (AWS, AWS), (RUST, RUST)] {
        let (dk, ek) = gen_p.ml_kem_768.generate(&mut system_fill).unwrap();
        assert_eq!((dk.len(), ek.len()), (ML_KEM_768_DK_LEN, ML_KEM_768_EK_LEN));
        // FIPS 203 expanded form: dk = dk_PKE || ek || H(ek) || z.
        assert_eq!(&dk[1152..2336], ek.as_slice());
        assert_eq!(dk[2336..2368], AWS.hash.sha3_256(&ek));
        let (ct, k) = enc_p.ml_kem_768.encapsulate(&ek, &mut system_fill).unwrap();
        assert_eq!(ct.len(), ML_KEM_768_CT_LEN);
        for p in [AWS, RUST] {
            assert_eq!(
                *p.ml_kem_768.decapsulate(&dk, &ct).unwrap(),
                *k,
                "{}",
                p.name
            );
        }
        let mut bad = ct.clone();
        bad[5] ^= 1;
        let rejected = AWS.ml_kem_768.decapsulate(&dk, &bad).unwrap();
        assert_ne!(*rejected, *k);
        assert_eq!(*RUST.ml_kem_768.decapsulate(&dk, &bad).unwrap(), *rejected);
        for p in [AWS, RUST] {
            assert!(p.ml_kem_768.decapsulate(&dk, &ct[1..]).is_err());
            assert!(
                p.ml_kem_768
                    .encapsulate(&ek[1..], &mut system_fill)
                    .is_err()
            );
            // FIPS 203 7.2's modulus check: a coefficient of q or more is refused.
            let mut over_q = ek.clone();
            over_q[0] = 0xff;
            over_q[1] |= 0x0f;
            let refused = p.ml_kem_768.encapsulate(&over_q, &mut system_fill);
            assert_eq!(
                refused.map(|_| ()),
                Err(ProviderError::KeyRejected),
                "{}",
                p.name
            );
        }
    }
}

/// ML-DSA-65 (FIPS 204): both providers derive the same public key from the same seed `xi`
/// (`ML-DSA.KeyGen_internal`), each verifies what the other signed (both with the empty
/// context), and a changed signature, message or key fails under both. RustCrypto's signing
/// draws exactly its 32-byte `rnd` from the caller; aws-lc's draws none.
#[test]
fn ml_dsa_65_each_way() {
    use keyctl::provider::{ML_DSA_65_PK_LEN, ML_DSA_65_SIG_LEN};
    let mut seed = [0u8; 32];
    for round in 0u8..3 {
        system_fill(&mut seed).unwrap();
        let (aws, rust) = (
            AWS.ml_dsa_65.signing_key(&seed).unwrap(),
            RUST.ml_dsa_65.signing_key(&seed).unwrap(),
        );
        assert_eq!(aws.public_key(), rust.public_key());
        assert_eq!(aws.public_key().len(), ML_DSA_65_PK_LEN);
        let pk = aws.public_key().to_vec();
        let msg = [round; 64];
        for (name, key) in [("aws-lc-rs", &aws), ("rust-crypto", &rust)] {
            let mut drawn = 0;
            let sig = key
                .sign(&msg, &mut |buf: &mut [u8]| {
                    drawn += buf.len();
                    system_fill(buf)
                })
                .unwrap();
            assert_eq!(drawn, if name == "aws-lc-rs" { 0 } else { 32 }, "{name}");
            assert_eq!(sig.len(), ML_DSA_65_SIG_LEN);
            for p in [AWS, RUST] {
                assert!(p.ml_dsa_65.verify(&pk, &msg, &sig), "{name} by {}", p.name);
                let mut bad = sig.clone();
                bad[usize::from(round) * 1000] ^= 0x01;
                assert!(!p.ml_dsa_65.verify(&pk, &msg, &bad), "{}", p.name);
                assert!(!p.ml_dsa_65.verify(&pk, &msg[1..], &sig), "{}", p.name);
                let mut other_pk = pk.clone();
                other_pk[40] ^= 0x01;
                assert!(!p.ml_dsa_65.verify(&other_pk, &msg, &sig), "{}", p.name);
                assert!(!p.ml_dsa_65.verify(&pk[1..], &msg, &sig), "{}", p.name);
                assert!(!p.ml_dsa_65.verify(&pk, &msg, &sig[1..]), "{}", p.name);
            }
        }
        // A failing rng is a failed signature under RustCrypto, which needs it.
        let failed = rust.sign(&msg, &mut |_: &mut [u8]| Err(ProviderError::Random));
        assert_eq!(failed.map(|_| ()), Err(ProviderError::Random));
    }
}

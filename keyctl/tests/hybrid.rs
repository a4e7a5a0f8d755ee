//! The v4.6 hybrid box (keyctl::crypto::hybrid) under the default provider: round trips, and
//! every change an attacker or a board could make is refused. The known answers are in
//! kat.rs / kat_rust_crypto.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use keyctl::crypto::hybrid::{self, BoxPublic, BoxSecret, HYBRID_OVERHEAD, ML_KEM_768_CT_LEN};
use keyctl::crypto::{CryptoError, SigningKey};
use keyctl::test_rng::TestRng;
use rand_core::{TryCryptoRng, TryRng};
use zeroize::{Zeroize, ZeroizeOnDrop};

const KDF: &[u8] = b"Zoombase-1-ClientOnly-KDF-SecretKey";
const CIPHER: &[u8] = b"Zoombase-1-ClientOnly-Cipher-SecretKey";
const META: &[u8] = b"meeting-42/epoch-7";

struct Party {
    secret: BoxSecret,
    vk: [u8; 32],
}

fn party(rng: &mut TestRng) -> Party {
    Party {
        secret: BoxSecret::generate(rng).unwrap(),
        vk: SigningKey::generate(rng).unwrap().verifying_key(),
    }
}

fn pair(label: &str) -> (Party, Party, TestRng) {
    let mut rng = TestRng::new(label);
    (party(&mut rng), party(&mut rng), rng)
}

fn seal(s: &Party, r: &Party, msg: &[u8], rng: &mut TestRng) -> Vec<u8> {
    hybrid::encrypt(
        &s.secret,
        &s.vk,
        &r.secret.public(),
        &r.vk,
        KDF,
        CIPHER,
        META,
        msg,
        rng,
    )
    .unwrap()
}

fn open(r: &Party, s: &Party, c: &[u8]) -> Result<Vec<u8>, CryptoError> {
    hybrid::decrypt(
        &r.secret,
        &r.vk,
        &s.secret.public(),
        &s.vk,
        KDF,
        CIPHER,
        META,
        c,
    )
}

#[test]
fn round_trip_both_ways_and_fresh_each_time() {
    let (a, b, mut rng) = pair("round-trip");
    for msg in [&b""[..], b"k", &[7u8; 32], &[0xa5; 5000]] {
        let c = seal(&a, &b, msg, &mut rng);
        assert_eq!(c.len(), msg.len() + HYBRID_OVERHEAD);
        assert_eq!(open(&b, &a, &c).unwrap(), msg);
        let back = seal(&b, &a, msg, &mut rng);
        assert_eq!(open(&a, &b, &back).unwrap(), msg);
        // A fresh nonce and encapsulation every time.
        let again = seal(&a, &b, msg, &mut rng);
        assert_ne!(again, c);
        assert_ne!(
            again[c.len() - ML_KEM_768_CT_LEN..],
            c[c.len() - ML_KEM_768_CT_LEN..]
        );
        // The box is directional: the sender cannot open what it sent.
        assert_eq!(open(&a, &b, &c), Err(CryptoError::BadTag));
    }
}

#[test]
fn every_part_of_the_ciphertext_is_authenticated() {
    let (a, b, mut rng) = pair("tamper");
    let msg = b"the meeting key, 32 bytes long!!";
    let c = seal(&a, &b, msg, &mut rng);
    let body = msg.len(); // C' = body || tag, then the nonce, then C_kem
    let places = [
        ("body", 0),
        ("body end", body - 1),
        ("tag", body),
        ("tag end", body + 15),
        ("nonce", body + 16),
        ("nonce end", body + 39),
        ("C_kem", body + 40),
        ("C_kem middle", body + 40 + 500),
        ("C_kem end", c.len() - 1),
    ];
    for (what, i) in places {
        let mut bad = c.clone();
        bad[i] ^= 0x01;
        assert_eq!(open(&b, &a, &bad), Err(CryptoError::BadTag), "{what}");
    }
    // One byte more or less anywhere shifts the parse.
    let mut longer = c.clone();
    longer.insert(body, 0);
    assert_eq!(open(&b, &a, &longer), Err(CryptoError::BadTag));
    assert_eq!(open(&b, &a, &c[1..]), Err(CryptoError::BadTag));
    assert_eq!(open(&b, &a, &c).unwrap(), msg);
}

#[test]
fn a_stripped_ml_kem_part_is_refused() {
    let (a, b, mut rng) = pair("strip");
    // A short message: without C_kem the rest is shorter than the hybrid's overhead.
    let c = seal(&a, &b, b"short", &mut rng);
    let classical = &c[..c.len() - ML_KEM_768_CT_LEN];
    assert_eq!(
        open(&b, &a, classical),
        Err(CryptoError::Truncated {
            len: classical.len(),
            min: HYBRID_OVERHEAD
        })
    );
    // A long one: the stripped box still parses, and the tag refuses it.
    let c = seal(&a, &b, &[3u8; 4000], &mut rng);
    assert_eq!(
        open(&b, &a, &c[..c.len() - ML_KEM_768_CT_LEN]),
        Err(CryptoError::BadTag)
    );
    assert!(matches!(
        open(&b, &a, &c[..HYBRID_OVERHEAD - 1]),
        Err(CryptoError::Truncated { .. })
    ));
    assert!(matches!(
        open(&b, &a, &[]),
        Err(CryptoError::Truncated { .. })
    ));
}

#[test]
fn meta_and_contexts_are_bound() {
    let (a, b, mut rng) = pair("context");
    let c = seal(&a, &b, b"m", &mut rng);
    let (rs, sp) = (&b.secret, a.secret.public());
    let try_open = |kdf: &[u8], cipher: &[u8], meta: &[u8]| {
        hybrid::decrypt(rs, &b.vk, &sp, &a.vk, kdf, cipher, meta, &c)
    };
    assert_eq!(try_open(KDF, CIPHER, META).unwrap(), b"m");
    assert_eq!(
        try_open(KDF, CIPHER, b"meeting-42/epoch-8"),
        Err(CryptoError::BadTag)
    );
    assert_eq!(try_open(KDF, CIPHER, b""), Err(CryptoError::BadTag));
    assert_eq!(
        try_open(b"other-kdf", CIPHER, META),
        Err(CryptoError::BadTag)
    );
    assert_eq!(
        try_open(KDF, b"other-cipher", META),
        Err(CryptoError::BadTag)
    );
    assert_eq!(try_open(CIPHER, KDF, META), Err(CryptoError::BadTag));
}

/// The CAD binds both identity keys and both parties' X25519 and ML-KEM keys, in order.
#[test]
fn identity_and_public_keys_are_bound() {
    let (a, b, mut rng) = pair("cad");
    let c = seal(&a, &b, b"m", &mut rng);
    let other = party(&mut rng);
    let sp = a.secret.public();
    let try_open = |r_vk: &[u8; 32], sender: &BoxPublic, s_vk: &[u8; 32]| {
        hybrid::decrypt(&b.secret, r_vk, sender, s_vk, KDF, CIPHER, META, &c)
    };
    assert_eq!(try_open(&b.vk, &sp, &a.vk).unwrap(), b"m");
    assert_eq!(
        try_open(&b.vk, &sp, &other.vk),
        Err(CryptoError::BadTag),
        "sender vk"
    );
    assert_eq!(
        try_open(&other.vk, &sp, &a.vk),
        Err(CryptoError::BadTag),
        "receiver vk"
    );
    assert_eq!(
        try_open(&a.vk, &sp, &b.vk),
        Err(CryptoError::BadTag),
        "vks swapped"
    );
    // The sender's ML-KEM key is not used to encrypt, but a board that swaps it is caught.
    let mut swapped_ek = sp.clone();
    swapped_ek.mlkem = other.secret.public().mlkem;
    assert_eq!(
        try_open(&b.vk, &swapped_ek, &a.vk),
        Err(CryptoError::BadTag),
        "sender ek"
    );
    let mut swapped_pk = sp.clone();
    swapped_pk.x25519 = other.secret.public().x25519;
    assert_eq!(
        try_open(&b.vk, &swapped_pk, &a.vk),
        Err(CryptoError::BadTag),
        "sender pk"
    );
    // Another receiver cannot open it, even knowing every public value.
    assert_eq!(
        hybrid::decrypt(&other.secret, &b.vk, &sp, &a.vk, KDF, CIPHER, META, &c),
        Err(CryptoError::BadTag)
    );
}

/// Points of small order on Curve25519: X25519 gives the all-zero output, which
/// `crypto_box_beforenm` refuses.
#[test]
fn low_order_x25519_keys_are_refused() {
    let (a, b, mut rng) = pair("low-order");
    let c = seal(&a, &b, b"m", &mut rng);
    let mut one = [0u8; 32];
    one[0] = 1;
    let order8 = [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ];
    for bad in [[0u8; 32], one, order8] {
        let mut receiver = b.secret.public();
        receiver.x25519 = bad;
        let sealed = hybrid::encrypt(
            &a.secret, &a.vk, &receiver, &b.vk, KDF, CIPHER, META, b"m", &mut rng,
        );
        assert_eq!(sealed, Err(CryptoError::LowOrderPublicKey));
        let mut sender = a.secret.public();
        sender.x25519 = bad;
        let opened = hybrid::decrypt(&b.secret, &b.vk, &sender, &a.vk, KDF, CIPHER, META, &c);
        assert_eq!(opened, Err(CryptoError::LowOrderPublicKey));
    }
}

#[test]
fn malformed_ml_kem_keys_are_refused() {
    let (a, b, mut rng) = pair("bad-ek");
    let c = seal(&a, &b, b"m", &mut rng);
    let good = b.secret.public();
    let mut over_q = good.clone();
    over_q.mlkem[0] = 0xff;
    over_q.mlkem[1] |= 0x0f; // first coefficient 4095 >= q (FIPS 203 7.2)
    let mut short = good.clone();
    short.mlkem.pop();
    let mut empty = good.clone();
    empty.mlkem.clear();
    for (what, receiver) in [("over q", &over_q), ("short", &short), ("empty", &empty)] {
        let sealed = hybrid::encrypt(
            &a.secret, &a.vk, receiver, &b.vk, KDF, CIPHER, META, b"m", &mut rng,
        );
        assert_eq!(sealed, Err(CryptoError::BadMlKemKey), "{what}");
        let opened = hybrid::decrypt(&a.secret, &a.vk, receiver, &b.vk, KDF, CIPHER, META, &c);
        assert_eq!(opened, Err(CryptoError::BadMlKemKey), "{what}");
    }
}

#[test]
fn keys_round_trip_through_bytes_and_bad_ones_are_refused() {
    let (a, b, mut rng) = pair("from-bytes");
    let dk = a.secret.mlkem_decapsulation_key().to_vec();
    assert_eq!(dk.len(), hybrid::ML_KEM_768_DK_LEN);
    let restored = BoxSecret::from_bytes(a.secret.x25519_secret(), &dk).unwrap();
    assert_eq!(restored.public(), a.secret.public());
    let c = seal(&b, &a, b"m", &mut rng);
    let restored = Party {
        secret: restored,
        vk: a.vk,
    };
    assert_eq!(open(&restored, &b, &c).unwrap(), b"m");

    let x = a.secret.x25519_secret();
    assert!(matches!(
        BoxSecret::from_bytes(x, &dk[1..]),
        Err(CryptoError::BadMlKemKey)
    ));
    assert!(matches!(
        BoxSecret::from_bytes(x, &[]),
        Err(CryptoError::BadMlKemKey)
    ));
    let mut long = dk.clone();
    long.push(0);
    assert!(matches!(
        BoxSecret::from_bytes(x, &long),
        Err(CryptoError::BadMlKemKey)
    ));
    // H(ek) at 2336..2368 must match the ek at 1152..2336 (FIPS 203 7.3).
    for i in [1152, 2000, 2336, 2367] {
        let mut bad = dk.clone();
        bad[i] ^= 1;
        assert!(
            matches!(
                BoxSecret::from_bytes(x, &bad),
                Err(CryptoError::BadMlKemKey)
            ),
            "byte {i}"
        );
    }
}

#[test]
fn debug_output_shows_no_secret() {
    let (a, _, _) = pair("debug");
    let shown = format!("{:?} {:#?}", a.secret, a.secret);
    assert!(shown.contains("redacted"));
    assert!(shown.contains(&hex::encode(a.secret.public().x25519)));
    let sk = hex::encode(a.secret.x25519_secret());
    assert!(!shown.contains(&sk), "{shown}");
    // No 8-byte run of the decapsulation key's secret parts (dk_PKE and z).
    let dk = a.secret.mlkem_decapsulation_key();
    for run in dk[..1152].chunks(8).chain(dk[2368..].chunks(8)) {
        assert!(!shown.contains(&hex::encode(run)), "{shown}");
    }
}

#[test]
fn secrets_are_zeroized_on_drop() {
    fn zeroized_on_drop<T: ZeroizeOnDrop>() {}
    zeroized_on_drop::<BoxSecret>();
    // The drop glue `ZeroizeOnDrop` derives is this `zeroize`.
    let (mut a, _, _) = pair("zeroize");
    let public = a.secret.public();
    assert_ne!(a.secret.x25519_secret(), &[0u8; 32]);
    a.secret.zeroize();
    assert_eq!(a.secret.x25519_secret(), &[0u8; 32]);
    assert!(a.secret.mlkem_decapsulation_key().is_empty());
    assert_eq!(a.secret.public(), public, "the public half stays");
}

/// An rng that always fails.
struct Broken;

impl TryRng for Broken {
    type Error = CryptoError;
    fn try_next_u32(&mut self) -> Result<u32, CryptoError> {
        Err(CryptoError::Rng)
    }
    fn try_next_u64(&mut self) -> Result<u64, CryptoError> {
        Err(CryptoError::Rng)
    }
    fn try_fill_bytes(&mut self, _dst: &mut [u8]) -> Result<(), CryptoError> {
        Err(CryptoError::Rng)
    }
}

impl TryCryptoRng for Broken {}

#[test]
fn a_failing_rng_is_an_error() {
    assert!(matches!(
        BoxSecret::generate(&mut Broken),
        Err(CryptoError::Rng)
    ));
    let (a, b, _) = pair("broken");
    let sealed = hybrid::encrypt(
        &a.secret,
        &a.vk,
        &b.secret.public(),
        &b.vk,
        KDF,
        CIPHER,
        META,
        b"m",
        &mut Broken,
    );
    assert_eq!(sealed, Err(CryptoError::Rng));
}

//! Edge cases of the primitives beyond the known answers.

use keyctl::crypto::{self, BOX_OVERHEAD, CryptoError};

const KDF: &[u8] = crypto::CTX_KDF_MEETING_SEED;
const CIPHER: &[u8] = crypto::CTX_CIPHER_MEETING_SEED;

#[test]
fn box_rejects_short_input() {
    let sk = [1u8; 32];
    let pk = *crypto::BoxKeyPair::from_secret(&[2u8; 32])
        .unwrap()
        .public();
    for len in [0, 1, BOX_OVERHEAD - 1] {
        assert_eq!(
            crypto::box_decrypt(&sk, &pk, KDF, CIPHER, b"", &vec![0; len]),
            Err(CryptoError::Truncated {
                len,
                min: BOX_OVERHEAD
            })
        );
    }
    assert_eq!(
        crypto::box_decrypt(&sk, &pk, KDF, CIPHER, b"", &[0; BOX_OVERHEAD]),
        Err(CryptoError::BadTag)
    );
}

#[test]
fn box_refuses_low_order_public_keys_like_libsodium() {
    let sk = [1u8; 32];
    for pk in [[0u8; 32], {
        let mut one = [0u8; 32];
        one[0] = 1;
        one
    }] {
        assert_eq!(
            crypto::try_box_encrypt(&sk, &pk, KDF, CIPHER, b"", b"m", &[0; 24]),
            Err(CryptoError::LowOrderPublicKey)
        );
        assert!(crypto::box_encrypt(&sk, &pk, KDF, CIPHER, b"", b"m", &[0; 24]).is_empty());
        assert_eq!(
            crypto::box_decrypt(&sk, &pk, KDF, CIPHER, b"", &[0; 60]),
            Err(CryptoError::LowOrderPublicKey)
        );
    }
}

#[test]
fn box_with_wrong_keys_fails() {
    let a = crypto::BoxKeyPair::from_secret(&[1u8; 32]).unwrap();
    let b = crypto::BoxKeyPair::from_secret(&[2u8; 32]).unwrap();
    let e = crypto::BoxKeyPair::from_secret(&[3u8; 32]).unwrap();
    let c = crypto::box_encrypt(
        a.secret(),
        b.public(),
        KDF,
        CIPHER,
        b"meta",
        b"mk",
        &[9; 24],
    );
    assert_eq!(c.len(), 2 + BOX_OVERHEAD);
    assert!(crypto::box_decrypt(b.secret(), a.public(), KDF, CIPHER, b"meta", &c).is_ok());
    assert_eq!(
        crypto::box_decrypt(e.secret(), a.public(), KDF, CIPHER, b"meta", &c),
        Err(CryptoError::BadTag)
    );
    assert_eq!(
        crypto::box_decrypt(b.secret(), e.public(), KDF, CIPHER, b"meta", &c),
        Err(CryptoError::BadTag)
    );
    assert_eq!(
        crypto::box_decrypt(b.secret(), a.public(), b"other", CIPHER, b"meta", &c),
        Err(CryptoError::BadTag)
    );
}

#[test]
fn verify_rejects_small_order_keys_and_zero_signature() {
    let seed = [5u8; 32];
    let key = crypto::SigningKey::from_seed(&seed).unwrap();
    let ivk = key.verifying_key();
    let sig = crypto::sign(&seed, b"c", b"m");
    assert!(crypto::verify(&ivk, &sig, b"c", b"m"));
    assert!(!crypto::verify(&ivk, &[0u8; 64], b"c", b"m"));
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(!crypto::verify(&identity, &sig, b"c", b"m"));
    assert!(!crypto::verify(&[0u8; 32], &sig, b"c", b"m"));
}

#[test]
fn debug_output_is_redacted() {
    let key = crypto::SigningKey::from_seed(&[0xab; 32]).unwrap();
    let text = format!("{key:?}");
    assert!(text.contains("redacted"));
    assert!(!text.contains("abababab"));
    let pair = crypto::BoxKeyPair::from_secret(&[0xcd; 32]).unwrap();
    assert!(!format!("{pair:?}").contains("cdcdcdcd"));
}

#[test]
fn verify_rejects_non_canonical_s_and_public_keys() {
    let seed = [6u8; 32];
    let ivk = crypto::SigningKey::from_seed(&seed)
        .unwrap()
        .verifying_key();
    let sig = crypto::sign(&seed, b"c", b"m");
    // S + L encodes the same scalar non-canonically; libsodium refuses it.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut bumped = sig;
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(bumped[32 + i]) + u16::from(L[i]) + carry;
        bumped[32 + i] = v as u8;
        carry = v >> 8;
    }
    assert!(!crypto::verify(&ivk, &bumped, b"c", b"m"));
    // y = p + 2 (non-canonical encoding of y = 2) is refused before any curve arithmetic.
    let mut non_canonical = [0xff; 32];
    non_canonical[0] = 0xef;
    non_canonical[31] = 0x7f;
    assert!(!crypto::verify(&non_canonical, &sig, b"c", b"m"));
}

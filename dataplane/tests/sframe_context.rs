//! The RFC 9605 Appendix A context: round trips for every suite and one test per rejection.

// Test helpers unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dataplane::sframe::{CipherSuite, Context, Error, Header, KeyMaterial};
use proptest::prelude::*;

const BASE_KEY: &[u8] = b"a base key of any length works";

fn pair(suite: CipherSuite, kid: u64) -> (Context, Context) {
    let mut sender = Context::new(suite);
    sender.add_send_key(kid, BASE_KEY).unwrap();
    let mut receiver = Context::new(suite);
    receiver.add_recv_key(kid, BASE_KEY).unwrap();
    (sender, receiver)
}

fn suite_strategy() -> impl Strategy<Value = CipherSuite> {
    proptest::sample::select(CipherSuite::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn context_round_trips_every_suite(
        suite in suite_strategy(),
        kid: u64,
        metadata in proptest::collection::vec(any::<u8>(), 0..64),
        plaintext in proptest::collection::vec(any::<u8>(), 0..=9000),
    ) {
        let (mut sender, mut receiver) = pair(suite, kid);
        let ct = sender.encrypt(kid, &metadata, &plaintext).unwrap();
        prop_assert_eq!(ct.len(), Header::new(kid, 0).encoded_len() + plaintext.len() + suite.tag_len());
        prop_assert_eq!(receiver.decrypt(&metadata, &ct).unwrap(), plaintext);
    }

    #[test]
    fn key_material_round_trips_at_any_counter(
        suite in suite_strategy(),
        kid: u64,
        ctr: u64,
        aad in proptest::collection::vec(any::<u8>(), 0..64),
        plaintext in proptest::collection::vec(any::<u8>(), 0..=9000),
    ) {
        let key = KeyMaterial::derive(suite, kid, BASE_KEY).unwrap();
        let mut buf = plaintext.clone();
        buf.resize(plaintext.len() + suite.tag_len(), 0);
        key.seal_in_place(ctr, &aad, &mut buf).unwrap();
        if !plaintext.is_empty() {
            prop_assert_ne!(&buf[..plaintext.len()], &plaintext[..]);
        }
        let len = key.open_in_place(ctr, &aad, &mut buf).unwrap();
        prop_assert_eq!(&buf[..len], &plaintext[..]);
        // The same ciphertext under a neighbouring counter does not verify.
        let mut again = plaintext.clone();
        again.resize(plaintext.len() + suite.tag_len(), 0);
        key.seal_in_place(ctr, &aad, &mut again).unwrap();
        prop_assert_eq!(key.open_in_place(ctr ^ 1, &aad, &mut again), Err(Error::AuthenticationFailed));
    }

    #[test]
    fn in_place_calls_match_the_allocating_ones(
        suite in suite_strategy(),
        kid: u64,
        metadata in proptest::collection::vec(any::<u8>(), 0..32),
        plaintext in proptest::collection::vec(any::<u8>(), 0..2000),
    ) {
        let (mut a, _) = pair(suite, kid);
        let (mut b, mut receiver) = pair(suite, kid);
        let expected = a.encrypt(kid, &metadata, &plaintext).unwrap();
        let headroom = 20;
        let mut buf = vec![0u8; headroom + plaintext.len() + 16];
        buf[headroom..headroom + plaintext.len()].copy_from_slice(&plaintext);
        let range = b.encrypt_in_place(kid, &metadata, &mut buf, headroom, plaintext.len()).unwrap();
        prop_assert_eq!(&buf[range.clone()], &expected[..]);
        let mut wire = buf[range].to_vec();
        let pt = receiver.decrypt_in_place(&metadata, &mut wire).unwrap();
        prop_assert_eq!(&wire[pt], &plaintext[..]);
    }
}

#[test]
fn counters_start_at_zero_and_advance() {
    let (mut sender, _) = pair(CipherSuite::Aes256GcmSha512_128, 3);
    for expected in 0..20u64 {
        let ct = sender.encrypt(3, b"", b"frame").unwrap();
        assert_eq!(Header::parse(&ct).unwrap().0, Header::new(3, expected));
    }
}

#[test]
fn every_bit_flip_is_rejected() {
    for suite in CipherSuite::ALL {
        let (mut sender, mut receiver) = pair(suite, 0x1234);
        let ct = sender
            .encrypt(0x1234, b"meta", b"some media frame")
            .unwrap();
        for bit in 0..ct.len() * 8 {
            let mut bad = ct.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                receiver.decrypt(b"meta", &bad).is_err(),
                "{suite:?} bit {bit}"
            );
        }
        // Metadata is authenticated too.
        assert_eq!(
            receiver.decrypt(b"metb", &ct),
            Err(Error::AuthenticationFailed)
        );
        assert_eq!(receiver.decrypt(b"meta", &ct).unwrap(), b"some media frame");
    }
}

#[test]
fn every_truncation_is_rejected() {
    for suite in CipherSuite::ALL {
        let (mut sender, mut receiver) = pair(suite, 0x1234);
        let ct = sender.encrypt(0x1234, b"", b"frame").unwrap();
        for cut in 0..ct.len() {
            let err = receiver.decrypt(b"", &ct[..cut]).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Truncated | Error::CiphertextTooShort | Error::AuthenticationFailed
                ),
                "{suite:?} cut {cut}: {err:?}"
            );
        }
        // The header alone, or header and fewer bytes than a tag, names the precise reason.
        assert_eq!(
            receiver.decrypt(b"", &ct[..3]),
            Err(Error::CiphertextTooShort)
        );
        assert_eq!(receiver.decrypt(b"", &[]), Err(Error::Truncated));
    }
}

#[test]
fn a_frame_for_another_kid_is_unknown() {
    let (mut sender, _) = pair(CipherSuite::Aes128GcmSha256_128, 7);
    let (_, mut receiver) = pair(CipherSuite::Aes128GcmSha256_128, 8);
    let ct = sender.encrypt(7, b"", b"x").unwrap();
    assert_eq!(receiver.decrypt(b"", &ct), Err(Error::UnknownKid(7)));
    assert_eq!(sender.encrypt(8, b"", b"x"), Err(Error::UnknownKid(8)));
}

#[test]
fn a_frame_under_another_suite_fails_authentication() {
    let (mut sender, _) = pair(CipherSuite::Aes128GcmSha256_128, 7);
    let (_, mut receiver) = pair(CipherSuite::Aes256GcmSha512_128, 7);
    let ct = sender.encrypt(7, b"", b"media").unwrap();
    assert_eq!(receiver.decrypt(b"", &ct), Err(Error::AuthenticationFailed));
}

#[test]
fn a_frame_under_another_base_key_fails_authentication() {
    let (mut sender, _) = pair(CipherSuite::Aes256GcmSha512_128, 7);
    let mut receiver = Context::new(CipherSuite::Aes256GcmSha512_128);
    receiver.add_recv_key(7, b"another base key").unwrap();
    let ct = sender.encrypt(7, b"", b"media").unwrap();
    assert_eq!(receiver.decrypt(b"", &ct), Err(Error::AuthenticationFailed));
}

#[test]
fn keys_work_in_one_direction_only() {
    let (mut sender, mut receiver) = pair(CipherSuite::Aes256GcmSha512_128, 9);
    let ct = sender.encrypt(9, b"", b"media").unwrap();
    // RFC 9605 4.4.1: a send key cannot decrypt, a receive key cannot encrypt.
    assert_eq!(sender.decrypt(b"", &ct), Err(Error::KeyIsSendOnly(9)));
    assert_eq!(
        receiver.encrypt(9, b"", b"x"),
        Err(Error::KeyIsReceiveOnly(9))
    );
}

#[test]
fn keys_are_added_once_and_removed_for_good() {
    let (mut sender, mut receiver) = pair(CipherSuite::Aes256GcmSha512_128, 9);
    assert_eq!(
        sender.add_send_key(9, BASE_KEY),
        Err(Error::DuplicateKid(9))
    );
    assert_eq!(
        receiver.add_send_key(9, BASE_KEY),
        Err(Error::DuplicateKid(9))
    );
    let ct = sender.encrypt(9, b"", b"media").unwrap();
    receiver.remove_key(9).unwrap();
    assert!(!receiver.has_key(9));
    assert_eq!(receiver.decrypt(b"", &ct), Err(Error::UnknownKid(9)));
    assert_eq!(receiver.remove_key(9), Err(Error::UnknownKid(9)));
}

#[test]
fn in_place_size_checks_consume_no_counter() {
    let (mut sender, mut receiver) = pair(CipherSuite::Aes256GcmSha512_128, 0x99);
    let mut buf = vec![0u8; 64];
    assert_eq!(
        sender.encrypt_in_place(0x99, b"", &mut buf, 1, 10),
        Err(Error::HeadroomTooSmall { needed: 2, got: 1 })
    );
    assert_eq!(
        sender.encrypt_in_place(0x99, b"", &mut buf, 17, 40),
        Err(Error::BufferTooSmall {
            needed: 73,
            got: 64
        })
    );
    let ct = sender.encrypt(0x99, b"", b"first").unwrap();
    assert_eq!(Header::parse(&ct).unwrap().0.ctr, 0);
    assert_eq!(receiver.decrypt(b"", &ct).unwrap(), b"first");
}

//! The aws-lc-rs and RustCrypto providers agree on the SFrame AEAD of every cipher suite (RFC
//! 9605 4.4-4.5): the same derived keys and nonces, the same ciphertext and tag, each opens what
//! the other sealed, and both refuse the same forgeries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dataplane::sframe::{CipherSuite, KeyMaterial, derive_secrets_with_provider};
use proptest::prelude::*;

#[path = "common/providers.rs"]
mod common;
use common::providers;

fn suite() -> impl Strategy<Value = CipherSuite> {
    prop::sample::select(CipherSuite::ALL.to_vec())
}

proptest! {
    #[test]
    fn every_suite_seals_and_opens_alike(
        suite in suite(),
        kid in any::<u64>(),
        ctr in any::<u64>(),
        base_key in prop::collection::vec(any::<u8>(), 16..64),
        aad in prop::collection::vec(any::<u8>(), 0..40),
        pt in prop::collection::vec(any::<u8>(), 0..1300),
        flip in any::<prop::sample::Index>(),
    ) {
        let providers = providers();
        let sealed: Vec<Vec<u8>> = providers
            .iter()
            .map(|p| {
                let secrets = derive_secrets_with_provider(p, suite, kid, &base_key).unwrap();
                let key = KeyMaterial::derive_with_provider(p, suite, kid, &base_key).unwrap();
                let mut buf = pt.clone();
                buf.resize(pt.len() + suite.tag_len(), 0);
                key.seal_in_place(ctr, &aad, &mut buf).unwrap();
                [secrets.key.clone(), secrets.salt.to_vec(), buf].concat()
            })
            .collect();
        let wire = sealed[0][suite.key_len() + 12..].to_vec();
        for (p, other) in providers.iter().zip(&sealed) {
            prop_assert_eq!(other, &sealed[0], "{} differs", p.name);
            let key = KeyMaterial::derive_with_provider(p, suite, kid, &base_key).unwrap();
            let mut buf = wire.clone();
            prop_assert_eq!(key.open_in_place(ctr, &aad, &mut buf), Ok(pt.len()));
            prop_assert_eq!(&buf[..pt.len()], &pt[..]);
            let mut forged = wire.clone();
            forged[flip.index(wire.len())] ^= 0x01;
            prop_assert!(key.open_in_place(ctr, &aad, &mut forged).is_err(), "{}", p.name);
        }
    }
}

//! The CtE1-wrapped identity file: arbitrary bytes under a fixed key-wrapping key are a typed
//! error or a key, never a panic; and a genuine file opens only to the key sealed in it.
#![no_main]
#![forbid(unsafe_code)]

use keyctl::crypto::SigningKey;
use keyctl::identity::{open_identity, seal_identity};
use libfuzzer_sys::fuzz_target;

const KWK: [u8; 32] = [0x42; 32];

use keyctl::test_rng::TestRng;

fuzz_target!(|data: &[u8]| {
    let _ = open_identity(&KWK, data);

    // Seal a known key, apply the input as an XOR mask, and open: any change must fail.
    let key = SigningKey::from_seed(&[7; 32]).expect("fixed seed");
    let sealed = seal_identity(&mut TestRng::from_u64(0), &KWK, &key).expect("sealing");
    let mut mutated = sealed.clone();
    for (byte, mask) in mutated.iter_mut().zip(data) {
        *byte ^= mask;
    }
    match open_identity(&KWK, &mutated) {
        Ok(opened) => {
            assert_eq!(mutated, sealed, "a modified file must not open");
            assert_eq!(opened.verifying_key(), key.verifying_key());
        }
        Err(_) => assert_ne!(mutated, sealed, "the genuine file must open"),
    }
});

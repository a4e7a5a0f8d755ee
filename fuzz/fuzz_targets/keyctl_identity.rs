//! The CtE1-wrapped identity file: arbitrary bytes under a fixed key-wrapping key are a typed
//! error or a key, never a panic; and a genuine file opens only to the key sealed in it.
#![no_main]

use keyctl::crypto::SigningKey;
use keyctl::identity::{open_identity, seal_identity};
use keyctl::rand_core::{TryCryptoRng, TryRng};
use libfuzzer_sys::fuzz_target;

const KWK: [u8; 32] = [0x42; 32];

/// A counter-mode byte source so sealing is deterministic.
struct Counter(u8);

impl TryRng for Counter {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for b in dst {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
        Ok(())
    }
}
impl TryCryptoRng for Counter {}

fuzz_target!(|data: &[u8]| {
    let _ = open_identity(&KWK, data);

    // Seal a known key, apply the input as an XOR mask, and open: any change must fail.
    let key = SigningKey::from_seed(&[7; 32]).expect("fixed seed");
    let sealed = seal_identity(&mut Counter(0), &KWK, &key).expect("sealing");
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

//! Deterministic randomness for the world: SHA-256 in counter mode, as in
//! keyctl/tests/sim/mod.rs. For exploration only; never a source of real keys.

use std::convert::Infallible;

use keyctl::crypto::sha256;
use keyctl::rand_core::{TryCryptoRng, TryRng};

/// SHA-256 over `seed || counter`, so a run replays exactly from its action list.
#[derive(Debug, Clone)]
pub struct TestRng {
    seed: [u8; 32],
    counter: u64,
}

impl TestRng {
    /// A generator seeded by `label`.
    pub fn new(label: &str) -> Self {
        Self {
            seed: sha256(label.as_bytes()),
            counter: 0,
        }
    }
}

impl TryRng for TestRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(32) {
            let mut input = self.seed.to_vec();
            input.extend_from_slice(&self.counter.to_be_bytes());
            self.counter = self.counter.wrapping_add(1);
            chunk.copy_from_slice(&sha256(&input)[..chunk.len()]);
        }
        Ok(())
    }
}

impl TryCryptoRng for TestRng {}

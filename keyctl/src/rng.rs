//! Randomness for real drivers. State machines never call this: they take a
//! [`rand_core::TryCryptoRng`] from the caller, so tests can be deterministic.

use rand_core::{TryCryptoRng, TryRng};
use thiserror::Error;

use crate::provider::{CryptoProvider, SecureRandom};

/// The operating system's random source, through a crypto provider's `secure_random`
/// (aws-lc's `RAND_bytes` by default; `getrandom` under the RustCrypto provider).
#[derive(Debug, Clone, Copy)]
pub struct OsRng(&'static dyn SecureRandom);

impl OsRng {
    /// A handle on the default provider's random source.
    pub fn new() -> Self {
        Self::with_provider(CryptoProvider::get_default())
    }

    /// A handle on `provider`'s random source.
    pub fn with_provider(provider: &'static CryptoProvider) -> Self {
        Self(provider.secure_random)
    }
}

impl Default for OsRng {
    fn default() -> Self {
        Self::new()
    }
}

/// The system random source failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("system random source failed")]
pub struct OsRngError;

impl TryRng for OsRng {
    type Error = OsRngError;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill(dst).map_err(|_| OsRngError)
    }
}

impl TryCryptoRng for OsRng {}

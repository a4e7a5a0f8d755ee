//! Key pairs: the long-term Ed25519 identity and the ephemeral X25519 box key.

use core::fmt;

use rand_core::TryCryptoRng;
use zeroize::Zeroizing;

use super::CryptoError;
use super::sign::{SIGNATURE_LEN, signed_message};
use crate::provider::{CryptoProvider, Ed25519SigningKey};

/// An Ed25519 signing key (the whitepaper's `ISK`, with `IVK` its public half).
///
/// Holds the 32-byte seed (libsodium's `crypto_sign_seed_keypair` input), zeroized on drop,
/// and the provider's prepared key, which wipes its own copy.
pub struct SigningKey {
    seed: Zeroizing<[u8; 32]>,
    key: Box<dyn Ed25519SigningKey>,
    ivk: [u8; 32],
    provider: &'static CryptoProvider,
}

impl SigningKey {
    /// The key whose seed is `seed`, prepared by the default provider.
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self, CryptoError> {
        let provider = CryptoProvider::get_default();
        let key = provider
            .ed25519
            .signing_key(seed)
            .map_err(|_| CryptoError::KeyRejected)?;
        Ok(Self {
            seed: Zeroizing::new(*seed),
            ivk: key.public_key(),
            key,
            provider,
        })
    }

    /// A fresh key (`Sign.KeyGen`, whitepaper 3.5.1) from the caller's randomness.
    pub fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self, CryptoError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.try_fill_bytes(seed.as_mut())
            .map_err(|_| CryptoError::Rng)?;
        Self::from_seed(&seed)
    }

    /// The public verification key (`IVK`).
    pub fn verifying_key(&self) -> [u8; 32] {
        self.ivk
    }

    /// The secret seed, for wrapping into the identity store.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// `Sign.Sign(ISK, context, msg)` (whitepaper 3.5.1).
    pub fn sign(&self, context: &[u8], msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.key.sign(&signed_message(self.provider, context, msg))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("ivk", &HexBytes(&self.verifying_key()))
            .field("seed", &"<redacted>")
            .finish()
    }
}

/// An X25519 key pair for `Box` (whitepaper 3.5.2); the secret half is zeroized on drop.
pub struct BoxKeyPair {
    sk: Zeroizing<[u8; 32]>,
    pk: [u8; 32],
}

impl BoxKeyPair {
    /// The key pair whose secret key is `sk` (libsodium clamps it when used, so any
    /// 32 bytes are a valid secret key).
    pub fn from_secret(sk: &[u8; 32]) -> Result<Self, CryptoError> {
        let pk = CryptoProvider::get_default()
            .x25519
            .public_key(sk)
            .map_err(|_| CryptoError::KeyRejected)?;
        Ok(Self {
            sk: Zeroizing::new(*sk),
            pk,
        })
    }

    /// A fresh key pair (`Box.KeyGen`) from the caller's randomness.
    pub fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self, CryptoError> {
        let mut sk = Zeroizing::new([0u8; 32]);
        rng.try_fill_bytes(sk.as_mut())
            .map_err(|_| CryptoError::Rng)?;
        Self::from_secret(&sk)
    }

    /// The public key `pk`.
    pub fn public(&self) -> &[u8; 32] {
        &self.pk
    }

    /// The secret key `sk`.
    pub fn secret(&self) -> &[u8; 32] {
        &self.sk
    }
}

impl fmt::Debug for BoxKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxKeyPair")
            .field("pk", &HexBytes(&self.pk))
            .field("sk", &"<redacted>")
            .finish()
    }
}

/// Hex rendering for public values in Debug output.
pub(crate) struct HexBytes<'a>(pub(crate) &'a [u8]);

impl fmt::Debug for HexBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

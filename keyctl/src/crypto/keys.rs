//! Key pairs: the long-term Ed25519 identity and the ephemeral X25519 box key.

use core::fmt;

use aws_lc_rs::agreement;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use rand_core::TryCryptoRng;
use zeroize::Zeroizing;

use super::CryptoError;
use super::sign::{SIGNATURE_LEN, signed_message};

/// An Ed25519 signing key (the whitepaper's `ISK`, with `IVK` its public half).
///
/// Holds the 32-byte seed (libsodium's `crypto_sign_seed_keypair` input), zeroized on drop.
pub struct SigningKey {
    seed: Zeroizing<[u8; 32]>,
    pair: Ed25519KeyPair,
}

impl SigningKey {
    /// The key whose seed is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self, CryptoError> {
        let pair =
            Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| CryptoError::KeyRejected)?;
        Ok(Self {
            seed: Zeroizing::new(*seed),
            pair,
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
        let mut out = [0u8; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    /// The secret seed, for wrapping into the identity store.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// `Sign.Sign(ISK, context, msg)` (whitepaper 3.5.1).
    pub fn sign(&self, context: &[u8], msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        let m = signed_message(context, msg);
        let sig = self.pair.sign(&m);
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(sig.as_ref());
        out
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
        let private = agreement::PrivateKey::from_private_key(&agreement::X25519, sk)
            .map_err(|_| CryptoError::KeyRejected)?;
        let public = private
            .compute_public_key()
            .map_err(|_| CryptoError::KeyRejected)?;
        let mut pk = [0u8; 32];
        pk.copy_from_slice(public.as_ref());
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

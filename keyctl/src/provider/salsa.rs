//! HSalsa20 and the ChaCha20-Poly1305 AEADs from the RustCrypto `salsa20` and
//! `chacha20poly1305` crates, and the detached seal and open every RustCrypto AEAD shares.
//!
//! aws-lc has neither HSalsa20 nor XChaCha20-Poly1305, so the aws-lc-rs provider takes these
//! two from here; the RustCrypto provider takes all three.

use core::fmt;
use core::marker::PhantomData;

use chacha20poly1305::KeyInit;
use chacha20poly1305::aead::AeadInOut;
use salsa20::cipher::consts::U10;
use zeroize::{Zeroize, Zeroizing};

use super::{HSalsa20, OneShotAead, ProviderError};

/// HSalsa20 with 20 rounds (`U10` double rounds), as NaCl's `crypto_core_hsalsa20`.
#[derive(Debug)]
pub(crate) struct RustCryptoHSalsa20;

impl HSalsa20 for RustCryptoHSalsa20 {
    fn hsalsa20(&self, key: &[u8; 32], input: &[u8; 16]) -> Zeroizing<[u8; 32]> {
        let mut key = salsa20::Key::from(*key);
        let mut derived = salsa20::hsalsa::<U10>(&key, &(*input).into());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(derived.as_slice());
        key.as_mut_slice().zeroize();
        derived.as_mut_slice().zeroize();
        out
    }
}

/// Encrypts `in_out` in place under a prepared RustCrypto AEAD and returns its 16-byte tag.
pub(super) fn seal_detached<A: AeadInOut>(
    aead: &A,
    nonce: &[u8],
    aad: &[u8],
    in_out: &mut [u8],
) -> Result<[u8; 16], ProviderError> {
    let nonce = nonce.try_into().map_err(|_| ProviderError::InvalidLength)?;
    let tag = aead
        .encrypt_inout_detached(nonce, aad, in_out.into())
        .map_err(|_| ProviderError::InvalidLength)?;
    tag.as_slice()
        .try_into()
        .map_err(|_| ProviderError::InvalidLength)
}

/// Verifies and decrypts `ciphertext || tag` in place under a prepared RustCrypto AEAD (which
/// checks the tag before it decrypts); returns the plaintext length.
pub(super) fn open_detached<A: AeadInOut>(
    aead: &A,
    nonce: &[u8],
    aad: &[u8],
    in_out: &mut [u8],
) -> Result<usize, ProviderError> {
    let ct_len = in_out
        .len()
        .checked_sub(16)
        .ok_or(ProviderError::InvalidLength)?;
    let (ct, tag) = in_out.split_at_mut(ct_len);
    let tag = (&*tag)
        .try_into()
        .map_err(|_| ProviderError::InvalidLength)?;
    let nonce = nonce.try_into().map_err(|_| ProviderError::InvalidLength)?;
    aead.decrypt_inout_detached(nonce, aad, ct.into(), tag)
        .map_err(|_| ProviderError::BadTag)?;
    Ok(ct_len)
}

/// A RustCrypto ChaCha20-Poly1305 AEAD `C` keyed per call, with `N`-byte nonces.
pub(crate) struct RustCryptoChaCha<C, const N: usize>(PhantomData<fn() -> C>);

/// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03; libsodium's
/// `crypto_aead_xchacha20poly1305_ietf`).
pub(crate) static XCHACHA20_POLY1305: RustCryptoChaCha<chacha20poly1305::XChaCha20Poly1305, 24> =
    RustCryptoChaCha(PhantomData);

/// ChaCha20-Poly1305, IETF (RFC 8439).
#[cfg(feature = "rust-crypto")]
pub(crate) static CHACHA20_POLY1305: RustCryptoChaCha<chacha20poly1305::ChaCha20Poly1305, 12> =
    RustCryptoChaCha(PhantomData);

impl<C, const N: usize> fmt::Debug for RustCryptoChaCha<C, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RustCryptoChaCha<{N}-byte nonce>")
    }
}

impl<C: KeyInit + AeadInOut, const N: usize> OneShotAead<N> for RustCryptoChaCha<C, N> {
    fn seal_in_place(
        &self,
        key: &[u8; 32],
        nonce: &[u8; N],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; 16], ProviderError> {
        seal_detached(&cipher::<C>(key)?, nonce, aad, in_out)
    }

    fn open_in_place(
        &self,
        key: &[u8; 32],
        nonce: &[u8; N],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<usize, ProviderError> {
        open_detached(&cipher::<C>(key)?, nonce, aad, in_out)
    }
}

/// The cipher for one call, built from the caller's key without a temporary copy; it zeroizes
/// its own key schedule on drop (`zeroize` feature).
fn cipher<C: KeyInit>(key: &[u8; 32]) -> Result<C, ProviderError> {
    C::new_from_slice(key).map_err(|_| ProviderError::KeyRejected)
}

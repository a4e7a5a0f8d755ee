//! The long-term identity store: the Ed25519 identity key wrapped with CtE1 under a
//! key-wrapping key (whitepaper 3.11).
//!
//! keyctl works on bytes; [`save`] and [`load`] are thin file helpers for drivers.
//! File layout (kind 0x08, see docs/PROTOCOL.md):
//! `01 08 || [32] IVK || lp(CtE1-Enc(K = KWK, H = "Zoombase-1-ClientOnly-KDF-SecretStore", M = seed))`.

use std::path::Path;

use rand_core::TryCryptoRng;
use thiserror::Error;

use crate::crypto::{CTX_KDF_SECRET_STORE, CryptoError, SigningKey, cte1};
use crate::wire::codec::{Reader, Writer};
use crate::wire::{Field, Kind, VERSION, WireError, parse_header};

/// Largest wrapped key accepted.
const MAX_WRAPPED: usize = 256;

/// Why an identity file could not be opened.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The bytes are not an identity file.
    #[error("malformed identity file: {0}")]
    Malformed(#[from] WireError),
    /// The key-wrapping key is wrong, or the wrapped key was altered.
    #[error("wrong key-wrapping key or tampered file")]
    WrongKeyOrTampered,
    /// The commitment did not open: the key-wrapping key is not the one the file was
    /// sealed with (a server supplying a different key is detected here).
    #[error("key-wrapping key does not match the commitment")]
    CommitmentMismatch,
    /// The file decrypted, but to a key whose IVK is not the one recorded in the file.
    #[error("stored IVK does not match the unwrapped key")]
    IvkMismatch,
    /// The unwrapped secret is not a 32-byte seed.
    #[error("unwrapped secret has length {0}, expected 32")]
    BadSecretLength(usize),
    /// A primitive failed (random source, backend).
    #[error("crypto failure: {0}")]
    Crypto(CryptoError),
    /// Reading or writing the file failed.
    #[error("identity file I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Wraps `key` under `kwk` (whitepaper 3.11 step 3) and returns the file's bytes.
pub fn seal_identity<R: TryCryptoRng + ?Sized>(
    rng: &mut R,
    kwk: &[u8; 32],
    key: &SigningKey,
) -> Result<Vec<u8>, IdentityError> {
    let wrapped = cte1::seal_with(rng, kwk, CTX_KDF_SECRET_STORE, key.seed())
        .map_err(IdentityError::Crypto)?;
    let mut out = vec![VERSION, Kind::IdentityFile as u8];
    out.bytes(&key.verifying_key());
    out.lp(&wrapped);
    Ok(out)
}

/// Unwraps the identity key from a file's bytes.
pub fn open_identity(kwk: &[u8; 32], bytes: &[u8]) -> Result<SigningKey, IdentityError> {
    let mut r = Reader::new(bytes);
    parse_header(&mut r, Kind::IdentityFile)?;
    let ivk: [u8; 32] = r.array()?;
    let wrapped = r.lp(Field::WrappedKey, MAX_WRAPPED)?;
    r.finish()?;
    let seed = cte1::open(kwk, CTX_KDF_SECRET_STORE, wrapped).map_err(|e| match e {
        CryptoError::BadCommitment => IdentityError::CommitmentMismatch,
        CryptoError::BadTag | CryptoError::Truncated { .. } => IdentityError::WrongKeyOrTampered,
        other => IdentityError::Crypto(other),
    })?;
    let seed: &[u8; 32] = seed
        .as_slice()
        .try_into()
        .map_err(|_| IdentityError::BadSecretLength(seed.len()))?;
    let key = SigningKey::from_seed(seed).map_err(IdentityError::Crypto)?;
    if key.verifying_key() != ivk {
        return Err(IdentityError::IvkMismatch);
    }
    Ok(key)
}

/// Writes an identity file (thin helper for drivers).
pub fn save(path: &Path, bytes: &[u8]) -> Result<(), IdentityError> {
    std::fs::write(path, bytes)?;
    Ok(())
}

/// Reads and unwraps an identity file (thin helper for drivers).
pub fn load(path: &Path, kwk: &[u8; 32]) -> Result<SigningKey, IdentityError> {
    let bytes = std::fs::read(path)?;
    open_identity(kwk, &bytes)
}

//! Cryptographic primitives of the control plane, byte-compatible with libsodium as the
//! whitepaper uses it (whitepaper 3.5).
//!
//! - [`sign`] / [`verify`]: `Sign.Sign` / `Sign.Verify` (3.5.1), Ed25519 over
//!   `SHA256(context) || SHA256(msg)`.
//! - [`box_encrypt`] / [`box_decrypt`]: `Box.Enc` / `Box.Dec` (3.5.2), X25519 + HSalsa20
//!   (`crypto_box_beforenm`), HKDF-SHA256 and XChaCha20-Poly1305-IETF.
//! - [`hybrid`]: the v4.6 hybrid box (whitepaper v4.6, "Authenticated Public-Key
//!   Encryption"), X25519 + ML-KEM-768 combined with SHA3-256, for the meeting key.
//! - [`hybrid_sig`]: hybrid identities, Ed25519 + ML-DSA-65 (FIPS 204) over the same input as
//!   [`sign`] (issue 16 part 2; not yet on the wire).
//! - [`security_code`]: the meeting leader security code (3.8), and
//!   [`security_code_hybrid`] over both keys of a hybrid identity.
//! - [`cte1`]: the CtE1 committing AEAD used to wrap long-term keys (3.11).
//!
//! The primitives come from the process default [`CryptoProvider`] at the moment each
//! construction runs (aws-lc-rs unless a driver installed another); key objects
//! ([`SigningKey`], [`BoxKey`]) keep the provider they were made with.

mod boxes;
mod context;
pub mod cte1;
mod error;
pub mod hybrid;
pub mod hybrid_sig;
mod keys;
mod security_code;
mod sign;

pub use boxes::{
    BOX_NONCE_LEN, BOX_OVERHEAD, BoxKey, box_decrypt, box_encrypt, box_encrypt_with, box_keypair,
    try_box_encrypt,
};
pub use context::*;
pub use error::CryptoError;
pub(crate) use keys::HexBytes;
pub use keys::{BoxKeyPair, SigningKey};
pub use security_code::{
    SECURITY_CODE_DIGITS, security_code, security_code_grouped, security_code_hybrid,
    security_code_hybrid_grouped,
};
pub use sign::{SIGNATURE_LEN, sign, verify};

use crate::provider::CryptoProvider;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    CryptoProvider::get_default().hash.sha256(data)
}

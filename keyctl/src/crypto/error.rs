use thiserror::Error;

/// Why a primitive refused its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A ciphertext was shorter than the fixed overhead of its construction.
    #[error("ciphertext is {len} bytes, shorter than the minimum {min}")]
    Truncated {
        /// Length received.
        len: usize,
        /// Smallest length the construction can produce.
        min: usize,
    },
    /// The authentication tag did not verify (wrong key, wrong context or metadata, or tampering).
    #[error("authentication failed")]
    BadTag,
    /// The CtE1 commitment did not open to the decrypted message (3.11): the key-wrapping
    /// key is not the one the ciphertext was made with.
    #[error("commitment does not open")]
    BadCommitment,
    /// X25519 produced the all-zero shared secret: the peer public key has low order.
    /// libsodium's `crypto_box_beforenm` rejects this case too.
    #[error("peer public key has low order")]
    LowOrderPublicKey,
    /// The backend refused a key (never for well-formed 32-byte keys).
    #[error("key rejected by the crypto backend")]
    KeyRejected,
    /// An ML-KEM-768 key is malformed (whitepaper v4.6 hybrid box): the wrong length, an
    /// encapsulation key with a coefficient of `q` or more (FIPS 203 7.2), or a decapsulation
    /// key whose `H(ek)` does not match its `ek` (FIPS 203 7.3).
    #[error("malformed ML-KEM-768 key")]
    BadMlKemKey,
    /// The caller's random number generator failed.
    #[error("random number generator failed")]
    Rng,
}

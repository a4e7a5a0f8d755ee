//! Hybrid identities: Ed25519 + ML-DSA-65 (FIPS 204), issue 16 part 2.
//!
//! A hybrid identity is a classical Ed25519 identity key (`IVK` / `ISK`, whitepaper 3.5.1)
//! and an ML-DSA-65 key pair. A hybrid signature is both signatures over the same 64 bytes
//! the classical `Sign` signs (whitepaper 3.5.1):
//!
//! ```text
//! m       = SHA256(context) || SHA256(msg)                                  64 bytes
//! sig_ed  = Ed25519.Sign(ISK, m)                                            64 bytes
//! sig_pq  = ML-DSA.Sign(sk, m, ctx = "")   FIPS 204 algorithm 2, so the     3,309 bytes
//!           ML-DSA message is M' = 0x00 || 0x00 || m (pure ML-DSA, |ctx| = 0)
//! sig     = sig_ed || sig_pq                                                3,373 bytes
//! ```
//!
//! and a verifier requires both: [`HybridVerifyingKey::verify`] checks each half and its
//! [`HybridSigError`] says which failed. The Ed25519 half is checked exactly as
//! [`crate::crypto::verify`] does (libsodium's rejections included).
//!
//! The ML-DSA context string is the empty string, [`ML_DSA_CONTEXT`], on purpose: aws-lc-rs
//! 1.19, the default provider, signs and verifies only with the empty context, and the
//! domain separation is already in `m`, whose first half is `SHA256(context)`, the same
//! whitepaper context strings the classical signatures use. Because the Ed25519 half is a
//! valid classical signature over the same `(context, msg)`, what is signed hybrid must differ
//! from everything signed classically, in `msg` (a kind byte of its own, as the hybrid
//! binding 0x0A does) or in `context` (one of its own), so that a stripped Ed25519 half
//! verifies only as what it is.
//!
//! Keys come from two 32-byte seeds: the Ed25519 seed (RFC 8032 5.1.5) and the ML-DSA seed
//! `xi` (`ML-DSA.KeyGen_internal(xi)`, FIPS 204 algorithm 6), so an identity is stored as 64
//! secret bytes. Sizes: public key 32 + 1,952 = 1,984 bytes, signature 64 + 3,309 = 3,373.
//!
//! On the wire since revision 4: a binding of kind 0x0B carries the ML-DSA-65 key, and its
//! holder's board messages carry hybrid signatures ([`crate::wire::Hybrid`];
//! docs/PROTOCOL.md, "Hybrid signatures on the wire").

use core::fmt;

use rand_core::TryCryptoRng;
use thiserror::Error;
use zeroize::Zeroizing;

use super::CryptoError;
use super::HexBytes;
use super::keys::SigningKey;
use super::sign::{SIGNATURE_LEN, signed_message, verify};
/// The ML-DSA context string `ctx` of FIPS 204 algorithms 2 and 3: empty (see the module docs).
pub use crate::provider::ML_DSA_CONTEXT;
use crate::provider::{CryptoProvider, MlDsa65SigningKey, ProviderError};
pub use crate::provider::{ML_DSA_65_PK_LEN, ML_DSA_65_SIG_LEN, ML_DSA_SEED_LEN};

/// The prefix of [`HybridSigningKey::from_ed25519_seed`]'s ML-DSA seed derivation.
pub const HYBRID_IDENTITY_KDF: &[u8] = b"Veil-1-KDF-HybridIdentity";

/// Length of an encoded [`HybridVerifyingKey`]: the Ed25519 key, then the ML-DSA-65 key.
pub const HYBRID_PUBLIC_KEY_LEN: usize = 32 + ML_DSA_65_PK_LEN;

/// Length of an encoded [`HybridSignature`]: the Ed25519 signature, then the ML-DSA-65 one.
pub const HYBRID_SIGNATURE_LEN: usize = SIGNATURE_LEN + ML_DSA_65_SIG_LEN;

/// Why a hybrid key or signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HybridSigError {
    /// An encoded key or signature of the wrong length.
    #[error("{what} is {len} bytes, expected {expected}")]
    BadLength {
        /// What was being decoded.
        what: &'static str,
        /// Length received.
        len: usize,
        /// Length of the encoding.
        expected: usize,
    },
    /// The ML-DSA-65 half verified, the Ed25519 half did not.
    #[error("the Ed25519 half of the hybrid signature does not verify")]
    Ed25519,
    /// The Ed25519 half verified, the ML-DSA-65 half did not.
    #[error("the ML-DSA-65 half of the hybrid signature does not verify")]
    MlDsa,
    /// Neither half verified.
    #[error("neither half of the hybrid signature verifies")]
    Both,
}

/// `bytes` as a boxed array of `N`, or [`HybridSigError::BadLength`].
fn fixed<const N: usize>(what: &'static str, bytes: &[u8]) -> Result<Box<[u8; N]>, HybridSigError> {
    let boxed: Box<[u8]> = bytes.into();
    boxed.try_into().map_err(|_| HybridSigError::BadLength {
        what,
        len: bytes.len(),
        expected: N,
    })
}

/// `bytes`, exactly `total` long, as its Ed25519 half of `N` bytes and the ML-DSA-65 rest.
fn split<'a, const N: usize>(
    what: &'static str,
    bytes: &'a [u8],
    total: usize,
) -> Result<([u8; N], &'a [u8]), HybridSigError> {
    let bad = HybridSigError::BadLength {
        what,
        len: bytes.len(),
        expected: total,
    };
    if bytes.len() != total {
        return Err(bad);
    }
    let (ed, pq) = bytes.split_at_checked(N).ok_or(bad)?;
    Ok((ed.try_into().map_err(|_| bad)?, pq))
}

/// The 64 bytes both halves of a hybrid signature sign: `SHA256(context) || SHA256(msg)`,
/// the classical `Sign`'s input (whitepaper 3.5.1), under the default provider.
pub fn signed_input(context: &[u8], msg: &[u8]) -> [u8; 64] {
    signed_message(CryptoProvider::get_default(), context, msg)
}

/// A hybrid identity's public key: the Ed25519 `IVK` and the ML-DSA-65 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct HybridVerifyingKey {
    ed25519: [u8; 32],
    ml_dsa: Box<[u8; ML_DSA_65_PK_LEN]>,
}

impl HybridVerifyingKey {
    /// The key of `ed25519` (the `IVK`) and `ml_dsa` (FIPS 204 `pkEncode`, 1,952 bytes; any
    /// bytes of that length decode, algorithm 23). Another length is
    /// [`HybridSigError::BadLength`].
    pub fn new(ed25519: [u8; 32], ml_dsa: &[u8]) -> Result<Self, HybridSigError> {
        Ok(Self {
            ed25519,
            ml_dsa: fixed("ML-DSA-65 public key", ml_dsa)?,
        })
    }

    /// Decodes `ed25519 [32] || ml_dsa [1952]` ([`Self::to_bytes`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HybridSigError> {
        let (ed25519, pq) = split("hybrid public key", bytes, HYBRID_PUBLIC_KEY_LEN)?;
        Self::new(ed25519, pq)
    }

    /// `ed25519 [32] || ml_dsa [1952]`, [`HYBRID_PUBLIC_KEY_LEN`] bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        [&self.ed25519[..], &self.ml_dsa[..]].concat()
    }

    /// The Ed25519 half, the classical `IVK`.
    pub fn ed25519(&self) -> &[u8; 32] {
        &self.ed25519
    }

    /// The ML-DSA-65 public key, [`ML_DSA_65_PK_LEN`] bytes.
    pub fn ml_dsa(&self) -> &[u8] {
        &self.ml_dsa[..]
    }

    /// Whether `sig` is a hybrid signature by this key over `context` and `msg`: both halves
    /// must verify over `SHA256(context) || SHA256(msg)`, the Ed25519 one as
    /// [`crate::crypto::verify`] checks it, the ML-DSA-65 one with `ML-DSA.Verify(pk, m, sig,
    /// ctx = "")` (FIPS 204 algorithm 3). Both are always checked, and the error names the
    /// half or halves that failed.
    pub fn verify(
        &self,
        sig: &HybridSignature,
        context: &[u8],
        msg: &[u8],
    ) -> Result<(), HybridSigError> {
        let provider = CryptoProvider::get_default();
        let ed_ok = verify(&self.ed25519, &sig.ed25519, context, msg);
        let m = signed_message(provider, context, msg);
        let pq_ok = provider
            .ml_dsa_65
            .verify(&self.ml_dsa[..], &m, &sig.ml_dsa[..]);
        match (ed_ok, pq_ok) {
            (true, true) => Ok(()),
            (false, true) => Err(HybridSigError::Ed25519),
            (true, false) => Err(HybridSigError::MlDsa),
            (false, false) => Err(HybridSigError::Both),
        }
    }
}

impl fmt::Debug for HybridVerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HybridVerifyingKey")
            .field("ed25519", &HexBytes(&self.ed25519))
            .field("ml_dsa_head", &HexBytes(&self.ml_dsa[..8]))
            .finish()
    }
}

/// A hybrid signature: the Ed25519 signature and the ML-DSA-65 signature of the same input.
#[derive(Clone, PartialEq, Eq)]
pub struct HybridSignature {
    ed25519: [u8; SIGNATURE_LEN],
    ml_dsa: Box<[u8; ML_DSA_65_SIG_LEN]>,
}

impl HybridSignature {
    /// The signature of halves `ed25519` and `ml_dsa` (FIPS 204 `sigEncode`, 3,309 bytes).
    pub fn new(ed25519: [u8; SIGNATURE_LEN], ml_dsa: &[u8]) -> Result<Self, HybridSigError> {
        Ok(Self {
            ed25519,
            ml_dsa: fixed("ML-DSA-65 signature", ml_dsa)?,
        })
    }

    /// The signature of two halves already of the right lengths.
    pub(crate) fn from_parts(
        ed25519: [u8; SIGNATURE_LEN],
        ml_dsa: Box<[u8; ML_DSA_65_SIG_LEN]>,
    ) -> Self {
        Self { ed25519, ml_dsa }
    }

    /// Decodes `ed25519 [64] || ml_dsa [3309]` ([`Self::to_bytes`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HybridSigError> {
        let (ed25519, pq) = split("hybrid signature", bytes, HYBRID_SIGNATURE_LEN)?;
        Self::new(ed25519, pq)
    }

    /// `ed25519 [64] || ml_dsa [3309]`, [`HYBRID_SIGNATURE_LEN`] bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        [&self.ed25519[..], &self.ml_dsa[..]].concat()
    }

    /// The Ed25519 half.
    pub fn ed25519(&self) -> &[u8; SIGNATURE_LEN] {
        &self.ed25519
    }

    /// The ML-DSA-65 half, [`ML_DSA_65_SIG_LEN`] bytes.
    pub fn ml_dsa(&self) -> &[u8] {
        &self.ml_dsa[..]
    }
}

impl fmt::Debug for HybridSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HybridSignature")
            .field("ed25519", &HexBytes(&self.ed25519))
            .field("ml_dsa_head", &HexBytes(&self.ml_dsa[..8]))
            .finish()
    }
}

/// A hybrid identity's secret key: the Ed25519 `ISK` and the ML-DSA-65 signing key.
///
/// Holds both 32-byte seeds, zeroized on drop, and each provider's prepared key, which wipes
/// its own copy (ml-dsa's `zeroize`; aws-lc's `EVP_PKEY_free`). `Debug` prints only the
/// public key.
pub struct HybridSigningKey {
    ed25519: SigningKey,
    ml_dsa_seed: Zeroizing<[u8; ML_DSA_SEED_LEN]>,
    ml_dsa: Box<dyn MlDsa65SigningKey>,
    public: HybridVerifyingKey,
    provider: &'static CryptoProvider,
}

impl HybridSigningKey {
    /// The key of Ed25519 seed `ed25519_seed` and ML-DSA-65 seed `ml_dsa_seed`
    /// (`ML-DSA.KeyGen_internal(xi)`, FIPS 204 algorithm 6), prepared by the default provider.
    pub fn from_seeds(
        ed25519_seed: &[u8; 32],
        ml_dsa_seed: &[u8; ML_DSA_SEED_LEN],
    ) -> Result<Self, CryptoError> {
        let provider = CryptoProvider::get_default();
        let ed25519 = SigningKey::from_seed(ed25519_seed)?;
        let ml_dsa = provider
            .ml_dsa_65
            .signing_key(ml_dsa_seed)
            .map_err(|_| CryptoError::KeyRejected)?;
        let public = HybridVerifyingKey::new(ed25519.verifying_key(), ml_dsa.public_key())
            .map_err(|_| CryptoError::KeyRejected)?;
        Ok(Self {
            ed25519,
            ml_dsa_seed: Zeroizing::new(*ml_dsa_seed),
            ml_dsa,
            public,
            provider,
        })
    }

    /// The hybrid identity of a stored Ed25519 identity: its Ed25519 key is the one of
    /// `ed25519_seed`, and its ML-DSA-65 seed is `xi = SHA256("Veil-1-KDF-HybridIdentity" ||
    /// ed25519_seed)`. So an identity file of kind 0x08 (32 secret bytes) serves both kinds of
    /// session with the same `IVK`; the ML-DSA key stays secret from whoever recovers the
    /// Ed25519 scalar from `IVK` (a quantum adversary), since the scalar is a hash of the seed,
    /// not the seed.
    pub fn from_ed25519_seed(ed25519_seed: &[u8; 32]) -> Result<Self, CryptoError> {
        let mut input = Zeroizing::new(Vec::with_capacity(HYBRID_IDENTITY_KDF.len() + 32));
        input.extend_from_slice(HYBRID_IDENTITY_KDF);
        input.extend_from_slice(ed25519_seed);
        let xi = Zeroizing::new(CryptoProvider::get_default().hash.sha256(&input));
        Self::from_seeds(ed25519_seed, &xi)
    }

    /// A fresh key from the caller's randomness: the Ed25519 seed, then the ML-DSA seed `xi`
    /// (FIPS 204 algorithm 1, `ML-DSA.KeyGen`).
    pub fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self, CryptoError> {
        let mut ed = Zeroizing::new([0u8; 32]);
        let mut pq = Zeroizing::new([0u8; ML_DSA_SEED_LEN]);
        rng.try_fill_bytes(ed.as_mut())
            .map_err(|_| CryptoError::Rng)?;
        rng.try_fill_bytes(pq.as_mut())
            .map_err(|_| CryptoError::Rng)?;
        Self::from_seeds(&ed, &pq)
    }

    /// The public key.
    pub fn verifying_key(&self) -> &HybridVerifyingKey {
        &self.public
    }

    /// The classical half, a plain Ed25519 identity.
    pub fn ed25519(&self) -> &SigningKey {
        &self.ed25519
    }

    /// The ML-DSA-65 seed `xi`, for wrapping into the identity store.
    pub fn ml_dsa_seed(&self) -> &[u8; ML_DSA_SEED_LEN] {
        &self.ml_dsa_seed
    }

    /// The hybrid signature over `context` and `msg` (see the module docs): Ed25519 and
    /// ML-DSA-65 over `SHA256(context) || SHA256(msg)`.
    ///
    /// ML-DSA signing is hedged: its 32-byte `rnd` comes from `rng` under the RustCrypto
    /// provider, and from aws-lc's own DRBG under aws-lc-rs, which leaves `rng` untouched. A
    /// failing `rng` is [`CryptoError::Rng`].
    pub fn sign<R: TryCryptoRng + ?Sized>(
        &self,
        context: &[u8],
        msg: &[u8],
        rng: &mut R,
    ) -> Result<HybridSignature, CryptoError> {
        let m = signed_message(self.provider, context, msg);
        let ed25519 = self.ed25519.sign(context, msg);
        let ml_dsa = self
            .ml_dsa
            .sign(&m, &mut |buf: &mut [u8]| {
                rng.try_fill_bytes(buf).map_err(|_| ProviderError::Random)
            })
            .map_err(|e| match e {
                ProviderError::Random => CryptoError::Rng,
                _ => CryptoError::KeyRejected,
            })?;
        HybridSignature::new(ed25519, &ml_dsa).map_err(|_| CryptoError::KeyRejected)
    }
}

impl fmt::Debug for HybridSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HybridSigningKey")
            .field("public", &self.public)
            .field("seeds", &"<redacted>")
            .finish()
    }
}

//! The crypto provider: every primitive keyctl and the dataplane use, behind one value.
//!
//! Modelled on rustls's `CryptoProvider`: a [`CryptoProvider`] is a plain struct of
//! `&'static dyn` components, one per primitive family. Two are built in:
//!
//! - `aws_lc_rs::PROVIDER` (cargo feature `aws-lc-rs`, on by default): aws-lc through
//!   aws-lc-rs, the backend every benchmark measures. aws-lc has no XChaCha20-Poly1305 and no
//!   HSalsa20, so those two come from the RustCrypto `chacha20poly1305` and `salsa20` crates.
//! - `rust_crypto::PROVIDER` (cargo feature `rust-crypto`): the RustCrypto and dalek crates
//!   only, no C, so it builds for `wasm32-unknown-unknown`.
//!
//! [`CryptoProvider::get_default`] is the process default: the one a driver installed with
//! [`CryptoProvider::install_default`], else aws-lc-rs when compiled in, else RustCrypto.
//! keyctl's constructions take it at the moment they run; the dataplane's cores
//! (`sframe::Context`, `keyring::Keyring`, `sframe::KeyMaterial`) also take one explicitly
//! and keep it, which is how its tests run one process under both providers.
//!
//! Keys that are used many times (AES-GCM, AES-CTR, HMAC, Ed25519 signing keys) are prepared
//! once into a boxed key object, so the per-packet cost is one dynamic call and no setup; the
//! one-shot constructions (the box, CtE1) take raw key bytes.
//!
//! Both providers pass every known answer (keyctl/tests/kat*.rs, the RFC 9605 vectors in
//! dataplane/tests) and agree on random inputs (keyctl/tests/provider_agreement.rs).

use core::fmt::Debug;
use std::sync::OnceLock;

use thiserror::Error;
use zeroize::Zeroizing;

#[cfg(feature = "aws-lc-rs")]
pub mod aws_lc_rs;
#[cfg(feature = "rust-crypto")]
pub mod rust_crypto;
mod salsa;

#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
compile_error!(
    "keyctl needs a crypto provider: enable the `aws-lc-rs` (default) or `rust-crypto` feature"
);

/// Why a primitive refused its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// A key of a length the primitive does not take, or one the backend refused.
    #[error("key rejected by the crypto provider")]
    KeyRejected,
    /// An AEAD tag did not verify.
    #[error("authentication failed")]
    BadTag,
    /// The X25519 output is all zero: the peer public key has low order (RFC 7748 6.1).
    #[error("X25519 output is all zero: the peer public key has low order")]
    LowOrder,
    /// A length out of the primitive's range: an HKDF output over 255 hash lengths, or a
    /// ciphertext shorter than its tag.
    #[error("length out of range for the primitive")]
    InvalidLength,
    /// The random source failed, or the provider has none on this target.
    #[error("random source failed or unavailable")]
    Random,
}

/// A hash of the SHA-2 family, for HMAC and HKDF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-256 (FIPS 180-4).
    Sha256,
    /// SHA-512 (FIPS 180-4).
    Sha512,
}

impl HashAlg {
    /// The output length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }
}

/// SHA-256, SHA-512 and SHA3-256.
pub trait Hash: Send + Sync + Debug {
    /// SHA-256 of `data`.
    fn sha256(&self, data: &[u8]) -> [u8; 32];
    /// SHA-512 of `data`.
    fn sha512(&self, data: &[u8]) -> [u8; 64];
    /// SHA3-256 of `data` (FIPS 202), the v4.6 hybrid box's combiner hash.
    fn sha3_256(&self, data: &[u8]) -> [u8; 32];
}

/// An HMAC output (RFC 2104), one hash output long.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HmacTag {
    alg: HashAlg,
    buf: [u8; 64],
}

impl HmacTag {
    /// The tag `bytes` of HMAC with hash `alg`; `None` unless `bytes` is one output long.
    pub fn new(alg: HashAlg, bytes: &[u8]) -> Option<Self> {
        if bytes.len() != alg.output_len() {
            return None;
        }
        Some(Self {
            alg,
            buf: padded(bytes),
        })
    }

    /// The hash of the HMAC that made the tag.
    pub fn algorithm(&self) -> HashAlg {
        self.alg
    }
}

/// `bytes` (at most 64 of them) zero-padded to 64, one buffer for both hash lengths.
fn padded(bytes: &[u8]) -> [u8; 64] {
    let mut buf = [0u8; 64];
    let len = bytes.len().min(64);
    buf[..len].copy_from_slice(&bytes[..len]);
    buf
}

impl AsRef<[u8]> for HmacTag {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.alg.output_len()]
    }
}

impl Debug for HmacTag {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "HmacTag({:?})", crate::crypto::HexBytes(self.as_ref()))
    }
}

/// HMAC-SHA-256 and HMAC-SHA-512.
pub trait Hmac: Send + Sync + Debug {
    /// `key` prepared for repeated use (the inner and outer pads hashed once).
    fn key(&self, alg: HashAlg, key: &[u8]) -> Box<dyn HmacKey>;

    /// One HMAC over the concatenation of `parts`, for keys used once.
    fn sign(&self, alg: HashAlg, key: &[u8], parts: &[&[u8]]) -> HmacTag {
        self.key(alg, key).sign(parts)
    }
}

/// A prepared HMAC key. Signing allocates nothing.
pub trait HmacKey: Send + Sync {
    /// HMAC over the concatenation of `parts`: parts let a caller MAC a framed message without
    /// copying it together first.
    fn sign(&self, parts: &[&[u8]]) -> HmacTag;
}

/// An HKDF pseudorandom key (RFC 5869 2.2), zeroized on drop.
pub struct Prk {
    alg: HashAlg,
    bytes: Zeroizing<[u8; 64]>,
}

impl Prk {
    /// The PRK `bytes` of hash `alg`; `None` unless `bytes` is one hash output long.
    pub fn new(alg: HashAlg, bytes: &[u8]) -> Option<Self> {
        if bytes.len() != alg.output_len() {
            return None;
        }
        Some(Self::padded(alg, bytes))
    }

    fn padded(alg: HashAlg, bytes: &[u8]) -> Self {
        let mut buf = Zeroizing::new([0u8; 64]);
        let len = bytes.len().min(64);
        buf[..len].copy_from_slice(&bytes[..len]);
        Self { alg, bytes: buf }
    }

    /// The hash the PRK belongs to.
    pub fn algorithm(&self) -> HashAlg {
        self.alg
    }

    /// The PRK itself, for a provider's HKDF-Expand.
    pub fn expose_secret(&self) -> &[u8] {
        &self.bytes[..self.alg.output_len()]
    }
}

impl Debug for Prk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Prk({:?}, <redacted>)", self.alg)
    }
}

/// HKDF (RFC 5869) over SHA-256 or SHA-512.
pub trait Hkdf: Send + Sync + Debug {
    /// HKDF-Extract: `PRK = HMAC-Hash(salt, IKM)` (RFC 5869 2.2). An empty salt is the same
    /// as the RFC's default of one hash length of zeros.
    fn extract(&self, alg: HashAlg, salt: &[u8], ikm: &[u8]) -> Prk;

    /// HKDF-Expand (RFC 5869 2.3): fills `out` from `prk` and the concatenation of `info`.
    /// `out` longer than 255 hash lengths is [`ProviderError::InvalidLength`].
    fn expand(&self, prk: &Prk, info: &[&[u8]], out: &mut [u8]) -> Result<(), ProviderError>;
}

/// Ed25519 (RFC 8032 5.1) over raw 32-byte seeds and public keys.
pub trait Ed25519: Send + Sync + Debug {
    /// The signing key whose secret is the 32-byte `seed` (RFC 8032 5.1.5; libsodium's
    /// `crypto_sign_seed_keypair`).
    fn signing_key(&self, seed: &[u8; 32]) -> Result<Box<dyn Ed25519SigningKey>, ProviderError>;

    /// RFC 8032 5.1.7 verification as aws-lc and libsodium do it: `S` must be below `L`, and
    /// the encoding of `[S]B - [k]A` must equal `R` byte for byte (no cofactor). Callers add
    /// any stricter checks on `A` and `R` themselves (keyctl's `crypto::verify` does).
    fn verify(&self, public_key: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool;
}

/// A prepared Ed25519 signing key.
pub trait Ed25519SigningKey: Send + Sync {
    /// The public key `A` (RFC 8032 5.1.5).
    fn public_key(&self) -> [u8; 32];
    /// The deterministic signature of `msg` (RFC 8032 5.1.6).
    fn sign(&self, msg: &[u8]) -> [u8; 64];
}

/// X25519 (RFC 7748 5) on raw 32-byte keys; secret scalars are clamped as the RFC says.
pub trait X25519: Send + Sync + Debug {
    /// `X25519(secret, 9)`: the public key of `secret`.
    fn public_key(&self, secret: &[u8; 32]) -> Result<[u8; 32], ProviderError>;
    /// `X25519(secret, peer)`; an all-zero result is [`ProviderError::LowOrder`] (RFC 7748 6.1
    /// allows the check; libsodium's `crypto_box_beforenm` makes it).
    fn agree(
        &self,
        secret: &[u8; 32],
        peer: &[u8; 32],
    ) -> Result<Zeroizing<[u8; 32]>, ProviderError>;
}

/// HSalsa20, the key derivation inside NaCl's `crypto_box_beforenm` (Bernstein, "Extending
/// the Salsa20 nonce", 2011).
pub trait HSalsa20: Send + Sync + Debug {
    /// `HSalsa20(key, input)` with 20 rounds.
    fn hsalsa20(&self, key: &[u8; 32], input: &[u8; 16]) -> Zeroizing<[u8; 32]>;
}

/// A ChaCha20-Poly1305 AEAD keyed per call, with an `N`-byte nonce: 12 for the IETF
/// construction (RFC 8439), 24 for XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03).
pub trait OneShotAead<const N: usize>: Send + Sync + Debug {
    /// Encrypts `in_out` in place and returns the 16-byte tag.
    fn seal_in_place(
        &self,
        key: &[u8; 32],
        nonce: &[u8; N],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; 16], ProviderError>;

    /// Verifies and decrypts `ciphertext || tag` in place; returns the plaintext length.
    fn open_in_place(
        &self,
        key: &[u8; 32],
        nonce: &[u8; N],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<usize, ProviderError>;
}

/// Randomness handed to a primitive that draws its own: fills the buffer or fails.
pub type FillRandom<'a> = dyn FnMut(&mut [u8]) -> Result<(), ProviderError> + 'a;

/// Length of an ML-KEM-768 encapsulation key (FIPS 203 table 3).
pub const ML_KEM_768_EK_LEN: usize = 1184;
/// Length of an ML-KEM-768 decapsulation key in FIPS 203's expanded form
/// `dk_PKE || ek || H(ek) || z` (FIPS 203 algorithm 16, table 3).
pub const ML_KEM_768_DK_LEN: usize = 2400;
/// Length of an ML-KEM-768 ciphertext (FIPS 203 table 3).
pub const ML_KEM_768_CT_LEN: usize = 1088;

/// ML-KEM-768 (FIPS 203), the standardised form of Kyber768, on raw byte encodings.
///
/// Decapsulation keys are FIPS 203's expanded 2,400-byte form, the only private form aws-lc-rs
/// imports. Randomness: a provider that can take it (RustCrypto) draws FIPS 203's `d || z`
/// (64 bytes, key generation) and `m` (32 bytes, encapsulation) from `rng`, so a fixed `rng`
/// gives `ML-KEM.KeyGen_internal` and `ML-KEM.Encaps_internal`; aws-lc-rs's API takes no
/// caller randomness, and it draws from aws-lc's own DRBG and leaves `rng` untouched.
pub trait MlKem768: Send + Sync + Debug {
    /// A fresh key pair `(dk, ek)` (FIPS 203 algorithm 19, `ML-KEM.KeyGen`).
    fn generate(
        &self,
        rng: &mut FillRandom<'_>,
    ) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), ProviderError>;

    /// `(ciphertext, shared key)` encapsulated to `ek` (FIPS 203 algorithm 20). A key of the
    /// wrong length, or one the backend refuses, is [`ProviderError::KeyRejected`].
    fn encapsulate(
        &self,
        ek: &[u8],
        rng: &mut FillRandom<'_>,
    ) -> Result<(Vec<u8>, Zeroizing<[u8; 32]>), ProviderError>;

    /// The shared key in `ciphertext` (FIPS 203 algorithm 21). A ciphertext of the right
    /// length always decapsulates (implicit rejection: a tampered one gives an unrelated
    /// key); a wrong length is [`ProviderError::InvalidLength`].
    fn decapsulate(
        &self,
        dk: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, ProviderError>;
}

/// Length of an ML-DSA-65 public key, `pkEncode(rho, t1)` (FIPS 204 table 2).
pub const ML_DSA_65_PK_LEN: usize = 1952;
/// Length of an ML-DSA-65 signature, `sigEncode(c~, z, h)` (FIPS 204 table 2).
pub const ML_DSA_65_SIG_LEN: usize = 3309;
/// Length of the seed `xi` of `ML-DSA.KeyGen_internal` (FIPS 204 algorithm 6).
pub const ML_DSA_SEED_LEN: usize = 32;
/// The ML-DSA context string `ctx` of FIPS 204 algorithms 2 and 3 that every provider signs
/// and verifies with: the empty string, the only one aws-lc-rs 1.19's API takes.
pub const ML_DSA_CONTEXT: &[u8] = b"";

/// ML-DSA-65 (FIPS 204), pure (not pre-hashed), with the empty context string.
///
/// Signing is `ML-DSA.Sign(sk, M, ctx = "")` (FIPS 204 algorithm 2), so what is signed is
/// `M' = 0x00 || 0x00 || M` (the domain byte of pure ML-DSA, then `|ctx| = 0`); verification is
/// `ML-DSA.Verify(pk, M, sigma, ctx = "")` (algorithm 3). The empty context is the only one
/// aws-lc-rs 1.19's API signs and verifies with; keyctl separates its uses inside `M` instead
/// (`crypto::hybrid_sig`). Keys are made from the 32-byte seed `xi` by `ML-DSA.KeyGen_internal`
/// (algorithm 6), which both built-in providers take, so an identity is stored as its seed.
///
/// Randomness: signing is hedged. A provider that can take it (RustCrypto) draws the 32-byte
/// `rnd` of algorithm 2 from `rng`, so a fixed `rng` gives `ML-DSA.Sign_internal` (algorithm 7)
/// and a known answer byte for byte; aws-lc-rs's API takes no caller randomness, and it draws
/// `rnd` from aws-lc's own DRBG and leaves `rng` untouched.
pub trait MlDsa65: Send + Sync + Debug {
    /// The signing key whose seed is `seed` (`ML-DSA.KeyGen_internal(xi)`, FIPS 204
    /// algorithm 6).
    fn signing_key(
        &self,
        seed: &[u8; ML_DSA_SEED_LEN],
    ) -> Result<Box<dyn MlDsa65SigningKey>, ProviderError>;

    /// `ML-DSA.Verify(pk, msg, sig, ctx = "")` (FIPS 204 algorithm 3). A public key or
    /// signature of the wrong length, or a signature that does not decode (a malformed hint,
    /// algorithm 27), is `false`.
    fn verify(&self, public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool;
}

/// A prepared ML-DSA-65 signing key; its secret is wiped on drop.
pub trait MlDsa65SigningKey: Send + Sync {
    /// The public key, [`ML_DSA_65_PK_LEN`] bytes (`pkEncode`, FIPS 204 algorithm 22).
    fn public_key(&self) -> &[u8];

    /// `ML-DSA.Sign(sk, msg, ctx = "")` (FIPS 204 algorithm 2), [`ML_DSA_65_SIG_LEN`] bytes;
    /// `rnd` from `rng` where the provider takes it (see [`MlDsa65`]).
    fn sign(&self, msg: &[u8], rng: &mut FillRandom<'_>) -> Result<Vec<u8>, ProviderError>;
}

/// AES-GCM (NIST SP 800-38D) with 12-byte nonces and 16-byte tags.
pub trait AesGcm: Send + Sync + Debug {
    /// A prepared AES-128-GCM (16-byte `key`) or AES-256-GCM (32-byte `key`) key.
    fn key(&self, key: &[u8]) -> Result<GcmKey, ProviderError>;
}

/// A prepared AEAD key: the AES key schedule and GHASH key are computed once, and sealing or
/// opening allocates nothing.
pub trait AeadKey: Send + Sync {
    /// Encrypts `in_out` in place and returns the 16-byte tag.
    fn seal_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; 16], ProviderError>;

    /// [`Self::seal_in_place`] writing the tag into `tag_out`, where a provider can have the
    /// AEAD store it directly (the packet's tag bytes) instead of returning it by value.
    fn seal_in_place_tag_into(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag_out: &mut [u8; 16],
    ) -> Result<(), ProviderError> {
        *tag_out = self.seal_in_place(nonce, aad, in_out)?;
        Ok(())
    }

    /// Verifies and decrypts `ciphertext || tag` in place; returns the plaintext length.
    fn open_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<usize, ProviderError>;
}

/// A prepared AES-GCM key, the one primitive on the dataplane's per-packet path.
///
/// A built-in provider's key is held inline and called directly, so the default AES-GCM seal
/// and open compile to nearly what a direct aws-lc-rs call does: for a 64-byte packet, 1 more
/// instruction per seal and 10 per open than before the provider existed, where a boxed
/// `dyn AeadKey` cost 23 and 57 (2 and 5 %; callgrind, dataplane's `KeyMaterial`). The
/// dataplane seals with [`AeadKey::seal_in_place_tag_into`], so aws-lc writes the tag into the
/// packet itself: returned by value it cost 8 % of a 1200-byte seal (docs/BENCHMARKS.md, "Crate
/// split and crypto provider"). Any other provider's key is an [`AeadKey`] behind
/// [`GcmKey::new`].
pub struct GcmKey(GcmKeyInner);

enum GcmKeyInner {
    #[cfg(feature = "aws-lc-rs")]
    AwsLc(aws_lc_rs::AwsGcmKey),
    // Boxed: RustCrypto's expanded key is several hundred bytes, and it is not the hot default.
    #[cfg(feature = "rust-crypto")]
    RustCrypto(Box<rust_crypto::RustGcmKey>),
    Other(Box<dyn AeadKey>),
}

impl GcmKey {
    /// A key of a provider other than the built-in ones.
    pub fn new(key: Box<dyn AeadKey>) -> Self {
        Self(GcmKeyInner::Other(key))
    }
}

impl AeadKey for GcmKey {
    #[inline]
    fn seal_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; 16], ProviderError> {
        match &self.0 {
            #[cfg(feature = "aws-lc-rs")]
            GcmKeyInner::AwsLc(key) => key.seal_in_place(nonce, aad, in_out),
            #[cfg(feature = "rust-crypto")]
            GcmKeyInner::RustCrypto(key) => key.seal_in_place(nonce, aad, in_out),
            GcmKeyInner::Other(key) => key.seal_in_place(nonce, aad, in_out),
        }
    }

    #[inline]
    fn seal_in_place_tag_into(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag_out: &mut [u8; 16],
    ) -> Result<(), ProviderError> {
        match &self.0 {
            #[cfg(feature = "aws-lc-rs")]
            GcmKeyInner::AwsLc(key) => key.seal_in_place_tag_into(nonce, aad, in_out, tag_out),
            #[cfg(feature = "rust-crypto")]
            GcmKeyInner::RustCrypto(key) => key.seal_in_place_tag_into(nonce, aad, in_out, tag_out),
            GcmKeyInner::Other(key) => key.seal_in_place_tag_into(nonce, aad, in_out, tag_out),
        }
    }

    #[inline]
    fn open_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<usize, ProviderError> {
        match &self.0 {
            #[cfg(feature = "aws-lc-rs")]
            GcmKeyInner::AwsLc(key) => key.open_in_place(nonce, aad, in_out),
            #[cfg(feature = "rust-crypto")]
            GcmKeyInner::RustCrypto(key) => key.open_in_place(nonce, aad, in_out),
            GcmKeyInner::Other(key) => key.open_in_place(nonce, aad, in_out),
        }
    }
}

/// AES in counter mode (NIST SP 800-38A 6.5).
pub trait AesCtr: Send + Sync + Debug {
    /// A prepared AES-128 (16-byte `key`) or AES-256 (32-byte `key`) CTR key.
    fn key(&self, key: &[u8]) -> Result<Box<dyn CtrKey>, ProviderError>;
}

/// A prepared AES-CTR key.
pub trait CtrKey: Send + Sync {
    /// XORs into `data` the keystream that starts at counter block `iv`; the whole block is
    /// incremented as a 128-bit big-endian integer (SP 800-38A B.1), as aws-lc does.
    fn apply_keystream(&self, iv: &[u8; 16], data: &mut [u8]) -> Result<(), ProviderError>;
}

/// The operating system's random source.
pub trait SecureRandom: Send + Sync + Debug {
    /// Fills `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]) -> Result<(), ProviderError>;
}

/// Every primitive keyctl and the dataplane use (see the module docs).
///
/// The fields are public, as in rustls, so that a driver can build its own provider or swap
/// one component of a built-in one:
/// `CryptoProvider { secure_random: &MY_RANDOM, ..rust_crypto::PROVIDER }`.
#[derive(Debug)]
pub struct CryptoProvider {
    /// A short name for logs and test messages.
    pub name: &'static str,
    /// SHA-256 and SHA-512.
    pub hash: &'static dyn Hash,
    /// HMAC-SHA-256 and HMAC-SHA-512.
    pub hmac: &'static dyn Hmac,
    /// HKDF-SHA-256 and HKDF-SHA-512.
    pub hkdf: &'static dyn Hkdf,
    /// Ed25519 signatures.
    pub ed25519: &'static dyn Ed25519,
    /// X25519 key agreement.
    pub x25519: &'static dyn X25519,
    /// HSalsa20.
    pub hsalsa20: &'static dyn HSalsa20,
    /// ChaCha20-Poly1305, IETF (CtE1, whitepaper 3.11).
    pub chacha20_poly1305: &'static dyn OneShotAead<12>,
    /// XChaCha20-Poly1305 (the box, whitepaper 3.5.2).
    pub xchacha20_poly1305: &'static dyn OneShotAead<24>,
    /// ML-KEM-768 (the v4.6 hybrid box).
    pub ml_kem_768: &'static dyn MlKem768,
    /// ML-DSA-65 (hybrid identities, `crypto::hybrid_sig`).
    pub ml_dsa_65: &'static dyn MlDsa65,
    /// AES-GCM (SFrame suites 0x0004 and 0x0005).
    pub aes_gcm: &'static dyn AesGcm,
    /// AES-CTR (the CTR+HMAC SFrame suites).
    pub aes_ctr: &'static dyn AesCtr,
    /// The system random source.
    pub secure_random: &'static dyn SecureRandom,
}

static INSTALLED: OnceLock<&'static CryptoProvider> = OnceLock::new();

#[cfg(feature = "aws-lc-rs")]
const BUILT_IN_DEFAULT: &CryptoProvider = &aws_lc_rs::PROVIDER;
#[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
const BUILT_IN_DEFAULT: &CryptoProvider = &rust_crypto::PROVIDER;

/// The providers compiled into this build, the default first.
const BUILT_IN: &[&CryptoProvider] = &[
    #[cfg(feature = "aws-lc-rs")]
    &aws_lc_rs::PROVIDER,
    #[cfg(feature = "rust-crypto")]
    &rust_crypto::PROVIDER,
];

impl CryptoProvider {
    /// The process default: the provider installed with [`Self::install_default`], else
    /// aws-lc-rs if compiled in, else RustCrypto. One atomic load; it never changes once read
    /// from an installed provider.
    pub fn get_default() -> &'static CryptoProvider {
        INSTALLED.get().copied().unwrap_or(BUILT_IN_DEFAULT)
    }

    /// Makes `self` the process default for everything created from now on. Only the first
    /// install takes: a later one with another provider gets that first one back as the error
    /// (installing the same provider again is fine). Objects already made keep the provider
    /// they were made with.
    pub fn install_default(&'static self) -> Result<(), &'static CryptoProvider> {
        let installed = INSTALLED.get_or_init(|| self);
        if core::ptr::eq(*installed, self) {
            Ok(())
        } else {
            Err(installed)
        }
    }

    /// Every provider compiled into this build, the built-in default first: tests run their
    /// known answers under each.
    pub fn built_in() -> &'static [&'static CryptoProvider] {
        BUILT_IN
    }
}

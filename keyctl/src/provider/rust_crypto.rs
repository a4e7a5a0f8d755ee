//! The pure-Rust provider: the RustCrypto crates (`sha2`, `hmac`, `hkdf`, `aes`, `ctr`,
//! `aes-gcm`, `chacha20poly1305`, `salsa20`, `sha3`, `ml-kem`, `ml-dsa`) and the dalek crates (`ed25519-dalek`,
//! `x25519-dalek`). No C, so it builds for `wasm32-unknown-unknown`.
//!
//! Its random source is `getrandom` on every target but `wasm32-unknown-unknown`, where
//! getrandom needs wasm-bindgen, which its authors ask libraries not to force on their users.
//! There [`PROVIDER`]'s random source fails, and a browser driver installs a provider whose
//! `secure_random` calls `crypto.getRandomValues`
//! (`CryptoProvider { secure_random: &WEB_RANDOM, ..PROVIDER }`). keyctl's state machines take
//! their randomness from the caller in any case.

use aes::cipher::{InnerIvInit, KeyInit, StreamCipher};
use ed25519_dalek::{Signer as _, Verifier as _};
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;
use zeroize::{Zeroize, Zeroizing};

use super::salsa::{
    CHACHA20_POLY1305, RustCryptoHSalsa20, XCHACHA20_POLY1305, open_detached, seal_detached,
};
use super::{
    AeadKey, AesCtr, AesGcm, CryptoProvider, CtrKey, Ed25519, Ed25519SigningKey, FillRandom,
    GcmKey, GcmKeyInner, HashAlg, Hkdf, Hmac, HmacKey, HmacTag, ML_DSA_65_PK_LEN,
    ML_DSA_65_SIG_LEN, ML_DSA_CONTEXT, ML_DSA_SEED_LEN, MlDsa65, MlDsa65SigningKey, MlKem768, Prk,
    ProviderError, SecureRandom, X25519,
};

/// The RustCrypto and dalek crates (see the module docs).
pub static PROVIDER: CryptoProvider = CryptoProvider {
    name: "rust-crypto",
    hash: &Hash,
    hmac: &Hmac_,
    hkdf: &Hkdf_,
    ed25519: &Ed25519_,
    x25519: &X25519_,
    hsalsa20: &RustCryptoHSalsa20,
    chacha20_poly1305: &CHACHA20_POLY1305,
    xchacha20_poly1305: &XCHACHA20_POLY1305,
    ml_kem_768: &MlKem768_,
    ml_dsa_65: &MlDsa65_,
    aes_gcm: &AesGcm_,
    aes_ctr: &AesCtr_,
    secure_random: &OsRandom,
};

#[derive(Debug)]
struct Hash;

impl super::Hash for Hash {
    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        sha2::Sha256::digest(data).into()
    }

    fn sha512(&self, data: &[u8]) -> [u8; 64] {
        sha2::Sha512::digest(data).into()
    }

    fn sha3_256(&self, data: &[u8]) -> [u8; 32] {
        sha3::Sha3_256::digest(data).into()
    }
}

#[derive(Debug)]
struct Hmac_;

/// The keyed state after the inner and outer pads; each signature starts from a copy of it.
enum RustHmacKey {
    Sha256(hmac::Hmac<sha2::Sha256>),
    Sha512(hmac::Hmac<sha2::Sha512>),
}

impl Hmac for Hmac_ {
    fn key(&self, alg: HashAlg, key: &[u8]) -> Box<dyn HmacKey> {
        match alg {
            HashAlg::Sha256 => Box::new(RustHmacKey::Sha256(hmac::Hmac::new(
                &(*block_key::<sha2::Sha256, 64>(key)).into(),
            ))),
            HashAlg::Sha512 => Box::new(RustHmacKey::Sha512(hmac::Hmac::new(
                &(*block_key::<sha2::Sha512, 128>(key)).into(),
            ))),
        }
    }
}

/// The key as HMAC uses it, one hash block of `B` bytes (RFC 2104 2): hashed first if it is
/// longer than a block, then zero-padded. Taking this block, `Hmac::new` has no failure case
/// (`new_from_slice` has none either, but says so only at run time).
fn block_key<D: sha2::Digest, const B: usize>(key: &[u8]) -> Zeroizing<[u8; B]> {
    let mut block = Zeroizing::new([0u8; B]);
    if key.len() > B {
        let digest = D::digest(key);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    block
}

fn mac_parts<M: hmac::Mac + Clone>(key: &M, parts: &[&[u8]]) -> hmac::digest::Output<M> {
    let mut mac = key.clone();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes()
}

impl HmacKey for RustHmacKey {
    fn sign(&self, parts: &[&[u8]]) -> HmacTag {
        match self {
            Self::Sha256(key) => HmacTag {
                alg: HashAlg::Sha256,
                buf: super::padded(&mac_parts(key, parts)),
            },
            Self::Sha512(key) => HmacTag {
                alg: HashAlg::Sha512,
                buf: super::padded(&mac_parts(key, parts)),
            },
        }
    }
}

#[derive(Debug)]
struct Hkdf_;

impl Hkdf for Hkdf_ {
    fn extract(&self, alg: HashAlg, salt: &[u8], ikm: &[u8]) -> Prk {
        match alg {
            HashAlg::Sha256 => {
                let (mut prk, _) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(salt), ikm);
                let out = Prk::padded(alg, &prk);
                prk.as_mut_slice().zeroize();
                out
            }
            HashAlg::Sha512 => {
                let (mut prk, _) = hkdf::Hkdf::<sha2::Sha512>::extract(Some(salt), ikm);
                let out = Prk::padded(alg, &prk);
                prk.as_mut_slice().zeroize();
                out
            }
        }
    }

    fn expand(&self, prk: &Prk, info: &[&[u8]], out: &mut [u8]) -> Result<(), ProviderError> {
        let bytes = prk.expose_secret();
        match prk.algorithm() {
            HashAlg::Sha256 => hkdf::Hkdf::<sha2::Sha256>::from_prk(bytes)
                .map_err(|_| ProviderError::InvalidLength)?
                .expand_multi_info(info, out),
            HashAlg::Sha512 => hkdf::Hkdf::<sha2::Sha512>::from_prk(bytes)
                .map_err(|_| ProviderError::InvalidLength)?
                .expand_multi_info(info, out),
        }
        .map_err(|_| ProviderError::InvalidLength)
    }
}

#[derive(Debug)]
struct Ed25519_;

/// dalek's signing key zeroizes its secret on drop (`zeroize` feature, on by default).
struct DalekSigningKey(ed25519_dalek::SigningKey);

impl Ed25519 for Ed25519_ {
    fn signing_key(&self, seed: &[u8; 32]) -> Result<Box<dyn Ed25519SigningKey>, ProviderError> {
        Ok(Box::new(DalekSigningKey(
            ed25519_dalek::SigningKey::from_bytes(seed),
        )))
    }

    fn verify(&self, public_key: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
        // `verify`, not `verify_strict`: the cofactorless equation with S < L, as aws-lc's
        // ED25519_verify; keyctl adds libsodium's checks on A and R itself.
        ed25519_dalek::VerifyingKey::from_bytes(public_key).is_ok_and(|key| {
            key.verify(msg, &ed25519_dalek::Signature::from_bytes(sig))
                .is_ok()
        })
    }
}

impl Ed25519SigningKey for DalekSigningKey {
    fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }
}

#[derive(Debug)]
struct X25519_;

impl X25519 for X25519_ {
    fn public_key(&self, secret: &[u8; 32]) -> Result<[u8; 32], ProviderError> {
        Ok(x25519_dalek::x25519(
            *Zeroizing::new(*secret),
            x25519_dalek::X25519_BASEPOINT_BYTES,
        ))
    }

    fn agree(
        &self,
        secret: &[u8; 32],
        peer: &[u8; 32],
    ) -> Result<Zeroizing<[u8; 32]>, ProviderError> {
        let shared = Zeroizing::new(x25519_dalek::x25519(*secret, *peer));
        // RFC 7748 6.1: the all-zero output of a low-order point, checked in constant time.
        if bool::from(shared.ct_eq(&[0u8; 32])) {
            return Err(ProviderError::LowOrder);
        }
        Ok(shared)
    }
}

#[derive(Debug)]
struct AesGcm_;

/// The expanded AES key and GHASH key; wiped on drop (`zeroize` feature of aes-gcm and aes).
pub(super) enum RustGcmKey {
    Aes128(aes_gcm::Aes128Gcm),
    Aes256(aes_gcm::Aes256Gcm),
}

impl AesGcm for AesGcm_ {
    fn key(&self, key: &[u8]) -> Result<GcmKey, ProviderError> {
        let key = match key.len() {
            16 => aes_gcm::Aes128Gcm::new_from_slice(key).map(RustGcmKey::Aes128),
            32 => aes_gcm::Aes256Gcm::new_from_slice(key).map(RustGcmKey::Aes256),
            _ => return Err(ProviderError::KeyRejected),
        };
        let key = key.map_err(|_| ProviderError::KeyRejected)?;
        Ok(GcmKey(GcmKeyInner::RustCrypto(Box::new(key))))
    }
}

impl AeadKey for RustGcmKey {
    fn seal_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; 16], ProviderError> {
        match self {
            Self::Aes128(key) => seal_detached(key, nonce, aad, in_out),
            Self::Aes256(key) => seal_detached(key, nonce, aad, in_out),
        }
    }

    fn open_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<usize, ProviderError> {
        match self {
            Self::Aes128(key) => open_detached(key, nonce, aad, in_out),
            Self::Aes256(key) => open_detached(key, nonce, aad, in_out),
        }
    }
}

#[derive(Debug)]
struct AesCtr_;

/// CTR with a 128-bit big-endian counter over block cipher `B`.
type Ctr128Core<B> = ctr::CtrCore<B, ctr::flavors::Ctr128BE>;

/// The expanded encryption key schedule; wiped on drop (`zeroize` feature of aes).
enum RustCtrKey {
    Aes128(aes::Aes128Enc),
    Aes256(aes::Aes256Enc),
}

impl AesCtr for AesCtr_ {
    fn key(&self, key: &[u8]) -> Result<Box<dyn CtrKey>, ProviderError> {
        let key = match key.len() {
            16 => aes::Aes128Enc::new_from_slice(key).map(RustCtrKey::Aes128),
            32 => aes::Aes256Enc::new_from_slice(key).map(RustCtrKey::Aes256),
            _ => return Err(ProviderError::KeyRejected),
        };
        Ok(Box::new(key.map_err(|_| ProviderError::KeyRejected)?))
    }
}

impl CtrKey for RustCtrKey {
    fn apply_keystream(&self, iv: &[u8; 16], data: &mut [u8]) -> Result<(), ProviderError> {
        // Ctr128BE increments the whole block, as aws-lc's AES_ctr128_encrypt does. Each call
        // starts from a copy of the prepared key schedule, not a new key expansion.
        let iv = &(*iv).into();
        match self {
            Self::Aes128(key) => {
                ctr::Ctr128BE::from_core(Ctr128Core::inner_iv_init(key.clone(), iv))
                    .try_apply_keystream(data)
            }
            Self::Aes256(key) => {
                ctr::Ctr128BE::from_core(Ctr128Core::inner_iv_init(key.clone(), iv))
                    .try_apply_keystream(data)
            }
        }
        .map_err(|_| ProviderError::InvalidLength)
    }
}

#[derive(Debug)]
struct OsRandom;

impl SecureRandom for OsRandom {
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    fn fill(&self, dest: &mut [u8]) -> Result<(), ProviderError> {
        getrandom::fill(dest).map_err(|_| ProviderError::Random)
    }

    /// No system random source without wasm-bindgen (see the module docs).
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    fn fill(&self, _dest: &mut [u8]) -> Result<(), ProviderError> {
        Err(ProviderError::Random)
    }
}

/// RustCrypto's `ml-kem`: key generation from `d || z` and encapsulation from `m`, both drawn
/// from `rng` (FIPS 203 algorithms 16 and 17), so a fixed `rng` reproduces known answers.
#[derive(Debug)]
struct MlKem768_;

type MlKemDk = ml_kem::DecapsulationKey<ml_kem::MlKem768>;
type MlKemEk = ml_kem::EncapsulationKey<ml_kem::MlKem768>;

impl MlKem768 for MlKem768_ {
    fn generate(
        &self,
        rng: &mut FillRandom<'_>,
    ) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), ProviderError> {
        let mut seed = ml_kem::Seed::default();
        rng(&mut seed)?;
        let dk = MlKemDk::from_seed(seed);
        seed.zeroize();
        // The expanded form is the one aws-lc-rs imports (see `MlKem768`); ml-kem deprecates it
        // in favour of the seed.
        #[allow(deprecated)]
        let mut expanded = ml_kem::ExpandedKeyEncoding::to_expanded_bytes(&dk);
        let dk_bytes = Zeroizing::new(expanded.to_vec());
        expanded.zeroize();
        let ek = ml_kem::KeyExport::to_bytes(dk.encapsulation_key()).to_vec();
        Ok((dk_bytes, ek))
    }

    fn encapsulate(
        &self,
        ek: &[u8],
        rng: &mut FillRandom<'_>,
    ) -> Result<(Vec<u8>, Zeroizing<[u8; 32]>), ProviderError> {
        let ek = ml_kem::Key::<MlKemEk>::try_from(ek).map_err(|_| ProviderError::KeyRejected)?;
        let ek = MlKemEk::new(&ek).map_err(|_| ProviderError::KeyRejected)?;
        let mut m = ml_kem::B32::default();
        rng(&mut m)?;
        let (ct, mut shared) = ek.encapsulate_deterministic(&m);
        m.zeroize();
        let out = Zeroizing::new(shared.into());
        shared.zeroize();
        Ok((ct.to_vec(), out))
    }

    fn decapsulate(
        &self,
        dk: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, ProviderError> {
        use ml_kem::Decapsulate as _;
        let ct = ml_kem::Ciphertext::<ml_kem::MlKem768>::try_from(ciphertext)
            .map_err(|_| ProviderError::InvalidLength)?;
        let mut expanded = ml_kem::ExpandedDecapsulationKey::<ml_kem::MlKem768>::try_from(dk)
            .map_err(|_| ProviderError::KeyRejected)?;
        #[allow(deprecated)]
        let dk = <MlKemDk as ml_kem::ExpandedKeyEncoding>::from_expanded_bytes(&expanded);
        expanded.zeroize();
        let dk = dk.map_err(|_| ProviderError::KeyRejected)?;
        let mut shared = dk.decapsulate(&ct);
        let out = Zeroizing::new(shared.into());
        shared.zeroize();
        Ok(out)
    }
}

/// RustCrypto's `ml-dsa`: keys from the seed `xi` (FIPS 204 algorithm 6) and hedged signing
/// with `rnd` drawn from `rng` (algorithm 2), so a fixed `rng` reproduces known answers.
#[derive(Debug)]
struct MlDsa65_;

/// The expanded signing key (wiped on drop, `zeroize` feature of ml-dsa) and the encoded
/// public key.
struct RustMlDsaKey {
    key: ml_dsa::ExpandedSigningKey<ml_dsa::MlDsa65>,
    public: Vec<u8>,
}

impl MlDsa65 for MlDsa65_ {
    fn signing_key(
        &self,
        seed: &[u8; ML_DSA_SEED_LEN],
    ) -> Result<Box<dyn MlDsa65SigningKey>, ProviderError> {
        let mut xi = ml_dsa::Seed::from(*seed);
        let key = ml_dsa::ExpandedSigningKey::<ml_dsa::MlDsa65>::from_seed(&xi);
        xi.zeroize();
        let public = key.verifying_key().encode().to_vec();
        Ok(Box::new(RustMlDsaKey { key, public }))
    }

    fn verify(&self, public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        if public_key.len() != ML_DSA_65_PK_LEN || sig.len() != ML_DSA_65_SIG_LEN {
            return false;
        }
        let Ok(pk) = ml_dsa::EncodedVerifyingKey::<ml_dsa::MlDsa65>::try_from(public_key) else {
            return false;
        };
        let Ok(sig) = ml_dsa::Signature::<ml_dsa::MlDsa65>::try_from(sig) else {
            return false;
        };
        ml_dsa::VerifyingKey::<ml_dsa::MlDsa65>::decode(&pk).verify_with_context(
            msg,
            ML_DSA_CONTEXT,
            &sig,
        )
    }
}

/// Hands ml-dsa the 32-byte `rnd` drawn beforehand from the caller's `rng`, once.
struct Rnd(Option<Zeroizing<[u8; 32]>>);

impl rand_core::TryRng for Rnd {
    type Error = ProviderError;

    fn try_next_u32(&mut self) -> Result<u32, ProviderError> {
        Err(ProviderError::Random)
    }

    fn try_next_u64(&mut self) -> Result<u64, ProviderError> {
        Err(ProviderError::Random)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), ProviderError> {
        match self.0.take() {
            Some(rnd) if dst.len() == rnd.len() => {
                dst.copy_from_slice(rnd.as_ref());
                Ok(())
            }
            _ => Err(ProviderError::Random),
        }
    }
}

impl rand_core::TryCryptoRng for Rnd {}

impl MlDsa65SigningKey for RustMlDsaKey {
    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, msg: &[u8], rng: &mut FillRandom<'_>) -> Result<Vec<u8>, ProviderError> {
        let mut rnd = Zeroizing::new([0u8; 32]);
        rng(rnd.as_mut())?;
        // ML-DSA.Sign(sk, M, ctx = ""): M' = 0x00 || 0x00 || M (FIPS 204 algorithm 2).
        let sig = self
            .key
            .sign_randomized(msg, ML_DSA_CONTEXT, &mut Rnd(Some(rnd)))
            .map_err(|_| ProviderError::Random)?;
        Ok(sig.encode().to_vec())
    }
}

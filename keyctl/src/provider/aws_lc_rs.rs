//! The aws-lc-rs provider: aws-lc for everything it has, RustCrypto for HSalsa20 and
//! XChaCha20-Poly1305, which it lacks. The default, and what every benchmark measures.

use aws_lc_rs::{aead, agreement, cipher, digest, hkdf, hmac, kem, rand, signature};
use zeroize::Zeroizing;

use super::salsa::{RustCryptoHSalsa20, XCHACHA20_POLY1305};
use super::{
    AeadKey, AesCtr, AesGcm, CryptoProvider, CtrKey, Ed25519, Ed25519SigningKey, FillRandom,
    GcmKey, GcmKeyInner, HashAlg, Hkdf, Hmac, HmacKey, HmacTag, ML_DSA_65_SIG_LEN, ML_DSA_SEED_LEN,
    MlDsa65, MlDsa65SigningKey, MlKem768, OneShotAead, Prk, ProviderError, SecureRandom, X25519,
};

/// aws-lc through aws-lc-rs (see the module docs).
pub static PROVIDER: CryptoProvider = CryptoProvider {
    name: "aws-lc-rs",
    hash: &Hash,
    hmac: &Hmac_,
    hkdf: &Hkdf_,
    ed25519: &Ed25519_,
    x25519: &X25519_,
    hsalsa20: &RustCryptoHSalsa20,
    chacha20_poly1305: &ChaCha20Poly1305,
    xchacha20_poly1305: &XCHACHA20_POLY1305,
    ml_kem_768: &MlKem768_,
    ml_dsa_65: &MlDsa65_,
    aes_gcm: &AesGcm_,
    aes_ctr: &AesCtr_,
    secure_random: &SystemRandom,
};

fn hmac_algorithm(alg: HashAlg) -> hmac::Algorithm {
    match alg {
        HashAlg::Sha256 => hmac::HMAC_SHA256,
        HashAlg::Sha512 => hmac::HMAC_SHA512,
    }
}

/// Copies a fixed-size output out of an aws-lc-rs result; the lengths are the algorithm's.
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

#[derive(Debug)]
struct Hash;

impl super::Hash for Hash {
    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        array(digest::digest(&digest::SHA256, data).as_ref())
    }

    fn sha512(&self, data: &[u8]) -> [u8; 64] {
        array(digest::digest(&digest::SHA512, data).as_ref())
    }

    fn sha3_256(&self, data: &[u8]) -> [u8; 32] {
        array(digest::digest(&digest::SHA3_256, data).as_ref())
    }
}

#[derive(Debug)]
struct Hmac_;

struct AwsHmacKey(hmac::Key, HashAlg);

impl Hmac for Hmac_ {
    fn key(&self, alg: HashAlg, key: &[u8]) -> Box<dyn HmacKey> {
        Box::new(AwsHmacKey(hmac::Key::new(hmac_algorithm(alg), key), alg))
    }
}

impl HmacKey for AwsHmacKey {
    fn sign(&self, parts: &[&[u8]]) -> HmacTag {
        // The context copies the prepared pads; no allocation.
        let mut ctx = hmac::Context::with_key(&self.0);
        for part in parts {
            ctx.update(part);
        }
        let alg = self.1;
        HmacTag {
            alg,
            buf: super::padded(ctx.sign().as_ref()),
        }
    }
}

#[derive(Debug)]
struct Hkdf_;

/// Output length request for aws-lc-rs's HKDF-Expand.
struct OutLen(usize);

impl hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

impl Hkdf for Hkdf_ {
    fn extract(&self, alg: HashAlg, salt: &[u8], ikm: &[u8]) -> Prk {
        // aws-lc-rs's own Prk is opaque, so extract is written as RFC 5869 2.2 defines it:
        // PRK = HMAC-Hash(salt, IKM).
        let tag = hmac::sign(&hmac::Key::new(hmac_algorithm(alg), salt), ikm);
        Prk::padded(alg, tag.as_ref())
    }

    fn expand(&self, prk: &Prk, info: &[&[u8]], out: &mut [u8]) -> Result<(), ProviderError> {
        let alg = match prk.algorithm() {
            HashAlg::Sha256 => hkdf::HKDF_SHA256,
            HashAlg::Sha512 => hkdf::HKDF_SHA512,
        };
        hkdf::Prk::new_less_safe(alg, prk.expose_secret())
            .expand(info, OutLen(out.len()))
            .and_then(|okm| okm.fill(out))
            .map_err(|_| ProviderError::InvalidLength)
    }
}

#[derive(Debug)]
struct Ed25519_;

struct AwsEd25519Key(signature::Ed25519KeyPair);

impl Ed25519 for Ed25519_ {
    fn signing_key(&self, seed: &[u8; 32]) -> Result<Box<dyn Ed25519SigningKey>, ProviderError> {
        // "unchecked": there is no public key to check the seed against.
        let pair = signature::Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| ProviderError::KeyRejected)?;
        Ok(Box::new(AwsEd25519Key(pair)))
    }

    fn verify(&self, public_key: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
        signature::UnparsedPublicKey::new(&signature::ED25519, public_key)
            .verify(msg, sig)
            .is_ok()
    }
}

impl Ed25519SigningKey for AwsEd25519Key {
    fn public_key(&self) -> [u8; 32] {
        use signature::KeyPair as _;
        array(self.0.public_key().as_ref())
    }

    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        array(self.0.sign(msg).as_ref())
    }
}

#[derive(Debug)]
struct X25519_;

fn x25519_private(secret: &[u8; 32]) -> Result<agreement::PrivateKey, ProviderError> {
    agreement::PrivateKey::from_private_key(&agreement::X25519, secret)
        .map_err(|_| ProviderError::KeyRejected)
}

impl X25519 for X25519_ {
    fn public_key(&self, secret: &[u8; 32]) -> Result<[u8; 32], ProviderError> {
        let public = x25519_private(secret)?
            .compute_public_key()
            .map_err(|_| ProviderError::KeyRejected)?;
        Ok(array(public.as_ref()))
    }

    fn agree(
        &self,
        secret: &[u8; 32],
        peer: &[u8; 32],
    ) -> Result<Zeroizing<[u8; 32]>, ProviderError> {
        let private = x25519_private(secret)?;
        let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, peer);
        // aws-lc's X25519 fails on an all-zero output, which is exactly the low-order case.
        let shared = agreement::agree(&private, peer, ProviderError::LowOrder, |s| {
            Ok(Zeroizing::new(array::<32>(s)))
        })?;
        if shared.iter().all(|&b| b == 0) {
            return Err(ProviderError::LowOrder);
        }
        Ok(shared)
    }
}

#[derive(Debug)]
struct ChaCha20Poly1305;

fn chacha_key(key: &[u8; 32]) -> Result<aead::LessSafeKey, ProviderError> {
    let unbound = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, key)
        .map_err(|_| ProviderError::KeyRejected)?;
    Ok(aead::LessSafeKey::new(unbound))
}

impl OneShotAead<12> for ChaCha20Poly1305 {
    fn seal_in_place(
        &self,
        key: &[u8; 32],
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; 16], ProviderError> {
        gcm_like_seal(&chacha_key(key)?, nonce, aad, in_out)
    }

    fn open_in_place(
        &self,
        key: &[u8; 32],
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<usize, ProviderError> {
        gcm_like_open(&chacha_key(key)?, nonce, aad, in_out)
    }
}

/// Seal with aws-lc-rs's AEAD API, common to AES-GCM and ChaCha20-Poly1305.
fn gcm_like_seal(
    key: &aead::LessSafeKey,
    nonce: &[u8; 12],
    aad: &[u8],
    in_out: &mut [u8],
) -> Result<[u8; 16], ProviderError> {
    let tag = key
        .seal_in_place_separate_tag(
            aead::Nonce::assume_unique_for_key(*nonce),
            aead::Aad::from(aad),
            in_out,
        )
        .map_err(|_| ProviderError::InvalidLength)?;
    // Both AEADs have 16-byte tags: a fixed-size copy compiles to two stores, not a call.
    let tag: &[u8; 16] = tag
        .as_ref()
        .try_into()
        .map_err(|_| ProviderError::InvalidLength)?;
    Ok(*tag)
}

/// Open with aws-lc-rs's AEAD API; `in_out` is `ciphertext || tag`. Inlined: on the
/// per-packet path an out-of-line copy cost some 50 instructions, 4 % of a 64-byte open.
#[inline(always)]
fn gcm_like_open(
    key: &aead::LessSafeKey,
    nonce: &[u8; 12],
    aad: &[u8],
    in_out: &mut [u8],
) -> Result<usize, ProviderError> {
    if in_out.len() < 16 {
        return Err(ProviderError::InvalidLength);
    }
    let plain = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key(*nonce),
            aead::Aad::from(aad),
            in_out,
        )
        .map_err(|_| ProviderError::BadTag)?;
    Ok(plain.len())
}

#[derive(Debug)]
struct AesGcm_;

/// aws-lc frees (and, as OPENSSL_free does, cleanses) the expanded key on drop.
pub(super) struct AwsGcmKey(aead::LessSafeKey);

impl AesGcm for AesGcm_ {
    fn key(&self, key: &[u8]) -> Result<GcmKey, ProviderError> {
        let alg = match key.len() {
            16 => &aead::AES_128_GCM,
            32 => &aead::AES_256_GCM,
            _ => return Err(ProviderError::KeyRejected),
        };
        let unbound = aead::UnboundKey::new(alg, key).map_err(|_| ProviderError::KeyRejected)?;
        Ok(GcmKey(GcmKeyInner::AwsLc(AwsGcmKey(
            aead::LessSafeKey::new(unbound),
        ))))
    }
}

impl AeadKey for AwsGcmKey {
    #[inline]
    fn seal_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; 16], ProviderError> {
        gcm_like_seal(&self.0, nonce, aad, in_out)
    }

    #[inline]
    fn seal_in_place_tag_into(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag_out: &mut [u8; 16],
    ) -> Result<(), ProviderError> {
        self.0
            .seal_in_place_scatter(
                aead::Nonce::assume_unique_for_key(*nonce),
                aead::Aad::from(aad),
                in_out,
                &[],
                tag_out,
            )
            .map_err(|_| ProviderError::InvalidLength)
    }

    #[inline]
    fn open_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<usize, ProviderError> {
        gcm_like_open(&self.0, nonce, aad, in_out)
    }
}

#[derive(Debug)]
struct AesCtr_;

struct AwsCtrKey(cipher::EncryptingKey);

impl AesCtr for AesCtr_ {
    fn key(&self, key: &[u8]) -> Result<Box<dyn CtrKey>, ProviderError> {
        let alg = match key.len() {
            16 => &cipher::AES_128,
            32 => &cipher::AES_256,
            _ => return Err(ProviderError::KeyRejected),
        };
        let unbound =
            cipher::UnboundCipherKey::new(alg, key).map_err(|_| ProviderError::KeyRejected)?;
        let key = cipher::EncryptingKey::ctr(unbound).map_err(|_| ProviderError::KeyRejected)?;
        Ok(Box::new(AwsCtrKey(key)))
    }
}

impl CtrKey for AwsCtrKey {
    fn apply_keystream(&self, iv: &[u8; 16], data: &mut [u8]) -> Result<(), ProviderError> {
        // CTR decryption is the same keystream XOR, so the encrypting key serves both ways.
        self.0
            .less_safe_encrypt(data, cipher::EncryptionContext::Iv128((*iv).into()))
            .map(|_| ())
            .map_err(|_| ProviderError::InvalidLength)
    }
}

#[derive(Debug)]
struct SystemRandom;

impl SecureRandom for SystemRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), ProviderError> {
        rand::fill(dest).map_err(|_| ProviderError::Random)
    }
}

/// aws-lc's ML-KEM-768. Its API takes no caller randomness: key generation and encapsulation
/// draw from aws-lc's DRBG, and `rng` is not called (see [`MlKem768`]).
#[derive(Debug)]
struct MlKem768_;

impl MlKem768 for MlKem768_ {
    fn generate(
        &self,
        _rng: &mut FillRandom<'_>,
    ) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), ProviderError> {
        let dk =
            kem::DecapsulationKey::generate(&kem::ML_KEM_768).map_err(|_| ProviderError::Random)?;
        let dk_bytes = dk.key_bytes().map_err(|_| ProviderError::KeyRejected)?;
        let ek = dk
            .encapsulation_key()
            .and_then(|ek| ek.key_bytes())
            .map_err(|_| ProviderError::KeyRejected)?;
        Ok((
            Zeroizing::new(dk_bytes.as_ref().to_vec()),
            ek.as_ref().to_vec(),
        ))
    }

    fn encapsulate(
        &self,
        ek: &[u8],
        _rng: &mut FillRandom<'_>,
    ) -> Result<(Vec<u8>, Zeroizing<[u8; 32]>), ProviderError> {
        let ek = kem::EncapsulationKey::new(&kem::ML_KEM_768, ek)
            .map_err(|_| ProviderError::KeyRejected)?;
        let (ct, shared) = ek.encapsulate().map_err(|_| ProviderError::KeyRejected)?;
        let shared: [u8; 32] = shared
            .as_ref()
            .try_into()
            .map_err(|_| ProviderError::InvalidLength)?;
        Ok((ct.as_ref().to_vec(), Zeroizing::new(shared)))
    }

    fn decapsulate(
        &self,
        dk: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, ProviderError> {
        if ciphertext.len() != super::ML_KEM_768_CT_LEN {
            return Err(ProviderError::InvalidLength);
        }
        let dk = kem::DecapsulationKey::new(&kem::ML_KEM_768, dk)
            .map_err(|_| ProviderError::KeyRejected)?;
        let shared = dk
            .decapsulate(kem::Ciphertext::from(ciphertext))
            .map_err(|_| ProviderError::KeyRejected)?;
        let shared: [u8; 32] = shared
            .as_ref()
            .try_into()
            .map_err(|_| ProviderError::InvalidLength)?;
        Ok(Zeroizing::new(shared))
    }
}

/// aws-lc's ML-DSA-65 (`signature::ML_DSA_65_SIGNING`, stable since aws-lc-rs 1.18). Its API
/// signs with the empty context and hedges with aws-lc's own DRBG: `rng` is not called (see
/// [`MlDsa65`]).
#[derive(Debug)]
struct MlDsa65_;

// aws-lc-rs 1.19 has no context parameter: what it signs and verifies is ML-DSA with ctx = "".
const _: () = assert!(super::ML_DSA_CONTEXT.is_empty());

/// aws-lc frees the key with `EVP_PKEY_free`, which cleanses the secret (`OPENSSL_free`).
struct AwsMlDsaKey(signature::PqdsaKeyPair);

impl MlDsa65 for MlDsa65_ {
    fn signing_key(
        &self,
        seed: &[u8; ML_DSA_SEED_LEN],
    ) -> Result<Box<dyn MlDsa65SigningKey>, ProviderError> {
        let pair = signature::PqdsaKeyPair::from_seed(&signature::ML_DSA_65_SIGNING, seed)
            .map_err(|_| ProviderError::KeyRejected)?;
        Ok(Box::new(AwsMlDsaKey(pair)))
    }

    fn verify(&self, public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        if public_key.len() != super::ML_DSA_65_PK_LEN || sig.len() != ML_DSA_65_SIG_LEN {
            return false;
        }
        signature::UnparsedPublicKey::new(&signature::ML_DSA_65, public_key)
            .verify(msg, sig)
            .is_ok()
    }
}

impl MlDsa65SigningKey for AwsMlDsaKey {
    fn public_key(&self) -> &[u8] {
        use signature::KeyPair as _;
        self.0.public_key().as_ref()
    }

    fn sign(&self, msg: &[u8], _rng: &mut FillRandom<'_>) -> Result<Vec<u8>, ProviderError> {
        let mut sig = vec![0u8; ML_DSA_65_SIG_LEN];
        let len = self
            .0
            .sign(msg, &mut sig)
            .map_err(|_| ProviderError::KeyRejected)?;
        if len != ML_DSA_65_SIG_LEN {
            return Err(ProviderError::InvalidLength);
        }
        Ok(sig)
    }
}

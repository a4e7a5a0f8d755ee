//! Per-KID key material: derivation (RFC 9605 4.4.2) and the AEAD operations of each suite.

use aws_lc_rs::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::hkdf;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::ctr_hmac::CtrHmacKey;
use super::suite::{Construction, Hash, NONCE_LEN};
use super::{CipherSuite, Error};

/// Output length request for aws-lc-rs's HKDF-Expand.
struct OutLen(usize);

impl hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

fn hkdf_algorithm(hash: Hash) -> hkdf::Algorithm {
    match hash {
        Hash::Sha256 => hkdf::HKDF_SHA256,
        Hash::Sha512 => hkdf::HKDF_SHA512,
    }
}

/// `label || u64be(KID) || u16be(suite)` as RFC 9605 4.4.2 builds both expand labels.
fn label(prefix: &[u8], kid: u64, suite: CipherSuite) -> Vec<u8> {
    let mut label = Vec::with_capacity(prefix.len() + 10);
    label.extend_from_slice(prefix);
    label.extend_from_slice(&kid.to_be_bytes());
    label.extend_from_slice(&suite.id().to_be_bytes());
    label
}

/// The derived `sframe_key` and `sframe_salt` for one KID, zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DerivedSecrets {
    /// `sframe_key`, `Nk` bytes.
    pub key: Vec<u8>,
    /// `sframe_salt`, `Nn` bytes.
    pub salt: [u8; NONCE_LEN],
}

impl core::fmt::Debug for DerivedSecrets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("DerivedSecrets(..)")
    }
}

/// RFC 9605 4.4.2:
/// `sframe_secret = HKDF-Extract("", base_key)`,
/// `sframe_key = HKDF-Expand(sframe_secret, "SFrame 1.0 Secret key " || KID || suite, Nk)`,
/// `sframe_salt = HKDF-Expand(sframe_secret, "SFrame 1.0 Secret salt " || KID || suite, Nn)`.
pub fn derive_secrets(
    suite: CipherSuite,
    kid: u64,
    base_key: &[u8],
) -> Result<DerivedSecrets, Error> {
    let prk = hkdf::Salt::new(hkdf_algorithm(suite.hash()), &[]).extract(base_key);
    let key_label = label(b"SFrame 1.0 Secret key ", kid, suite);
    let salt_label = label(b"SFrame 1.0 Secret salt ", kid, suite);
    let mut secrets = DerivedSecrets {
        key: vec![0; suite.key_len()],
        salt: [0; NONCE_LEN],
    };
    prk.expand(&[&key_label], OutLen(suite.key_len()))
        .and_then(|okm| okm.fill(&mut secrets.key))
        .map_err(|_| Error::Crypto)?;
    prk.expand(&[&salt_label], OutLen(NONCE_LEN))
        .and_then(|okm| okm.fill(&mut secrets.salt))
        .map_err(|_| Error::Crypto)?;
    Ok(secrets)
}

/// The AEAD of one suite with its key prepared for repeated use.
enum Aead {
    // aws-lc frees (and, as OPENSSL_free does, cleanses) the expanded key on drop.
    Gcm(LessSafeKey),
    // Boxed: the CTR+HMAC keys are larger, and the GCM variant is the hot one.
    CtrHmac(Box<CtrHmacKey>),
}

/// Prepared key material for one KID: the suite's AEAD keyed with `sframe_key`, and the salt.
pub struct KeyMaterial {
    suite: CipherSuite,
    aead: Aead,
    salt: Zeroizing<[u8; NONCE_LEN]>,
}

impl core::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl KeyMaterial {
    /// Derives and prepares the keys of `kid` from `base_key` (RFC 9605 4.4.2).
    pub fn derive(suite: CipherSuite, kid: u64, base_key: &[u8]) -> Result<Self, Error> {
        let secrets = derive_secrets(suite, kid, base_key)?;
        Self::from_secrets(suite, &secrets)
    }

    /// Prepares already derived `sframe_key` and `sframe_salt`.
    pub fn from_secrets(suite: CipherSuite, secrets: &DerivedSecrets) -> Result<Self, Error> {
        if secrets.key.len() != suite.key_len() {
            return Err(Error::Crypto);
        }
        let aead = match suite.construction() {
            Construction::Gcm => {
                let alg = if suite.aes_key_len() == 16 {
                    &AES_128_GCM
                } else {
                    &AES_256_GCM
                };
                let key = UnboundKey::new(alg, &secrets.key).map_err(|_| Error::Crypto)?;
                Aead::Gcm(LessSafeKey::new(key))
            }
            Construction::CtrHmac => Aead::CtrHmac(Box::new(CtrHmacKey::new(suite, &secrets.key)?)),
        };
        Ok(Self {
            suite,
            aead,
            salt: Zeroizing::new(secrets.salt),
        })
    }

    /// The suite this material belongs to.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// RFC 9605 4.4.3: `nonce = sframe_salt XOR encode_big_endian(CTR, Nn)`.
    pub fn nonce(&self, ctr: u64) -> [u8; NONCE_LEN] {
        let mut nonce = *self.salt;
        for (n, c) in nonce[NONCE_LEN - 8..].iter_mut().zip(ctr.to_be_bytes()) {
            *n ^= c;
        }
        nonce
    }

    /// Encrypts `in_out[..len - Nt]` in place and writes the tag into the last `Nt` bytes.
    ///
    /// The caller guarantees `in_out.len() >= Nt`.
    pub fn seal_in_place(&self, ctr: u64, aad: &[u8], in_out: &mut [u8]) -> Result<(), Error> {
        let tag_len = self.suite.tag_len();
        let pt_len = in_out
            .len()
            .checked_sub(tag_len)
            .ok_or(Error::BufferTooSmall {
                needed: tag_len,
                got: in_out.len(),
            })?;
        let nonce = self.nonce(ctr);
        let (payload, tag_out) = in_out.split_at_mut(pt_len);
        match &self.aead {
            Aead::Gcm(key) => {
                let tag = key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(aad),
                        payload,
                    )
                    .map_err(|_| Error::Crypto)?;
                // GCM tags are 16 bytes: a fixed-size copy compiles to two stores, not a call.
                let tag_out: &mut [u8; 16] = tag_out.try_into().map_err(|_| Error::Crypto)?;
                let tag: &[u8; 16] = tag.as_ref().try_into().map_err(|_| Error::Crypto)?;
                *tag_out = *tag;
            }
            Aead::CtrHmac(key) => key.seal(&nonce, aad, payload, tag_out)?,
        }
        Ok(())
    }

    /// Verifies and decrypts `ciphertext || tag` in place, returning the plaintext length.
    pub fn open_in_place(&self, ctr: u64, aad: &[u8], in_out: &mut [u8]) -> Result<usize, Error> {
        let tag_len = self.suite.tag_len();
        let ct_len = in_out
            .len()
            .checked_sub(tag_len)
            .ok_or(Error::CiphertextTooShort)?;
        let nonce = self.nonce(ctr);
        match &self.aead {
            Aead::Gcm(key) => {
                key.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), in_out)
                    .map_err(|_| Error::AuthenticationFailed)?;
            }
            Aead::CtrHmac(key) => {
                let (payload, tag) = in_out.split_at_mut(ct_len);
                key.open(&nonce, aad, payload, tag)?;
            }
        }
        Ok(ct_len)
    }
}

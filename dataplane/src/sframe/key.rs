//! Per-KID key material: derivation (RFC 9605 4.4.2) and the AEAD operations of each suite.

use keyctl::provider::{AeadKey, CryptoProvider, GcmKey};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::ctr_hmac::CtrHmacKey;
use super::suite::{Construction, NONCE_LEN};
use super::{CipherSuite, Error};

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
/// `sframe_salt = HKDF-Expand(sframe_secret, "SFrame 1.0 Secret salt " || KID || suite, Nn)`,
/// with the default crypto provider.
pub fn derive_secrets(
    suite: CipherSuite,
    kid: u64,
    base_key: &[u8],
) -> Result<DerivedSecrets, Error> {
    derive_secrets_with_provider(CryptoProvider::get_default(), suite, kid, base_key)
}

/// [`derive_secrets`] with `provider`'s HKDF.
pub fn derive_secrets_with_provider(
    provider: &CryptoProvider,
    suite: CipherSuite,
    kid: u64,
    base_key: &[u8],
) -> Result<DerivedSecrets, Error> {
    let prk = provider.hkdf.extract(suite.hash(), &[], base_key);
    let key_label = label(b"SFrame 1.0 Secret key ", kid, suite);
    let salt_label = label(b"SFrame 1.0 Secret salt ", kid, suite);
    let mut secrets = DerivedSecrets {
        key: vec![0; suite.key_len()],
        salt: [0; NONCE_LEN],
    };
    provider
        .hkdf
        .expand(&prk, &[&key_label], &mut secrets.key)
        .map_err(|_| Error::Crypto)?;
    provider
        .hkdf
        .expand(&prk, &[&salt_label], &mut secrets.salt)
        .map_err(|_| Error::Crypto)?;
    Ok(secrets)
}

/// The AEAD of one suite with its key prepared for repeated use.
enum Aead {
    // The provider's prepared key, which wipes its key schedule on drop (aws-lc cleanses it
    // as OPENSSL_free does; RustCrypto's `zeroize` feature). A built-in provider's is called
    // directly (see `GcmKey`); no key setup per packet.
    Gcm(GcmKey),
    CtrHmac(CtrHmacKey),
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
    /// Derives and prepares the keys of `kid` from `base_key` (RFC 9605 4.4.2) with the
    /// default crypto provider.
    pub fn derive(suite: CipherSuite, kid: u64, base_key: &[u8]) -> Result<Self, Error> {
        Self::derive_with_provider(CryptoProvider::get_default(), suite, kid, base_key)
    }

    /// [`Self::derive`] with `provider`, which then seals and opens under the key.
    pub fn derive_with_provider(
        provider: &CryptoProvider,
        suite: CipherSuite,
        kid: u64,
        base_key: &[u8],
    ) -> Result<Self, Error> {
        let secrets = derive_secrets_with_provider(provider, suite, kid, base_key)?;
        Self::from_secrets_with_provider(provider, suite, &secrets)
    }

    /// Prepares already derived `sframe_key` and `sframe_salt` with the default provider.
    pub fn from_secrets(suite: CipherSuite, secrets: &DerivedSecrets) -> Result<Self, Error> {
        Self::from_secrets_with_provider(CryptoProvider::get_default(), suite, secrets)
    }

    /// [`Self::from_secrets`] with `provider`.
    pub fn from_secrets_with_provider(
        provider: &CryptoProvider,
        suite: CipherSuite,
        secrets: &DerivedSecrets,
    ) -> Result<Self, Error> {
        if secrets.key.len() != suite.key_len() {
            return Err(Error::Crypto);
        }
        let aead = match suite.construction() {
            // Nk is the AES key length for GCM: 16 for 0x0004, 32 for 0x0005.
            Construction::Gcm => Aead::Gcm(
                provider
                    .aes_gcm
                    .key(&secrets.key)
                    .map_err(|_| Error::Crypto)?,
            ),
            Construction::CtrHmac => Aead::CtrHmac(CtrHmacKey::new(provider, suite, &secrets.key)?),
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
                let tag_out: &mut [u8; 16] = tag_out.try_into().map_err(|_| Error::Crypto)?;
                key.seal_in_place_tag_into(&nonce, aad, payload, tag_out)
                    .map_err(|_| Error::Crypto)?;
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
                key.open_in_place(&nonce, aad, in_out)
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

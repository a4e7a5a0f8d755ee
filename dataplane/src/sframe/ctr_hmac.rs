//! The AES-CTR + HMAC AEAD of RFC 9605 4.5.1 (suites 0x0001-0x0003 and 0x0006-0x0008).

use aws_lc_rs::cipher::{
    AES_128, AES_256, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext,
    UnboundCipherKey,
};
use aws_lc_rs::hmac;
use subtle::ConstantTimeEq;

use super::suite::{Hash, NONCE_LEN};
use super::{CipherSuite, Error};

/// `enc_key` prepared for both directions plus `auth_key`.
pub(crate) struct CtrHmacKey {
    encrypt: EncryptingKey,
    decrypt: DecryptingKey,
    auth: hmac::Key,
    tag_len: usize,
}

impl CtrHmacKey {
    /// RFC 9605 4.5.1 `derive_subkeys`: `enc_key = sframe_key[..Nka]`, `auth_key = sframe_key[Nka..]`.
    pub(crate) fn new(suite: CipherSuite, sframe_key: &[u8]) -> Result<Self, Error> {
        let (enc_key, auth_key) = sframe_key.split_at(suite.aes_key_len());
        let (aes, hmac_alg) = match suite.hash() {
            Hash::Sha256 => (&AES_128, hmac::HMAC_SHA256),
            Hash::Sha512 => (&AES_256, hmac::HMAC_SHA512),
        };
        let unbound = || UnboundCipherKey::new(aes, enc_key).map_err(|_| Error::Crypto);
        Ok(Self {
            encrypt: EncryptingKey::ctr(unbound()?).map_err(|_| Error::Crypto)?,
            decrypt: DecryptingKey::ctr(unbound()?).map_err(|_| Error::Crypto)?,
            auth: hmac::Key::new(hmac_alg, auth_key),
            tag_len: suite.tag_len(),
        })
    }

    /// RFC 9605 4.5.1: the counter block is the nonce followed by a 32-bit zero block counter.
    fn initial_counter(nonce: &[u8; NONCE_LEN]) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..NONCE_LEN].copy_from_slice(nonce);
        iv
    }

    /// RFC 9605 4.5.1 `compute_tag`: HMAC over `len(aad) || len(ct) || Nt` (each u64 BE),
    /// then nonce, AAD and ciphertext, truncated to `Nt`.
    fn tag(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], ct: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.auth);
        ctx.update(&(aad.len() as u64).to_be_bytes());
        ctx.update(&(ct.len() as u64).to_be_bytes());
        ctx.update(&(self.tag_len as u64).to_be_bytes());
        ctx.update(nonce);
        ctx.update(aad);
        ctx.update(ct);
        ctx.sign()
    }

    pub(crate) fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        payload: &mut [u8],
        tag_out: &mut [u8],
    ) -> Result<(), Error> {
        let iv = Self::initial_counter(nonce);
        self.encrypt
            .less_safe_encrypt(payload, EncryptionContext::Iv128(iv.into()))
            .map_err(|_| Error::Crypto)?;
        let tag = self.tag(nonce, aad, payload);
        tag_out.copy_from_slice(&tag.as_ref()[..self.tag_len]);
        Ok(())
    }

    pub(crate) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        payload: &mut [u8],
        tag: &[u8],
    ) -> Result<(), Error> {
        // Authenticate before decrypting, comparing in constant time (RFC 9605 4.5.1).
        let expected = self.tag(nonce, aad, payload);
        if !bool::from(expected.as_ref()[..self.tag_len].ct_eq(tag)) {
            return Err(Error::AuthenticationFailed);
        }
        let iv = Self::initial_counter(nonce);
        self.decrypt
            .decrypt(payload, DecryptionContext::Iv128(iv.into()))
            .map_err(|_| Error::Crypto)?;
        Ok(())
    }
}

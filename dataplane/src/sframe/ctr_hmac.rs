//! The AES-CTR + HMAC AEAD of RFC 9605 4.5.1 (suites 0x0001-0x0003 and 0x0006-0x0008).

use keyctl::provider::{CryptoProvider, CtrKey, HmacKey, HmacTag};
use subtle::ConstantTimeEq;

use super::suite::NONCE_LEN;
use super::{CipherSuite, Error};

/// `enc_key` and `auth_key`, each prepared by the provider (which wipes them on drop).
pub(crate) struct CtrHmacKey {
    enc: Box<dyn CtrKey>,
    auth: Box<dyn HmacKey>,
    tag_len: usize,
}

impl CtrHmacKey {
    /// RFC 9605 4.5.1 `derive_subkeys`: `enc_key = sframe_key[..Nka]`, `auth_key = sframe_key[Nka..]`;
    /// AES-128 with HMAC-SHA256, AES-256 with HMAC-SHA512.
    pub(crate) fn new(
        provider: &CryptoProvider,
        suite: CipherSuite,
        sframe_key: &[u8],
    ) -> Result<Self, Error> {
        let (enc_key, auth_key) = sframe_key.split_at(suite.aes_key_len());
        Ok(Self {
            enc: provider.aes_ctr.key(enc_key).map_err(|_| Error::Crypto)?,
            auth: provider.hmac.key(suite.hash(), auth_key),
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
    fn tag(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], ct: &[u8]) -> HmacTag {
        self.auth.sign(&[
            &(aad.len() as u64).to_be_bytes(),
            &(ct.len() as u64).to_be_bytes(),
            &(self.tag_len as u64).to_be_bytes(),
            nonce,
            aad,
            ct,
        ])
    }

    pub(crate) fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        payload: &mut [u8],
        tag_out: &mut [u8],
    ) -> Result<(), Error> {
        self.enc
            .apply_keystream(&Self::initial_counter(nonce), payload)
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
        self.enc
            .apply_keystream(&Self::initial_counter(nonce), payload)
            .map_err(|_| Error::Crypto)?;
        Ok(())
    }
}

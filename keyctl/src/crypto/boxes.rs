//! `Box.Enc` / `Box.Dec` (whitepaper 3.5.2).

use core::fmt;

use rand_core::TryCryptoRng;
use zeroize::Zeroizing;

use super::CryptoError;
use super::keys::BoxKeyPair;
use crate::provider::{CryptoProvider, HashAlg, ProviderError};

/// Length of the XChaCha20 nonce appended to every box ciphertext.
pub const BOX_NONCE_LEN: usize = 24;
/// Bytes a box adds to its message: the Poly1305 tag and the nonce.
pub const BOX_OVERHEAD: usize = TAG_LEN + BOX_NONCE_LEN;

pub(super) const TAG_LEN: usize = 16;

/// A fresh box key pair from the caller's randomness (`Box.KeyGen`, `crypto_box_keypair`).
pub fn box_keypair<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<BoxKeyPair, CryptoError> {
    BoxKeyPair::generate(rng)
}

/// `crypto_box_beforenm(pk, sk)`: `HSalsa20(key = X25519(sk, pk), input = 0^16)`.
///
/// Like libsodium, refuses an all-zero X25519 output (a low-order `pk`).
pub(super) fn beforenm(
    provider: &CryptoProvider,
    pk: &[u8; 32],
    sk: &[u8; 32],
) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let shared = provider.x25519.agree(sk, pk).map_err(|e| match e {
        ProviderError::LowOrder => CryptoError::LowOrderPublicKey,
        _ => CryptoError::KeyRejected,
    })?;
    // The provider's contract refuses this already; the box must not depend on it.
    if shared.iter().all(|&b| b == 0) {
        return Err(CryptoError::LowOrderPublicKey);
    }
    Ok(provider.hsalsa20.hsalsa20(&shared, &[0; 16]))
}

/// The pairwise box key `K = HKDF(crypto_box_beforenm(pk, sk), Context_KDF)`, steps 2-3
/// of `Box.Enc` / `Box.Dec`.
///
/// It depends only on the two key pairs and `Context_KDF`, so a leader derives it once
/// per participant and reuses it for every rekey (v4.6 meetings: "K may be cached for
/// this key pair and context"). Zeroized on drop; sealing and opening use the provider it
/// was derived with.
pub struct BoxKey {
    k: Zeroizing<[u8; 32]>,
    provider: &'static CryptoProvider,
}

impl fmt::Debug for BoxKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoxKey(<redacted>)")
    }
}

impl BoxKey {
    /// Derives `K` from our secret key, the peer's public key and `Context_KDF`.
    pub fn derive(
        own_sk: &[u8; 32],
        peer_pk: &[u8; 32],
        ctx_kdf: &[u8],
    ) -> Result<Self, CryptoError> {
        let provider = CryptoProvider::get_default();
        // whitepaper 3.5.2 step 2: K' = crypto_box_beforenm(pk_R, sk_S)
        let k_prime = beforenm(provider, peer_pk, own_sk)?;
        // step 3: K = HKDF(K', Context_KDF), empty salt
        let prk = provider
            .hkdf
            .extract(HashAlg::Sha256, &[], k_prime.as_ref());
        let mut k = Zeroizing::new([0u8; 32]);
        provider
            .hkdf
            .expand(&prk, &[ctx_kdf], k.as_mut())
            .map_err(|_| CryptoError::KeyRejected)?;
        Ok(Self { k, provider })
    }

    /// Steps 4-6 of `Box.Enc`: returns `C = C' || nonce`.
    pub fn seal(
        &self,
        ctx_cipher: &[u8],
        meta: &[u8],
        msg: &[u8],
        nonce: &[u8; BOX_NONCE_LEN],
    ) -> Result<Vec<u8>, CryptoError> {
        let d = associated_data(self.provider, ctx_cipher, meta);
        let mut out = Vec::with_capacity(msg.len() + BOX_OVERHEAD);
        out.extend_from_slice(msg);
        // step 5: C' = XChaCha20-Poly1305-IETF(M, ad = D, nonce, K)
        let tag = self
            .provider
            .xchacha20_poly1305
            .seal_in_place(&self.k, nonce, &d, &mut out)
            .map_err(|_| CryptoError::KeyRejected)?;
        out.extend_from_slice(&tag);
        // step 6: C = (C', RandomNonce)
        out.extend_from_slice(nonce);
        Ok(out)
    }

    /// Steps 1, 4 and 5 of `Box.Dec`. The caller should wrap a secret result in
    /// [`Zeroizing`].
    pub fn open(&self, ctx_cipher: &[u8], meta: &[u8], c: &[u8]) -> Result<Vec<u8>, CryptoError> {
        // step 1: parse C as (C', RandomNonce)
        let short = CryptoError::Truncated {
            len: c.len(),
            min: BOX_OVERHEAD,
        };
        let body_len = c.len().checked_sub(BOX_NONCE_LEN).ok_or(short)?;
        if body_len < TAG_LEN {
            return Err(short);
        }
        let (ct_and_tag, nonce) = c.split_at(body_len);
        let nonce: &[u8; BOX_NONCE_LEN] = nonce.try_into().map_err(|_| short)?;
        let d = associated_data(self.provider, ctx_cipher, meta);
        let mut out = ct_and_tag.to_vec();
        // step 5: decrypt, error on a bad tag
        let len = self
            .provider
            .xchacha20_poly1305
            .open_in_place(&self.k, nonce, &d, &mut out)
            .map_err(|_| CryptoError::BadTag)?;
        out.truncate(len);
        Ok(out)
    }
}

/// Step 4: `D = SHA256(Context_cipher || SHA256(Meta))`.
fn associated_data(provider: &CryptoProvider, ctx_cipher: &[u8], meta: &[u8]) -> [u8; 32] {
    let mut d_in = Vec::with_capacity(ctx_cipher.len() + 32);
    d_in.extend_from_slice(ctx_cipher);
    d_in.extend_from_slice(&provider.hash.sha256(meta));
    provider.hash.sha256(&d_in)
}

/// `Box.Enc` with the nonce given: returns `C = C' || nonce`, or an error when the
/// receiver's public key has low order.
pub fn try_box_encrypt(
    sender_sk: &[u8; 32],
    receiver_pk: &[u8; 32],
    ctx_kdf: &[u8],
    ctx_cipher: &[u8],
    meta: &[u8],
    msg: &[u8],
    nonce: &[u8; BOX_NONCE_LEN],
) -> Result<Vec<u8>, CryptoError> {
    BoxKey::derive(sender_sk, receiver_pk, ctx_kdf)?.seal(ctx_cipher, meta, msg, nonce)
}

/// `Box.Enc` (whitepaper 3.5.2) with the nonce given by the caller.
///
/// Returns `C = C' || nonce` where `C'` is the XChaCha20-Poly1305-IETF ciphertext with
/// its tag. If the receiver's public key has low order (the X25519 output is all zero,
/// which libsodium's `crypto_box_beforenm` refuses), the result is empty: no valid box is
/// shorter than [`BOX_OVERHEAD`], so [`box_decrypt`] rejects it. [`try_box_encrypt`]
/// reports that case as an error instead.
pub fn box_encrypt(
    sender_sk: &[u8; 32],
    receiver_pk: &[u8; 32],
    ctx_kdf: &[u8],
    ctx_cipher: &[u8],
    meta: &[u8],
    msg: &[u8],
    nonce: &[u8; BOX_NONCE_LEN],
) -> Vec<u8> {
    try_box_encrypt(
        sender_sk,
        receiver_pk,
        ctx_kdf,
        ctx_cipher,
        meta,
        msg,
        nonce,
    )
    .unwrap_or_default()
}

/// `Box.Enc` drawing the 192-bit nonce from the caller's randomness (step 1).
pub fn box_encrypt_with<R: TryCryptoRng + ?Sized>(
    rng: &mut R,
    sender_sk: &[u8; 32],
    receiver_pk: &[u8; 32],
    ctx_kdf: &[u8],
    ctx_cipher: &[u8],
    meta: &[u8],
    msg: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; BOX_NONCE_LEN];
    rng.try_fill_bytes(&mut nonce)
        .map_err(|_| CryptoError::Rng)?;
    try_box_encrypt(
        sender_sk,
        receiver_pk,
        ctx_kdf,
        ctx_cipher,
        meta,
        msg,
        &nonce,
    )
}

/// `Box.Dec` (whitepaper 3.5.2): parses `C = C' || nonce` and returns the message.
///
/// Input shorter than [`BOX_OVERHEAD`] is `Truncated`; a wrong key, context, metadata or
/// any tampering is `BadTag`. The caller should wrap a secret result in [`Zeroizing`].
pub fn box_decrypt(
    receiver_sk: &[u8; 32],
    sender_pk: &[u8; 32],
    ctx_kdf: &[u8],
    ctx_cipher: &[u8],
    meta: &[u8],
    c: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if c.len() < BOX_OVERHEAD {
        return Err(CryptoError::Truncated {
            len: c.len(),
            min: BOX_OVERHEAD,
        });
    }
    BoxKey::derive(receiver_sk, sender_pk, ctx_kdf)?.open(ctx_cipher, meta, c)
}

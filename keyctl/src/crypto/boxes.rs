//! `Box.Enc` / `Box.Dec` (whitepaper 3.5.2).

use aws_lc_rs::{agreement, hkdf};
use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use rand_core::TryCryptoRng;
use salsa20::cipher::consts::U10;
use zeroize::Zeroizing;

use super::keys::BoxKeyPair;
use super::{CryptoError, sha256};

/// Length of the XChaCha20 nonce appended to every box ciphertext.
pub const BOX_NONCE_LEN: usize = 24;
/// Bytes a box adds to its message: the Poly1305 tag and the nonce.
pub const BOX_OVERHEAD: usize = 16 + BOX_NONCE_LEN;

const TAG_LEN: usize = 16;

/// A fresh box key pair from the caller's randomness (`Box.KeyGen`, `crypto_box_keypair`).
pub fn box_keypair<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<BoxKeyPair, CryptoError> {
    BoxKeyPair::generate(rng)
}

/// `crypto_box_beforenm(pk, sk)`: `HSalsa20(key = X25519(sk, pk), input = 0^16)`.
///
/// Like libsodium, refuses an all-zero X25519 output (a low-order `pk`).
fn beforenm(pk: &[u8; 32], sk: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let private = agreement::PrivateKey::from_private_key(&agreement::X25519, sk)
        .map_err(|_| CryptoError::KeyRejected)?;
    let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, pk);
    let shared = agreement::agree(&private, peer, CryptoError::LowOrderPublicKey, |s| {
        let mut out = Zeroizing::new([0u8; 32]);
        if s.len() != 32 {
            return Err(CryptoError::KeyRejected);
        }
        out.copy_from_slice(s);
        Ok(out)
    })?;
    if shared.iter().all(|&b| b == 0) {
        return Err(CryptoError::LowOrderPublicKey);
    }
    let key = salsa20::Key::from(*shared);
    let out = salsa20::hsalsa::<U10>(&key, &Default::default());
    let mut k = Zeroizing::new([0u8; 32]);
    k.copy_from_slice(&out);
    Ok(k)
}

/// The box's symmetric key and associated data, steps 2-4 of `Box.Enc` / `Box.Dec`.
fn box_key(
    own_sk: &[u8; 32],
    peer_pk: &[u8; 32],
    ctx_kdf: &[u8],
    ctx_cipher: &[u8],
    meta: &[u8],
) -> Result<(XChaCha20Poly1305, [u8; 32]), CryptoError> {
    // whitepaper 3.5.2 step 2: K' = crypto_box_beforenm(pk_R, sk_S)
    let k_prime = beforenm(peer_pk, own_sk)?;
    // step 3: K = HKDF(K', Context_KDF), empty salt
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(k_prime.as_ref());
    let info = [ctx_kdf];
    let okm = prk
        .expand(&info, hkdf::HKDF_SHA256)
        .map_err(|_| CryptoError::KeyRejected)?;
    let mut k = Zeroizing::new([0u8; 32]);
    okm.fill(k.as_mut()).map_err(|_| CryptoError::KeyRejected)?;
    // step 4: D = SHA256(Context_cipher || SHA256(Meta))
    let mut d_in = Vec::with_capacity(ctx_cipher.len() + 32);
    d_in.extend_from_slice(ctx_cipher);
    d_in.extend_from_slice(&sha256(meta));
    let d = sha256(&d_in);
    let aead = XChaCha20Poly1305::new(&chacha20poly1305::Key::from(*k));
    Ok((aead, d))
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
    nonce: &[u8; 24],
) -> Result<Vec<u8>, CryptoError> {
    let (aead, d) = box_key(sender_sk, receiver_pk, ctx_kdf, ctx_cipher, meta)?;
    let mut out = Vec::with_capacity(msg.len() + BOX_OVERHEAD);
    out.extend_from_slice(msg);
    // step 5: C' = XChaCha20-Poly1305-IETF(M, ad = D, nonce, K)
    let tag = aead
        .encrypt_inout_detached(&XNonce::from(*nonce), &d, out.as_mut_slice().into())
        .map_err(|_| CryptoError::KeyRejected)?;
    out.extend_from_slice(&tag);
    // step 6: C = (C', RandomNonce)
    out.extend_from_slice(nonce);
    Ok(out)
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
    nonce: &[u8; 24],
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
/// The caller should wrap a secret result in [`zeroize::Zeroizing`].
pub fn box_decrypt(
    receiver_sk: &[u8; 32],
    sender_pk: &[u8; 32],
    ctx_kdf: &[u8],
    ctx_cipher: &[u8],
    meta: &[u8],
    c: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    // step 1: parse C as (C', RandomNonce)
    let Some(body_len) = c.len().checked_sub(BOX_OVERHEAD) else {
        return Err(CryptoError::Truncated {
            len: c.len(),
            min: BOX_OVERHEAD,
        });
    };
    let (ct, rest) = c.split_at(body_len);
    let (tag, nonce) = rest.split_at(TAG_LEN);
    let (aead, d) = box_key(receiver_sk, sender_pk, ctx_kdf, ctx_cipher, meta)?;
    let mut out = ct.to_vec();
    let nonce = XNonce::try_from(nonce).map_err(|_| CryptoError::Truncated {
        len: c.len(),
        min: BOX_OVERHEAD,
    })?;
    let tag = Tag::try_from(tag).map_err(|_| CryptoError::Truncated {
        len: c.len(),
        min: BOX_OVERHEAD,
    })?;
    // step 5: decrypt, error on a bad tag
    aead.decrypt_inout_detached(&nonce, &d, out.as_mut_slice().into(), &tag)
        .map_err(|_| CryptoError::BadTag)?;
    Ok(out)
}

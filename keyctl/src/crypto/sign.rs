//! `Sign.Sign` / `Sign.Verify` (whitepaper 3.5.1).

use super::keys::SigningKey;
use crate::provider::CryptoProvider;

/// Length of an Ed25519 detached signature.
pub const SIGNATURE_LEN: usize = 64;

/// The 64 bytes actually signed: `SHA256(context) || SHA256(msg)` (whitepaper 3.5.1).
pub(crate) fn signed_message(provider: &CryptoProvider, context: &[u8], msg: &[u8]) -> [u8; 64] {
    let mut m = [0u8; 64];
    m[..32].copy_from_slice(&provider.hash.sha256(context));
    m[32..].copy_from_slice(&provider.hash.sha256(msg));
    m
}

/// `Sign.Sign`: the Ed25519 detached signature (`crypto_sign_detached`) by the key with
/// seed `seed` over `SHA256(context) || SHA256(msg)`.
///
/// Both built-in providers accept every 32-byte seed, so this cannot fail in practice; should
/// a provider ever refuse one, the result is 64 zero bytes, which [`verify`] rejects for
/// every key. Code that wants the failure as an error uses [`SigningKey::from_seed`].
pub fn sign(seed: &[u8; 32], context: &[u8], msg: &[u8]) -> [u8; SIGNATURE_LEN] {
    match SigningKey::from_seed(seed) {
        Ok(key) => key.sign(context, msg),
        Err(_) => [0u8; SIGNATURE_LEN],
    }
}

/// `Sign.Verify`: whether `sig` is a valid signature by `ivk` over
/// `SHA256(context) || SHA256(msg)` (`crypto_sign_verify_detached`).
///
/// Public keys that are non-canonical or of small order, and `R` values of small order,
/// are rejected, as libsodium does; the provider rejects a non-canonical `S` (RFC 8032 5.1.7).
pub fn verify(ivk: &[u8; 32], sig: &[u8; SIGNATURE_LEN], context: &[u8], msg: &[u8]) -> bool {
    if !is_canonical(ivk) || has_small_order(ivk) || has_small_order(&sig[..32]) {
        return false;
    }
    let provider = CryptoProvider::get_default();
    let m = signed_message(provider, context, msg);
    provider.ed25519.verify(ivk, &m, sig)
}

/// libsodium's `ge25519_is_canonical`: the encoded y coordinate is below p = 2^255 - 19.
fn is_canonical(p: &[u8; 32]) -> bool {
    let top = p[31] & 0x7f == 0x7f && p[1..31].iter().all(|&b| b == 0xff);
    !(top && p[0] >= 0xed)
}

/// libsodium's small-order blocklist (`ge25519_has_small_order`): the encodings of the
/// points of order 1, 2, 4 and 8, compared with the sign bit ignored.
fn has_small_order(p: &[u8]) -> bool {
    const BLOCKLIST: [[u8; 32]; 7] = [
        // 0 (order 4)
        [0; 32],
        // 1 (order 1)
        [
            1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0,
        ],
        // order 8
        [
            0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef,
            0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88,
            0x6d, 0x53, 0xfc, 0x05,
        ],
        // order 8
        [
            0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10,
            0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77,
            0x92, 0xac, 0x03, 0x7a,
        ],
        // p - 1 (order 2)
        [
            0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0x7f,
        ],
        // p (non-canonical 0, order 4)
        [
            0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0x7f,
        ],
        // p + 1 (non-canonical 1, order 1)
        [
            0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0x7f,
        ],
    ];
    if p.len() != 32 {
        return true;
    }
    BLOCKLIST.iter().any(|bad| {
        let head_eq = p[..31] == bad[..31];
        head_eq && (p[31] & 0x7f) == bad[31]
    })
}

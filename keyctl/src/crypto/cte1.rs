//! CtE1, the committing AEAD of Grubbs, Lu and Ristenpart ("Message Franking via
//! Committing Authenticated Encryption", 2017), as whitepaper 3.11 instantiates it:
//! HMAC-SHA256 as the commitment and ChaCha20-Poly1305-IETF
//! (`crypto_aead_chacha20poly1305_ietf`) as the AEAD, with `H` the AEAD's associated data.
//!
//! CtE1 commits to the message, then encrypts the message together with the commitment's
//! opening. With `K` the key, `H` the associated data and `M` the message:
//!
//! ```text
//! Enc(K, H, M):   Kf <- 32 random bytes (the opening), N <- 12 random bytes
//!                 C2 = HMAC-SHA256(key = Kf, u64be(|H|) || H || M)      commitment
//!                 C1 = ChaCha20-Poly1305-IETF(K, N, ad = H, M || Kf)    (tag appended)
//!                 output N || C2 || C1
//! Dec(K, H, C):   parse N (12) || C2 (32) || C1 (at least 48)
//!                 M || Kf = open C1 under K, N, ad = H, else BadTag
//!                 HMAC-SHA256(Kf, u64be(|H|) || H || M) == C2 (constant time), else BadCommitment
//! ```
//!
//! GLR's commitment takes the pair `(H, M)`; the 8-byte length of `H` makes the pair's
//! encoding unambiguous. Because the opening is inside the authenticated ciphertext and
//! the commitment binds `(H, M)` under collision resistance of SHA-256, a server that
//! supplies a different key-wrapping key cannot make a stored ciphertext open to a
//! different secret (whitepaper 3.11: "to prevent the server from supplying malicious
//! key-wrapping keys").

use rand_core::TryCryptoRng;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::CryptoError;
use crate::provider::{CryptoProvider, HashAlg, HmacTag};

/// Length of the AEAD nonce.
pub const NONCE_LEN: usize = 12;
/// Length of the commitment `C2` and of the opening `Kf`.
pub const COMMIT_LEN: usize = 32;
/// Bytes CtE1 adds to a message: nonce, commitment, encrypted opening and tag.
pub const OVERHEAD: usize = NONCE_LEN + COMMIT_LEN + COMMIT_LEN + 16;

fn commit(provider: &CryptoProvider, opening: &[u8; 32], h: &[u8], m: &[u8]) -> HmacTag {
    let h_len = (h.len() as u64).to_be_bytes();
    provider
        .hmac
        .sign(HashAlg::Sha256, opening, &[&h_len, h, m])
}

/// `CtE1-Enc(K, H, M)` with the opening `Kf` and the nonce given by the caller.
pub fn seal(
    k: &[u8; 32],
    h: &[u8],
    m: &[u8],
    opening: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
) -> Result<Vec<u8>, CryptoError> {
    let provider = CryptoProvider::get_default();
    let c2 = commit(provider, opening, h, m);
    let mut body = Zeroizing::new(Vec::with_capacity(m.len() + COMMIT_LEN + 16));
    body.extend_from_slice(m);
    body.extend_from_slice(opening);
    let tag = provider
        .chacha20_poly1305
        .seal_in_place(k, nonce, h, body.as_mut_slice())
        .map_err(|_| CryptoError::KeyRejected)?;
    let mut out = Vec::with_capacity(m.len() + OVERHEAD);
    out.extend_from_slice(nonce);
    out.extend_from_slice(c2.as_ref());
    out.extend_from_slice(&body);
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// `CtE1-Enc(K, H, M)` drawing the opening and nonce from the caller's randomness.
pub fn seal_with<R: TryCryptoRng + ?Sized>(
    rng: &mut R,
    k: &[u8; 32],
    h: &[u8],
    m: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut opening = Zeroizing::new([0u8; 32]);
    let mut nonce = [0u8; NONCE_LEN];
    rng.try_fill_bytes(opening.as_mut())
        .map_err(|_| CryptoError::Rng)?;
    rng.try_fill_bytes(&mut nonce)
        .map_err(|_| CryptoError::Rng)?;
    seal(k, h, m, &opening, &nonce)
}

/// `CtE1-Dec(K, H, C)`: the message, or why it was refused.
pub fn open(k: &[u8; 32], h: &[u8], c: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if c.len() < OVERHEAD {
        return Err(CryptoError::Truncated {
            len: c.len(),
            min: OVERHEAD,
        });
    }
    let (nonce, rest) = c.split_at(NONCE_LEN);
    let (c2, c1) = rest.split_at(COMMIT_LEN);
    let mut nonce_arr = [0u8; NONCE_LEN];
    nonce_arr.copy_from_slice(nonce);
    let provider = CryptoProvider::get_default();
    let mut body = Zeroizing::new(c1.to_vec());
    let plain_len = provider
        .chacha20_poly1305
        .open_in_place(k, &nonce_arr, h, body.as_mut_slice())
        .map_err(|_| CryptoError::BadTag)?;
    // The provider returns `c1.len() - 16`, at least COMMIT_LEN by the length check above.
    let m_len = plain_len
        .checked_sub(COMMIT_LEN)
        .ok_or(CryptoError::BadTag)?;
    let mut opening = Zeroizing::new([0u8; 32]);
    opening.copy_from_slice(&body[m_len..plain_len]);
    let m = &body[..m_len];
    let expect = commit(provider, &opening, h, m);
    if !bool::from(expect.as_ref().ct_eq(c2)) {
        return Err(CryptoError::BadCommitment);
    }
    Ok(Zeroizing::new(m.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let k = [1u8; 32];
        let c = seal(&k, b"ctx", b"secret", &[2; 32], &[3; 12]).unwrap();
        assert_eq!(c.len(), 6 + OVERHEAD);
        assert_eq!(open(&k, b"ctx", &c).unwrap().as_slice(), b"secret");
        assert_eq!(open(&[9; 32], b"ctx", &c), Err(CryptoError::BadTag));
        assert_eq!(open(&k, b"other", &c), Err(CryptoError::BadTag));
        let mut bad_commit = c.clone();
        bad_commit[NONCE_LEN] ^= 1;
        assert_eq!(
            open(&k, b"ctx", &bad_commit),
            Err(CryptoError::BadCommitment)
        );
        assert_eq!(
            open(&k, b"ctx", &c[..OVERHEAD - 1]),
            Err(CryptoError::Truncated {
                len: OVERHEAD - 1,
                min: OVERHEAD
            })
        );
        let empty = seal(&k, b"", b"", &[2; 32], &[3; 12]).unwrap();
        assert_eq!(open(&k, b"", &empty).unwrap().len(), 0);
    }
}

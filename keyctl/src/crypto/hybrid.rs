//! The v4.6 hybrid box: X25519 + ML-KEM-768 (whitepaper v4.6, meetings.tex, "Authenticated
//! Public-Key Encryption", `Box.Enc` / `Box.Dec` with Kyber768).
//!
//! ML-KEM-768 is FIPS 203's standardised form of the Kyber768 the whitepaper names. The
//! construction, as v4.6 writes it (docs/PROTOCOL.md, "Hybrid box (v4.6)", gives every byte):
//!
//! 1. a fresh 192-bit nonce `N`;
//! 2. `K_box = crypto_box_beforenm(pk_R, sk_S)` (X25519 then HSalsa20);
//! 3. `(K_kem, C_kem) = ML-KEM-768.Encaps(ek_R)`;
//! 4. `CAD = SHA3-256(lp(vk_S) || lp(pk_S) || lp(ek_S) || lp(vk_R) || lp(pk_R) || lp(ek_R))`,
//!    `lp` a u16 big-endian length then the bytes (v4.6's "canonical hash");
//! 5. `S = SHA3-256(context || K_kem || K_box || CAD)` with [`COMBINER_CONTEXT`];
//! 6. `K = HKDF-SHA256(IKM = S, salt = Meta, info = Context_KDF, 32)`;
//! 7. `D = SHA256(Context_cipher) || SHA256(Meta)`;
//! 8. `C' = XChaCha20-Poly1305-IETF(M, ad = D, N, K)`;
//! 9. `C = C' || N || C_kem`.
//!
//! The meeting key box wherever the leader and the member both have an ML-KEM-768 key (keyctl
//! revision 3; docs/PROTOCOL.md, "Post-quantum key delivery").

use core::fmt;

use rand_core::TryCryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::CryptoError;
use super::HexBytes;
use super::boxes::{BOX_NONCE_LEN, TAG_LEN, beforenm};
use crate::provider::{CryptoProvider, HashAlg, ProviderError};
pub use crate::provider::{ML_KEM_768_CT_LEN, ML_KEM_768_DK_LEN, ML_KEM_768_EK_LEN};

/// The combiner's context string (v4.6 leaves it unnamed; this one is Veil's, issue 16).
pub const COMBINER_CONTEXT: &[u8] = b"Zoombase-1-ClientOnly-KDF-HybridCombiner";

/// Bytes a hybrid box adds to its message: the Poly1305 tag, the nonce and `C_kem`.
pub const HYBRID_OVERHEAD: usize = TAG_LEN + BOX_NONCE_LEN + ML_KEM_768_CT_LEN;

/// Where `ek` sits in FIPS 203's expanded decapsulation key `dk_PKE || ek || H(ek) || z`.
const DK_EK_START: usize = 1152;
const DK_H_START: usize = DK_EK_START + ML_KEM_768_EK_LEN;
/// ML-KEM's modulus `q` (FIPS 203 2.4).
const Q: u16 = 3329;

/// A participant's public hybrid key: the X25519 box key and the ML-KEM-768 encapsulation key
/// (`(pk_box, pk_kyber)` in v4.6's `Box.KeyGen`).
#[derive(Clone, PartialEq, Eq)]
pub struct BoxPublic {
    /// The X25519 public key.
    pub x25519: [u8; 32],
    /// The ML-KEM-768 encapsulation key, [`ML_KEM_768_EK_LEN`] (1,184) bytes.
    pub mlkem: Vec<u8>,
}

impl fmt::Debug for BoxPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = &self.mlkem[..self.mlkem.len().min(8)];
        f.debug_struct("BoxPublic")
            .field("x25519", &HexBytes(&self.x25519))
            .field("mlkem_len", &self.mlkem.len())
            .field("mlkem_head", &HexBytes(head))
            .finish()
    }
}

/// A participant's secret hybrid key pair (`(sk_box, sk_kyber)` in v4.6's `Box.KeyGen`).
///
/// The X25519 secret and the ML-KEM-768 decapsulation key (FIPS 203's expanded form) are
/// zeroized on drop; `Debug` prints only the public half.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct BoxSecret {
    x25519: [u8; 32],
    mlkem_dk: Vec<u8>,
    #[zeroize(skip)]
    public: BoxPublic,
}

impl fmt::Debug for BoxSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxSecret")
            .field("public", &self.public)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn provider_error(e: ProviderError) -> CryptoError {
    match e {
        ProviderError::Random => CryptoError::Rng,
        _ => CryptoError::KeyRejected,
    }
}

impl BoxSecret {
    /// A fresh key pair (v4.6 `Box.KeyGen`: `crypto_box_keypair` and the KEM's key pair).
    ///
    /// The X25519 secret comes from `rng`; so does the ML-KEM-768 seed `d || z` under the
    /// RustCrypto provider, while aws-lc-rs, whose API takes no caller randomness, draws it
    /// from aws-lc's own DRBG.
    pub fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self, CryptoError> {
        let provider = CryptoProvider::get_default();
        let mut x25519 = Zeroizing::new([0u8; 32]);
        rng.try_fill_bytes(x25519.as_mut())
            .map_err(|_| CryptoError::Rng)?;
        let (dk, ek) = provider
            .ml_kem_768
            .generate(&mut |buf: &mut [u8]| {
                rng.try_fill_bytes(buf).map_err(|_| ProviderError::Random)
            })
            .map_err(provider_error)?;
        let x25519_pk = provider
            .x25519
            .public_key(&x25519)
            .map_err(provider_error)?;
        Ok(Self {
            x25519: *x25519,
            mlkem_dk: dk.to_vec(),
            public: BoxPublic {
                x25519: x25519_pk,
                mlkem: ek,
            },
        })
    }

    /// The key pair with X25519 secret `x25519_secret` and the ML-KEM-768 decapsulation key
    /// `mlkem_decapsulation_key` in FIPS 203's expanded form (2,400 bytes,
    /// `dk_PKE || ek || H(ek) || z`, the form aws-lc-rs imports; docs/PROTOCOL.md).
    ///
    /// The encapsulation key is the `ek` inside it; a key of another length, one whose `H(ek)`
    /// does not match (FIPS 203 7.3), or whose `ek` fails the modulus check (FIPS 203 7.2)
    /// is [`CryptoError::BadMlKemKey`].
    pub fn from_bytes(
        x25519_secret: &[u8; 32],
        mlkem_decapsulation_key: &[u8],
    ) -> Result<Self, CryptoError> {
        let provider = CryptoProvider::get_default();
        let dk = mlkem_decapsulation_key;
        if dk.len() != ML_KEM_768_DK_LEN {
            return Err(CryptoError::BadMlKemKey);
        }
        let ek = &dk[DK_EK_START..DK_H_START];
        check_encapsulation_key(ek)?;
        if provider.hash.sha3_256(ek)[..] != dk[DK_H_START..DK_H_START + 32] {
            return Err(CryptoError::BadMlKemKey);
        }
        let x25519_pk = provider
            .x25519
            .public_key(x25519_secret)
            .map_err(provider_error)?;
        Ok(Self {
            x25519: *x25519_secret,
            mlkem_dk: dk.to_vec(),
            public: BoxPublic {
                x25519: x25519_pk,
                mlkem: ek.to_vec(),
            },
        })
    }

    /// The public half.
    pub fn public(&self) -> BoxPublic {
        self.public.clone()
    }

    /// The X25519 secret key, for the identity store.
    pub fn x25519_secret(&self) -> &[u8; 32] {
        &self.x25519
    }

    /// The ML-KEM-768 decapsulation key in FIPS 203's expanded form, for the identity store.
    pub fn mlkem_decapsulation_key(&self) -> &[u8] {
        &self.mlkem_dk
    }
}

/// FIPS 203 7.2's encapsulation key check: 1,184 bytes whose 1,152 first encode 768 12-bit
/// coefficients each below `q` (`ByteEncode_12(ByteDecode_12(ek)) = ek`).
pub(crate) fn check_encapsulation_key(ek: &[u8]) -> Result<(), CryptoError> {
    if ek.len() != ML_KEM_768_EK_LEN {
        return Err(CryptoError::BadMlKemKey);
    }
    let canonical = ek[..DK_EK_START].chunks_exact(3).all(|c| {
        let (b0, b1, b2) = (u16::from(c[0]), u16::from(c[1]), u16::from(c[2]));
        (b0 | (b1 & 0x0f) << 8) < Q && (b1 >> 4 | b2 << 4) < Q
    });
    if canonical {
        Ok(())
    } else {
        Err(CryptoError::BadMlKemKey)
    }
}

/// Appends `lp(v)`: a u16 big-endian length, then `v`. Every value hashed here is a 32-byte
/// key or a checked 1,184-byte encapsulation key.
fn put_lp(out: &mut Vec<u8>, v: &[u8]) {
    let len = u16::try_from(v.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&v[..usize::from(len)]);
}

/// The parties of one box, sender first, as `CAD` orders them.
struct Parties<'a> {
    sender_vk: &'a [u8; 32],
    sender: &'a BoxPublic,
    receiver_vk: &'a [u8; 32],
    receiver: &'a BoxPublic,
}

impl Parties<'_> {
    /// Step 4: `CAD = SHA3-256(lp(vk_S) || lp(pk_S) || lp(ek_S) || lp(vk_R) || lp(pk_R) ||
    /// lp(ek_R))`.
    fn cad(&self, provider: &CryptoProvider) -> [u8; 32] {
        let mut input = Vec::with_capacity(6 * 2 + 4 * 32 + 2 * ML_KEM_768_EK_LEN);
        for (vk, public) in [
            (self.sender_vk, self.sender),
            (self.receiver_vk, self.receiver),
        ] {
            put_lp(&mut input, vk);
            put_lp(&mut input, &public.x25519);
            put_lp(&mut input, &public.mlkem);
        }
        provider.hash.sha3_256(&input)
    }
}

/// The symmetric inputs both sides compute: the key `K` (steps 5-6) and `D` (step 7).
struct Derived {
    k: Zeroizing<[u8; 32]>,
    d: [u8; 64],
}

/// Steps 4-7 of both `Box.Enc` and `Box.Dec`, from `K_kem` and `K_box`.
fn derive(
    provider: &CryptoProvider,
    k_kem: &[u8; 32],
    k_box: &[u8; 32],
    parties: &Parties<'_>,
    context_kdf: &[u8],
    context_cipher: &[u8],
    meta: &[u8],
) -> Result<Derived, CryptoError> {
    // step 4: CAD
    let cad = parties.cad(provider);
    // step 5: S = SHA3-256(context || K_kem || K_box || CAD)
    let mut s_in = Zeroizing::new(Vec::with_capacity(COMBINER_CONTEXT.len() + 96));
    s_in.extend_from_slice(COMBINER_CONTEXT);
    s_in.extend_from_slice(k_kem);
    s_in.extend_from_slice(k_box);
    s_in.extend_from_slice(&cad);
    let s = Zeroizing::new(provider.hash.sha3_256(&s_in));
    // step 6: K = HKDF(S, Meta, Context_KDF, 32): salt Meta, info Context_KDF
    let prk = provider.hkdf.extract(HashAlg::Sha256, meta, s.as_ref());
    let mut k = Zeroizing::new([0u8; 32]);
    provider
        .hkdf
        .expand(&prk, &[context_kdf], k.as_mut())
        .map_err(|_| CryptoError::KeyRejected)?;
    // step 7: D = SHA256(Context_cipher) || SHA256(Meta)
    let mut d = [0u8; 64];
    d[..32].copy_from_slice(&provider.hash.sha256(context_cipher));
    d[32..].copy_from_slice(&provider.hash.sha256(meta));
    Ok(Derived { k, d })
}

/// v4.6 `Box.Enc` with ML-KEM-768: returns `C = C' || nonce || C_kem`.
///
/// Randomness comes from `rng` in the whitepaper's order: the 24-byte nonce (step 1), then,
/// under the RustCrypto provider, ML-KEM's 32-byte `m` (step 3); aws-lc-rs draws `m` from its
/// own DRBG. A fixed `rng` under RustCrypto therefore reproduces a known answer byte for byte.
///
/// A low-order `receiver.x25519` is [`CryptoError::LowOrderPublicKey`]; a malformed
/// `receiver.mlkem` or `sender`'s is [`CryptoError::BadMlKemKey`].
#[allow(clippy::too_many_arguments)] // the whitepaper's inputs, named as it names them
pub fn encrypt<R: TryCryptoRng + ?Sized>(
    sender: &BoxSecret,
    sender_vk: &[u8; 32],
    receiver: &BoxPublic,
    receiver_vk: &[u8; 32],
    context_kdf: &[u8],
    context_cipher: &[u8],
    meta: &[u8],
    msg: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, CryptoError> {
    let provider = CryptoProvider::get_default();
    check_encapsulation_key(&receiver.mlkem)?;
    check_encapsulation_key(&sender.public.mlkem)?;
    // step 1: a fresh 192-bit nonce
    let mut nonce = [0u8; BOX_NONCE_LEN];
    rng.try_fill_bytes(&mut nonce)
        .map_err(|_| CryptoError::Rng)?;
    // step 2: K_box = crypto_box_beforenm(pk_R, sk_S)
    let k_box = beforenm(provider, &receiver.x25519, &sender.x25519)?;
    // step 3: (K_kem, C_kem) = ML-KEM-768.Encaps(ek_R)
    let (c_kem, k_kem) = provider
        .ml_kem_768
        .encapsulate(&receiver.mlkem, &mut |buf: &mut [u8]| {
            rng.try_fill_bytes(buf).map_err(|_| ProviderError::Random)
        })
        .map_err(provider_error)?;
    let parties = Parties {
        sender_vk,
        sender: &sender.public,
        receiver_vk,
        receiver,
    };
    let Derived { k, d } = derive(
        provider,
        &k_kem,
        &k_box,
        &parties,
        context_kdf,
        context_cipher,
        meta,
    )?;
    // step 8: C' = XChaCha20-Poly1305-IETF(M, D, nonce, K)
    let mut out = Vec::with_capacity(msg.len() + HYBRID_OVERHEAD);
    out.extend_from_slice(msg);
    let tag = provider
        .xchacha20_poly1305
        .seal_in_place(&k, &nonce, &d, &mut out)
        .map_err(|_| CryptoError::KeyRejected)?;
    out.extend_from_slice(&tag);
    // step 9: C = (C', nonce, C_kem)
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&c_kem);
    Ok(out)
}

/// v4.6 `Box.Dec` with ML-KEM-768: parses `C = C' || nonce || C_kem` and returns `M`.
///
/// Input shorter than [`HYBRID_OVERHEAD`] is [`CryptoError::Truncated`]; a wrong key,
/// identity key, context or metadata, or any change to `C`, is [`CryptoError::BadTag`]
/// (a changed `C_kem` decapsulates to an unrelated key, FIPS 203's implicit rejection). The
/// caller should wrap a secret result in [`Zeroizing`].
#[allow(clippy::too_many_arguments)] // the whitepaper's inputs, named as it names them
pub fn decrypt(
    receiver: &BoxSecret,
    receiver_vk: &[u8; 32],
    sender: &BoxPublic,
    sender_vk: &[u8; 32],
    context_kdf: &[u8],
    context_cipher: &[u8],
    meta: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let provider = CryptoProvider::get_default();
    // step 1: parse C as (C', nonce, C_kem)
    let short = CryptoError::Truncated {
        len: ciphertext.len(),
        min: HYBRID_OVERHEAD,
    };
    let body_len = ciphertext.len().checked_sub(HYBRID_OVERHEAD).ok_or(short)? + TAG_LEN;
    let (body, rest) = ciphertext.split_at(body_len);
    let (nonce, c_kem) = rest.split_at(BOX_NONCE_LEN);
    let nonce: &[u8; BOX_NONCE_LEN] = nonce.try_into().map_err(|_| short)?;
    check_encapsulation_key(&sender.mlkem)?;
    // step 2: K_box = crypto_box_beforenm(pk_S, sk_R)
    let k_box = beforenm(provider, &sender.x25519, &receiver.x25519)?;
    // step 3: K_kem = ML-KEM-768.Decaps(dk_R, C_kem)
    let k_kem = provider
        .ml_kem_768
        .decapsulate(&receiver.mlkem_dk, c_kem)
        .map_err(provider_error)?;
    let parties = Parties {
        sender_vk,
        sender,
        receiver_vk,
        receiver: &receiver.public,
    };
    let Derived { k, d } = derive(
        provider,
        &k_kem,
        &k_box,
        &parties,
        context_kdf,
        context_cipher,
        meta,
    )?;
    // step 8: decrypt, error on a bad tag
    let mut out = body.to_vec();
    let len = provider
        .xchacha20_poly1305
        .open_in_place(&k, nonce, &d, &mut out)
        .map_err(|_| CryptoError::BadTag)?;
    out.truncate(len);
    Ok(out)
}

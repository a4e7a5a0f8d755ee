//! Every test vector RFC 9605 Appendix C publishes, plus the registry's AES-256-CTR-HMAC vectors,
//! from a copy of the published JSON under tests/data, under every built-in crypto provider.

// Test helpers unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dataplane::sframe::{
    CipherSuite, Context, DerivedSecrets, Header, KeyMaterial, derive_secrets_with_provider,
};
use keyctl::provider::{CryptoProvider, HashAlg};
use serde::Deserialize;

#[path = "common/providers.rs"]
mod common;
use common::providers;

#[derive(Deserialize)]
struct Vectors {
    header: Vec<HeaderVector>,
    aes_ctr_hmac: Vec<CtrHmacVector>,
    sframe: Vec<SframeVector>,
}

#[derive(Deserialize)]
struct HeaderVector {
    kid: u64,
    ctr: u64,
    encoded: String,
}

#[derive(Deserialize)]
struct CtrHmacVector {
    cipher_suite: u16,
    key: String,
    enc_key: String,
    auth_key: String,
    nonce: String,
    aad: String,
    pt: String,
    ct: String,
}

#[derive(Deserialize)]
struct SframeVector {
    cipher_suite: u16,
    kid: u64,
    ctr: u64,
    base_key: String,
    sframe_key_label: String,
    sframe_salt_label: String,
    sframe_secret: String,
    sframe_key: String,
    sframe_salt: String,
    metadata: String,
    nonce: String,
    aad: String,
    pt: String,
    ct: String,
}

#[derive(Deserialize)]
struct RegistryVectors {
    sframe_aes_256_ctr_hmac: Vec<SframeVector>,
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("vector hex")
}

fn rfc_vectors() -> Vectors {
    serde_json::from_str(include_str!("data/rfc9605-test-vectors.json")).expect("vector JSON")
}

fn all_sframe_vectors() -> Vec<SframeVector> {
    let registry: RegistryVectors = serde_json::from_str(include_str!(
        "data/sframe-aes256-ctr-hmac-test-vectors.json"
    ))
    .expect("vector JSON");
    let mut all = rfc_vectors().sframe;
    all.extend(registry.sframe_aes_256_ctr_hmac);
    all
}

#[test]
fn header_vectors_encode_and_decode_exactly() {
    let vectors = rfc_vectors().header;
    assert_eq!(vectors.len(), 289);
    for v in &vectors {
        let encoded = unhex(&v.encoded);
        let header = Header::new(v.kid, v.ctr);
        let (buf, len) = header.to_bytes();
        assert_eq!(
            &buf[..len],
            &encoded[..],
            "encode kid={} ctr={}",
            v.kid,
            v.ctr
        );
        assert_eq!(header.encoded_len(), encoded.len());
        assert_eq!(Header::parse(&encoded), Ok((header, encoded.len())));
    }
}

#[test]
fn aes_ctr_hmac_vectors_seal_and_open() {
    let vectors = rfc_vectors().aes_ctr_hmac;
    assert_eq!(vectors.len(), 3);
    for (provider, v) in providers()
        .iter()
        .flat_map(|p| vectors.iter().map(move |v| (p, v)))
    {
        let suite = CipherSuite::try_from(v.cipher_suite).expect("suite");
        let key = unhex(&v.key);
        // The subkey split of RFC 9605 4.5.1.
        let aes_len = key.len() - unhex(&v.auth_key).len();
        assert_eq!(key[..aes_len], unhex(&v.enc_key)[..]);
        let nonce: [u8; 12] = unhex(&v.nonce).try_into().expect("nonce length");
        // With salt = nonce and CTR = 0, the derived nonce is the vector's nonce.
        let material = KeyMaterial::from_secrets_with_provider(
            provider,
            suite,
            &DerivedSecrets {
                key: key.clone(),
                salt: nonce,
            },
        )
        .expect("material");
        assert_eq!(material.nonce(0), nonce);
        let (aad, pt, ct) = (unhex(&v.aad), unhex(&v.pt), unhex(&v.ct));
        let mut buf = pt.clone();
        buf.resize(pt.len() + suite.tag_len(), 0);
        material.seal_in_place(0, &aad, &mut buf).expect("seal");
        assert_eq!(buf, ct, "{}: suite {}", provider.name, v.cipher_suite);
        let len = material.open_in_place(0, &aad, &mut buf).expect("open");
        assert_eq!(&buf[..len], &pt[..]);
    }
}

fn hkdf_extract(provider: &CryptoProvider, suite: CipherSuite, ikm: &[u8]) -> Vec<u8> {
    // HKDF-Extract with an empty salt is HMAC keyed with HashLen zero bytes (RFC 5869 2.2).
    let alg = if suite.id() >= 5 {
        HashAlg::Sha512
    } else {
        HashAlg::Sha256
    };
    provider
        .hmac
        .sign(alg, &vec![0u8; alg.output_len()], &[ikm])
        .as_ref()
        .to_vec()
}

#[test]
fn sframe_vectors_derive_encrypt_and_decrypt_exactly() {
    let vectors = all_sframe_vectors();
    assert_eq!(
        vectors.len(),
        8,
        "5 RFC 9605 vectors and 3 registry vectors"
    );
    for (provider, v) in providers()
        .iter()
        .flat_map(|p| vectors.iter().map(move |v| (p, v)))
    {
        let suite = CipherSuite::try_from(v.cipher_suite).expect("suite");
        let base_key = unhex(&v.base_key);
        let label_tail = [&v.kid.to_be_bytes()[..], &v.cipher_suite.to_be_bytes()].concat();
        assert_eq!(
            unhex(&v.sframe_key_label),
            [&b"SFrame 1.0 Secret key "[..], &label_tail].concat()
        );
        assert_eq!(
            unhex(&v.sframe_salt_label),
            [&b"SFrame 1.0 Secret salt "[..], &label_tail].concat()
        );
        assert_eq!(
            hkdf_extract(provider, suite, &base_key),
            unhex(&v.sframe_secret)
        );

        let secrets =
            derive_secrets_with_provider(provider, suite, v.kid, &base_key).expect("derive");
        assert_eq!(
            secrets.key,
            unhex(&v.sframe_key),
            "{}: suite {}",
            provider.name,
            v.cipher_suite
        );
        assert_eq!(secrets.salt[..], unhex(&v.sframe_salt)[..]);

        let material =
            KeyMaterial::derive_with_provider(provider, suite, v.kid, &base_key).expect("material");
        assert_eq!(material.nonce(v.ctr)[..], unhex(&v.nonce)[..]);

        let (header_bytes, header_len) = Header::new(v.kid, v.ctr).to_bytes();
        let metadata = unhex(&v.metadata);
        let aad = [&header_bytes[..header_len], &metadata].concat();
        assert_eq!(aad, unhex(&v.aad));

        let pt = unhex(&v.pt);
        let mut buf = pt.clone();
        buf.resize(pt.len() + suite.tag_len(), 0);
        material.seal_in_place(v.ctr, &aad, &mut buf).expect("seal");
        let ct = unhex(&v.ct);
        assert_eq!([&header_bytes[..header_len], &buf].concat(), ct);

        // The Appendix A API decrypts the published ciphertext.
        let mut ctx = Context::with_provider(suite, provider);
        ctx.add_recv_key(v.kid, &base_key).expect("add key");
        assert_eq!(ctx.decrypt(&metadata, &ct).expect("decrypt"), pt);
    }
}

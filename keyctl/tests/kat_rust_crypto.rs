//! The known answers of kat.rs again, with the RustCrypto provider installed as the process
//! default for the whole test binary (nothing in it uses another).
#![cfg(feature = "rust-crypto")]

use keyctl::provider::{CryptoProvider, rust_crypto};

mod known_answers;

/// Every test installs the provider before anything reads the default; installing the same
/// provider again is not an error, so the order the tests run in does not matter.
fn rust_crypto() {
    assert!(CryptoProvider::install_default(&rust_crypto::PROVIDER).is_ok());
    assert!(core::ptr::eq(
        CryptoProvider::get_default(),
        &rust_crypto::PROVIDER
    ));
}

#[test]
fn sign_matches_libsodium() {
    rust_crypto();
    known_answers::sign_matches_libsodium();
}

#[test]
fn box_matches_libsodium_both_ways() {
    rust_crypto();
    known_answers::box_matches_libsodium_both_ways();
}

#[test]
fn security_code_matches() {
    rust_crypto();
    known_answers::security_code_matches();
}

#[test]
fn cte1_matches() {
    rust_crypto();
    known_answers::cte1_matches();
}

#[test]
fn verify_agrees_with_libsodium_on_edge_cases() {
    rust_crypto();
    known_answers::verify_agrees_with_libsodium_on_edge_cases();
}

#[test]
fn invite_and_proof_match() {
    rust_crypto();
    known_answers::invite_and_proof_match();
}

#[test]
fn hybrid_matches_independent_implementation() {
    rust_crypto();
    known_answers::hybrid_matches_independent_implementation();
}

#[test]
fn hybrid_sig_matches_independent_implementation() {
    rust_crypto();
    known_answers::hybrid_sig_matches_independent_implementation();
}

#[test]
fn security_code_hybrid_matches() {
    rust_crypto();
    known_answers::security_code_hybrid_matches();
}

#[test]
fn pq_auth_matches_independent_implementation() {
    rust_crypto();
    known_answers::pq_auth_matches_independent_implementation();
}

//! Known answers computed by libsodium (tools/kat/gen_keyctl_kat.py), under the built-in
//! default provider (aws-lc-rs unless only the `rust-crypto` feature is on).

mod known_answers;

#[test]
fn sign_matches_libsodium() {
    known_answers::sign_matches_libsodium();
}

#[test]
fn box_matches_libsodium_both_ways() {
    known_answers::box_matches_libsodium_both_ways();
}

#[test]
fn security_code_matches() {
    known_answers::security_code_matches();
}

#[test]
fn cte1_matches() {
    known_answers::cte1_matches();
}

#[test]
fn verify_agrees_with_libsodium_on_edge_cases() {
    known_answers::verify_agrees_with_libsodium_on_edge_cases();
}

#[test]
fn invite_and_proof_match() {
    known_answers::invite_and_proof_match();
}

#[test]
fn runs_under_the_built_in_default() {
    let expected = if cfg!(feature = "aws-lc-rs") {
        "aws-lc-rs"
    } else {
        "rust-crypto"
    };
    assert_eq!(
        keyctl::provider::CryptoProvider::get_default().name,
        expected
    );
}

#[test]
fn hybrid_matches_independent_implementation() {
    known_answers::hybrid_matches_independent_implementation();
}

#[test]
fn hybrid_sig_matches_independent_implementation() {
    known_answers::hybrid_sig_matches_independent_implementation();
}

#[test]
fn security_code_hybrid_matches() {
    known_answers::security_code_hybrid_matches();
}

#[test]
fn pq_auth_matches_independent_implementation() {
    known_answers::pq_auth_matches_independent_implementation();
}

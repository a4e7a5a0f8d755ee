//! veil-web-js: the browser participant ([`veil_web`]) as a page's JavaScript sees it, through
//! wasm-bindgen. The page owns the sockets (a WebSocket to the board, WebTransport to the
//! relay), the clock (`Date.now()`) and the media; this crate turns bytes into bytes.
//!
//! Randomness: keyctl's pure-Rust provider has no random source on `wasm32-unknown-unknown`
//! (a library must not force wasm-bindgen on its users), so this crate, the application,
//! installs a provider that is RustCrypto's with `crypto.getRandomValues` as its source
//! ([`install_provider`]): the identity, the box keys and the sender instance of every key
//! epoch come from it.
#![forbid(unsafe_code)]

use keyctl::provider::{CryptoProvider, ProviderError, SecureRandom, rust_crypto};
use keyctl::rng::OsRng;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod bindings;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod speed;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod video;

/// The system random source through getrandom: `crypto.getRandomValues` in a browser.
#[derive(Debug)]
struct PageRandom;

impl SecureRandom for PageRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), ProviderError> {
        getrandom::fill(dest).map_err(|_| ProviderError::Random)
    }
}

/// RustCrypto's primitives with the page's random source.
pub static PROVIDER: CryptoProvider = CryptoProvider {
    name: "rust-crypto (page random)",
    secure_random: &PageRandom,
    ..rust_crypto::PROVIDER
};

/// Makes [`PROVIDER`] the process default (idempotent); call before anything else.
pub fn install_provider() -> Result<(), &'static str> {
    PROVIDER
        .install_default()
        .map_err(|_| "another crypto provider is installed already")
}

/// A `TryCryptoRng` over the page's random source, for the calls that take one.
pub fn page_rng() -> OsRng {
    OsRng::with_provider(&PROVIDER)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_page_provider_draws_fresh_bytes_and_keys_a_participant() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        PROVIDER.secure_random.fill(&mut a).unwrap();
        PROVIDER.secure_random.fill(&mut b).unwrap();
        assert_ne!(a, b);
        let link = veil_web::MeetingLink::parse("veil1&board=127.0.0.1:1&meeting=m").unwrap();
        let mut p = veil_web::WebParticipant::new(link, "page", &mut page_rng()).unwrap();
        assert!(p.poll_transmit().is_some(), "the hello");
    }
}

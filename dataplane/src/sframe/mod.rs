//! SFrame (RFC 9605): header encoding, key schedule and the AEAD of every registered suite.
//!
//! [`Context`] follows the shape of RFC 9605 Appendix A: install send or receive keys by KID, then
//! `encrypt` and `decrypt` whole frames. Beside those allocating calls sit in-place variants for
//! the packet hot path, which write into caller buffers and allocate nothing.

mod context;
mod ctr_hmac;
mod error;
mod header;
mod key;
mod suite;

pub use context::Context;
pub use error::Error;
pub use header::{Header, MAX_HEADER_LEN};
pub use key::{DerivedSecrets, KeyMaterial, derive_secrets, derive_secrets_with_provider};
pub use suite::{CipherSuite, NONCE_LEN};

/// Result of an SFrame operation.
pub type Result<T, E = Error> = core::result::Result<T, E>;

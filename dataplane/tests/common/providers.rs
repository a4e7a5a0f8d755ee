//! The crypto providers a test runs under.

use keyctl::provider::CryptoProvider;

/// aws-lc-rs and RustCrypto (the dev-dependency on keyctl compiles the latter in), or only
/// RustCrypto when the default feature is off. Checked, so that a test cannot silently lose
/// one of them.
pub(crate) fn providers() -> &'static [&'static CryptoProvider] {
    let all = CryptoProvider::built_in();
    assert_eq!(all.len(), if cfg!(feature = "aws-lc-rs") { 2 } else { 1 });
    all
}

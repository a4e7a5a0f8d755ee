//! The meeting leader security code (whitepaper 3.8), and its form over both keys of a hybrid
//! identity (issue 16 part 2).

use super::context::{CTX_MAC_HYBRID_SECURITY_CODE, CTX_MAC_SECURITY_CODE};
use super::hybrid_sig::HybridVerifyingKey;
use super::sha256;

/// Number of decimal digits in a security code.
pub const SECURITY_CODE_DIGITS: usize = 39;

/// The leader security code of `ivk`: 39 decimal digits, no separators.
///
/// whitepaper 3.8: `Digits(SHA256(SHA256("Zoombase-1-ClientOnly-MAC-SecurityCode") ||
/// SHA256(IVK_leader)))`, where `Digits` reads the 32-byte hash as a big-endian integer
/// and prints it modulo `10^39`, zero-padded to exactly 39 digits.
pub fn security_code(ivk: &[u8; 32]) -> String {
    let mut input = [0u8; 64];
    input[..32].copy_from_slice(&sha256(CTX_MAC_SECURITY_CODE));
    input[32..].copy_from_slice(&sha256(ivk));
    digits(sha256(&input))
}

/// The security code in groups of three digits separated by spaces, for reading aloud
/// (`"012 345 ... 678"`, 13 groups).
pub fn security_code_grouped(ivk: &[u8; 32]) -> String {
    grouped(&security_code(ivk))
}

/// The leader security code of a hybrid identity `key`: 39 decimal digits over both of its
/// verification keys, so that a person comparing codes notices a change of either.
///
/// `Digits(SHA256(SHA256("Veil-1-MAC-HybridSecurityCode") || SHA256(IVK) ||
/// SHA256(pk_ML-DSA)))`: 96 bytes hashed, `IVK` the 32-byte Ed25519 key and `pk_ML-DSA` the
/// 1,952-byte ML-DSA-65 key (FIPS 204 `pkEncode`), `Digits` as in [`security_code`]
/// (docs/PROTOCOL.md, "Hybrid signatures"). Another context and 96 bytes instead of 64: the
/// hybrid code of a key is unrelated to the classical code of its Ed25519 half.
pub fn security_code_hybrid(key: &HybridVerifyingKey) -> String {
    let mut input = [0u8; 96];
    input[..32].copy_from_slice(&sha256(CTX_MAC_HYBRID_SECURITY_CODE));
    input[32..64].copy_from_slice(&sha256(key.ed25519()));
    input[64..].copy_from_slice(&sha256(key.ml_dsa()));
    digits(sha256(&input))
}

/// [`security_code_hybrid`] in 13 groups of three digits separated by spaces.
pub fn security_code_hybrid_grouped(key: &HybridVerifyingKey) -> String {
    grouped(&security_code_hybrid(key))
}

/// `code` in groups of three digits separated by spaces.
fn grouped(code: &str) -> String {
    let mut out = String::with_capacity(SECURITY_CODE_DIGITS + SECURITY_CODE_DIGITS / 3);
    for (i, ch) in code.chars().enumerate() {
        if i > 0 && i % 3 == 0 {
            out.push(' ');
        }
        out.push(ch);
    }
    out
}

/// The lowest 39 decimal digits of the big-endian integer `hash`, most significant first.
fn digits(mut hash: [u8; 32]) -> String {
    let mut rev = [b'0'; SECURITY_CODE_DIGITS];
    for slot in rev.iter_mut() {
        // Long division of the 256-bit number by 10, most significant byte first.
        let mut rem: u16 = 0;
        for byte in hash.iter_mut() {
            let cur = (rem << 8) | u16::from(*byte);
            *byte = (cur / 10) as u8;
            rem = cur % 10;
        }
        *slot = b'0' + rem as u8;
    }
    rev.iter().rev().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_of_small_and_large_numbers() {
        let mut h = [0u8; 32];
        h[31] = 123;
        assert_eq!(digits(h), format!("{:039}", 123));
        assert_eq!(digits([0xff; 32]).len(), SECURITY_CODE_DIGITS);
        // 2^256 - 1 mod 10^39
        assert_eq!(
            digits([0xff; 32]),
            "269984665640564039457584007913129639935"
        );
    }

    #[test]
    fn grouped_has_thirteen_groups() {
        let g = security_code_grouped(&[7; 32]);
        assert_eq!(g.split(' ').count(), 13);
        assert_eq!(g.replace(' ', ""), security_code(&[7; 32]));
    }
}

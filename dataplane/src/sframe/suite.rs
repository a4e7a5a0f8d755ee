//! Cipher suites (RFC 9605 4.5 and the IANA "SFrame Cipher Suites" registry).

use keyctl::provider::HashAlg;

use super::Error;

/// How a suite authenticates and encrypts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Construction {
    /// AES-GCM with a 16-byte tag.
    Gcm,
    /// AES-CTR then a truncated HMAC over lengths, nonce, AAD and ciphertext (RFC 9605 4.5.1).
    CtrHmac,
}

/// An SFrame cipher suite.
///
/// The numbering is the IANA registry's. 0x0001-0x0005 are defined in RFC 9605 4.5; 0x0006-0x0008
/// are the later AES-256-CTR-HMAC-SHA512 suites of the same registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CipherSuite {
    /// 0x0001: AES-128-CTR with HMAC-SHA256, 80-bit tag.
    AesCtr128HmacSha256_80,
    /// 0x0002: AES-128-CTR with HMAC-SHA256, 64-bit tag.
    AesCtr128HmacSha256_64,
    /// 0x0003: AES-128-CTR with HMAC-SHA256, 32-bit tag.
    AesCtr128HmacSha256_32,
    /// 0x0004: AES-128-GCM, HKDF-SHA256.
    Aes128GcmSha256_128,
    /// 0x0005: AES-256-GCM, HKDF-SHA512. Veil's default.
    Aes256GcmSha512_128,
    /// 0x0006: AES-256-CTR with HMAC-SHA512, 80-bit tag.
    AesCtr256HmacSha512_80,
    /// 0x0007: AES-256-CTR with HMAC-SHA512, 64-bit tag.
    AesCtr256HmacSha512_64,
    /// 0x0008: AES-256-CTR with HMAC-SHA512, 32-bit tag.
    AesCtr256HmacSha512_32,
}

impl CipherSuite {
    /// Every suite this codec implements, in registry order.
    pub const ALL: [CipherSuite; 8] = [
        Self::AesCtr128HmacSha256_80,
        Self::AesCtr128HmacSha256_64,
        Self::AesCtr128HmacSha256_32,
        Self::Aes128GcmSha256_128,
        Self::Aes256GcmSha512_128,
        Self::AesCtr256HmacSha512_80,
        Self::AesCtr256HmacSha512_64,
        Self::AesCtr256HmacSha512_32,
    ];

    /// The registry value, as it appears in the key derivation labels (RFC 9605 4.4.2).
    pub fn id(self) -> u16 {
        match self {
            Self::AesCtr128HmacSha256_80 => 0x0001,
            Self::AesCtr128HmacSha256_64 => 0x0002,
            Self::AesCtr128HmacSha256_32 => 0x0003,
            Self::Aes128GcmSha256_128 => 0x0004,
            Self::Aes256GcmSha512_128 => 0x0005,
            Self::AesCtr256HmacSha512_80 => 0x0006,
            Self::AesCtr256HmacSha512_64 => 0x0007,
            Self::AesCtr256HmacSha512_32 => 0x0008,
        }
    }

    /// `Nk`: the length of the derived `sframe_key`. For the CTR+HMAC suites it is the AES key
    /// followed by the HMAC key (RFC 9605 4.5.1).
    pub fn key_len(self) -> usize {
        self.aes_key_len() + self.hmac_key_len()
    }

    /// `Nn`: the nonce length; the same for every suite.
    pub fn nonce_len(self) -> usize {
        NONCE_LEN
    }

    /// `Nt`: the length of the authentication tag appended to each ciphertext.
    pub fn tag_len(self) -> usize {
        match self {
            Self::AesCtr128HmacSha256_80 | Self::AesCtr256HmacSha512_80 => 10,
            Self::AesCtr128HmacSha256_64 | Self::AesCtr256HmacSha512_64 => 8,
            Self::AesCtr128HmacSha256_32 | Self::AesCtr256HmacSha512_32 => 4,
            Self::Aes128GcmSha256_128 | Self::Aes256GcmSha512_128 => 16,
        }
    }

    /// The hash behind the suite's HKDF and, for the CTR+HMAC suites, its HMAC.
    pub(crate) fn hash(self) -> HashAlg {
        match self {
            Self::AesCtr128HmacSha256_80
            | Self::AesCtr128HmacSha256_64
            | Self::AesCtr128HmacSha256_32
            | Self::Aes128GcmSha256_128 => HashAlg::Sha256,
            Self::Aes256GcmSha512_128
            | Self::AesCtr256HmacSha512_80
            | Self::AesCtr256HmacSha512_64
            | Self::AesCtr256HmacSha512_32 => HashAlg::Sha512,
        }
    }

    pub(crate) fn construction(self) -> Construction {
        match self {
            Self::Aes128GcmSha256_128 | Self::Aes256GcmSha512_128 => Construction::Gcm,
            _ => Construction::CtrHmac,
        }
    }

    /// `Nka`: the AES key length inside `sframe_key`.
    pub(crate) fn aes_key_len(self) -> usize {
        match self {
            Self::AesCtr128HmacSha256_80
            | Self::AesCtr128HmacSha256_64
            | Self::AesCtr128HmacSha256_32
            | Self::Aes128GcmSha256_128 => 16,
            _ => 32,
        }
    }

    /// The HMAC key length inside `sframe_key`: the hash output length, zero for GCM.
    pub(crate) fn hmac_key_len(self) -> usize {
        match (self.construction(), self.hash()) {
            (Construction::Gcm, _) => 0,
            (Construction::CtrHmac, HashAlg::Sha256) => 32,
            (Construction::CtrHmac, HashAlg::Sha512) => 64,
        }
    }
}

/// The SFrame nonce length `Nn` (RFC 9605 4.5: 12 bytes for every registered suite).
pub const NONCE_LEN: usize = 12;

impl TryFrom<u16> for CipherSuite {
    type Error = Error;

    fn try_from(id: u16) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|suite| suite.id() == id)
            .ok_or(Error::UnsupportedSuite(id))
    }
}

impl From<CipherSuite> for u16 {
    fn from(suite: CipherSuite) -> u16 {
        suite.id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_unknown_ids_are_rejected() {
        for suite in CipherSuite::ALL {
            assert_eq!(CipherSuite::try_from(suite.id()), Ok(suite));
        }
        for id in [0x0000, 0x0009, 0xffff] {
            assert_eq!(CipherSuite::try_from(id), Err(Error::UnsupportedSuite(id)));
        }
    }

    #[test]
    fn sizes_follow_rfc_9605_section_4_5() {
        let gcm256 = CipherSuite::Aes256GcmSha512_128;
        assert_eq!((gcm256.key_len(), gcm256.tag_len()), (32, 16));
        let ctr = CipherSuite::AesCtr128HmacSha256_80;
        assert_eq!((ctr.key_len(), ctr.tag_len()), (48, 10));
        let ctr256 = CipherSuite::AesCtr256HmacSha512_32;
        assert_eq!((ctr256.key_len(), ctr256.tag_len()), (96, 4));
    }
}

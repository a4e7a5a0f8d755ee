//! Errors of the SFrame codec.

/// Why an SFrame operation failed. Every rejection has its own variant so callers can count it.
///
/// Exhaustive on purpose (no `#[non_exhaustive]`): the workspace's drivers (libveil's result
/// codes, the sidecar's counters) match every variant, so a new one is a compile error where it
/// must be mapped instead of a silent `_` arm (docs/ARCHITECTURE.md, "Exhaustive errors").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input ended inside the SFrame header.
    #[error("SFrame header truncated")]
    Truncated,
    /// The KID was not written in its shortest form (RFC 9605 4.3).
    #[error("SFrame header KID is not minimally encoded")]
    NonMinimalKid,
    /// The CTR was not written in its shortest form (RFC 9605 4.3).
    #[error("SFrame header CTR is not minimally encoded")]
    NonMinimalCtr,
    /// The cipher suite identifier is not one this codec implements.
    #[error("unsupported SFrame cipher suite {0:#06x}")]
    UnsupportedSuite(u16),
    /// No key is installed under this KID.
    #[error("no key for KID {0}")]
    UnknownKid(u64),
    /// A key is already installed under this KID; remove it first.
    #[error("a key for KID {0} is already installed")]
    DuplicateKid(u64),
    /// The key under this KID is for sending; it cannot decrypt (RFC 9605 4.4.1).
    #[error("KID {0} is a send key and cannot decrypt")]
    KeyIsSendOnly(u64),
    /// The key under this KID is for receiving; it cannot encrypt (RFC 9605 4.4.1).
    #[error("KID {0} is a receive key and cannot encrypt")]
    KeyIsReceiveOnly(u64),
    /// Every counter value of this send key has been used; it must be replaced.
    #[error("the counter of KID {0} is exhausted")]
    CounterExhausted(u64),
    /// The ciphertext is shorter than the authentication tag.
    #[error("ciphertext shorter than the authentication tag")]
    CiphertextTooShort,
    /// The tag did not verify: the packet was altered, forged, or sealed under another key.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// The caller's buffer cannot hold the result.
    #[error("buffer too small: needed {needed} bytes, got {got}")]
    BufferTooSmall {
        /// Bytes required.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// The space the caller left before the payload cannot hold what goes there.
    #[error("headroom too small: needed {needed} bytes, got {got}")]
    HeadroomTooSmall {
        /// Bytes required before the payload.
        needed: usize,
        /// Bytes left before the payload.
        got: usize,
    },
    /// The crypto backend refused an operation that valid inputs never trigger.
    #[error("crypto backend failure")]
    Crypto,
}

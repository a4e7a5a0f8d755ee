//! The canonical binary encoding of every keyctl message and of every structure that is
//! signed or hashed (docs/PROTOCOL.md, "Control plane (keyctl)", is the byte-exact spec).
//!
//! Every encoding starts with a version byte ([`VERSION`]) and a [`Kind`] byte, so that a
//! signature or hash over one structure can never be read as another. Integers are
//! big-endian; variable-length fields are `lp(x)`, a u16-BE length then the bytes, with a
//! per-field maximum. Each type has `to_bytes` and `from_bytes`; decoders reject
//! truncation, trailing bytes, over-long fields, unknown versions, kinds and operation
//! tags with a typed [`WireError`], so there is exactly one encoding of every value.

mod binding;
pub(crate) mod codec;
mod heartbeat;
mod hybrid;
mod ids;
mod keyreq;
mod liveness;
mod lock;
mod lpl;
mod message;
mod rekey;

pub use binding::{Binding, KeyAnnouncement, PqKey, PqPolicy, SigRefusal};
pub use heartbeat::{Heartbeat, HeartbeatInput};
pub use hybrid::{Hybrid, Signed};
pub use ids::{Id, MAX_ID_LEN, MeetingRef, ParticipantId};
pub use keyreq::{KeyRequest, KeyRequestBody};
pub use liveness::{LIVENESS_NONCE_LEN, NonceBody, NoncePost};
pub use lock::{LockRequest, LockRequestBody};
pub use lpl::{LinkPost, LplLink, LplOp, MAX_NAME_LEN, MemberState, RosterEntry};
pub use message::{LeaderChange, Leave, Message};
pub use rekey::{BoxKind, MAX_BOX_LEN, MAX_HYBRID_BOX_LEN, Meta, MkPayload, Rekey};

use thiserror::Error;

/// The encoding version this crate reads and writes.
pub const VERSION: u8 = 1;

/// The second byte of every encoding: what the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum Kind {
    /// [`Binding`], signed by the participant.
    Binding = 0x01,
    /// [`Meta`], hashed into the meeting key box's associated data.
    Meta = 0x02,
    /// [`MkPayload`], the plaintext of the meeting key box.
    MkPayload = 0x03,
    /// [`LplLink`], signed and hashed into the leader participant list chain.
    LplLink = 0x04,
    /// [`HeartbeatInput`], hashed to the heartbeat hash `H_i`.
    HeartbeatInput = 0x05,
    /// [`NonceBody`], signed by the participant posting a liveness nonce.
    NonceBody = 0x06,
    /// [`LockRequestBody`], signed by a co-host.
    LockRequestBody = 0x07,
    /// The identity store file (`crate::identity`).
    IdentityFile = 0x08,
    /// [`KeyRequestBody`], signed by a participant asking for a certified key.
    KeyRequestBody = 0x09,
    /// [`Binding`] carrying an ML-KEM-768 encapsulation key (revision 3, v4.6 hybrid box),
    /// signed by the participant. Its own kind, so a signature over a hybrid binding can
    /// never verify for the classical one a board would make by stripping the key.
    HybridBinding = 0x0A,
    /// [`Binding`] carrying an ML-KEM-768 key and an ML-DSA-65 key (revision 4): a hybrid
    /// identity, which signs with Ed25519 and ML-DSA-65.
    HybridAuthBinding = 0x0B,
    /// [`KeyAnnouncement`] board message.
    KeyAnnouncement = 0x10,
    /// [`Rekey`] board message.
    Rekey = 0x11,
    /// [`Heartbeat`] board message.
    Heartbeat = 0x12,
    /// [`NoncePost`] board message.
    NoncePost = 0x13,
    /// [`Leave`] board message.
    Leave = 0x14,
    /// [`LinkPost`] board message.
    LinkPost = 0x15,
    /// [`LeaderChange`] board message.
    LeaderChange = 0x16,
    /// [`LockRequest`] board message.
    LockRequest = 0x17,
    /// [`KeyRequest`] board message.
    KeyRequest = 0x18,
    /// [`Rekey`] board message whose box is the v4.6 hybrid (revision 3).
    HybridRekey = 0x19,
    /// [`KeyAnnouncement`] with a hybrid signature ([`Hybrid`], revision 4).
    HybridKeyAnnouncement = 0x1A,
    /// [`LinkPost`] with a hybrid signature (revision 4).
    HybridLinkPost = 0x1B,
    /// [`Heartbeat`] with a hybrid signature (revision 4).
    HybridHeartbeat = 0x1C,
    /// [`NoncePost`] with a hybrid signature (revision 4).
    HybridNoncePost = 0x1D,
    /// [`LockRequest`] with a hybrid signature (revision 4).
    HybridLockRequest = 0x1E,
    /// [`KeyRequest`] with a hybrid signature (revision 4).
    HybridKeyRequest = 0x1F,
}

/// A variable-length field, for naming it in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// meetingID.
    MeetingId,
    /// meetingUUID.
    MeetingUuid,
    /// userID.
    UserId,
    /// deviceID.
    DeviceId,
    /// A display name.
    DisplayName,
    /// A box ciphertext.
    BoxCiphertext,
    /// An invite ID.
    Invite,
    /// A wrapped key in the identity file.
    WrappedKey,
}

/// Why bytes are not a valid encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WireError {
    /// The input ended inside a field.
    #[error("truncated at byte {at}: need {need}, have {have}")]
    Truncated {
        /// Offset of the field.
        at: usize,
        /// Bytes the field needs.
        need: usize,
        /// Bytes left.
        have: usize,
    },
    /// Bytes remained after the last field.
    #[error("{extra} trailing bytes")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// A length-prefixed field is longer than its maximum (or than a fixed size it must have).
    #[error("{field:?} is {len} bytes, maximum {max}")]
    FieldTooLong {
        /// Which field.
        field: Field,
        /// Its length.
        len: usize,
        /// Its maximum.
        max: usize,
    },
    /// A field has a length other than the ones allowed.
    #[error("{field:?} has invalid length {len}")]
    BadLength {
        /// Which field.
        field: Field,
        /// Its length.
        len: usize,
    },
    /// The version byte is not [`VERSION`].
    #[error("unknown version {0}")]
    UnknownVersion(u8),
    /// The kind byte is unknown, or not the one expected here.
    #[error("unexpected kind {0:#04x}")]
    UnexpectedKind(u8),
    /// An LPL operation tag is unknown.
    #[error("unknown LPL operation {0:#04x}")]
    UnknownOp(u8),
    /// A member state byte is unknown.
    #[error("unknown member state {0}")]
    UnknownState(u8),
    /// A presence byte (of a `SnapshotHybrid` entry's ML-DSA identity) is neither 0 nor 1.
    #[error("unknown presence byte {0}")]
    UnknownPresence(u8),
    /// An LPL operation in a form that has a shorter canonical one (a `SnapshotHybrid`
    /// without a hybrid entry), which the signer would not have encoded.
    #[error("LPL operation {0:#04x} is not in canonical form")]
    NonCanonicalOp(u8),
    /// A hybrid binding's post-quantum policy byte is neither 1 (preferred) nor 2
    /// (required).
    #[error("unknown post-quantum policy {0}")]
    UnknownPqPolicy(u8),
    /// An ML-KEM-768 encapsulation key fails FIPS 203 7.2's modulus check.
    #[error("ML-KEM-768 encapsulation key is not canonical")]
    BadMlKemKey,
}

/// Reads and checks the version byte; returns the kind byte, unchecked.
pub(crate) fn parse_version(r: &mut codec::Reader<'_>) -> Result<u8, WireError> {
    let v = r.u8()?;
    if v != VERSION {
        return Err(WireError::UnknownVersion(v));
    }
    r.u8()
}

/// Reads and checks the version and kind bytes.
pub(crate) fn parse_header(r: &mut codec::Reader<'_>, kind: Kind) -> Result<(), WireError> {
    let k = parse_version(r)?;
    if k != kind as u8 {
        return Err(WireError::UnexpectedKind(k));
    }
    Ok(())
}

/// Gives a type `to_bytes` / `from_bytes` from its `emit_body` / `parse_body`.
macro_rules! encoding {
    ($ty:ty, $kind:expr) => {
        impl $ty {
            /// The kind byte of this encoding.
            pub const KIND: $crate::wire::Kind = $kind;

            /// The canonical encoding: version, kind, body.
            pub fn to_bytes(&self) -> Vec<u8> {
                let mut w = vec![$crate::wire::VERSION, Self::KIND as u8];
                self.emit_body(&mut w);
                w
            }

            /// Parses the canonical encoding, rejecting anything else.
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, $crate::wire::WireError> {
                let mut r = $crate::wire::codec::Reader::new(bytes);
                $crate::wire::parse_header(&mut r, Self::KIND)?;
                let v = Self::parse_body(&mut r)?;
                r.finish()?;
                Ok(v)
            }
        }
    };
}
pub(crate) use encoding;

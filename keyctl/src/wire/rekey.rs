//! The meeting key box: its metadata, its plaintext, and the board message carrying it
//! (whitepaper 3.7.4 steps 7-11, v4.6 meetings: liveness).

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::codec::{Reader, Writer};
use super::ids::{MeetingRef, ParticipantId};
use super::liveness::LIVENESS_NONCE_LEN;
use super::{Field, Kind, VERSION, WireError, encoding, parse_header, parse_version};
use crate::crypto::hybrid::ML_KEM_768_CT_LEN;

/// Longest box ciphertext accepted in a classical [`Rekey`].
pub const MAX_BOX_LEN: usize = 1024;

/// Longest box ciphertext accepted in a hybrid [`Rekey`]: the classical bound plus the
/// 1,088-byte ML-KEM-768 ciphertext the hybrid box appends (its tag and nonce are the
/// classical box's). The meeting key payload boxes to 1,166 bytes.
pub const MAX_HYBRID_BOX_LEN: usize = MAX_BOX_LEN + ML_KEM_768_CT_LEN;

/// Which box a [`Rekey`] carries; its kind byte says so (0x11 classical, 0x19 hybrid), so a
/// recipient with an ML-KEM-768 key can refuse a classical one before opening it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BoxKind {
    /// Whitepaper 3.5.2's X25519 box (v2.3).
    Classical,
    /// Whitepaper v4.6's X25519 + ML-KEM-768 box (`crate::crypto::hybrid`).
    Hybrid,
}

impl BoxKind {
    /// The message kind of a rekey carrying this box.
    pub fn kind(self) -> Kind {
        match self {
            Self::Classical => Kind::Rekey,
            Self::Hybrid => Kind::HybridRekey,
        }
    }

    /// Longest ciphertext a rekey of this box may carry.
    pub fn max_len(self) -> usize {
        match self {
            Self::Classical => MAX_BOX_LEN,
            Self::Hybrid => MAX_HYBRID_BOX_LEN,
        }
    }

    /// The name used in status output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Classical => "classical",
            Self::Hybrid => "hybrid",
        }
    }
}

/// `Meta = meetingID || meetingUUID || leader || participant` (whitepaper 3.7.4 step 7),
/// extended with the recipient's latest liveness nonce (v4.6 meetings: liveness), so the
/// box's associated data proves the key was sent after the nonce was posted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// The meeting instance.
    pub meeting: MeetingRef,
    /// The leader sending the key.
    pub leader: ParticipantId,
    /// The recipient.
    pub participant: ParticipantId,
    /// The recipient's liveness nonce this key answers (all zero before it posted one).
    pub recipient_nonce: [u8; LIVENESS_NONCE_LEN],
}

impl Meta {
    pub(crate) fn emit_body(&self, w: &mut Vec<u8>) {
        self.meeting.emit(w);
        self.leader.emit(w);
        self.participant.emit(w);
        w.bytes(&self.recipient_nonce);
    }

    pub(crate) fn parse_body(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            meeting: MeetingRef::parse(r)?,
            leader: ParticipantId::parse(r)?,
            participant: ParticipantId::parse(r)?,
            recipient_nonce: r.array()?,
        })
    }
}
encoding!(Meta, Kind::Meta);

/// The plaintext of the meeting key box: `(MK, mkSeqNum)` (v4.6 meetings 3.7.4 step 10).
/// Zeroized on drop; Debug shows only the sequence number.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct MkPayload {
    /// `mkSeqNum`.
    pub mk_seq: u32,
    /// The meeting key `MK`.
    pub mk: [u8; 32],
}

impl MkPayload {
    /// Length of the encoding.
    pub const LEN: usize = 2 + 4 + 32;

    /// The canonical encoding, in a buffer that is zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Zeroizing::new(Vec::with_capacity(Self::LEN));
        w.push(VERSION);
        w.push(Kind::MkPayload as u8);
        w.u32(self.mk_seq);
        w.bytes(&self.mk);
        w
    }

    /// Parses the canonical encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        parse_header(&mut r, Kind::MkPayload)?;
        let mk_seq = r.u32()?;
        let mk = r.array()?;
        r.finish()?;
        Ok(Self { mk_seq, mk })
    }
}

impl fmt::Debug for MkPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MkPayload")
            .field("mk_seq", &self.mk_seq)
            .field("mk", &"<redacted>")
            .finish()
    }
}

/// The leader's post of a new meeting key for one recipient (whitepaper 3.7.4 step 11,
/// 3.7.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rekey {
    /// Which box `ciphertext` is: the message's kind byte.
    pub boxed: BoxKind,
    /// The `mkSeqNum` inside, in clear so stale keys can be dropped before decrypting.
    pub mk_seq: u32,
    /// The recipient.
    pub recipient: ParticipantId,
    /// The recipient nonce put in [`Meta`].
    pub recipient_nonce: [u8; LIVENESS_NONCE_LEN],
    /// `C = Box.Enc(sk_leader, pk_i, ..., Meta, MkPayload)`, the classical or the hybrid
    /// box as `boxed` says.
    pub ciphertext: Vec<u8>,
}

impl Rekey {
    /// The canonical encoding: version, kind (by [`Rekey::boxed`]), body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = vec![VERSION, self.boxed.kind() as u8];
        w.u32(self.mk_seq);
        self.recipient.emit(&mut w);
        w.bytes(&self.recipient_nonce);
        w.lp(&self.ciphertext);
        w
    }

    /// Parses the canonical encoding of either kind; the ciphertext is bounded by its box's
    /// maximum ([`BoxKind::max_len`], `FieldTooLong`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let boxed = match parse_version(&mut r)? {
            k if k == Kind::Rekey as u8 => BoxKind::Classical,
            k if k == Kind::HybridRekey as u8 => BoxKind::Hybrid,
            other => return Err(WireError::UnexpectedKind(other)),
        };
        let rekey = Self {
            boxed,
            mk_seq: r.u32()?,
            recipient: ParticipantId::parse(&mut r)?,
            recipient_nonce: r.array()?,
            ciphertext: r.lp(Field::BoxCiphertext, boxed.max_len())?.to_vec(),
        };
        r.finish()?;
        Ok(rekey)
    }
}

//! The meeting key box: its metadata, its plaintext, and the board message carrying it
//! (whitepaper 3.7.4 steps 7-11, v4.6 meetings: liveness).

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::codec::{Reader, Writer};
use super::ids::{MeetingRef, ParticipantId};
use super::liveness::LIVENESS_NONCE_LEN;
use super::{Field, Kind, VERSION, WireError, encoding, parse_header};

/// Longest box ciphertext accepted in a [`Rekey`].
pub const MAX_BOX_LEN: usize = 1024;

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
    /// The `mkSeqNum` inside, in clear so stale keys can be dropped before decrypting.
    pub mk_seq: u32,
    /// The recipient.
    pub recipient: ParticipantId,
    /// The recipient nonce put in [`Meta`].
    pub recipient_nonce: [u8; LIVENESS_NONCE_LEN],
    /// `C = Box.Enc(sk_leader, pk_i, ..., Meta, MkPayload)`.
    pub ciphertext: Vec<u8>,
}

impl Rekey {
    pub(crate) fn emit_body(&self, w: &mut Vec<u8>) {
        w.u32(self.mk_seq);
        self.recipient.emit(w);
        w.bytes(&self.recipient_nonce);
        w.lp(&self.ciphertext);
    }

    pub(crate) fn parse_body(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            mk_seq: r.u32()?,
            recipient: ParticipantId::parse(r)?,
            recipient_nonce: r.array()?,
            ciphertext: r.lp(Field::BoxCiphertext, MAX_BOX_LEN)?.to_vec(),
        })
    }
}
encoding!(Rekey, Kind::Rekey);

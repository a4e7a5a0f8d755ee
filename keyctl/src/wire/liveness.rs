//! Liveness nonces (v4.6 meetings: liveness).

use super::codec::{Reader, Writer};
use super::ids::{MeetingRef, ParticipantId};
use super::{Kind, WireError, encoding};
use crate::crypto::{self, CTX_SIG_LIVENESS_NONCE, SigningKey};

/// Length of a liveness nonce: 192 bits.
pub const LIVENESS_NONCE_LEN: usize = 24;

/// What a participant signs when posting a liveness nonce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NonceBody {
    /// The meeting instance.
    pub meeting: MeetingRef,
    /// The poster.
    pub participant: ParticipantId,
    /// The fresh 192-bit nonce.
    pub nonce: [u8; LIVENESS_NONCE_LEN],
}

impl NonceBody {
    pub(crate) fn emit_body(&self, w: &mut Vec<u8>) {
        self.meeting.emit(w);
        self.participant.emit(w);
        w.bytes(&self.nonce);
    }

    pub(crate) fn parse_body(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            meeting: MeetingRef::parse(r)?,
            participant: ParticipantId::parse(r)?,
            nonce: r.array()?,
        })
    }
}
encoding!(NonceBody, Kind::NonceBody);

/// A participant's signed liveness nonce, posted to the board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoncePost {
    /// What was signed.
    pub body: NonceBody,
    /// Signature by the poster's ISK with context `Veil-1-Sig-LivenessNonce`.
    pub sig: [u8; 64],
}

impl NoncePost {
    /// Signs `body`.
    pub fn sign(body: NonceBody, isk: &SigningKey) -> Self {
        let sig = isk.sign(CTX_SIG_LIVENESS_NONCE, &body.to_bytes());
        Self { body, sig }
    }

    /// Checks the signature against `ivk`.
    pub fn verify(&self, ivk: &[u8; 32]) -> bool {
        crypto::verify(
            ivk,
            &self.sig,
            CTX_SIG_LIVENESS_NONCE,
            &self.body.to_bytes(),
        )
    }

    pub(crate) fn emit_body(&self, w: &mut Vec<u8>) {
        w.extend_from_slice(&self.body.to_bytes());
        w.bytes(&self.sig);
    }

    pub(crate) fn parse_body(r: &mut Reader<'_>) -> Result<Self, WireError> {
        super::parse_header(r, Kind::NonceBody)?;
        Ok(Self {
            body: NonceBody::parse_body(r)?,
            sig: r.array()?,
        })
    }
}
encoding!(NoncePost, Kind::NoncePost);

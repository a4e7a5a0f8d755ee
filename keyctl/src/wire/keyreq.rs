//! A participant's request for a meeting key it saw certified but never received
//! (Veil; hardens whitepaper 3.7.6 against a board that withholds one participant's rekey).

use super::codec::{Reader, Writer};
use super::ids::{MeetingRef, ParticipantId};
use super::liveness::LIVENESS_NONCE_LEN;
use super::{Kind, WireError, encoding, parse_header};
use crate::crypto::{self, CTX_SIG_KEY_REQUEST, SigningKey};

/// What a participant signs when asking the leader to box the current key again: the
/// meeting, who asks, the `mkSeqNum` a verified heartbeat certified, and a fresh liveness
/// nonce for the answer's associated data (so the answer is as recent as a rekey).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRequestBody {
    /// The meeting instance.
    pub meeting: MeetingRef,
    /// Who asks.
    pub participant: ParticipantId,
    /// The certified `mkSeqNum` the requester does not hold.
    pub mk_seq: u32,
    /// A fresh 192-bit liveness nonce of the requester.
    pub nonce: [u8; LIVENESS_NONCE_LEN],
}

impl KeyRequestBody {
    pub(crate) fn emit_body(&self, w: &mut Vec<u8>) {
        self.meeting.emit(w);
        self.participant.emit(w);
        w.u32(self.mk_seq);
        w.bytes(&self.nonce);
    }

    pub(crate) fn parse_body(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            meeting: MeetingRef::parse(r)?,
            participant: ParticipantId::parse(r)?,
            mk_seq: r.u32()?,
            nonce: r.array()?,
        })
    }
}
encoding!(KeyRequestBody, Kind::KeyRequestBody);

/// A signed key request, posted to the board for the leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRequest {
    /// What was signed.
    pub body: KeyRequestBody,
    /// Signature by the requester's ISK with context `Veil-1-Sig-KeyRequest`.
    pub sig: [u8; 64],
}

impl KeyRequest {
    /// Signs `body`.
    pub fn sign(body: KeyRequestBody, isk: &SigningKey) -> Self {
        let sig = isk.sign(CTX_SIG_KEY_REQUEST, &body.to_bytes());
        Self { body, sig }
    }

    /// Checks the signature against `ivk`.
    pub fn verify(&self, ivk: &[u8; 32]) -> bool {
        crypto::verify(ivk, &self.sig, CTX_SIG_KEY_REQUEST, &self.body.to_bytes())
    }

    pub(crate) fn emit_body(&self, w: &mut Vec<u8>) {
        w.extend_from_slice(&self.body.to_bytes());
        w.bytes(&self.sig);
    }

    pub(crate) fn parse_body(r: &mut Reader<'_>) -> Result<Self, WireError> {
        parse_header(r, Kind::KeyRequestBody)?;
        Ok(Self {
            body: KeyRequestBody::parse_body(r)?,
            sig: r.array()?,
        })
    }
}
encoding!(KeyRequest, Kind::KeyRequest);

//! A co-host's request to lock or unlock the meeting (v4.6 meetings: locked meetings).

use super::codec::{Reader, Writer};
use super::ids::{MeetingRef, ParticipantId};
use super::{Kind, WireError, encoding, parse_header};
use crate::crypto::{self, CTX_SIG_LOCK_REQUEST, SigningKey};

/// What a co-host signs: the meeting, who asks, the LPL head it saw (so a request cannot
/// be replayed once the list moved on) and the state asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockRequestBody {
    /// The meeting instance.
    pub meeting: MeetingRef,
    /// The co-host asking.
    pub requester: ParticipantId,
    /// `SHA256` of the latest LPL link the co-host holds.
    pub lpl_head: [u8; 32],
    /// True to lock, false to unlock.
    pub locked: bool,
}

impl LockRequestBody {
    pub(crate) fn emit_body(&self, w: &mut Vec<u8>) {
        self.meeting.emit(w);
        self.requester.emit(w);
        w.bytes(&self.lpl_head);
        w.u8(u8::from(self.locked));
    }

    pub(crate) fn parse_body(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            meeting: MeetingRef::parse(r)?,
            requester: ParticipantId::parse(r)?,
            lpl_head: r.array()?,
            locked: match r.u8()? {
                0 => false,
                1 => true,
                other => return Err(WireError::UnknownState(other)),
            },
        })
    }
}
encoding!(LockRequestBody, Kind::LockRequestBody);

/// A signed lock request, posted to the board for the leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockRequest {
    /// What was signed.
    pub body: LockRequestBody,
    /// Signature by the requester's ISK with context `Veil-1-Sig-LockRequest`.
    pub sig: [u8; 64],
}

impl LockRequest {
    /// Signs `body`.
    pub fn sign(body: LockRequestBody, isk: &SigningKey) -> Self {
        let sig = isk.sign(CTX_SIG_LOCK_REQUEST, &body.to_bytes());
        Self { body, sig }
    }

    /// Checks the signature against `ivk`.
    pub fn verify(&self, ivk: &[u8; 32]) -> bool {
        crypto::verify(ivk, &self.sig, CTX_SIG_LOCK_REQUEST, &self.body.to_bytes())
    }

    pub(crate) fn emit_body(&self, w: &mut Vec<u8>) {
        w.extend_from_slice(&self.body.to_bytes());
        w.bytes(&self.sig);
    }

    pub(crate) fn parse_body(r: &mut Reader<'_>) -> Result<Self, WireError> {
        parse_header(r, Kind::LockRequestBody)?;
        Ok(Self {
            body: LockRequestBody::parse_body(r)?,
            sig: r.array()?,
        })
    }
}
encoding!(LockRequest, Kind::LockRequest);

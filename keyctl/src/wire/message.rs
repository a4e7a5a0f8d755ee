//! Board messages: everything a participant posts or receives.

use super::binding::KeyAnnouncement;
use super::codec::Reader;
use super::heartbeat::Heartbeat;
use super::hybrid::Hybrid;
use super::ids::ParticipantId;
use super::keyreq::KeyRequest;
use super::liveness::NoncePost;
use super::lock::LockRequest;
use super::lpl::LinkPost;
use super::rekey::Rekey;
use super::{Kind, VERSION, WireError, encoding};

/// The server's notice that a participant left the meeting (untrusted: the leader acts on
/// it by rekeying, which at worst denies service).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leave {
    /// Who left.
    pub participant: ParticipantId,
}

impl Leave {
    pub(crate) fn emit_body(&self, w: &mut Vec<u8>) {
        self.participant.emit(w);
    }

    pub(crate) fn parse_body(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            participant: ParticipantId::parse(r)?,
        })
    }
}
encoding!(Leave, Kind::Leave);

/// The server's notice that it picked a new leader (whitepaper 3.7.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderChange {
    /// The new leader.
    pub leader: ParticipantId,
}

impl LeaderChange {
    pub(crate) fn emit_body(&self, w: &mut Vec<u8>) {
        self.leader.emit(w);
    }

    pub(crate) fn parse_body(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            leader: ParticipantId::parse(r)?,
        })
    }
}
encoding!(LeaderChange, Kind::LeaderChange);

/// Any board message, dispatched on its kind byte.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// A participant's signed binding.
    KeyAnnouncement(KeyAnnouncement),
    /// A meeting key for one recipient.
    Rekey(Rekey),
    /// A leader heartbeat.
    Heartbeat(Heartbeat),
    /// A liveness nonce.
    NoncePost(NoncePost),
    /// A leave notice.
    Leave(Leave),
    /// A signed LPL link.
    LinkPost(LinkPost),
    /// A leader change notice.
    LeaderChange(LeaderChange),
    /// A co-host's lock or unlock request.
    LockRequest(LockRequest),
    /// A participant's request for a certified key it did not receive.
    KeyRequest(KeyRequest),
    /// A hybrid identity's signed binding (revision 4).
    HybridKeyAnnouncement(Hybrid<KeyAnnouncement>),
    /// A hybrid leader's signed LPL link (revision 4).
    HybridLinkPost(Hybrid<LinkPost>),
    /// A hybrid leader's heartbeat (revision 4).
    HybridHeartbeat(Hybrid<Heartbeat>),
    /// A hybrid identity's liveness nonce (revision 4).
    HybridNoncePost(Hybrid<NoncePost>),
    /// A hybrid co-host's lock request (revision 4).
    HybridLockRequest(Hybrid<LockRequest>),
    /// A hybrid participant's key request (revision 4).
    HybridKeyRequest(Hybrid<KeyRequest>),
}

impl Message {
    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::KeyAnnouncement(m) => m.to_bytes(),
            Self::Rekey(m) => m.to_bytes(),
            Self::Heartbeat(m) => m.to_bytes(),
            Self::NoncePost(m) => m.to_bytes(),
            Self::Leave(m) => m.to_bytes(),
            Self::LinkPost(m) => m.to_bytes(),
            Self::LeaderChange(m) => m.to_bytes(),
            Self::LockRequest(m) => m.to_bytes(),
            Self::KeyRequest(m) => m.to_bytes(),
            Self::HybridKeyAnnouncement(m) => m.to_bytes(),
            Self::HybridLinkPost(m) => m.to_bytes(),
            Self::HybridHeartbeat(m) => m.to_bytes(),
            Self::HybridNoncePost(m) => m.to_bytes(),
            Self::HybridLockRequest(m) => m.to_bytes(),
            Self::HybridKeyRequest(m) => m.to_bytes(),
        }
    }

    /// The message with any ML-DSA half dropped: a hybrid-signed message (revision 4) as the
    /// classical kind it carries, anything else unchanged. What a board routes and stores by
    /// (it checks no signature); a verifier refuses the result from a hybrid signer.
    pub fn into_classical(self) -> Self {
        match self {
            Self::HybridKeyAnnouncement(h) => Self::KeyAnnouncement(h.msg),
            Self::HybridLinkPost(h) => Self::LinkPost(h.msg),
            Self::HybridHeartbeat(h) => Self::Heartbeat(h.msg),
            Self::HybridNoncePost(h) => Self::NoncePost(h.msg),
            Self::HybridLockRequest(h) => Self::LockRequest(h.msg),
            Self::HybridKeyRequest(h) => Self::KeyRequest(h.msg),
            other => other,
        }
    }

    /// Parses any board message.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let version = *bytes.first().ok_or(WireError::Truncated {
            at: 0,
            need: 2,
            have: 0,
        })?;
        if version != VERSION {
            return Err(WireError::UnknownVersion(version));
        }
        let kind = *bytes.get(1).ok_or(WireError::Truncated {
            at: 1,
            need: 1,
            have: 0,
        })?;
        Ok(match kind {
            k if k == Kind::KeyAnnouncement as u8 => {
                Self::KeyAnnouncement(KeyAnnouncement::from_bytes(bytes)?)
            }
            k if k == Kind::Rekey as u8 || k == Kind::HybridRekey as u8 => {
                Self::Rekey(Rekey::from_bytes(bytes)?)
            }
            k if k == Kind::Heartbeat as u8 => Self::Heartbeat(Heartbeat::from_bytes(bytes)?),
            k if k == Kind::NoncePost as u8 => Self::NoncePost(NoncePost::from_bytes(bytes)?),
            k if k == Kind::Leave as u8 => Self::Leave(Leave::from_bytes(bytes)?),
            k if k == Kind::LinkPost as u8 => Self::LinkPost(LinkPost::from_bytes(bytes)?),
            k if k == Kind::LeaderChange as u8 => {
                Self::LeaderChange(LeaderChange::from_bytes(bytes)?)
            }
            k if k == Kind::LockRequest as u8 => Self::LockRequest(LockRequest::from_bytes(bytes)?),
            k if k == Kind::KeyRequest as u8 => Self::KeyRequest(KeyRequest::from_bytes(bytes)?),
            k if k == Kind::HybridKeyAnnouncement as u8 => {
                Self::HybridKeyAnnouncement(Hybrid::from_bytes(bytes)?)
            }
            k if k == Kind::HybridLinkPost as u8 => {
                Self::HybridLinkPost(Hybrid::from_bytes(bytes)?)
            }
            k if k == Kind::HybridHeartbeat as u8 => {
                Self::HybridHeartbeat(Hybrid::from_bytes(bytes)?)
            }
            k if k == Kind::HybridNoncePost as u8 => {
                Self::HybridNoncePost(Hybrid::from_bytes(bytes)?)
            }
            k if k == Kind::HybridLockRequest as u8 => {
                Self::HybridLockRequest(Hybrid::from_bytes(bytes)?)
            }
            k if k == Kind::HybridKeyRequest as u8 => {
                Self::HybridKeyRequest(Hybrid::from_bytes(bytes)?)
            }
            other => return Err(WireError::UnexpectedKind(other)),
        })
    }
}

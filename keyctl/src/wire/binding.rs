//! The signed key binding (whitepaper 3.7.2) and the announcement that carries it.

use super::codec::{Reader, Writer};
use super::ids::{Id, MAX_ID_LEN, MeetingRef, ParticipantId};
use super::{Field, Kind, WireError, encoding, parse_header};
use crate::crypto::{self, CTX_SIG_KEY_ANNOUNCEMENT, SigningKey};

/// `Binding_i = meetingID || meetingUUID || userID || deviceID || IVK_i || pk_i`
/// (whitepaper 3.7.2 step 3), canonically encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The meeting instance.
    pub meeting: MeetingRef,
    /// The participant `i` and its device.
    pub participant: ParticipantId,
    /// The participant's long-term Ed25519 verification key `IVK_i`.
    pub ivk: [u8; 32],
    /// The participant's ephemeral X25519 box public key `pk_i`.
    pub pk: [u8; 32],
}

impl Binding {
    pub(crate) fn emit_body(&self, w: &mut Vec<u8>) {
        self.meeting.emit(w);
        self.participant.emit(w);
        w.bytes(&self.ivk);
        w.bytes(&self.pk);
    }

    pub(crate) fn parse_body(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            meeting: MeetingRef::parse(r)?,
            participant: ParticipantId::parse(r)?,
            ivk: r.array()?,
            pk: r.array()?,
        })
    }

    /// Parses a nested binding (its full encoding, inline).
    pub(crate) fn parse_nested(r: &mut Reader<'_>) -> Result<Self, WireError> {
        parse_header(r, Kind::Binding)?;
        Self::parse_body(r)
    }

    /// `Sig_i = Sign.Sign(ISK_i, "Zoombase-1-ClientOnly-Sig-EncryptionKeyAnnouncement",
    /// Binding_i)` (whitepaper 3.7.2 steps 4-5).
    pub fn sign(&self, isk: &SigningKey) -> [u8; 64] {
        isk.sign(CTX_SIG_KEY_ANNOUNCEMENT, &self.to_bytes())
    }

    /// Checks `Sig_i` against the binding's own IVK (whitepaper 3.7.4 step 5).
    pub fn verify(&self, sig: &[u8; 64]) -> bool {
        crypto::verify(&self.ivk, sig, CTX_SIG_KEY_ANNOUNCEMENT, &self.to_bytes())
    }

    /// `SHA256(Binding_i)`, which the LPL records for members (whitepaper 3.7.7).
    pub fn hash(&self) -> [u8; 32] {
        crypto::sha256(&self.to_bytes())
    }
}
encoding!(Binding, Kind::Binding);

/// A participant's post to the board on joining (whitepaper 3.7.2 step 7): its binding,
/// the signature over it, the display name the server shows, and an optional proof that the
/// poster holds an invite (ephemeral identities, `crate::meeting::invite`; revision 2: the
/// invite itself never crosses the board).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyAnnouncement {
    /// The binding.
    pub binding: Binding,
    /// `Sig_i` over the binding.
    pub sig: [u8; 64],
    /// Display name (server-provided, untrusted, at most 256 bytes).
    pub display_name: Id,
    /// `HMAC-SHA256(invite, lp("Veil-1-MAC-InviteProof") || Binding)`, when the meeting
    /// requires invites.
    pub invite_proof: Option<[u8; 32]>,
}

impl KeyAnnouncement {
    pub(crate) fn emit_body(&self, w: &mut Vec<u8>) {
        w.extend_from_slice(&self.binding.to_bytes());
        w.bytes(&self.sig);
        self.display_name.emit(w);
        match &self.invite_proof {
            Some(inv) => w.lp(inv),
            None => w.lp(&[]),
        }
    }

    pub(crate) fn parse_body(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let binding = Binding::parse_nested(r)?;
        let sig = r.array()?;
        let display_name = Id::parse(r, Field::DisplayName)?;
        let inv = r.lp(Field::Invite, MAX_ID_LEN)?;
        let invite_proof = match inv.len() {
            0 => None,
            32 => {
                let mut a = [0u8; 32];
                a.copy_from_slice(inv);
                Some(a)
            }
            len => {
                return Err(WireError::BadLength {
                    field: Field::Invite,
                    len,
                });
            }
        };
        Ok(Self {
            binding,
            sig,
            display_name,
            invite_proof,
        })
    }
}
encoding!(KeyAnnouncement, Kind::KeyAnnouncement);

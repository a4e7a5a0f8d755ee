//! Ephemeral identities and invites (ephemeral-identity-for-web-calls; whitepaper 3.13).
//!
//! A host hands each invitee, out of band, an unguessable, unforgeable participant ID:
//! `invite = HMAC-SHA256(host meeting secret, lp(meetingID) || lp(userID))`. The invite never
//! crosses the board: the joiner posts only a proof that it holds the invite, bound to its
//! own signed binding,
//! `proof = HMAC-SHA256(invite, lp("Veil-1-MAC-InviteProof") || Binding)`, so an observed
//! announcement cannot be replayed under another key (the binding holds the joiner's IVK and
//! ephemeral key) nor into another meeting instance (it holds the meetingUUID). A leader
//! holding the secret recomputes both and admits only a matching, unbanned proof; the host
//! can ban an invite for the rest of the meeting. Guests generate a fresh identity key per
//! meeting (`crypto::SigningKey::generate`) and drop it at the end.

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::CTX_MAC_INVITE_PROOF;
use crate::provider::{CryptoProvider, HashAlg};
use crate::wire::codec::Writer;
use crate::wire::{Binding, Id, MeetingRef};

/// The host's per-meeting secret for invites; zeroized on drop, redacted in Debug.
#[derive(Clone)]
pub struct InviteSecret(Zeroizing<[u8; 32]>);

impl InviteSecret {
    /// Wraps 32 secret bytes (drawn by the host from a CSPRNG).
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }
}

impl fmt::Debug for InviteSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InviteSecret(<redacted>)")
    }
}

/// One invitee's invite ID: a bearer secret until it is used, so zeroized on drop, redacted
/// in Debug, compared in constant time.
#[derive(Clone)]
pub struct Invite(Zeroizing<[u8; 32]>);

impl Invite {
    /// Wraps the 32 bytes the host handed out.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The bytes, to hand to the invitee out of band.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }

    /// The proof that the holder of this invite announced `binding`.
    pub fn proof(&self, binding: &Binding) -> [u8; 32] {
        let mut input = Vec::new();
        input.lp(CTX_MAC_INVITE_PROOF);
        input.extend_from_slice(&binding.to_bytes());
        mac(self.0.as_ref(), &input)
    }

    /// Whether `proof` proves this invite for `binding` (constant time).
    pub fn verifies(&self, binding: &Binding, proof: &[u8; 32]) -> bool {
        bool::from(self.proof(binding).ct_eq(proof))
    }
}

impl PartialEq for Invite {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.0.ct_eq(&*other.0))
    }
}

impl Eq for Invite {}

impl fmt::Debug for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Invite(<redacted>)")
    }
}

/// HMAC-SHA256 of `input` under `key`.
fn mac(key: &[u8], input: &[u8]) -> [u8; 32] {
    let tag = CryptoProvider::get_default()
        .hmac
        .sign(HashAlg::Sha256, key, &[input]);
    let mut out = [0u8; 32];
    // Every HMAC tag is at least 32 bytes long (SHA-256's output; SHA-512's is longer).
    out.copy_from_slice(&tag.as_ref()[..32]);
    out
}

/// The invite ID of `user` in `meeting`.
pub fn invite_id(secret: &InviteSecret, meeting: &MeetingRef, user: &Id) -> Invite {
    let mut input = Vec::new();
    input.lp(meeting.meeting_id.as_bytes());
    input.lp(user.as_bytes());
    Invite::new(mac(secret.0.as_ref(), &input))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ParticipantId;

    fn binding(ivk: u8) -> Binding {
        Binding {
            meeting: MeetingRef::new(b"m", b"u").unwrap(),
            participant: ParticipantId::new(b"alice", b"d").unwrap(),
            ivk: [ivk; 32],
            pk: [2; 32],
            pq: None,
        }
    }

    #[test]
    fn a_proof_binds_the_invite_to_one_binding_and_secrets_stay_out_of_debug() {
        let secret = InviteSecret::new([7; 32]);
        let meeting = MeetingRef::new(b"m", b"u").unwrap();
        let user = Id::new(crate::wire::Field::UserId, b"alice").unwrap();
        let invite = invite_id(&secret, &meeting, &user);
        let proof = invite.proof(&binding(1));
        assert!(invite.verifies(&binding(1), &proof));
        assert!(!invite.verifies(&binding(9), &proof), "another key");
        let other = invite_id(
            &secret,
            &meeting,
            &Id::new(crate::wire::Field::UserId, b"bob").unwrap(),
        );
        assert!(!other.verifies(&binding(1), &proof), "another invite");
        assert_ne!(
            &proof,
            invite.expose_secret(),
            "the proof is not the invite"
        );
        let shown = format!("{invite:?} {secret:?}");
        assert_eq!(shown, "Invite(<redacted>) InviteSecret(<redacted>)");
    }
}

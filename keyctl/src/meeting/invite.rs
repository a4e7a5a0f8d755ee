//! Ephemeral identities and invites (ephemeral-identity-for-web-calls; whitepaper 3.13).
//!
//! A host hands each invitee an unguessable, unforgeable participant ID:
//! `invite = HMAC-SHA256(host meeting secret, lp(meetingID) || lp(userID))`. A leader
//! holding the secret admits only announcements carrying the right invite for their
//! userID, and can ban an invite ID for the rest of the meeting. Guests generate a fresh
//! identity key per meeting (`crypto::SigningKey::generate`) and drop it at the end.

use core::fmt;

use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use crate::wire::Id;
use crate::wire::MeetingRef;
use crate::wire::codec::Writer;

/// The host's per-meeting secret for invites; zeroized on drop.
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

/// The invite ID of `user` in `meeting`.
pub fn invite_id(secret: &InviteSecret, meeting: &MeetingRef, user: &Id) -> [u8; 32] {
    let mut input = Vec::new();
    input.lp(meeting.meeting_id.as_bytes());
    input.lp(user.as_bytes());
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.0.as_ref());
    let tag = hmac::sign(&key, &input);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

//! keyctl's `KeyUpdate` as an [`EpochKey`], the conversion [`super::Handoff`] installs.

use keyctl::meeting::KeyUpdate;
use keyctl::wire::ParticipantId;
use zeroize::Zeroizing;

use super::EpochKey;

/// The `senderID` of the stream key derivation for a participant: `lp(userID) || lp(deviceID)`,
/// the participant's canonical encoding in keyctl's wire format (docs/PROTOCOL.md), so that no
/// two participants share a sender ID.
pub fn sender_id(participant: &ParticipantId) -> Vec<u8> {
    let mut out = Vec::new();
    for part in [participant.user.as_bytes(), participant.device.as_bytes()] {
        // keyctl::wire bounds IDs to fit a u16 length; saturate rather than panic regardless.
        let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

impl From<&KeyUpdate> for EpochKey {
    fn from(update: &KeyUpdate) -> Self {
        Self {
            mk_seq: update.mk_seq,
            meeting_key: Zeroizing::new(*update.meeting_key.expose_secret()),
            roster: update
                .roster
                .iter()
                .map(|(slot, participant)| (*slot, sender_id(participant)))
                .collect(),
            activate_at: update.activate_at,
        }
    }
}

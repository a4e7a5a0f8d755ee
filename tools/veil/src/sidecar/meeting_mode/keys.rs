//! The keys of the current meeting session: the keyring once this device's sender slot is
//! known, and the slot.

use std::sync::Arc;

use dataplane::keyring::{EpochKey, Keyring, MeetingConfig};
use dataplane::sframe::CipherSuite;
use dataplane_udp::now;
use keyctl::meeting::KeyUpdate;
use keyctl::wire::{MeetingRef, ParticipantId};

use crate::sidecar::{Plumbing, SidecarError};

/// The keyring the workers run on, for the meeting instance of the current session.
pub(super) struct Keys {
    meeting_id: Vec<u8>,
    meeting_uuid: Vec<u8>,
    pub(super) keyring: Arc<Keyring>,
    pub(super) slot: Option<u32>,
}

impl Keys {
    /// No key yet for `meeting`: an empty keyring (outgoing media is dropped as `no_key`).
    pub(super) fn new(meeting: &MeetingRef) -> Self {
        let meeting_id = meeting.meeting_id.as_bytes().to_vec();
        let meeting_uuid = meeting.meeting_uuid.as_bytes().to_vec();
        Self {
            keyring: empty(&meeting_id, &meeting_uuid, u32::MAX),
            meeting_id,
            meeting_uuid,
            slot: None,
        }
    }

    /// A new session in `meeting` (after [`Keys::drop_all`]): its first key that names this
    /// device builds the keyring of that instance (stream keys bind the meetingUUID).
    pub(super) fn enter(&mut self, meeting: &MeetingRef) {
        self.meeting_id = meeting.meeting_id.as_bytes().to_vec();
        self.meeting_uuid = meeting.meeting_uuid.as_bytes().to_vec();
        self.slot = None;
    }

    /// Installs a certified key; restarts the workers on a new keyring when the key names a
    /// slot for this device other than the keyring's.
    pub(super) fn install(
        &mut self,
        update: &KeyUpdate,
        me: &ParticipantId,
        plumbing: &mut Plumbing,
    ) -> Result<(), SidecarError> {
        // whitepaper 3.7.4: the leader's roster gives each admitted participant its slot.
        let slot = update
            .roster
            .iter()
            .find_map(|(slot, who)| (who == me).then_some(*slot));
        let Some(slot) = slot else {
            tracing::warn!(
                mk_seq = update.mk_seq,
                "a key whose roster does not list this device: installed to receive only"
            );
            return self.install_key(update);
        };
        if self.slot != Some(slot) {
            tracing::info!(
                slot,
                "sender slot assigned; workers move to the meeting's keyring"
            );
            let keyring = empty(&self.meeting_id, &self.meeting_uuid, slot);
            keyring
                .install(EpochKey::from(update), now())
                .map_err(|e| SidecarError::Keys(e.into()))?;
            plumbing.workers.stop();
            // The old keyring (and every key in it) drops here, zeroized.
            self.keyring = keyring;
            self.slot = Some(slot);
            plumbing.workers.start(&self.keyring)?;
            return Ok(());
        }
        self.install_key(update)
    }

    fn install_key(&self, update: &KeyUpdate) -> Result<(), SidecarError> {
        match self.keyring.install(EpochKey::from(update), now()) {
            Ok(()) => Ok(()),
            Err(error) => {
                tracing::warn!(mk_seq = update.mk_seq, %error, "key refused by the keyring");
                Ok(())
            }
        }
    }

    /// Drops every key (the session is over): the workers move to an empty keyring.
    pub(super) fn drop_all(&mut self, plumbing: &mut Plumbing) -> Result<(), SidecarError> {
        plumbing.workers.stop();
        self.keyring = empty(&self.meeting_id, &self.meeting_uuid, u32::MAX);
        self.slot = None;
        plumbing.workers.start(&self.keyring)
    }
}

fn empty(meeting_id: &[u8], meeting_uuid: &[u8], slot: u32) -> Arc<Keyring> {
    Arc::new(Keyring::new(MeetingConfig {
        meeting_id: meeting_id.to_vec(),
        meeting_uuid: meeting_uuid.to_vec(),
        own_slot: slot,
        suite: CipherSuite::Aes256GcmSha512_128,
    }))
}

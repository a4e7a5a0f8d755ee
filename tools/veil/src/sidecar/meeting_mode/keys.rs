//! The current session's keys into the workers' keyring, through the dataplane's one handoff
//! (`dataplane::keyring::Handoff`): it finds this device's slot in each key's roster and
//! publishes it with the key, so the workers, started once on its keyring, never restart.

use dataplane::keyring::{Handoff, HandoffError, KeyringError};
use dataplane_udp::now;
use keyctl::meeting::KeyUpdate;
use keyctl::wire::MeetingRef;

use crate::sidecar::SidecarError;
use crate::sidecar::keys::KeyFileError;

/// Installs a certified key of the session in `meeting`. A key the handoff refuses is logged
/// and leaves the keys as they were (outgoing media is dropped as `no_key` rather than sent
/// under a wrong slot); only a failed random source, which no later key can get past, stops
/// the sidecar.
pub(super) fn install(
    handoff: &Handoff,
    meeting: &MeetingRef,
    update: &KeyUpdate,
) -> Result<(), SidecarError> {
    let before = handoff.own_slot();
    match handoff.install(meeting, update, now()) {
        // whitepaper 3.7.4: the leader's roster gives each admitted participant its slot.
        Ok(Some(slot)) if before != Some(slot) => {
            tracing::info!(slot, mk_seq = update.mk_seq, "sender slot assigned");
        }
        Ok(Some(_)) => {}
        Ok(None) => tracing::warn!(
            mk_seq = update.mk_seq,
            "a key whose roster does not list this device: installed to receive only"
        ),
        Err(HandoffError::Keyring(KeyringError::Random)) => {
            return Err(KeyFileError::Keyring(KeyringError::Random).into());
        }
        Err(error) => {
            tracing::warn!(mk_seq = update.mk_seq, %error, "key refused by the keyring");
        }
    }
    Ok(())
}

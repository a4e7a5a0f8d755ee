//! The keyring a protector holds, shared with its worker handles and a linked session.
//!
//! One dataplane keyring per protector, made with it and never replaced: a linked session
//! hands keyctl's events to it through `dataplane::keyring::Handoff`, which finds this
//! participant's slot in each key's roster and publishes it with that key's epoch, so worker
//! handles already running learn it at their next snapshot and keep their caches. Each epoch
//! keeps the slot it was installed with (RFC 9605 4.4.3: no counter restarts under a key).
//!
//! What is left here is the ABI's rule for the slot set by hand (`veil_protector_set_own_slot`):
//! free until the first key is installed, fixed after it, as `veil.h` documents.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dataplane::keyring::{EpochKey, Handled, Handoff, Keyring, MeetingConfig, Millis};
use keyctl::meeting::Event;
use keyctl::wire::MeetingRef;

use crate::result::veil_result;

/// State writers change under the lock.
#[derive(Debug, Default)]
struct WriterState {
    /// Whether any key was ever installed; from then on `set_own_slot` keeps the slot.
    installed_any: bool,
}

/// A protector's keyring, shared by every handle that uses it and a linked session.
#[derive(Debug)]
pub(crate) struct SharedKeyring {
    keyring: Arc<Keyring>,
    /// Serializes the writers the slot rule spans (slot changes and installs); readers never
    /// take it.
    writer: Mutex<WriterState>,
}

impl SharedKeyring {
    pub(crate) fn new(config: MeetingConfig) -> Self {
        Self {
            keyring: Arc::new(Keyring::new(config)),
            writer: Mutex::new(WriterState::default()),
        }
    }

    /// The keyring: workers load a snapshot from it per call, lock-free.
    pub(crate) fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    /// Whether this keyring serves `meeting`'s instance (meetingID and meetingUUID).
    pub(crate) fn serves(&self, meeting: &MeetingRef) -> bool {
        self.keyring.load().config().serves(meeting)
    }

    fn lock(&self) -> MutexGuard<'_, WriterState> {
        // The state is one flag, set after the change it records: a writer that panicked left
        // nothing half-done.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the local sender slot: free before the first key, fixed after it.
    pub(crate) fn set_own_slot(&self, slot: u32) -> Result<(), veil_result> {
        let state = self.lock();
        if self.keyring.load().config().own_slot == slot {
            return Ok(());
        }
        if state.installed_any {
            return Err(veil_result::WrongState);
        }
        self.keyring.set_own_slot(slot);
        Ok(())
    }

    /// Installs an epoch given by hand at `now`, under the slot set on the protector.
    pub(crate) fn install(&self, key: EpochKey, now: Millis) -> Result<(), veil_result> {
        let mut state = self.lock();
        self.keyring.install(key, now)?;
        self.keyring.prune(now);
        state.installed_any = true;
        Ok(())
    }

    /// Applies a linked session's event through its handoff (a key, a retirement, the end of
    /// the session); returns the result the C event reports.
    pub(crate) fn handle(
        &self,
        handoff: &Handoff,
        meeting: &MeetingRef,
        event: &Event,
        now: Millis,
    ) -> veil_result {
        let mut state = self.lock();
        match handoff.handle(meeting, event, now) {
            Ok(Handled::Installed { .. }) => {
                state.installed_any = true;
                veil_result::Ok
            }
            Ok(_) => veil_result::Ok,
            Err(error) => error.into(),
        }
    }

    /// Retires `mk_seq` at `at` (or sooner, if already due).
    pub(crate) fn retire(&self, mk_seq: u32, at: Millis) {
        self.keyring.retire(mk_seq, at);
    }

    /// Frees the epochs retired by `now`, erasing their keys once no reader holds them.
    pub(crate) fn prune(&self, now: Millis) {
        self.keyring.prune(now);
    }
}

//! The keyring a protector holds, shared with its worker handles and a linked session.
//!
//! The dataplane's keyring fixes the local sender slot when it is created, but a participant
//! learns its slot only from the first key update (the leader assigns it on admission). So
//! the shared state holds the keyring behind a pointer swap: setting the slot before any key
//! is installed replaces the empty keyring; afterwards the slot is fixed, because a keyring
//! rebuilt under another slot, then set back, would restart that slot's counters under the
//! same key (RFC 9605 4.4.3: a nonce is never reused under a key).

use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use dataplane::keyring::{EpochKey, Keyring, MeetingConfig, Millis};

use crate::result::veil_result;

/// State writers change under the lock.
#[derive(Debug, Default)]
struct WriterState {
    /// Whether any key was ever installed; from then on the sender slot is fixed.
    installed_any: bool,
}

/// A protector's keyring and its meeting, shared by every handle that uses it.
#[derive(Debug)]
pub(crate) struct SharedKeyring {
    config: MeetingConfig,
    ring: ArcSwap<Keyring>,
    /// Serializes writers (installs, retirements, slot changes); readers never take it.
    writer: Mutex<WriterState>,
}

impl SharedKeyring {
    pub(crate) fn new(config: MeetingConfig) -> Self {
        Self {
            ring: ArcSwap::from_pointee(Keyring::new(config.clone())),
            config,
            writer: Mutex::new(WriterState::default()),
        }
    }

    /// The meeting this keyring serves.
    pub(crate) fn config(&self) -> &MeetingConfig {
        &self.config
    }

    /// The current keyring: one atomic load, no lock.
    pub(crate) fn current(&self) -> arc_swap::Guard<Arc<Keyring>> {
        self.ring.load()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WriterState> {
        // Writers replace whole values, so a writer that panicked left nothing half-done.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the local sender slot: free before the first key, fixed after it.
    pub(crate) fn set_own_slot(&self, slot: u32) -> Result<(), veil_result> {
        let state = self.lock();
        self.set_slot_locked(&state, slot)
    }

    fn set_slot_locked(&self, state: &WriterState, slot: u32) -> Result<(), veil_result> {
        let current = self.ring.load();
        if current.load().config().own_slot == slot {
            return Ok(());
        }
        if state.installed_any {
            return Err(veil_result::WrongState);
        }
        let config = MeetingConfig {
            own_slot: slot,
            ..self.config.clone()
        };
        self.ring.store(Arc::new(Keyring::new(config)));
        Ok(())
    }

    /// Installs an epoch at `now`, first setting the sender slot if `own_slot` is given.
    pub(crate) fn install(
        &self,
        key: EpochKey,
        own_slot: Option<u32>,
        now: Millis,
    ) -> Result<(), veil_result> {
        let mut state = self.lock();
        if let Some(slot) = own_slot {
            self.set_slot_locked(&state, slot)?;
        }
        let ring = self.ring.load();
        ring.install(key, now)?;
        ring.prune(now);
        state.installed_any = true;
        Ok(())
    }

    /// Retires `mk_seq` at `at` (or sooner, if already due).
    pub(crate) fn retire(&self, mk_seq: u32, at: Millis) {
        let _state = self.lock();
        let ring = self.ring.load();
        ring.retire(mk_seq, at);
    }

    /// Frees the epochs retired by `now`, erasing their keys once no reader holds them.
    pub(crate) fn prune(&self, now: Millis) {
        let _state = self.lock();
        self.ring.load().prune(now);
    }

    /// Retires every epoch at `now` and frees them: the session that keyed this ring ended
    /// and holds no keys any more (whitepaper 3.7.8), so neither does its dataplane.
    pub(crate) fn retire_all(&self, now: Millis) {
        let _state = self.lock();
        let ring = self.ring.load();
        let mk_seqs: Vec<u32> = ring.load().mk_seqs().collect();
        for mk_seq in mk_seqs {
            ring.retire(mk_seq, now);
        }
        ring.prune(now);
    }
}

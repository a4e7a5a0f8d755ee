//! The keyring: the key epochs of one meeting, shared by every worker without a lock.
//!
//! The control plane (keyctl, or a pre-shared key file) hands over one [`EpochKey`] per
//! `mkSeqNum`. The writer side ([`Keyring::install`], [`Keyring::retire`], [`Keyring::prune`])
//! builds a new immutable [`Snapshot`] and publishes it by pointer swap (read-copy-update with
//! `arc-swap`); readers take one [`Keyring::load`] per batch and never lock. A snapshot that a
//! reader still holds stays alive until that reader drops it, and every meeting key is zeroized
//! when its last holder lets go.
//!
//! Rotation (whitepaper 3.7.6, hardened per v4.6 "liveness"):
//! - a new epoch decrypts as soon as it is installed;
//! - senders use the newest epoch whose activation time has passed;
//! - the epoch it supersedes stops decrypting [`RETIRE_AFTER_MS`] after the new one arrived.
//!
//! Derived SFrame keys live in each worker's [`WorkerKeys`], derived lazily on first use and
//! cached there; see that type for why and for how send counters stay unique across workers.
//! Time is an argument everywhere (sans-IO): nothing here reads a clock.

mod epoch;
mod update;
mod window;
mod worker;

use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::{ArcSwap, Guard};

pub use epoch::{Epoch, EpochKey, Live, Snapshot};
pub use keyctl::time::Millis;
pub use update::sender_id;
pub use window::{SHARED_WINDOW, SharedWindow};
pub use worker::{LEASE, SealError, WorkerKeys};

use crate::sframe::CipherSuite;

/// How long the superseded epoch keeps decrypting after a newer one arrived (v4.6 meetings:
/// "the previous key is deleted 10 seconds after the new one is received").
pub const RETIRE_AFTER_MS: u64 = 10_000;

/// A bound on epochs held at once. Rotations come seconds apart, so fewer than a handful are ever
/// live; the bound only caps memory if a control plane misbehaves (the oldest goes first).
pub const MAX_LIVE_EPOCHS: usize = 64;

/// Why the keyring refused a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// mkSeqNum must grow with every new key (whitepaper 3.7.6), so a packet's prefix names
    /// exactly one key.
    #[error("mkSeqNum {mk_seq} is not newer than the installed {newest}")]
    NotNewer {
        /// The refused key's mkSeqNum.
        mk_seq: u32,
        /// The newest installed.
        newest: u32,
    },
}

/// What a keyring is for: one meeting instance, one local sender, one cipher suite.
#[derive(Clone, PartialEq, Eq)]
pub struct MeetingConfig {
    /// `meetingID`, an input of every stream key.
    pub meeting_id: Vec<u8>,
    /// `meetingUUID`, the instance of the meeting.
    pub meeting_uuid: Vec<u8>,
    /// The roster slot this device sends as (the high bits of its KIDs).
    pub own_slot: u32,
    /// The SFrame cipher suite of every key.
    pub suite: CipherSuite,
}

impl core::fmt::Debug for MeetingConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MeetingConfig")
            .field("meeting_id", &String::from_utf8_lossy(&self.meeting_id))
            .field("own_slot", &self.own_slot)
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// The shared keyring of one meeting. Cheap to share: wrap it in an [`Arc`].
pub struct Keyring {
    current: ArcSwap<Snapshot>,
    /// Serializes writers only; readers never touch it.
    writer: Mutex<()>,
}

impl core::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let snapshot = self.load();
        f.debug_struct("Keyring")
            .field("generation", &snapshot.generation())
            .field("epochs", &snapshot.mk_seqs().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// A keyring with no key yet.
    pub fn new(config: MeetingConfig) -> Self {
        Self {
            current: ArcSwap::from_pointee(Snapshot::empty(Arc::new(config))),
            writer: Mutex::new(()),
        }
    }

    /// The current snapshot: one atomic load, no lock. Take one per batch.
    pub fn load(&self) -> Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// The current snapshot as an owned handle, for holders that outlive a batch.
    pub fn load_full(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Installs a new epoch at `now`: it decrypts at once, sends from `key.activate_at`, and the
    /// epoch it supersedes retires [`RETIRE_AFTER_MS`] later (whitepaper 3.7.6).
    pub fn install(&self, key: EpochKey, now: Millis) -> Result<(), KeyringError> {
        self.write(|old| old.with_installed(key, now))
    }

    /// Retires `mk_seq` at `at` (keyctl's `Event::RetireEpoch`), or sooner if already due.
    pub fn retire(&self, mk_seq: u32, at: Millis) {
        // Infallible: the closure never refuses.
        let _ = self.write(|old| Ok(old.with_retire(mk_seq, at)));
    }

    /// Drops the epochs whose retirement time has passed, zeroizing their keys once no reader
    /// holds them. Readers already refuse retired epochs by time; this frees the memory.
    pub fn prune(&self, now: Millis) {
        let _ = self.write(|old| Ok(old.without_retired(now)));
    }

    fn write(
        &self,
        change: impl FnOnce(&Snapshot) -> Result<Option<Snapshot>, KeyringError>,
    ) -> Result<(), KeyringError> {
        // A writer that panicked left no half-built snapshot behind (it builds a new one and
        // swaps it in whole), so a poisoned lock is safe to take over.
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let old = self.current.load_full();
        if let Some(next) = change(&old)? {
            self.current.store(Arc::new(next));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

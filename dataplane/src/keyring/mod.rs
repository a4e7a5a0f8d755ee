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
//! Derived SFrame keys live in each worker's [`WorkerKeys`], derived on first use and cached
//! there once a packet under them authenticated; see that type for why and for how send
//! counters stay unique across workers.
//!
//! Every installed epoch draws a random 40-bit sender instance for this device's KIDs
//! (docs/PROTOCOL.md, "Nonce uniqueness"): counters restart at 0 in every epoch, every keyring
//! and every process, and the instance is what keeps those restarts from sealing under a
//! (key, nonce) pair used before (RFC 9605 4.4.3, DESIGN I7).
//! Time is an argument everywhere (sans-IO): nothing here reads a clock.

mod epoch;
mod update;
mod window;
mod worker;

use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::{ArcSwap, Guard};
use keyctl::provider::CryptoProvider;

pub use epoch::{Epoch, EpochKey, Live, Snapshot};
pub use keyctl::time::Millis;
pub use update::sender_id;
pub use window::{MAX_STREAMS_PER_SENDER, SHARED_WINDOW, SharedWindow};
pub use worker::{LEASE, MAX_SEND_COUNTER, SealError, WorkerKeys};

use crate::sframe::CipherSuite;
use crate::stream_key::{MAX_SENDER_INSTANCE, MAX_SENDER_SLOT};

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
    /// The roster names a slot the KID layout cannot carry (docs/PROTOCOL.md: slots are 16
    /// bits); the control plane must not assign one.
    #[error("roster slot {0} is above the largest sender slot ({MAX_SENDER_SLOT})")]
    SlotOutOfRange(u32),
    /// The operating system's random source failed, so no sender instance could be drawn.
    #[error("no randomness for the sender instance")]
    Random,
}

/// A fresh random sender instance: 40 bits from the operating system's generator, through the
/// provider's random source.
#[cfg(not(miri))]
fn random_instance(provider: &CryptoProvider) -> Result<u64, KeyringError> {
    let mut bytes = [0u8; 8];
    provider
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| KeyringError::Random)?;
    Ok(u64::from_be_bytes(bytes) & MAX_SENDER_INSTANCE)
}

/// Under Miri, which cannot run aws-lc's C, only the keyring's memory safety is under test
/// (`keyring::tests::concurrent`); std's randomly keyed hasher, seeded from the OS through
/// Miri's shims, gives instances that differ, which is all those tests need.
#[cfg(miri)]
fn random_instance(_: &CryptoProvider) -> Result<u64, KeyringError> {
    use std::hash::{BuildHasher, RandomState};
    Ok(RandomState::new().hash_one(0u8) & MAX_SENDER_INSTANCE)
}

/// What a keyring is for: one meeting instance, one local sender, one cipher suite.
#[derive(Clone, PartialEq, Eq)]
pub struct MeetingConfig {
    /// `meetingID`, an input of every stream key.
    pub meeting_id: Vec<u8>,
    /// `meetingUUID`, the instance of the meeting.
    pub meeting_uuid: Vec<u8>,
    /// The roster slot this device sends as (the top 16 bits of its KIDs), at most
    /// [`MAX_SENDER_SLOT`]; any larger value (such as `u32::MAX`) makes a receive-only keyring
    /// whose seals fail with [`SealError::SlotOutOfRange`].
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
    /// A keyring with no key yet, whose keys the default crypto provider derives.
    pub fn new(config: MeetingConfig) -> Self {
        Self::with_provider(config, CryptoProvider::get_default())
    }

    /// A keyring with no key yet: `provider` draws its sender instances, and every worker
    /// derives and prepares its keys with it.
    pub fn with_provider(config: MeetingConfig, provider: &'static CryptoProvider) -> Self {
        Self {
            current: ArcSwap::from_pointee(Snapshot::empty(Arc::new(config), provider)),
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
    /// epoch it supersedes retires [`RETIRE_AFTER_MS`] later (whitepaper 3.7.6). The epoch gets
    /// a fresh random sender instance. A roster slot above [`MAX_SENDER_SLOT`] refuses the key
    /// and changes nothing.
    pub fn install(&self, key: EpochKey, now: Millis) -> Result<(), KeyringError> {
        if let Some(slot) = key.roster.keys().find(|&&slot| slot > MAX_SENDER_SLOT) {
            return Err(KeyringError::SlotOutOfRange(*slot));
        }
        let send_instance = random_instance(self.load().provider())?;
        self.write(|old| old.with_installed(key, now, send_instance))
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

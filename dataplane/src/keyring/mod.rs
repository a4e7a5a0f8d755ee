//! The keyring: the key epochs of one meeting, shared by every worker without a lock.
//!
//! The control plane (keyctl, or a pre-shared key file) hands over one [`EpochKey`] per
//! `mkSeqNum`; keyctl's events reach the keyring through one [`Handoff`], which finds this
//! device's slot in each key's roster, installs, retires and erases. The writer side
//! ([`Keyring::install`], [`Keyring::retire`], [`Keyring::prune`]) builds a new immutable
//! [`Snapshot`] and publishes it by pointer swap (read-copy-update with `arc-swap`); readers
//! take one [`Keyring::load`] per batch and never lock. A snapshot that a reader still holds
//! stays alive until that reader drops it, and every meeting key is zeroized when its last
//! holder lets go.
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
//! Every epoch records this device's sender slot in it (the top 16 bits of its KIDs), fixed at
//! install: a keyring created before the slot is known learns it from the first key that names
//! this device, and workers already running on it pick it up with their next snapshot.
//!
//! Every installed epoch draws a random 40-bit sender instance for this device's KIDs
//! (docs/PROTOCOL.md, "Nonce uniqueness"): counters restart at 0 in every epoch, every keyring
//! and every process, and the instance is what keeps those restarts from sealing under a
//! (key, nonce) pair used before (RFC 9605 4.4.3, DESIGN I7).
//! Time is an argument everywhere (sans-IO): nothing here reads a clock.

mod epoch;
mod handoff;
mod update;
mod window;
mod worker;

use core::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::{ArcSwap, Guard};
use keyctl::provider::CryptoProvider;
use keyctl::wire::MeetingRef;

pub use epoch::{Epoch, EpochKey, Live, Snapshot};
pub use handoff::{Handled, Handoff, HandoffError, own_slot_in};
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
///
/// Exhaustive on purpose (no `#[non_exhaustive]`): the workspace's drivers (libveil's result
/// codes, the sidecar's counters) match every variant, so a new one is a compile error where it
/// must be mapped instead of a silent `_` arm (docs/ARCHITECTURE.md, "Exhaustive errors").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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

/// Refuses a key whose roster names a slot the KID layout cannot carry.
fn check_roster(key: &EpochKey) -> Result<(), KeyringError> {
    match key.roster.keys().find(|&&slot| slot > MAX_SENDER_SLOT) {
        Some(&slot) => Err(KeyringError::SlotOutOfRange(slot)),
        None => Ok(()),
    }
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

/// The slot value meaning "this device has no slot (yet)": a keyring made with it installs
/// receive-only epochs until a slot is set or a [`Handoff`] learns one.
pub const NO_SLOT: u32 = u32::MAX;

/// What a keyring is for: one meeting instance, one local sender, one cipher suite.
#[derive(Clone, PartialEq, Eq)]
pub struct MeetingConfig {
    /// `meetingID`, an input of every stream key.
    pub meeting_id: Vec<u8>,
    /// `meetingUUID`, the instance of the meeting.
    pub meeting_uuid: Vec<u8>,
    /// The roster slot this device sends as (the top 16 bits of its KIDs) in the epochs
    /// [`Keyring::install`] installs, at most [`MAX_SENDER_SLOT`]; any larger value (such as
    /// [`NO_SLOT`]) makes them receive-only, and seals fail with [`SealError::SlotOutOfRange`].
    /// Each epoch keeps the slot it was installed with; a [`Handoff`] sets this one from the
    /// roster of each key that names this device.
    pub own_slot: u32,
    /// The SFrame cipher suite of every key.
    pub suite: CipherSuite,
}

impl MeetingConfig {
    /// This config with `own_slot` set to `slot`.
    fn with_slot(&self, slot: u32) -> Self {
        Self {
            own_slot: slot,
            ..self.clone()
        }
    }

    /// Whether this is the config of `meeting`'s instance (meetingID and meetingUUID).
    pub fn serves(&self, meeting: &MeetingRef) -> bool {
        self.meeting_id == meeting.meeting_id.as_bytes()
            && self.meeting_uuid == meeting.meeting_uuid.as_bytes()
    }
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
    /// a fresh random sender instance, and seals under the keyring's current
    /// [`MeetingConfig::own_slot`]. A roster slot above [`MAX_SENDER_SLOT`] refuses the key
    /// and changes nothing.
    pub fn install(&self, key: EpochKey, now: Millis) -> Result<(), KeyringError> {
        check_roster(&key)?;
        let send_instance = random_instance(self.load().provider())?;
        self.write(|old| {
            let own_slot = old.config().own_slot;
            let config = Arc::clone(old.config_arc());
            old.with_installed(key, now, send_instance, own_slot, config)
        })
    }

    /// Sets the slot that epochs installed from now on by [`Keyring::install`] seal under
    /// ([`NO_SLOT`]: receive only). Installed epochs keep theirs (see [`Epoch::own_slot`]), so
    /// this is safe at any time: no counter restarts under a key.
    pub fn set_own_slot(&self, slot: u32) {
        // Infallible: the closure never refuses.
        let _ = self.write::<Infallible>(|old| {
            if old.config().own_slot == slot {
                return Ok(None);
            }
            Ok(Some(
                old.with_config(Arc::new(old.config().with_slot(slot))),
            ))
        });
    }

    /// Retires `mk_seq` at `at` (keyctl's `Event::RetireEpoch`), or sooner if already due.
    pub fn retire(&self, mk_seq: u32, at: Millis) {
        let _ = self.write::<Infallible>(|old| Ok(old.with_retire(mk_seq, at)));
    }

    /// Drops the epochs whose retirement time has passed, zeroizing their keys once no reader
    /// holds them. Readers already refuse retired epochs by time; this frees the memory.
    pub fn prune(&self, now: Millis) {
        let _ = self.write::<Infallible>(|old| Ok(old.without_retired(now)));
    }

    /// [`Self::install`] for a [`Handoff`]: refuses a key for another meeting instance than
    /// `meeting`, installs it as an epoch this device seals under as `own_slot` (`None`:
    /// receive only), and publishes a named slot as the keyring's own. One swap under the
    /// writer lock, so the check, the epoch and the slot are one change: no reader sees one
    /// without the others, and no concurrent [`Self::serve`] slips in between.
    fn install_for(
        &self,
        meeting: &MeetingRef,
        key: EpochKey,
        own_slot: Option<u32>,
        now: Millis,
    ) -> Result<(), HandoffError> {
        check_roster(&key)?;
        let send_instance = random_instance(self.load().provider())?;
        self.write(|old| {
            if !old.config().serves(meeting) {
                return Err(HandoffError::WrongMeeting { mk_seq: key.mk_seq });
            }
            let config = match own_slot {
                Some(slot) if slot != old.config().own_slot => {
                    Arc::new(old.config().with_slot(slot))
                }
                _ => Arc::clone(old.config_arc()),
            };
            let epoch_slot = own_slot.unwrap_or(NO_SLOT);
            Ok(old.with_installed(key, now, send_instance, epoch_slot, config)?)
        })
    }

    /// [`Self::retire`] for a [`Handoff`]: refuses a retirement for another meeting instance.
    fn retire_for(
        &self,
        meeting: &MeetingRef,
        mk_seq: u32,
        at: Millis,
    ) -> Result<(), HandoffError> {
        self.write(|old| {
            if !old.config().serves(meeting) {
                return Err(HandoffError::WrongMeeting { mk_seq });
            }
            Ok(old.with_retire(mk_seq, at))
        })
    }

    /// Drops every epoch at once (whitepaper 3.7.8: a participant who leaves discards every
    /// key); their keys are zeroized once no reader holds them, and workers let go of their
    /// copies at their next snapshot or idle tick. The config, this device's slot included,
    /// stays.
    fn erase(&self) {
        let _ = self.write::<Infallible>(|old| Ok(Some(old.emptied(Arc::clone(old.config_arc())))));
    }

    /// Drops every epoch and serves `meeting`'s instance from now on, with no slot for this
    /// device until a key names one: a new session, perhaps in a new meeting instance (stream
    /// keys bind the meetingUUID). Workers on this keyring follow at their next snapshot.
    fn serve(&self, meeting: &MeetingRef) {
        let _ = self.write::<Infallible>(|old| {
            let config = MeetingConfig {
                meeting_id: meeting.meeting_id.as_bytes().to_vec(),
                meeting_uuid: meeting.meeting_uuid.as_bytes().to_vec(),
                own_slot: NO_SLOT,
                suite: old.config().suite,
            };
            Ok(Some(old.emptied(Arc::new(config))))
        });
    }

    fn write<E>(
        &self,
        change: impl FnOnce(&Snapshot) -> Result<Option<Snapshot>, E>,
    ) -> Result<(), E> {
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

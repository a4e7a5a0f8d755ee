//! One key epoch (`mkSeqNum` -> MK and roster) and the immutable snapshot readers load.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use keyctl::provider::CryptoProvider;
use rustc_hash::FxHashMap;
use zeroize::Zeroizing;

use super::window::{AdmitError, EpochWindows, SharedWindow};
use super::{KeyringError, MAX_LIVE_EPOCHS, MeetingConfig, Millis, RETIRE_AFTER_MS};
use crate::stream_key::MAX_SENDER_SLOT;

/// A key handed to the keyring: what keyctl's `KeyUpdate` or a pre-shared key file carries.
pub struct EpochKey {
    /// `mkSeqNum`.
    pub mk_seq: u32,
    /// `MK`, zeroized on drop.
    pub meeting_key: Zeroizing<[u8; 32]>,
    /// Sender slot -> sender ID (the `senderID` of the stream key derivation).
    pub roster: BTreeMap<u32, Vec<u8>>,
    /// When senders switch to this key.
    pub activate_at: Millis,
}

impl core::fmt::Debug for EpochKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EpochKey")
            .field("mk_seq", &self.mk_seq)
            .field("roster_len", &self.roster.len())
            .field("activate_at", &self.activate_at)
            .finish_non_exhaustive()
    }
}

/// An installed epoch. Immutable but for the shared send counters.
pub struct Epoch {
    mk_seq: u32,
    meeting_key: Zeroizing<[u8; 32]>,
    roster: BTreeMap<u32, Vec<u8>>,
    arrived_at: Millis,
    activate_at: Millis,
    /// The random instance this device seals under in this epoch (the middle 40 bits of its
    /// KIDs): fresh for every installed epoch, so no other start, reload, keyring or process
    /// holding the same MK and slot derives the same SFrame keys (docs/PROTOCOL.md).
    send_instance: u64,
    /// This device's sender slot in this epoch (the top 16 bits of its KIDs), fixed when the
    /// epoch is installed; above [`MAX_SENDER_SLOT`] when the epoch gives this device none
    /// (it then only receives). Seals and the reflection check read it here rather than from
    /// the keyring, so a slot the control plane changes applies from the next epoch on, which
    /// has its own MK, instance and counters: under one key this device seals under one slot
    /// only (RFC 9605 4.4.3; docs/PROTOCOL.md "Nonce uniqueness").
    own_slot: u32,
    /// The next unleased counter of each of this device's 256 streams under this epoch. Workers
    /// lease blocks of counters from here (see [`super::WorkerKeys`]), one atomic add per block.
    send_counters: Box<[AtomicU64]>,
    /// Roster slot -> position, indexing `windows`.
    positions: FxHashMap<u32, usize>,
    /// The replay windows of every stream heard under this epoch, shared by all workers.
    windows: EpochWindows,
}

impl core::fmt::Debug for Epoch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Epoch")
            .field("mk_seq", &self.mk_seq)
            .field("arrived_at", &self.arrived_at)
            .field("activate_at", &self.activate_at)
            .field("own_slot", &self.own_slot())
            .finish_non_exhaustive()
    }
}

impl Epoch {
    fn new(key: EpochKey, now: Millis, send_instance: u64, own_slot: u32) -> Self {
        let positions = key
            .roster
            .keys()
            .enumerate()
            .map(|(i, &slot)| (slot, i))
            .collect();
        let windows = EpochWindows::new(key.roster.len());
        Self {
            positions,
            windows,
            mk_seq: key.mk_seq,
            meeting_key: key.meeting_key,
            roster: key.roster,
            arrived_at: now,
            activate_at: key.activate_at,
            send_instance,
            own_slot,
            send_counters: (0..256).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// `mkSeqNum`.
    pub fn mk_seq(&self) -> u32 {
        self.mk_seq
    }

    /// `MK`, for the stream key schedule only.
    pub fn meeting_key(&self) -> &[u8; 32] {
        &self.meeting_key
    }

    /// The sender ID of a roster slot.
    pub fn sender(&self, slot: u32) -> Option<&[u8]> {
        self.roster.get(&slot).map(Vec::as_slice)
    }

    /// When the keyring received this epoch.
    pub fn arrived_at(&self) -> Millis {
        self.arrived_at
    }

    /// When senders switch to it.
    pub fn activate_at(&self) -> Millis {
        self.activate_at
    }

    /// The instance this device seals under in this epoch.
    pub fn send_instance(&self) -> u64 {
        self.send_instance
    }

    /// This device's sender slot in this epoch, `None` if it only receives under it.
    pub fn own_slot(&self) -> Option<u32> {
        (self.own_slot <= MAX_SENDER_SLOT).then_some(self.own_slot)
    }

    /// The slot as installed, out-of-range values included (a receive-only epoch), for the
    /// seal's error.
    pub(super) fn own_slot_raw(&self) -> u32 {
        self.own_slot
    }

    /// How many stream windows exist (one per KID whose packets authenticated), over every
    /// sender: at most roster size times [`super::MAX_STREAMS_PER_SENDER`].
    pub fn stream_windows(&self) -> usize {
        self.windows.count()
    }

    /// The roster position of `slot`, indexing the windows.
    pub(super) fn position(&self, slot: u32) -> Option<usize> {
        self.positions.get(&slot).copied()
    }

    /// The window of `kid` from the member at `position`, if a packet under it authenticated.
    pub(super) fn find_window(&self, position: usize, kid: u64) -> Option<(usize, &SharedWindow)> {
        self.windows.find(position, kid)
    }

    /// The window at an index [`Self::find_window`] or [`Self::admit_window`] returned.
    pub(super) fn window_at(
        &self,
        position: usize,
        index: usize,
        kid: u64,
    ) -> Option<&SharedWindow> {
        self.windows.at(position, index, kid)
    }

    /// The window of `kid`, created if the member has room; call only after authentication.
    pub(super) fn admit_window(
        &self,
        position: usize,
        kid: u64,
    ) -> Result<(usize, &SharedWindow), AdmitError> {
        self.windows.admit(position, kid)
    }

    pub(super) fn send_counter(&self, stream_index: u8) -> &AtomicU64 {
        &self.send_counters[usize::from(stream_index)]
    }
}

/// An epoch in a snapshot, with its retirement time once a newer one arrived.
#[derive(Debug, Clone)]
pub struct Live {
    /// The epoch.
    pub epoch: Arc<Epoch>,
    /// When it stops decrypting; `None` while it is the newest.
    pub retire_at: Option<Millis>,
}

/// What readers load: the meeting and its live epochs, oldest first. Never changes once
/// published; writers publish a new one.
#[derive(Debug)]
pub struct Snapshot {
    generation: u64,
    config: Arc<MeetingConfig>,
    provider: &'static CryptoProvider,
    epochs: Vec<Live>,
}

impl Snapshot {
    pub(super) fn empty(config: Arc<MeetingConfig>, provider: &'static CryptoProvider) -> Self {
        Self {
            generation: 0,
            config,
            provider,
            epochs: Vec::new(),
        }
    }

    /// Grows by one with every published change, so a worker can tell its caches are stale.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The meeting this keyring serves.
    pub fn config(&self) -> &MeetingConfig {
        &self.config
    }

    /// The crypto provider the keyring's keys are derived with.
    pub fn provider(&self) -> &'static CryptoProvider {
        self.provider
    }

    /// The mkSeqNums of the live epochs, oldest first.
    pub fn mk_seqs(&self) -> impl Iterator<Item = u32> + '_ {
        self.epochs.iter().map(|live| live.epoch.mk_seq)
    }

    /// The live entry of `mk_seq`, retired by time or not.
    pub fn live(&self, mk_seq: u32) -> Option<&Live> {
        self.epochs
            .iter()
            .rev()
            .find(|live| live.epoch.mk_seq == mk_seq)
    }

    /// The newest epoch, whether or not it sends yet.
    pub fn newest(&self) -> Option<&Arc<Epoch>> {
        self.epochs.last().map(|live| &live.epoch)
    }

    /// The epoch that decrypts packets prefixed with `mk_seq` at `now`, if any.
    pub fn recv_epoch(&self, mk_seq: u32, now: Millis) -> Option<&Arc<Epoch>> {
        self.live(mk_seq)
            .filter(|live| live.retire_at.is_none_or(|at| now < at))
            .map(|live| &live.epoch)
    }

    /// The epoch to send with at `now`: the newest whose activation time has passed
    /// (whitepaper 3.7.6: senders switch after the new key is certified and distributed).
    pub fn send_epoch(&self, now: Millis) -> Option<&Arc<Epoch>> {
        self.epochs
            .iter()
            .rev()
            .find(|live| live.epoch.activate_at <= now && live.retire_at.is_none_or(|at| now < at))
            .map(|live| &live.epoch)
    }

    /// The shared handle on the config, for a writer that keeps it.
    pub(super) fn config_arc(&self) -> &Arc<MeetingConfig> {
        &self.config
    }

    fn next(&self, epochs: Vec<Live>) -> Self {
        self.next_in(Arc::clone(&self.config), epochs)
    }

    /// The successor under `config`: the generation always grows, so every worker's
    /// [`super::WorkerKeys::sync`] notices, whatever changed.
    fn next_in(&self, config: Arc<MeetingConfig>, epochs: Vec<Live>) -> Self {
        Self {
            generation: self.generation + 1,
            config,
            provider: self.provider,
            epochs,
        }
    }

    /// With `key` installed as an epoch this device seals under as `own_slot` (above
    /// [`MAX_SENDER_SLOT`]: receive only), published with `config`.
    pub(super) fn with_installed(
        &self,
        key: EpochKey,
        now: Millis,
        send_instance: u64,
        own_slot: u32,
        config: Arc<MeetingConfig>,
    ) -> Result<Option<Self>, KeyringError> {
        if let Some(newest) = self.newest()
            && key.mk_seq <= newest.mk_seq
        {
            return Err(KeyringError::NotNewer {
                mk_seq: key.mk_seq,
                newest: newest.mk_seq,
            });
        }
        let mut epochs = self.epochs.clone();
        // whitepaper 3.7.6 / v4.6: the superseded key decrypts for 10 s more, then goes.
        if let Some(last) = epochs.last_mut() {
            let due = now + RETIRE_AFTER_MS;
            last.retire_at = Some(last.retire_at.map_or(due, |at| at.min(due)));
        }
        epochs.push(Live {
            epoch: Arc::new(Epoch::new(key, now, send_instance, own_slot)),
            retire_at: None,
        });
        let excess = epochs.len().saturating_sub(MAX_LIVE_EPOCHS);
        epochs.drain(..excess);
        Ok(Some(self.next_in(config, epochs)))
    }

    /// The same epochs under `config`.
    pub(super) fn with_config(&self, config: Arc<MeetingConfig>) -> Self {
        self.next_in(config, self.epochs.clone())
    }

    /// No epoch at all under `config`: every key erased (once no reader holds the old
    /// snapshot), a new config published in the same swap.
    pub(super) fn emptied(&self, config: Arc<MeetingConfig>) -> Self {
        self.next_in(config, Vec::new())
    }

    pub(super) fn with_retire(&self, mk_seq: u32, at: Millis) -> Option<Self> {
        let index = self.epochs.iter().position(|l| l.epoch.mk_seq == mk_seq)?;
        let mut epochs = self.epochs.clone();
        let live = &mut epochs[index];
        live.retire_at = Some(live.retire_at.map_or(at, |old| old.min(at)));
        Some(self.next(epochs))
    }

    pub(super) fn without_retired(&self, now: Millis) -> Option<Self> {
        let retired = |live: &Live| live.retire_at.is_some_and(|at| at <= now);
        if !self.epochs.iter().any(retired) {
            return None;
        }
        Some(
            self.next(
                self.epochs
                    .iter()
                    .filter(|l| !retired(l))
                    .cloned()
                    .collect(),
            ),
        )
    }
}

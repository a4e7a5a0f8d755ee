//! A worker's private view of the keyring: derived keys, counter leases and replay windows.
//!
//! Each worker thread owns one [`WorkerKeys`]. Nothing in it is shared, so the packet path takes
//! no lock and touches no shared atomic per packet:
//! - receive keys are derived on a stream's first packet, and cached per epoch only once a
//!   packet under them authenticated and its sender got a replay window for it (at most
//!   [`super::MAX_STREAMS_PER_SENDER`] per roster member and epoch). A forged packet costs one
//!   derivation and leaves nothing behind, whatever KID it names;
//! - packets under this device's own slot are refused before any derivation (RFC 9605 4.4.1: a
//!   receiver never decrypts with a send key), so a relay cannot reflect its own media back;
//! - in datagram mode only stream index 0 exists, on both sides;
//! - replay windows are per (mkSeqNum, KID) and shared by all workers, lock-free (see
//!   [`super::SharedWindow`]): per-worker windows would accept a replay sent from another
//!   source port, which SO_REUSEPORT hands to another worker;
//! - send counters come from the epoch's shared counter per stream, leased [`LEASE`] at a time
//!   with one atomic add. Leases never overlap, so no two workers ever seal under the same
//!   counter (RFC 9605 4.4.3: a nonce is never reused under a key), and counters stay close
//!   enough together across workers (within `LEASE * workers`) for the receiver's 4032-wide window.
//!   The KID carries the epoch's random sender instance, so counters that start again at 0 (a new
//!   epoch, keyring or process) are under another SFrame key.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rustc_hash::FxHashMap;
use zeroize::Zeroizing;

use super::window::AdmitError;
use super::{Epoch, Millis, Snapshot};
use crate::packet::{self, Error as PacketError, Mode, Protected};
use crate::sframe::{self, KeyMaterial};
use crate::stream_key::{MAX_SENDER_SLOT, StreamId, stream_base_key_with_provider};

/// Counters a worker leases from an epoch's shared counter at once: one atomic add per batch.
pub const LEASE: u64 = 64;

/// Send counters stop here: the receivers' shared windows refuse counters from 2^52 on (their
/// 48-bit block tags), and stopping far below `u64::MAX` means the shared counter, which grows
/// by [`LEASE`] per lease, can never wrap around to counters already used.
pub const MAX_SEND_COUNTER: u64 = 1 << 52;

/// Why a packet could not be sealed.
///
/// Exhaustive on purpose (no `#[non_exhaustive]`): the workspace's drivers (libveil's result
/// codes, the sidecar's counters) match every variant, so a new one is a compile error where it
/// must be mapped instead of a silent `_` arm (docs/ARCHITECTURE.md, "Exhaustive errors").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// No epoch is active for sending yet.
    #[error("no key epoch is active for sending")]
    NoSendEpoch,
    /// This device's slot is not in the active epoch's roster.
    #[error("sender slot {0} is not in the roster")]
    NotInRoster(u32),
    /// This device's slot is above [`MAX_SENDER_SLOT`] (a receive-only keyring, or a slot the
    /// KID layout cannot carry).
    #[error("sender slot {0} cannot send: above the largest sender slot ({MAX_SENDER_SLOT})")]
    SlotOutOfRange(u32),
    /// Datagram mode has one stream per sender, index 0.
    #[error("stream index {0}: datagram mode has only stream 0")]
    DatagramStream(u8),
    /// Every counter of the stream under this epoch was used.
    #[error("send counters of the stream are exhausted")]
    CountersExhausted,
    /// The stream key schedule failed.
    #[error(transparent)]
    StreamKey(#[from] crate::stream_key::Error),
    /// Framing or the AEAD refused it (for example a buffer too small).
    #[error(transparent)]
    Packet(#[from] PacketError),
}

struct SendStream {
    kid: u64,
    material: KeyMaterial,
    next: u64,
    end: u64,
}

/// A receive key whose stream authenticated, with where its shared window is.
struct RecvStream {
    material: KeyMaterial,
    position: usize,
    window: usize,
}

struct LocalEpoch {
    epoch: Arc<Epoch>,
    /// Keyed by KID; holds only KIDs that have a window in the epoch, so it is bounded as the
    /// windows are.
    recv: FxHashMap<u64, RecvStream>,
    send: FxHashMap<u8, SendStream>,
}

/// One worker's keys: see the module docs.
pub struct WorkerKeys {
    mode: Mode,
    generation: u64,
    epochs: FxHashMap<u32, LocalEpoch>,
}

impl core::fmt::Debug for WorkerKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WorkerKeys")
            .field("generation", &self.generation)
            .field("epochs", &self.epochs.len())
            .finish()
    }
}

fn base_key(
    snapshot: &Snapshot,
    epoch: &Epoch,
    stream: StreamId,
    kid: u64,
) -> Result<Zeroizing<[u8; 32]>, PacketError> {
    let config = snapshot.config();
    let sender = epoch
        .sender(stream.sender_slot)
        .ok_or(sframe::Error::UnknownKid(kid))?;
    stream_base_key_with_provider(
        snapshot.provider(),
        epoch.meeting_key(),
        &config.meeting_id,
        &config.meeting_uuid,
        sender,
        stream.stream_index,
    )
    .map_err(|_| sframe::Error::Crypto.into())
}

impl WorkerKeys {
    /// A worker for packets framed as `mode` that has derived nothing yet.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            generation: 0,
            epochs: FxHashMap::default(),
        }
    }

    /// Brings the caches in line with `snapshot`: forgets (and so zeroizes) the keys of epochs it
    /// no longer holds. Costs a comparison unless the keyring changed.
    pub fn sync(&mut self, snapshot: &Snapshot) {
        if snapshot.generation() == self.generation {
            return;
        }
        self.generation = snapshot.generation();
        self.epochs.retain(|mk_seq, local| {
            snapshot
                .live(*mk_seq)
                .is_some_and(|live| Arc::ptr_eq(&live.epoch, &local.epoch))
        });
    }

    /// The engines' idle-tick entry point: syncs with `snapshot` as a seal or open would, and
    /// also forgets the epochs retired by time at `now` (they refuse every packet already) before
    /// any writer pruned them. Engines call it at least once per idle period whether or not
    /// packets flow, so no worker's copy of a retired epoch (its derived keys and its reference
    /// to the meeting key) outlives the retirement by more than that period (review finding
    /// 19.6; whitepaper 3.7.6: a retired key stops decrypting and is erased).
    pub fn sync_idle(&mut self, snapshot: &Snapshot, now: Millis) {
        self.sync(snapshot);
        self.epochs
            .retain(|mk_seq, _| snapshot.recv_epoch(*mk_seq, now).is_some());
    }

    fn local<'a>(
        epochs: &'a mut FxHashMap<u32, LocalEpoch>,
        epoch: &Arc<Epoch>,
    ) -> &'a mut LocalEpoch {
        epochs.entry(epoch.mk_seq()).or_insert_with(|| LocalEpoch {
            epoch: Arc::clone(epoch),
            recv: FxHashMap::default(),
            send: FxHashMap::default(),
        })
    }

    /// Seals `buf[headroom..headroom + len]` in place as this device's stream `stream_index`
    /// under the epoch that sends at `now`. Returns the protected packet's range in `buf`.
    pub fn seal(
        &mut self,
        snapshot: &Snapshot,
        now: Millis,
        stream_index: u8,
        buf: &mut [u8],
        headroom: usize,
        len: usize,
    ) -> Result<Range<usize>, SealError> {
        self.sync(snapshot);
        let epoch = snapshot.send_epoch(now);
        // The slot is the sending epoch's, fixed when it was installed (see `Epoch::own_slot`);
        // with no epoch to send with, the keyring's, so that a keyring that knows no slot for
        // this device says so before it says it has no key.
        let own_slot = epoch.map_or(snapshot.config().own_slot, |epoch| epoch.own_slot_raw());
        if own_slot > MAX_SENDER_SLOT {
            return Err(SealError::SlotOutOfRange(own_slot));
        }
        if self.mode == Mode::Datagram && stream_index != 0 {
            return Err(SealError::DatagramStream(stream_index));
        }
        let epoch = epoch.ok_or(SealError::NoSendEpoch)?;
        let local = Self::local(&mut self.epochs, epoch);
        let send = match local.send.entry(stream_index) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                // The epoch's own random instance: see the module docs and docs/PROTOCOL.md.
                let stream = StreamId {
                    sender_slot: own_slot,
                    sender_instance: local.epoch.send_instance(),
                    stream_index,
                };
                let kid = stream.kid()?;
                let base = base_key(snapshot, &local.epoch, stream, kid).map_err(|e| match e {
                    PacketError::Sframe(sframe::Error::UnknownKid(_)) => {
                        SealError::NotInRoster(own_slot)
                    }
                    other => SealError::Packet(other),
                })?;
                // RFC 9605 4.4.2: the KID, instance included, goes into sframe_key and sframe_salt.
                let material = KeyMaterial::derive_with_provider(
                    snapshot.provider(),
                    snapshot.config().suite,
                    kid,
                    &*base,
                )
                .map_err(PacketError::from)?;
                entry.insert(SendStream {
                    kid,
                    material,
                    next: 0,
                    end: 0,
                })
            }
        };
        if send.next == send.end {
            // One atomic add per LEASE packets; Relaxed suffices: only uniqueness matters, and
            // fetch_add is a single read-modify-write on one location.
            let start = local
                .epoch
                .send_counter(stream_index)
                .fetch_add(LEASE, Ordering::Relaxed);
            if start >= MAX_SEND_COUNTER {
                return Err(SealError::CountersExhausted);
            }
            (send.next, send.end) = (start, start + LEASE);
        }
        let ctr = send.next;
        send.next += 1;
        Ok(packet::seal_with_counter(
            self.mode,
            &send.material,
            send.kid,
            ctr,
            local.epoch.mk_seq(),
            buf,
            headroom,
            len,
        )?)
    }

    /// Opens a received packet in place: finds its epoch (refusing retired ones at `now`),
    /// refuses this device's own slot and, in datagram mode, any stream but 0, screens the
    /// replay window, verifies and decrypts. A stream's key is derived on its first packet and
    /// kept, with a shared replay window, only once a packet under it authenticated. Returns the
    /// plaintext's range in `buf`.
    pub fn open(
        &mut self,
        snapshot: &Snapshot,
        now: Millis,
        buf: &mut [u8],
    ) -> Result<Range<usize>, PacketError> {
        self.sync(snapshot);
        let parsed = Protected::parse(self.mode, buf)?;
        let epoch = snapshot
            .recv_epoch(parsed.mk_seq, now)
            .ok_or(PacketError::UnknownEpoch(parsed.mk_seq))?;
        let (kid, ctr) = (parsed.header.kid, parsed.header.ctr);
        let stream = StreamId::from_kid(kid);
        // RFC 9605 4.4.1: this device's KIDs hold send keys only; never derive a receive key
        // for one, or a relay could hand a sender its own packets back. The slot is the one
        // this device sealed under in the packet's epoch, which a later slot change leaves as
        // it was.
        if Some(stream.sender_slot) == epoch.own_slot() {
            return Err(PacketError::Reflected(kid));
        }
        if self.mode == Mode::Datagram && stream.stream_index != 0 {
            return Err(sframe::Error::UnknownKid(kid).into());
        }
        let local = Self::local(&mut self.epochs, epoch);
        // A cached stream was admitted under this epoch's roster, which never changes, so its
        // roster position is the one it keeps: no lookup on the per-packet path.
        if let Some(cached) = local.recv.get(&kid) {
            let window = local
                .epoch
                .window_at(cached.position, cached.window, kid)
                .ok_or(sframe::Error::UnknownKid(kid))?;
            // Screen before the AEAD, record only after it (RFC 6479; a forgery moves nothing).
            window.check(ctr)?;
            let plaintext = packet::open_with_key(&cached.material, &parsed, buf)?;
            window.mark(ctr)?;
            return Ok(plaintext);
        }
        // First packet of this KID at this worker: a sender in the roster, or nobody to derive
        // a key for.
        let position = local
            .epoch
            .position(stream.sender_slot)
            .ok_or(sframe::Error::UnknownKid(kid))?;
        // Derive its key without keeping it.
        let base = base_key(snapshot, &local.epoch, stream, kid)?;
        let material = KeyMaterial::derive_with_provider(
            snapshot.provider(),
            snapshot.config().suite,
            kid,
            &*base,
        )?;
        if let Some((_, window)) = local.epoch.find_window(position, kid) {
            window.check(ctr)?;
        }
        let plaintext = packet::open_with_key(&material, &parsed, buf)?;
        // Authentic: only now may the stream take a window and its key a place in the cache.
        let (index, window) = match local.epoch.admit_window(position, kid) {
            Ok(admitted) => admitted,
            Err(AdmitError::Full | AdmitError::NotInRoster) => {
                // Refused: release none of the plaintext.
                buf[plaintext].fill(0);
                return Err(PacketError::StreamLimit(kid));
            }
        };
        local.recv.insert(
            kid,
            RecvStream {
                material,
                position,
                window: index,
            },
        );
        window.mark(ctr)?;
        Ok(plaintext)
    }

    /// How many receive keys this worker holds over every epoch (each authenticated, each with
    /// a window in its epoch).
    pub fn cached_recv_keys(&self) -> usize {
        self.epochs.values().map(|local| local.recv.len()).sum()
    }

    /// How many epochs this worker holds derived keys for.
    pub fn cached_epochs(&self) -> usize {
        self.epochs.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use zeroize::Zeroizing;

    use super::*;
    use crate::keyring::{EpochKey, Keyring, MeetingConfig};
    use crate::packet::HEADROOM;
    use crate::sframe::CipherSuite;

    fn key(mk_seq: u32) -> EpochKey {
        EpochKey {
            mk_seq,
            meeting_key: Zeroizing::new([mk_seq as u8; 32]),
            roster: BTreeMap::from([(1, b"alice".to_vec()), (2, b"bob".to_vec())]),
            activate_at: Millis(0),
        }
    }

    /// Finding 19.6: the idle sync drops an epoch as soon as it is retired by time, before any
    /// writer pruned it, and with no packet to seal or open.
    #[test]
    fn the_idle_sync_forgets_an_epoch_retired_by_time() {
        let ring = Keyring::new(MeetingConfig {
            meeting_id: b"m".to_vec(),
            meeting_uuid: b"u".to_vec(),
            own_slot: 1,
            suite: CipherSuite::Aes256GcmSha512_128,
        });
        ring.install(key(1), Millis(0)).unwrap();
        let mut keys = WorkerKeys::new(Mode::Datagram);
        let mut buf = [0u8; HEADROOM + 4 + 16];
        keys.seal(&ring.load(), Millis(0), 0, &mut buf, HEADROOM, 4)
            .unwrap();
        ring.install(key(2), Millis(1_000)).unwrap();
        keys.sync_idle(&ring.load(), Millis(1_000));
        assert_eq!(keys.cached_epochs(), 1, "epoch 1 still decrypts until 11 s");
        // Retired at 11 s (install + 10 s) and not pruned: nothing may keep it past then.
        keys.sync_idle(&ring.load(), Millis(11_000));
        assert_eq!(keys.cached_epochs(), 0);
    }
}

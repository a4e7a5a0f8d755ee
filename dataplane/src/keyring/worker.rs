//! A worker's private view of the keyring: derived keys, counter leases and replay windows.
//!
//! Each worker thread owns one [`WorkerKeys`]. Nothing in it is shared, so the packet path takes
//! no lock and touches no shared atomic per packet:
//! - receive keys are derived lazily on a stream's first packet and cached per epoch;
//! - replay windows are per (mkSeqNum, KID) and shared by all workers, lock-free (see
//!   [`super::SharedWindow`]): per-worker windows would accept a replay sent from another
//!   source port, which SO_REUSEPORT hands to another worker;
//! - send counters come from the epoch's shared counter per stream, leased [`LEASE`] at a time
//!   with one atomic add. Leases never overlap, so no two workers ever seal under the same
//!   counter (RFC 9605 4.4.3: a nonce is never reused under a key), and counters stay close
//!   enough together across workers (within `LEASE * workers`) for the receiver's 4032-wide window.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rustc_hash::FxHashMap;
use zeroize::Zeroizing;

use super::{Epoch, Millis, Snapshot};
use crate::packet::{self, Error as PacketError, Mode, Protected};
use crate::sframe::{self, Context, KeyMaterial};
use crate::stream_key::{StreamId, stream_base_key};

/// Counters a worker leases from an epoch's shared counter at once: one atomic add per batch.
pub const LEASE: u64 = 64;

/// Why a packet could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// No epoch is active for sending yet.
    #[error("no key epoch is active for sending")]
    NoSendEpoch,
    /// This device's slot is not in the active epoch's roster.
    #[error("sender slot {0} is not in the roster")]
    NotInRoster(u32),
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

struct LocalEpoch {
    epoch: Arc<Epoch>,
    recv: Context,
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
) -> Result<Zeroizing<[u8; 32]>, PacketError> {
    let config = snapshot.config();
    let sender = epoch
        .sender(stream.sender_slot)
        .ok_or(sframe::Error::UnknownKid(stream.kid()))?;
    stream_base_key(
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

    fn local<'a>(
        epochs: &'a mut FxHashMap<u32, LocalEpoch>,
        snapshot: &Snapshot,
        epoch: &Arc<Epoch>,
    ) -> &'a mut LocalEpoch {
        epochs.entry(epoch.mk_seq()).or_insert_with(|| LocalEpoch {
            epoch: Arc::clone(epoch),
            recv: Context::new(snapshot.config().suite),
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
        let epoch = snapshot.send_epoch(now).ok_or(SealError::NoSendEpoch)?;
        let stream = StreamId {
            sender_slot: snapshot.config().own_slot,
            stream_index,
        };
        let local = Self::local(&mut self.epochs, snapshot, epoch);
        let send = match local.send.entry(stream_index) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let base = base_key(snapshot, &local.epoch, stream).map_err(|e| match e {
                    PacketError::Sframe(sframe::Error::UnknownKid(_)) => {
                        SealError::NotInRoster(stream.sender_slot)
                    }
                    other => SealError::Packet(other),
                })?;
                let material = KeyMaterial::derive(snapshot.config().suite, stream.kid(), &*base)
                    .map_err(PacketError::from)?;
                entry.insert(SendStream {
                    kid: stream.kid(),
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
            let end = start
                .checked_add(LEASE)
                .ok_or(SealError::CountersExhausted)?;
            (send.next, send.end) = (start, end);
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
    /// derives the stream's key on first use, screens the replay window, verifies and decrypts.
    /// Returns the plaintext's range in `buf`.
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
        let stream = StreamId::from_kid(kid).map_err(|_| sframe::Error::UnknownKid(kid))?;
        let local = Self::local(&mut self.epochs, snapshot, epoch);
        if !local.recv.has_key(kid) {
            let base = base_key(snapshot, &local.epoch, stream)?;
            local.recv.add_recv_key(kid, &*base)?;
        }
        // Screen before the AEAD, record only after it (RFC 6479; a forgery moves nothing).
        if let Some(window) = local.epoch.window(stream) {
            window.check(ctr)?;
        }
        let plaintext = packet::open_without_replay_check(&local.recv, &parsed, buf)?;
        local
            .epoch
            .window_or_create(stream)
            .ok_or(sframe::Error::UnknownKid(kid))?
            .mark(ctr)?;
        Ok(plaintext)
    }

    /// How many epochs this worker holds derived keys for.
    pub fn cached_epochs(&self) -> usize {
        self.epochs.len()
    }
}

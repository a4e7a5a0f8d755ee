//! Packets in batches: a fixed slab of buffers, sealed or opened with one keyring snapshot.
//!
//! A [`Batch`] owns [`BATCH_SIZE`] slots of [`SLOT_LEN`] bytes in one allocation made at start,
//! so steady-state traffic allocates nothing (`dataplane/tests/batch_no_alloc.rs` counts). A
//! plaintext is received at [`HEADROOM`] into its slot so sealing can prepend the mkSeqNum and
//! SFrame header in place; a protected packet is received at the slot's start and opened in place.
//! The IO engines fill and drain slots; [`seal_batch`] and [`open_batch`] load the keyring once.
//!
//! A batch's slots need not be its own slab: [`Batch::with_memory`] makes one whose slots are an
//! engine's receive buffers ([`SlotMemory`]), so packets are sealed or opened where the kernel
//! wrote them and sent from there, with no copy (the io_uring engine does this without GRO,
//! and behind GRO for the packets it opens, each slot then a window onto one segment).

use std::any::Any;
use std::net::SocketAddr;
use std::ops::Range;

use crate::keyring::{Keyring, Millis, SealError, WorkerKeys};
use crate::packet::rtp::RtpHeader;
use crate::packet::{DropCounters, HEADROOM, Mode};

/// Packets per batch: enough to amortize a syscall and a snapshot load, small enough to stay in
/// L1/L2 (wireguard-go and quinn-udp use 32-128).
pub const BATCH_SIZE: usize = 64;

/// Bytes per slot: the headroom, an Ethernet-MTU datagram, and the longest tag.
pub const SLOT_LEN: usize = 2048;

/// Room a slot keeps after a received payload for the longest tag of any suite, so that sealing
/// in place never outgrows the slot. Engines receive at most `SLOT_LEN - offset - TAG_ROOM`.
pub const TAG_ROOM: usize = 16;

/// The largest plaintext a slot can seal in place.
pub const MAX_PLAINTEXT: usize = SLOT_LEN - HEADROOM - TAG_ROOM;

/// Why a local packet was not sealed and sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SendDrop {
    /// No epoch is active for sending, or this device is not in its roster.
    NoKey,
    /// The local packet is malformed (RTP mode: not RTP) or too large.
    BadInput,
}

impl SendDrop {
    /// Every reason, in counter order.
    pub const ALL: [SendDrop; 2] = [Self::NoKey, Self::BadInput];

    /// A short stable name, for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoKey => "no_key",
            Self::BadInput => "bad_input",
        }
    }

    fn of(error: &SealError) -> Self {
        match error {
            SealError::NoSendEpoch
            | SealError::NotInRoster(_)
            | SealError::SlotOutOfRange(_)
            | SealError::CountersExhausted => Self::NoKey,
            _ => Self::BadInput,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    start: usize,
    end: usize,
    addr: Option<SocketAddr>,
    dropped: bool,
}

const EMPTY: Meta = Meta {
    start: 0,
    end: 0,
    addr: None,
    dropped: false,
};

/// Slot memory a batch does not own: an engine's receive buffers, which it lends slot by slot.
///
/// Slot `index` is at most [`SLOT_LEN`] bytes. A full slot is laid out as a slab's slot is (a
/// plaintext at [`HEADROOM`], a protected packet at 0, [`TAG_ROOM`] free after either), and
/// a packet can be sealed or opened in it. A shorter slot is a window onto just the bytes a
/// packet arrived in (one segment of a coalesced receive, its neighbours right before and
/// after it): a packet there can be opened in place, since [`open_batch`] writes only within
/// the packet's range, but not sealed, since sealing needs the headroom and tag room the slot
/// lacks ([`seal_batch`] refuses it as [`SendDrop::BadInput`] and writes nothing). A batch
/// reads each slot's length from the slot itself: [`Batch::commit`] refuses a range beyond
/// it, so no step of the batch reaches past a slot into its neighbour.
///
/// The engine assigns a buffer to slot `len()` before [`Batch::commit`]ting it and takes the
/// buffers back only after the batch's sends completed, clearing the batch. A slot with no
/// buffer assigned is still a slot (spare memory of the engine's).
pub trait SlotMemory: Send + Sync {
    /// Slot `index` (at most [`SLOT_LEN`] bytes).
    fn slot(&self, index: usize) -> &[u8];
    /// Slot `index` (as long as [`Self::slot`] says), to seal or open in.
    fn slot_mut(&mut self, index: usize) -> &mut [u8];
    /// The memory as its concrete type, for the engine that lent it.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// Where a batch's slots live.
enum Store {
    /// Its own slab of [`BATCH_SIZE`] slots.
    Slab(Box<[u8]>),
    /// An engine's buffers.
    Lent(Box<dyn SlotMemory>),
}

/// Up to [`BATCH_SIZE`] packets in one preallocated slab (or in an engine's buffers).
pub struct Batch {
    store: Store,
    meta: [Meta; BATCH_SIZE],
    len: usize,
}

impl core::fmt::Debug for Batch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Batch").field("len", &self.len).finish()
    }
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

/// Packets and bytes a batch step passed on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Packets.
    pub packets: u64,
    /// Bytes (of what was passed on: sealed packets, or plaintexts).
    pub bytes: u64,
}

impl Batch {
    /// An empty batch; the only allocation it ever makes.
    pub fn new() -> Self {
        Self {
            store: Store::Slab(vec![0u8; BATCH_SIZE * SLOT_LEN].into_boxed_slice()),
            meta: [EMPTY; BATCH_SIZE],
            len: 0,
        }
    }

    /// An empty batch whose slots are `memory`'s (see [`SlotMemory`]).
    pub fn with_memory(memory: Box<dyn SlotMemory>) -> Self {
        Self {
            store: Store::Lent(memory),
            meta: [EMPTY; BATCH_SIZE],
            len: 0,
        }
    }

    /// The memory lent by [`Self::with_memory`], if any.
    pub fn memory_mut(&mut self) -> Option<&mut dyn SlotMemory> {
        match &mut self.store {
            Store::Slab(_) => None,
            Store::Lent(memory) => Some(memory.as_mut()),
        }
    }

    fn slot(&self, index: usize) -> &[u8] {
        match &self.store {
            Store::Slab(slab) => &slab[index * SLOT_LEN..(index + 1) * SLOT_LEN],
            Store::Lent(memory) => memory.slot(index),
        }
    }

    /// Packets held, dropped ones included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no packet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether every slot is taken.
    pub fn is_full(&self) -> bool {
        self.len == BATCH_SIZE
    }

    /// Forgets every packet; the slab stays.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The whole slot `index`, for an engine to receive into.
    pub fn slot_mut(&mut self, index: usize) -> &mut [u8] {
        match &mut self.store {
            Store::Slab(slab) => &mut slab[index * SLOT_LEN..(index + 1) * SLOT_LEN],
            Store::Lent(memory) => memory.slot_mut(index),
        }
    }

    /// The slab, for engines that point iovecs at every slot at once; `None` for a batch over
    /// lent memory.
    pub fn slab_mut(&mut self) -> Option<&mut [u8]> {
        match &mut self.store {
            Store::Slab(slab) => Some(slab),
            Store::Lent(_) => None,
        }
    }

    /// Records that slot `len()` now holds a packet at `range` of the slot, from `addr`.
    /// Returns false (and records nothing) if the batch is full or the range is not inside
    /// the slot (which a lent slot may make shorter than [`SLOT_LEN`]: see [`SlotMemory`]).
    pub fn commit(&mut self, range: Range<usize>, addr: Option<SocketAddr>) -> bool {
        if self.is_full() || range.start > range.end || range.end > self.slot(self.len).len() {
            return false;
        }
        self.meta[self.len] = Meta {
            start: range.start,
            end: range.end,
            addr,
            dropped: false,
        };
        self.len += 1;
        true
    }

    /// Marks packet `index` dropped (an engine does so for a datagram that did not fit).
    pub fn drop_packet(&mut self, index: usize) {
        if index < self.len {
            self.meta[index].dropped = true;
        }
    }

    /// Copies a plaintext into the next slot at [`HEADROOM`], ready for [`seal_batch`].
    pub fn push_plain(&mut self, payload: &[u8], addr: Option<SocketAddr>) -> bool {
        self.push_at(HEADROOM, payload, addr)
    }

    /// Copies a protected packet into the next slot, ready for [`open_batch`].
    pub fn push_wire(&mut self, packet: &[u8], addr: Option<SocketAddr>) -> bool {
        self.push_at(0, packet, addr)
    }

    fn push_at(&mut self, at: usize, bytes: &[u8], addr: Option<SocketAddr>) -> bool {
        if self.is_full() || at + bytes.len() + TAG_ROOM > self.slot(self.len).len() {
            return false;
        }
        let index = self.len;
        self.slot_mut(index)[at..at + bytes.len()].copy_from_slice(bytes);
        self.commit(at..at + bytes.len(), addr)
    }

    /// Packet `index` as it now stands (sealed, opened, or as received).
    pub fn packet(&self, index: usize) -> &[u8] {
        let meta = &self.meta[index];
        &self.slot(index)[meta.start..meta.end]
    }

    /// The address packet `index` came from.
    pub fn addr(&self, index: usize) -> Option<SocketAddr> {
        self.meta[index].addr
    }

    /// Whether packet `index` was dropped by the last seal or open.
    pub fn is_dropped(&self, index: usize) -> bool {
        self.meta[index].dropped
    }

    /// The packets that were not dropped, in order.
    pub fn live(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len)
            .filter(|&i| !self.meta[i].dropped)
            .map(|i| self.packet(i))
    }
}

/// The stream index of a local packet: 0 in datagram mode; in RTP mode the low byte of the SSRC
/// (RFC 3550 5.1). Two SSRCs with the same low byte share a stream key and its counter sequence,
/// which is safe: counters come from one shared sequence per key, so none repeats.
pub fn stream_index(mode: Mode, packet: &[u8]) -> Option<u8> {
    match mode {
        Mode::Datagram => Some(0),
        Mode::Rtp => RtpHeader::parse(packet).ok().map(|h| h.ssrc() as u8),
    }
}

/// Seals every packet of `batch` in place with one keyring snapshot, as this device's stream
/// picked by [`stream_index`]. Packets that cannot be sealed are marked dropped and counted.
pub fn seal_batch(
    keys: &mut WorkerKeys,
    keyring: &Keyring,
    now: Millis,
    mode: Mode,
    batch: &mut Batch,
    drops: &mut [u64; SendDrop::ALL.len()],
) -> Tally {
    let snapshot = keyring.load();
    let mut tally = Tally::default();
    for index in 0..batch.len {
        let meta = batch.meta[index];
        if meta.dropped {
            // Refused before the pipeline (truncated, or not from the local client): already
            // counted, and never sealed or opened.
            continue;
        }
        let slot = batch.slot_mut(index);
        let outcome = match stream_index(mode, &slot[meta.start..meta.end]) {
            None => Err(SendDrop::BadInput),
            Some(stream) => keys
                .seal(
                    &snapshot,
                    now,
                    stream,
                    slot,
                    meta.start,
                    meta.end - meta.start,
                )
                .map_err(|e| SendDrop::of(&e)),
        };
        let meta = &mut batch.meta[index];
        match outcome {
            Ok(range) => {
                (meta.start, meta.end) = (range.start, range.end);
                tally.packets += 1;
                tally.bytes += range.len() as u64;
            }
            Err(reason) => {
                meta.dropped = true;
                drops[reason as usize] += 1;
            }
        }
    }
    tally
}

/// Opens every packet of `batch` in place with one keyring snapshot: epoch lookup, replay screen,
/// AEAD. Rejected packets are marked dropped and counted by [`crate::packet::DropReason`].
pub fn open_batch(
    keys: &mut WorkerKeys,
    keyring: &Keyring,
    now: Millis,
    batch: &mut Batch,
    drops: &mut DropCounters,
) -> Tally {
    let snapshot = keyring.load();
    let mut tally = Tally::default();
    for index in 0..batch.len {
        let meta = batch.meta[index];
        if meta.dropped {
            // Refused before the pipeline (truncated, or not from the local client): already
            // counted, and never sealed or opened.
            continue;
        }
        let slot = batch.slot_mut(index);
        let outcome = keys.open(&snapshot, now, &mut slot[meta.start..meta.end]);
        let meta = &mut batch.meta[index];
        match outcome {
            Ok(range) => {
                (meta.start, meta.end) = (meta.start + range.start, meta.start + range.end);
                tally.packets += 1;
                tally.bytes += range.len() as u64;
            }
            Err(error) => {
                meta.dropped = true;
                drops.record(error.drop_reason());
            }
        }
    }
    tally
}

#[cfg(test)]
mod tests;

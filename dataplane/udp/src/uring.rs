//! The io_uring engine: multishot RecvMsg over provided buffer rings, SendMsg with UDP GSO.
//!
//! Per worker: one ring (SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN when the kernel has them),
//! both sockets registered as fixed files, and one provided buffer ring per socket. A multishot
//! RecvMsg per socket keeps completing into those buffers with no submission per packet; when the
//! kernel runs out of buffers it ends the multishot (ENOBUFS, no MORE flag) and we re-arm it after
//! recycling (aquatic does the same). A batch's output goes out as SendMsg submissions, one per
//! GSO run; they are submitted by the same `io_uring_enter` that waits for the next receive, and
//! the batch they point into is not refilled until they completed (two batches alternate).
//!
//! Without GRO, a datagram is sealed or opened where it landed and sent from there: the batch
//! is a view over the provided buffers (`RingSlots`). Each buffer is laid out so that the
//! payload, after the kernel's `io_uring_recvmsg_out` header and the name room, sits at its
//! side's [`Side::recv_offset`] of a [`SLOT_LEN`] window: the 44 bytes in front of it hold the
//! mkSeqNum and the longest SFrame header once the name was read out, and the window keeps
//! [`TAG_ROOM`] after the longest accepted payload for the tag. A buffer goes back to the ring
//! only once its batch's sends completed (forged or refused packets included), so the kernel
//! never writes into a buffer a send still reads. Pre-posting one plain RecvMsg per slot (as
//! recvmmsg does) was the other way; it costs a submission per datagram, where the multishot
//! receive costs none under load, so the provided buffers stay.
//!
//! With GRO, a completion may hold many datagrams back to back in one 64 KiB buffer. On the
//! network side, whose datagrams are opened, each is opened where it landed and its plaintext
//! sent from there: the batch's slot is a window onto exactly that segment's bytes (a slot
//! shorter than [`SLOT_LEN`], which [`SlotMemory`] allows), opening writes only within the
//! packet, and the plaintext, shorter than the packet, stays inside it; several slots then
//! share one buffer, which goes back to the ring once, after the batch's sends completed. A
//! buffer whose segments no longer all fit the batch waits for the next batch. On the local
//! side the datagrams are copied into a batch slot each (`split_segments`): sealing grows every
//! datagram by its header and tag, and back to back there is no room for either. (Sealing in
//! place there would need a send that gathers three pieces per packet: a header from a side
//! array, the ciphertext where it landed, the tag from a side array; not built.) GRO stays on
//! by default wherever the kernel takes it; [`Config::gro`] turns it off.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::collections::VecDeque;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::{Duration, Instant};

use io_uring::types::{
    BufRingEntry, CancelBuilder, Fixed, RecvMsgOut, SubmitArgs, TimeoutFlags, Timespec,
};
use io_uring::{IoUring, cqueue, opcode};
use socket2::SockAddr;

pub use crate::ReceiveReport;
use crate::gro::{enable_gro, gro_segment, split_segments};
use crate::mio_engine::DRAIN_LIMIT;
use crate::mmsg::{Mmsg, gso_supported, socket_addr};
use crate::{IoDrop, Pipeline, Side, WorkerSockets, now};
use dataplane::batch::{BATCH_SIZE, Batch, SLOT_LEN, SlotMemory, TAG_ROOM};
use dataplane::packet::HEADROOM;

const RING_ENTRIES: u32 = 256;
/// Provided buffers per socket (a power of two, as the buffer ring requires). The kernel hands
/// them out in ring order, so every buffer is touched in turn and the ring's whole size is the
/// receive path's working set: 256 of about 2 KiB stay within a core's L2 (see GRO_BUFFERS).
const BUFFERS: u16 = 256;
/// The sender address room in each buffer: a sockaddr_in6 holds either family.
const NAME_LEN: usize = size_of::<libc::sockaddr_in6>();
/// Room for the `UDP_GRO` cmsg (CMSG_SPACE(sizeof(int)) is 24 on 64-bit Linux).
const CONTROL_LEN: usize = 32;
/// Where the payload lands in a buffer without GRO: after the kernel's `io_uring_recvmsg_out`
/// header (16 bytes) and the name room (no control room is asked for).
const PAYLOAD_AT: usize = 16 + NAME_LEN;
/// Each buffer: the kernel's `io_uring_recvmsg_out` header, the name, then the payload.
const BUF_LEN: usize = PAYLOAD_AT + SLOT_LEN;
// A slot window puts the payload at its side's receive offset (0, or HEADROOM for a plaintext),
// so it starts at most PAYLOAD_AT into the buffer and must end inside it.
const _: () = assert!(HEADROOM <= PAYLOAD_AT && PAYLOAD_AT + SLOT_LEN <= BUF_LEN);
/// With GRO: header, name, the cmsg, and a coalesced datagram of up to 64 KiB.
const GRO_BUF_LEN: usize = 16 + NAME_LEN + CONTROL_LEN + (1 << 16);
/// Provided buffers per GRO socket: each holds up to 64 datagrams, so 8 hold 512, several
/// batches. 64 of them (4 MiB, cycled through in ring order) made every receive land in memory
/// the cache had long evicted, and copying each datagram out into its batch slot cost about as
/// much as sealing it (docs/BENCHMARKS.md, "Receive buffers"). When all are in use the kernel
/// ends the multishot receive (ENOBUFS), datagrams wait in the socket, and we re-arm.
const GRO_BUFFERS: u16 = 8;
const PAGE: usize = 4096;
/// user_data of send completions; receives use the side's index (0 or 1). Bits 0-7: the
/// message (or, with [`RESEND`], the packet) index, bit 8: the slot.
const SEND: u64 = 1 << 32;
/// Marks a send of one packet of a GSO run the kernel refused as too large, resent alone.
const RESEND: u64 = 1 << 16;
/// user_data of the idle tick (above every send's).
const TICK: u64 = 1 << 40;
/// user_data of the teardown's cancellation of everything in flight.
const CANCEL: u64 = 1 << 48;
/// How long a teardown waits for the kernel to end every operation before it gives up and
/// leaks the memory they point into rather than free it under them.
const TEARDOWN_LIMIT: Duration = Duration::from_secs(2);
/// How long an idle worker sleeps before it looks at its stop flag again.
const IDLE_WAIT: Duration = Duration::from_millis(50);

/// A provided buffer ring (io_uring_register_buf_ring(3)) and the buffers it hands out.
///
/// The kernel writes into the buffers whenever a receive completes, concurrently with this
/// thread, so they are held as a raw allocation and never as a Rust slice or reference:
/// [`Self::buffer`] (and a [`RingSlots`] view) makes a slice of one buffer only between its
/// completion (the kernel handed it over) and [`Self::push`] (handing it back). Freed only once no operation of the ring can
/// write any more: the engine cancels and reaps every operation first ([`Engine::shutdown`]).
struct BufRing {
    entries: NonNull<BufRingEntry>,
    count: u16,
    buf_len: usize,
    entries_layout: Layout,
    tail: u16,
    bufs: NonNull<u8>,
    bufs_layout: Layout,
}

impl BufRing {
    /// `count` buffers (a power of two) of `buf_len` bytes, not yet registered.
    fn alloc(count: u16, buf_len: usize) -> io::Result<Self> {
        let invalid = || io::Error::from(io::ErrorKind::InvalidInput);
        if !count.is_power_of_two() || buf_len == 0 {
            return Err(invalid());
        }
        let entries_layout =
            Layout::from_size_align(usize::from(count) * size_of::<BufRingEntry>(), PAGE)
                .map_err(|_| invalid())?;
        let bufs_layout = usize::from(count)
            .checked_mul(buf_len)
            .and_then(|size| Layout::from_size_align(size, PAGE).ok())
            .ok_or_else(invalid)?;
        // SAFETY: both layouts have a non-zero size (count >= 1, buf_len >= 1).
        let (entries, bufs) = unsafe { (alloc_zeroed(entries_layout), alloc_zeroed(bufs_layout)) };
        let (Some(entries), Some(bufs)) = (
            NonNull::new(entries.cast::<BufRingEntry>()),
            NonNull::new(bufs),
        ) else {
            // SAFETY: each non-null pointer was allocated above with its layout.
            unsafe {
                if !entries.is_null() {
                    dealloc(entries, entries_layout);
                }
                if !bufs.is_null() {
                    dealloc(bufs, bufs_layout);
                }
            }
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        };
        Ok(Self {
            entries,
            count,
            buf_len,
            entries_layout,
            tail: 0,
            bufs,
            bufs_layout,
        })
    }

    /// Registers the ring as group `bgid` of `ring` and hands the kernel every buffer.
    fn register(&mut self, ring: &IoUring, bgid: u16) -> io::Result<()> {
        // SAFETY: `entries` is page-aligned, zeroed and `count` entries long; it and the
        // buffers live until this BufRing drops, which happens only after every operation of
        // `ring` was cancelled and reaped, and after the ring itself closed (field order in
        // `Engine`, declaration order in `probe`).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                self.entries.as_ptr() as u64,
                self.count,
                bgid,
                0,
            )?;
        }
        for bid in 0..self.count {
            self.push(bid);
        }
        self.publish();
        Ok(())
    }

    /// `count` buffers registered as group `bgid`.
    fn new(ring: &IoUring, bgid: u16, count: u16, buf_len: usize) -> io::Result<Self> {
        let mut this = Self::alloc(count, buf_len)?;
        this.register(ring, bgid)?;
        Ok(this)
    }

    /// Queues buffer `bid` (below `count`) for the kernel (visible after [`Self::publish`]).
    /// The caller gives up any slice of it it had.
    fn push(&mut self, bid: u16) {
        let bid = bid & (self.count - 1);
        let index = usize::from(self.tail & (self.count - 1));
        // Address arithmetic only: no reference to memory the kernel may be writing.
        let addr = self.bufs.as_ptr() as u64 + (usize::from(bid) * self.buf_len) as u64;
        // SAFETY: index < count, inside the allocation; the kernel reads only entries between
        // its head and the published tail, and this one is past the published tail.
        let entry = unsafe { &mut *self.entries.as_ptr().add(index) };
        entry.set_addr(addr);
        entry.set_len(self.buf_len as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every pushed buffer visible to the kernel.
    fn publish(&self) {
        // SAFETY: the tail field overlays the first entry's reserved field (the buffer ring ABI);
        // it is a naturally aligned u16 that the kernel reads concurrently, so it is written
        // through an atomic with Release, ordering the entry writes before it.
        unsafe {
            let tail = BufRingEntry::tail(self.entries.as_ptr()).cast::<AtomicU16>();
            (*tail).store(self.tail, Ordering::Release);
        }
    }

    /// The first `len` bytes of buffer `bid`, which a completion just handed over. The slice
    /// must be gone before the buffer is pushed back (the borrow of `self` sees to that:
    /// [`Self::push`] takes `&mut self`).
    fn buffer(&self, bid: u16, len: usize) -> &[u8] {
        let bid = bid & (self.count - 1);
        // SAFETY: buffer `bid` lies inside the allocation (bid < count); the kernel handed it
        // over with this completion and writes to it again only after `push` re-queues it,
        // which needs `&mut self` and so ends this borrow first.
        unsafe {
            std::slice::from_raw_parts(
                self.bufs.as_ptr().add(usize::from(bid) * self.buf_len),
                len.min(self.buf_len),
            )
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: both allocated in `alloc` with these layouts; no operation that could use
        // them is left (see the type's docs).
        unsafe {
            dealloc(self.entries.as_ptr().cast(), self.entries_layout);
            dealloc(self.bufs.as_ptr(), self.bufs_layout);
        }
    }
}

/// A slot's window: `len` bytes from `start` of provided buffer `bid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    bid: u16,
    start: usize,
    len: usize,
}

/// A batch's slots lent from the provided buffers ([`SlotMemory`]).
///
/// Slot `i` (below `count`) is a window of a buffer of side `side`'s ring. Without GRO it is
/// the [`SLOT_LEN`] window of its own buffer that starts `PAYLOAD_AT - recv_offset` into it, so
/// the received payload sits at the side's receive offset. Behind GRO (the network side only,
/// whose packets are opened) it is exactly one segment of a coalesced receive, shorter than
/// [`SLOT_LEN`], and several slots share a buffer. The engine assigns a window only after its
/// buffer's completion handed the buffer over, and gives the buffers back to the kernel
/// ([`Self::take`]: each once, however many slots it holds) only once the batch's sends
/// completed; every slice of a buffer comes from `&self` or `&mut self`, so none is left when
/// `take` (which needs `&mut self`) returns the buffers.
struct RingSlots {
    /// Per side: the start of its buffer allocation and its buffers' length and count
    /// (address arithmetic only; the [`BufRing`] owns the memory and outlives this, both being
    /// fields of the engine, freed only after its teardown reaped everything).
    rings: [(NonNull<u8>, usize, u16); 2],
    /// The side whose buffers the slots are.
    side: usize,
    windows: [Window; BATCH_SIZE],
    count: usize,
    /// The buffers the windows lie in, each once: given back together by [`Self::take`].
    /// Every window's buffer is here from its [`Self::assign`] on.
    held: [u16; BATCH_SIZE],
    held_count: usize,
    /// What a slot no buffer is assigned to reads (zeros) and writes.
    spare: Box<[u8]>,
}

// SAFETY: the pointers are addresses of buffers the engine owns; the type is used on the
// engine's thread only, and `Batch` asks for Send + Sync solely so that batches over owned slabs
// keep them. Access goes through &self / &mut self, so it is no more shared than a slab would be.
unsafe impl Send for RingSlots {}
// SAFETY: as for Send; `slot(&self)` only reads.
unsafe impl Sync for RingSlots {}

impl RingSlots {
    fn new(bufs: &[BufRing; 2]) -> Self {
        let ring = |side: usize| (bufs[side].bufs, bufs[side].buf_len, bufs[side].count);
        Self {
            rings: [ring(0), ring(1)],
            side: 0,
            windows: [Window {
                bid: 0,
                start: 0,
                len: 0,
            }; BATCH_SIZE],
            count: 0,
            held: [0; BATCH_SIZE],
            held_count: 0,
            spare: vec![0; SLOT_LEN].into_boxed_slice(),
        }
    }

    /// Where slot `index` starts and how long it is, if a window is assigned to it.
    fn window(&self, index: usize) -> Option<(*mut u8, usize)> {
        if index >= self.count {
            return None;
        }
        let (base, buf_len, count) = self.rings[self.side];
        let window = self.windows[index];
        let bid = usize::from(window.bid & (count - 1));
        // Address arithmetic only, inside the allocation: bid < count (`assign` masked it too),
        // and `assign` checked that the window ends inside its buffer.
        Some((
            base.as_ptr().wrapping_add(bid * buf_len + window.start),
            window.len,
        ))
    }

    /// Starts a fill from `side`: the slots must be empty ([`Self::take`]).
    fn begin(&mut self, side: Side) {
        debug_assert_eq!((self.count, self.held_count), (0, 0));
        self.side = side as usize;
    }

    /// Makes slot `index` (the batch's next) the `len` bytes at `start` of buffer `bid`, which
    /// a completion just handed over, forgetting any slot from `index` on; the buffer is held
    /// until [`Self::take`]. False (nothing assigned) if the slot or the window is out of
    /// range, or `held` is full.
    fn assign(&mut self, index: usize, bid: u16, start: usize, len: usize) -> bool {
        let (_, buf_len, count) = self.rings[self.side];
        let bid = bid & (count - 1);
        if index >= BATCH_SIZE
            || index > self.count
            || len > SLOT_LEN
            || start.checked_add(len).is_none_or(|end| end > buf_len)
        {
            return false;
        }
        if !self.holds(bid) {
            if self.held_count == BATCH_SIZE {
                return false;
            }
            self.held[self.held_count] = bid;
            self.held_count += 1;
        }
        self.windows[index] = Window { bid, start, len };
        self.count = index + 1;
        true
    }

    /// Whether buffer `bid` is held: a window was assigned in it, so it must not go back to the
    /// kernel before [`Self::take`].
    fn holds(&self, bid: u16) -> bool {
        let bid = bid & (self.rings[self.side].2 - 1);
        self.held[..self.held_count].contains(&bid)
    }

    /// Forgets the slots from `len` on (their buffers stay held until [`Self::take`]).
    fn truncate(&mut self, len: usize) {
        self.count = self.count.min(len);
    }

    /// The side and held buffers of the slots, which are empty afterwards: the caller hands
    /// the buffers back to the kernel, each once.
    fn take(&mut self) -> (usize, &[u16]) {
        self.count = 0;
        let held = std::mem::take(&mut self.held_count);
        (self.side, &self.held[..held])
    }
}

impl SlotMemory for RingSlots {
    fn slot(&self, index: usize) -> &[u8] {
        match self.window(index) {
            // SAFETY: the window lies inside the side's buffer allocation (see `window`); its
            // buffer was handed over by its completion and is held, given back to the kernel
            // only by `take`, which needs `&mut self` and so outlives no slice from here; the
            // kernel hands a buffer out once until it is given back. Slices from here coexist
            // only with other shared ones: `slot_mut` needs `&mut self`.
            Some((start, len)) => unsafe { std::slice::from_raw_parts(start, len) },
            None => &self.spare,
        }
    }

    fn slot_mut(&mut self, index: usize) -> &mut [u8] {
        match self.window(index) {
            // SAFETY: as in `slot`; `&mut self` makes this the only slice of the buffer.
            Some((start, len)) => unsafe { std::slice::from_raw_parts_mut(start, len) },
            None => &mut self.spare,
        }
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// A completed receive as it lies in its provided buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Received {
    /// Where the payload starts in the buffer.
    at: usize,
    /// The payload's length: one datagram, or several back to back behind GRO.
    len: usize,
    /// The `UDP_GRO` segment size; the whole payload (at least 1) when it was not coalesced.
    segment: usize,
    /// The sender.
    addr: Option<std::net::SocketAddr>,
}

impl Received {
    /// The receive in `buffer` (the bytes its completion reported), as `msghdr` laid it out,
    /// and its payload; `None` if it does not parse or its payload was cut short.
    fn parse<'a>(buffer: &'a [u8], msghdr: &libc::msghdr) -> Option<(Self, &'a [u8])> {
        let msg = RecvMsgOut::parse(buffer, msghdr).ok()?;
        if msg.is_payload_truncated() {
            return None;
        }
        let payload = msg.payload_data();
        let received = Self {
            at: (payload.as_ptr() as usize).wrapping_sub(buffer.as_ptr() as usize),
            len: payload.len(),
            segment: gro_segment(msg.control_data())
                .filter(|&s| s > 0)
                .unwrap_or(payload.len().max(1)),
            addr: name_addr(msg.name_data()),
        };
        let payload = buffer.get(received.at..received.at.checked_add(received.len)?)?;
        Some((received, payload))
    }
}

/// The sender address in a received name area.
fn name_addr(name: &[u8]) -> Option<std::net::SocketAddr> {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    // SAFETY: copies at most size_of::<sockaddr_storage>() bytes into it, from a live slice.
    unsafe {
        std::ptr::copy_nonoverlapping(
            name.as_ptr(),
            (&raw mut storage).cast::<u8>(),
            name.len().min(size_of::<libc::sockaddr_storage>()),
        );
    }
    socket_addr(&storage)
}

fn build_ring() -> io::Result<(IoUring, &'static str)> {
    if let Ok(ring) = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_coop_taskrun()
        .build(RING_ENTRIES)
    {
        return Ok((ring, "single_issuer+defer_taskrun"));
    }
    if let Ok(ring) = IoUring::builder().setup_coop_taskrun().build(RING_ENTRIES) {
        return Ok((ring, "coop_taskrun"));
    }
    Ok((IoUring::new(RING_ENTRIES)?, "plain"))
}

/// The msghdr a multishot RecvMsg reads its name and control lengths from.
fn recv_msghdr(gro: bool) -> Box<libc::msghdr> {
    // SAFETY: all-zero is a valid msghdr.
    let mut hdr: Box<libc::msghdr> = Box::new(unsafe { zeroed() });
    hdr.msg_namelen = NAME_LEN as libc::socklen_t;
    hdr.msg_controllen = if gro { CONTROL_LEN } else { 0 };
    hdr
}

/// A batch and the send scratch whose pointers its in-flight sends carry.
struct Slot {
    /// The batch datagrams are copied into (from GRO buffers).
    batch: Batch,
    /// The batch over provided buffers (`RingSlots`) datagrams are sealed or opened in where
    /// they landed (sockets without GRO, and the network side's GRO segments, opened).
    view: Batch,
    /// Whether `view` is the batch in use.
    in_place: bool,
    /// Send scratch per destination side.
    send: [Mmsg; 2],
    /// Where this slot's sends go.
    to: Side,
    /// Sends submitted and not yet completed; the slot is reused only at zero.
    outstanding: usize,
}

impl Slot {
    fn batch(&self) -> &Batch {
        if self.in_place {
            &self.view
        } else {
            &self.batch
        }
    }

    fn batch_mut(&mut self) -> &mut Batch {
        if self.in_place {
            &mut self.view
        } else {
            &mut self.batch
        }
    }

    fn ring_slots(&mut self) -> Option<&mut RingSlots> {
        self.view
            .memory_mut()
            .and_then(|memory| memory.as_any_mut().downcast_mut::<RingSlots>())
    }
}

fn other(side: Side) -> Side {
    match side {
        Side::Local => Side::Network,
        Side::Network => Side::Local,
    }
}

struct Engine {
    // Field order matters: the ring closes before the buffer rings, slots and addresses that
    // its operations point into are freed. By then `shutdown` has cancelled every operation
    // and reaped its last completion; closing the ring is not relied on to cancel anything.
    ring: IoUring,
    bufs: [BufRing; 2],
    /// Per side: whether it receives with GRO (the local side then copies its datagrams into
    /// batch slots; the network side opens them in their segments).
    gro: [bool; 2],
    /// Per side: datagrams copied into a batch slot (GRO segments of the local side); none
    /// without GRO.
    copied: [u64; 2],
    /// Per side: receives that brought more than one datagram (GRO coalesced them).
    coalesced: [u64; 2],
    /// Per side: the msghdr its multishot receive was armed with.
    msghdr: [Box<libc::msghdr>; 2],
    /// Destinations by side sent to: `[deliver, remote]`.
    dests: Box<[SockAddr; 2]>,
    /// Received, not yet batched: (buffer id, completion result) per side.
    pending: [VecDeque<(u16, i32)>; 2],
    rearm: [bool; 2],
    /// How often a multishot receive ended and was re-armed.
    rearms: u64,
    /// Two batches: one fills while the other's sends complete, so a batch's sends go out with
    /// the wait for the next receive in a single `io_uring_enter`.
    slots: [Slot; 2],
    current: usize,
    /// Completed sends not yet reported, by side sent to; failed ones by side received on.
    sent: [u64; 2],
    failed: [u64; 2],
    /// The period of the idle tick, a multishot timeout (kernel 6.4+) that completes every
    /// [`IDLE_WAIT`], so an idle worker wakes to look at its stop flag without arming a timer
    /// in every `io_uring_enter` (an hrtimer set up and torn down per wait costs a paced
    /// packet on a VM). `None` where the kernel refused it: then each idle wait carries its
    /// own timeout, as before.
    tick: Option<Box<Timespec>>,
    /// The tick's multishot ended (the kernel may end one, as with receives): arm it again.
    tick_rearm: bool,
    /// The tick is in flight: armed, and its final completion (one without MORE) not reaped.
    tick_armed: bool,
    /// The teardown's cancellations submitted and not yet completed.
    cancel_pending: usize,
    /// When the pipeline's tick is due next (at least every [`IDLE_WAIT`]).
    next_tick: Instant,
    /// GSO runs refused as larger than the path MTU, to resend packet by packet: (slot, first
    /// packet, packets). Counted in their slot's `outstanding` until resent and completed.
    /// Bounded by the messages of two slots.
    resend: Vec<(usize, usize, usize)>,
    /// Set once the teardown began: nothing is resent any more.
    stopping: bool,
}

impl Engine {
    fn arm(&mut self, side: Side) -> io::Result<()> {
        let entry = opcode::RecvMsgMulti::new(
            Fixed(side as u32),
            &raw const *self.msghdr[side as usize],
            side as u16,
        )
        .build()
        .user_data(side as u64);
        self.push(&entry)?;
        self.rearm[side as usize] = false;
        Ok(())
    }

    fn push(&mut self, entry: &io_uring::squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every pointer an entry carries stays valid until its completion is reaped:
            // the recv msghdr, the destination addresses and the tick's timespec (which the
            // kernel reads only at submission) are boxed in `self`; a slot's batch and send
            // scratch (boxed too), and the provided buffers its view batch holds, are not
            // touched or given back until its outstanding sends reach zero; and `shutdown` ends
            // every operation (receives, tick, sends) and reaps its final completion before the
            // engine is dropped (or leaks it all if it cannot).
            let pushed = unsafe { self.ring.submission().push(entry) };
            if pushed.is_ok() {
                return Ok(());
            }
            self.ring.submit()?;
        }
    }

    /// Arms the idle tick; its first completion says whether the kernel took it.
    fn arm_tick(&mut self) -> io::Result<()> {
        let ts: &Timespec = match &self.tick {
            Some(ts) => ts,
            None => return Ok(()),
        };
        let entry = opcode::Timeout::new(ts)
            .flags(TimeoutFlags::MULTISHOT)
            .build()
            .user_data(TICK);
        self.push(&entry)?;
        self.tick_armed = true;
        Ok(())
    }

    /// Operations the kernel may still complete, and so may still write through the pointers
    /// they carry: armed receives, the armed tick, sends in flight, the teardown's cancel.
    fn in_flight(&self) -> usize {
        self.rearm.iter().filter(|&&ended| !ended).count()
            + usize::from(self.tick_armed)
            + self.outstanding()
            + self.cancel_pending
    }

    /// Ends every operation in flight and reaps its final completion, so that nothing the
    /// kernel may write to is freed under it. Closing the ring would cancel them too, but
    /// asynchronously, in the kernel's exit work, after `close` returned. Returns how many
    /// operations were in flight; an error if they did not all end within [`TEARDOWN_LIMIT`].
    fn shutdown(&mut self) -> io::Result<usize> {
        self.stopping = true;
        // Refused runs not resent yet were never submitted: count them lost.
        while let Some((slot_index, _, count)) = self.resend.pop() {
            let slot = &mut self.slots[slot_index];
            slot.outstanding = slot.outstanding.saturating_sub(count);
            self.failed[other(slot.to) as usize] += count as u64;
        }
        let in_flight = self.in_flight();
        let deadline = Instant::now() + TEARDOWN_LIMIT;
        while self.in_flight() > 0 {
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "io_uring teardown: operations still in flight after {TEARDOWN_LIMIT:?} \
                         (receives ended {:?}, tick {}, sends {}, cancels {})",
                        self.rearm,
                        self.tick_armed,
                        self.outstanding(),
                        self.cancel_pending
                    ),
                ));
            }
            if self.cancel_pending == 0 {
                // Again after every round that left something alive: see `cancel`.
                self.cancel()?;
            }
            let ts = Timespec::from(IDLE_WAIT);
            let args = SubmitArgs::new().timespec(&ts);
            match self.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                    ) => {}
                Err(e) => return Err(e),
            }
            self.reap();
        }
        Ok(in_flight)
    }

    /// Queues the cancellation of everything in flight: IORING_OP_TIMEOUT_REMOVE for the tick
    /// (by its user_data) and one IORING_OP_ASYNC_CANCEL with IORING_ASYNC_CANCEL_ANY (kernel
    /// 5.19+; the engine needs 6.0) for the receives and sends. Either can miss: a multishot
    /// timeout that just fired is off the kernel's timeout list until its completion's task
    /// work re-arms it (with DEFER_TASKRUN, at our next wait), and then a removal finds
    /// nothing (-ENOENT) and the tick carries on; so [`Self::shutdown`] repeats this until the
    /// last completion of every operation (one without IORING_CQE_F_MORE) was reaped.
    fn cancel(&mut self) -> io::Result<()> {
        if self.tick_armed {
            let remove = opcode::TimeoutRemove::new(TICK).build().user_data(CANCEL);
            self.push(&remove)?;
            self.cancel_pending += 1;
        }
        if self.rearm.contains(&false) || self.outstanding() > 0 {
            let cancel = opcode::AsyncCancel2::new(CancelBuilder::any())
                .build()
                .user_data(CANCEL);
            self.push(&cancel)?;
            self.cancel_pending += 1;
        }
        Ok(())
    }

    fn outstanding(&self) -> usize {
        self.slots.iter().map(|s| s.outstanding).sum()
    }

    /// Moves every completion out of the queue: receives to `pending`, sends to the tallies.
    fn reap(&mut self) {
        let mut completion = self.ring.completion();
        completion.sync();
        for cqe in &mut completion {
            let data = cqe.user_data();
            if data == CANCEL {
                // Its result is how many it cancelled (or -ENOENT: none was left).
                self.cancel_pending = self.cancel_pending.saturating_sub(1);
                continue;
            }
            if data == TICK {
                if !cqueue::more(cqe.flags()) {
                    self.tick_armed = false;
                }
                // -ETIME is a tick; any other result (-ECANCELED at teardown, or a kernel
                // without multishot timeouts) ends it for good.
                if cqe.result() != -libc::ETIME {
                    self.tick_armed = false;
                    self.tick = None;
                } else if !cqueue::more(cqe.flags()) {
                    self.tick_rearm = true;
                }
                continue;
            }
            if data >= SEND {
                let slot_index = ((data >> 8) & 1) as usize;
                let slot = &mut self.slots[slot_index];
                let to = slot.to;
                let (first, count) = if data & RESEND != 0 {
                    ((data & 0xff) as usize, 1)
                } else {
                    slot.send[to as usize].span((data & 0xff) as usize)
                };
                slot.outstanding = slot.outstanding.saturating_sub(1);
                let error = -cqe.result();
                if cqe.result() >= 0 {
                    self.sent[to as usize] += count as u64;
                } else if count > 1
                    && matches!(error, libc::EMSGSIZE | libc::EINVAL)
                    && !self.stopping
                    && self.resend.len() < self.resend.capacity()
                {
                    // The run's segments exceed the path MTU (it shrank since it was learnt):
                    // resend its packets one by one, which the kernel fragments if it must,
                    // and learn the MTU again for later batches.
                    for s in &mut self.slots {
                        s.send[to as usize].forget_path_mtu();
                    }
                    self.slots[slot_index].outstanding += count;
                    self.resend.push((slot_index, first, count));
                } else {
                    if error == libc::EIO {
                        // The device cannot segment: later batches go without GSO.
                        for s in &mut self.slots {
                            s.send[to as usize].disable_gso();
                        }
                    }
                    self.failed[other(to) as usize] += count as u64;
                }
                continue;
            }
            let side = data as usize & 1;
            if let Some(bid) = cqueue::buffer_select(cqe.flags()) {
                self.pending[side].push_back((bid, cqe.result()));
            }
            if !cqueue::more(cqe.flags()) {
                // ENOBUFS (all buffers in use) or any other end of the multishot: re-arm once
                // buffers are recycled.
                self.rearm[side] = true;
                self.rearms += 1;
            }
        }
    }

    /// Hands the send tallies to the pipeline and publishes its counters: once per pass, after
    /// the batches were processed and before the enter that submits their sends.
    fn report(&mut self, pipeline: &mut impl Pipeline) {
        for side in [Side::Local, Side::Network] {
            let failed = std::mem::take(&mut self.failed[side as usize]);
            if failed > 0 {
                pipeline.io_drop(side, IoDrop::SendFailed, failed);
            }
            pipeline.sent(side, std::mem::take(&mut self.sent[side as usize]));
        }
        pipeline.publish();
    }

    /// Queues the packets of every refused GSO run as sends of their own (see `reap`).
    fn flush_resends(&mut self) -> io::Result<()> {
        // In the order the runs were refused, so packets keep their order.
        for run in 0..self.resend.len() {
            let (slot_index, first, count) = self.resend[run];
            let to = self.slots[slot_index].to;
            let mut index = first;
            let mut queued = 0;
            while queued < count && index < self.slots[slot_index].batch().len() {
                let batch = self.slots[slot_index].batch();
                if !batch.is_dropped(index) {
                    let packet = batch.packet(index);
                    let dest = &self.dests[to as usize];
                    let entry =
                        opcode::Send::new(Fixed(to as u32), packet.as_ptr(), packet.len() as u32)
                            .dest_addr(dest.as_ptr().cast())
                            .dest_addr_len(dest.len())
                            .build()
                            .user_data(SEND | RESEND | ((slot_index as u64) << 8) | index as u64);
                    self.push(&entry)?;
                    queued += 1;
                }
                index += 1;
            }
            // Packets the span named but the batch no longer holds (cannot happen): not sent.
            let lost = count - queued;
            let slot = &mut self.slots[slot_index];
            slot.outstanding = slot.outstanding.saturating_sub(lost);
            self.failed[other(to) as usize] += lost as u64;
        }
        self.resend.clear();
        Ok(())
    }

    /// Waits until the current slot's sends have completed, so it can be refilled.
    fn free_current(&mut self) -> io::Result<()> {
        while self.slots[self.current].outstanding > 0 {
            self.flush_resends()?;
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(e),
            }
            self.reap();
        }
        Ok(())
    }

    /// Hands the buffers of every slot whose sends all completed back to the kernel, and
    /// empties its batch: a batch over provided buffers holds them until then, dropped packets
    /// included. Runs before each re-arm, so a receive that ran out of buffers finds them again.
    fn recycle(&mut self) {
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            if slot.outstanding > 0 {
                continue;
            }
            let Some(memory) = slot.ring_slots() else {
                continue;
            };
            let (side, bids) = memory.take();
            if bids.is_empty() {
                continue;
            }
            let ring = &mut self.bufs[side];
            for &bid in bids {
                ring.push(bid);
            }
            ring.publish();
            slot.view.clear();
        }
    }

    /// Fills the current slot from `side`'s pending receives: in place over the buffers
    /// without GRO, and behind GRO on the network side (whose packets are opened, which shrinks
    /// them); copied behind GRO on the local side, whose packets are sealed (see the module
    /// docs). Its sends must have completed ([`Self::free_current`]).
    fn fill(&mut self, side: Side, pipeline: &mut impl Pipeline) {
        // Whatever the fill, the buffers the slot's last batch held go back first.
        self.recycle();
        match (self.gro[side as usize], side) {
            (false, _) | (true, Side::Network) => self.fill_in_place(side, pipeline),
            // Sealing grows each datagram by its header and tag: back to back in a GRO buffer
            // there is no room for either, so each is copied into a slot of its own.
            (true, Side::Local) => self.fill_copied(side, pipeline),
        }
    }

    /// Makes the current slot's view batch the datagrams of `side`'s pending receives where
    /// they landed. Without GRO a slot is its buffer's [`SLOT_LEN`] window that puts the
    /// payload at the side's receive offset. Behind GRO (the network side: its datagrams are
    /// opened) a slot is a window onto exactly one segment's bytes: opening writes only within
    /// a packet ([`SlotMemory`]), so it never reaches the next segment, and the plaintext is
    /// sent from where it was opened. A buffer, however many of its datagrams are slots, stays
    /// out of the ring until the batch's sends completed ([`Self::recycle`]); a GRO buffer
    /// whose segments no longer all fit the batch waits for the next batch.
    fn fill_in_place(&mut self, side: Side, pipeline: &mut impl Pipeline) {
        let gro = self.gro[side as usize];
        let offset = side.recv_offset();
        let mut truncated = 0;
        let bufs = &mut self.bufs[side as usize];
        let msghdr = &self.msghdr[side as usize];
        let pending = &mut self.pending[side as usize];
        let slot = &mut self.slots[self.current];
        slot.in_place = true;
        slot.view.clear();
        let Some(memory) = slot.ring_slots() else {
            return;
        };
        memory.begin(side);
        while !slot.view.is_full() {
            let Some((bid, result)) = pending.pop_front() else {
                break;
            };
            let len = usize::try_from(result).unwrap_or(0);
            // Without GRO a slot's window needs the payload right after the name room, where
            // this kernel ABI puts it.
            let Some(Received {
                at,
                len,
                segment,
                addr,
            }) = Received::parse(bufs.buffer(bid, len), msghdr)
                .map(|(received, _)| received)
                .filter(|r| gro || r.at == PAYLOAD_AT)
            else {
                if result >= 0 {
                    truncated += 1;
                }
                bufs.push(bid);
                continue;
            };
            let segments = if gro { len.div_ceil(segment) } else { 1 };
            if slot.view.len() + segments > BATCH_SIZE && !slot.view.is_empty() {
                pending.push_front((bid, result));
                break;
            }
            if segments > 1 {
                self.coalesced[side as usize] += 1;
            }
            for k in 0..segments {
                let skip = k * segment;
                let start = at + skip;
                let len = segment.min(len - skip);
                // The slot's window in the buffer, and where in it the datagram lies.
                let (window, window_len, from) = if gro {
                    (start, len, 0)
                } else {
                    (PAYLOAD_AT - offset, SLOT_LEN, offset)
                };
                if slot.view.is_full() || from + len + TAG_ROOM > SLOT_LEN {
                    // Beyond a batch (the kernel coalesces up to 128 where a batch holds 64),
                    // or longer than a slot takes with the tag's room: counted.
                    truncated += 1;
                    continue;
                }
                let index = slot.view.len();
                let assigned = slot
                    .ring_slots()
                    .is_some_and(|memory| memory.assign(index, bid, window, window_len));
                if !assigned || !slot.view.commit(from..from + len, addr) {
                    // Cannot happen (the window lies in the buffer, the batch has room):
                    // refused and counted.
                    if let Some(memory) = slot.ring_slots() {
                        memory.truncate(index);
                    }
                    truncated += 1;
                }
            }
            // A buffer none of whose datagrams became a slot goes back at once; the others go
            // back with the batch's.
            if !slot.ring_slots().is_some_and(|memory| memory.holds(bid)) {
                bufs.push(bid);
            }
        }
        bufs.publish();
        if truncated > 0 {
            pipeline.io_drop(side, IoDrop::Truncated, truncated);
        }
    }

    /// Fills the current slot from `side`'s pending receives, copying each datagram into its
    /// batch slot and recycling each buffer at once. A GRO buffer is split into one slot per
    /// segment; one that no longer fits waits for the next batch.
    fn fill_copied(&mut self, side: Side, pipeline: &mut impl Pipeline) {
        let offset = side.recv_offset();
        let mut truncated = 0;
        let bufs = &mut self.bufs[side as usize];
        let msghdr = &self.msghdr[side as usize];
        let pending = &mut self.pending[side as usize];
        let slot = &mut self.slots[self.current];
        slot.in_place = false;
        let batch = &mut slot.batch;
        batch.clear();
        while !batch.is_full() {
            let Some((bid, result)) = pending.pop_front() else {
                break;
            };
            let len = usize::try_from(result).unwrap_or(0);
            let Some((received, payload)) = Received::parse(bufs.buffer(bid, len), msghdr) else {
                if result >= 0 {
                    truncated += 1;
                }
                bufs.push(bid);
                continue;
            };
            let segments = received.len.div_ceil(received.segment);
            if batch.len() + segments > BATCH_SIZE && !batch.is_empty() {
                pending.push_front((bid, result));
                break;
            }
            let before = batch.len();
            let (_, dropped) =
                split_segments(payload, received.segment, batch, offset, received.addr);
            self.copied[side as usize] += (batch.len() - before) as u64;
            if segments > 1 {
                self.coalesced[side as usize] += 1;
            }
            truncated += dropped as u64;
            bufs.push(bid);
        }
        bufs.publish();
        if truncated > 0 {
            pipeline.io_drop(side, IoDrop::Truncated, truncated);
        }
    }

    /// Queues the current slot's live packets for `to`, one SendMsg per GSO run, and moves on to
    /// the other slot. The sends go out with the next `io_uring_enter`.
    fn queue_sends(&mut self, to: Side) -> io::Result<()> {
        let current = self.current;
        let slot = &mut self.slots[current];
        slot.to = to;
        let batch = if slot.in_place {
            &slot.view
        } else {
            &slot.batch
        };
        let (messages, _) = slot.send[to as usize].build(batch, 0, &self.dests[to as usize]);
        slot.outstanding = messages;
        for m in 0..messages {
            let slot = &self.slots[current];
            let send = &slot.send[to as usize];
            let user_data = SEND | ((current as u64) << 8) | m as u64;
            let entry = match send.span(m) {
                // A lone packet (paced traffic, or a run of one) goes as a plain send to the
                // destination: the kernel skips importing a msghdr and its iovec array, which
                // a paced packet would otherwise pay on its way out.
                (first, 1) => {
                    let packet = slot.batch().packet(first);
                    let dest = &self.dests[to as usize];
                    opcode::Send::new(Fixed(to as u32), packet.as_ptr(), packet.len() as u32)
                        .dest_addr(dest.as_ptr().cast())
                        .dest_addr_len(dest.len())
                        .build()
                }
                _ => opcode::SendMsg::new(Fixed(to as u32), send.msghdr(m)).build(),
            };
            self.push(&entry.user_data(user_data))?;
        }
        self.current ^= 1;
        Ok(())
    }

    /// Submits what is queued; when idle, also waits (up to [`IDLE_WAIT`]) for a completion
    /// beyond those of the sends in flight, so a quiet worker sleeps in the same enter that
    /// sends its last batch.
    fn wait(&mut self, idle: bool) -> io::Result<()> {
        let want = self.outstanding() + 1;
        let result = if idle && self.tick.is_some() {
            // The tick bounds the sleep: at most IDLE_WAIT until a completion arrives.
            self.ring.submit_and_wait(want)
        } else if idle {
            let ts = Timespec::from(IDLE_WAIT);
            let args = SubmitArgs::new().timespec(&ts);
            self.ring.submitter().submit_with_args(want, &args)
        } else {
            self.ring.submit()
        };
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// Runs one worker on io_uring until `stop` is set, then drains (for up to [`DRAIN_LIMIT`]).
pub fn run(
    sockets: &WorkerSockets,
    pipeline: &mut impl Pipeline,
    stop: &AtomicBool,
) -> io::Result<()> {
    run_with_buffers(sockets, pipeline, stop, BUFFERS).map(drop)
}

/// [`run`] with `buffers` provided buffers per socket (a power of two); returns how many times a
/// multishot receive ran out of buffers and was re-armed. Small rings let tests force ENOBUFS.
pub fn run_with_buffers(
    sockets: &WorkerSockets,
    pipeline: &mut impl Pipeline,
    stop: &AtomicBool,
    buffers: u16,
) -> io::Result<u64> {
    run_reporting(sockets, pipeline, stop, buffers).map(|report| report.rearms)
}

/// How a worker runs ([`run_configured`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Provided buffers per socket (a power of two; with GRO, at most 8 are used).
    pub buffers: u16,
    /// Whether to turn UDP GRO on for both sockets (if the kernel lets us). Without it every
    /// datagram is sealed or opened in the buffer it landed in and sent from there; with it
    /// the network side's datagrams still are (each opened in its segment of the coalesced
    /// buffer), and the local side's are copied into batch slots to be sealed.
    pub gro: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            buffers: BUFFERS,
            gro: true,
        }
    }
}

impl Config {
    /// With `buffers` provided buffers per socket.
    pub fn with_buffers(self, buffers: u16) -> Self {
        Self { buffers, ..self }
    }

    /// With GRO on (if the kernel lets us) or off.
    pub fn with_gro(self, gro: bool) -> Self {
        Self { gro, ..self }
    }
}

/// What one run of the engine did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunReport {
    /// How often a multishot receive ended (ENOBUFS) and was re-armed.
    pub rearms: u64,
    /// Operations in flight when the teardown began (armed receives, the idle tick, sends),
    /// each cancelled and its final completion reaped before any buffer was freed.
    pub cancelled_at_teardown: usize,
    /// The local side's receives (plaintext from the client, sealed).
    pub local: ReceiveReport,
    /// The network side's receives (protected packets from the relay or peer, opened).
    pub network: ReceiveReport,
}

/// [`run_with_buffers`], reporting how the run went and what its teardown cancelled.
pub fn run_reporting(
    sockets: &WorkerSockets,
    pipeline: &mut impl Pipeline,
    stop: &AtomicBool,
    buffers: u16,
) -> io::Result<RunReport> {
    run_configured(
        sockets,
        pipeline,
        stop,
        Config::default().with_buffers(buffers),
    )
}

/// [`run_reporting`] as `config` says.
pub fn run_configured(
    sockets: &WorkerSockets,
    pipeline: &mut impl Pipeline,
    stop: &AtomicBool,
    config: Config,
) -> io::Result<RunReport> {
    let buffers = config.buffers;
    let (ring, flags) = build_ring()?;
    ring.submitter()
        .register_files(&[sockets.local.as_raw_fd(), sockets.network.as_raw_fd()])?;
    let gro = if config.gro {
        [enable_gro(&sockets.local), enable_gro(&sockets.network)]
    } else {
        [false; 2]
    };
    let ring_for = |side: usize| {
        if gro[side] {
            BufRing::new(&ring, side as u16, buffers.min(GRO_BUFFERS), GRO_BUF_LEN)
        } else {
            BufRing::new(&ring, side as u16, buffers, BUF_LEN)
        }
    };
    let bufs = [ring_for(0)?, ring_for(1)?];
    let slot = |bufs: &[BufRing; 2]| Slot {
        batch: Batch::new(),
        view: Batch::with_memory(Box::new(RingSlots::new(bufs))),
        in_place: false,
        send: [
            Mmsg::new(gso_supported(&sockets.local)),
            Mmsg::new(gso_supported(&sockets.network)),
        ],
        to: Side::Network,
        outstanding: 0,
    };
    // The slots' views hold the buffers' addresses (not borrows): the buffer rings move into
    // the engine, their allocations do not.
    let slots = [slot(&bufs), slot(&bufs)];
    let mut engine = Engine {
        ring,
        bufs,
        gro,
        copied: [0; 2],
        coalesced: [0; 2],
        msghdr: [recv_msghdr(gro[0]), recv_msghdr(gro[1])],
        dests: Box::new([
            SockAddr::from(sockets.deliver),
            SockAddr::from(sockets.remote),
        ]),
        pending: [
            VecDeque::with_capacity(usize::from(buffers)),
            VecDeque::with_capacity(usize::from(buffers)),
        ],
        rearm: [true, true],
        rearms: 0,
        slots,
        current: 0,
        sent: [0; 2],
        failed: [0; 2],
        tick: Some(Box::new(Timespec::from(IDLE_WAIT))),
        tick_rearm: false,
        tick_armed: false,
        cancel_pending: 0,
        next_tick: Instant::now(),
        resend: Vec::with_capacity(2 * BATCH_SIZE),
        stopping: false,
    };
    tracing::debug!(flags, gro = gro[0] && gro[1], "io_uring worker started");
    let served = engine.serve(pipeline, stop);
    // Whatever ended the run, nothing is freed while the kernel may still write to it.
    let teardown = engine.shutdown();
    // What the teardown reaped or gave up on (a send cancelled or refused) is counted too.
    engine.report(pipeline);
    match teardown {
        Ok(cancelled) => served.map(|()| RunReport {
            rearms: engine.rearms,
            cancelled_at_teardown: cancelled,
            local: ReceiveReport {
                copied: engine.copied[Side::Local as usize],
                coalesced: engine.coalesced[Side::Local as usize],
            },
            network: ReceiveReport {
                copied: engine.copied[Side::Network as usize],
                coalesced: engine.coalesced[Side::Network as usize],
            },
        }),
        Err(error) => {
            // Operations may still complete into the buffers, msghdrs and slots: leak them
            // (and the ring) rather than free memory the kernel can write.
            tracing::error!(%error, "io_uring teardown incomplete: leaking the worker's buffers");
            std::mem::forget(engine);
            served.and(Err(error))
        }
    }
}

impl Engine {
    /// The worker's loop: arms the tick and the receives, then runs until `stop` is set and
    /// the drain ended (or an error). Leaves operations armed: [`Self::shutdown`] ends them.
    fn serve(&mut self, pipeline: &mut impl Pipeline, stop: &AtomicBool) -> io::Result<()> {
        let engine = self;
        engine.arm_tick()?;
        // A kernel without multishot timeouts fails the tick at once: learn that before the first
        // wait relies on it.
        engine.ring.submit()?;
        engine.reap();
        engine.arm(Side::Local)?;
        engine.arm(Side::Network)?;
        let mut drain_until: Option<Instant> = None;
        loop {
            if drain_until.is_none() && stop.load(Ordering::Relaxed) {
                drain_until = Some(Instant::now() + DRAIN_LIMIT);
            }
            let idle = engine.pending.iter().all(VecDeque::is_empty);
            engine.wait(idle && drain_until.is_none())?;
            engine.reap();
            engine.flush_resends()?;
            // Buffers whose sends completed go back before anything re-arms.
            engine.recycle();
            // The idle tick (or an idle wait's timeout) wakes the loop at least every IDLE_WAIT:
            // retired keys go within that bound even when no packet comes to sync the caches.
            let clock = Instant::now();
            if clock >= engine.next_tick {
                pipeline.tick(now());
                engine.next_tick = clock + IDLE_WAIT;
            }
            if let Some(deadline) = drain_until
                && (engine.pending.iter().all(VecDeque::is_empty) || Instant::now() >= deadline)
            {
                // Sends still in flight point into the slots: let them finish first.
                for _ in 0..2 {
                    engine.free_current()?;
                    engine.current ^= 1;
                }
                engine.report(pipeline);
                return Ok(());
            }
            for side in [Side::Local, Side::Network] {
                if engine.pending[side as usize].is_empty() {
                    continue;
                }
                engine.free_current()?;
                engine.fill(side, pipeline);
                pipeline.process(side, now(), engine.slots[engine.current].batch_mut());
                engine.queue_sends(other(side))?;
            }
            // Publishes the pipeline's counts for what was just processed, and the sends reaped.
            engine.report(pipeline);
            // After recycling, so a multishot ended by ENOBUFS finds buffers again.
            for side in [Side::Local, Side::Network] {
                if engine.rearm[side as usize] {
                    engine.arm(side)?;
                }
            }
            if std::mem::take(&mut engine.tick_rearm) {
                engine.arm_tick()?;
            }
        }
    }
}

/// Why the io_uring engine cannot run here, so the sidecar falls back to mio.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UringUnusable {
    /// The probe's loopback socket could not be made.
    #[error("probe socket: {0}")]
    Socket(io::Error),
    /// The probe's buffers could not be allocated.
    #[error("probe buffers: {0}")]
    Buffers(io::Error),
    /// No ring (io_uring missing, or forbidden by seccomp).
    #[error("cannot create a ring: {0}")]
    Ring(io::Error),
    /// No provided buffer rings (kernel 5.19+).
    #[error("no provided buffer rings: {0}")]
    ProvidedBuffers(io::Error),
    /// The fresh ring took no submission.
    #[error("submission queue full")]
    SubmissionQueueFull,
    /// A Send with a destination address failed with this result.
    #[error("Send with a destination address unsupported (result {0}; needs kernel 6.1)")]
    SendTo(i32),
    /// The multishot RecvMsg failed with this result or delivered no datagram.
    #[error("multishot RecvMsg unsupported (result {0})")]
    MultishotRecv(i32),
    /// Neither operation completed within a second.
    #[error("the probe's send and receive did not complete")]
    Incomplete,
    /// The probe's operations could not be cancelled (its memory is leaked, not freed).
    #[error("the probe's operations could not be cancelled")]
    NotCancelled,
}

/// Whether this kernel runs what the engine needs: a ring, a provided buffer ring, a multishot
/// RecvMsg that delivers a datagram (kernel 6.0+) and a Send with a destination address, as a
/// lone packet goes out (kernel 6.1+). seccomp may forbid any of it.
pub(crate) fn probe() -> Result<(), UringUnusable> {
    // Declaration order is drop order reversed: everything the ring's operations point into
    // is declared before the ring, so on every path (early returns included) the ring closes
    // first and they are freed after. The receive is also cancelled and reaped before the
    // end, as the engine does at teardown: closing a ring cancels in the background.
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(UringUnusable::Socket)?;
    // Boxed, so that leaking it (below) keeps it where the kernel was told it is.
    let addr = Box::new(SockAddr::from(
        socket.local_addr().map_err(UringUnusable::Socket)?,
    ));
    let msghdr = recv_msghdr(false);
    let mut bufs = BufRing::alloc(8, BUF_LEN).map_err(UringUnusable::Buffers)?;
    let (mut ring, _) = build_ring().map_err(UringUnusable::Ring)?;
    bufs.register(&ring, 0)
        .map_err(UringUnusable::ProvidedBuffers)?;
    let fd = io_uring::types::Fd(socket.as_raw_fd());
    let recv = opcode::RecvMsgMulti::new(fd, &raw const *msghdr, 0)
        .build()
        .user_data(RECV_PROBE);
    let payload = b"probe";
    let send = opcode::Send::new(fd, payload.as_ptr(), payload.len() as u32)
        .dest_addr(addr.as_ptr().cast())
        .dest_addr_len(addr.len())
        .build()
        .user_data(SEND_PROBE);
    // SAFETY: the msghdr, buffers, address and socket outlive every operation: declared
    // before the ring, so dropped after it, and the receive is cancelled and its last
    // completion reaped below before the function returns (or, failing that, all of them are
    // leaked); `payload` is static.
    unsafe {
        let mut queue = ring.submission();
        queue
            .push(&recv)
            .and_then(|()| queue.push(&send))
            .map_err(|_| UringUnusable::SubmissionQueueFull)?;
    }
    let ts = Timespec::from(Duration::from_secs(1));
    let args = SubmitArgs::new().timespec(&ts);
    let _ = ring.submitter().submit_with_args(2, &args);
    let mut seen = ProbeCompletions {
        received: None,
        sent: None,
        recv_armed: true,
    };
    seen.take(&mut ring);
    let (received, sent) = (seen.received, seen.sent);
    let verdict = match (sent, received) {
        (Some(sent), _) if sent < 0 => Err(UringUnusable::SendTo(sent)),
        (Some(_), Some((result, Some(_)))) if result >= 0 => Ok(()),
        (_, Some((result, _))) => Err(UringUnusable::MultishotRecv(result)),
        _ => Err(UringUnusable::Incomplete),
    };
    // Teardown: cancel whatever is left and wait for the receive's (and the send's) last
    // completion, as the engine does.
    let cancel = opcode::AsyncCancel2::new(CancelBuilder::any())
        .build()
        .user_data(CANCEL);
    // SAFETY: the cancel carries no pointer.
    let pushed = unsafe { ring.submission().push(&cancel) }.is_ok();
    let deadline = Instant::now() + TEARDOWN_LIMIT;
    while pushed && seen.in_flight() && Instant::now() < deadline {
        let ts = Timespec::from(IDLE_WAIT);
        let args = SubmitArgs::new().timespec(&ts);
        let _ = ring.submitter().submit_with_args(1, &args);
        seen.take(&mut ring);
    }
    if seen.in_flight() {
        // The kernel may still write into them: leak rather than free.
        std::mem::forget(ring);
        std::mem::forget(bufs);
        std::mem::forget(msghdr);
        std::mem::forget(addr);
        return Err(UringUnusable::NotCancelled);
    }
    drop(ring);
    drop(bufs);
    verdict
}

/// What the probe's completions said.
struct ProbeCompletions {
    /// The receive's first completion: its result and buffer.
    received: Option<(i32, Option<u16>)>,
    sent: Option<i32>,
    /// The multishot receive has not delivered its last completion.
    recv_armed: bool,
}

impl ProbeCompletions {
    fn take(&mut self, ring: &mut IoUring) {
        for cqe in ring.completion() {
            match cqe.user_data() {
                RECV_PROBE => {
                    if self.received.is_none() {
                        self.received = Some((cqe.result(), cqueue::buffer_select(cqe.flags())));
                    }
                    if !cqueue::more(cqe.flags()) {
                        self.recv_armed = false;
                    }
                }
                SEND_PROBE => self.sent = Some(cqe.result()),
                _ => {}
            }
        }
    }

    fn in_flight(&self) -> bool {
        self.recv_armed || self.sent.is_none()
    }
}

/// user_data of the probe's two operations.
const RECV_PROBE: u64 = 7;
const SEND_PROBE: u64 = 8;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A view's slot is the window of the very buffer the kernel wrote, with the payload at the
    /// side's receive offset: sealing there is sealing where the datagram landed.
    #[test]
    fn a_slot_of_the_view_is_the_buffer_the_kernel_wrote() {
        let bufs = [
            BufRing::alloc(4, BUF_LEN).unwrap(),
            BufRing::alloc(4, BUF_LEN).unwrap(),
        ];
        let mut slots = RingSlots::new(&bufs);
        for side in [Side::Local, Side::Network] {
            let ring = &bufs[side as usize];
            slots.begin(side);
            assert!(slots.assign(0, 2, PAYLOAD_AT - side.recv_offset(), SLOT_LEN));
            let payload_at = ring.bufs.as_ptr() as usize + 2 * BUF_LEN + PAYLOAD_AT;
            let slot = slots.slot(0);
            assert_eq!(slot.len(), SLOT_LEN);
            assert_eq!(slot.as_ptr() as usize + side.recv_offset(), payload_at);
            assert_eq!(slots.take(), (side as usize, &[2u16][..]));
            // Given back: the slot is no buffer any more.
            assert_eq!(slots.slot(0).as_ptr(), slots.spare.as_ptr());
        }
    }

    /// Behind GRO several slots are windows of one buffer, each exactly its segment; the
    /// buffer is held once and given back once, and no window reaches past its buffer.
    #[test]
    fn segments_of_one_gro_buffer_share_it_and_it_goes_back_once() {
        let bufs = [
            BufRing::alloc(2, GRO_BUF_LEN).unwrap(),
            BufRing::alloc(4, GRO_BUF_LEN).unwrap(),
        ];
        let mut slots = RingSlots::new(&bufs);
        slots.begin(Side::Network);
        let base = bufs[1].bufs.as_ptr() as usize;
        // Three segments of 300 bytes in buffer 3 (the last one short), then one in buffer 1.
        let payload_at = 16 + NAME_LEN + CONTROL_LEN;
        let segments = [(0, 300), (300, 300), (600, 120)];
        for (index, (start, len)) in segments.into_iter().enumerate() {
            assert!(slots.assign(index, 3, payload_at + start, len));
        }
        assert!(slots.assign(3, 1, payload_at, 300));
        assert!(slots.holds(3) && slots.holds(1) && !slots.holds(0));
        for (index, (start, len)) in segments.into_iter().enumerate() {
            let slot = slots.slot(index);
            let at = 3 * GRO_BUF_LEN + payload_at + start;
            assert_eq!((slot.as_ptr() as usize - base, slot.len()), (at, len));
        }
        // A window past its buffer's end, or longer than a slot, is refused.
        assert!(!slots.assign(4, 2, GRO_BUF_LEN - 100, 101));
        assert!(!slots.assign(4, 2, 0, SLOT_LEN + 1));
        assert!(!slots.holds(2));
        // Each buffer once, in the order first held.
        assert_eq!(slots.take(), (Side::Network as usize, &[3u16, 1][..]));
        assert!(!slots.holds(3));
        assert_eq!(slots.slot(0).as_ptr(), slots.spare.as_ptr());
    }
}

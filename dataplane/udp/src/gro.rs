//! UDP GRO on receive (Linux 5.0+): the kernel hands over runs of equal-sized datagrams from one
//! sender as one buffer plus a `UDP_GRO` cmsg with the segment size, and we split it into batch
//! slots. On loopback a GSO send reaches a GRO socket as one buffer, so the per-datagram kernel
//! work on both sides mostly disappears. Probed per socket; without it the engine uses recvmmsg.
//!
//! The segments are copied into a batch slot each, or, once the receive buffers are lent to a
//! batch ([`GroRecv::lend`], the network side's, whose packets are opened), left where they
//! landed: each of that batch's slots is then a window onto exactly one segment ([`GroSlots`]),
//! opened in place there and sent from there.

use std::any::Any;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::ReceiveReport;
use crate::mmsg::socket_addr;
use dataplane::batch::{BATCH_SIZE, Batch, SLOT_LEN, SlotMemory, TAG_ROOM};

/// A coalesced datagram is at most 64 KiB.
const GRO_BUF: usize = 1 << 16;

/// Turns GRO on for `socket`; false if the kernel refuses (then nothing changed).
pub(crate) fn enable_gro(socket: &impl AsRawFd) -> bool {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live c_int; the fd is open.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_GRO,
            (&raw const on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

/// Datagrams one receive asks the kernel for. Both go into the batch when the second fits
/// whole (a flush of two packets is then one pass), otherwise the second is held for the next
/// call. A receive that got fewer than two found the queue empty, so a caller on edge-triggered
/// readiness need not read again (and pay an EAGAIN system call per paced packet) to learn that.
const DATAGRAMS: usize = 2;

/// A received datagram not yet split into a batch.
#[derive(Clone, Copy)]
struct Datagram {
    /// Which of the scratch buffers holds it.
    buffer: usize,
    len: usize,
    /// The `UDP_GRO` segment size, or the whole length for a datagram that was not coalesced.
    segment: usize,
    truncated: bool,
    from: Option<SocketAddr>,
}

/// Receive scratch for a GRO socket: two 64 KiB buffers with their names and cmsg space.
pub(crate) struct GroRecv {
    /// The receive buffers, [`DATAGRAMS`] of [`GRO_BUF`] bytes, whose segments are copied into
    /// batch slots; `None` once lent to a batch ([`Self::lend`]), whose slots they then are.
    bufs: Option<Box<[u8]>>,
    names: Box<[libc::sockaddr_storage; DATAGRAMS]>,
    cmsgs: Box<[CmsgSpace; DATAGRAMS]>,
    /// The second datagram of the last system call, split by the next [`Self::recv`].
    held: Option<Datagram>,
    /// Whether the last receive saw the socket's queue empty and holds nothing back.
    drained: bool,
    /// Datagrams copied into a batch slot, and receives GRO coalesced, so far.
    report: ReceiveReport,
}

impl GroRecv {
    pub(crate) fn new() -> Self {
        Self {
            bufs: Some(vec![0u8; DATAGRAMS * GRO_BUF].into_boxed_slice()),
            // SAFETY: all-zero is a valid sockaddr_storage.
            names: Box::new(unsafe { zeroed() }),
            cmsgs: Box::new([CmsgSpace([0; 64]); DATAGRAMS]),
            held: None,
            drained: false,
            report: ReceiveReport::default(),
        }
    }

    /// What the receives so far did: datagrams copied, receives coalesced.
    pub(crate) fn report(&self) -> ReceiveReport {
        self.report
    }

    /// Lends the receive buffers to a new batch as its slots ([`GroSlots`]): every later
    /// [`Self::recv`] into that batch leaves each segment where it landed, its slot a window
    /// onto exactly that segment's bytes, and copies nothing. For packets that are opened, which
    /// shrinks them within their window; not for plaintexts to seal, which grow (a window has
    /// no room for the header and tag: sealing there is refused). The batch must be sent before
    /// the next [`Self::recv`] into it, which receives into the same buffers. `None` if lent
    /// already.
    pub(crate) fn lend(&mut self) -> Option<Batch> {
        let bufs = self.bufs.take()?;
        Some(Batch::with_memory(Box::new(GroSlots {
            bufs,
            windows: [(0, 0); BATCH_SIZE],
            count: 0,
        })))
    }

    /// Whether the last [`Self::recv`] found the socket's queue empty (it took fewer datagrams
    /// than it asked for, or none) and holds none back: with edge-triggered readiness, reading
    /// again before the next event would only return WouldBlock.
    pub(crate) fn drained(&self) -> bool {
        self.drained
    }

    /// Receives up to two (possibly coalesced) datagrams without blocking and splits them into
    /// `batch`, each segment at `offset` of its slot. Returns (segments, segments dropped: too
    /// large for a slot, or beyond a full batch). Into the batch [`Self::lend`] made, each
    /// segment is at 0 of its window instead, whatever `offset` says (the receive buffers are
    /// that batch's memory; any other batch is refused with `InvalidInput` while they are lent).
    pub(crate) fn recv(
        &mut self,
        socket: BorrowedFd<'_>,
        batch: &mut Batch,
        offset: usize,
    ) -> io::Result<(usize, usize)> {
        batch.clear();
        if let Some(slots) = GroSlots::of(batch) {
            slots.count = 0;
        }
        let (first, second) = match self.held.take() {
            Some(held) => {
                // Whether more arrived behind it is unknown until the next system call.
                self.drained = false;
                (held, None)
            }
            None => match self.recv_datagrams(socket, batch) {
                Ok((first, second)) => {
                    self.drained = second.is_none();
                    (first, second)
                }
                Err(e) => {
                    self.drained = e.kind() == io::ErrorKind::WouldBlock;
                    return Err(e);
                }
            },
        };
        let (mut segments, mut too_large) = self.split(first, batch, offset);
        if let Some(second) = second {
            if batch.len() + second.len.div_ceil(second.segment) <= BATCH_SIZE {
                let (more, more_too_large) = self.split(second, batch, offset);
                segments += more;
                too_large += more_too_large;
            } else {
                self.held = Some(second);
            }
        }
        Ok((segments, too_large))
    }

    /// Appends `datagram`'s segments to `batch`: copied from the receive buffers, or, when they
    /// are lent to it, as windows onto them. Returns (segments, segments dropped).
    fn split(&mut self, datagram: Datagram, batch: &mut Batch, offset: usize) -> (usize, usize) {
        if datagram.len > datagram.segment {
            self.report.coalesced += 1;
        }
        let start = datagram.buffer * GRO_BUF;
        let before = batch.len();
        let (segments, mut too_large) = match self.bufs.as_deref() {
            Some(bufs) => {
                let bytes = bufs
                    .get(start..start + datagram.len.min(GRO_BUF))
                    .unwrap_or_default();
                let split = split_segments(bytes, datagram.segment, batch, offset, datagram.from);
                self.report.copied += (batch.len() - before) as u64;
                split
            }
            None => split_in_place(datagram, start, batch),
        };
        // A datagram cut short by the buffer: its last segment is partial.
        if datagram.truncated && batch.len() > before {
            batch.drop_packet(batch.len() - 1);
            too_large += 1;
        }
        (segments, too_large)
    }

    /// One recvmmsg of up to [`DATAGRAMS`] datagrams, one per buffer (the receive buffers,
    /// where `batch`'s slots are when they are lent to it).
    fn recv_datagrams(
        &mut self,
        socket: BorrowedFd<'_>,
        batch: &mut Batch,
    ) -> io::Result<(Datagram, Option<Datagram>)> {
        let bufs: &mut [u8] = match self.bufs.as_deref_mut() {
            Some(bufs) => bufs,
            None => match GroSlots::of(batch) {
                Some(slots) => &mut slots.bufs,
                None => return Err(io::ErrorKind::InvalidInput.into()),
            },
        };
        // SAFETY: all-zero is a valid iovec and mmsghdr (null pointers, zero lengths).
        let mut iovs: [libc::iovec; DATAGRAMS] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; DATAGRAMS] = unsafe { zeroed() };
        let (names, cmsgs) = (&mut *self.names, &mut *self.cmsgs);
        for (i, ((iov, hdr), buf)) in iovs
            .iter_mut()
            .zip(hdrs.iter_mut())
            .zip(bufs.chunks_exact_mut(GRO_BUF))
            .enumerate()
        {
            *iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            hdr.msg_hdr.msg_name = (&raw mut names[i]).cast();
            hdr.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
            hdr.msg_hdr.msg_control = cmsgs[i].0.as_mut_ptr().cast();
            hdr.msg_hdr.msg_controllen = size_of::<CmsgSpace>();
        }
        // SAFETY: every header points at a live, owned name, one iovec over its own GRO_BUF
        // bytes of `bufs` (ours, or the lent batch's memory, borrowed through `batch`), and its
        // own cmsg space, all of the stated lengths and borrowed mutably for this call; the
        // kernel writes only within them.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                hdrs.as_mut_ptr(),
                DATAGRAMS as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        let datagram = |i: usize| {
            let hdr: &libc::mmsghdr = &hdrs[i];
            let len = hdr.msg_len as usize;
            Datagram {
                buffer: i,
                len,
                segment: gro_segment(cmsgs[i].written(&hdr.msg_hdr))
                    .filter(|&size| size > 0)
                    .unwrap_or(len.max(1)),
                truncated: hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
                from: socket_addr(&names[i]),
            }
        };
        match n {
            0 => Err(io::Error::from(io::ErrorKind::WouldBlock)),
            1 => Ok((datagram(0), None)),
            _ => Ok((datagram(0), Some(datagram(1)))),
        }
    }
}

/// A [`GroRecv`]'s receive buffers lent to a batch as its slots ([`SlotMemory`]): slot `i`
/// (below `count`) is a window onto exactly one segment of a coalesced receive, shorter than
/// [`SLOT_LEN`], its neighbours right before and after it. A packet there is opened in place
/// (opening writes only within the packet) and its plaintext sent from there; sealing there is
/// refused by the batch. A slot with no window is empty. The buffers are received into again
/// only by the next [`GroRecv::recv`] into the batch, which clears it first: the engine sends a
/// batch (sendmmsg, synchronous) before it receives the next, so no send reads a buffer the
/// kernel is writing. Owned memory and slices of it only: no `unsafe` here.
pub(crate) struct GroSlots {
    bufs: Box<[u8]>,
    /// Per slot below `count`: where its window starts in `bufs`, and its length.
    windows: [(usize, usize); BATCH_SIZE],
    count: usize,
}

impl GroSlots {
    /// `batch`'s memory, if it is lent receive buffers.
    fn of(batch: &mut Batch) -> Option<&mut Self> {
        batch.memory_mut()?.as_any_mut().downcast_mut()
    }

    /// Makes slot `index` (at most one past the last) the `len` bytes at `start`; false (and
    /// nothing changed) if the window would not lie in the buffers or exceeds [`SLOT_LEN`].
    fn assign(&mut self, index: usize, start: usize, len: usize) -> bool {
        if index >= BATCH_SIZE
            || index > self.count
            || len > SLOT_LEN
            || start
                .checked_add(len)
                .is_none_or(|end| end > self.bufs.len())
        {
            return false;
        }
        self.windows[index] = (start, len);
        self.count = index + 1;
        true
    }

    /// Slot `index`'s window, if it has one.
    fn window(&self, index: usize) -> Option<std::ops::Range<usize>> {
        let &(start, len) = self.windows.get(..self.count)?.get(index)?;
        Some(start..start + len)
    }
}

impl SlotMemory for GroSlots {
    fn slot(&self, index: usize) -> &[u8] {
        self.window(index)
            .and_then(|window| self.bufs.get(window))
            .unwrap_or_default()
    }

    fn slot_mut(&mut self, index: usize) -> &mut [u8] {
        match self.window(index) {
            Some(window) => self.bufs.get_mut(window).unwrap_or_default(),
            None => &mut [],
        }
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Appends the segments of `datagram`, which lies at `start` of the receive buffers lent to
/// `batch`, as windows onto them: each segment at 0 of its own window, exactly its length. A
/// segment too large for a slot (less the tag's room, as [`split_segments`] takes) takes an
/// empty slot marked dropped; segments beyond a full batch are not taken. Returns (segments
/// taken, segments dropped).
fn split_in_place(datagram: Datagram, start: usize, batch: &mut Batch) -> (usize, usize) {
    let capacity = SLOT_LEN - TAG_ROOM;
    let len = datagram.len.min(GRO_BUF);
    let segment = datagram.segment.max(1);
    let (mut segments, mut dropped) = (0, 0);
    for skip in (0..len).step_by(segment) {
        if batch.is_full() {
            dropped += 1;
            continue;
        }
        let index = batch.len();
        let chunk = segment.min(len - skip);
        let window = if chunk > capacity { 0 } else { chunk };
        let assigned =
            GroSlots::of(batch).is_some_and(|slots| slots.assign(index, start + skip, window));
        if !assigned || !batch.commit(0..window, datagram.from) {
            // Cannot happen (the window lies in the buffers, the batch has room): counted.
            dropped += 1;
            continue;
        }
        if window < chunk {
            batch.drop_packet(index);
            dropped += 1;
        }
        segments += 1;
    }
    (segments, dropped)
}

/// Control-message space for one datagram: bytes, aligned as `cmsghdr` requires, so the kernel's
/// control messages can be read as a byte slice ([`gro_segment`]) without pointer casts.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct CmsgSpace([u8; 64]);

impl CmsgSpace {
    /// The control bytes the kernel wrote: `msg_controllen` of them, never beyond the space.
    fn written(&self, hdr: &libc::msghdr) -> &[u8] {
        &self.0[..hdr.msg_controllen.min(self.0.len())]
    }
}

/// Appends the `segment`-byte segments of one received (possibly coalesced) `payload` to
/// `batch`, each at `offset` of its slot, from `from`. A segment too large for a slot (less the
/// tag's room) takes a slot marked dropped; segments beyond a full batch are not taken. The
/// kernel coalesces up to UDP_MAX_SEGMENTS (128 on newer kernels), more than a batch holds, so
/// both engines count what does not fit. Returns (segments taken, segments dropped).
pub(crate) fn split_segments(
    payload: &[u8],
    segment: usize,
    batch: &mut Batch,
    offset: usize,
    from: Option<SocketAddr>,
) -> (usize, usize) {
    let capacity = SLOT_LEN.saturating_sub(offset + TAG_ROOM);
    let (mut segments, mut dropped) = (0, 0);
    for chunk in payload.chunks(segment.max(1)) {
        if batch.is_full() {
            dropped += 1;
            continue;
        }
        let index = batch.len();
        if chunk.len() > capacity {
            if batch.commit(offset..offset, from) {
                batch.drop_packet(index);
            }
            dropped += 1;
        } else {
            batch.slot_mut(index)[offset..offset + chunk.len()].copy_from_slice(chunk);
            batch.commit(offset..offset + chunk.len(), from);
        }
        segments += 1;
    }
    (segments, dropped)
}

/// The `UDP_GRO` segment size in a received control block, parsed without pointers:
/// `cmsghdr` on 64-bit Linux is `len: usize, level: i32, type: i32`, data at 16, each
/// message padded to 8 bytes. Both engines read the kernel's control messages through it.
pub(crate) fn gro_segment(control: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(head) = control.get(at..at + 16) {
        let len = usize::try_from(u64::from_ne_bytes(head[..8].try_into().ok()?)).ok()?;
        let level = i32::from_ne_bytes(head[8..12].try_into().ok()?);
        let kind = i32::from_ne_bytes(head[12..16].try_into().ok()?);
        if level == libc::SOL_UDP && kind == libc::UDP_GRO {
            let data = control.get(at + 16..at + 20)?;
            return usize::try_from(i32::from_ne_bytes(data.try_into().ok()?)).ok();
        }
        if len < 16 {
            return None;
        }
        at += len.next_multiple_of(8);
    }
    None
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    use super::*;

    /// Makes every send on `socket` a GSO send of `size`-byte segments; false if unsupported.
    fn force_gso(socket: &UdpSocket, size: libc::c_int) -> bool {
        // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live c_int; the fd is open.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_UDP,
                libc::UDP_SEGMENT,
                (&raw const size).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        rc == 0
    }

    /// Receives until a datagram arrives (loopback delivers within the send call, but the
    /// test must not rely on that).
    fn recv_one(gro: &mut GroRecv, rx: &UdpSocket, batch: &mut Batch) -> (usize, usize) {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match gro.recv(rx.as_fd(), batch, 0) {
                Ok(counts) => return counts,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("receive failed: {e}"),
            }
        }
    }

    #[test]
    fn a_receive_takes_two_datagrams_and_says_when_it_drained_the_queue() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        if !enable_gro(&rx) {
            eprintln!("skipped: this kernel lacks UDP GRO");
            return;
        }
        let to = rx.local_addr().unwrap();
        for byte in [1u8, 2, 3] {
            tx.send_to(&[byte; 100], to).unwrap();
        }
        let (mut gro, mut batch) = (GroRecv::new(), Batch::new());
        // One call reads two datagrams; more may be queued behind them.
        assert_eq!(recv_one(&mut gro, &rx, &mut batch), (2, 0));
        assert_eq!(batch.packet(0), &[1u8; 100][..]);
        assert_eq!(batch.packet(1), &[2u8; 100][..]);
        assert!(!gro.drained());
        // The next reads one: the queue is empty.
        assert_eq!(recv_one(&mut gro, &rx, &mut batch), (1, 0));
        assert_eq!(batch.packet(0), &[3u8; 100][..]);
        assert!(gro.drained());
        let empty = gro.recv(rx.as_fd(), &mut batch, 0).unwrap_err();
        assert_eq!(empty.kind(), io::ErrorKind::WouldBlock);
        assert!(gro.drained());
        // A datagram arriving later is read as before.
        tx.send_to(&[4u8; 50], to).unwrap();
        assert_eq!(recv_one(&mut gro, &rx, &mut batch), (1, 0));
        assert_eq!(batch.packet(0), &[4u8; 50][..]);
        assert!(gro.drained());
    }

    #[test]
    fn a_second_datagram_that_does_not_fit_waits_for_the_next_batch() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let gso = UdpSocket::bind("127.0.0.1:0").unwrap();
        if !enable_gro(&rx) || !force_gso(&gso, 100) {
            eprintln!("skipped: this kernel lacks UDP GRO or GSO");
            return;
        }
        let to = rx.local_addr().unwrap();
        // A whole batch in one coalesced datagram, then one more packet.
        let mut run = Vec::new();
        for i in 0..BATCH_SIZE {
            run.extend_from_slice(&[i as u8; 100]);
        }
        gso.send_to(&run, to).unwrap();
        tx.send_to(&[0xee; 80], to).unwrap();
        let (mut gro, mut batch) = (GroRecv::new(), Batch::new());
        assert_eq!(recv_one(&mut gro, &rx, &mut batch), (BATCH_SIZE, 0));
        assert_eq!(
            batch.packet(BATCH_SIZE - 1),
            &[(BATCH_SIZE - 1) as u8; 100][..]
        );
        assert!(!gro.drained(), "a datagram is held back");
        // The held datagram comes next, without being lost or counted as dropped.
        assert_eq!(gro.recv(rx.as_fd(), &mut batch, 0).unwrap(), (1, 0));
        assert_eq!(batch.packet(0), &[0xee; 80][..]);
        assert!(!gro.drained(), "unknown until the next read");
        let empty = gro.recv(rx.as_fd(), &mut batch, 0).unwrap_err();
        assert_eq!(empty.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn segments_beyond_a_batch_are_counted_not_lost() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        if !enable_gro(&rx) || !force_gso(&tx, 200) {
            eprintln!("skipped: this kernel lacks UDP GRO or GSO");
            return;
        }
        // 100 segments: more than a batch, within UDP_MAX_SEGMENTS on kernels since 6.2 (128).
        let segments = 100;
        if tx
            .send_to(&vec![7u8; 200 * segments], rx.local_addr().unwrap())
            .is_err()
        {
            eprintln!("skipped: the kernel takes at most 64 segments per GSO send");
            return;
        }
        let (mut gro, mut batch) = (GroRecv::new(), Batch::new());
        let deadline = Instant::now() + Duration::from_secs(2);
        let (received, dropped) = loop {
            match gro.recv(rx.as_fd(), &mut batch, 0) {
                Ok(counts) => break counts,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("receive failed: {e}"),
            }
        };
        assert_eq!(received, BATCH_SIZE);
        assert_eq!(batch.len(), BATCH_SIZE);
        assert_eq!(
            dropped,
            segments - BATCH_SIZE,
            "the rest is counted as dropped"
        );
    }

    /// Into the batch the receive buffers were lent to, a receive leaves every segment where
    /// it landed: each packet is its segment's bytes in the GRO buffer, its slot exactly that
    /// long (the last, shorter segment too), and nothing is copied. A segment too large for a
    /// slot takes an empty slot marked dropped; another batch is refused while they are lent.
    #[test]
    fn a_lent_batch_takes_the_segments_where_they_landed() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let gso = UdpSocket::bind("127.0.0.1:0").unwrap();
        let big = UdpSocket::bind("127.0.0.1:0").unwrap();
        if !enable_gro(&rx) || !force_gso(&gso, 100) || !force_gso(&big, 3000) {
            eprintln!("skipped: this kernel lacks UDP GRO or GSO");
            return;
        }
        let to = rx.local_addr().unwrap();
        let mut gro = GroRecv::new();
        let mut batch = gro.lend().unwrap();
        assert!(gro.lend().is_none(), "lent once");
        let mut run = Vec::new();
        for i in 0..10 {
            run.extend_from_slice(&[i as u8; 100]);
        }
        run.extend_from_slice(&[0xee; 40]);
        gso.send_to(&run, to).unwrap();
        assert_eq!(recv_one(&mut gro, &rx, &mut batch), (11, 0));
        let slots = GroSlots::of(&mut batch).unwrap();
        let base = slots.bufs.as_ptr() as usize;
        let lens: Vec<usize> = (0..12).map(|i| slots.slot(i).len()).collect();
        assert_eq!(lens, [[100; 10].as_slice(), &[40, 0]].concat());
        for i in 0..11 {
            let packet = batch.packet(i);
            assert_eq!(packet, &run[i * 100..(i * 100 + 100).min(run.len())]);
            assert_eq!(packet.as_ptr() as usize - base, i * 100, "packet {i} moved");
        }
        // Nothing fits past the last window.
        assert!(!batch.commit(0..1, None));
        assert_eq!(
            gro.report(),
            ReceiveReport {
                copied: 0,
                coalesced: 1
            }
        );
        // Two segments longer than a slot takes: each an empty slot, dropped and counted.
        big.send_to(&[7u8; 6000], to).unwrap();
        assert_eq!(recv_one(&mut gro, &rx, &mut batch), (2, 2));
        assert_eq!(batch.len(), 2);
        assert!(batch.is_dropped(0) && batch.is_dropped(1));
        assert!(batch.packet(0).is_empty());
        assert_eq!(gro.report().copied, 0);
        // A whole batch in one coalesced datagram and one more behind it: the second waits in
        // the other buffer, untouched while the first batch is out, and is taken from there.
        let mut full = Vec::new();
        for i in 0..BATCH_SIZE {
            full.extend_from_slice(&[i as u8; 100]);
        }
        gso.send_to(&full, to).unwrap();
        big.send_to(&[0x33; 80], to).unwrap();
        assert_eq!(recv_one(&mut gro, &rx, &mut batch), (BATCH_SIZE, 0));
        assert!(!gro.drained(), "a datagram is held back");
        let last = batch.packet(BATCH_SIZE - 1);
        assert_eq!(last, &[(BATCH_SIZE - 1) as u8; 100][..]);
        assert_eq!(last.as_ptr() as usize - base, (BATCH_SIZE - 1) * 100);
        assert_eq!(gro.recv(rx.as_fd(), &mut batch, 0).unwrap(), (1, 0));
        assert_eq!(batch.packet(0), &[0x33; 80][..]);
        assert_eq!(batch.packet(0).as_ptr() as usize - base, GRO_BUF);
        assert_eq!(gro.report().coalesced, 3);
        // The buffers are that batch's: another batch gets none of them.
        let mut other = Batch::new();
        let refused = gro.recv(rx.as_fd(), &mut other, 0).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::InvalidInput);
    }

    fn cmsg(level: i32, kind: i32, value: i32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&20u64.to_ne_bytes());
        out.extend_from_slice(&level.to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&value.to_ne_bytes());
        out.extend_from_slice(&[0; 4]);
        out
    }

    #[test]
    fn finds_the_gro_segment_size_among_control_messages() {
        let other = cmsg(libc::SOL_IP, 8, 1);
        let gro = cmsg(libc::SOL_UDP, libc::UDP_GRO, 1200);
        assert_eq!(gro_segment(&gro), Some(1200));
        assert_eq!(gro_segment(&[other.clone(), gro].concat()), Some(1200));
        assert_eq!(gro_segment(&other), None);
        assert_eq!(gro_segment(&[]), None);
        // A length below the header ends the walk instead of looping.
        let mut bad = other;
        bad[..8].copy_from_slice(&3u64.to_ne_bytes());
        assert_eq!(gro_segment(&bad), None);
        assert_eq!(gro_segment(&[0u8; 7]), None);
    }
}

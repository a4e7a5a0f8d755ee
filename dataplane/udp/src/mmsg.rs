//! Batched UDP syscalls: recvmmsg into a [`Batch`]'s slots and sendmmsg out of them, with UDP GSO
//! (a `UDP_SEGMENT` cmsg) for runs of equal-sized packets, in the style of quinn-udp.
//!
//! GSO is probed once per socket (`getsockopt(UDP_SEGMENT)`) and switched off for good if a send
//! fails with EIO, which is how the kernel reports a device that cannot segment (quinn-udp does the
//! same). A run's segment size never exceeds the largest payload the path to the destination
//! carries unfragmented ([`path_max_payload`]): the kernel refuses a larger GSO send whole
//! (EMSGSIZE or EINVAL), where a lone datagram would have been fragmented and delivered. Should the
//! path shrink under a run anyway, the run is resent without GSO and the MTU learnt again.
//! GRO on receive is in [`super::gro`].

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::null_mut;

use socket2::SockAddr;

use dataplane::batch::{BATCH_SIZE, Batch, SLOT_LEN, TAG_ROOM};

/// Most segments the kernel takes in one GSO send (UDP_MAX_SEGMENTS).
const GSO_MAX_SEGMENTS: usize = 64;
/// Most bytes of one GSO send: a UDP datagram's payload limit, less IP and UDP headers.
const GSO_MAX_BYTES: usize = 65_000;

/// The segment limit when the path MTU cannot be read: IPv6's minimum MTU (1280) less the IPv6
/// and UDP headers, which every path carries.
const FALLBACK_MAX_PAYLOAD: usize = 1232;

/// `CMSG_SPACE(sizeof(u16))` on every 64-bit Linux ABI is 24; 32 keeps it u64-aligned.
type CmsgBuf = [u64; 4];

/// Whether `socket` can send with UDP GSO: the kernel knows the `UDP_SEGMENT` option.
pub(crate) fn gso_supported(socket: &impl AsRawFd) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`, which is a live c_int, and
    // updates `len`; the fd is owned by `socket` and open for the duration of the call.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    rc == 0
}

/// The largest UDP payload the path to `dest` carries without fragmenting: the kernel's MTU of
/// its route (`IP_MTU` / `IPV6_MTU`, which ip(7) and ipv6(7) give on a connected socket only, so
/// a throwaway socket is connected there) less the IP and UDP headers. `None` if the kernel
/// has no route or will not say.
pub(crate) fn path_max_payload(dest: SocketAddr) -> Option<usize> {
    let (unspecified, level, option, headers): (SocketAddr, _, _, usize) = match dest {
        SocketAddr::V4(_) => (
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            libc::IPPROTO_IP,
            libc::IP_MTU,
            20 + 8,
        ),
        SocketAddr::V6(_) => (
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU,
            40 + 8,
        ),
    };
    let probe = std::net::UdpSocket::bind(unspecified).ok()?;
    probe.connect(dest).ok()?;
    let mut mtu: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `mtu`, a live c_int, and updates
    // `len`; the fd is owned by `probe` and open for the duration of the call.
    let rc = unsafe {
        libc::getsockopt(
            probe.as_raw_fd(),
            level,
            option,
            (&raw mut mtu).cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    usize::try_from(mtu).ok()?.checked_sub(headers)
}

/// What a send achieved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sent {
    /// Packets the kernel took.
    pub packets: u64,
    /// Packets lost to a send error.
    pub failed: u64,
}

/// Scratch for recvmmsg / sendmmsg over one batch, allocated once per worker. Holds raw pointers
/// into a batch only between filling and the syscall.
pub(crate) struct Mmsg {
    hdrs: Box<[libc::mmsghdr]>,
    iovs: Box<[libc::iovec]>,
    names: Box<[libc::sockaddr_storage]>,
    cmsgs: Box<[CmsgBuf]>,
    /// For each message of a send: the batch index of its first packet, and how many packets.
    spans: Box<[(usize, usize)]>,
    gso: bool,
    /// The destination of the last GSO build and its [`path_max_payload`]: the largest
    /// segment size a run to it may use. Learnt on the first build for a destination, and
    /// again after the kernel refused a run as too large.
    segment_limit: Option<(SocketAddr, usize)>,
}

impl Mmsg {
    /// Scratch for a socket; `gso` from [`gso_supported`].
    pub(crate) fn new(gso: bool) -> Self {
        // SAFETY: mmsghdr, iovec and sockaddr_storage are plain C structs for which all-zero
        // bytes are a valid value (null pointers, zero lengths).
        let zero_hdr = || unsafe { zeroed::<libc::mmsghdr>() };
        // SAFETY: as above.
        let zero_iov = || unsafe { zeroed::<libc::iovec>() };
        // SAFETY: as above.
        let zero_name = || unsafe { zeroed::<libc::sockaddr_storage>() };
        Self {
            hdrs: (0..BATCH_SIZE).map(|_| zero_hdr()).collect(),
            iovs: (0..BATCH_SIZE).map(|_| zero_iov()).collect(),
            names: (0..BATCH_SIZE).map(|_| zero_name()).collect(),
            cmsgs: vec![[0u64; 4]; BATCH_SIZE].into_boxed_slice(),
            spans: vec![(0, 0); BATCH_SIZE].into_boxed_slice(),
            gso,
            segment_limit: None,
        }
    }

    /// Message `index` of the last [`Self::build`], for a submission of its own.
    pub(crate) fn msghdr(&self, index: usize) -> *const libc::msghdr {
        &raw const self.hdrs[index].msg_hdr
    }

    /// The batch index of the first packet of message `index`, and how many packets it holds.
    pub(crate) fn span(&self, index: usize) -> (usize, usize) {
        self.spans[index]
    }

    /// Stops using GSO (after the kernel refused it with EIO).
    pub(crate) fn disable_gso(&mut self) {
        self.gso = false;
    }

    /// Whether sends still use GSO.
    pub(crate) fn gso(&self) -> bool {
        self.gso
    }

    /// Forgets the learnt path MTU: the kernel refused a run as too large, so the path shrank.
    pub(crate) fn forget_path_mtu(&mut self) {
        self.segment_limit = None;
    }

    /// The largest segment a GSO run to `dest` may use, learnt once per destination.
    fn segment_limit(&mut self, dest: &SockAddr) -> usize {
        let Some(dest) = dest.as_socket() else {
            return FALLBACK_MAX_PAYLOAD;
        };
        match self.segment_limit {
            Some((known, limit)) if known == dest => limit,
            _ => {
                let limit = path_max_payload(dest).unwrap_or(FALLBACK_MAX_PAYLOAD);
                self.segment_limit = Some((dest, limit));
                limit
            }
        }
    }

    /// Receives up to a batch without blocking, each datagram at `offset` in its slot (with room
    /// for a tag after it). Datagrams that did not fit are committed and marked dropped; their
    /// count is returned beside the total. `Ok((0, 0))` never happens: an empty socket is
    /// `WouldBlock`.
    pub(crate) fn recv(
        &mut self,
        socket: BorrowedFd<'_>,
        batch: &mut Batch,
        offset: usize,
    ) -> io::Result<(usize, usize)> {
        batch.clear();
        let capacity = SLOT_LEN.saturating_sub(offset + TAG_ROOM);
        // recvmmsg points at every slot at once: only a batch with its own slab will do.
        let slab = batch
            .slab_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        for i in 0..BATCH_SIZE {
            let slot = &mut slab[i * SLOT_LEN + offset..(i + 1) * SLOT_LEN];
            self.iovs[i] = libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: capacity,
            };
            let hdr = &mut self.hdrs[i];
            hdr.msg_len = 0;
            hdr.msg_hdr.msg_name = (&raw mut self.names[i]).cast();
            hdr.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_hdr.msg_iov = &raw mut self.iovs[i];
            hdr.msg_hdr.msg_iovlen = 1;
            hdr.msg_hdr.msg_control = null_mut();
            hdr.msg_hdr.msg_controllen = 0;
            hdr.msg_hdr.msg_flags = 0;
        }
        // SAFETY: every header points at a live sockaddr_storage of the stated length and at one
        // iovec covering `capacity` bytes inside this batch's slab, which stays borrowed (through
        // `batch`) until the call returns; the kernel writes only within those.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                BATCH_SIZE as libc::c_uint,
                libc::MSG_DONTWAIT,
                null_mut(),
            )
        };
        let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        let mut truncated = 0;
        for i in 0..n {
            let hdr = &self.hdrs[i];
            let len = (hdr.msg_len as usize).min(capacity);
            batch.commit(offset..offset + len, socket_addr(&self.names[i]));
            if hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                batch.drop_packet(i);
                truncated += 1;
            }
        }
        Ok((n, truncated))
    }

    /// Sends every live packet of `batch` to `dest`, blocking (in poll) while the socket buffer
    /// is full. Runs of equal-sized packets go as one GSO send when supported.
    pub(crate) fn send(
        &mut self,
        socket: BorrowedFd<'_>,
        batch: &Batch,
        dest: SocketAddr,
    ) -> io::Result<Sent> {
        let dest = SockAddr::from(dest);
        let mut sent = Sent::default();
        let mut first_packet = 0;
        // Cleared for the rest of this call when the kernel refuses a run as too large.
        let mut gso = self.gso;
        while first_packet < batch.len() {
            let (messages, next) = self.build_with(batch, first_packet, &dest, gso);
            first_packet = next;
            let mut done = 0;
            while done < messages {
                // SAFETY: headers `done..messages` point at `dest` (alive for this function),
                // at iovecs over live packet bytes of `batch` (borrowed for this call; the
                // kernel only reads them) and at their own cmsg buffers of the stated length.
                let rc = unsafe {
                    libc::sendmmsg(
                        socket.as_raw_fd(),
                        self.hdrs[done..].as_mut_ptr(),
                        (messages - done) as libc::c_uint,
                        0,
                    )
                };
                match usize::try_from(rc) {
                    Ok(n) => {
                        sent.packets += self.spans[done..done + n]
                            .iter()
                            .map(|s| s.1 as u64)
                            .sum::<u64>();
                        done += n;
                    }
                    Err(_) => {
                        let error = io::Error::last_os_error();
                        match error.raw_os_error() {
                            Some(libc::EAGAIN) => wait_writable(socket)?,
                            Some(libc::EINTR) => {}
                            Some(libc::EIO) if gso => {
                                // The device cannot segment: resend the rest one by one.
                                self.gso = false;
                                gso = false;
                                first_packet = self.spans[done].0;
                                break;
                            }
                            Some(libc::EMSGSIZE | libc::EINVAL) if self.spans[done].1 > 1 => {
                                // A run's segments exceed the path MTU (it shrank since it
                                // was learnt): resend the rest one by one, where the kernel
                                // fragments what it must, and learn the MTU again.
                                self.forget_path_mtu();
                                gso = false;
                                first_packet = self.spans[done].0;
                                break;
                            }
                            _ => {
                                sent.failed += self.spans[done].1 as u64;
                                done += 1;
                            }
                        }
                    }
                }
            }
        }
        Ok(sent)
    }

    /// Fills headers for live packets from `first_packet` on, up to one batch of iovecs.
    /// Returns the number of messages and the index after the last packet used.
    pub(crate) fn build(
        &mut self,
        batch: &Batch,
        first_packet: usize,
        dest: &SockAddr,
    ) -> (usize, usize) {
        self.build_with(batch, first_packet, dest, self.gso)
    }

    /// [`Self::build`], grouping runs only if `gso`.
    fn build_with(
        &mut self,
        batch: &Batch,
        first_packet: usize,
        dest: &SockAddr,
        gso: bool,
    ) -> (usize, usize) {
        // Segments no larger than the path carries unfragmented.
        let segment_limit = if gso { self.segment_limit(dest) } else { 0 };
        let mut messages = 0;
        let mut iov = 0;
        let mut index = first_packet;
        while index < batch.len() && iov < BATCH_SIZE {
            if batch.is_dropped(index) {
                index += 1;
                continue;
            }
            let size = batch.packet(index).len();
            let start_iov = iov;
            let start_packet = index;
            let mut bytes = 0;
            // A GSO run: equal sizes, within the kernel's segment and byte limits.
            while index < batch.len() && iov < BATCH_SIZE {
                if batch.is_dropped(index) {
                    index += 1;
                    continue;
                }
                let packet = batch.packet(index);
                let run = iov - start_iov;
                let joins = run == 0
                    || (gso
                        && size <= segment_limit
                        && packet.len() == size
                        && run < GSO_MAX_SEGMENTS
                        && bytes + packet.len() <= GSO_MAX_BYTES);
                if !joins {
                    break;
                }
                self.iovs[iov] = libc::iovec {
                    iov_base: packet.as_ptr().cast_mut().cast(),
                    iov_len: packet.len(),
                };
                bytes += packet.len();
                iov += 1;
                index += 1;
            }
            let count = iov - start_iov;
            self.spans[messages] = (start_packet, count);
            let hdr = &mut self.hdrs[messages];
            hdr.msg_len = 0;
            hdr.msg_hdr.msg_name = dest.as_ptr().cast_mut().cast();
            hdr.msg_hdr.msg_namelen = dest.len();
            hdr.msg_hdr.msg_iov = &raw mut self.iovs[start_iov];
            hdr.msg_hdr.msg_iovlen = count;
            hdr.msg_hdr.msg_flags = 0;
            if count > 1 {
                set_segment_cmsg(&mut hdr.msg_hdr, &mut self.cmsgs[messages], size as u16);
            } else {
                hdr.msg_hdr.msg_control = null_mut();
                hdr.msg_hdr.msg_controllen = 0;
            }
            messages += 1;
        }
        (messages, index)
    }
}

/// The address the kernel wrote into `storage`, if it is IPv4 or IPv6.
pub(crate) fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: ss_family says the storage holds a sockaddr_in, which is smaller than and
            // alignment-compatible with sockaddr_storage.
            let v4 = unsafe { &*std::ptr::from_ref(storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(v4.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let v6 = unsafe { &*std::ptr::from_ref(storage).cast::<libc::sockaddr_in6>() };
            let ip = std::net::Ipv6Addr::from(v6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Attaches a `UDP_SEGMENT` cmsg (the segment size) to `hdr`, in `buf`.
fn set_segment_cmsg(hdr: &mut libc::msghdr, buf: &mut CmsgBuf, segment: u16) {
    *buf = [0; 4];
    hdr.msg_control = buf.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as libc::c_uint) } as usize;
    hdr.msg_controllen = space.min(size_of::<CmsgBuf>());
    // SAFETY: msg_control points at `buf`, u64-aligned and at least CMSG_SPACE(2) bytes long,
    // so CMSG_FIRSTHDR returns a pointer to its start with room for the header and a u16.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(hdr);
        if cmsg.is_null() {
            return;
        }
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as libc::c_uint) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment);
    }
}

/// Blocks until `socket` is writable or 100 ms passed.
fn wait_writable(socket: BorrowedFd<'_>) -> io::Result<()> {
    let mut pollfd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one live pollfd, count 1.
    let rc = unsafe { libc::poll(&raw mut pollfd, 1, 100) };
    if rc < 0 {
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    Ok(())
}

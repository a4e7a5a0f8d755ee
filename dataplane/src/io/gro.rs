//! UDP GRO on receive (Linux 5.0+): the kernel hands over runs of equal-sized datagrams from one
//! sender as one buffer plus a `UDP_GRO` cmsg with the segment size, and we split it into batch
//! slots. On loopback a GSO send reaches a GRO socket as one buffer, so the per-datagram kernel
//! work on both sides mostly disappears. Probed per socket; without it the engine uses recvmmsg.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, BorrowedFd};

use super::mmsg::socket_addr;
use crate::batch::{Batch, SLOT_LEN};

/// A coalesced datagram is at most 64 KiB.
const GRO_BUF: usize = 1 << 16;
const TAG_ROOM: usize = 16;

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

/// Receive scratch for a GRO socket: one 64 KiB buffer, its name and cmsg space.
pub(crate) struct GroRecv {
    buf: Box<[u8]>,
    name: Box<libc::sockaddr_storage>,
    cmsg: Box<[u64; 8]>,
}

impl GroRecv {
    pub(crate) fn new() -> Self {
        Self {
            buf: vec![0u8; GRO_BUF].into_boxed_slice(),
            // SAFETY: all-zero is a valid sockaddr_storage.
            name: Box::new(unsafe { zeroed() }),
            cmsg: Box::new([0; 8]),
        }
    }

    /// Receives one (possibly coalesced) datagram without blocking and splits it into `batch`,
    /// each segment at `offset` of its slot. Returns (segments, segments dropped: too large for
    /// a slot, or beyond a full batch).
    pub(crate) fn recv(
        &mut self,
        socket: BorrowedFd<'_>,
        batch: &mut Batch,
        offset: usize,
    ) -> io::Result<(usize, usize)> {
        batch.clear();
        let mut iov = libc::iovec {
            iov_base: self.buf.as_mut_ptr().cast(),
            iov_len: self.buf.len(),
        };
        // SAFETY: all-zero is a valid msghdr.
        let mut hdr: libc::msghdr = unsafe { zeroed() };
        hdr.msg_name = (&raw mut *self.name).cast();
        hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        hdr.msg_iov = &raw mut iov;
        hdr.msg_iovlen = 1;
        hdr.msg_control = self.cmsg.as_mut_ptr().cast();
        hdr.msg_controllen = size_of::<[u64; 8]>();
        // SAFETY: the header points at live, owned buffers of the stated lengths (name, one
        // iovec over `buf`, cmsg space); the kernel writes only within them.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &raw mut hdr, libc::MSG_DONTWAIT) };
        let len = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        let segment = match segment_size(&hdr) {
            Some(size) if size > 0 => size,
            _ => len.max(1),
        };
        let addr = socket_addr(&self.name);
        let capacity = SLOT_LEN - offset - TAG_ROOM;
        let (mut segments, mut too_large) = (0, 0);
        for chunk in self.buf[..len.min(GRO_BUF)].chunks(segment) {
            // The kernel coalesces up to UDP_MAX_SEGMENTS (128 on newer kernels), more than a
            // batch holds: what does not fit is dropped and counted, as in the io_uring engine.
            if batch.is_full() {
                too_large += 1;
                continue;
            }
            let index = batch.len();
            if chunk.len() > capacity {
                if batch.commit(offset..offset, addr) {
                    batch.drop_packet(index);
                }
                too_large += 1;
            } else {
                batch.slot_mut(index)[offset..offset + chunk.len()].copy_from_slice(chunk);
                batch.commit(offset..offset + chunk.len(), addr);
            }
            segments += 1;
        }
        if hdr.msg_flags & libc::MSG_TRUNC != 0 && !batch.is_empty() {
            batch.drop_packet(batch.len() - 1);
            too_large += 1;
        }
        Ok((segments, too_large))
    }
}

/// The `UDP_GRO` segment size the kernel attached, if any.
fn segment_size(hdr: &libc::msghdr) -> Option<usize> {
    // SAFETY: `hdr` was filled by recvmsg, so msg_control/msg_controllen describe valid cmsgs
    // within our buffer; CMSG_FIRSTHDR/CMSG_NXTHDR stay inside it and return null at the end.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_UDP && (*cmsg).cmsg_type == libc::UDP_GRO {
                let size = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                return usize::try_from(size).ok();
            }
            cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::batch::BATCH_SIZE;

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
}

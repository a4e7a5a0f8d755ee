//! Batched socket calls for drivers outside the engines: load generators, sinks, tests.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;

use super::mmsg::{Mmsg, gso_supported};
use crate::batch::Batch;

/// recvmmsg / sendmmsg (with GSO where the socket has it) over whole [`Batch`]es.
pub struct BatchIo {
    recv: Mmsg,
    send: Mmsg,
}

impl core::fmt::Debug for BatchIo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BatchIo")
            .field("gso", &self.send.gso())
            .finish()
    }
}

impl BatchIo {
    /// Scratch for sending and receiving on `socket` (GSO probed on it).
    pub fn new(socket: &UdpSocket) -> Self {
        Self {
            recv: Mmsg::new(false),
            send: Mmsg::new(gso_supported(socket)),
        }
    }

    /// Receives up to a batch without blocking (WouldBlock if none), each datagram at `offset`
    /// of its slot. Returns how many arrived.
    pub fn recv(
        &mut self,
        socket: &UdpSocket,
        batch: &mut Batch,
        offset: usize,
    ) -> io::Result<usize> {
        self.recv
            .recv(socket.as_fd(), batch, offset)
            .map(|(n, _)| n)
    }

    /// Sends every live packet of `batch` to `dest`; returns how many the kernel took.
    pub fn send(&mut self, socket: &UdpSocket, batch: &Batch, dest: SocketAddr) -> io::Result<u64> {
        self.send
            .send(socket.as_fd(), batch, dest)
            .map(|sent| sent.packets)
    }
}

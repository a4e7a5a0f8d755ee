//! Batched socket calls for drivers outside the engines: load generators, sinks, tests.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;

use crate::gro::{GroRecv, enable_gro};
use crate::mmsg::{Mmsg, gso_supported};
use dataplane::batch::Batch;

/// recvmmsg / sendmmsg (with GSO where the socket has it) over whole [`Batch`]es.
pub struct BatchIo {
    recv: Mmsg,
    send: Mmsg,
    /// Set by [`BatchIo::with_gro`] when the socket took UDP GRO.
    gro: Option<GroRecv>,
}

impl core::fmt::Debug for BatchIo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BatchIo")
            .field("gso", &self.send.gso())
            .field("gro", &self.gro.is_some())
            .finish()
    }
}

impl BatchIo {
    /// Scratch for sending and receiving on `socket` (GSO probed on it).
    pub fn new(socket: &UdpSocket) -> Self {
        Self {
            recv: Mmsg::new(false),
            send: Mmsg::new(gso_supported(socket)),
            gro: None,
        }
    }

    /// As [`BatchIo::new`], and turns UDP GRO on for `socket` where the kernel has it, as the
    /// engines do on their own sockets: a receiver that is a Veil peer or relay. Each receive
    /// then takes one (possibly coalesced) datagram, split into slots.
    pub fn with_gro(socket: &UdpSocket) -> Self {
        let mut io = Self::new(socket);
        if enable_gro(socket) {
            io.gro = Some(GroRecv::new());
        }
        io
    }

    /// Whether receives use UDP GRO.
    pub fn gro(&self) -> bool {
        self.gro.is_some()
    }

    /// Receives up to a batch without blocking (WouldBlock if none), each datagram at `offset`
    /// of its slot. Returns how many arrived.
    pub fn recv(
        &mut self,
        socket: &UdpSocket,
        batch: &mut Batch,
        offset: usize,
    ) -> io::Result<usize> {
        match self.gro.as_mut() {
            Some(gro) => gro.recv(socket.as_fd(), batch, offset),
            None => self.recv.recv(socket.as_fd(), batch, offset),
        }
        .map(|(n, _)| n)
    }

    /// Sends every live packet of `batch` to `dest`; returns how many the kernel took.
    pub fn send(&mut self, socket: &UdpSocket, batch: &Batch, dest: SocketAddr) -> io::Result<u64> {
        self.send
            .send(socket.as_fd(), batch, dest)
            .map(|sent| sent.packets)
    }
}

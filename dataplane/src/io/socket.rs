//! Socket setup: SO_REUSEPORT so each worker has its own socket on the same port.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// Socket buffers large enough to ride out a scheduling hiccup at a few hundred thousand
/// packets per second; the kernel caps them at `net.core.{r,w}mem_max`.
const SOCKET_BUFFER: usize = 4 << 20;

/// A non-blocking UDP socket bound to `addr` with SO_REUSEPORT, so every worker can bind the
/// same address and the kernel spreads flows across them by hash.
pub fn bind_reuseport(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    // Best effort: a smaller buffer only means drops under bursts.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

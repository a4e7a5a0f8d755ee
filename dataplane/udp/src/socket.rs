//! Socket and thread setup: SO_REUSEPORT so each worker has its own socket on the same port,
//! and pinning a worker thread to a CPU.

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

/// Pins the calling thread to `cpu` (sched_setaffinity(2)). Benchmarks pin so that a run's
/// latencies do not fall into modes by thread placement alone.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: an all-zero cpu_set_t is the empty set; CPU_SET writes inside it (cpu is below
    // CPU_SETSIZE, checked above); sched_setaffinity(0, ...) reads `size_of::<cpu_set_t>()`
    // bytes from it for the calling thread.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

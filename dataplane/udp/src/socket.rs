//! Socket and thread setup: SO_REUSEPORT so each worker has its own socket on the same port,
//! and pinning a worker thread to a CPU.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// Socket buffers large enough to ride out a scheduling hiccup at a few hundred thousand
/// packets per second; the kernel caps them at `net.core.{r,w}mem_max`.
const SOCKET_BUFFER: usize = 4 << 20;

/// How often [`bind_reuseport`] asks for a fresh port when another socket took the one it was
/// about to bind.
const PORT_ATTEMPTS: usize = 16;

/// A non-blocking UDP socket bound to `addr` with SO_REUSEPORT, so every worker can bind the
/// same address and the kernel spreads flows across them by hash.
///
/// For port 0 the port is one no socket holds: the kernel, asked for an ephemeral port with
/// SO_REUSEPORT set, may hand out a port another SO_REUSEPORT socket of the same user already
/// holds (`udp_lib_lport_inuse` counts that port as free), and the two sockets would then split
/// each other's traffic, so two sidecars on one host would drop each other's media. A plain
/// socket learns a port nobody holds, and the reuseport socket binds that port. Between the two
/// binds another socket can take it: a plain one makes the bind fail and we ask again; a
/// reuseport one asking for port 0 in that window (a chance of one in the ephemeral range per
/// such bind) is the race left.
pub fn bind_reuseport(addr: SocketAddr) -> io::Result<UdpSocket> {
    if addr.port() != 0 {
        return bind_reuseport_exact(addr);
    }
    let mut taken = io::Error::from(io::ErrorKind::AddrInUse);
    for _ in 0..PORT_ATTEMPTS {
        let free = UdpSocket::bind(addr)?.local_addr()?;
        match bind_reuseport_exact(free) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => taken = e,
            bound => return bound,
        }
    }
    Err(taken)
}

fn bind_reuseport_exact(addr: SocketAddr) -> io::Result<UdpSocket> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Asked for port 0, every socket gets a port of its own. Without the plain probe bind,
    /// 1,000 reuseport sockets share about 17 ports in a 28,000-port ephemeral range.
    #[test]
    fn ephemeral_reuseport_sockets_never_share_a_port() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let sockets: Vec<UdpSocket> = (0..1000).map(|_| bind_reuseport(any).unwrap()).collect();
        let mut ports: Vec<u16> = sockets
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        ports.sort_unstable();
        let before = ports.len();
        ports.dedup();
        assert_eq!(ports.len(), before, "two sockets were handed one port");
    }

    /// A fixed port still takes a group of workers.
    #[test]
    fn a_bound_port_takes_more_workers() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let first = bind_reuseport(any).unwrap();
        let second = bind_reuseport(first.local_addr().unwrap()).unwrap();
        assert_eq!(first.local_addr().unwrap(), second.local_addr().unwrap());
    }
}

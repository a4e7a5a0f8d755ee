//! A UDP proxy between one sidecar and the relay that drops everything while cut: the soak's
//! network cut. The sidecar's `--remote` points at the proxy's front socket; the relay sees the
//! proxy's back socket as that sidecar's address and answers there.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::demo::DemoError;

/// The proxy: two forwarding threads and the cut switch.
#[derive(Debug)]
pub(crate) struct CutProxy {
    front: SocketAddr,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

fn socket() -> Result<UdpSocket, DemoError> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(DemoError::Io)?;
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(DemoError::Io)?;
    Ok(socket)
}

impl CutProxy {
    /// Forwards between `sidecar` (its `--bind` address) and `relay`.
    pub(crate) fn start(sidecar: SocketAddr, relay: SocketAddr) -> Result<Self, DemoError> {
        let front = socket()?;
        let back = socket()?;
        let front_addr = front.local_addr().map_err(DemoError::Io)?;
        let front = Arc::new(front);
        let back = Arc::new(back);
        let cut = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        // Sidecar -> relay on the back socket, relay -> sidecar on the front one.
        for (from, to, dest) in [(front.clone(), back.clone(), relay), (back, front, sidecar)] {
            let (cut, stop, dropped) = (cut.clone(), stop.clone(), dropped.clone());
            let thread = thread::Builder::new()
                .name("soak-cut-proxy".into())
                .spawn(move || {
                    let mut buf = [0u8; 65_536];
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(n) = from.recv(&mut buf) else {
                            continue;
                        };
                        if cut.load(Ordering::Relaxed) {
                            dropped.fetch_add(1, Ordering::Relaxed);
                        } else {
                            // A send error (the relay restarting) loses the datagram, as the
                            // network would.
                            let _ = to.send_to(&buf[..n], dest);
                        }
                    }
                })
                .map_err(DemoError::Io)?;
            threads.push(thread);
        }
        Ok(Self {
            front: front_addr,
            cut,
            stop,
            dropped,
            threads,
        })
    }

    /// Where the sidecar sends (its `--remote`).
    pub(crate) fn front(&self) -> SocketAddr {
        self.front
    }

    /// Cuts (true) or restores (false) the link.
    pub(crate) fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::Relaxed);
    }

    /// Datagrams dropped while cut, both ways.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

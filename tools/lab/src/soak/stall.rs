//! A TCP proxy between one sidecar and the board that stops forwarding while cut: the board
//! half of a participant's network cut. TCP does not lose bytes, so a cut link stalls (what
//! was sent waits, as it would in the retransmission queue of a partitioned host) and flows
//! again when restored; a close on either side closes the other, so a board restart still
//! reaches the sidecar.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crate::demo::DemoError;

/// How often a stalled or idle direction looks at the switches again.
const POLL: Duration = Duration::from_millis(50);

/// The proxy: an accept thread, two threads per connection, and the cut switch.
#[derive(Debug)]
pub(crate) struct StallProxy {
    front: SocketAddr,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl StallProxy {
    /// Accepts on a loopback port and connects each connection on to `board`.
    pub(crate) fn start(board: SocketAddr) -> Result<Self, DemoError> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(DemoError::Io)?;
        listener.set_nonblocking(true).map_err(DemoError::Io)?;
        let front = listener.local_addr().map_err(DemoError::Io)?;
        let cut = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (switch, halt) = (cut.clone(), stop.clone());
        thread::Builder::new()
            .name("soak-stall-accept".into())
            .spawn(move || {
                while !halt.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((client, _)) => connect(client, board, &switch, &halt),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(POLL),
                        Err(_) => thread::sleep(POLL),
                    }
                }
            })
            .map_err(DemoError::Io)?;
        Ok(Self { front, cut, stop })
    }

    /// Where the sidecar connects (its `--board`).
    pub(crate) fn front(&self) -> SocketAddr {
        self.front
    }

    /// Stalls (true) or restores (false) the link.
    pub(crate) fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::Relaxed);
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Connects `client` on to `board` (closing it if the board is not there) and starts both
/// directions.
fn connect(client: TcpStream, board: SocketAddr, cut: &Arc<AtomicBool>, stop: &Arc<AtomicBool>) {
    let Ok(upstream) = TcpStream::connect(board) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let pairs = (|| {
        client.set_nonblocking(false)?;
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        Ok::<_, std::io::Error>([
            (client.try_clone()?, upstream.try_clone()?),
            (upstream, client),
        ])
    })();
    let Ok(pairs) = pairs else {
        return;
    };
    for (from, to) in pairs {
        let (cut, stop) = (cut.clone(), stop.clone());
        let _ = thread::Builder::new()
            .name("soak-stall".into())
            .spawn(move || forward(from, to, &cut, &stop));
    }
}

/// Copies `from` to `to` until either closes; reads nothing while cut.
fn forward(mut from: TcpStream, mut to: TcpStream, cut: &AtomicBool, stop: &AtomicBool) {
    if from.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let mut buf = [0u8; 16 * 1024];
    while !stop.load(Ordering::Relaxed) {
        if cut.load(Ordering::Relaxed) {
            thread::sleep(POLL);
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

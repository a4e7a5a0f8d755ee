//! The board's event loop: mio over TCP (and rustls), pumping [`BoardCore`]. All routing
//! decisions are the core's; this file only moves bytes.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use super::BoardError;
use super::core::{BoardCore, ConnId, Output};
use super::frame::FrameBuffer;
use super::stats::{BoardStats, ErrorReason};
use super::tamper::Tamper;
use super::tls::ServerTls;

const LISTENER: Token = Token(usize::MAX);

/// Unsent output a connection may hold before it is closed as too slow.
const MAX_PENDING_OUT: usize = 64 << 20;

/// How often the loop checks for shutdown when idle.
const TICK: Duration = Duration::from_millis(100);

/// What a board needs to start.
#[derive(Debug, Clone)]
pub struct BoardConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// TLS, or `None` for plaintext (allowed on loopback only).
    pub tls: Option<ServerTls>,
    /// The adversary to play, in tests.
    pub tamper: Option<Tamper>,
}

/// One accepted connection.
struct Connection {
    sock: TcpStream,
    tls: Option<rustls::ServerConnection>,
    frames: FrameBuffer,
    /// Plaintext mode: bytes not yet written.
    out: Vec<u8>,
    writable_interest: bool,
}

impl Connection {
    fn pending_out(&self) -> usize {
        self.out.len()
            + self
                .tls
                .as_ref()
                .map_or(0, |t| usize::from(t.wants_write()))
    }

    /// Reads everything available into the frame buffer. Ok(false) when the peer closed.
    fn read_in(&mut self) -> Result<bool, ErrorReason> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match &mut self.tls {
                None => match self.sock.read(&mut buf) {
                    Ok(0) => return Ok(false),
                    Ok(n) => self.frames.extend(buf.get(..n).unwrap_or_default()),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(true),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Err(ErrorReason::Io),
                },
                Some(tls) => {
                    match tls.read_tls(&mut self.sock) {
                        Ok(0) => return Ok(false),
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(true),
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(_) => return Err(ErrorReason::Io),
                    }
                    tls.process_new_packets().map_err(|_| ErrorReason::Tls)?;
                    loop {
                        match tls.reader().read(&mut buf) {
                            Ok(0) => return Ok(false),
                            Ok(n) => self.frames.extend(buf.get(..n).unwrap_or_default()),
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(_) => return Err(ErrorReason::Tls),
                        }
                    }
                }
            }
        }
    }

    fn queue(&mut self, frame: &[u8]) -> Result<(), ErrorReason> {
        match &mut self.tls {
            None => self.out.extend_from_slice(frame),
            Some(tls) => tls
                .writer()
                .write_all(frame)
                .map_err(|_| ErrorReason::Tls)?,
        }
        Ok(())
    }

    /// Writes what the socket takes now.
    fn flush(&mut self) -> Result<(), ErrorReason> {
        match &mut self.tls {
            None => {
                while !self.out.is_empty() {
                    match self.sock.write(&self.out) {
                        Ok(0) => return Err(ErrorReason::Io),
                        Ok(n) => {
                            self.out.drain(..n);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => return Err(ErrorReason::Io),
                    }
                }
            }
            Some(tls) => {
                while tls.wants_write() {
                    match tls.write_tls(&mut self.sock) {
                        Ok(0) => return Err(ErrorReason::Io),
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => return Err(ErrorReason::Io),
                    }
                }
            }
        }
        Ok(())
    }
}

/// A bound board, ready to [`run`](BoardServer::run).
pub struct BoardServer {
    poll: Poll,
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<ServerTls>,
    core: BoardCore,
    conns: HashMap<ConnId, Connection>,
    next_conn: ConnId,
    stats: Arc<BoardStats>,
    stop: Arc<AtomicBool>,
}

impl core::fmt::Debug for BoardServer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BoardServer")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// A board running in a thread; stops it when dropped.
#[derive(Debug)]
pub struct BoardHandle {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its certificate's SHA-256, when it runs TLS.
    pub fingerprint: Option<[u8; 32]>,
    /// Its counters.
    pub stats: Arc<BoardStats>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), BoardError>>>,
}

impl Drop for BoardHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn uuid_salt() -> [u8; 16] {
    let mut salt = [0u8; 16];
    // A failing system RNG leaves the salt zero: meetingUUIDs then repeat across board
    // restarts, which keyctl tolerates (they still differ between instances of one run).
    let _ = aws_lc_rs::rand::fill(&mut salt);
    salt
}

impl BoardServer {
    /// Binds the listener. Refuses plaintext on a non-loopback address.
    pub fn bind(config: BoardConfig) -> Result<Self, BoardError> {
        if config.tls.is_none() && !config.listen.ip().is_loopback() {
            return Err(BoardError::PlaintextNotLoopback(config.listen));
        }
        let mut listener = TcpListener::bind(config.listen).map_err(BoardError::Io)?;
        let local_addr = listener.local_addr().map_err(BoardError::Io)?;
        let poll = Poll::new().map_err(BoardError::Io)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(BoardError::Io)?;
        let stats = Arc::new(BoardStats::default());
        Ok(Self {
            poll,
            listener,
            local_addr,
            tls: config.tls,
            core: BoardCore::new(config.tamper, Arc::clone(&stats), uuid_salt()),
            conns: HashMap::new(),
            next_conn: 0,
            stats,
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The address it listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The certificate's SHA-256, when TLS is on.
    pub fn fingerprint(&self) -> Option<[u8; 32]> {
        self.tls.as_ref().map(|t| t.fingerprint)
    }

    /// The counters.
    pub fn stats(&self) -> Arc<BoardStats> {
        Arc::clone(&self.stats)
    }

    /// A flag that stops [`run`](Self::run) within 100 ms once set.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Runs the board in a thread.
    pub fn spawn(self) -> Result<BoardHandle, BoardError> {
        let addr = self.local_addr;
        let fingerprint = self.fingerprint();
        let stats = self.stats();
        let stop = self.stop_flag();
        let thread = std::thread::Builder::new()
            .name("board".to_owned())
            .spawn(move || self.run())
            .map_err(BoardError::Io)?;
        Ok(BoardHandle {
            addr,
            fingerprint,
            stats,
            stop,
            thread: Some(thread),
        })
    }

    /// Serves until the stop flag is set, then tells every participant the board ended.
    pub fn run(mut self) -> Result<(), BoardError> {
        let mut events = Events::with_capacity(1024);
        while !self.stop.load(Ordering::Relaxed) {
            match self.poll.poll(&mut events, Some(TICK)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(BoardError::Io(e)),
            }
            for event in &events {
                match event.token() {
                    LISTENER => self.accept_all(),
                    Token(conn) => {
                        if event.is_readable() || event.is_read_closed() {
                            self.readable(conn);
                        }
                        if event.is_writable() {
                            self.flush(conn);
                        }
                    }
                }
            }
            self.core.tick(dataplane::io::now());
            self.drain_core();
        }
        self.core.shutdown();
        self.drain_core();
        Ok(())
    }

    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut sock, peer)) => {
                    let conn = self.next_conn;
                    self.next_conn = self.next_conn.wrapping_add(1) % (usize::MAX - 1);
                    let _ = sock.set_nodelay(true);
                    let tls = match &self.tls {
                        None => None,
                        Some(t) => match rustls::ServerConnection::new(Arc::clone(&t.config)) {
                            Ok(mut c) => {
                                c.set_buffer_limit(Some(MAX_PENDING_OUT));
                                Some(c)
                            }
                            Err(_) => {
                                self.stats.error(ErrorReason::Tls);
                                continue;
                            }
                        },
                    };
                    if self
                        .poll
                        .registry()
                        .register(&mut sock, Token(conn), Interest::READABLE)
                        .is_err()
                    {
                        self.stats.error(ErrorReason::Io);
                        continue;
                    }
                    tracing::debug!(conn, %peer, "connection accepted");
                    self.conns.insert(
                        conn,
                        Connection {
                            sock,
                            tls,
                            frames: FrameBuffer::default(),
                            out: Vec::new(),
                            writable_interest: false,
                        },
                    );
                    self.core.connected(conn, dataplane::io::now());
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors and the like: count, and try again on the next event.
                    tracing::warn!(error = %e, "accept failed");
                    self.stats.error(ErrorReason::Io);
                    return;
                }
            }
        }
    }

    fn readable(&mut self, conn: ConnId) {
        let now = dataplane::io::now();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let open = match c.read_in() {
            Ok(open) => open,
            Err(reason) => {
                self.core.refuse(conn, reason, now);
                return;
            }
        };
        loop {
            match c.frames.next_frame() {
                Ok(Some(body)) => self.core.handle(conn, body, now),
                Ok(None) => break,
                Err(e) => {
                    self.core.refuse(conn, ErrorReason::from(&e), now);
                    return;
                }
            }
        }
        // Whatever the TLS layer wants to say (handshake messages) goes out now.
        self.flush(conn);
        if !open {
            if c_pending(&self.conns, conn) > 0 {
                // A peer that closed mid-frame.
                self.stats.error(ErrorReason::Truncated);
            }
            self.close(conn);
        }
    }

    fn flush(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.flush().is_err() {
            self.stats.error(ErrorReason::Io);
            self.close(conn);
            return;
        }
        let want = c.pending_out() > 0;
        if want != c.writable_interest {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if self
                .poll
                .registry()
                .reregister(&mut c.sock, Token(conn), interest)
                .is_ok()
            {
                c.writable_interest = want;
            }
        }
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(mut c) = self.conns.remove(&conn) {
            if let Some(tls) = &mut c.tls {
                tls.send_close_notify();
            }
            let _ = c.flush();
            let _ = self.poll.registry().deregister(&mut c.sock);
            let _ = c.sock.shutdown(std::net::Shutdown::Both);
            self.core.disconnected(conn, dataplane::io::now());
        }
    }

    fn drain_core(&mut self) {
        let mut touched = Vec::new();
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Send { to, frame } => {
                    let Some(c) = self.conns.get_mut(&to) else {
                        continue;
                    };
                    if c.queue(&frame).is_err() || c.out.len() > MAX_PENDING_OUT {
                        self.stats.error(ErrorReason::Io);
                        self.close(to);
                        continue;
                    }
                    touched.push(to);
                }
                Output::Close(conn) => self.close(conn),
            }
            if touched.len() > 4096 {
                self.flush_all(&mut touched);
            }
        }
        self.flush_all(&mut touched);
    }

    fn flush_all(&mut self, touched: &mut Vec<ConnId>) {
        touched.sort_unstable();
        touched.dedup();
        for conn in touched.drain(..) {
            self.flush(conn);
        }
    }
}

fn c_pending(conns: &HashMap<ConnId, Connection>, conn: ConnId) -> usize {
    conns.get(&conn).map_or(0, |c| c.frames.pending())
}

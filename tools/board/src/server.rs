//! The board's event loop: mio over TCP (and rustls), pumping [`BoardCore`]. All routing
//! decisions are the core's; this file only moves bytes.

use std::collections::HashMap;
use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use keyctl::time::{Clock, SystemClock};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use super::BoardError;
use super::core::{BoardCore, BoardLimits, ConnId, Output};
use super::frame::FrameBuffer;
use super::out_queue::OutQueue;
use super::policy::policy_for;
use super::stats::{ErrorReason, PublishedStats};
use super::tamper::Tamper;
use super::tls::ServerTls;
use super::ws::{WsEvent, WsIo, WsLink};

const LISTENER: Token = Token(usize::MAX);
/// The WebSocket listener's token; connection IDs stay below it (see `accept`).
const WS_LISTENER: Token = Token(usize::MAX - 1);

/// Plaintext rustls may hold encrypted-but-unsent per connection: the window between a
/// connection's plaintext queue (capped by [`BoardLimits::max_pending_out`]) and its socket.
const TLS_WINDOW: usize = 256 << 10;

/// Bytes read from a socket per system call. Complete frames are handled after each read,
/// so a connection's receive buffer holds at most one partial frame and one read:
/// [`MAX_FRAME`](super::frame::MAX_FRAME) + 16 KiB, however fast the peer sends.
const READ_CHUNK: usize = 16 * 1024;

/// Frames handed to one write: small frames (a nonce post is 126 bytes) then share TLS
/// records and system calls.
const WRITE_SLICES: usize = 64;

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

/// One accepted connection, on the stream listener or the WebSocket one.
struct Connection {
    link: Link,
    writable_interest: bool,
}

/// How a connection carries frames.
enum Link {
    /// Length-prefixed frames on a TCP stream, through TLS when on.
    Stream(Box<StreamLink>),
    /// One frame per binary WebSocket message (`--ws-listen`).
    Ws(Box<WsLink>),
}

impl Connection {
    fn pending_out(&self) -> usize {
        match &self.link {
            Link::Stream(s) => s.pending_out(),
            Link::Ws(w) => w.pending_out(),
        }
    }

    fn queue(&mut self, frame: &Arc<[u8]>, max: usize) -> Result<(), ErrorReason> {
        match &mut self.link {
            Link::Stream(s) => s.queue(frame, max),
            Link::Ws(w) => w.queue(frame, max),
        }
    }

    fn flush(&mut self) -> Result<(), ErrorReason> {
        match &mut self.link {
            Link::Stream(s) => s.flush(),
            Link::Ws(w) => w.flush(),
        }
    }

    /// The socket, for mio (gone only after a failed WebSocket handshake; closing the
    /// connection then drops it, which takes it out of the poll).
    fn socket_mut(&mut self) -> Option<&mut TcpStream> {
        match &mut self.link {
            Link::Stream(s) => Some(&mut s.sock),
            Link::Ws(w) => w.socket_mut(),
        }
    }

    /// Bytes of a frame received only in part.
    fn partial(&self) -> usize {
        match &self.link {
            Link::Stream(s) => s.frames.pending(),
            Link::Ws(_) => 0,
        }
    }

    /// What is queued, then the transport's goodbye (TLS close_notify, WebSocket close):
    /// best effort, the socket may not take it all.
    fn goodbye(&mut self) {
        match &mut self.link {
            Link::Stream(s) => {
                let _ = s.flush();
                if let Some(tls) = &mut s.tls {
                    tls.send_close_notify();
                    let _ = s.flush();
                }
            }
            Link::Ws(w) => w.close(),
        }
    }
}

/// A connection on the stream listener.
struct StreamLink {
    sock: TcpStream,
    tls: Option<rustls::ServerConnection>,
    frames: FrameBuffer,
    /// Frames queued and not yet handed to the socket (or to TLS), at most
    /// [`BoardLimits::max_pending_out`] bytes, each shared with its other recipients.
    out: OutQueue,
}

/// What one read from a connection gave.
enum ReadOutcome {
    /// Bytes were added to the frame buffer; there may be more.
    Data,
    /// Nothing more for now.
    WouldBlock,
    /// The peer closed.
    Closed,
}

impl StreamLink {
    fn pending_out(&self) -> usize {
        self.out.len()
            + self
                .tls
                .as_ref()
                .map_or(0, |t| usize::from(t.wants_write()))
    }

    /// One read from the socket (through TLS when on) into the frame buffer.
    fn read_some(&mut self) -> Result<ReadOutcome, ErrorReason> {
        let mut buf = [0u8; READ_CHUNK];
        loop {
            match &mut self.tls {
                None => match self.sock.read(&mut buf) {
                    Ok(0) => return Ok(ReadOutcome::Closed),
                    Ok(n) => {
                        self.frames.extend(buf.get(..n).unwrap_or_default());
                        return Ok(ReadOutcome::Data);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        return Ok(ReadOutcome::WouldBlock);
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Err(ErrorReason::Io),
                },
                Some(tls) => {
                    match tls.read_tls(&mut self.sock) {
                        Ok(0) => return Ok(ReadOutcome::Closed),
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            return Ok(ReadOutcome::WouldBlock);
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(_) => return Err(ErrorReason::Io),
                    }
                    tls.process_new_packets().map_err(|_| ErrorReason::Tls)?;
                    // What one TLS read decrypted: bounded by rustls's record buffer.
                    loop {
                        match tls.reader().read(&mut buf) {
                            Ok(0) => return Ok(ReadOutcome::Closed),
                            Ok(n) => self.frames.extend(buf.get(..n).unwrap_or_default()),
                            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                                return Ok(ReadOutcome::Data);
                            }
                            Err(_) => return Err(ErrorReason::Tls),
                        }
                    }
                }
            }
        }
    }

    /// Queues a frame; refuses it (the connection is then closed as a slow consumer) if the
    /// queue would pass `max` bytes even after writing what the socket takes now.
    fn queue(&mut self, frame: &Arc<[u8]>, max: usize) -> Result<(), ErrorReason> {
        if self.out.len() + frame.len() > max {
            self.flush()?;
            if self.out.len() + frame.len() > max {
                return Err(ErrorReason::SlowConsumer);
            }
        }
        self.out.push(Arc::clone(frame));
        Ok(())
    }

    /// Writes what the socket takes now.
    fn flush(&mut self) -> Result<(), ErrorReason> {
        loop {
            match &mut self.tls {
                None => {
                    if self.out.is_empty() {
                        return Ok(());
                    }
                    let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
                    let n = self.out.io_slices(&mut slices);
                    match self.sock.write_vectored(&slices[..n]) {
                        Ok(0) => return Err(ErrorReason::Io),
                        Ok(n) => self.out.consume(n),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => return Err(ErrorReason::Io),
                    }
                }
                Some(tls) => {
                    // Plaintext into TLS as far as its window allows, then records out.
                    // Several frames per write, so small ones share full records.
                    while !self.out.is_empty() {
                        let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
                        let count = self.out.io_slices(&mut slices);
                        let offered: usize = slices[..count].iter().map(|s| s.len()).sum();
                        let n = tls
                            .writer()
                            .write_vectored(&slices[..count])
                            .map_err(|_| ErrorReason::Tls)?;
                        self.out.consume(n);
                        if n < offered {
                            break;
                        }
                    }
                    if !tls.wants_write() {
                        return Ok(());
                    }
                    match tls.write_tls(&mut self.sock) {
                        Ok(0) => return Err(ErrorReason::Io),
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => return Err(ErrorReason::Io),
                    }
                }
            }
        }
    }
}

/// A bound board, ready to [`run`](BoardServer::run).
pub struct BoardServer {
    poll: Poll,
    listener: TcpListener,
    local_addr: SocketAddr,
    /// The WebSocket listener and its address (`--ws-listen`).
    ws: Option<(TcpListener, SocketAddr)>,
    tls: Option<ServerTls>,
    core: BoardCore,
    conns: HashMap<ConnId, Connection>,
    next_conn: ConnId,
    /// The core's counters as of the last pass of the loop, for the admin endpoint.
    stats: PublishedStats,
    stop: Arc<AtomicBool>,
    limits: BoardLimits,
    /// Connections with output queued since the last flush.
    touched: Vec<ConnId>,
    /// The time the core is told (the wall clock unless [`BoardServer::with_clock`]).
    clock: Arc<dyn Clock>,
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
    /// Where its WebSocket listener listens ([`BoardServer::with_websocket`]).
    pub ws_addr: Option<SocketAddr>,
    /// Its counters.
    pub stats: PublishedStats,
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
    /// Tells the core the time from `clock` instead of the wall clock. With relay tickets the
    /// clock must be unix milliseconds: a ticket's expiry is taken from it, and the relay checks
    /// it against its own wall clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Issues relay tickets in every Welcome (`veil board --ticket-key`).
    pub fn with_relay_tickets(mut self, tickets: super::core::RelayTickets) -> Self {
        self.core.set_relay_tickets(tickets);
        self
    }

    /// Binds the listener with the default [`BoardLimits`]. Refuses plaintext on a
    /// non-loopback address.
    pub fn bind(config: BoardConfig) -> Result<Self, BoardError> {
        Self::bind_with_limits(config, BoardLimits::default())
    }

    /// Binds the listener with other caps than the defaults.
    pub fn bind_with_limits(config: BoardConfig, limits: BoardLimits) -> Result<Self, BoardError> {
        if config.tls.is_none() && !config.listen.ip().is_loopback() {
            return Err(BoardError::PlaintextNotLoopback(config.listen));
        }
        let mut listener = TcpListener::bind(config.listen).map_err(BoardError::Io)?;
        let local_addr = listener.local_addr().map_err(BoardError::Io)?;
        let poll = Poll::new().map_err(BoardError::Io)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(BoardError::Io)?;
        let stats = PublishedStats::default();
        Ok(Self {
            poll,
            listener,
            local_addr,
            ws: None,
            tls: config.tls,
            core: BoardCore::with_limits(policy_for(config.tamper), uuid_salt(), limits),
            conns: HashMap::new(),
            next_conn: 0,
            stats,
            stop: Arc::new(AtomicBool::new(false)),
            limits,
            touched: Vec::new(),
            clock: Arc::new(SystemClock),
        })
    }

    /// Also listens for WebSocket connections on `addr` (path [`super::ws::WS_PATH`]), with
    /// TLS when the board has it (wss): one frame per binary message, into the same core.
    /// Refuses plaintext on a non-loopback address, as the stream listener does.
    pub fn with_websocket(mut self, addr: SocketAddr) -> Result<Self, BoardError> {
        if self.tls.is_none() && !addr.ip().is_loopback() {
            return Err(BoardError::PlaintextNotLoopback(addr));
        }
        let mut listener = TcpListener::bind(addr).map_err(BoardError::Io)?;
        let local = listener.local_addr().map_err(BoardError::Io)?;
        self.poll
            .registry()
            .register(&mut listener, WS_LISTENER, Interest::READABLE)
            .map_err(BoardError::Io)?;
        self.ws = Some((listener, local));
        Ok(self)
    }

    /// Where the WebSocket listener listens, when there is one.
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.ws.as_ref().map(|(_, addr)| *addr)
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
    pub fn stats(&self) -> PublishedStats {
        self.stats.clone()
    }

    /// A flag that stops [`run`](Self::run) within 100 ms once set.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Runs the board in a thread.
    pub fn spawn(self) -> Result<BoardHandle, BoardError> {
        let addr = self.local_addr;
        let ws_addr = self.ws_addr();
        let fingerprint = self.fingerprint();
        let stats = self.stats();
        let stop = self.stop_flag();
        let thread = std::thread::Builder::new()
            .name("board".to_owned())
            .spawn(move || self.run())
            .map_err(BoardError::Io)?;
        Ok(BoardHandle {
            addr,
            ws_addr,
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
                    LISTENER => self.accept_all(false),
                    WS_LISTENER => self.accept_all(true),
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
            self.core.tick(self.clock.now());
            self.drain_core();
            self.flush_touched();
            self.stats.publish(self.core.stats());
        }
        self.core.shutdown();
        self.drain_core();
        self.flush_touched();
        self.stats.publish(self.core.stats());
        Ok(())
    }

    /// Accepts every pending connection of the stream listener, or of the WebSocket one.
    fn accept_all(&mut self, websocket: bool) {
        loop {
            let accepted = match (&self.ws, websocket) {
                (Some((listener, _)), true) => listener.accept(),
                (None, true) => return,
                (_, false) => self.listener.accept(),
            };
            match accepted {
                Ok((mut sock, peer)) => {
                    // IDs stay below both listener tokens.
                    let conn = self.next_conn;
                    self.next_conn = self.next_conn.wrapping_add(1) % (usize::MAX - 1);
                    let _ = sock.set_nodelay(true);
                    let tls = match &self.tls {
                        None => None,
                        Some(t) => match rustls::ServerConnection::new(Arc::clone(&t.config)) {
                            Ok(mut c) => {
                                c.set_buffer_limit(Some(TLS_WINDOW));
                                Some(c)
                            }
                            Err(_) => {
                                self.core.count_error(ErrorReason::Tls);
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
                        self.core.count_error(ErrorReason::Io);
                        continue;
                    }
                    tracing::debug!(conn, %peer, websocket, "connection accepted");
                    let link = if websocket {
                        match WsLink::accept(WsIo::new(sock, tls)) {
                            Ok(link) => Link::Ws(Box::new(link)),
                            // Closed before a byte: a probe, not a refusal. The socket is
                            // closed (and so out of the poll) already.
                            Err(ErrorReason::Io) => continue,
                            Err(reason) => {
                                self.core.count_error(reason);
                                continue;
                            }
                        }
                    } else {
                        Link::Stream(Box::new(StreamLink {
                            sock,
                            tls,
                            frames: FrameBuffer::default(),
                            out: OutQueue::default(),
                        }))
                    };
                    self.conns.insert(
                        conn,
                        Connection {
                            link,
                            writable_interest: false,
                        },
                    );
                    self.core.connected(conn, self.clock.now());
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors and the like: count, and try again on the next event.
                    tracing::warn!(error = %e, "accept failed");
                    self.core.count_error(ErrorReason::Io);
                    return;
                }
            }
        }
    }

    /// Reads, then handles each complete frame, one socket read at a time, until the socket
    /// has nothing more (mio is edge-triggered). Each frame's output is queued before the
    /// next frame is handled, so the core never holds more than one frame's fan-out.
    fn readable(&mut self, conn: ConnId) {
        if let Some(Connection {
            link: Link::Ws(_), ..
        }) = self.conns.get(&conn)
        {
            return self.readable_ws(conn);
        }
        let now = self.clock.now();
        loop {
            let Some(Connection {
                link: Link::Stream(c),
                ..
            }) = self.conns.get_mut(&conn)
            else {
                return;
            };
            let read = match c.read_some() {
                Ok(read) => read,
                Err(reason) => {
                    self.core.refuse(conn, reason, now);
                    self.drain_core();
                    return;
                }
            };
            loop {
                let Some(Connection {
                    link: Link::Stream(c),
                    ..
                }) = self.conns.get_mut(&conn)
                else {
                    return;
                };
                match c.frames.next_frame() {
                    Ok(Some(body)) => self.core.handle(conn, body, now),
                    Ok(None) => break,
                    Err(e) => {
                        self.core.refuse(conn, ErrorReason::from(&e), now);
                        self.drain_core();
                        return;
                    }
                }
                self.drain_core();
            }
            match read {
                ReadOutcome::Data => {}
                ReadOutcome::WouldBlock => {
                    // Whatever the TLS layer wants to say (handshake messages) goes out now.
                    self.flush(conn);
                    return;
                }
                ReadOutcome::Closed => {
                    if self.conns.get(&conn).map_or(0, Connection::partial) > 0 {
                        // A peer that closed mid-frame.
                        self.core.count_error(ErrorReason::Truncated);
                    }
                    self.close(conn);
                    return;
                }
            }
        }
    }

    /// [`Self::readable`] for a WebSocket connection: one message, one frame, handled and its
    /// output queued before the next is read.
    fn readable_ws(&mut self, conn: ConnId) {
        let now = self.clock.now();
        loop {
            let Some(Connection {
                link: Link::Ws(ws), ..
            }) = self.conns.get_mut(&conn)
            else {
                return;
            };
            match ws.next() {
                Ok(WsEvent::Frame(body)) => {
                    self.core.handle(conn, &body, now);
                    self.drain_core();
                }
                Ok(WsEvent::WouldBlock) => {
                    // Handshake replies, pongs and anything queued go out now.
                    self.flush(conn);
                    return;
                }
                Ok(WsEvent::Closed) => {
                    self.close(conn);
                    return;
                }
                Err(reason) => {
                    self.core.refuse(conn, reason, now);
                    self.drain_core();
                    return;
                }
            }
        }
    }

    /// Sends what `conn` has queued, after publishing the counters: whatever a peer sees next,
    /// the counts behind it are readable.
    fn flush(&mut self, conn: ConnId) {
        self.stats.publish(self.core.stats());
        self.flush_published(conn);
    }

    /// [`Self::flush`] for a caller that has just published the counters.
    fn flush_published(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Err(reason) = c.flush() {
            self.core.count_error(reason);
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
            let registry = self.poll.registry();
            if c.socket_mut()
                .is_some_and(|sock| registry.reregister(sock, Token(conn), interest).is_ok())
            {
                c.writable_interest = want;
            }
        }
    }

    fn close(&mut self, conn: ConnId) {
        self.stats.publish(self.core.stats());
        if let Some(mut c) = self.conns.remove(&conn) {
            // What is queued (a Refused or Ended frame) first, then the transport's goodbye.
            c.goodbye();
            if let Some(sock) = c.socket_mut() {
                let _ = self.poll.registry().deregister(sock);
                let _ = sock.shutdown(std::net::Shutdown::Both);
            }
            self.core.disconnected(conn, self.clock.now());
        }
    }

    /// Moves the core's output into the connections' queues (flushed by
    /// [`flush_touched`](Self::flush_touched) once per loop, or earlier by a queue at its cap).
    fn drain_core(&mut self) {
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Send { to, frame } => {
                    let Some(c) = self.conns.get_mut(&to) else {
                        continue;
                    };
                    if let Err(reason) = c.queue(&frame, self.limits.max_pending_out) {
                        self.core.count_error(reason);
                        tracing::debug!(conn = to, reason = reason.as_str(), "closing connection");
                        self.close(to);
                        continue;
                    }
                    self.touched.push(to);
                }
                Output::Close(conn) => self.close(conn),
            }
        }
    }

    fn flush_touched(&mut self) {
        let mut touched = core::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        // One publication for the whole batch, not one per connection a post fans out to.
        self.stats.publish(self.core.stats());
        for conn in touched.drain(..) {
            self.flush_published(conn);
        }
        // Keep the allocation for the next round.
        self.touched = touched;
    }
}

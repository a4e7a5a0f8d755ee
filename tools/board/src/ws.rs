//! The board over WebSocket (`veil board --ws-listen`), for participants that cannot open a raw
//! TCP stream: a browser. Each binary message carries exactly one board frame, encoded as on
//! the TCP stream (its 4-byte length included), into the same [`BoardCore`](crate::BoardCore): the
//! same limits, counters and routing as every other connection. The transport is tungstenite's
//! (RFC 6455) over the same mio loop, with rustls when the board has a certificate (wss).
//!
//! What a WebSocket peer can do that a stream peer cannot, and what it gets:
//! - a message that is not exactly one frame (two, half of one, a length that disagrees) or a
//!   text message: refused like a malformed frame (`trailing`, `truncated`, `bad_type`);
//! - a message or WebSocket frame above [`MAX_FRAME`] plus its header: refused (`oversize`)
//!   before it is buffered whole;
//! - a handshake that never ends, or a request for another path than `/board`: the handshake
//!   fails (`websocket`), or the core's hello timeout closes it; tungstenite caps what a
//!   handshake may read.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mio::net::TcpStream;
use tungstenite::handshake::server::{ErrorResponse, Request, Response, ServerHandshake};
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

use super::frame::MAX_FRAME;
use super::stats::ErrorReason;

/// The one path the board answers WebSocket upgrades on.
pub const WS_PATH: &str = "/board";

/// A frame's length prefix.
const FRAME_HEADER: usize = 4;

/// Bytes tungstenite reads from the socket per call: small, since a board serves many idle
/// connections (its default, 128 KiB, is allocated up front per connection).
const READ_BUFFER: usize = 16 * 1024;

/// The socket under a WebSocket: plaintext (loopback only) or TLS, driven by hand rather than
/// through `rustls::StreamOwned`, whose `write` on a non-blocking socket returns `Ok(0)` once
/// TLS's buffer is full (tungstenite takes that as a reset): here a full buffer is
/// `WouldBlock`, and bytes TLS still holds count as output waiting ([`Self::tls_pending`]).
pub(crate) struct WsIo {
    sock: TcpStream,
    tls: Option<Box<rustls::ServerConnection>>,
    /// Whether the peer ever sent a byte: a connection closed before that (a port probe, a
    /// health check) is a disconnect, not a failed handshake. Shared with the link, since a
    /// failed handshake drops the stream.
    heard: Arc<AtomicBool>,
}

impl WsIo {
    pub(crate) fn new(sock: TcpStream, tls: Option<rustls::ServerConnection>) -> Self {
        Self {
            sock,
            tls: tls.map(Box::new),
            heard: Arc::new(AtomicBool::new(false)),
        }
    }

    pub(crate) fn socket_mut(&mut self) -> &mut TcpStream {
        &mut self.sock
    }

    /// Whether TLS holds records for the socket.
    fn tls_pending(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Hands TLS's records to the socket until it would block or none are left.
    fn write_tls(&mut self) -> io::Result<()> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(());
        };
        while tls.wants_write() {
            match tls.write_tls(&mut self.sock) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == ErrorKind::WouldBlock
}

impl Read for WsIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.tls.is_none() {
            let n = self.sock.read(buf)?;
            if n > 0 {
                self.heard.store(true, Ordering::Relaxed);
            }
            return Ok(n);
        }
        loop {
            {
                let tls = self.tls.as_mut().ok_or(ErrorKind::NotConnected)?;
                match tls.reader().read(buf) {
                    // Ok(0) here is the peer's close_notify.
                    Ok(n) => return Ok(n),
                    Err(e) if would_block(&e) => {}
                    Err(e) => return Err(e),
                }
                // Nothing decrypted yet: one read from the socket (WouldBlock ends the call).
                if tls.read_tls(&mut self.sock)? == 0 {
                    return Ok(0);
                }
                self.heard.store(true, Ordering::Relaxed);
                tls.process_new_packets()
                    .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
            }
            // Handshake replies and alerts go out as soon as they exist.
            match self.write_tls() {
                Ok(()) => {}
                Err(e) if would_block(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for WsIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.tls.is_none() {
            return self.sock.write(buf);
        }
        // Records already queued go first; then as much plaintext as TLS's window takes.
        match self.write_tls() {
            Ok(()) => {}
            Err(e) if would_block(&e) => {}
            Err(e) => return Err(e),
        }
        let Some(tls) = self.tls.as_mut() else {
            return Err(ErrorKind::NotConnected.into());
        };
        let n = tls.writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            return Err(ErrorKind::WouldBlock.into());
        }
        match self.write_tls() {
            Ok(()) => Ok(n),
            Err(e) if would_block(&e) => Ok(n),
            Err(e) => Err(e),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.tls.is_none() {
            return self.sock.flush();
        }
        self.write_tls()
    }
}

/// Answers the upgrade on [`WS_PATH`] only.
type Check = fn(&Request, Response) -> Result<Response, ErrorResponse>;

// The signature is tungstenite's `Callback`; the refusal is built once per refused upgrade.
#[allow(clippy::result_large_err)]
fn check_path(request: &Request, response: Response) -> Result<Response, ErrorResponse> {
    if request.uri().path() == WS_PATH {
        Ok(response)
    } else {
        let mut refusal = ErrorResponse::new(Some(format!("the board is at {WS_PATH}")));
        *refusal.status_mut() = tungstenite::http::StatusCode::NOT_FOUND;
        Err(refusal)
    }
}

fn config() -> WebSocketConfig {
    let max = MAX_FRAME + FRAME_HEADER;
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        // Every message is written and flushed at once (the board queues frames itself).
        .write_buffer_size(0)
        .max_write_buffer_size(2 * max)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

enum State {
    Handshaking(Box<MidHandshake<ServerHandshake<WsIo, Check>>>),
    Open(Box<WebSocket<WsIo>>),
    /// Between states, or after a failure was reported; nothing more is read or written.
    Gone,
}

/// What one read from a WebSocket connection gave.
pub(crate) enum WsEvent {
    /// One frame's body (the message without its length prefix).
    Frame(tungstenite::Bytes),
    /// Nothing more for now.
    WouldBlock,
    /// The peer closed.
    Closed,
}

/// One WebSocket connection: its handshake or open socket, and the frames queued for it.
pub(crate) struct WsLink {
    state: State,
    /// Frames the core queued and tungstenite has not taken yet, at most the board's
    /// `max_pending_out` bytes in all.
    out: VecDeque<Vec<u8>>,
    out_bytes: usize,
    /// The last flush would have blocked: tungstenite holds bytes for the socket.
    blocked: bool,
    /// Whether the peer sent anything (see [`WsIo`]).
    heard: Arc<AtomicBool>,
}

impl WsLink {
    /// Starts the server handshake on a freshly accepted socket. A handshake that fails at
    /// once (the whole request was already there) has closed the socket, so no event will
    /// come for it: the caller counts the reason and keeps no connection.
    /// `Err(ErrorReason::Io)` is a peer that closed before saying anything: not a refusal.
    pub(crate) fn accept(io: WsIo) -> Result<Self, ErrorReason> {
        let heard = Arc::clone(&io.heard);
        let start = ServerHandshake::start(io, check_path as Check, Some(config()));
        let state = advance(start.handshake(), &heard)?;
        Ok(Self {
            state,
            out: VecDeque::new(),
            out_bytes: 0,
            blocked: false,
            heard,
        })
    }

    /// The socket, for mio.
    pub(crate) fn socket_mut(&mut self) -> Option<&mut TcpStream> {
        match &mut self.state {
            State::Handshaking(mid) => Some(mid.get_mut().get_mut().socket_mut()),
            State::Open(ws) => Some(ws.get_mut().socket_mut()),
            State::Gone => None,
        }
    }

    /// Bytes waiting to be written: queued frames, plus one for anything else that waits for
    /// the socket (tungstenite's buffer after a blocked flush, records TLS holds, a handshake
    /// in progress, which may be waiting to write its reply): only its existence matters to
    /// the writable interest, and each is bounded by its own config.
    pub(crate) fn pending_out(&self) -> usize {
        let waiting = match &self.state {
            State::Handshaking(_) => true,
            State::Open(ws) => self.blocked || ws.get_ref().tls_pending(),
            State::Gone => false,
        };
        self.out_bytes + usize::from(waiting)
    }

    /// The next frame from the socket, completing the handshake first. A message that is not
    /// one well-formed frame, or a text message, is an error.
    pub(crate) fn next(&mut self) -> Result<WsEvent, ErrorReason> {
        loop {
            match core::mem::replace(&mut self.state, State::Gone) {
                State::Gone => return Ok(WsEvent::Closed),
                State::Handshaking(mid) => match advance((*mid).handshake(), &self.heard) {
                    Ok(state) => {
                        let open = matches!(state, State::Open(_));
                        self.state = state;
                        if !open {
                            return Ok(WsEvent::WouldBlock);
                        }
                        // Frames the core queued during the handshake (none before a hello,
                        // but a Refused may be) go out now.
                        self.flush()?;
                    }
                    // Closed before a byte: a disconnect, not a refusal.
                    Err(ErrorReason::Io) => return Ok(WsEvent::Closed),
                    Err(reason) => return Err(reason),
                },
                State::Open(mut ws) => {
                    let message = ws.read();
                    self.state = State::Open(ws);
                    match message {
                        Ok(Message::Binary(bytes)) => {
                            let range = one_frame(&bytes)?;
                            return Ok(WsEvent::Frame(bytes.slice(range)));
                        }
                        Ok(Message::Text(_)) => return Err(ErrorReason::BadType),
                        // Pings are answered by tungstenite on the next write or flush.
                        Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {
                            self.flush()?;
                        }
                        Ok(Message::Close(_)) => {
                            let _ = self.flush();
                            return Ok(WsEvent::Closed);
                        }
                        Err(e) => {
                            let event = classify(e)?;
                            if let WsEvent::WouldBlock = event {
                                // A pong tungstenite could not write while reading waits in
                                // its buffer: push it now, or mark the link blocked.
                                self.blocked = true;
                                self.flush()?;
                            }
                            return Ok(event);
                        }
                    }
                }
            }
        }
    }

    /// Queues a frame; refuses it (a slow consumer) if the queue would pass `max` bytes even
    /// after writing what the socket takes now.
    pub(crate) fn queue(&mut self, frame: &[u8], max: usize) -> Result<(), ErrorReason> {
        if self.out_bytes + frame.len() > max {
            self.flush()?;
            if self.out_bytes + frame.len() > max {
                return Err(ErrorReason::SlowConsumer);
            }
        }
        self.out_bytes += frame.len();
        self.out.push_back(frame.to_vec());
        Ok(())
    }

    /// Writes what the socket takes now. A handshake in progress is driven on (its reply may
    /// have been waiting for the socket); frames queued during it wait for it to finish.
    pub(crate) fn flush(&mut self) -> Result<(), ErrorReason> {
        if let State::Handshaking(_) = self.state {
            let State::Handshaking(mid) = core::mem::replace(&mut self.state, State::Gone) else {
                return Ok(());
            };
            self.state = advance((*mid).handshake(), &self.heard)?;
        }
        let State::Open(ws) = &mut self.state else {
            return Ok(());
        };
        // Pongs and close replies tungstenite queued, and records TLS holds, go out too.
        if self.blocked || ws.get_ref().tls_pending() {
            match ws.flush() {
                Ok(()) => self.blocked = false,
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                    return Ok(());
                }
                Err(e) => return classify(e).map(|_| ()),
            }
        }
        while let Some(frame) = self.out.pop_front() {
            self.out_bytes -= frame.len();
            match ws.send(Message::Binary(frame.into())) {
                Ok(()) => {}
                // The message is in tungstenite's buffer; the socket takes it later.
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                    self.blocked = true;
                    return Ok(());
                }
                Err(e) => return classify(e).map(|_| ()),
            }
        }
        Ok(())
    }

    /// Starts a closing handshake (best effort) after the queued frames.
    pub(crate) fn close(&mut self) {
        let _ = self.flush();
        if let State::Open(ws) = &mut self.state {
            let _ = ws.close(None);
            let _ = ws.flush();
        }
    }
}

/// Where the body of the one frame `message` must hold lies: after its length prefix, exactly
/// that many bytes and no more.
fn one_frame(message: &[u8]) -> Result<core::ops::Range<usize>, ErrorReason> {
    let (prefix, body) = message
        .split_first_chunk::<FRAME_HEADER>()
        .ok_or(ErrorReason::Truncated)?;
    let declared = usize::try_from(u32::from_be_bytes(*prefix)).unwrap_or(usize::MAX);
    if declared > MAX_FRAME {
        return Err(ErrorReason::Oversize);
    }
    match declared.cmp(&body.len()) {
        core::cmp::Ordering::Equal => Ok(FRAME_HEADER..message.len()),
        core::cmp::Ordering::Less => Err(ErrorReason::Trailing),
        core::cmp::Ordering::Greater => Err(ErrorReason::Truncated),
    }
}

/// The state one step of the handshake leaves: open, still under way, or failed (counted as
/// [`handshake_failure`] says; `Io` is a peer that closed before a byte).
fn advance(
    step: Result<WebSocket<WsIo>, HandshakeError<ServerHandshake<WsIo, Check>>>,
    heard: &AtomicBool,
) -> Result<State, ErrorReason> {
    match step {
        Ok(ws) => Ok(State::Open(Box::new(ws))),
        Err(HandshakeError::Interrupted(mid)) => Ok(State::Handshaking(Box::new(mid))),
        Err(HandshakeError::Failure(e)) => {
            Err(handshake_failure(&e, heard.load(Ordering::Relaxed)))
        }
    }
}

/// Why a handshake failed, as the board counts it: TLS (a plaintext client on wss, a bad
/// record) or the WebSocket upgrade itself (another path, not HTTP, a malformed request). A
/// peer that closed before sending a byte (`heard` false: a port probe, a health check) is
/// `Io`, which the callers treat as a plain disconnect rather than a refusal.
fn handshake_failure(error: &tungstenite::Error, heard: bool) -> ErrorReason {
    let closed_early = matches!(
        error,
        tungstenite::Error::Protocol(tungstenite::error::ProtocolError::HandshakeIncomplete)
            | tungstenite::Error::ConnectionClosed
    ) || matches!(error, tungstenite::Error::Io(e) if e.kind() == ErrorKind::UnexpectedEof);
    if !heard && closed_early {
        return ErrorReason::Io;
    }
    let tls = match error {
        tungstenite::Error::Tls(_) => true,
        tungstenite::Error::Io(e) => e
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
        _ => false,
    };
    if tls {
        ErrorReason::Tls
    } else {
        ErrorReason::WebSocket
    }
}

/// A tungstenite error as the board counts it.
fn classify(error: tungstenite::Error) -> Result<WsEvent, ErrorReason> {
    use tungstenite::Error as E;
    match error {
        E::Io(e) if e.kind() == ErrorKind::WouldBlock => Ok(WsEvent::WouldBlock),
        // A peer that drops the socket without a Close frame (a closed tab), or wss without
        // close_notify: a disconnect, as on the stream, not a refusal.
        E::ConnectionClosed
        | E::AlreadyClosed
        | E::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
            Ok(WsEvent::Closed)
        }
        E::Io(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(WsEvent::Closed),
        E::Io(_) => Err(ErrorReason::Io),
        E::Tls(_) => Err(ErrorReason::Tls),
        E::Capacity(_) => Err(ErrorReason::Oversize),
        E::WriteBufferFull(_) => Err(ErrorReason::SlowConsumer),
        _ => Err(ErrorReason::WebSocket),
    }
}

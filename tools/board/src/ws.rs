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

/// The socket under a WebSocket: plaintext (loopback only) or TLS.
pub(crate) enum WsIo {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl WsIo {
    pub(crate) fn socket_mut(&mut self) -> &mut TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(s) => &mut s.sock,
        }
    }
}

impl Read for WsIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for WsIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
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
}

impl WsLink {
    /// Starts the server handshake on a freshly accepted socket. A handshake that fails at
    /// once (the whole request was already there) has closed the socket, so no event will
    /// come for it: the caller counts the reason and keeps no connection.
    pub(crate) fn accept(io: WsIo) -> Result<Self, ErrorReason> {
        let start = ServerHandshake::start(io, check_path as Check, Some(config()));
        let state = match start.handshake() {
            Ok(ws) => State::Open(Box::new(ws)),
            Err(HandshakeError::Interrupted(mid)) => State::Handshaking(Box::new(mid)),
            Err(HandshakeError::Failure(e)) => return Err(handshake_failure(&e)),
        };
        Ok(Self {
            state,
            out: VecDeque::new(),
            out_bytes: 0,
            blocked: false,
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

    /// Bytes waiting to be written: queued frames, or tungstenite's buffer after a blocked
    /// flush (counted as one byte: it is bounded by the config, and only its existence
    /// matters to the writable interest).
    pub(crate) fn pending_out(&self) -> usize {
        self.out_bytes + usize::from(self.blocked)
    }

    /// The next frame from the socket, completing the handshake first. A message that is not
    /// one well-formed frame, or a text message, is an error.
    pub(crate) fn next(&mut self) -> Result<WsEvent, ErrorReason> {
        loop {
            match core::mem::replace(&mut self.state, State::Gone) {
                State::Gone => return Ok(WsEvent::Closed),
                State::Handshaking(mid) => match (*mid).handshake() {
                    Ok(ws) => {
                        self.state = State::Open(Box::new(ws));
                        // Frames the core queued during the handshake (none before a hello,
                        // but a Refused may be) go out now.
                        self.flush()?;
                    }
                    Err(HandshakeError::Interrupted(mid)) => {
                        self.state = State::Handshaking(Box::new(mid));
                        return Ok(WsEvent::WouldBlock);
                    }
                    Err(HandshakeError::Failure(e)) => return Err(handshake_failure(&e)),
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
                        Err(e) => return classify(e),
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

    /// Writes what the socket takes now. Frames queued during the handshake wait for it.
    pub(crate) fn flush(&mut self) -> Result<(), ErrorReason> {
        let State::Open(ws) = &mut self.state else {
            return Ok(());
        };
        if self.blocked {
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

/// Why a handshake failed, as the board counts it: TLS (a plaintext client on wss, a bad
/// record) or the WebSocket upgrade itself (another path, not HTTP, a malformed request).
fn handshake_failure(error: &tungstenite::Error) -> ErrorReason {
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
        E::ConnectionClosed | E::AlreadyClosed => Ok(WsEvent::Closed),
        E::Io(_) => Err(ErrorReason::Io),
        E::Tls(_) => Err(ErrorReason::Tls),
        E::Capacity(_) => Err(ErrorReason::Oversize),
        E::WriteBufferFull(_) => Err(ErrorReason::SlowConsumer),
        _ => Err(ErrorReason::WebSocket),
    }
}

//! `BoardClient`: one participant's blocking connection to the board (TCP, rustls unless
//! plaintext was asked for), framed per docs/PROTOCOL.md "Board wire format"; or the same
//! frames over WebSocket, one per binary message (`veil board --ws-listen`).

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use keyctl::wire::{MeetingRef, Message, ParticipantId};
use rustls::pki_types::ServerName;

use super::BoardError;
use super::frame::{ClientFrame, FrameBuffer, Hello, MAX_TEXT, ServerFrame};
use super::tls;

/// How the client trusts the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientTls {
    /// No TLS (the board must run `--insecure-plaintext`, loopback only).
    Plaintext,
    /// TLS, trusting exactly the certificate with this SHA-256 (as `veil board` prints it).
    PinnedSha256([u8; 32]),
    /// TLS, trusting the CA certificates in this PEM file.
    CaFile(PathBuf),
}

/// Where the board is and how to reach it.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The board's address.
    pub addr: SocketAddr,
    /// How to trust it.
    pub tls: ClientTls,
    /// Limit for the TCP connect, the TLS handshake and the welcome, and for each send.
    pub connect_timeout: Duration,
    /// Speak WebSocket to the board's `--ws-listen` address (path `/board`, one frame per
    /// binary message) instead of the framed stream.
    pub websocket: bool,
}

/// What the client asks for.
#[derive(Debug, Clone)]
pub struct Join {
    /// The meeting's ID.
    pub meeting_id: String,
    /// The user's name (the board's userID and display name; at most 256 bytes).
    pub name: String,
    /// Whether to claim the host role (steers leader selection only).
    pub host: bool,
    /// The identity's verification key `IVK`: the board derives the deviceID from it, so the
    /// same identity rejoins as the same participant. `veil::meeting::Participant` fills it
    /// from its identity key.
    pub ivk: [u8; 32],
}

/// The board's answer to a join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// The meeting instance (meetingID and this instance's fresh meetingUUID).
    pub meeting: MeetingRef,
    /// This participant, as the board named it.
    pub me: ParticipantId,
    /// The leader the board picked.
    pub leader: ParticipantId,
    /// Participants the board lists as co-hosts.
    pub cohosts: Vec<ParticipantId>,
    /// The relay ticket the board issued this participant, if it runs with `--ticket-key`.
    pub relay_ticket: Option<veil_relay::registration::TicketMac>,
}

/// Something the board sent after the welcome.
///
/// Exhaustive on purpose, though it crosses a crate boundary: every driver must decide what a
/// new kind of board event means, so adding one is a compile error there, not a silent `_` arm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardEvent {
    /// A keyctl message's bytes: a post, or the board's Leave / LeaderChange notice.
    Message(Vec<u8>),
    /// Someone joined (the board's participant list, untrusted).
    Joined(ParticipantId),
    /// Someone left.
    Left(ParticipantId),
    /// The board refused something and will close.
    Refused(String),
    /// The meeting or the board ended.
    Ended,
    /// The board's co-host list changed; this is the whole new list.
    Cohosts(Vec<ParticipantId>),
    /// A fresh relay ticket, asked for with [`BoardClient::request_relay_ticket`].
    RelayTicket(veil_relay::registration::TicketMac),
}

/// The byte stream under the frames, or under the WebSocket.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

impl Stream {
    fn socket(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(s) => &s.sock,
        }
    }
}

/// How frames travel.
enum Transport {
    /// Length-prefixed frames on the stream.
    Framed(Stream),
    /// One frame per binary message.
    Ws(Box<tungstenite::WebSocket<Stream>>),
}

impl Drop for Transport {
    /// A WebSocket says goodbye with a Close frame, so the board sees a disconnect rather than
    /// a reset (best effort: the socket may be gone).
    fn drop(&mut self) {
        if let Self::Ws(ws) = self {
            let _ = ws.close(None);
            let _ = ws.flush();
        }
    }
}

impl Transport {
    fn socket(&self) -> &TcpStream {
        match self {
            Self::Framed(s) => s.socket(),
            Self::Ws(ws) => ws.get_ref().socket(),
        }
    }

    /// Appends what arrives next to `frames`: bytes of the stream, or one message's frame.
    /// `Ok(0)` means the peer closed.
    fn read_into(&mut self, frames: &mut FrameBuffer) -> std::io::Result<usize> {
        match self {
            Self::Framed(s) => {
                let mut buf = [0u8; 16 * 1024];
                let n = s.read(&mut buf)?;
                frames.extend(buf.get(..n).unwrap_or_default());
                Ok(n)
            }
            Self::Ws(ws) => match ws.read() {
                Ok(tungstenite::Message::Binary(bytes)) => {
                    frames.extend(&bytes);
                    // An empty message is not a close: report it as a byte read.
                    Ok(bytes.len().max(1))
                }
                Ok(tungstenite::Message::Close(_)) => Ok(0),
                // Text is not the board's; pings are answered by tungstenite.
                Ok(_) => Err(ErrorKind::Interrupted.into()),
                Err(tungstenite::Error::Io(e)) => Err(e),
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    Ok(0)
                }
                Err(e) => Err(std::io::Error::other(e)),
            },
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Framed(Stream::Plain(s)) => s.write_all(buf),
            Self::Framed(Stream::Tls(s)) => s.write_all(buf).and_then(|()| s.flush()),
            Self::Ws(ws) => ws
                .send(tungstenite::Message::Binary(buf.to_vec().into()))
                .map_err(|e| match e {
                    tungstenite::Error::Io(e) => e,
                    e => std::io::Error::other(e),
                }),
        }
    }
}

/// A blocking connection to the board.
pub struct BoardClient {
    transport: Transport,
    frames: FrameBuffer,
    send_timeout: Duration,
}

impl core::fmt::Debug for BoardClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BoardClient")
            .field("peer", &self.transport.socket().peer_addr().ok())
            .finish_non_exhaustive()
    }
}

impl BoardClient {
    /// Connects, joins, and waits for the welcome (all within `opts.connect_timeout`).
    pub fn connect(opts: &ClientOptions, join: &Join) -> Result<(Self, Welcome), BoardError> {
        for (what, text) in [("meeting ID", &join.meeting_id), ("name", &join.name)] {
            if text.is_empty() || text.len() > MAX_TEXT {
                return Err(BoardError::TextLength {
                    what,
                    len: text.len(),
                });
            }
        }
        let sock = TcpStream::connect_timeout(&opts.addr, opts.connect_timeout)
            .map_err(BoardError::Connect)?;
        sock.set_nodelay(true).map_err(BoardError::Io)?;
        sock.set_write_timeout(Some(opts.connect_timeout))
            .map_err(BoardError::Io)?;
        let stream = match &opts.tls {
            ClientTls::Plaintext => Stream::Plain(sock),
            ClientTls::PinnedSha256(pin) => tls_stream(tls::pinned_client(*pin)?, opts, sock)?,
            ClientTls::CaFile(path) => tls_stream(tls::ca_client(path)?, opts, sock)?,
        };
        let transport = if opts.websocket {
            websocket(stream, opts)?
        } else {
            Transport::Framed(stream)
        };
        let mut client = Self {
            transport,
            frames: FrameBuffer::default(),
            send_timeout: opts.connect_timeout,
        };
        let hello = ClientFrame::Hello(Hello {
            meeting_id: &join.meeting_id,
            name: &join.name,
            host: join.host,
            ivk: join.ivk,
        });
        client.send_raw(&hello.encode())?;
        let deadline = Instant::now() + opts.connect_timeout;
        loop {
            if let Some(body) = client.frames.next_frame()? {
                return match ServerFrame::parse(body)? {
                    ServerFrame::Welcome(w) => Ok((
                        client,
                        Welcome {
                            meeting: w.meeting,
                            me: w.me,
                            leader: w.leader,
                            cohosts: w.cohosts,
                            relay_ticket: w.relay_ticket,
                        },
                    )),
                    ServerFrame::Refused(reason) => Err(BoardError::Refused(reason.to_owned())),
                    _ => Err(BoardError::Unexpected("a frame before the welcome")),
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !client.fill(left)? {
                return Err(BoardError::Timeout);
            }
        }
    }

    /// Posts a keyctl message to the meeting.
    pub fn post(&mut self, msg: &Message) -> Result<(), BoardError> {
        self.send_raw(&ClientFrame::Post(&msg.to_bytes()).encode())
    }

    /// Asks for a fresh relay ticket; it comes back as [`BoardEvent::RelayTicket`].
    pub fn request_relay_ticket(&mut self) -> Result<(), BoardError> {
        self.send_raw(&ClientFrame::TicketRequest.encode())
    }

    /// Says goodbye: the board posts the leave notice and closes.
    pub fn bye(&mut self) -> Result<(), BoardError> {
        self.send_raw(&ClientFrame::Bye.encode())
    }

    /// Sends bytes as they are (a whole encoded frame, or anything at all in tests).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), BoardError> {
        self.transport
            .socket()
            .set_write_timeout(Some(self.send_timeout))
            .map_err(BoardError::Io)?;
        self.transport.write_all(bytes).map_err(BoardError::Io)
    }

    /// The next event, waiting at most `timeout`; `Ok(None)` if none arrived in time.
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<BoardEvent>, BoardError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(body) = self.frames.next_frame()? {
                return Ok(Some(match ServerFrame::parse(body)? {
                    ServerFrame::Deliver(bytes) => BoardEvent::Message(bytes.to_vec()),
                    ServerFrame::Joined(p) => BoardEvent::Joined(p),
                    ServerFrame::Left(p) => BoardEvent::Left(p),
                    ServerFrame::Refused(r) => BoardEvent::Refused(r.to_owned()),
                    ServerFrame::Ended => BoardEvent::Ended,
                    ServerFrame::Cohosts(list) => BoardEvent::Cohosts(list),
                    ServerFrame::RelayTicket(ticket) => BoardEvent::RelayTicket(ticket),
                    ServerFrame::Welcome(_) => {
                        return Err(BoardError::Unexpected("a second welcome"));
                    }
                }));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.fill(left)? {
                return Ok(None);
            }
        }
    }

    /// Reads what arrives within `timeout` into the frame buffer; false on timeout.
    fn fill(&mut self, timeout: Duration) -> Result<bool, BoardError> {
        // A zero read timeout means "block forever" to the OS: wait at least 1 ms.
        self.transport
            .socket()
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .map_err(BoardError::Io)?;
        match self.transport.read_into(&mut self.frames) {
            Ok(0) => Err(BoardError::Closed),
            Ok(_) => Ok(true),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(true),
            Err(e) => Err(BoardError::Io(e)),
        }
    }
}

/// The WebSocket upgrade on `stream`, within the connect timeout.
fn websocket(stream: Stream, opts: &ClientOptions) -> Result<Transport, BoardError> {
    let scheme = match stream {
        Stream::Plain(_) => "ws",
        Stream::Tls(_) => "wss",
    };
    stream
        .socket()
        .set_read_timeout(Some(opts.connect_timeout))
        .map_err(BoardError::Io)?;
    let url = format!("{scheme}://{}{}", opts.addr, super::ws::WS_PATH);
    let max = super::frame::MAX_FRAME + 4;
    let config = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    match tungstenite::client::client_with_config(url.as_str(), stream, Some(config)) {
        Ok((ws, _response)) => Ok(Transport::Ws(Box::new(ws))),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Io(e))) => {
            Err(BoardError::Io(e))
        }
        Err(tungstenite::HandshakeError::Failure(e)) => {
            Err(BoardError::Io(std::io::Error::other(e)))
        }
        Err(tungstenite::HandshakeError::Interrupted(_)) => Err(BoardError::Timeout),
    }
}

fn tls_stream(
    config: std::sync::Arc<rustls::ClientConfig>,
    opts: &ClientOptions,
    sock: TcpStream,
) -> Result<Stream, BoardError> {
    let name = match opts.addr.ip() {
        IpAddr::V4(v4) => ServerName::IpAddress(v4.into()),
        IpAddr::V6(v6) => ServerName::IpAddress(v6.into()),
    };
    let mut conn = rustls::ClientConnection::new(config, name).map_err(BoardError::Tls)?;
    let mut sock = sock;
    sock.set_read_timeout(Some(opts.connect_timeout))
        .map_err(BoardError::Io)?;
    // Finish the handshake now, so a wrong certificate fails the connect, not a later read.
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| {
            match e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                Some(tls) => BoardError::Tls(tls.clone()),
                None => BoardError::Io(e),
            }
        })?;
    }
    Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(conn, sock))))
}

//! The board's framing: `u32 BE length || body`, every body `version || type || payload`
//! (docs/PROTOCOL.md, "Board wire format", is the byte-exact spec).
//!
//! Parsing is zero-copy over the received bytes and checks every length before reading;
//! any byte string either parses or yields a typed [`FrameError`], never a panic.

use keyctl::wire::{MeetingRef, ParticipantId};
use thiserror::Error;

/// The board protocol version this build speaks.
pub const BOARD_VERSION: u8 = 1;

/// Largest frame body accepted in either direction. A leader participant list snapshot of a
/// meeting of thousands stays well under it; anything bigger is refused and the connection
/// closed.
pub const MAX_FRAME: usize = 1 << 20;

/// Longest text field (meeting ID, name, refusal reason).
pub const MAX_TEXT: usize = 256;

/// Most co-hosts a welcome lists.
const MAX_COHOSTS: usize = 64;

/// Why bytes are not a valid board frame.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix announces more than [`MAX_FRAME`] bytes.
    #[error("frame of {len} bytes exceeds the {max}-byte cap")]
    Oversize {
        /// Announced length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The body ended inside a field.
    #[error("frame truncated: need {need} more bytes at offset {at}")]
    Truncated {
        /// Offset of the field.
        at: usize,
        /// Bytes missing.
        need: usize,
    },
    /// The version byte is not [`BOARD_VERSION`].
    #[error("unsupported board protocol version {0}")]
    BadVersion(u8),
    /// The type byte is unknown or not allowed in this direction.
    #[error("unknown frame type {0:#04x}")]
    BadType(u8),
    /// Bytes remained after the last field.
    #[error("{0} trailing bytes in frame")]
    Trailing(usize),
    /// A text field is longer than [`MAX_TEXT`] or not UTF-8, or an ID is invalid.
    #[error("invalid field {0}")]
    BadField(&'static str),
}

/// Frame types, client to board (0x0_) and board to client (0x8_).
mod ty {
    pub(super) const HELLO: u8 = 0x01;
    pub(super) const POST: u8 = 0x02;
    pub(super) const BYE: u8 = 0x03;
    pub(super) const TICKET_REQUEST: u8 = 0x04;
    pub(super) const WELCOME: u8 = 0x81;
    pub(super) const DELIVER: u8 = 0x82;
    pub(super) const JOINED: u8 = 0x83;
    pub(super) const LEFT: u8 = 0x84;
    pub(super) const REFUSED: u8 = 0x85;
    pub(super) const ENDED: u8 = 0x86;
    pub(super) const COHOSTS: u8 = 0x87;
    pub(super) const RELAY_TICKET: u8 = 0x88;
}

/// A client's request to join: the first frame on every connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello<'a> {
    /// The meeting to join (its stable ID; the board picks the instance).
    pub meeting_id: &'a str,
    /// The user's name: the board uses it as userID and display name.
    pub name: &'a str,
    /// Whether the client claims to be the host (the board is untrusted, so this only
    /// steers leader selection).
    pub host: bool,
    /// The client's long-term identity verification key `IVK`; the board derives the
    /// deviceID from it, so a rejoin with the same identity gets the same participant ID.
    pub ivk: [u8; 32],
}

/// A frame from a client, borrowed from the received bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame<'a> {
    /// Join a meeting.
    Hello(Hello<'a>),
    /// Post a keyctl message (its canonical bytes) to the meeting.
    Post(&'a [u8]),
    /// Leave: the board posts the leave notice and closes.
    Bye,
    /// Ask for a fresh relay ticket (the current one nears its expiry).
    TicketRequest,
}

/// What the board tells a client that joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WelcomeFrame {
    /// The meeting instance: meetingID and the fresh meetingUUID.
    pub meeting: MeetingRef,
    /// The participant ID the board assigned.
    pub me: ParticipantId,
    /// The current leader.
    pub leader: ParticipantId,
    /// Participants the board lists as co-hosts (joined with the host flag).
    pub cohosts: Vec<ParticipantId>,
    /// The relay ticket for this participant in this instance, when the board runs with
    /// `--ticket-key` (docs/PROTOCOL.md "Relay registration"): a u8 flag (0 none, 1 one
    /// follows), then u64 expiry and the 32-byte MAC.
    pub relay_ticket: Option<veil_relay::registration::TicketMac>,
}

/// A frame from the board, borrowed from the received bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFrame<'a> {
    /// The join succeeded.
    Welcome(WelcomeFrame),
    /// A keyctl message: a post, or the board's own Leave / LeaderChange notice.
    Deliver(&'a [u8]),
    /// Someone joined.
    Joined(ParticipantId),
    /// Someone left.
    Left(ParticipantId),
    /// The join was refused, with a reason.
    Refused(&'a str),
    /// The meeting (or the board) ended.
    Ended,
    /// The co-host list changed (a host joined or left): the whole list.
    Cohosts(Vec<ParticipantId>),
    /// A fresh relay ticket, the answer to [`ClientFrame::TicketRequest`].
    RelayTicket(veil_relay::registration::TicketMac),
}

/// A bounds-checked cursor over one frame body.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let out = rest.get(..n).ok_or_else(|| FrameError::Truncated {
            at: self.pos,
            need: n.saturating_sub(rest.len()),
        })?;
        self.pos += n;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?.first().copied().unwrap_or_default())
    }

    fn lp(&mut self, field: &'static str) -> Result<&'a [u8], FrameError> {
        let len = self.take(2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if len > MAX_TEXT {
            return Err(FrameError::BadField(field));
        }
        self.take(len)
    }

    fn text(&mut self, field: &'static str) -> Result<&'a str, FrameError> {
        core::str::from_utf8(self.lp(field)?).map_err(|_| FrameError::BadField(field))
    }

    fn participant(&mut self) -> Result<ParticipantId, FrameError> {
        let user = self.lp("userID")?;
        let device = self.lp("deviceID")?;
        ParticipantId::new(user, device).map_err(|_| FrameError::BadField("participant"))
    }

    /// `u8 n || n x participant`, n at most [`MAX_COHOSTS`].
    fn cohosts(&mut self) -> Result<Vec<ParticipantId>, FrameError> {
        let n = usize::from(self.u8()?);
        if n > MAX_COHOSTS {
            return Err(FrameError::BadField("co-host count"));
        }
        (0..n).map(|_| self.participant()).collect()
    }

    /// `u64 expiry || [32] MAC`.
    fn ticket(&mut self) -> Result<veil_relay::registration::TicketMac, FrameError> {
        let mut expiry = [0u8; 8];
        expiry.copy_from_slice(self.take(8)?);
        let mut mac = [0u8; 32];
        mac.copy_from_slice(self.take(32)?);
        Ok(veil_relay::registration::TicketMac {
            expiry: u64::from_be_bytes(expiry),
            mac,
        })
    }

    fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        out
    }

    fn finish(&self) -> Result<(), FrameError> {
        match self.buf.len().saturating_sub(self.pos) {
            0 => Ok(()),
            extra => Err(FrameError::Trailing(extra)),
        }
    }

    /// Reads the version and type bytes.
    fn header(&mut self) -> Result<u8, FrameError> {
        let version = self.u8()?;
        if version != BOARD_VERSION {
            return Err(FrameError::BadVersion(version));
        }
        self.u8()
    }
}

fn cursor(body: &[u8]) -> Cursor<'_> {
    Cursor { buf: body, pos: 0 }
}

impl<'a> ClientFrame<'a> {
    /// Parses a frame body (without its length prefix) sent by a client.
    pub fn parse(body: &'a [u8]) -> Result<Self, FrameError> {
        let mut c = cursor(body);
        let frame = match c.header()? {
            ty::HELLO => {
                let meeting_id = c.text("meetingID")?;
                let name = c.text("name")?;
                let host = match c.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(FrameError::BadField("host flag")),
                };
                let mut ivk = [0u8; 32];
                ivk.copy_from_slice(c.take(32)?);
                if meeting_id.is_empty() || name.is_empty() {
                    return Err(FrameError::BadField("empty meetingID or name"));
                }
                Self::Hello(Hello {
                    meeting_id,
                    name,
                    host,
                    ivk,
                })
            }
            ty::POST => Self::Post(c.rest()),
            ty::BYE => Self::Bye,
            ty::TICKET_REQUEST => Self::TicketRequest,
            other => return Err(FrameError::BadType(other)),
        };
        c.finish()?;
        Ok(frame)
    }

    /// The frame, length prefix included.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Hello(h) => {
                let mut w = start(ty::HELLO);
                put_lp(&mut w, h.meeting_id.as_bytes());
                put_lp(&mut w, h.name.as_bytes());
                w.push(u8::from(h.host));
                w.extend_from_slice(&h.ivk);
                seal(w)
            }
            Self::Post(msg) => {
                let mut w = start(ty::POST);
                w.extend_from_slice(msg);
                seal(w)
            }
            Self::Bye => seal(start(ty::BYE)),
            Self::TicketRequest => seal(start(ty::TICKET_REQUEST)),
        }
    }
}

impl<'a> ServerFrame<'a> {
    /// Parses a frame body (without its length prefix) sent by the board.
    pub fn parse(body: &'a [u8]) -> Result<Self, FrameError> {
        let mut c = cursor(body);
        let frame = match c.header()? {
            ty::WELCOME => {
                let meeting_id = c.lp("meetingID")?;
                let uuid = c.lp("meetingUUID")?;
                let meeting = MeetingRef::new(meeting_id, uuid)
                    .map_err(|_| FrameError::BadField("meeting"))?;
                let me = c.participant()?;
                let leader = c.participant()?;
                let n = usize::from(c.u8()?);
                if n > MAX_COHOSTS {
                    return Err(FrameError::BadField("co-host count"));
                }
                let cohosts = (0..n).map(|_| c.participant()).collect::<Result<_, _>>()?;
                let relay_ticket = match c.u8()? {
                    0 => None,
                    1 => Some(c.ticket()?),
                    _ => return Err(FrameError::BadField("ticket flag")),
                };
                Self::Welcome(WelcomeFrame {
                    meeting,
                    me,
                    leader,
                    cohosts,
                    relay_ticket,
                })
            }
            ty::DELIVER => Self::Deliver(c.rest()),
            ty::JOINED => Self::Joined(c.participant()?),
            ty::LEFT => Self::Left(c.participant()?),
            ty::REFUSED => Self::Refused(c.text("reason")?),
            ty::ENDED => Self::Ended,
            ty::COHOSTS => Self::Cohosts(c.cohosts()?),
            ty::RELAY_TICKET => Self::RelayTicket(c.ticket()?),
            other => return Err(FrameError::BadType(other)),
        };
        c.finish()?;
        Ok(frame)
    }

    /// The frame, length prefix included.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Welcome(w) => {
                let mut b = start(ty::WELCOME);
                put_lp(&mut b, w.meeting.meeting_id.as_bytes());
                put_lp(&mut b, w.meeting.meeting_uuid.as_bytes());
                put_participant(&mut b, &w.me);
                put_participant(&mut b, &w.leader);
                put_cohosts(&mut b, &w.cohosts);
                match &w.relay_ticket {
                    Some(ticket) => {
                        b.push(1);
                        put_ticket(&mut b, ticket);
                    }
                    None => b.push(0),
                }
                seal(b)
            }
            Self::Deliver(msg) => {
                let mut b = start(ty::DELIVER);
                b.extend_from_slice(msg);
                seal(b)
            }
            Self::Joined(p) => {
                let mut b = start(ty::JOINED);
                put_participant(&mut b, p);
                seal(b)
            }
            Self::Left(p) => {
                let mut b = start(ty::LEFT);
                put_participant(&mut b, p);
                seal(b)
            }
            Self::Refused(reason) => {
                let mut b = start(ty::REFUSED);
                put_lp(&mut b, truncate_utf8(reason, MAX_TEXT).as_bytes());
                seal(b)
            }
            Self::Ended => seal(start(ty::ENDED)),
            Self::Cohosts(list) => {
                let mut b = start(ty::COHOSTS);
                put_cohosts(&mut b, list);
                seal(b)
            }
            Self::RelayTicket(ticket) => {
                let mut b = start(ty::RELAY_TICKET);
                put_ticket(&mut b, ticket);
                seal(b)
            }
        }
    }
}

/// `u64 expiry || [32] MAC`.
fn put_ticket(b: &mut Vec<u8>, ticket: &veil_relay::registration::TicketMac) {
    b.extend_from_slice(&ticket.expiry.to_be_bytes());
    b.extend_from_slice(&ticket.mac);
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

fn start(ty: u8) -> Vec<u8> {
    vec![0, 0, 0, 0, BOARD_VERSION, ty]
}

/// Writes the length prefix over the four placeholder bytes.
fn seal(mut w: Vec<u8>) -> Vec<u8> {
    let len = u32::try_from(w.len() - 4).unwrap_or(u32::MAX);
    w[..4].copy_from_slice(&len.to_be_bytes());
    w
}

/// `lp(x)`: u16-BE length then the bytes; callers pass fields already capped at
/// [`MAX_TEXT`] (IDs are at most 256 bytes by construction).
fn put_lp(w: &mut Vec<u8>, v: &[u8]) {
    let v = &v[..v.len().min(MAX_TEXT)];
    w.extend_from_slice(&u16::try_from(v.len()).unwrap_or_default().to_be_bytes());
    w.extend_from_slice(v);
}

/// The first [`MAX_COHOSTS`] of `list`, counted.
fn put_cohosts(w: &mut Vec<u8>, list: &[ParticipantId]) {
    let list = &list[..list.len().min(MAX_COHOSTS)];
    w.push(u8::try_from(list.len()).unwrap_or_default());
    for p in list {
        put_participant(w, p);
    }
}

fn put_participant(w: &mut Vec<u8>, p: &ParticipantId) {
    put_lp(w, p.user.as_bytes());
    put_lp(w, p.device.as_bytes());
}

/// Splits a byte stream into frame bodies, holding a partial frame between reads.
#[derive(Debug, Default)]
pub struct FrameBuffer {
    buf: Vec<u8>,
    start: usize,
}

impl FrameBuffer {
    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame body, `Ok(None)` if more bytes are needed, or
    /// [`FrameError::Oversize`] as soon as a length prefix exceeds [`MAX_FRAME`] (the
    /// connection must then be closed: the stream cannot be resynchronised).
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let rest = self.buf.get(self.start..).unwrap_or_default();
        let Some(prefix) = rest.get(..4) else {
            self.compact();
            return Ok(None);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > MAX_FRAME {
            return Err(FrameError::Oversize {
                len,
                max: MAX_FRAME,
            });
        }
        if rest.len() - 4 < len {
            self.compact();
            return Ok(None);
        }
        let from = self.start + 4;
        self.start = from + len;
        Ok(self.buf.get(from..from + len))
    }

    /// Bytes received but not yet returned as frames.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn pid(user: &str) -> ParticipantId {
        ParticipantId::new(user.as_bytes(), b"0011223344556677").unwrap()
    }

    fn body(frame: &[u8]) -> &[u8] {
        let len = u32::from_be_bytes(frame[..4].try_into().unwrap());
        assert_eq!(usize::try_from(len).unwrap(), frame.len() - 4);
        &frame[4..]
    }

    fn client_frames() -> Vec<ClientFrame<'static>> {
        vec![
            ClientFrame::Hello(Hello {
                meeting_id: "standup",
                name: "alice",
                host: true,
                ivk: [7; 32],
            }),
            ClientFrame::Post(&[1, 0x14, 0, 1, b'a', 0, 1, b'b']),
            ClientFrame::Bye,
            ClientFrame::TicketRequest,
        ]
    }

    fn server_frames() -> Vec<ServerFrame<'static>> {
        vec![
            ServerFrame::Welcome(WelcomeFrame {
                meeting: MeetingRef::new(b"standup", b"uuid").unwrap(),
                me: pid("bob"),
                leader: pid("alice"),
                cohosts: vec![pid("alice"), pid("carol")],
                relay_ticket: None,
            }),
            ServerFrame::Welcome(WelcomeFrame {
                meeting: MeetingRef::new(b"standup", b"uuid").unwrap(),
                me: pid("bob"),
                leader: pid("alice"),
                cohosts: vec![],
                relay_ticket: Some(veil_relay::registration::TicketMac {
                    expiry: 1_900_000_000,
                    mac: [9; 32],
                }),
            }),
            ServerFrame::Deliver(&[1, 0x16, 0, 0, 0, 0]),
            ServerFrame::Joined(pid("dave")),
            ServerFrame::Left(pid("erin")),
            ServerFrame::Refused("locked"),
            ServerFrame::Ended,
            ServerFrame::Cohosts(vec![pid("carol")]),
            ServerFrame::RelayTicket(veil_relay::registration::TicketMac {
                expiry: 7,
                mac: [3; 32],
            }),
        ]
    }

    #[test]
    fn every_frame_round_trips() {
        for f in client_frames() {
            let bytes = f.encode();
            assert_eq!(ClientFrame::parse(body(&bytes)).unwrap(), f);
        }
        for f in server_frames() {
            let bytes = f.encode();
            assert_eq!(ServerFrame::parse(body(&bytes)).unwrap(), f);
        }
    }

    #[test]
    fn every_truncation_and_extension_is_a_typed_error() {
        for f in client_frames() {
            let bytes = f.encode();
            let b = body(&bytes);
            for cut in 0..b.len() {
                // A post's message runs to the end of the frame: any prefix of it is still
                // a post (keyctl rejects the message itself).
                if !matches!(f, ClientFrame::Post(_)) || cut < 2 {
                    assert!(ClientFrame::parse(&b[..cut]).is_err(), "{f:?} cut at {cut}");
                }
            }
            if !matches!(f, ClientFrame::Post(_)) {
                let mut longer = b.to_vec();
                longer.push(0);
                assert_eq!(ClientFrame::parse(&longer), Err(FrameError::Trailing(1)));
            }
        }
        for f in server_frames() {
            let bytes = f.encode();
            let b = body(&bytes);
            for cut in 0..b.len() {
                if !matches!(f, ServerFrame::Deliver(_)) || cut < 2 {
                    assert!(ServerFrame::parse(&b[..cut]).is_err(), "{f:?} cut at {cut}");
                }
            }
        }
    }

    #[test]
    fn wrong_version_and_direction_are_refused() {
        let hello = ClientFrame::Bye.encode();
        let mut b = body(&hello).to_vec();
        assert_eq!(ServerFrame::parse(&b), Err(FrameError::BadType(0x03)));
        b[0] = 2;
        assert_eq!(ClientFrame::parse(&b), Err(FrameError::BadVersion(2)));
        let ended = ServerFrame::Ended.encode();
        assert_eq!(
            ClientFrame::parse(body(&ended)),
            Err(FrameError::BadType(0x86))
        );
    }

    #[test]
    fn hello_fields_are_checked() {
        let mut b = vec![BOARD_VERSION, 0x01];
        put_lp(&mut b, b"m");
        put_lp(&mut b, b"\xff\xfe");
        b.push(0);
        b.extend_from_slice(&[0; 32]);
        assert_eq!(ClientFrame::parse(&b), Err(FrameError::BadField("name")));
        let mut b = vec![BOARD_VERSION, 0x01];
        put_lp(&mut b, b"m");
        put_lp(&mut b, b"n");
        b.push(2);
        b.extend_from_slice(&[0; 32]);
        assert_eq!(
            ClientFrame::parse(&b),
            Err(FrameError::BadField("host flag"))
        );
        // A length prefix above the text cap.
        let b = [BOARD_VERSION, 0x01, 0x01, 0x01];
        assert_eq!(
            ClientFrame::parse(&b),
            Err(FrameError::BadField("meetingID"))
        );
    }

    #[test]
    fn the_frame_buffer_reassembles_byte_by_byte_and_caps_the_length() {
        let frames: Vec<Vec<u8>> = server_frames().iter().map(ServerFrame::encode).collect();
        let stream: Vec<u8> = frames.concat();
        let mut buf = FrameBuffer::default();
        let mut got = Vec::new();
        for byte in &stream {
            buf.extend(std::slice::from_ref(byte));
            while let Some(b) = buf.next_frame().unwrap() {
                got.push(b.to_vec());
            }
        }
        let want: Vec<Vec<u8>> = frames.iter().map(|f| body(f).to_vec()).collect();
        assert_eq!(got, want);
        assert_eq!(buf.pending(), 0);
        let mut buf = FrameBuffer::default();
        buf.extend(&u32::try_from(MAX_FRAME + 1).unwrap().to_be_bytes());
        assert!(matches!(buf.next_frame(), Err(FrameError::Oversize { .. })));
    }
}

//! The registration datagram: how a participant tells the relay where its media comes from.
//!
//! It travels in the clear on the relay's media port, from the participant's media socket, so
//! the relay learns the address it must forward to and accept from. Layout, version 2
//! (docs/PROTOCOL.md, "Relay registration"):
//!
//! ```text
//! 00 56 52 47   magic "\0VRG": byte 0 has RTP version 0, so it is never an RTP v2 packet
//! 88 00         in a datagram-mode Veil packet these bytes are the SFrame config byte
//!               (X=1, KKK=0: one KID byte follows) and that KID byte, 0: a non-minimal KID that
//!               every reader rejects (RFC 9605 4.3), so no valid Veil datagram starts this way,
//!               whatever its mkSeqNum
//! u8            version (2)
//! u8            kind: 1 register (or refresh), 2 leave, 3 challenge (relay to participant)
//! register and leave:
//! u8 L, [L]     meeting ID, 1..=255 opaque bytes (the meeting ID keys are derived with)
//! u8 T, [T]     participant token, 1..=64 bytes: names the participant within the meeting, so a
//!               new address for the same token replaces the old one
//! u64           ticket expiry, Unix seconds, big-endian; 0 = no ticket (an open relay only)
//! [32]          ticket: HMAC-SHA256 the board issued ([`super::ticket`]); zeros without one
//! [16]          cookie: the relay's last challenge to this address, echoed; zeros before one
//! challenge:
//! [16]          cookie
//! ```
//!
//! Nothing follows; trailing bytes are an error. A challenge (24 bytes) is smaller than any
//! registration (at least 68), so the relay never sends more than it was sent.

use std::time::Duration;

/// The six bytes every registration datagram starts with.
pub const MAGIC: [u8; 6] = [0x00, b'V', b'R', b'G', 0x88, 0x00];
/// The format version this build writes and reads (1 had neither ticket nor cookie).
pub const VERSION: u8 = 2;
/// Longest meeting ID.
pub const MAX_MEETING_ID: usize = 255;
/// Longest participant token.
pub const MAX_TOKEN: usize = 64;
/// Bytes of a ticket MAC.
pub const TICKET_LEN: usize = 32;
/// Bytes of a return-routability cookie.
pub const COOKIE_LEN: usize = 16;
/// How often a sidecar re-sends its registration.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(2);

/// What a registration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Forward this meeting's media to the sender's address, and accept media from it.
    Register,
    /// Forget the sender's address.
    Leave,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Self::Register => 1,
            Self::Leave => 2,
        }
    }
}

/// The kind byte of a challenge.
const CHALLENGE: u8 = 3;

/// The board's permission for `token` to exchange media in `meeting_id` until `expiry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketMac {
    /// Unix seconds after which the relay refuses it.
    pub expiry: u64,
    /// HMAC-SHA256 under the key board and relay share ([`super::ticket::TicketKey`]).
    pub mac: [u8; TICKET_LEN],
}

/// A parsed registration datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Register or leave.
    pub kind: Kind,
    /// The meeting whose media the sender exchanges (opaque bytes).
    pub meeting_id: Vec<u8>,
    /// The sender's token within the meeting.
    pub token: String,
    /// The board's ticket, or `None` (expiry 0 on the wire: only an `--open` relay takes it).
    pub ticket: Option<TicketMac>,
    /// The echoed cookie, or `None` (zeros on the wire) before the relay sent one.
    pub cookie: Option<[u8; COOKIE_LEN]>,
}

/// Why a datagram that starts with [`MAGIC`] is not a registration this relay accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrationError {
    /// Shorter than its fields say.
    #[error("truncated registration")]
    Truncated,
    /// A version this build does not speak.
    #[error("unsupported registration version {0}")]
    Version(u8),
    /// An unknown kind byte (or a challenge sent to the relay).
    #[error("unknown registration kind {0}")]
    Kind(u8),
    /// The meeting ID is empty or too long.
    #[error("bad meeting ID")]
    MeetingId,
    /// The token is empty, too long, or not UTF-8.
    #[error("bad participant token")]
    Token,
    /// Bytes after the cookie.
    #[error("trailing bytes after the registration")]
    Trailing,
}

impl RegistrationError {
    /// Every reason, in counter order.
    pub const ALL: [RegistrationError; 6] = [
        Self::Truncated,
        Self::Version(0),
        Self::Kind(0),
        Self::MeetingId,
        Self::Token,
        Self::Trailing,
    ];

    /// A short stable name, for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::Version(_) => "version",
            Self::Kind(_) => "kind",
            Self::MeetingId => "meeting_id",
            Self::Token => "token",
            Self::Trailing => "trailing",
        }
    }

    /// Index in [`Self::ALL`].
    pub fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|r| r.as_str() == self.as_str())
            .unwrap_or(0)
    }
}

/// Whether `datagram` claims to be a registration or challenge (starts with [`MAGIC`]).
pub fn is_registration(datagram: &[u8]) -> bool {
    datagram.starts_with(&MAGIC)
}

/// A participant's side of registration, sans-IO: what it registers as, and the ticket and
/// cookie it presents. The sidecar's registrar (UDP) and the browser's (WebTransport) keep
/// their timers and sockets around one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registrant {
    /// The meeting whose media it exchanges.
    pub meeting_id: Vec<u8>,
    /// Its token within the meeting.
    pub token: String,
    /// The board's ticket, or `None` for an `--open` relay.
    pub ticket: Option<TicketMac>,
    /// The cookie of the relay's last challenge, once one came.
    pub cookie: Option<[u8; COOKIE_LEN]>,
}

impl Registrant {
    /// The register (`Kind::Register`) or leave datagram as things stand.
    pub fn datagram(&self, kind: Kind) -> Result<Vec<u8>, RegistrationError> {
        Registration {
            kind,
            meeting_id: self.meeting_id.clone(),
            token: self.token.clone(),
            ticket: self.ticket,
            cookie: self.cookie,
        }
        .emit()
    }

    /// If `datagram` is the relay's challenge, keeps its cookie and says so.
    pub fn take_challenge(&mut self, datagram: &[u8]) -> bool {
        let cookie = parse_challenge(datagram);
        if cookie.is_some() {
            self.cookie = cookie;
        }
        cookie.is_some()
    }
}

/// The relay's challenge carrying `cookie`, to be echoed in the next registration.
pub fn emit_challenge(cookie: &[u8; COOKIE_LEN]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + 2 + COOKIE_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(CHALLENGE);
    out.extend_from_slice(cookie);
    out
}

/// The cookie of a challenge datagram, or `None` if `datagram` is not exactly one.
pub fn parse_challenge(datagram: &[u8]) -> Option<[u8; COOKIE_LEN]> {
    let rest = datagram.strip_prefix(&MAGIC)?;
    let rest = rest.strip_prefix(&[VERSION, CHALLENGE])?;
    rest.try_into().ok()
}

impl Registration {
    /// Encodes the datagram. Fails if the meeting ID or token is empty or too long.
    pub fn emit(&self) -> Result<Vec<u8>, RegistrationError> {
        let meeting = self.meeting_id.as_slice();
        let token = self.token.as_bytes();
        let meeting_len = u8::try_from(meeting.len())
            .ok()
            .filter(|&n| n > 0)
            .ok_or(RegistrationError::MeetingId)?;
        let token_len = u8::try_from(token.len())
            .ok()
            .filter(|&n| n > 0 && usize::from(n) <= MAX_TOKEN)
            .ok_or(RegistrationError::Token)?;
        let mut out = Vec::with_capacity(
            MAGIC.len() + 4 + meeting.len() + token.len() + 8 + TICKET_LEN + COOKIE_LEN,
        );
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.kind.code());
        out.push(meeting_len);
        out.extend_from_slice(meeting);
        out.push(token_len);
        out.extend_from_slice(token);
        let ticket = self.ticket.unwrap_or(TicketMac {
            expiry: 0,
            mac: [0; TICKET_LEN],
        });
        out.extend_from_slice(&ticket.expiry.to_be_bytes());
        out.extend_from_slice(&ticket.mac);
        out.extend_from_slice(&self.cookie.unwrap_or([0; COOKIE_LEN]));
        Ok(out)
    }

    /// Decodes a datagram that starts with [`MAGIC`] (check [`is_registration`] first; a
    /// datagram without it is [`RegistrationError::Truncated`] or worse).
    pub fn parse(datagram: &[u8]) -> Result<Self, RegistrationError> {
        let mut rest = datagram
            .strip_prefix(&MAGIC)
            .ok_or(RegistrationError::Truncated)?;
        let version = take_u8(&mut rest)?;
        if version != VERSION {
            return Err(RegistrationError::Version(version));
        }
        let kind = match take_u8(&mut rest)? {
            1 => Kind::Register,
            2 => Kind::Leave,
            other => return Err(RegistrationError::Kind(other)),
        };
        let meeting_id = take_field(&mut rest, MAX_MEETING_ID, RegistrationError::MeetingId)?;
        let token = String::from_utf8(take_field(&mut rest, MAX_TOKEN, RegistrationError::Token)?)
            .map_err(|_| RegistrationError::Token)?;
        let expiry = u64::from_be_bytes(take_array(&mut rest)?);
        let mac: [u8; TICKET_LEN] = take_array(&mut rest)?;
        let cookie: [u8; COOKIE_LEN] = take_array(&mut rest)?;
        if !rest.is_empty() {
            return Err(RegistrationError::Trailing);
        }
        Ok(Self {
            kind,
            meeting_id,
            token,
            ticket: (expiry != 0).then_some(TicketMac { expiry, mac }),
            cookie: (cookie != [0; COOKIE_LEN]).then_some(cookie),
        })
    }
}

fn take_array<const N: usize>(rest: &mut &[u8]) -> Result<[u8; N], RegistrationError> {
    let (head, tail) = rest
        .split_first_chunk::<N>()
        .ok_or(RegistrationError::Truncated)?;
    *rest = tail;
    Ok(*head)
}

fn take_u8(rest: &mut &[u8]) -> Result<u8, RegistrationError> {
    let (&first, tail) = rest.split_first().ok_or(RegistrationError::Truncated)?;
    *rest = tail;
    Ok(first)
}

/// A length-prefixed field of 1..=`max` bytes; `bad` names the field when it is empty or too
/// long.
fn take_field(
    rest: &mut &[u8],
    max: usize,
    bad: RegistrationError,
) -> Result<Vec<u8>, RegistrationError> {
    let len = usize::from(take_u8(rest)?);
    if len == 0 || len > max {
        return Err(bad);
    }
    if rest.len() < len {
        return Err(RegistrationError::Truncated);
    }
    let (field, tail) = rest.split_at(len);
    *rest = tail;
    Ok(field.to_vec())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sample() -> Registration {
        Registration {
            kind: Kind::Register,
            meeting_id: b"standup".to_vec(),
            token: "slot-3".into(),
            ticket: Some(TicketMac {
                expiry: 0x0102_0304_0506_0708,
                mac: [0xaa; TICKET_LEN],
            }),
            cookie: Some([0xcc; COOKIE_LEN]),
        }
    }

    #[test]
    fn round_trips_byte_for_byte() {
        let bytes = sample().emit().unwrap();
        let mut expected = b"\x00VRG\x88\x00\x02\x01\x07standup\x06slot-3".to_vec();
        expected.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        expected.extend_from_slice(&[0xaa; TICKET_LEN]);
        expected.extend_from_slice(&[0xcc; COOKIE_LEN]);
        assert_eq!(bytes, expected);
        assert!(is_registration(&bytes));
        assert_eq!(Registration::parse(&bytes).unwrap(), sample());
        let leave = Registration {
            kind: Kind::Leave,
            ..sample()
        };
        assert_eq!(Registration::parse(&leave.emit().unwrap()).unwrap(), leave);
        // Without a ticket or a cookie: zeros on the wire, `None` back.
        let bare = Registration {
            ticket: None,
            cookie: None,
            ..sample()
        };
        let bytes = bare.emit().unwrap();
        assert_eq!(bytes.len(), 6 + 2 + 8 + 7 + 8 + TICKET_LEN + COOKIE_LEN);
        assert_eq!(Registration::parse(&bytes).unwrap(), bare);
    }

    #[test]
    fn a_challenge_is_smaller_than_any_registration_and_round_trips() {
        let challenge = emit_challenge(&[7; COOKIE_LEN]);
        let smallest = Registration {
            kind: Kind::Leave,
            meeting_id: b"m".to_vec(),
            token: "t".into(),
            ticket: None,
            cookie: None,
        };
        assert!(challenge.len() < smallest.emit().unwrap().len());
        assert!(is_registration(&challenge));
        assert_eq!(parse_challenge(&challenge), Some([7; COOKIE_LEN]));
        assert_eq!(parse_challenge(&challenge[..challenge.len() - 1]), None);
        // A challenge sent to the relay is not a registration.
        assert_eq!(
            Registration::parse(&challenge),
            Err(RegistrationError::Kind(3))
        );
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let bytes = sample().emit().unwrap();
        for cut in MAGIC.len()..bytes.len() {
            assert!(Registration::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(Registration::parse(&long), Err(RegistrationError::Trailing));
    }

    #[test]
    fn bad_fields_are_named() {
        let mut bytes = sample().emit().unwrap();
        bytes[6] = 1;
        assert_eq!(
            Registration::parse(&bytes),
            Err(RegistrationError::Version(1))
        );
        let mut bytes = sample().emit().unwrap();
        bytes[7] = 9;
        assert_eq!(Registration::parse(&bytes), Err(RegistrationError::Kind(9)));
        let mut bytes = sample().emit().unwrap();
        bytes[8] = 0;
        assert_eq!(
            Registration::parse(&bytes),
            Err(RegistrationError::MeetingId)
        );
        let mut bytes = sample().emit().unwrap();
        let last = bytes.len() - 1 - 8 - TICKET_LEN - COOKIE_LEN;
        bytes[last] = 0xff;
        assert_eq!(Registration::parse(&bytes), Err(RegistrationError::Token));
        let empty_token = Registration {
            token: String::new(),
            ..sample()
        };
        assert_eq!(empty_token.emit(), Err(RegistrationError::Token));
        let long_token = Registration {
            token: "t".repeat(MAX_TOKEN + 1),
            ..sample()
        };
        assert_eq!(long_token.emit(), Err(RegistrationError::Token));
    }

    #[test]
    fn never_an_rtp_packet_nor_a_valid_veil_datagram() {
        // RTP version 2 sets the top two bits of byte 0 to 10.
        assert_ne!(MAGIC[0] >> 6, 2);
        // The SFrame header at offset 4 of a datagram-mode packet: X=1 with a one-byte KID whose
        // value is below 8, which RFC 9605 4.3's minimal encoding forbids.
        let config = MAGIC[4];
        assert_eq!(config & 0x80, 0x80);
        assert_eq!((config >> 4) & 0x07, 0);
        assert!(MAGIC[5] < 8);
        let mut datagram = vec![0, 0, 0, 1];
        datagram.extend_from_slice(&MAGIC[4..]);
        datagram.extend_from_slice(&[0; 32]);
        assert!(dataplane::sframe::Header::parse(&datagram[4..]).is_err());
    }
}

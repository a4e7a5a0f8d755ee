//! Relay tickets and return-routability cookies (docs/PROTOCOL.md, "Relay registration").
//!
//! The board and the relay share a 32-byte key in a file (`--ticket-key PATH` on both; whoever
//! starts first creates it, mode 0600). The board issues each participant it welcomes a ticket:
//! HMAC-SHA256 under that key over (meetingID/meetingUUID, participant, expiry). The relay
//! accepts a registration only with a valid, unexpired ticket for exactly that meeting and
//! participant, so knowing a meeting ID is no longer enough to receive or redirect its media.
//!
//! The cookie proves the registering address receives what is sent to it (return
//! routability): HMAC-SHA256 under a key derived from the ticket key over (address, meeting,
//! participant), truncated to 16 bytes. It does not cover the ticket, so a renewed ticket needs
//! no new challenge. It is stateless, so the relay keeps
//! nothing for a registration it has not verified, and it survives a relay restart on the same
//! key file (sidecars heal without a new challenge).

#[cfg(unix)]
use std::fs::OpenOptions;
#[cfg(unix)]
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt as _;
#[cfg(unix)]
use std::path::Path;

use keyctl::provider::{CryptoProvider, HashAlg, HmacKey};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::registration::{COOKIE_LEN, TICKET_LEN, TicketMac};

/// Domain separation of the ticket MAC.
const TICKET_LABEL: &[u8] = b"Veil-1-RelayTicket";
/// Domain separation of the cookie key, derived from the ticket key.
const COOKIE_KEY_LABEL: &[u8] = b"Veil-1-RelayCookieKey";
/// Domain separation of the cookie MAC.
const COOKIE_LABEL: &[u8] = b"Veil-1-RelayCookie";
/// Bytes of the shared key.
pub const KEY_LEN: usize = 32;

/// Why the ticket key file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TicketKeyError {
    /// Reading or creating the file.
    #[error("ticket key file {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        error: std::io::Error,
    },
    /// The file does not hold 64 hex digits.
    #[error("ticket key file {}: expected 64 hex digits (32 bytes)", .0.display())]
    Format(std::path::PathBuf),
    /// No randomness for a new key.
    #[error("no randomness for a new ticket key")]
    Random,
}

/// The key board and relay share; only MAC keys are kept (the bytes are zeroized once read).
/// The MACs come from keyctl's crypto provider (aws-lc-rs by default; RustCrypto where
/// aws-lc cannot go), so the codec side of this crate builds for wasm32.
pub struct TicketKey {
    ticket: Box<dyn HmacKey>,
    cookie: Box<dyn HmacKey>,
}

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketKey(..)")
    }
}

impl TicketKey {
    /// The key from `bytes`.
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        let hmac = CryptoProvider::get_default().hmac;
        let ticket = hmac.key(HashAlg::Sha256, bytes);
        let mut derived = Zeroizing::new([0u8; KEY_LEN]);
        derived.copy_from_slice(ticket.sign(&[COOKIE_KEY_LABEL]).as_ref());
        let cookie = hmac.key(HashAlg::Sha256, derived.as_ref());
        Self { ticket, cookie }
    }

    /// Reads the key at `path`, or creates it (32 random bytes as hex, mode 0600, never
    /// overwriting: if another process created it first, its key is read). Unix only: the
    /// servers' side (a browser never holds the ticket key).
    #[cfg(unix)]
    pub fn load_or_create(path: &Path) -> Result<Self, TicketKeyError> {
        let io = |error| TicketKeyError::Io {
            path: path.display().to_string(),
            error,
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(mut file) => {
                let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
                CryptoProvider::get_default()
                    .secure_random
                    .fill(bytes.as_mut())
                    .map_err(|_| TicketKeyError::Random)?;
                let text = Zeroizing::new(format!("{}\n", hex::encode(bytes.as_ref())));
                file.write_all(text.as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
                return Ok(Self::from_bytes(&bytes));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
        let mut text = Zeroizing::new(String::new());
        // A creator may be between create and write: a short file is retried briefly.
        for _ in 0..50 {
            text.clear();
            OpenOptions::new()
                .read(true)
                .open(path)
                .and_then(|mut f| f.read_to_string(&mut text))
                .map_err(io)?;
            if text.trim().len() >= 2 * KEY_LEN {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        hex::decode_to_slice(text.trim(), bytes.as_mut())
            .map_err(|_| TicketKeyError::Format(path.to_path_buf()))?;
        Ok(Self::from_bytes(&bytes))
    }

    /// The ticket for `token` in `meeting` until `expiry` (Unix seconds).
    pub fn issue(&self, meeting: &[u8], token: &str, expiry: u64) -> TicketMac {
        let tag = self.ticket.sign(&[&ticket_input(meeting, token, expiry)]);
        let mut mac = [0u8; TICKET_LEN];
        mac.copy_from_slice(tag.as_ref());
        TicketMac { expiry, mac }
    }

    /// Whether `ticket` was issued for `token` in `meeting` (constant time; expiry unchecked).
    pub fn verify(&self, meeting: &[u8], token: &str, ticket: &TicketMac) -> bool {
        let expected = self
            .ticket
            .sign(&[&ticket_input(meeting, token, ticket.expiry)]);
        bool::from(expected.as_ref().ct_eq(&ticket.mac))
    }

    /// The cookie `from` must echo to register `token` in `meeting`.
    pub fn cookie(&self, from: SocketAddr, meeting: &[u8], token: &str) -> [u8; COOKIE_LEN] {
        let ip = match from {
            SocketAddr::V4(a) => lp(&a.ip().octets()),
            SocketAddr::V6(a) => lp(&a.ip().octets()),
        };
        let tag = self.cookie.sign(&[
            &lp(COOKIE_LABEL),
            &ip,
            &from.port().to_be_bytes(),
            &lp(meeting),
            &lp(token.as_bytes()),
        ]);
        let mut cookie = [0u8; COOKIE_LEN];
        cookie.copy_from_slice(&tag.as_ref()[..COOKIE_LEN]);
        cookie
    }
}

/// Whether two cookies are equal, in constant time.
pub fn cookie_matches(expected: &[u8; COOKIE_LEN], got: &[u8; COOKIE_LEN]) -> bool {
    bool::from(expected.ct_eq(got))
}

/// `u32` big-endian length, then the bytes.
fn lp(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + bytes.len());
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

/// lp(label) || lp(meeting) || lp(token) || expiry (u64 big-endian).
fn ticket_input(meeting: &[u8], token: &str, expiry: u64) -> Vec<u8> {
    let mut input = lp(TICKET_LABEL);
    input.extend_from_slice(&lp(meeting));
    input.extend_from_slice(&lp(token.as_bytes()));
    input.extend_from_slice(&expiry.to_be_bytes());
    input
}

/// The relay meeting of an instance: `meetingID/meetingUUID` (at most 255 bytes), the scope a
/// sidecar registers in and a ticket is issued for.
pub fn relay_meeting(meeting: &keyctl::wire::MeetingRef) -> Vec<u8> {
    let mut scope = format!(
        "{}/{}",
        String::from_utf8_lossy(meeting.meeting_id.as_bytes()),
        String::from_utf8_lossy(meeting.meeting_uuid.as_bytes())
    )
    .into_bytes();
    scope.truncate(super::registration::MAX_MEETING_ID);
    scope
}

/// The relay token of a participant: its deviceID in hex (at most 64 characters).
pub fn relay_token(id: &keyctl::wire::ParticipantId) -> String {
    let mut token = hex::encode(id.device.as_bytes());
    token.truncate(super::registration::MAX_TOKEN);
    token
}

/// Unix seconds now (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_ticket_verifies_only_for_its_meeting_participant_and_expiry() {
        let key = TicketKey::from_bytes(&[1; KEY_LEN]);
        let ticket = key.issue(b"m/u1", "alice", 1000);
        assert!(key.verify(b"m/u1", "alice", &ticket));
        assert!(!key.verify(b"m/u2", "alice", &ticket));
        assert!(!key.verify(b"m/u1", "bob", &ticket));
        let later = TicketMac {
            expiry: 2000,
            ..ticket
        };
        assert!(!key.verify(b"m/u1", "alice", &later));
        let other = TicketKey::from_bytes(&[2; KEY_LEN]);
        assert!(!other.verify(b"m/u1", "alice", &ticket));
    }

    #[test]
    fn a_cookie_is_bound_to_the_address() {
        let key = TicketKey::from_bytes(&[1; KEY_LEN]);
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        let c = key.cookie(a, b"m", "t");
        assert!(cookie_matches(&c, &key.cookie(a, b"m", "t")));
        assert!(!cookie_matches(&c, &key.cookie(b, b"m", "t")));
        assert!(!cookie_matches(&c, &key.cookie(a, b"n", "t")));
        assert!(!cookie_matches(&c, &key.cookie(a, b"m", "u")));
        let other = TicketKey::from_bytes(&[2; KEY_LEN]);
        assert!(!cookie_matches(&c, &other.cookie(a, b"m", "t")));
    }

    /// The ticket and cookie as docs/PROTOCOL.md "Relay registration" defines them, computed
    /// here with aws-lc-rs's HMAC directly: whichever provider `TicketKey` runs on, board and
    /// relay built either way agree byte for byte (and with the tickets issued before the
    /// provider was used here).
    #[test]
    fn tickets_and_cookies_match_hmac_sha256_computed_directly() {
        use aws_lc_rs::hmac::{HMAC_SHA256, Key, sign};
        let bytes = [7u8; KEY_LEN];
        let key = TicketKey::from_bytes(&bytes);
        let raw = Key::new(HMAC_SHA256, &bytes);
        let expected = sign(&raw, &ticket_input(b"m/u1", "tok", 1234));
        assert_eq!(key.issue(b"m/u1", "tok", 1234).mac, expected.as_ref());
        let cookie_key = Key::new(HMAC_SHA256, sign(&raw, COOKIE_KEY_LABEL).as_ref());
        let from: SocketAddr = "[2001:db8::1]:4242".parse().unwrap();
        let mut input = lp(COOKIE_LABEL);
        input.extend_from_slice(&lp(&"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets()));
        input.extend_from_slice(&4242u16.to_be_bytes());
        input.extend_from_slice(&lp(b"m/u1"));
        input.extend_from_slice(&lp(b"tok"));
        let expected = sign(&cookie_key, &input);
        assert_eq!(
            key.cookie(from, b"m/u1", "tok"),
            expected.as_ref()[..COOKIE_LEN]
        );
    }

    #[test]
    fn the_key_file_is_created_0600_once_and_read_back() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("veil-ticket-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ticket.key");
        let _ = std::fs::remove_file(&path);
        let first = TicketKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = TicketKey::load_or_create(&path).unwrap();
        let t = first.issue(b"m", "a", 9);
        assert!(second.verify(b"m", "a", &t));
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            TicketKey::load_or_create(&path),
            Err(TicketKeyError::Format(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Pre-shared key mode: a TOML key file that stands in for the meeting handshake in labs and
//! tests of the dataplane alone (as WireGuard's config does for its static keys).
//!
//! ```toml
//! meeting_id = "lab-1"
//! meeting_uuid = "9f0c6b0e2d1a4c57"
//! mk_seq = 1
//! meeting_key = "<64 hex digits: the 32-byte MK>"
//!
//! [roster]            # sender slot -> sender ID
//! 0 = "sender-0"
//! 1 = "sender-1"
//! ```
//!
//! Every field is required, unknown fields are refused (a typo must not silently change a key),
//! and each malformed field has its own [`PskError`]. The key's hex text is wiped once decoded;
//! the TOML parser's own transient copies are beyond our reach.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use toml::{Table, Value};
use zeroize::Zeroizing;

use crate::keyring::{EpochKey, Millis};
use crate::stream_key::MAX_SENDER_SLOT;

/// Why a key file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PskError {
    /// Not TOML.
    #[error("key file is not valid TOML: {0}")]
    Syntax(String),
    /// A required field is absent.
    #[error("missing field `{0}`")]
    Missing(&'static str),
    /// A field has the wrong TOML type.
    #[error("field `{field}` must be {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A field that the format does not have (likely a typo).
    #[error("unknown field `{0}`")]
    UnknownField(String),
    /// An ID is empty or longer than a 2-byte length prefix can say.
    #[error("field `{0}` must be 1 to 65535 bytes")]
    BadLength(&'static str),
    /// mkSeqNum is not a u32.
    #[error("mk_seq {0} is outside 0..=4294967295")]
    MkSeqOutOfRange(i64),
    /// The meeting key is not hex.
    #[error("meeting_key is not hex")]
    KeyNotHex,
    /// The meeting key is not 32 bytes.
    #[error("meeting_key is {0} bytes; it must be 32")]
    KeyLength(usize),
    /// A roster slot is not a u32.
    #[error("roster slot `{0}` is not a number in 0..=4294967295")]
    BadSlot(String),
    /// A roster slot is above the largest a KID can carry (docs/PROTOCOL.md, "Stream keys and
    /// KIDs").
    #[error("roster slot {0} is above the largest sender slot ({MAX_SENDER_SLOT})")]
    SlotOutOfRange(u32),
    /// A roster sender ID is not a non-empty string of at most 65535 bytes.
    #[error("roster slot {0}: sender ID must be a string of 1 to 65535 bytes")]
    BadSenderId(u32),
    /// The roster names nobody.
    #[error("roster is empty")]
    EmptyRoster,
}

/// A parsed key file.
#[derive(Clone, PartialEq, Eq)]
pub struct PskFile {
    /// `meetingID`.
    pub meeting_id: Vec<u8>,
    /// `meetingUUID`.
    pub meeting_uuid: Vec<u8>,
    /// `mkSeqNum`.
    pub mk_seq: u32,
    /// `MK`, zeroized on drop.
    pub meeting_key: Zeroizing<[u8; 32]>,
    /// Sender slot -> sender ID.
    pub roster: BTreeMap<u32, Vec<u8>>,
}

impl core::fmt::Debug for PskFile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PskFile")
            .field("meeting_id", &String::from_utf8_lossy(&self.meeting_id))
            .field("mk_seq", &self.mk_seq)
            .field("roster_len", &self.roster.len())
            .finish_non_exhaustive()
    }
}

const FIELDS: [&str; 5] = [
    "meeting_id",
    "meeting_uuid",
    "mk_seq",
    "meeting_key",
    "roster",
];

fn take(table: &mut Table, field: &'static str) -> Result<Value, PskError> {
    table.remove(field).ok_or(PskError::Missing(field))
}

fn id(table: &mut Table, field: &'static str) -> Result<Vec<u8>, PskError> {
    match take(table, field)? {
        Value::String(s) if !s.is_empty() && s.len() <= usize::from(u16::MAX) => Ok(s.into_bytes()),
        Value::String(_) => Err(PskError::BadLength(field)),
        _ => Err(PskError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

impl PskFile {
    /// Parses and validates a key file.
    pub fn parse(text: &str) -> Result<Self, PskError> {
        let mut table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| PskError::Syntax(e.message().to_owned()))?;
        if let Some(unknown) = table.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(PskError::UnknownField(shown(unknown)));
        }
        let meeting_key = match take(&mut table, "meeting_key")? {
            Value::String(s) => Zeroizing::new(s),
            _ => {
                return Err(PskError::WrongType {
                    field: "meeting_key",
                    expected: "a hex string",
                });
            }
        };
        let meeting_key = decode_key(meeting_key.trim())?;
        let mk_seq = match take(&mut table, "mk_seq")? {
            Value::Integer(n) => u32::try_from(n).map_err(|_| PskError::MkSeqOutOfRange(n))?,
            _ => {
                return Err(PskError::WrongType {
                    field: "mk_seq",
                    expected: "an integer",
                });
            }
        };
        let roster = match take(&mut table, "roster")? {
            Value::Table(roster) => parse_roster(roster)?,
            _ => {
                return Err(PskError::WrongType {
                    field: "roster",
                    expected: "a table of slot = \"sender ID\"",
                });
            }
        };
        Ok(Self {
            meeting_id: id(&mut table, "meeting_id")?,
            meeting_uuid: id(&mut table, "meeting_uuid")?,
            mk_seq,
            meeting_key,
            roster,
        })
    }

    /// The key as the keyring takes it, sending from `activate_at`.
    pub fn epoch_key(&self, activate_at: Millis) -> EpochKey {
        EpochKey {
            mk_seq: self.mk_seq,
            meeting_key: self.meeting_key.clone(),
            roster: self.roster.clone(),
            activate_at,
        }
    }

    /// The file's TOML text. It holds the key: write it only where the key may go.
    pub fn to_toml(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        let quote = |bytes: &[u8]| Value::String(String::from_utf8_lossy(bytes).into_owned());
        // Writing to a String cannot fail.
        let _ = writeln!(out, "meeting_id = {}", quote(&self.meeting_id));
        let _ = writeln!(out, "meeting_uuid = {}", quote(&self.meeting_uuid));
        let _ = writeln!(out, "mk_seq = {}", self.mk_seq);
        out.push_str("meeting_key = \"");
        for byte in self.meeting_key.iter() {
            let _ = write!(out, "{byte:02x}");
        }
        out.push_str("\"\n\n[roster]\n");
        for (slot, sender) in &self.roster {
            let _ = writeln!(out, "{slot} = {}", quote(sender));
        }
        out
    }
}

/// At most this many characters of a name from the file go into an error message.
const SHOWN_NAME_CHARS: usize = 24;

/// A name from the file as an error shows it: cut to [`SHOWN_NAME_CHARS`] characters, so a key
/// pasted where a name belongs is never echoed whole into a log (a 32-byte key is 64 hex digits).
fn shown(name: &str) -> String {
    match name.char_indices().nth(SHOWN_NAME_CHARS) {
        Some((cut, _)) => format!("{}...", &name[..cut]),
        None => name.to_owned(),
    }
}

fn decode_key(hex_text: &str) -> Result<Zeroizing<[u8; 32]>, PskError> {
    if !hex_text.len().is_multiple_of(2) || !hex_text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PskError::KeyNotHex);
    }
    let len = hex_text.len() / 2;
    let mut key = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_text, key.as_mut()).map_err(|_| PskError::KeyLength(len))?;
    Ok(key)
}

fn parse_roster(roster: Table) -> Result<BTreeMap<u32, Vec<u8>>, PskError> {
    if roster.is_empty() {
        return Err(PskError::EmptyRoster);
    }
    roster
        .into_iter()
        .map(|(slot_text, sender)| {
            let slot = slot_text
                .parse::<u32>()
                .ok()
                .filter(|s| s.to_string() == slot_text)
                .ok_or_else(|| PskError::BadSlot(shown(&slot_text)))?;
            if slot > MAX_SENDER_SLOT {
                return Err(PskError::SlotOutOfRange(slot));
            }
            match sender {
                Value::String(s) if !s.is_empty() && s.len() <= usize::from(u16::MAX) => {
                    Ok((slot, s.into_bytes()))
                }
                _ => Err(PskError::BadSenderId(slot)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;

//! Identifiers: meeting IDs, user and device IDs, display names.

use core::fmt;

use super::codec::{Reader, Writer};
use super::{Field, WireError};

/// Longest identifier accepted (meetingID, meetingUUID, userID, deviceID), in bytes.
pub const MAX_ID_LEN: usize = 256;

/// An opaque identifier assigned by the (untrusted) server: a meetingID, meetingUUID,
/// userID or deviceID. At most [`MAX_ID_LEN`] bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(Vec<u8>);

impl Id {
    /// The identifier `bytes`, or [`WireError::FieldTooLong`].
    pub fn new(field: Field, bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_ID_LEN {
            return Err(WireError::FieldTooLong {
                field,
                len: bytes.len(),
                max: MAX_ID_LEN,
            });
        }
        Ok(Self(bytes.to_vec()))
    }

    /// The identifier's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn parse(r: &mut Reader<'_>, field: Field) -> Result<Self, WireError> {
        Ok(Self(r.lp(field, MAX_ID_LEN)?.to_vec()))
    }

    pub(crate) fn emit(&self, w: &mut Vec<u8>) {
        w.lp(&self.0);
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match core::str::from_utf8(&self.0) {
            Ok(s) => write!(f, "{s:?}"),
            Err(_) => write!(f, "{:?}", crate::crypto::HexBytes(&self.0)),
        }
    }
}

/// Who a participant is: `(userID, deviceID)` (whitepaper 3.7.2 `i` and `deviceID`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParticipantId {
    /// The server's user identifier.
    pub user: Id,
    /// The server's device identifier.
    pub device: Id,
}

impl ParticipantId {
    /// A participant ID from raw user and device IDs.
    pub fn new(user: &[u8], device: &[u8]) -> Result<Self, WireError> {
        Ok(Self {
            user: Id::new(Field::UserId, user)?,
            device: Id::new(Field::DeviceId, device)?,
        })
    }

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            user: Id::parse(r, Field::UserId)?,
            device: Id::parse(r, Field::DeviceId)?,
        })
    }

    /// Encoding: `lp(userID) || lp(deviceID)`.
    pub(crate) fn emit(&self, w: &mut Vec<u8>) {
        self.user.emit(w);
        self.device.emit(w);
    }
}

/// Which meeting instance: `(meetingID, meetingUUID)` (whitepaper 3.7.2 step 2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MeetingRef {
    /// The meeting's (possibly recurring) identifier.
    pub meeting_id: Id,
    /// The server-generated identifier of this instance of the meeting.
    pub meeting_uuid: Id,
}

impl MeetingRef {
    /// A meeting reference from raw IDs.
    pub fn new(meeting_id: &[u8], meeting_uuid: &[u8]) -> Result<Self, WireError> {
        Ok(Self {
            meeting_id: Id::new(Field::MeetingId, meeting_id)?,
            meeting_uuid: Id::new(Field::MeetingUuid, meeting_uuid)?,
        })
    }

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            meeting_id: Id::parse(r, Field::MeetingId)?,
            meeting_uuid: Id::parse(r, Field::MeetingUuid)?,
        })
    }

    /// Encoding: `lp(meetingID) || lp(meetingUUID)`.
    pub(crate) fn emit(&self, w: &mut Vec<u8>) {
        self.meeting_id.emit(w);
        self.meeting_uuid.emit(w);
    }
}

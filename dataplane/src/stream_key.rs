//! From a meeting key to per-stream SFrame base keys, and the KID layout.
//!
//! ```text
//! KID             = (sender_slot << 8) | stream_index
//! stream_base_key = HKDF-SHA256(salt = "", ikm = MK,
//!                     info = "Zoombase-1-ClientOnly-KDF-StreamKey" || lp(meetingID)
//!                            || lp(meetingUUID) || lp(senderID) || u32be(stream_index), L = 32)
//! ```
//!
//! The base key then goes through the SFrame key schedule of RFC 9605 4.4.2 under its KID.
//! Every input of the derivation is known to a receiver from the packet (KID, and mkSeqNum to pick
//! the MK) and the roster (slot to sender ID), so receive keys can be derived lazily on first use.

use aws_lc_rs::hkdf;
use zeroize::Zeroizing;

/// The HKDF info label of the stream key derivation.
pub const STREAM_KEY_LABEL: &[u8] = b"Zoombase-1-ClientOnly-KDF-StreamKey";

/// Errors of the stream key schedule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A length-prefixed input is longer than a u16 length can say.
    #[error("{field} is {len} bytes; at most 65535 fit a length prefix")]
    FieldTooLong {
        /// Which input.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// The KID's sender slot does not fit in 32 bits, so no Veil sender can own it.
    #[error("KID {0:#x} is outside the Veil KID layout")]
    KidOutOfRange(u64),
    /// The crypto backend refused an operation that valid inputs never trigger.
    #[error("crypto backend failure")]
    Crypto,
}

/// One media stream of one sender: the two halves of a Veil KID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    /// The slot the leader assigned the sender on admission; never reused within a meeting.
    pub sender_slot: u32,
    /// The sender's stream number (0 in datagram mode).
    pub stream_index: u8,
}

impl StreamId {
    /// The SFrame KID of this stream: `(sender_slot << 8) | stream_index`.
    pub fn kid(self) -> u64 {
        (u64::from(self.sender_slot) << 8) | u64::from(self.stream_index)
    }

    /// Splits a KID back into slot and stream index.
    pub fn from_kid(kid: u64) -> Result<Self, Error> {
        let sender_slot = u32::try_from(kid >> 8).map_err(|_| Error::KidOutOfRange(kid))?;
        Ok(Self {
            sender_slot,
            stream_index: (kid & 0xff) as u8,
        })
    }
}

struct Len32;

impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

fn length_prefix(field: &'static str, value: &[u8]) -> Result<[u8; 2], Error> {
    u16::try_from(value.len())
        .map(u16::to_be_bytes)
        .map_err(|_| Error::FieldTooLong {
            field,
            len: value.len(),
        })
}

/// Derives the SFrame base key of one stream from the meeting key (see the module docs).
pub fn stream_base_key(
    meeting_key: &[u8; 32],
    meeting_id: &[u8],
    meeting_uuid: &[u8],
    sender_id: &[u8],
    stream_index: u8,
) -> Result<Zeroizing<[u8; 32]>, Error> {
    let id_len = length_prefix("meeting ID", meeting_id)?;
    let uuid_len = length_prefix("meeting UUID", meeting_uuid)?;
    let sender_len = length_prefix("sender ID", sender_id)?;
    let index = u32::from(stream_index).to_be_bytes();
    let info: [&[u8]; 8] = [
        STREAM_KEY_LABEL,
        &id_len,
        meeting_id,
        &uuid_len,
        meeting_uuid,
        &sender_len,
        sender_id,
        &index,
    ];
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(meeting_key);
    let mut out = Zeroizing::new([0u8; 32]);
    prk.expand(&info, Len32)
        .and_then(|okm| okm.fill(out.as_mut()))
        .map_err(|_| Error::Crypto)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::hmac;

    #[test]
    fn kid_layout_round_trips() {
        let id = StreamId {
            sender_slot: 0xdead_beef,
            stream_index: 7,
        };
        assert_eq!(id.kid(), 0x00de_adbe_ef07);
        assert_eq!(StreamId::from_kid(id.kid()), Ok(id));
        assert_eq!(
            StreamId::from_kid(1 << 40),
            Err(Error::KidOutOfRange(1 << 40))
        );
    }

    /// HKDF written out with HMAC (RFC 5869), as an independent check of the info layout.
    fn reference(mk: &[u8; 32], info: &[u8]) -> Vec<u8> {
        let prk = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[0u8; 32]), mk);
        let prk = hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref());
        hmac::sign(&prk, &[info, &[1u8]].concat()).as_ref().to_vec()
    }

    #[test]
    fn matches_hkdf_over_the_documented_info() {
        let mk = [0x42; 32];
        let key = stream_base_key(&mk, b"meeting-1", b"uuid-ab", b"alice", 3).unwrap();
        let info = [
            STREAM_KEY_LABEL,
            &[0, 9],
            b"meeting-1",
            &[0, 7],
            b"uuid-ab",
            &[0, 5],
            b"alice",
            &[0, 0, 0, 3],
        ]
        .concat();
        assert_eq!(key.to_vec(), reference(&mk, &info));
    }

    #[test]
    fn every_input_changes_the_key() {
        let base = stream_base_key(&[1; 32], b"m", b"u", b"s", 0).unwrap();
        for other in [
            stream_base_key(&[2; 32], b"m", b"u", b"s", 0),
            stream_base_key(&[1; 32], b"m2", b"u", b"s", 0),
            stream_base_key(&[1; 32], b"m", b"u2", b"s", 0),
            stream_base_key(&[1; 32], b"m", b"u", b"s2", 0),
            stream_base_key(&[1; 32], b"m", b"u", b"s", 1),
            // Shifting a byte between fields must not collide: the length prefixes see to it.
            stream_base_key(&[1; 32], b"mu", b"", b"s", 0),
        ] {
            assert_ne!(*base, *other.unwrap());
        }
    }

    #[test]
    fn over_long_fields_are_errors() {
        let long = vec![0u8; 65536];
        assert_eq!(
            stream_base_key(&[0; 32], &long, b"", b"", 0),
            Err(Error::FieldTooLong {
                field: "meeting ID",
                len: 65536
            })
        );
    }
}

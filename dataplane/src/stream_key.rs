//! From a meeting key to per-stream SFrame base keys, and the KID layout.
//!
//! ```text
//! KID             = (sender_slot << 48) | (sender_instance << 8) | stream_index
//!                    sender_slot: 16 bits, sender_instance: 40 bits, stream_index: 8 bits
//! stream_base_key = HKDF-SHA256(salt = "", ikm = MK,
//!                     info = "Zoombase-1-ClientOnly-KDF-StreamKey" || lp(meetingID)
//!                            || lp(meetingUUID) || lp(senderID) || u32be(stream_index), L = 32)
//! ```
//!
//! The base key then goes through the SFrame key schedule of RFC 9605 4.4.2 under its KID, which
//! binds the whole KID, and so the sender instance, into `sframe_key` and `sframe_salt`. A sender
//! draws a fresh random instance for every key epoch it installs (the keyring does), so two
//! starts, reloads or processes that hold the same MK and slot still seal under different keys
//! and nonces even though each counter starts at 0 (docs/PROTOCOL.md, "Nonce uniqueness").
//! Every input of the derivation is known to a receiver from the packet (KID, and mkSeqNum to pick
//! the MK) and the roster (slot to sender ID), so receive keys can be derived on first use.

use keyctl::provider::{CryptoProvider, HashAlg};
use zeroize::Zeroizing;

/// The HKDF info label of the stream key derivation.
pub const STREAM_KEY_LABEL: &[u8] = b"Zoombase-1-ClientOnly-KDF-StreamKey";

/// Errors of the stream key schedule.
///
/// Exhaustive on purpose (no `#[non_exhaustive]`): the workspace's drivers (libveil's result
/// codes, the sidecar's counters) match every variant, so a new one is a compile error where it
/// must be mapped instead of a silent `_` arm (docs/ARCHITECTURE.md, "Exhaustive errors").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A length-prefixed input is longer than a u16 length can say.
    #[error("{field} is {len} bytes; at most 65535 fit a length prefix")]
    FieldTooLong {
        /// Which input.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// A sender slot above [`MAX_SENDER_SLOT`] has no room in the KID layout.
    #[error("sender slot {0} is above the largest the KID layout holds ({MAX_SENDER_SLOT})")]
    SlotOutOfRange(u32),
    /// A sender instance above [`MAX_SENDER_INSTANCE`] has no room in the KID layout.
    #[error("sender instance {0:#x} is wider than 40 bits")]
    InstanceOutOfRange(u64),
    /// The crypto backend refused an operation that valid inputs never trigger.
    #[error("crypto backend failure")]
    Crypto,
}

/// Bits of the KID that carry the sender slot (the top 16).
pub const SLOT_BITS: u32 = 16;
/// Bits of the KID that carry the sender instance (the 40 below the slot).
pub const INSTANCE_BITS: u32 = 40;
/// The largest sender slot a KID can carry: a control plane must not assign a larger one, and
/// the keyring refuses a roster that names one.
pub const MAX_SENDER_SLOT: u32 = (1 << SLOT_BITS) - 1;
/// The largest sender instance a KID can carry.
pub const MAX_SENDER_INSTANCE: u64 = (1 << INSTANCE_BITS) - 1;

/// One media stream of one sender instance: the three fields of a Veil KID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    /// The slot the leader assigned the sender on admission; never reused within a meeting.
    /// At most [`MAX_SENDER_SLOT`].
    pub sender_slot: u32,
    /// The random instance the sender drew for the key epoch it seals under (40 bits): what
    /// keeps (key, nonce) pairs apart across restarts, reloads and duplicate slots.
    pub sender_instance: u64,
    /// The sender's stream number (0 in datagram mode).
    pub stream_index: u8,
}

impl StreamId {
    /// The SFrame KID of this stream: `(sender_slot << 48) | (sender_instance << 8) |
    /// stream_index`. Refuses a slot or instance too wide for its field rather than let two
    /// streams share a KID.
    pub fn kid(self) -> Result<u64, Error> {
        if self.sender_slot > MAX_SENDER_SLOT {
            return Err(Error::SlotOutOfRange(self.sender_slot));
        }
        if self.sender_instance > MAX_SENDER_INSTANCE {
            return Err(Error::InstanceOutOfRange(self.sender_instance));
        }
        Ok((u64::from(self.sender_slot) << (INSTANCE_BITS + 8))
            | (self.sender_instance << 8)
            | u64::from(self.stream_index))
    }

    /// Splits a KID back into slot, instance and stream index. Every 64-bit KID has exactly one
    /// split (RFC 9605 4.3 allows KIDs up to 64 bits).
    pub fn from_kid(kid: u64) -> Self {
        // The shifts and masks leave at most 16 and 40 bits, so the casts are exact.
        Self {
            sender_slot: (kid >> (INSTANCE_BITS + 8)) as u32,
            sender_instance: (kid >> 8) & MAX_SENDER_INSTANCE,
            stream_index: (kid & 0xff) as u8,
        }
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

/// Derives the SFrame base key of one stream from the meeting key (see the module docs), with
/// the default crypto provider.
pub fn stream_base_key(
    meeting_key: &[u8; 32],
    meeting_id: &[u8],
    meeting_uuid: &[u8],
    sender_id: &[u8],
    stream_index: u8,
) -> Result<Zeroizing<[u8; 32]>, Error> {
    stream_base_key_with_provider(
        CryptoProvider::get_default(),
        meeting_key,
        meeting_id,
        meeting_uuid,
        sender_id,
        stream_index,
    )
}

/// [`stream_base_key`] with `provider`'s HKDF.
pub fn stream_base_key_with_provider(
    provider: &CryptoProvider,
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
    let prk = provider.hkdf.extract(HashAlg::Sha256, &[], meeting_key);
    let mut out = Zeroizing::new([0u8; 32]);
    provider
        .hkdf
        .expand(&prk, &info, out.as_mut())
        .map_err(|_| Error::Crypto)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kid_layout_round_trips() {
        let id = StreamId {
            sender_slot: 0xbeef,
            sender_instance: 0x12_3456_789a,
            stream_index: 7,
        };
        assert_eq!(id.kid(), Ok(0xbeef_1234_5678_9a07));
        assert_eq!(StreamId::from_kid(0xbeef_1234_5678_9a07), id);
        let top = StreamId {
            sender_slot: MAX_SENDER_SLOT,
            sender_instance: MAX_SENDER_INSTANCE,
            stream_index: 0xff,
        };
        assert_eq!(top.kid(), Ok(u64::MAX));
        assert_eq!(StreamId::from_kid(u64::MAX), top);
    }

    #[test]
    fn fields_too_wide_for_the_layout_are_refused() {
        let slot = StreamId {
            sender_slot: MAX_SENDER_SLOT + 1,
            sender_instance: 0,
            stream_index: 0,
        };
        assert_eq!(slot.kid(), Err(Error::SlotOutOfRange(MAX_SENDER_SLOT + 1)));
        let instance = StreamId {
            sender_slot: 0,
            sender_instance: MAX_SENDER_INSTANCE + 1,
            stream_index: 0,
        };
        assert_eq!(
            instance.kid(),
            Err(Error::InstanceOutOfRange(MAX_SENDER_INSTANCE + 1))
        );
    }

    /// HKDF written out with HMAC (RFC 5869), as an independent check of the info layout.
    fn reference(mk: &[u8; 32], info: &[u8]) -> Vec<u8> {
        let hmac = CryptoProvider::get_default().hmac;
        let prk = hmac.sign(HashAlg::Sha256, &[0u8; 32], &[mk]);
        hmac.sign(HashAlg::Sha256, prk.as_ref(), &[info, &[1u8]])
            .as_ref()
            .to_vec()
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

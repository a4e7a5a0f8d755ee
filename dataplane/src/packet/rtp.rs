//! A checked, zero-copy view of an RTP header (RFC 3550 5.1) with RFC 8285 header extensions.
//!
//! Veil's RTP mode leaves this header in the clear, so a relay can route on it, and binds it to
//! the payload as associated data. Only its length and structure matter here: the view is
//! validated once in [`RtpHeader::parse`] and its accessors never fail after that.

/// Why a buffer is not a well-formed RTP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    #[error("shorter than the RTP fixed header")]
    Truncated,
    /// The version field is not 2.
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    /// The CSRC list runs past the end of the packet.
    #[error("RTP CSRC list truncated")]
    CsrcTruncated,
    /// The extension header or its declared body runs past the end of the packet.
    #[error("RTP header extension truncated")]
    ExtensionTruncated,
    /// An RFC 8285 element claims more bytes than its extension block holds.
    #[error("RTP header extension element overruns its block")]
    ExtensionElementOverrun,
}

const FIXED_LEN: usize = 12;
const ONE_BYTE_PROFILE: u16 = 0xBEDE;
const TWO_BYTE_PROFILE_MASK: u16 = 0xFFF0;
const TWO_BYTE_PROFILE: u16 = 0x1000;

/// The kind of header extension block an RTP header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extension {
    /// No extension (X = 0).
    None,
    /// RFC 8285 4.2 one-byte elements (profile 0xBEDE).
    OneByte,
    /// RFC 8285 4.3 two-byte elements (profile 0x100X).
    TwoByte,
    /// Any other profile: RFC 3550 5.3.1, an opaque block.
    Other(u16),
}

/// A validated RTP header at the front of a packet.
#[derive(Debug, Clone, Copy)]
pub struct RtpHeader<'a> {
    bytes: &'a [u8],
    len: usize,
    extension: Extension,
}

impl<'a> RtpHeader<'a> {
    /// Validates the header at the front of `packet` (which may continue with a payload).
    pub fn parse(packet: &'a [u8]) -> Result<Self, RtpError> {
        let fixed = packet.get(..FIXED_LEN).ok_or(RtpError::Truncated)?;
        let version = fixed[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let csrc_count = usize::from(fixed[0] & 0x0f);
        let mut len = FIXED_LEN + 4 * csrc_count;
        if packet.len() < len {
            return Err(RtpError::CsrcTruncated);
        }
        let mut extension = Extension::None;
        if fixed[0] & 0x10 != 0 {
            let ext = packet
                .get(len..len + 4)
                .ok_or(RtpError::ExtensionTruncated)?;
            let profile = u16::from_be_bytes([ext[0], ext[1]]);
            let body_len = 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
            let body = packet
                .get(len + 4..len + 4 + body_len)
                .ok_or(RtpError::ExtensionTruncated)?;
            extension = if profile == ONE_BYTE_PROFILE {
                check_one_byte_elements(body)?;
                Extension::OneByte
            } else if profile & TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE {
                check_two_byte_elements(body)?;
                Extension::TwoByte
            } else {
                Extension::Other(profile)
            };
            len += 4 + body_len;
        }
        Ok(Self {
            bytes: &packet[..len],
            len,
            extension,
        })
    }

    /// The header's length in bytes: fixed part, CSRCs and extension.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a valid header has at least the 12 fixed bytes.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The header bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The synchronization source.
    pub fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.bytes[8], self.bytes[9], self.bytes[10], self.bytes[11]])
    }

    /// The sequence number.
    pub fn sequence_number(&self) -> u16 {
        u16::from_be_bytes([self.bytes[2], self.bytes[3]])
    }

    /// The payload type.
    pub fn payload_type(&self) -> u8 {
        self.bytes[1] & 0x7f
    }

    /// The number of CSRCs.
    pub fn csrc_count(&self) -> usize {
        usize::from(self.bytes[0] & 0x0f)
    }

    /// The extension block kind.
    pub fn extension(&self) -> Extension {
        self.extension
    }
}

/// RFC 8285 4.2: each element is `ID (4 bits) | L (4 bits)` then L + 1 data bytes; ID 0 is a
/// padding byte and ID 15 ends processing of the block.
fn check_one_byte_elements(mut body: &[u8]) -> Result<(), RtpError> {
    while let Some((&first, rest)) = body.split_first() {
        let id = first >> 4;
        if id == 0 {
            body = rest;
            continue;
        }
        if id == 15 {
            break;
        }
        let data_len = usize::from(first & 0x0f) + 1;
        body = rest
            .get(data_len..)
            .ok_or(RtpError::ExtensionElementOverrun)?;
    }
    Ok(())
}

/// RFC 8285 4.3: each element is an ID byte and a length byte then that many data bytes; an ID of
/// 0 is a single padding byte.
fn check_two_byte_elements(mut body: &[u8]) -> Result<(), RtpError> {
    while let Some((&id, rest)) = body.split_first() {
        if id == 0 {
            body = rest;
            continue;
        }
        let (&data_len, rest) = rest
            .split_first()
            .ok_or(RtpError::ExtensionElementOverrun)?;
        body = rest
            .get(usize::from(data_len)..)
            .ok_or(RtpError::ExtensionElementOverrun)?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A header with `csrcs` CSRCs and an optional extension `(profile, body)`.
    pub(crate) fn build(csrcs: usize, ext: Option<(u16, &[u8])>) -> Vec<u8> {
        let mut h = vec![
            0x80 | csrcs as u8,
            96,
            0x12,
            0x34,
            0,
            0,
            0,
            1,
            0xca,
            0xfe,
            0xba,
            0xbe,
        ];
        for i in 0..csrcs {
            h.extend_from_slice(&(i as u32).to_be_bytes());
        }
        if let Some((profile, body)) = ext {
            h[0] |= 0x10;
            h.extend_from_slice(&profile.to_be_bytes());
            h.extend_from_slice(&((body.len() / 4) as u16).to_be_bytes());
            h.extend_from_slice(body);
        }
        h
    }

    #[test]
    fn fixed_header_and_csrcs() {
        let h = build(3, None);
        let packet = [&h[..], b"payload"].concat();
        let view = RtpHeader::parse(&packet).unwrap();
        assert_eq!(view.len(), 24);
        assert_eq!(view.csrc_count(), 3);
        assert_eq!(view.ssrc(), 0xcafe_babe);
        assert_eq!(view.sequence_number(), 0x1234);
        assert_eq!(view.payload_type(), 96);
        assert_eq!(view.extension(), Extension::None);
        assert_eq!(
            RtpHeader::parse(&h[..20]).unwrap_err(),
            RtpError::CsrcTruncated
        );
    }

    #[test]
    fn one_byte_extensions() {
        // Element ID 1 with 2 bytes, a padding byte, element ID 2 with 1 byte... padded to 8.
        let body = [0x11, 0xaa, 0xbb, 0x00, 0x20, 0xcc, 0x00, 0x00];
        let h = build(0, Some((0xBEDE, &body)));
        let view = RtpHeader::parse(&h).unwrap();
        assert_eq!((view.len(), view.extension()), (24, Extension::OneByte));
        // An element of 16 bytes in a 4-byte block.
        let bad = build(0, Some((0xBEDE, &[0x1f, 0, 0, 0])));
        assert_eq!(
            RtpHeader::parse(&bad).unwrap_err(),
            RtpError::ExtensionElementOverrun
        );
        // ID 15 stops processing, whatever follows.
        let stop = build(0, Some((0xBEDE, &[0xf0, 0xff, 0xff, 0xff])));
        assert!(RtpHeader::parse(&stop).is_ok());
    }

    #[test]
    fn two_byte_extensions() {
        let body = [0x01, 0x02, 0xaa, 0xbb, 0x00, 0x05, 0x00, 0x00];
        let h = build(1, Some((0x1000, &body)));
        assert_eq!(
            RtpHeader::parse(&h).unwrap().extension(),
            Extension::TwoByte
        );
        let bad = build(0, Some((0x1003, &[0x01, 0x09, 0, 0])));
        assert_eq!(
            RtpHeader::parse(&bad).unwrap_err(),
            RtpError::ExtensionElementOverrun
        );
        let no_len = build(0, Some((0x1000, &[0x00, 0x00, 0x00, 0x07])));
        assert_eq!(
            RtpHeader::parse(&no_len).unwrap_err(),
            RtpError::ExtensionElementOverrun
        );
    }

    #[test]
    fn other_profiles_are_opaque_but_length_checked() {
        let h = build(0, Some((0x0001, &[9; 8])));
        assert_eq!(
            RtpHeader::parse(&h).unwrap().extension(),
            Extension::Other(1)
        );
        let mut short = h.clone();
        short.truncate(h.len() - 1);
        assert_eq!(
            RtpHeader::parse(&short).unwrap_err(),
            RtpError::ExtensionTruncated
        );
        assert_eq!(
            RtpHeader::parse(&h[..14]).unwrap_err(),
            RtpError::ExtensionTruncated
        );
    }

    #[test]
    fn version_and_length_are_checked() {
        let mut h = build(0, None);
        assert_eq!(RtpHeader::parse(&h[..11]).unwrap_err(), RtpError::Truncated);
        h[0] = 0x40;
        assert_eq!(RtpHeader::parse(&h).unwrap_err(), RtpError::BadVersion(1));
    }
}

//! The SFrame header (RFC 9605 4.3).
//!
//! ```text
//!  0 1 2 3 4 5 6 7
//! +-+-+-+-+-+-+-+-+------------+------------+
//! |X|  K  |Y|  C  |  KID ...   |  CTR ...   |
//! +-+-+-+-+-+-+-+-+------------+------------+
//! ```
//!
//! With X = 0, K is the KID itself (0..=7) and no KID bytes follow; with X = 1, K + 1 big-endian
//! KID bytes follow. Y and C do the same for CTR. The writer always picks the shortest form; the
//! reader rejects any other, so every (KID, CTR) pair has exactly one encoding and a header can be
//! compared or hashed as bytes.

use super::Error;

/// The longest possible header: the config byte and two 8-byte values.
pub const MAX_HEADER_LEN: usize = 1 + 8 + 8;

/// A parsed SFrame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// Key identifier.
    pub kid: u64,
    /// Per-key counter; the nonce is derived from it.
    pub ctr: u64,
}

const EXTENDED: u8 = 0b1000;
const SMALL_MASK: u8 = 0b0111;

/// Bytes needed beyond the config byte for `value`: 0 if it fits in 3 bits, else its minimal
/// big-endian length.
fn extra_len(value: u64) -> usize {
    if value <= u64::from(SMALL_MASK) {
        0
    } else {
        8 - (value.leading_zeros() as usize / 8)
    }
}

/// The 4-bit nibble of one field, given its [`extra_len`].
fn nibble(value: u64, extra: usize) -> u8 {
    match extra {
        // Fits in the nibble itself; the mask keeps the cast lossless.
        0 => (value as u8) & SMALL_MASK,
        // 1..=8 bytes, stored as length - 1.
        n => EXTENDED | ((n - 1) as u8),
    }
}

/// Writes the low `out.len()` (0 to 8) bytes of `value` big-endian. One arm per length, so each
/// copy is a fixed-size store rather than a byte loop or a call to memcpy: this runs for every
/// packet sealed.
fn write_be(out: &mut [u8], value: u64) {
    let be = value.to_be_bytes();
    match out {
        [] => {}
        [a] => *a = be[7],
        [a, b] => [*a, *b] = [be[6], be[7]],
        [a, b, c] => [*a, *b, *c] = [be[5], be[6], be[7]],
        [a, b, c, d] => [*a, *b, *c, *d] = [be[4], be[5], be[6], be[7]],
        out => {
            let len = out.len().min(8);
            out[..len].copy_from_slice(&be[8 - len..]);
        }
    }
}

fn read_be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// Decodes one field whose nibble is `n`, reading its extra bytes from `rest`.
/// Returns the value and how many bytes it consumed.
fn read_field(n: u8, rest: &[u8], non_minimal: Error) -> Result<(u64, usize), Error> {
    if n & EXTENDED == 0 {
        return Ok((u64::from(n & SMALL_MASK), 0));
    }
    let len = usize::from(n & SMALL_MASK) + 1;
    let value = match rest.first_chunk::<8>() {
        // The usual case on the per-packet path (ciphertext and tag follow the header): one
        // 8-byte load, shifted down to the field's `len` bytes, instead of a byte loop.
        Some(word) => u64::from_be_bytes(*word) >> (64 - 8 * len),
        None => read_be(rest.get(..len).ok_or(Error::Truncated)?),
    };
    // RFC 9605 4.3 encodes values compactly; a value that has a shorter form (a leading zero
    // byte, or a value below 8 in the extended form) would give one (KID, CTR) two encodings.
    if extra_len(value) != len {
        return Err(non_minimal);
    }
    Ok((value, len))
}

impl Header {
    /// A header for `kid` and `ctr`.
    pub fn new(kid: u64, ctr: u64) -> Self {
        Self { kid, ctr }
    }

    /// The encoded length of this header, 1 to [`MAX_HEADER_LEN`] bytes.
    pub fn encoded_len(&self) -> usize {
        1 + extra_len(self.kid) + extra_len(self.ctr)
    }

    /// Parses a header from the front of `bytes`, returning it and its encoded length.
    ///
    /// Reads only the header's own bytes: whatever follows is left to the caller.
    pub fn parse(bytes: &[u8]) -> Result<(Self, usize), Error> {
        let (&config, rest) = bytes.split_first().ok_or(Error::Truncated)?;
        let (kid, kid_len) = read_field(config >> 4, rest, Error::NonMinimalKid)?;
        let rest = &rest[kid_len..];
        let (ctr, ctr_len) = read_field(config & 0x0f, rest, Error::NonMinimalCtr)?;
        Ok((Self { kid, ctr }, 1 + kid_len + ctr_len))
    }

    /// Writes the minimal encoding into the front of `out`, returning the length written.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, Error> {
        let (kid_len, ctr_len) = (extra_len(self.kid), extra_len(self.ctr));
        let len = 1 + kid_len + ctr_len;
        let got = out.len();
        let out = out
            .get_mut(..len)
            .ok_or(Error::BufferTooSmall { needed: len, got })?;
        out[0] = (nibble(self.kid, kid_len) << 4) | nibble(self.ctr, ctr_len);
        let (kid_out, ctr_out) = out[1..].split_at_mut(kid_len);
        write_be(kid_out, self.kid);
        write_be(ctr_out, self.ctr);
        Ok(len)
    }

    /// The minimal encoding as an owned fixed buffer and its length.
    pub fn to_bytes(&self) -> ([u8; MAX_HEADER_LEN], usize) {
        let mut buf = [0u8; MAX_HEADER_LEN];
        // MAX_HEADER_LEN always suffices, so this cannot fail; fall back to 0 rather than panic.
        let len = self.emit(&mut buf).unwrap_or(0);
        (buf, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_values_live_in_the_config_byte() {
        assert_eq!(Header::new(0, 0).to_bytes().1, 1);
        let (buf, len) = Header::new(7, 5).to_bytes();
        assert_eq!(&buf[..len], &[0x75]);
        let (buf, len) = Header::new(8, 0x100).to_bytes();
        assert_eq!(&buf[..len], &[0x89, 0x08, 0x01, 0x00]);
    }

    #[test]
    fn non_minimal_encodings_are_rejected() {
        // KID 5 written in the extended form.
        assert_eq!(Header::parse(&[0x80, 0x05]), Err(Error::NonMinimalKid));
        // KID 0x10 with a leading zero byte.
        assert_eq!(
            Header::parse(&[0x90, 0x00, 0x10]),
            Err(Error::NonMinimalKid)
        );
        // CTR 3 written in the extended form.
        assert_eq!(Header::parse(&[0x08, 0x03]), Err(Error::NonMinimalCtr));
    }

    #[test]
    fn every_truncation_is_rejected() {
        let (buf, len) = Header::new(u64::MAX, u64::MAX - 1).to_bytes();
        assert_eq!(len, MAX_HEADER_LEN);
        for cut in 0..len {
            assert_eq!(
                Header::parse(&buf[..cut]),
                Err(Error::Truncated),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn emit_reports_a_short_buffer() {
        let mut out = [0u8; 2];
        assert_eq!(
            Header::new(0x1234, 0).emit(&mut out),
            Err(Error::BufferTooSmall { needed: 3, got: 2 })
        );
    }

    proptest! {
        #[test]
        // Values of every encoded length, and tails both shorter and longer than 8 bytes, so
        // both the byte loop and the 8-byte load in `read_field` are taken.
        fn round_trips(
            kid in (any::<u64>(), 0u32..64).prop_map(|(v, s)| v >> s),
            ctr in (any::<u64>(), 0u32..64).prop_map(|(v, s)| v >> s),
            tail in proptest::collection::vec(any::<u8>(), 0..24),
        ) {
            let header = Header::new(kid, ctr);
            let (buf, len) = header.to_bytes();
            let mut wire = buf[..len].to_vec();
            wire.extend_from_slice(&tail);
            prop_assert_eq!(Header::parse(&wire), Ok((header, len)));
        }

        #[test]
        fn parse_then_emit_gives_the_input_back(bytes in proptest::collection::vec(any::<u8>(), 0..18)) {
            if let Ok((header, len)) = Header::parse(&bytes) {
                let (buf, out_len) = header.to_bytes();
                prop_assert_eq!(&buf[..out_len], &bytes[..len]);
            }
        }
    }
}

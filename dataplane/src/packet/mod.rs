//! Veil packet framing around SFrame (whitepaper 3.9: every encrypted UDP packet is prefaced with
//! the 4-byte mkSeqNum).
//!
//! ```text
//! datagram mode:                        mkSeqNum (u32 BE) || SFrame header || ciphertext || tag
//! RTP mode:     RTP header (clear)   || mkSeqNum (u32 BE) || SFrame header || ciphertext || tag
//! ```
//!
//! The associated data is every byte before the ciphertext: `mkSeqNum || SFrame header`, or
//! `RTP header || mkSeqNum || SFrame header`. It lies contiguous in the packet, so sealing and
//! opening work in place with no copy of the AAD. (RFC 9605 4.4.3 writes AAD = header ||
//! metadata; Veil's framing puts its metadata first, as a prefix, for that reason.)
//!
//! Sealing writes in place into a buffer with [`HEADROOM`] bytes free before the plaintext and
//! `Nt` bytes after it; opening decrypts in place and returns where the plaintext now lies.

mod error;
pub mod rtp;

use std::ops::Range;

pub use error::{DropCounters, DropReason, Error};
use rtp::RtpHeader;

use crate::replay::ReplayWindows;
use crate::sframe::{self, Context, Header, KeyMaterial, MAX_HEADER_LEN};

/// Length of the mkSeqNum prefix.
pub const MK_SEQ_LEN: usize = 4;

/// Headroom that always suffices in front of a plaintext: the mkSeqNum and the longest SFrame
/// header (21 bytes), rounded up to 32 so a payload placed after it in a 16-byte aligned buffer
/// stays aligned for the AES-GCM kernels.
pub const HEADROOM: usize = (MK_SEQ_LEN + MAX_HEADER_LEN).next_multiple_of(32);

/// Which framing a packet uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The whole UDP payload is protected.
    Datagram,
    /// The RTP header stays in the clear (authenticated); the RTP payload is protected.
    Rtp,
}

/// The clear part of a protected packet, parsed without copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protected {
    /// The meeting key sequence number the packet was sealed under.
    pub mk_seq: u32,
    /// The SFrame header: KID and CTR.
    pub header: Header,
    /// Length of the clear RTP header (0 in datagram mode).
    pub rtp_header_len: usize,
    /// Where the ciphertext starts: everything before it is associated data.
    pub ciphertext_start: usize,
}

impl Protected {
    /// Parses the clear fields of a protected packet.
    pub fn parse(mode: Mode, packet: &[u8]) -> Result<Self, Error> {
        let rtp_header_len = match mode {
            Mode::Datagram => 0,
            Mode::Rtp => RtpHeader::parse(packet)?.len(),
        };
        let prefix = packet
            .get(rtp_header_len..rtp_header_len + MK_SEQ_LEN)
            .ok_or(Error::Truncated)?;
        let mk_seq = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let (header, header_len) = Header::parse(&packet[rtp_header_len + MK_SEQ_LEN..])?;
        Ok(Self {
            mk_seq,
            header,
            rtp_header_len,
            ciphertext_start: rtp_header_len + MK_SEQ_LEN + header_len,
        })
    }
}

/// Seals the payload at `buf[headroom..headroom + len]` in place under the send key `kid` of
/// `ctx` (the epoch `mk_seq`). In RTP mode that region is a whole RTP packet, whose header moves
/// forward to make room. Returns the range of `buf` holding the protected packet.
pub fn seal(
    mode: Mode,
    ctx: &mut Context,
    kid: u64,
    mk_seq: u32,
    buf: &mut [u8],
    headroom: usize,
    len: usize,
) -> Result<Range<usize>, Error> {
    let layout = Layout::check(mode, ctx.suite().tag_len(), buf, headroom, len)?;
    let key = ctx.send_key_mut(kid)?;
    let header = key.peek_header()?;
    layout.fits(header)?;
    // Every check has passed: from here on the counter is spent.
    key.consume(header);
    layout.write(key.material(), header, mk_seq, buf)
}

/// [`seal`] with a counter the caller allocated, for senders that share one stream key across
/// threads and hand out disjoint counter ranges (the keyring's workers). The caller guarantees
/// `ctr` was never used under this key (RFC 9605 4.4.3).
#[allow(clippy::too_many_arguments)]
pub fn seal_with_counter(
    mode: Mode,
    material: &KeyMaterial,
    kid: u64,
    ctr: u64,
    mk_seq: u32,
    buf: &mut [u8],
    headroom: usize,
    len: usize,
) -> Result<Range<usize>, Error> {
    let layout = Layout::check(mode, material.suite().tag_len(), buf, headroom, len)?;
    let header = Header::new(kid, ctr);
    layout.fits(header)?;
    layout.write(material, header, mk_seq, buf)
}

/// Where a payload sits in a buffer about to be sealed, checked before a counter is spent.
struct Layout {
    headroom: usize,
    rtp_header_len: usize,
    sealed_end: usize,
}

impl Layout {
    fn check(
        mode: Mode,
        tag_len: usize,
        buf: &[u8],
        headroom: usize,
        len: usize,
    ) -> Result<Self, Error> {
        let too_small = |needed| sframe::Error::BufferTooSmall {
            needed,
            got: buf.len(),
        };
        let end = headroom.checked_add(len).ok_or(too_small(usize::MAX))?;
        let sealed_end = end.checked_add(tag_len).ok_or(too_small(usize::MAX))?;
        if buf.len() < sealed_end {
            return Err(too_small(sealed_end).into());
        }
        let rtp_header_len = match mode {
            Mode::Datagram => 0,
            Mode::Rtp => RtpHeader::parse(&buf[headroom..end])?.len(),
        };
        Ok(Self {
            headroom,
            rtp_header_len,
            sealed_end,
        })
    }

    fn start(&self, header: Header) -> Result<usize, Error> {
        let inserted = MK_SEQ_LEN + header.encoded_len();
        Ok(self
            .headroom
            .checked_sub(inserted)
            .ok_or(sframe::Error::HeadroomTooSmall {
                needed: inserted,
                got: self.headroom,
            })?)
    }

    fn fits(&self, header: Header) -> Result<(), Error> {
        self.start(header).map(drop)
    }

    fn write(
        &self,
        material: &KeyMaterial,
        header: Header,
        mk_seq: u32,
        buf: &mut [u8],
    ) -> Result<Range<usize>, Error> {
        let Self {
            headroom,
            rtp_header_len,
            sealed_end,
        } = *self;
        let start = self.start(header)?;
        // The clear RTP header moves forward so the mkSeqNum and SFrame header can follow it.
        if rtp_header_len > 0 {
            buf.copy_within(headroom..headroom + rtp_header_len, start);
        }
        let payload_start = headroom + rtp_header_len;
        let prefix_at = start + rtp_header_len;
        buf[prefix_at..prefix_at + MK_SEQ_LEN].copy_from_slice(&mk_seq.to_be_bytes());
        header.emit(&mut buf[prefix_at + MK_SEQ_LEN..payload_start])?;
        let (aad, payload) = buf.split_at_mut(payload_start);
        material.seal_in_place(
            header.ctr,
            &aad[start..],
            &mut payload[..sealed_end - payload_start],
        )?;
        Ok(start..sealed_end)
    }
}

/// Verifies and decrypts a parsed packet in place with the receive keys of `ctx` (which the
/// caller picked by `parsed.mk_seq`), screening its counter against `windows` before the AEAD and
/// recording it only after the tag verified. Returns the range of `buf` holding the plaintext:
/// the payload in datagram mode, the reassembled RTP packet in RTP mode.
pub fn open(
    ctx: &Context,
    windows: &mut ReplayWindows,
    parsed: &Protected,
    buf: &mut [u8],
) -> Result<Range<usize>, Error> {
    let Header { kid, ctr } = parsed.header;
    windows.guard(parsed.mk_seq, kid, ctr, || {
        open_without_replay_check(ctx, parsed, buf)
    })
}

/// [`open`] without the replay window, for callers that keep their own: they must screen the
/// counter before and record it after this returns `Ok` (the keyring's shared windows do), or
/// replays will be accepted.
pub fn open_without_replay_check(
    ctx: &Context,
    parsed: &Protected,
    buf: &mut [u8],
) -> Result<Range<usize>, Error> {
    open_with_key(ctx.recv_key(parsed.header.kid)?.material(), parsed, buf)
}

/// [`open_without_replay_check`] with the receive key material of `parsed.header.kid` given
/// directly, for callers that keep their own keys (the keyring's workers cache a key only after
/// a packet under it authenticated). The caller screens and records the counter.
pub fn open_with_key(
    material: &KeyMaterial,
    parsed: &Protected,
    buf: &mut [u8],
) -> Result<Range<usize>, Error> {
    let Protected {
        header,
        rtp_header_len,
        ciphertext_start,
        ..
    } = *parsed;
    if buf.len() < ciphertext_start {
        return Err(Error::Truncated);
    }
    let (aad, body) = buf.split_at_mut(ciphertext_start);
    let pt_len = material.open_in_place(header.ctr, aad, body)?;
    let gap = ciphertext_start - rtp_header_len;
    if rtp_header_len > 0 {
        buf.copy_within(..rtp_header_len, gap);
    }
    Ok(gap..ciphertext_start + pt_len)
}

#[cfg(test)]
mod tests;

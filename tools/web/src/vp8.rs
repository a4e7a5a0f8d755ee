//! VP8 over RTP (RFC 7741), sans-IO: the browser's encoded frames (WebCodecs
//! `EncodedVideoChunk`) into RTP packets, and RTP packets back into whole frames for its
//! decoder. A native participant is ffmpeg behind a sidecar in RTP mode, so both directions
//! must be exactly what ffmpeg writes and reads (known answers: `tools/kat/gen_vp8_rtp_kat.py`
//! captures ffmpeg's packets and frames; `tests/vp8_rtp.rs` checks them).
//!
//! The packetizer writes what ffmpeg and browsers write: the RFC 3550 fixed header (no CSRC,
//! no extension), then the VP8 payload descriptor with X=1 and a 15-bit PictureID (I=1, M=1),
//! S=1 and PID=0 on a frame's first packet, the RTP marker on its last. The depacketizer takes
//! any descriptor RFC 7741 4.2 allows (the optional I, L, T and K fields), any CSRC count,
//! header extension and padding, and gives a frame only when every packet from its start to
//! its marker arrived in sequence; a gap drops the frame, and the next frame given says that
//! packets were lost before it ([`Frame::follows_loss`], also for a whole frame lost between
//! two), so the decoder waits for a keyframe. Nothing it is given can make it hold more than
//! [`MAX_FRAME`] bytes.

/// The RTP clock of video (RFC 7741 4.1: 90 kHz).
pub const CLOCK_RATE: u32 = 90_000;
/// The largest frame reassembled; a frame growing past it is dropped.
pub const MAX_FRAME: usize = 4 << 20;
/// Bytes of the fixed RTP header the packetizer writes.
const RTP_HEADER: usize = 12;
/// Bytes of the payload descriptor the packetizer writes (X, I with a 15-bit PictureID).
const DESCRIPTOR: usize = 4;

/// One reassembled frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The VP8 bitstream of the frame, as the encoder produced it.
    pub data: Vec<u8>,
    /// Its RTP timestamp (90 kHz).
    pub timestamp: u32,
    /// Whether it is a keyframe (RFC 7741 4.3: the P bit of the VP8 payload header is 0).
    pub keyframe: bool,
    /// Whether packets were lost between the previous frame given and this one (its sequence
    /// numbers do not continue the previous frame's): a delta frame after a loss refers to
    /// something the decoder never got, so a decoder should wait for a keyframe.
    pub follows_loss: bool,
}

/// Why an RTP packet was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Vp8Error {
    /// Shorter than its headers say.
    #[error("truncated RTP packet")]
    Truncated,
    /// Not RTP version 2.
    #[error("not RTP version 2")]
    Version,
    /// A payload type other than the one this stream carries.
    #[error("RTP payload type {0}, expected another")]
    PayloadType(u8),
    /// A payload with no VP8 data after its descriptor.
    #[error("empty VP8 payload")]
    Empty,
    /// The frame being reassembled grew past [`MAX_FRAME`]: dropped.
    #[error("a frame larger than {MAX_FRAME} bytes")]
    FrameTooLarge,
    /// A packet arrived out of sequence or a frame's first packet is missing: the frame in
    /// progress is dropped.
    #[error("a gap in the sequence: frame dropped")]
    Gap,
    /// A packet larger than the packetizer may write (`max_packet` below the headers).
    #[error("max_packet {0} leaves no room for VP8 data")]
    PacketSize(usize),
}

/// Cuts frames into RTP packets.
#[derive(Debug, Clone)]
pub struct Packetizer {
    ssrc: u32,
    payload_type: u8,
    sequence: u16,
    picture_id: u16,
}

impl Packetizer {
    /// A stream `ssrc` of `payload_type` (dynamic, 96..=127 as a rule), starting at
    /// `sequence` (random, RFC 3550 5.1).
    pub fn new(ssrc: u32, payload_type: u8, sequence: u16) -> Self {
        Self {
            ssrc,
            payload_type: payload_type & 0x7f,
            sequence,
            picture_id: 0,
        }
    }

    /// The RTP packets of `frame` at `timestamp`, each at most `max_packet` bytes.
    pub fn packetize(
        &mut self,
        frame: &[u8],
        timestamp: u32,
        max_packet: usize,
    ) -> Result<Vec<Vec<u8>>, Vp8Error> {
        let room = max_packet
            .checked_sub(RTP_HEADER + DESCRIPTOR)
            .filter(|r| *r > 0)
            .ok_or(Vp8Error::PacketSize(max_packet))?;
        if frame.is_empty() {
            return Err(Vp8Error::Empty);
        }
        let chunks = frame.chunks(room);
        let last = chunks.len() - 1;
        let picture_id = self.picture_id;
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        let packets = chunks
            .enumerate()
            .map(|(i, chunk)| {
                let mut packet = Vec::with_capacity(RTP_HEADER + DESCRIPTOR + chunk.len());
                packet.push(0x80); // V=2, P=0, X=0, CC=0
                let marker = if i == last { 0x80 } else { 0 };
                packet.push(marker | self.payload_type);
                packet.extend_from_slice(&self.sequence.to_be_bytes());
                packet.extend_from_slice(&timestamp.to_be_bytes());
                packet.extend_from_slice(&self.ssrc.to_be_bytes());
                self.sequence = self.sequence.wrapping_add(1);
                // RFC 7741 4.2: X=1, N=0, S on the first packet, PID=0; I=1; M=1 and the
                // 15-bit PictureID.
                packet.push(if i == 0 { 0x90 } else { 0x80 });
                packet.push(0x80);
                packet.extend_from_slice(&(0x8000 | picture_id).to_be_bytes());
                packet.extend_from_slice(chunk);
                packet
            })
            .collect();
        Ok(packets)
    }
}

/// Reassembles frames from RTP packets of one stream.
#[derive(Debug, Clone)]
pub struct Depacketizer {
    payload_type: u8,
    /// The frame in progress: its timestamp, its bytes so far, the next sequence expected.
    current: Option<(u32, Vec<u8>, u16)>,
    /// The sequence number after the last frame given (or dropped), once there was one.
    next_frame: Option<u16>,
    /// Packets were lost since the last frame given.
    lost: bool,
}

/// An RTP packet's fields the depacketizer needs.
struct Rtp<'a> {
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    payload: &'a [u8],
}

fn parse_rtp(packet: &[u8]) -> Result<Rtp<'_>, Vp8Error> {
    let fixed: &[u8; RTP_HEADER] = packet.first_chunk().ok_or(Vp8Error::Truncated)?;
    if fixed[0] >> 6 != 2 {
        return Err(Vp8Error::Version);
    }
    let csrc = usize::from(fixed[0] & 0x0f) * 4;
    let mut start = RTP_HEADER + csrc;
    if fixed[0] & 0x10 != 0 {
        // RFC 3550 5.3.1: 16-bit profile, 16-bit length in 32-bit words, then the body.
        let words = packet
            .get(start + 2..start + 4)
            .ok_or(Vp8Error::Truncated)?;
        start += 4 + usize::from(u16::from_be_bytes([words[0], words[1]])) * 4;
    }
    let mut end = packet.len();
    if fixed[0] & 0x20 != 0 {
        // RFC 3550 5.1: the last byte counts the padding, itself included.
        let padding = usize::from(*packet.last().ok_or(Vp8Error::Truncated)?);
        end = end.checked_sub(padding).ok_or(Vp8Error::Truncated)?;
    }
    let payload = packet.get(start..end).ok_or(Vp8Error::Truncated)?;
    Ok(Rtp {
        marker: fixed[1] & 0x80 != 0,
        payload_type: fixed[1] & 0x7f,
        sequence: u16::from_be_bytes([fixed[2], fixed[3]]),
        timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        payload,
    })
}

/// RFC 7741 4.2: the payload descriptor's length, and whether it starts a partition 0 (S=1,
/// PID=0: the first packet of a frame).
fn parse_descriptor(payload: &[u8]) -> Result<(usize, bool), Vp8Error> {
    let first = *payload.first().ok_or(Vp8Error::Truncated)?;
    let starts_frame = first & 0x10 != 0 && first & 0x07 == 0;
    let mut len = 1;
    if first & 0x80 != 0 {
        let x = *payload.get(1).ok_or(Vp8Error::Truncated)?;
        len += 1;
        if x & 0x80 != 0 {
            // I: a PictureID of 7 bits, or 15 if its M bit is set.
            let id = *payload.get(len).ok_or(Vp8Error::Truncated)?;
            len += if id & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            len += 1; // L: TL0PICIDX
        }
        if x & 0x30 != 0 {
            len += 1; // T or K: TID, Y, KEYIDX
        }
    }
    if payload.len() <= len {
        return Err(if payload.len() < len {
            Vp8Error::Truncated
        } else {
            Vp8Error::Empty
        });
    }
    Ok((len, starts_frame))
}

impl Depacketizer {
    /// Takes packets of `payload_type`.
    pub fn new(payload_type: u8) -> Self {
        Self {
            payload_type: payload_type & 0x7f,
            current: None,
            next_frame: None,
            lost: false,
        }
    }

    /// Takes one RTP packet; returns the frame it completes, if any. A refused packet drops
    /// the frame in progress (the decoder must not see a frame with a hole in it).
    pub fn push(&mut self, packet: &[u8]) -> Result<Option<Frame>, Vp8Error> {
        let result = self.take(packet);
        if result.is_err() {
            self.current = None;
            self.lost = true;
        }
        result
    }

    fn take(&mut self, packet: &[u8]) -> Result<Option<Frame>, Vp8Error> {
        let rtp = parse_rtp(packet)?;
        if rtp.payload_type != self.payload_type {
            return Err(Vp8Error::PayloadType(rtp.payload_type));
        }
        let (descriptor, starts_frame) = parse_descriptor(rtp.payload)?;
        let data = &rtp.payload[descriptor..];
        if starts_frame {
            // A new frame begins; one left unfinished had lost its end, and one that does not
            // follow the last frame given means whole packets went missing in between.
            if self.current.is_some() || self.next_frame.is_some_and(|n| n != rtp.sequence) {
                self.lost = true;
            }
            self.current = Some((rtp.timestamp, Vec::new(), rtp.sequence));
        }
        let Some((timestamp, bytes, expected)) = &mut self.current else {
            return Err(Vp8Error::Gap);
        };
        if rtp.sequence != *expected || rtp.timestamp != *timestamp {
            return Err(Vp8Error::Gap);
        }
        if bytes.len() + data.len() > MAX_FRAME {
            return Err(Vp8Error::FrameTooLarge);
        }
        bytes.extend_from_slice(data);
        *expected = expected.wrapping_add(1);
        if !rtp.marker {
            return Ok(None);
        }
        let Some((timestamp, data, next)) = self.current.take() else {
            return Ok(None);
        };
        self.next_frame = Some(next);
        // RFC 7741 4.3: the first byte of the VP8 payload header; P (bit 0) is 0 on keyframes.
        let keyframe = data.first().is_some_and(|b| b & 0x01 == 0);
        Ok(Some(Frame {
            data,
            timestamp,
            keyframe,
            follows_loss: std::mem::take(&mut self.lost),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn frame(len: usize, seed: u8) -> Vec<u8> {
        let mut f: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect();
        f[0] &= 0xfe; // a keyframe
        f
    }

    #[test]
    fn frames_round_trip_through_packets_of_any_size() {
        for max_packet in [17, 100, 1200] {
            let mut p = Packetizer::new(0x1234_5678, 96, 65_530);
            let mut d = Depacketizer::new(96);
            for (i, len) in [1usize, 2, 15, 16, 1_000, 30_000].into_iter().enumerate() {
                let f = frame(len, i as u8);
                let ts = 3_000 * i as u32;
                let packets = p.packetize(&f, ts, max_packet).unwrap();
                assert!(packets.iter().all(|p| p.len() <= max_packet));
                let (last, rest) = packets.split_last().unwrap();
                for packet in rest {
                    assert_eq!(d.push(packet).unwrap(), None);
                }
                let got = d.push(last).unwrap().unwrap();
                assert_eq!((got.data, got.timestamp, got.keyframe), (f, ts, true));
                assert!(!got.follows_loss);
            }
        }
    }

    #[test]
    fn a_lost_packet_drops_its_frame_and_the_next_frame_arrives() {
        let mut p = Packetizer::new(1, 96, 0);
        let mut d = Depacketizer::new(96);
        let first = p.packetize(&frame(500, 1), 0, 200).unwrap();
        let second = p.packetize(&frame(500, 2), 3_000, 200).unwrap();
        assert_eq!(d.push(&first[0]).unwrap(), None);
        assert_eq!(d.push(&first[2]), Err(Vp8Error::Gap), "packet 1 lost");
        assert_eq!(
            d.push(&first[1]),
            Err(Vp8Error::Gap),
            "late, and the frame is gone"
        );
        let mut got = None;
        for packet in &second {
            got = d.push(packet).unwrap();
        }
        let got = got.unwrap();
        assert_eq!(got.data, frame(500, 2));
        assert!(got.follows_loss, "the frame after a dropped one says so");
    }

    #[test]
    fn a_whole_frame_lost_between_two_is_reported() {
        let mut p = Packetizer::new(1, 96, 65_534);
        let mut d = Depacketizer::new(96);
        let frames: Vec<Vec<Vec<u8>>> = (0..3u8)
            .map(|i| {
                p.packetize(&frame(300, i), 3_000 * u32::from(i), 200)
                    .unwrap()
            })
            .collect();
        let mut given = Vec::new();
        for (i, packets) in frames.iter().enumerate() {
            if i == 1 {
                continue; // every packet of the middle frame lost
            }
            for packet in packets {
                if let Some(f) = d.push(packet).unwrap() {
                    given.push(f);
                }
            }
        }
        assert_eq!(given.len(), 2);
        assert!(!given[0].follows_loss);
        assert!(
            given[1].follows_loss,
            "no gap inside it, but a frame missing before it"
        );
    }

    #[test]
    fn a_frame_without_its_first_packet_is_never_given() {
        let mut p = Packetizer::new(1, 96, 0);
        let mut d = Depacketizer::new(96);
        let packets = p.packetize(&frame(500, 1), 0, 200).unwrap();
        for packet in &packets[1..] {
            assert_eq!(d.push(packet), Err(Vp8Error::Gap));
        }
    }

    #[test]
    fn optional_fields_csrcs_extensions_and_padding_are_skipped() {
        // CC=1, X=1 (one word of extension), P=1 (3 bytes of padding); descriptor with
        // I (7-bit PictureID), L, T/K.
        let mut packet = vec![0x80 | 0x20 | 0x10 | 0x01, 0x80 | 100, 0, 7, 0, 0, 0, 9];
        packet.extend_from_slice(&[0, 0, 0, 1]); // SSRC
        packet.extend_from_slice(&[0xaa; 4]); // CSRC
        packet.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension
        packet.extend_from_slice(&[0x90, 0xe0, 0x05, 0x11, 0x22]); // descriptor
        packet.extend_from_slice(&[0x10, 0x02, 0x9d]); // VP8 data (P=0)
        packet.extend_from_slice(&[0, 0, 3]); // padding
        let got = Depacketizer::new(100).push(&packet).unwrap().unwrap();
        assert_eq!(got.data, [0x10, 0x02, 0x9d]);
        assert_eq!(got.timestamp, 9);
    }

    #[test]
    fn malformed_packets_are_refused_with_their_reason() {
        let mut d = Depacketizer::new(96);
        assert_eq!(d.push(&[0x80; 5]), Err(Vp8Error::Truncated));
        assert_eq!(d.push(&[0x40; 20]), Err(Vp8Error::Version));
        let mut p = Packetizer::new(1, 97, 0);
        let other = p.packetize(&[1, 2, 3], 0, 100).unwrap();
        assert_eq!(d.push(&other[0]), Err(Vp8Error::PayloadType(97)));
        // Padding longer than the packet, an extension past the end, a bare descriptor.
        let mut padded = Packetizer::new(1, 96, 0)
            .packetize(&[1], 0, 100)
            .unwrap()
            .remove(0);
        padded[0] |= 0x20;
        *padded.last_mut().unwrap() = 200;
        assert_eq!(d.push(&padded), Err(Vp8Error::Truncated));
        let mut extended = vec![0x90, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0, 9];
        extended.extend_from_slice(&[0x90, 0, 1]);
        assert_eq!(d.push(&extended), Err(Vp8Error::Truncated));
        let bare = vec![
            0x80,
            0x80 | 96,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            1,
            0x90,
            0x80,
            0x80,
            0x01,
        ];
        assert_eq!(d.push(&bare), Err(Vp8Error::Empty));
        assert_eq!(
            Packetizer::new(1, 96, 0).packetize(&[1], 0, 16),
            Err(Vp8Error::PacketSize(16))
        );
    }

    #[test]
    fn a_frame_cannot_grow_past_the_bound() {
        let mut p = Packetizer::new(1, 96, 0);
        let mut d = Depacketizer::new(96);
        let packets = p.packetize(&vec![0; MAX_FRAME + 1], 0, 1_200).unwrap();
        let refused = packets
            .iter()
            .map(|packet| d.push(packet))
            .find(Result::is_err);
        assert_eq!(refused, Some(Err(Vp8Error::FrameTooLarge)));
    }
}

//! VP8 over RTP for the page ([`veil_web::vp8`], RFC 7741): `RtpPacketizer` cuts each encoded
//! frame (a WebCodecs `EncodedVideoChunk`) into RTP packets the page then seals, and
//! `RtpDepacketizer` puts opened RTP packets back together into frames for `VideoDecoder`.

use veil_web::vp8::{Depacketizer, Packetizer};
use wasm_bindgen::prelude::*;

fn thrown(e: impl core::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// Cuts frames into RTP packets; the page takes them one by one with `poll`.
#[wasm_bindgen]
pub struct RtpPacketizer {
    packetizer: Packetizer,
    ready: std::collections::VecDeque<Vec<u8>>,
}

#[wasm_bindgen]
impl RtpPacketizer {
    /// Stream `ssrc` of `payload_type`, starting at a random sequence number (RFC 3550 5.1).
    #[wasm_bindgen(constructor)]
    pub fn new(ssrc: u32, payload_type: u8) -> Result<RtpPacketizer, JsError> {
        let mut sequence = [0u8; 2];
        crate::PROVIDER
            .secure_random
            .fill(&mut sequence)
            .map_err(thrown)?;
        Ok(Self {
            packetizer: Packetizer::new(ssrc, payload_type, u16::from_be_bytes(sequence)),
            ready: Default::default(),
        })
    }

    /// Packetizes one frame at `timestamp` (90 kHz) into packets of at most `max_packet`
    /// bytes; returns how many, to take with `poll`. Packets of an earlier frame not taken
    /// yet are dropped: a frame is sent whole or not at all.
    pub fn packetize(
        &mut self,
        frame: &[u8],
        timestamp: u32,
        max_packet: usize,
    ) -> Result<usize, JsError> {
        let packets = self
            .packetizer
            .packetize(frame, timestamp, max_packet)
            .map_err(thrown)?;
        self.ready = packets.into();
        Ok(self.ready.len())
    }

    /// The next packet of the last frame, or `undefined`.
    pub fn poll(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }
}

/// Reassembles frames; after a `push` that returns a frame, `keyframe` and `timestamp`
/// describe it.
#[wasm_bindgen]
pub struct RtpDepacketizer {
    depacketizer: Depacketizer,
    /// The last frame's keyframe flag, timestamp, and whether packets were lost before it.
    last: (bool, u32, bool),
}

#[wasm_bindgen]
impl RtpDepacketizer {
    /// Takes packets of `payload_type`.
    #[wasm_bindgen(constructor)]
    pub fn new(payload_type: u8) -> RtpDepacketizer {
        Self {
            depacketizer: Depacketizer::new(payload_type),
            last: (false, 0, false),
        }
    }

    /// One opened RTP packet: the frame it completes, or `undefined`. Throws for a packet
    /// refused (a gap drops the frame in progress).
    pub fn push(&mut self, packet: &[u8]) -> Result<Option<Vec<u8>>, JsError> {
        let frame = self.depacketizer.push(packet).map_err(thrown)?;
        Ok(frame.map(|f| {
            self.last = (f.keyframe, f.timestamp, f.follows_loss);
            f.data
        }))
    }

    /// Whether the last frame is a keyframe.
    pub fn keyframe(&self) -> bool {
        self.last.0
    }

    /// The last frame's RTP timestamp (90 kHz).
    pub fn timestamp(&self) -> u32 {
        self.last.1
    }

    /// Whether packets were lost before the last frame (a delta frame after a loss cannot be
    /// decoded right: wait for a keyframe).
    #[wasm_bindgen(js_name = followsLoss)]
    pub fn follows_loss(&self) -> bool {
        self.last.2
    }
}

//! What the interleaved harnesses (`codec_ratios`, `compare`) share: buffers at a fixed
//! cache-line alignment, the burst size per packet size, and medians.
//!
//! Criterion measures one function after another; on a shared two-core machine the load can
//! change between them and move a ratio by several percent. The harnesses instead run short
//! bursts of every variant in turn, round after round, so each variant sees the same load, and
//! compare the medians of their per-burst times.

/// A buffer whose byte at `offset` is 64-byte aligned: every variant sees its payload at the same
/// cache-line alignment, so a comparison measures code rather than where malloc put the data.
#[derive(Debug, Clone)]
pub struct Aligned {
    backing: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    /// `len` zero bytes, the one at `offset` on a 64-byte boundary.
    pub fn new(len: usize, offset: usize) -> Self {
        let backing = vec![0u8; len + 64];
        let start = (64 - (backing.as_ptr() as usize + offset) % 64) % 64;
        Self {
            backing,
            start,
            len,
        }
    }

    /// The buffer.
    pub fn bytes(&mut self) -> &mut [u8] {
        &mut self.backing[self.start..self.start + self.len]
    }
}

/// The median of `samples` (which it sorts).
pub fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Packets per timed burst for `size`-byte packets: about 200 KB of payload, 16 to 2,000 packets.
pub fn burst_for(size: usize) -> usize {
    (200_000 / (size + 100)).clamp(16, 2000)
}

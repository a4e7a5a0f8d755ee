//! `veil inspect`: what any relay on the path can read from a protected packet.

use dataplane::packet::{Mode, Protected};
use dataplane::stream_key::StreamId;

/// Why `veil inspect` could not decode its input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The argument is not hex.
    #[error("bad hex: {0}")]
    Hex(#[from] hex::FromHexError),
    /// The bytes are not a protected packet of the mode asked for.
    #[error("not a Veil packet: {0}")]
    Packet(#[from] dataplane::packet::Error),
}

/// Decodes the clear fields of a protected packet given as hex.
pub fn inspect(hex: &str, rtp: bool) -> Result<String, InspectError> {
    let compact: String = hex.split_whitespace().collect();
    let bytes = hex::decode(&compact)?;
    let mode = if rtp { Mode::Rtp } else { Mode::Datagram };
    let parsed = Protected::parse(mode, &bytes)?;
    let kid = parsed.header.kid;
    let s = StreamId::from_kid(kid);
    let stream = format!(
        "sender slot {}, instance {:#x}, stream {}",
        s.sender_slot, s.sender_instance, s.stream_index
    );
    Ok(format!(
        "mode        {mode:?}\nrtp header  {} bytes\nmkSeqNum    {}\nKID         {kid:#x} ({stream})\nCTR         {}\nsealed      {} bytes (ciphertext and tag)",
        parsed.rtp_header_len,
        parsed.mk_seq,
        parsed.header.ctr,
        bytes.len() - parsed.ciphertext_start
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspects_a_datagram() {
        let report = inspect("00000003 99 0123 4567 deadbeef", false).unwrap();
        assert!(report.contains("mkSeqNum    3"), "{report}");
        assert!(report.contains("KID         0x123 (sender slot 0, instance 0x1, stream 35)"));
        assert!(report.contains("CTR         17767"));
    }

    #[test]
    fn reports_bad_input() {
        let text = |hex, rtp| inspect(hex, rtp).unwrap_err().to_string();
        assert!(text("abc", false).starts_with("bad hex"));
        assert!(text("zz", false).starts_with("bad hex"));
        assert!(text("0000", false).starts_with("not a Veil packet"));
        assert!(text("00000000", true).contains("RTP"));
    }
}

//! `veil inspect`: what any relay on the path can read from a protected packet.

use dataplane::packet::{Mode, Protected};
use dataplane::stream_key::StreamId;

/// Decodes the clear fields of a protected packet given as hex.
pub fn inspect(hex: &str, rtp: bool) -> Result<String, String> {
    let compact: String = hex.split_whitespace().collect();
    let bytes = hex::decode(&compact).map_err(|e| format!("bad hex: {e}"))?;
    let mode = if rtp { Mode::Rtp } else { Mode::Datagram };
    let parsed = Protected::parse(mode, &bytes).map_err(|e| format!("not a Veil packet: {e}"))?;
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
        assert!(inspect("abc", false).unwrap_err().starts_with("bad hex"));
        assert!(inspect("zz", false).unwrap_err().starts_with("bad hex"));
        assert!(
            inspect("0000", false)
                .unwrap_err()
                .starts_with("not a Veil packet")
        );
        assert!(inspect("00000000", true).unwrap_err().contains("RTP"));
    }
}

//! RTP header parse: a header that validates lies inside its input, and re-parsing exactly its
//! own bytes gives the same header.
#![no_main]
#![forbid(unsafe_code)]

use dataplane::packet::rtp::RtpHeader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = RtpHeader::parse(data) {
        assert!(header.len() >= 12 && header.len() <= data.len());
        assert_eq!(header.as_bytes(), &data[..header.len()]);
        let again = RtpHeader::parse(header.as_bytes()).expect("a header's own bytes parse");
        assert_eq!(again.len(), header.len());
        assert_eq!(again.extension(), header.extension());
    }
});

//! SFrame header parse: whatever decodes re-encodes to exactly the bytes it came from.
#![no_main]
#![forbid(unsafe_code)]

use dataplane::sframe::Header;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((header, len)) = Header::parse(data) {
        assert!(len <= data.len());
        assert_eq!(header.encoded_len(), len);
        let (buf, out_len) = header.to_bytes();
        assert_eq!(
            &buf[..out_len],
            &data[..len],
            "decode then encode must give the input"
        );
    }
});

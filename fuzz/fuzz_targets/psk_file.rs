//! The sidecar's pre-shared key file (`dataplane::psk`), as any text an operator or an attacker
//! with write access to the path could leave there. Invariants: nothing panics; a file that
//! parses prints back (`to_toml`) to text that parses to the same file; an error's message never
//! contains the file's meeting key.
#![no_main]
#![forbid(unsafe_code)]

use dataplane::psk::PskFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match PskFile::parse(text) {
        Ok(file) => {
            let printed = file.to_toml();
            let again = PskFile::parse(&printed).expect("a parsed file prints back to valid TOML");
            assert_eq!(again, file, "print then parse must give the same file");
        }
        Err(e) => {
            // A 64-hex-digit run in the input may be a key: it must not be echoed back.
            let message = e.to_string();
            for word in text.split(|c: char| !c.is_ascii_hexdigit()) {
                if word.len() >= 64 {
                    assert!(
                        !message.contains(word),
                        "error echoes a key-sized hex run: {message}"
                    );
                }
            }
        }
    }
});

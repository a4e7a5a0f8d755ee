//! Packet unprotect with fixed installed keys.
//!
//! Random bytes alone almost never pass the tag, so half of each input drives a structured case:
//! a genuine packet is sealed under the installed key, then mutated as the fuzzer says, and
//! unprotected. That reaches the AEAD verification with real packets. Invariants: nothing panics;
//! an unmodified packet opens to its plaintext exactly once; a modified one never opens.
#![no_main]
#![forbid(unsafe_code)]

use arbitrary::{Arbitrary, Unstructured};
use dataplane::packet::{self, HEADROOM, Mode, Protected};
use dataplane::replay::ReplayWindows;
use dataplane::sframe::{CipherSuite, Context};
use libfuzzer_sys::fuzz_target;

#[path = "common/mutation.rs"]
mod mutation;
use mutation::Mutation;

const KID: u64 = 0x0201;
const MK_SEQ: u32 = 7;

#[derive(Debug, Arbitrary)]
struct Case {
    rtp: bool,
    gcm: bool,
    payload: Vec<u8>,
    mutations: Vec<Mutation>,
    raw: Vec<u8>,
}

fn contexts(suite: CipherSuite) -> (Context, Context) {
    let mut tx = Context::new(suite);
    tx.add_send_key(KID, b"fuzz base key")
        .expect("fresh context");
    let mut rx = Context::new(suite);
    rx.add_recv_key(KID, b"fuzz base key")
        .expect("fresh context");
    (tx, rx)
}

fn unprotect(
    mode: Mode,
    rx: &Context,
    windows: &mut ReplayWindows,
    wire: &[u8],
) -> Option<Vec<u8>> {
    let mut buf = wire.to_vec();
    let parsed = Protected::parse(mode, &buf).ok()?;
    let range = packet::open(rx, windows, &parsed, &mut buf).ok()?;
    Some(buf[range].to_vec())
}

fuzz_target!(|data: &[u8]| {
    let Ok(case) = Case::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let mode = if case.rtp { Mode::Rtp } else { Mode::Datagram };
    let suite = if case.gcm {
        CipherSuite::Aes256GcmSha512_128
    } else {
        CipherSuite::AesCtr128HmacSha256_80
    };
    let (mut tx, rx) = contexts(suite);
    let mut windows = ReplayWindows::new();

    // Arbitrary bytes straight off the network.
    let _ = unprotect(mode, &rx, &mut windows, &case.raw);

    // A genuine packet (RTP mode needs a valid RTP header in front of the payload).
    let input = if case.rtp {
        mutation::with_rtp_header(9, &case.payload)
    } else {
        case.payload.clone()
    };
    let mut buf = vec![0u8; HEADROOM + input.len() + suite.tag_len()];
    buf[HEADROOM..HEADROOM + input.len()].copy_from_slice(&input);
    let sealed = packet::seal(mode, &mut tx, KID, MK_SEQ, &mut buf, HEADROOM, input.len())
        .expect("sealing a well-formed packet");
    let genuine = buf[sealed].to_vec();

    let mutated = mutation::apply(&genuine, &case.mutations);
    let opened = unprotect(mode, &rx, &mut windows, &mutated);
    if mutated == genuine {
        assert_eq!(
            opened.as_deref(),
            Some(&input[..]),
            "a genuine packet must open"
        );
        assert!(
            unprotect(mode, &rx, &mut windows, &genuine).is_none(),
            "a replay must not open"
        );
    } else {
        assert!(opened.is_none(), "a modified packet must never open");
        assert_eq!(
            unprotect(mode, &rx, &mut windows, &genuine).as_deref(),
            Some(&input[..]),
            "a failed forgery must not burn the genuine packet's counter"
        );
    }
});

//! Packet unprotect with fixed installed keys.
//!
//! Random bytes alone almost never pass the tag, so half of each input drives a structured case:
//! a genuine packet is sealed under the installed key, then mutated as the fuzzer says, and
//! unprotected. That reaches the AEAD verification with real packets. Invariants: nothing panics;
//! an unmodified packet opens to its plaintext exactly once; a modified one never opens.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use dataplane::packet::{self, HEADROOM, Mode, Protected};
use dataplane::replay::ReplayWindows;
use dataplane::sframe::{CipherSuite, Context};
use libfuzzer_sys::fuzz_target;

const KID: u64 = 0x0201;
const MK_SEQ: u32 = 7;

#[derive(Debug, Arbitrary)]
enum Mutation {
    FlipBit(u16),
    SetByte(u16, u8),
    Truncate(u16),
    Extend(Vec<u8>),
}

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
    let mut input = case.payload.clone();
    if case.rtp {
        let mut with_header = vec![0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9];
        with_header.extend_from_slice(&input);
        input = with_header;
    }
    let mut buf = vec![0u8; HEADROOM + input.len() + suite.tag_len()];
    buf[HEADROOM..HEADROOM + input.len()].copy_from_slice(&input);
    let sealed = packet::seal(mode, &mut tx, KID, MK_SEQ, &mut buf, HEADROOM, input.len())
        .expect("sealing a well-formed packet");
    let genuine = buf[sealed].to_vec();

    let mut mutated = genuine.clone();
    for mutation in &case.mutations {
        match *mutation {
            Mutation::FlipBit(at) if !mutated.is_empty() => {
                let bit = usize::from(at) % (mutated.len() * 8);
                mutated[bit / 8] ^= 1 << (bit % 8);
            }
            Mutation::SetByte(at, value) if !mutated.is_empty() => {
                let len = mutated.len();
                mutated[usize::from(at) % len] = value;
            }
            Mutation::Truncate(to) => mutated.truncate(usize::from(to)),
            Mutation::Extend(ref tail) => mutated.extend_from_slice(tail),
            _ => {}
        }
    }
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

//! Protects and unprotects a sample packet in each framing mode and cipher suite, printing the
//! clear bytes Veil adds, the overhead, and how many packets per second one core seals and opens.
//!
//! Run: `cargo run --release -p dataplane --example roundtrip`

use std::time::{Duration, Instant};

use dataplane::packet::{self, HEADROOM, Mode, Protected};
use dataplane::replay::ReplayWindows;
use dataplane::sframe::{CipherSuite, Context};
use dataplane::stream_key::{StreamId, stream_base_key};

const PAYLOAD_LEN: usize = 1200;
const MK_SEQ: u32 = 1;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A meeting key as the leader would distribute it, and sender slot 2's first stream.
    let meeting_key = [0x5a; 32];
    let stream = StreamId {
        sender_slot: 2,
        sender_instance: 0x12_3456_789a,
        stream_index: 0,
    };
    let kid = stream.kid()?;
    let base_key = stream_base_key(&meeting_key, b"meeting-42", b"uuid-0001", b"alice", 0)?;
    println!(
        "stream base key derived for KID {:#x} (slot {}, instance {:#x}, stream {})\n",
        kid, stream.sender_slot, stream.sender_instance, stream.stream_index
    );
    println!(
        "{:<34} {:<9} {:<9} {:<10} {:<14} {:>8} {:>10}",
        "suite", "mode", "RTP hdr", "mkSeqNum", "SFrame hdr", "overhead", "packets/s"
    );
    for suite in CipherSuite::ALL {
        for mode in [Mode::Datagram, Mode::Rtp] {
            let mut tx = Context::new(suite);
            tx.add_send_key(kid, base_key.as_ref())?;
            let mut rx = Context::new(suite);
            rx.add_recv_key(kid, base_key.as_ref())?;
            let mut windows = ReplayWindows::new();

            let input = sample(mode);
            let mut buf = vec![0u8; HEADROOM + input.len() + suite.tag_len()];
            buf[HEADROOM..HEADROOM + input.len()].copy_from_slice(&input);
            let sealed = packet::seal(mode, &mut tx, kid, MK_SEQ, &mut buf, HEADROOM, input.len())?;
            let wire = buf[sealed].to_vec();
            let parsed = Protected::parse(mode, &wire)?;
            let mut opened = wire.clone();
            let plain = packet::open(&rx, &mut windows, &parsed, &mut opened)?;
            if opened[plain] != input[..] {
                return Err("round trip changed the packet".into());
            }
            let rtp_end = parsed.rtp_header_len;
            let mk_end = rtp_end + packet::MK_SEQ_LEN;
            println!(
                "{:<34} {:<9} {:<9} {:<10} {:<14} {:>6} B {:>10.0}",
                format!("{suite:?} ({:#06x})", suite.id()),
                format!("{mode:?}"),
                format!("{rtp_end} B"),
                hex(&wire[rtp_end..mk_end]),
                hex(&wire[mk_end..parsed.ciphertext_start]),
                wire.len() - input.len(),
                rate(mode, &mut tx, &rx, kid, &input)?
            );
        }
    }
    println!("\noverhead = mkSeqNum + SFrame header + tag; packets/s = seal and open on one core.");
    Ok(())
}

/// A 1200-byte datagram, or an RTP packet with a one-byte header extension and a 1200-byte payload.
fn sample(mode: Mode) -> Vec<u8> {
    let payload = (0..PAYLOAD_LEN).map(|i| i as u8).collect::<Vec<_>>();
    match mode {
        Mode::Datagram => payload,
        Mode::Rtp => {
            let header = [
                0x90, 96, 0x00, 0x01, 0, 0, 0x03, 0xe8, 0x11, 0x22, 0x33, 0x44, 0xbe, 0xde, 0, 1,
                0x10, 0xff, 0, 0,
            ];
            [&header[..], &payload].concat()
        }
    }
}

/// Seal-then-open round trips per second on this core, over about half a second.
fn rate(
    mode: Mode,
    tx: &mut Context,
    rx: &Context,
    kid: u64,
    input: &[u8],
) -> Result<f64, Box<dyn std::error::Error>> {
    let mut windows = ReplayWindows::new();
    let mut buf = vec![0u8; HEADROOM + input.len() + 16];
    let started = Instant::now();
    let mut packets = 0u64;
    while started.elapsed() < Duration::from_millis(500) {
        for _ in 0..1000 {
            buf[HEADROOM..HEADROOM + input.len()].copy_from_slice(input);
            let sealed = packet::seal(mode, tx, kid, MK_SEQ, &mut buf, HEADROOM, input.len())?;
            let wire = &mut buf[sealed];
            let parsed = Protected::parse(mode, wire)?;
            packet::open(rx, &mut windows, &parsed, wire)?;
        }
        packets += 1000;
    }
    Ok(packets as f64 / started.elapsed().as_secs_f64())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

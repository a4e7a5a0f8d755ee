//! The in-place seal and open paths allocate nothing per packet once warm, under every
//! built-in crypto provider.
//!
//! A counting global allocator (tests/common/counting_alloc.rs) tallies this thread's Rust
//! allocations. Allocations inside aws-lc's C code go through malloc and are not counted here.

// Test helpers unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dataplane::packet::{self, HEADROOM, Mode, Protected};
use dataplane::replay::ReplayWindows;
use dataplane::sframe::{CipherSuite, Context};
use keyctl::provider::CryptoProvider;

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

#[path = "common/providers.rs"]
mod common;
use common::providers;

/// Seals and opens `packets` packets through the in-place calls and returns how many
/// allocations that made.
fn pump(provider: &'static CryptoProvider, suite: CipherSuite, mode: Mode, packets: usize) -> u64 {
    let kid = 0x0301;
    let mut tx = Context::with_provider(suite, provider);
    tx.add_send_key(kid, b"base key").unwrap();
    let mut rx = Context::with_provider(suite, provider);
    rx.add_recv_key(kid, b"base key").unwrap();
    let mut windows = ReplayWindows::new();
    let mut tx_frames = Context::with_provider(suite, provider);
    tx_frames.add_send_key(kid, b"frame key").unwrap();
    let mut rx_frames = Context::with_provider(suite, provider);
    rx_frames.add_recv_key(kid, b"frame key").unwrap();
    let mut buf = vec![0u8; HEADROOM + 1200 + 16];
    let rtp = [0x80u8, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7];
    let mut warm = |count: usize| {
        for _ in 0..count {
            buf[HEADROOM..HEADROOM + 12].copy_from_slice(&rtp);
            let sealed = packet::seal(mode, &mut tx, kid, 9, &mut buf, HEADROOM, 1200).unwrap();
            let wire = &mut buf[sealed];
            let parsed = Protected::parse(mode, wire).unwrap();
            packet::open(&rx, &mut windows, &parsed, wire).unwrap();
            // The frame API, with metadata so the AAD scratch buffer is in play.
            let mut frame = [0u8; 17 + 200 + 16];
            let sealed = tx_frames
                .encrypt_in_place(kid, b"meta", &mut frame, 17, 200)
                .unwrap();
            let wire = &mut frame[sealed];
            rx_frames.decrypt_in_place(b"meta", wire).unwrap();
        }
    };
    // Warm up: the replay window for the stream is created on its first packet.
    warm(4);
    let before = allocations();
    warm(packets);
    allocations() - before
}

#[test]
fn steady_state_sealing_and_opening_allocate_nothing() {
    for provider in providers() {
        // Both counts take CTR past 255, where the SFrame header grows by a byte. RustCrypto's
        // generic code is compiled into keyctl, unoptimized in a test build and some fifty
        // times slower than aws-lc's C, so it gets the smaller one.
        let packets = if provider.name == "aws-lc-rs" {
            3000
        } else {
            300
        };
        for suite in CipherSuite::ALL {
            for mode in [Mode::Datagram, Mode::Rtp] {
                assert_eq!(
                    pump(provider, suite, mode, packets),
                    0,
                    "{} {suite:?} {mode:?}",
                    provider.name
                );
            }
        }
    }
}

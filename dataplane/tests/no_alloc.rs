//! The in-place seal and open paths allocate nothing per packet once warm.
//!
//! A counting global allocator tallies this thread's allocations (a const thread-local with no
//! destructor, so counting itself never allocates). Allocations inside aws-lc's C code go through
//! malloc, not Rust's allocator, and are not seen here; docs/BENCHMARKS.md records a valgrind
//! check of those.

// Test helpers unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use dataplane::packet::{self, HEADROOM, Mode, Protected};
use dataplane::replay::ReplayWindows;
use dataplane::sframe::{CipherSuite, Context};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers every call to the system allocator unchanged; only counts them.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Seals and opens `packets` packets through the in-place calls and returns how many
/// allocations that made.
fn pump(suite: CipherSuite, mode: Mode, packets: usize) -> u64 {
    let kid = 0x0301;
    let mut tx = Context::new(suite);
    tx.add_send_key(kid, b"base key").unwrap();
    let mut rx = Context::new(suite);
    rx.add_recv_key(kid, b"base key").unwrap();
    let mut windows = ReplayWindows::new();
    let mut tx_frames = Context::new(suite);
    tx_frames.add_send_key(kid, b"frame key").unwrap();
    let mut rx_frames = Context::new(suite);
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
    for suite in CipherSuite::ALL {
        for mode in [Mode::Datagram, Mode::Rtp] {
            // 3000 packets take CTR past 255, where the SFrame header grows by a byte.
            assert_eq!(pump(suite, mode, 3000), 0, "{suite:?} {mode:?}");
        }
    }
}

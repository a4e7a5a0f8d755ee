//! Batched seal and open through the keyring allocate nothing per packet once warm.
//!
//! The counting allocator is tests/common/counting_alloc.rs: a const thread-local tally, so counting
//! itself never allocates. Warm-up derives the stream keys, creates the replay window and lets
//! arc-swap register this thread; after that, batches of 64 must cost zero allocations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use dataplane::batch::{BATCH_SIZE, Batch, SendDrop, open_batch, seal_batch};
use dataplane::keyring::{EpochKey, Keyring, MeetingConfig, Millis, WorkerKeys};
use dataplane::packet::{DropCounters, Mode};
use dataplane::sframe::CipherSuite;
use zeroize::Zeroizing;

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

fn ring(own_slot: u32) -> Keyring {
    let ring = Keyring::new(MeetingConfig {
        meeting_id: b"m".to_vec(),
        meeting_uuid: b"u".to_vec(),
        own_slot,
        suite: CipherSuite::Aes256GcmSha512_128,
    });
    let key = EpochKey {
        mk_seq: 1,
        meeting_key: Zeroizing::new([9; 32]),
        roster: BTreeMap::from([(1, b"a".to_vec()), (2, b"b".to_vec())]),
        activate_at: Millis(0),
    };
    ring.install(key, Millis(0)).unwrap();
    ring
}

fn pump(mode: Mode, batches: usize) -> u64 {
    let (alice, bob) = (ring(1), ring(2));
    let (mut tx, mut rx) = (WorkerKeys::new(mode), WorkerKeys::new(mode));
    let (mut plain, mut wire) = (Batch::new(), Batch::new());
    let mut send_drops = [0; SendDrop::ALL.len()];
    let mut drops = DropCounters::default();
    let mut packet = [0u8; 1200];
    packet[..12].copy_from_slice(&[0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7]);
    let mut run = |count: usize| {
        for _ in 0..count {
            plain.clear();
            wire.clear();
            for _ in 0..BATCH_SIZE {
                plain.push_plain(&packet, None);
            }
            seal_batch(
                &mut tx,
                &alice,
                Millis(1),
                mode,
                &mut plain,
                &mut send_drops,
            );
            for i in 0..plain.len() {
                wire.push_wire(plain.packet(i), None);
            }
            let opened = open_batch(&mut rx, &bob, Millis(1), &mut wire, &mut drops);
            assert_eq!(opened.packets as usize, BATCH_SIZE);
        }
    };
    run(2);
    let before = allocations();
    run(batches);
    allocations() - before
}

#[test]
fn batches_allocate_nothing_once_warm_in_datagram_mode() {
    assert_eq!(pump(Mode::Datagram, 200), 0);
}

#[test]
fn batches_allocate_nothing_once_warm_in_rtp_mode() {
    assert_eq!(pump(Mode::Rtp, 200), 0);
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the guard: a test that allocates must be seen, or the zeros above prove nothing.
    let before = allocations();
    let v = std::hint::black_box(vec![1u8; 64]);
    drop(v);
    assert!(allocations() > before);
}

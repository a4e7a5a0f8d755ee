//! The engine's per-packet crypto path: a batch of 64 datagrams sealed or opened through the
//! keyring (`seal_batch` / `open_batch`), beside raw aws-lc-rs AES-256-GCM over the same bytes
//! (issue 18, target 2: <= 1.15x raw at 1200 B).
//!
//! Each group holds one datagram size and three functions, each timing 64 packets:
//! - `aws-lc-rs`: the raw AEAD on 64 buffers (7 bytes of AAD, as a Veil packet's).
//! - `in_place`: the datagrams already lie in their batch slots, where a receive put them
//!   (recvmmsg into the slots, as the mio engine does); the keyring snapshot, KID and counter
//!   handout, framing and AEAD.
//! - `copied`: as `in_place`, plus copying each datagram into its slot first, as both engines
//!   do for a GRO buffer's segments on the side they seal.
//! - `in_gro_buffer` (open only): the datagrams back to back in one buffer, as a GRO receive
//!   leaves them, each slot a window onto exactly its datagram ([`SlotMemory`]): how both
//!   engines open the network side's GRO segments, with no copy (io_uring's windows lie in its
//!   provided buffers, mio's in its two GRO buffers; the crypto path is the same).
//!
//! Open takes fresh sealed packets each iteration (prepared untimed), so the replay window never
//! refuses one. `python3 bench/ratios.py` prints the ratios.
#![forbid(unsafe_code)]
// Benchmark setup unwraps: a failure there is a broken benchmark, not a measurement.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::any::Any;
use std::ops::Range;

use dataplane::batch::{BATCH_SIZE, Batch, SendDrop, SlotMemory, open_batch, seal_batch};
use dataplane::keyring::{EpochKey, Keyring, MeetingConfig, Millis, WorkerKeys};
use dataplane::packet::{DropCounters, HEADROOM, Mode};
use dataplane::sframe::CipherSuite;
use zeroize::Zeroizing;

const SIZES: [usize; 2] = [200, 1200];
const TAG: usize = 16;
/// A Veil datagram's AAD: the mkSeqNum and a 3-byte SFrame header... the raw baseline
/// authenticates as many bytes.
const AAD: [u8; 7] = [0; 7];

fn ring(own_slot: u32) -> Keyring {
    let ring = Keyring::new(MeetingConfig {
        meeting_id: b"bench".to_vec(),
        meeting_uuid: b"uuid".to_vec(),
        own_slot,
        suite: CipherSuite::Aes256GcmSha512_128,
    });
    ring.install(
        EpochKey {
            mk_seq: 1,
            meeting_key: Zeroizing::new([9; 32]),
            roster: BTreeMap::from([(1, b"a".to_vec()), (2, b"b".to_vec())]),
            activate_at: Millis(0),
        },
        Millis(0),
    )
    .unwrap();
    ring
}

fn aws_key() -> aws_lc_rs::aead::LessSafeKey {
    use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32]).unwrap())
}

/// 64 buffers of `len` bytes, one per packet, in one slab laid out as a batch's slots are.
fn raw_slab(len: usize) -> Batch {
    let mut batch = Batch::new();
    for _ in 0..BATCH_SIZE {
        batch.commit(HEADROOM..HEADROOM + len, None);
    }
    batch
}

/// Datagrams back to back in one buffer, as a GRO receive leaves them; slot `i` is exactly
/// datagram `i`'s bytes.
struct GroBuffer {
    bytes: Vec<u8>,
    windows: Vec<Range<usize>>,
}

impl GroBuffer {
    /// A batch over `packets` laid back to back, each committed as its whole slot.
    fn batch(packets: &Batch) -> Batch {
        let mut bytes = Vec::with_capacity(1 << 16);
        let mut windows = Vec::with_capacity(BATCH_SIZE);
        for packet in packets.live() {
            windows.push(bytes.len()..bytes.len() + packet.len());
            bytes.extend_from_slice(packet);
        }
        let lens: Vec<usize> = windows.iter().map(Range::len).collect();
        let mut batch = Batch::with_memory(Box::new(Self { bytes, windows }));
        for len in lens {
            assert!(batch.commit(0..len, None));
        }
        batch
    }
}

impl SlotMemory for GroBuffer {
    fn slot(&self, index: usize) -> &[u8] {
        self.windows
            .get(index)
            .map_or(&[][..], |window| &self.bytes[window.clone()])
    }

    fn slot_mut(&mut self, index: usize) -> &mut [u8] {
        match self.windows.get(index) {
            Some(window) => &mut self.bytes[window.clone()],
            None => &mut [],
        }
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

fn seal(c: &mut Criterion) {
    let alice = ring(1);
    let aws = aws_key();
    for size in SIZES {
        let mut group = c.benchmark_group(format!("batch_seal/{size}"));
        group.throughput(Throughput::Elements(BATCH_SIZE as u64));
        let mut keys = WorkerKeys::new(Mode::Datagram);
        let mut drops = [0; SendDrop::ALL.len()];
        let mut batch = Batch::new();
        let received = vec![0x5a; size];

        group.bench_function("in_place", |b| {
            b.iter(|| {
                batch.clear();
                for _ in 0..BATCH_SIZE {
                    // The receive left the datagram at HEADROOM of its slot.
                    batch.commit(HEADROOM..HEADROOM + size, None);
                }
                black_box(seal_batch(
                    &mut keys,
                    &alice,
                    Millis(1),
                    Mode::Datagram,
                    &mut batch,
                    &mut drops,
                ))
            })
        });
        group.bench_function("copied", |b| {
            b.iter(|| {
                batch.clear();
                for _ in 0..BATCH_SIZE {
                    batch.push_plain(&received, None);
                }
                black_box(seal_batch(
                    &mut keys,
                    &alice,
                    Millis(1),
                    Mode::Datagram,
                    &mut batch,
                    &mut drops,
                ))
            })
        });
        let mut raw = raw_slab(size);
        group.bench_function("aws-lc-rs", |b| {
            b.iter(|| {
                for index in 0..BATCH_SIZE {
                    let slot = &mut raw.slot_mut(index)[HEADROOM..HEADROOM + size];
                    let tag = aws
                        .seal_in_place_separate_tag(
                            aws_lc_rs::aead::Nonce::assume_unique_for_key([1; 12]),
                            aws_lc_rs::aead::Aad::from(&AAD),
                            slot,
                        )
                        .unwrap();
                    let _ = black_box(tag);
                }
            })
        });
        assert!(drops.iter().all(|&d| d == 0), "{drops:?}");
        group.finish();
    }
}

fn open(c: &mut Criterion) {
    let (alice, bob) = (ring(1), ring(2));
    let aws = aws_key();
    for size in SIZES {
        let mut group = c.benchmark_group(format!("batch_open/{size}"));
        group.throughput(Throughput::Elements(BATCH_SIZE as u64));
        let mut tx = WorkerKeys::new(Mode::Datagram);
        let mut rx = WorkerKeys::new(Mode::Datagram);
        let mut send_drops = [0; SendDrop::ALL.len()];
        let mut drops = DropCounters::default();
        let payload = vec![0x5a; size];
        // Untimed: 64 fresh packets sealed by alice, as they would arrive.
        let alice = &alice;
        let mut sealed = move || {
            let mut batch = Batch::new();
            for _ in 0..BATCH_SIZE {
                batch.push_plain(&payload, None);
            }
            seal_batch(
                &mut tx,
                alice,
                Millis(1),
                Mode::Datagram,
                &mut batch,
                &mut send_drops,
            );
            batch
        };
        group.bench_function("in_place", |b| {
            b.iter_batched_ref(
                || {
                    // The receive left each packet at the start of its slot.
                    let from = sealed();
                    let mut wire = Batch::new();
                    for i in 0..from.len() {
                        wire.push_wire(from.packet(i), None);
                    }
                    wire
                },
                |wire| black_box(open_batch(&mut rx, &bob, Millis(1), wire, &mut drops)),
                BatchSize::LargeInput,
            )
        });
        let mut wire = Batch::new();
        group.bench_function("copied", |b| {
            b.iter_batched_ref(
                &mut sealed,
                |from| {
                    wire.clear();
                    for i in 0..from.len() {
                        wire.push_wire(from.packet(i), None);
                    }
                    black_box(open_batch(&mut rx, &bob, Millis(1), &mut wire, &mut drops))
                },
                BatchSize::LargeInput,
            )
        });
        group.bench_function("in_gro_buffer", |b| {
            b.iter_batched_ref(
                || GroBuffer::batch(&sealed()),
                |wire| black_box(open_batch(&mut rx, &bob, Millis(1), wire, &mut drops)),
                BatchSize::LargeInput,
            )
        });
        let mut template = vec![0x5a; size];
        let tag = aws
            .seal_in_place_separate_tag(
                aws_lc_rs::aead::Nonce::assume_unique_for_key([1; 12]),
                aws_lc_rs::aead::Aad::from(&AAD),
                &mut template,
            )
            .unwrap();
        template.extend_from_slice(tag.as_ref());
        group.bench_function("aws-lc-rs", |b| {
            b.iter_batched_ref(
                || {
                    let mut batch = Batch::new();
                    for _ in 0..BATCH_SIZE {
                        batch.push_wire(&template, None);
                    }
                    batch
                },
                |batch| {
                    for index in 0..BATCH_SIZE {
                        let slot = &mut batch.slot_mut(index)[..size + TAG];
                        black_box(
                            aws.open_in_place(
                                aws_lc_rs::aead::Nonce::assume_unique_for_key([1; 12]),
                                aws_lc_rs::aead::Aad::from(&AAD),
                                slot,
                            )
                            .unwrap()
                            .len(),
                        );
                    }
                },
                BatchSize::LargeInput,
            )
        });
        assert_eq!(drops.total(), 0, "every packet opened");
        group.finish();
    }
}

criterion_group! {
    name = benches;
    // `--profile-time N` writes a flame graph per benchmark (benches/common/mod.rs).
    config = Criterion::default().with_profiler(common::FlamegraphProfiler::new());
    targets = seal, open
}
criterion_main!(benches);

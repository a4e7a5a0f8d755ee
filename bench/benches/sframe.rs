//! Whole-codec seal and open against the raw AEAD they wrap.
//!
//! Each group holds one payload size and three functions: `veil` (the Veil datagram framing:
//! mkSeqNum, SFrame header, AES-256-GCM under suite 0x0005, plus on open the replay window), and
//! the raw AES-256-GCM of `aws-lc-rs` and `ring` with a pre-built key and an AAD of the same
//! length. The ratio raw/veil is the fraction of raw speed the codec keeps. The seal groups also
//! time `keymaterial`, the SFrame key's own seal without framing or KID lookup, which separates
//! what the AEAD wrapper costs from what the packet framing costs. Seal buffers are 64-byte
//! aligned at the payload for every function alike.
#![forbid(unsafe_code)]
// Benchmark setup unwraps: a failure there is a broken benchmark, not a measurement.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dataplane::packet::{self, HEADROOM, Mode, Protected};
use dataplane::replay::ReplayWindows;
use dataplane::sframe::{CipherSuite, Context};

const SIZES: [usize; 4] = [64, 200, 1200, 9000];
const KID: u64 = 0x0100;
const MK_SEQ: u32 = 1;
const TAG: usize = 16;
/// mkSeqNum (4) + an SFrame header with a 1-byte KID and a 1-byte CTR... the Veil AAD length for
/// a typical packet; the raw baselines authenticate the same number of bytes.
const AAD_LEN: usize = 4 + 3;

/// A buffer whose byte at `offset` is 64-byte aligned, so every function sees its payload at the
/// same cache-line alignment and the comparison measures code, not where malloc put the data.
fn aligned(len: usize, offset: usize) -> (Vec<u8>, usize) {
    let buf = vec![0u8; len + 64];
    let start = (64 - (buf.as_ptr() as usize + offset) % 64) % 64;
    (buf, start)
}

fn veil_contexts() -> (Context, Context) {
    let suite = CipherSuite::Aes256GcmSha512_128;
    let mut tx = Context::new(suite);
    tx.add_send_key(KID, &[7; 32]).unwrap();
    let mut rx = Context::new(suite);
    rx.add_recv_key(KID, &[7; 32]).unwrap();
    (tx, rx)
}

fn aws_key() -> aws_lc_rs::aead::LessSafeKey {
    use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32]).unwrap())
}

fn ring_key() -> ring::aead::LessSafeKey {
    use ring::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32]).unwrap())
}

fn seal(c: &mut Criterion) {
    for size in SIZES {
        let mut group = c.benchmark_group(format!("seal/{size}"));
        group.throughput(Throughput::Bytes(size as u64));

        let (mut tx, _) = veil_contexts();
        let mut buf = vec![0u8; HEADROOM + size + TAG];
        group.bench_function("veil", |b| {
            b.iter(|| {
                let range = packet::seal(
                    Mode::Datagram,
                    &mut tx,
                    KID,
                    MK_SEQ,
                    &mut buf,
                    HEADROOM,
                    size,
                )
                .unwrap();
                black_box(range)
            })
        });

        let material =
            dataplane::sframe::KeyMaterial::derive(CipherSuite::Aes256GcmSha512_128, KID, &[7; 32])
                .unwrap();
        let aad = [0u8; AAD_LEN];
        let (mut pbacking, pat) = aligned(size + TAG, 0);
        let pbuf = &mut pbacking[pat..pat + size + TAG];
        let mut ctr = 0u64;
        group.bench_function("keymaterial", |b| {
            b.iter(|| {
                ctr += 1;
                material.seal_in_place(ctr, &aad, pbuf).unwrap();
                black_box(&pbuf);
            })
        });
        let key = aws_key();
        let (mut raw_backing, raw_at) = aligned(size, 0);
        let payload = &mut raw_backing[raw_at..raw_at + size];
        group.bench_function("aws-lc-rs", |b| {
            b.iter(|| {
                let nonce = aws_lc_rs::aead::Nonce::assume_unique_for_key([1; 12]);
                let tag = key
                    .seal_in_place_separate_tag(nonce, aws_lc_rs::aead::Aad::from(&aad), payload)
                    .unwrap();
                black_box(tag)
            })
        });

        let key = ring_key();
        group.bench_function("ring", |b| {
            b.iter(|| {
                let nonce = ring::aead::Nonce::assume_unique_for_key([1; 12]);
                let tag = key
                    .seal_in_place_separate_tag(nonce, ring::aead::Aad::from(&aad), payload)
                    .unwrap();
                black_box(tag)
            })
        });
        group.finish();
    }
}

fn open(c: &mut Criterion) {
    for size in SIZES {
        let mut group = c.benchmark_group(format!("open/{size}"));
        group.throughput(Throughput::Bytes(size as u64));

        // Every iteration opens a packet the receiver has not seen, so the replay check passes
        // and is recorded as it would be for live traffic. Sealing it is setup, not timed.
        let (mut tx, rx) = veil_contexts();
        let mut windows = ReplayWindows::new();
        group.bench_function("veil", |b| {
            b.iter_batched_ref(
                || {
                    let mut buf = vec![0u8; HEADROOM + size + TAG];
                    let range = packet::seal(
                        Mode::Datagram,
                        &mut tx,
                        KID,
                        MK_SEQ,
                        &mut buf,
                        HEADROOM,
                        size,
                    )
                    .unwrap();
                    buf.drain(..range.start);
                    buf
                },
                |wire| {
                    let parsed = Protected::parse(Mode::Datagram, wire).unwrap();
                    black_box(packet::open(&rx, &mut windows, &parsed, wire).unwrap())
                },
                BatchSize::SmallInput,
            )
        });

        let key = aws_key();
        let aad = [0u8; AAD_LEN];
        let mut sealed = vec![0u8; size];
        let tag = key
            .seal_in_place_separate_tag(
                aws_lc_rs::aead::Nonce::assume_unique_for_key([1; 12]),
                aws_lc_rs::aead::Aad::from(&aad),
                &mut sealed,
            )
            .unwrap();
        sealed.extend_from_slice(tag.as_ref());
        group.bench_function("aws-lc-rs", |b| {
            b.iter_batched_ref(
                || sealed.clone(),
                |wire| {
                    let nonce = aws_lc_rs::aead::Nonce::assume_unique_for_key([1; 12]);
                    black_box(
                        key.open_in_place(nonce, aws_lc_rs::aead::Aad::from(&aad), wire)
                            .unwrap()
                            .len(),
                    )
                },
                BatchSize::SmallInput,
            )
        });

        let key = ring_key();
        group.bench_function("ring", |b| {
            b.iter_batched_ref(
                || sealed.clone(),
                |wire| {
                    let nonce = ring::aead::Nonce::assume_unique_for_key([1; 12]);
                    black_box(
                        key.open_in_place(nonce, ring::aead::Aad::from(&aad), wire)
                            .unwrap()
                            .len(),
                    )
                },
                BatchSize::SmallInput,
            )
        });
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

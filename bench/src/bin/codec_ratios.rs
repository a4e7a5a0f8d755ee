//! Interleaved A/B measurement of the codec against raw AES-256-GCM.
//!
//! Criterion measures one function after another; on a shared two-core machine the load can
//! change between them and move a ratio by several percent. This harness instead runs short
//! bursts of every variant in turn, round after round, so each variant sees the same load, and
//! compares the medians of their per-burst times.
//!
//! Run: `cargo run --release -p veil-bench --bin codec_ratios [-- --check] [--seal|--open]
//! [--size=N ...]` (`--check` exits 1 if a 1200-byte target is missed; `--seal`/`--open` and
//! `--size=` narrow the run, for profiling). Pin it with `taskset -c 1` for less noise.
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::time::Instant;

use dataplane::packet::{self, HEADROOM, Mode, Protected};
use dataplane::replay::ReplayWindows;
use dataplane::sframe::{CipherSuite, Context, KeyMaterial};
use veil_bench::interleave::{Aligned, burst_for, median};

const SIZES: [usize; 4] = [64, 200, 1200, 9000];
const ROUNDS: usize = 301;
const KID: u64 = 0x0100;
const TAG: usize = 16;
const AAD: [u8; 7] = [0; 7];
/// Seal target and open target at 1200 bytes (docs/BENCHMARKS.md, DESIGN.md).
const SEAL_TARGET: f64 = 0.90;
const OPEN_TARGET: f64 = 0.85;

fn contexts() -> Result<(Context, Context), Box<dyn std::error::Error>> {
    let suite = CipherSuite::Aes256GcmSha512_128;
    let mut tx = Context::new(suite);
    tx.add_send_key(KID, &[7; 32])?;
    let mut rx = Context::new(suite);
    rx.add_recv_key(KID, &[7; 32])?;
    Ok((tx, rx))
}

/// Median ns per seal for Veil, aws-lc-rs and ring.
fn seal(size: usize) -> Result<[f64; 3], Box<dyn std::error::Error>> {
    let (mut tx, _) = contexts()?;
    let aws = aws_lc_rs::aead::LessSafeKey::new(aws_lc_rs::aead::UnboundKey::new(
        &aws_lc_rs::aead::AES_256_GCM,
        &[7; 32],
    )?);
    let ring = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &[7; 32]).map_err(|_| "ring key")?,
    );
    let mut veil_buf = Aligned::new(HEADROOM + size + TAG, HEADROOM);
    let mut raw_buf = Aligned::new(size, 0);
    let burst = burst_for(size);
    let mut samples: [Vec<f64>; 3] = Default::default();
    for round in 0..ROUNDS {
        for i in 0..3 {
            // Rotate the order so no variant always runs first in a round.
            let variant = (i + round) % 3;
            let started = Instant::now();
            match variant {
                0 => seal_veil(&mut tx, veil_buf.bytes(), size, burst)?,
                1 => seal_aws(&aws, raw_buf.bytes(), burst)?,
                _ => seal_ring(&ring, raw_buf.bytes(), burst).map_err(|_| "ring seal")?,
            }
            samples[variant].push(started.elapsed().as_nanos() as f64 / burst as f64);
        }
    }
    Ok(samples.map(|mut s| median(&mut s)))
}

/// Median ns per open: Veil (with the KID lookup and the replay check), aws-lc-rs, and the
/// SFrame key alone. Every Veil open takes a packet the receiver has not seen; preparing packets
/// is outside the timed bursts.
fn open(size: usize) -> Result<[f64; 3], Box<dyn std::error::Error>> {
    let (mut tx, rx) = contexts()?;
    let mut windows = ReplayWindows::new();
    let aws = aws_lc_rs::aead::LessSafeKey::new(aws_lc_rs::aead::UnboundKey::new(
        &aws_lc_rs::aead::AES_256_GCM,
        &[7; 32],
    )?);
    let burst = burst_for(size).min(256);
    let mut veil_bufs: Vec<Aligned> = (0..burst)
        .map(|_| Aligned::new(HEADROOM + size + TAG, HEADROOM))
        .collect();
    let mut key_bufs: Vec<Aligned> = (0..burst)
        .map(|_| Aligned::new(HEADROOM + size + TAG, HEADROOM))
        .collect();
    let mut raw_bufs: Vec<Aligned> = (0..burst).map(|_| Aligned::new(size + TAG, 0)).collect();
    let mut sealed_raw = vec![0u8; size];
    let tag = aws.seal_in_place_separate_tag(
        aws_lc_rs::aead::Nonce::assume_unique_for_key([1; 12]),
        aws_lc_rs::aead::Aad::from(&AAD),
        &mut sealed_raw,
    )?;
    sealed_raw.extend_from_slice(tag.as_ref());
    let material = KeyMaterial::derive(CipherSuite::Aes256GcmSha512_128, KID, &[7; 32])?;
    let mut samples: [Vec<f64>; 3] = Default::default();
    let mut ranges = vec![0..0; burst];
    for round in 0..ROUNDS {
        for i in 0..3 {
            let variant = (i + round) % 3;
            // Untimed: fresh packets for this variant, written just before its burst so every
            // variant opens equally warm data.
            match variant {
                0 | 2 => {
                    let bufs = if variant == 0 {
                        &mut veil_bufs
                    } else {
                        &mut key_bufs
                    };
                    for (buf, range) in bufs.iter_mut().zip(ranges.iter_mut()) {
                        *range = packet::seal(
                            Mode::Datagram,
                            &mut tx,
                            KID,
                            1,
                            buf.bytes(),
                            HEADROOM,
                            size,
                        )?;
                    }
                }
                _ => {
                    for buf in &mut raw_bufs {
                        buf.bytes().copy_from_slice(&sealed_raw);
                    }
                }
            }
            let started = Instant::now();
            match variant {
                0 => open_veil(&rx, &mut windows, &mut veil_bufs, &ranges)?,
                // The SFrame key alone on the same kind of packets: no KID lookup, no replay
                // window. Shows what the framing and the window cost.
                2 => open_key_alone(&material, &mut key_bufs, &ranges)?,
                _ => open_raw(&aws, &mut raw_bufs)?,
            }
            samples[variant].push(started.elapsed().as_nanos() as f64 / burst as f64);
        }
    }
    Ok(samples.map(|mut s| median(&mut s)))
}

// Each timed loop is its own function, kept out of line: the compiler then lays out and aligns
// every variant's loop on its own, instead of as arms of one large function where a change in
// one arm shifts the code of the others (that alone moved the open ratio by 0.1 in session 1).

#[inline(never)]
fn seal_veil(
    tx: &mut Context,
    buf: &mut [u8],
    size: usize,
    burst: usize,
) -> Result<(), packet::Error> {
    for _ in 0..burst {
        black_box(packet::seal(
            Mode::Datagram,
            tx,
            KID,
            1,
            buf,
            HEADROOM,
            size,
        )?);
    }
    Ok(())
}

#[inline(never)]
fn seal_aws(
    aws: &aws_lc_rs::aead::LessSafeKey,
    payload: &mut [u8],
    burst: usize,
) -> Result<(), aws_lc_rs::error::Unspecified> {
    for _ in 0..burst {
        let nonce = aws_lc_rs::aead::Nonce::assume_unique_for_key([1; 12]);
        let _ = black_box(aws.seal_in_place_separate_tag(
            nonce,
            aws_lc_rs::aead::Aad::from(&AAD),
            payload,
        )?);
    }
    Ok(())
}

#[inline(never)]
fn seal_ring(
    ring: &ring::aead::LessSafeKey,
    payload: &mut [u8],
    burst: usize,
) -> Result<(), ring::error::Unspecified> {
    for _ in 0..burst {
        let nonce = ring::aead::Nonce::assume_unique_for_key([1; 12]);
        let _ = black_box(ring.seal_in_place_separate_tag(
            nonce,
            ring::aead::Aad::from(&AAD),
            payload,
        )?);
    }
    Ok(())
}

#[inline(never)]
fn open_veil(
    rx: &Context,
    windows: &mut ReplayWindows,
    bufs: &mut [Aligned],
    ranges: &[std::ops::Range<usize>],
) -> Result<(), packet::Error> {
    for (buf, range) in bufs.iter_mut().zip(ranges) {
        let wire = &mut buf.bytes()[range.clone()];
        let parsed = Protected::parse(Mode::Datagram, wire)?;
        black_box(packet::open(rx, windows, &parsed, wire)?);
    }
    Ok(())
}

#[inline(never)]
fn open_key_alone(
    material: &KeyMaterial,
    bufs: &mut [Aligned],
    ranges: &[std::ops::Range<usize>],
) -> Result<(), packet::Error> {
    for (buf, range) in bufs.iter_mut().zip(ranges) {
        let wire = &mut buf.bytes()[range.clone()];
        let parsed = Protected::parse(Mode::Datagram, wire)?;
        let (aad, body) = wire.split_at_mut(parsed.ciphertext_start);
        black_box(material.open_in_place(parsed.header.ctr, aad, body)?);
    }
    Ok(())
}

#[inline(never)]
fn open_raw(
    aws: &aws_lc_rs::aead::LessSafeKey,
    bufs: &mut [Aligned],
) -> Result<(), aws_lc_rs::error::Unspecified> {
    for buf in bufs {
        let nonce = aws_lc_rs::aead::Nonce::assume_unique_for_key([1; 12]);
        black_box(
            aws.open_in_place(nonce, aws_lc_rs::aead::Aad::from(&AAD), buf.bytes())?
                .len(),
        );
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.iter().any(|a| a == "--check");
    let only = |op: &str| {
        !args.iter().any(|a| a == "--seal" || a == "--open") || args.iter().any(|a| a == op)
    };
    let sizes: Vec<usize> = args
        .iter()
        .filter_map(|a| a.strip_prefix("--size="))
        .filter_map(|v| v.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        SIZES.to_vec()
    } else {
        sizes
    };
    println!("| op | bytes | veil ns | aws-lc-rs ns | ring ns | veil / aws-lc-rs speed | target |");
    println!("|---|---|---|---|---|---|---|");
    let mut missed = false;
    for &size in sizes.iter().filter(|_| only("--seal")) {
        let [veil, aws, ring] = seal(size)?;
        let ratio = aws / veil;
        let verdict = verdict(size, ratio, SEAL_TARGET, &mut missed);
        println!("| seal | {size} | {veil:.0} | {aws:.0} | {ring:.0} | {ratio:.2}x | {verdict} |");
    }
    for &size in sizes.iter().filter(|_| only("--open")) {
        let [veil, aws, key_only] = open(size)?;
        let ratio = aws / veil;
        let verdict = verdict(size, ratio, OPEN_TARGET, &mut missed);
        println!(
            "| open + replay | {size} | {veil:.0} | {aws:.0} | - (key alone: {key_only:.0}) | {ratio:.2}x | {verdict} |"
        );
    }
    if check && missed {
        std::process::exit(1);
    }
    Ok(())
}

fn verdict(size: usize, ratio: f64, target: f64, missed: &mut bool) -> String {
    if size != 1200 {
        return String::new();
    }
    let met = ratio >= target;
    *missed |= !met;
    format!(">= {target:.2}: {}", if met { "met" } else { "MISSED" })
}

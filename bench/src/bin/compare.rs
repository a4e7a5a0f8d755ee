//! What users would pick instead, in one run: Veil's packet seal and open in RTP mode beside
//! libsrtp's `srtp_protect` / `srtp_unprotect` (AES-256-GCM, RFC 7714, Debian's libsrtp2), the
//! `sframe` crate's encrypt and decrypt (its default ring backend, suite AES_256_GCM_SHA512_128),
//! and raw aws-lc-rs AES-256-GCM over the same payload with the RTP header as associated data.
//!
//! Every variant protects the same RTP packet (a 12-byte header and a payload of the row's size)
//! with AES-256 and a 16-byte tag, and every open includes that library's replay check: Veil's
//! replay window, libsrtp's 1,024-packet window, the `sframe` crate's `ReplayAttackProtection`
//! (raw aws-lc-rs has none). Each seal sends a fresh sequence number or counter; each open takes a
//! packet its receiver has not seen, prepared outside the timed burst. Bursts of every variant
//! run in turn, round after round (`veil_bench::interleave`), on the calling thread: pin it with
//! `taskset -c 1` for one core.
//!
//! Run: `cargo run --release -p veil-bench --bin compare [-- --check] [--size=N ...]`. `--check`
//! exits 1 if a 1200-byte target (issue 18: Veil >= 5x libsrtp, >= 2x the `sframe` crate) is
//! missed. Without libsrtp2 at build time (`apt install libsrtp2-dev`) its column says so.
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::time::Instant;

use dataplane::packet::{self, HEADROOM, Mode, Protected};
use dataplane::replay::ReplayWindows;
use dataplane::sframe::{CipherSuite, Context};
use sframe::frame::validation::{ReplayAttackProtection, Tolerance};
use sframe::frame::{EncryptedFrameView, MediaFrameView, MonotonicCounter};
use sframe::key::{DecryptionKey, EncryptionKey};
use veil_bench::interleave::{Aligned, burst_for, median};
use veil_bench_libsrtp as srtp;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const SIZES: [usize; 2] = [200, 1200];
const ROUNDS: usize = 201;
const KID: u64 = 0x0100;
const TAG: usize = 16;
const RTP_LEN: usize = 12;
/// Targets at 1200 bytes: Veil's speed over libsrtp's and over the `sframe` crate's.
const OVER_LIBSRTP: f64 = 5.0;
const OVER_SFRAME: f64 = 2.0;

/// An RTP header (version 2, payload type 96, SSRC 0x11223344) with sequence number `seq`.
fn rtp_header(seq: u16) -> [u8; RTP_LEN] {
    let [hi, lo] = seq.to_be_bytes();
    [0x80, 96, hi, lo, 0, 0, 0, 1, 0x11, 0x22, 0x33, 0x44]
}

/// Medians in ns per packet, `None` where the library is missing.
struct Row {
    veil: f64,
    libsrtp: Option<f64>,
    sframe: f64,
    aws: f64,
}

/// One sender per library, each keyed with the same 32 bytes (libsrtp with a salt after them).
struct Senders {
    veil: Context,
    libsrtp: Option<srtp::Session>,
    sframe: EncryptionKey,
    sframe_counter: MonotonicCounter,
    aws: aws_lc_rs::aead::LessSafeKey,
}

impl Senders {
    fn new() -> Result<Self> {
        let mut veil = Context::new(CipherSuite::Aes256GcmSha512_128);
        veil.add_send_key(KID, &[7; 32])?;
        Ok(Self {
            veil,
            libsrtp: libsrtp_session(srtp::Direction::Outbound)?,
            sframe: EncryptionKey::derive_from(sframe::CipherSuite::AesGcm256Sha512, KID, [7; 32])?,
            sframe_counter: MonotonicCounter::new(u64::MAX),
            aws: aws_key()?,
        })
    }
}

fn aws_key() -> Result<aws_lc_rs::aead::LessSafeKey> {
    let key = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &[7; 32])?;
    Ok(aws_lc_rs::aead::LessSafeKey::new(key))
}

/// A libsrtp session, or `None` (said once) where the crate was built without libsrtp2.
fn libsrtp_session(direction: srtp::Direction) -> Result<Option<srtp::Session>> {
    match srtp::Session::new(&[7; srtp::KEY_LEN], direction) {
        Ok(s) => Ok(Some(s)),
        Err(srtp::Error::Unavailable) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Median ns per seal of a `size`-byte RTP payload.
fn seal(size: usize) -> Result<Row> {
    let mut tx = Senders::new()?;
    let burst = burst_for(size);
    let payload = vec![0x5a; size];
    let mut veil_buf = Aligned::new(HEADROOM + RTP_LEN + size + TAG, HEADROOM);
    let mut srtp_buf = Aligned::new(RTP_LEN + size + srtp::TRAILER_ROOM, 0);
    let mut sframe_out = Vec::with_capacity(RTP_LEN + size + 64);
    let mut raw_buf = Aligned::new(size, 0);
    let mut seq = 0u16;
    let mut samples: [Vec<f64>; 4] = Default::default();
    for round in 0..ROUNDS {
        for i in 0..4 {
            // Rotate the order so no variant always runs first in a round.
            let variant = (i + round) % 4;
            if variant == 1 && tx.libsrtp.is_none() {
                continue;
            }
            let started = Instant::now();
            match variant {
                0 => seal_veil(&mut tx.veil, veil_buf.bytes(), size, burst)?,
                1 => {
                    if let Some(s) = tx.libsrtp.as_mut() {
                        seq = seal_libsrtp(s, srtp_buf.bytes(), size, burst, seq)?;
                    }
                }
                2 => seal_sframe(
                    &tx.sframe,
                    &mut tx.sframe_counter,
                    &payload,
                    &mut sframe_out,
                    burst,
                )?,
                _ => seal_aws(&tx.aws, raw_buf.bytes(), burst)?,
            }
            samples[variant].push(started.elapsed().as_nanos() as f64 / burst as f64);
        }
    }
    Ok(row(samples))
}

fn row(mut samples: [Vec<f64>; 4]) -> Row {
    let libsrtp = (!samples[1].is_empty()).then(|| median(&mut samples[1]));
    Row {
        veil: median(&mut samples[0]),
        libsrtp,
        sframe: median(&mut samples[2]),
        aws: median(&mut samples[3]),
    }
}

// Each timed loop is its own function, kept out of line, so that each is laid out on its own
// (see codec_ratios).

/// Veil in RTP mode: the header is written where the packet arrives (the seal moves it forward
/// to make room for the mkSeqNum and SFrame header), then sealed in place.
#[inline(never)]
fn seal_veil(tx: &mut Context, buf: &mut [u8], size: usize, burst: usize) -> Result<()> {
    for n in 0..burst {
        buf[HEADROOM..HEADROOM + RTP_LEN].copy_from_slice(&rtp_header(n as u16));
        black_box(packet::seal(
            Mode::Rtp,
            tx,
            KID,
            1,
            buf,
            HEADROOM,
            RTP_LEN + size,
        )?);
    }
    Ok(())
}

/// libsrtp: the header with the next sequence number (its sender refuses to protect one twice),
/// then `srtp_protect` in place. Returns the next sequence number.
#[inline(never)]
fn seal_libsrtp(
    s: &mut srtp::Session,
    buf: &mut [u8],
    size: usize,
    burst: usize,
    mut seq: u16,
) -> Result<u16> {
    for _ in 0..burst {
        seq = seq.wrapping_add(1);
        buf[..RTP_LEN].copy_from_slice(&rtp_header(seq));
        black_box(s.protect(buf, RTP_LEN + size)?);
    }
    Ok(seq)
}

/// The `sframe` crate: its frame API with the RTP header as metadata, into a reused buffer.
#[inline(never)]
fn seal_sframe(
    key: &EncryptionKey,
    counter: &mut MonotonicCounter,
    payload: &[u8],
    out: &mut Vec<u8>,
    burst: usize,
) -> Result<()> {
    for n in 0..burst {
        let header = rtp_header(n as u16);
        let frame = MediaFrameView::try_with_meta_data(counter, payload, &header)?;
        black_box(frame.encrypt_into(key, out)?);
    }
    Ok(())
}

#[inline(never)]
fn seal_aws(aws: &aws_lc_rs::aead::LessSafeKey, payload: &mut [u8], burst: usize) -> Result<()> {
    for n in 0..burst {
        let nonce = aws_lc_rs::aead::Nonce::assume_unique_for_key([1; 12]);
        let header = rtp_header(n as u16);
        let tag =
            aws.seal_in_place_separate_tag(nonce, aws_lc_rs::aead::Aad::from(&header), payload)?;
        let _ = black_box(tag);
    }
    Ok(())
}

/// Median ns per open (with each library's replay check) of a `size`-byte RTP payload.
fn open(size: usize) -> Result<Row> {
    let mut tx = Senders::new()?;
    let mut veil_rx = Context::new(CipherSuite::Aes256GcmSha512_128);
    veil_rx.add_recv_key(KID, &[7; 32])?;
    let mut windows = ReplayWindows::new();
    let mut srtp_rx = libsrtp_session(srtp::Direction::Inbound)?;
    let sframe_rx = DecryptionKey::derive_from(sframe::CipherSuite::AesGcm256Sha512, KID, [7; 32])?;
    let mut sframe_replay = ReplayAttackProtection::new(KID, Tolerance::new(1024));
    let aws = aws_key()?;
    let burst = burst_for(size).min(256);
    let payload = vec![0x5a; size];
    let mut veil_bufs = vec![Aligned::new(HEADROOM + RTP_LEN + size + TAG, HEADROOM); burst];
    let mut veil_ranges = vec![0..0; burst];
    let mut srtp_bufs = vec![Aligned::new(RTP_LEN + size + srtp::TRAILER_ROOM, 0); burst];
    let mut srtp_lens = vec![0; burst];
    let mut sframe_bufs: Vec<Vec<u8>> = vec![Vec::with_capacity(RTP_LEN + size + 64); burst];
    let mut sframe_out = Vec::with_capacity(RTP_LEN + size + 64);
    let mut raw_bufs = vec![Aligned::new(size + TAG, 0); burst];
    let mut sealed_raw = payload.clone();
    let tag = tx.aws.seal_in_place_separate_tag(
        aws_lc_rs::aead::Nonce::assume_unique_for_key([1; 12]),
        aws_lc_rs::aead::Aad::from(&rtp_header(0)),
        &mut sealed_raw,
    )?;
    sealed_raw.extend_from_slice(tag.as_ref());
    let mut seq = 0u16;
    let mut samples: [Vec<f64>; 4] = Default::default();
    for round in 0..ROUNDS {
        for i in 0..4 {
            let variant = (i + round) % 4;
            if variant == 1 && srtp_rx.is_none() {
                continue;
            }
            // Untimed: fresh packets for this variant, written just before its burst so every
            // variant opens equally warm data.
            match variant {
                0 => {
                    for (buf, range) in veil_bufs.iter_mut().zip(veil_ranges.iter_mut()) {
                        let b = buf.bytes();
                        b[HEADROOM..HEADROOM + RTP_LEN].copy_from_slice(&rtp_header(0));
                        b[HEADROOM + RTP_LEN..HEADROOM + RTP_LEN + size].copy_from_slice(&payload);
                        *range = packet::seal(
                            Mode::Rtp,
                            &mut tx.veil,
                            KID,
                            1,
                            b,
                            HEADROOM,
                            RTP_LEN + size,
                        )?;
                    }
                }
                1 => {
                    if let Some(s) = tx.libsrtp.as_mut() {
                        for (buf, len) in srtp_bufs.iter_mut().zip(srtp_lens.iter_mut()) {
                            seq = seq.wrapping_add(1);
                            let b = buf.bytes();
                            b[..RTP_LEN].copy_from_slice(&rtp_header(seq));
                            b[RTP_LEN..RTP_LEN + size].copy_from_slice(&payload);
                            *len = s.protect(b, RTP_LEN + size)?;
                        }
                    }
                }
                2 => {
                    let header = rtp_header(0);
                    for out in &mut sframe_bufs {
                        let frame = MediaFrameView::try_with_meta_data(
                            &mut tx.sframe_counter,
                            &payload,
                            &header,
                        )?;
                        frame.encrypt_into(&tx.sframe, out)?;
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
                0 => open_veil(&veil_rx, &mut windows, &mut veil_bufs, &veil_ranges)?,
                1 => {
                    if let Some(s) = srtp_rx.as_mut() {
                        open_libsrtp(s, &mut srtp_bufs, &srtp_lens)?;
                    }
                }
                2 => open_sframe(
                    &sframe_rx,
                    &mut sframe_replay,
                    &sframe_bufs,
                    &mut sframe_out,
                )?,
                _ => open_aws(&aws, &mut raw_bufs)?,
            }
            samples[variant].push(started.elapsed().as_nanos() as f64 / burst as f64);
        }
    }
    Ok(row(samples))
}

#[inline(never)]
fn open_veil(
    rx: &Context,
    windows: &mut ReplayWindows,
    bufs: &mut [Aligned],
    ranges: &[std::ops::Range<usize>],
) -> Result<()> {
    for (buf, range) in bufs.iter_mut().zip(ranges) {
        let wire = &mut buf.bytes()[range.clone()];
        let parsed = Protected::parse(Mode::Rtp, wire)?;
        black_box(packet::open(rx, windows, &parsed, wire)?);
    }
    Ok(())
}

#[inline(never)]
fn open_libsrtp(s: &mut srtp::Session, bufs: &mut [Aligned], lens: &[usize]) -> Result<()> {
    for (buf, &len) in bufs.iter_mut().zip(lens) {
        black_box(s.unprotect(buf.bytes(), len)?);
    }
    Ok(())
}

/// The `sframe` crate's output is `metadata || SFrame header || ciphertext || tag`; the
/// receiver splits the RTP header off as metadata and decrypts into a reused buffer.
#[inline(never)]
fn open_sframe(
    key: &DecryptionKey,
    replay: &mut ReplayAttackProtection,
    bufs: &[Vec<u8>],
    out: &mut Vec<u8>,
) -> Result<()> {
    for buf in bufs {
        let (meta, data) = buf.split_at(RTP_LEN);
        let frame = EncryptedFrameView::try_with_meta_data(data, meta)?;
        black_box(frame.validated_decrypt_into(key, out, replay)?);
    }
    Ok(())
}

#[inline(never)]
fn open_aws(aws: &aws_lc_rs::aead::LessSafeKey, bufs: &mut [Aligned]) -> Result<()> {
    for buf in bufs {
        let nonce = aws_lc_rs::aead::Nonce::assume_unique_for_key([1; 12]);
        let header = rtp_header(0);
        black_box(
            aws.open_in_place(nonce, aws_lc_rs::aead::Aad::from(&header), buf.bytes())?
                .len(),
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "compare: Veil's RTP packet seal and open against libsrtp, the sframe crate and raw \
             aws-lc-rs, ns per packet on the calling thread.\n\n\
             usage: compare [--check] [--size=N ...]\n  \
             --check     exit 1 if a 1200-byte target is missed (>= {OVER_LIBSRTP}x libsrtp, \
             >= {OVER_SFRAME}x the sframe crate)\n  \
             --size=N    RTP payload bytes (default 200 and 1200)\n\n\
             Pin it for one core: taskset -c 1 target/release/compare"
        );
        return Ok(());
    }
    if let Some(bad) = args
        .iter()
        .find(|a| *a != "--check" && !a.starts_with("--size="))
    {
        eprintln!("compare: unknown argument {bad:?} (see --help)");
        std::process::exit(2);
    }
    let check = args.iter().any(|a| a == "--check");
    let mut sizes = Vec::new();
    for a in args.iter().filter_map(|a| a.strip_prefix("--size=")) {
        match a.parse::<usize>() {
            Ok(n) if (1..=9000).contains(&n) => sizes.push(n),
            _ => {
                eprintln!("compare: --size wants 1 to 9000 payload bytes, got {a:?}");
                std::process::exit(2);
            }
        }
    }
    if sizes.is_empty() {
        sizes = SIZES.to_vec();
    }
    println!(
        "| op | payload B | veil ns | libsrtp ns | sframe crate ns | aws-lc-rs raw ns | veil / libsrtp speed | veil / sframe crate speed | target |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut missed = false;
    for &size in &sizes {
        print_row("seal", size, &seal(size)?, &mut missed);
    }
    for &size in &sizes {
        print_row("open + replay", size, &open(size)?, &mut missed);
    }
    if check && missed {
        std::process::exit(1);
    }
    Ok(())
}

fn print_row(op: &str, size: usize, r: &Row, missed: &mut bool) {
    let over_sframe = r.sframe / r.veil;
    let (libsrtp, over_libsrtp) = match r.libsrtp {
        Some(ns) => (format!("{ns:.0}"), format!("{:.2}x", ns / r.veil)),
        None => ("not built".to_owned(), "-".to_owned()),
    };
    let verdict = if size == 1200 {
        let met_srtp = r.libsrtp.is_some_and(|ns| ns / r.veil >= OVER_LIBSRTP);
        let met_sframe = over_sframe >= OVER_SFRAME;
        *missed |= !(met_srtp && met_sframe);
        format!(
            ">= {OVER_LIBSRTP}x libsrtp: {}; >= {OVER_SFRAME}x sframe: {}",
            if met_srtp { "met" } else { "MISSED" },
            if met_sframe { "met" } else { "MISSED" }
        )
    } else {
        String::new()
    };
    println!(
        "| {op} | {size} | {:.0} | {libsrtp} | {:.0} | {:.0} | {over_libsrtp} | {over_sframe:.2}x | {verdict} |",
        r.veil, r.sframe, r.aws
    );
}

//! Native seal and open speed of the code the browser runs (`veil_web::speed`), for the
//! wasm-to-native ratio: `cargo run --release -p veil-web --example speed` (aws-lc-rs, the
//! native default), and with `--features rust-crypto -- --rust-crypto` on the RustCrypto
//! provider the browser uses. Pin it with `taskset -c 1` for less noise. Prints one line per
//! size and operation: median ns per packet over rounds of bursts, and packets per second.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::panic)]

use std::time::Instant;

use veil_web::speed::Speed;

const BURST: u32 = 2_000;
const ROUNDS: usize = 31;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let provider = if std::env::args().any(|a| a == "--rust-crypto") {
        install_rust_crypto();
        "RustCrypto"
    } else {
        "aws-lc-rs"
    };
    println!("native (veil_web::speed, {provider}), median of {ROUNDS} bursts of {BURST}");
    for size in [200usize, 1200] {
        let mut speed = Speed::new(size).unwrap();
        speed.seal(BURST).unwrap(); // warm
        let seal = median(
            (0..ROUNDS)
                .map(|_| {
                    let t = Instant::now();
                    speed.seal(BURST).unwrap();
                    t.elapsed().as_nanos() as f64 / f64::from(BURST)
                })
                .collect(),
        );
        let open = median(
            (0..ROUNDS)
                .map(|_| {
                    speed.prepare_open(BURST).unwrap();
                    let t = Instant::now();
                    speed.open().unwrap();
                    t.elapsed().as_nanos() as f64 / f64::from(BURST)
                })
                .collect(),
        );
        for (op, ns) in [("seal", seal), ("open", open)] {
            println!(
                "{op} {size} B: {ns:.0} ns/packet, {:.0} packets/s",
                1e9 / ns
            );
        }
    }
}

#[cfg(feature = "rust-crypto")]
fn install_rust_crypto() {
    keyctl::provider::rust_crypto::PROVIDER
        .install_default()
        .unwrap();
}

#[cfg(not(feature = "rust-crypto"))]
fn install_rust_crypto() {
    panic!("--rust-crypto needs --features rust-crypto");
}

//! Hybrid signatures, the primitive (issue 16 part 2): Ed25519 against Ed25519 + ML-DSA-65
//! (keyctl::crypto::hybrid_sig), signing, verifying and loading a key from its seeds, under
//! the default provider (aws-lc-rs). The message is a heartbeat-sized 200 bytes; both schemes
//! sign `SHA256(context) || SHA256(msg)`, so its length hardly matters.
//!
//! Not yet on the wire: this is the cost per signature a hybrid binding, list link or
//! heartbeat would add, not a measured meeting.
//!
//! Run: `cargo bench -p veil-bench --bench hybrid_sig`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]
#![forbid(unsafe_code)]

mod common;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keyctl::crypto::hybrid_sig::HybridSigningKey;
use keyctl::crypto::{self, CTX_SIG_LPL, SigningKey};
use keyctl::rng::OsRng;

const MSG: [u8; 200] = [0x5a; 200];

fn sign_and_verify(c: &mut Criterion) {
    let mut rng = OsRng::new();
    let hybrid = HybridSigningKey::generate(&mut rng).unwrap();
    let classical = hybrid.ed25519();
    let (ed_seed, pq_seed) = (*classical.seed(), *hybrid.ml_dsa_seed());
    let ivk = classical.verifying_key();
    let vk = hybrid.verifying_key().clone();
    let ed_sig = classical.sign(CTX_SIG_LPL, &MSG);
    let sig = hybrid.sign(CTX_SIG_LPL, &MSG, &mut rng).unwrap();

    let mut group = c.benchmark_group("hybrid_sig");
    group.bench_function("sign/ed25519", |b| {
        b.iter(|| black_box(classical.sign(CTX_SIG_LPL, black_box(&MSG))));
    });
    group.bench_function("sign/ed25519+ml-dsa-65", |b| {
        b.iter(|| black_box(hybrid.sign(CTX_SIG_LPL, black_box(&MSG), &mut rng).unwrap()));
    });
    group.bench_function("verify/ed25519", |b| {
        b.iter(|| assert!(crypto::verify(&ivk, &ed_sig, CTX_SIG_LPL, black_box(&MSG))));
    });
    group.bench_function("verify/ed25519+ml-dsa-65", |b| {
        b.iter(|| vk.verify(&sig, CTX_SIG_LPL, black_box(&MSG)).unwrap());
    });
    group.bench_function("key from seed/ed25519", |b| {
        b.iter(|| black_box(SigningKey::from_seed(black_box(&ed_seed)).unwrap()));
    });
    group.bench_function("key from seeds/ed25519+ml-dsa-65", |b| {
        b.iter(|| black_box(HybridSigningKey::from_seeds(&ed_seed, black_box(&pq_seed)).unwrap()));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // `--profile-time N` writes a flame graph per benchmark (benches/common/mod.rs).
    config = Criterion::default().with_profiler(common::FlamegraphProfiler::new());
    targets = sign_and_verify
}
criterion_main!(benches);

//! Leader rekey of a 1000-participant meeting (DESIGN.md target: < 100 ms on one core).
//!
//! One iteration is one periodic rotation (whitepaper 3.7.6): a fresh MK, boxed for all
//! 999 other participants, plus the certifying heartbeat: classically (`pq = off`) with the
//! pairwise keys cached at admission, in the v4.6 hybrid box (`pq = required`), which
//! encapsulates anew for every member, and with hybrid identities as well (keyctl revision 4:
//! every signature Ed25519 + ML-DSA-65, as sidecars run by default). Setup (admitting the
//! participants) is not measured.
//!
//! Run: `cargo bench -p veil-bench --bench keyctl_rekey`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]
#![forbid(unsafe_code)]

mod common;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keyctl::crypto::hybrid_sig::HybridSigningKey;
use keyctl::crypto::{self, BoxKeyPair, SigningKey};
use keyctl::meeting::{Config, MAX_PENDING, Millis, Session, Timings};
use keyctl::rng::OsRng;
use keyctl::wire::{Field, Id, MeetingRef, Message, ParticipantId, PqPolicy};

const PARTICIPANTS: usize = 1000;

fn config(
    meeting: &MeetingRef,
    me: &ParticipantId,
    leader: &ParticipantId,
    pq: PqPolicy,
) -> Config {
    Config {
        meeting: meeting.clone(),
        me: me.clone(),
        display_name: Id::new(Field::DisplayName, me.user.as_bytes()).unwrap(),
        leader: leader.clone(),
        invite: None,
        host_secret: None,
        timings: Timings::default(),
        pq,
    }
}

/// A session with a fresh identity: hybrid (Ed25519 + ML-DSA-65) or Ed25519 alone.
fn session(cfg: Config, hybrid: bool, now: Millis, rng: &mut OsRng) -> Session {
    if hybrid {
        Session::new_hybrid(cfg, HybridSigningKey::generate(rng).unwrap(), now, rng).unwrap()
    } else {
        Session::new(cfg, SigningKey::generate(rng).unwrap(), now, rng).unwrap()
    }
}

/// A leader that has admitted `PARTICIPANTS - 1` others and distributed the first keys.
fn meeting(rng: &mut OsRng, pq: PqPolicy, hybrid: bool) -> (Session, Millis) {
    let meeting = MeetingRef::new(b"bench", b"bench-uuid").unwrap();
    let leader_id = ParticipantId::new(b"leader", b"dev").unwrap();
    let mut now = Millis(1_700_000_000_000);
    let cfg = config(&meeting, &leader_id, &leader_id, pq);
    let mut leader = session(cfg, hybrid, now, rng);
    for i in 1..PARTICIPANTS {
        let id = ParticipantId::new(format!("user-{i}").as_bytes(), b"dev").unwrap();
        let mut p = session(config(&meeting, &id, &leader_id, pq), hybrid, now, rng);
        while let Some(m) = p.poll_transmit() {
            if matches!(
                m,
                Message::KeyAnnouncement(_)
                    | Message::NoncePost(_)
                    | Message::HybridKeyAnnouncement(_)
                    | Message::HybridNoncePost(_)
            ) {
                leader.handle_message(now, &m, rng).unwrap();
            }
        }
        // Joiners wait for the batched rekey that lists them, and at most `MAX_PENDING`
        // strangers wait at once (keyctl revision 2): let the leader rotate in between.
        if i % (MAX_PENDING / 2) == 0 {
            now = rotate(&mut leader, now, rng);
        }
    }
    now = rotate(&mut leader, now, rng);
    (leader, now)
}

/// Lets the leader's batched rekey run and discards what it posts.
fn rotate(leader: &mut Session, now: Millis, rng: &mut OsRng) -> Millis {
    let now = now.after(2_000);
    leader.handle_timeout(now, rng).unwrap();
    while leader.poll_transmit().is_some() {}
    while leader.poll_event().is_some() {}
    now
}

fn rekey_1000(c: &mut Criterion) {
    for (pq, hybrid, name) in [
        (
            PqPolicy::Off,
            false,
            "keyctl leader rekey, 1000 participants",
        ),
        (
            PqPolicy::Required,
            false,
            "keyctl leader rekey, 1000 participants, hybrid box",
        ),
        (
            PqPolicy::Required,
            true,
            "keyctl leader rekey, 1000 participants, hybrid box and hybrid identities",
        ),
    ] {
        rekey_1000_with(c, pq, hybrid, name);
    }
}

fn rekey_1000_with(c: &mut Criterion, pq: PqPolicy, hybrid: bool, name: &str) {
    let mut rng = OsRng::new();
    let (mut leader, mut now) = meeting(&mut rng, pq, hybrid);
    let rotation = Timings::default().rotation_interval_ms;
    c.bench_function(name, |b| {
        b.iter(|| {
            now = now.after(rotation);
            leader.handle_timeout(now, &mut rng).unwrap();
            let mut boxes = 0usize;
            while let Some(m) = leader.poll_transmit() {
                boxes += usize::from(matches!(m, Message::Rekey(_)));
                black_box(&m);
            }
            while leader.poll_event().is_some() {}
            assert_eq!(boxes, PARTICIPANTS - 1);
        });
    });
}

/// The same 999 boxes without the cached pairwise keys: a full `Box.Enc` (X25519,
/// HSalsa20, HKDF, XChaCha20-Poly1305) per recipient, as a leader that just took over
/// pays once.
fn rekey_1000_uncached(c: &mut Criterion) {
    let mut rng = OsRng::new();
    let leader = BoxKeyPair::generate(&mut rng).unwrap();
    let recipients: Vec<[u8; 32]> = (1..PARTICIPANTS)
        .map(|_| *BoxKeyPair::generate(&mut rng).unwrap().public())
        .collect();
    let meta = [7u8; 80];
    let payload = [1u8; 38];
    c.bench_function("keyctl full Box.Enc x 999 (no cached K)", |b| {
        b.iter(|| {
            for pk in &recipients {
                let c = crypto::box_encrypt_with(
                    &mut rng,
                    leader.secret(),
                    pk,
                    crypto::CTX_KDF_MEETING_SEED,
                    crypto::CTX_CIPHER_MEETING_SEED,
                    &meta,
                    &payload,
                )
                .unwrap();
                black_box(c);
            }
        });
    });
}

criterion_group! {
    name = benches;
    // `--profile-time N` writes a flame graph per benchmark (benches/common/mod.rs).
    config = Criterion::default().with_profiler(common::FlamegraphProfiler::new());
    targets = rekey_1000, rekey_1000_uncached
}
criterion_main!(benches);

//! Many workers seal and open while a writer rotates the key every millisecond: every reader
//! sees whole snapshots (no torn reads), and no packet is lost at a rotation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use dataplane::keyring::{EpochKey, Keyring, MeetingConfig, Millis, WorkerKeys};
use dataplane::packet::{HEADROOM, Mode, Protected};
use dataplane::sframe::CipherSuite;
use zeroize::Zeroizing;

const ROTATIONS: u32 = 400;
const SENDERS: usize = 2;

fn mk_for(mk_seq: u32) -> [u8; 32] {
    let mut mk = [0u8; 32];
    for (i, chunk) in mk.chunks_mut(4).enumerate() {
        chunk.copy_from_slice(&(mk_seq.wrapping_mul(2_654_435_761) ^ i as u32).to_be_bytes());
    }
    mk
}

fn key(mk_seq: u32, now: u64) -> EpochKey {
    EpochKey {
        mk_seq,
        meeting_key: Zeroizing::new(mk_for(mk_seq)),
        roster: BTreeMap::from([(1, b"alice".to_vec()), (2, b"bob".to_vec())]),
        activate_at: Millis(now),
    }
}

fn ring(own_slot: u32) -> Arc<Keyring> {
    Arc::new(Keyring::new(MeetingConfig {
        meeting_id: b"m".to_vec(),
        meeting_uuid: b"u".to_vec(),
        own_slot,
        suite: CipherSuite::Aes256GcmSha512_128,
    }))
}

#[test]
fn rotating_every_millisecond_loses_nothing_and_tears_nothing() {
    let (alice, bob) = (ring(1), ring(2));
    alice.install(key(1, 0), Millis(0)).unwrap();
    bob.install(key(1, 0), Millis(0)).unwrap();
    // Virtual time: one millisecond per rotation. Epochs retire 10 s after their successor,
    // far beyond this run, so every packet in flight must open.
    let clock = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(SENDERS + 3));
    let (tx, rx) = sync_channel::<Vec<u8>>(1024);

    let writer = {
        let (alice, bob, clock, done, start) = (
            alice.clone(),
            bob.clone(),
            clock.clone(),
            done.clone(),
            start.clone(),
        );
        thread::spawn(move || {
            start.wait();
            for mk_seq in 2..=ROTATIONS + 1 {
                let now = clock.fetch_add(1, Ordering::SeqCst) + 1;
                // The receiver learns the key first, as in a meeting where it arrives before its
                // activation time.
                bob.install(key(mk_seq, now), Millis(now)).unwrap();
                alice.install(key(mk_seq, now), Millis(now)).unwrap();
                thread::sleep(Duration::from_millis(1));
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    let senders: Vec<_> = (0..SENDERS)
        .map(|worker| {
            let (alice, clock, done, start, tx) = (
                alice.clone(),
                clock.clone(),
                done.clone(),
                start.clone(),
                tx.clone(),
            );
            thread::spawn(move || {
                let mut keys = WorkerKeys::new(Mode::Datagram);
                let mut sent = 0u64;
                let mut generation = 0;
                start.wait();
                while !done.load(Ordering::SeqCst) {
                    let snapshot = alice.load();
                    // A snapshot is whole: ascending epochs, each MK the one of its mkSeqNum.
                    assert!(snapshot.generation() >= generation);
                    generation = snapshot.generation();
                    let seqs: Vec<u32> = snapshot.mk_seqs().collect();
                    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
                    for mk_seq in seqs {
                        let live = snapshot.live(mk_seq).unwrap();
                        assert_eq!(live.epoch.meeting_key(), &mk_for(mk_seq));
                    }
                    let now = Millis(clock.load(Ordering::SeqCst));
                    for _ in 0..8 {
                        let payload = [worker as u8; 64];
                        let mut buf = vec![0u8; HEADROOM + 64 + 16];
                        buf[HEADROOM..HEADROOM + 64].copy_from_slice(&payload);
                        let range = keys
                            .seal(&snapshot, now, 0, &mut buf, HEADROOM, 64)
                            .unwrap();
                        tx.send(buf[range].to_vec()).unwrap();
                        sent += 1;
                    }
                }
                sent
            })
        })
        .collect();
    drop(tx);

    let receiver = {
        let (bob, clock, start) = (bob.clone(), clock.clone(), start.clone());
        thread::spawn(move || {
            let mut keys = WorkerKeys::new(Mode::Datagram);
            let mut epochs = std::collections::BTreeSet::new();
            let mut opened = 0u64;
            start.wait();
            for mut wire in rx {
                let snapshot = bob.load();
                let now = Millis(clock.load(Ordering::SeqCst));
                let mk_seq = Protected::parse(Mode::Datagram, &wire).unwrap().mk_seq;
                let range = keys
                    .open(&snapshot, now, &mut wire)
                    .unwrap_or_else(|e| panic!("lost a packet of epoch {mk_seq}: {e}"));
                assert_eq!(wire[range].len(), 64);
                epochs.insert(mk_seq);
                opened += 1;
            }
            (opened, epochs.len())
        })
    };

    start.wait();
    writer.join().unwrap();
    let sent: u64 = senders.into_iter().map(|s| s.join().unwrap()).sum();
    let (opened, epochs) = receiver.join().unwrap();
    assert_eq!(opened, sent);
    assert!(sent > 1000, "only {sent} packets");
    assert!(epochs > 50, "packets crossed only {epochs} epochs");
}

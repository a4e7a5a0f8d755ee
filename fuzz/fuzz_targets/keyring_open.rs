//! The sidecar's receive path: `WorkerKeys::open` against a keyring with two installed epochs,
//! the way `veil sidecar` opens what arrives from the relay (lazily derived stream keys, shared
//! replay windows, epoch retirement by time).
//!
//! As in `packet_unprotect`, a genuine packet from a roster member is sealed by a second worker
//! and then mutated as the fuzzer says, so inputs reach the AEAD. Invariants: nothing panics; an
//! unmodified packet opens to its payload exactly once (a second copy is a replay), also through
//! another worker sharing the keyring; a modified one never opens; arbitrary bytes never open;
//! the sender never opens its own packet (RFC 9605 4.4.1); whatever was refused left no receive
//! key and no replay window behind (only the one genuine stream may have them); after the old
//! epoch's retirement time, its packets are refused.
#![no_main]
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use dataplane::keyring::{EpochKey, Keyring, MeetingConfig, Millis, WorkerKeys};
use dataplane::packet::{HEADROOM, Mode};
use dataplane::sframe::CipherSuite;
use libfuzzer_sys::fuzz_target;

#[path = "common/mutation.rs"]
mod mutation;
use mutation::Mutation;
use zeroize::Zeroizing;

#[derive(Debug, Arbitrary)]
struct Case {
    rtp: bool,
    /// Seal under the newer epoch (2) rather than the older (1).
    newer: bool,
    stream_index: u8,
    payload: Vec<u8>,
    mutations: Vec<Mutation>,
    raw: Vec<u8>,
}

fn config(own_slot: u32) -> MeetingConfig {
    MeetingConfig {
        meeting_id: b"fuzz-meeting".to_vec(),
        meeting_uuid: b"fuzz-uuid".to_vec(),
        own_slot,
        suite: CipherSuite::Aes256GcmSha512_128,
    }
}

fn epoch(mk_seq: u32, activate_at: u64) -> EpochKey {
    EpochKey {
        mk_seq,
        meeting_key: Zeroizing::new([mk_seq as u8 ^ 0x5a; 32]),
        roster: BTreeMap::from([(1, b"alice".to_vec()), (2, b"bob".to_vec())]),
        activate_at: Millis(activate_at),
    }
}

fn ring(own_slot: u32) -> Keyring {
    let ring = Keyring::new(config(own_slot));
    ring.install(epoch(1, 0), Millis(0)).expect("first epoch");
    ring.install(epoch(2, 100), Millis(50))
        .expect("second epoch");
    ring
}

/// `payload` sealed by a roster member's worker as stream `stream_index` at `now`.
fn seal(
    sender: &mut WorkerKeys,
    ring: &Keyring,
    now: u64,
    stream_index: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut buf = vec![0u8; HEADROOM + payload.len() + 16];
    buf[HEADROOM..HEADROOM + payload.len()].copy_from_slice(payload);
    let sealed = sender
        .seal(
            &ring.load(),
            Millis(now),
            stream_index,
            &mut buf,
            HEADROOM,
            payload.len(),
        )
        .expect("a roster member seals a well-formed packet");
    buf[sealed].to_vec()
}

fn open(keys: &mut WorkerKeys, ring: &Keyring, now: u64, wire: &[u8]) -> Option<Vec<u8>> {
    let mut buf = wire.to_vec();
    let range = keys.open(&ring.load(), Millis(now), &mut buf).ok()?;
    Some(buf[range].to_vec())
}

fuzz_target!(|data: &[u8]| {
    let Ok(case) = Case::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let mode = if case.rtp { Mode::Rtp } else { Mode::Datagram };
    let (alice, bob) = (ring(1), ring(2));
    let mut sender = WorkerKeys::new(mode);
    let (mut worker_a, mut worker_b) = (WorkerKeys::new(mode), WorkerKeys::new(mode));
    // Epoch 1 sends before t=100, epoch 2 from then on.
    let now = if case.newer { 200 } else { 60 };

    assert!(
        open(&mut worker_a, &bob, now, &case.raw).is_none(),
        "random bytes opened"
    );

    // Datagram mode has only stream 0; in RTP mode the stream is the SSRC's low byte.
    let stream_index = if case.rtp { case.stream_index } else { 0 };
    let input = if case.rtp {
        mutation::with_rtp_header(stream_index, &case.payload)
    } else {
        case.payload.clone()
    };
    let genuine = seal(&mut sender, &alice, now, stream_index, &input);
    assert!(
        open(&mut WorkerKeys::new(mode), &alice, now, &genuine).is_none(),
        "the sender opened its own packet"
    );

    let mutated = mutation::apply(&genuine, &case.mutations);
    let opened = open(&mut worker_a, &bob, now, &mutated);
    if mutated == genuine {
        assert_eq!(
            opened.as_deref(),
            Some(&input[..]),
            "a genuine packet must open"
        );
        assert!(
            open(&mut worker_b, &bob, now, &genuine).is_none(),
            "a replay via another worker opened"
        );
    } else {
        assert!(opened.is_none(), "a modified packet opened");
        assert_eq!(
            open(&mut worker_b, &bob, now, &genuine).as_deref(),
            Some(&input[..]),
            "a failed forgery must not burn the genuine packet's counter"
        );
    }
    // Only the genuine stream can have authenticated, in one epoch: forgeries keep nothing.
    let windows: usize = bob
        .load()
        .mk_seqs()
        .filter_map(|mk_seq| bob.load().live(mk_seq).map(|l| l.epoch.stream_windows()))
        .sum();
    assert!(windows <= 1, "{windows} replay windows after one genuine stream");
    assert!(
        worker_a.cached_recv_keys() <= 1 && worker_b.cached_recv_keys() <= 1,
        "a refused packet left a receive key"
    );
    if !case.newer {
        // Epoch 1 stops decrypting when retired (the sidecar retires it 10 s after epoch 2
        // arrived). A packet sealed under it before, never opened, is refused afterwards.
        let unopened = seal(&mut sender, &alice, now, stream_index, &input);
        bob.retire(1, Millis(50 + 10_000));
        let mut late = WorkerKeys::new(mode);
        assert!(
            open(&mut late, &bob, 50 + 10_001, &unopened).is_none(),
            "a retired epoch opened"
        );
    }
});

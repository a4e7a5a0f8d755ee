//! No (key, nonce) pair ever repeats (RFC 9605 4.4.3, DESIGN I7), whatever the operator does
//! with one pre-shared key: restart a sender on the same key file, reload it under a new
//! mkSeqNum, give two senders the same slot, build a fresh keyring (a new libveil protector, a
//! meeting-mode slot change), run several workers. And a peer still opens every packet.
//!
//! The pair is computed the way a receiver derives it, from nothing but the packet and the key
//! file: `stream_base_key` (docs/PROTOCOL.md) under the packet's KID through RFC 9605 4.4.2,
//! and the nonce `sframe_salt XOR CTR` of RFC 9605 4.4.3.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use dataplane::keyring::{EpochKey, Keyring, MeetingConfig, Millis, WorkerKeys};
use dataplane::packet::{HEADROOM, Mode, Protected};
use dataplane::sframe::{CipherSuite, NONCE_LEN, derive_secrets};
use dataplane::stream_key::stream_base_key;
use proptest::prelude::*;
use zeroize::Zeroizing;

const SUITE: CipherSuite = CipherSuite::Aes256GcmSha512_128;
const MEETING: &[u8] = b"lab-1";
const UUID: &[u8] = b"9f0c6b0e2d1a4c57";
/// The key file's MK: unchanged across every start and reload below.
const MK: [u8; 32] = [0x4b; 32];
/// The receiving peer's slot.
const PEER: u32 = 9;

fn sender_id(slot: u32) -> Vec<u8> {
    format!("sender-{slot}").into_bytes()
}

/// The key file's epoch, as `veil sidecar` installs it (sending at once).
fn key_file(mk_seq: u32, now: u64) -> EpochKey {
    EpochKey {
        mk_seq,
        meeting_key: Zeroizing::new(MK),
        roster: [0, 1, 2, PEER]
            .into_iter()
            .map(|slot| (slot, sender_id(slot)))
            .collect::<BTreeMap<_, _>>(),
        activate_at: Millis(now),
    }
}

/// A sidecar (or protector) started on the key file: a new keyring with its epoch installed.
fn start(slot: u32, mk_seq: u32, now: u64) -> Arc<Keyring> {
    let ring = Arc::new(Keyring::new(MeetingConfig {
        meeting_id: MEETING.to_vec(),
        meeting_uuid: UUID.to_vec(),
        own_slot: slot,
        suite: SUITE,
    }));
    ring.install(key_file(mk_seq, now), Millis(now)).unwrap();
    ring
}

fn seal(worker: &mut WorkerKeys, ring: &Keyring, now: u64, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; HEADROOM + payload.len() + 16];
    buf[HEADROOM..HEADROOM + payload.len()].copy_from_slice(payload);
    let range = worker
        .seal(
            &ring.load(),
            Millis(now),
            0,
            &mut buf,
            HEADROOM,
            payload.len(),
        )
        .unwrap();
    buf[range].to_vec()
}

fn open(worker: &mut WorkerKeys, ring: &Keyring, now: u64, wire: &[u8]) -> Option<Vec<u8>> {
    let mut buf = wire.to_vec();
    let range = worker.open(&ring.load(), Millis(now), &mut buf).ok()?;
    Some(buf[range].to_vec())
}

/// The AEAD key and nonce `wire` was sealed under by the sender in `slot` (datagram mode,
/// stream 0), derived as any holder of the key file would.
fn key_and_nonce(wire: &[u8], slot: u32) -> (Vec<u8>, [u8; NONCE_LEN]) {
    let parsed = Protected::parse(Mode::Datagram, wire).unwrap();
    let base = stream_base_key(&MK, MEETING, UUID, &sender_id(slot), 0).unwrap();
    let secrets = derive_secrets(SUITE, parsed.header.kid, base.as_ref()).unwrap();
    let mut nonce = secrets.salt;
    for (n, c) in nonce[NONCE_LEN - 8..]
        .iter_mut()
        .zip(parsed.header.ctr.to_be_bytes())
    {
        *n ^= c;
    }
    (secrets.key.clone(), nonce)
}

/// Every packet's (key, nonce) is new, and the peer opens every packet exactly as sealed.
fn check(sealed: &[(u32, Vec<u8>, Vec<u8>)], peer: &Keyring, now: u64) {
    let mut seen = BTreeSet::new();
    let mut rx = WorkerKeys::new(Mode::Datagram);
    for (slot, payload, wire) in sealed {
        assert!(
            seen.insert(key_and_nonce(wire, *slot)),
            "a (key, nonce) pair repeated: slot {slot}, packet {}",
            hex(wire)
        );
        assert_eq!(
            open(&mut rx, peer, now, wire).as_deref(),
            Some(&payload[..]),
            "the peer did not open a packet of slot {slot}"
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_sender_restarted_on_the_same_key_file_never_repeats_a_key_nonce_pair() {
    let peer = start(PEER, 1, 0);
    let mut sealed = Vec::new();
    let mut datagrams = BTreeSet::new();
    for _run in 0..3 {
        let ring = start(0, 1, 0);
        let mut worker = WorkerKeys::new(Mode::Datagram);
        for i in 0..5u8 {
            let wire = seal(&mut worker, &ring, 0, &[i; 40]);
            // The reproduction of the finding: identical plaintext, identical datagram.
            datagrams.insert(wire.clone());
            sealed.push((0, vec![i; 40], wire));
        }
    }
    assert_eq!(datagrams.len(), 15, "a restart repeated a datagram");
    check(&sealed, &peer, 0);
}

#[test]
fn a_reload_of_an_unchanged_key_under_a_new_mk_seq_never_repeats_a_key_nonce_pair() {
    let peer = start(PEER, 1, 0);
    peer.install(key_file(2, 0), Millis(0)).unwrap();
    let ring = start(0, 1, 0);
    let mut worker = WorkerKeys::new(Mode::Datagram);
    let mut sealed = vec![(
        0,
        b"before".to_vec(),
        seal(&mut worker, &ring, 0, b"before"),
    )];
    // SIGHUP: the same MK under mkSeqNum 2 (the sidecar requires only that mkSeqNum grows).
    ring.install(key_file(2, 1), Millis(1)).unwrap();
    sealed.push((0, b"after".to_vec(), seal(&mut worker, &ring, 1, b"after")));
    assert_eq!(
        Protected::parse(Mode::Datagram, &sealed[1].2)
            .unwrap()
            .mk_seq,
        2
    );
    check(&sealed, &peer, 1);
}

#[test]
fn two_senders_given_the_same_slot_never_share_a_key_nonce_pair() {
    let peer = start(PEER, 1, 0);
    let (first, second) = (start(1, 1, 0), start(1, 1, 0));
    let (mut a, mut b) = (
        WorkerKeys::new(Mode::Datagram),
        WorkerKeys::new(Mode::Datagram),
    );
    let mut sealed = Vec::new();
    for i in 0..4u8 {
        sealed.push((1, vec![i], seal(&mut a, &first, 0, &[i])));
        sealed.push((1, vec![i], seal(&mut b, &second, 0, &[i])));
    }
    check(&sealed, &peer, 0);
}

/// What an operator, a control plane or a C host can do to the senders of one key file.
#[derive(Debug, Clone)]
enum Op {
    /// Start a sender (a sidecar, a fresh protector, or a keyring rebuilt after a slot change)
    /// in one of three slots, on the key file's current mkSeqNum.
    Start(u32),
    /// The key file's mkSeqNum grows, MK unchanged; the peer installs it.
    Bump,
    /// SIGHUP: a sender re-reads the key file (refused, changing nothing, if mkSeqNum did not grow).
    Reload(usize),
    /// Another worker on a sender's keyring (`--workers`, `veil_protector_new_worker`).
    AddWorker(usize),
    /// A sender's worker seals some packets.
    Seal(usize, usize, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u32..3).prop_map(Op::Start),
        Just(Op::Bump),
        any::<usize>().prop_map(Op::Reload),
        any::<usize>().prop_map(Op::AddWorker),
        (any::<usize>(), any::<usize>(), 1u8..24).prop_map(|(s, w, n)| Op::Seal(s, w, n)),
    ]
}

struct Sender {
    slot: u32,
    ring: Arc<Keyring>,
    workers: Vec<WorkerKeys>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random sequences of starts, reloads, duplicate slots and workers never repeat a (key,
    /// nonce) pair, and the peer opens everything. (Under 32 starts per slot and epoch, so every
    /// sender instance fits the peer's windows: `MAX_STREAMS_PER_SENDER`.)
    #[test]
    fn no_sequence_of_starts_reloads_and_duplicate_slots_repeats_a_key_nonce_pair(
        ops in proptest::collection::vec(op(), 1..30)
    ) {
        let mut file_mk_seq = 1;
        let peer = start(PEER, 1, 0);
        let mut senders: Vec<Sender> = Vec::new();
        let mut sealed = Vec::new();
        let mut now = 0;
        for op in ops {
            now += 1;
            match op {
                Op::Start(slot) => senders.push(Sender {
                    slot,
                    ring: start(slot, file_mk_seq, now),
                    workers: vec![WorkerKeys::new(Mode::Datagram)],
                }),
                Op::Bump => {
                    file_mk_seq += 1;
                    peer.install(key_file(file_mk_seq, now), Millis(now)).unwrap();
                }
                Op::Reload(i) if !senders.is_empty() => {
                    let sender = &senders[i % senders.len()];
                    // NotNewer when the file did not change: refused, nothing changes.
                    let _ = sender.ring.install(key_file(file_mk_seq, now), Millis(now));
                }
                Op::AddWorker(i) if !senders.is_empty() => {
                    let len = senders.len();
                    senders[i % len].workers.push(WorkerKeys::new(Mode::Datagram));
                }
                Op::Seal(i, w, count) if !senders.is_empty() => {
                    let len = senders.len();
                    let sender = &mut senders[i % len];
                    let workers = sender.workers.len();
                    let worker = &mut sender.workers[w % workers];
                    for n in 0..count {
                        let payload = vec![n; 8];
                        let wire = seal(worker, &sender.ring, now, &payload);
                        sealed.push((sender.slot, payload, wire));
                    }
                }
                _ => {}
            }
        }
        check(&sealed, &peer, now);
    }
}

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::*;
use crate::packet::{DropReason, Error as PacketError, HEADROOM, Mode, Protected};
use crate::sframe::Header;
use crate::stream_key::{MAX_SENDER_INSTANCE, MAX_SENDER_SLOT, StreamId};

fn config(own_slot: u32) -> MeetingConfig {
    MeetingConfig {
        meeting_id: b"meeting-1".to_vec(),
        meeting_uuid: b"uuid-1".to_vec(),
        own_slot,
        suite: CipherSuite::Aes256GcmSha512_128,
    }
}

fn key(mk_seq: u32, activate_at: u64) -> EpochKey {
    EpochKey {
        mk_seq,
        meeting_key: Zeroizing::new([mk_seq as u8; 32]),
        roster: BTreeMap::from([(1, b"alice".to_vec()), (2, b"bob".to_vec())]),
        activate_at: Millis(activate_at),
    }
}

fn seal(
    keys: &mut WorkerKeys,
    ring: &Keyring,
    now: u64,
    payload: &[u8],
) -> Result<Vec<u8>, SealError> {
    let mut buf = vec![0u8; HEADROOM + payload.len() + 16];
    buf[HEADROOM..HEADROOM + payload.len()].copy_from_slice(payload);
    let range = keys.seal(
        &ring.load(),
        Millis(now),
        0,
        &mut buf,
        HEADROOM,
        payload.len(),
    )?;
    Ok(buf[range].to_vec())
}

fn open(
    keys: &mut WorkerKeys,
    ring: &Keyring,
    now: u64,
    wire: &[u8],
) -> Result<Vec<u8>, PacketError> {
    let mut buf = wire.to_vec();
    let range = keys.open(&ring.load(), Millis(now), &mut buf)?;
    Ok(buf[range].to_vec())
}

/// `wire` (datagram mode) with its SFrame header rewritten to name `kid`: a forgery.
fn with_kid(wire: &[u8], kid: u64) -> Vec<u8> {
    let parsed = Protected::parse(Mode::Datagram, wire).unwrap();
    let (header, len) = Header::new(kid, parsed.header.ctr).to_bytes();
    [&wire[..4], &header[..len], &wire[parsed.ciphertext_start..]].concat()
}

fn pair() -> (Keyring, Keyring) {
    let (alice, bob) = (Keyring::new(config(1)), Keyring::new(config(2)));
    alice.install(key(1, 0), Millis(0)).unwrap();
    bob.install(key(1, 0), Millis(0)).unwrap();
    (alice, bob)
}

#[test]
fn a_sealed_packet_opens_at_the_peer_and_only_once() {
    let (alice, bob) = pair();
    let (mut tx, mut rx) = (
        WorkerKeys::new(Mode::Datagram),
        WorkerKeys::new(Mode::Datagram),
    );
    let wire = seal(&mut tx, &alice, 5, b"hello").unwrap();
    let kid = Protected::parse(Mode::Datagram, &wire).unwrap().header.kid;
    let instance = alice.load().newest().unwrap().send_instance();
    assert_eq!(
        StreamId::from_kid(kid),
        StreamId {
            sender_slot: 1,
            sender_instance: instance,
            stream_index: 0
        }
    );
    assert_eq!(open(&mut rx, &bob, 5, &wire).unwrap(), b"hello");
    let again = open(&mut rx, &bob, 5, &wire).unwrap_err();
    assert_eq!(again.drop_reason(), DropReason::Replay);
}

#[test]
fn mk_seq_must_grow() {
    let (alice, _) = pair();
    assert_eq!(
        alice.install(key(1, 0), Millis(1)),
        Err(KeyringError::NotNewer {
            mk_seq: 1,
            newest: 1
        })
    );
    assert_eq!(
        alice.install(key(0, 0), Millis(1)),
        Err(KeyringError::NotNewer {
            mk_seq: 0,
            newest: 1
        })
    );
}

#[test]
fn rotation_decrypts_at_once_sends_at_activation_and_retires_after_ten_seconds() {
    let (alice, bob) = pair();
    let (mut tx, mut rx) = (
        WorkerKeys::new(Mode::Datagram),
        WorkerKeys::new(Mode::Datagram),
    );
    let old = seal(&mut tx, &alice, 500, b"old").unwrap();
    // Epoch 2 arrives at t = 1000 and activates at t = 3000.
    alice.install(key(2, 3000), Millis(1000)).unwrap();
    bob.install(key(2, 3000), Millis(1000)).unwrap();
    let mk_seq = |wire: &[u8]| Protected::parse(Mode::Datagram, wire).unwrap().mk_seq;
    assert_eq!(mk_seq(&seal(&mut tx, &alice, 2999, b"x").unwrap()), 1);
    let new = seal(&mut tx, &alice, 3000, b"new").unwrap();
    assert_eq!(mk_seq(&new), 2);
    // The new epoch decrypts as soon as installed, the old one until 10 s after the new arrived.
    assert_eq!(open(&mut rx, &bob, 1000, &new).unwrap(), b"new");
    let late_old = seal(
        &mut WorkerKeys::new(Mode::Datagram),
        &{
            let k = Keyring::new(config(1));
            k.install(key(1, 0), Millis(0)).unwrap();
            k
        },
        0,
        b"late",
    )
    .unwrap();
    assert_eq!(open(&mut rx, &bob, 10_999, &old).unwrap(), b"old");
    let refused = open(&mut rx, &bob, 11_000, &late_old).unwrap_err();
    assert_eq!(refused, PacketError::UnknownEpoch(1));
    assert_eq!(refused.drop_reason(), DropReason::UnknownKey);
    // Pruning frees the epoch; the worker drops its keys and windows at the next batch.
    assert_eq!(rx.cached_epochs(), 2);
    bob.prune(Millis(11_000));
    assert_eq!(bob.load().mk_seqs().collect::<Vec<_>>(), vec![2]);
    rx.sync(&bob.load());
    assert_eq!(rx.cached_epochs(), 1);
}

#[test]
fn retire_event_shortens_and_never_extends() {
    let (_, bob) = pair();
    bob.install(key(2, 0), Millis(1000)).unwrap();
    bob.retire(1, Millis(5000));
    assert!(bob.load().recv_epoch(1, Millis(4999)).is_some());
    assert!(bob.load().recv_epoch(1, Millis(5000)).is_none());
    bob.retire(1, Millis(50_000));
    assert!(bob.load().recv_epoch(1, Millis(6000)).is_none());
    // Retiring the newest stops sending too; retiring an unknown epoch changes nothing.
    let generation = bob.load().generation();
    bob.retire(9, Millis(0));
    assert_eq!(bob.load().generation(), generation);
    bob.retire(2, Millis(7000));
    assert!(bob.load().send_epoch(Millis(7000)).is_none());
}

#[test]
fn workers_sharing_a_stream_never_share_a_counter() {
    let (alice, bob) = pair();
    let mut workers: Vec<WorkerKeys> = (0..3).map(|_| WorkerKeys::new(Mode::Datagram)).collect();
    let mut rx = WorkerKeys::new(Mode::Datagram);
    let mut seen = std::collections::BTreeSet::new();
    for round in 0..200 {
        for (i, worker) in workers.iter_mut().enumerate() {
            let wire = seal(worker, &alice, 1, &[i as u8, round as u8]).unwrap();
            let ctr = Protected::parse(Mode::Datagram, &wire).unwrap().header.ctr;
            assert!(seen.insert(ctr), "counter {ctr} used twice");
            // Interleaved leases stay well inside the receiver's window: nothing is refused.
            assert_eq!(
                open(&mut rx, &bob, 1, &wire).unwrap(),
                [i as u8, round as u8]
            );
        }
    }
}

#[test]
fn unknown_senders_and_slots_are_refused() {
    let (alice, bob) = pair();
    let stranger = Keyring::new(config(7));
    stranger.install(key(1, 0), Millis(0)).unwrap();
    assert_eq!(
        seal(&mut WorkerKeys::new(Mode::Datagram), &stranger, 0, b"x"),
        Err(SealError::NotInRoster(7))
    );
    let empty = Keyring::new(config(1));
    assert_eq!(
        seal(&mut WorkerKeys::new(Mode::Datagram), &empty, 0, b"x"),
        Err(SealError::NoSendEpoch)
    );
    // A packet naming a slot outside the roster is an unknown key, derived nothing.
    let wire = seal(&mut WorkerKeys::new(Mode::Datagram), &alice, 0, b"x").unwrap();
    let wire = with_kid(&wire, 7 << 48);
    let mut rx = WorkerKeys::new(Mode::Datagram);
    assert_eq!(
        open(&mut rx, &bob, 0, &wire).unwrap_err().drop_reason(),
        DropReason::UnknownKey
    );
}

#[test]
fn a_stale_key_under_the_right_mk_seq_fails_authentication() {
    let (alice, _) = pair();
    let impostor = Keyring::new(config(2));
    let mut wrong = key(1, 0);
    wrong.meeting_key = Zeroizing::new([0xee; 32]);
    impostor.install(wrong, Millis(0)).unwrap();
    let wire = seal(&mut WorkerKeys::new(Mode::Datagram), &alice, 0, b"secret").unwrap();
    let err = open(&mut WorkerKeys::new(Mode::Datagram), &impostor, 0, &wire).unwrap_err();
    assert_eq!(err.drop_reason(), DropReason::AuthFailure);
}

#[test]
fn epochs_are_capped() {
    let (alice, _) = pair();
    for mk_seq in 2..(MAX_LIVE_EPOCHS as u32 + 10) {
        alice
            .install(key(mk_seq, 0), Millis(u64::from(mk_seq)))
            .unwrap();
    }
    assert_eq!(alice.load().mk_seqs().count(), MAX_LIVE_EPOCHS);
    assert_eq!(
        alice.load().newest().unwrap().mk_seq(),
        MAX_LIVE_EPOCHS as u32 + 9
    );
}

/// Readers hold and read snapshots while a writer installs, retires and prunes: every epoch a
/// reader reaches is whole, and old ones are freed only after the last reader let go. Touches no
/// crypto, so it also runs under Miri (`cargo +nightly miri test -p dataplane --lib
/// keyring::tests::concurrent`), which checks the reclamation for use-after-free and races.
#[test]
fn concurrent_readers_see_whole_snapshots_while_epochs_come_and_go() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let ring = Arc::new(Keyring::new(config(1)));
    ring.install(key(1, 0), Millis(0)).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (ring, done) = (ring.clone(), done.clone());
            std::thread::spawn(move || {
                let mut held = Vec::new();
                let mut loads = 0u32;
                while !done.load(Ordering::SeqCst) || loads < 10 {
                    let snapshot = ring.load_full();
                    for mk_seq in snapshot.mk_seqs() {
                        let epoch = &snapshot.live(mk_seq).unwrap().epoch;
                        assert_eq!(epoch.meeting_key(), &[mk_seq as u8; 32]);
                    }
                    // Keep a few snapshots alive across rotations, as a slow batch would.
                    held.push(snapshot);
                    if held.len() > 3 {
                        held.remove(0);
                    }
                    loads += 1;
                    std::thread::yield_now();
                }
                held
            })
        })
        .collect();
    for mk_seq in 2..12u32 {
        let now = Millis(u64::from(mk_seq) * 20_000);
        ring.install(key(mk_seq, now.0), now).unwrap();
        ring.prune(now);
        std::thread::yield_now();
    }
    done.store(true, Ordering::SeqCst);
    for reader in readers {
        for snapshot in reader.join().unwrap() {
            // Held snapshots still read their (possibly pruned) epochs.
            for mk_seq in snapshot.mk_seqs() {
                assert_eq!(
                    snapshot.live(mk_seq).unwrap().epoch.meeting_key(),
                    &[mk_seq as u8; 32]
                );
            }
        }
    }
    // The superseded epoch still has its 10 s; then it goes.
    assert_eq!(ring.load().mk_seqs().collect::<Vec<_>>(), vec![10, 11]);
    ring.prune(Millis(11 * 20_000 + RETIRE_AFTER_MS));
    assert_eq!(ring.load().mk_seqs().collect::<Vec<_>>(), vec![11]);
}

#[test]
fn a_replay_is_refused_by_every_worker_not_only_the_first() {
    // SO_REUSEPORT hands a packet from another source port to another worker: the window must
    // be shared, or the replay would open there.
    let (alice, bob) = pair();
    let wire = seal(&mut WorkerKeys::new(Mode::Datagram), &alice, 0, b"once").unwrap();
    let mut workers: Vec<WorkerKeys> = (0..3).map(|_| WorkerKeys::new(Mode::Datagram)).collect();
    assert_eq!(open(&mut workers[0], &bob, 0, &wire).unwrap(), b"once");
    for worker in &mut workers {
        let err = open(worker, &bob, 0, &wire).unwrap_err();
        assert_eq!(err.drop_reason(), DropReason::Replay);
    }
}

#[test]
fn a_forgery_does_not_burn_the_counter_of_the_genuine_packet() {
    let (alice, bob) = pair();
    let wire = seal(&mut WorkerKeys::new(Mode::Datagram), &alice, 0, b"real").unwrap();
    let mut forged = wire.clone();
    *forged.last_mut().unwrap() ^= 1;
    let mut rx = WorkerKeys::new(Mode::Datagram);
    assert_eq!(
        open(&mut rx, &bob, 0, &forged).unwrap_err().drop_reason(),
        DropReason::AuthFailure
    );
    assert_eq!(open(&mut rx, &bob, 0, &wire).unwrap(), b"real");
}

#[test]
fn own_packets_reflected_back_are_refused_before_any_key_is_derived() {
    // RFC 9605 4.4.1: a receiver never decrypts with a send key. A relay that sends alice's own
    // packet back to her must not get it opened (or her replay window for it created).
    let (alice, bob) = pair();
    let mut rx = WorkerKeys::new(Mode::Datagram);
    let mut tx = WorkerKeys::new(Mode::Datagram);
    let wire = seal(&mut tx, &alice, 0, b"mine").unwrap();
    let reflected = open(&mut rx, &alice, 0, &wire);
    assert!(reflected.is_err(), "alice opened her own packet");
    assert_eq!(reflected.unwrap_err().drop_reason().as_str(), "reflected");
    // The sending worker itself refuses it too, and nothing was kept.
    assert_eq!(
        open(&mut tx, &alice, 0, &wire).unwrap_err().drop_reason(),
        DropReason::Reflected
    );
    assert_eq!(rx.cached_recv_keys() + tx.cached_recv_keys(), 0);
    assert_eq!(alice.load().newest().unwrap().stream_windows(), 0);
    // Another instance under alice's slot (a second sidecar given her slot) is refused as well.
    let other = seal(
        &mut WorkerKeys::new(Mode::Datagram),
        &{
            let k = Keyring::new(config(1));
            k.install(key(1, 0), Millis(0)).unwrap();
            k
        },
        0,
        b"twin",
    )
    .unwrap();
    assert_eq!(
        open(&mut rx, &alice, 0, &other).unwrap_err().drop_reason(),
        DropReason::Reflected
    );
    // Bob still opens it.
    assert_eq!(open(&mut rx, &bob, 0, &wire).unwrap(), b"mine");
}

#[test]
fn datagram_mode_has_only_stream_zero() {
    let (alice, bob) = pair();
    let mut buf = vec![0u8; HEADROOM + 1 + 16];
    assert_eq!(
        WorkerKeys::new(Mode::Datagram).seal(&alice.load(), Millis(0), 3, &mut buf, HEADROOM, 1),
        Err(SealError::DatagramStream(3))
    );
    let wire = seal(&mut WorkerKeys::new(Mode::Datagram), &alice, 0, b"x").unwrap();
    let kid = Protected::parse(Mode::Datagram, &wire).unwrap().header.kid;
    let mut rx = WorkerKeys::new(Mode::Datagram);
    assert_eq!(
        open(&mut rx, &bob, 0, &with_kid(&wire, kid | 3)),
        Err(PacketError::Sframe(crate::sframe::Error::UnknownKid(
            kid | 3
        )))
    );
    assert_eq!(open(&mut rx, &bob, 0, &wire).unwrap(), b"x");
}

#[test]
fn slots_beyond_the_kid_layout_are_refused() {
    let ring = Keyring::new(config(1));
    let mut wide = key(1, 0);
    wide.roster.insert(MAX_SENDER_SLOT + 1, b"carol".to_vec());
    assert_eq!(
        ring.install(wide, Millis(0)),
        Err(KeyringError::SlotOutOfRange(MAX_SENDER_SLOT + 1))
    );
    assert_eq!(
        ring.load().generation(),
        0,
        "a refused key changed the keyring"
    );
    // A keyring whose own slot has no room in a KID receives but never seals.
    let receive_only = Keyring::new(config(u32::MAX));
    receive_only.install(key(1, 0), Millis(0)).unwrap();
    assert_eq!(
        seal(&mut WorkerKeys::new(Mode::Datagram), &receive_only, 0, b"x"),
        Err(SealError::SlotOutOfRange(u32::MAX))
    );
}

#[test]
fn every_epoch_draws_its_own_sender_instance() {
    let ring = Keyring::new(config(1));
    let mut instances = std::collections::BTreeSet::new();
    for mk_seq in 1..=20 {
        ring.install(key(mk_seq, 0), Millis(0)).unwrap();
        let instance = ring.load().newest().unwrap().send_instance();
        assert!(instance <= MAX_SENDER_INSTANCE);
        instances.insert(instance);
    }
    // 20 draws of 40 bits collide with probability below 2^-31.
    assert_eq!(instances.len(), 20);
}

/// Forged packets (right epoch, wrong tag) over every stream of every roster member and many
/// sender instances: the receiver keeps no key and no window for any of them, in either mode.
#[test]
fn forgeries_over_every_kid_and_many_instances_leave_nothing_behind() {
    const ROSTER: u32 = 300;
    let roster: BTreeMap<u32, Vec<u8>> = (0..ROSTER)
        .map(|slot| (slot, format!("member-{slot}").into_bytes()))
        .collect();
    for mode in [Mode::Datagram, Mode::Rtp] {
        let ring = Keyring::new(config(0));
        ring.install(
            EpochKey {
                roster: roster.clone(),
                ..key(1, 0)
            },
            Millis(0),
        )
        .unwrap();
        let mut rx = WorkerKeys::new(mode);
        let rtp: &[u8] = &[0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7];
        let prefix = if mode == Mode::Rtp { rtp } else { &[] };
        let mut forged = 0u64;
        let mut send = |kid: u64, rx: &mut WorkerKeys| {
            let (header, len) = Header::new(kid, 0).to_bytes();
            let wire = [prefix, &1u32.to_be_bytes(), &header[..len], &[0xaa; 32]].concat();
            let reason = open(rx, &ring, 0, &wire).unwrap_err().drop_reason();
            assert!(
                matches!(
                    reason,
                    DropReason::AuthFailure | DropReason::UnknownKey | DropReason::Reflected
                ),
                "{reason:?}"
            );
            forged += 1;
        };
        // Every slot, every stream index, one instance each.
        for slot in 0..ROSTER {
            for stream in 0..=255u64 {
                send(
                    (u64::from(slot) << 48) | (u64::from(slot) << 8) | stream,
                    &mut rx,
                );
            }
        }
        // Many instances of a few members' stream 0.
        for slot in 1..4u64 {
            for instance in 0..2000u64 {
                send(
                    (slot << 48) | ((instance * 0x9e37_79b9) & MAX_SENDER_INSTANCE) << 8,
                    &mut rx,
                );
            }
        }
        assert_eq!(forged, u64::from(ROSTER) * 256 + 6000);
        assert_eq!(rx.cached_recv_keys(), 0, "{mode:?}: a forgery left a key");
        assert_eq!(
            ring.load().newest().unwrap().stream_windows(),
            0,
            "{mode:?}: a forgery left a window"
        );
    }
}

#[test]
fn authentic_streams_per_sender_are_capped_and_never_evicted() {
    // One sender restarted more often than the cap under one key: each start is a new instance,
    // so a new KID with its own window. The first MAX_STREAMS_PER_SENDER are kept; the next is
    // refused (counted), and the earlier ones keep refusing replays.
    let bob = Keyring::new(config(2));
    bob.install(key(1, 0), Millis(0)).unwrap();
    let mut rx = WorkerKeys::new(Mode::Datagram);
    let mut first = None;
    for start in 0..=MAX_STREAMS_PER_SENDER {
        let alice = Keyring::new(config(1));
        alice.install(key(1, 0), Millis(0)).unwrap();
        let wire = seal(&mut WorkerKeys::new(Mode::Datagram), &alice, 0, b"hi").unwrap();
        let opened = open(&mut rx, &bob, 0, &wire);
        if start < MAX_STREAMS_PER_SENDER {
            assert_eq!(opened.unwrap(), b"hi");
            first.get_or_insert(wire);
        } else {
            assert_eq!(opened.unwrap_err().drop_reason(), DropReason::StreamLimit);
        }
    }
    assert_eq!(rx.cached_recv_keys(), MAX_STREAMS_PER_SENDER);
    assert_eq!(
        bob.load().newest().unwrap().stream_windows(),
        MAX_STREAMS_PER_SENDER
    );
    let first = first.unwrap();
    assert_eq!(
        open(&mut rx, &bob, 0, &first).unwrap_err().drop_reason(),
        DropReason::Replay
    );
    assert_eq!(
        open(&mut WorkerKeys::new(Mode::Datagram), &bob, 0, &first)
            .unwrap_err()
            .drop_reason(),
        DropReason::Replay
    );
}

/// Seals with a worker that has derived nothing yet.
fn seal_once(ring: &Keyring, now: u64, payload: &[u8]) -> Result<Vec<u8>, SealError> {
    seal(&mut WorkerKeys::new(Mode::Datagram), ring, now, payload)
}

/// Opens with a worker that has derived nothing yet.
fn open_once(ring: &Keyring, now: u64, wire: &[u8]) -> Result<Vec<u8>, PacketError> {
    open(&mut WorkerKeys::new(Mode::Datagram), ring, now, wire)
}

/// The instance `config` serves.
fn meeting() -> keyctl::wire::MeetingRef {
    keyctl::wire::MeetingRef::new(b"meeting-1", b"uuid-1").unwrap()
}

fn roster_key(mk_seq: u32, activate_at: u64, roster: &[(u32, &[u8])]) -> EpochKey {
    EpochKey {
        roster: roster.iter().map(|(s, id)| (*s, id.to_vec())).collect(),
        ..key(mk_seq, activate_at)
    }
}

fn slot_of(wire: &[u8]) -> u32 {
    let kid = Protected::parse(Mode::Datagram, wire).unwrap().header.kid;
    StreamId::from_kid(kid).sender_slot
}

/// A slot learned from a key is published with its epoch: a worker that sealed nothing (no
/// slot) on this keyring before seals under the slot once the key is in, with no new keyring.
#[test]
fn a_keyring_without_a_slot_learns_it_from_the_first_key_that_names_this_device() {
    let ring = Keyring::new(config(NO_SLOT));
    let mut tx = WorkerKeys::new(Mode::Datagram);
    assert_eq!(
        seal(&mut tx, &ring, 0, b"x"),
        Err(SealError::SlotOutOfRange(NO_SLOT))
    );
    ring.install_for(&meeting(), key(1, 0), Some(1), Millis(0))
        .unwrap();
    assert_eq!(
        ring.load().config().own_slot,
        1,
        "published as the keyring's"
    );
    assert_eq!(ring.load().newest().unwrap().own_slot(), Some(1));
    let wire = seal(&mut tx, &ring, 0, b"x").unwrap();
    assert_eq!(slot_of(&wire), 1);
    let bob = Keyring::new(config(2));
    bob.install(key(1, 0), Millis(0)).unwrap();
    assert_eq!(open_once(&bob, 0, &wire).unwrap(), b"x");
}

/// A roster that moves this device to another slot applies from that key's epoch on: the
/// epoch still sending keeps its slot (one KID per stream under one key, RFC 9605 4.4.3), and
/// each epoch refuses as reflected exactly the slot this device sealed under in it, even once
/// the old slot belongs to someone else (4.4.1).
#[test]
fn a_slot_change_applies_from_the_next_epoch_and_each_epoch_knows_its_own() {
    let me = Keyring::new(config(NO_SLOT));
    me.install_for(
        &meeting(),
        roster_key(1, 0, &[(1, b"alice"), (2, b"bob")]),
        Some(1),
        Millis(0),
    )
    .unwrap();
    // Rejoined: "alice" is slot 3 now, and slot 1 went to carol.
    let moved = roster_key(2, 2_000, &[(1, b"carol"), (2, b"bob"), (3, b"alice")]);
    me.install_for(&meeting(), moved, Some(3), Millis(1_000))
        .unwrap();
    assert_eq!(me.load().config().own_slot, 3);
    let mut tx = WorkerKeys::new(Mode::Datagram);
    let old = seal(&mut tx, &me, 1_500, b"old").unwrap();
    let new = seal(&mut tx, &me, 2_000, b"new").unwrap();
    assert_eq!((&old[..4], slot_of(&old)), (&1u32.to_be_bytes()[..], 1));
    assert_eq!((&new[..4], slot_of(&new)), (&2u32.to_be_bytes()[..], 3));
    // Both sent back: each refused as this device's own, none derived as a receive key.
    let mut rx = WorkerKeys::new(Mode::Datagram);
    for wire in [&old, &new] {
        let kid = Protected::parse(Mode::Datagram, wire).unwrap().header.kid;
        assert_eq!(
            open(&mut rx, &me, 2_000, wire),
            Err(PacketError::Reflected(kid))
        );
    }
    assert_eq!(rx.cached_recv_keys(), 0);
    // Carol, in slot 1 of epoch 2, is a sender like any other there.
    let carol = Keyring::new(config(1));
    carol
        .install(
            roster_key(2, 2_000, &[(1, b"carol"), (2, b"bob"), (3, b"alice")]),
            Millis(1_000),
        )
        .unwrap();
    let from_carol = seal_once(&carol, 2_000, b"hi").unwrap();
    assert_eq!(open(&mut rx, &me, 2_000, &from_carol).unwrap(), b"hi");
}

/// A key whose roster does not name this device only receives: the device never seals under
/// the slot an older key gave it, which this roster may have given to someone else.
#[test]
fn an_epoch_that_does_not_name_this_device_only_receives() {
    let me = Keyring::new(config(NO_SLOT));
    me.install_for(&meeting(), key(1, 0), Some(1), Millis(0))
        .unwrap();
    let without = roster_key(2, 0, &[(1, b"carol"), (2, b"bob")]);
    me.install_for(&meeting(), without, None, Millis(0))
        .unwrap();
    assert_eq!(me.load().newest().unwrap().own_slot(), None);
    assert_eq!(
        me.load().config().own_slot,
        1,
        "a key without a slot keeps the last"
    );
    assert_eq!(
        seal_once(&me, 0, b"x"),
        Err(SealError::SlotOutOfRange(NO_SLOT))
    );
    let carol = Keyring::new(config(1));
    carol
        .install(roster_key(2, 0, &[(1, b"carol"), (2, b"bob")]), Millis(0))
        .unwrap();
    let wire = seal_once(&carol, 0, b"c").unwrap();
    assert_eq!(open_once(&me, 0, &wire).unwrap(), b"c");
}

#[test]
fn a_key_or_retirement_for_another_instance_changes_nothing() {
    let ring = Keyring::new(config(NO_SLOT));
    let other = keyctl::wire::MeetingRef::new(b"meeting-1", b"uuid-2").unwrap();
    assert_eq!(
        ring.install_for(&other, key(1, 0), Some(1), Millis(0)),
        Err(HandoffError::WrongMeeting { mk_seq: 1 })
    );
    ring.install_for(&meeting(), key(1, 0), Some(1), Millis(0))
        .unwrap();
    let generation = ring.load().generation();
    assert_eq!(
        ring.retire_for(&other, 1, Millis(0)),
        Err(HandoffError::WrongMeeting { mk_seq: 1 })
    );
    assert_eq!(ring.load().generation(), generation);
    assert!(ring.load().recv_epoch(1, Millis(1)).is_some());
}

/// Setting the keyring's slot is safe at any time: installed epochs keep theirs.
#[test]
fn setting_the_slot_leaves_installed_epochs_as_they_are() {
    let ring = Keyring::new(config(1));
    ring.install(key(1, 0), Millis(0)).unwrap();
    ring.set_own_slot(2);
    let generation = ring.load().generation();
    ring.set_own_slot(2);
    assert_eq!(ring.load().generation(), generation, "no change, no swap");
    assert_eq!(ring.load().newest().unwrap().own_slot(), Some(1));
    let wire = seal_once(&ring, 0, b"x").unwrap();
    assert_eq!(slot_of(&wire), 1);
    ring.install(key(2, 0), Millis(0)).unwrap();
    let wire = seal_once(&ring, 0, b"x").unwrap();
    assert_eq!(slot_of(&wire), 2);
}

/// Erasing and serving a new instance swap in place: a worker on the same keyring drops its
/// keys at its next snapshot, and seals in the new instance once its key arrives.
#[test]
fn erasing_and_serving_a_new_instance_reach_running_workers() {
    let ring = Keyring::new(config(NO_SLOT));
    ring.install_for(&meeting(), key(1, 0), Some(1), Millis(0))
        .unwrap();
    let mut tx = WorkerKeys::new(Mode::Datagram);
    seal(&mut tx, &ring, 0, b"x").unwrap();
    assert_eq!(tx.cached_epochs(), 1);
    ring.erase();
    assert_eq!(ring.load().mk_seqs().count(), 0);
    assert_eq!(ring.load().config().own_slot, 1, "erasing keeps the config");
    tx.sync_idle(&ring.load(), Millis(0));
    assert_eq!(
        tx.cached_epochs(),
        0,
        "the worker let go of the erased keys"
    );
    assert_eq!(seal(&mut tx, &ring, 0, b"x"), Err(SealError::NoSendEpoch));

    let next = keyctl::wire::MeetingRef::new(b"meeting-1", b"uuid-2").unwrap();
    ring.serve(&next);
    assert_eq!(ring.load().config().meeting_uuid, b"uuid-2");
    assert_eq!(ring.load().config().own_slot, NO_SLOT);
    assert_eq!(
        ring.install_for(&meeting(), key(1, 0), Some(1), Millis(0)),
        Err(HandoffError::WrongMeeting { mk_seq: 1 }),
        "the old instance's keys are refused"
    );
    // The same mkSeqNum again, in the new instance: a new epoch, so the worker's cache of
    // the old one cannot stand in for it.
    ring.install_for(&next, key(1, 0), Some(2), Millis(0))
        .unwrap();
    let wire = seal(&mut tx, &ring, 0, b"y").unwrap();
    assert_eq!(slot_of(&wire), 2);
    let peer = Keyring::new(MeetingConfig {
        meeting_uuid: b"uuid-2".to_vec(),
        ..config(1)
    });
    peer.install(key(1, 0), Millis(0)).unwrap();
    assert_eq!(open_once(&peer, 0, &wire).unwrap(), b"y");
    let old_instance = Keyring::new(config(1));
    old_instance.install(key(1, 0), Millis(0)).unwrap();
    assert_eq!(
        open_once(&old_instance, 0, &wire)
            .unwrap_err()
            .drop_reason(),
        DropReason::AuthFailure,
        "stream keys bind the meetingUUID"
    );
}

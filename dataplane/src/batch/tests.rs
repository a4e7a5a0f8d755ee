use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::*;
use crate::keyring::{EpochKey, MeetingConfig};
use crate::packet::DropReason;
use crate::sframe::CipherSuite;

fn ring(own_slot: u32) -> Keyring {
    let ring = Keyring::new(MeetingConfig {
        meeting_id: b"m".to_vec(),
        meeting_uuid: b"u".to_vec(),
        own_slot,
        suite: CipherSuite::Aes256GcmSha512_128,
    });
    ring.install(
        EpochKey {
            mk_seq: 3,
            meeting_key: Zeroizing::new([7; 32]),
            roster: BTreeMap::from([(1, b"a".to_vec()), (2, b"b".to_vec())]),
            activate_at: Millis(0),
        },
        Millis(0),
    )
    .unwrap();
    ring
}

fn rtp(ssrc: u32, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Seals `batch` at 1 ms, none refused; returns how many were sealed.
fn seal_all(tx: &mut WorkerKeys, ring: &Keyring, mode: Mode, batch: &mut Batch) -> u64 {
    let mut send_drops = [0; SendDrop::ALL.len()];
    let sealed = seal_batch(tx, ring, Millis(1), mode, batch, &mut send_drops);
    assert_eq!(send_drops, [0, 0]);
    sealed.packets
}

fn roundtrip(mode: Mode, packets: &[Vec<u8>]) -> (Vec<Vec<u8>>, DropCounters) {
    let (alice, bob) = (ring(1), ring(2));
    let (mut tx, mut rx) = (WorkerKeys::new(mode), WorkerKeys::new(mode));
    let mut batch = Batch::new();
    for p in packets {
        assert!(batch.push_plain(p, None));
    }
    assert_eq!(
        seal_all(&mut tx, &alice, mode, &mut batch),
        packets.len() as u64
    );
    let mut wire = Batch::new();
    for p in batch.live() {
        assert!(wire.push_wire(p, None));
    }
    let mut drops = DropCounters::default();
    let opened = open_batch(&mut rx, &bob, Millis(1), &mut wire, &mut drops);
    assert_eq!(opened.packets + drops.total(), packets.len() as u64);
    (wire.live().map(<[u8]>::to_vec).collect(), drops)
}

#[test]
fn a_full_batch_roundtrips_in_datagram_mode() {
    let packets: Vec<Vec<u8>> = (0..BATCH_SIZE).map(|i| vec![i as u8; 1200]).collect();
    let (opened, drops) = roundtrip(Mode::Datagram, &packets);
    assert_eq!((opened, drops.total()), (packets, 0));
}

#[test]
fn rtp_mode_keys_streams_by_ssrc_and_keeps_the_header() {
    let packets: Vec<Vec<u8>> = (0..40)
        .map(|i| rtp(0x1000 + (i % 3), i as u16, &[i as u8; 200]))
        .collect();
    let (opened, _) = roundtrip(Mode::Rtp, &packets);
    assert_eq!(opened, packets);
}

#[test]
fn rejected_packets_are_marked_and_counted_by_reason() {
    let (alice, bob) = (ring(1), ring(2));
    let (mut tx, mut rx) = (
        WorkerKeys::new(Mode::Datagram),
        WorkerKeys::new(Mode::Datagram),
    );
    let mut batch = Batch::new();
    batch.push_plain(b"one", None);
    batch.push_plain(b"two", None);
    seal_batch(
        &mut tx,
        &alice,
        Millis(0),
        Mode::Datagram,
        &mut batch,
        &mut [0; 2],
    );
    let (one, two) = (batch.packet(0).to_vec(), batch.packet(1).to_vec());
    let mut flipped = two.clone();
    *flipped.last_mut().unwrap() ^= 1;
    let mut wire = Batch::new();
    for p in [
        &one[..],
        &one,
        &flipped,
        &two,
        &two[..3],
        &[0, 0, 0, 9, 0x10, 0, 1, 2][..],
    ] {
        wire.push_wire(p, None);
    }
    let mut drops = DropCounters::default();
    let tally = open_batch(&mut rx, &bob, Millis(0), &mut wire, &mut drops);
    assert_eq!(tally.packets, 2);
    assert_eq!(wire.live().collect::<Vec<_>>(), vec![&b"one"[..], b"two"]);
    let dropped: Vec<bool> = (0..wire.len()).map(|i| wire.is_dropped(i)).collect();
    assert_eq!(dropped, [false, true, true, false, true, true]);
    assert_eq!(drops.get(DropReason::Replay), 1);
    assert_eq!(drops.get(DropReason::AuthFailure), 1);
    assert_eq!(drops.get(DropReason::BadHeader), 1);
    assert_eq!(drops.get(DropReason::UnknownKey), 1);
}

#[test]
fn local_packets_that_cannot_be_sealed_are_counted() {
    let alice = ring(1);
    let mut tx = WorkerKeys::new(Mode::Rtp);
    let mut batch = Batch::new();
    batch.push_plain(b"not rtp", None);
    batch.push_plain(&rtp(5, 1, b"ok"), None);
    let mut drops = [0; SendDrop::ALL.len()];
    let tally = seal_batch(
        &mut tx,
        &alice,
        Millis(0),
        Mode::Rtp,
        &mut batch,
        &mut drops,
    );
    assert_eq!((tally.packets, drops), (1, [0, 1]));
    let empty = Keyring::new(alice.load().config().clone());
    let mut batch = Batch::new();
    batch.push_plain(&rtp(5, 1, b"ok"), None);
    seal_batch(
        &mut tx,
        &empty,
        Millis(0),
        Mode::Rtp,
        &mut batch,
        &mut drops,
    );
    assert_eq!(drops, [1, 1]);
}

#[test]
fn a_batch_refuses_what_does_not_fit() {
    let mut batch = Batch::new();
    assert!(!batch.push_plain(&[0; MAX_PLAINTEXT + 1], None));
    assert!(batch.push_plain(&[0; MAX_PLAINTEXT], None));
    assert!(!batch.commit(0..SLOT_LEN + 1, None));
    while !batch.is_full() {
        batch.push_wire(b"x", None);
    }
    assert!(!batch.push_wire(b"x", None));
    batch.clear();
    assert!(batch.is_empty());
}

/// Slots in memory the batch does not own (as an engine lends its receive buffers), in
/// reverse order of the batch's indices, with a gap between them.
struct Lent {
    memory: Vec<u8>,
}

const LENT_STRIDE: usize = SLOT_LEN + 64;

impl SlotMemory for Lent {
    fn slot(&self, index: usize) -> &[u8] {
        let at = (BATCH_SIZE - 1 - index) * LENT_STRIDE;
        &self.memory[at..at + SLOT_LEN]
    }

    fn slot_mut(&mut self, index: usize) -> &mut [u8] {
        let at = (BATCH_SIZE - 1 - index) * LENT_STRIDE;
        &mut self.memory[at..at + SLOT_LEN]
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[test]
fn a_batch_over_lent_memory_seals_and_opens_in_that_memory() {
    let lent = || {
        Batch::with_memory(Box::new(Lent {
            memory: vec![0; BATCH_SIZE * LENT_STRIDE],
        }))
    };
    let (alice, bob) = (ring(1), ring(2));
    let mode = Mode::Datagram;
    let (mut tx, mut rx) = (WorkerKeys::new(mode), WorkerKeys::new(mode));
    let mut batch = lent();
    assert!(batch.slab_mut().is_none());
    for i in 0..3 {
        assert!(batch.push_plain(&[i as u8; 100], None));
    }
    assert_eq!(seal_all(&mut tx, &alice, mode, &mut batch), 3);
    // The sealed packets are in the lent memory, at the slots it lent.
    let sealed_first = batch.packet(0).to_vec();
    let memory = batch
        .memory_mut()
        .unwrap()
        .as_any_mut()
        .downcast_mut::<Lent>()
        .unwrap();
    let at = (BATCH_SIZE - 1) * LENT_STRIDE;
    assert!(
        memory.memory[at..at + SLOT_LEN]
            .windows(sealed_first.len())
            .any(|w| w == sealed_first)
    );
    let mut wire = lent();
    for p in batch.live() {
        assert!(wire.push_wire(p, None));
    }
    let mut drops = DropCounters::default();
    let opened = open_batch(&mut rx, &bob, Millis(1), &mut wire, &mut drops);
    assert_eq!((opened.packets, drops.total()), (3, 0));
    for (i, p) in wire.live().enumerate() {
        assert_eq!(p, &[i as u8; 100][..]);
    }
}

/// Lent memory as a coalesced (GRO) receive lends it: one buffer holding packets back to back,
/// each slot a window onto exactly one packet's bytes, shorter than [`SLOT_LEN`].
struct Segments {
    buffer: Vec<u8>,
    /// Per slot: where its window starts in `buffer`, and its length.
    windows: Vec<(usize, usize)>,
}

impl SlotMemory for Segments {
    fn slot(&self, index: usize) -> &[u8] {
        let (at, len) = self.windows.get(index).copied().unwrap_or((0, 0));
        &self.buffer[at..at + len]
    }

    fn slot_mut(&mut self, index: usize) -> &mut [u8] {
        let (at, len) = self.windows.get(index).copied().unwrap_or((0, 0));
        &mut self.buffer[at..at + len]
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A slot may be shorter than SLOT_LEN: a packet that fills it exactly opens in place without
/// touching its neighbours (which sit right before and after it), a range beyond it is refused
/// at commit, and sealing there is refused without writing anything.
#[test]
fn a_short_lent_slot_opens_in_place_and_touches_nothing_beyond_it() {
    let (alice, bob) = (ring(1), ring(2));
    let mode = Mode::Datagram;
    let (mut tx, mut rx) = (WorkerKeys::new(mode), WorkerKeys::new(mode));
    let mut sealed = Batch::new();
    for i in 0..5 {
        assert!(sealed.push_plain(&[i as u8; 300], None));
    }
    assert_eq!(seal_all(&mut tx, &alice, mode, &mut sealed), 5);
    // Back to back, as GRO delivers them, between guard bytes; packet 2 is forged.
    let mut buffer = vec![0xa5u8; 8];
    let mut windows = Vec::new();
    for (i, packet) in sealed.live().enumerate() {
        windows.push((buffer.len(), packet.len()));
        buffer.extend_from_slice(packet);
        if i == 2 {
            *buffer.last_mut().unwrap() ^= 1;
        }
    }
    buffer.extend_from_slice(&[0xa5; 8]);
    let before = buffer.clone();
    let mut batch = Batch::with_memory(Box::new(Segments {
        buffer,
        windows: windows.clone(),
    }));
    for &(_, len) in &windows {
        // One byte more than the slot holds is refused; the slot's own length is taken.
        assert!(!batch.commit(0..len + 1, None));
        assert!(batch.commit(0..len, None));
    }
    let mut drops = DropCounters::default();
    let opened = open_batch(&mut rx, &bob, Millis(1), &mut batch, &mut drops);
    assert_eq!((opened.packets, drops.total()), (4, 1));
    assert_eq!(drops.get(DropReason::AuthFailure), 1);
    let memory = batch.memory_mut().unwrap().as_any_mut();
    let base = memory.downcast_mut::<Segments>().unwrap().buffer.as_ptr() as usize;
    // Where each plaintext now lies in the buffer: all that opening may have changed.
    let mut written = Vec::new();
    for i in [0, 1, 3, 4] {
        assert!(!batch.is_dropped(i));
        assert_eq!(batch.packet(i), &[i as u8; 300][..]);
        let at = batch.packet(i).as_ptr() as usize - base;
        assert!(windows[i].0 <= at && at + 300 <= windows[i].0 + windows[i].1);
        written.push(at..at + 300);
    }
    // The forged packet's own bytes (a provider may scribble on a failed open's ciphertext).
    let (forged_at, forged_len) = windows[2];
    written.push(forged_at..forged_at + forged_len);
    let memory = batch.memory_mut().unwrap().as_any_mut();
    let after = &memory.downcast_mut::<Segments>().unwrap().buffer;
    // Every other byte (headers, tags, the guards) is as it was: nothing wrote past a packet.
    for (at, (a, b)) in after.iter().zip(&before).enumerate() {
        if !written.iter().any(|range| range.contains(&at)) {
            assert_eq!(a, b, "byte {at} outside every packet's plaintext changed");
        }
    }

    // Sealing needs headroom and tag room, which a short slot lacks: refused, nothing written.
    let mut plain = Batch::with_memory(Box::new(Segments {
        buffer: vec![0x11; 400],
        windows: vec![(50, 300)],
    }));
    assert!(plain.commit(0..300, None));
    assert!(
        !plain.push_plain(&[0; 10], None),
        "a slot of no bytes takes nothing"
    );
    let mut send_drops = [0; SendDrop::ALL.len()];
    let tally = seal_batch(
        &mut tx,
        &alice,
        Millis(1),
        mode,
        &mut plain,
        &mut send_drops,
    );
    assert_eq!(tally.packets, 0);
    assert_eq!(send_drops[SendDrop::BadInput as usize], 1);
    let memory = plain.memory_mut().unwrap().as_any_mut();
    assert!(
        memory
            .downcast_mut::<Segments>()
            .unwrap()
            .buffer
            .iter()
            .all(|&b| b == 0x11),
        "sealing in a short slot wrote into the memory"
    );
}

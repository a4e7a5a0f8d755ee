//! The control plane's events drive the keyring through the one handoff: a two-party keyctl
//! meeting agrees on a key, each side's [`Handoff`] installs it under the slot the roster gives
//! that side, and media sealed by one opens at the other. Then the adversary's variants of
//! that key: a roster naming this device twice, one moving it to another slot, a key or a
//! retirement from another meeting instance; and the end of the session.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use dataplane::keyring::{
    EpochKey, Handled, Handoff, HandoffError, Keyring, KeyringError, SealError, WorkerKeys,
    own_slot_in, sender_id,
};
use dataplane::packet::{self, HEADROOM, Mode, Protected};
use dataplane::sframe::CipherSuite;
use dataplane::stream_key::StreamId;
use keyctl::crypto::SigningKey;
use keyctl::meeting::{Alert, Config, Event, KeyUpdate, LeftReason, Millis, Session, Timings};
use keyctl::rng::OsRng;
use keyctl::wire::{Field, Id, MeetingRef, ParticipantId};

const SUITE: CipherSuite = CipherSuite::Aes256GcmSha512_128;

fn relay(from: &mut Session, to: &mut Session, now: Millis, rng: &mut OsRng) {
    while let Some(msg) = from.poll_transmit() {
        let _ = to.handle(now, &msg.to_bytes(), rng);
    }
}

fn key_update(session: &mut Session) -> KeyUpdate {
    std::iter::from_fn(|| session.poll_event())
        .find_map(|e| match e {
            Event::KeyUpdate(u) => Some(u),
            _ => None,
        })
        .expect("a key update")
}

/// A keyctl meeting of a host and a guest, run until the guest holds the first certified key.
struct Meeting {
    meeting: MeetingRef,
    host: ParticipantId,
    guest: ParticipantId,
    update: KeyUpdate,
    now: Millis,
}

fn meeting() -> Meeting {
    let mut rng = OsRng::new();
    let meeting = MeetingRef::new(b"meeting-id", b"server-uuid").unwrap();
    let host = ParticipantId::new(b"host", b"d1").unwrap();
    let guest = ParticipantId::new(b"guest", b"d2").unwrap();
    let config = |me: &ParticipantId| Config {
        meeting: meeting.clone(),
        me: me.clone(),
        display_name: Id::new(Field::DisplayName, me.user.as_bytes()).unwrap(),
        leader: host.clone(),
        invite: None,
        host_secret: None,
        timings: Timings::default(),
        pq: keyctl::wire::PqPolicy::default(),
    };
    let mut now = Millis(1_700_000_000_000);
    let mut leader = Session::new(
        config(&host),
        SigningKey::generate(&mut rng).unwrap(),
        now,
        &mut rng,
    )
    .unwrap();
    let mut member = Session::new(
        config(&guest),
        SigningKey::generate(&mut rng).unwrap(),
        now,
        &mut rng,
    )
    .unwrap();
    relay(&mut leader, &mut member, now, &mut rng);
    relay(&mut member, &mut leader, now, &mut rng);
    now = leader.poll_timeout().unwrap();
    leader.handle_timeout(now, &mut rng).unwrap();
    relay(&mut leader, &mut member, now, &mut rng);
    let update = key_update(&mut member);
    Meeting {
        meeting,
        host,
        guest,
        update,
        now,
    }
}

impl Meeting {
    fn handoff(&self, me: &ParticipantId) -> Handoff {
        Handoff::new(me.clone(), &self.meeting, SUITE)
    }

    /// The slot the first key gives `who`: the test's own reading of the roster, an oracle
    /// for the handoff's (`own_slot_in`), not a second implementation drivers could use.
    fn slot_of(&self, who: &ParticipantId) -> u32 {
        *self
            .update
            .roster
            .iter()
            .find(|(_, p)| *p == who)
            .unwrap()
            .0
    }
}

fn seal(
    keys: &mut WorkerKeys,
    ring: &Keyring,
    now: Millis,
    payload: &[u8],
) -> Result<Vec<u8>, SealError> {
    let mut buf = vec![0u8; HEADROOM + payload.len() + 16];
    buf[HEADROOM..HEADROOM + payload.len()].copy_from_slice(payload);
    let range = keys.seal(&ring.load(), now, 0, &mut buf, HEADROOM, payload.len())?;
    Ok(buf[range].to_vec())
}

fn open(
    keys: &mut WorkerKeys,
    ring: &Keyring,
    now: Millis,
    wire: &[u8],
) -> Result<Vec<u8>, packet::Error> {
    let mut buf = wire.to_vec();
    let range = keys.open(&ring.load(), now, &mut buf)?;
    Ok(buf[range].to_vec())
}

/// Seals with a worker that has derived nothing yet.
fn seal_once(ring: &Keyring, now: Millis, payload: &[u8]) -> Result<Vec<u8>, SealError> {
    seal(&mut WorkerKeys::new(Mode::Datagram), ring, now, payload)
}

/// Opens with a worker that has derived nothing yet.
fn open_once(ring: &Keyring, now: Millis, wire: &[u8]) -> Result<Vec<u8>, packet::Error> {
    open(&mut WorkerKeys::new(Mode::Datagram), ring, now, wire)
}

fn stream_of(wire: &[u8]) -> StreamId {
    StreamId::from_kid(Protected::parse(Mode::Datagram, wire).unwrap().header.kid)
}

#[test]
fn a_keyctl_key_update_keys_both_ends() {
    let m = meeting();
    let (guest, host) = (m.handoff(&m.guest), m.handoff(&m.host));
    let event = Event::KeyUpdate(m.update.clone());
    for (handoff, who) in [(&guest, &m.guest), (&host, &m.host)] {
        assert_eq!(
            handoff.handle(&m.meeting, &event, m.now),
            Ok(Handled::Installed {
                mk_seq: m.update.mk_seq,
                own_slot: Some(m.slot_of(who))
            })
        );
        assert_eq!(handoff.own_slot(), Some(m.slot_of(who)));
    }
    let key = EpochKey::from(&m.update);
    assert_eq!(key.mk_seq, m.update.mk_seq);
    assert_eq!(key.roster[&m.slot_of(&m.guest)], sender_id(&m.guest));
    assert_eq!(&*key.meeting_key, m.update.meeting_key.expose_secret());

    let at = m.update.activate_at;
    let wire = seal_once(guest.keyring(), at, &[0x42; 100]).unwrap();
    assert_eq!(stream_of(&wire).sender_slot, m.slot_of(&m.guest));
    let opened = open_once(host.keyring(), at, &wire).unwrap();
    assert_eq!(opened, [0x42; 100]);
    // The keyring sends with the key from its activation time on, not before.
    assert!(
        guest
            .keyring()
            .load()
            .send_epoch(Millis(at.0 - 1))
            .is_none()
    );
}

/// The issue this type exists for: the workers hold the keyring from the start, before any
/// slot is known, and the first key that names this device reaches them with its slot.
#[test]
fn running_workers_learn_the_slot_from_the_first_key_without_a_restart() {
    let m = meeting();
    let guest = m.handoff(&m.guest);
    let worker_ring: Arc<Keyring> = Arc::clone(guest.keyring());
    let mut worker = WorkerKeys::new(Mode::Datagram);
    let at = m.update.activate_at;
    assert!(
        seal(&mut worker, &worker_ring, at, b"early").is_err(),
        "no key, no slot"
    );
    assert_eq!(guest.own_slot(), None);
    guest.install(&m.meeting, &m.update, m.now).unwrap();
    let wire = seal(&mut worker, &worker_ring, at, b"now").unwrap();
    assert_eq!(stream_of(&wire).sender_slot, m.slot_of(&m.guest));
    let host = m.handoff(&m.host);
    host.install(&m.meeting, &m.update, m.now).unwrap();
    assert_eq!(open_once(host.keyring(), at, &wire).unwrap(), b"now");
}

/// keyctl's list holds a participant once; a roster naming this device under two slots comes
/// only from a broken or hostile control plane, and is refused whole.
#[test]
fn a_roster_naming_this_device_twice_is_refused_and_changes_nothing() {
    let m = meeting();
    let mut twice = m.update.clone();
    twice.roster.insert(9_999, m.guest.clone());
    let first = m.slot_of(&m.guest);
    let refused = Err(HandoffError::NamedTwice {
        mk_seq: twice.mk_seq,
        first,
        second: 9_999,
    });
    assert_eq!(own_slot_in(&twice, &m.guest), refused.clone());
    let guest = m.handoff(&m.guest);
    assert_eq!(guest.install(&m.meeting, &twice, m.now), refused);
    assert_eq!(
        guest.keyring().load().generation(),
        0,
        "nothing was published"
    );
    // The host is named once in it: its keyring takes the key.
    assert_eq!(
        m.handoff(&m.host).install(&m.meeting, &twice, m.now),
        Ok(Some(m.slot_of(&m.host)))
    );
}

/// A rejoin in the same instance moves a device to a new slot (slots are never reused). The
/// epoch still sending keeps the old slot until the new key activates, then every packet is
/// under the new one; no (mkSeqNum, KID) ever names two slots, every (KID, CTR) under a key is
/// new, the peer opens everything, and each epoch refuses this device's own packets sent back.
#[test]
fn a_slot_change_between_rotations_never_shares_a_kid_under_a_key() {
    let m = meeting();
    let (guest, host) = (m.handoff(&m.guest), m.handoff(&m.host));
    let old_slot = m.slot_of(&m.guest);
    let mut moved = m.update.clone();
    moved.mk_seq += 1;
    moved.activate_at = Millis(m.update.activate_at.0 + 5_000);
    moved.roster.retain(|_, p| *p != m.guest);
    let new_slot = moved.roster.keys().max().unwrap() + 1;
    moved.roster.insert(new_slot, m.guest.clone());
    for handoff in [&guest, &host] {
        handoff.install(&m.meeting, &m.update, m.now).unwrap();
    }
    let (mut tx, mut rx, mut own) = (
        WorkerKeys::new(Mode::Datagram),
        WorkerKeys::new(Mode::Datagram),
        WorkerKeys::new(Mode::Datagram),
    );
    let mut sent = Vec::new();
    let start = m.update.activate_at.0;
    for i in 0..200u64 {
        if i == 50 {
            for handoff in [&guest, &host] {
                assert!(
                    handoff
                        .install(&m.meeting, &moved, Millis(start + i))
                        .is_ok()
                );
            }
            assert_eq!(guest.own_slot(), Some(new_slot));
        }
        // Crosses the new key's activation at 5 s.
        let now = Millis(start + i * 50);
        let wire = seal(&mut tx, guest.keyring(), now, &i.to_be_bytes()).unwrap();
        assert_eq!(
            open(&mut rx, host.keyring(), now, &wire).unwrap(),
            i.to_be_bytes()
        );
        let kid = Protected::parse(Mode::Datagram, &wire).unwrap().header.kid;
        assert_eq!(
            open(&mut own, guest.keyring(), now, &wire),
            Err(packet::Error::Reflected(kid))
        );
        sent.push(wire);
    }
    let mut slots = BTreeSet::new();
    let mut pairs = BTreeSet::new();
    for wire in &sent {
        let mk_seq = u32::from_be_bytes(wire[..4].try_into().unwrap());
        let header = Protected::parse(Mode::Datagram, wire).unwrap().header;
        let slot = StreamId::from_kid(header.kid).sender_slot;
        let expected = if mk_seq == m.update.mk_seq {
            old_slot
        } else {
            new_slot
        };
        assert_eq!(
            slot, expected,
            "epoch {mk_seq} seals under its own slot only"
        );
        slots.insert((mk_seq, slot));
        assert!(
            pairs.insert((mk_seq, header.kid, header.ctr)),
            "a (key, nonce) pair twice"
        );
    }
    assert_eq!(slots.len(), 2, "both epochs sent: {slots:?}");
    assert_eq!(
        own.cached_recv_keys(),
        0,
        "no send key was ever derived as a receive key"
    );
}

#[test]
fn a_key_or_retirement_from_another_meeting_instance_is_refused() {
    let m = meeting();
    let guest = m.handoff(&m.guest);
    let restarted = MeetingRef::new(b"meeting-id", b"another-uuid").unwrap();
    let wrong = HandoffError::WrongMeeting {
        mk_seq: m.update.mk_seq,
    };
    assert_eq!(
        guest.install(&restarted, &m.update, m.now),
        Err(wrong.clone())
    );
    assert_eq!(guest.keyring().load().generation(), 0);
    guest.install(&m.meeting, &m.update, m.now).unwrap();
    let retire = Event::RetireEpoch {
        mk_seq: m.update.mk_seq,
        at: m.now,
    };
    assert_eq!(guest.handle(&restarted, &retire, m.now), Err(wrong));
    assert!(
        guest
            .keyring()
            .load()
            .recv_epoch(m.update.mk_seq, m.now)
            .is_some()
    );
    assert_eq!(
        guest.handle(&m.meeting, &retire, m.now),
        Ok(Handled::Retired {
            mk_seq: m.update.mk_seq
        })
    );
    assert!(
        guest
            .keyring()
            .load()
            .recv_epoch(m.update.mk_seq, m.now)
            .is_none()
    );
}

/// whitepaper 3.7.8: the session's end erases every key; a new session (here in a restarted
/// instance) starts on the same keyring with no key and no slot.
#[test]
fn leaving_erases_every_key_and_a_new_session_starts_on_the_same_keyring() {
    let m = meeting();
    let guest = m.handoff(&m.guest);
    let ring = Arc::clone(guest.keyring());
    guest.install(&m.meeting, &m.update, m.now).unwrap();
    let mut worker = WorkerKeys::new(Mode::Datagram);
    let at = m.update.activate_at;
    seal(&mut worker, &ring, at, b"x").unwrap();
    let alert = Event::Alert(Alert::MeetingUnlocked);
    assert_eq!(guest.handle(&m.meeting, &alert, at), Ok(Handled::Ignored));
    assert_eq!(
        guest.handle(&m.meeting, &Event::Left(LeftReason::Requested), at),
        Ok(Handled::Erased)
    );
    assert_eq!(ring.load().mk_seqs().count(), 0);
    assert_eq!(guest.own_slot(), None);
    assert_eq!(
        seal(&mut worker, &ring, at, b"x"),
        Err(SealError::NoSendEpoch)
    );
    assert_eq!(worker.cached_epochs(), 0);

    let restarted = MeetingRef::new(b"meeting-id", b"another-uuid").unwrap();
    guest.enter(&restarted);
    assert!(Arc::ptr_eq(guest.keyring(), &ring));
    assert_eq!(ring.load().config().meeting_uuid, b"another-uuid");
    assert!(matches!(
        seal(&mut worker, &ring, at, b"x"),
        Err(SealError::SlotOutOfRange(_))
    ));
    assert_eq!(
        guest.install(&m.meeting, &m.update, at),
        Err(HandoffError::WrongMeeting {
            mk_seq: m.update.mk_seq
        }),
        "a key of the old instance"
    );
    assert_eq!(
        guest.install(&restarted, &m.update, at),
        Ok(Some(m.slot_of(&m.guest)))
    );
    let wire = seal(&mut worker, &ring, at, b"y").unwrap();
    // The old instance's keys do not open it: stream keys bind the meetingUUID.
    let host = m.handoff(&m.host);
    host.install(&m.meeting, &m.update, m.now).unwrap();
    assert!(open_once(host.keyring(), at, &wire).is_err());
    host.enter(&restarted);
    host.install(&restarted, &m.update, at).unwrap();
    assert_eq!(open_once(host.keyring(), at, &wire).unwrap(), b"y");
}

#[test]
fn a_key_the_keyring_refuses_is_a_typed_error() {
    let m = meeting();
    let guest = m.handoff(&m.guest);
    guest.install(&m.meeting, &m.update, m.now).unwrap();
    assert_eq!(
        guest.install(&m.meeting, &m.update, m.now),
        Err(HandoffError::Keyring(KeyringError::NotNewer {
            mk_seq: m.update.mk_seq,
            newest: m.update.mk_seq
        }))
    );
    let mut wide = m.update.clone();
    wide.mk_seq += 1;
    wide.roster.insert(u32::MAX - 1, m.host.clone());
    assert_eq!(
        guest.install(&m.meeting, &wide, m.now),
        Err(HandoffError::Keyring(KeyringError::SlotOutOfRange(
            u32::MAX - 1
        )))
    );
}

#[test]
fn sender_ids_are_length_prefixed() {
    let p = ParticipantId::new(b"ab", b"c").unwrap();
    assert_eq!(sender_id(&p), [0, 2, b'a', b'b', 0, 1, b'c']);
}

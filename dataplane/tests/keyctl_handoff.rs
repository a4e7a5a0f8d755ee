//! The control plane's key update drives the keyring: a two-party keyctl meeting agrees on a key,
//! each side installs its `KeyUpdate`, and media sealed by one opens at the other.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dataplane::keyring::{EpochKey, Keyring, MeetingConfig, WorkerKeys, sender_id};
use dataplane::packet::{HEADROOM, Mode};
use dataplane::sframe::CipherSuite;
use keyctl::crypto::SigningKey;
use keyctl::meeting::{Config, Event, KeyUpdate, Millis, Session, Timings};
use keyctl::rng::OsRng;
use keyctl::wire::{Field, Id, MeetingRef, ParticipantId};

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

#[test]
fn a_keyctl_key_update_keys_both_ends() {
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
    let slot_of = |who: &ParticipantId| *update.roster.iter().find(|(_, p)| *p == who).unwrap().0;

    let ring = |me: &ParticipantId| {
        let ring = Keyring::new(MeetingConfig {
            meeting_id: meeting.meeting_id.as_bytes().to_vec(),
            meeting_uuid: meeting.meeting_uuid.as_bytes().to_vec(),
            own_slot: slot_of(me),
            suite: CipherSuite::Aes256GcmSha512_128,
        });
        ring.install(EpochKey::from(&update), now).unwrap();
        ring
    };
    let (guest_ring, host_ring) = (ring(&guest), ring(&host));
    let key = EpochKey::from(&update);
    assert_eq!(key.mk_seq, update.mk_seq);
    assert_eq!(key.roster[&slot_of(&guest)], sender_id(&guest));
    assert_eq!(&*key.meeting_key, update.meeting_key.expose_secret());

    let at = update.activate_at;
    let mut buf = vec![0u8; HEADROOM + 100 + 16];
    buf[HEADROOM..HEADROOM + 100].copy_from_slice(&[0x42; 100]);
    let sealed = WorkerKeys::new(Mode::Datagram)
        .seal(&guest_ring.load(), at, 0, &mut buf, HEADROOM, 100)
        .unwrap();
    let mut wire = buf[sealed].to_vec();
    let opened = WorkerKeys::new(Mode::Datagram)
        .open(&host_ring.load(), at, &mut wire)
        .unwrap();
    assert_eq!(&wire[opened], &[0x42; 100][..]);
    // The keyring sends with the key from its activation time on, not before.
    assert!(guest_ring.load().send_epoch(Millis(at.0 - 1)).is_none());
}

#[test]
fn sender_ids_are_length_prefixed() {
    let p = ParticipantId::new(b"ab", b"c").unwrap();
    assert_eq!(sender_id(&p), [0, 2, b'a', b'b', 0, 1, b'c']);
}

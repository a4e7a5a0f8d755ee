//! The meeting state machine driven by arbitrary event sequences over an adversarial board:
//! deliveries in any order, drops, replays, corrupted and injected bytes, time jumps, kicks,
//! leaves and locks. Invariants checked after every step:
//! - each session's mkSeqNum in key updates strictly increases;
//! - a kicked participant never receives a key newer than the leader's key at the kick;
//! - a session that has left holds no key material.
#![no_main]
#![forbid(unsafe_code)]

use arbitrary::{Arbitrary, Unstructured};
use keyctl::crypto::SigningKey;
use keyctl::meeting::{Config, Event, Millis, Session, Timings};
use keyctl::wire::{Field, Id, MeetingRef, ParticipantId};
use libfuzzer_sys::fuzz_target;

const PARTIES: usize = 4;

use keyctl::test_rng::TestRng;

#[derive(Debug, Arbitrary)]
enum Step {
    /// Deliver the next board post `to` has not seen.
    Deliver {
        to: u8,
    },
    /// Deliver everything pending to everyone.
    DeliverAll,
    /// The board withholds the next post from `to`.
    Withhold {
        to: u8,
    },
    /// The board re-delivers an earlier post.
    Replay {
        to: u8,
        index: u16,
    },
    /// The board flips a bit of the next post to `to`.
    Corrupt {
        to: u8,
        bit: u16,
    },
    /// The board injects arbitrary bytes.
    Inject {
        to: u8,
        bytes: Vec<u8>,
    },
    /// Time passes; due timeouts fire.
    Advance {
        millis: u16,
    },
    Kick {
        who: u8,
    },
    Leave {
        who: u8,
    },
    Lock,
    Unlock,
}

#[derive(Debug, Arbitrary)]
struct Script {
    seed: u64,
    steps: Vec<Step>,
}

struct Party {
    session: Session,
    cursor: usize,
    last_mk_seq: u32,
    /// Set when the leader kicked this party: the leader's mkSeqNum at that moment.
    kicked_at: Option<u32>,
    left: bool,
}

struct World {
    parties: Vec<Party>,
    ids: Vec<ParticipantId>,
    /// Every post, with its poster.
    board: Vec<(usize, Vec<u8>)>,
    now: Millis,
    rng: TestRng,
}

impl World {
    fn new(seed: u64) -> Option<Self> {
        let mut rng = TestRng::from_u64(seed);
        let meeting = MeetingRef::new(b"fuzz-meeting", b"fuzz-uuid").ok()?;
        let ids: Vec<_> = (0..PARTIES)
            .map(|i| ParticipantId::new(format!("user{i}").as_bytes(), b"device"))
            .collect::<Result<_, _>>()
            .ok()?;
        let now = Millis(1_700_000_000_000);
        let mut parties = Vec::new();
        for id in &ids {
            let config = Config {
                meeting: meeting.clone(),
                me: id.clone(),
                display_name: Id::new(Field::DisplayName, id.user.as_bytes()).ok()?,
                leader: ids[0].clone(),
                invite: None,
                host_secret: None,
                timings: Timings::default(),
                pq: keyctl::wire::PqPolicy::default(),
            };
            let key = SigningKey::generate(&mut rng).ok()?;
            let session = Session::new(config, key, now, &mut rng).ok()?;
            parties.push(Party {
                session,
                cursor: 0,
                last_mk_seq: 0,
                kicked_at: None,
                left: false,
            });
        }
        Some(Self {
            parties,
            ids,
            board: Vec::new(),
            now,
            rng,
        })
    }

    /// Collects posts and checks every event against the invariants.
    fn settle(&mut self) {
        for (i, party) in self.parties.iter_mut().enumerate() {
            while let Some(msg) = party.session.poll_transmit() {
                self.board.push((i, msg.to_bytes()));
            }
            while let Some(event) = party.session.poll_event() {
                match event {
                    Event::KeyUpdate(update) => {
                        assert!(
                            update.mk_seq > party.last_mk_seq,
                            "party {i}: mkSeqNum went from {} to {}",
                            party.last_mk_seq,
                            update.mk_seq
                        );
                        party.last_mk_seq = update.mk_seq;
                        if let Some(limit) = party.kicked_at {
                            assert!(
                                update.mk_seq <= limit,
                                "party {i} was kicked at {limit} but got key {}",
                                update.mk_seq
                            );
                        }
                    }
                    Event::Left(_) => party.left = true,
                    _ => {}
                }
            }
            if party.left {
                assert!(
                    !party.session.holds_key_material(),
                    "party {i} left but holds keys"
                );
            }
        }
    }

    /// The next post `to` has not seen (skipping its own), advancing its cursor.
    fn next_for(&mut self, to: usize) -> Option<Vec<u8>> {
        let party = &mut self.parties[to];
        while let Some((from, bytes)) = self.board.get(party.cursor) {
            party.cursor += 1;
            if *from != to {
                return Some(bytes.clone());
            }
        }
        None
    }

    fn deliver(&mut self, to: usize, bytes: &[u8]) {
        let _ = self.parties[to]
            .session
            .handle(self.now, bytes, &mut self.rng);
    }

    fn step(&mut self, step: Step) {
        let pick = |who: u8| usize::from(who) % PARTIES;
        match step {
            Step::Deliver { to } => {
                let to = pick(to);
                if let Some(bytes) = self.next_for(to) {
                    self.deliver(to, &bytes);
                }
            }
            Step::DeliverAll => {
                for to in 0..PARTIES {
                    while let Some(bytes) = self.next_for(to) {
                        self.deliver(to, &bytes);
                    }
                }
            }
            Step::Withhold { to } => {
                let _ = self.next_for(pick(to));
            }
            Step::Replay { to, index } => {
                if !self.board.is_empty() {
                    let bytes = self.board[usize::from(index) % self.board.len()].1.clone();
                    self.deliver(pick(to), &bytes);
                }
            }
            Step::Corrupt { to, bit } => {
                let to = pick(to);
                if let Some(mut bytes) = self.next_for(to) {
                    if !bytes.is_empty() {
                        let bit = usize::from(bit) % (bytes.len() * 8);
                        bytes[bit / 8] ^= 1 << (bit % 8);
                    }
                    self.deliver(to, &bytes);
                }
            }
            Step::Inject { to, bytes } => self.deliver(pick(to), &bytes),
            Step::Advance { millis } => {
                self.now = Millis(self.now.0 + u64::from(millis) * 10);
                for party in &mut self.parties {
                    if party.session.poll_timeout().is_some_and(|t| t <= self.now) {
                        let _ = party.session.handle_timeout(self.now, &mut self.rng);
                    }
                }
            }
            Step::Kick { who } => {
                let who = pick(who);
                if who != 0 {
                    let id = self.ids[who].clone();
                    // Every key boxed so far is at most the leader's current one; the kick's
                    // own rekey and everything after it must never reach the kicked party.
                    let limit = self.parties[0].session.mk_seq();
                    if self.parties[0]
                        .session
                        .kick(self.now, &id, &mut self.rng)
                        .is_ok()
                    {
                        self.parties[who].kicked_at.get_or_insert(limit);
                    }
                }
            }
            Step::Leave { who } => {
                let _ = self.parties[pick(who)].session.leave();
            }
            Step::Lock => {
                let _ = self.parties[0].session.lock();
            }
            Step::Unlock => {
                let _ = self.parties[0].session.unlock();
            }
        }
        self.settle();
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(script) = Script::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let Some(mut world) = World::new(script.seed) else {
        return;
    };
    world.settle();
    // Form the meeting first, so the script disturbs a keyed meeting rather than spending its
    // steps discovering how to start one.
    for _ in 0..4 {
        world.step(Step::DeliverAll);
        world.step(Step::Advance { millis: 300 });
    }
    world.step(Step::DeliverAll);
    for (i, party) in world.parties.iter().enumerate() {
        assert!(
            party.last_mk_seq > 0,
            "party {i} got no key while forming the meeting"
        );
    }
    for step in script.steps.into_iter().take(256) {
        world.step(step);
    }
});

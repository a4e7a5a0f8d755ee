//! The meeting: one sans-IO state machine per participant, in the leader or the
//! participant role, over an untrusted bulletin board (whitepaper 3.7, hardened per v4.6).
//!
//! A driver owns a [`Session`] and pumps it, in the style of quinn-proto:
//!
//! - inputs: [`Session::handle`] for every board message (bytes, untrusted),
//!   [`Session::handle_timeout`] when [`Session::poll_timeout`] is reached, and the
//!   leader's commands ([`Session::kick`], [`Session::lock`], [`Session::unlock`],
//!   [`Session::ban_invite`], [`Session::set_cohosts`]), a co-host's
//!   [`Session::request_lock`], and [`Session::leave`];
//! - outputs: [`Session::poll_transmit`] (messages to post to the board) and
//!   [`Session::poll_event`] ([`Event::KeyUpdate`] and [`Event::RetireEpoch`] for the
//!   dataplane, [`Alert`]s for the user interface, [`Event::Left`]).
//!
//! Every input carries `now` ([`Millis`]) and, where randomness is needed, the caller's
//! [`rand_core::TryCryptoRng`]. The session never reads a clock and never draws its own
//! randomness, so a test with a seeded generator and virtual time is deterministic.
//!
//! What the dataplane gets is [`KeyUpdate`]: the meeting key of one `mkSeqNum`, the roster
//! of sender slots it was certified for, and when to start sending with it; and
//! [`Event::RetireEpoch`]: when to stop decrypting an older one.
//!
//! A leader and one participant, with the board played by hand:
//!
//! ```
//! use keyctl::crypto::SigningKey;
//! use keyctl::meeting::{Config, Event, Millis, PqPolicy, Session, Timings};
//! use keyctl::rng::OsRng;
//! use keyctl::wire::{Field, Id, MeetingRef, ParticipantId};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rng = OsRng::new();
//! let meeting = MeetingRef::new(b"meeting-id", b"server-uuid")?;
//! let (host, guest) = (ParticipantId::new(b"host", b"d1")?, ParticipantId::new(b"guest", b"d2")?);
//! let config = |me: &ParticipantId| Config {
//!     meeting: meeting.clone(),
//!     me: me.clone(),
//!     display_name: Id::new(Field::DisplayName, me.user.as_bytes()).unwrap(),
//!     leader: host.clone(),
//!     invite: None,
//!     host_secret: None,
//!     timings: Timings::default(),
//!     pq: PqPolicy::Required,
//! };
//! let mut now = Millis(1_700_000_000_000);
//! let mut leader = Session::new(config(&host), SigningKey::generate(&mut rng)?, now, &mut rng)?;
//! let mut member = Session::new(config(&guest), SigningKey::generate(&mut rng)?, now, &mut rng)?;
//!
//! // The board: deliver everything each side posts to the other, as bytes.
//! fn relay(from: &mut Session, to: &mut Session, now: Millis, rng: &mut OsRng) {
//!     while let Some(msg) = from.poll_transmit() {
//!         let _ = to.handle(now, &msg.to_bytes(), rng); // refusals are typed errors
//!     }
//! }
//! relay(&mut leader, &mut member, now, &mut rng);
//! relay(&mut member, &mut leader, now, &mut rng);
//! // The leader batches joins for a second, then rekeys and sends a heartbeat.
//! now = leader.poll_timeout().unwrap();
//! leader.handle_timeout(now, &mut rng)?;
//! relay(&mut leader, &mut member, now, &mut rng);
//!
//! let update = std::iter::from_fn(|| member.poll_event())
//!     .find_map(|e| match e { Event::KeyUpdate(u) => Some(u), _ => None })
//!     .unwrap();
//! assert_eq!(update.mk_seq, 2);
//! assert_eq!(update.roster.len(), 2);
//! assert_eq!(member.leader_security_code(), leader.leader_security_code());
//! // Both bindings carry an ML-KEM-768 key: the key came in the v4.6 hybrid box.
//! assert_eq!(member.pq_policy(), Some(PqPolicy::Required));
//! assert_eq!(member.key_delivery().unwrap()[&guest], keyctl::meeting::KeyDelivery::Hybrid);
//! # Ok(())
//! # }
//! ```

mod config;
mod error;
mod events;
mod handlers;
mod heartbeat;
mod invite;
mod keys;
mod leader;
mod limits;
mod lpl;
mod session;

pub use config::{Config, Timings};
pub use error::MeetingError;
pub use events::{Alert, Event, KeyDelivery, KeyUpdate, LeftReason, MeetingKey};
pub use invite::{Invite, InviteSecret, invite_id};
pub use limits::{
    KEY_REQUEST_MIN_GAP_MS, MAX_PARTICIPANTS, MAX_PENDING, MAX_ROSTER, MAX_SLOT,
    ROSTER_PER_PARTICIPANT,
};
pub use lpl::RosterView;
pub use session::{Role, Session};

pub use crate::time::Millis;
pub use crate::wire::{BoxKind, PqPolicy};

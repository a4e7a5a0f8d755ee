//! The meeting: one sans-IO state machine per participant, in the leader or the
//! participant role, over an untrusted bulletin board (whitepaper 3.7, hardened per v4.6).
//!
//! A driver owns a [`Session`] and pumps it, in the style of quinn-proto:
//!
//! - inputs: [`Session::handle`] for every board message (bytes, untrusted),
//!   [`Session::handle_timeout`] when [`Session::poll_timeout`] is reached, and the
//!   leader's commands ([`Session::kick`], [`Session::lock`], [`Session::unlock`],
//!   [`Session::ban_invite`]) and [`Session::leave`];
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

mod config;
mod error;
mod events;
mod heartbeat;
mod invite;
mod keyring;
mod leader;
mod lpl;
mod session;

pub use config::{Config, Timings};
pub use error::MeetingError;
pub use events::{Alert, Event, KeyUpdate, LeftReason, MeetingKey};
pub use invite::{InviteSecret, invite_id};
pub use lpl::RosterView;
pub use session::{Role, Session};

pub use crate::time::Millis;

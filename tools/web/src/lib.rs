//! veil-web: the core of a browser participant, sans-IO, in the shape of keyctl's session: bytes
//! in (the board's WebSocket messages, received media datagrams), bytes out (messages to send,
//! sealed datagrams), `now` and randomness from the caller. The page's JavaScript (or any
//! driver) pumps it; nothing here touches a socket, a clock or storage, so it builds for
//! `wasm32-unknown-unknown` with the pure-Rust crypto provider and is tested natively against
//! the real board core.
//!
//! The web-calls essay's rules, as this crate keeps them:
//! - **A fresh identity per page load** ([`WebParticipant::new`]): an Ed25519 key made for this
//!   meeting and thrown away with it (guest mode, whitepaper 3.13); nothing is written anywhere.
//! - **The meeting link carries what the page needs** ([`MeetingLink`], in the URL fragment,
//!   which browsers never send to a server): the board, the meeting, the host's invite, the
//!   certificate hashes to pin.
//! - **Media through the relay** ([`WebParticipant::handle_relay`], [`WebParticipant::poll_relay_transmit`]):
//!   the same registration datagrams a sidecar sends, over the relay's WebTransport session.
//! - **Every key is erased on leave and on drop**: keyctl's session zeroizes its keys, the
//!   keyring's handoff erases every epoch, the identity key is zeroized.
#![forbid(unsafe_code)]

mod error;
mod link;
mod participant;
mod relay;
pub mod speed;
pub mod vp8;

pub use error::WebError;
pub use link::{LinkError, MAX_USER, MeetingLink, valid_user};
pub use participant::{
    Counters, MAX_ALERTS, MAX_PAYLOAD, Member, WebEvent, WebParticipant, WebStatus,
};

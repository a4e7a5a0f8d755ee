//! Adversarial exploration of keyctl meetings.
//!
//! A deterministic [`World`] holds four sessions of one meeting (a host, two honest
//! participants and the adversary's own participant, "mallory"), a board that keeps every
//! post, virtual time and a seeded RNG. Each [`Action`] is a move of the adversary (deliver,
//! drop, delay, reorder, duplicate or replay any post, also posts recorded from another
//! instance of the meeting; post `Leave` and `LeaderChange` notices; rejoin with its own
//! identity; announce fresh identities of its own; strip an announcement's ML-KEM-768 key;
//! strip the ML-DSA half off a hybrid-signed post; as a quantum adversary that forges
//! Ed25519, rejoin under another party's `IVK` with a classical identity or another
//! ML-DSA-65 key), of a host (kick, leave, lock, unlock) or of time. The parties have hybrid
//! identities (Ed25519 + ML-DSA-65, keyctl revision 4); the board's Sybils are classical.
//! After every action, and at every timer that fires inside a time step, the world checks
//! invariants I1-I9 ([`Invariant`]) from the outside, through keyctl's public API only.
//!
//! [`Action::ForgeRejoin`] is the one action that holds a secret of an honest party: the
//! world hands the adversary the victim's Ed25519 seed for it (a quantum computer recovers
//! the signing scalar from `IVK`; the ML-DSA-65 key stays out of reach), and I9
//! ([`Invariant::I9NoForgedRejoin`]) says keyctl revision 5 keeps the forgery out: nobody
//! honest lists it, keys it or takes a key from it, whether the victim is present, left or
//! was kicked.
//!
//! A byte string chooses the actions ([`Action::decode`]), so the same world is driven by
//! cargo-fuzz (fuzz/fuzz_targets/keyctl_adversary.rs), by a proptest in CI
//! (tests/explore.rs), and by stateright's bounded breadth-first search over the action
//! history (tests/model_check.rs). A violation comes back as a [`Failure`] whose action
//! list [`check`] has minimized, printed as Rust to paste into a test.
//!
//! What the oracle cannot observe through the public API: the size of a session's peer
//! map, key ring and heartbeat chain (I6 checks the roster and the output queued per
//! input instead), and keys a session holds but never hands to the dataplane (I1 and I5
//! look at [`keyctl::meeting::Event::KeyUpdate`]s).
#![forbid(unsafe_code)]

mod action;
mod explore;
mod invariant;
mod world;

pub use action::{ADVANCE_MS, Action, Kind, Repro};
pub use explore::{check, replay, run};
pub use invariant::{Failure, Invariant, KNOWN_OPEN, Violation, enforced};
pub use keyctl::test_rng::TestRng;
pub use world::{
    EVENT_BOUND, HONEST, Instance, MALLORY, MAX_FORGED, MAX_IDENTITIES, MAX_INJECTED, MEETING_CAP,
    NEW_LEADER_KEY_MS, PARTIES, TRANSMIT_BOUND, World, i2_bound, i3_bound, timings,
};

//! What the core asks before it routes: the board's routing policy. An honest board
//! ([`Honest`]) delivers every post as it came; the test adversary ([`crate::Tamper`]) is another
//! policy, in its own module, so the routing code holds no adversary and the adversary no routing.
//!
//! The board is untrusted by design (whitepaper 3.1): a policy can withhold, rewrite, replay and
//! partition, which is exactly what participants must detect. It cannot forge a signature.

use std::fmt;

use keyctl::wire::Message;

/// The decisions the core leaves to its policy. Every method has the honest answer as its
/// default, so a policy names only where it departs from it.
pub trait Policy: fmt::Debug + Send {
    /// Whether to keep the posts of departed participants and give them to every participant
    /// of the next instance of the same meeting.
    fn records_instances(&self) -> bool {
        false
    }

    /// Whether to withhold `msg` from everyone.
    fn withholds(&self, msg: &Message) -> bool {
        let _ = msg;
        false
    }

    /// Whether [`Policy::rewrite`] may change anything: without it the core does not decode a
    /// stored post again before it delivers it.
    fn rewrites(&self) -> bool {
        false
    }

    /// The bytes to deliver in place of `msg`, or `None` to deliver it as posted.
    fn rewrite(&self, msg: &Message) -> Option<Vec<u8>> {
        let _ = msg;
        None
    }

    /// At how many participants to split a meeting instance into two halves that no longer
    /// see each other, or `None` never to.
    fn partition_at(&self) -> Option<usize> {
        None
    }
}

/// The honest board: routes every post as posted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Honest;

impl Policy for Honest {}

/// The policy for `--tamper`: honest without a scenario.
pub fn policy_for(tamper: Option<crate::Tamper>) -> Box<dyn Policy> {
    match tamper {
        Some(tamper) => Box::new(tamper),
        None => Box::new(Honest),
    }
}

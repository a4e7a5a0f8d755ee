//! Heartbeat chains: the leader's writer and a participant's verifier (whitepaper 3.7.7,
//! v4.6 meetings: heartbeats chained by the previous heartbeat's hash).

use super::error::MeetingError;
use super::lpl::Lpl;
use super::session::{Identity, SigHedge};
use crate::time::Millis;
use crate::wire::{Binding, Heartbeat, HeartbeatInput, Message};

/// The chain as a participant has accepted it; a new leader continues from it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chain {
    /// `H_{i-1}`, the last accepted heartbeat hash (`None` before the first).
    pub(crate) last: Option<[u8; 32]>,
    /// The last `t`.
    pub(crate) t: u64,
    /// The last leader timestamp.
    pub(crate) timestamp_ms: u64,
}

impl Chain {
    /// Checks a heartbeat whose signature over `h` (its `H_i`) verified against the LPL held
    /// and the chain, and extends the chain with it. Returns the certified `mkSeqNum`.
    pub(crate) fn accept(
        &mut self,
        hb: &Heartbeat,
        h: [u8; 32],
        lpl: &Lpl,
    ) -> Result<u32, MeetingError> {
        if let Some(last) = self.last {
            // v4.6: H_i covers H_{i-1}; a heartbeat that does not extend what we accepted
            // comes from a diverged history (a partition).
            if hb.prev != last {
                return Err(MeetingError::HeartbeatChain);
            }
            if hb.t <= self.t || hb.timestamp_ms <= self.timestamp_ms {
                return Err(MeetingError::HeartbeatOrder);
            }
        }
        // The heartbeat certifies SHA256(LPL_v) and v: we must hold exactly that list.
        if hb.v != lpl.v() || hb.lpl_hash != lpl.head() {
            return Err(MeetingError::HeartbeatLpl);
        }
        self.last = Some(h);
        self.t = hb.t;
        self.timestamp_ms = hb.timestamp_ms;
        Ok(hb.mk_seq)
    }

    /// The leader's next heartbeat over the current LPL and `mk_seq`.
    pub(crate) fn next(
        &mut self,
        isk: &Identity,
        hedge: &mut SigHedge,
        binding: &Binding,
        lpl: &Lpl,
        mk_seq: u32,
        now: Millis,
    ) -> Result<Message, MeetingError> {
        let input = HeartbeatInput {
            leader_binding: binding.clone(),
            lpl_hash: lpl.head(),
            v: lpl.v(),
            t: self.t + 1,
            mk_seq,
            prev: self.last.unwrap_or([0; 32]),
            // v4.6: a monotonically increasing leader timestamp.
            timestamp_ms: now.0.max(self.timestamp_ms + 1),
        };
        let (hb, h) = Heartbeat::sign(&input, isk.ed25519());
        let hb = isk.sign(hb, &h, hedge)?;
        self.last = Some(h);
        self.t = input.t;
        self.timestamp_ms = input.timestamp_ms;
        Ok(hb)
    }
}

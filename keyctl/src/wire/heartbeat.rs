//! Heartbeats (whitepaper 3.7.7, v4.6 meetings: heartbeats chained by hash).

use super::binding::Binding;
use super::codec::{Reader, Writer};
use super::{Kind, WireError, encoding};
use crate::crypto::{self, CTX_SIG_LPL, SigningKey};

/// What the heartbeat hash covers (v4.6 meetings):
/// `H_i = SHA256(Binding_leader || SHA256(LPL_v) || v || t || mkSeqNum || H_{i-1} || timestamp)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatInput {
    /// The leader's binding.
    pub leader_binding: Binding,
    /// `SHA256(LPL_v)`: hash of the latest LPL link.
    pub lpl_hash: [u8; 32],
    /// `v`: LPL operation counter.
    pub v: u64,
    /// `t`: heartbeat counter, incremented on every send.
    pub t: u64,
    /// `mkSeqNum` this heartbeat certifies.
    pub mk_seq: u32,
    /// `H_{i-1}` (all zero for a leader's first heartbeat).
    pub prev: [u8; 32],
    /// The leader's monotonic timestamp, unix milliseconds.
    pub timestamp_ms: u64,
}

impl HeartbeatInput {
    pub(crate) fn emit_body(&self, w: &mut Vec<u8>) {
        w.extend_from_slice(&self.leader_binding.to_bytes());
        w.bytes(&self.lpl_hash);
        w.u64(self.v);
        w.u64(self.t);
        w.u32(self.mk_seq);
        w.bytes(&self.prev);
        w.u64(self.timestamp_ms);
    }

    pub(crate) fn parse_body(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            leader_binding: Binding::parse_nested(r)?,
            lpl_hash: r.array()?,
            v: r.u64()?,
            t: r.u64()?,
            mk_seq: r.u32()?,
            prev: r.array()?,
            timestamp_ms: r.u64()?,
        })
    }

    /// `H_i`.
    pub fn hash(&self) -> [u8; 32] {
        crypto::sha256(&self.to_bytes())
    }
}
encoding!(HeartbeatInput, Kind::HeartbeatInput);

/// The heartbeat the leader broadcasts: the fields of [`HeartbeatInput`] except the
/// leader's binding (every participant has it), and
/// `S_i = Sign.Sign(ISK_leader, "Zoombase1-ClientOnly-Sig-LeaderParticipantList", H_i)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// `SHA256(LPL_v)`.
    pub lpl_hash: [u8; 32],
    /// `v`.
    pub v: u64,
    /// `t`.
    pub t: u64,
    /// `mkSeqNum`.
    pub mk_seq: u32,
    /// `H_{i-1}`.
    pub prev: [u8; 32],
    /// Leader timestamp, unix milliseconds.
    pub timestamp_ms: u64,
    /// `S_i`.
    pub sig: [u8; 64],
}

impl Heartbeat {
    /// The hash input, given the leader's binding.
    pub fn input(&self, leader_binding: &Binding) -> HeartbeatInput {
        HeartbeatInput {
            leader_binding: leader_binding.clone(),
            lpl_hash: self.lpl_hash,
            v: self.v,
            t: self.t,
            mk_seq: self.mk_seq,
            prev: self.prev,
            timestamp_ms: self.timestamp_ms,
        }
    }

    /// Builds and signs a heartbeat; returns it with its hash `H_i`.
    pub fn sign(input: &HeartbeatInput, isk: &SigningKey) -> (Self, [u8; 32]) {
        let h = input.hash();
        let sig = isk.sign(CTX_SIG_LPL, &h);
        let hb = Self {
            lpl_hash: input.lpl_hash,
            v: input.v,
            t: input.t,
            mk_seq: input.mk_seq,
            prev: input.prev,
            timestamp_ms: input.timestamp_ms,
            sig,
        };
        (hb, h)
    }

    /// Verifies `S_i` against the leader's binding; returns `H_i` if it holds.
    pub fn verify(&self, leader_binding: &Binding) -> Option<[u8; 32]> {
        let h = self.input(leader_binding).hash();
        crypto::verify(&leader_binding.ivk, &self.sig, CTX_SIG_LPL, &h).then_some(h)
    }

    pub(crate) fn emit_body(&self, w: &mut Vec<u8>) {
        w.bytes(&self.lpl_hash);
        w.u64(self.v);
        w.u64(self.t);
        w.u32(self.mk_seq);
        w.bytes(&self.prev);
        w.u64(self.timestamp_ms);
        w.bytes(&self.sig);
    }

    pub(crate) fn parse_body(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            lpl_hash: r.array()?,
            v: r.u64()?,
            t: r.u64()?,
            mk_seq: r.u32()?,
            prev: r.array()?,
            timestamp_ms: r.u64()?,
            sig: r.array()?,
        })
    }
}
encoding!(Heartbeat, Kind::Heartbeat);

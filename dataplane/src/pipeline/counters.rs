//! Per-worker counters: each worker writes its own, once per batch; readers sum them.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::batch::SendDrop;
use crate::packet::{DropCounters, DropReason};

/// Which way packets flow through the sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Local plaintext, sealed and sent to the network.
    Outbound,
    /// Network packets, opened and delivered locally.
    Inbound,
}

impl Direction {
    /// Both, in counter order.
    pub const ALL: [Direction; 2] = [Self::Outbound, Self::Inbound];

    /// A stable name for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Outbound => "outbound",
            Self::Inbound => "inbound",
        }
    }
}

/// Packets an engine lost outside the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoDrop {
    /// A datagram larger than a slot.
    Truncated,
    /// The kernel refused a send.
    SendFailed,
    /// A local datagram not from the configured client ([`super::LocalClient`]): never
    /// sealed, since whatever is sealed goes out authenticated as this device's stream.
    ForeignSource,
}

impl IoDrop {
    /// Every reason, in counter order.
    pub const ALL: [IoDrop; 3] = [Self::Truncated, Self::SendFailed, Self::ForeignSource];

    /// A stable name for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::SendFailed => "send_failed",
            Self::ForeignSource => "foreign_source",
        }
    }
}

/// Plain totals: what a worker accumulates locally and what readers sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// Packets passed on, per [`Direction`].
    pub packets: [u64; 2],
    /// Bytes passed on (sealed bytes outbound, plaintext bytes inbound), per [`Direction`].
    pub bytes: [u64; 2],
    /// Packets handed to the kernel, per [`Direction`].
    pub sent: [u64; 2],
    /// Inbound drops by [`DropReason`].
    pub drops: DropCounters,
    /// Outbound drops by [`SendDrop`].
    pub send_drops: [u64; SendDrop::ALL.len()],
    /// Engine drops by [`IoDrop`], per [`Direction`].
    pub io_drops: [[u64; IoDrop::ALL.len()]; 2],
}

impl CountersSnapshot {
    /// Adds another worker's totals.
    pub fn add(&mut self, other: &Self) {
        for d in 0..2 {
            self.packets[d] += other.packets[d];
            self.bytes[d] += other.bytes[d];
            self.sent[d] += other.sent[d];
            for r in 0..IoDrop::ALL.len() {
                self.io_drops[d][r] += other.io_drops[d][r];
            }
        }
        for reason in DropReason::ALL {
            self.drops.record_many(reason, other.drops.get(reason));
        }
        for r in 0..SendDrop::ALL.len() {
            self.send_drops[r] += other.send_drops[r];
        }
    }
}

const FIELDS: usize =
    2 + 2 + 2 + DropReason::ALL.len() + SendDrop::ALL.len() + 2 * IoDrop::ALL.len();

/// One worker's published totals. Aligned to its own cache lines so workers never share one.
#[derive(Debug)]
#[repr(align(128))]
pub struct Counters {
    fields: [AtomicU64; FIELDS],
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            fields: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

fn flatten(s: &CountersSnapshot) -> [u64; FIELDS] {
    // Plain indexed writes (an iterator chain here cost a paced packet tens of nanoseconds);
    // the order is the one `Counters::read` unpacks.
    let mut out = [0u64; FIELDS];
    out[..2].copy_from_slice(&s.packets);
    out[2..4].copy_from_slice(&s.bytes);
    out[4..6].copy_from_slice(&s.sent);
    let mut at = 6;
    for reason in DropReason::ALL {
        out[at] = s.drops.get(reason);
        at += 1;
    }
    out[at..at + SendDrop::ALL.len()].copy_from_slice(&s.send_drops);
    at += SendDrop::ALL.len();
    for per_direction in &s.io_drops {
        out[at..at + IoDrop::ALL.len()].copy_from_slice(per_direction);
        at += IoDrop::ALL.len();
    }
    out
}

impl Counters {
    /// Publishes a worker's running totals (only that worker calls this).
    pub fn publish(&self, totals: &CountersSnapshot) {
        for (field, value) in self.fields.iter().zip(flatten(totals)) {
            field.store(value, Ordering::Relaxed);
        }
    }

    /// The last published totals.
    pub fn read(&self) -> CountersSnapshot {
        let v: [u64; FIELDS] = std::array::from_fn(|i| self.fields[i].load(Ordering::Relaxed));
        let mut s = CountersSnapshot {
            packets: [v[0], v[1]],
            bytes: [v[2], v[3]],
            sent: [v[4], v[5]],
            ..CountersSnapshot::default()
        };
        let mut at = 6;
        for reason in DropReason::ALL {
            s.drops.record_many(reason, v[at]);
            at += 1;
        }
        for r in 0..SendDrop::ALL.len() {
            s.send_drops[r] = v[at];
            at += 1;
        }
        for d in 0..2 {
            for r in 0..IoDrop::ALL.len() {
                s.io_drops[d][r] = v[at];
                at += 1;
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_then_read_gives_back_every_field() {
        // A distinct value in every field, so a field written to the wrong place shows.
        let mut next = 0u64;
        let mut value = || {
            next += 1;
            next
        };
        let mut totals = CountersSnapshot {
            packets: [value(), value()],
            bytes: [value(), value()],
            sent: [value(), value()],
            ..CountersSnapshot::default()
        };
        for reason in DropReason::ALL {
            totals.drops.record_many(reason, value());
        }
        for drop in &mut totals.send_drops {
            *drop = value();
        }
        for per_direction in &mut totals.io_drops {
            for drop in per_direction {
                *drop = value();
            }
        }
        assert_eq!(next as usize, FIELDS, "every field got a value");
        let counters = Counters::default();
        assert_eq!(counters.read(), CountersSnapshot::default());
        counters.publish(&totals);
        assert_eq!(counters.read(), totals);
    }
}

//! The sidecar's pipeline: seal what the local client sends, open what the network sends.

use std::sync::Arc;

use super::{Counters, CountersSnapshot, Direction, IoDrop, Pipeline, Side};
use crate::batch::{Batch, Tally, open_batch, seal_batch};
use crate::keyring::{Keyring, Millis, WorkerKeys};
use crate::packet::Mode;

/// One worker's pipeline: its keys, its running totals, and where it publishes them.
pub struct Forwarder {
    keyring: Arc<Keyring>,
    keys: WorkerKeys,
    mode: Mode,
    crypto: bool,
    totals: CountersSnapshot,
    /// Whether `totals` moved since they were last published.
    dirty: bool,
    counters: Arc<Counters>,
}

impl core::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Forwarder")
            .field("mode", &self.mode)
            .field("crypto", &self.crypto)
            .field("totals", &self.totals)
            .finish_non_exhaustive()
    }
}

impl Forwarder {
    /// A worker's pipeline over `keyring`, publishing into `counters`.
    pub fn new(keyring: Arc<Keyring>, mode: Mode, counters: Arc<Counters>) -> Self {
        Self {
            keyring,
            keys: WorkerKeys::new(mode),
            mode,
            crypto: true,
            totals: CountersSnapshot::default(),
            dirty: false,
            counters,
        }
    }

    /// The same pipeline forwarding without crypto: the baseline the benches compare against.
    /// Never use it for real traffic.
    pub fn without_crypto(mut self) -> Self {
        self.crypto = false;
        self
    }

    /// This worker's totals so far.
    pub fn totals(&self) -> &CountersSnapshot {
        &self.totals
    }

    fn count(&mut self, direction: Direction, tally: Tally) {
        let d = direction as usize;
        self.totals.packets[d] += tally.packets;
        self.totals.bytes[d] += tally.bytes;
    }
}

fn passthrough(batch: &Batch) -> Tally {
    batch.live().fold(Tally::default(), |t, p| Tally {
        packets: t.packets + 1,
        bytes: t.bytes + p.len() as u64,
    })
}

impl Pipeline for Forwarder {
    fn process(&mut self, from: Side, now: Millis, batch: &mut Batch) {
        let (direction, tally) = match (from, self.crypto) {
            (Side::Local, true) => {
                let tally = seal_batch(
                    &mut self.keys,
                    &self.keyring,
                    now,
                    self.mode,
                    batch,
                    &mut self.totals.send_drops,
                );
                (Direction::Outbound, tally)
            }
            (Side::Network, true) => {
                let tally = open_batch(
                    &mut self.keys,
                    &self.keyring,
                    now,
                    batch,
                    &mut self.totals.drops,
                );
                (Direction::Inbound, tally)
            }
            (Side::Local, false) => (Direction::Outbound, passthrough(batch)),
            (Side::Network, false) => (Direction::Inbound, passthrough(batch)),
        };
        self.count(direction, tally);
        self.dirty = true;
    }

    fn io_drop(&mut self, side: Side, reason: IoDrop, packets: u64) {
        let direction = match side {
            Side::Local => Direction::Outbound,
            Side::Network => Direction::Inbound,
        };
        self.totals.io_drops[direction as usize][reason as usize] += packets;
        self.dirty = true;
    }

    fn sent(&mut self, to: Side, packets: u64) {
        let direction = match to {
            Side::Network => Direction::Outbound,
            Side::Local => Direction::Inbound,
        };
        if packets > 0 {
            self.totals.sent[direction as usize] += packets;
            self.dirty = true;
        }
    }

    fn publish(&mut self) {
        // The only point where a worker touches memory others read, and only when a count
        // moved since the last time.
        if std::mem::take(&mut self.dirty) {
            self.counters.publish(&self.totals);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::MeetingConfig;
    use crate::sframe::CipherSuite;

    #[test]
    fn counts_reach_readers_only_when_published() {
        let keyring = Arc::new(Keyring::new(MeetingConfig {
            meeting_id: b"m".to_vec(),
            meeting_uuid: b"u".to_vec(),
            own_slot: 0,
            suite: CipherSuite::Aes256GcmSha512_128,
        }));
        let counters = Arc::new(Counters::default());
        let mut forwarder =
            Forwarder::new(keyring, Mode::Datagram, Arc::clone(&counters)).without_crypto();
        let mut batch = Batch::new();
        batch.push_wire(&[1, 2, 3], None);
        forwarder.process(Side::Local, Millis(0), &mut batch);
        forwarder.sent(Side::Network, 1);
        assert_eq!(counters.read(), CountersSnapshot::default());
        forwarder.publish();
        let published = counters.read();
        assert_eq!(published.packets, [1, 0]);
        assert_eq!(published.sent, [1, 0]);
        assert_eq!(&published, forwarder.totals());
    }
}

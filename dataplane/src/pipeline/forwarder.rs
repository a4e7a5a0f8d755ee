//! The sidecar's pipeline: seal what the local client sends, open what the network sends.

use std::sync::Arc;

use super::{Counters, CountersSnapshot, Direction, IoDrop, LocalClient, Pipeline, Side};
use crate::batch::{Batch, Tally, open_batch, seal_batch};
use crate::keyring::{Keyring, Millis, WorkerKeys};
use crate::packet::Mode;

/// One worker's pipeline: its keys, its running totals, and where it publishes them.
pub struct Forwarder {
    keyring: Arc<Keyring>,
    keys: WorkerKeys,
    mode: Mode,
    crypto: bool,
    /// Whose local datagrams are sealed; `None` seals any (benches and tests only).
    client: Option<LocalClient>,
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
            .field("client", &self.client)
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
            client: None,
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

    /// Seals only what `client` sends; every other local datagram is dropped and counted as
    /// [`IoDrop::ForeignSource`]. A sidecar always sets it: without it any process that can
    /// reach the local socket has its datagrams sealed as this device's stream.
    pub fn with_local_client(mut self, client: LocalClient) -> Self {
        self.client = Some(client);
        self
    }

    /// This worker's totals so far.
    pub fn totals(&self) -> &CountersSnapshot {
        &self.totals
    }

    /// Marks every local datagram not from the client dropped, before anything is sealed.
    fn refuse_foreign(&mut self, batch: &mut Batch) {
        let Some(client) = self.client else {
            return;
        };
        let mut foreign = 0;
        for index in 0..batch.len() {
            if !batch.is_dropped(index) && !client.admits(batch.addr(index)) {
                batch.drop_packet(index);
                foreign += 1;
            }
        }
        if foreign > 0 {
            self.io_drop(Side::Local, IoDrop::ForeignSource, foreign);
        }
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
        if from == Side::Local {
            self.refuse_foreign(batch);
        }
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

    fn tick(&mut self, now: Millis) {
        self.keys.sync_idle(&self.keyring.load(), now);
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

    /// Finding 19.4: only the configured client's datagrams reach sealing.
    #[test]
    fn local_datagrams_from_anyone_but_the_client_are_dropped_and_counted() {
        let keyring = Arc::new(Keyring::new(MeetingConfig {
            meeting_id: b"m".to_vec(),
            meeting_uuid: b"u".to_vec(),
            own_slot: 0,
            suite: CipherSuite::Aes256GcmSha512_128,
        }));
        let client = LocalClient::new("127.0.0.1:0".parse().unwrap());
        let mut forwarder = Forwarder::new(keyring, Mode::Datagram, Arc::new(Counters::default()))
            .without_crypto()
            .with_local_client(client);
        let mut batch = Batch::new();
        batch.push_plain(&[1], Some("127.0.0.1:5000".parse().unwrap()));
        batch.push_plain(&[2], Some("127.0.0.7:5000".parse().unwrap()));
        batch.push_plain(&[3], None);
        batch.push_plain(&[4], Some("[::ffff:127.0.0.1]:6000".parse().unwrap()));
        forwarder.process(Side::Local, Millis(0), &mut batch);
        let dropped: Vec<bool> = (0..batch.len()).map(|i| batch.is_dropped(i)).collect();
        assert_eq!(dropped, [false, true, true, false]);
        let totals = forwarder.totals();
        assert_eq!(totals.packets, [2, 0]);
        assert_eq!(
            totals.io_drops[Direction::Outbound as usize][IoDrop::ForeignSource as usize],
            2
        );
        // Network packets are not the client's business.
        let mut inbound = Batch::new();
        inbound.push_wire(&[5], Some("192.0.2.1:6000".parse().unwrap()));
        forwarder.process(Side::Network, Millis(0), &mut inbound);
        assert!(!inbound.is_dropped(0));
    }

    #[test]
    fn a_client_port_pins_one_socket() {
        let pinned = LocalClient::new("127.0.0.1:5000".parse().unwrap());
        assert!(pinned.admits(Some("127.0.0.1:5000".parse().unwrap())));
        assert!(!pinned.admits(Some("127.0.0.1:5001".parse().unwrap())));
        assert!(!pinned.admits(Some("127.0.0.2:5000".parse().unwrap())));
        assert!(!pinned.admits(None));
    }
}

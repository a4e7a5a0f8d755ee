//! The worker threads: one per core, each with its own SO_REUSEPORT sockets and engine.
//!
//! The sidecar starts them once, on the keyring they read for the whole run: keys, this
//! device's sender slot and, in meeting mode, each new meeting instance reach them through the
//! keyring's snapshots (`dataplane::keyring::Handoff`), so nothing about keys restarts them.
//! Stopping drains each worker and hands its sockets back; a generation started after that
//! would run on the same sockets and count into fresh counters that are kept, so `/metrics`
//! (which sums every generation) never goes backwards.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use dataplane::keyring::Keyring;
use dataplane::packet::Mode;
use dataplane::pipeline::{Counters, CountersSnapshot, Forwarder, LocalClient};
use dataplane_udp::{EngineKind, WorkerSockets, mio_engine, uring};

use super::{SidecarError, io_error};

/// Every generation's counters, summed on read.
pub(crate) type SharedCounters = Arc<Mutex<Vec<Arc<Counters>>>>;

/// What a worker thread hands back when it stops.
type Returned = (WorkerSockets, CountersSnapshot);

/// The workers and, while they are stopped, their sockets.
pub(crate) struct Workers {
    engine: EngineKind,
    mode: Mode,
    /// Whose local datagrams are sealed.
    client: LocalClient,
    idle: Vec<WorkerSockets>,
    running: Vec<JoinHandle<Returned>>,
    stop: Arc<AtomicBool>,
    counters: SharedCounters,
    totals: CountersSnapshot,
}

impl Workers {
    /// Workers over these socket pairs (not started).
    pub(crate) fn new(
        engine: EngineKind,
        mode: Mode,
        pairs: Vec<(UdpSocket, UdpSocket)>,
        deliver: SocketAddr,
        client: LocalClient,
        remote: SocketAddr,
    ) -> Self {
        let idle = pairs
            .into_iter()
            .map(|(local, network)| WorkerSockets {
                local,
                network,
                deliver,
                remote,
            })
            .collect();
        Self {
            engine,
            mode,
            client,
            idle,
            running: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            counters: Arc::new(Mutex::new(Vec::new())),
            totals: CountersSnapshot::default(),
        }
    }

    /// The counters `/metrics` sums.
    pub(crate) fn counters(&self) -> SharedCounters {
        self.counters.clone()
    }

    /// How many workers there are.
    pub(crate) fn count(&self) -> usize {
        self.idle.len() + self.running.len()
    }

    /// A clone of the first network socket, for sending registrations from `--bind`.
    pub(crate) fn network_socket(&self) -> Result<UdpSocket, SidecarError> {
        let first = self.idle.first().ok_or(SidecarError::Io {
            what: "--bind",
            error: std::io::ErrorKind::NotFound.into(),
        })?;
        first.network.try_clone().map_err(io_error("--bind"))
    }

    /// Starts a generation on `keyring` (the workers must be stopped).
    pub(crate) fn start(&mut self, keyring: &Arc<Keyring>) -> Result<(), SidecarError> {
        self.stop.store(false, Ordering::SeqCst);
        let engine = self.engine;
        for (index, sockets) in std::mem::take(&mut self.idle).into_iter().enumerate() {
            let worker_counters = Arc::new(Counters::default());
            self.counters
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(worker_counters.clone());
            let mut forwarder = Forwarder::new(keyring.clone(), self.mode, worker_counters)
                .with_local_client(self.client);
            let stop = self.stop.clone();
            let handle = thread::Builder::new()
                .name(format!("veil-worker-{index}"))
                .spawn(move || {
                    let result = match engine {
                        EngineKind::Uring => uring::run(&sockets, &mut forwarder, &stop),
                        EngineKind::Mio => mio_engine::run(&sockets, &mut forwarder, &stop),
                    };
                    if let Err(error) = result {
                        tracing::error!(worker = index, %error, "worker stopped");
                    }
                    (sockets, forwarder.totals().to_owned())
                })
                .map_err(io_error("spawning a worker"))?;
            self.running.push(handle);
        }
        Ok(())
    }

    /// Stops the running generation (each worker drains first) and takes its sockets back.
    /// Once this returns no worker holds the keyring any more.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for handle in self.running.drain(..) {
            match handle.join() {
                Ok((sockets, totals)) => {
                    self.totals.add(&totals);
                    self.idle.push(sockets);
                }
                Err(_) => tracing::error!("a worker panicked; its sockets are gone"),
            }
        }
    }

    /// Stops and returns the totals of every generation.
    pub(crate) fn finish(mut self) -> CountersSnapshot {
        self.stop();
        self.totals
    }
}

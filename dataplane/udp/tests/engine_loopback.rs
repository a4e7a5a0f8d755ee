//! Two workers back to back on loopback, each engine: packets cross both ways intact, and
//! nothing is dropped or counted as bad on the way.
//!
//! The counting allocator (dataplane/tests/common/counting_alloc.rs, a const thread-local
//! tally that only counts) lets a test read a worker thread's allocations from its pipeline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use dataplane::batch::{Batch, SendDrop, seal_batch};
use dataplane::keyring::{EpochKey, Keyring, MeetingConfig, Millis, WorkerKeys};
use dataplane::packet::{DropReason, Mode};
use dataplane::pipeline::{Counters, Forwarder, IoDrop, Pipeline, Side as PipelineSide};
use dataplane::sframe::CipherSuite;
use dataplane_udp::{
    BatchIo, EngineKind, ReceiveReport, WorkerSockets, bind_reuseport, mio_engine, uring,
};
use zeroize::Zeroizing;

#[path = "../../tests/common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

fn keyring(slot: u32) -> Arc<Keyring> {
    let ring = Keyring::new(MeetingConfig {
        meeting_id: b"m".to_vec(),
        meeting_uuid: b"u".to_vec(),
        own_slot: slot,
        suite: CipherSuite::Aes256GcmSha512_128,
    });
    let key = EpochKey {
        mk_seq: 1,
        meeting_key: Zeroizing::new([4; 32]),
        roster: BTreeMap::from([(0, b"a".to_vec()), (1, b"b".to_vec())]),
        activate_at: Millis(0),
    };
    ring.install(key, Millis(0)).unwrap();
    Arc::new(ring)
}

fn any() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

struct Side {
    local: SocketAddr,
    sink: UdpSocket,
    counters: Arc<Counters>,
}

fn run(engine: EngineKind, mode: Mode, packets: usize, size: usize) {
    run_with(engine, mode, packets, size, 0);
}

const SMALL_RING: u16 = 64;

fn payload(mode: Mode, n: usize, size: usize) -> Vec<u8> {
    let mut payload = vec![(n % 251) as u8; size];
    if mode == Mode::Rtp {
        payload[..12].copy_from_slice(&[0x80, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
    }
    payload[12..16].copy_from_slice(&(n as u32).to_be_bytes());
    payload
}

/// `early` packets go from side 0 to side 1 before the workers start: a burst larger than a
/// provided buffer ring makes the io_uring engine re-arm after ENOBUFS.
fn run_with(engine: EngineKind, mode: Mode, packets: usize, size: usize, early: usize) -> u64 {
    let config = if early > 0 {
        uring::Config::default().with_buffers(SMALL_RING)
    } else {
        uring::Config::default()
    };
    let reports = run_full(engine, mode, packets, size, early, 0, config);
    reports.iter().map(|r| r.rearms).sum()
}

/// What a worker of either engine reported (mio has no re-arms).
#[derive(Debug)]
struct Report {
    rearms: u64,
    local: ReceiveReport,
    network: ReceiveReport,
}

impl From<uring::RunReport> for Report {
    fn from(report: uring::RunReport) -> Self {
        Self {
            rearms: report.rearms,
            local: report.local,
            network: report.network,
        }
    }
}

impl From<mio_engine::RunReport> for Report {
    fn from(report: mio_engine::RunReport) -> Self {
        Self {
            rearms: 0,
            local: report.local,
            network: report.network,
        }
    }
}

/// [`run_with`] with `forged` datagrams (garbage, which the pipeline refuses) sent to side 1's
/// network socket in GSO bursts before the workers start, and the io_uring engine run as `config` says.
/// Returns each worker's report.
fn run_full(
    engine: EngineKind,
    mode: Mode,
    packets: usize,
    size: usize,
    early: usize,
    forged: usize,
    config: uring::Config,
) -> Vec<Report> {
    let stop = Arc::new(AtomicBool::new(false));
    let nets = [
        bind_reuseport(any()).unwrap(),
        bind_reuseport(any()).unwrap(),
    ];
    let net_addrs = [nets[0].local_addr().unwrap(), nets[1].local_addr().unwrap()];
    let mut sides = Vec::new();
    let mut pending = Vec::new();
    for (i, network) in nets.into_iter().enumerate() {
        let local = bind_reuseport(any()).unwrap();
        // A 4 MiB buffer (bind_reuseport's) holds the early burst until the test reads it.
        let sink = bind_reuseport(any()).unwrap();
        sink.set_nonblocking(false).unwrap();
        sink.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let counters = Arc::new(Counters::default());
        sides.push(Side {
            local: local.local_addr().unwrap(),
            sink: sink.try_clone().unwrap(),
            counters: counters.clone(),
        });
        let sockets = WorkerSockets {
            local,
            network,
            deliver: sink.local_addr().unwrap(),
            remote: net_addrs[1 - i],
        };
        pending.push((sockets, Forwarder::new(keyring(i as u32), mode, counters)));
    }
    let client = UdpSocket::bind(any()).unwrap();
    let mut client_io = BatchIo::new(&client);
    // In GSO bursts of up to 64, so that a GRO socket receives them coalesced.
    for burst in (0..forged).step_by(64) {
        let mut out = Batch::new();
        for n in burst..(burst + 64).min(forged) {
            assert!(out.push_wire(&[(n % 251) as u8; 300], None));
        }
        let sent = client_io.send(&client, &out, net_addrs[1]).unwrap();
        assert_eq!(sent as usize, out.len());
    }
    for n in 0..early {
        client
            .send_to(&payload(mode, n, size), sides[0].local)
            .unwrap();
    }
    let mut workers = Vec::new();
    for (sockets, mut forwarder) in pending {
        let stop = stop.clone();
        workers.push(thread::spawn(move || match engine {
            EngineKind::Mio => mio_engine::run_reporting(&sockets, &mut forwarder, &stop)
                .unwrap()
                .into(),
            EngineKind::Uring => uring::run_configured(&sockets, &mut forwarder, &stop, config)
                .unwrap()
                .into(),
        }));
    }
    let mut buf = vec![0u8; 4096];
    let mut seen = vec![false; early];
    for _ in 0..early {
        let len = sides[1]
            .sink
            .recv(&mut buf)
            .expect("an early packet went missing");
        let n = u32::from_be_bytes(buf[12..16].try_into().unwrap()) as usize;
        assert!(len == size && !seen[n]);
        seen[n] = true;
    }
    for (from, to) in [(0, 1), (1, 0)] {
        let mut seen = vec![false; packets];
        for burst in (0..packets).step_by(64) {
            let end = (burst + 64).min(packets);
            // One GSO send per burst: with GRO on the receiving socket (mio engine) the burst
            // arrives as one coalesced buffer that the engine splits.
            let mut out = Batch::new();
            for n in burst..end {
                assert!(out.push_wire(&payload(mode, n, size), None));
            }
            let sent = client_io.send(&client, &out, sides[from].local).unwrap();
            assert_eq!(sent as usize, end - burst);
            for _ in burst..end {
                let len = sides[to]
                    .sink
                    .recv(&mut buf)
                    .expect("a packet went missing");
                assert_eq!(len, size);
                let n = u32::from_be_bytes(buf[12..16].try_into().unwrap()) as usize;
                assert!(!seen[n], "packet {n} delivered twice");
                seen[n] = true;
                assert!(
                    buf[16..len].iter().all(|&b| b == (n % 251) as u8),
                    "packet {n} altered"
                );
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    let reports = workers.into_iter().map(|w| w.join().unwrap()).collect();
    for (i, side) in sides.iter().enumerate() {
        let c = side.counters.read();
        assert_eq!(c.drops.total(), if i == 1 { forged as u64 } else { 0 });
        assert_eq!(c.send_drops, [0, 0]);
        assert_eq!(c.packets[0] + c.packets[1], (2 * packets + early) as u64);
        assert_eq!(c.sent, c.packets);
    }
    reports
}

#[test]
fn mio_datagram() {
    run(EngineKind::Mio, Mode::Datagram, 20_000, 1200);
}

#[test]
fn mio_rtp() {
    run(EngineKind::Mio, Mode::Rtp, 20_000, 200);
}

#[test]
fn uring_datagram() {
    run(EngineKind::Uring, Mode::Datagram, 20_000, 1200);
}

#[test]
fn uring_rtp() {
    run(EngineKind::Uring, Mode::Rtp, 20_000, 200);
}

#[test]
fn uring_rearms_after_running_out_of_buffers() {
    let rearms = run_with(EngineKind::Uring, Mode::Datagram, 1000, 100, 2000);
    assert!(
        rearms > 0,
        "the burst never exhausted the {SMALL_RING}-buffer ring"
    );
}

/// Without GRO the io_uring engine seals and opens every datagram in the provided buffer the
/// kernel wrote it into, and sends it from there: it copies none into a batch slot.
#[test]
fn uring_without_gro_copies_no_datagram() {
    for (mode, size) in [(Mode::Datagram, 1200), (Mode::Rtp, 200)] {
        let config = uring::Config::default().with_gro(false);
        let reports = run_full(EngineKind::Uring, mode, 5000, size, 0, 0, config);
        for report in reports {
            assert_eq!(
                (report.local.copied, report.network.copied),
                (0, 0),
                "{report:?}"
            );
        }
    }
    // With GRO the coalesced bursts are split by copying: the counter sees copies.
    let reports = run_full(
        EngineKind::Uring,
        Mode::Datagram,
        1000,
        1200,
        0,
        0,
        uring::Config::default(),
    );
    assert!(reports.iter().any(|r| r.local.copied > 0), "{reports:?}");
}

/// Far more forged datagrams than a ring of [`SMALL_RING`] buffers holds, then traffic, all
/// delivered (`run_full` checks): so every buffer of a refused datagram came back to the ring
/// (io_uring), or was received into again (mio, whose two GRO buffers serve every batch).
fn run_after_forgeries(engine: EngineKind, gro: bool) -> Vec<Report> {
    let config = uring::Config::default()
        .with_gro(gro)
        .with_buffers(SMALL_RING);
    let forged = 20 * usize::from(SMALL_RING);
    run_full(engine, Mode::Datagram, 2000, 1200, 500, forged, config)
}

/// A buffer whose datagram the pipeline refused (forged) goes back to the ring like one that
/// was sent.
#[test]
fn uring_without_gro_returns_the_buffers_of_forged_packets() {
    let reports = run_after_forgeries(EngineKind::Uring, false);
    assert!(
        reports
            .iter()
            .all(|r| r.local.copied == 0 && r.network.copied == 0),
        "{reports:?}"
    );
}

/// With GRO `engine` opens every segment of a coalesced receive where it landed in the GRO
/// buffer and sends the plaintext from there: the network side copies nothing, while its
/// receives were really coalesced (the peer engine sends GSO runs) and every packet arrives
/// intact (`run_full` checks each and that nothing was counted as a drop). The local side,
/// whose datagrams are sealed and so grow, still copies each GRO segment: the control.
fn opens_in_place_with_gro(engine: EngineKind) {
    for (mode, size) in [(Mode::Datagram, 1200), (Mode::Rtp, 200)] {
        let reports = run_full(engine, mode, 5000, size, 0, 0, uring::Config::default());
        for report in &reports {
            assert_eq!(report.network.copied, 0, "{report:?}");
        }
        assert!(
            reports.iter().all(|r| r.network.coalesced > 0),
            "GRO never coalesced what a peer engine sent: {reports:?}"
        );
        assert!(
            reports.iter().all(|r| r.local.copied > 0),
            "the client's GSO bursts were not copied: {reports:?}"
        );
    }
}

#[test]
fn uring_with_gro_opens_in_place() {
    opens_in_place_with_gro(EngineKind::Uring);
}

/// Forged datagrams in coalesced bursts, far more than the GRO ring has buffers (8): each
/// buffer, all of whose segments the pipeline refused, goes back to the ring, and the traffic
/// behind them is delivered.
#[test]
fn uring_with_gro_returns_the_buffers_of_forged_packets() {
    let reports = run_after_forgeries(EngineKind::Uring, true);
    assert_eq!(reports[1].network.copied, 0, "{reports:?}");
    assert!(reports[1].network.coalesced > 0, "{reports:?}");
}

#[test]
fn mio_takes_a_burst_queued_before_start() {
    run_with(EngineKind::Mio, Mode::Datagram, 1000, 100, 2000);
}

/// The mio engine opens the network side's GRO segments in their GRO buffer too.
#[test]
fn mio_with_gro_opens_in_place() {
    opens_in_place_with_gro(EngineKind::Mio);
}

/// Forged datagrams in coalesced bursts queued before the mio worker starts, genuine ones
/// behind them, then traffic both ways: every forgery refused and counted, nothing genuine lost
/// across the many batches that reuse the two GRO buffers, nothing copied on the network side.
#[test]
fn mio_with_gro_refuses_forged_bursts_and_loses_nothing() {
    let reports = run_after_forgeries(EngineKind::Mio, true);
    assert_eq!(reports[1].network.copied, 0, "{reports:?}");
    assert!(reports[1].network.coalesced > 0, "{reports:?}");
}

#[test]
fn io_uring_is_probed_usable_here() {
    // This machine runs io_uring; where it cannot, the probe must say why instead.
    let (kind, reason) = EngineKind::probe();
    assert_eq!(kind, EngineKind::Uring, "{reason:?}");
}

/// A worker with no traffic sleeps in its idle wait (io_uring: the idle tick, a multishot
/// timeout; mio: epoll's timeout) and must still see its stop flag within a few idle periods.
fn idle_worker_stops_promptly(engine: EngineKind) {
    let sockets = WorkerSockets {
        local: bind_reuseport(any()).unwrap(),
        network: bind_reuseport(any()).unwrap(),
        deliver: any(),
        remote: any(),
    };
    let counters = Arc::new(Counters::default());
    let mut forwarder = Forwarder::new(keyring(0), Mode::Datagram, counters);
    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done) = std::sync::mpsc::channel();
    let flag = stop.clone();
    let worker = thread::spawn(move || {
        let result = match engine {
            EngineKind::Mio => mio_engine::run(&sockets, &mut forwarder, &flag),
            EngineKind::Uring => uring::run(&sockets, &mut forwarder, &flag),
        };
        let _ = done_tx.send(result.map_err(|e| e.to_string()));
    });
    // Long enough for several idle waits to have begun and ended.
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let result = done
        .recv_timeout(Duration::from_secs(2))
        .expect("an idle worker did not stop within 2 s of its stop flag");
    result.unwrap();
    worker.join().unwrap();
}

#[test]
fn idle_uring_worker_stops_promptly() {
    idle_worker_stops_promptly(EngineKind::Uring);
}

#[test]
fn idle_mio_worker_stops_promptly() {
    idle_worker_stops_promptly(EngineKind::Mio);
}

/// Finding 19.6: a worker's derived keys (and its reference to the epoch, meeting key
/// included) went only when a later seal or open synced its caches, so a worker whose traffic
/// stopped kept a retired epoch alive indefinitely. Now the engines sync on their idle tick:
/// within a bound of its retirement and prune, nothing holds the epoch any more.
fn idle_worker_forgets_a_retired_epoch(engine: EngineKind) {
    let keyring = keyring(0);
    let epoch = Arc::downgrade(&keyring.load().live(1).unwrap().epoch);
    let relay = UdpSocket::bind(any()).unwrap();
    relay
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let sockets = WorkerSockets {
        local: bind_reuseport(any()).unwrap(),
        network: bind_reuseport(any()).unwrap(),
        deliver: any(),
        remote: relay.local_addr().unwrap(),
    };
    let local = sockets.local.local_addr().unwrap();
    let counters = Arc::new(Counters::default());
    let mut forwarder = Forwarder::new(keyring.clone(), Mode::Datagram, counters);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let worker = thread::spawn(move || match engine {
        EngineKind::Mio => mio_engine::run(&sockets, &mut forwarder, &flag).unwrap(),
        EngineKind::Uring => uring::run(&sockets, &mut forwarder, &flag).unwrap(),
    });
    // One packet, so the worker derives and caches epoch 1's send key.
    let client = UdpSocket::bind(any()).unwrap();
    client
        .send_to(&payload(Mode::Datagram, 0, 100), local)
        .unwrap();
    let mut buf = [0u8; 2048];
    relay.recv(&mut buf).expect("the worker sealed nothing");
    // Epoch 2 replaces it; epoch 1 retires now and the writer prunes it. No more traffic.
    let now = dataplane_udp::now();
    let next = EpochKey {
        mk_seq: 2,
        meeting_key: Zeroizing::new([5; 32]),
        roster: BTreeMap::from([(0, b"a".to_vec()), (1, b"b".to_vec())]),
        activate_at: Millis(0),
    };
    keyring.install(next, now).unwrap();
    keyring.retire(1, now);
    keyring.prune(now);
    // The bound: the idle tick (50 ms) with room for a loaded machine.
    let deadline = std::time::Instant::now() + Duration::from_millis(1000);
    while epoch.upgrade().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "an idle {} worker still holds retired epoch 1 a second after its retirement",
            engine.as_str()
        );
        thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::SeqCst);
    worker.join().unwrap();
}

#[test]
fn idle_uring_worker_forgets_a_retired_epoch() {
    idle_worker_forgets_a_retired_epoch(EngineKind::Uring);
}

#[test]
fn idle_mio_worker_forgets_a_retired_epoch() {
    idle_worker_forgets_a_retired_epoch(EngineKind::Mio);
}

/// Finding 19.9: the io_uring engine returned with its multishot receives and its tick still
/// armed and left their cancellation to the ring's close (asynchronous, in the kernel's exit
/// work) while it freed the buffers they write into. Now the teardown cancels everything in
/// flight and reaps each final completion before anything is freed. Twenty start/stop rounds
/// on the same sockets under a flood on both sides (small buffer rings, so receives also end
/// with ENOBUFS and re-arm), then one idle round, which must find exactly the two receives and
/// the tick in flight.
#[test]
fn uring_teardown_cancels_and_reaps_every_operation_under_traffic() {
    let mut sockets = WorkerSockets {
        local: bind_reuseport(any()).unwrap(),
        network: bind_reuseport(any()).unwrap(),
        deliver: UdpSocket::bind(any()).unwrap().local_addr().unwrap(),
        remote: UdpSocket::bind(any()).unwrap().local_addr().unwrap(),
    };
    let targets = [
        sockets.local.local_addr().unwrap(),
        sockets.network.local_addr().unwrap(),
    ];
    let flooding = Arc::new(AtomicBool::new(true));
    let flooders: Vec<_> = targets
        .into_iter()
        .map(|target| {
            let flooding = flooding.clone();
            thread::spawn(move || {
                let socket = UdpSocket::bind(any()).unwrap();
                let mut n = 0;
                while flooding.load(Ordering::Relaxed) {
                    let _ = socket.send_to(&payload(Mode::Datagram, n, 300), target);
                    n += 1;
                    if n % 64 == 0 {
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let round = |sockets: WorkerSockets, run_for: Duration| {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let worker = thread::spawn(move || {
            let mut forwarder =
                Forwarder::new(keyring(0), Mode::Datagram, Arc::new(Counters::default()));
            let report = uring::run_reporting(&sockets, &mut forwarder, &flag, SMALL_RING);
            (sockets, report)
        });
        thread::sleep(run_for);
        stop.store(true, Ordering::SeqCst);
        let (sockets, report) = worker.join().unwrap();
        (sockets, report.expect("the engine or its teardown failed"))
    };
    for _ in 0..20 {
        let report;
        (sockets, report) = round(sockets, Duration::from_millis(30));
        assert!(
            report.cancelled_at_teardown >= 1,
            "the tick at least is armed at every teardown: {report:?}"
        );
    }
    flooding.store(false, Ordering::SeqCst);
    for flooder in flooders {
        flooder.join().unwrap();
    }
    // Idle: both receives and the tick are in flight at the stop, and all three are reaped.
    thread::sleep(Duration::from_millis(50));
    let (_, report) = round(sockets, Duration::from_millis(200));
    assert_eq!(report.cancelled_at_teardown, 3, "{report:?}");
}

/// The batches after which the tally is taken as warm.
const WARM: u64 = 8;

/// The worker thread's allocation tally, read at the network side's batches.
#[derive(Default)]
struct Tally {
    /// Network batches processed.
    batches: AtomicU64,
    /// The thread's allocations at batch [`WARM`], and at the latest batch.
    warm: AtomicU64,
    latest: AtomicU64,
}

/// The forwarder, and a tally of the worker thread's allocations at each network batch.
struct Counted {
    inner: Forwarder,
    tally: Arc<Tally>,
}

impl Pipeline for Counted {
    fn process(&mut self, from: PipelineSide, now: Millis, batch: &mut Batch) {
        if from == PipelineSide::Network {
            let seen = allocations();
            let batches = self.tally.batches.fetch_add(1, Ordering::Relaxed) + 1;
            if batches == WARM {
                self.tally.warm.store(seen, Ordering::Relaxed);
            }
            self.tally.latest.store(seen, Ordering::Relaxed);
        }
        self.inner.process(from, now, batch);
    }

    fn io_drop(&mut self, side: PipelineSide, reason: IoDrop, packets: u64) {
        self.inner.io_drop(side, reason, packets);
    }

    fn sent(&mut self, to: PipelineSide, packets: u64) {
        self.inner.sent(to, packets);
    }

    fn publish(&mut self) {
        self.inner.publish();
    }

    fn tick(&mut self, now: Millis) {
        self.inner.tick(now);
    }
}

/// Genuine and forged packets of one size in the same GSO bursts, so that GRO coalesces them
/// into the same buffers: the engine opens each genuine segment in place beside a forged one
/// that failed, sends the plaintexts from the buffer (the forged slots skipped), counts each
/// forgery, and every buffer is received into again for the bursts behind (io_uring: it comes
/// back to the 8-buffer ring; mio: its two GRO buffers are reused once the batch was sent).
/// From the [`WARM`]th network batch on the worker thread allocates nothing.
fn opens_genuine_packets_beside_forged_ones_in_a_burst(engine: EngineKind) {
    let mode = Mode::Datagram;
    let relay = UdpSocket::bind(any()).unwrap();
    let sink = bind_reuseport(any()).unwrap();
    sink.set_nonblocking(false).unwrap();
    sink.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let sockets = WorkerSockets {
        local: bind_reuseport(any()).unwrap(),
        network: bind_reuseport(any()).unwrap(),
        deliver: sink.local_addr().unwrap(),
        remote: relay.local_addr().unwrap(),
    };
    let network = sockets.network.local_addr().unwrap();
    let counters = Arc::new(Counters::default());
    let tally = Arc::new(Tally::default());
    let mut forwarder = Counted {
        inner: Forwarder::new(keyring(1), mode, counters.clone()),
        tally: tally.clone(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let config = uring::Config::default().with_buffers(SMALL_RING);
    let worker = thread::spawn(move || -> Report {
        match engine {
            EngineKind::Mio => mio_engine::run_reporting(&sockets, &mut forwarder, &flag)
                .unwrap()
                .into(),
            EngineKind::Uring => uring::run_configured(&sockets, &mut forwarder, &flag, config)
                .unwrap()
                .into(),
        }
    });
    // The peer in slot 0, sealing as a sidecar would.
    let peer = keyring(0);
    let mut keys = WorkerKeys::new(mode);
    let client = UdpSocket::bind(any()).unwrap();
    let mut client_io = BatchIo::new(&client);
    let (bursts, size) = (40, 1200);
    let mut forged = 0;
    let mut buf = vec![0u8; 4096];
    for burst in 0..bursts {
        let mut sealed = Batch::new();
        for n in burst * 64..(burst + 1) * 64 {
            assert!(sealed.push_plain(&payload(mode, n, size), None));
        }
        let mut send_drops = [0; SendDrop::ALL.len()];
        seal_batch(
            &mut keys,
            &peer,
            Millis(1),
            mode,
            &mut sealed,
            &mut send_drops,
        );
        assert_eq!(send_drops, [0, 0]);
        // Every fourth packet forged: its last byte (in the tag) flipped.
        let mut wire = Batch::new();
        let mut genuine = Vec::new();
        for (i, packet) in sealed.live().enumerate() {
            let mut packet = packet.to_vec();
            if i % 4 == 1 {
                *packet.last_mut().unwrap() ^= 1;
                forged += 1;
            } else {
                genuine.push(burst * 64 + i);
            }
            assert!(wire.push_wire(&packet, None));
        }
        let sent = client_io.send(&client, &wire, network).unwrap();
        assert_eq!(sent as usize, wire.len());
        let mut delivered = Vec::new();
        for _ in &genuine {
            let len = sink.recv(&mut buf).expect("a genuine packet went missing");
            assert_eq!(len, size);
            let n = u32::from_be_bytes(buf[12..16].try_into().unwrap()) as usize;
            assert!(
                buf[16..len].iter().all(|&b| b == (n % 251) as u8),
                "packet {n} altered"
            );
            delivered.push(n);
        }
        delivered.sort_unstable();
        assert_eq!(delivered, genuine);
    }
    stop.store(true, Ordering::SeqCst);
    let report = worker.join().unwrap();
    let c = counters.read();
    assert_eq!(c.drops.total(), forged);
    assert_eq!(c.drops.get(DropReason::AuthFailure), forged);
    assert_eq!(c.packets[0] + c.packets[1], 64 * bursts as u64 - forged);
    assert_eq!(c.sent, c.packets);
    assert_eq!(report.network.copied, 0, "{report:?}");
    assert!(report.network.coalesced > 0, "{report:?}");
    let batches = tally.batches.load(Ordering::Relaxed);
    assert!(batches > 2 * WARM, "only {batches} network batches");
    let warm = tally.latest.load(Ordering::Relaxed) - tally.warm.load(Ordering::Relaxed);
    assert_eq!(
        warm,
        0,
        "{warm} allocations over {} warm batches",
        batches - WARM
    );
}

#[test]
fn uring_with_gro_opens_genuine_packets_beside_forged_ones_in_a_burst() {
    opens_genuine_packets_beside_forged_ones_in_a_burst(EngineKind::Uring);
}

#[test]
fn mio_with_gro_opens_genuine_packets_beside_forged_ones_in_a_burst() {
    opens_genuine_packets_beside_forged_ones_in_a_burst(EngineKind::Mio);
}

//! Loopback forwarding harness for the dataplane engine, every variant in one run.
//!
//! A load generator blasts plaintext datagrams (GSO batches from 8 source ports, so SO_REUSEPORT
//! can spread them over workers) at the forwarder's local socket; the forwarder seals them and
//! sends them to a sink that counts what arrives. Throughput is what the sink received per second
//! after a warm-up. Latency is measured paced, one packet in flight: the time from send to
//! arrival through the forwarder, less the median of the same path without a forwarder.
//!
//! Throughput on a small shared machine mostly measures who wins the CPU between generator, sink
//! and forwarder, so beside it the harness reports the forwarder threads' own CPU time per packet
//! (user + system, from /proc/self/task/*/stat), which contention does not move much: the
//! "x naive (CPU)" column is the naive proxy's CPU per packet over the variant's.
//!
//! Variants: a naive proxy (recv_from, seal, send_to, one packet at a time); the sidecar's
//! pipeline on each engine with 1 and 2 workers; the same engines forwarding without crypto.
//! The engine variants run exactly the worker code `veil sidecar` runs (`dataplane-udp`), in
//! process so one harness drives them all.
//!
//! Run: `cargo run --release -p veil-bench --bin loopback` (prints a Markdown table);
//! `-- --paced` measures only the paced latency, all variants in turn, round after round;
//! `-- --only TEXT` keeps the variants whose name contains TEXT, beside the naive proxy;
//! `-- --sink-gro` gives the throughput sink UDP GRO (see [`sink_gro`]);
//! `-- --uring-no-gro` runs the io_uring workers without UDP GRO (see [`uring_no_gro`]);
//! `-- --pin` pins threads for paced runs (see [`pin`]);
//! `-- --size N` (repeatable) measures only these payload sizes (default 1200 and 200).
//! `python3 bench/median.py RUNS -- target/release/loopback ...` gives the median over runs.
#![forbid(unsafe_code)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use dataplane::batch::{BATCH_SIZE, Batch};
use dataplane::keyring::{EpochKey, Keyring, MeetingConfig, Millis};
use dataplane::packet::{self, HEADROOM, Mode};
use dataplane::pipeline::{Counters, Forwarder};
use dataplane::sframe::{CipherSuite, Context};
use dataplane::stream_key::{StreamId, stream_base_key};
use dataplane_udp::{BatchIo, EngineKind, WorkerSockets, bind_reuseport, mio_engine, uring};
use zeroize::Zeroizing;

const WARMUP: Duration = Duration::from_millis(400);
const MEASURE: Duration = Duration::from_millis(2000);
const SOURCES: usize = 8;
const PACED: usize = 5000;
/// `--paced`: rounds, and packets per variant per round.
const PACED_ROUNDS: usize = 9;
const PACED_ROUND: usize = 1000;
/// Throughput rounds: every variant runs once per round, in turn, so load on this shared
/// machine hits all of them alike; the table gives each variant's median.
const ROUNDS: usize = 3;
const MK: [u8; 32] = [7; 32];

type Error = Box<dyn std::error::Error>;

#[derive(Clone, Copy, Debug)]
enum Variant {
    Naive,
    /// The naive proxy forwarding without sealing: what the engines' no-crypto rows compare
    /// against when the question is the engine's own cost.
    NaiveNoCrypto,
    Engine {
        kind: EngineKind,
        workers: usize,
        crypto: bool,
    },
}

impl Variant {
    fn name(self) -> String {
        match self {
            Self::Naive => "naive recv_from/seal/send_to".into(),
            Self::NaiveNoCrypto => "naive recv_from/send_to, no crypto".into(),
            Self::Engine {
                kind,
                workers,
                crypto,
            } => format!(
                "{} {} worker{}{}",
                kind.as_str(),
                workers,
                if workers == 1 { "" } else { "s" },
                if crypto { "" } else { ", no crypto" }
            ),
        }
    }
}

/// /proc reports thread times in USER_HZ ticks, 100 per second on Linux.
const TICK_NS: f64 = 10_000_000.0;

/// CPU ticks (user + system) of this process's threads named `fwd-*`.
fn forwarder_ticks() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|comm| comm.starts_with("fwd-"))
        })
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split(' ').collect();
            // Fields 14 and 15 of stat(5), counted from the state (field 3) at index 0.
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

/// `--pin`: the measuring thread runs on CPU 0 and every forwarder thread on CPU 1, so a paced
/// packet always crosses from one core to the other. Unpinned, the scheduler sometimes runs
/// the forwarder on the measuring thread's core (where a wake-up may preempt or wait) and
/// sometimes not, and a run's latencies fall into two or three modes by placement alone.
fn pin() -> bool {
    std::env::args().any(|a| a == "--pin")
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) -> Result<(), Error> {
    dataplane_udp::pin_current_thread(cpu).map_err(|e| format!("pinning to CPU {cpu}: {e}").into())
}

fn spawn_forwarder(
    index: usize,
    body: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, Error> {
    let pinned = pin();
    Ok(thread::Builder::new()
        .name(format!("fwd-{index}"))
        .spawn(move || {
            if pinned && let Err(e) = pin_to(1) {
                eprintln!("{e}");
            }
            body()
        })?)
}

fn any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn keyring() -> Result<Arc<Keyring>, Error> {
    let ring = Keyring::new(MeetingConfig {
        meeting_id: b"bench".to_vec(),
        meeting_uuid: b"uuid".to_vec(),
        own_slot: 0,
        suite: CipherSuite::Aes256GcmSha512_128,
    });
    ring.install(
        EpochKey {
            mk_seq: 1,
            meeting_key: Zeroizing::new(MK),
            roster: [(0, b"sender-0".to_vec())].into_iter().collect(),
            activate_at: Millis(0),
        },
        Millis(0),
    )?;
    Ok(Arc::new(ring))
}

struct Running {
    listen: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Running {
    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn naive(sink: SocketAddr, stop: Arc<AtomicBool>, crypto: bool) -> Result<Running, Error> {
    let local = UdpSocket::bind(any())?;
    local.set_read_timeout(Some(Duration::from_millis(50)))?;
    let network = UdpSocket::bind(any())?;
    let listen = local.local_addr()?;
    let kid = StreamId {
        sender_slot: 0,
        sender_instance: 1,
        stream_index: 0,
    }
    .kid()?;
    let base = stream_base_key(&MK, b"bench", b"uuid", b"sender-0", 0)?;
    let mut ctx = Context::new(CipherSuite::Aes256GcmSha512_128);
    ctx.add_send_key(kid, base.as_slice())?;
    let flag = stop.clone();
    let thread = spawn_forwarder(0, move || {
        let mut buf = vec![0u8; 2048];
        while !flag.load(Ordering::Relaxed) {
            let Ok((len, _)) = local.recv_from(&mut buf[HEADROOM..2048 - 16]) else {
                continue;
            };
            if !crypto {
                let _ = network.send_to(&buf[HEADROOM..HEADROOM + len], sink);
                continue;
            }
            if let Ok(range) =
                packet::seal(Mode::Datagram, &mut ctx, kid, 1, &mut buf, HEADROOM, len)
            {
                let _ = network.send_to(&buf[range], sink);
            }
        }
    })?;
    Ok(Running {
        listen,
        stop,
        threads: vec![thread],
    })
}

fn engine(
    kind: EngineKind,
    workers: usize,
    crypto: bool,
    sink: SocketAddr,
    stop: Arc<AtomicBool>,
) -> Result<Running, Error> {
    let keyring = keyring()?;
    let first_local = bind_reuseport(any())?;
    let listen = first_local.local_addr()?;
    let first_net = bind_reuseport(any())?;
    let net_addr = first_net.local_addr()?;
    let mut pairs = vec![(first_local, first_net)];
    for _ in 1..workers {
        pairs.push((bind_reuseport(listen)?, bind_reuseport(net_addr)?));
    }
    let mut threads = Vec::new();
    for (index, (local, network)) in pairs.into_iter().enumerate() {
        let sockets = WorkerSockets {
            local,
            network,
            deliver: any(),
            remote: sink,
        };
        let mut forwarder = Forwarder::new(
            keyring.clone(),
            Mode::Datagram,
            Arc::new(Counters::default()),
        );
        if !crypto {
            forwarder = forwarder.without_crypto();
        }
        let stop = stop.clone();
        threads.push(spawn_forwarder(index, move || {
            let result = match kind {
                EngineKind::Uring => {
                    let config = uring::Config::default().with_gro(!uring_no_gro());
                    uring::run_configured(&sockets, &mut forwarder, &stop, config).map(drop)
                }
                EngineKind::Mio => mio_engine::run(&sockets, &mut forwarder, &stop),
            };
            if let Err(e) = result {
                eprintln!("worker failed: {e}");
            }
        })?);
    }
    Ok(Running {
        listen,
        stop,
        threads,
    })
}

fn start(variant: Variant, sink: SocketAddr) -> Result<Running, Error> {
    let stop = Arc::new(AtomicBool::new(false));
    match variant {
        Variant::Naive => naive(sink, stop, true),
        Variant::NaiveNoCrypto => naive(sink, stop, false),
        Variant::Engine {
            kind,
            workers,
            crypto,
        } => engine(kind, workers, crypto, sink, stop),
    }
}

/// Packets per second the sink received through `variant` under full load, and the forwarder's
/// CPU nanoseconds per packet.
/// `--sink-gro`: the throughput sink turns UDP GRO on, as a Veil relay or peer does on its
/// sockets. GSO sends from the engines then reach it as one buffer per run instead of being cut
/// into datagrams by the kernel in the forwarder's time; the naive proxy's single sends gain
/// nothing from it. Off by default, so the headline figures assume a receiver without GRO.
fn sink_gro() -> bool {
    std::env::args().any(|a| a == "--sink-gro")
}

/// `--uring-no-gro`: the io_uring workers receive without UDP GRO, so every datagram is sealed
/// or opened in the buffer it landed in and sent from there (with GRO, the generator's GSO
/// bursts arrive coalesced and each datagram is copied into a batch slot). The mio engine is
/// unchanged.
fn uring_no_gro() -> bool {
    std::env::args().any(|a| a == "--uring-no-gro")
}

fn throughput(variant: Variant, size: usize) -> Result<(f64, f64), Error> {
    let sink = bind_reuseport(any())?;
    let sink_addr = sink.local_addr()?;
    let running = start(variant, sink_addr)?;
    let done = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let sink_thread = {
        let (done, received) = (done.clone(), received.clone());
        thread::spawn(move || {
            let mut io = if sink_gro() {
                BatchIo::with_gro(&sink)
            } else {
                BatchIo::new(&sink)
            };
            let mut batch = Batch::new();
            while !done.load(Ordering::Relaxed) {
                match io.recv(&sink, &mut batch, 0) {
                    Ok(n) => {
                        received.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(_) => thread::sleep(Duration::from_micros(50)),
                }
            }
        })
    };
    let sources: Vec<UdpSocket> = (0..SOURCES)
        .map(|_| UdpSocket::bind(any()))
        .collect::<Result<_, _>>()?;
    let generator = {
        let done = done.clone();
        let listen = running.listen;
        thread::spawn(move || {
            let mut batch = Batch::new();
            let payload = vec![0xabu8; size];
            for _ in 0..BATCH_SIZE {
                batch.push_wire(&payload, None);
            }
            let mut io: Vec<BatchIo> = sources.iter().map(BatchIo::new).collect();
            let mut turn = 0;
            while !done.load(Ordering::Relaxed) {
                let _ = io[turn].send(&sources[turn], &batch, listen);
                turn = (turn + 1) % SOURCES;
            }
        })
    };
    thread::sleep(WARMUP);
    let (start_count, start_time, start_cpu) = (
        received.load(Ordering::Relaxed),
        Instant::now(),
        forwarder_ticks(),
    );
    thread::sleep(MEASURE);
    let (end_count, elapsed, end_cpu) = (
        received.load(Ordering::Relaxed),
        start_time.elapsed(),
        forwarder_ticks(),
    );
    done.store(true, Ordering::SeqCst);
    let _ = generator.join();
    let _ = sink_thread.join();
    running.stop();
    let packets = (end_count - start_count) as f64;
    let cpu_ns = (end_cpu - start_cpu) as f64 * TICK_NS;
    Ok((packets / elapsed.as_secs_f64(), cpu_ns / packets.max(1.0)))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or(f64::NAN)
}

/// How paced measurements send (`--flush N`, `--gap US`): `flush` packets back to back, then
/// wait until all of them arrived and `gap` more before the next flush. The defaults, one packet
/// and no gap, keep exactly one packet in flight, back to back: the strictest case, since every
/// packet finds the caches warm and a core awake, so what is left to compare is the forwarders'
/// own work. A gap of a millisecond or more is media pacing (audio sends a packet or two every
/// 10-20 ms): each flush finds the forwarder asleep and pays its wake-up.
#[derive(Clone, Copy, Debug)]
struct Pacing {
    flush: usize,
    gap: Duration,
}

impl Pacing {
    fn from_args(args: &[String]) -> Result<Self, Error> {
        let value = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
        };
        let flush = match value("--flush") {
            Some(n) => n
                .parse()
                .ok()
                .filter(|n| (1..=8).contains(n))
                .ok_or("--flush takes packets per flush, 1 to 8")?,
            None => 1,
        };
        let gap = match value("--gap") {
            Some(us) => us
                .parse()
                .ok()
                .filter(|us| *us <= 100_000)
                .map(Duration::from_micros)
                .ok_or("--gap takes microseconds between flushes, 0 to 100000")?,
            None => Duration::ZERO,
        };
        Ok(Self { flush, gap })
    }
}

/// One-way times in microseconds, paced as `pacing` says, to `into` and arriving at `sink`.
fn paced(
    into: SocketAddr,
    sink: &UdpSocket,
    size: usize,
    pacing: Pacing,
) -> Result<Vec<f64>, Error> {
    paced_n(into, sink, size, PACED, pacing)
}

/// At least `count` one-way times (us), after 200 unmeasured warm-up flushes. The packets of a
/// flush are matched to arrivals in order: one flow through one forwarder thread over loopback
/// is not reordered (and the sink cannot read a sealed payload to match by content).
fn paced_n(
    into: SocketAddr,
    sink: &UdpSocket,
    size: usize,
    count: usize,
    pacing: Pacing,
) -> Result<Vec<f64>, Error> {
    let client = UdpSocket::bind(any())?;
    let payload = vec![0x5au8; size];
    let mut buf = vec![0u8; 4096];
    let mut times = Vec::with_capacity(count + pacing.flush);
    let mut sent_at = Vec::with_capacity(pacing.flush);
    let mut flushes = 0;
    while times.len() < count {
        sent_at.clear();
        for _ in 0..pacing.flush {
            sent_at.push(Instant::now());
            client.send_to(&payload, into)?;
        }
        for start in &sent_at {
            sink.recv(&mut buf)?;
            if flushes >= 200 {
                times.push(start.elapsed().as_secs_f64() * 1e6);
            }
        }
        flushes += 1;
        if !pacing.gap.is_zero() {
            thread::sleep(pacing.gap);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// One-way latency without a forwarder (p50), and the latency `variant` adds (p50, p99), in
/// microseconds.
fn latency(variant: Variant, size: usize, pacing: Pacing) -> Result<(f64, f64, f64), Error> {
    let sink = UdpSocket::bind(any())?;
    sink.set_read_timeout(Some(Duration::from_secs(2)))?;
    let direct = paced(sink.local_addr()?, &sink, size, pacing)?;
    let running = start(variant, sink.local_addr()?)?;
    thread::sleep(Duration::from_millis(50));
    let through = paced(running.listen, &sink, size, pacing);
    running.stop();
    let through = through?;
    let base = percentile(&direct, 0.5);
    Ok((
        base,
        percentile(&through, 0.5) - base,
        percentile(&through, 0.99) - base,
    ))
}

/// `--paced`: latency only, every variant started once and measured in turn for
/// [`PACED_ROUNDS`] rounds of [`PACED_ROUND`] packets, each round beside a direct (no forwarder)
/// run, so a ratio compares measurements taken moments apart. Prints the median over rounds of
/// each variant's added p50 and p99 and of its paced rate against the naive proxy's.
fn paced_only(variants: &[Variant], sizes: &[usize], pacing: Pacing) -> Result<(), Error> {
    println!(
        "| variant | size | added p50 (us) | added p99 (us) | paced x naive (median of rounds) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    for &size in sizes {
        let sink = UdpSocket::bind(any())?;
        sink.set_read_timeout(Some(Duration::from_secs(2)))?;
        let running: Vec<Running> = variants
            .iter()
            .map(|&v| start(v, sink.local_addr()?))
            .collect::<Result<_, _>>()?;
        thread::sleep(Duration::from_millis(50));
        // Per variant: added p50, added p99 and the paced ratio of every round.
        let mut rows = vec![(Vec::new(), Vec::new(), Vec::new()); variants.len()];
        for _ in 0..PACED_ROUNDS {
            let direct = percentile(
                &paced_n(sink.local_addr()?, &sink, size, PACED_ROUND, pacing)?,
                0.5,
            );
            let mut naive_p50 = None;
            for (i, run) in running.iter().enumerate() {
                let through = paced_n(run.listen, &sink, size, PACED_ROUND, pacing)?;
                let (p50, p99) = (
                    percentile(&through, 0.5) - direct,
                    percentile(&through, 0.99) - direct,
                );
                let naive = *naive_p50.get_or_insert(p50);
                rows[i].0.push(p50);
                rows[i].1.push(p99);
                rows[i].2.push((direct + naive) / (direct + p50));
            }
        }
        for run in running {
            run.stop();
        }
        for (variant, (mut p50, mut p99, mut ratio)) in variants.iter().zip(rows) {
            let median = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                percentile(v, 0.5)
            };
            println!(
                "| {} | {size} | {:.1} | {:.1} | {:.2} |",
                variant.name(),
                median(&mut p50),
                median(&mut p99),
                median(&mut ratio)
            );
        }
    }
    Ok(())
}

const USAGE: &str = "\
loopback: the dataplane engines against a naive recv_from/seal/send_to proxy over loopback

usage: loopback [--paced] [--pin] [--flush N] [--gap US] [--sink-gro] [--uring-no-gro]
                [--only TEXT] [--size N]...

  (no flag)      throughput (Mpps, CPU per packet) and paced latency of every variant
  --paced        paced latency only (one packet in flight), every variant in turn, 9 rounds
  --pin          measuring thread on CPU 0, forwarder threads on CPU 1 (for --paced)
  --flush N      paced: N packets back to back per flush, 1 to 8 (default 1)
  --gap US       paced: wait US microseconds after each flush arrived (default 0: back to back,
                 one flush in flight; 1000 or more is media pacing, every flush wakes the forwarder)
  --sink-gro     the throughput sink receives with UDP GRO, as veil relay and sidecars do
  --uring-no-gro the io_uring workers receive without UDP GRO: each datagram is sealed or opened
                 where it landed, with no copy
  --only TEXT    only the variants whose name contains TEXT (the naive baselines always run)
  --size N       payload bytes, 16 to 1400, repeatable (default: 1200 and 200)

Prints Markdown tables. One run moves by 10-30% from the next on a shared machine: take
medians over runs with `python3 bench/median.py RUNS -- target/release/loopback ...`.";

/// Refuses flags the harness does not know (a typo must not measure the defaults silently):
/// prints why and the usage, and exits 2. `--help` prints the usage and exits 0.
fn check_args(args: &[String]) {
    let refuse = |why: String| -> ! {
        eprintln!("{why}\n\n{USAGE}");
        std::process::exit(2)
    };
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--paced" | "--pin" | "--sink-gro" | "--uring-no-gro" => {}
            "--only" | "--size" | "--flush" | "--gap" => {
                if rest.next().is_none() {
                    refuse(format!("{arg} needs a value"));
                }
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => refuse(format!("unknown argument {other:?}")),
        }
    }
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    check_args(&args);
    let pacing = Pacing::from_args(&args)?;
    if pin() {
        pin_to(0)?;
    }
    let (probed, why) = EngineKind::probe();
    match why {
        None => eprintln!("engine probe: {}", probed.as_str()),
        Some(why) => eprintln!(
            "engine probe: {} (io_uring unusable: {why})",
            probed.as_str()
        ),
    }
    let mut variants = vec![Variant::Naive, Variant::NaiveNoCrypto];
    let kinds = if probed == EngineKind::Uring {
        vec![EngineKind::Uring, EngineKind::Mio]
    } else {
        vec![EngineKind::Mio]
    };
    for &kind in &kinds {
        for (workers, crypto) in [(1, true), (2, true), (1, false)] {
            variants.push(Variant::Engine {
                kind,
                workers,
                crypto,
            });
        }
    }
    // `--only TEXT` keeps the variants whose name contains TEXT (and the naive baseline).
    if let Some(only) = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
    {
        variants.retain(|v| {
            matches!(v, Variant::Naive | Variant::NaiveNoCrypto) || v.name().contains(only.as_str())
        });
    }
    // `--size N`, repeatable: the payload sizes to measure.
    let mut sizes: Vec<usize> = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        if arg == "--size" {
            let size = args
                .get(i + 1)
                .and_then(|s| s.parse().ok())
                .filter(|&n: &usize| (16..=1400).contains(&n))
                .ok_or("--size takes a payload length in bytes, 16 to 1400")?;
            sizes.push(size);
        }
    }
    if sizes.is_empty() {
        sizes = vec![1200, 200];
    }
    let sizes = sizes.as_slice();
    if args.iter().any(|a| a == "--paced") {
        return paced_only(&variants, sizes, pacing);
    }
    println!(
        "| variant | size | Mpps | Gbit/s | x naive | CPU ns/pkt | x naive (CPU) | added p50 (us) | added p99 (us) | paced x naive |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for &size in sizes {
        let mut rounds = vec![Vec::new(); variants.len()];
        for _ in 0..ROUNDS {
            for (i, &variant) in variants.iter().enumerate() {
                rounds[i].push(throughput(variant, size)?);
            }
        }
        let median = |i: usize, pick: fn(&(f64, f64)) -> f64| {
            let mut values: Vec<f64> = rounds[i].iter().map(pick).collect();
            values.sort_by(f64::total_cmp);
            percentile(&values, 0.5)
        };
        let (base_pps, base_cpu) = (median(0, |r| r.0), median(0, |r| r.1));
        let mut naive_latency = None;
        for (i, &variant) in variants.iter().enumerate() {
            let (pps, cpu) = (median(i, |r| r.0), median(i, |r| r.1));
            let (direct, p50, p99) = latency(variant, size, pacing)?;
            let naive_p50 = *naive_latency.get_or_insert(p50);
            // One packet in flight: the rate is the inverse of the one-way time.
            let paced = (direct + naive_p50) / (direct + p50);
            println!(
                "| {} | {size} | {:.3} | {:.2} | {:.2} | {cpu:.0} | {:.2} | {p50:.1} | {p99:.1} | {paced:.2} |",
                variant.name(),
                pps / 1e6,
                pps * size as f64 * 8.0 / 1e9,
                pps / base_pps,
                base_cpu / cpu,
            );
        }
    }
    Ok(())
}

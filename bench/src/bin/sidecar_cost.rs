//! What a sidecar's host pays per packet at the load it carries (issue 18, target 1): two
//! `veil sidecar` processes in pre-shared key mode (A seals what a blaster sends, B opens it and
//! delivers it to a sink) against a naive pair (per direction a thread that does recv,
//! AES-256-GCM seal, send per packet, and one that does recv, open, send), at paced offered
//! loads, in one run. With `--latency` the sink echoes every packet back through the pair (B
//! seals, A opens and delivers to the client), and the client times the round trip (target 3).
//!
//! For each load the harness measures, over the same window for both pairs: packets delivered
//! to the sink, the CPU time of the two proxy processes (every thread, from
//! `/proc/PID/task/*/schedstat`), their context switches (`/proc/PID/task/*/status`: each
//! voluntary one is a sleep, so a wakeup), and with `--syscalls` their system calls (`perf stat
//! -e raw_syscalls:sys_enter`, which counts in the kernel without slowing them). The ratio is the
//! naive pair's CPU per delivered packet over the sidecar pair's: above 1.0 the sidecars cost less.
//! Beside it, the rate the blaster achieved, and where packets that did not arrive were dropped:
//! by the pair's own UDP sockets (a full receive buffer, from `/proc/net/udp`), or by the hop's
//! and the harness's (the sink's). Packets lost elsewhere (refused by a proxy, dropped in a
//! proxy's queue) are the difference.
//!
//! Run: `cargo build --release -p veil -p veil-bench && target/release/sidecar_cost --help`.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use dataplane::batch::Batch;
use dataplane_udp::{BatchIo, bind_reuseport};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "\
sidecar_cost: CPU per delivered packet of a veil sidecar pair against a naive proxy pair

usage: sidecar_cost [--veil PATH] [--rates 10000,20000,100000,250000] [--size N] [--rtp]
                    [--engine auto|uring|mio] [--workers N] [--seconds S] [--syscalls]
                    [--latency [--samples N]] [--meeting]

  --veil PATH     the veil binary (default: target/release/veil beside this one)
  --rates LIST    offered loads in packets per second (default 10000,20000,100000,250000)
  --size N        UDP payload bytes the client sends (default 1200)
  --rtp           RTP mode: the client sends RTP packets and the sidecars run with --rtp
  --engine E      the sidecars' engine (default auto)
  --workers N     worker threads per sidecar (default 1)
  --seconds S     measured seconds per load and pair (default 3)
  --syscalls      also count system calls with perf stat (needs perf and tracepoint access)
  --latency       instead of CPU: one packet per flush, back to back (the next leaves when the
                  last came back) and 1 ms apart; the sink echoes each packet back through the
                  pair, and the client times the round trip client -> A -> B -> sink -> B -> A
                  -> client; p50 and p99 round trip (and one-way client -> sink) through each
                  pair, and the sidecar pair's over the naive pair's
  --samples N     packets per latency series (default 3000)
  --meeting       meeting mode: the sidecars are keyed by the handshake through a `veil board`
                  and send through a `veil relay`, and the naive pair through a plain
                  forwarding process (none of these counted), instead of a pre-shared key file
                  and each other

Both pairs run for the whole harness on loopback; each load is measured for the sidecars,
then for the naive pair, after a half-second warm-up. Pin nothing: the kernel places the
processes as it would beside a client. Each row also gives the rate the blaster achieved
(below the offered one when the machine runs out of CPU) and where undelivered packets were
dropped: at the pair's own sockets (full receive buffers) or at the hop's and the harness's
(the sink's).";

#[derive(Debug, Clone)]
struct Options {
    veil: PathBuf,
    rates: Vec<u64>,
    size: usize,
    rtp: bool,
    engine: String,
    workers: usize,
    seconds: f64,
    syscalls: bool,
    latency: bool,
    samples: usize,
    meeting: bool,
}

impl Options {
    /// The setup, as the first line of every table says it.
    fn describe(&self) -> String {
        format!(
            "size {} B, {} mode, {}, engine {}, {} worker(s) per sidecar",
            self.size,
            if self.rtp { "RTP" } else { "datagram" },
            if self.meeting {
                "meeting mode (board + relay)"
            } else {
                "pre-shared key"
            },
            self.engine,
            self.workers
        )
    }
}

fn parse_options(args: &[String]) -> Result<Options> {
    let here = std::env::current_exe()?;
    let mut o = Options {
        veil: here.with_file_name("veil"),
        rates: vec![10_000, 20_000, 100_000, 250_000],
        size: 1200,
        rtp: false,
        engine: "auto".into(),
        workers: 1,
        seconds: 3.0,
        syscalls: false,
        latency: false,
        samples: 3000,
        meeting: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value (see --help)"))
        };
        match a.as_str() {
            "--veil" => o.veil = PathBuf::from(value()?),
            "--rates" => {
                o.rates = value()?
                    .split(',')
                    .map(|r| r.trim().parse::<u64>())
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| format!("--rates: {e}"))?;
                if o.rates.iter().any(|&r| r == 0 || r > 2_000_000) {
                    return Err("--rates: each between 1 and 2,000,000 packets per second".into());
                }
            }
            "--size" => {
                o.size = value()?.parse().map_err(|e| format!("--size: {e}"))?;
                if !(16..=1400).contains(&o.size) {
                    return Err("--size: 16 to 1400 bytes".into());
                }
            }
            "--rtp" => o.rtp = true,
            "--engine" => o.engine = value()?,
            "--workers" => o.workers = value()?.parse().map_err(|e| format!("--workers: {e}"))?,
            "--seconds" => {
                o.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?;
                if !(0.2..=600.0).contains(&o.seconds) {
                    return Err("--seconds: 0.2 to 600".into());
                }
            }
            "--syscalls" => o.syscalls = true,
            "--latency" => o.latency = true,
            "--meeting" => o.meeting = true,
            "--samples" => {
                o.samples = value()?.parse().map_err(|e| format!("--samples: {e}"))?;
                if !(10..=1_000_000).contains(&o.samples) {
                    return Err("--samples: 10 to 1,000,000".into());
                }
            }
            other => return Err(format!("unknown argument {other:?} (see --help)").into()),
        }
    }
    Ok(o)
}

/// A loopback socket on a port the kernel picks, and its address.
fn bound() -> Result<(UdpSocket, SocketAddr)> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    let a = s.local_addr()?;
    Ok((s, a))
}

/// A free loopback port for a child to bind (released just before the child starts).
fn free_addr() -> Result<SocketAddr> {
    Ok(bound()?.1)
}

/// A child process killed when dropped.
struct Proc {
    child: Child,
    name: String,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time and context switches of every thread of `pid`.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    cpu_ns: u64,
    voluntary: u64,
    involuntary: u64,
}

fn usage(pid: u32) -> Result<Usage> {
    let mut u = Usage::default();
    for task in fs::read_dir(format!("/proc/{pid}/task"))? {
        let dir = task?.path();
        // schedstat: time on CPU (ns), time waiting, timeslices.
        if let Ok(s) = fs::read_to_string(dir.join("schedstat")) {
            u.cpu_ns += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
        if let Ok(s) = fs::read_to_string(dir.join("status")) {
            for line in s.lines() {
                let field = |name: &str| {
                    line.strip_prefix(name)
                        .and_then(|v| v.trim().parse::<u64>().ok())
                };
                if let Some(v) = field("voluntary_ctxt_switches:") {
                    u.voluntary += v;
                }
                if let Some(v) = field("nonvoluntary_ctxt_switches:") {
                    u.involuntary += v;
                }
            }
        }
    }
    Ok(u)
}

fn usage_sum(pids: &[u32]) -> Result<Usage> {
    let mut total = Usage::default();
    for &pid in pids {
        let u = usage(pid)?;
        total.cpu_ns += u.cpu_ns;
        total.voluntary += u.voluntary;
        total.involuntary += u.involuntary;
    }
    Ok(total)
}

/// The inodes of every socket `pid` holds open (`/proc/PID/fd/* -> socket:[INODE]`).
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    fds.filter_map(|fd| fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// Datagrams the kernel dropped on arrival (a full receive buffer, mostly) at each UDP socket
/// whose inode is in `inodes`: the `drops` column of `/proc/net/udp` and `/proc/net/udp6`.
fn udp_drops(inodes: &HashSet<u64>) -> HashMap<u64, u64> {
    let mut drops_by_inode = HashMap::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(inode), Some(drops)) = (fields.get(9), fields.get(12)) else {
                continue;
            };
            if let Ok(inode) = inode.parse::<u64>()
                && inodes.contains(&inode)
            {
                drops_by_inode.insert(inode, drops.parse::<u64>().unwrap_or(0));
            }
        }
    }
    drops_by_inode
}

/// What the sockets of `pids` dropped since `before` was read: the growth of each socket's
/// count, a socket opened since (a meeting-mode sidecar's registration probe) counted from
/// zero, one closed since not at all (its count left with it).
fn drops_since(pids: &[u32], before: &HashMap<u64, u64>) -> u64 {
    drops_now(pids)
        .iter()
        .map(|(inode, &now)| now.saturating_sub(before.get(inode).copied().unwrap_or(0)))
        .sum()
}

/// Each socket's drop count now, for [`drops_since`].
fn drops_now(pids: &[u32]) -> HashMap<u64, u64> {
    udp_drops(&pids.iter().flat_map(|&pid| socket_inodes(pid)).collect())
}

/// One pair of proxies between the blaster and the sink.
struct Pair {
    name: &'static str,
    procs: Vec<Proc>,
    /// Where the blaster sends.
    entry: SocketAddr,
    /// The forwarding process between the two (meeting mode: the relay; the naive hop), not
    /// counted in the pair's CPU but shown beside it.
    hop: Option<u32>,
}

impl Pair {
    fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(Proc::pid).collect()
    }
}

/// How the two sidecars get their keys and reach each other.
enum Keying {
    /// A pre-shared key file; each sidecar's --remote is the other.
    Psk(PathBuf),
    /// The meeting handshake on `board`; both send through `relay`.
    Meeting {
        board: SocketAddr,
        relay: SocketAddr,
    },
}

fn sidecar_pair(
    o: &Options,
    dir: &Path,
    client: SocketAddr,
    sink: SocketAddr,
) -> Result<(Pair, Vec<Proc>)> {
    let (keying, servers) = if o.meeting {
        meeting_servers(o, dir)?
    } else {
        (Keying::Psk(psk_file(o, dir)?), Vec::new())
    };
    // A delivers what B sealed back to the client: the round trip of `--latency`.
    let (a_listen, a_deliver, a_bind) = (free_addr()?, client, free_addr()?);
    let (b_listen, b_bind) = (free_addr()?, free_addr()?);
    let spawn = |name: &str, slot: &str, listen, deliver, client: SocketAddr, bind, peer| {
        let mut cmd = Command::new(&o.veil);
        cmd.arg("sidecar")
            .args(["--local-listen", &addr(listen)])
            .args(["--local-deliver", &addr(deliver)])
            .args(["--local-client", &addr(client)])
            .args(["--bind", &addr(bind)])
            .args(["--engine", &o.engine])
            .args(["--workers", &o.workers.to_string()])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        match &keying {
            Keying::Psk(key) => {
                cmd.args(["--key-file".as_ref(), key.as_os_str()])
                    .args(["--sender-slot", slot])
                    .args(["--remote", &addr(peer)]);
            }
            Keying::Meeting { board, relay } => {
                cmd.args(["--board", &addr(*board), "--board-insecure-plaintext"])
                    .args(["--meeting", "cost", "--name", slot])
                    .args(["--remote", &addr(*relay)]);
                if slot == "0" {
                    cmd.arg("--host");
                }
            }
        }
        if o.rtp {
            cmd.arg("--rtp");
        }
        let child = cmd.spawn()?;
        Ok::<_, std::io::Error>(Proc {
            child,
            name: name.to_owned(),
        })
    };
    let a = spawn(
        "sidecar A (seal)",
        "0",
        a_listen,
        a_deliver,
        client,
        a_bind,
        b_bind,
    )?;
    // B's client is the sink: it delivers there and would seal only what the sink sent.
    let b = spawn(
        "sidecar B (open)",
        "1",
        b_listen,
        sink,
        sink,
        b_bind,
        a_bind,
    )?;
    let pair = Pair {
        name: "veil sidecar pair",
        procs: vec![a, b],
        entry: a_listen,
        // meeting_servers starts the board, then the relay.
        hop: servers.get(1).map(Proc::pid),
    };
    Ok((pair, servers))
}

fn psk_file(o: &Options, dir: &Path) -> Result<PathBuf> {
    let key = dir.join("psk.toml");
    let out = Command::new(&o.veil)
        .args(["keygen", "--psk", "--meeting", "cost", "--slots", "2"])
        .output()
        .map_err(|e| {
            format!(
                "running {}: {e} (build it: cargo build --release -p veil)",
                o.veil.display()
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "veil keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    fs::write(&key, &out.stdout)?;
    Ok(key)
}

/// A board (plaintext on loopback, issuing relay tickets) and a relay that checks them.
fn meeting_servers(o: &Options, dir: &Path) -> Result<(Keying, Vec<Proc>)> {
    let ticket_key = dir.join("relay-ticket.key");
    let board = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let relay = free_addr()?;
    let spawn = |name: &str, args: &[&std::ffi::OsStr]| {
        let child = Command::new(&o.veil)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        Ok::<_, std::io::Error>(Proc {
            child,
            name: name.to_owned(),
        })
    };
    let board_proc = spawn(
        "board",
        &[
            "board".as_ref(),
            "--listen".as_ref(),
            addr(board).as_ref(),
            "--insecure-plaintext".as_ref(),
            "--ticket-key".as_ref(),
            ticket_key.as_os_str(),
        ],
    )?;
    // The board writes the ticket key the relay reads.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ticket_key.exists() {
        if Instant::now() > deadline {
            return Err("the board wrote no relay ticket key within 10 s".into());
        }
        thread::sleep(Duration::from_millis(20));
    }
    let relay_proc = spawn(
        "relay",
        &[
            "relay".as_ref(),
            "--listen".as_ref(),
            addr(relay).as_ref(),
            "--ticket-key".as_ref(),
            ticket_key.as_os_str(),
        ],
    )?;
    Ok((
        Keying::Meeting { board, relay },
        vec![board_proc, relay_proc],
    ))
}

/// Sends probes from the client until one reaches the sink: the pair is keyed and routing.
fn wait_for_media(pair: &Pair, received: &AtomicU64, rtp: bool) -> Result<()> {
    let client = UdpSocket::bind(CLIENT)?;
    let mut probe = vec![0u8; 64];
    if rtp {
        probe[..12].copy_from_slice(&[0x80, 96, 0, 0, 0, 0, 0, 1, 0, 0, 0, 7]);
    }
    let before = received.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.load(Ordering::Relaxed) == before {
        if Instant::now() > deadline {
            return Err(format!("no packet through the {} within 30 s", pair.name).into());
        }
        client.send_to(&probe, pair.entry)?;
        thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn addr(a: SocketAddr) -> String {
    a.to_string()
}

/// The naive pair; with `hop`, each proxy sends through a plain forwarding process (not
/// counted), as the sidecars send through the relay in meeting mode, so both paths wake the
/// same number of processes per packet. Proxy A seals what the client sends and opens what B
/// sealed back to the client; B opens for the sink and seals the sink's echo.
fn naive_pair(client: SocketAddr, sink: SocketAddr, hop: bool) -> Result<(Pair, Vec<Proc>)> {
    let me = std::env::current_exe()?;
    let (a_listen, a_bind, b_listen, b_bind) =
        (free_addr()?, free_addr()?, free_addr()?, free_addr()?);
    let spawn = |name: &str, args: &[String]| {
        let child = Command::new(&me)
            .arg("naive")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        Ok::<_, std::io::Error>(Proc {
            child,
            name: name.to_owned(),
        })
    };
    let (a_peer, b_peer, extra) = if hop {
        let hop_listen = free_addr()?;
        let forwarder = spawn(
            "naive hop",
            &["forward", &addr(hop_listen), &addr(a_bind), &addr(b_bind)].map(str::to_owned),
        )?;
        (hop_listen, hop_listen, vec![forwarder])
    } else {
        (b_bind, a_bind, Vec::new())
    };
    // Each direction seals under its own nonce prefix (the proxy's index): one key, and never
    // a nonce twice under it.
    let proxy = |name, index: &str, listen, bind, peer, deliver| {
        spawn(
            name,
            &[
                "proxy".to_owned(),
                index.to_owned(),
                addr(listen),
                addr(bind),
                addr(peer),
                addr(deliver),
            ],
        )
    };
    let a = proxy("naive A (seal)", "0", a_listen, a_bind, a_peer, client)?;
    let b = proxy("naive B (open)", "1", b_listen, b_bind, b_peer, sink)?;
    let pair = Pair {
        name: "naive pair",
        procs: vec![a, b],
        entry: a_listen,
        hop: extra.first().map(Proc::pid),
    };
    Ok((pair, extra))
}

/// The naive proxy: a thread per direction, per datagram one recv, one AES-256-GCM seal or
/// open, one send. What arrives on `listen` is sealed and sent from `bind` to `peer`; what
/// arrives on `bind` is opened and sent from `listen` to `deliver`. Sealed packets carry their
/// 8-byte counter in front; the nonce is the 4-byte proxy index, then the counter.
fn run_naive_proxy(index: &str, listen: &str, bind: &str, peer: &str, deliver: &str) -> Result<()> {
    let index: u32 = index.parse()?;
    let local = UdpSocket::bind(listen)?;
    let network = UdpSocket::bind(bind)?;
    let (peer, deliver): (SocketAddr, SocketAddr) = (peer.parse()?, deliver.parse()?);
    let key = Arc::new(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32])?));
    let sealer = {
        let (from, to, key) = (local.try_clone()?, network.try_clone()?, Arc::clone(&key));
        thread::spawn(move || naive_seal(&from, &to, peer, &key, index).map_err(|e| e.to_string()))
    };
    // What arrives on `bind` was sealed by the other proxy, under its index.
    naive_open(&network, &local, deliver, &key, 1 - index.min(1))?;
    Ok(sealer.join().map_err(|_| "naive sealer panicked")??)
}

fn naive_seal(
    from: &UdpSocket,
    to: &UdpSocket,
    peer: SocketAddr,
    key: &LessSafeKey,
    index: u32,
) -> Result<()> {
    let mut buf = vec![0u8; 65536];
    let mut counter = 0u64;
    loop {
        let (n, _) = from.recv_from(&mut buf[8..65536 - 16])?;
        counter += 1;
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&index.to_be_bytes());
        nonce[4..].copy_from_slice(&counter.to_be_bytes());
        buf[..8].copy_from_slice(&counter.to_be_bytes());
        let (head, rest) = buf.split_at_mut(8);
        let tag = key.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&head[..]),
            &mut rest[..n],
        )?;
        rest[n..n + 16].copy_from_slice(tag.as_ref());
        to.send_to(&buf[..8 + n + 16], peer)?;
    }
}

fn naive_open(
    from: &UdpSocket,
    to: &UdpSocket,
    deliver: SocketAddr,
    key: &LessSafeKey,
    sender: u32,
) -> Result<()> {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _) = from.recv_from(&mut buf)?;
        // The datagram: its counter, then ciphertext and tag.
        if n < 24 {
            continue;
        }
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&sender.to_be_bytes());
        nonce[4..].copy_from_slice(&buf[..8]);
        let (head, rest) = buf.split_at_mut(8);
        let Ok(plain) = key.open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&head[..]),
            &mut rest[..n - 8],
        ) else {
            continue;
        };
        let len = plain.len();
        to.send_to(&rest[..len], deliver)?;
    }
}

/// The hop in meeting mode's place of the relay: forwards byte for byte what `a` sends to `b`,
/// and anything else to `a`.
fn run_naive_forward(listen: &str, a: &str, b: &str) -> Result<()> {
    let socket = UdpSocket::bind(listen)?;
    let (a, b): (SocketAddr, SocketAddr) = (a.parse()?, b.parse()?);
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = socket.recv_from(&mut buf)?;
        socket.send_to(&buf[..n], if from == a { b } else { a })?;
    }
}
/// Sends `rate` packets per second from `socket` to `to` until `stop`, paced by sleeping to each
/// packet's due time (no spinning: the blaster shares the machine with the proxies), counting
/// what the kernel took in `offered`.
fn blast(
    socket: &UdpSocket,
    to: SocketAddr,
    (rate, size, rtp): (u64, usize, bool),
    stop: &AtomicBool,
    offered: &AtomicU64,
) {
    let mut packet = vec![0x5au8; size];
    let start = Instant::now();
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
            continue;
        }
        if rtp {
            let seq = (sent as u16).to_be_bytes();
            packet[..12].copy_from_slice(&[0x80, 96, seq[0], seq[1], 0, 0, 0, 1, 0, 0, 0, 7]);
        }
        // Loopback may refuse a send under a burst (ENOBUFS); that packet is simply not offered.
        if socket.send_to(&packet, to).is_ok() {
            offered.fetch_add(1, Ordering::Relaxed);
        }
        // Due times advance whether or not the kernel took the packet: the load stays paced.
        sent += 1;
    }
}

/// One measured window.
struct Window {
    offered: u64,
    delivered: u64,
    usage: Usage,
    syscalls: Option<u64>,
    /// CPU time of the pair's hop, if it has one.
    hop_ns: Option<u64>,
    /// CPU time of this process: the blaster and the sink (what the load itself costs).
    harness_ns: u64,
    /// Datagrams dropped on arrival at the pair's own sockets.
    pair_drops: u64,
    /// Datagrams dropped on arrival at the hop's and the harness's sockets (the sink's; the
    /// blaster's receives nothing in CPU mode).
    other_drops: u64,
}

fn measure(o: &Options, pair: &Pair, rate: u64, received: &AtomicU64) -> Result<Window> {
    let client = UdpSocket::bind(CLIENT)?;
    let stop = Arc::new(AtomicBool::new(false));
    let offered = Arc::new(AtomicU64::new(0));
    let blaster = {
        let (stop, offered) = (Arc::clone(&stop), Arc::clone(&offered));
        let (to, shape) = (pair.entry, (rate, o.size, o.rtp));
        thread::spawn(move || blast(&client, to, shape, &stop, &offered))
    };
    thread::sleep(Duration::from_millis(500));
    let pids = pair.pids();
    let perf = if o.syscalls {
        let list = pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        Command::new("perf")
            .args(["stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p", &list])
            .args(["--", "sleep", &format!("{}", o.seconds)])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok()
    } else {
        None
    };
    let cpu_of = |pid: Option<u32>| pid.map(usage).transpose().map(|u| u.map(|u| u.cpu_ns));
    let others: Vec<u32> = pair.hop.into_iter().chain([std::process::id()]).collect();
    let drops_before = (drops_now(&pids), drops_now(&others));
    let (hop_before, harness_before) = (cpu_of(pair.hop)?, usage(std::process::id())?.cpu_ns);
    let before = usage_sum(&pids)?;
    let got_before = received.load(Ordering::Relaxed);
    let offered_before = offered.load(Ordering::Relaxed);
    thread::sleep(Duration::from_secs_f64(o.seconds));
    let after = usage_sum(&pids)?;
    let (hop_after, harness_after) = (cpu_of(pair.hop)?, usage(std::process::id())?.cpu_ns);
    let got_after = received.load(Ordering::Relaxed);
    let offered_after = offered.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    blaster.join().map_err(|_| "blaster panicked")?;
    let syscalls = perf.and_then(|p| {
        let out = p.wait_with_output().ok()?;
        let text = String::from_utf8_lossy(&out.stderr);
        text.lines()
            .find(|l| l.contains("raw_syscalls:sys_enter"))
            .and_then(|l| l.split(',').next())
            .and_then(|v| v.trim().parse::<u64>().ok())
    });
    // Let the pipeline drain before the next window, then read the drops: a datagram sent in
    // the window may be dropped just after it (so may one of the few sent between the window's
    // end and the blaster's stop, which the window does not count as offered).
    thread::sleep(Duration::from_millis(200));
    let pair_drops = drops_since(&pids, &drops_before.0);
    let other_drops = drops_since(&others, &drops_before.1);
    Ok(Window {
        offered: offered_after - offered_before,
        delivered: got_after - got_before,
        usage: Usage {
            cpu_ns: after.cpu_ns - before.cpu_ns,
            voluntary: after.voluntary - before.voluntary,
            involuntary: after.involuntary - before.involuntary,
        },
        syscalls,
        hop_ns: hop_after.zip(hop_before).map(|(a, b)| a - b),
        harness_ns: harness_after - harness_before,
        pair_drops,
        other_drops,
    })
}

/// How packets of a latency series leave.
#[derive(Debug, Clone, Copy)]
enum Flush {
    /// The next leaves when the last arrived.
    BackToBack,
    /// One every `gap`.
    Every(Duration),
}

/// One latency series through `pair`, delays in ns, sorted.
struct Series {
    /// Client -> A -> B -> sink -> B -> A -> client.
    round_trip: Vec<u64>,
    /// Client -> A -> B -> sink.
    one_way: Vec<u64>,
    /// Packets that never came back.
    missing: usize,
}

/// The send time stamped into a packet that came back, if it is one of this series'.
fn stamp_of(packet: &[u8], stamp_at: usize) -> Option<u64> {
    let bytes = packet.get(stamp_at..stamp_at + 8)?;
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// Runs one series through `pair`: each packet is stamped with its send time (ns since
/// `clock`); the sink reports the one-way delay on `arrivals` and echoes the packet, which the
/// client receives back from sidecar (or proxy) A.
fn series(
    o: &Options,
    pair: &Pair,
    flush: Flush,
    clock: Instant,
    arrivals: &mpsc::Receiver<u64>,
) -> Result<Series> {
    const WARM_UP: usize = 200;
    let client = UdpSocket::bind(CLIENT)?;
    client.set_read_timeout(Some(Duration::from_millis(200)))?;
    let stamp_at = if o.rtp { 12 } else { 0 };
    let mut packet = vec![0x5au8; o.size.max(stamp_at + 8)];
    while arrivals.try_recv().is_ok() {}
    let total = o.samples + WARM_UP;
    // The first stamp of the recorded packets: the warm-up's (cold caches and wakeups) and
    // any straggler of an earlier series are not recorded.
    let first_recorded = Arc::new(AtomicU64::new(u64::MAX));
    let sending = Arc::new(AtomicBool::new(true));
    // 1 ms apart, a thread collects what comes back while the client keeps sending.
    let collector = match flush {
        Flush::BackToBack => None,
        Flush::Every(_) => {
            let (socket, first, sending) = (
                client.try_clone()?,
                Arc::clone(&first_recorded),
                Arc::clone(&sending),
            );
            Some(thread::spawn(move || {
                let mut got = Vec::new();
                let mut buf = vec![0u8; 65536];
                loop {
                    match socket.recv(&mut buf) {
                        Ok(n) => {
                            let now = clock.elapsed().as_nanos() as u64;
                            if let Some(sent) = stamp_of(&buf[..n], stamp_at)
                                && sent >= first.load(Ordering::Relaxed)
                            {
                                got.push(now.saturating_sub(sent));
                            }
                        }
                        Err(_) if !sending.load(Ordering::Relaxed) => return got,
                        Err(_) => {}
                    }
                }
            }))
        }
    };
    let mut round_trip = Vec::with_capacity(o.samples);
    let mut missing = 0;
    let mut buf = vec![0u8; 65536];
    let started = Instant::now();
    for i in 0..total {
        if let Flush::Every(gap) = flush {
            let due = started + gap * i as u32;
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
        }
        if o.rtp {
            let seq = (i as u16).to_be_bytes();
            packet[..12].copy_from_slice(&[0x80, 96, seq[0], seq[1], 0, 0, 0, 1, 0, 0, 0, 7]);
        }
        let sent = clock.elapsed().as_nanos() as u64;
        if i == WARM_UP {
            first_recorded.store(sent, Ordering::Relaxed);
        }
        packet[stamp_at..stamp_at + 8].copy_from_slice(&sent.to_be_bytes());
        client.send_to(&packet, pair.entry)?;
        if let Flush::BackToBack = flush {
            // The next leaves when this one came back (or was given up after 200 ms).
            let back = loop {
                match client.recv(&mut buf) {
                    Ok(n) if stamp_of(&buf[..n], stamp_at) == Some(sent) => {
                        break Some(clock.elapsed().as_nanos() as u64 - sent);
                    }
                    Ok(_) => {}
                    Err(_) => break None,
                }
            };
            match back {
                Some(d) if i >= WARM_UP => round_trip.push(d),
                Some(_) => {}
                None => missing += 1,
            }
        }
    }
    if let Some(collector) = collector {
        thread::sleep(Duration::from_millis(300));
        sending.store(false, Ordering::Relaxed);
        round_trip = collector.join().map_err(|_| "collector panicked")?;
        missing = o.samples.saturating_sub(round_trip.len());
    }
    // The sink's one-way delays of the recorded packets: the last `samples` that arrived.
    let mut one_way: Vec<u64> = arrivals.try_iter().collect();
    let keep = one_way.len().min(o.samples);
    one_way.drain(..one_way.len() - keep);
    round_trip.sort_unstable();
    one_way.sort_unstable();
    Ok(Series {
        round_trip,
        one_way,
        missing,
    })
}

fn percentile_us(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

fn latency_tables(
    o: &Options,
    pairs: &[Pair; 2],
    clock: Instant,
    arrivals: &mpsc::Receiver<u64>,
) -> Result<()> {
    println!("{}, {} packets per series", o.describe(), o.samples);
    println!(
        "| flush | pair | round trip p50 us | round trip p99 us | one-way p50 us | one-way p99 us | missing | sidecar / naive round trip p50 | p99 |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (label, flush) in [
        ("back to back", Flush::BackToBack),
        ("1 ms apart", Flush::Every(Duration::from_millis(1))),
    ] {
        let results = [
            series(o, &pairs[0], flush, clock, arrivals)?,
            series(o, &pairs[1], flush, clock, arrivals)?,
        ];
        let p = |v: &[u64], q| percentile_us(v, q);
        let naive = &results[1].round_trip;
        for (pair, r) in pairs.iter().zip(&results) {
            let ratios = if pair.name == "naive pair" {
                " | ".to_owned()
            } else {
                format!(
                    "{:.2}x | {:.2}x",
                    p(&r.round_trip, 0.5) / p(naive, 0.5),
                    p(&r.round_trip, 0.99) / p(naive, 0.99)
                )
            };
            println!(
                "| {label} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {ratios} |",
                pair.name,
                p(&r.round_trip, 0.5),
                p(&r.round_trip, 0.99),
                p(&r.one_way, 0.5),
                p(&r.one_way, 0.99),
                r.missing
            );
        }
    }
    Ok(())
}

/// The blaster's fixed address: sidecar A seals only what comes from it (--local-client).
const CLIENT: &str = "127.0.0.1:39571";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("naive") {
        return match args.as_slice() {
            [_, op, index, listen, bind, peer, deliver] if op == "proxy" => {
                run_naive_proxy(index, listen, bind, peer, deliver)
            }
            [_, op, listen, a, b] if op == "forward" => run_naive_forward(listen, a, b),
            _ => Err(
                "usage: sidecar_cost naive proxy INDEX LISTEN BIND PEER DELIVER | \
                      naive forward LISTEN A B"
                    .into(),
            ),
        };
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let o = match parse_options(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("sidecar_cost: {e}");
            std::process::exit(2);
        }
    };
    let dir = std::env::temp_dir().join(format!("veil-sidecar-cost-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    // The sink gets the receive buffer the sidecars' sockets get (4 MiB, bind_reuseport), so
    // a scheduling hiccup of the harness at 100k pkt/s does not drop what the pairs delivered
    // (the 208 KiB default held under 100 datagrams of 1200 B); it reads blocking.
    let sink = bind_reuseport("127.0.0.1:0".parse()?)?;
    sink.set_nonblocking(false)?;
    let sink_addr = sink.local_addr()?;
    sink.set_read_timeout(Some(Duration::from_millis(50)))?;
    let received = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let clock = Instant::now();
    let (arrivals_tx, arrivals) = mpsc::channel::<u64>();
    let stamp_at = if o.rtp { 12 } else { 0 };
    let sink_thread = {
        let (received, done) = (Arc::clone(&received), Arc::clone(&done));
        let echo = o.latency;
        thread::spawn(move || {
            let handle = |packet: &[u8], from: SocketAddr| {
                received.fetch_add(1, Ordering::Relaxed);
                // The latency series' way back: to B, which seals what the sink sends.
                if echo {
                    let _ = sink.send_to(packet, from);
                }
                // The latency series stamp each packet with its send time (ns since
                // `clock`); the receive side answers with the one-way delay.
                if let Some(sent) = stamp_of(packet, stamp_at) {
                    let now = clock.elapsed().as_nanos() as u64;
                    let _ = arrivals_tx.send(now.saturating_sub(sent));
                }
            };
            // One blocking read wakes the sink; whatever else waits is drained a batch per
            // call (recvmmsg), so at 100k pkt/s the sink's receive buffer does not overflow
            // and the harness loses nothing the pairs delivered.
            let mut io = BatchIo::new(&sink);
            let mut batch = Batch::new();
            let mut buf = vec![0u8; 65536];
            while !done.load(Ordering::Relaxed) {
                let Ok((n, from)) = sink.recv_from(&mut buf) else {
                    continue;
                };
                handle(&buf[..n], from);
                while let Ok(got) = io.recv(&sink, &mut batch, 0) {
                    for i in 0..got {
                        if let Some(from) = batch.addr(i) {
                            handle(batch.packet(i), from);
                        }
                    }
                    if got == 0 {
                        break;
                    }
                }
            }
        })
    };
    let client: SocketAddr = CLIENT.parse()?;
    let (sidecars, mut servers) = sidecar_pair(&o, &dir, client, sink_addr)?;
    let (naive, hop) = naive_pair(client, sink_addr, o.meeting)?;
    servers.extend(hop);
    let pairs = [sidecars, naive];
    thread::sleep(Duration::from_millis(800));
    for p in pairs.iter().flat_map(|pair| &pair.procs).chain(&servers) {
        if !Path::new(&format!("/proc/{}", p.pid())).exists() {
            return Err(format!("{} exited at start", p.name).into());
        }
    }
    for pair in &pairs {
        wait_for_media(pair, &received, o.rtp)?;
    }
    let run = if o.latency {
        latency_tables(&o, &pairs, clock, &arrivals)
    } else {
        cpu_tables(&o, &pairs, &received)
    };
    done.store(true, Ordering::Relaxed);
    let _ = sink_thread.join();
    drop(pairs);
    drop(servers);
    let _ = fs::remove_dir_all(&dir);
    run
}

/// One table row per load and pair: CPU, system calls and wakeups per delivered packet.
fn cpu_tables(o: &Options, pairs: &[Pair; 2], received: &AtomicU64) -> Result<()> {
    println!("{}, {} s per window", o.describe(), o.seconds);
    println!(
        "| offered pkt/s | pair | achieved pkt/s | delivered | lost | dropped at the pair's sockets | dropped at hop and harness sockets | CPU us/pkt | syscalls/pkt | voluntary cs/pkt | involuntary cs/pkt | naive / sidecar CPU | hop CPU us/pkt | blaster + sink CPU us/pkt |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &rate in &o.rates {
        let windows = [
            measure(o, &pairs[0], rate, received)?,
            measure(o, &pairs[1], rate, received)?,
        ];
        let per = |w: &Window, v: u64| v as f64 / w.delivered.max(1) as f64;
        let cpu = |w: &Window| per(w, w.usage.cpu_ns) / 1000.0;
        for (pair, w) in pairs.iter().zip(&windows) {
            let lost = 1.0 - w.delivered as f64 / w.offered.max(1) as f64;
            let ratio = if pair.name == "naive pair" {
                String::new()
            } else {
                format!("{:.2}x", cpu(&windows[1]) / cpu(w))
            };
            println!(
                "| {} | {} | {:.0} | {} | {:.1}% | {} | {} | {:.2} | {} | {:.2} | {:.2} | {} | {} | {:.2} |",
                rate,
                pair.name,
                w.offered as f64 / o.seconds,
                w.delivered,
                100.0 * lost.max(0.0),
                w.pair_drops,
                w.other_drops,
                cpu(w),
                w.syscalls
                    .map_or("-".into(), |s| format!("{:.2}", per(w, s))),
                per(w, w.usage.voluntary),
                per(w, w.usage.involuntary),
                ratio,
                w.hop_ns
                    .map_or("-".into(), |h| format!("{:.2}", per(w, h) / 1000.0)),
                per(w, w.harness_ns) / 1000.0,
            );
        }
    }
    Ok(())
}

//! Issue 16's join storm, measured at the board: N raw clients join one meeting of a real
//! `veil board` process over TLS, each posts the announcement and nonce a real keyctl session
//! signs at join, and each reads until it holds every other member's two posts (live, or in the
//! backlog the board replays to a late joiner). The clients verify nothing and drive no session
//! further (the board verifies nothing either), so the board's CPU, bytes and the time until
//! every client holds every post are the board's, not those of N simulated participants, which
//! two cores cannot run (docs/BENCHMARKS.md, "Join storm").
//!
//! The same run storms a classical meeting (Ed25519, `pq = off`) first, as the baseline, then
//! the all-hybrid one (Ed25519 + ML-DSA-65 identities, `pq = required`), each on a fresh board.
//!
//! ```sh
//! cargo test --release -p veil --test board_storm -- --ignored --nocapture
//! ```
//!
//! `VEIL_STORM_N` sets N (default 1,000, the design's largest meeting). `VEIL_STORM_BASELINE`
//! names another build of `veil` (say, main before a board change): each storm then runs on
//! it too, right after the same storm on this build, and the table gets its rows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod board_util;

use std::collections::HashSet;
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use board_util::{BoardProcess, cpu_time, options, percentile};
use keyctl::crypto::SigningKey;
use keyctl::crypto::hybrid_sig::HybridSigningKey;
use keyctl::meeting::{Config, PqPolicy, Session, Timings};
use keyctl::rng::OsRng;
use keyctl::wire::{Field, Id, Message, ParticipantId};
use veil_board::client::{BoardClient, BoardEvent, Join};

/// How many TLS connects may be in flight at once: enough to keep both cores busy, few enough
/// that no handshake waits out the board's 10 s hello deadline.
const CONNECTS_IN_FLIGHT: usize = 16;

/// How long one storm may take before the test calls it failed.
const LIMIT: Duration = Duration::from_secs(900);

fn storm_size() -> usize {
    std::env::var("VEIL_STORM_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Classical,
    Hybrid,
}

/// A counting gate: at most `CONNECTS_IN_FLIGHT` holders.
struct Gate {
    free: Mutex<usize>,
    freed: Condvar,
}

impl Gate {
    fn enter(&self) {
        let mut free = self.free.lock().unwrap();
        while *free == 0 {
            free = self.freed.wait(free).unwrap();
        }
        *free -= 1;
    }

    fn leave(&self) {
        *self.free.lock().unwrap() += 1;
        self.freed.notify_one();
    }
}

/// The board's peak resident set (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// A counter of the board's `/metrics`.
fn metric(board: &BoardProcess, name: &str) -> u64 {
    let text = board.admin_get("/metrics");
    let prefix = format!("veil_board_{name}_total ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .trim()
        .parse()
        .unwrap()
}

/// What one client saw.
struct ClientRun {
    /// From the storm's start to its welcome.
    welcomed: Duration,
    /// From the storm's start until it held every other member's announcement and nonce.
    complete: Duration,
    /// Bytes of its announcement and nonce post, which the board sends every other member.
    broadcast: usize,
    /// The kinds (wire byte) of everything it posted.
    kinds: Vec<u8>,
}

/// A client's long-term identity: Ed25519 alone, or Ed25519 + ML-DSA-65.
enum Identity {
    Classical(SigningKey),
    Hybrid(HybridSigningKey),
}

impl Identity {
    fn generate(kind: Kind) -> Self {
        let mut rng = OsRng::new();
        match kind {
            Kind::Classical => Self::Classical(SigningKey::generate(&mut rng).unwrap()),
            Kind::Hybrid => Self::Hybrid(HybridSigningKey::generate(&mut rng).unwrap()),
        }
    }

    /// The IVK the board derives the deviceID from: the Ed25519 key, as a participant sends.
    fn ivk(&self) -> [u8; 32] {
        match self {
            Self::Classical(k) => k.verifying_key(),
            Self::Hybrid(k) => *k.verifying_key().ed25519(),
        }
    }
}

/// The keyctl posts `me` makes on joining: its signed announcement and nonce (and, for the
/// leader, whatever else a fresh leading session queues).
fn join_posts(
    identity: Identity,
    meeting: &keyctl::wire::MeetingRef,
    me: &ParticipantId,
    leader: &ParticipantId,
    name: &str,
) -> Vec<Message> {
    let mut rng = OsRng::new();
    let cfg = Config {
        meeting: meeting.clone(),
        me: me.clone(),
        display_name: Id::new(Field::DisplayName, name.as_bytes()).unwrap(),
        leader: leader.clone(),
        invite: None,
        host_secret: None,
        timings: Timings::default(),
        pq: match identity {
            Identity::Classical(_) => PqPolicy::Off,
            Identity::Hybrid(_) => PqPolicy::Required,
        },
    };
    let now = keyctl::meeting::Millis(0);
    let mut session = match identity {
        Identity::Classical(k) => Session::new(cfg, k, now, &mut rng).unwrap(),
        Identity::Hybrid(k) => Session::new_hybrid(cfg, k, now, &mut rng).unwrap(),
    };
    std::iter::from_fn(|| session.poll_transmit()).collect()
}

/// One client: joins, posts, reads until it holds all `2 (n - 1)` posts of the others.
fn client(
    kind: Kind,
    n: usize,
    index: usize,
    board: (std::net::SocketAddr, veil_board::client::ClientTls),
    gate: &Gate,
    start: Instant,
    done: &Barrier,
) -> ClientRun {
    let name = format!("p{index}");
    let mut opts = options(board.0, board.1);
    opts.connect_timeout = Duration::from_secs(60);
    let identity = Identity::generate(kind);
    let ivk = identity.ivk();
    gate.enter();
    let connected = BoardClient::connect(
        &opts,
        &Join {
            meeting_id: "storm".into(),
            name: name.clone(),
            host: index == 0,
            ivk,
        },
    );
    gate.leave();
    let (mut conn, welcome) = connected.unwrap_or_else(|e| panic!("{name}: {e}"));
    let welcomed = start.elapsed();
    let posts = join_posts(
        identity,
        &welcome.meeting,
        &welcome.me,
        &welcome.leader,
        &name,
    );
    let (mut broadcast, mut kinds) = (0, Vec::new());
    for post in &posts {
        let bytes = post.to_bytes();
        kinds.push(bytes[1]);
        if matches!(
            post.clone().into_classical(),
            Message::KeyAnnouncement(_) | Message::NoncePost(_)
        ) {
            broadcast += bytes.len();
        }
        conn.post(post).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let want = 2 * (n - 1);
    let mut held: HashSet<(bool, ParticipantId)> = HashSet::with_capacity(want);
    while held.len() < want {
        let left = LIMIT.saturating_sub(start.elapsed());
        assert!(
            !left.is_zero(),
            "{name}: holds {} of {want} posts",
            held.len()
        );
        match conn.recv(left).unwrap_or_else(|e| panic!("{name}: {e}")) {
            Some(BoardEvent::Message(bytes)) => {
                match Message::from_bytes(&bytes).unwrap().into_classical() {
                    Message::KeyAnnouncement(a) => {
                        assert!(held.insert((true, a.binding.participant)), "{name}: twice");
                    }
                    Message::NoncePost(p) => {
                        assert!(held.insert((false, p.body.participant)), "{name}: twice");
                    }
                    _ => {}
                }
            }
            Some(BoardEvent::Refused(r)) => panic!("{name}: refused: {r}"),
            Some(BoardEvent::Ended) => panic!("{name}: the meeting ended"),
            Some(_) | None => {}
        }
    }
    let complete = start.elapsed();
    // Stay a member until everyone is complete: a client that left early would shrink the
    // fan-out the others measure.
    done.wait();
    ClientRun {
        welcomed,
        complete,
        broadcast,
        kinds,
    }
}

struct Storm {
    runs: Vec<ClientRun>,
    board_cpu: Duration,
    bytes_out: u64,
    frames_out: u64,
    peak_rss: u64,
}

fn storm(kind: Kind, n: usize, veil: Option<&std::path::Path>) -> Storm {
    let board = match veil {
        Some(veil) => BoardProcess::start_from(veil, &[]),
        None => BoardProcess::start(&[]),
    };
    let pid = board.child.id();
    let (cpu_before, bytes_before, frames_before) = (
        cpu_time(pid),
        metric(&board, "bytes_out"),
        metric(&board, "frames_out"),
    );
    let gate = Arc::new(Gate {
        free: Mutex::new(CONNECTS_IN_FLIGHT),
        freed: Condvar::new(),
    });
    let done = Arc::new(Barrier::new(n));
    let start = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|index| {
            let (gate, done) = (gate.clone(), done.clone());
            let at = (board.addr, board.tls());
            std::thread::Builder::new()
                .name(format!("storm-{index}"))
                .spawn(move || client(kind, n, index, at, &gate, start, &done))
                .unwrap()
        })
        .collect();
    let runs: Vec<ClientRun> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // Read while every client is still connected (each leaves when its thread ends).
    let board_cpu = cpu_time(pid) - cpu_before;
    let bytes_out = metric(&board, "bytes_out") - bytes_before;
    let frames_out = metric(&board, "frames_out") - frames_before;
    Storm {
        runs,
        board_cpu,
        bytes_out,
        frames_out,
        peak_rss: peak_rss(pid),
    }
}

#[test]
#[ignore = "minutes on two cores: run with --release -- --ignored --nocapture"]
fn a_thousand_join_one_meeting_at_once() {
    let n = storm_size();
    assert!(n >= 2);
    println!(
        "join storm through one `veil board` (TLS), {n} raw clients, {CONNECTS_IN_FLIGHT} connects in flight"
    );
    println!(
        "| | announcement + nonce | last welcome | complete p50 | p99 | last | board CPU | board bytes out | frames out | board peak RSS |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let baseline = std::env::var_os("VEIL_STORM_BASELINE").map(std::path::PathBuf::from);
    let mut results = Vec::new();
    let builds: Vec<(&str, Option<&std::path::Path>)> = match &baseline {
        Some(veil) => vec![("this build", None), ("baseline", Some(veil.as_path()))],
        None => vec![("this build", None)],
    };
    let runs = [Kind::Classical, Kind::Hybrid]
        .into_iter()
        .flat_map(|kind| builds.iter().map(move |&(label, veil)| (kind, label, veil)));
    for (kind, label, veil) in runs {
        let s = storm(kind, n, veil);
        let mut complete: Vec<Duration> = s.runs.iter().map(|r| r.complete).collect();
        complete.sort_unstable();
        let last_welcome = s.runs.iter().map(|r| r.welcomed).max().unwrap();
        // Every member's announcement and nonce; its other posts (a key request to the
        // leader) go to one member only.
        let per_join = s.runs.iter().map(|r| r.broadcast).min().unwrap();
        println!(
            "posted at join: {:02x?} (leader), {:02x?} (another)",
            s.runs[0].kinds, s.runs[1].kinds
        );
        println!(
            "| {kind:?}, {label} | {per_join} B | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {:.2} GB | {} | {} MiB |",
            last_welcome.as_secs_f64(),
            percentile(&complete, 0.5).as_secs_f64(),
            percentile(&complete, 0.99).as_secs_f64(),
            complete.last().unwrap().as_secs_f64(),
            s.board_cpu.as_secs_f64(),
            s.bytes_out as f64 / 1e9,
            s.frames_out,
            s.peak_rss >> 20,
        );
        // Each member's two posts reached every other member once: the board sent at least
        // n (n - 1) x (both posts) bytes and 2 n (n - 1) post frames.
        let pairs = (n * (n - 1)) as u64;
        assert!(s.frames_out >= 2 * pairs, "{} frames", s.frames_out);
        assert!(
            s.bytes_out >= pairs * per_join as u64,
            "{} bytes",
            s.bytes_out
        );
        results.push((kind, label, s));
    }
    let pick = |kind: Kind| {
        &results
            .iter()
            .find(|(k, label, _)| *k == kind && *label == "this build")
            .unwrap()
            .2
    };
    let (c, h) = (pick(Kind::Classical), pick(Kind::Hybrid));
    let last = |s: &Storm| {
        s.runs
            .iter()
            .map(|r| r.complete)
            .max()
            .unwrap()
            .as_secs_f64()
    };
    println!(
        "hybrid / classical, same run: bytes out {:.1}x, board CPU {:.1}x, time to the last complete client {:.1}x",
        h.bytes_out as f64 / c.bytes_out as f64,
        h.board_cpu.as_secs_f64() / c.board_cpu.as_secs_f64().max(0.01),
        last(h) / last(c),
    );
    for (kind, label, s) in &results {
        if *label == "baseline" {
            let this = pick(*kind);
            println!(
                "{kind:?}, baseline / this build, same run: board CPU {:.2}x, peak RSS {:.1}x, time to the last complete client {:.2}x",
                s.board_cpu.as_secs_f64() / this.board_cpu.as_secs_f64().max(0.01),
                s.peak_rss as f64 / this.peak_rss as f64,
                last(s) / last(this),
            );
        }
    }
}

//! `veil demo`: an end-to-end encrypted meeting on loopback in one command.
//!
//! It starts a `veil board`, a `veil relay` and one `veil sidecar` per participant in meeting
//! mode, each a child process of this same binary: the demo exercises exactly the commands a
//! user would run, and stopping a participant is a real SIGTERM (it posts its leave). Behind
//! each sidecar an RTP source sends numbered packets and a sink files what arrives by sender.
//! Partway through a participant joins, later one leaves; keys rotate each time. At the end the
//! demo checks that every receiver got, from every sender, an unbroken run of packets (nothing
//! missing while it held the key, nothing duplicated, and up to the last packet for everyone
//! still there), that no sidecar saw a packet fail authentication or replay, and that every
//! participant computed the same leader security code.

mod display;
pub(crate) mod procs;
pub(crate) mod traffic;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use display::{Display, Row};
use procs::{Proc, free_tcp, free_udp, status};
use traffic::{Sink, Source};

/// Flags of `veil demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// How long media flows, in seconds. A participant joins at 35% of it and one leaves at 65%.
    #[arg(long, value_name = "SECONDS", default_value_t = 20)]
    duration: u64,
    /// Participants at the start (a further one joins during the run).
    #[arg(long, value_name = "N", default_value_t = 3)]
    participants: u8,
    /// Post-quantum key delivery, passed to every sidecar (`veil sidecar --pq`): `required`
    /// delivers every meeting key with the v4.6 hybrid box (X25519 + ML-KEM-768) and signs
    /// everything hybrid (Ed25519 + ML-DSA-65 identities), and the demo fails if any key went
    /// classically or any participant or its leader signed classically; `preferred` uses it wherever both sides have an
    /// ML-KEM key; `off` is classical only. The table's `key box` column shows how each
    /// participant got its key.
    #[arg(long, value_enum, value_name = "POLICY", default_value = "preferred")]
    pq: Pq,
}

/// `--pq` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pq {
    /// Every key by the hybrid box; the demo checks it.
    Required,
    /// The hybrid box wherever both sides have an ML-KEM key.
    Preferred,
    /// Classical X25519 box only.
    Off,
}

impl Pq {
    fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Preferred => "preferred",
            Self::Off => "off",
        }
    }
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// A child process could not start.
    #[error("starting {0}: {1}")]
    Spawn(String, std::io::Error),
    /// A child started but never said it was ready.
    #[error("{0} did not come up (see its log)")]
    Startup(String),
    /// A local socket.
    #[error("{0}")]
    Io(std::io::Error),
    /// A flag value that cannot work.
    #[error("{0}")]
    Usage(&'static str),
}

/// What the run showed.
#[derive(Debug)]
pub struct DemoOutcome {
    /// Every check passed.
    pub passed: bool,
    /// Where the children's logs are.
    pub logs: PathBuf,
}

const NAMES: [&str; 8] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
];
const MEETING: &str = "veil-demo";

/// One participant: its sidecar, its media source and sink, and what it last reported.
struct Member {
    name: String,
    index: u8,
    admin: SocketAddr,
    sidecar: Option<Proc>,
    source: Option<Source>,
    sink: Sink,
    last: Option<serde_json::Value>,
    joined: Instant,
    left: Option<Instant>,
    sent: u64,
    clean_exit: bool,
    /// Still in the meeting when the media stopped.
    stayed: bool,
}

impl Member {
    fn start(
        dir: &Path,
        index: u8,
        board: SocketAddr,
        relay: SocketAddr,
        pq: Pq,
    ) -> Result<Self, DemoError> {
        let name = NAMES
            .get(usize::from(index))
            .map_or_else(|| format!("p{index}"), |n| (*n).to_owned());
        let sink = Sink::start()?;
        let listen = free_udp()?;
        let admin = free_tcp()?;
        let mut args: Vec<String> = [
            "sidecar",
            "--board",
            &board.to_string(),
            "--board-insecure-plaintext",
            "--meeting",
            MEETING,
            "--name",
            &name,
            "--local-listen",
            &listen.to_string(),
            "--local-deliver",
            &sink.addr().to_string(),
            "--bind",
            &free_udp()?.to_string(),
            "--remote",
            &relay.to_string(),
            "--admin",
            &admin.to_string(),
            "--rtp",
            "--workers",
            "1",
            "--pq",
            pq.as_str(),
        ]
        .map(str::to_owned)
        .to_vec();
        if index == 0 {
            args.push("--host".into());
        }
        // The admin token (for commands; the demo only reads /status) beside the logs, not
        // left in the temp dir by a killed sidecar.
        args.push("--admin-token-file".into());
        args.push(
            dir.join(format!("{name}.admin-token"))
                .display()
                .to_string(),
        );
        let sidecar = Proc::spawn(dir, &name, &args, false)?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while status(admin).is_none() {
            if Instant::now() > deadline {
                return Err(DemoError::Startup(name));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let source = Source::start(index, &sink, listen)?;
        Ok(Self {
            name,
            index,
            admin,
            sidecar: Some(sidecar),
            source: Some(source),
            sink,
            last: None,
            joined: Instant::now(),
            left: None,
            sent: 0,
            clean_exit: true,
            stayed: true,
        })
    }

    /// Stops its media and its sidecar (SIGTERM: it posts its leave). Takes a last status
    /// first when `refresh` (at the end the demo has taken everyone's at the same moment, before
    /// a leader leaving changes the others' security code).
    fn leave(&mut self, refresh: bool) {
        if let Some(source) = self.source.take() {
            self.sent = source.stop();
        }
        if refresh {
            self.last = status(self.admin).or(self.last.take());
        }
        if let Some(sidecar) = self.sidecar.take() {
            self.clean_exit = sidecar.stop(Duration::from_secs(10));
        }
        self.sink.stop();
        self.left = Some(Instant::now());
    }

    fn row(&self) -> Row {
        let s = self.last.as_ref();
        let num = |path: &[&str]| {
            let mut v = s;
            for key in path {
                v = v.and_then(|x| x.get(*key));
            }
            v.and_then(serde_json::Value::as_u64).unwrap_or(0)
        };
        let role = if self.left.is_some() {
            "left"
        } else if s
            .and_then(|x| x.get("is_leader"))
            .and_then(serde_json::Value::as_bool)
            == Some(true)
        {
            "leader"
        } else if num(&["mk_seq"]) == 0 {
            "joining"
        } else {
            "member"
        };
        Row {
            name: self.name.clone(),
            role: role.to_owned(),
            slot: s
                .and_then(|x| x.get("sender_slot"))
                .and_then(serde_json::Value::as_u64),
            mk_seq: num(&["mk_seq"]),
            rotations: num(&["rotations"]),
            sealed: num(&["packets", "sealed"]),
            opened: num(&["packets", "opened"]),
            code: s
                .and_then(|x| x.get("security_code"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
            key_box: s.and_then(own_key_delivery).map(str::to_owned),
        }
    }
}

/// How a participant's own meeting key reached it, from its `/status`: its roster entry's
/// `key_delivery` (`leader`, `hybrid`, `classical` or `unknown`).
fn own_key_delivery(status: &serde_json::Value) -> Option<&str> {
    let me = status.get("me")?.as_str()?;
    status
        .get("roster")?
        .as_array()?
        .iter()
        .find(|e| e.get("participant").and_then(serde_json::Value::as_str) == Some(me))?
        .get("key_delivery")?
        .as_str()
}

/// Runs the demo and prints its progress and summary on stdout.
pub fn run(args: DemoArgs) -> Result<DemoOutcome, DemoError> {
    if args.duration < 6 {
        return Err(DemoError::Usage("--duration must be at least 6 seconds"));
    }
    if !(2..=7).contains(&args.participants) {
        return Err(DemoError::Usage("--participants must be 2 to 7"));
    }
    let dir = procs::log_dir()?;
    println!(
        "veil demo: a board, a relay and {} sidecars on loopback, post-quantum key delivery {} (logs in {})",
        args.participants,
        args.pq.as_str(),
        dir.display()
    );
    // The board issues relay tickets under this key and the relay checks them (the board
    // creates it, mode 0600; the relay reads it).
    let ticket_key = dir.join("relay-ticket.key").display().to_string();
    let mut board = Proc::spawn(
        &dir,
        "board",
        &[
            "board",
            "--listen",
            "127.0.0.1:0",
            "--insecure-plaintext",
            "--ticket-key",
            &ticket_key,
        ]
        .map(str::to_owned),
        true,
    )?;
    let board_addr = board.address_after("listening on ")?;
    let mut relay = Proc::spawn(
        &dir,
        "relay",
        &[
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--ticket-key",
            &ticket_key,
        ]
        .map(str::to_owned),
        true,
    )?;
    let relay_addr = relay.address_after("media ")?;
    println!(
        "board on {board_addr} (untrusted: routes signalling), relay on {relay_addr} (untrusted: forwards ciphertext)"
    );
    let mut members = Vec::new();
    for index in 0..args.participants {
        members.push(Member::start(&dir, index, board_addr, relay_addr, args.pq)?);
    }
    let start = Instant::now();
    let duration = Duration::from_secs(args.duration);
    let join_at = duration * 35 / 100;
    let leave_at = duration * 65 / 100;
    let mut display = Display::new();
    let mut joined = false;
    let mut left = false;
    while start.elapsed() < duration {
        if !joined && start.elapsed() >= join_at {
            joined = true;
            members.push(Member::start(
                &dir,
                args.participants,
                board_addr,
                relay_addr,
                args.pq,
            )?);
        }
        if !left && start.elapsed() >= leave_at {
            left = true;
            if let Some(member) = members.get_mut(1) {
                member.stayed = false;
                member.leave(true);
            }
        }
        for member in members.iter_mut().filter(|m| m.left.is_none()) {
            member.last = status(member.admin).or(member.last.take());
        }
        display.draw(
            start.elapsed().as_secs(),
            &members.iter().map(Member::row).collect::<Vec<_>>(),
        );
        std::thread::sleep(Duration::from_millis(1000));
    }
    // Stop the media, let the last packets land, then read the final counters.
    for member in &mut members {
        if let Some(source) = member.source.take() {
            member.sent = source.stop();
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    for member in members.iter_mut().filter(|m| m.left.is_none()) {
        member.last = status(member.admin).or(member.last.take());
    }
    display.draw(
        start.elapsed().as_secs(),
        &members.iter().map(Member::row).collect::<Vec<_>>(),
    );
    for member in members.iter_mut().filter(|m| m.left.is_none()) {
        member.leave(false);
    }
    let passed = summary::report(&members, args.pq);
    let relay_clean = relay.stop(Duration::from_secs(5));
    let board_clean = board.stop(Duration::from_secs(5));
    if !(relay_clean && board_clean) {
        println!("FAIL: the relay or the board did not exit cleanly");
    }
    Ok(DemoOutcome {
        passed: passed && relay_clean && board_clean,
        logs: dir,
    })
}

mod summary;

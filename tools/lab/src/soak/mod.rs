//! `veil-soak`: a meeting of meeting-mode sidecars under steady media for minutes, with key
//! rotations every 15 s and six faults, each in its own window: the board restarted (the
//! sidecars rejoin by themselves), the relay restarted, a sidecar killed with SIGKILL and
//! restarted with the same identity, one participant's network cut for 30 s, and then the
//! same kill and cut aimed at whoever leads the meeting at that moment (found from the
//! sidecars' `/status`). It measures what issue 7 asks for: packets lost outside the fault
//! windows, authentication failures, recovery time after each fault, and the RSS and open
//! descriptors of every process over time.
//!
//! It reuses the demo's child processes and numbered RTP sources and sinks
//! (the private `demo::procs` and `demo::traffic` modules); it is a separate binary rather than a
//! `veil` subcommand so the shipped tool carries no fault injection.

mod cast;
mod ledger;
mod proxy;
mod report;
mod sampler;
mod stall;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::demo::DemoError;
use crate::demo::procs::{Proc, free_tcp, free_udp, named_log_dir};
use cast::{Launch, Member};
use ledger::Window;
use sampler::Sampler;

/// The soak's own process in the samples (shown, not judged: it records every packet).
const HARNESS: &str = "veil-soak";

/// Flags of `veil-soak`.
#[derive(Parser, Debug)]
#[command(
    name = "veil-soak",
    about = "Soak test: a meeting of meeting-mode sidecars under steady media, with faults",
    long_about = "Soak test: a meeting of meeting-mode sidecars under steady media, with faults.

Starts a `veil board`, a `veil relay` and N `veil sidecar`s in meeting mode (loopback, logs in
a temporary directory), each sidecar with a numbered RTP source (50 packets/s) in front and a
sink behind. The leader rotates the meeting key every --rotation seconds throughout.

Every sidecar reaches the relay through a UDP proxy and the board through a TCP proxy, so the
soak can cut its network.

Phases, in order, each fault followed by a quiet period of equal length:
  warm-up        wait until every participant receives every other (at most --recovery-timeout)
  quiet          media flows; any packet lost here counts against the target of 0
  board restart  SIGTERM the board and start it again on the same port. Every session ends;
                 the sidecars rejoin the new meeting instance by themselves (nobody restarts
                 them): a new leader, new keys, a new security code
  relay restart  SIGTERM the relay and start it again on the same port; sidecars re-register
  sidecar kill   SIGKILL one sidecar (not the leader) and restart it at once with the same
                 --identity
  network cut    cut one sidecar's network (not the leader's) for --cut-seconds: its media
                 proxy drops every datagram both ways, its board proxy stalls the connection
  leader kill    the same kill, aimed at the sidecar whose /status says it leads; the board
                 names a new leader, who rekeys the meeting
  leader cut     the same cut, aimed at the sidecar leading now
Then the sources stop and the soak checks, prints a summary and exits 1 if a target is missed:
  packets lost outside the fault windows: 0 (a window runs from the fault until media flows
    again for the participants it affects; everyone for the board and relay)
  authentication failures (and replays) at every sidecar: 0
  recovery after each fault within --recovery-timeout
  RSS and open descriptors of every board, relay and sidecar process that lived 60 s past a
    20 s warm-up: flat (RSS at most 10% + 1 MiB above its baseline, descriptors at most 2
    more); veil-soak itself is shown but not judged (it keeps every packet's times)
The samples are written to samples.csv in the log directory.",
    after_help = "Example: tools/soak --minutes 5   (tools/soak builds --release and runs this)"
)]
pub struct SoakArgs {
    /// Total length of the quiet periods, in minutes (the faults and recoveries add to it).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    minutes: u64,
    /// Participants (sidecars) in the meeting.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u8).range(3..=20))]
    sidecars: u8,
    /// Key rotation interval, seconds (passed to every sidecar as --test-rotation-interval).
    #[arg(long, value_name = "SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=300))]
    rotation: u64,
    /// How long the network cut lasts, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    cut_seconds: u64,
    /// Give up on a recovery (and fail) after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    recovery_timeout: u64,
    /// RSS and descriptor sampling interval, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    sample_every: u64,
    /// The `veil` binary to run (default: `veil` beside this program).
    #[arg(long, value_name = "PATH")]
    veil: Option<PathBuf>,
}

/// Why the soak could not run to its verdict.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SoakError {
    /// Starting or talking to a child process.
    #[error(transparent)]
    Process(#[from] DemoError),
    /// The `veil` binary was not found.
    #[error("no veil binary at {0} (build it, or pass --veil PATH)")]
    NoVeil(PathBuf),
    /// Media never flowed between every pair at the start.
    #[error("media did not flow between every pair within {0} s of the start")]
    NoWarmup(u64),
}

/// What the soak showed.
#[derive(Debug)]
pub struct SoakOutcome {
    /// Every target met.
    pub passed: bool,
    /// Logs, identities and samples.
    pub logs: PathBuf,
}

/// Everything running, and what has been measured so far.
struct Soak {
    args: SoakArgs,
    launch: Launch,
    start: Instant,
    board: Option<Proc>,
    board_instance: u32,
    relay: Option<Proc>,
    relay_addr: SocketAddr,
    relay_instance: u32,
    members: Vec<Member>,
    windows: Vec<Window>,
    sampler: Sampler,
    last_poll: Instant,
    last_sample: Option<Instant>,
}

impl Soak {
    /// The key board and relay share for relay tickets (created by whichever starts first;
    /// restarts of either keep it, so tickets and cookies stay valid).
    fn ticket_key(&self) -> String {
        self.launch
            .dir
            .join("relay-ticket.key")
            .display()
            .to_string()
    }

    fn start_board(&mut self) -> Result<(), SoakError> {
        let args = [
            "board",
            "--listen",
            &self.launch.board.to_string(),
            "--insecure-plaintext",
            "--ticket-key",
            &self.ticket_key(),
        ]
        .map(str::to_owned);
        let mut board =
            Proc::spawn_program(&self.launch.veil, &self.launch.dir, "board", &args, true)?;
        board.address_after("listening on ")?;
        self.board = Some(board);
        self.board_instance += 1;
        Ok(())
    }

    fn start_relay(&mut self) -> Result<(), SoakError> {
        let args = [
            "relay",
            "--listen",
            &self.relay_addr.to_string(),
            "--ticket-key",
            &self.ticket_key(),
        ]
        .map(str::to_owned);
        let mut relay =
            Proc::spawn_program(&self.launch.veil, &self.launch.dir, "relay", &args, true)?;
        relay.address_after("media ")?;
        self.relay = Some(relay);
        self.relay_instance += 1;
        Ok(())
    }

    /// Polls every sidecar's status each second and samples every process's RSS and
    /// descriptors each --sample-every seconds.
    fn tick(&mut self) {
        if self.last_poll.elapsed() >= Duration::from_secs(1) {
            self.last_poll = Instant::now();
            for member in &mut self.members {
                member.poll();
            }
        }
        let due = self
            .last_sample
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(self.args.sample_every));
        if due {
            self.last_sample = Some(Instant::now());
            let mut processes: Vec<(String, u32)> = Vec::new();
            if let Some(board) = &self.board {
                processes.push((format!("board#{}", self.board_instance), board.pid()));
            }
            if let Some(relay) = &self.relay {
                processes.push((format!("relay#{}", self.relay_instance), relay.pid()));
            }
            processes.extend(self.members.iter().filter_map(Member::process));
            processes.push((HARNESS.into(), std::process::id()));
            self.sampler.sample(&processes);
        }
    }

    fn quiet(&mut self, seconds: u64) {
        println!(
            "[{:>6.1} s] quiet for {seconds} s",
            self.start.elapsed().as_secs_f64()
        );
        let until = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < until {
            self.tick();
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until, on every pair the fault affects, a packet sent at or after `cleared` has
    /// arrived; returns when the last such pair's packet arrived, or None on timeout.
    fn await_media(&mut self, affected: Option<u8>, cleared: Instant) -> Option<Instant> {
        let from: BTreeMap<u8, u64> = self.members.iter().map(|m| (m.index, m.sent())).collect();
        let deadline = cleared + Duration::from_secs(self.args.recovery_timeout);
        loop {
            let mut last = Some(cleared);
            'pairs: for receiver in &self.members {
                for (sender, first) in &from {
                    let pair_affected =
                        affected.is_none_or(|p| p == receiver.index || p == *sender);
                    if *sender == receiver.index || !pair_affected {
                        continue;
                    }
                    match receiver.sink.first_arrival_from(*sender, *first) {
                        Some(at) => last = last.max(Some(at)),
                        None => {
                            last = None;
                            break 'pairs;
                        }
                    }
                }
            }
            if last.is_some() {
                return last;
            }
            if Instant::now() > deadline {
                return None;
            }
            self.tick();
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Records a fault's window once media flows again (or the soak gives up).
    fn close_window(
        &mut self,
        fault: &'static str,
        affected: Option<u8>,
        start: Instant,
        cleared: Instant,
    ) {
        let recovered = self.await_media(affected, cleared);
        let end = recovered.unwrap_or_else(Instant::now);
        match recovered {
            Some(at) => println!(
                "[{:>6.1} s] {fault}: media flows again {:.2} s after the fault cleared",
                self.start.elapsed().as_secs_f64(),
                at.saturating_duration_since(cleared).as_secs_f64()
            ),
            None => println!(
                "[{:>6.1} s] {fault}: media did NOT flow again within {} s",
                self.start.elapsed().as_secs_f64(),
                self.args.recovery_timeout
            ),
        }
        self.windows.push(Window {
            fault,
            affected,
            start,
            cleared,
            recovered,
            end,
        });
    }

    fn announce(&self, what: &str) {
        println!("[{:>6.1} s] {what}", self.start.elapsed().as_secs_f64());
    }

    fn restart_board(&mut self) -> Result<(), SoakError> {
        self.announce(
            "fault: board restart (SIGTERM, same port); the sidecars rejoin by themselves",
        );
        let start = Instant::now();
        if let Some(board) = self.board.take() {
            board.stop(Duration::from_secs(5));
        }
        self.start_board()?;
        self.close_window("board restart", None, start, start);
        Ok(())
    }

    fn restart_relay(&mut self) -> Result<(), SoakError> {
        self.announce("fault: relay restart (SIGTERM, same port)");
        let start = Instant::now();
        if let Some(relay) = self.relay.take() {
            relay.stop(Duration::from_secs(5));
        }
        self.start_relay()?;
        self.close_window("relay restart", None, start, start);
        Ok(())
    }

    /// The member whose `/status` says it leads, if every sidecar that answers names it.
    fn leader(&mut self) -> Option<u8> {
        for member in &mut self.members {
            member.poll();
        }
        let views: Vec<(u8, (bool, String, String))> = self
            .members
            .iter()
            .filter_map(|m| Some((m.index, m.leader_view()?)))
            .collect();
        let (index, (_, me, _)) = views.iter().find(|(_, (leads, _, _))| *leads)?;
        views
            .iter()
            .all(|(_, (_, _, leader))| leader == me)
            .then_some(*index)
    }

    /// `preferred`, unless it leads now: then the participant before it.
    fn not_leader(&mut self, preferred: u8) -> u8 {
        if self.leader() == Some(preferred) {
            let n = self.args.sidecars;
            (preferred + n - 1) % n
        } else {
            preferred
        }
    }

    /// The leader, or `fallback` (with a note) if the sidecars do not agree on one.
    fn leader_or(&mut self, fallback: u8) -> u8 {
        self.leader().unwrap_or_else(|| {
            self.announce(&format!(
                "the sidecars do not agree on a leader; aiming at soak-{fallback}"
            ));
            fallback
        })
    }

    fn kill_sidecar(&mut self, index: u8, fault: &'static str) -> Result<(), SoakError> {
        let start = Instant::now();
        if let Some(member) = self.members.get_mut(usize::from(index)) {
            println!(
                "[{:>6.1} s] fault: {fault}: SIGKILL {}, restarted with the same --identity",
                self.start.elapsed().as_secs_f64(),
                member.name
            );
            member.end(true);
            member.start(&self.launch)?;
        }
        self.close_window(fault, Some(index), start, start);
        Ok(())
    }

    fn cut_network(&mut self, index: u8, fault: &'static str) {
        let Some(before) = self.members.get(usize::from(index)).map(Member::dropped) else {
            return;
        };
        self.announce(&format!(
            "fault: {fault}: network of soak-{index} cut for {} s (media dropped, board stalled)",
            self.args.cut_seconds
        ));
        let start = Instant::now();
        self.set_cut(index, true);
        let until = start + Duration::from_secs(self.args.cut_seconds);
        while Instant::now() < until {
            self.tick();
            std::thread::sleep(Duration::from_millis(100));
        }
        self.set_cut(index, false);
        let cleared = Instant::now();
        let dropped = self
            .members
            .get(usize::from(index))
            .map_or(0, |m| m.dropped() - before);
        self.announce(&format!(
            "network of soak-{index} restored ({dropped} datagrams dropped)"
        ));
        self.close_window(fault, Some(index), start, cleared);
    }

    fn set_cut(&self, index: u8, cut: bool) {
        if let Some(member) = self.members.get(usize::from(index)) {
            member.set_cut(cut);
        }
    }
}

/// Runs the soak and prints its progress and summary.
pub fn run(args: SoakArgs) -> Result<SoakOutcome, SoakError> {
    let veil = match &args.veil {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .map_err(DemoError::Io)?
            .with_file_name("veil"),
    };
    if !veil.is_file() {
        return Err(SoakError::NoVeil(veil));
    }
    let dir = named_log_dir("veil-soak")?;
    let launch = Launch {
        veil,
        dir: dir.clone(),
        board: free_tcp()?,
        rotation_s: args.rotation,
    };
    let relay_addr = free_udp()?;
    let n = args.sidecars;
    // The first kill and cut aim at the last two participants (the one before, should either
    // lead at the time); the leader faults pick theirs when they come.
    let cut = n - 1;
    let killed = n - 2;
    let mut members = Vec::new();
    for index in 0..n {
        members.push(Member::new(index, &dir, relay_addr, launch.board)?);
    }
    let start = Instant::now();
    let mut soak = Soak {
        launch,
        start,
        board: None,
        board_instance: 0,
        relay: None,
        relay_addr,
        relay_instance: 0,
        members,
        windows: Vec::new(),
        sampler: Sampler::new(start),
        last_poll: start,
        last_sample: None,
        args,
    };
    println!(
        "veil-soak: a board, a relay and {n} meeting-mode sidecars on loopback, rotation every {} s (logs in {})",
        soak.args.rotation,
        dir.display()
    );
    soak.start_board()?;
    soak.start_relay()?;
    for member in &mut soak.members {
        member.start(&soak.launch)?;
    }
    soak.announce("every sidecar joined; waiting for media between every pair");
    let measured_from = soak
        .await_media(None, Instant::now())
        .ok_or(SoakError::NoWarmup(soak.args.recovery_timeout))?;
    let gap = (soak.args.minutes * 60 / 5).max(10);
    soak.quiet(gap);
    soak.restart_board()?;
    soak.quiet(gap);
    soak.restart_relay()?;
    soak.quiet(gap);
    let killed = soak.not_leader(killed);
    soak.kill_sidecar(killed, "sidecar SIGKILL")?;
    soak.quiet(gap);
    let cut = soak.not_leader(cut);
    soak.cut_network(cut, "network cut");
    soak.quiet(gap);
    let leader = soak.leader_or(0);
    soak.kill_sidecar(leader, "leader SIGKILL")?;
    soak.quiet(gap);
    let leader = soak.leader_or(1);
    soak.cut_network(leader, "leader cut");
    soak.quiet(gap);
    soak.announce("stopping the sources; the last packets land");
    for member in &mut soak.members {
        member.stop_source();
    }
    let settle = Instant::now() + Duration::from_secs(2);
    while Instant::now() < settle {
        soak.tick();
        std::thread::sleep(Duration::from_millis(100));
    }
    for member in &mut soak.members {
        member.poll();
    }
    soak.last_sample = None;
    soak.tick();
    let passed = report::report(&soak, measured_from);
    for member in &mut soak.members {
        member.end(false);
    }
    if let Some(relay) = soak.relay.take() {
        relay.stop(Duration::from_secs(5));
    }
    if let Some(board) = soak.board.take() {
        board.stop(Duration::from_secs(5));
    }
    Ok(SoakOutcome { passed, logs: dir })
}

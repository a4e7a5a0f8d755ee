//! The `veil` command: inspect protected packets, make pre-shared key files, run the sidecar.
//! Each subcommand lives in the `veil` library (`tools/veil/src/lib.rs`) so tests can drive it in
//! process; this file only parses the command line and dispatches.
#![forbid(unsafe_code)]

use veil_board as board;
use veil_cli::{inspect, keygen, sidecar, web};
use veil_lab::demo;
use veil_relay as relay;

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Veil: end-to-end encrypted media. Servers in the middle route it and never read it.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decode the clear fields of a protected packet: mkSeqNum, KID (sender slot and stream) and
    /// CTR. Reads no key; tells what any relay on the path can see.
    Inspect {
        /// The packet as hex (whitespace allowed), as captured from the network side.
        hex: String,
        /// The packet is RTP mode: a clear RTP header precedes the mkSeqNum.
        #[arg(long)]
        rtp: bool,
    },
    /// Print a fresh key file to stdout: random meeting key and UUID, mkSeqNum 1, roster slots
    /// 0..N-1. Give every sidecar of the meeting the same file (it is a secret).
    Keygen {
        /// Make a pre-shared key file (the only kind so far; required, to say what you get).
        #[arg(long, required = true)]
        psk: bool,
        /// The meeting ID written into the file.
        #[arg(long, value_name = "ID")]
        meeting: String,
        /// How many sender slots the roster gets (0..N-1).
        #[arg(long, value_name = "N", default_value_t = 2)]
        slots: u32,
    },
    /// Run beside a media client: seal what it sends to --local-listen and send it to --remote;
    /// open what arrives on --bind and deliver it to --local-deliver. Rejected packets are
    /// dropped and counted by reason. Keys come from a pre-shared key file (--key-file
    /// --sender-slot; SIGHUP re-reads it, a rotation) or from the meeting handshake against a
    /// board (--board --meeting --name; --remote is then a `veil relay`). SIGINT or SIGTERM
    /// drain and exit (meeting mode leaves the meeting first). Logs go to stderr (RUST_LOG
    /// sets the level).
    Sidecar(Box<sidecar::SidecarArgs>),
    /// The media relay: forwards every datagram from a registered participant to the other
    /// participants of its meeting, byte for byte. It holds no key and never decrypts.
    /// Participants (sidecars) register their media address with a clear registration datagram
    /// (docs/PROTOCOL.md, "Relay registration") and refresh it every 2 s; an entry not refreshed
    /// within --registration-ttl expires. Datagrams from unregistered addresses are dropped and
    /// counted. Prints `veil relay: media ADDR [admin ADDR]` on stdout once listening; SIGINT or
    /// SIGTERM stop it.
    Relay(relay::RelayArgs),
    /// An end-to-end encrypted meeting on loopback in one command: starts a board, a relay and
    /// a sidecar per participant (child processes of this binary), synthetic RTP media behind
    /// each; a participant joins and one leaves during the run. Shows each participant's
    /// mkSeqNum, rotations, packets sealed and opened and security code every second; ends with
    /// a summary and exits 0 only if every receiver got every packet sent while it held the key
    /// and nothing failed authentication.
    Demo(demo::DemoArgs),
    /// The bulletin board and signalling server of the meeting handshake (untrusted by
    /// design): one process, many meetings; routes the participants' keyctl messages, picks
    /// the leader, announces joins and leaves. TLS by default (a self-signed certificate whose
    /// SHA-256 fingerprint is printed for clients to pin, or --cert/--key). It stores nothing
    /// secret and never sees a meeting key. SIGINT or SIGTERM end every meeting and exit.
    Board(board::BoardArgs),
    /// Serve the browser participant's page (index.html, app.js and the wasm, built into this
    /// binary) over HTTP, with a strict Content-Security-Policy and nothing else. The meeting
    /// link rides in the URL fragment (#veil1&board=...&meeting=...&invite=...&user=...),
    /// which browsers never send to this server. Prints `veil web: page http://ADDR/` on
    /// stdout once listening. Needs a veil built with the page (tools/web/js/build-page).
    Web(web::WebArgs),
}

fn init_logs() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Sidecar(args) => {
            init_logs();
            match sidecar::run(*args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "veil sidecar cannot run");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Demo(args) => match demo::run(args) {
            Ok(outcome) if outcome.passed => ExitCode::SUCCESS,
            Ok(outcome) => {
                eprintln!("veil demo: FAILED (logs in {})", outcome.logs.display());
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("veil demo: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Board(args) => {
            init_logs();
            match board::run(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "veil board cannot run");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Relay(args) => {
            init_logs();
            match relay::run(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "veil relay cannot run");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Web(args) => match web::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("veil web: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Inspect { hex, rtp } => match inspect::inspect(&hex, rtp) {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("veil inspect: {message}");
                ExitCode::FAILURE
            }
        },
        Command::Keygen {
            psk: _,
            meeting,
            slots,
        } => {
            let written = keygen::psk(&meeting, slots).map(|file| {
                std::io::stdout()
                    .lock()
                    .write_all(file.to_toml().as_bytes())
            });
            match written {
                Ok(Ok(())) => ExitCode::SUCCESS,
                Ok(Err(e)) => {
                    eprintln!("veil keygen: cannot write: {e}");
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("veil keygen: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

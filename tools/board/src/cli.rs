//! `veil board` on the command line.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use super::server::{BoardConfig, BoardServer};
use super::tamper::Tamper;
use super::tls::{ServerTls, fingerprint_hex};
use super::{BoardError, serve_admin};

/// The bulletin board and signalling server of the meeting handshake, untrusted by design.
///
/// One process serves many meetings: it routes the participants' keyctl messages (each
/// participant's key announcement, the leader's sealed keys, heartbeats and list links), picks
/// the leader (the first participant; when the leader goes, a host if present, else the
/// longest present), and announces joins and leaves. TLS by default: --cert/--key, or a
/// self-signed certificate made at start whose SHA-256 fingerprint is printed for clients to
/// pin. Prints `veil board listening on ADDR (TLS|plaintext)` on stdout once ready; SIGINT or
/// SIGTERM end every meeting and exit 0. Logs go to stderr (RUST_LOG sets the level).
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = "\
Examples:
  veil board                                   # TLS with a fresh self-signed certificate; pin the printed fingerprint
  veil board --cert board.pem --key board.key --listen 0.0.0.0:7700
  veil board --insecure-plaintext              # loopback only, for local tests
  veil board --admin 127.0.0.1:9200            # curl 127.0.0.1:9200/stats (JSON) or /metrics

The board is untrusted by design: it routes the participants' signed keyctl messages and sealed
meeting keys and can never read a meeting key. It stores nothing secret; a meeting's posts are
dropped when its last participant leaves.")]
pub struct BoardArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7700")]
    pub listen: SocketAddr,
    /// PEM certificate chain (with --key). Without both, a self-signed certificate is
    /// generated at start and its SHA-256 fingerprint printed for clients to pin.
    #[arg(long, value_name = "PEM", requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, value_name = "PEM", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Also accept participants over WebSocket here (a browser): path /board, one board frame
    /// per binary message, TLS as on --listen (wss), the same limits and counters. Plaintext
    /// (with --insecure-plaintext) only on a loopback address.
    #[arg(long, value_name = "ADDR")]
    pub ws_listen: Option<SocketAddr>,
    /// No TLS. Refused unless --listen is a loopback address.
    #[arg(long, conflicts_with_all = ["cert", "key"])]
    pub insecure_plaintext: bool,
    /// Also write the certificate fingerprint (64 hex digits) to this file, for scripts.
    #[arg(long, value_name = "PATH")]
    pub fingerprint_file: Option<PathBuf>,
    /// Serve counters over HTTP here: /stats (JSON), /metrics (Prometheus). GET only;
    /// loopback only unless --admin-public; a request whose Host is not this address, or that
    /// a browser marks cross-site, is refused.
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<SocketAddr>,
    /// `--admin-public`, `--admin-token-file`.
    #[command(flatten)]
    pub admin_access: veil_admin::AdminAccess,
    /// TEST ONLY: behave as a malicious board, to check participants detect it.
    #[arg(long, value_enum, value_name = "SCENARIO")]
    pub tamper: Option<Tamper>,
    /// Issue a relay ticket in every Welcome, under the key shared with `veil relay
    /// --ticket-key` (64 hex digits; created, mode 0600, if missing).
    #[arg(long, value_name = "PATH")]
    pub ticket_key: Option<PathBuf>,
    /// How long a relay ticket is valid, in minutes. A participant (a sidecar or a browser page)
    /// gets a fresh one with each (re)join and asks for another half way to its expiry, so a
    /// ticket outlives no more than this window if the participant's link is stolen.
    #[arg(long, value_name = "MINUTES", default_value_t = 720)]
    pub ticket_lifetime: u64,
}

/// Runs the board until SIGINT or SIGTERM.
pub fn run(args: BoardArgs) -> Result<(), BoardError> {
    // A public --admin without the opt-in fails before the board listens.
    if let Some(admin) = args.admin {
        veil_admin::check_bind(admin, &args.admin_access)?;
    }
    let tls = if args.insecure_plaintext {
        if !args.listen.ip().is_loopback() {
            return Err(BoardError::PlaintextNotLoopback(args.listen));
        }
        None
    } else {
        Some(match (&args.cert, &args.key) {
            (Some(cert), Some(key)) => ServerTls::from_pem_files(cert, key)?,
            _ => ServerTls::self_signed(args.listen.ip())?,
        })
    };
    let mut server = BoardServer::bind(BoardConfig {
        listen: args.listen,
        tls,
        tamper: args.tamper,
    })?;
    if let Some(ws) = args.ws_listen {
        server = server.with_websocket(ws)?;
    }
    if let Some(path) = &args.ticket_key {
        let key = veil_relay::ticket::TicketKey::load_or_create(path)?;
        server = server.with_relay_tickets(super::core::RelayTickets {
            key,
            lifetime: std::time::Duration::from_secs(args.ticket_lifetime.saturating_mul(60)),
        });
    }
    let addr = server.local_addr();
    if let Some(tamper) = args.tamper {
        tracing::warn!(?tamper, "TAMPER MODE: this board attacks its participants");
    }
    let mut stdout = std::io::stdout().lock();
    let _admin = match args.admin {
        Some(admin) => {
            let served = serve_admin(admin, &args.admin_access, server.stats())?;
            let admin = served.local_addr();
            tracing::info!(%admin, "admin endpoint: /stats (JSON), /metrics (Prometheus)");
            let _ = writeln!(
                stdout,
                "admin on {admin} (/stats JSON, /metrics Prometheus)"
            );
            if let Some(path) = served.token_file() {
                let _ = writeln!(stdout, "admin token file: {}", path.display());
            }
            Some(served)
        }
        None => None,
    };
    match server.fingerprint() {
        Some(fp) => {
            let hex = fingerprint_hex(&fp);
            if let Some(path) = &args.fingerprint_file {
                std::fs::write(path, format!("{hex}\n")).map_err(|error| {
                    BoardError::FingerprintFile {
                        path: path.clone(),
                        error,
                    }
                })?;
            }
            tracing::info!(%addr, fingerprint = %hex, "board listening (TLS)");
            let _ = writeln!(stdout, "veil board listening on {addr} (TLS)");
            if let Some(ws) = server.ws_addr() {
                let _ = writeln!(stdout, "websocket on wss://{ws}{}", super::ws::WS_PATH);
            }
            let _ = writeln!(stdout, "certificate SHA-256 fingerprint: {hex}");
            let _ = stdout.flush();
        }
        None => {
            tracing::warn!(%addr, "board listening WITHOUT TLS (loopback only)");
            let _ = writeln!(stdout, "veil board listening on {addr} (plaintext)");
            if let Some(ws) = server.ws_addr() {
                let _ = writeln!(stdout, "websocket on ws://{ws}{}", super::ws::WS_PATH);
            }
            let _ = stdout.flush();
        }
    }
    drop(stdout);
    let stop = server.stop_flag();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, std::sync::Arc::clone(&stop))
            .map_err(BoardError::Io)?;
    }
    server.run()?;
    tracing::info!(stopped = stop.load(Ordering::Relaxed), "board stopped");
    Ok(())
}

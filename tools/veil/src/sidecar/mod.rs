//! `veil sidecar`: a media proxy beside an existing client. Plain packets from the client are
//! sealed and sent to the relay; protected packets from the relay are opened and delivered.
//!
//! Keys come from one of two places: a pre-shared key file (`--key-file`, [`keys`]) or the
//! meeting handshake run against a board (`--board`, the private `meeting_mode` module). Either
//! way they land in the same keyring. One worker per core, each with its own SO_REUSEPORT
//! sockets and engine (the private `workers` module); the main thread handles signals, key
//! events, epoch retirement, the relay registration and the admin gauges.

pub mod identity;
pub mod keys;
mod meeting_mode;
mod metrics;
mod registrar;
mod workers;

pub use meeting_mode::{MeetingModeError, fast_timings};

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use clap::{Args, ValueEnum};
use dataplane::keyring::Keyring;
use dataplane::packet::Mode;
use dataplane::pipeline::LocalClient;
use dataplane_udp::{EngineKind, bind_reuseport, now};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Flags of `veil sidecar`.
#[derive(Args, Debug)]
#[command(after_long_help = "\
Examples:
  # meeting mode: keys from the meeting handshake on a board, media through a relay
  veil sidecar --board 127.0.0.1:7700 --board-fingerprint HEX --meeting standup --name alice \\
      --identity alice.identity --local-listen 127.0.0.1:5000 --local-deliver 127.0.0.1:5002 \\
      --bind 0.0.0.0:6000 --remote RELAY:6100 --admin 127.0.0.1:9100 --rtp
  # only datagrams from 127.0.0.1:5002 (the client sends from where it receives) are sealed;
  # a client sending from another socket: --local-client 127.0.0.1:PORT
  curl 127.0.0.1:9100/status            # participants, leader, security code, mkSeqNum, alerts
  # commands need the run's admin token (path in the start log; --admin-token-file sets it)
  curl -X POST -H \"Authorization: Bearer $(cat TOKEN_FILE)\" 127.0.0.1:9100/kick/2   # the leader removes slot 2
  # invite-only meeting: the host's sidecar issues invites (browsers join from `veil web`)
  veil sidecar ... --host --invites --web-url http://127.0.0.1:8080/ --board-ws 127.0.0.1:7701
  curl -X POST -H \"Authorization: Bearer $(cat TOKEN_FILE)\" '127.0.0.1:9100/invite?user=bob'
  #   {\"user\":\"bob\",\"invite\":\"64 hex\",\"link\":\"http://127.0.0.1:8080/#veil1&...\"}
  VEIL_INVITE=HEX veil sidecar ... --name bob   # a sidecar invitee: the invite for its --name
  # a lost board or leader: the sidecar rejoins by itself (--no-rejoin: it stays out, keyless)
  # post-quantum key delivery (default --pq preferred); the host decides for the meeting:
  #   --pq required   every meeting key in the hybrid box and every signature hybrid
  #                   (Ed25519 + ML-DSA-65); joiners without both refused
  #   --pq off        Ed25519 identities and the classical box only

  # pre-shared key mode: every sidecar of the meeting gets the same key file
  veil keygen --psk --meeting demo --slots 2 > meeting.toml
  veil sidecar --key-file meeting.toml --sender-slot 0 --local-listen 127.0.0.1:5000 \\
      --local-deliver 127.0.0.1:5002 --bind 0.0.0.0:6000 --remote RELAY:6100 --relay")]
pub struct SidecarArgs {
    /// Where the local client sends its plain packets: the sidecar listens on this address and
    /// seals what arrives from the client (--local-client). Must be loopback unless
    /// --allow-remote-client.
    #[arg(long, value_name = "ADDR")]
    local_listen: SocketAddr,
    /// Where opened packets are delivered: the local client's receiving address. Must be
    /// loopback unless --allow-remote-client.
    #[arg(long, value_name = "ADDR")]
    local_deliver: SocketAddr,
    /// The exact address (IP and port) the local client sends from: only its datagrams are
    /// sealed, anything else reaching --local-listen is dropped
    /// (`veil_io_drops_total{reason="foreign_source"}`). Default: --local-deliver itself, for
    /// a client that sends from the socket it receives on (symmetric RTP); give this when it
    /// sends from another socket. Port 0 ("any port") and a wildcard IP are refused: another
    /// process on the same host could then inject media sealed as this device.
    #[arg(long, value_name = "ADDR")]
    local_client: Option<SocketAddr>,
    /// Permit a --local-listen, --local-deliver or --local-client that is not a loopback
    /// address: plaintext then crosses a network, and hosts on it can reach the unsealed side.
    #[arg(long)]
    allow_remote_client: bool,
    /// The sidecar's network socket: sealed packets leave from it and protected packets from the
    /// relay or peer arrive on it.
    #[arg(long, value_name = "ADDR")]
    bind: SocketAddr,
    /// The relay or peer that sealed packets are sent to.
    #[arg(long, value_name = "ADDR")]
    remote: SocketAddr,
    /// Pre-shared key mode: --remote is a `veil relay`: register --bind with it for the key
    /// file's meeting (token `slot-N`, from --sender-slot), refresh every 2 s, and leave on exit.
    /// Without it --remote is a peer sidecar (or anything that forwards without registration).
    /// In meeting mode --remote is always a relay.
    #[arg(long)]
    relay: bool,
    /// Pre-shared key mode: the key file (TOML, from `veil keygen --psk`). Re-read on SIGHUP:
    /// the new key (with a larger mk_seq) decrypts at once, is sent with 2 s later, and the old
    /// key stops decrypting 10 s later. Needs --sender-slot; excludes --board.
    #[arg(
        long,
        value_name = "PATH",
        requires = "sender_slot",
        help_heading = "Pre-shared key mode"
    )]
    key_file: Option<PathBuf>,
    /// This sender's roster slot (0 to 65535): the top 16 bits of its KIDs. Must be in the key
    /// file's roster. Each start (and each reload) seals under a fresh random sender instance,
    /// so restarting on the same key file, or two sidecars given one slot, never repeats a
    /// (key, nonce) pair; packets that come back under this slot are refused (`reflected`).
    #[arg(
        long,
        value_name = "N",
        requires = "key_file",
        help_heading = "Pre-shared key mode"
    )]
    sender_slot: Option<u32>,
    /// RTP mode: the RTP header stays in the clear (authenticated) so a relay can route, the
    /// payload is protected, and the stream key is picked by the SSRC. Default: datagram mode,
    /// the whole UDP payload is protected.
    #[arg(long)]
    rtp: bool,
    /// The UDP engine: `auto` probes io_uring and falls back to mio; `uring` or `mio` forces one.
    #[arg(long, value_enum, default_value_t = EngineArg::Auto)]
    engine: EngineArg,
    /// Worker threads, each with its own SO_REUSEPORT sockets and engine. Default: one per core.
    #[arg(long, value_name = "N")]
    workers: Option<NonZeroUsize>,
    /// Serve Prometheus metrics at http://ADDR/metrics: packets and bytes per direction, drops
    /// by reason, the current mkSeqNum, the engine. In meeting mode also `GET /status` (JSON:
    /// the current session's participant list, leader, security code, mkSeqNum and alerts;
    /// `rejoins`, `rejoin_attempts`, `rejoining` and `last_end`, why the last session ended;
    /// `ended` once the sidecar stays out; packet counters) and, for the leader,
    /// `POST /kick/SLOT`, `POST /lock`, `POST /unlock`, which need the admin token
    /// (`Authorization: Bearer TOKEN`). Loopback only unless --admin-public; a request whose
    /// Host is not this address, or that a browser marks cross-site, is refused.
    #[arg(long, value_name = "ADDR")]
    admin: Option<SocketAddr>,
    #[command(flatten)]
    admin_access: veil_admin::AdminAccess,
    #[command(flatten)]
    meeting: meeting_mode::MeetingArgs,
}

/// `--engine` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineArg {
    /// Probe io_uring; fall back to mio.
    Auto,
    /// io_uring; fail if it cannot run here.
    Uring,
    /// epoll via mio with recvmmsg/sendmmsg.
    Mio,
}

/// Why the sidecar could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SidecarError {
    /// The key file.
    #[error(transparent)]
    Keys(#[from] keys::KeyFileError),
    /// A socket.
    #[error("{what}: {error}")]
    Io {
        /// What was being set up.
        what: &'static str,
        /// The error.
        error: io::Error,
    },
    /// io_uring was forced and cannot run.
    #[error("--engine uring: {0}")]
    NoUring(dataplane_udp::UringUnusable),
    /// The relay registration cannot be built (meeting ID or token too long).
    #[error("relay registration: {0}")]
    Registration(#[from] veil_relay::registration::RegistrationError),
    /// Neither or both of the key sources were given.
    #[error("give either --key-file and --sender-slot (pre-shared key) or --board (meeting)")]
    Mode,
    /// Meeting mode could not start.
    #[error(transparent)]
    Meeting(#[from] meeting_mode::MeetingModeError),
    /// The admin endpoint could not start.
    #[error(transparent)]
    Admin(#[from] veil_admin::AdminError),
    /// A local (plaintext) address is not loopback and --allow-remote-client was not given.
    #[error(
        "{flag} {addr} is not a loopback address: other hosts could send plaintext to be sealed \
         as this device or receive what is opened; give --allow-remote-client if the client \
         really runs elsewhere"
    )]
    NotLoopback {
        /// The flag.
        flag: &'static str,
        /// Its value.
        addr: SocketAddr,
    },
    /// --local-client names no address a datagram can come from.
    #[error("--local-client {0}: give the client's own address, not a wildcard")]
    WildcardClient(SocketAddr),
    /// The client address (--local-client, or --local-deliver by default) has port 0, which
    /// would admit every process on that IP.
    #[error(
        "{flag} {addr}: the client's port must be exact, not 0; give --local-client IP:PORT, \
         the address the client sends from"
    )]
    AnyPortClient {
        /// The flag the address came from.
        flag: &'static str,
        /// Its value.
        addr: SocketAddr,
    },
}

pub(crate) fn io_error(what: &'static str) -> impl FnOnce(io::Error) -> SidecarError {
    move |error| SidecarError::Io { what, error }
}

fn choose_engine(arg: EngineArg) -> Result<(EngineKind, String), SidecarError> {
    match arg {
        EngineArg::Auto => Ok(match EngineKind::probe() {
            (kind, None) => (
                kind,
                "io_uring available with multishot receive and sendto".into(),
            ),
            (kind, Some(why)) => (kind, format!("io_uring unusable: {why}")),
        }),
        EngineArg::Mio => Ok((EngineKind::Mio, "forced by --engine mio".into())),
        EngineArg::Uring => match EngineKind::probe() {
            (_, Some(why)) => Err(SidecarError::NoUring(why)),
            (kind, None) => Ok((kind, "forced by --engine uring".into())),
        },
    }
}

/// The one address whose datagrams are sealed, after checking that every plaintext address is
/// loopback or explicitly allowed not to be (finding 19.4: only the configured client's
/// address is sealed). By default it is --local-deliver's exact address; an IP on any port
/// would let every process on the client's host inject media sealed as this device.
fn local_client(args: &SidecarArgs) -> Result<LocalClient, SidecarError> {
    let (flag, client) = match args.local_client {
        Some(client) => ("--local-client", client),
        None => ("--local-deliver", args.local_deliver),
    };
    if client.ip().is_unspecified() {
        return Err(SidecarError::WildcardClient(client));
    }
    if client.port() == 0 {
        return Err(SidecarError::AnyPortClient { flag, addr: client });
    }
    if !args.allow_remote_client {
        for (flag, addr) in [
            ("--local-listen", args.local_listen),
            ("--local-deliver", args.local_deliver),
            ("--local-client", client),
        ] {
            if !addr.ip().to_canonical().is_loopback() {
                return Err(SidecarError::NotLoopback { flag, addr });
            }
        }
    }
    Ok(LocalClient::new(client))
}

/// Binds `count` SO_REUSEPORT sockets on `addr`; with port 0 the first one picks the port and
/// the others join it.
fn bind_all(
    addr: SocketAddr,
    count: usize,
    what: &'static str,
) -> Result<Vec<UdpSocket>, SidecarError> {
    let first = bind_reuseport(addr).map_err(io_error(what))?;
    let actual = first.local_addr().map_err(io_error(what))?;
    let mut sockets = vec![first];
    for _ in 1..count {
        sockets.push(bind_reuseport(actual).map_err(io_error(what))?);
    }
    Ok(sockets)
}

/// What both modes share once the sockets are bound.
pub(crate) struct Plumbing {
    workers: workers::Workers,
    engine: EngineKind,
    mode: Mode,
    send_mk_seq: Arc<AtomicU64>,
    newest_mk_seq: Arc<AtomicU64>,
    signals: Signals,
}

impl Plumbing {
    fn bind(args: &SidecarArgs) -> Result<(Self, String), SidecarError> {
        let (engine, reason) = choose_engine(args.engine)?;
        let count = args
            .workers
            .or_else(|| thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get);
        let mode = if args.rtp { Mode::Rtp } else { Mode::Datagram };
        let client = local_client(args)?;
        let locals = bind_all(args.local_listen, count, "--local-listen")?;
        let networks = bind_all(args.bind, count, "--bind")?;
        let workers = workers::Workers::new(
            engine,
            mode,
            locals.into_iter().zip(networks).collect(),
            args.local_deliver,
            client,
            args.remote,
        );
        let signals = Signals::new([SIGHUP, SIGINT, SIGTERM]).map_err(io_error("signals"))?;
        Ok((
            Self {
                workers,
                engine,
                mode,
                send_mk_seq: Arc::new(AtomicU64::new(0)),
                newest_mk_seq: Arc::new(AtomicU64::new(0)),
                signals,
            },
            reason,
        ))
    }

    /// What `/metrics` shows.
    fn exposed(&self) -> metrics::Exposed {
        metrics::Exposed {
            workers: self.workers.counters(),
            worker_threads: self.workers.count(),
            send_mk_seq: self.send_mk_seq.clone(),
            newest_mk_seq: self.newest_mk_seq.clone(),
            engine: self.engine.as_str(),
        }
    }

    /// Drops retired epochs and refreshes the mkSeqNum gauges.
    fn tend(&self, keyring: &Keyring) {
        let now = now();
        keyring.prune(now);
        let snapshot = keyring.load();
        let send = snapshot.send_epoch(now).map_or(0, |e| e.mk_seq());
        let newest = snapshot.newest().map_or(0, |e| e.mk_seq());
        self.send_mk_seq.store(u64::from(send), Ordering::Relaxed);
        self.newest_mk_seq
            .store(u64::from(newest), Ordering::Relaxed);
    }

    /// The first log line: what runs and why.
    fn log_started(&self, args: &SidecarArgs, reason: &str) {
        tracing::info!(
            engine = self.engine.as_str(),
            why = %reason,
            workers = self.workers.count(),
            mode = ?self.mode,
            local_listen = %args.local_listen,
            bind = %args.bind,
            remote = %args.remote,
            "sidecar started"
        );
    }

    /// Stops the workers and logs the totals.
    fn finish(self) {
        let totals = self.workers.finish();
        tracing::info!(
            outbound = totals.packets[0],
            inbound = totals.packets[1],
            dropped = totals.drops.total(),
            "sidecar stopped"
        );
    }
}

/// Serves the admin endpoint of `--admin`, if given (bound here, so a bad address fails the
/// start); `has_commands`: some route changes state, so a token is made. Keep the server
/// until exit: dropping it removes the token file.
fn spawn_admin(
    args: &SidecarArgs,
    has_commands: bool,
    handler: impl Fn(&veil_admin::Request) -> veil_admin::Response + Send + Sync + 'static,
) -> Result<Option<veil_admin::AdminServer>, SidecarError> {
    let Some(addr) = args.admin else {
        return Ok(None);
    };
    let config = veil_admin::AdminConfig {
        addr,
        access: &args.admin_access,
        role: "sidecar",
        has_commands,
    };
    Ok(Some(veil_admin::AdminServer::start(&config, handler)?))
}

/// Runs the sidecar until SIGINT or SIGTERM.
pub fn run(args: SidecarArgs) -> Result<(), SidecarError> {
    // A public --admin without the opt-in fails before anything joins or binds.
    if let Some(addr) = args.admin {
        veil_admin::check_bind(addr, &args.admin_access)?;
    }
    match (&args.key_file, args.sender_slot, args.meeting.board) {
        (Some(key_file), Some(slot), None) => run_psk(&args, key_file, slot),
        (None, None, Some(_)) => meeting_mode::run(&args),
        _ => Err(SidecarError::Mode),
    }
}

fn run_psk(args: &SidecarArgs, key_file: &Path, slot: u32) -> Result<(), SidecarError> {
    let file = keys::read(key_file, slot)?;
    let keyring = Arc::new(keys::keyring(&file, slot, now())?);
    drop(file);
    let (mut plumbing, reason) = Plumbing::bind(args)?;
    let mut registrar = if args.relay {
        let meeting_id = keyring.load().config().meeting_id.clone();
        let token = format!("slot-{slot}");
        Some(registrar::Registrar::new(
            plumbing.workers.network_socket()?,
            args.remote,
            &meeting_id,
            &token,
            // PSK meetings have no board to issue a ticket: the relay must run `--open`.
            None,
        )?)
    } else {
        None
    };
    plumbing.workers.start(&keyring)?;
    let exposed = plumbing.exposed();
    let _admin = spawn_admin(args, false, move |request| {
        metrics::answer(request, &exposed)
    })?;
    plumbing.log_started(args, &reason);
    loop {
        let mut stop = false;
        for signal in plumbing.signals.pending() {
            match signal {
                SIGHUP => match keys::reload(&keyring, key_file, slot, now()) {
                    Ok(mk_seq) => tracing::info!(mk_seq, "key file reloaded: rotating"),
                    Err(error) => {
                        tracing::error!(%error, "key file reload refused; keeping the current keys")
                    }
                },
                _ => {
                    tracing::info!(signal, "stopping: draining the workers");
                    stop = true;
                }
            }
        }
        if stop {
            break;
        }
        if let Some(registrar) = registrar.as_mut() {
            registrar.tick(std::time::Instant::now());
        }
        plumbing.tend(&keyring);
        thread::sleep(Duration::from_millis(100));
    }
    if let Some(registrar) = &registrar {
        registrar.leave();
    }
    plumbing.finish();
    // The workers are gone; this is the last holder of the keys, which zeroize as it drops.
    drop(keyring);
    Ok(())
}

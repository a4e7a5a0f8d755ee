//! `veil relay`: the UDP server around the routing table: its socket loop, admin endpoint and
//! command line.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Args;
use dataplane_udp::bind_reuseport;

use veil_admin::{AdminAccess, AdminConfig, AdminServer, Response};

use crate::counters::RelayCounters;
use crate::forward::{self, WebSide};
use crate::web::{self, Certificate, Wake, WebListener};
use crate::{table, ticket};

/// Flags of `veil relay`.
#[derive(Args, Debug)]
#[command(after_long_help = "\
Examples:
  veil board ... --ticket-key relay-ticket.key              # the board issues the tickets
  veil relay --listen 0.0.0.0:6100 --admin 127.0.0.1:9200 --ticket-key relay-ticket.key
                                                            # curl 127.0.0.1:9200/metrics
  veil sidecar ... --remote RELAY:6100 --board ...          # meeting mode registers by itself
  veil relay ... --ticket-key relay-ticket.key --open       # also for PSK sidecars (no ticket)
  veil relay ... --web-listen 127.0.0.1:6101               # browsers too, over WebTransport;
                                                            # prints the certificate's SHA-256
  veil sidecar ... --remote RELAY:6100 --relay --key-file meeting.toml --sender-slot 0

A registration is one clear datagram from the participant's media address (magic 00 56 52 47
88 00, version 2, kind, meeting ID, token, ticket, cookie; docs/PROTOCOL.md). The board issues
the ticket (HMAC-SHA256 under --ticket-key, which board and relay share); the relay answers a
registration without this address's cookie with a challenge, and registers the address only
once the cookie comes back from it. The relay forwards what it gets from
a registered address to every other address of that meeting, byte for byte, and drops what
comes from anywhere else (veil_relay_drops_total{reason=\"unregistered_source\"}). It cannot
read media: it has no key, and sealed packets show only the mkSeqNum, the SFrame KID and
counter (and in RTP mode the RTP header); `veil inspect` decodes exactly that.")]
pub struct RelayArgs {
    /// The UDP address participants send media and registrations to. Port 0 picks a free
    /// port; the first line on stdout says which.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:6100")]
    listen: SocketAddr,
    /// Serve counters at http://ADDR/metrics (Prometheus text): datagrams received and
    /// forwarded, registrations, drops by reason, registered addresses and meetings.
    /// GET only; loopback only unless --admin-public; a request whose Host is not this
    /// address, or that a browser marks cross-site, is refused.
    #[arg(long, value_name = "ADDR")]
    admin: Option<SocketAddr>,
    #[command(flatten)]
    admin_access: AdminAccess,
    /// How long a registration lives without a refresh. Sidecars refresh every 2 s.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    registration_ttl: u64,
    /// Most media addresses registered at once, across all meetings; registrations beyond it
    /// are refused and counted (`table_full`).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    max_registrations: usize,
    /// Most addresses in one meeting (`meeting_full`): bounds the copies one datagram becomes.
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    max_meeting_members: usize,
    /// Most addresses registered from one source IP, across meetings (`source_full`). 256
    /// leaves room for a large office behind one NAT address, and keeps one host from filling
    /// meetings with its own ports.
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_per_source: usize,
    /// The key shared with `veil board --ticket-key` (64 hex digits; created, mode 0600, if
    /// missing). Tickets are checked with it and cookies derived from it, so a relay restarted
    /// on the same file takes the sidecars' cookies back.
    #[arg(long, value_name = "PATH")]
    ticket_key: std::path::PathBuf,
    /// Also register participants that present no ticket (PSK meetings, which have no board).
    /// Tickets presented are still checked, and cookies always are.
    #[arg(long)]
    open: bool,
    /// Accept browser members over WebTransport (HTTP/3 datagrams, https://ADDR/veil) on this
    /// UDP address. They register with the same datagram, ticket and cookie as UDP members
    /// and share their meetings; the first line on stdout gives the certificate's SHA-256,
    /// which the meeting link carries as relay_sha256.
    #[arg(long, value_name = "ADDR")]
    web_listen: Option<SocketAddr>,
    /// The WebTransport certificate chain (PEM). Without it a self-signed ECDSA P-256
    /// certificate valid 13 days is made at start, which pages pin by hash (browsers allow
    /// pinning only for certificates valid at most two weeks: restart the relay within 13
    /// days, or give a certificate here).
    #[arg(long, value_name = "PATH", requires_all = ["web_key", "web_listen"])]
    web_cert: Option<std::path::PathBuf>,
    /// The private key of --web-cert (PEM).
    #[arg(long, value_name = "PATH", requires = "web_cert")]
    web_key: Option<std::path::PathBuf>,
    /// Names the self-signed certificate is for (hostnames or IP addresses); default: the
    /// --web-listen IP (or localhost for an unspecified address).
    #[arg(long, value_name = "NAME", requires = "web_listen")]
    web_name: Vec<String>,
    /// Most WebTransport sessions at once; more are answered 429.
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    max_web_sessions: usize,
}

/// Why the relay could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// A socket.
    #[error("{what}: {error}")]
    Io {
        /// What was being set up or run.
        what: &'static str,
        /// The error.
        error: std::io::Error,
    },
    /// A flag value that cannot work.
    #[error("{0}")]
    Usage(&'static str),
    /// The admin endpoint could not start.
    #[error(transparent)]
    Admin(#[from] veil_admin::AdminError),
    /// The ticket key file.
    #[error(transparent)]
    TicketKey(#[from] ticket::TicketKeyError),
    /// The WebTransport listener.
    #[error(transparent)]
    Web(#[from] web::WebError),
}

fn io_error(what: &'static str) -> impl FnOnce(std::io::Error) -> RelayError {
    move |error| RelayError::Io { what, error }
}

/// Runs the relay until SIGINT or SIGTERM.
pub fn run(args: RelayArgs) -> Result<(), RelayError> {
    if args.registration_ttl == 0 {
        return Err(RelayError::Usage("--registration-ttl must be at least 1"));
    }
    if args.max_registrations == 0
        || args.max_meeting_members == 0
        || args.max_per_source == 0
        || args.max_web_sessions == 0
    {
        return Err(RelayError::Usage(
            "--max-registrations, --max-meeting-members, --max-per-source and \
             --max-web-sessions must be at least 1",
        ));
    }
    if let Some(addr) = args.admin {
        veil_admin::check_bind(addr, &args.admin_access)?;
    }
    let key = ticket::TicketKey::load_or_create(&args.ticket_key)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).map_err(io_error("signals"))?;
    }
    let socket = bind_reuseport(args.listen).map_err(io_error("--listen"))?;
    let media = socket.local_addr().map_err(io_error("--listen"))?;
    let counters = Arc::new(RelayCounters::default());
    let admin = match args.admin {
        Some(addr) => {
            let counters = counters.clone();
            let config = AdminConfig {
                addr,
                access: &args.admin_access,
                role: "relay",
                has_commands: false,
            };
            Some(AdminServer::start(&config, move |request| {
                match (request.method.as_str(), request.path.as_str()) {
                    ("GET", "/metrics") => {
                        Response::prometheus(veil_admin::PROMETHEUS_TEXT, counters.render())
                    }
                    _ => Response::text("404 Not Found", "try /metrics\n"),
                }
            })?)
        }
        None => None,
    };
    let poll = mio::Poll::new().map_err(io_error("poll"))?;
    let listener = match args.web_listen {
        Some(addr) => {
            let waker = mio::Waker::new(poll.registry(), forward::WEB).map_err(io_error("poll"))?;
            let wake = Arc::new(Wake {
                pending: AtomicBool::new(false),
                waker,
            });
            let certificate = match (&args.web_cert, &args.web_key) {
                (Some(cert), Some(key)) => Certificate::Files {
                    cert: cert.clone(),
                    key: key.clone(),
                },
                _ => Certificate::SelfSigned(self_signed_names(addr, &args.web_name)),
            };
            let listener = WebListener::start(
                addr,
                &certificate,
                args.max_web_sessions,
                counters.clone(),
                wake.clone(),
            )?;
            Some((listener, wake))
        }
        None => None,
    };
    // One machine-readable line, so scripts and tests using port 0 learn the ports.
    let mut line = format!("veil relay: media {media}");
    if let Some(admin) = &admin {
        line += &format!(" admin {}", admin.local_addr());
    }
    if let Some((listener, _)) = &listener {
        line += &format!(
            " web {} sha256 {}",
            listener.local_addr,
            hex::encode(listener.certificate_sha256)
        );
    }
    println!("{line}");
    if let Some(path) = admin.as_ref().and_then(AdminServer::token_file) {
        println!("admin token file: {}", path.display());
    }
    tracing::info!(%media, ttl_s = args.registration_ttl, "relay started");
    let table = table::Table::new(
        Duration::from_secs(args.registration_ttl),
        table::Limits {
            total: args.max_registrations,
            per_meeting: args.max_meeting_members,
            per_source: args.max_per_source,
        },
    );
    let admission = forward::Admission {
        key,
        open: args.open,
    };
    let web = listener.as_ref().map(|(listener, wake)| WebSide {
        events: &listener.events,
        wake,
        sessions: Default::default(),
        closed: Vec::new(),
    });
    forward::Relay::new(&socket, table, admission, &counters, web)
        .run(poll, &stop)
        .map_err(io_error("forwarding"))?;
    tracing::info!("relay stopped");
    Ok(())
}

/// The self-signed certificate's names: those given, else the listening IP (or localhost when
/// it listens on every address).
fn self_signed_names(addr: SocketAddr, given: &[String]) -> Vec<String> {
    if !given.is_empty() {
        return given.to_vec();
    }
    if addr.ip().is_unspecified() {
        vec!["localhost".to_owned()]
    } else {
        vec![addr.ip().to_string()]
    }
}

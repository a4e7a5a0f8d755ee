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
use crate::{forward, table, ticket};

/// Flags of `veil relay`.
#[derive(Args, Debug)]
#[command(after_long_help = "\
Examples:
  veil board ... --ticket-key relay-ticket.key              # the board issues the tickets
  veil relay --listen 0.0.0.0:6100 --admin 127.0.0.1:9200 --ticket-key relay-ticket.key
                                                            # curl 127.0.0.1:9200/metrics
  veil sidecar ... --remote RELAY:6100 --board ...          # meeting mode registers by itself
  veil relay ... --ticket-key relay-ticket.key --open       # also for PSK sidecars (no ticket)
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
}

fn io_error(what: &'static str) -> impl FnOnce(std::io::Error) -> RelayError {
    move |error| RelayError::Io { what, error }
}

/// Runs the relay until SIGINT or SIGTERM.
pub fn run(args: RelayArgs) -> Result<(), RelayError> {
    if args.registration_ttl == 0 {
        return Err(RelayError::Usage("--registration-ttl must be at least 1"));
    }
    if args.max_registrations == 0 || args.max_meeting_members == 0 || args.max_per_source == 0 {
        return Err(RelayError::Usage(
            "--max-registrations, --max-meeting-members and --max-per-source must be at least 1",
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
    // One machine-readable line, so scripts and tests using port 0 learn the ports.
    match &admin {
        Some(admin) => println!("veil relay: media {media} admin {}", admin.local_addr()),
        None => println!("veil relay: media {media}"),
    }
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
    forward::Relay::new(&socket, table, admission, &counters)
        .run(&stop)
        .map_err(io_error("forwarding"))?;
    tracing::info!("relay stopped");
    Ok(())
}

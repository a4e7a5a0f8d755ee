//! `--admin ADDR`: the board's counters over HTTP, as JSON (`/stats`, `/`) or Prometheus
//! text (`/metrics`), served by the shared admin server ([`crate::admin`]: Host and
//! cross-site checks, deadlines, bounded workers). The threads see counters only, never a
//! post or a connection. The board has no commands: every method but GET is refused.

use std::net::SocketAddr;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::stats::{PublishedStats, StatsSnapshot};
use veil_admin::{AdminAccess, AdminConfig, AdminError, AdminServer, Request, Response};

/// Serves `stats` at `addr` until the process exits (keep the server: dropping it removes
/// the token file of `--admin-public`).
pub fn serve_admin(
    addr: SocketAddr,
    access: &AdminAccess,
    stats: PublishedStats,
) -> Result<AdminServer, AdminError> {
    let config = AdminConfig {
        addr,
        access,
        role: "board",
        has_commands: false,
    };
    AdminServer::start(&config, move |request| answer(request, &stats.snapshot()))
}

fn prometheus(s: &StatsSnapshot) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("veil_board");
    let gauge = |v: u64| {
        let g = Gauge::<i64>::default();
        g.set(i64::try_from(v).unwrap_or(i64::MAX));
        g
    };
    let counter = |v: u64| {
        let c = Counter::<u64>::default();
        c.inc_by(v);
        c
    };
    registry.register(
        "meetings",
        "Meeting instances in progress",
        gauge(s.meetings),
    );
    registry.register("participants", "Participants joined", gauge(s.participants));
    registry.register("connections", "Open connections", gauge(s.connections));
    registry.register("frames_in", "Frames received", counter(s.frames_in));
    registry.register("frames_out", "Frames sent", counter(s.frames_out));
    registry.register("bytes_in", "Bytes received", counter(s.bytes_in));
    registry.register("bytes_out", "Bytes sent", counter(s.bytes_out));
    registry.register(
        "tampered",
        "Deliveries altered by --tamper",
        counter(s.tampered),
    );
    let errors = Family::<Vec<(String, String)>, Counter>::default();
    for (reason, n) in &s.errors {
        errors
            .get_or_create(&vec![("reason".to_owned(), (*reason).to_owned())])
            .inc_by(*n);
    }
    registry.register("errors", "Refused input, by reason", errors);
    let mut out = String::new();
    encode(&mut out, &registry)?;
    Ok(out)
}

fn answer(request: &Request, s: &StatsSnapshot) -> Response {
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/metrics") => match prometheus(s) {
            Ok(b) => Response::prometheus("text/plain; version=0.0.4", b),
            Err(_) => Response::text("500 Internal Server Error", ""),
        },
        ("GET", "/" | "/stats") => match serde_json::to_string_pretty(s) {
            Ok(b) => Response::ok("application/json", b),
            Err(_) => Response::text("500 Internal Server Error", ""),
        },
        _ => Response::text(
            "404 Not Found",
            "try /stats (JSON) or /metrics (Prometheus)\n",
        ),
    }
}

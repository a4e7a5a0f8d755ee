//! `--admin ADDR`: the board's counters over HTTP, as JSON (`/stats`, `/`) or Prometheus
//! text (`/metrics`). The thread sees counters only, never a post or a connection.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::stats::{BoardStats, StatsSnapshot};

/// Serves `stats` on `listener` in a background thread, until the process exits.
pub fn serve_admin(listener: TcpListener, stats: Arc<BoardStats>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("board-admin".to_owned())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                if let Err(e) = answer(conn, &stats.snapshot()) {
                    tracing::debug!(error = %e, "admin request failed");
                }
            }
        })
        .map(drop)
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

fn answer(mut conn: TcpStream, s: &StatsSnapshot) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    // Read up to the end of the request head (or 512 bytes): a client may send it in pieces.
    let mut head = [0u8; 512];
    let mut n = 0;
    while n < head.len() && !head[..n].windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut head[n..])? {
            0 => break,
            got => n += got,
        }
    }
    let path = std::str::from_utf8(head.get(..n).unwrap_or_default())
        .ok()
        .and_then(|h| h.split_whitespace().nth(1))
        .unwrap_or("/");
    let (status, kind, body) = match path.split('?').next().unwrap_or(path) {
        "/metrics" => match prometheus(s) {
            Ok(b) => ("200 OK", "text/plain; version=0.0.4", b),
            Err(_) => ("500 Internal Server Error", "text/plain", String::new()),
        },
        "/" | "/stats" => match serde_json::to_string_pretty(s) {
            Ok(b) => ("200 OK", "application/json", b),
            Err(_) => ("500 Internal Server Error", "text/plain", String::new()),
        },
        _ => (
            "404 Not Found",
            "text/plain",
            "try /stats (JSON) or /metrics (Prometheus)\n".to_owned(),
        ),
    };
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

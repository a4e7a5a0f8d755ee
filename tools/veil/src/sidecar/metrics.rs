//! `--admin`: Prometheus text exposition of the workers' summed counters at `/metrics`.
//!
//! The admin thread sees only counters and two gauges, never the keyring, so no key material is
//! reachable from it (and it can be left running at exit without keeping a key alive).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};

use dataplane::batch::SendDrop;
use dataplane::packet::DropReason;
use dataplane::pipeline::{CountersSnapshot, Direction, IoDrop};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::workers::SharedCounters;
use veil_admin::{Request, Response};

/// What the admin endpoint reports.
pub(crate) struct Exposed {
    /// One per worker and generation.
    pub(crate) workers: SharedCounters,
    /// Worker threads.
    pub(crate) worker_threads: usize,
    /// The mkSeqNum sent with now, kept current by the main loop.
    pub(crate) send_mk_seq: Arc<AtomicU64>,
    /// The newest mkSeqNum installed.
    pub(crate) newest_mk_seq: Arc<AtomicU64>,
    /// The engine name.
    pub(crate) engine: &'static str,
}

type Labels = Vec<(String, String)>;

fn label(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl Exposed {
    /// The workers' counters summed.
    pub(crate) fn totals(&self) -> CountersSnapshot {
        let mut sum = CountersSnapshot::default();
        let workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        for worker in workers.iter() {
            sum.add(&worker.read());
        }
        sum
    }

    /// The exposition text.
    pub(crate) fn render(&self) -> Result<String, std::fmt::Error> {
        let totals = self.totals();
        let mut registry = Registry::with_prefix("veil");
        let packets = Family::<Labels, Counter>::default();
        let bytes = Family::<Labels, Counter>::default();
        let sent = Family::<Labels, Counter>::default();
        for d in Direction::ALL {
            let l = label(&[("direction", d.as_str())]);
            packets.get_or_create(&l).inc_by(totals.packets[d as usize]);
            bytes.get_or_create(&l).inc_by(totals.bytes[d as usize]);
            sent.get_or_create(&l).inc_by(totals.sent[d as usize]);
        }
        let drops = Family::<Labels, Counter>::default();
        for r in DropReason::ALL {
            drops
                .get_or_create(&label(&[("reason", r.as_str())]))
                .inc_by(totals.drops.get(r));
        }
        let send_drops = Family::<Labels, Counter>::default();
        for r in SendDrop::ALL {
            send_drops
                .get_or_create(&label(&[("reason", r.as_str())]))
                .inc_by(totals.send_drops[r as usize]);
        }
        let io_drops = Family::<Labels, Counter>::default();
        for d in Direction::ALL {
            for r in IoDrop::ALL {
                io_drops
                    .get_or_create(&label(&[("direction", d.as_str()), ("reason", r.as_str())]))
                    .inc_by(totals.io_drops[d as usize][r as usize]);
            }
        }
        let gauge = |v: &AtomicU64| {
            let g = Gauge::<i64>::default();
            g.set(i64::try_from(v.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
            g
        };
        let engine = Family::<Labels, Gauge>::default();
        engine
            .get_or_create(&label(&[("engine", self.engine)]))
            .set(1);
        let workers = Gauge::<i64>::default();
        workers.set(i64::try_from(self.worker_threads).unwrap_or(i64::MAX));
        registry.register("packets", "Packets passed on, by direction", packets);
        registry.register(
            "bytes",
            "Bytes passed on (sealed outbound, plaintext inbound)",
            bytes,
        );
        registry.register(
            "sent_packets",
            "Packets handed to the kernel, by direction",
            sent,
        );
        registry.register("drops", "Received packets rejected, by reason", drops);
        registry.register(
            "send_drops",
            "Local packets not sealed, by reason",
            send_drops,
        );
        registry.register(
            "io_drops",
            "Packets lost by the engine, by direction and reason",
            io_drops,
        );
        registry.register("mk_seq", "mkSeqNum sent with now", gauge(&self.send_mk_seq));
        registry.register(
            "newest_mk_seq",
            "Newest mkSeqNum installed",
            gauge(&self.newest_mk_seq),
        );
        registry.register("engine", "The UDP engine in use", engine);
        registry.register("workers", "Worker threads", workers);
        let mut out = String::new();
        encode(&mut out, &registry)?;
        Ok(out)
    }
}

/// The answer to an admin request for the exposition: `GET /metrics`.
pub(crate) fn metrics_response(exposed: &Exposed) -> Response {
    match exposed.render() {
        Ok(body) => Response::prometheus(veil_admin::PROMETHEUS_TEXT, body),
        Err(_) => Response::text("500 Internal Server Error", ""),
    }
}

/// Pre-shared key mode's admin endpoint: `/metrics` only.
pub(crate) fn answer(request: &Request, exposed: &Exposed) -> Response {
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/metrics") => metrics_response(exposed),
        _ => Response::text("404 Not Found", "try /metrics\n"),
    }
}

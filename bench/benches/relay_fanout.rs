//! The relay's routing CPU per copy (finding 19.1), at 10, 100 and 1,000 members.
//!
//! One iteration routes one received batch: 16 datagrams of 1,000 bytes from 4 members of one
//! meeting (a second meeting of the same size shares the table), into a sink that takes each
//! destination's outgoing batch and does not send it. So what is measured is the relay's own
//! work per copy: grouping, lookups and copying the bytes into the outgoing batch; the
//! sendmmsg per destination is the kernel's and is left out (it is the same before and after).
//! Throughput is in copies (each datagram goes to every member but its sender), so criterion's
//! "thrpt" reads as copies per second.
//!
//! Three rows per size, in the same run:
//! - `fanout`: tools/relay/src/fanout.rs, the relay's routing now;
//! - `before`: the routing before (a linear "served" list, and per destination a scan of the
//!   batch comparing whole member lists), on the same table and batch;
//! - `copy_only`: the floor, the same copies pushed with no routing at all.
//!
//! Run: `cargo bench -p veil-bench --bench relay_fanout`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dataplane::batch::Batch;
use veil_relay::fanout::Fanout;
use veil_relay::registration::Kind;
use veil_relay::table::{Limits, MeetingKey, Request, Table};

const DATAGRAMS: usize = 16;
const SENDERS: usize = 4;
const LEN: usize = 1000;

fn addr(meeting: usize, i: usize) -> SocketAddr {
    let i = u32::try_from(i).unwrap();
    let octets = [10, u8::try_from(meeting).unwrap(), (i >> 8) as u8, i as u8];
    SocketAddr::from((octets, 5000))
}

/// Two meetings of `members`; a batch of `DATAGRAMS` from the first `SENDERS` of meeting 0.
fn setup(members: usize, now: Instant) -> (Table, Batch, Vec<Option<(MeetingKey, SocketAddr)>>) {
    let mut table = Table::new(
        Duration::from_secs(60),
        Limits {
            total: 10_000,
            per_meeting: 1_000,
            per_source: 10_000,
        },
    );
    for meeting in 0..2 {
        let id = format!("meeting-{meeting}");
        for i in 0..members {
            let token = format!("t{i}");
            let request = Request {
                kind: Kind::Register,
                meeting_id: id.as_bytes(),
                token: &token,
            };
            table.apply(request, addr(meeting, i), now);
        }
    }
    let mut batch = Batch::new();
    let mut keys = Vec::new();
    for d in 0..DATAGRAMS {
        let from = addr(0, d % SENDERS);
        batch.push_wire(&[u8::try_from(d).unwrap() | 0x80; LEN], Some(from));
        keys.push(table.destinations(from, now).map(|(k, _)| (k, from)));
    }
    (table, batch, keys)
}

/// The relay's routing before finding 19.1 was fixed (tools/relay/src/forward.rs at d1b9fb8),
/// on the same table: per destination a linear `served` search, and per datagram of the batch
/// a comparison of its sender's whole member list with this one. Kept as it was written,
/// index loops included.
#[allow(clippy::needless_range_loop)]
fn before(table: &Table, batch: &Batch, media: &[bool], now: Instant, out: &mut Batch) -> u64 {
    let mut copies = 0;
    let mut served: Vec<SocketAddr> = Vec::new();
    for i in 0..batch.len() {
        let Some(source) = batch.addr(i).filter(|_| media[i]) else {
            continue;
        };
        let Some((_, destinations)) = table.destinations(source, now) else {
            continue;
        };
        for &dest in destinations {
            if served.contains(&dest) {
                continue;
            }
            served.push(dest);
            out.clear();
            for j in 0..batch.len() {
                let from = batch.addr(j);
                if media[j]
                    && from != Some(dest)
                    && from.and_then(|f| table.destinations(f, now).map(|(_, d)| d))
                        == Some(destinations)
                {
                    out.push_wire(batch.packet(j), None);
                }
            }
            copies += black_box(out.len()) as u64;
        }
    }
    copies
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    let mut group = c.benchmark_group("relay_fanout");
    for members in [10usize, 100, 1_000] {
        let (table, batch, keys) = setup(members, now);
        let media: Vec<bool> = keys.iter().map(Option::is_some).collect();
        let copies = (DATAGRAMS * members - DATAGRAMS) as u64;
        group.throughput(Throughput::Elements(copies));
        let mut fanout = Fanout::new();
        // Every row must make the same copies.
        let mut counted = 0u64;
        fanout.route(&batch, &keys, &table, |_, out| counted += out.len() as u64);
        assert_eq!(counted, copies);
        let mut out = Batch::new();
        assert_eq!(before(&table, &batch, &media, now, &mut out), copies);

        group.bench_function(format!("fanout/{members}"), |b| {
            b.iter(|| {
                let mut n = 0u64;
                fanout.route(&batch, &keys, &table, |dest, out| {
                    black_box(dest);
                    n += black_box(out).len() as u64;
                });
                n
            });
        });
        group.bench_function(format!("before/{members}"), |b| {
            b.iter(|| before(&table, &batch, &media, now, &mut out));
        });
        let dests = table.destinations(addr(0, 0), now).unwrap().1.to_vec();
        group.bench_function(format!("copy_only/{members}"), |b| {
            b.iter(|| {
                let mut n = 0u64;
                for dest in &dests {
                    out.clear();
                    for j in 0..batch.len() {
                        if batch.addr(j) != Some(*dest) {
                            out.push_wire(batch.packet(j), None);
                        }
                    }
                    n += black_box(&out).len() as u64;
                }
                n
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);

//! The soak's summary: recovery per fault, packet loss outside the windows, authentication
//! failures, and the RSS and descriptor trend of every process; true if every target was met.

use std::collections::BTreeMap;
use std::time::Instant;

use super::Soak;
use super::cast::Member;
use super::ledger::tally;

fn secs(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64()
}

/// Prints the summary and writes samples.csv; true if every target was met.
pub(super) fn report(soak: &Soak, measured_from: Instant) -> bool {
    let mut failures: Vec<String> = Vec::new();
    let sent: BTreeMap<u8, Vec<Instant>> = soak
        .members
        .iter()
        .map(|m| (m.index, m.send_times()))
        .collect();
    let received = soak
        .members
        .iter()
        .map(|m| (m.index, m.sink.arrivals()))
        .collect();
    let t = tally(&sent, &received, &soak.windows, measured_from, soak.start);
    let name = |p: Option<u8>| p.map_or_else(|| "everyone".to_owned(), |i| format!("soak-{i}"));

    println!("\nfaults (times in seconds since the soak started):");
    println!(
        "  {:<16} {:<10} {:>8} {:>8} {:>10} {:>12}",
        "fault", "affects", "at", "cleared", "recovery", "lost inside"
    );
    for (w, lost) in soak.windows.iter().zip(&t.lost_in_window) {
        let recovery = w.recovered.map_or_else(
            || "NEVER".to_owned(),
            |at| format!("{:.2}", secs(w.cleared, at)),
        );
        println!(
            "  {:<16} {:<10} {:>8.1} {:>8.1} {:>10} {:>12}",
            w.fault,
            name(w.affected),
            secs(soak.start, w.start),
            secs(soak.start, w.cleared),
            recovery,
            lost
        );
        if w.recovered.is_none() {
            failures.push(format!("{}: media never flowed again", w.fault));
        }
    }

    let total_sent: u64 = sent.values().map(|v| v.len() as u64).sum();
    println!(
        "\npackets: {total_sent} sent by {} sources; {} deliveries expected outside the fault \
         windows (from {:.1} s), {} lost (target 0)",
        sent.len(),
        t.expected,
        secs(soak.start, measured_from),
        t.lost_outside
    );
    for ((receiver, sender), (count, first)) in &t.lossy_pairs {
        println!(
            "  soak-{receiver} <- soak-{sender}: {count} lost, the first sent at {first:.1} s"
        );
    }
    if t.lost_outside > 0 {
        failures.push(format!(
            "{} packets lost outside the fault windows",
            t.lost_outside
        ));
    }

    let (mut auth, mut replay, mut unknown) = (0, 0, 0);
    for m in &soak.members {
        let c = m.totals();
        auth += c.auth_failure;
        replay += c.replay;
        unknown += c.unknown_key;
    }
    let rotations = soak
        .members
        .iter()
        .filter_map(|m| m.last.as_ref()?.get("rotations")?.as_u64())
        .max()
        .unwrap_or(0);
    println!(
        "key updates installed by the longest-lived running sidecar: {rotations} (periodic rotation every {} s, plus a rekey on every join and leave)",
        soak.args.rotation
    );
    println!(
        "sidecars (every instance): {auth} authentication failures (target 0), {replay} replays \
         (target 0), {unknown} packets of a key not held (in flight across a rejoin)"
    );
    let rejoins: u64 = soak.members.iter().map(Member::rejoins).sum();
    println!(
        "sessions rejoined by the sidecars themselves: {rejoins} (summed over the running \
         instances; a sidecar restarted by a kill counts from its restart)"
    );
    if auth > 0 || replay > 0 {
        failures.push(format!("{auth} authentication failures, {replay} replays"));
    }

    println!("\nmemory and descriptors (baseline 20 s after start, or the first sample):");
    println!(
        "  {:<14} {:>7} {:>22} {:>12} {:>7}",
        "process", "span s", "RSS KiB base/end/max", "fds b/e/max", "flat"
    );
    for trend in soak.sampler.trends() {
        // The harness keeps every packet's send and arrival time: it grows by design and is
        // shown, not judged.
        let harness = trend.process == super::HARNESS;
        let flat = match trend.flat {
            _ if harness => "(harness)",
            Some(true) => "yes",
            Some(false) => "NO",
            None => "(short)",
        };
        println!(
            "  {:<14} {:>7.0} {:>22} {:>12} {:>7}",
            trend.process,
            trend.span_s,
            format!("{}/{}/{}", trend.rss.0, trend.rss.1, trend.rss.2),
            format!("{}/{}/{}", trend.fds.0, trend.fds.1, trend.fds.2),
            flat
        );
        if trend.flat == Some(false) && !harness {
            failures.push(format!("{}: RSS or descriptors grew", trend.process));
        }
    }
    let csv = soak.launch.dir.join("samples.csv");
    match std::fs::write(&csv, soak.sampler.csv()) {
        Ok(()) => println!("samples: {}", csv.display()),
        Err(e) => println!("samples: could not write {}: {e}", csv.display()),
    }

    if failures.is_empty() {
        println!("\nveil-soak: PASS");
    } else {
        println!("\nveil-soak: FAIL");
        for f in &failures {
            println!("  {f}");
        }
    }
    failures.is_empty()
}

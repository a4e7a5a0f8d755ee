//! Resident memory and open file descriptors of every child process, sampled from /proc.

use std::time::Instant;

/// One reading of one process.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    /// Seconds since the soak started.
    pub(crate) at_s: f64,
    /// Which process instance (`board#1`, `soak-3#2`).
    pub(crate) process: String,
    /// Its PID.
    pub(crate) pid: u32,
    /// VmRSS in KiB.
    pub(crate) rss_kib: u64,
    /// Entries in /proc/PID/fd.
    pub(crate) fds: u64,
}

/// VmRSS (KiB) and the open descriptor count of `pid`, or None if it is gone.
fn read(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((rss, fds))
}

/// Every sample taken.
#[derive(Debug)]
pub(crate) struct Sampler {
    start: Instant,
    pub(crate) samples: Vec<Sample>,
}

/// What one process instance did over its life.
#[derive(Debug)]
pub(crate) struct Trend {
    /// The instance.
    pub(crate) process: String,
    /// Seconds between the baseline and the last sample.
    pub(crate) span_s: f64,
    /// RSS (KiB) at the baseline, the end, and the most seen.
    pub(crate) rss: (u64, u64, u64),
    /// Descriptors at the baseline, the end, and the most seen.
    pub(crate) fds: (u64, u64, u64),
    /// Judged (lived long enough past its warm-up) and flat.
    pub(crate) flat: Option<bool>,
}

/// Samples this soon after a process starts are its warm-up, not its baseline.
const WARMUP_S: f64 = 20.0;
/// A process must be watched this long past its warm-up to be judged.
const MIN_SPAN_S: f64 = 60.0;
/// RSS may grow by this fraction plus [`RSS_SLACK_KIB`] (allocator noise) and still be flat.
const RSS_GROWTH: f64 = 0.10;
const RSS_SLACK_KIB: u64 = 1_024;
/// Descriptors may differ by this many (a TCP admin connection being served).
const FD_SLACK: u64 = 2;

impl Sampler {
    /// Starts the clock.
    pub(crate) fn new(start: Instant) -> Self {
        Self {
            start,
            samples: Vec::new(),
        }
    }

    /// Samples each `(instance name, pid)`.
    pub(crate) fn sample(&mut self, processes: &[(String, u32)]) {
        let at_s = self.start.elapsed().as_secs_f64();
        for (process, pid) in processes {
            if let Some((rss_kib, fds)) = read(*pid) {
                self.samples.push(Sample {
                    at_s,
                    process: process.clone(),
                    pid: *pid,
                    rss_kib,
                    fds,
                });
            }
        }
    }

    /// Each instance's trend, in the order first seen.
    pub(crate) fn trends(&self) -> Vec<Trend> {
        let mut names: Vec<&str> = Vec::new();
        for s in &self.samples {
            if !names.contains(&s.process.as_str()) {
                names.push(&s.process);
            }
        }
        names
            .into_iter()
            .filter_map(|name| {
                let mine: Vec<&Sample> =
                    self.samples.iter().filter(|s| s.process == name).collect();
                let born = mine.first()?.at_s;
                let base = mine
                    .iter()
                    .find(|s| s.at_s >= born + WARMUP_S)
                    .or(mine.first())?;
                let last = mine.last()?;
                let span_s = last.at_s - base.at_s;
                let max_rss = mine.iter().map(|s| s.rss_kib).max().unwrap_or(0);
                let max_fds = mine.iter().map(|s| s.fds).max().unwrap_or(0);
                let flat = (span_s >= MIN_SPAN_S).then(|| {
                    let rss_limit =
                        (base.rss_kib as f64 * (1.0 + RSS_GROWTH)) as u64 + RSS_SLACK_KIB;
                    last.rss_kib <= rss_limit && last.fds <= base.fds + FD_SLACK
                });
                Some(Trend {
                    process: name.to_owned(),
                    span_s,
                    rss: (base.rss_kib, last.rss_kib, max_rss),
                    fds: (base.fds, last.fds, max_fds),
                    flat,
                })
            })
            .collect()
    }

    /// The samples as CSV (seconds, process, pid, rss_kib, fds).
    pub(crate) fn csv(&self) -> String {
        let mut out = String::from("seconds,process,pid,rss_kib,fds\n");
        for s in &self.samples {
            out.push_str(&format!(
                "{:.1},{},{},{},{}\n",
                s.at_s, s.process, s.pid, s.rss_kib, s.fds
            ));
        }
        out
    }
}

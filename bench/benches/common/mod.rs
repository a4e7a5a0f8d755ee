//! What the criterion benches share: a profiler that writes a flame graph per benchmark.
//!
//! criterion calls a [`Profiler`] only in `--profile-time` mode, in which it runs the chosen
//! benchmarks for that long without measuring, so profiling never disturbs a measured run:
//!
//! ```sh
//! cargo bench -p veil-bench --bench sframe -- --profile-time 5 'open/1200/veil'
//! # -> target/criterion/open_1200/veil/profile/flamegraph.svg
//! ```

use std::fs::File;
use std::path::Path;

use criterion::profiler::Profiler;
use pprof::ProfilerGuard;

/// Samples the benchmark's thread with pprof (SIGPROF, `FREQUENCY_HZ`) and writes
/// `flamegraph.svg` into criterion's profile directory for that benchmark.
pub(crate) struct FlamegraphProfiler {
    guard: Option<ProfilerGuard<'static>>,
}

/// Samples per second: high enough to resolve a 200 ns function over a 5 s run, low enough that
/// the signal handler stays a small share of the time.
const FREQUENCY_HZ: i32 = 997;

impl FlamegraphProfiler {
    /// A profiler that is idle until criterion starts a profiled benchmark.
    pub(crate) fn new() -> Self {
        Self { guard: None }
    }
}

impl Profiler for FlamegraphProfiler {
    fn start_profiling(&mut self, _benchmark_id: &str, _benchmark_dir: &Path) {
        match pprof::ProfilerGuardBuilder::default()
            .frequency(FREQUENCY_HZ)
            .blocklist(&["libc", "libgcc", "pthread", "vdso"])
            .build()
        {
            Ok(guard) => self.guard = Some(guard),
            Err(e) => eprintln!("flame graph: cannot start the profiler: {e}"),
        }
    }

    fn stop_profiling(&mut self, benchmark_id: &str, benchmark_dir: &Path) {
        let Some(guard) = self.guard.take() else {
            return;
        };
        let written = (|| -> Result<std::path::PathBuf, Box<dyn std::error::Error>> {
            std::fs::create_dir_all(benchmark_dir)?;
            let path = benchmark_dir.join("flamegraph.svg");
            guard.report().build()?.flamegraph(File::create(&path)?)?;
            Ok(path)
        })();
        match written {
            Ok(path) => eprintln!("flame graph of {benchmark_id}: {}", path.display()),
            Err(e) => eprintln!("flame graph of {benchmark_id}: not written: {e}"),
        }
    }
}

//! Scale: one `veil board` process serving a 200-participant meeting and 50 four-person
//! meetings at once (400 participants, each a pump thread in this process, over TLS with the
//! whitepaper's default timings). Measures join-to-first-key time and the board's CPU time.
//!
//! Ignored by default (about 20 s in release, 40 s in a debug build, on two cores); run it with
//! `cargo test --release -p veil --test board_scale -- --ignored --nocapture`. The
//! participants have hybrid identities (Ed25519 + ML-DSA-65, keyctl revision 4), as sidecars by
//! default. `VEIL_SCALE_BIG=1000` makes the big meeting 1,000 (issue 16's join storm).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod board_util;

use std::time::{Duration, Instant};

use board_util::{BoardProcess, cpu_time, identity, options, percentile};
use keyctl::meeting::Timings;
use veil_board::client::Join;
use veil_cli::meeting::{Participant, ParticipantEvent, ParticipantOptions};

/// The big meeting's size: 200, or `$VEIL_SCALE_BIG`.
fn big() -> usize {
    std::env::var("VEIL_SCALE_BIG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}
const SMALL_MEETINGS: usize = 50;
const SMALL: usize = 4;
/// How long the meetings may take to converge: 120 s per 200 participants of the big one
/// (every participant, simulated in this process, verifies every list link and heartbeat of its
/// meeting, so the test's own work grows with the square of the big meeting's size).
fn limit(big: usize) -> Duration {
    Duration::from_secs(120 * (big as u64).div_ceil(200).max(1))
}

struct Joined {
    p: Participant,
    started: Instant,
    first_key: Option<Duration>,
    meeting: usize,
    mk_seq: u32,
}

#[test]
#[ignore = "20 s in release, 40 s in debug: run with --release -- --ignored --nocapture"]
fn two_hundred_in_one_meeting_and_fifty_meetings_at_once() {
    let big = big();
    let board = BoardProcess::start(&[]);
    let pid = board.child.id();
    let cpu_before = cpu_time(pid);
    let wall = Instant::now();
    // A spawner thread joins everyone in turn while this thread timestamps every first key
    // as it arrives (polled every 2 ms).
    let (tx, rx) = std::sync::mpsc::channel::<Joined>();
    let (addr, tls) = (board.addr, board.tls());
    let spawner = std::thread::spawn(move || {
        let spawn = |meeting: usize, name: String| {
            let started = Instant::now();
            let p = Participant::spawn(ParticipantOptions {
                board: options(addr, tls.clone()),
                join: Join {
                    meeting_id: format!("scale-{meeting}"),
                    name,
                    host: false,
                    ivk: [0; 32],
                },
                identity: identity(),
                timings: Timings::default(),
                pq: keyctl::wire::PqPolicy::default(),
                clock: std::sync::Arc::new(veil_cli::meeting::SystemClock),
                host_secret: None,
                invite: None,
            })
            .unwrap();
            tx.send(Joined {
                p,
                started,
                first_key: None,
                meeting,
                mk_seq: 0,
            })
            .unwrap();
        };
        // Interleave the big meeting's joins with the small meetings'.
        for i in 0..big {
            spawn(0, format!("big-{i}"));
            if i % 4 == 0 && i / 4 < SMALL_MEETINGS {
                for j in 0..SMALL {
                    spawn(1 + i / 4, format!("small-{j}"));
                }
            }
        }
    });
    let total = big + SMALL_MEETINGS * SMALL;
    let mut joined: Vec<Joined> = Vec::new();
    let mut joined_after = None;
    let deadline = Instant::now() + limit(big);
    // Every participant has a key for a roster of its whole meeting.
    loop {
        joined.extend(rx.try_iter());
        if joined.len() == total && joined_after.is_none() {
            joined_after = Some(wall.elapsed());
        }
        let mut all = joined.len() == total;
        for j in &mut joined {
            while let Ok(ev) = j.p.events().try_recv() {
                if let ParticipantEvent::Key(u) = ev {
                    j.first_key.get_or_insert_with(|| j.started.elapsed());
                    let want = if j.meeting == 0 { big } else { SMALL };
                    if u.roster.len() == want {
                        j.mk_seq = u.mk_seq;
                    }
                }
            }
            all &= j.mk_seq > 0;
        }
        if all {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {total} participants hold their meeting's full key",
            joined.iter().filter(|j| j.mk_seq > 0).count(),
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    spawner.join().unwrap();
    let joined_after = joined_after.unwrap();
    let converged_after = wall.elapsed();
    let cpu = cpu_time(pid) - cpu_before;
    // Everyone of a meeting agrees on the code.
    for m in 0..=SMALL_MEETINGS {
        let codes: std::collections::BTreeSet<Option<String>> = joined
            .iter()
            .filter(|j| j.meeting == m)
            .map(|j| j.p.status().security_code)
            .collect();
        assert_eq!(codes.len(), 1, "meeting {m}: {codes:?}");
    }
    let report = |label: &str, filter: &dyn Fn(&Joined) -> bool| {
        let mut t: Vec<Duration> = joined
            .iter()
            .filter(|j| filter(j))
            .filter_map(|j| j.first_key)
            .collect();
        t.sort();
        eprintln!(
            "{label}: {} participants, join-to-first-key p50 {:?} p99 {:?} max {:?}",
            t.len(),
            percentile(&t, 0.5),
            percentile(&t, 0.99),
            t[t.len() - 1]
        );
    };
    report(&format!("{big}-person meeting"), &|j| j.meeting == 0);
    report("50 x 4-person meetings", &|j| j.meeting > 0);
    eprintln!(
        "all {} joined in {joined_after:?}; all on their meeting's full key after {converged_after:?}; board CPU (user+sys) {cpu:?}",
        joined.len()
    );
    eprintln!("{}", board.admin_get("/stats"));
    // Leave concurrently: each leave waits for its pump's next command poll (<= 50 ms).
    let left = Instant::now();
    let leavers: Vec<Participant> = joined.into_iter().map(|j| j.p).collect();
    let mut threads = Vec::new();
    let mut rest = leavers;
    while !rest.is_empty() {
        let chunk: Vec<Participant> = rest.drain(..rest.len().min(40)).collect();
        threads.push(std::thread::spawn(move || {
            for p in chunk {
                p.leave().unwrap();
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    eprintln!("all left in {:?}", left.elapsed());
}

//! stateright's bounded breadth-first search over the adversary's actions. A state is the
//! action history (keyctl's `Session` is not `Clone`: replaying the history rebuilds the
//! world) plus the world's fingerprint, which is what the checker hashes, so histories that
//! reach the same observable state are explored once.
//!
//! - `bfs_depth_2_enforced_invariants`: in CI, every invariant not in `KNOWN_OPEN`.
//! - `bfs_deeper_all_invariants`: ignored; depth 3 (`BFS_DEPTH`) over every invariant, one
//!   property per invariant, prints the shortest path to each violation and the time it took
//!   (`cargo test -p keyctl-adversary --test model_check -- --ignored --nocapture`).
#![allow(clippy::panic)]

use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use keyctl_adversary::{Action, Invariant, Kind, enforced, replay};
use stateright::{Checker, HasDiscoveries, Model, Property};

/// The actions the search branches over: one of each kind of move, with the parameters
/// that matter for four parties (fair and unfair time, a withheld rekey and heartbeat,
/// reordering, notices naming an honest participant and mallory, mallory's rejoin, the
/// host's commands, a foreign replay, an announcement stripped of its ML-KEM key, a post
/// stripped of its ML-DSA half, and a rejoin forged under a party's `IVK`: classically under
/// bob's, which `Leave { who: 2 }` makes a departed member's at depth 2, and with another
/// ML-DSA key under the host's, while the host leads, so the forgery leads too).
fn alphabet() -> Vec<Action> {
    vec![
        Action::FlushAll,
        Action::Advance {
            step: 3,
            deliver: true,
        },
        Action::Advance {
            step: 7,
            deliver: true,
        },
        Action::Advance {
            step: 4,
            deliver: false,
        },
        Action::Drop {
            to: 1,
            kind: Kind::Rekey,
        },
        Action::Drop {
            to: 2,
            kind: Kind::Heartbeat,
        },
        Action::Deliver { to: 2, pick: 0 },
        Action::NoticeLeaderChange { who: 1 },
        Action::NoticeLeaderChange { who: 3 },
        Action::NoticeLeave { who: 2 },
        Action::MalloryRejoin,
        Action::Kick { by: 0, who: 3 },
        Action::Leave { who: 2 },
        Action::Lock { by: 0 },
        Action::ReplayForeign { to: 1, index: 3 },
        Action::InjectIdentity,
        Action::StripPq { to: 0 },
        Action::StripPqSig { to: 1 },
        Action::ForgeRejoin {
            victim: 2,
            other_ml_dsa: false,
        },
        Action::ForgeRejoin {
            victim: 0,
            other_ml_dsa: true,
        },
    ]
}

#[derive(Clone, Debug)]
struct State {
    history: Vec<Action>,
    fingerprint: [u8; 32],
    violated: Option<(Invariant, String)>,
}

impl PartialEq for State {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
            && self.violated.as_ref().map(|v| v.0) == other.violated.as_ref().map(|v| v.0)
    }
}

impl Eq for State {}

impl Hash for State {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.fingerprint.hash(h);
        self.violated.as_ref().map(|v| v.0).hash(h);
    }
}

struct Explore {
    enabled: Vec<Invariant>,
    alphabet: Vec<Action>,
    /// Histories of this many actions are checked and not extended (stateright's own
    /// `target_max_depth` skips the deepest states unchecked, after paying to build them).
    depth: usize,
}

impl Model for Explore {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        match replay(&[], &self.enabled) {
            Ok(w) => vec![State {
                history: Vec::new(),
                fingerprint: w.fingerprint(),
                violated: None,
            }],
            Err(v) => panic!("the world does not form: {v}"),
        }
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        if state.violated.is_none() && state.history.len() < self.depth {
            actions.extend(self.alphabet.iter().copied());
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut history = last.history.clone();
        history.push(action);
        Some(match replay(&history, &self.enabled) {
            Ok(w) => State {
                fingerprint: w.fingerprint(),
                history,
                violated: None,
            },
            Err(v) => State {
                fingerprint: [0; 32],
                violated: Some((v.invariant, v.to_string())),
                history,
            },
        })
    }

    fn properties(&self) -> Vec<Property<Self>> {
        fn holds(s: &State, i: Invariant) -> bool {
            s.violated.as_ref().is_none_or(|v| v.0 != i)
        }
        vec![
            Property::always("I1", |_, s| holds(s, Invariant::I1RemovedGetsNoNewKey)),
            Property::always("I2", |_, s| holds(s, Invariant::I2NoStaleSending)),
            Property::always("I3", |_, s| holds(s, Invariant::I3HeartbeatsKeepAlive)),
            Property::always("I4", |_, s| holds(s, Invariant::I4NewLeaderKey)),
            Property::always("I5", |_, s| holds(s, Invariant::I5KickedStaysOut)),
            Property::always("I6", |_, s| holds(s, Invariant::I6StateBound)),
            Property::always("I6cap", |_, s| holds(s, Invariant::I6RosterCap)),
            Property::always("I7", |_, s| holds(s, Invariant::I7NoClassicalBox)),
            Property::always("I8", |_, s| holds(s, Invariant::I8NoStrippedSignature)),
            Property::always("I9", |_, s| holds(s, Invariant::I9NoForgedRejoin)),
            Property::always("setup", |_, s| holds(s, Invariant::Setup)),
        ]
    }
}

fn search(enabled: Vec<Invariant>, depth: usize, finish: HasDiscoveries, timeout: Duration) {
    let started = Instant::now();
    let checker = Explore {
        enabled,
        alphabet: alphabet(),
        depth,
    }
    .checker()
    .threads(2)
    .finish_when(finish)
    .timeout(timeout)
    .spawn_bfs()
    .join();
    println!(
        "depth {depth}: {} states ({} unique), max depth {}, {:.1?}",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
        started.elapsed()
    );
    let mut found: Vec<_> = checker.discoveries().into_iter().collect();
    found.sort_by_key(|(name, _)| *name);
    for (name, path) in &found {
        let last = path.last_state();
        println!(
            "{name}: {}\n  actions: {:?}",
            last.violated.as_ref().map_or("", |v| v.1.as_str()),
            last.history
        );
    }
    if !found.is_empty() {
        panic!("{} invariant(s) violated", found.len());
    }
}

#[test]
fn bfs_depth_2_enforced_invariants() {
    search(
        enforced(),
        2,
        HasDiscoveries::AnyFailures,
        Duration::from_secs(120),
    );
}

#[test]
#[ignore = "minutes: the deeper search of a campaign (BFS_DEPTH, default 3); prints the shortest path to any violation"]
fn bfs_deeper_all_invariants() {
    search(
        Invariant::ALL.to_vec(),
        std::env::var("BFS_DEPTH")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3),
        HasDiscoveries::AllFailures,
        Duration::from_secs(
            std::env::var("BFS_SECONDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(600),
        ),
    );
}

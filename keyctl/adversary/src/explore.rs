//! Running an action list, and shrinking a failing one to a minimal reproduction.

use crate::action::Action;
use crate::invariant::{Failure, Invariant, Violation};
use crate::world::World;

/// Runs `actions` from a fresh [`World`] enforcing `enabled`; stops at the first
/// violation. Actions after the first violation are not run.
pub fn run(actions: &[Action], enabled: &[Invariant]) -> Result<(), Violation> {
    replay(actions, enabled).map(drop)
}

/// Like [`run`], and returns the world the actions reached (a model checker's state is
/// its action history: sessions are not `Clone`, so replaying rebuilds them).
pub fn replay(actions: &[Action], enabled: &[Invariant]) -> Result<World, Violation> {
    let mut world = World::new()?.with_enabled(enabled.iter().copied());
    for (n, a) in actions.iter().enumerate() {
        world.step(a).map_err(|mut v| {
            v.step = Some(n);
            v
        })?;
    }
    Ok(world)
}

/// Runs `actions`; on a violation, shrinks the action list (delta debugging: drop chunks,
/// then single actions, while the same invariant still fails) and returns it.
pub fn check(actions: &[Action], enabled: &[Invariant]) -> Result<(), Failure> {
    let Err(first) = run(actions, enabled) else {
        return Ok(());
    };
    // A violation while forming the meeting (no step) has nothing to shrink.
    let Some(step) = first.step.filter(|_| first.invariant != Invariant::Setup) else {
        return Err(Failure {
            violation: first,
            actions: actions.to_vec(),
        });
    };
    let target = first.invariant;
    let mut best: Vec<Action> = actions.iter().take(step + 1).copied().collect();
    let mut best_violation = first;
    let fails = |list: &[Action]| match run(list, &[target]) {
        Err(v) if v.invariant == target => Some(v),
        _ => None,
    };
    let mut chunk = best.len().div_ceil(2).max(1);
    loop {
        let mut shrunk = false;
        let mut start = 0;
        while start < best.len() {
            let mut candidate = best.clone();
            let end = (start + chunk).min(candidate.len());
            candidate.drain(start..end);
            if let Some(v) = fails(&candidate) {
                let keep = v.step.map_or(candidate.len(), |s| s + 1);
                candidate.truncate(keep);
                best = candidate;
                best_violation = v;
                shrunk = true;
            } else {
                start += chunk;
            }
        }
        if chunk == 1 && !shrunk {
            break;
        }
        if !shrunk {
            chunk = chunk.div_ceil(2);
        }
    }
    Err(Failure {
        violation: best_violation,
        actions: best,
    })
}

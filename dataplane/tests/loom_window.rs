//! Model checking of the keyring's shared replay window with loom: every interleaving of the
//! compare-and-swap loops of racing workers (dataplane/src/keyring/window.rs), bounded by loom's
//! preemption limit. The ordinary tests race real threads and see only the interleavings the
//! scheduler happens to produce.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p dataplane --test loom_window --release`
//! (a separate target dir keeps the normal build: `CARGO_TARGET_DIR=target/loom`).
#![cfg(loom)]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use dataplane::keyring::SharedWindow;
use dataplane::replay::ReplayError;
use loom::sync::Arc;
use loom::thread;

/// Block of 16 counters per word and 256 words (window.rs layout): counters 16 * 256 apart share
/// a word with a newer block.
const SAME_WORD_NEWER_BLOCK: u64 = 16 * 256;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

#[test]
fn two_workers_marking_one_counter_accept_it_once() {
    model(|| {
        let w = Arc::new(SharedWindow::default());
        let racer = {
            let w = w.clone();
            thread::spawn(move || w.mark(7))
        };
        let here = w.mark(7);
        let there = racer.join().unwrap();
        let accepted = [here, there].iter().filter(|r| r.is_ok()).count();
        assert_eq!(accepted, 1, "{here:?} {there:?}");
        let refused = if here.is_ok() { there } else { here };
        assert_eq!(refused, Err(ReplayError::Duplicate));
    });
}

#[test]
fn marks_of_different_bits_in_one_word_are_not_lost() {
    model(|| {
        let w = Arc::new(SharedWindow::default());
        let racer = {
            let w = w.clone();
            thread::spawn(move || w.mark(3))
        };
        w.mark(4).unwrap();
        racer.join().unwrap().unwrap();
        assert_eq!(w.check(3), Err(ReplayError::Duplicate));
        assert_eq!(w.check(4), Err(ReplayError::Duplicate));
    });
}

#[test]
fn an_old_counter_racing_a_newer_block_is_never_accepted_after_it() {
    model(|| {
        let w = Arc::new(SharedWindow::default());
        let old = 5;
        let new = old + SAME_WORD_NEWER_BLOCK;
        let racer = {
            let w = w.clone();
            thread::spawn(move || w.mark(old))
        };
        assert_eq!(w.mark(new), Ok(()), "a newer block always wins its word");
        let old_result = racer.join().unwrap();
        // Either order is fine for the old counter (accepted before the word moved on, or too
        // old after), but once the newer block holds the word the old one is refused forever.
        assert!(
            matches!(old_result, Ok(()) | Err(ReplayError::TooOld)),
            "{old_result:?}"
        );
        assert_eq!(w.check(old), Err(ReplayError::TooOld));
        assert_eq!(w.mark(old), Err(ReplayError::TooOld));
        assert_eq!(w.check(new), Err(ReplayError::Duplicate));
    });
}

#[test]
fn a_checked_counter_is_recorded_by_exactly_one_of_two_workers() {
    // The worker's path: screen with check before the AEAD, mark after it. Both may pass the
    // screen; only one mark may succeed, so only one packet is delivered.
    model(|| {
        let w = Arc::new(SharedWindow::default());
        let deliver = |w: &SharedWindow| w.check(9).is_ok() && w.mark(9).is_ok();
        let racer = {
            let w = w.clone();
            thread::spawn(move || deliver(&w))
        };
        let here = deliver(&w);
        let there = racer.join().unwrap();
        assert!(here ^ there, "delivered here {here}, there {there}");
    });
}

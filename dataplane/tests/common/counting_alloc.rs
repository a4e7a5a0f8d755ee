//! A global allocator that counts this thread's allocations, for the tests that prove a path
//! allocates nothing, and the bytes it holds, for the tests that prove input leaves nothing
//! behind. The tallies are const thread-locals with no destructor, so counting itself never
//! allocates. Allocations inside aws-lc's C code go through malloc, not Rust's allocator,
//! and are not seen here.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static LIVE_BYTES: Cell<i64> = const { Cell::new(0) };
}

fn add_live(bytes: usize, sign: i64) {
    // Allocation sizes fit an i64 on every target this runs on.
    LIVE_BYTES.with(|n| n.set(n.get() + sign * bytes as i64));
}

// SAFETY: defers every call to the system allocator unchanged; only counts them.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        add_live(layout.size(), 1);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add_live(layout.size(), -1);
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        add_live(new_size, 1);
        add_live(layout.size(), -1);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations (and reallocations) made by this thread so far.
#[allow(dead_code)]
pub(crate) fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Bytes this thread allocated and has not freed (memory freed by another thread counts there).
#[allow(dead_code)]
pub(crate) fn live_bytes() -> i64 {
    LIVE_BYTES.with(Cell::get)
}

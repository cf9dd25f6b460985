//! Counting the work verification does, so that tests can prove it is
//! linear in the size of the file without timing anything.
//!
//! Every loop whose length comes from the file (sections, segments, notes,
//! `.comment` strings, symbols, pages loaded, bytes scanned) adds what it
//! iterated over with [`add`]. [`measure`] runs a closure and returns the
//! total. Hostile input is expected to cost at most a small multiple of its
//! length (tests/hostile.rs asserts `work <= 64 * len + 1 MiB`); a quadratic
//! loop on a crafted file shows up there as a count far above that, on every
//! machine, whatever its speed.
//!
//! The counter is thread-local and a plain `Cell`, so counting costs a
//! load and a store, and verifications on other threads do not interfere.

use std::cell::Cell;

thread_local! {
    static UNITS: Cell<u64> = const { Cell::new(0) };
}

/// Records `n` units of work (one loop iteration, one byte looked at).
#[inline]
pub(crate) fn add(n: u64) {
    UNITS.with(|u| u.set(u.get().saturating_add(n)));
}

/// Records `n` units, for a count held in a `usize`.
#[inline]
pub(crate) fn add_usize(n: usize) {
    add(n as u64);
}

/// Runs `f` and returns its result with the units of work it recorded.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = UNITS.with(Cell::get);
    let out = f();
    let after = UNITS.with(Cell::get);
    (out, after.saturating_sub(before))
}

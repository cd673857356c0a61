//! The one shim for synchronization primitives: std (and crossbeam) in
//! production, loom's instrumented versions under `--cfg loom`, so the same
//! concurrency cores (the group-commit queue, shard reservations) run in both.
//!
//! crossbeam channels are invisible to loom (a `recv` under `loom::model`
//! hangs), so code that loom must check takes its channels from here.

#[cfg(loom)]
pub use loom::sync::{Arc, Condvar, Mutex, MutexGuard, atomic};
#[cfg(loom)]
pub use loom::thread;

#[cfg(not(loom))]
pub use std::sync::{Arc, Condvar, Mutex, MutexGuard, atomic};
#[cfg(not(loom))]
pub use std::thread;

/// Multi-producer channels: crossbeam in production, loom's mpsc under loom.
pub mod mpsc {
    #[cfg(loom)]
    pub use loom::sync::mpsc::{Receiver, Sender, channel};

    #[cfg(not(loom))]
    pub use crossbeam_channel::{Receiver, Sender, unbounded as channel};
}

/// Locks `mutex`, recovering the data if a holder panicked: the cores that use
/// this keep their invariants across every early return, and a poisoned lock
/// must not turn one panic into a stopped issuer.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

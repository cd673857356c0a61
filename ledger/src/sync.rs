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

/// The panic message of a poisoned lock.
pub const POISONED_LOCK: &str =
    "a lock poisoned by a panic while it was held: the state behind it is not trusted (fail-stop)";

/// Locks `mutex`. A poisoned lock (a holder panicked halfway through a
/// change) is never recovered: the data behind it may break its invariants,
/// so this panics too, and the fail-stop of the thread's owner (the issuer's
/// `FailStop`) stops the issuer, which restarts from its log.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(_poisoned) => panic!("{POISONED_LOCK}"),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    #[test]
    fn a_lock_poisoned_by_a_panicking_holder_is_never_recovered() {
        let mutex = Mutex::new(1u32);
        let holder = catch_unwind(AssertUnwindSafe(|| {
            let mut guard = lock(&mutex);
            *guard = 2;
            panic!("a holder breaks an invariant halfway (test)");
        }));
        assert!(holder.is_err());
        let later = catch_unwind(AssertUnwindSafe(|| *lock(&mutex)));
        assert!(later.is_err(), "a poisoned lock was read as if whole");
    }
}

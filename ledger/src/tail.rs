//! Following the log as it grows.
//!
//! In-process: every store publishes its last durable seq to a [`HeadWatch`]
//! after each commit; a [`Tail`] waits on it, then reads what is new, in
//! order, checking that each record links to the one before.
//!
//! Another process (an auditor on a live log) cannot be woken: it opens the
//! redb file with [`crate::redb_store::RedbStore::open_read_only`] (the writer
//! must use [`crate::redb_store::Sharing::FollowableByReaders`]) and a
//! [`Tail`] built with [`Tail::polling`], which re-reads `head()` every
//! `poll_interval`.
//!
//! The watch uses `std::sync` directly, not the loom shim: it only ever
//! notifies inside the cores loom checks, and never blocks them.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::store::{EventStore, Hash32, Seq, StoreError, StoredRecord};

/// The last durable seq of one store, with a way to wait for it to grow.
#[derive(Clone, Default)]
pub struct HeadWatch {
    inner: Arc<(Mutex<u64>, Condvar)>,
}

impl std::fmt::Debug for HeadWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeadWatch({})", self.published())
    }
}

impl HeadWatch {
    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        match self.inner.0.lock() {
            Ok(g) => g,
            Err(_poisoned) => panic!("{}", crate::sync::POISONED_LOCK),
        }
    }

    /// The last seq published as durable.
    pub fn published(&self) -> Seq {
        Seq(*self.lock())
    }

    /// Records that everything up to `seq` is durable and wakes the waiters
    /// (every backend calls it after a commit, those outside this crate too).
    pub fn publish(&self, seq: Seq) {
        let mut last = self.lock();
        if seq.0 > *last {
            *last = seq.0;
        }
        drop(last);
        self.inner.1.notify_all();
    }

    /// Waits until a seq greater than `seen` is published, or `timeout`
    /// passes; returns the last published seq either way.
    pub fn wait_past(&self, seen: Seq, timeout: Duration) -> Seq {
        let deadline = Instant::now() + timeout;
        let mut last = self.lock();
        while *last <= seen.0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            last = match self.inner.1.wait_timeout(last, deadline - now) {
                Ok((g, _)) => g,
                Err(_poisoned) => panic!("{}", crate::sync::POISONED_LOCK),
            };
        }
        Seq(*last)
    }
}

/// A store that publishes its commits.
pub trait Watchable {
    /// The store's watch; clones share it.
    fn watch(&self) -> HeadWatch;
}

/// Reads the records of a log in order as they are committed.
pub struct Tail<S> {
    store: Arc<S>,
    next: Seq,
    last_hash: Option<Hash32>,
    watch: Option<HeadWatch>,
    poll_interval: Duration,
}

impl<S: EventStore + Watchable> Tail<S> {
    /// Follows `store` from record `from` on, woken by its commits in this
    /// process (and re-reading every 50 ms in case they come from another).
    pub fn new(store: Arc<S>, from: Seq) -> Tail<S> {
        let watch = Some(store.watch());
        Tail {
            store,
            next: Seq(from.0.max(1)),
            last_hash: None,
            watch,
            poll_interval: Duration::from_millis(50),
        }
    }
}

impl<S: EventStore> Tail<S> {
    /// Follows `store` by polling its head every `poll_interval` (a log
    /// written by another process).
    pub fn polling(store: Arc<S>, from: Seq, poll_interval: Duration) -> Tail<S> {
        Tail {
            store,
            next: Seq(from.0.max(1)),
            last_hash: None,
            watch: None,
            poll_interval,
        }
    }

    /// The seq of the next record this tail will return.
    pub fn next_seq(&self) -> Seq {
        self.next
    }

    /// The records committed since the last call, up to `max_records`,
    /// without waiting. Each must link to the one returned before it.
    pub fn poll(&mut self, max_records: usize) -> Result<Vec<StoredRecord>, StoreError> {
        let records = self.store.read(self.next, max_records)?;
        for stored in &records {
            if stored.record.seq != self.next {
                return Err(StoreError::Corrupt {
                    seq: self.next,
                    reason: format!("tail expected {} but read {}", self.next, stored.record.seq),
                });
            }
            if let Some(last) = self.last_hash
                && stored.prev_hash != last
            {
                return Err(StoreError::ChainBroken {
                    seq: stored.record.seq,
                });
            }
            self.last_hash = Some(stored.hash);
            self.next = Seq(self.next.0.saturating_add(1));
        }
        Ok(records)
    }

    /// Like [`Tail::poll`], but waits up to `timeout` for something new.
    /// Returns an empty vector if nothing was committed in time.
    pub fn next_records(
        &mut self,
        max_records: usize,
        timeout: Duration,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let deadline = Instant::now() + timeout;
        loop {
            let records = self.poll(max_records)?;
            let now = Instant::now();
            if !records.is_empty() || now >= deadline {
                return Ok(records);
            }
            let seen = Seq(self.next.0 - 1);
            match &self.watch {
                // Bounded by the poll interval too, so a tail over a store
                // whose commits come from another process still sees them.
                Some(watch) => {
                    watch.wait_past(seen, self.poll_interval.min(deadline - now));
                }
                None => std::thread::sleep(self.poll_interval.min(deadline - now)),
            }
        }
    }
}

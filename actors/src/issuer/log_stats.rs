//! Counting the log's group commits: how many durable appends the writer
//! made and how many batches and records they held, so `/metrics` and the
//! benchmark can show the group-commit batch size of a running issuer.
//! Neither ledger's `GroupCommit` nor redb keeps such a count. Each
//! append's duration goes to the issuer's stage timings.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ledger::{Batch, EventStore, Head, Seq, StoreError, StoredRecord};

use super::core::LogBackend;
use crate::timing::{Stage, StageTimings};

/// What the log writer has appended since the issuer started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogCommitStats {
    /// Durable appends (one redb transaction, one fsync each).
    pub commits: u64,
    /// Batches (transactions of the issuer) in them.
    pub batches: u64,
    /// Records in them.
    pub records: u64,
}

/// The issuer's log with a count of its appends; reads pass through.
pub struct CountedLog {
    backend: Arc<LogBackend>,
    /// Each append's duration ([`Stage::LogAppend`]: the fsync, mostly).
    timings: Arc<StageTimings>,
    commits: AtomicU64,
    batches: AtomicU64,
    records: AtomicU64,
}

impl CountedLog {
    pub fn new(backend: Arc<LogBackend>, timings: Arc<StageTimings>) -> CountedLog {
        CountedLog {
            backend,
            timings,
            commits: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            records: AtomicU64::new(0),
        }
    }

    /// The log itself.
    pub fn backend(&self) -> &Arc<LogBackend> {
        &self.backend
    }

    pub fn stats(&self) -> LogCommitStats {
        LogCommitStats {
            commits: self.commits.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
        }
    }
}

impl EventStore for CountedLog {
    fn append(&self, batches: &[Batch]) -> Result<Vec<Seq>, StoreError> {
        let started = std::time::Instant::now();
        let appended = self.backend.append(batches);
        self.timings.record(Stage::LogAppend, started.elapsed());
        let seqs = appended?;
        // Counted once durable: a failed append is no commit.
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.batches
            .fetch_add(batches.len() as u64, Ordering::Relaxed);
        let n_records: usize = batches.iter().map(|b| b.events.len()).sum();
        self.records.fetch_add(n_records as u64, Ordering::Relaxed);
        Ok(seqs)
    }

    fn head(&self) -> Result<Head, StoreError> {
        self.backend.head()
    }

    fn read(&self, from: Seq, max_records: usize) -> Result<Vec<StoredRecord>, StoreError> {
        self.backend.read(from, max_records)
    }
}

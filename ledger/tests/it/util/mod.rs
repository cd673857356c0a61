//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use ledger::{Batch, RedbOptions, RedbStore, Sharing};

/// A fresh log file in its own temporary directory (removed on drop).
pub struct TempLog {
    pub dir: tempfile::TempDir,
}

impl TempLog {
    pub fn new() -> TempLog {
        TempLog {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("log.redb")
    }

    pub fn open(&self) -> RedbStore {
        RedbStore::open(self.path()).expect("open log")
    }

    pub fn open_exclusive(&self) -> RedbStore {
        RedbStore::open_with(
            self.path(),
            RedbOptions {
                sharing: Sharing::Exclusive,
                ..RedbOptions::default()
            },
        )
        .expect("open log")
    }
}

/// `n` sample batches numbered from `first`, of 1 to 4 events each.
pub fn batches(first: u64, n: u64) -> Vec<Batch> {
    ledger::testkit::sample_batches(first, n)
}

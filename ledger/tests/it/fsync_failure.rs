//! A failed fsync, injected through a redb storage backend that wraps the
//! real file: the group commit holding it fails every batch in it, the
//! writer is poisoned, and after a restart from the file the chain verifies,
//! every acknowledged batch is present and every other batch is present
//! whole or not at all.

use crate::util;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ledger::testkit::sample_batch;
use ledger::{
    EventStore, GroupCommit, GroupCommitConfig, RedbOptions, RedbStore, Seq, StoreError,
    verify_store,
};
use redb::StorageBackend;
use redb::backends::FileBackend;

/// The real file, whose `sync_data` fails once `fail_syncs` is set.
#[derive(Debug)]
struct FailingSync {
    inner: FileBackend,
    fail_syncs: Arc<AtomicBool>,
}

impl StorageBackend for FailingSync {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        if self.fail_syncs.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("injected fsync failure"));
        }
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.inner.write(offset, data)
    }
    fn close(&self) -> Result<(), std::io::Error> {
        self.inner.close()
    }
    fn try_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, redb::BackendError> {
        self.inner.try_lock_range(s, e)
    }
    fn try_lock_shared_range(
        &self,
        s: Bound<u64>,
        e: Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        self.inner.try_lock_shared_range(s, e)
    }
    fn lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), redb::BackendError> {
        self.inner.lock_range(s, e)
    }
    fn lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), redb::BackendError> {
        self.inner.lock_shared_range(s, e)
    }
    fn unlock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), redb::BackendError> {
        self.inner.unlock_range(s, e)
    }
    fn query_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, redb::BackendError> {
        self.inner.query_lock_range(s, e)
    }
}

#[test]
fn a_failed_fsync_poisons_the_writer_and_loses_no_acknowledged_batch() {
    const SUBMITTERS: u64 = 4;
    let log = util::TempLog::new();
    let fail_syncs = Arc::new(AtomicBool::new(false));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(log.path())
        .expect("log file");
    let backend = FailingSync {
        inner: FileBackend::new(file).expect("file backend"),
        fail_syncs: Arc::clone(&fail_syncs),
    };
    let store =
        Arc::new(RedbStore::open_on_backend(backend, RedbOptions::default()).expect("open"));
    let writer = Arc::new(
        GroupCommit::start(Arc::clone(&store), GroupCommitConfig::default()).expect("start"),
    );
    let handles: Vec<_> = (0..SUBMITTERS)
        .map(|t| {
            let writer = Arc::clone(&writer);
            let fail_syncs = Arc::clone(&fail_syncs);
            std::thread::spawn(move || {
                let mut outcomes = Vec::new();
                for i in 0..200u64 {
                    let batch_no = t * 1000 + i;
                    if t == 0 && i == 40 {
                        fail_syncs.store(true, Ordering::SeqCst);
                    }
                    let result = writer.submit_wait(sample_batch(batch_no, 3));
                    let stop = result.is_err();
                    outcomes.push((batch_no, result));
                    if stop {
                        break;
                    }
                }
                outcomes
            })
        })
        .collect();
    let outcomes: Vec<(u64, Result<Seq, StoreError>)> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("submitter"))
        .collect();
    assert!(writer.is_poisoned());
    let failed = outcomes.iter().filter(|(_, r)| r.is_err()).count();
    assert_eq!(
        failed as u64, SUBMITTERS,
        "every submitter was told of the failure"
    );
    assert!(matches!(
        writer.submit_wait(sample_batch(99_999, 1)),
        Err(StoreError::Poisoned)
    ));
    drop(writer);
    drop(store);

    // Restart from the file.
    let store = log.open();
    verify_store(&store, 256).expect("chain verifies after restart");
    let records = store.read(Seq(1), usize::MAX).expect("read");
    let mut by_tx: BTreeMap<ledger::TxId, Vec<u64>> = BTreeMap::new();
    for r in &records {
        by_tx.entry(r.record.tx).or_default().push(r.record.seq.0);
    }
    for (batch_no, result) in &outcomes {
        let tx = sample_batch(*batch_no, 1).tx;
        match result {
            Ok(first) => {
                let seqs = by_tx.get(&tx).expect("acknowledged batch present");
                assert_eq!(seqs, &vec![first.0, first.0 + 1, first.0 + 2]);
            }
            Err(_) => {
                let n = by_tx.get(&tx).map_or(0, Vec::len);
                assert!(
                    n == 0 || n == 3,
                    "failed batch {batch_no} is whole or absent"
                );
            }
        }
    }
    // The log holds nothing but submitted batches.
    assert_eq!(by_tx.values().map(Vec::len).sum::<usize>(), records.len());
}

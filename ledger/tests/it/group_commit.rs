//! Group commit over the real redb store: many concurrent submitters are all
//! acknowledged, the acknowledgements tile the log in one total order, each
//! batch sits where its ack says, and commits were actually shared.

use crate::util;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ledger::testkit::sample_batch;
use ledger::{
    Batch, EventStore, GroupCommit, GroupCommitConfig, Head, RedbStore, Seq, StoreError,
    verify_store,
};

/// Counts appends, to show that group commit shares them.
struct CountingStore {
    inner: RedbStore,
    appends: AtomicU64,
}

impl EventStore for CountingStore {
    fn append(&self, batches: &[Batch]) -> Result<Vec<Seq>, StoreError> {
        self.appends.fetch_add(1, Ordering::Relaxed);
        self.inner.append(batches)
    }
    fn head(&self) -> Result<Head, StoreError> {
        self.inner.head()
    }
    fn read(&self, from: Seq, max: usize) -> Result<Vec<ledger::StoredRecord>, StoreError> {
        self.inner.read(from, max)
    }
}

#[test]
fn concurrent_submitters_are_all_acknowledged_in_one_total_order() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 60;
    let log = util::TempLog::new();
    let store = Arc::new(CountingStore {
        inner: log.open(),
        appends: AtomicU64::new(0),
    });
    let writer = Arc::new(
        GroupCommit::start(
            Arc::clone(&store),
            GroupCommitConfig {
                queue_batches_max: 16,
                commit_batches_max: 64,
            },
        )
        .expect("start"),
    );
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let writer = Arc::clone(&writer);
            std::thread::spawn(move || {
                (0..PER_THREAD)
                    .map(|i| {
                        let batch_no = t * 1000 + i;
                        let n_events = (batch_no % 5 + 1) as usize;
                        let first = writer
                            .submit_wait(sample_batch(batch_no, n_events))
                            .expect("acknowledged");
                        (first.0, n_events as u64, batch_no)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut acks: Vec<(u64, u64, u64)> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("submitter"))
        .collect();
    assert_eq!(acks.len() as u64, THREADS * PER_THREAD);
    acks.sort_unstable();
    let mut next = 1;
    for &(first, n_events, batch_no) in &acks {
        assert_eq!(first, next, "batches tile the log without gap or overlap");
        let records = store.read(Seq(first), n_events as usize).expect("read");
        let want = sample_batch(batch_no, n_events as usize);
        assert!(records.iter().all(|r| r.record.tx == want.tx));
        next += n_events;
    }
    assert_eq!(store.head().expect("head").last_seq, Seq(next - 1));
    verify_store(&store.inner, 1000).expect("chain verifies");
    let appends = store.appends.load(Ordering::Relaxed);
    assert!(
        appends < THREADS * PER_THREAD,
        "{appends} appends for {} batches: commits were shared",
        THREADS * PER_THREAD
    );
}

#[test]
fn callback_submissions_are_acknowledged_without_a_waiting_thread() {
    let log = util::TempLog::new();
    let store = Arc::new(log.open());
    let writer =
        GroupCommit::start(Arc::clone(&store), GroupCommitConfig::default()).expect("start");
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..100 {
        let tx = tx.clone();
        writer.submit(sample_batch(i, 2), move |result| {
            tx.send((i, result.map(|s| s.0))).expect("receiver alive");
        });
    }
    drop(tx);
    let mut acks: Vec<(u64, u64)> = rx
        .iter()
        .map(|(i, r)| (r.expect("acknowledged"), i))
        .collect();
    acks.sort_unstable();
    assert_eq!(acks.len(), 100);
    for (k, &(first, i)) in acks.iter().enumerate() {
        assert_eq!(first, 2 * k as u64 + 1);
        let records = store.read(Seq(first), 2).expect("read");
        assert_eq!(records[0].record.tx, sample_batch(i, 1).tx);
    }
}

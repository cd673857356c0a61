//! The idempotency table: which transactions are in flight and which are
//! committed, and where in the log a committed one's outcome lies.
//!
//! A transaction is identified by its [`TxId`], derived from what the client
//! sent (e.g. payee, TID and input serials), and every log record carries
//! it; no cache with a time-to-live ever decides whether a retry is a
//! replay. A repeat of a committed transaction is answered from its batch in
//! the log, however old; a repeat of one in flight is told to retry (it
//! never runs twice at once).
//!
//! Memory holds only the in-flight transactions and the committed ones the
//! durable transaction index ([`CommittedIndex`], `projections::TxIndex` in
//! the issuer) has not applied yet: the housekeeper catches the index up and
//! then [`IdempotencyTable::forget_committed_through`] the sequence number
//! it reached. `begin` and `committed` fall back to the index when memory
//! misses, so what was forgotten is still answered.
//!
//! **Invariant:** `begin` of a committed transaction never answers
//! `Started`. It claims the id under the lock before it asks the index, and
//! an entry is forgotten only once the index durably holds it, so either
//! memory or the index has it at every moment (loom-checked below).

use std::collections::HashMap;
use std::sync::Arc;

use ledger::sync::{Mutex, lock};
use ledger::{Record, Seq, TxId};

/// Where a committed transaction's events lie in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitRef {
    /// Sequence number of the batch's first record.
    pub first_seq: Seq,
    /// Number of records in the batch.
    pub n_records: u16,
}

/// The answer to "may this transaction run now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// It is new: the caller runs it and must call `commit` or `abandon`.
    Started,
    /// Another request for it is running: retry later.
    InFlight,
    /// It already committed: answer from the log.
    Committed(CommitRef),
}

/// The durable index could not be read: the answer is unknown, so the
/// caller must refuse (never treat the transaction as new).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    #[cfg(not(loom))]
    #[error("transaction index: {0}")]
    Projection(#[from] projections::ProjectionError),
}

/// Where committed transactions are looked up once memory has let go of
/// them: a durable index of the log (`projections::TxIndex`).
pub trait CommittedIndex: Send + Sync {
    /// Where `tx` committed, if the index has applied its batch.
    fn committed(&self, tx: &TxId) -> Result<Option<CommitRef>, IndexError>;
}

#[cfg(not(loom))]
impl CommittedIndex for projections::TxIndex {
    fn committed(&self, tx: &TxId) -> Result<Option<CommitRef>, IndexError> {
        Ok(
            projections::TxIndex::committed(self, tx)?.map(|p| CommitRef {
                first_seq: p.first_seq,
                n_records: p.n_records,
            }),
        )
    }
}

#[derive(Debug, Clone, Copy)]
enum Entry {
    InFlight,
    Committed(CommitRef),
}

/// TxId -> in flight | committed (recent), backed by a durable index for
/// the older committed ones.
#[derive(Default)]
pub struct IdempotencyTable {
    entries: Mutex<HashMap<TxId, Entry>>,
    index: Option<Arc<dyn CommittedIndex>>,
}

impl std::fmt::Debug for IdempotencyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdempotencyTable")
            .field("has_index", &self.index.is_some())
            .finish_non_exhaustive()
    }
}

impl IdempotencyTable {
    /// A table that holds everything in memory (no index: nothing may be
    /// forgotten).
    pub fn new() -> IdempotencyTable {
        IdempotencyTable::default()
    }

    /// A table that falls back to `index` for committed transactions it
    /// does not hold.
    pub fn with_index(index: Arc<dyn CommittedIndex>) -> IdempotencyTable {
        IdempotencyTable {
            entries: Mutex::default(),
            index: Some(index),
        }
    }

    /// Claims `tx` if it is new; otherwise says where it stands. The claim
    /// is taken before the index is asked, so a forget racing this call
    /// cannot make a committed transaction look new.
    pub fn begin(&self, tx: TxId) -> Result<Begin, IndexError> {
        {
            let mut entries = lock(&self.entries);
            match entries.get(&tx) {
                Some(Entry::InFlight) => return Ok(Begin::InFlight),
                Some(Entry::Committed(r)) => return Ok(Begin::Committed(*r)),
                None => {
                    entries.insert(tx, Entry::InFlight);
                }
            }
        }
        let Some(index) = &self.index else {
            return Ok(Begin::Started);
        };
        match index.committed(&tx) {
            Ok(None) => Ok(Begin::Started),
            Ok(Some(at)) => {
                // Our claim becomes the committed answer; the next forget
                // drops it again (the index has it).
                lock(&self.entries).insert(tx, Entry::Committed(at));
                Ok(Begin::Committed(at))
            }
            Err(e) => {
                self.abandon(tx);
                Err(e)
            }
        }
    }

    /// Records that `tx` is durable in the log at `at`.
    pub fn commit(&self, tx: TxId, at: CommitRef) {
        let mut entries = lock(&self.entries);
        let previous = entries.insert(tx, Entry::Committed(at));
        assert!(
            !matches!(previous, Some(Entry::Committed(r)) if r != at),
            "transaction {tx} committed twice at different places"
        );
    }

    /// Releases a claim on `tx` that did not commit (refused or failed), so a
    /// retry may run it again. Safe to call whether or not the attempt
    /// committed: a committed entry is never removed, and a claim on a
    /// committed transaction (a retry's, after the entry was forgotten) is
    /// only ever resolved from the index, which has it.
    pub fn abandon(&self, tx: TxId) {
        let mut entries = lock(&self.entries);
        if matches!(entries.get(&tx), Some(Entry::InFlight)) {
            entries.remove(&tx);
        }
    }

    /// Where `tx` committed, if it did.
    pub fn committed(&self, tx: &TxId) -> Result<Option<CommitRef>, IndexError> {
        if let Some(Entry::Committed(r)) = lock(&self.entries).get(tx) {
            return Ok(Some(*r));
        }
        // Missing, or claimed: a claim may be a `begin` that is about to
        // find `tx` in the index, so the index decides.
        match &self.index {
            Some(index) => index.committed(tx),
            None => Ok(None),
        }
    }

    /// Applies one record read back from the log (rebuild at start).
    pub fn apply_record(&self, record: &Record) {
        if record.batch_index == 0 {
            self.commit(
                record.tx,
                CommitRef {
                    first_seq: record.seq,
                    n_records: record.batch_len,
                },
            );
        }
    }

    /// Drops the committed entries whose batch starts at or before
    /// `applied`, the sequence number a completed (durable) catch-up of
    /// the index reached; returns how many. In-flight claims stay. Without
    /// an index nothing is dropped.
    pub fn forget_committed_through(&self, applied: Seq) -> usize {
        if self.index.is_none() {
            return 0;
        }
        let mut entries = lock(&self.entries);
        let before = entries.len();
        entries.retain(|_, e| !matches!(e, Entry::Committed(r) if r.first_seq <= applied));
        // A burst leaves a large allocation behind; give it back.
        let after = entries.len();
        entries.shrink_to(after.saturating_mul(2));
        before - after
    }

    pub fn n_in_flight(&self) -> usize {
        lock(&self.entries)
            .values()
            .filter(|e| matches!(e, Entry::InFlight))
            .count()
    }

    /// Committed transactions held in memory (those the index has not
    /// applied yet, plus any answered from it since the last forget).
    pub fn n_committed_in_memory(&self) -> usize {
        lock(&self.entries)
            .values()
            .filter(|e| matches!(e, Entry::Committed(_)))
            .count()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use ledger::{Event, KeyEpoch};

    use super::*;

    fn at(seq: u64) -> CommitRef {
        CommitRef {
            first_seq: Seq(seq),
            n_records: 2,
        }
    }

    #[test]
    fn a_repeat_of_a_committed_transaction_gets_its_log_place() {
        let table = IdempotencyTable::new();
        let tx = TxId::random();
        assert_eq!(table.begin(tx).expect("begin"), Begin::Started);
        assert_eq!(table.begin(tx).expect("begin"), Begin::InFlight);
        table.commit(tx, at(7));
        assert_eq!(table.begin(tx).expect("begin"), Begin::Committed(at(7)));
        assert_eq!(table.n_in_flight(), 0);
    }

    #[test]
    fn an_abandoned_transaction_may_run_again_but_a_committed_one_stays() {
        let table = IdempotencyTable::new();
        let tx = TxId::random();
        assert_eq!(table.begin(tx).expect("begin"), Begin::Started);
        table.abandon(tx);
        assert_eq!(table.begin(tx).expect("begin"), Begin::Started);
        table.commit(tx, at(1));
        table.abandon(tx);
        assert_eq!(table.committed(&tx).expect("committed"), Some(at(1)));
    }

    #[test]
    fn the_table_is_rebuilt_from_log_records() {
        let table = IdempotencyTable::new();
        let tx = TxId::random();
        for (i, seq) in [(0u16, 4u64), (1, 5)] {
            table.apply_record(&Record {
                seq: Seq(seq),
                tx,
                at: ledger::Timestamp(0),
                batch_index: i,
                batch_len: 2,
                event: Event::EpochClosed { epoch: KeyEpoch(1) },
            });
        }
        assert_eq!(table.begin(tx).expect("begin"), Begin::Committed(at(4)));
    }

    fn tx_record(seq: u64, tx: TxId, batch_index: u16) -> Record {
        Record {
            seq: Seq(seq),
            tx,
            at: ledger::Timestamp(0),
            batch_index,
            batch_len: 2,
            event: Event::EpochClosed { epoch: KeyEpoch(1) },
        }
    }

    /// A transaction index file holding `tx`'s batch at seqs 4 and 5.
    fn index_with(dir: &std::path::Path, tx: TxId) -> Arc<projections::TxIndex> {
        let index =
            projections::TxIndex::open(dir.join("tx-index.redb"), projections::TxIndexModel)
                .expect("open index");
        index
            .apply_iter([
                &tx_record(1, TxId::random(), 0),
                &tx_record(2, TxId::random(), 0),
            ])
            .expect("filler");
        index
            .apply_iter([
                &tx_record(3, TxId::random(), 0),
                &tx_record(4, tx, 0),
                &tx_record(5, tx, 1),
            ])
            .expect("apply");
        Arc::new(index)
    }

    #[test]
    fn a_forgotten_commit_is_answered_from_the_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tx = TxId::random();
        let index = index_with(dir.path(), tx);
        let table = IdempotencyTable::with_index(index.clone());
        table.apply_record(&tx_record(4, tx, 0));
        assert_eq!(table.n_committed_in_memory(), 1);
        let applied = index.applied_seq().expect("applied");
        assert_eq!(table.forget_committed_through(applied), 1);
        assert_eq!(table.n_committed_in_memory(), 0);
        assert_eq!(table.committed(&tx).expect("committed"), Some(at(4)));
        assert_eq!(table.begin(tx).expect("begin"), Begin::Committed(at(4)));
        assert_eq!(table.begin(tx).expect("begin"), Begin::Committed(at(4)));
        assert_eq!(table.n_in_flight(), 0);
        // A new transaction misses both and runs.
        let new = TxId::random();
        assert_eq!(table.committed(&new).expect("committed"), None);
        assert_eq!(table.begin(new).expect("begin"), Begin::Started);
    }

    #[test]
    fn forget_keeps_claims_and_commits_the_index_has_not_applied() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = TxId::random();
        let table = IdempotencyTable::with_index(index_with(dir.path(), old));
        table.apply_record(&tx_record(4, old, 0));
        let (newer, running) = (TxId::random(), TxId::random());
        table.commit(newer, at(6));
        assert_eq!(table.begin(running).expect("begin"), Begin::Started);
        assert_eq!(table.forget_committed_through(Seq(5)), 1);
        assert_eq!(table.n_committed_in_memory(), 1);
        assert_eq!(table.begin(newer).expect("begin"), Begin::Committed(at(6)));
        assert_eq!(table.begin(running).expect("begin"), Begin::InFlight);
    }

    #[test]
    fn without_an_index_nothing_is_forgotten() {
        let table = IdempotencyTable::new();
        let tx = TxId::random();
        table.commit(tx, at(1));
        assert_eq!(table.forget_committed_through(Seq(100)), 0);
        assert_eq!(table.begin(tx).expect("begin"), Begin::Committed(at(1)));
    }

    /// An index that cannot be read, as a failing disk makes it.
    struct UnreadableIndex;

    impl CommittedIndex for UnreadableIndex {
        fn committed(&self, _: &TxId) -> Result<Option<CommitRef>, IndexError> {
            Err(projections::ProjectionError::Corrupt {
                table: "tx_index.committed",
                reason: "test: unreadable",
            }
            .into())
        }
    }

    #[test]
    fn an_unreadable_index_is_an_error_never_a_new_transaction() {
        let table = IdempotencyTable::with_index(Arc::new(UnreadableIndex));
        let tx = TxId::random();
        assert!(table.begin(tx).is_err());
        assert!(table.committed(&tx).is_err());
        // The claim was released: nothing is stuck in flight.
        assert_eq!(table.n_in_flight(), 0);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use ledger::sync::{Arc, thread};

    use super::*;

    fn at(seq: u64) -> CommitRef {
        CommitRef {
            first_seq: Seq(seq),
            n_records: 2,
        }
    }

    /// Three retries of one transaction race: exactly one runs it, the others
    /// are told it is in flight or answered from its committed place; never
    /// two runs at once, never a "new" answer after the commit.
    #[test]
    fn loom_three_retries_of_one_transaction_run_it_once() {
        loom::model(|| {
            let table = Arc::new(IdempotencyTable::new());
            let tx = TxId::from_bytes([7; 16]);
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    let table = table.clone();
                    thread::spawn(move || match table.begin(tx).expect("begin") {
                        Begin::Started => {
                            table.commit(tx, at(5));
                            1
                        }
                        Begin::InFlight => 0,
                        Begin::Committed(r) => {
                            assert_eq!(r, at(5));
                            0
                        }
                    })
                })
                .collect();
            let runs: u32 = handles.into_iter().map(|h| h.join().expect("thread")).sum();
            assert_eq!(runs, 1, "the transaction ran {runs} times");
            assert_eq!(table.begin(tx).expect("begin"), Begin::Committed(at(5)));
        });
    }

    /// A failed attempt releases its claim while a retry races it: the retry
    /// either sees it in flight or runs it itself, and at the end the
    /// transaction is committed at most once and nothing stays in flight.
    #[test]
    fn loom_an_abandoned_claim_lets_exactly_one_retry_run() {
        loom::model(|| {
            let table = Arc::new(IdempotencyTable::new());
            let tx = TxId::from_bytes([9; 16]);
            assert_eq!(table.begin(tx).expect("begin"), Begin::Started);
            let failing = {
                let table = table.clone();
                thread::spawn(move || table.abandon(tx))
            };
            let retries: Vec<_> = (0..2)
                .map(|_| {
                    let table = table.clone();
                    thread::spawn(move || match table.begin(tx).expect("begin") {
                        Begin::Started => {
                            table.commit(tx, at(3));
                            1
                        }
                        Begin::InFlight | Begin::Committed(_) => 0,
                    })
                })
                .collect();
            failing.join().expect("thread");
            let runs: u32 = retries.into_iter().map(|h| h.join().expect("thread")).sum();
            assert!(runs <= 1, "the transaction ran {runs} times");
            assert_eq!(table.n_in_flight(), 0, "a claim outlived its attempt");
        });
    }

    /// The durable index as a model: what a completed catch-up has applied.
    #[derive(Default)]
    struct ModelIndex {
        applied: Mutex<HashMap<TxId, CommitRef>>,
    }

    impl CommittedIndex for ModelIndex {
        fn committed(&self, tx: &TxId) -> Result<Option<CommitRef>, IndexError> {
            Ok(lock(&self.applied).get(tx).copied())
        }
    }

    /// The housekeeper catches the index up and forgets what it applied
    /// while a retry of that committed transaction begins and another asks
    /// whether it committed: in every interleaving the retry is answered
    /// Committed (never Started: it would run twice) and the question Some.
    #[test]
    fn loom_a_forget_racing_a_retry_of_a_committed_transaction_still_answers_committed() {
        loom::model(|| {
            let index = std::sync::Arc::new(ModelIndex::default());
            let table = Arc::new(IdempotencyTable::with_index(index.clone()));
            let tx = TxId::from_bytes([11; 16]);
            assert_eq!(table.begin(tx).expect("begin"), Begin::Started);
            table.commit(tx, at(5));
            let housekeeper = {
                let table = table.clone();
                thread::spawn(move || {
                    lock(&index.applied).insert(tx, at(5));
                    table.forget_committed_through(Seq(5))
                })
            };
            let retry = {
                let table = table.clone();
                thread::spawn(move || table.begin(tx).expect("begin"))
            };
            let asked = table.committed(&tx).expect("committed");
            assert_eq!(retry.join().expect("thread"), Begin::Committed(at(5)));
            assert_eq!(asked, Some(at(5)));
            let forgotten = housekeeper.join().expect("thread");
            assert!(forgotten <= 1);
            assert_eq!(table.n_in_flight(), 0, "a claim outlived its begin");
            assert_eq!(table.begin(tx).expect("begin"), Begin::Committed(at(5)));
        });
    }
}

//! The idempotency table: which transactions are in flight and which are
//! committed, and where in the log a committed one's outcome lies.
//!
//! A transaction is identified by its [`TxId`], derived from what the client
//! sent (e.g. payee, TID and input serials), and every log record carries
//! it; so the table is rebuilt from the log at start and no cache with a
//! time-to-live ever decides whether a retry is a replay. A repeat of a
//! committed transaction is answered from its batch in the log; a repeat of
//! one in flight is told to retry (it never runs twice at once).

use std::collections::HashMap;

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

#[derive(Debug, Clone, Copy)]
enum Entry {
    InFlight,
    Committed(CommitRef),
}

/// TxId -> in flight | committed.
#[derive(Debug, Default)]
pub struct IdempotencyTable {
    entries: Mutex<HashMap<TxId, Entry>>,
}

impl IdempotencyTable {
    pub fn new() -> IdempotencyTable {
        IdempotencyTable::default()
    }

    /// Claims `tx` if it is new; otherwise says where it stands.
    pub fn begin(&self, tx: TxId) -> Begin {
        let mut entries = lock(&self.entries);
        match entries.get(&tx) {
            Some(Entry::InFlight) => Begin::InFlight,
            Some(Entry::Committed(r)) => Begin::Committed(*r),
            None => {
                entries.insert(tx, Entry::InFlight);
                Begin::Started
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
    /// retry may run it again.
    pub fn abandon(&self, tx: TxId) {
        let mut entries = lock(&self.entries);
        if matches!(entries.get(&tx), Some(Entry::InFlight)) {
            entries.remove(&tx);
        }
    }

    /// Where `tx` committed, if it did.
    pub fn committed(&self, tx: &TxId) -> Option<CommitRef> {
        match lock(&self.entries).get(tx) {
            Some(Entry::Committed(r)) => Some(*r),
            _ => None,
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

    pub fn n_in_flight(&self) -> usize {
        lock(&self.entries)
            .values()
            .filter(|e| matches!(e, Entry::InFlight))
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
        assert_eq!(table.begin(tx), Begin::Started);
        assert_eq!(table.begin(tx), Begin::InFlight);
        table.commit(tx, at(7));
        assert_eq!(table.begin(tx), Begin::Committed(at(7)));
        assert_eq!(table.n_in_flight(), 0);
    }

    #[test]
    fn an_abandoned_transaction_may_run_again_but_a_committed_one_stays() {
        let table = IdempotencyTable::new();
        let tx = TxId::random();
        assert_eq!(table.begin(tx), Begin::Started);
        table.abandon(tx);
        assert_eq!(table.begin(tx), Begin::Started);
        table.commit(tx, at(1));
        table.abandon(tx);
        assert_eq!(table.committed(&tx), Some(at(1)));
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
        assert_eq!(table.begin(tx), Begin::Committed(at(4)));
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
                    thread::spawn(move || match table.begin(tx) {
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
            assert_eq!(table.begin(tx), Begin::Committed(at(5)));
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
            assert_eq!(table.begin(tx), Begin::Started);
            let failing = {
                let table = table.clone();
                thread::spawn(move || table.abandon(tx))
            };
            let retries: Vec<_> = (0..2)
                .map(|_| {
                    let table = table.clone();
                    thread::spawn(move || match table.begin(tx) {
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
}

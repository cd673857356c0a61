//! Transaction index: for every transaction the log holds, where its batch
//! lies (the sequence number of its first record and how many records it
//! has). The issuer answers a repeat of a committed transaction from that
//! batch, forever (no time-to-live decides whether a retry is a replay), so
//! this index is what lets it keep in memory only the transactions the
//! index has not applied yet instead of every one ever committed.
//!
//! Table (one): `tx_index.committed`: TxId (16 bytes) → first seq (u64,
//! big-endian) ‖ number of records (u16, big-endian), written when the
//! batch's first record (`batch_index == 0`) is applied.
//!
//! **Invariant:** a transaction commits once: a second batch of the same
//! transaction in the log is refused ([`HistoryError::TxCommittedTwice`]).

use ledger::{Record, Seq, TxId};

use crate::error::{HistoryError, ProjectionError, history};
use crate::framework::{Projection, ProjectionDb};
use crate::state::{Reader, StateRead, StateWrite, TableName};

const COMMITTED: TableName = "tx_index.committed";

/// Where a committed transaction's batch lies in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxPlace {
    /// Sequence number of the batch's first record.
    pub first_seq: Seq,
    /// Number of records in the batch.
    pub n_records: u16,
}

impl TxPlace {
    fn to_bytes(self) -> [u8; 10] {
        let mut out = [0u8; 10];
        out[..8].copy_from_slice(&self.first_seq.0.to_be_bytes());
        out[8..].copy_from_slice(&self.n_records.to_be_bytes());
        out
    }

    fn from_bytes(bytes: &[u8]) -> Result<TxPlace, ProjectionError> {
        let mut r = Reader::new(COMMITTED, bytes);
        let first_seq = Seq(r.u64()?);
        let n_records = u16::from_be_bytes(r.take()?);
        Ok(TxPlace {
            first_seq,
            n_records,
        })
    }
}

/// The transaction-index projection (pure apply; see [`TxIndex`] for its file).
#[derive(Debug, Clone, Copy, Default)]
pub struct TxIndexModel;

/// The transaction index in its own redb file (`tx-index.redb` in the
/// issuer's directory).
pub type TxIndex = ProjectionDb<TxIndexModel>;

/// Where `tx` committed, as `state` knows it.
pub fn lookup(state: &dyn StateRead, tx: &TxId) -> Result<Option<TxPlace>, ProjectionError> {
    state
        .get(COMMITTED, tx.as_bytes())?
        .map(|bytes| TxPlace::from_bytes(&bytes))
        .transpose()
}

impl Projection for TxIndexModel {
    const NAME: &'static str = "tx_index";
    const TABLES: &'static [TableName] = &[COMMITTED];
    const FORMAT: u32 = 1;

    fn apply(&self, state: &mut dyn StateWrite, record: &Record) -> Result<(), ProjectionError> {
        if record.batch_index != 0 {
            return Ok(());
        }
        let place = TxPlace {
            first_seq: record.seq,
            n_records: record.batch_len,
        };
        if let Some(existing) = lookup(state, &record.tx)? {
            if existing != place {
                return Err(history(
                    record.seq,
                    HistoryError::TxCommittedTwice(record.tx),
                ));
            }
            return Ok(());
        }
        state.put(COMMITTED, record.tx.as_bytes(), &place.to_bytes())?;
        Ok(())
    }
}

impl TxIndex {
    /// Where `tx` committed, if the index has applied its batch's first
    /// record (a transaction committed after the applied sequence number is
    /// not here yet: the caller's memory must hold it).
    pub fn committed(&self, tx: &TxId) -> Result<Option<TxPlace>, ProjectionError> {
        self.read(|state| lookup(state, tx))
    }
}

#[cfg(test)]
mod tests {
    use ledger::{Event, KeyEpoch, Timestamp};

    use super::*;
    use crate::state::MemoryState;

    fn record(seq: u64, tx: TxId, batch_index: u16, batch_len: u16) -> Record {
        Record {
            seq: Seq(seq),
            tx,
            at: Timestamp(0),
            batch_index,
            batch_len,
            event: Event::EpochClosed { epoch: KeyEpoch(1) },
        }
    }

    #[test]
    fn a_batch_is_found_at_its_first_record_with_its_length() {
        let mut state = MemoryState::new(TxIndexModel::TABLES);
        let tx = TxId::from_bytes([3; 16]);
        for i in 0..3u16 {
            TxIndexModel
                .apply(&mut state, &record(10 + u64::from(i), tx, i, 3))
                .expect("apply");
        }
        assert_eq!(
            lookup(&state, &tx).expect("lookup"),
            Some(TxPlace {
                first_seq: Seq(10),
                n_records: 3
            })
        );
        assert_eq!(
            lookup(&state, &TxId::from_bytes([4; 16])).expect("lookup"),
            None
        );
    }

    #[test]
    fn a_second_batch_of_the_same_transaction_is_refused() {
        let mut state = MemoryState::new(TxIndexModel::TABLES);
        let tx = TxId::from_bytes([5; 16]);
        TxIndexModel
            .apply(&mut state, &record(1, tx, 0, 1))
            .expect("first");
        let err = TxIndexModel
            .apply(&mut state, &record(2, tx, 0, 1))
            .expect_err("second batch");
        assert!(matches!(
            err,
            ProjectionError::History {
                seq: Seq(2),
                source: HistoryError::TxCommittedTwice(t)
            } if t == tx
        ));
    }

    #[test]
    fn a_short_stored_place_is_corruption_not_a_panic() {
        let mut state = MemoryState::new(TxIndexModel::TABLES);
        let tx = TxId::from_bytes([6; 16]);
        state
            .put(COMMITTED, tx.as_bytes(), &[0, 0, 0, 1])
            .expect("put");
        assert!(matches!(
            lookup(&state, &tx),
            Err(ProjectionError::Corrupt {
                table: COMMITTED,
                ..
            })
        ));
    }

    #[test]
    fn the_file_answers_after_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tx-index.redb");
        let tx = TxId::from_bytes([8; 16]);
        {
            let db = TxIndex::open(&path, TxIndexModel).expect("open");
            db.apply_iter([&record(1, tx, 0, 2), &record(2, tx, 1, 2)])
                .expect("apply");
        }
        let db = TxIndex::open(&path, TxIndexModel).expect("reopen");
        assert_eq!(db.applied_seq().expect("seq"), Seq(2));
        assert_eq!(
            db.committed(&tx).expect("lookup"),
            Some(TxPlace {
                first_seq: Seq(1),
                n_records: 2
            })
        );
    }
}

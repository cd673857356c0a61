//! Errors of the projections: [`HistoryError`] when the log is not a valid
//! history for a read model (a domain rejection), and the umbrella
//! [`ProjectionError`] that adds storage, log and unsealing failures.

use ledger::{CoinId, ConservationError, KeyEpoch, MoneyError, PurchaseId, Seq, StoreError, TxId};

/// The log holds something a projection cannot accept: a coin spent that was
/// never issued, an erasure that does not match what is erasable, a
/// transaction that does not balance. The projection stops at that record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    #[error("coin {0} issued twice")]
    CoinIssuedTwice(CoinId),
    #[error("coin {0} taken out of circulation but never issued (or already erased)")]
    UnknownCoin(CoinId),
    #[error("coin {0} taken out of circulation but it is not unspent")]
    CoinNotUnspent(CoinId),
    #[error("coin {0} is recorded with a different value, expiry or epoch")]
    CoinBodyMismatch(CoinId),
    #[error("{0} opened twice")]
    EpochOpenedTwice(KeyEpoch),
    #[error("{0} was never opened")]
    UnknownEpoch(KeyEpoch),
    #[error(
        "erasure of {epoch} does not match the erasable coins: event says {event_n_coins} coins, store has {store_n_coins}"
    )]
    ErasureMismatch {
        epoch: KeyEpoch,
        event_n_coins: u64,
        store_n_coins: u64,
    },
    #[error("erasure would remove unspent coin {0}")]
    WouldEraseUnspent(CoinId),
    #[error(
        "forfeiture of {epoch} does not match its unspent coins: event says {event_n_coins} coins, store has {store_n_coins}"
    )]
    ForfeitureMismatch {
        epoch: KeyEpoch,
        event_n_coins: u64,
        store_n_coins: u64,
    },
    #[error("purchase {0} requested twice")]
    PurchaseRequestedTwice(PurchaseId),
    #[error("purchase {0} settled or rejected but never requested, or already closed")]
    PurchaseNotPending(PurchaseId),
    #[error("purchase {0} settled for another amount than was requested")]
    PurchaseAmountMismatch(PurchaseId),
    #[error("aggregate balance would go negative")]
    BalanceOverdrawn,
    #[error("transaction {0} has a second batch in the log")]
    TxCommittedTwice(TxId),
    #[error("record {index} of a batch of {len} arrived out of order")]
    BatchOutOfOrder { index: u16, len: u16 },
    #[error(transparent)]
    Conservation(#[from] ConservationError),
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// Why a sealed identity or bank account could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnsealError {
    #[error("sealed field does not open under the user-index key")]
    Undecryptable,
    #[error("sealed field opened but does not hold a valid value: {0}")]
    Invalid(String),
}

/// Any failure of a projection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    #[error("record {seq}: {source}")]
    History {
        seq: Seq,
        #[source]
        source: HistoryError,
    },
    #[error("record {seq}: {source}")]
    Unseal {
        seq: Seq,
        #[source]
        source: UnsealError,
    },
    #[error(
        "projection has applied up to {applied}, next record offered is {offered}: records are missing"
    )]
    Gap { applied: Seq, offered: Seq },
    #[error("projection store: {0}")]
    Storage(#[from] redb::Error),
    #[error("event log: {0}")]
    Log(#[from] StoreError),
    #[error("file holds projection {found:?}, expected {expected:?}")]
    WrongProjection {
        expected: &'static str,
        found: String,
    },
    #[error("{projection} file has format {found}, this build writes {expected}: rebuild it")]
    FormatChanged {
        projection: &'static str,
        found: u32,
        expected: u32,
    },
    #[error("stored value in table {table} is corrupt: {reason}")]
    Corrupt {
        table: &'static str,
        reason: &'static str,
    },
    #[error("table {0} is not one of this projection's tables")]
    UnknownTable(&'static str),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for ProjectionError {
            fn from(e: $t) -> Self {
                ProjectionError::Storage(redb::Error::from(e))
            }
        }
    )*};
}

from_redb!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError,
    redb::CompactionError
);

/// Attaches the record's sequence number to a domain rejection.
pub(crate) fn history(seq: Seq, source: HistoryError) -> ProjectionError {
    ProjectionError::History { seq, source }
}

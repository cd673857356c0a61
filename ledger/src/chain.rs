//! [`ChainVerifier`]: checks a log record by record, over the bytes as
//! stored, so an auditor can verify a log of any length in bounded memory
//! and resume where it stopped.
//!
//! For each record, in order, it checks: the seq is the next one (gap-free
//! from 1); `prev_hash` is the previous record's `hash` ([`Hash32::GENESIS`]
//! for the first); `hash` equals [`crate::store::record_hash`] recomputed over
//! the stored fields and event bytes (not a re-encoding of the decoded event);
//! and the batch positions: `batch_index < batch_len`, a batch's records are
//! contiguous, share one `tx`, `at` and `batch_len`, and run from 0 to `batch_len - 1`.
//! Every failure names the seq of the record where it was found.

use crate::ids::{Timestamp, TxId};
use crate::store::{Hash32, Head, RawEventStore, RawRecord, Seq, StoreError};

/// Why a log failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    #[error("record {found} where {expected} was expected")]
    SeqGap { expected: Seq, found: Seq },
    #[error("record {seq}: prev_hash does not match the previous record's hash")]
    PrevHashMismatch { seq: Seq },
    #[error("record {seq}: stored hash does not match the hash of its contents")]
    HashMismatch { seq: Seq },
    #[error("record {seq}: bad batch position: {reason}")]
    BatchPosition { seq: Seq, reason: &'static str },
    #[error("log ends inside a batch: record {seq} is not its batch's last")]
    IncompleteBatch { seq: Seq },
}

impl ChainError {
    /// The record where the failure was found.
    pub fn seq(&self) -> Seq {
        match self {
            ChainError::SeqGap { found, .. } => *found,
            ChainError::PrevHashMismatch { seq }
            | ChainError::HashMismatch { seq }
            | ChainError::BatchPosition { seq, .. }
            | ChainError::IncompleteBatch { seq } => *seq,
        }
    }
}

impl From<ChainError> for StoreError {
    fn from(e: ChainError) -> StoreError {
        match e {
            ChainError::PrevHashMismatch { seq } => StoreError::ChainBroken { seq },
            other => StoreError::Corrupt {
                seq: other.seq(),
                reason: other.to_string(),
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct OpenBatch {
    tx: TxId,
    at: Timestamp,
    len: u16,
    next_index: u16,
}

/// Verifies records fed in order; see the module docs for what it checks.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    head: Head,
    open_batch: Option<OpenBatch>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier::new()
    }
}

impl ChainVerifier {
    /// A verifier expecting the first record of a log.
    pub fn new() -> ChainVerifier {
        ChainVerifier::resume(Head {
            last_seq: Seq(0),
            last_hash: Hash32::GENESIS,
        })
    }

    /// A verifier expecting the record after `trusted`, a point already
    /// verified (e.g. a signed checkpoint), which must end a batch.
    pub fn resume(trusted: Head) -> ChainVerifier {
        ChainVerifier {
            head: trusted,
            open_batch: None,
        }
    }

    /// The last record verified so far.
    pub fn head(&self) -> Head {
        self.head
    }

    /// Whether the last record verified ended its batch.
    pub fn at_batch_boundary(&self) -> bool {
        self.open_batch.is_none()
    }

    /// Checks the next record. On error the verifier is unchanged.
    pub fn feed(&mut self, record: &RawRecord) -> Result<(), ChainError> {
        let seq = record.seq;
        let expected = Seq(self.head.last_seq.0.saturating_add(1));
        if seq != expected {
            return Err(ChainError::SeqGap {
                expected,
                found: seq,
            });
        }
        if record.prev_hash != self.head.last_hash {
            return Err(ChainError::PrevHashMismatch { seq });
        }
        if record.recomputed_hash() != record.hash {
            return Err(ChainError::HashMismatch { seq });
        }
        let bad = |reason| Err(ChainError::BatchPosition { seq, reason });
        if record.batch_index >= record.batch_len {
            return bad("index is not below the batch length");
        }
        let batch = match self.open_batch {
            None => {
                if record.batch_index != 0 {
                    return bad("a batch starts at a nonzero index");
                }
                OpenBatch {
                    tx: record.tx,
                    at: record.at,
                    len: record.batch_len,
                    next_index: 0,
                }
            }
            Some(open) => {
                if record.tx != open.tx {
                    return bad("a batch is interrupted by another transaction");
                }
                if record.at != open.at {
                    return bad("the transaction's time changes inside its batch");
                }
                if record.batch_len != open.len {
                    return bad("batch length changes inside a batch");
                }
                open
            }
        };
        if record.batch_index != batch.next_index {
            return bad("index out of order inside its batch");
        }
        let next_index = batch.next_index + 1;
        self.open_batch = (next_index < batch.len).then_some(OpenBatch {
            next_index,
            ..batch
        });
        self.head = Head {
            last_seq: seq,
            last_hash: record.hash,
        };
        Ok(())
    }

    /// Ends verification: the log must not stop inside a batch.
    pub fn finish(self) -> Result<Head, ChainError> {
        match self.open_batch {
            None => Ok(self.head),
            Some(_) => Err(ChainError::IncompleteBatch {
                seq: self.head.last_seq,
            }),
        }
    }
}

/// Why a whole-store verification failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Verifies every record of `store` from the start, reading `chunk_records`
/// at a time; returns the verified head.
pub fn verify_store(store: &impl RawEventStore, chunk_records: usize) -> Result<Head, VerifyError> {
    let mut verifier = ChainVerifier::new();
    let chunk_records = chunk_records.max(1);
    loop {
        let next = Seq(verifier.head().last_seq.0.saturating_add(1));
        let records = store.read_raw(next, chunk_records)?;
        for record in &records {
            verifier.feed(record)?;
        }
        if records.len() < chunk_records {
            break;
        }
    }
    Ok(verifier.finish()?)
}

//! The append-only log: the [`EventStore`] trait every backend implements
//! (redb now; PostgreSQL later behind the same trait), and the record format.
//!
//! A record is `(seq, tx, batch position, event)`; its hash is
//! `SHA-256(prev_hash ‖ seq ‖ tx ‖ batch_index ‖ batch_len ‖ event bytes)`
//! (see [`record_hash`]), so changing, dropping, reordering or inserting a
//! record breaks the chain from that point on. The first record's
//! `prev_hash` is [`Hash32::GENESIS`]. Sequence numbers start at 1 and have
//! no gaps. A batch (one protocol transaction) is appended all or nothing.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::{Event, EventDecodeError};
use crate::ids::TxId;

/// A record's position in the log. The first record is `Seq(1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Seq(pub u64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// The `prev_hash` of the first record.
    pub const GENESIS: Hash32 = Hash32([0; 32]);
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({})", &hex::encode(self.0)[..16])
    }
}

/// The events of one protocol transaction, appended all or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub tx: TxId,
    pub events: Vec<Event>,
}

/// One decoded record of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: Seq,
    pub tx: TxId,
    /// Position of this record inside its batch, from 0.
    pub batch_index: u16,
    /// Number of records in its batch.
    pub batch_len: u16,
    pub event: Event,
}

/// A record as read back, with its place in the hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub record: Record,
    pub prev_hash: Hash32,
    pub hash: Hash32,
}

/// The end of the log: the last record's sequence number and hash
/// (`Seq(0)` and [`Hash32::GENESIS`] when empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub last_seq: Seq,
    pub last_hash: Hash32,
}

/// The chain hash of a record whose event encodes to `event_bytes`.
pub fn record_hash(
    prev_hash: &Hash32,
    seq: Seq,
    tx: &TxId,
    batch_index: u16,
    batch_len: u16,
    event_bytes: &[u8],
) -> Hash32 {
    let mut h = Sha256::new();
    h.update(prev_hash.0);
    h.update(seq.0.to_le_bytes());
    h.update(tx.as_bytes());
    h.update(batch_index.to_le_bytes());
    h.update(batch_len.to_le_bytes());
    h.update(event_bytes);
    Hash32(h.finalize().into())
}

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("storage backend: {0}")]
    Backend(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("record {seq} is corrupt: {reason}")]
    Corrupt { seq: Seq, reason: String },
    #[error("record {seq}: {source}")]
    Decode {
        seq: Seq,
        #[source]
        source: EventDecodeError,
    },
    #[error("hash chain broken at record {seq}")]
    ChainBroken { seq: Seq },
    #[error("batch refused: {0}")]
    InvalidBatch(&'static str),
    #[error("log is open read-only")]
    ReadOnly,
    #[error("log writer stopped after a failed commit; restart from the files")]
    Poisoned,
}

/// An append-only, hash-chained, durable log of [`Event`]s.
///
/// Implementations guarantee: `append` returns only after the batches are
/// durable (fsync'd); the batches of one call are written in one atomic
/// transaction, in order; sequence numbers are consecutive from 1; every
/// reader sees a prefix of the log, never a partial batch.
pub trait EventStore: Send + Sync {
    /// Appends `batches` in one durable transaction; returns, for each batch,
    /// the sequence number of its first record.
    fn append(&self, batches: &[Batch]) -> Result<Vec<Seq>, StoreError>;

    /// The last record's sequence number and hash.
    fn head(&self) -> Result<Head, StoreError>;

    /// Up to `max_records` records from `from` on, in order.
    fn read(&self, from: Seq, max_records: usize) -> Result<Vec<StoredRecord>, StoreError>;
}

//! The append-only log: the [`EventStore`] trait every backend implements
//! (redb and memory here; PostgreSQL in `vc-pg-store`), and the record format.
//!
//! A record is `(seq, tx, at, batch position, event)`; its hash is
//! `SHA-256(prev_hash ‖ seq ‖ tx ‖ at ‖ batch_index ‖ batch_len ‖ event bytes)`
//! (see [`record_hash`]), so changing, dropping, reordering or inserting a
//! record, or moving it in time, breaks the chain from that point on.
//! `at` is the issuer's time of the transaction, one value per batch. The first record's
//! `prev_hash` is [`Hash32::GENESIS`]. Sequence numbers start at 1 and have
//! no gaps. A batch (one protocol transaction) is appended all or nothing.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::constants::{BATCH_EVENTS_MAX, EVENT_BYTES_MAX};
use crate::event::{Event, EventDecodeError};
use crate::ids::{Timestamp, TxId};

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
    /// The issuer's time of the transaction: the clock reading it validated
    /// the transaction with, so an auditor judges expiry and grace at the
    /// time the issuer decided. Every record of the batch carries it.
    pub at: Timestamp,
    pub events: Vec<Event>,
}

/// One decoded record of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: Seq,
    pub tx: TxId,
    /// The issuer's time of the transaction (see [`Batch::at`]).
    pub at: Timestamp,
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
    at: Timestamp,
    batch_index: u16,
    batch_len: u16,
    event_bytes: &[u8],
) -> Hash32 {
    // The fixed fields in one buffer, one update: the auditor hashes every
    // record, and six small updates cost more than the copy.
    let mut header = [0u8; 32 + 8 + 16 + 8 + 2 + 2];
    header[..32].copy_from_slice(&prev_hash.0);
    header[32..40].copy_from_slice(&seq.0.to_le_bytes());
    header[40..56].copy_from_slice(tx.as_bytes());
    header[56..64].copy_from_slice(&at.0.to_le_bytes());
    header[64..66].copy_from_slice(&batch_index.to_le_bytes());
    header[66..68].copy_from_slice(&batch_len.to_le_bytes());
    let mut h = Sha256::new();
    h.update(header);
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
    /// The log file was written in another record format than this build
    /// reads (no migration: refuse rather than misread).
    #[error("log file has record format {found}, this build reads {supported}")]
    RecordFormat { found: u64, supported: u8 },
    /// The log file was left unclean by a writer that crashed: redb repairs
    /// it only on a writable open, so a read-only open refuses it.
    #[error("log file was not closed cleanly by its writer; only a writable open repairs it")]
    NeedsRepair,
    /// The file is not exactly what the issuer writes: a table or the
    /// record format missing, or something else beside them. Refused
    /// rather than read as a shorter (or empty) log.
    #[error("log file is not as the issuer writes it: {0}")]
    NotALog(String),
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

/// A record exactly as stored: the event's bytes as written, not re-encoded,
/// so that a verifier hashes what is on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    pub seq: Seq,
    pub tx: TxId,
    /// The issuer's time of the transaction (see [`Batch::at`]).
    pub at: Timestamp,
    /// Position of this record inside its batch, from 0.
    pub batch_index: u16,
    /// Number of records in its batch.
    pub batch_len: u16,
    pub prev_hash: Hash32,
    pub hash: Hash32,
    /// The event as stored: [`crate::event::EVENT_VERSION`] then postcard.
    pub event_bytes: Vec<u8>,
}

impl RawRecord {
    /// The chain hash recomputed over the stored fields and event bytes.
    pub fn recomputed_hash(&self) -> Hash32 {
        record_hash(
            &self.prev_hash,
            self.seq,
            &self.tx,
            self.at,
            self.batch_index,
            self.batch_len,
            &self.event_bytes,
        )
    }

    /// Checks the record's own hash and its place in its batch, then
    /// decodes the event (bounded and validated, see [`Event::decode`]).
    /// Linkage to the previous record and to the rest of its batch is the
    /// reader's to check ([`crate::chain::ChainVerifier`] does).
    ///
    /// The hash is not keyed, so anyone who can write the file can make it
    /// match: a position no writer makes (`batch_index >= batch_len`, or a
    /// batch that would start before seq 1) is refused here, so that no
    /// reader of decoded records computes on it (`batch_index + 1`,
    /// `seq - batch_index`).
    pub fn decode(&self) -> Result<StoredRecord, StoreError> {
        if self.recomputed_hash() != self.hash {
            return Err(StoreError::Corrupt {
                seq: self.seq,
                reason: "stored hash does not match the hash of its contents".to_string(),
            });
        }
        if self.batch_index >= self.batch_len || u64::from(self.batch_index) >= self.seq.0 {
            return Err(StoreError::Corrupt {
                seq: self.seq,
                reason: format!(
                    "batch position {} of {} is impossible at seq {}",
                    self.batch_index, self.batch_len, self.seq.0
                ),
            });
        }
        let event = Event::decode(&self.event_bytes).map_err(|source| StoreError::Decode {
            seq: self.seq,
            source,
        })?;
        Ok(StoredRecord {
            record: Record {
                seq: self.seq,
                tx: self.tx,
                at: self.at,
                batch_index: self.batch_index,
                batch_len: self.batch_len,
                event,
            },
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

/// A store that can hand out its records as stored, for verification over
/// the stored bytes (the auditor's [`crate::chain::ChainVerifier`]).
pub trait RawEventStore: EventStore {
    /// Up to `max_records` records from `from` on, in order, undecoded.
    fn read_raw(&self, from: Seq, max_records: usize) -> Result<Vec<RawRecord>, StoreError>;

    /// Like [`RawEventStore::read_raw`], into `out`, whose records' buffers
    /// a backend may reuse: a reader that hands its chunks back (the
    /// auditor's) then allocates nothing per record once warm. `out` holds
    /// exactly the records read afterwards; on error its contents are
    /// unspecified.
    fn read_raw_into(
        &self,
        from: Seq,
        max_records: usize,
        out: &mut Vec<RawRecord>,
    ) -> Result<(), StoreError> {
        *out = self.read_raw(from, max_records)?;
        Ok(())
    }
}

/// Checks a batch before it is queued or appended: not empty, at most
/// [`BATCH_EVENTS_MAX`] events, each within its limits and at most
/// [`EVENT_BYTES_MAX`] bytes once encoded. Returns the encoded events.
///
/// Group commit runs this at submission, so one bad batch is refused alone
/// and never fails (and poisons) the commit it would have shared.
pub fn encode_batch(batch: &Batch) -> Result<Vec<Vec<u8>>, StoreError> {
    if batch.events.is_empty() {
        return Err(StoreError::InvalidBatch("a batch has no events"));
    }
    if batch.events.len() > BATCH_EVENTS_MAX {
        return Err(StoreError::InvalidBatch(
            "a batch has more than BATCH_EVENTS_MAX events",
        ));
    }
    batch
        .events
        .iter()
        .map(|event| {
            event
                .validate()
                .map_err(|_| StoreError::InvalidBatch("an event violates a limit"))?;
            let bytes = event.encode();
            if bytes.len() > EVENT_BYTES_MAX {
                return Err(StoreError::InvalidBatch(
                    "an event encodes to more than EVENT_BYTES_MAX bytes",
                ));
            }
            Ok(bytes)
        })
        .collect()
}

/// Chains `batches` onto `head`: the records to store and, per batch, the
/// sequence number of its first record. Every backend appends through this,
/// so they all produce the same chain for the same batches.
pub fn chain_batches(
    head: Head,
    batches: &[Batch],
) -> Result<(Vec<RawRecord>, Vec<Seq>), StoreError> {
    let mut records = Vec::with_capacity(batches.iter().map(|b| b.events.len()).sum());
    let mut firsts = Vec::with_capacity(batches.len());
    let mut seq = head.last_seq.0;
    let mut prev_hash = head.last_hash;
    for batch in batches {
        let encoded = encode_batch(batch)?;
        // encode_batch bounds the length by BATCH_EVENTS_MAX, far below u16::MAX.
        let batch_len = u16::try_from(encoded.len()).map_err(|_| {
            StoreError::InvalidBatch("a batch has more than BATCH_EVENTS_MAX events")
        })?;
        firsts.push(Seq(seq.saturating_add(1)));
        for (index, event_bytes) in (0u16..).zip(encoded) {
            seq = seq.checked_add(1).ok_or(StoreError::InvalidBatch(
                "the log is full: seq would overflow",
            ))?;
            let hash = record_hash(
                &prev_hash,
                Seq(seq),
                &batch.tx,
                batch.at,
                index,
                batch_len,
                &event_bytes,
            );
            records.push(RawRecord {
                seq: Seq(seq),
                tx: batch.tx,
                at: batch.at,
                batch_index: index,
                batch_len,
                prev_hash,
                hash,
                event_bytes,
            });
            prev_hash = hash;
        }
    }
    Ok((records, firsts))
}

impl StoreError {
    /// A copy of this error, for reporting one failure to every batch of a
    /// failed group commit (the error itself holds an `io::Error`, not `Clone`).
    pub fn duplicate(&self) -> StoreError {
        match self {
            StoreError::Backend(msg) => StoreError::Backend(msg.clone()),
            StoreError::Io(e) => StoreError::Io(std::io::Error::new(e.kind(), e.to_string())),
            StoreError::Corrupt { seq, reason } => StoreError::Corrupt {
                seq: *seq,
                reason: reason.clone(),
            },
            StoreError::Decode { seq, source } => StoreError::Decode {
                seq: *seq,
                source: source.clone(),
            },
            StoreError::ChainBroken { seq } => StoreError::ChainBroken { seq: *seq },
            StoreError::InvalidBatch(why) => StoreError::InvalidBatch(why),
            StoreError::ReadOnly => StoreError::ReadOnly,
            StoreError::Poisoned => StoreError::Poisoned,
            StoreError::NeedsRepair => StoreError::NeedsRepair,
            StoreError::NotALog(why) => StoreError::NotALog(why.clone()),
            StoreError::RecordFormat { found, supported } => StoreError::RecordFormat {
                found: *found,
                supported: *supported,
            },
        }
    }
}

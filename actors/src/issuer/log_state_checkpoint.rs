//! The checkpoint of the state the issuer rebuilds from its log
//! ([`LogState`]: key epochs, purchases, aggregates, conservation totals):
//! `log-state.snapshot` in the issuer's directory, written atomically and
//! 0600 (`ledger::private_file::write_private`) with the log position it
//! covers (seq and chain hash of its last record), so a start replays only
//! the log past it. A snapshot that is missing, damaged (its SHA-256 does not
//! match), of another format, or of another log (the record it names is not
//! in this log with that hash) is ignored, and the state is rebuilt from the
//! whole log, which is the truth.
//!
//! File: `VCLSTAT4` (8 bytes), the postcard encoding of [`SnapshotBody`]
//! (maps as sorted lists, so equal states give equal bytes), then the
//! SHA-256 of everything before it (32 bytes).

use std::path::Path;

use ledger::{
    Amount, BalanceId, EventStore, Hash32, KeyEpoch, PurchaseId, Seq, StoreError, Totals,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::core::{EpochEnd, EpochInfo, LogState, PurchaseState};

/// The snapshot's file name in the issuer's directory.
pub const LOG_STATE_SNAPSHOT_FILE: &str = "log-state.snapshot";
/// 4: the totals carry the forfeited float, an erased epoch what it
/// forfeited (a snapshot of format 3 is ignored: the state is rebuilt from
/// the log).
const MAGIC: &[u8; 8] = b"VCLSTAT4";
const DIGEST_BYTES: usize = 32;

/// Where in the log a snapshot stands: its last record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Covers {
    pub seq: Seq,
    pub hash: Hash32,
}

impl Covers {
    /// Nothing of the log: the empty state.
    pub const NOTHING: Covers = Covers {
        seq: Seq(0),
        hash: Hash32::GENESIS,
    };
}

#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    covers: Covers,
    epochs: Vec<(KeyEpoch, EpochInfo)>,
    purchases: Vec<(PurchaseId, PurchaseState)>,
    aggregates: Vec<(BalanceId, Amount)>,
    totals: Totals,
    epoch_ends: Vec<(KeyEpoch, EpochEnd)>,
}

/// Why a snapshot cannot be used (the state is then rebuilt from the log).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a log-state snapshot (bad magic or too short)")]
    NotASnapshot,
    #[error("snapshot damaged: its digest does not match")]
    Damaged,
    #[error("snapshot does not decode: {0}")]
    Decode(#[from] postcard::Error),
    #[error("snapshot of another log: record {seq} is not the one it covers")]
    OtherLog { seq: u64 },
    #[error("log: {0}")]
    Log(#[from] StoreError),
}

/// The snapshot's bytes for `state` as of `covers`.
pub(crate) fn encode(state: &LogState, covers: Covers) -> Result<Vec<u8>, SnapshotError> {
    let mut purchases: Vec<(PurchaseId, PurchaseState)> = state
        .purchases
        .iter()
        .map(|(id, p)| (*id, p.clone()))
        .collect();
    purchases.sort_unstable_by_key(|(id, _)| *id);
    let mut aggregates: Vec<(BalanceId, Amount)> =
        state.aggregates.iter().map(|(b, a)| (*b, *a)).collect();
    aggregates.sort_unstable_by_key(|(b, _)| *b);
    let body = SnapshotBody {
        covers,
        epochs: state.epochs.iter().map(|(e, i)| (*e, *i)).collect(),
        purchases,
        aggregates,
        totals: state.totals,
        epoch_ends: state.epoch_ends.iter().map(|(e, end)| (*e, *end)).collect(),
    };
    let mut bytes = MAGIC.to_vec();
    bytes.extend(postcard::to_allocvec(&body)?);
    let digest = Sha256::digest(&bytes);
    bytes.extend_from_slice(&digest);
    Ok(bytes)
}

/// The state and position a snapshot's bytes hold, checked for damage.
pub(crate) fn decode(bytes: &[u8]) -> Result<(LogState, Covers), SnapshotError> {
    if bytes.len() < MAGIC.len() + DIGEST_BYTES || !bytes.starts_with(MAGIC) {
        return Err(SnapshotError::NotASnapshot);
    }
    let (content, digest) = bytes.split_at(bytes.len() - DIGEST_BYTES);
    if Sha256::digest(content).as_slice() != digest {
        return Err(SnapshotError::Damaged);
    }
    let body: SnapshotBody = postcard::from_bytes(&content[MAGIC.len()..])?;
    let state = LogState {
        epochs: body.epochs.into_iter().collect(),
        purchases: body.purchases.into_iter().collect(),
        aggregates: body.aggregates.into_iter().collect(),
        totals: body.totals,
        epoch_ends: body.epoch_ends.into_iter().collect(),
    };
    Ok((state, body.covers))
}

/// A digest of `state` (equal states, equal digests): tests compare the
/// state booted from a snapshot and its tail with a full replay's.
pub(crate) fn fingerprint(state: &LogState) -> Result<[u8; 32], SnapshotError> {
    Ok(Sha256::digest(encode(state, Covers::NOTHING)?).into())
}

/// Reads the snapshot at `path` and checks it belongs to `store`'s log:
/// `Ok(None)` if there is none.
pub(crate) fn read(
    path: &Path,
    store: &dyn EventStore,
) -> Result<Option<(LogState, Covers)>, SnapshotError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let (state, covers) = decode(&bytes)?;
    if covers.seq != Seq(0) {
        let found = store.read(covers.seq, 1)?;
        let same = found
            .first()
            .is_some_and(|r| r.record.seq == covers.seq && r.hash == covers.hash);
        if !same {
            return Err(SnapshotError::OtherLog { seq: covers.seq.0 });
        }
    }
    Ok(Some((state, covers)))
}

/// Replaces the snapshot at `path` atomically (0600): a crash leaves the
/// old one or the new one, never a mix.
pub(crate) fn write(path: &Path, state: &LogState, covers: Covers) -> Result<(), SnapshotError> {
    let bytes = encode(state, covers)?;
    ledger::private_file::write_private(path, &bytes)?;
    Ok(())
}

//! The auditor's checkpoint file: where the last audit stopped (seq and
//! hash of the last complete transaction) and everything needed to go on
//! from there without reading the log behind it: the replay state (unspent
//! and not-yet-erased spent coins, epochs, purchases, balances, card
//! positions, running totals) and the report counters.
//!
//! Format: the 8 bytes `VCAUDIT\0`, a format version byte
//! ([`SNAPSHOT_FORMAT_VERSION`]), the postcard encoding of
//! [`AuditSnapshot`], then SHA-256 over everything before it, so a damaged
//! file is refused rather than trusted.

use crate::constants::SNAPSHOT_BYTES_MAX;
use std::path::Path;

use ledger::{Hash32, Head, Seq};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::state::LedgerState;
use crate::stats::Stats;

/// Leading bytes of a checkpoint file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"VCAUDIT\0";
/// The format version this build writes and reads.
/// 2: the state and stats carry log time (record format 2).
/// 3: the coins in one table, each with a spent flag
/// ([`crate::coins::CoinTable`]), instead of an unspent and a spent one.
/// 5: where signed coverage ends (`signed_through`) and every transaction
/// id committed, instead of the recent record hashes (4 was never kept).
/// 6: the stats list every disclosure of an identity.
/// 7: each key epoch carries its revocation (what it still owes) and
/// erasure, and where its coins last left circulation.
/// 8: the totals carry the forfeited float, each key epoch what it forfeited.
pub const SNAPSHOT_FORMAT_VERSION: u8 = 8;

/// Why a checkpoint file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    #[error("checkpoint file i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("not an audit checkpoint file (expected it to start with VCAUDIT)")]
    NotACheckpoint,
    #[error(
        "checkpoint file format {0} is not readable by this build (it reads {SNAPSHOT_FORMAT_VERSION})"
    )]
    UnknownVersion(u8),
    #[error("checkpoint file of {0} bytes exceeds the {SNAPSHOT_BYTES_MAX}-byte limit")]
    TooLong(u64),
    #[error("checkpoint file is damaged: its digest does not match")]
    DigestMismatch,
    #[error("checkpoint file is malformed: {0}")]
    Malformed(String),
}

/// The resumable state of an audit at a transaction boundary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditSnapshot {
    /// The last record of the last complete transaction audited.
    pub seq: Seq,
    /// That record's hash: the log must still have it when the next audit
    /// resumes, or history was rewritten behind the checkpoint.
    pub hash: Hash32,
    pub state: LedgerState,
    pub stats: Stats,
    /// The last record a verified checkpoint vouched for (the checkpoint's
    /// own record): the records after it, up to `seq`, were accepted as an
    /// unsigned tail and still await a signature.
    pub signed_through: Seq,
    /// Every transaction id committed up to `seq`, sorted (rule
    /// `transaction_twice`).
    pub transactions: Vec<ledger::TxId>,
}

impl AuditSnapshot {
    pub(crate) fn new(
        head: Head,
        state: LedgerState,
        stats: Stats,
        signed_through: Seq,
        transactions: Vec<ledger::TxId>,
    ) -> AuditSnapshot {
        AuditSnapshot {
            seq: head.last_seq,
            hash: head.last_hash,
            state,
            stats,
            signed_through,
            transactions,
        }
    }

    pub fn head(&self) -> Head {
        Head {
            last_seq: self.seq,
            last_hash: self.hash,
        }
    }

    /// The file's bytes: magic, version, postcard, digest.
    pub fn encode(&self) -> Result<Vec<u8>, SnapshotError> {
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(&SNAPSHOT_MAGIC);
        out.push(SNAPSHOT_FORMAT_VERSION);
        let mut out =
            postcard::to_extend(self, out).map_err(|e| SnapshotError::Malformed(e.to_string()))?;
        let digest: [u8; 32] = Sha256::digest(&out).into();
        out.extend_from_slice(&digest);
        Ok(out)
    }

    /// Reads bytes written by [`AuditSnapshot::encode`].
    pub fn decode(bytes: &[u8]) -> Result<AuditSnapshot, SnapshotError> {
        if bytes.len() as u64 > SNAPSHOT_BYTES_MAX {
            return Err(SnapshotError::TooLong(bytes.len() as u64));
        }
        let header_len = SNAPSHOT_MAGIC.len() + 1;
        if bytes.len() < header_len + 32 || bytes[..SNAPSHOT_MAGIC.len()] != SNAPSHOT_MAGIC {
            return Err(SnapshotError::NotACheckpoint);
        }
        let version = bytes[SNAPSHOT_MAGIC.len()];
        if version != SNAPSHOT_FORMAT_VERSION {
            return Err(SnapshotError::UnknownVersion(version));
        }
        let (signed, digest) = bytes.split_at(bytes.len() - 32);
        let recomputed: [u8; 32] = Sha256::digest(signed).into();
        if recomputed[..] != *digest {
            return Err(SnapshotError::DigestMismatch);
        }
        let (snapshot, rest): (AuditSnapshot, &[u8]) =
            postcard::take_from_bytes(&signed[header_len..])
                .map_err(|e| SnapshotError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(SnapshotError::Malformed(format!(
                "{} trailing bytes",
                rest.len()
            )));
        }
        Ok(snapshot)
    }

    /// Writes the file durably: to a temporary file beside it, fsync, then
    /// rename, so a crash leaves the old checkpoint or the new one; mode
    /// 0600, like every file a party keeps.
    pub fn write_file(&self, path: &Path) -> Result<(), SnapshotError> {
        let bytes = self.encode()?;
        ledger::private_file::write_private(path, &bytes)?;
        Ok(())
    }

    pub fn read_file(path: &Path) -> Result<AuditSnapshot, SnapshotError> {
        let len = std::fs::metadata(path)?.len();
        if len > SNAPSHOT_BYTES_MAX {
            return Err(SnapshotError::TooLong(len));
        }
        AuditSnapshot::decode(&std::fs::read(path)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::{Amount, CoinBody, CoinId, KeyEpoch, Timestamp};

    fn sample() -> AuditSnapshot {
        let mut state = LedgerState::default();
        let coin = CoinBody {
            id: CoinId::from_bytes([3; 16]),
            value: Amount::from_minor(250),
            expiry: Timestamp(99),
            epoch: KeyEpoch(1),
        };
        state.coins.issue(&coin);
        state.totals.outstanding = 250;
        state.totals.real_in = 250;
        AuditSnapshot::new(
            Head {
                last_seq: Seq(7),
                last_hash: Hash32([9; 32]),
            },
            state,
            Stats::default(),
            Seq(6),
            vec![ledger::TxId::from_bytes([4; 16])],
        )
    }

    #[test]
    fn a_snapshot_survives_a_file_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.ckpt");
        let snapshot = sample();
        snapshot.write_file(&path).expect("write");
        assert_eq!(AuditSnapshot::read_file(&path).expect("read"), snapshot);
    }

    #[test]
    fn a_damaged_file_is_refused() {
        let mut bytes = sample().encode().expect("encode");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        assert!(matches!(
            AuditSnapshot::decode(&bytes),
            Err(SnapshotError::DigestMismatch)
        ));
        assert!(matches!(
            AuditSnapshot::decode(b"not a checkpoint at all, no"),
            Err(SnapshotError::NotACheckpoint)
        ));
    }

    #[test]
    fn another_version_is_refused_by_number() {
        let mut bytes = sample().encode().expect("encode");
        bytes[SNAPSHOT_MAGIC.len()] = 9;
        assert!(matches!(
            AuditSnapshot::decode(&bytes),
            Err(SnapshotError::UnknownVersion(9))
        ));
    }

    #[test]
    fn a_file_of_format_3_without_coverage_is_refused_not_misread() {
        let mut bytes = sample().encode().expect("encode");
        bytes[SNAPSHOT_MAGIC.len()] = 3;
        assert!(matches!(
            AuditSnapshot::decode(&bytes),
            Err(SnapshotError::UnknownVersion(3))
        ));
    }

    #[test]
    fn a_file_of_the_two_table_format_2_is_refused_not_misread() {
        let mut bytes = sample().encode().expect("encode");
        bytes[SNAPSHOT_MAGIC.len()] = 2;
        assert!(matches!(
            AuditSnapshot::decode(&bytes),
            Err(SnapshotError::UnknownVersion(2))
        ));
    }
}

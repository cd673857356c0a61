//! The issuer's outbox toward the user index (`index-outbox.redb` in the
//! issuer's directory): how far the index has acknowledged the log.
//!
//! The queue itself is the issuer's log, durable before any record exists:
//! every record past [`Outbox::delivered`] is still to be delivered, so
//! nothing is lost while the index is down, and a restart resumes where
//! the last acknowledgement left off. Exactly once comes from the index's
//! side: it applies record `n` only right after `n - 1`, in the same
//! transaction as its applied seq, so a record sent twice (an
//! acknowledgement lost, an outbox behind) is skipped; and its answer
//! always carries its applied seq, which the outbox then takes.

use std::path::Path;

use ledger::Seq;
use redb::{Database, ReadableDatabase, TableDefinition};

const META: TableDefinition<&str, u64> = TableDefinition::new("outbox_meta");
const DELIVERED: &str = "delivered_seq";

/// Why the outbox file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("index outbox: {0}")]
pub struct OutboxError(String);

fn storage(e: impl std::fmt::Display) -> OutboxError {
    OutboxError(e.to_string())
}

/// The delivery position, in its own redb file (0600).
pub struct Outbox {
    db: Database,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl Outbox {
    pub fn open(path: &Path) -> Result<Outbox, OutboxError> {
        ledger::private_file::ensure_private_file(path).map_err(storage)?;
        let db = Database::create(path).map_err(storage)?;
        let txn = db.begin_write().map_err(storage)?;
        txn.open_table(META).map_err(storage)?;
        txn.commit().map_err(storage)?;
        Ok(Outbox { db })
    }

    /// The last seq the index acknowledged having applied.
    pub fn delivered(&self) -> Result<Seq, OutboxError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(META).map_err(storage)?;
        Ok(Seq(table
            .get(DELIVERED)
            .map_err(storage)?
            .map(|v| v.value())
            .unwrap_or(0)))
    }

    /// Records the index's acknowledgement (durably).
    pub fn set_delivered(&self, seq: Seq) -> Result<(), OutboxError> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut table = txn.open_table(META).map_err(storage)?;
            table.insert(DELIVERED, seq.0).map_err(storage)?;
        }
        txn.commit().map_err(storage)
    }
}

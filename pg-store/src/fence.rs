//! Fencing the log's writer on PostgreSQL: [`fence`] makes a writer the
//! log's only appender by a fencing epoch that every append checks inside
//! its own transaction.
//!
//! The writer's session advisory lock (taken on open) keeps a second
//! writer out while the first one's session lives. It does not survive a
//! fail-over of the database server (advisory locks are not replicated),
//! nor an operator ending a paused writer's session so that a successor
//! may open; a writer that then reached the log by another session would
//! append beside its successor. The fence closes that:
//!
//! - `vc_log_fence (id = 1, epoch)` holds the epoch of the writer allowed
//!   to append; [`fence`] raises it by one and stores the new value in
//!   the writer's session setting `vc.fencing_epoch`.
//! - A statement trigger on `vc_log_records` runs inside every append's
//!   transaction: it reads the row `FOR SHARE` and refuses the `INSERT`
//!   unless the session's setting equals it. Once a log is fenced, every
//!   writer must carry the current epoch.
//! - `FOR SHARE` against the raise's row lock orders the two: an append
//!   that checked first commits before the raise (the successor, which
//!   reads the head after fencing, sees it); an append that checks after
//!   the raise sees the new epoch and is refused.
//!
//! A writer's session setting dies with its session, so a writer whose
//! connection was replaced carries no epoch and is refused too.
//!
//! The issuer's tables beside the log ([`crate::PostgresKv`]) are written
//! on a session of their own; [`carry_to_tables`] puts the same trigger
//! on `vc_issuer_tables` and the writer's epoch on that session, so a
//! predecessor's table writes are refused as its appends are.

use ledger::StoreError;
use postgres::Client;

use crate::{PostgresKv, PostgresStore, backend};

/// The session setting that carries a writer's fencing epoch.
pub const EPOCH_SETTING: &str = "vc.fencing_epoch";

/// The words every refusal by the fence starts with.
pub const FENCED_MESSAGE: &str = "fenced: another sequencer holds the log";

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS vc_log_fence (
    id int PRIMARY KEY CHECK (id = 1),
    epoch bigint NOT NULL CHECK (epoch > 0)
);
CREATE OR REPLACE FUNCTION vc_log_check_fence() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        current bigint;
    BEGIN
        SELECT epoch INTO current FROM vc_log_fence WHERE id = 1 FOR SHARE;
        IF current IS NOT NULL
           AND current::text IS DISTINCT FROM
               NULLIF(current_setting('vc.fencing_epoch', true), '') THEN
            RAISE EXCEPTION 'fenced: another sequencer holds the log (epoch %)', current;
        END IF;
        RETURN NULL;
    END
    $$;
CREATE OR REPLACE TRIGGER vc_log_records_fenced
    BEFORE INSERT ON vc_log_records
    FOR EACH STATEMENT EXECUTE FUNCTION vc_log_check_fence();
";

/// A writer's place in the succession of sequencers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FenceEpoch(pub u64);

/// Raises the log's fencing epoch and makes `store` (a writer: it holds
/// the writer's lock) the one that carries it; every other session's
/// appends are refused from here on. The store forgets its cached head,
/// so its next append chains from what is in the database after the
/// fence. Returns the new epoch.
pub fn fence(store: &PostgresStore) -> Result<FenceEpoch, StoreError> {
    if store.read_only {
        return Err(StoreError::ReadOnly);
    }
    let mut cached = store.lock_head();
    let epoch = store.connection.run(raise)?;
    *cached = None;
    Ok(epoch)
}

fn raise(client: &mut Client) -> Result<FenceEpoch, StoreError> {
    let mut tx = client
        .transaction()
        .map_err(|e| backend("creating the fence", e))?;
    tx.batch_execute(CREATE)
        .map_err(|e| backend("creating the fence", e))?;
    let row = tx
        .query_one(
            "INSERT INTO vc_log_fence (id, epoch) VALUES (1, 1) \
             ON CONFLICT (id) DO UPDATE SET epoch = vc_log_fence.epoch + 1 \
             RETURNING epoch",
            &[],
        )
        .map_err(|e| backend("raising the fencing epoch", e))?;
    let epoch: i64 = row
        .try_get(0)
        .map_err(|e| backend("raising the fencing epoch", e))?;
    // Session-wide (`false`): it outlives this transaction, not the session.
    tx.execute(
        "SELECT set_config($1, $2, false)",
        &[&EPOCH_SETTING, &epoch.to_string()],
    )
    .map_err(|e| backend("carrying the fencing epoch", e))?;
    tx.commit()
        .map_err(|e| backend("raising the fencing epoch", e))?;
    u64::try_from(epoch)
        .map(FenceEpoch)
        .map_err(|_| StoreError::Backend("postgres: a negative fencing epoch".to_string()))
}

/// Makes `tables` (the issuer's tables beside a log its writer fenced at
/// `epoch`) carry the epoch too: from here on a trigger refuses every
/// write to `vc_issuer_tables` from a session without the current epoch,
/// in the write's own transaction. Call after [`fence`].
pub fn carry_to_tables(tables: &PostgresKv, epoch: FenceEpoch) -> Result<(), StoreError> {
    let epoch = i64::try_from(epoch.0)
        .map_err(|_| StoreError::Backend("postgres: a fencing epoch out of range".to_string()))?;
    tables.run(move |client| {
        client
            .batch_execute(
                "CREATE OR REPLACE TRIGGER vc_issuer_tables_fenced \
                 BEFORE INSERT OR UPDATE OR DELETE ON vc_issuer_tables \
                 FOR EACH STATEMENT EXECUTE FUNCTION vc_log_check_fence()",
            )
            .map_err(|e| backend("fencing the issuer's tables", e))?;
        client
            .execute(
                "SELECT set_config($1, $2, false)",
                &[&EPOCH_SETTING, &epoch.to_string()],
            )
            .map_err(|e| backend("carrying the fencing epoch", e))?;
        Ok(())
    })
}

/// The log's current fencing epoch (`None`: never fenced).
pub fn current_epoch(client: &mut Client) -> Result<Option<FenceEpoch>, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('vc_log_fence') IS NOT NULL", &[])
        .and_then(|row| row.try_get(0))
        .map_err(|e| backend("looking for the fence", e))?;
    if !exists {
        return Ok(None);
    }
    let rows = client
        .query("SELECT epoch FROM vc_log_fence WHERE id = 1", &[])
        .map_err(|e| backend("reading the fencing epoch", e))?;
    match rows.first() {
        None => Ok(None),
        Some(row) => {
            let epoch: i64 = row
                .try_get(0)
                .map_err(|e| backend("reading the fencing epoch", e))?;
            Ok(u64::try_from(epoch).ok().map(FenceEpoch))
        }
    }
}

/// [`current_epoch`] of the log in the database `url` names.
pub fn current_epoch_at(url: &str) -> Result<Option<FenceEpoch>, StoreError> {
    let config = crate::url::parse(url)?;
    let mut client = crate::connect(&config)?;
    current_epoch(&mut client)
}

/// Whether `error` is the fence refusing an append.
pub fn is_fenced(error: &StoreError) -> bool {
    matches!(error, StoreError::Backend(text) if text.contains(FENCED_MESSAGE))
}

/// Ends every other session holding the writer's lock on this database
/// (a paused or cut-off predecessor), so that a successor may open. The
/// fence, not this, is what keeps the predecessor out afterwards: it may
/// come back on another session. Needs the right to signal the holder's
/// backend (its own role, or `pg_signal_backend`). Returns how many
/// sessions were ended.
pub fn end_other_writers(client: &mut Client) -> Result<u64, StoreError> {
    let rows = client
        .query(
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
             WHERE l.locktype = 'advisory' AND l.granted \
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND ((l.classid::bigint << 32) | l.objid::bigint) = $1 \
               AND l.pid <> pg_backend_pid()",
            &[&crate::schema::WRITER_LOCK_KEY],
        )
        .map_err(|e| backend("ending the previous writer's session", e))?;
    Ok(rows.len() as u64)
}

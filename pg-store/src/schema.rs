//! The log's tables in PostgreSQL, and what guards them.
//!
//! `vc_log_records (seq bigint primary key, record bytea)`: one row per
//! record, `record` the redb store's value bytes (format 3, see
//! `ledger/README.md`). `vc_log_meta (key text primary key, value bigint)`
//! holds `record_format = 3`; another format is refused on open, as the
//! redb store refuses it. Triggers refuse `UPDATE`, `DELETE` and
//! `TRUNCATE` on the records, even to their owner: the log only grows.
//! The role `vc_log_reader`, if it exists (`scripts/pg-cluster.sh` creates
//! it, with the login `vc_auditor` in it), is granted `SELECT` and nothing
//! else.

use ledger::StoreError;
use ledger::redb_store::RECORD_FORMAT;
use postgres::Client;

/// The channel a writer notifies after each commit, with the new last seq.
pub const NOTIFY_CHANNEL: &str = "vc_log_appended";

/// The role auditors' logins are members of: `SELECT` on the log only.
pub const READER_ROLE: &str = "vc_log_reader";

/// The session advisory lock the one writer holds ("VCLOG" in ASCII).
pub(crate) const WRITER_LOCK_KEY: i64 = 0x56_43_4c_4f_47;

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS vc_log_meta (
    key text PRIMARY KEY,
    value bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS vc_log_records (
    seq bigint PRIMARY KEY CHECK (seq > 0),
    record bytea NOT NULL
);
CREATE OR REPLACE FUNCTION vc_log_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the VarietyCash log is append-only';
    END
    $$;
CREATE OR REPLACE TRIGGER vc_log_records_append_only
    BEFORE UPDATE OR DELETE ON vc_log_records
    FOR EACH ROW EXECUTE FUNCTION vc_log_refuse_change();
CREATE OR REPLACE TRIGGER vc_log_records_no_truncate
    BEFORE TRUNCATE ON vc_log_records
    FOR EACH STATEMENT EXECUTE FUNCTION vc_log_refuse_change();
CREATE OR REPLACE TRIGGER vc_log_meta_append_only
    BEFORE UPDATE OR DELETE ON vc_log_meta
    FOR EACH ROW EXECUTE FUNCTION vc_log_refuse_change();
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'vc_log_reader') THEN
        GRANT SELECT ON vc_log_records, vc_log_meta TO vc_log_reader;
    END IF;
END
$$;
";

use crate::backend;

/// Takes the writer's session lock; `false` if another session holds it.
pub fn try_lock_writer(client: &mut Client) -> Result<bool, StoreError> {
    let row = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&WRITER_LOCK_KEY])
        .map_err(|e| backend("taking the writer's lock", e))?;
    row.try_get(0)
        .map_err(|e| backend("taking the writer's lock", e))
}

/// Creates the tables, triggers and grants if missing (one transaction),
/// then checks the record format.
pub fn create_or_check(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client
        .transaction()
        .map_err(|e| backend("creating the log's tables", e))?;
    tx.batch_execute(CREATE)
        .map_err(|e| backend("creating the log's tables", e))?;
    tx.execute(
        "INSERT INTO vc_log_meta (key, value) VALUES ('record_format', $1) \
         ON CONFLICT (key) DO NOTHING",
        &[&i64::from(RECORD_FORMAT)],
    )
    .map_err(|e| backend("writing the record format", e))?;
    tx.commit()
        .map_err(|e| backend("creating the log's tables", e))?;
    check(client)
}

/// Checks that the database holds a log of this build's record format.
pub fn check(client: &mut Client) -> Result<(), StoreError> {
    let row = client
        .query_one(
            "SELECT to_regclass('vc_log_records') IS NOT NULL, \
                    to_regclass('vc_log_meta') IS NOT NULL",
            &[],
        )
        .map_err(|e| backend("looking for the log's tables", e))?;
    let records: bool = row.try_get(0).map_err(|e| backend("the log's tables", e))?;
    let meta: bool = row.try_get(1).map_err(|e| backend("the log's tables", e))?;
    if !records || !meta {
        return Err(StoreError::NotALog(
            "the database has no vc_log_records and vc_log_meta tables (no issuer wrote it)"
                .to_string(),
        ));
    }
    let rows = client
        .query(
            "SELECT value FROM vc_log_meta WHERE key = 'record_format'",
            &[],
        )
        .map_err(|e| backend("reading the record format", e))?;
    let Some(row) = rows.first() else {
        return Err(StoreError::NotALog(
            "vc_log_meta holds no record_format".to_string(),
        ));
    };
    let found: i64 = row
        .try_get(0)
        .map_err(|e| backend("reading the record format", e))?;
    if found != i64::from(RECORD_FORMAT) {
        return Err(StoreError::RecordFormat {
            found: u64::try_from(found).unwrap_or(0),
            supported: RECORD_FORMAT,
        });
    }
    Ok(())
}

//! [`PostgresKv`]: the issuer's tables beside its log (a
//! [`ledger::KvStore`]), so that an issuer whose log is in PostgreSQL keeps
//! there what the log cannot rebuild: its participant registry and its card
//! agency's guarantees and records. A replacement issuer started on another
//! machine (after a fail-over) then needs only its keys and configuration.
//!
//! One table, `vc_issuer_tables (tbl text, key bytea, value bytea)`, primary
//! key `(tbl, key)`: the rows are what the issuer's stores give it, sealed
//! by them (ids keyed under the registry key, accounts and card records
//! sealed under keys derived from it), so the database names nobody. The
//! reader role (`vc_log_reader`) is granted nothing on it: an auditor reads
//! the log, not the registry. Once the log is fenced, a write from a
//! session that does not carry the current epoch is refused
//! ([`crate::fence::carry_to_tables`]). One write batch is one transaction; like the
//! log's appends, its `COMMIT` returns once a synchronous standby has it.

use ledger::StoreError;
use ledger::kv::{KvBatch, KvError, KvStore, prefix_end};
use postgres::Client;

use crate::connection::Connection;
use crate::{backend, connect, url};

/// The transaction lock every write batch takes, so that a batch's
/// absence checks and its writes are not interleaved with another
/// session's ("VCTAB" in ASCII).
const WRITE_LOCK_KEY: i64 = 0x56_43_54_41_42;

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS vc_issuer_tables (
    tbl text NOT NULL,
    key bytea NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (tbl, key)
);
REVOKE ALL ON vc_issuer_tables FROM PUBLIC;
";

/// The issuer's tables in a PostgreSQL database.
pub struct PostgresKv {
    connection: Connection,
}

impl std::fmt::Debug for PostgresKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresKv").finish_non_exhaustive()
    }
}

fn storage(e: StoreError) -> KvError {
    KvError::Storage(e.to_string())
}

impl PostgresKv {
    /// Connects to the database `url` names and creates the table on
    /// first use.
    pub fn open(url: &str) -> Result<PostgresKv, KvError> {
        let config = url::parse(url).map_err(storage)?;
        let (connection, ()) = Connection::open(
            "vc-pg-tables",
            move || connect(&config),
            |client: &mut Client| {
                client
                    .batch_execute(CREATE)
                    .map_err(|e| backend("creating the issuer's tables", e))
            },
        )
        .map_err(storage)?;
        Ok(PostgresKv { connection })
    }
}

impl PostgresKv {
    /// Runs `f` on this store's session (the fence sets its epoch there).
    pub(crate) fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.connection.run(f)
    }
}

impl KvStore for PostgresKv {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        let (table, key) = (table.to_owned(), key.to_vec());
        self.connection
            .run(move |client| {
                let rows = client
                    .query(
                        "SELECT value FROM vc_issuer_tables WHERE tbl = $1 AND key = $2",
                        &[&table, &key],
                    )
                    .map_err(|e| backend("reading the issuer's tables", e))?;
                rows.first()
                    .map(|row| row.try_get::<_, Vec<u8>>(0))
                    .transpose()
                    .map_err(|e| backend("reading the issuer's tables", e))
            })
            .map_err(storage)
    }

    fn scan(&self, table: &str, prefix: &[u8]) -> Result<Vec<ledger::KvRow>, KvError> {
        let (table, start, end) = (table.to_owned(), prefix.to_vec(), prefix_end(prefix));
        self.connection
            .run(move |client| {
                // bytea compares bytewise: the rows of one prefix are one range.
                let rows = match &end {
                    Some(end) => client.query(
                        "SELECT key, value FROM vc_issuer_tables \
                         WHERE tbl = $1 AND key >= $2 AND key < $3 ORDER BY key",
                        &[&table, &start, end],
                    ),
                    None => client.query(
                        "SELECT key, value FROM vc_issuer_tables \
                         WHERE tbl = $1 AND key >= $2 ORDER BY key",
                        &[&table, &start],
                    ),
                }
                .map_err(|e| backend("scanning the issuer's tables", e))?;
                rows.iter()
                    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                    .collect::<Result<Vec<_>, postgres::Error>>()
                    .map_err(|e| backend("scanning the issuer's tables", e))
            })
            .map_err(storage)
    }

    fn write(&self, batch: &KvBatch) -> Result<(), KvError> {
        let batch = batch.clone();
        self.connection
            .run(move |client| {
                let result = (|| -> Result<Result<(), KvError>, postgres::Error> {
                    let mut tx = client.transaction()?;
                    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK_KEY])?;
                    for (table, key) in &batch.absent {
                        let found = tx.query(
                            "SELECT 1 FROM vc_issuer_tables WHERE tbl = $1 AND key = $2",
                            &[table, key],
                        )?;
                        if !found.is_empty() {
                            // Dropped uncommitted: rolled back.
                            return Ok(Err(KvError::AlreadyPresent {
                                table: table.clone(),
                            }));
                        }
                    }
                    for w in &batch.writes {
                        match &w.value {
                            Some(value) => tx.execute(
                                "INSERT INTO vc_issuer_tables (tbl, key, value) VALUES ($1, $2, $3) \
                                 ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value",
                                &[&w.table, &w.key, value],
                            )?,
                            None => tx.execute(
                                "DELETE FROM vc_issuer_tables WHERE tbl = $1 AND key = $2",
                                &[&w.table, &w.key],
                            )?,
                        };
                    }
                    tx.commit()?;
                    Ok(Ok(()))
                })();
                result.map_err(|e| backend("writing the issuer's tables", e))
            })
            .map_err(storage)?
    }
}

//! The issuer's event log on PostgreSQL: [`PostgresStore`], a
//! [`ledger::EventStore`] backend for issuers whose log must outlive a
//! disk (a primary with synchronous standbys, `scripts/pg-cluster.sh`).
//!
//! The records are the redb store's, byte for byte: one row per record,
//! `(seq, record)`, where `record` is [`ledger::redb_store::encode_record_value`]
//! of the record [`ledger::store::chain_batches`] made, so the chain, the
//! hashes and the bytes an auditor verifies are the same on both backends.
//! One [`EventStore::append`] (one group commit) is one PostgreSQL
//! transaction: one multi-row `INSERT` and a `NOTIFY`, then `COMMIT`, which
//! returns once the commit is durable where the server's
//! `synchronous_commit` says (with `synchronous_standby_names`: on a
//! standby too).
//!
//! Module map: [`schema`] owns the tables, the append-only triggers and the
//! read-only role's grants; [`tables`] keeps the issuer's tables that the
//! log cannot rebuild (its registry, its card agency) beside it; [`url`] checks and describes a connection
//! string without its password; `connection` keeps each connection on a
//! thread of its own (the client cannot run inside the issuer's async
//! runtime); this file owns the cached head, the appends and the reads.
//!
//! One writer: the writable open takes a session advisory lock, so a second
//! issuer on the same database is refused while the first is connected, and
//! the primary key on `seq` refuses a fork even if two writers chained from
//! one head.

mod connection;
pub mod fence;
pub mod schema;
pub mod tables;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod url;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ledger::redb_store::{decode_record_value, encode_record_value};
use ledger::store::chain_batches;
use ledger::{
    Batch, EventStore, Hash32, Head, HeadWatch, RawEventStore, RawRecord, Seq, StoreError,
    StoredRecord, Watchable,
};
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};

use crate::connection::Connection;
pub use crate::tables::PostgresKv;

/// How often a reader's listener wakes to see whether its store was dropped.
const LISTEN_POLL_MS: u64 = 200;

/// The event log in a PostgreSQL database.
pub struct PostgresStore {
    connection: Connection,
    /// The head as this writer last committed it (`None` for a reader,
    /// and after a failed append, whose outcome is unknown: re-read
    /// before the next). Held across an append: appends run one at a time.
    head: Mutex<Option<Head>>,
    read_only: bool,
    watch: HeadWatch,
    /// Tells a reader's listener thread to stop (set on drop).
    stopping: Arc<AtomicBool>,
}

/// A client error as a [`StoreError`], with the server's message (the
/// client's own `Display` says only "db error").
pub(crate) fn backend(what: &str, e: postgres::Error) -> StoreError {
    StoreError::Backend(format!("postgres: {what}: {}", error_text(&e)))
}

/// The server's message and SQLSTATE for a database error, else the
/// client's error and its cause.
pub fn error_text(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

pub(crate) fn connect(config: &postgres::Config) -> Result<Client, StoreError> {
    config
        .connect(NoTls)
        .map_err(|e| backend(&format!("connecting to {}", url::describe(config)), e))
}

impl PostgresStore {
    /// Opens the log in the database `url` names for writing: creates the
    /// tables on first use, checks the record format, and takes the
    /// writer's lock (refused while another writer holds it).
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let config = url::parse(url)?;
        let (connection, head) = Connection::open(
            "vc-pg-writer",
            move || connect(&config),
            |client| {
                if !schema::try_lock_writer(client)? {
                    return Err(StoreError::Backend(
                        "postgres: another writer has this log open".to_string(),
                    ));
                }
                schema::create_or_check(client)?;
                read_head(client)
            },
        )?;
        let store = PostgresStore {
            connection,
            head: Mutex::new(Some(head)),
            read_only: false,
            watch: HeadWatch::default(),
            stopping: Arc::new(AtomicBool::new(false)),
        };
        store.watch.publish(head.last_seq);
        Ok(store)
    }

    /// Opens the log read-only (an auditor, with a role that may only read
    /// it): every transaction is read-only, `append` is refused, and a
    /// listener thread follows the writer's commits (LISTEN), so a
    /// [`ledger::Tail`] over this store wakes when the log grows.
    pub fn open_read_only(url: &str) -> Result<PostgresStore, StoreError> {
        let config = url::parse(url)?;
        let listener_config = config.clone();
        let (connection, head) = Connection::open(
            "vc-pg-reader",
            move || connect(&config),
            |client| {
                client
                    .batch_execute("SET default_transaction_read_only = on")
                    .map_err(|e| backend("making the session read-only", e))?;
                schema::check(client)?;
                read_head(client)
            },
        )?;
        let watch = HeadWatch::default();
        watch.publish(head.last_seq);
        let stopping = Arc::new(AtomicBool::new(false));
        spawn_listener(listener_config, watch.clone(), stopping.clone())?;
        Ok(PostgresStore {
            connection,
            head: Mutex::new(None),
            read_only: true,
            watch,
            stopping,
        })
    }

    /// The number of records in the log.
    pub fn len(&self) -> Result<u64, StoreError> {
        Ok(self.head()?.last_seq.0)
    }

    /// Whether the log holds no record.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    fn lock_head(&self) -> MutexGuard<'_, Option<Head>> {
        match self.head.lock() {
            Ok(guard) => guard,
            Err(_poisoned) => panic!("{}", ledger::sync::POISONED_LOCK),
        }
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
    }
}

/// Follows the writer's `NOTIFY` on a connection of its own (its own
/// thread) and publishes each new head to `watch` until `stopping`.
fn spawn_listener(
    config: postgres::Config,
    watch: HeadWatch,
    stopping: Arc<AtomicBool>,
) -> Result<(), StoreError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("vc-pg-listen".into())
        .spawn(move || {
            let listening = connect(&config).and_then(|mut client| {
                client
                    .batch_execute(&format!("LISTEN {}", schema::NOTIFY_CHANNEL))
                    .map_err(|e| backend("listening for appends", e))?;
                Ok(client)
            });
            let mut client = match listening {
                Ok(client) => {
                    let _ = ready_tx.send(Ok(()));
                    client
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            while !stopping.load(Ordering::SeqCst) {
                let mut notifications = client.notifications();
                let mut iter = notifications.timeout_iter(Duration::from_millis(LISTEN_POLL_MS));
                match iter.next() {
                    Ok(Some(n)) => {
                        if let Ok(seq) = n.payload().parse::<u64>() {
                            watch.publish(Seq(seq));
                        }
                    }
                    Err(e) => {
                        // A reader's tail falls back to polling (Tail
                        // re-reads the head on every wake-up interval).
                        tracing::warn!(error = %e, "postgres: the append listener stopped");
                        return;
                    }
                    Ok(None) => {}
                }
            }
        })
        .map_err(StoreError::Io)?;
    ready_rx.recv().map_err(|_| {
        StoreError::Backend("postgres: the append listener did not start".to_string())
    })?
}

/// The last record's seq and hash, its own hash checked.
fn read_head(client: &mut Client) -> Result<Head, StoreError> {
    let rows = client
        .query(
            "SELECT seq, record FROM vc_log_records ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .map_err(|e| backend("reading the head", e))?;
    let Some(row) = rows.first() else {
        return Ok(Head {
            last_seq: Seq(0),
            last_hash: Hash32::GENESIS,
        });
    };
    let record = raw_record(row)?;
    if record.recomputed_hash() != record.hash {
        return Err(StoreError::Corrupt {
            seq: record.seq,
            reason: "stored hash does not match the hash of its contents".to_string(),
        });
    }
    Ok(Head {
        last_seq: record.seq,
        last_hash: record.hash,
    })
}

fn raw_record(row: &postgres::Row) -> Result<RawRecord, StoreError> {
    let seq: i64 = row
        .try_get(0)
        .map_err(|e| backend("reading a record's seq", e))?;
    let seq = u64::try_from(seq)
        .map_err(|_| StoreError::Backend(format!("postgres: a record has seq {seq}")))?;
    let value: &[u8] = row.try_get(1).map_err(|e| backend("reading a record", e))?;
    decode_record_value(Seq(seq), value)
}

fn to_i64(seq: Seq) -> Result<i64, StoreError> {
    i64::try_from(seq.0).map_err(|_| StoreError::InvalidBatch("seq beyond PostgreSQL's bigint"))
}

impl EventStore for PostgresStore {
    fn append(&self, batches: &[Batch]) -> Result<Vec<Seq>, StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        let mut cached = self.lock_head();
        let head = match *cached {
            Some(head) => head,
            None => self.connection.run(read_head)?,
        };
        let (records, firsts) = chain_batches(head, batches)?;
        let Some(last) = records.last() else {
            return Ok(Vec::new());
        };
        let new_head = Head {
            last_seq: last.seq,
            last_hash: last.hash,
        };
        let seqs = records
            .iter()
            .map(|r| to_i64(r.seq))
            .collect::<Result<Vec<i64>, _>>()?;
        let values: Vec<Vec<u8>> = records.iter().map(encode_record_value).collect();
        // Unknown outcome from here on: a later append re-reads the head.
        *cached = None;
        self.connection.run(move |client| {
            let result = (|| {
                let mut tx = client.transaction()?;
                tx.execute(
                    "INSERT INTO vc_log_records (seq, record) \
                     SELECT * FROM unnest($1::int8[], $2::bytea[])",
                    &[&seqs, &values],
                )?;
                tx.execute(
                    "SELECT pg_notify($1, $2)",
                    &[&schema::NOTIFY_CHANNEL, &new_head.last_seq.0.to_string()],
                )?;
                tx.commit()
            })();
            match result {
                Ok(()) => Ok(()),
                Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                    Err(StoreError::Backend(format!(
                        "postgres: another writer appended after seq {}: this writer's head is stale",
                        head.last_seq.0
                    )))
                }
                Err(e) => Err(backend("appending", e)),
            }
        })?;
        *cached = Some(new_head);
        drop(cached);
        self.watch.publish(new_head.last_seq);
        Ok(firsts)
    }

    fn head(&self) -> Result<Head, StoreError> {
        match *self.lock_head() {
            Some(head) => Ok(head),
            None => self.connection.run(read_head),
        }
    }

    fn read(&self, from: Seq, max_records: usize) -> Result<Vec<StoredRecord>, StoreError> {
        self.read_raw(from, max_records)?
            .iter()
            .map(RawRecord::decode)
            .collect()
    }
}

impl RawEventStore for PostgresStore {
    fn read_raw(&self, from: Seq, max_records: usize) -> Result<Vec<RawRecord>, StoreError> {
        let from = Seq(from.0.max(1));
        if max_records == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(max_records).unwrap_or(i64::MAX);
        let Ok(from_i64) = i64::try_from(from.0) else {
            return Ok(Vec::new());
        };
        self.connection.run(move |client| {
            let rows = client
                .query(
                    "SELECT seq, record FROM vc_log_records WHERE seq >= $1 ORDER BY seq LIMIT $2",
                    &[&from_i64, &limit],
                )
                .map_err(|e| backend("reading records", e))?;
            let mut out = Vec::with_capacity(rows.len());
            let mut expected = from.0;
            for row in &rows {
                let record = raw_record(row)?;
                // A gap is a damaged table, not a shorter log.
                if record.seq.0 != expected {
                    return Err(StoreError::Corrupt {
                        seq: Seq(expected),
                        reason: format!("record missing (the next stored is {})", record.seq),
                    });
                }
                expected = expected.saturating_add(1);
                out.push(record);
            }
            Ok(out)
        })
    }
}

impl Watchable for PostgresStore {
    fn watch(&self) -> HeadWatch {
        self.watch.clone()
    }
}

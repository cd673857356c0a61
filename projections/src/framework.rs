//! The projection framework: a [`Projection`] is a pure function
//! `apply(&mut state, &record)` over its tables; [`ProjectionDb`] is the
//! storage around it: one redb file holding the projection's tables and the
//! sequence number it has applied, both written in the same transaction, so
//! a crash leaves the file at some record boundary and never half-applied.
//!
//! Data flow: at start the owner calls [`ProjectionDb::catch_up`] with the
//! log; while running it calls [`ProjectionDb::apply_records`] after each
//! durable group commit, or follows a ledger [`Tail`] with
//! [`ProjectionDb::follow`], or polls `catch_up`). Records already applied are
//! skipped, so offering the same records twice is harmless; a record past the
//! next expected one is refused as a [`ProjectionError::Gap`].
//! [`ProjectionDb::rebuild`] drops the file and replays the whole log, which
//! gives the same tables as applying incrementally (tested).
//!
//! [`ProjectionDb::open_on_backend`] puts the file on another redb storage
//! backend: crash tests give it one that dies in the middle of a commit
//! (`ledger::fault::DyingFile`), so a crash mid-batch or mid-erasure is
//! tested on this code unchanged.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ledger::{EventStore, Record, Seq, StoredRecord, Tail};
use redb::{
    Builder, Database, Durability, ReadableDatabase, ReadableTable, StorageBackend, TableDefinition,
};

use crate::constants::CATCH_UP_RECORDS_MAX;
use crate::error::ProjectionError;
use crate::state::{MemoryState, RedbReadState, RedbWriteState, StateRead, StateWrite, TableName};

/// A read model fed from the log.
///
/// `apply` must be pure: it reads and writes only `state`, and consults no
/// clock, randomness or I/O, so that replaying the log always gives the same
/// tables. It must also be all-or-nothing per call's transaction: the
/// framework drops the whole transaction when it returns an error.
pub trait Projection {
    /// Stored in the file, so that one projection's file is never opened as another's.
    const NAME: &'static str;
    /// Every table `apply` touches.
    const TABLES: &'static [TableName];
    /// The layout of the tables' keys and values. Bump it when they change:
    /// a file of another format is refused ([`ProjectionError::FormatChanged`])
    /// and rebuilt from the log ([`ProjectionDb::open_or_rebuild`]).
    const FORMAT: u32;

    fn apply(&self, state: &mut dyn StateWrite, record: &Record) -> Result<(), ProjectionError>;
}

const META: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("projection_meta");
const META_APPLIED_SEQ: &str = "applied_seq";
const META_NAME: &str = "projection";
const META_FORMAT: &str = "format";

/// A projection in its own redb file.
pub struct ProjectionDb<P: Projection> {
    db: Database,
    path: PathBuf,
    projection: P,
}

impl<P: Projection> ProjectionDb<P> {
    /// Opens the projection's file, creating it empty (applied up to `Seq(0)`) if absent.
    pub fn open(path: impl AsRef<Path>, projection: P) -> Result<ProjectionDb<P>, ProjectionError> {
        let path = path.as_ref().to_path_buf();
        // Projections hold coin serials, balances and (the user index)
        // identities: 0600 before redb opens the file.
        ledger::private_file::ensure_private_file(&path)?;
        let db = Database::create(&path)?;
        ProjectionDb::init(db, path, projection)
    }

    /// [`ProjectionDb::open`] on `backend` rather than the plain file at
    /// `path` (which [`ProjectionDb::rebuild`] still replaces): the caller
    /// opened the file under it, crash tests on a backend that dies.
    pub fn open_on_backend(
        path: impl AsRef<Path>,
        backend: Box<dyn StorageBackend>,
        projection: P,
    ) -> Result<ProjectionDb<P>, ProjectionError> {
        let path = path.as_ref().to_path_buf();
        ledger::private_file::ensure_private_file(&path)?;
        let db = Builder::new().create_with_backend(Boxed(backend))?;
        ProjectionDb::init(db, path, projection)
    }

    fn init(
        db: Database,
        path: PathBuf,
        projection: P,
    ) -> Result<ProjectionDb<P>, ProjectionError> {
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let found = meta.get(META_NAME)?.map(|v| v.value().to_vec());
            match found {
                None => {
                    meta.insert(META_NAME, P::NAME.as_bytes())?;
                    meta.insert(META_FORMAT, &P::FORMAT.to_be_bytes()[..])?;
                    meta.insert(META_APPLIED_SEQ, &0u64.to_be_bytes()[..])?;
                }
                Some(name) if name == P::NAME.as_bytes() => {
                    let format = meta
                        .get(META_FORMAT)?
                        .and_then(|v| <[u8; 4]>::try_from(v.value()).ok())
                        .map_or(0, u32::from_be_bytes);
                    if format != P::FORMAT {
                        return Err(ProjectionError::FormatChanged {
                            projection: P::NAME,
                            found: format,
                            expected: P::FORMAT,
                        });
                    }
                }
                Some(name) => {
                    return Err(ProjectionError::WrongProjection {
                        expected: P::NAME,
                        found: String::from_utf8_lossy(&name).into_owned(),
                    });
                }
            }
            RedbWriteState::open(&txn, P::TABLES)?;
        }
        txn.commit()?;
        Ok(ProjectionDb {
            db,
            path,
            projection,
        })
    }

    /// Opens the file and catches up; if the file is of an older format,
    /// rebuilds it from the log instead.
    pub fn open_or_rebuild(
        path: impl AsRef<Path>,
        make: impl Fn() -> P,
        log: &dyn EventStore,
    ) -> Result<ProjectionDb<P>, ProjectionError> {
        match ProjectionDb::open(path.as_ref(), make()) {
            Ok(db) => {
                db.catch_up(log)?;
                Ok(db)
            }
            Err(ProjectionError::FormatChanged {
                found, expected, ..
            }) => {
                tracing::warn!(
                    projection = P::NAME,
                    found,
                    expected,
                    "projection file of another format: rebuilding from the log"
                );
                ProjectionDb::rebuild(path, make(), log)
            }
            Err(other) => Err(other),
        }
    }

    /// Deletes the file at `path` if any, then replays the whole log into a new one.
    pub fn rebuild(
        path: impl AsRef<Path>,
        projection: P,
        log: &dyn EventStore,
    ) -> Result<ProjectionDb<P>, ProjectionError> {
        match std::fs::remove_file(path.as_ref()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let db = ProjectionDb::open(path, projection)?;
        db.catch_up(log)?;
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn projection(&self) -> &P {
        &self.projection
    }

    /// The sequence number of the last record applied (`Seq(0)`: none).
    pub fn applied_seq(&self) -> Result<Seq, ProjectionError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        read_seq(meta.get(META_APPLIED_SEQ)?.map(|v| v.value().to_vec()))
    }

    /// Applies the records not yet applied, in one durable transaction
    /// together with the new applied sequence number; returns it. Records
    /// at or below the applied sequence number are skipped.
    pub fn apply_records(&self, records: &[StoredRecord]) -> Result<Seq, ProjectionError> {
        self.apply_iter(records.iter().map(|r| &r.record))
    }

    /// Like [`ProjectionDb::apply_records`], over bare records.
    pub fn apply_iter<'a>(
        &self,
        records: impl IntoIterator<Item = &'a Record>,
    ) -> Result<Seq, ProjectionError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)
            .map_err(redb::Error::from)?;
        let applied_before;
        let mut applied;
        {
            let mut meta = txn.open_table(META)?;
            applied_before = read_seq(meta.get(META_APPLIED_SEQ)?.map(|v| v.value().to_vec()))?;
            applied = applied_before;
            let mut redb_state = RedbWriteState::open(&txn, P::TABLES)?;
            let state: &mut dyn StateWrite = &mut redb_state;
            for record in records {
                if record.seq <= applied {
                    continue;
                }
                if record.seq.0 != applied.0 + 1 {
                    return Err(ProjectionError::Gap {
                        applied,
                        offered: record.seq,
                    });
                }
                self.projection.apply(state, record)?;
                applied = record.seq;
            }
            if applied != applied_before {
                meta.insert(META_APPLIED_SEQ, &applied.0.to_be_bytes()[..])?;
            }
        }
        if applied == applied_before {
            // Nothing new: no commit, no fsync.
            txn.abort()?;
        } else {
            txn.commit()?;
            tracing::debug!(projection = P::NAME, applied = applied.0, "applied records");
        }
        Ok(applied)
    }

    /// Reads the log from the record after the applied one to its head,
    /// applying [`CATCH_UP_RECORDS_MAX`] records per durable transaction;
    /// returns the sequence number reached. Also the way to follow the tail
    /// by polling.
    ///
    /// Every chunk is fsync'd: committing all but the last with
    /// `Durability::None` was tried and measured no faster here, while redb
    /// cannot reuse the pages such commits free until a durable one, which
    /// doubled the file (1088 MiB instead of 544 MiB at two million coins).
    pub fn catch_up(&self, log: &dyn EventStore) -> Result<Seq, ProjectionError> {
        let mut applied = self.applied_seq()?;
        loop {
            let records = log.read(Seq(applied.0 + 1), CATCH_UP_RECORDS_MAX)?;
            if records.is_empty() {
                return Ok(applied);
            }
            applied = self.apply_records(&records)?;
        }
    }

    /// Where a [`Tail`] following the log for this projection starts: the
    /// record after the applied one.
    pub fn tail_start(&self) -> Result<Seq, ProjectionError> {
        Ok(Seq(self.applied_seq()?.0 + 1))
    }

    /// Waits up to `timeout` for records the tail has not returned yet and
    /// applies them (the tail checks they chain to the ones before); returns
    /// the applied sequence number. Build the tail at [`Self::tail_start`].
    pub fn follow<S: EventStore>(
        &self,
        tail: &mut Tail<S>,
        timeout: Duration,
    ) -> Result<Seq, ProjectionError> {
        let records = tail.next_records(CATCH_UP_RECORDS_MAX, timeout)?;
        if records.is_empty() {
            return self.applied_seq();
        }
        self.apply_records(&records)
    }

    /// Runs `query` over a consistent snapshot of the tables.
    pub fn read<T>(
        &self,
        query: impl FnOnce(&dyn StateRead) -> Result<T, ProjectionError>,
    ) -> Result<T, ProjectionError> {
        let txn = self.db.begin_read()?;
        let state = RedbReadState::open(&txn, P::TABLES)?;
        query(&state)
    }

    /// Every entry of the projection's tables (not the applied sequence
    /// number), for comparing with a rebuild.
    pub fn snapshot(&self) -> Result<MemoryState, ProjectionError> {
        self.read(|state| crate::state::snapshot(state, P::TABLES))
    }

    /// Gives the file's free pages back to the file system (after an erasure).
    pub fn compact(&mut self) -> Result<bool, ProjectionError> {
        Ok(self.db.compact()?)
    }

    /// The size of the file on disk, in bytes.
    pub fn file_size_bytes(&self) -> Result<u64, ProjectionError> {
        Ok(std::fs::metadata(&self.path)?.len())
    }
}

fn read_seq(bytes: Option<Vec<u8>>) -> Result<Seq, ProjectionError> {
    let corrupt = ProjectionError::Corrupt {
        table: "projection_meta",
        reason: "applied sequence number is not 8 bytes",
    };
    let bytes = bytes.ok_or(ProjectionError::Corrupt {
        table: "projection_meta",
        reason: "applied sequence number is missing",
    })?;
    let arr: [u8; 8] = bytes.as_slice().try_into().map_err(|_| corrupt)?;
    Ok(Seq(u64::from_be_bytes(arr)))
}

/// Replays the log into memory up to and including `upto` (the whole log if
/// `None`): the projection as of that sequence number, without touching its
/// file. Returns the state and the sequence number reached.
pub fn replay_in_memory<P: Projection>(
    projection: &P,
    log: &dyn EventStore,
    upto: Option<Seq>,
) -> Result<(MemoryState, Seq), ProjectionError> {
    let mut state = MemoryState::new(P::TABLES);
    let mut applied = Seq(0);
    loop {
        let records = log.read(Seq(applied.0 + 1), CATCH_UP_RECORDS_MAX)?;
        if records.is_empty() {
            return Ok((state, applied));
        }
        for stored in &records {
            let record = &stored.record;
            if upto.is_some_and(|u| record.seq > u) {
                return Ok((state, applied));
            }
            if record.seq.0 != applied.0 + 1 {
                return Err(ProjectionError::Gap {
                    applied,
                    offered: record.seq,
                });
            }
            projection.apply(&mut state, record)?;
            applied = record.seq;
        }
    }
}

/// A boxed backend, as redb's builder takes one by value.
#[derive(Debug)]
struct Boxed(Box<dyn StorageBackend>);

impl StorageBackend for Boxed {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.0.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.0.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.0.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.0.write(offset, data)
    }
    fn close(&self) -> Result<(), std::io::Error> {
        self.0.close()
    }
    fn try_lock_range(
        &self,
        s: std::ops::Bound<u64>,
        e: std::ops::Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        self.0.try_lock_range(s, e)
    }
    fn try_lock_shared_range(
        &self,
        s: std::ops::Bound<u64>,
        e: std::ops::Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        self.0.try_lock_shared_range(s, e)
    }
    fn lock_range(
        &self,
        s: std::ops::Bound<u64>,
        e: std::ops::Bound<u64>,
    ) -> Result<(), redb::BackendError> {
        self.0.lock_range(s, e)
    }
    fn lock_shared_range(
        &self,
        s: std::ops::Bound<u64>,
        e: std::ops::Bound<u64>,
    ) -> Result<(), redb::BackendError> {
        self.0.lock_shared_range(s, e)
    }
    fn unlock_range(
        &self,
        s: std::ops::Bound<u64>,
        e: std::ops::Bound<u64>,
    ) -> Result<(), redb::BackendError> {
        self.0.unlock_range(s, e)
    }
    fn query_lock_range(
        &self,
        s: std::ops::Bound<u64>,
        e: std::ops::Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        self.0.query_lock_range(s, e)
    }
}

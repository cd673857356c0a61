//! [`RedbStore`]: the log in one redb file, the embedded default backend.
//!
//! Layout: table `vc_log_records` maps `seq: u64` to the record value below;
//! table `vc_log_meta` holds `record_format = 3`, so a redb file of someone
//! else's, or of an older format (1: records without time; 2: card loads
//! without their guarantee time), is refused rather than misread. The record value (little-endian):
//!
//! | bytes   | field                                        |
//! |---------|----------------------------------------------|
//! | 0       | record format (`3`)                          |
//! | 1..33   | `prev_hash`                                  |
//! | 33..65  | `hash`                                       |
//! | 65..81  | `tx`                                         |
//! | 81..89  | `at` (u64, seconds since the Unix epoch)     |
//! | 89..91  | `batch_index` (u16)                          |
//! | 91..93  | `batch_len` (u16)                            |
//! | 93..    | event bytes, exactly as hashed               |
//!
//! Every append is one write transaction with [`redb::Durability::Immediate`]:
//! `append` returns after fsync. Readers of the same process see a commit as
//! soon as it is durable and are woken through a [`HeadWatch`]. Another
//! process (an auditor tailing a live log) opens the file with
//! [`RedbStore::open_read_only`] when the writer was opened with
//! [`Sharing::FollowableByReaders`] (redb's `ConcurrencyMode::SingleWriter`),
//! and polls [`EventStore::head`].

use std::path::Path;

use redb::{
    Builder, ConcurrencyMode, Database, Durability, ReadOnlyDatabase, ReadTransaction,
    ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableError,
    TableHandle,
};
use tracing::{debug, error};

use crate::constants::EVENT_BYTES_MAX;
use crate::ids::{Timestamp, TxId};
use crate::store::{
    Batch, EventStore, Hash32, Head, RawEventStore, RawRecord, Seq, StoreError, StoredRecord,
    chain_batches,
};
use crate::tail::{HeadWatch, Watchable};

const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("vc_log_records");
const META: TableDefinition<&str, u64> = TableDefinition::new("vc_log_meta");
const META_RECORD_FORMAT: &str = "record_format";

/// The record format this code writes and reads. Format 2 added the
/// transaction's time (`at`); format 3 the time a card load was guaranteed
/// (`CardLoaded::guaranteed_at`). Older formats are refused.
pub const RECORD_FORMAT: u8 = 3;
/// Bytes of a record value before the event bytes.
pub const RECORD_HEADER_BYTES: usize = 1 + 32 + 32 + 16 + 8 + 2 + 2;

/// Who may share the file while this process writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sharing {
    /// Other processes may open the file read-only and follow the commits
    /// (redb `ConcurrencyMode::SingleWriter`: every commit is two-phase, two
    /// fsyncs). What a live audit needs.
    #[default]
    FollowableByReaders,
    /// The writer locks the whole file (redb `ConcurrencyMode::ExclusiveWriter`):
    /// one fsync per commit; auditors read a copy or wait for the writer to close.
    Exclusive,
}

impl Sharing {
    fn mode(self) -> ConcurrencyMode {
        match self {
            Sharing::FollowableByReaders => ConcurrencyMode::SingleWriter,
            Sharing::Exclusive => ConcurrencyMode::ExclusiveWriter,
        }
    }
}

/// How to open a writable [`RedbStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedbOptions {
    pub sharing: Sharing,
    /// Verify every page checksum when opening (redb's integrity check), so a
    /// file altered on disk is refused with an error rather than trusted.
    /// Reads the whole file: on by default, startup is rare.
    pub verify_integrity_on_open: bool,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            sharing: Sharing::default(),
            verify_integrity_on_open: true,
        }
    }
}

enum Handle {
    Writer(Database),
    Reader(ReadOnlyDatabase),
}

/// The event log in one redb file. See the module docs for the format.
pub struct RedbStore {
    handle: Handle,
    watch: HeadWatch,
}

fn redb_error(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("redb {what}: {e}"))
}

impl RedbStore {
    /// Opens (creating if missing) the log at `path` for writing, with the
    /// default [`RedbOptions`].
    pub fn open(path: impl AsRef<Path>) -> Result<RedbStore, StoreError> {
        RedbStore::open_with(path, RedbOptions::default())
    }

    /// Opens (creating if missing) the log at `path` for writing.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: RedbOptions,
    ) -> Result<RedbStore, StoreError> {
        let mut builder = Builder::new();
        builder
            .set_concurrency_mode(options.sharing.mode())
            .set_check_integrity_on_open(options.verify_integrity_on_open);
        // The log holds every sealed identity and bank account: 0600 before
        // redb opens it, whatever the umask.
        crate::private_file::ensure_private_file(path.as_ref())?;
        let db = builder
            .create(path.as_ref())
            .map_err(|e| redb_error("open", e))?;
        RedbStore::init_writer(db)
    }

    /// Checks or writes the record format and makes sure the records table exists.
    fn init_writer(db: Database) -> Result<RedbStore, StoreError> {
        let txn = db.begin_write().map_err(|e| redb_error("begin", e))?;
        {
            let mut meta = txn
                .open_table(META)
                .map_err(|e| redb_error("meta table", e))?;
            let found = meta
                .get(META_RECORD_FORMAT)
                .map_err(|e| redb_error("meta read", e))?
                .map(|v| v.value());
            match found {
                Some(format) if format == u64::from(RECORD_FORMAT) => {}
                Some(found) => {
                    return Err(StoreError::RecordFormat {
                        found,
                        supported: RECORD_FORMAT,
                    });
                }
                None => {
                    meta.insert(META_RECORD_FORMAT, u64::from(RECORD_FORMAT))
                        .map_err(|e| redb_error("meta write", e))?;
                }
            }
            txn.open_table(RECORDS)
                .map_err(|e| redb_error("records table", e))?;
        }
        txn.commit().map_err(|e| redb_error("commit", e))?;
        let store = RedbStore {
            handle: Handle::Writer(db),
            watch: HeadWatch::default(),
        };
        let head = store.head()?;
        store.watch.publish(head.last_seq);
        debug!(last_seq = head.last_seq.0, "opened event log for writing");
        Ok(store)
    }

    /// Opens (creating if empty) the log on a redb storage backend other
    /// than a plain file: for fault injection in tests (a backend whose
    /// fsync fails), or storage redb does not ship.
    pub fn open_on_backend(
        backend: impl redb::StorageBackend,
        options: RedbOptions,
    ) -> Result<RedbStore, StoreError> {
        let mut builder = Builder::new();
        builder
            .set_concurrency_mode(options.sharing.mode())
            .set_check_integrity_on_open(options.verify_integrity_on_open);
        let db = builder
            .create_with_backend(backend)
            .map_err(|e| redb_error("open", e))?;
        RedbStore::init_writer(db)
    }

    /// Opens the log at `path` read-only. While a writer has it open, this
    /// works only if the writer chose [`Sharing::FollowableByReaders`] and
    /// `writer_sharing` says the same; each read then sees the writer's latest
    /// durable commit. [`EventStore::append`] returns [`StoreError::ReadOnly`].
    ///
    /// A file left unclean by a crashed writer is refused with
    /// [`StoreError::NeedsRepair`] until a writable open has repaired it
    /// (see [`RedbStore::repaired_copy`] for readers who must not write it).
    pub fn open_read_only(
        path: impl AsRef<Path>,
        writer_sharing: Sharing,
    ) -> Result<RedbStore, StoreError> {
        let db = Builder::new()
            .set_concurrency_mode(writer_sharing.mode())
            .open_read_only(path.as_ref())
            .map_err(|e| match e {
                redb::DatabaseError::RepairAborted => StoreError::NeedsRepair,
                e => redb_error("open read-only", e),
            })?;
        let store = RedbStore {
            handle: Handle::Reader(db),
            watch: HeadWatch::default(),
        };
        store.check_layout()?;
        let head = store.head()?;
        store.watch.publish(head.last_seq);
        Ok(store)
    }

    /// Opens the log at `path` for reading through redb's integrity check
    /// (every page checksum verified, and a file a crashed writer left
    /// unclean repaired) without writing the file: redb's check needs a
    /// writable open, so its writes go to memory, over the file read-only
    /// (a copy-on-write view, not a copy on disk). A file that fails the
    /// check, or is not exactly what a writer leaves (see
    /// [`RedbStore::open_read_only`]), is refused. Not for a live log: the
    /// view takes the file's lock like a writer.
    pub fn open_verified(path: impl AsRef<Path>) -> Result<RedbStore, StoreError> {
        let file = std::fs::File::open(path.as_ref())?;
        let base_len = file.metadata()?.len();
        let backend = CopyOnWrite {
            base_len,
            len: std::sync::Mutex::new(base_len),
            base: redb::backends::FileBackend::new(file)
                .map_err(|e| redb_error("open for the integrity check", e))?,
            written: std::sync::Mutex::new(Vec::new()),
        };
        let db = Builder::new()
            .set_concurrency_mode(ConcurrencyMode::ExclusiveWriter)
            .set_check_integrity_on_open(true)
            .create_with_backend(backend)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Backend(
                    "the log is open by its writer: its integrity is checked on a closed file"
                        .to_string(),
                ),
                e => StoreError::NotALog(format!("redb's integrity check refused it: {e}")),
            })?;
        let store = RedbStore {
            handle: Handle::Writer(db),
            watch: HeadWatch::default(),
        };
        store.check_layout()?;
        let head = store.head()?;
        store.watch.publish(head.last_seq);
        Ok(store)
    }

    /// Copies the log at `from` to `to` and repairs the copy with a
    /// writable open, leaving `from` untouched: how an auditor reads a log a
    /// crashed writer left unclean without writing the evidence. The repair
    /// keeps every committed (durable) transaction; the format check of a
    /// writable open applies to the copy.
    pub fn repaired_copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> Result<(), StoreError> {
        crate::private_file::copy_private(from.as_ref(), to.as_ref())?;
        let repaired = RedbStore::open(to.as_ref())?;
        drop(repaired);
        Ok(())
    }

    fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        match &self.handle {
            Handle::Writer(db) => db.begin_read(),
            Handle::Reader(db) => db.begin_read(),
        }
        .map_err(|e| redb_error("begin read", e))
    }

    /// A reader accepts only what a writer leaves: the two tables and
    /// nothing else, the meta table holding exactly the record format this
    /// build reads. A missing or damaged table is refused, never read as
    /// an empty log.
    fn check_layout(&self) -> Result<(), StoreError> {
        let not_a_log = |why: String| StoreError::NotALog(why);
        let txn = self.begin_read()?;
        let meta = txn
            .open_table(META)
            .map_err(|e| not_a_log(format!("its meta table cannot be opened: {e}")))?;
        let mut entries = Vec::new();
        for entry in meta
            .iter()
            .map_err(|e| not_a_log(format!("its meta table cannot be read: {e}")))?
        {
            let (key, value) =
                entry.map_err(|e| not_a_log(format!("its meta table cannot be read: {e}")))?;
            entries.push((key.value().to_string(), value.value()));
        }
        // Another format first: that is a log, only not one this build reads.
        if let Some((_, found)) = entries.iter().find(|(k, _)| k == META_RECORD_FORMAT)
            && *found != u64::from(RECORD_FORMAT)
        {
            return Err(StoreError::RecordFormat {
                found: *found,
                supported: RECORD_FORMAT,
            });
        }
        if !matches!(entries.as_slice(), [(key, _)] if key == META_RECORD_FORMAT) {
            return Err(not_a_log(format!(
                "its meta table must hold only {META_RECORD_FORMAT}, it holds {} entries",
                entries.len()
            )));
        }
        let mut names: Vec<String> = txn
            .list_tables()
            .map_err(|e| not_a_log(format!("its tables cannot be listed: {e}")))?
            .map(|t| t.name().to_string())
            .collect();
        names.sort();
        let expected = [META.name(), RECORDS.name()];
        if names != expected {
            return Err(not_a_log(format!(
                "expected exactly the tables {expected:?}, found {names:?}"
            )));
        }
        txn.open_table(RECORDS)
            .map_err(|e| not_a_log(format!("its records table cannot be opened: {e}")))?;
        Ok(())
    }

    /// Number of records, as redb counts them (a cross-check of `head`).
    pub fn len(&self) -> Result<u64, StoreError> {
        let txn = self.begin_read()?;
        match txn.open_table(RECORDS) {
            Ok(t) => t.len().map_err(|e| redb_error("len", e)),
            Err(TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(redb_error("records table", e)),
        }
    }

    /// Whether the log has no record.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }
}

/// A file read as it is, with writes kept in memory: what
/// [`RedbStore::open_verified`] opens redb's writable database on.
#[derive(Debug)]
struct CopyOnWrite {
    base: redb::backends::FileBackend,
    /// The file's length when opened (nobody writes it meanwhile: the
    /// view holds its lock).
    base_len: u64,
    len: std::sync::Mutex<u64>,
    /// Writes in the order made: a later one covers an earlier one.
    written: std::sync::Mutex<Vec<(u64, Vec<u8>)>>,
}

fn lock_of<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().expect(crate::sync::POISONED_LOCK)
}

impl redb::StorageBackend for CopyOnWrite {
    fn len(&self) -> Result<u64, std::io::Error> {
        Ok(*lock_of(&self.len))
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let end = offset.saturating_add(out.len() as u64);
        if end > *lock_of(&self.len) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "read past the end of the view",
            ));
        }
        let from_base = usize::try_from(self.base_len.min(end).saturating_sub(offset))
            .unwrap_or(out.len())
            .min(out.len());
        if from_base > 0 {
            self.base.read(offset, &mut out[..from_base])?;
        }
        out[from_base..].fill(0);
        let written = lock_of(&self.written);
        for (at, data) in written.iter() {
            let from = offset.max(*at);
            let to = end.min(at.saturating_add(data.len() as u64));
            if from < to {
                let (o, d) = ((from - offset) as usize, (from - at) as usize);
                let n = (to - from) as usize;
                out[o..o + n].copy_from_slice(&data[d..d + n]);
            }
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        *lock_of(&self.len) = len;
        Ok(())
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        let mut len = lock_of(&self.len);
        *len = (*len).max(offset.saturating_add(data.len() as u64));
        lock_of(&self.written).push((offset, data.to_vec()));
        Ok(())
    }

    fn close(&self) -> Result<(), std::io::Error> {
        self.base.close()
    }

    // The file is only read (the writes stay in memory), so the locks redb
    // takes as a writer are shared ones on the file: a writer of its own
    // still cannot take it meanwhile (and a read-only descriptor can hold
    // no exclusive lock).
    fn try_lock_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        self.base.try_lock_shared_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        self.base.try_lock_shared_range(start, end)
    }

    fn lock_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<(), redb::BackendError> {
        self.base.lock_shared_range(start, end)
    }

    fn lock_shared_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<(), redb::BackendError> {
        self.base.lock_shared_range(start, end)
    }

    fn unlock_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<(), redb::BackendError> {
        self.base.unlock_range(start, end)
    }

    fn query_lock_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        self.base.query_lock_range(start, end)
    }
}

/// Encodes a record as the value stored under its seq.
pub fn encode_record_value(record: &RawRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_HEADER_BYTES + record.event_bytes.len());
    out.push(RECORD_FORMAT);
    out.extend_from_slice(&record.prev_hash.0);
    out.extend_from_slice(&record.hash.0);
    out.extend_from_slice(record.tx.as_bytes());
    out.extend_from_slice(&record.at.0.to_le_bytes());
    out.extend_from_slice(&record.batch_index.to_le_bytes());
    out.extend_from_slice(&record.batch_len.to_le_bytes());
    out.extend_from_slice(&record.event_bytes);
    out
}

/// Decodes the value stored under `seq`; bounded, never panics.
pub fn decode_record_value(seq: Seq, value: &[u8]) -> Result<RawRecord, StoreError> {
    let mut record = RawRecord {
        seq,
        tx: TxId::from_bytes([0; TxId::LEN]),
        at: Timestamp(0),
        batch_index: 0,
        batch_len: 0,
        prev_hash: Hash32::GENESIS,
        hash: Hash32::GENESIS,
        event_bytes: Vec::with_capacity(value.len().saturating_sub(RECORD_HEADER_BYTES)),
    };
    decode_record_value_into(seq, value, &mut record)?;
    Ok(record)
}

/// [`decode_record_value`] into `record`, reusing its event buffer. On
/// error `record` is unchanged.
pub fn decode_record_value_into(
    seq: Seq,
    value: &[u8],
    record: &mut RawRecord,
) -> Result<(), StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { seq, reason };
    if value.len() < RECORD_HEADER_BYTES {
        return Err(corrupt(format!(
            "record of {} bytes is shorter than its {RECORD_HEADER_BYTES}-byte header",
            value.len()
        )));
    }
    if value.len() > RECORD_HEADER_BYTES + EVENT_BYTES_MAX {
        return Err(corrupt(format!(
            "record of {} bytes exceeds the limit",
            value.len()
        )));
    }
    let (header, event_bytes) = value.split_at(RECORD_HEADER_BYTES);
    if header[0] != RECORD_FORMAT {
        return Err(corrupt(format!("unknown record format {}", header[0])));
    }
    let array32 = |at: usize| {
        let mut out = [0u8; 32];
        out.copy_from_slice(&header[at..at + 32]);
        out
    };
    let mut tx = [0u8; TxId::LEN];
    tx.copy_from_slice(&header[65..81]);
    let mut at = [0u8; 8];
    at.copy_from_slice(&header[81..89]);
    record.seq = seq;
    record.prev_hash = Hash32(array32(1));
    record.hash = Hash32(array32(33));
    record.tx = TxId::from_bytes(tx);
    record.at = Timestamp(u64::from_le_bytes(at));
    record.batch_index = u16::from_le_bytes([header[89], header[90]]);
    record.batch_len = u16::from_le_bytes([header[91], header[92]]);
    record.event_bytes.clear();
    record.event_bytes.extend_from_slice(event_bytes);
    Ok(())
}

fn head_of(table: &impl ReadableTable<u64, &'static [u8]>) -> Result<Head, StoreError> {
    match table.last().map_err(|e| redb_error("last", e))? {
        None => Ok(Head {
            last_seq: Seq(0),
            last_hash: Hash32::GENESIS,
        }),
        Some((key, value)) => {
            let seq = Seq(key.value());
            let record = decode_record_value(seq, value.value())?;
            Ok(Head {
                last_seq: seq,
                last_hash: record.hash,
            })
        }
    }
}

impl EventStore for RedbStore {
    fn append(&self, batches: &[Batch]) -> Result<Vec<Seq>, StoreError> {
        let Handle::Writer(db) = &self.handle else {
            return Err(StoreError::ReadOnly);
        };
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        let mut txn = db.begin_write().map_err(|e| redb_error("begin write", e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| redb_error("durability", e))?;
        let (firsts, last_seq) = {
            let mut table = txn
                .open_table(RECORDS)
                .map_err(|e| redb_error("records table", e))?;
            let head = head_of(&table)?;
            let (records, firsts) = chain_batches(head, batches)?;
            for record in &records {
                table
                    .insert(record.seq.0, encode_record_value(record).as_slice())
                    .map_err(|e| redb_error("insert", e))?;
            }
            let last_seq = records.last().map_or(head.last_seq, |r| r.seq);
            (firsts, last_seq)
        };
        // Dropping an uncommitted transaction aborts it: a failed batch leaves nothing.
        txn.commit().map_err(|e| {
            error!(error = %e, "event log commit failed");
            redb_error("commit", e)
        })?;
        self.watch.publish(last_seq);
        Ok(firsts)
    }

    fn head(&self) -> Result<Head, StoreError> {
        let txn = self.begin_read()?;
        match txn.open_table(RECORDS) {
            Ok(table) => head_of(&table),
            Err(TableError::TableDoesNotExist(_)) => Ok(Head {
                last_seq: Seq(0),
                last_hash: Hash32::GENESIS,
            }),
            Err(e) => Err(redb_error("records table", e)),
        }
    }

    fn read(&self, from: Seq, max_records: usize) -> Result<Vec<StoredRecord>, StoreError> {
        self.read_raw(from, max_records)?
            .iter()
            .map(RawRecord::decode)
            .collect()
    }
}

impl RawEventStore for RedbStore {
    fn read_raw(&self, from: Seq, max_records: usize) -> Result<Vec<RawRecord>, StoreError> {
        let mut out = Vec::with_capacity(max_records.min(4096));
        self.read_raw_into(from, max_records, &mut out)?;
        Ok(out)
    }

    fn read_raw_into(
        &self,
        from: Seq,
        max_records: usize,
        out: &mut Vec<RawRecord>,
    ) -> Result<(), StoreError> {
        let txn = self.begin_read()?;
        let table = match txn.open_table(RECORDS) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => {
                out.clear();
                return Ok(());
            }
            Err(e) => return Err(redb_error("records table", e)),
        };
        let start = from.0.max(1);
        let entries = table
            .range(start..)
            .map_err(|e| redb_error("range", e))?
            .take(max_records);
        let mut expected = start;
        let mut n = 0;
        for entry in entries {
            let (key, value) = entry.map_err(|e| redb_error("range", e))?;
            let seq = Seq(key.value());
            if seq.0 != expected {
                return Err(StoreError::Corrupt {
                    seq: Seq(expected),
                    reason: format!("record missing: next stored record is {seq}"),
                });
            }
            // Overwrite the records already in `out`, event buffers and all.
            match out.get_mut(n) {
                Some(slot) => decode_record_value_into(seq, value.value(), slot)?,
                None => out.push(decode_record_value(seq, value.value())?),
            }
            n += 1;
            expected = expected.saturating_add(1);
        }
        out.truncate(n);
        Ok(())
    }
}

impl Watchable for RedbStore {
    fn watch(&self) -> HeadWatch {
        self.watch.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_record() -> RawRecord {
        RawRecord {
            seq: Seq(7),
            tx: TxId::from_bytes([3; 16]),
            at: Timestamp(0x0102_0304_0506_0708),
            batch_index: 1,
            batch_len: 2,
            prev_hash: Hash32([1; 32]),
            hash: Hash32([2; 32]),
            event_bytes: vec![1, 2, 3, 4],
        }
    }

    #[test]
    fn record_values_round_trip_with_the_documented_layout() {
        let record = sample_record();
        let value = encode_record_value(&record);
        assert_eq!(value.len(), RECORD_HEADER_BYTES + 4);
        assert_eq!(value[0], RECORD_FORMAT);
        assert_eq!(&value[65..81], record.tx.as_bytes());
        assert_eq!(&value[81..89], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&value[89..93], &[1, 0, 2, 0]);
        assert_eq!(
            decode_record_value(Seq(7), &value).expect("decodes"),
            record
        );
    }

    #[test]
    fn malformed_values_are_corrupt_records_naming_their_seq() {
        let value = encode_record_value(&sample_record());
        let corrupt_at = |bytes: &[u8]| match decode_record_value(Seq(7), bytes) {
            Err(StoreError::Corrupt { seq, .. }) => seq,
            other => panic!("expected Corrupt, got {other:?}"),
        };
        assert_eq!(corrupt_at(&value[..RECORD_HEADER_BYTES - 1]), Seq(7));
        assert_eq!(corrupt_at(&[]), Seq(7));
        let mut other_format = value.clone();
        other_format[0] = 1;
        assert_eq!(corrupt_at(&other_format), Seq(7));
        let oversized = vec![RECORD_FORMAT; RECORD_HEADER_BYTES + EVENT_BYTES_MAX + 1];
        assert_eq!(corrupt_at(&oversized), Seq(7));
    }
}

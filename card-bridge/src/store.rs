//! The one durable key-value layer the card bridge's servers share (the
//! LUS log, the test agency, the collection server, the transfer journal):
//! a redb file, every write batch one transaction committed with
//! `Durability::Immediate` (redb's default), so a returned write is on disk.
//! [`Db::in_tables`] puts the same tables in a [`ledger::KvStore`] instead
//! (the issuer's card agency beside a log in PostgreSQL).
//!
//! Values are postcard; reads refuse records over [`RECORD_BYTES_MAX`]
//! before decoding, so a damaged file cannot make a reader allocate more.

use std::path::Path;
use std::sync::Arc;

use ledger::kv::{KvBatch, KvError, KvStore};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Serialize, de::DeserializeOwned};

use crate::constants::RECORD_BYTES_MAX;

/// Why the durable store failed. Storage failures are never guessed around.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("storage: {0}")]
    Storage(String),
    #[error("record in {table} is {len} bytes, over the limit")]
    TooLarge { table: &'static str, len: usize },
    #[error("record in {table} is malformed")]
    Malformed { table: &'static str },
    #[error("a record the write required to be absent exists in {table}")]
    AlreadyPresent { table: &'static str },
}

fn storage(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Storage(e.into().to_string())
}

/// A durable key-value file, or tables a caller opened.
pub struct Db {
    backend: Backend,
}

enum Backend {
    File(redb::Database),
    Tables(Arc<dyn KvStore>),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.backend {
            Backend::File(_) => "file",
            Backend::Tables(_) => "tables",
        };
        f.debug_struct("Db").field("backend", &what).finish()
    }
}

fn tables_error(e: KvError) -> StoreError {
    match e {
        KvError::AlreadyPresent { table } => StoreError::Storage(format!(
            "a record the write required to be absent exists in {table}"
        )),
        other => StoreError::Storage(other.to_string()),
    }
}

/// The `&'static` name of one of `batch`'s tables.
fn static_name(batch: &WriteBatch, table: &str) -> &'static str {
    batch
        .ops
        .iter()
        .map(|(t, _, _)| *t)
        .chain(batch.absent.iter().map(|(t, _)| *t))
        .find(|t| *t == table)
        .unwrap_or("?")
}

/// One write: table, key, and the new value (`None` deletes).
type WriteOp = (&'static str, Vec<u8>, Option<Vec<u8>>);

/// Writes applied together or not at all.
#[derive(Debug, Default)]
pub struct WriteBatch {
    ops: Vec<WriteOp>,
    absent: Vec<(&'static str, Vec<u8>)>,
}

impl WriteBatch {
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    pub fn put<T: Serialize>(&mut self, table: &'static str, key: &[u8], value: &T) {
        // Encoding our own types into a Vec cannot fail.
        #[allow(clippy::expect_used)]
        let bytes = postcard::to_allocvec(value).expect("postcard encoding into a Vec");
        self.ops.push((table, key.to_vec(), Some(bytes)));
    }

    /// Makes the whole batch fail with [`StoreError::AlreadyPresent`] if
    /// `key` exists in `table` when the write transaction runs: a check and
    /// its write in one transaction, so two writers cannot both pass it.
    pub fn require_absent(&mut self, table: &'static str, key: &[u8]) {
        self.absent.push((table, key.to_vec()));
    }

    pub fn delete(&mut self, table: &'static str, key: &[u8]) {
        self.ops.push((table, key.to_vec(), None));
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    if bytes.len() > RECORD_BYTES_MAX {
        return Err(StoreError::TooLarge {
            table,
            len: bytes.len(),
        });
    }
    postcard::from_bytes(bytes).map_err(|_| StoreError::Malformed { table })
}

impl Db {
    /// Opens (or creates) the file at `path`.
    pub fn open(path: &Path) -> Result<Db, StoreError> {
        // Card keys' work, balances and transfers: 0600 before redb opens it.
        ledger::private_file::ensure_private_file(path).map_err(|e| storage(redb::Error::Io(e)))?;
        Ok(Db {
            backend: Backend::File(redb::Database::create(path).map_err(storage)?),
        })
    }

    /// The tables in `tables` instead of a file.
    pub fn in_tables(tables: Arc<dyn KvStore>) -> Db {
        Db {
            backend: Backend::Tables(tables),
        }
    }

    fn file(&self) -> Result<&redb::Database, &Arc<dyn KvStore>> {
        match &self.backend {
            Backend::File(db) => Ok(db),
            Backend::Tables(kv) => Err(kv),
        }
    }

    pub fn get<T: DeserializeOwned>(
        &self,
        table: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        let db = match self.file() {
            Ok(db) => db,
            Err(kv) => {
                return kv
                    .get(table, key)
                    .map_err(tables_error)?
                    .map(|v| decode(table, &v))
                    .transpose();
            }
        };
        let tx = db.begin_read().map_err(storage)?;
        let t = match tx.open_table(TableDefinition::<&[u8], &[u8]>::new(table)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(storage(e)),
        };
        match t.get(key).map_err(storage)? {
            Some(v) => Ok(Some(decode(table, v.value())?)),
            None => Ok(None),
        }
    }

    /// Every record of `table` whose key starts with `prefix`, in key order.
    pub fn scan<T: DeserializeOwned>(
        &self,
        table: &'static str,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        let db = match self.file() {
            Ok(db) => db,
            Err(kv) => {
                return kv
                    .scan(table, prefix)
                    .map_err(tables_error)?
                    .into_iter()
                    .map(|(k, v)| Ok((k, decode(table, &v)?)))
                    .collect();
            }
        };
        let tx = db.begin_read().map_err(storage)?;
        let t = match tx.open_table(TableDefinition::<&[u8], &[u8]>::new(table)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(storage(e)),
        };
        let mut out = Vec::new();
        for item in t.range(prefix..).map_err(storage)? {
            let (k, v) = item.map_err(storage)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_vec(), decode(table, v.value())?));
        }
        Ok(out)
    }

    /// Applies `batch` in one durable transaction.
    pub fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let db = match self.file() {
            Ok(db) => db,
            Err(kv) => {
                let mut out = KvBatch::new();
                for (table, key) in &batch.absent {
                    out.require_absent(table, key);
                }
                for (table, key, value) in &batch.ops {
                    match value {
                        Some(v) => out.put(table, key, v.clone()),
                        None => out.delete(table, key),
                    }
                }
                return kv.write(&out).map_err(|e| match e {
                    KvError::AlreadyPresent { table } => StoreError::AlreadyPresent {
                        table: static_name(&batch, &table),
                    },
                    other => tables_error(other),
                });
            }
        };
        let tx = db.begin_write().map_err(storage)?;
        for (table, key) in &batch.absent {
            let t = tx
                .open_table(TableDefinition::<&[u8], &[u8]>::new(table))
                .map_err(storage)?;
            if t.get(key.as_slice()).map_err(storage)?.is_some() {
                drop(t);
                tx.abort().map_err(storage)?;
                return Err(StoreError::AlreadyPresent { table });
            }
        }
        for (table, key, value) in &batch.ops {
            let mut t = tx
                .open_table(TableDefinition::<&[u8], &[u8]>::new(table))
                .map_err(storage)?;
            match value {
                Some(v) => {
                    t.insert(key.as_slice(), v.as_slice()).map_err(storage)?;
                }
                None => {
                    t.remove(key.as_slice()).map_err(storage)?;
                }
            }
        }
        tx.commit().map_err(storage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_survive_reopening_and_scans_respect_prefixes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kv.redb");
        {
            let db = Db::open(&path).expect("open");
            let mut b = WriteBatch::new();
            b.put("t", b"a1", &1u32);
            b.put("t", b"a2", &2u32);
            b.put("t", b"b1", &3u32);
            db.write(b).expect("write");
        }
        let db = Db::open(&path).expect("reopen");
        assert_eq!(db.get::<u32>("t", b"a2"), Ok(Some(2)));
        assert_eq!(db.get::<u32>("missing", b"a2"), Ok(None));
        let a: Vec<u32> = db
            .scan("t", b"a")
            .expect("scan")
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert_eq!(a, vec![1, 2]);
        let mut b = WriteBatch::new();
        b.delete("t", b"a1");
        db.write(b).expect("delete");
        assert_eq!(db.get::<u32>("t", b"a1"), Ok(None));
        let mut b = WriteBatch::new();
        b.require_absent("t", b"a2");
        b.put("t", b"c1", &4u32);
        assert_eq!(db.write(b), Err(StoreError::AlreadyPresent { table: "t" }));
        assert_eq!(db.get::<u32>("t", b"c1"), Ok(None));
    }

    #[test]
    fn tables_answer_as_the_file_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = Db::open(&dir.path().join("kv.redb")).expect("open");
        let tables = Db::in_tables(Arc::new(ledger::MemoryKv::new()));
        for db in [&file, &tables] {
            let mut b = WriteBatch::new();
            b.put("t", b"a1", &1u32);
            b.put("t", b"a2", &2u32);
            b.put("t", b"b1", &3u32);
            db.write(b).expect("write");
            let mut b = WriteBatch::new();
            b.require_absent("t", b"a2");
            b.put("t", b"c1", &4u32);
            assert_eq!(db.write(b), Err(StoreError::AlreadyPresent { table: "t" }));
        }
        assert_eq!(
            file.scan::<u32>("t", b"a").expect("scan"),
            tables.scan::<u32>("t", b"a").expect("scan")
        );
        assert_eq!(tables.get::<u32>("t", b"b1"), Ok(Some(3)));
        assert_eq!(tables.get::<u32>("t", b"c1"), Ok(None));
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("kv.redb")).expect("open");
        let mut b = WriteBatch::new();
        b.put("t", b"k", &vec![0xffu8; 3]);
        db.write(b).expect("write");
        assert!(matches!(
            db.get::<(u64, u64, u64, u64)>("t", b"k"),
            Err(StoreError::Malformed { .. })
        ));
    }
}

//! The one durable key-value layer the card bridge's servers share (the
//! LUS log, the test agency, the collection server, the transfer journal):
//! a redb file, every write batch one transaction committed with
//! `Durability::Immediate` (redb's default), so a returned write is on disk.
//! [`FileTables`] is that file as a [`ledger::KvStore`];
//! [`Db::in_tables`] puts the same tables in any other store instead (the
//! issuer's card agency puts them in its sealing layer, over this file or
//! over tables beside a log in PostgreSQL).
//! [`FileTables::open_rewritten`] replaces a file by a rewritten copy, once,
//! atomically (how a card agency file written in the clear is sealed).
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
    tables: Arc<dyn KvStore>,
    what: &'static str,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("backend", &self.what).finish()
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
        Ok(Db {
            tables: Arc::new(FileTables::open(path)?),
            what: "file",
        })
    }

    /// The tables in `tables` instead of a file.
    pub fn in_tables(tables: Arc<dyn KvStore>) -> Db {
        Db {
            tables,
            what: "tables",
        }
    }

    pub fn get<T: DeserializeOwned>(
        &self,
        table: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        self.tables
            .get(table, key)
            .map_err(tables_error)?
            .map(|v| decode(table, &v))
            .transpose()
    }

    /// Every record of `table` whose key starts with `prefix`, in key order.
    pub fn scan<T: DeserializeOwned>(
        &self,
        table: &'static str,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        self.tables
            .scan(table, prefix)
            .map_err(tables_error)?
            .into_iter()
            .map(|(k, v)| Ok((k, decode(table, &v)?)))
            .collect()
    }

    /// Applies `batch` in one durable transaction.
    pub fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
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
        self.tables.write(&out).map_err(|e| match e {
            KvError::AlreadyPresent { table } => StoreError::AlreadyPresent {
                table: static_name(&batch, &table),
            },
            other => tables_error(other),
        })
    }
}

fn kv_storage(e: impl Into<redb::Error>) -> KvError {
    KvError::Storage(e.into().to_string())
}

/// A redb file as [`KvStore`] tables: every batch one transaction
/// committed with `Durability::Immediate` (redb's default).
pub struct FileTables {
    db: redb::Database,
}

impl std::fmt::Debug for FileTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileTables").finish_non_exhaustive()
    }
}

impl FileTables {
    /// Opens (or creates) the file at `path`, 0600 before redb opens it.
    pub fn open(path: &Path) -> Result<FileTables, StoreError> {
        ledger::private_file::ensure_private_file(path).map_err(|e| storage(redb::Error::Io(e)))?;
        Ok(FileTables {
            db: redb::Database::create(path).map_err(storage)?,
        })
    }

    /// Opens the file at `path`, first replacing it by a rewritten copy
    /// unless it holds the row `mark` (`(table, key)`): `rewrite` reads the
    /// file as it is and returns the batch the copy is made of, written
    /// with `mark` in one transaction into a new file that then takes the
    /// old one's name. A crash at any point leaves either the old file
    /// whole or the marked copy whole; a copy left over from a crash is
    /// discarded. A copy, not an update in place: redb frees the pages a
    /// rewrite leaves behind without clearing them, so what the rewrite
    /// replaces would stay on disk.
    pub fn open_rewritten(
        path: &Path,
        mark: (&str, &[u8]),
        rewrite: impl FnOnce(&FileTables) -> Result<KvBatch, KvError>,
    ) -> Result<FileTables, StoreError> {
        let io = |e| storage(redb::Error::Io(e));
        let (mark_table, mark_key) = mark;
        {
            let old = FileTables::open(path)?;
            if old
                .get(mark_table, mark_key)
                .map_err(tables_error)?
                .is_some()
            {
                return Ok(old);
            }
            let tmp = path.with_extension("redb.rewriting");
            match std::fs::remove_file(&tmp) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
            let mut batch = rewrite(&old).map_err(tables_error)?;
            batch.put(mark_table, mark_key, Vec::new());
            let new = FileTables::open(&tmp)?;
            new.write(&batch).map_err(tables_error)?;
            drop(new);
            drop(old);
            std::fs::rename(&tmp, path).map_err(io)?;
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io)?;
            }
        }
        FileTables::open(path)
    }
}

impl KvStore for FileTables {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        let tx = self.db.begin_read().map_err(kv_storage)?;
        let t = match tx.open_table(TableDefinition::<&[u8], &[u8]>::new(table)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(kv_storage(e)),
        };
        Ok(t.get(key).map_err(kv_storage)?.map(|v| v.value().to_vec()))
    }

    fn scan(&self, table: &str, prefix: &[u8]) -> Result<Vec<ledger::KvRow>, KvError> {
        let tx = self.db.begin_read().map_err(kv_storage)?;
        let t = match tx.open_table(TableDefinition::<&[u8], &[u8]>::new(table)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(kv_storage(e)),
        };
        let mut out = Vec::new();
        for item in t.range(prefix..).map_err(kv_storage)? {
            let (k, v) = item.map_err(kv_storage)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn write(&self, batch: &KvBatch) -> Result<(), KvError> {
        let tx = self.db.begin_write().map_err(kv_storage)?;
        for (table, key) in &batch.absent {
            let t = tx
                .open_table(TableDefinition::<&[u8], &[u8]>::new(table))
                .map_err(kv_storage)?;
            if t.get(key.as_slice()).map_err(kv_storage)?.is_some() {
                drop(t);
                tx.abort().map_err(kv_storage)?;
                return Err(KvError::AlreadyPresent {
                    table: table.clone(),
                });
            }
        }
        for w in &batch.writes {
            let mut t = tx
                .open_table(TableDefinition::<&[u8], &[u8]>::new(&w.table))
                .map_err(kv_storage)?;
            match &w.value {
                Some(v) => {
                    t.insert(w.key.as_slice(), v.as_slice())
                        .map_err(kv_storage)?;
                }
                None => {
                    t.remove(w.key.as_slice()).map_err(kv_storage)?;
                }
            }
        }
        tx.commit().map_err(kv_storage)
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

    /// The rewrite of `open_rewritten` tests: every row of `t` with its
    /// value reversed, under a key with `x` before it.
    fn reversed(old: &FileTables) -> Result<KvBatch, KvError> {
        let mut b = KvBatch::new();
        for (k, v) in old.scan("t", &[])? {
            let mut key = b"x".to_vec();
            key.extend_from_slice(&k);
            b.put("t", &key, v.into_iter().rev().collect());
        }
        Ok(b)
    }

    fn holds(path: &Path, needle: &[u8]) -> bool {
        let bytes = std::fs::read(path).expect("read file");
        bytes.windows(needle.len()).any(|w| w == needle)
    }

    const MARK: (&str, &[u8]) = ("format", b"rewritten");

    #[test]
    fn a_file_is_rewritten_once_and_the_old_rows_leave_the_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kv.redb");
        let old = FileTables::open(&path).expect("open");
        let mut b = KvBatch::new();
        b.put("t", b"k1", b"CLEAR-VALUE-ONE".to_vec());
        b.put("t", b"k2", b"CLEAR-VALUE-TWO".to_vec());
        old.write(&b).expect("write");
        drop(old);
        assert!(holds(&path, b"CLEAR-VALUE-ONE"));

        let new = FileTables::open_rewritten(&path, MARK, reversed).expect("rewritten");
        assert_eq!(new.get("t", b"k1"), Ok(None));
        assert_eq!(new.get("t", b"xk1"), Ok(Some(b"ENO-EULAV-RAELC".to_vec())));
        drop(new);
        assert!(!holds(&path, b"CLEAR-VALUE-ONE"));
        assert!(!holds(&path, b"CLEAR-VALUE-TWO"));
        assert!(!dir.path().join("kv.redb.rewriting").exists());
        // Marked: the next open does not rewrite again.
        let again = FileTables::open_rewritten(&path, MARK, |_| panic!("rewritten twice"))
            .expect("reopened");
        assert_eq!(again.scan("t", &[]).expect("scan").len(), 2);
    }

    #[test]
    fn a_rewrite_stopped_at_any_point_loses_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kv.redb");
        let tmp = dir.path().join("kv.redb.rewriting");
        let old = FileTables::open(&path).expect("open");
        let mut b = KvBatch::new();
        b.put("t", b"k1", b"one".to_vec());
        old.write(&b).expect("write");
        drop(old);

        // Stopped while reading the old file: it is as it was.
        let failed =
            FileTables::open_rewritten(&path, MARK, |_| Err(KvError::Storage("stopped".into())));
        assert!(failed.is_err());
        let old = FileTables::open(&path).expect("open");
        assert_eq!(old.get("t", b"k1"), Ok(Some(b"one".to_vec())));
        assert_eq!(old.get(MARK.0, MARK.1), Ok(None));
        drop(old);

        // Stopped after the copy was written, before it took the name (or
        // while it was half written): the copy is discarded and made again.
        let copy = FileTables::open(&tmp).expect("copy");
        let mut b = KvBatch::new();
        b.put("t", b"stale", b"half".to_vec());
        copy.write(&b).expect("write");
        drop(copy);
        let new = FileTables::open_rewritten(&path, MARK, reversed).expect("rewritten");
        assert_eq!(
            new.scan("t", &[]).expect("scan"),
            vec![(b"xk1".to_vec(), b"eno".to_vec())]
        );
        assert!(!tmp.exists());

        // A garbage file where the copy goes: refused by redb or replaced,
        // never taken for the store.
        drop(new);
        let path2 = dir.path().join("kv2.redb");
        let old = FileTables::open(&path2).expect("open");
        old.write(&b).expect("write");
        drop(old);
        std::fs::write(dir.path().join("kv2.redb.rewriting"), b"torn").expect("garbage");
        let new = FileTables::open_rewritten(&path2, MARK, reversed).expect("rewritten");
        assert_eq!(new.get("t", b"xstale"), Ok(Some(b"flah".to_vec())));
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

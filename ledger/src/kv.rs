//! [`KvStore`]: named tables of byte keys and byte values, written in
//! atomic batches, for the issuer's state that is not in the log and cannot
//! be rebuilt from it (its participant registry, its card agency's
//! guarantees). The issuer keeps them in redb files of its directory by
//! default; an issuer whose log is in a replicated database keeps them
//! there too (`vc_pg_store::PostgresKv`), so a replacement issuer needs only
//! its keys and configuration. [`MemoryKv`] is the in-memory backend for
//! tests.
//!
//! A backend stores what it is given: the callers seal what must not be in
//! the clear (keyed ids, sealed accounts and records) before it gets here.

use std::collections::BTreeMap;
// Plain std (not the loom shim): test tables, no concurrency core to model.
use std::sync::{Mutex, MutexGuard};

fn lock(rows: &Mutex<Rows>) -> MutexGuard<'_, Rows> {
    match rows.lock() {
        Ok(guard) => guard,
        Err(_poisoned) => panic!("{}", crate::sync::POISONED_LOCK),
    }
}

/// Why a table store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// The backend failed (disk, connection, server): nothing is assumed
    /// about a write that returned this.
    #[error("table storage: {0}")]
    Storage(String),
    /// A key the batch required to be absent was present: nothing of the
    /// batch was written.
    #[error("a record the write required to be absent exists in {table}")]
    AlreadyPresent { table: String },
}

/// One write of a batch: the new value of `key` in `table` (`None` deletes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvWrite {
    pub table: String,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// Writes applied together or not at all, after checking that each of
/// `absent` is absent (in the same transaction).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvBatch {
    pub absent: Vec<(String, Vec<u8>)>,
    pub writes: Vec<KvWrite>,
}

impl KvBatch {
    pub fn new() -> KvBatch {
        KvBatch::default()
    }

    pub fn put(&mut self, table: &str, key: &[u8], value: Vec<u8>) {
        self.writes.push(KvWrite {
            table: table.to_owned(),
            key: key.to_vec(),
            value: Some(value),
        });
    }

    pub fn delete(&mut self, table: &str, key: &[u8]) {
        self.writes.push(KvWrite {
            table: table.to_owned(),
            key: key.to_vec(),
            value: None,
        });
    }

    pub fn require_absent(&mut self, table: &str, key: &[u8]) {
        self.absent.push((table.to_owned(), key.to_vec()));
    }
}

/// One row of a scan: its key and value.
pub type KvRow = (Vec<u8>, Vec<u8>);

/// Named tables of byte keys and values. A returned write is durable (on
/// every disk the backend promises); a read sees every returned write.
pub trait KvStore: Send + Sync {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, KvError>;

    /// Every row of `table` whose key starts with `prefix`, in key order
    /// (bytewise).
    fn scan(&self, table: &str, prefix: &[u8]) -> Result<Vec<KvRow>, KvError>;

    /// Applies `batch` in one transaction, or nothing of it.
    fn write(&self, batch: &KvBatch) -> Result<(), KvError>;
}

/// The first key after every key starting with `prefix` (`None`: no key
/// is, `prefix` is empty or all `0xff`): a scan's exclusive upper bound.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Tables in memory (tests).
#[derive(Debug, Default)]
pub struct MemoryKv {
    tables: Mutex<Rows>,
}

/// Values by (table, key).
type Rows = BTreeMap<(String, Vec<u8>), Vec<u8>>;

impl MemoryKv {
    pub fn new() -> MemoryKv {
        MemoryKv::default()
    }

    /// Every row, for tests that look at what a backend was given.
    pub fn rows(&self) -> Vec<(String, Vec<u8>, Vec<u8>)> {
        lock(&self.tables)
            .iter()
            .map(|((t, k), v)| (t.clone(), k.clone(), v.clone()))
            .collect()
    }
}

impl KvStore for MemoryKv {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        Ok(lock(&self.tables)
            .get(&(table.to_owned(), key.to_vec()))
            .cloned())
    }

    fn scan(&self, table: &str, prefix: &[u8]) -> Result<Vec<KvRow>, KvError> {
        let tables = lock(&self.tables);
        Ok(tables
            .range((table.to_owned(), prefix.to_vec())..)
            .take_while(|((t, k), _)| t == table && k.starts_with(prefix))
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }

    fn write(&self, batch: &KvBatch) -> Result<(), KvError> {
        let mut tables = lock(&self.tables);
        for (table, key) in &batch.absent {
            if tables.contains_key(&(table.clone(), key.clone())) {
                return Err(KvError::AlreadyPresent {
                    table: table.clone(),
                });
            }
        }
        for w in &batch.writes {
            let at = (w.table.clone(), w.key.clone());
            match &w.value {
                Some(v) => {
                    tables.insert(at, v.clone());
                }
                None => {
                    tables.remove(&at);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_first_key_past_the_prefix() {
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
    }

    #[test]
    fn memory_tables_scan_by_prefix_and_write_whole_batches() {
        let kv = MemoryKv::new();
        let mut b = KvBatch::new();
        b.put("t", b"a1", vec![1]);
        b.put("t", b"a2", vec![2]);
        b.put("t", b"b1", vec![3]);
        b.put("u", b"a3", vec![4]);
        kv.write(&b).expect("write");
        let a: Vec<_> = kv.scan("t", b"a").expect("scan");
        assert_eq!(
            a,
            vec![(b"a1".to_vec(), vec![1]), (b"a2".to_vec(), vec![2])]
        );
        assert_eq!(kv.scan("t", b"").expect("scan").len(), 3);
        let mut b = KvBatch::new();
        b.require_absent("t", b"a2");
        b.delete("t", b"a1");
        assert!(matches!(kv.write(&b), Err(KvError::AlreadyPresent { .. })));
        assert_eq!(kv.get("t", b"a1").expect("get"), Some(vec![1]));
        let mut b = KvBatch::new();
        b.delete("t", b"a1");
        kv.write(&b).expect("delete");
        assert_eq!(kv.get("t", b"a1").expect("get"), None);
    }
}

//! The storage layer under every projection: a few named tables of byte keys
//! and byte values, reached through [`StateRead`] and [`StateWrite`]. The pure
//! apply functions run unchanged over a redb write transaction
//! ([`RedbWriteState`]) or an in-memory map ([`MemoryState`], which rebuilds
//! a projection at any sequence number and is the reference in tests).
//!
//! Keys are fixed-width big-endian where order matters, so a prefix scan
//! visits entries in the order the queries need (e.g. coin ids ascending
//! within an epoch, which is the order the erasure digest hashes them in).

use std::collections::BTreeMap;

use redb::{ReadableTable, TableDefinition};

use crate::error::ProjectionError;

/// The name of one table of a projection.
pub type TableName = &'static str;

/// What [`StateRead::scan_prefix`] calls for each entry; returning `false` stops the scan.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool, ProjectionError> + 'a;

/// Reads of a projection's state.
pub trait StateRead {
    fn get(&self, table: TableName, key: &[u8]) -> Result<Option<Vec<u8>>, ProjectionError>;

    /// Visits the entries whose key starts with `prefix` (all of them for an
    /// empty prefix) in ascending key order, until `visit` returns `false`.
    fn scan_prefix(
        &self,
        table: TableName,
        prefix: &[u8],
        visit: &mut Visit<'_>,
    ) -> Result<(), ProjectionError>;
}

/// Writes of a projection's state, inside one transaction.
pub trait StateWrite: StateRead {
    /// Inserts or replaces the entry; says whether the key was there before.
    fn put(&mut self, table: TableName, key: &[u8], value: &[u8]) -> Result<bool, ProjectionError>;

    /// Removes the entry; says whether it was there.
    fn remove(&mut self, table: TableName, key: &[u8]) -> Result<bool, ProjectionError>;
}

fn definition(name: TableName) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

/// A projection's state held in memory: the reference implementation, and
/// the way to see a projection as of any sequence number without touching
/// its file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryState {
    tables: BTreeMap<TableName, BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryState {
    /// An empty state with the given tables.
    pub fn new(tables: &[TableName]) -> MemoryState {
        MemoryState {
            tables: tables.iter().map(|t| (*t, BTreeMap::new())).collect(),
        }
    }

    /// Every entry of every table, for comparing two states.
    pub fn tables(&self) -> &BTreeMap<TableName, BTreeMap<Vec<u8>, Vec<u8>>> {
        &self.tables
    }

    fn table(&self, name: TableName) -> Result<&BTreeMap<Vec<u8>, Vec<u8>>, ProjectionError> {
        self.tables
            .get(name)
            .ok_or(ProjectionError::UnknownTable(name))
    }

    fn table_mut(
        &mut self,
        name: TableName,
    ) -> Result<&mut BTreeMap<Vec<u8>, Vec<u8>>, ProjectionError> {
        self.tables
            .get_mut(name)
            .ok_or(ProjectionError::UnknownTable(name))
    }
}

impl StateRead for MemoryState {
    fn get(&self, table: TableName, key: &[u8]) -> Result<Option<Vec<u8>>, ProjectionError> {
        Ok(self.table(table)?.get(key).cloned())
    }

    fn scan_prefix(
        &self,
        table: TableName,
        prefix: &[u8],
        visit: &mut Visit<'_>,
    ) -> Result<(), ProjectionError> {
        for (k, v) in self.table(table)?.range(prefix.to_vec()..) {
            if !k.starts_with(prefix) || !visit(k, v)? {
                break;
            }
        }
        Ok(())
    }
}

impl StateWrite for MemoryState {
    fn put(&mut self, table: TableName, key: &[u8], value: &[u8]) -> Result<bool, ProjectionError> {
        Ok(self
            .table_mut(table)?
            .insert(key.to_vec(), value.to_vec())
            .is_some())
    }

    fn remove(&mut self, table: TableName, key: &[u8]) -> Result<bool, ProjectionError> {
        Ok(self.table_mut(table)?.remove(key).is_some())
    }
}

/// A projection's tables opened in one redb write transaction.
pub struct RedbWriteState<'txn> {
    tables: BTreeMap<TableName, redb::Table<'txn, &'static [u8], &'static [u8]>>,
}

impl<'txn> RedbWriteState<'txn> {
    /// Opens (creating where missing) `tables` in `txn`.
    pub(crate) fn open(
        txn: &'txn redb::WriteTransaction,
        tables: &[TableName],
    ) -> Result<RedbWriteState<'txn>, ProjectionError> {
        let mut opened = BTreeMap::new();
        for name in tables {
            opened.insert(*name, txn.open_table(definition(name))?);
        }
        Ok(RedbWriteState { tables: opened })
    }

    fn table_mut(
        &mut self,
        name: TableName,
    ) -> Result<&mut redb::Table<'txn, &'static [u8], &'static [u8]>, ProjectionError> {
        self.tables
            .get_mut(name)
            .ok_or(ProjectionError::UnknownTable(name))
    }
}

fn scan_redb<T: ReadableTable<&'static [u8], &'static [u8]>>(
    table: &T,
    prefix: &[u8],
    visit: &mut Visit<'_>,
) -> Result<(), ProjectionError> {
    for entry in table.range::<&[u8]>(prefix..)? {
        let (k, v) = entry?;
        if !k.value().starts_with(prefix) || !visit(k.value(), v.value())? {
            break;
        }
    }
    Ok(())
}

impl StateRead for RedbWriteState<'_> {
    fn get(&self, table: TableName, key: &[u8]) -> Result<Option<Vec<u8>>, ProjectionError> {
        let t = self
            .tables
            .get(table)
            .ok_or(ProjectionError::UnknownTable(table))?;
        Ok(t.get(key)?.map(|v| v.value().to_vec()))
    }

    fn scan_prefix(
        &self,
        table: TableName,
        prefix: &[u8],
        visit: &mut Visit<'_>,
    ) -> Result<(), ProjectionError> {
        let t = self
            .tables
            .get(table)
            .ok_or(ProjectionError::UnknownTable(table))?;
        scan_redb(t, prefix, visit)
    }
}

impl StateWrite for RedbWriteState<'_> {
    fn put(&mut self, table: TableName, key: &[u8], value: &[u8]) -> Result<bool, ProjectionError> {
        Ok(self.table_mut(table)?.insert(key, value)?.is_some())
    }

    fn remove(&mut self, table: TableName, key: &[u8]) -> Result<bool, ProjectionError> {
        Ok(self.table_mut(table)?.remove(key)?.is_some())
    }
}

/// A projection's tables opened in one redb read transaction: a consistent
/// snapshot for queries while the writer goes on.
pub struct RedbReadState {
    tables: BTreeMap<TableName, redb::ReadOnlyTable<&'static [u8], &'static [u8]>>,
}

impl RedbReadState {
    pub(crate) fn open(
        txn: &redb::ReadTransaction,
        tables: &[TableName],
    ) -> Result<RedbReadState, ProjectionError> {
        let mut opened = BTreeMap::new();
        for name in tables {
            opened.insert(*name, txn.open_table(definition(name))?);
        }
        Ok(RedbReadState { tables: opened })
    }
}

impl StateRead for RedbReadState {
    fn get(&self, table: TableName, key: &[u8]) -> Result<Option<Vec<u8>>, ProjectionError> {
        let t = self
            .tables
            .get(table)
            .ok_or(ProjectionError::UnknownTable(table))?;
        Ok(t.get(key)?.map(|v| v.value().to_vec()))
    }

    fn scan_prefix(
        &self,
        table: TableName,
        prefix: &[u8],
        visit: &mut Visit<'_>,
    ) -> Result<(), ProjectionError> {
        let t = self
            .tables
            .get(table)
            .ok_or(ProjectionError::UnknownTable(table))?;
        scan_redb(t, prefix, visit)
    }
}

/// Copies every entry of `tables` from `from` into a [`MemoryState`].
pub fn snapshot(
    from: &dyn StateRead,
    tables: &[TableName],
) -> Result<MemoryState, ProjectionError> {
    let mut out = MemoryState::new(tables);
    for name in tables {
        let mut entries = Vec::new();
        from.scan_prefix(name, &[], &mut |k, v| {
            entries.push((k.to_vec(), v.to_vec()));
            Ok(true)
        })?;
        let table = out.table_mut(name)?;
        table.extend(entries);
    }
    Ok(out)
}

/// Fixed-width readers for stored values: a short value is corruption, never a panic.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    table: TableName,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(table: TableName, bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, table }
    }

    pub(crate) fn take<const N: usize>(&mut self) -> Result<[u8; N], ProjectionError> {
        let Some((head, rest)) = self.bytes.split_first_chunk::<N>() else {
            return Err(ProjectionError::Corrupt {
                table: self.table,
                reason: "value too short",
            });
        };
        self.bytes = rest;
        Ok(*head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, ProjectionError> {
        Ok(self.take::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, ProjectionError> {
        Ok(u32::from_be_bytes(self.take()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, ProjectionError> {
        Ok(u64::from_be_bytes(self.take()?))
    }

    pub(crate) fn i128(&mut self) -> Result<i128, ProjectionError> {
        Ok(i128::from_be_bytes(self.take()?))
    }

    pub(crate) fn corrupt(&self, reason: &'static str) -> ProjectionError {
        ProjectionError::Corrupt {
            table: self.table,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: TableName = "t";

    fn fill(state: &mut dyn StateWrite) {
        for k in [&b"ab1"[..], b"ab2", b"ac", b"a", b"b"] {
            state.put(T, k, k).expect("put");
        }
        assert!(state.remove(T, b"ac").expect("remove"));
        assert!(!state.remove(T, b"zz").expect("remove"));
    }

    fn keys_with_prefix(state: &dyn StateRead, prefix: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        state
            .scan_prefix(T, prefix, &mut |k, _| {
                out.push(k.to_vec());
                Ok(true)
            })
            .expect("scan");
        out
    }

    #[test]
    fn memory_and_redb_states_agree_on_gets_and_prefix_scans() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = redb::Database::create(dir.path().join("s.redb")).expect("create");
        let txn = db.begin_write().expect("write");
        let mut memory = MemoryState::new(&[T]);
        {
            let mut redb_state = RedbWriteState::open(&txn, &[T]).expect("open");
            fill(&mut memory);
            fill(&mut redb_state);
            for prefix in [&b""[..], b"a", b"ab", b"b", b"c"] {
                assert_eq!(
                    keys_with_prefix(&memory, prefix),
                    keys_with_prefix(&redb_state, prefix)
                );
            }
            assert_eq!(
                keys_with_prefix(&memory, b"ab"),
                vec![b"ab1".to_vec(), b"ab2".to_vec()]
            );
            assert_eq!(redb_state.get(T, b"b").expect("get"), Some(b"b".to_vec()));
            assert_eq!(
                snapshot(&redb_state, &[T]).expect("snapshot"),
                snapshot(&memory, &[T]).expect("snapshot")
            );
            assert!(matches!(
                redb_state.get("other", b"b"),
                Err(ProjectionError::UnknownTable("other"))
            ));
        }
        txn.commit().expect("commit");
    }

    #[test]
    fn short_values_are_corruption_not_panics() {
        let mut r = Reader::new(T, &[1, 2, 3]);
        assert!(matches!(r.u64(), Err(ProjectionError::Corrupt { .. })));
        let mut r = Reader::new(T, &[0, 0, 0, 7]);
        assert_eq!(r.u32().expect("u32"), 7);
        assert!(matches!(r.u8(), Err(ProjectionError::Corrupt { .. })));
    }
}

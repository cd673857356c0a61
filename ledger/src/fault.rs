//! Failure injection for crash tests (feature `fault-injection`): wrappers
//! that sit between a writer and its storage and stop dead at a chosen
//! point, as a crash of the writing process would, so the crash tests run
//! the production code unchanged.
//!
//! - [`FaultyStore`]: an [`EventStore`] around any backend. Once
//!   `batches_before` batches have been appended, the next append meets the
//!   [`StoreFault`] of its [`FaultPlan`]; from then on the store is dead:
//!   every call fails, and the inner store is dropped (its file closed, as
//!   a dead process's would be), so a restart can open the same file.
//! - [`FaultyFile`]: a redb storage backend around the real file whose
//!   fsyncs (and every write after the first failed one) fail once the
//!   plan arms them, for [`StoreFault::FsyncFails`]: the pages redb wrote
//!   stay in the file (a process crash keeps them), and whether the commit
//!   survives the restart is up to redb's commit protocol, as it would be.
//! - [`DyingFile`]: a redb storage backend around the real file that dies
//!   once a [`DiskDeath`] it shares with the test has let a chosen number of
//!   writes through: that write and every write, resize and fsync after it
//!   fail. Under a projection, a session store or any other redb file it
//!   stops the writer in the middle of a transaction's commit (a batch of
//!   projection records, an erasure's removals), as a crash would; the
//!   file is reopened on the plain file to recover.
//!
//! Nothing here is built without the feature: production builds have no
//! fault points.

use std::fs::File;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use redb::StorageBackend;
use redb::backends::FileBackend;

use crate::store::{Batch, EventStore, Head, Seq, StoreError, StoredRecord};

/// Where in an append the writer stops dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFault {
    /// Before the append: nothing of the batch is written.
    BeforeAppend,
    /// The batch is written but its fsync fails (with a [`FaultyFile`]
    /// under the store): the writer is never told it is durable.
    FsyncFails,
    /// The batch is durable, and the writer dies before it is told so.
    AfterDurable,
    /// The batch is durable and acknowledged; the writer dies just after
    /// (whatever it does next with the acknowledgement is its last act:
    /// a crash test treats its answers as lost).
    AfterAcknowledged,
}

/// When and how a [`FaultyStore`] (and the [`FaultyFile`] under it) stops
/// dead; shared with the test, which asks whether it has.
#[derive(Debug)]
pub struct FaultPlan {
    fault: StoreFault,
    batches_before: u64,
    batches_seen: AtomicU64,
    fsync_armed: AtomicBool,
    dead: AtomicBool,
}

impl FaultPlan {
    /// `fault` at the append that takes the log past `batches_before`
    /// batches appended through the store.
    pub fn new(fault: StoreFault, batches_before: u64) -> Arc<FaultPlan> {
        Arc::new(FaultPlan {
            fault,
            batches_before,
            batches_seen: AtomicU64::new(0),
            fsync_armed: AtomicBool::new(false),
            dead: AtomicBool::new(false),
        })
    }

    /// The fault this plan injects.
    pub fn fault(&self) -> StoreFault {
        self.fault
    }

    /// Whether the fault has struck.
    pub fn has_struck(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    fn dead_error() -> StoreError {
        StoreError::Backend("injected crash: the writer is dead".into())
    }
}

/// An [`EventStore`] that stops dead as its [`FaultPlan`] says.
pub struct FaultyStore<S> {
    inner: RwLock<Option<S>>,
    plan: Arc<FaultPlan>,
}

impl<S: EventStore> FaultyStore<S> {
    pub fn new(inner: S, plan: Arc<FaultPlan>) -> FaultyStore<S> {
        FaultyStore {
            inner: RwLock::new(Some(inner)),
            plan,
        }
    }

    /// Dies: the inner store is dropped (its file closed).
    fn die(&self) {
        self.plan.dead.store(true, Ordering::SeqCst);
        if let Ok(mut inner) = self.inner.write() {
            *inner = None;
        }
    }

    fn with_inner<T>(&self, f: impl FnOnce(&S) -> Result<T, StoreError>) -> Result<T, StoreError> {
        if self.plan.has_struck() {
            return Err(FaultPlan::dead_error());
        }
        let inner = self
            .inner
            .read()
            .map_err(|_| StoreError::Backend("fault wrapper lock poisoned".into()))?;
        match inner.as_ref() {
            Some(inner) => f(inner),
            None => Err(FaultPlan::dead_error()),
        }
    }
}

impl<S: EventStore> EventStore for FaultyStore<S> {
    fn append(&self, batches: &[Batch]) -> Result<Vec<Seq>, StoreError> {
        let n = batches.len() as u64;
        let seen = self.plan.batches_seen.fetch_add(n, Ordering::SeqCst);
        if self.plan.has_struck() || seen + n <= self.plan.batches_before {
            return self.with_inner(|s| s.append(batches));
        }
        match self.plan.fault {
            StoreFault::BeforeAppend => {
                self.die();
                Err(FaultPlan::dead_error())
            }
            StoreFault::FsyncFails => {
                self.plan.fsync_armed.store(true, Ordering::SeqCst);
                let result = self.with_inner(|s| s.append(batches));
                self.die();
                match result {
                    // A backend without a FaultyFile under it: the batch is
                    // durable and the writer is not told, as after the fsync.
                    Ok(_) => Err(FaultPlan::dead_error()),
                    Err(e) => Err(e),
                }
            }
            StoreFault::AfterDurable => {
                let result = self.with_inner(|s| s.append(batches));
                self.die();
                result.and(Err(FaultPlan::dead_error()))
            }
            StoreFault::AfterAcknowledged => {
                let result = self.with_inner(|s| s.append(batches));
                self.die();
                result
            }
        }
    }

    fn head(&self) -> Result<Head, StoreError> {
        self.with_inner(|s| s.head())
    }

    fn read(&self, from: Seq, max_records: usize) -> Result<Vec<StoredRecord>, StoreError> {
        self.with_inner(|s| s.read(from, max_records))
    }
}

/// The real file under redb, whose fsyncs fail once a [`FaultPlan`] with
/// [`StoreFault::FsyncFails`] arms them (and every write after a failed
/// fsync fails too: the process is dead).
#[derive(Debug)]
pub struct FaultyFile {
    inner: FileBackend,
    plan: Arc<FaultPlan>,
    failed: AtomicBool,
}

impl FaultyFile {
    pub fn new(file: File, plan: Arc<FaultPlan>) -> Result<FaultyFile, StoreError> {
        Ok(FaultyFile {
            inner: FileBackend::new(file)
                .map_err(|e| StoreError::Backend(format!("file backend: {e}")))?,
            plan,
            failed: AtomicBool::new(false),
        })
    }

    fn refuse_if_failed(&self) -> Result<(), std::io::Error> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("injected crash: the writer is dead"));
        }
        Ok(())
    }
}

impl StorageBackend for FaultyFile {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.refuse_if_failed()?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.refuse_if_failed()?;
        if self.plan.fsync_armed.load(Ordering::SeqCst) {
            self.failed.store(true, Ordering::SeqCst);
            return Err(std::io::Error::other("injected fsync failure"));
        }
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.refuse_if_failed()?;
        self.inner.write(offset, data)
    }
    fn close(&self) -> Result<(), std::io::Error> {
        self.inner.close()
    }
    fn try_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, redb::BackendError> {
        self.inner.try_lock_range(s, e)
    }
    fn try_lock_shared_range(
        &self,
        s: Bound<u64>,
        e: Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        self.inner.try_lock_shared_range(s, e)
    }
    fn lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), redb::BackendError> {
        self.inner.lock_range(s, e)
    }
    fn lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), redb::BackendError> {
        self.inner.lock_shared_range(s, e)
    }
    fn unlock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), redb::BackendError> {
        self.inner.unlock_range(s, e)
    }
    fn query_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, redb::BackendError> {
        self.inner.query_lock_range(s, e)
    }
}

/// When a [`DyingFile`] dies: shared with the test, which arms it and asks
/// whether it has.
#[derive(Debug)]
pub struct DiskDeath {
    /// Writes still let through; `u64::MAX` while unarmed.
    writes_left: AtomicU64,
    dead: AtomicBool,
}

impl DiskDeath {
    /// Unarmed: every write goes through until [`DiskDeath::arm`].
    pub fn new() -> Arc<DiskDeath> {
        Arc::new(DiskDeath {
            writes_left: AtomicU64::new(u64::MAX),
            dead: AtomicBool::new(false),
        })
    }

    /// The file dies at the write after the next `writes`.
    pub fn arm(&self, writes: u64) {
        self.writes_left.store(writes, Ordering::SeqCst);
    }

    /// Dies now: the next write fails.
    pub fn kill(&self) {
        self.arm(0);
    }

    /// Whether the file has died (a write was refused).
    pub fn has_died(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    fn spend_write(&self) -> Result<(), std::io::Error> {
        if self.has_died() {
            return Err(std::io::Error::other("injected crash: the writer is dead"));
        }
        let spent = self
            .writes_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| match left {
                u64::MAX => Some(u64::MAX),
                left => left.checked_sub(1),
            });
        if spent.is_err() {
            self.dead.store(true, Ordering::SeqCst);
            return Err(std::io::Error::other("injected crash: the disk died"));
        }
        Ok(())
    }

    fn refuse_if_dead(&self) -> Result<(), std::io::Error> {
        if self.has_died() {
            return Err(std::io::Error::other("injected crash: the writer is dead"));
        }
        Ok(())
    }
}

/// The real file under redb, dying as its [`DiskDeath`] says. Reads keep
/// working (the pages written before the death are in the file, as a
/// crashed process leaves them).
#[derive(Debug)]
pub struct DyingFile {
    inner: FileBackend,
    death: Arc<DiskDeath>,
}

impl DyingFile {
    pub fn new(file: File, death: Arc<DiskDeath>) -> Result<DyingFile, std::io::Error> {
        Ok(DyingFile {
            inner: FileBackend::new(file).map_err(std::io::Error::other)?,
            death,
        })
    }

    /// Opens (creating it 0600 if absent) the file at `path` for a redb
    /// database.
    pub fn open(
        path: &std::path::Path,
        death: Arc<DiskDeath>,
    ) -> Result<DyingFile, std::io::Error> {
        crate::private_file::ensure_private_file(path)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        DyingFile::new(file, death)
    }
}

impl StorageBackend for DyingFile {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.death.spend_write()?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.death.refuse_if_dead()?;
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.death.spend_write()?;
        self.inner.write(offset, data)
    }
    fn close(&self) -> Result<(), std::io::Error> {
        self.inner.close()
    }
    fn try_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, redb::BackendError> {
        self.inner.try_lock_range(s, e)
    }
    fn try_lock_shared_range(
        &self,
        s: Bound<u64>,
        e: Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        self.inner.try_lock_shared_range(s, e)
    }
    fn lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), redb::BackendError> {
        self.inner.lock_range(s, e)
    }
    fn lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), redb::BackendError> {
        self.inner.lock_shared_range(s, e)
    }
    fn unlock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), redb::BackendError> {
        self.inner.unlock_range(s, e)
    }
    fn query_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, redb::BackendError> {
        self.inner.query_lock_range(s, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory_store::MemoryStore;
    use crate::testkit::sample_batch;

    /// The memory log, shared with the test so it can look after the
    /// wrapper dropped its handle.
    struct Shared(Arc<MemoryStore>);

    impl EventStore for Shared {
        fn append(&self, batches: &[Batch]) -> Result<Vec<Seq>, StoreError> {
            self.0.append(batches)
        }
        fn head(&self) -> Result<Head, StoreError> {
            self.0.head()
        }
        fn read(&self, from: Seq, max_records: usize) -> Result<Vec<StoredRecord>, StoreError> {
            self.0.read(from, max_records)
        }
    }

    fn store_meeting(fault: StoreFault) -> (FaultyStore<Shared>, Arc<MemoryStore>) {
        let memory = Arc::new(MemoryStore::new());
        let store = FaultyStore::new(Shared(memory.clone()), FaultPlan::new(fault, 2));
        store
            .append(&[sample_batch(1, 1), sample_batch(2, 1)])
            .expect("the first two batches pass");
        (store, memory)
    }

    #[test]
    fn each_fault_strikes_at_the_batch_past_the_plan_and_the_store_is_dead_after() {
        for (fault, written, told) in [
            (StoreFault::BeforeAppend, false, false),
            (StoreFault::FsyncFails, true, false),
            (StoreFault::AfterDurable, true, false),
            (StoreFault::AfterAcknowledged, true, true),
        ] {
            let (store, memory) = store_meeting(fault);
            assert!(!store.plan.has_struck(), "{fault:?}");
            let result = store.append(&[sample_batch(3, 2)]);
            assert_eq!(result.is_ok(), told, "{fault:?}");
            assert!(store.plan.has_struck(), "{fault:?}");
            let head = memory.head().expect("head").last_seq;
            assert_eq!(head, Seq(if written { 4 } else { 2 }), "{fault:?}");
            assert!(store.append(&[sample_batch(4, 1)]).is_err(), "{fault:?}");
            assert!(store.head().is_err(), "{fault:?}");
            assert!(store.read(Seq(1), 10).is_err(), "{fault:?}");
        }
    }

    /// A redb file on a `DyingFile`: writes pass until armed; the commit
    /// that meets the death fails, every later one too; the file reopened
    /// plain holds a whole commit, never part of one.
    #[test]
    fn a_dying_file_fails_the_commit_it_dies_in_and_every_later_one() {
        use redb::{Builder, TableDefinition};
        const T: TableDefinition<u64, u64> = TableDefinition::new("t");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dying.redb");
        let death = DiskDeath::new();
        let write = |db: &redb::Database, n: u64| -> Result<(), redb::Error> {
            let txn = db.begin_write()?;
            {
                let mut t = txn.open_table(T)?;
                for k in 0..n {
                    t.insert(k, n)?;
                }
            }
            txn.commit()?;
            Ok(())
        };
        {
            let db = Builder::new()
                .create_with_backend(DyingFile::open(&path, death.clone()).expect("file"))
                .expect("db");
            write(&db, 10).expect("unarmed");
            death.arm(1);
            assert!(write(&db, 500).is_err(), "the commit meets the death");
            assert!(death.has_died());
            assert!(write(&db, 3).is_err(), "a dead disk takes nothing more");
        }
        let db = redb::Database::create(&path).expect("reopens plain");
        let txn = redb::ReadableDatabase::begin_read(&db).expect("read");
        let t = txn.open_table(T).expect("table");
        let first = t.get(0).expect("get").map(|v| v.value());
        assert!(
            first == Some(10) || first == Some(500),
            "a whole commit: {first:?}"
        );
    }
}

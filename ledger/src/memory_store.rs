//! [`MemoryStore`]: the log in memory, same records and chain as
//! [`crate::redb_store::RedbStore`] (both append through
//! [`crate::store::chain_batches`]). For tests and loom models; nothing is
//! durable. It can be told to fail appends, to test what callers do then.

use crate::store::{
    Batch, EventStore, Hash32, Head, RawEventStore, RawRecord, Seq, StoreError, StoredRecord,
    chain_batches,
};
use crate::sync::{Mutex, lock};
use crate::tail::{HeadWatch, Watchable};

#[derive(Default)]
struct State {
    records: Vec<RawRecord>,
    /// Appends still to succeed before every later one fails; `None`: never fail.
    appends_before_failure: Option<u64>,
}

/// An in-memory [`EventStore`].
pub struct MemoryStore {
    state: Mutex<State>,
    watch: HeadWatch,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore {
            state: Mutex::new(State::default()),
            watch: HeadWatch::default(),
        }
    }

    /// After `n` more successful appends, every append fails with
    /// [`StoreError::Io`] and appends nothing (a disk that stopped taking writes).
    pub fn fail_after_appends(&self, n: u64) {
        lock(&self.state).appends_before_failure = Some(n);
    }

    /// A log holding `records` as they are, read by position whatever
    /// seq, hash or order they claim: a log as a forger left it, for the
    /// auditor's tests (feature `testkit`).
    #[cfg(feature = "testkit")]
    pub fn from_raw_records(records: Vec<RawRecord>) -> MemoryStore {
        MemoryStore {
            state: Mutex::new(State {
                records,
                appends_before_failure: None,
            }),
            watch: HeadWatch::default(),
        }
    }

    /// Changes the stored event bytes of record `seq` with `tamper`, as a
    /// corrupting disk or a forger would. Returns false if there is no such record.
    pub fn tamper_with(&self, seq: Seq, tamper: impl FnOnce(&mut RawRecord)) -> bool {
        let mut state = lock(&self.state);
        let Some(index) = seq.0.checked_sub(1) else {
            return false;
        };
        match usize::try_from(index)
            .ok()
            .and_then(|i| state.records.get_mut(i))
        {
            Some(record) => {
                tamper(record);
                true
            }
            None => false,
        }
    }
}

fn head_of(records: &[RawRecord]) -> Head {
    records.last().map_or(
        Head {
            last_seq: Seq(0),
            last_hash: Hash32::GENESIS,
        },
        |r| Head {
            last_seq: r.seq,
            last_hash: r.hash,
        },
    )
}

impl EventStore for MemoryStore {
    fn append(&self, batches: &[Batch]) -> Result<Vec<Seq>, StoreError> {
        let mut state = lock(&self.state);
        if let Some(left) = state.appends_before_failure.as_mut() {
            if *left == 0 {
                return Err(StoreError::Io(std::io::Error::other(
                    "injected failure: the memory store refuses appends",
                )));
            }
            *left -= 1;
        }
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        let (records, firsts) = chain_batches(head_of(&state.records), batches)?;
        state.records.extend(records);
        let last = head_of(&state.records).last_seq;
        drop(state);
        self.watch.publish(last);
        Ok(firsts)
    }

    fn head(&self) -> Result<Head, StoreError> {
        Ok(head_of(&lock(&self.state).records))
    }

    fn read(&self, from: Seq, max_records: usize) -> Result<Vec<StoredRecord>, StoreError> {
        self.read_raw(from, max_records)?
            .iter()
            .map(RawRecord::decode)
            .collect()
    }
}

impl RawEventStore for MemoryStore {
    fn read_raw(&self, from: Seq, max_records: usize) -> Result<Vec<RawRecord>, StoreError> {
        let state = lock(&self.state);
        let start = usize::try_from(from.0.max(1) - 1).unwrap_or(usize::MAX);
        Ok(state
            .records
            .iter()
            .skip(start)
            .take(max_records)
            .cloned()
            .collect())
    }
}

impl Watchable for MemoryStore {
    fn watch(&self) -> HeadWatch {
        self.watch.clone()
    }
}

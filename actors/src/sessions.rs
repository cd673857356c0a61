//! Protocol sessions: what the issuer must remember between two messages of
//! a flow (its key share `K_I`, the nonce `R_I`, who the peer is), with an
//! expiry, and single use where the protocol says so (a replayed WRequest3
//! finds its `R_I` used: paper's W3).
//!
//! Kept in a redb file because a coin purchase spans days (the bank debit
//! settles late). A used session leaves a tombstone until its expiry, so a
//! replay is told "already used", not "unknown". The payload is any
//! serde type; its encoding is bounded on the way in and out.

use std::path::Path;

use ledger::Timestamp;
use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::constants::{SESSION_BYTES_MAX, SESSIONS_MAX};

/// A session handle: 128 random bits, given to the client.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionId(pub [u8; 16]);

impl SessionId {
    pub fn random() -> SessionId {
        SessionId(*ledger::TxId::random().as_bytes())
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A handle is not a secret, but half of it is enough to follow in logs.
        write!(f, "SessionId({:02x?}..)", &self.0[..4])
    }
}

/// Why a session could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error("unknown session")]
    Unknown,
    #[error("session expired")]
    Expired,
    #[error("session already used")]
    AlreadyUsed,
    #[error("a session with this id exists")]
    Exists,
    #[error("too many open sessions")]
    Full,
    #[error("session payload exceeds {SESSION_BYTES_MAX} bytes")]
    TooLarge,
    #[error("session record is corrupt: {0}")]
    Corrupt(String),
    #[error("session storage: {0}")]
    Storage(#[from] redb::Error),
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for SessionError {
            fn from(e: $t) -> SessionError {
                SessionError::Storage(e.into())
            }
        }
    )*};
}
storage_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions");

#[derive(Serialize, Deserialize)]
struct SessionRecord {
    expires_at: Timestamp,
    used: bool,
    payload: Vec<u8>,
}

/// Sessions with expiry, in their own redb file.
pub struct SessionStore {
    db: Database,
    durable: bool,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

impl SessionStore {
    /// Opens (or creates) the store at `path`. With `durable` every change
    /// is fsync'd before it returns (what flows spanning days need); without,
    /// a crash may lose recent sessions, which only costs clients a restart
    /// of their flow.
    pub fn open(path: impl AsRef<Path>, durable: bool) -> Result<SessionStore, SessionError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(SESSIONS)?;
        txn.commit()?;
        Ok(SessionStore { db, durable })
    }

    fn write(&self) -> Result<redb::WriteTransaction, SessionError> {
        let mut txn = self.db.begin_write()?;
        if !self.durable {
            txn.set_durability(Durability::None)?;
        }
        Ok(txn)
    }

    /// Opens session `id` holding `payload` until `expires_at`.
    pub fn insert<T: Serialize>(
        &self,
        id: SessionId,
        payload: &T,
        expires_at: Timestamp,
    ) -> Result<(), SessionError> {
        let payload =
            postcard::to_stdvec(payload).map_err(|e| SessionError::Corrupt(e.to_string()))?;
        if payload.len() > SESSION_BYTES_MAX {
            return Err(SessionError::TooLarge);
        }
        let record = SessionRecord {
            expires_at,
            used: false,
            payload,
        };
        let bytes =
            postcard::to_stdvec(&record).map_err(|e| SessionError::Corrupt(e.to_string()))?;
        let txn = self.write()?;
        {
            let mut table = txn.open_table(SESSIONS)?;
            if table.len()? as usize >= SESSIONS_MAX {
                return Err(SessionError::Full);
            }
            if table.get(id.0.as_slice())?.is_some() {
                return Err(SessionError::Exists);
            }
            table.insert(id.0.as_slice(), bytes.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Replaces the payload of live session `id` (e.g. a purchase session
    /// after its `R_I` was spent), keeping its expiry.
    pub fn replace<T: Serialize>(&self, id: SessionId, payload: &T) -> Result<(), SessionError> {
        let payload =
            postcard::to_stdvec(payload).map_err(|e| SessionError::Corrupt(e.to_string()))?;
        if payload.len() > SESSION_BYTES_MAX {
            return Err(SessionError::TooLarge);
        }
        let txn = self.write()?;
        {
            let mut table = txn.open_table(SESSIONS)?;
            let mut record = Self::read_record(&table, id)?;
            if record.used {
                return Err(SessionError::AlreadyUsed);
            }
            record.payload = payload;
            let bytes =
                postcard::to_stdvec(&record).map_err(|e| SessionError::Corrupt(e.to_string()))?;
            table.insert(id.0.as_slice(), bytes.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    fn read_record(
        table: &impl ReadableTable<&'static [u8], &'static [u8]>,
        id: SessionId,
    ) -> Result<SessionRecord, SessionError> {
        let bytes = match table.get(id.0.as_slice())? {
            Some(v) => v.value().to_vec(),
            None => return Err(SessionError::Unknown),
        };
        if bytes.len() > SESSION_BYTES_MAX + 64 {
            return Err(SessionError::Corrupt("record too long".into()));
        }
        postcard::from_bytes(&bytes).map_err(|e| SessionError::Corrupt(e.to_string()))
    }

    fn open_payload<T: for<'de> Deserialize<'de>>(
        record: &SessionRecord,
        now: Timestamp,
    ) -> Result<T, SessionError> {
        if record.used {
            return Err(SessionError::AlreadyUsed);
        }
        if now >= record.expires_at {
            return Err(SessionError::Expired);
        }
        postcard::from_bytes(&record.payload).map_err(|e| SessionError::Corrupt(e.to_string()))
    }

    /// Reads session `id` without using it up.
    pub fn get<T: for<'de> Deserialize<'de>>(
        &self,
        id: SessionId,
        now: Timestamp,
    ) -> Result<T, SessionError> {
        use redb::ReadableDatabase;
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SESSIONS)?;
        let record = Self::read_record(&table, id)?;
        Self::open_payload(&record, now)
    }

    /// Uses session `id` up: it returns the payload once; later calls are
    /// told [`SessionError::AlreadyUsed`] until the session expires.
    pub fn take<T: for<'de> Deserialize<'de>>(
        &self,
        id: SessionId,
        now: Timestamp,
    ) -> Result<T, SessionError> {
        let txn = self.write()?;
        let payload = {
            let mut table = txn.open_table(SESSIONS)?;
            let mut record = Self::read_record(&table, id)?;
            let payload = Self::open_payload(&record, now)?;
            record.used = true;
            // The key material goes; the tombstone remains until expiry.
            record.payload.clear();
            let bytes =
                postcard::to_stdvec(&record).map_err(|e| SessionError::Corrupt(e.to_string()))?;
            table.insert(id.0.as_slice(), bytes.as_slice())?;
            payload
        };
        txn.commit()?;
        Ok(payload)
    }

    /// Forgets session `id` altogether.
    pub fn remove(&self, id: SessionId) -> Result<(), SessionError> {
        let txn = self.write()?;
        txn.open_table(SESSIONS)?.remove(id.0.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Drops every session (and tombstone) expired at `now`; returns how many.
    pub fn purge_expired(&self, now: Timestamp) -> Result<usize, SessionError> {
        let txn = self.write()?;
        let n = {
            let mut table = txn.open_table(SESSIONS)?;
            let mut expired = Vec::new();
            for item in table.iter()? {
                let (k, v) = item?;
                let record: SessionRecord = postcard::from_bytes(v.value())
                    .map_err(|e| SessionError::Corrupt(e.to_string()))?;
                if now >= record.expires_at {
                    expired.push(k.value().to_vec());
                }
            }
            for key in &expired {
                table.remove(key.as_slice())?;
            }
            expired.len()
        };
        if n == 0 {
            txn.abort()?;
        } else {
            txn.commit()?;
        }
        Ok(n)
    }

    /// Number of sessions and tombstones held.
    pub fn len(&self) -> Result<usize, SessionError> {
        use redb::ReadableDatabase;
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(SESSIONS)?.len()? as usize)
    }

    pub fn is_empty(&self) -> Result<bool, SessionError> {
        Ok(self.len()? == 0)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct PurchaseSession {
        k: [u8; 32],
        r_i: [u8; 32],
    }

    fn session() -> PurchaseSession {
        PurchaseSession {
            k: [7; 32],
            r_i: [9; 32],
        }
    }

    #[test]
    fn a_session_is_single_use() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SessionStore::open(dir.path().join("s.redb"), true).expect("open");
        let id = SessionId::random();
        store
            .insert(id, &session(), Timestamp(100))
            .expect("insert");
        assert_eq!(
            store.get::<PurchaseSession>(id, Timestamp(1)).expect("get"),
            session()
        );
        assert_eq!(
            store
                .take::<PurchaseSession>(id, Timestamp(1))
                .expect("take"),
            session()
        );
        assert!(matches!(
            store.take::<PurchaseSession>(id, Timestamp(2)),
            Err(SessionError::AlreadyUsed)
        ));
        assert!(matches!(
            store.insert(id, &session(), Timestamp(100)),
            Err(SessionError::Exists)
        ));
    }

    #[test]
    fn an_expired_session_is_refused_and_purged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SessionStore::open(dir.path().join("s.redb"), false).expect("open");
        let id = SessionId::random();
        store.insert(id, &session(), Timestamp(10)).expect("insert");
        assert!(matches!(
            store.take::<PurchaseSession>(id, Timestamp(10)),
            Err(SessionError::Expired)
        ));
        assert!(matches!(
            store.get::<PurchaseSession>(SessionId::random(), Timestamp(1)),
            Err(SessionError::Unknown)
        ));
        assert_eq!(store.purge_expired(Timestamp(10)).expect("purge"), 1);
        assert!(store.is_empty().expect("len"));
    }

    #[test]
    fn a_durable_session_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb");
        let id = SessionId::random();
        {
            let store = SessionStore::open(&path, true).expect("open");
            store
                .insert(id, &session(), Timestamp(100))
                .expect("insert");
        }
        let store = SessionStore::open(&path, true).expect("reopen");
        assert_eq!(
            store
                .take::<PurchaseSession>(id, Timestamp(1))
                .expect("take"),
            session()
        );
    }

    #[test]
    fn oversized_payloads_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SessionStore::open(dir.path().join("s.redb"), false).expect("open");
        let big = vec![0u8; SESSION_BYTES_MAX + 1];
        assert!(matches!(
            store.insert(SessionId::random(), &big, Timestamp(5)),
            Err(SessionError::TooLarge)
        ));
    }
}

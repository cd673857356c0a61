//! The participant registry: registered identities and their keys, and
//! enrollments (pending or approved) with their roles, bank accounts and,
//! for merchants, aggregate balances.
//!
//! The log holds identities only sealed (the issuer cannot open them), so
//! the registry keeps its own redb file: it is the issuer's participant
//! database, written after the event that justifies each change is durable.

use std::path::Path;

use ledger::{BalanceId, BankAccount, ParticipantId, Role, Timestamp};
use protocol::crypto::PublicKey;
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};

/// Why the registry failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    #[error("registry record is corrupt: {0}")]
    Corrupt(String),
    #[error("registry storage: {0}")]
    Storage(#[from] redb::Error),
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for RegistryError {
            fn from(e: $t) -> RegistryError {
                RegistryError::Storage(e.into())
            }
        }
    )*};
}
storage_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// One enrollment of a participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    pub role: Role,
    pub bank_account: BankAccount,
    pub approved: bool,
    /// A merchant's aggregate balance, once approved.
    pub balance: Option<BalanceId>,
}

/// What the issuer knows of one participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub public_key: PublicKey,
    pub cert_expiry: Timestamp,
    pub enrollments: Vec<Enrollment>,
    /// Coins issued to this participant non-anonymously (what a refund
    /// revokes); spent ones are filtered out against the shards.
    pub coins: Vec<ledger::CoinId>,
}

impl Participant {
    /// The approved enrollment for `role`, if any.
    pub fn enrolled(&self, role: Role) -> Option<&Enrollment> {
        self.enrollments
            .iter()
            .find(|e| e.role == role && e.approved)
    }
}

const PARTICIPANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("participants");
/// Longest encoded participant record (a key, a few enrollments).
const PARTICIPANT_BYTES_MAX: usize = 8 * 1024;

/// Participants in their own redb file.
pub struct Registry {
    db: Database,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    pub fn open(path: impl AsRef<Path>) -> Result<Registry, RegistryError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(PARTICIPANTS)?;
        txn.commit()?;
        Ok(Registry { db })
    }

    pub fn get(&self, id: &ParticipantId) -> Result<Option<Participant>, RegistryError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(PARTICIPANTS)?;
        let Some(value) = table.get(id.as_str())? else {
            return Ok(None);
        };
        let bytes = value.value();
        if bytes.len() > PARTICIPANT_BYTES_MAX {
            return Err(RegistryError::Corrupt("record too long".into()));
        }
        postcard::from_bytes(bytes)
            .map(Some)
            .map_err(|e| RegistryError::Corrupt(e.to_string()))
    }

    /// Records `coins` as issued to `id` (non-anonymous purchase, refund).
    pub fn add_coins(
        &self,
        id: &ParticipantId,
        coins: impl IntoIterator<Item = ledger::CoinId>,
    ) -> Result<(), RegistryError> {
        if let Some(mut p) = self.get(id)? {
            p.coins.extend(coins);
            self.put(id, &p)?;
        }
        Ok(())
    }

    /// Writes `participant` durably.
    pub fn put(&self, id: &ParticipantId, participant: &Participant) -> Result<(), RegistryError> {
        let bytes =
            postcard::to_stdvec(participant).map_err(|e| RegistryError::Corrupt(e.to_string()))?;
        let txn = self.db.begin_write()?;
        txn.open_table(PARTICIPANTS)?
            .insert(id.as_str(), bytes.as_slice())?;
        txn.commit()?;
        Ok(())
    }
}

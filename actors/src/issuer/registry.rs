//! The participant registry: registered identities and their keys, and
//! enrollments (pending or approved) with their roles, bank accounts and,
//! for merchants, aggregate balances; each participant's standing
//! (suspended, revoked) and the enrollments its operator refused.
//!
//! The log holds identities only sealed (the issuer cannot open them), so
//! the registry keeps its own redb file: it is the issuer's participant
//! database, written after the event that justifies each change is durable.

use std::path::Path;

use ledger::{BalanceId, BankAccount, ParticipantId, Role, Standing, Timestamp};
use protocol::crypto::PublicKey;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
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
/// Coins issued to a participant non-anonymously (what a refund revokes:
/// purchases, refunds, and change and refresh of such coins),
/// keyed `id ‖ 0x00 ‖ coin id` so one participant's coins are one range.
/// Identities never hold a 0x00 byte (see `ParticipantId::new`).
const HOLDER_COINS: TableDefinition<&[u8], ()> = TableDefinition::new("holder_coins");

fn holder_key(id: &ParticipantId, coin: &ledger::CoinId) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.as_str().len() + 1 + ledger::CoinId::LEN);
    key.extend_from_slice(id.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(coin.as_bytes());
    key
}

/// Participants not in good standing (suspended or revoked), by id; an
/// absent id is active. Kept apart from the participant record so that
/// record's encoding stays as it is.
const STANDINGS: TableDefinition<&str, u8> = TableDefinition::new("standings");
/// Enrollments an operator refused, keyed `id ‖ 0x00 ‖ role`.
const REFUSED_ENROLLMENTS: TableDefinition<&[u8], ()> = TableDefinition::new("refused_enrollments");

fn refused_key(id: &ParticipantId, role: Role) -> Vec<u8> {
    let mut key = id.as_str().as_bytes().to_vec();
    key.push(0);
    key.push(match role {
        Role::CoinPurchaser => 0,
        Role::Redeemer => 1,
        Role::Merchant => 2,
    });
    key
}

/// Redemption credits owed by committed (or committing) transactions:
/// written before the batch goes to the log, removed once the bank has the
/// credit, so a crash between the two is finished at the next start.
const PENDING_CREDITS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pending_credits");

/// A bank credit the issuer owes for a redemption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCredit {
    pub account: BankAccount,
    pub amount: ledger::Amount,
}
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
        // Identities and bank accounts: 0600 before redb opens the file.
        ledger::private_file::ensure_private_file(path.as_ref())
            .map_err(|e| RegistryError::Storage(redb::Error::Io(e)))?;
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(PARTICIPANTS)?;
        txn.open_table(PENDING_CREDITS)?;
        txn.open_table(HOLDER_COINS)?;
        txn.open_table(STANDINGS)?;
        txn.open_table(REFUSED_ENROLLMENTS)?;
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
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(HOLDER_COINS)?;
            for coin in coins {
                table.insert(holder_key(id, &coin).as_slice(), ())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Whether every one of `coins` is recorded as issued to `id`.
    pub fn holds_all<'a>(
        &self,
        id: &ParticipantId,
        coins: impl IntoIterator<Item = &'a ledger::CoinId>,
    ) -> Result<bool, RegistryError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(HOLDER_COINS)?;
        for coin in coins {
            if table.get(holder_key(id, coin).as_slice())?.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Forgets `coins` of `id` (revoked by a refund).
    pub fn remove_coins<'a>(
        &self,
        id: &ParticipantId,
        coins: impl IntoIterator<Item = &'a ledger::CoinId>,
    ) -> Result<(), RegistryError> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(HOLDER_COINS)?;
            for coin in coins {
                table.remove(holder_key(id, coin).as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// The coins recorded as issued to `id` (spent ones included: the
    /// caller checks them against the shards).
    pub fn coins_of(&self, id: &ParticipantId) -> Result<Vec<ledger::CoinId>, RegistryError> {
        let mut start = id.as_str().as_bytes().to_vec();
        start.push(0);
        let mut end = id.as_str().as_bytes().to_vec();
        end.push(1);
        let txn = self.db.begin_read()?;
        let table = txn.open_table(HOLDER_COINS)?;
        let mut out = Vec::new();
        for item in table.range(start.as_slice()..end.as_slice())? {
            let (k, _) = item?;
            let key = k.value();
            let coin: [u8; ledger::CoinId::LEN] = key
                .get(start.len()..)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| RegistryError::Corrupt("holder coin key".into()))?;
            out.push(ledger::CoinId::from_bytes(coin));
        }
        Ok(out)
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

impl Registry {
    /// Where `id` stands (active unless an operator said otherwise).
    pub fn standing(&self, id: &ParticipantId) -> Result<Standing, RegistryError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(STANDINGS)?;
        match table.get(id.as_str())?.map(|v| v.value()) {
            None => Ok(Standing::Active),
            Some(1) => Ok(Standing::Suspended),
            Some(2) => Ok(Standing::Revoked),
            Some(_) => Err(RegistryError::Corrupt("standing".into())),
        }
    }

    /// Records `standing` for `id` durably.
    pub fn set_standing(
        &self,
        id: &ParticipantId,
        standing: Standing,
    ) -> Result<(), RegistryError> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(STANDINGS)?;
            match standing {
                Standing::Active => {
                    table.remove(id.as_str())?;
                }
                Standing::Suspended => {
                    table.insert(id.as_str(), 1)?;
                }
                Standing::Revoked => {
                    table.insert(id.as_str(), 2)?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Whether an operator refused `id`'s enrollment for `role`.
    pub fn is_refused(&self, id: &ParticipantId, role: Role) -> Result<bool, RegistryError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(REFUSED_ENROLLMENTS)?;
        Ok(table.get(refused_key(id, role).as_slice())?.is_some())
    }

    /// Records the refusal of `id`'s enrollment for `role` and drops the
    /// pending request from its record, in one transaction.
    pub fn refuse_enrollment(
        &self,
        id: &ParticipantId,
        role: Role,
        participant: &Participant,
    ) -> Result<(), RegistryError> {
        let mut participant = participant.clone();
        participant.enrollments.retain(|e| e.role != role);
        let bytes =
            postcard::to_stdvec(&participant).map_err(|e| RegistryError::Corrupt(e.to_string()))?;
        let txn = self.db.begin_write()?;
        {
            txn.open_table(REFUSED_ENROLLMENTS)?
                .insert(refused_key(id, role).as_slice(), ())?;
            txn.open_table(PARTICIPANTS)?
                .insert(id.as_str(), bytes.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Suspends every approved `role` enrollment debiting or crediting
    /// `account` (it goes back to awaiting an operator's approval), in one
    /// transaction; returns how many. A returned purchase debit suspends
    /// the purchaser enrollments of the account it was drawn on.
    pub fn suspend_enrollments_on_account(
        &self,
        role: Role,
        account: &BankAccount,
    ) -> Result<usize, RegistryError> {
        let txn = self.db.begin_write()?;
        let mut n_suspended = 0;
        {
            let mut table = txn.open_table(PARTICIPANTS)?;
            let mut changed = Vec::new();
            for row in table.iter()? {
                let (id, value) = row?;
                let bytes = value.value();
                if bytes.len() > PARTICIPANT_BYTES_MAX {
                    return Err(RegistryError::Corrupt("record too long".into()));
                }
                let mut participant: Participant = postcard::from_bytes(bytes)
                    .map_err(|e| RegistryError::Corrupt(e.to_string()))?;
                let mut touched = false;
                for e in &mut participant.enrollments {
                    if e.role == role && e.approved && &e.bank_account == account {
                        e.approved = false;
                        touched = true;
                        n_suspended += 1;
                    }
                }
                if touched {
                    changed.push((id.value().to_owned(), participant));
                }
            }
            for (id, participant) in changed {
                let bytes = postcard::to_stdvec(&participant)
                    .map_err(|e| RegistryError::Corrupt(e.to_string()))?;
                table.insert(id.as_str(), bytes.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(n_suspended)
    }

    /// Records that `tx` owes `credit` (durably, before `tx` is logged).
    pub fn put_pending_credit(
        &self,
        tx: ledger::TxId,
        credit: &PendingCredit,
    ) -> Result<(), RegistryError> {
        let bytes =
            postcard::to_stdvec(credit).map_err(|e| RegistryError::Corrupt(e.to_string()))?;
        let txn = self.db.begin_write()?;
        txn.open_table(PENDING_CREDITS)?
            .insert(tx.as_bytes().as_slice(), bytes.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// The credit is with the bank (or `tx` never committed).
    pub fn remove_pending_credit(&self, tx: ledger::TxId) -> Result<(), RegistryError> {
        let txn = self.db.begin_write()?;
        txn.open_table(PENDING_CREDITS)?
            .remove(tx.as_bytes().as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// The credit `tx` still owes, if any: the account and amount its
    /// commit recorded (none once the bank has it).
    pub fn pending_credit(&self, tx: ledger::TxId) -> Result<Option<PendingCredit>, RegistryError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(PENDING_CREDITS)?;
        let Some(v) = table.get(tx.as_bytes().as_slice())? else {
            return Ok(None);
        };
        if v.value().len() > PARTICIPANT_BYTES_MAX {
            return Err(RegistryError::Corrupt("pending credit too long".into()));
        }
        postcard::from_bytes(v.value())
            .map(Some)
            .map_err(|e| RegistryError::Corrupt(e.to_string()))
    }

    /// Every credit still owed.
    pub fn pending_credits(&self) -> Result<Vec<(ledger::TxId, PendingCredit)>, RegistryError> {
        use redb::ReadableTable;
        let txn = self.db.begin_read()?;
        let table = txn.open_table(PENDING_CREDITS)?;
        let mut out = Vec::new();
        for item in table.iter()? {
            let (k, v) = item?;
            let key: [u8; 16] = k
                .value()
                .try_into()
                .map_err(|_| RegistryError::Corrupt("pending credit key".into()))?;
            if v.value().len() > PARTICIPANT_BYTES_MAX {
                return Err(RegistryError::Corrupt("pending credit too long".into()));
            }
            let credit = postcard::from_bytes(v.value())
                .map_err(|e| RegistryError::Corrupt(e.to_string()))?;
            out.push((ledger::TxId::from_bytes(key), credit));
        }
        Ok(out)
    }
}

//! The bank behind the issuer: the [`Bank`] trait (what a real ACH connector
//! implements) and [`SimulatedBank`], durable in its own redb file.
//!
//! A debit (coin purchase, paper's WExecution) is asked once per purchase
//! and settles after a configurable delay, or is rejected at settlement
//! (insufficient funds, closed or unknown account), as an ACH debit would
//! come back days later. Pending debits live in the file, so they survive a
//! restart. Credits (redemptions) are immediate and idempotent by their
//! reference. Every movement of money is a statement entry, which the
//! auditor reconciles against the issuer's log.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ledger::{Amount, BankAccount, BankRejection, PurchaseId, TxId};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::constants::{BANK_RECORD_BYTES_MAX, STATEMENT_ENTRIES_MAX};

/// Where a debit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DebitStatus {
    /// Asked, not yet settled.
    Pending,
    /// The money moved to the issuer.
    Settled,
    /// The bank refused; no money moved.
    Rejected(BankRejection),
}

/// What a statement entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatementKind {
    /// A settled purchase debit: money from the account to the issuer.
    Debit(PurchaseId),
    /// A redemption credit: money from the issuer to the account.
    Credit(TxId),
    /// A settled purchase debit given back to the account.
    Returned(PurchaseId),
}

/// One movement of money, as the bank reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementEntry {
    /// Position in the statement, from 1.
    pub seq: u64,
    pub kind: StatementKind,
    pub account: BankAccount,
    pub amount: Amount,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// Why the bank refused an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BankError {
    #[error("unknown bank account")]
    UnknownAccount,
    #[error("bank account is closed")]
    AccountClosed,
    #[error("bank account already exists")]
    AccountExists,
    #[error("a different debit was already asked for this purchase")]
    ConflictingDebit,
    #[error("a different credit was already made under this reference")]
    ConflictingCredit,
    #[error("no debit was asked for this purchase")]
    UnknownDebit,
    #[error("amount overflow")]
    Overflow,
    #[error("bank store is corrupt: {0}")]
    Corrupt(String),
    #[error("bank storage: {0}")]
    Storage(#[from] redb::Error),
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for BankError {
            fn from(e: $t) -> BankError {
                BankError::Storage(e.into())
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

/// What the issuer needs of a bank. Implementations are durable: an
/// answered call survives a crash of either side.
pub trait Bank: Send + Sync {
    /// Asks to debit `amount` from `account` for `purchase`. Idempotent: the
    /// same purchase asked again returns its current status.
    fn debit(
        &self,
        purchase: PurchaseId,
        account: &BankAccount,
        amount: Amount,
    ) -> Result<DebitStatus, BankError>;

    /// The current status of the debit for `purchase`.
    fn debit_status(&self, purchase: PurchaseId) -> Result<DebitStatus, BankError>;

    /// Whether `account` can take a credit now (checked before a redemption
    /// is committed, so a committed redemption is never refused).
    fn check_account(&self, account: &BankAccount) -> Result<(), BankError>;

    /// Credits `amount` to `account`. Idempotent by `reference`: a retried
    /// credit moves no money twice.
    fn credit(
        &self,
        reference: TxId,
        account: &BankAccount,
        amount: Amount,
    ) -> Result<(), BankError>;

    /// Statement entries from position `from_seq` on, at most `max_entries`.
    fn statement(
        &self,
        from_seq: u64,
        max_entries: usize,
    ) -> Result<Vec<StatementEntry>, BankError>;
}

const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");
const DEBITS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("debits");
const PENDING: TableDefinition<&[u8], u64> = TableDefinition::new("pending_debits");
const CREDITS: TableDefinition<&[u8], u64> = TableDefinition::new("credits");
const STATEMENT: TableDefinition<u64, &[u8]> = TableDefinition::new("statement");
/// Settled debits given back, by purchase.
const RETURNED: TableDefinition<&[u8], ()> = TableDefinition::new("returned_debits");

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct AccountRecord {
    balance: u64,
    open: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DebitRecord {
    account: BankAccount,
    amount: Amount,
    due_ms: u64,
    status: DebitStatus,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Our own small records always encode.
    postcard::to_stdvec(value).expect("postcard encoding of a bank record")
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, BankError> {
    if bytes.len() > BANK_RECORD_BYTES_MAX {
        return Err(BankError::Corrupt("record too long".into()));
    }
    postcard::from_bytes(bytes).map_err(|e| BankError::Corrupt(e.to_string()))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A bank simulated in its own redb file.
pub struct SimulatedBank {
    db: Database,
    settle_delay: Duration,
}

impl std::fmt::Debug for SimulatedBank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedBank")
            .field("settle_delay", &self.settle_delay)
            .finish_non_exhaustive()
    }
}

impl SimulatedBank {
    /// Opens (or creates) the bank at `path`; debits asked from now on settle
    /// `settle_delay` after they are asked.
    pub fn open(
        path: impl AsRef<Path>,
        settle_delay: Duration,
    ) -> Result<SimulatedBank, BankError> {
        // Bank accounts and balances: 0600 before redb opens the file.
        ledger::private_file::ensure_private_file(path.as_ref())
            .map_err(|e| BankError::Storage(redb::Error::Io(e)))?;
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        {
            txn.open_table(ACCOUNTS)?;
            txn.open_table(DEBITS)?;
            txn.open_table(PENDING)?;
            txn.open_table(CREDITS)?;
            txn.open_table(STATEMENT)?;
            txn.open_table(RETURNED)?;
        }
        txn.commit()?;
        Ok(SimulatedBank { db, settle_delay })
    }

    /// Opens a new account holding `balance`.
    pub fn open_account(&self, account: &BankAccount, balance: Amount) -> Result<(), BankError> {
        let txn = self.db.begin_write()?;
        {
            let mut accounts = txn.open_table(ACCOUNTS)?;
            if accounts.get(account.as_str())?.is_some() {
                return Err(BankError::AccountExists);
            }
            let rec = AccountRecord {
                balance: balance.minor_units(),
                open: true,
            };
            accounts.insert(account.as_str(), encode(&rec).as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Closes an account: later debits against it are rejected.
    pub fn close_account(&self, account: &BankAccount) -> Result<(), BankError> {
        let txn = self.db.begin_write()?;
        {
            let mut accounts = txn.open_table(ACCOUNTS)?;
            let mut rec: AccountRecord = match accounts.get(account.as_str())? {
                Some(v) => decode(v.value())?,
                None => return Err(BankError::UnknownAccount),
            };
            rec.open = false;
            accounts.insert(account.as_str(), encode(&rec).as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The balance of `account`.
    pub fn balance(&self, account: &BankAccount) -> Result<Amount, BankError> {
        let txn = self.db.begin_read()?;
        let accounts = txn.open_table(ACCOUNTS)?;
        match accounts.get(account.as_str())? {
            Some(v) => Ok(Amount::from_minor(
                decode::<AccountRecord>(v.value())?.balance,
            )),
            None => Err(BankError::UnknownAccount),
        }
    }

    /// Gives a settled debit back to the account it was drawn on (the
    /// purchaser's bank honoured a refund claim, or found the funds were
    /// not there): the money moves back and the statement shows the
    /// return. Returns the account and amount; once only (`None` after).
    pub fn return_debit(
        &self,
        purchase: PurchaseId,
    ) -> Result<Option<(BankAccount, Amount)>, BankError> {
        let key = purchase.as_bytes().as_slice();
        let txn = self.db.begin_write()?;
        let returned = {
            let debits = txn.open_table(DEBITS)?;
            let debit: DebitRecord = match debits.get(key)? {
                Some(v) => decode(v.value())?,
                None => return Err(BankError::UnknownDebit),
            };
            let mut returned = txn.open_table(RETURNED)?;
            if debit.status != DebitStatus::Settled || returned.get(key)?.is_some() {
                None
            } else {
                returned.insert(key, ())?;
                let mut accounts = txn.open_table(ACCOUNTS)?;
                let mut acc: AccountRecord = match accounts.get(debit.account.as_str())? {
                    Some(v) => decode(v.value())?,
                    None => return Err(BankError::UnknownAccount),
                };
                acc.balance = acc
                    .balance
                    .checked_add(debit.amount.minor_units())
                    .ok_or(BankError::Overflow)?;
                accounts.insert(debit.account.as_str(), encode(&acc).as_slice())?;
                append_statement(
                    &mut txn.open_table(STATEMENT)?,
                    StatementKind::Returned(purchase),
                    &debit.account,
                    debit.amount,
                    now_ms(),
                )?;
                Some((debit.account, debit.amount))
            }
        };
        txn.commit()?;
        Ok(returned)
    }

    /// The whole statement, every movement of money from the first: what
    /// the bank hands an auditor (`varietycash bank export`), who matches
    /// it against the issuer's log.
    pub fn export_statement(&self) -> Result<Vec<StatementEntry>, BankError> {
        let mut out: Vec<StatementEntry> = Vec::new();
        loop {
            let from = out.last().map_or(1, |e| e.seq.saturating_add(1));
            let page = self.statement(from, STATEMENT_ENTRIES_MAX)?;
            if page.is_empty() {
                return Ok(out);
            }
            out.extend(page);
        }
    }

    /// Purchases whose debit is still pending (survives a restart).
    pub fn pending_debits(&self) -> Result<Vec<PurchaseId>, BankError> {
        let txn = self.db.begin_read()?;
        let pending = txn.open_table(PENDING)?;
        let mut out = Vec::new();
        for item in pending.iter()? {
            let (k, _) = item?;
            out.push(purchase_from_key(k.value())?);
        }
        Ok(out)
    }

    /// Settles or rejects every debit that is due; returns what changed.
    pub fn settle_due(&self) -> Result<Vec<(PurchaseId, DebitStatus)>, BankError> {
        let now = now_ms();
        let txn = self.db.begin_write()?;
        let mut changed = Vec::new();
        {
            let mut pending = txn.open_table(PENDING)?;
            let mut debits = txn.open_table(DEBITS)?;
            let mut accounts = txn.open_table(ACCOUNTS)?;
            let mut statement = txn.open_table(STATEMENT)?;
            let mut due = Vec::new();
            for item in pending.iter()? {
                let (k, v) = item?;
                if v.value() <= now {
                    due.push(k.value().to_vec());
                }
            }
            for key in due {
                pending.remove(key.as_slice())?;
                let mut debit: DebitRecord = match debits.get(key.as_slice())? {
                    Some(v) => decode(v.value())?,
                    None => return Err(BankError::Corrupt("pending debit without record".into())),
                };
                let account = match accounts.get(debit.account.as_str())? {
                    Some(v) => Some(decode::<AccountRecord>(v.value())?),
                    None => None,
                };
                debit.status = match account {
                    None => DebitStatus::Rejected(BankRejection::UnknownAccount),
                    Some(acc) if !acc.open => DebitStatus::Rejected(BankRejection::AccountClosed),
                    Some(acc) if acc.balance < debit.amount.minor_units() => {
                        DebitStatus::Rejected(BankRejection::InsufficientFunds)
                    }
                    Some(mut acc) => {
                        acc.balance -= debit.amount.minor_units();
                        accounts.insert(debit.account.as_str(), encode(&acc).as_slice())?;
                        let purchase = purchase_from_key(&key)?;
                        append_statement(
                            &mut statement,
                            StatementKind::Debit(purchase),
                            &debit.account,
                            debit.amount,
                            now,
                        )?;
                        DebitStatus::Settled
                    }
                };
                debits.insert(key.as_slice(), encode(&debit).as_slice())?;
                changed.push((purchase_from_key(&key)?, debit.status));
            }
        }
        if changed.is_empty() {
            // Nothing was due: no need to pay for an fsync.
            txn.abort()?;
        } else {
            txn.commit()?;
            tracing::debug!(n_debits = changed.len(), "simulated bank settled debits");
        }
        Ok(changed)
    }
}

fn purchase_from_key(key: &[u8]) -> Result<PurchaseId, BankError> {
    let bytes: [u8; PurchaseId::LEN] = key
        .try_into()
        .map_err(|_| BankError::Corrupt("purchase key length".into()))?;
    Ok(PurchaseId::from_bytes(bytes))
}

fn append_statement(
    statement: &mut redb::Table<u64, &[u8]>,
    kind: StatementKind,
    account: &BankAccount,
    amount: Amount,
    at_ms: u64,
) -> Result<u64, BankError> {
    let seq = match statement.last()? {
        Some((k, _)) => k.value() + 1,
        None => 1,
    };
    let entry = StatementEntry {
        seq,
        kind,
        account: account.clone(),
        amount,
        at_ms,
    };
    statement.insert(seq, encode(&entry).as_slice())?;
    Ok(seq)
}

impl Bank for SimulatedBank {
    fn debit(
        &self,
        purchase: PurchaseId,
        account: &BankAccount,
        amount: Amount,
    ) -> Result<DebitStatus, BankError> {
        let key = purchase.as_bytes().as_slice();
        let txn = self.db.begin_write()?;
        let status = {
            let mut debits = txn.open_table(DEBITS)?;
            let existing = match debits.get(key)? {
                Some(v) => Some(decode::<DebitRecord>(v.value())?),
                None => None,
            };
            match existing {
                Some(d) if d.account != *account || d.amount != amount => {
                    return Err(BankError::ConflictingDebit);
                }
                Some(d) => d.status,
                None => {
                    let due_ms = now_ms().saturating_add(self.settle_delay.as_millis() as u64);
                    let rec = DebitRecord {
                        account: account.clone(),
                        amount,
                        due_ms,
                        status: DebitStatus::Pending,
                    };
                    debits.insert(key, encode(&rec).as_slice())?;
                    txn.open_table(PENDING)?.insert(key, due_ms)?;
                    DebitStatus::Pending
                }
            }
        };
        txn.commit()?;
        if status == DebitStatus::Pending {
            // A zero delay settles at once, as a synchronous bank would.
            self.settle_due()?;
            return self.debit_status(purchase);
        }
        Ok(status)
    }

    fn debit_status(&self, purchase: PurchaseId) -> Result<DebitStatus, BankError> {
        self.settle_due()?;
        let txn = self.db.begin_read()?;
        let debits = txn.open_table(DEBITS)?;
        match debits.get(purchase.as_bytes().as_slice())? {
            Some(v) => Ok(decode::<DebitRecord>(v.value())?.status),
            None => Err(BankError::UnknownDebit),
        }
    }

    fn check_account(&self, account: &BankAccount) -> Result<(), BankError> {
        let txn = self.db.begin_read()?;
        let accounts = txn.open_table(ACCOUNTS)?;
        match accounts.get(account.as_str())? {
            Some(v) if decode::<AccountRecord>(v.value())?.open => Ok(()),
            Some(_) => Err(BankError::AccountClosed),
            None => Err(BankError::UnknownAccount),
        }
    }

    fn credit(
        &self,
        reference: TxId,
        account: &BankAccount,
        amount: Amount,
    ) -> Result<(), BankError> {
        let key = reference.as_bytes().as_slice();
        let txn = self.db.begin_write()?;
        {
            let mut credits = txn.open_table(CREDITS)?;
            let mut statement = txn.open_table(STATEMENT)?;
            if let Some(seq) = credits.get(key)? {
                let seq = seq.value();
                let entry: StatementEntry = match statement.get(seq)? {
                    Some(v) => decode(v.value())?,
                    None => return Err(BankError::Corrupt("credit without statement".into())),
                };
                return if entry.account == *account && entry.amount == amount {
                    Ok(())
                } else {
                    Err(BankError::ConflictingCredit)
                };
            }
            let mut accounts = txn.open_table(ACCOUNTS)?;
            let mut rec: AccountRecord = match accounts.get(account.as_str())? {
                Some(v) => decode(v.value())?,
                None => return Err(BankError::UnknownAccount),
            };
            if !rec.open {
                return Err(BankError::AccountClosed);
            }
            rec.balance = rec
                .balance
                .checked_add(amount.minor_units())
                .ok_or(BankError::Overflow)?;
            accounts.insert(account.as_str(), encode(&rec).as_slice())?;
            let seq = append_statement(
                &mut statement,
                StatementKind::Credit(reference),
                account,
                amount,
                now_ms(),
            )?;
            credits.insert(key, seq)?;
        }
        txn.commit()?;
        Ok(())
    }

    fn statement(
        &self,
        from_seq: u64,
        max_entries: usize,
    ) -> Result<Vec<StatementEntry>, BankError> {
        let txn = self.db.begin_read()?;
        let statement = txn.open_table(STATEMENT)?;
        let mut out = Vec::new();
        for item in statement.range(from_seq..)? {
            if out.len() >= max_entries.min(STATEMENT_ENTRIES_MAX) {
                break;
            }
            let (_, v) = item?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn acct(s: &str) -> BankAccount {
        BankAccount::new(s).expect("valid account")
    }

    #[test]
    fn an_immediate_debit_settles_and_moves_money_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bank = SimulatedBank::open(dir.path().join("bank.redb"), Duration::ZERO).expect("open");
        let alice = acct("021000021-1");
        bank.open_account(&alice, Amount::from_minor(1000))
            .expect("open account");
        let p = PurchaseId::random();
        assert_eq!(
            bank.debit(p, &alice, Amount::from_minor(600))
                .expect("debit"),
            DebitStatus::Settled
        );
        // Asked again: same answer, no second debit.
        assert_eq!(
            bank.debit(p, &alice, Amount::from_minor(600))
                .expect("debit"),
            DebitStatus::Settled
        );
        assert_eq!(
            bank.balance(&alice).expect("balance"),
            Amount::from_minor(400)
        );
        assert!(matches!(
            bank.debit(p, &alice, Amount::from_minor(1)),
            Err(BankError::ConflictingDebit)
        ));
        let st = bank.statement(1, 10).expect("statement");
        assert_eq!(st.len(), 1);
        assert_eq!(st[0].kind, StatementKind::Debit(p));
    }

    #[test]
    fn debits_are_rejected_for_want_of_funds_closed_or_unknown_accounts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bank = SimulatedBank::open(dir.path().join("bank.redb"), Duration::ZERO).expect("open");
        let poor = acct("poor");
        let gone = acct("gone");
        bank.open_account(&poor, Amount::from_minor(10))
            .expect("open");
        bank.open_account(&gone, Amount::from_minor(10_000))
            .expect("open");
        bank.close_account(&gone).expect("close");
        let cases = [
            (poor.clone(), BankRejection::InsufficientFunds),
            (gone, BankRejection::AccountClosed),
            (acct("nobody"), BankRejection::UnknownAccount),
        ];
        for (account, why) in cases {
            assert_eq!(
                bank.debit(PurchaseId::random(), &account, Amount::from_minor(11))
                    .expect("asked"),
                DebitStatus::Rejected(why)
            );
        }
        assert_eq!(
            bank.balance(&poor).expect("balance"),
            Amount::from_minor(10)
        );
        assert!(bank.statement(1, 10).expect("statement").is_empty());
    }

    #[test]
    fn a_pending_debit_survives_a_restart_and_settles_later() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bank.redb");
        let bob = acct("bob");
        let p = PurchaseId::random();
        {
            let bank = SimulatedBank::open(&path, Duration::from_millis(150)).expect("open");
            bank.open_account(&bob, Amount::from_minor(500))
                .expect("open");
            assert_eq!(
                bank.debit(p, &bob, Amount::from_minor(500)).expect("debit"),
                DebitStatus::Pending
            );
            assert_eq!(bank.pending_debits().expect("pending"), vec![p]);
        }
        let bank = SimulatedBank::open(&path, Duration::from_millis(150)).expect("reopen");
        assert_eq!(bank.pending_debits().expect("pending"), vec![p]);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(bank.debit_status(p).expect("status"), DebitStatus::Settled);
        assert!(bank.pending_debits().expect("pending").is_empty());
        assert_eq!(bank.balance(&bob).expect("balance"), Amount::ZERO);
    }

    #[test]
    fn a_debit_rejected_later_when_funds_are_gone_by_settlement() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bank = SimulatedBank::open(dir.path().join("bank.redb"), Duration::from_millis(50))
            .expect("open");
        let carol = acct("carol");
        bank.open_account(&carol, Amount::from_minor(100))
            .expect("open");
        let p = PurchaseId::random();
        assert_eq!(
            bank.debit(p, &carol, Amount::from_minor(100))
                .expect("debit"),
            DebitStatus::Pending
        );
        bank.close_account(&carol).expect("close");
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(
            bank.debit_status(p).expect("status"),
            DebitStatus::Rejected(BankRejection::AccountClosed)
        );
    }

    #[test]
    fn credits_are_idempotent_by_reference_and_refused_to_closed_accounts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bank = SimulatedBank::open(dir.path().join("bank.redb"), Duration::ZERO).expect("open");
        let shop = acct("shop");
        bank.open_account(&shop, Amount::ZERO).expect("open");
        let r = TxId::random();
        bank.credit(r, &shop, Amount::from_minor(250))
            .expect("credit");
        bank.credit(r, &shop, Amount::from_minor(250))
            .expect("retry");
        assert_eq!(
            bank.balance(&shop).expect("balance"),
            Amount::from_minor(250)
        );
        assert!(matches!(
            bank.credit(r, &shop, Amount::from_minor(1)),
            Err(BankError::ConflictingCredit)
        ));
        assert!(matches!(
            bank.credit(TxId::random(), &acct("ghost"), Amount::from_minor(1)),
            Err(BankError::UnknownAccount)
        ));
        bank.close_account(&shop).expect("close");
        assert!(matches!(
            bank.check_account(&shop),
            Err(BankError::AccountClosed)
        ));
        let st = bank.statement(1, 10).expect("statement");
        assert_eq!(st.len(), 1);
        assert_eq!(st[0].kind, StatementKind::Credit(r));
        assert_eq!(st[0].amount, Amount::from_minor(250));
    }

    #[test]
    fn the_export_is_the_whole_statement_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bank = SimulatedBank::open(dir.path().join("bank.redb"), Duration::ZERO).expect("open");
        let shop = acct("shop");
        bank.open_account(&shop, Amount::ZERO).expect("open");
        let refs: Vec<TxId> = (0..3).map(|_| TxId::random()).collect();
        for (i, r) in refs.iter().enumerate() {
            bank.credit(*r, &shop, Amount::from_minor(10 + i as u64))
                .expect("credit");
        }
        let exported = bank.export_statement().expect("export");
        let kinds: Vec<StatementKind> = exported.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            refs.iter()
                .map(|r| StatementKind::Credit(*r))
                .collect::<Vec<_>>()
        );
        assert_eq!(exported, bank.statement(1, 10).expect("statement"));
    }
}

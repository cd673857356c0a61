//! A [`Bank`] that talks to a real bank by exchanging ISO 20022 files
//! (`bank_files`): purchase debits go out in pain.008, payouts in
//! pain.001, and the bank's camt.053 statement comes back in. It sits
//! beside [`crate::SimulatedBank`], which stays the default.
//!
//! Every debit and credit the issuer asks is kept in its own redb file
//! (`FileExchangeBank::open`) before it is answered; a debit stays
//! pending until a statement books it (settled) or returns it before it
//! was collected (rejected). A debit returned after it was collected is
//! handed back to the caller ([`ReturnedDebit`]), which records it with
//! `IssuerCore::debit_returned`. Accounts are IBANs: anything else is an
//! unknown account.

use std::path::Path;

use bank_files::camt053::{EntryKind, ReturnReason, Statement};
use bank_files::pain001::{CreditTransferFile, Debtor, Transfer};
use bank_files::pain008::{Creditor, Debit, DirectDebitFile};
use bank_files::{Bic, Iban};
use ledger::{Amount, BankAccount, BankRejection, PurchaseId, TxId};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::bank::{Bank, BankError, DebitStatus, StatementEntry, StatementKind};
use crate::constants::BANK_RECORD_BYTES_MAX;

const DEBITS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("debits");
const CREDITS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("credits");
const STATEMENT: TableDefinition<u64, &[u8]> = TableDefinition::new("statement");

/// The issuer's own account, from which pain files are drawn.
#[derive(Debug, Clone)]
pub struct IssuerAccount {
    pub name: String,
    pub iban: Iban,
    pub bic: Bic,
    /// The SEPA creditor identifier of its direct debits.
    pub creditor_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DebitRecord {
    account: BankAccount,
    amount: Amount,
    status: DebitStatus,
    sent: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CreditRecord {
    account: BankAccount,
    amount: Amount,
    sent: bool,
}

/// A collected debit the bank gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnedDebit {
    pub purchase: PurchaseId,
    pub account: BankAccount,
    /// The ISO 20022 return reason code (`AM04`, `MD01`, …).
    pub reason: String,
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, BankError> {
    postcard::to_stdvec(value).map_err(|e| BankError::Corrupt(e.to_string()))
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, BankError> {
    if bytes.len() > BANK_RECORD_BYTES_MAX {
        return Err(BankError::Corrupt("record too long".into()));
    }
    postcard::from_bytes(bytes).map_err(|e| BankError::Corrupt(e.to_string()))
}

fn iban_of(account: &BankAccount) -> Result<Iban, BankError> {
    Iban::parse(account.as_str()).map_err(|_| BankError::UnknownAccount)
}

fn file_error(e: bank_files::BankFileError) -> BankError {
    BankError::Corrupt(format!("bank file: {e}"))
}

/// The ISO reason a debit returned before it was collected maps to.
fn rejection(reason: &ReturnReason) -> BankRejection {
    match reason {
        ReturnReason::AccountClosed => BankRejection::AccountClosed,
        ReturnReason::InsufficientFunds => BankRejection::InsufficientFunds,
        _ => BankRejection::UnknownAccount,
    }
}

/// A bank reached through ISO 20022 files.
pub struct FileExchangeBank {
    db: Database,
    issuer: IssuerAccount,
}

impl std::fmt::Debug for FileExchangeBank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileExchangeBank").finish_non_exhaustive()
    }
}

impl FileExchangeBank {
    /// Opens (or creates, 0600) the bank's file at `path`.
    pub fn open(path: &Path, issuer: IssuerAccount) -> Result<FileExchangeBank, BankError> {
        ledger::private_file::ensure_private_file(path)
            .map_err(|e| BankError::Storage(redb::Error::Io(e)))?;
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(DEBITS)?;
        txn.open_table(CREDITS)?;
        txn.open_table(STATEMENT)?;
        txn.commit()?;
        Ok(FileExchangeBank { db, issuer })
    }

    /// The pain.008 of every debit not sent yet (`None`: nothing to send),
    /// marked sent in the same transaction.
    pub fn debits_to_send(
        &self,
        message_id: &str,
        created_at: &str,
        collection_date: &str,
    ) -> Result<Option<String>, BankError> {
        let txn = self.db.begin_write()?;
        let mut debits = Vec::new();
        {
            let mut table = txn.open_table(DEBITS)?;
            let mut unsent = Vec::new();
            for row in table.iter()? {
                let (key, value) = row?;
                let record: DebitRecord = decode(value.value())?;
                if !record.sent {
                    unsent.push((key.value().to_vec(), record));
                }
            }
            for (key, mut record) in unsent {
                let purchase = PurchaseId::from_bytes(
                    key.as_slice()
                        .try_into()
                        .map_err(|_| BankError::Corrupt("purchase id".into()))?,
                );
                let iban = iban_of(&record.account)?;
                debits.push(Debit {
                    end_to_end_id: purchase.to_string(),
                    amount: record.amount,
                    debtor_name: "VarietyCash purchaser".into(),
                    // The enrollment of this account is the mandate.
                    mandate_id: iban.as_str().to_owned(),
                    mandate_signed_on: created_at.get(..10).unwrap_or(created_at).to_owned(),
                    debtor_iban: iban,
                });
                record.sent = true;
                table.insert(key.as_slice(), encode(&record)?.as_slice())?;
            }
        }
        if debits.is_empty() {
            return Ok(None);
        }
        let xml = DirectDebitFile {
            message_id: message_id.into(),
            created_at: created_at.into(),
            collection_date: collection_date.into(),
            creditor: Creditor {
                name: self.issuer.name.clone(),
                iban: self.issuer.iban.clone(),
                bic: self.issuer.bic.clone(),
                scheme_id: self.issuer.creditor_id.clone(),
            },
            debits,
        }
        .to_xml()
        .map_err(file_error)?;
        txn.commit()?;
        Ok(Some(xml))
    }

    /// The pain.001 of every credit not sent yet, marked sent.
    pub fn credits_to_send(
        &self,
        message_id: &str,
        created_at: &str,
        execution_date: &str,
    ) -> Result<Option<String>, BankError> {
        let txn = self.db.begin_write()?;
        let mut transfers = Vec::new();
        {
            let mut table = txn.open_table(CREDITS)?;
            let mut unsent = Vec::new();
            for row in table.iter()? {
                let (key, value) = row?;
                let record: CreditRecord = decode(value.value())?;
                if !record.sent {
                    unsent.push((key.value().to_vec(), record));
                }
            }
            for (key, mut record) in unsent {
                let tx = TxId::from_bytes(
                    key.as_slice()
                        .try_into()
                        .map_err(|_| BankError::Corrupt("transaction id".into()))?,
                );
                transfers.push(Transfer {
                    end_to_end_id: tx.to_string(),
                    amount: record.amount,
                    creditor_name: "VarietyCash payee".into(),
                    creditor_iban: iban_of(&record.account)?,
                });
                record.sent = true;
                table.insert(key.as_slice(), encode(&record)?.as_slice())?;
            }
        }
        if transfers.is_empty() {
            return Ok(None);
        }
        let xml = CreditTransferFile {
            message_id: message_id.into(),
            created_at: created_at.into(),
            execution_date: execution_date.into(),
            debtor: Debtor {
                name: self.issuer.name.clone(),
                iban: self.issuer.iban.clone(),
                bic: self.issuer.bic.clone(),
            },
            transfers,
        }
        .to_xml()
        .map_err(file_error)?;
        txn.commit()?;
        Ok(Some(xml))
    }

    /// Books a camt.053 statement of the issuer's account: collected
    /// debits settle, debits returned before collection are rejected,
    /// payouts are confirmed; returns the debits returned after they were
    /// collected, for `IssuerCore::debit_returned`. Reading the same
    /// statement twice changes nothing more.
    pub fn receive_statement(&self, xml: &str) -> Result<Vec<ReturnedDebit>, BankError> {
        let statement = Statement::from_xml(xml).map_err(file_error)?;
        if statement.account != self.issuer.iban {
            return Err(BankError::Corrupt(
                "the statement is of another account than the issuer's".into(),
            ));
        }
        let txn = self.db.begin_write()?;
        let mut returned = Vec::new();
        {
            let mut debits = txn.open_table(DEBITS)?;
            let mut book = txn.open_table(STATEMENT)?;
            let mut next_seq = book.last()?.map(|(k, _)| k.value() + 1).unwrap_or(1);
            for entry in &statement.entries {
                let Ok(bytes) = hex_id(&entry.end_to_end_id) else {
                    continue;
                };
                match &entry.kind {
                    EntryKind::Collected | EntryKind::Returned(_) => {
                        let Some(value) = debits.get(bytes.as_slice())? else {
                            continue;
                        };
                        let mut record: DebitRecord = decode(value.value())?;
                        drop(value);
                        let purchase = PurchaseId::from_bytes(bytes);
                        match (&entry.kind, record.status) {
                            (EntryKind::Collected, DebitStatus::Pending)
                                if entry.amount == record.amount =>
                            {
                                record.status = DebitStatus::Settled;
                                let line = StatementEntry {
                                    seq: next_seq,
                                    kind: StatementKind::Debit(purchase),
                                    account: record.account.clone(),
                                    amount: record.amount,
                                    at_ms: 0,
                                };
                                book.insert(next_seq, encode(&line)?.as_slice())?;
                                next_seq += 1;
                            }
                            (EntryKind::Returned(reason), DebitStatus::Pending) => {
                                record.status = DebitStatus::Rejected(rejection(reason));
                            }
                            (EntryKind::Returned(reason), DebitStatus::Settled) => {
                                returned.push(ReturnedDebit {
                                    purchase,
                                    account: record.account.clone(),
                                    reason: reason.code().to_owned(),
                                });
                            }
                            _ => {}
                        }
                        debits.insert(bytes.as_slice(), encode(&record)?.as_slice())?;
                    }
                    EntryKind::Paid => {}
                }
            }
        }
        txn.commit()?;
        Ok(returned)
    }
}

fn hex_id(text: &str) -> Result<[u8; 16], ()> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(text, &mut out).map_err(|_| ())?;
    Ok(out)
}

impl Bank for FileExchangeBank {
    fn debit(
        &self,
        purchase: PurchaseId,
        account: &BankAccount,
        amount: Amount,
    ) -> Result<DebitStatus, BankError> {
        iban_of(account)?;
        let txn = self.db.begin_write()?;
        let status = {
            let mut table = txn.open_table(DEBITS)?;
            let existing = table
                .get(purchase.as_bytes().as_slice())?
                .map(|v| decode::<DebitRecord>(v.value()))
                .transpose()?;
            match existing {
                Some(record) if record.account == *account && record.amount == amount => {
                    record.status
                }
                Some(_) => return Err(BankError::ConflictingDebit),
                None => {
                    let record = DebitRecord {
                        account: account.clone(),
                        amount,
                        status: DebitStatus::Pending,
                        sent: false,
                    };
                    table.insert(purchase.as_bytes().as_slice(), encode(&record)?.as_slice())?;
                    DebitStatus::Pending
                }
            }
        };
        txn.commit()?;
        Ok(status)
    }

    fn debit_status(&self, purchase: PurchaseId) -> Result<DebitStatus, BankError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(DEBITS)?;
        let value = table
            .get(purchase.as_bytes().as_slice())?
            .ok_or(BankError::UnknownDebit)?;
        Ok(decode::<DebitRecord>(value.value())?.status)
    }

    fn check_account(&self, account: &BankAccount) -> Result<(), BankError> {
        iban_of(account).map(|_| ())
    }

    fn credit(
        &self,
        reference: TxId,
        account: &BankAccount,
        amount: Amount,
    ) -> Result<(), BankError> {
        iban_of(account)?;
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(CREDITS)?;
            let existing = table
                .get(reference.as_bytes().as_slice())?
                .map(|v| decode::<CreditRecord>(v.value()))
                .transpose()?;
            match existing {
                Some(record) if record.account == *account && record.amount == amount => {}
                Some(_) => return Err(BankError::ConflictingCredit),
                None => {
                    let record = CreditRecord {
                        account: account.clone(),
                        amount,
                        sent: false,
                    };
                    table.insert(reference.as_bytes().as_slice(), encode(&record)?.as_slice())?;
                }
            }
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
        let table = txn.open_table(STATEMENT)?;
        let mut out = Vec::new();
        for row in table.range(from_seq..)?.take(max_entries) {
            let (_, value) = row?;
            out.push(decode(value.value())?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bank_files::camt053::Entry;

    fn bank(dir: &Path) -> FileExchangeBank {
        FileExchangeBank::open(
            &dir.join("bank-files.redb"),
            IssuerAccount {
                name: "VarietyCash Issuer".into(),
                iban: Iban::parse("DE89370400440532013000").expect("iban"),
                bic: Bic::parse("COBADEFFXXX").expect("bic"),
                creditor_id: "DE98ZZZ09999999999".into(),
            },
        )
        .expect("bank")
    }

    fn statement(entries: Vec<Entry>) -> String {
        let mut closing: i128 = 1_000_000;
        for e in &entries {
            let v = i128::from(e.amount.minor_units());
            closing += if e.is_credit() { v } else { -v };
        }
        Statement {
            message_id: "BANK-1".into(),
            created_at: "2026-12-08T06:00:00".into(),
            statement_id: "STMT-1".into(),
            account: Iban::parse("DE89370400440532013000").expect("iban"),
            opening: Amount::from_minor(1_000_000),
            closing: Amount::from_minor(u64::try_from(closing).expect("positive")),
            entries,
        }
        .to_xml()
        .expect("statement")
    }

    #[test]
    fn a_debit_goes_out_in_pain_008_settles_from_camt_053_and_a_later_return_is_handed_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bank = bank(dir.path());
        let alice = BankAccount::new("GB82WEST12345698765432").expect("account");
        let (p1, p2) = (
            PurchaseId::from_bytes([1; 16]),
            PurchaseId::from_bytes([2; 16]),
        );
        let amount = Amount::from_minor(500);
        assert_eq!(
            bank.debit(p1, &alice, amount).expect("debit"),
            DebitStatus::Pending
        );
        assert_eq!(
            bank.debit(p2, &alice, amount).expect("debit"),
            DebitStatus::Pending
        );
        assert!(matches!(
            bank.debit(p1, &alice, Amount::from_minor(1)),
            Err(BankError::ConflictingDebit)
        ));
        assert!(matches!(
            bank.debit(p1, &BankAccount::new("ACH-alice").expect("a"), amount),
            Err(BankError::UnknownAccount)
        ));
        let xml = bank
            .debits_to_send("VC-DD-1", "2026-12-05T14:00:00", "2026-12-07")
            .expect("file")
            .expect("two debits");
        let sent = DirectDebitFile::from_xml(&xml).expect("a pain.008");
        assert_eq!(sent.debits.len(), 2);
        assert_eq!(
            bank.debits_to_send("VC-DD-2", "2026-12-05T14:00:00", "2026-12-07")
                .expect("file"),
            None,
            "each debit is sent once"
        );
        // p1 collected then returned for insufficient funds; p2 returned before collection.
        let entry = |p: PurchaseId, kind| Entry {
            end_to_end_id: p.to_string(),
            amount,
            kind,
            booked_on: "2026-12-07".into(),
        };
        let xml = statement(vec![
            entry(p1, EntryKind::Collected),
            entry(p1, EntryKind::Returned(ReturnReason::InsufficientFunds)),
        ]);
        let returned = bank.receive_statement(&xml).expect("booked");
        assert_eq!(
            returned,
            vec![ReturnedDebit {
                purchase: p1,
                account: alice.clone(),
                reason: "AM04".into()
            }]
        );
        assert_eq!(bank.debit_status(p1).expect("status"), DebitStatus::Settled);
        let xml = statement(vec![entry(
            p2,
            EntryKind::Returned(ReturnReason::NoMandate),
        )]);
        assert!(bank.receive_statement(&xml).expect("booked").is_empty());
        assert!(matches!(
            bank.debit_status(p2).expect("status"),
            DebitStatus::Rejected(_)
        ));
        assert_eq!(bank.statement(1, 10).expect("statement").len(), 1);
    }

    #[test]
    fn a_credit_goes_out_once_in_pain_001() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bank = bank(dir.path());
        let shop = BankAccount::new("FR1420041010050500013M02606").expect("account");
        let tx = TxId::from_bytes([7; 16]);
        bank.credit(tx, &shop, Amount::from_minor(250))
            .expect("credit");
        bank.credit(tx, &shop, Amount::from_minor(250))
            .expect("the same, again");
        assert!(matches!(
            bank.credit(tx, &shop, Amount::from_minor(251)),
            Err(BankError::ConflictingCredit)
        ));
        let xml = bank
            .credits_to_send("VC-CT-1", "2026-12-05T14:00:00", "2026-12-06")
            .expect("file")
            .expect("one credit");
        let file = CreditTransferFile::from_xml(&xml).expect("a pain.001");
        assert_eq!(file.transfers.len(), 1);
        assert_eq!(file.transfers[0].end_to_end_id, tx.to_string());
        assert_eq!(
            bank.credits_to_send("VC-CT-2", "2026-12-05T14:00:00", "2026-12-06")
                .expect("file"),
            None
        );
    }
}

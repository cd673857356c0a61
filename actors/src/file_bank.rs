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

    /// Hands the pain.008 of every debit not sent yet to `deliver`, and
    /// marks them sent once it returned; the number of debits (0: nothing
    /// to send, `deliver` not called). A crash after `deliver` and before
    /// the mark delivers them again under the same end-to-end ids, which a
    /// statement books once.
    pub fn debits_to_send(
        &self,
        message_id: &str,
        created_at: &str,
        collection_date: &str,
        deliver: impl FnOnce(&str) -> Result<(), BankError>,
    ) -> Result<usize, BankError> {
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
            return Ok(0);
        }
        let n_debits = debits.len();
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
        deliver(&xml)?;
        txn.commit()?;
        Ok(n_debits)
    }

    /// Hands the pain.001 of every credit not sent yet to `deliver`, and
    /// marks them sent once it returned; the number of credits.
    pub fn credits_to_send(
        &self,
        message_id: &str,
        created_at: &str,
        execution_date: &str,
        deliver: impl FnOnce(&str) -> Result<(), BankError>,
    ) -> Result<usize, BankError> {
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
            return Ok(0);
        }
        let n_transfers = transfers.len();
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
        deliver(&xml)?;
        txn.commit()?;
        Ok(n_transfers)
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
                            // A return gives back the whole debit: a line of
                            // another amount is not this debit's return (the
                            // issuer would log a loss the bank never booked,
                            // and the auditor's reconciliation would fail).
                            (EntryKind::Returned(reason), DebitStatus::Pending)
                                if entry.amount == record.amount =>
                            {
                                record.status = DebitStatus::Rejected(rejection(reason));
                            }
                            (EntryKind::Returned(reason), DebitStatus::Settled)
                                if entry.amount == record.amount =>
                            {
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

/// The outbox the issuer writes pain files into and the inbox it reads
/// camt.053 statements from (`issuer init --bank files:DIR`: DIR/outbox
/// and DIR/inbox). Statements booked move to `inbox/booked`.
#[derive(Debug, Clone)]
pub struct ExchangeDirs {
    pub outbox: std::path::PathBuf,
    pub inbox: std::path::PathBuf,
}

/// The outbox inside an exchange directory.
pub const OUTBOX_DIR: &str = "outbox";
/// The inbox inside an exchange directory.
pub const INBOX_DIR: &str = "inbox";
/// Where booked statements go, inside the inbox.
pub const BOOKED_DIR: &str = "booked";

impl ExchangeDirs {
    /// `dir/outbox` and `dir/inbox`, created (0700) if absent.
    pub fn create(dir: &Path) -> Result<ExchangeDirs, BankError> {
        let io = |e| BankError::Storage(redb::Error::Io(e));
        let dirs = ExchangeDirs {
            outbox: dir.join(OUTBOX_DIR),
            inbox: dir.join(INBOX_DIR),
        };
        ledger::private_file::create_private_dir(dir).map_err(io)?;
        ledger::private_file::create_private_dir(&dirs.outbox).map_err(io)?;
        ledger::private_file::create_private_dir(&dirs.inbox).map_err(io)?;
        ledger::private_file::create_private_dir(&dirs.inbox.join(BOOKED_DIR)).map_err(io)?;
        Ok(dirs)
    }
}

/// What one round of [`FileExchangeBank::exchange`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExchangeRound {
    pub debits_sent: usize,
    pub credits_sent: usize,
    pub statements_booked: usize,
    /// Returned debits the issuer logged in this exchange (each once).
    pub debits_returned: usize,
}

impl FileExchangeBank {
    /// One round of the file exchange at `now` (Unix seconds): every
    /// unsent debit into one pain.008 and every unsent credit into one
    /// pain.001 in the outbox, then every camt.053 in the inbox booked (in
    /// the order of their names), each debit returned after collection
    /// recorded with [`IssuerCore::debit_returned`]. A statement moves to
    /// `inbox/booked` once all of it is booked; one that cannot be (not a
    /// valid camt.053, another account, a return of a purchase the issuer
    /// has not settled yet) stays and is read again next round.
    pub fn exchange(
        &self,
        core: &crate::IssuerCore,
        dirs: &ExchangeDirs,
        now_secs: u64,
    ) -> Result<ExchangeRound, BankError> {
        let io = |e| BankError::Storage(redb::Error::Io(e));
        let mut round = ExchangeRound::default();
        let created_at = iso_date_time(now_secs);
        let next_day = iso_date_time(now_secs + 24 * 3600);
        let next_day = next_day.get(..10).unwrap_or(&next_day);
        // The second names each file and message (rounds are at least a
        // second apart); a file of that name still in the outbox (a clock
        // set back) is never replaced: the name takes a counter.
        let second = created_at.replace(['-', ':', 'T'], "");
        let free_stamp = |prefix: &str| {
            let mut stamp = second.clone();
            let mut n = 1u32;
            while dirs.outbox.join(format!("{prefix}-{stamp}.xml")).exists() {
                n += 1;
                stamp = format!("{second}-{n}");
            }
            stamp
        };
        let stamp = free_stamp("pain008");
        round.debits_sent =
            self.debits_to_send(&format!("VC-DD-{stamp}"), &created_at, next_day, |xml| {
                ledger::private_file::write_private(
                    &dirs.outbox.join(format!("pain008-{stamp}.xml")),
                    xml.as_bytes(),
                )
                .map_err(io)
            })?;
        let stamp = free_stamp("pain001");
        round.credits_sent =
            self.credits_to_send(&format!("VC-CT-{stamp}"), &created_at, next_day, |xml| {
                ledger::private_file::write_private(
                    &dirs.outbox.join(format!("pain001-{stamp}.xml")),
                    xml.as_bytes(),
                )
                .map_err(io)
            })?;
        let mut statements: Vec<std::path::PathBuf> = std::fs::read_dir(&dirs.inbox)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "xml"))
            .collect();
        statements.sort();
        for path in statements {
            let len = std::fs::metadata(&path).map_err(io)?.len();
            if len > bank_files::FILE_BYTES_MAX as u64 {
                tracing::warn!(file = %path.display(), "statement too long: left in the inbox");
                continue;
            }
            let xml = match std::fs::read_to_string(&path) {
                Ok(xml) => xml,
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "statement unreadable");
                    continue;
                }
            };
            let returned = match self.receive_statement(&xml) {
                Ok(returned) => returned,
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "statement refused: left in the inbox");
                    continue;
                }
            };
            let mut all_booked = true;
            for r in returned {
                match core.debit_returned(r.purchase, &r.account, &r.reason) {
                    Ok(done) => {
                        if done.logged_at.is_some() {
                            round.debits_returned += 1;
                        }
                    }
                    Err(e) => {
                        all_booked = false;
                        tracing::warn!(purchase = %r.purchase, error = %e, "returned debit not recorded yet");
                    }
                }
            }
            if all_booked {
                let name = path.file_name().map(ToOwned::to_owned).unwrap_or_default();
                std::fs::rename(&path, dirs.inbox.join(BOOKED_DIR).join(name)).map_err(io)?;
                round.statements_booked += 1;
            }
        }
        Ok(round)
    }
}

/// `YYYY-MM-DDThh:mm:ss` (UTC) of `secs` since the Unix epoch.
pub fn iso_date_time(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
        let mut xml = String::new();
        let n = bank
            .debits_to_send("VC-DD-1", "2026-12-05T14:00:00", "2026-12-07", |x| {
                xml = x.to_owned();
                Ok(())
            })
            .expect("file");
        assert_eq!(n, 2);
        let sent = DirectDebitFile::from_xml(&xml).expect("a pain.008");
        assert_eq!(sent.debits.len(), 2);
        assert_eq!(
            bank.debits_to_send("VC-DD-2", "2026-12-05T14:00:00", "2026-12-07", |_| Ok(()))
                .expect("file"),
            0,
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

    // A statement line moves a debit only for the debit's whole amount: a
    // "return" of part of a collected debit is not handed back to the
    // issuer (which would log the whole purchase as its loss), nor does one
    // reject a pending debit; the full return that follows is.
    #[test]
    fn a_return_of_another_amount_than_the_debit_moves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bank = bank(dir.path());
        let alice = BankAccount::new("GB82WEST12345698765432").expect("account");
        let (p1, p2) = (
            PurchaseId::from_bytes([1; 16]),
            PurchaseId::from_bytes([2; 16]),
        );
        let amount = Amount::from_minor(500);
        bank.debit(p1, &alice, amount).expect("debit");
        bank.debit(p2, &alice, amount).expect("debit");
        let line = |p: PurchaseId, minor: u64, kind| Entry {
            end_to_end_id: p.to_string(),
            amount: Amount::from_minor(minor),
            kind,
            booked_on: "2026-12-07".into(),
        };
        let returned = ReturnReason::InsufficientFunds;
        let xml = statement(vec![
            line(p1, 500, EntryKind::Collected),
            line(p1, 1, EntryKind::Returned(returned.clone())),
            line(p2, 499, EntryKind::Returned(returned.clone())),
        ]);
        assert!(bank.receive_statement(&xml).expect("booked").is_empty());
        assert_eq!(bank.debit_status(p1).expect("status"), DebitStatus::Settled);
        assert_eq!(bank.debit_status(p2).expect("status"), DebitStatus::Pending);
        let xml = statement(vec![line(p1, 500, EntryKind::Returned(returned))]);
        assert_eq!(
            bank.receive_statement(&xml).expect("booked"),
            vec![ReturnedDebit {
                purchase: p1,
                account: alice,
                reason: "AM04".into()
            }]
        );
    }

    #[test]
    fn dates_are_iso_8601_in_utc() {
        assert_eq!(iso_date_time(0), "1970-01-01T00:00:00");
        assert_eq!(iso_date_time(1_796_601_600 + 3_723), "2026-12-07T01:02:03");
        assert_eq!(iso_date_time(951_782_400), "2000-02-29T00:00:00");
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
        let mut xml = String::new();
        let n = bank
            .credits_to_send("VC-CT-1", "2026-12-05T14:00:00", "2026-12-06", |x| {
                xml = x.to_owned();
                Ok(())
            })
            .expect("file");
        assert_eq!(n, 1);
        let file = CreditTransferFile::from_xml(&xml).expect("a pain.001");
        assert_eq!(file.transfers.len(), 1);
        assert_eq!(file.transfers[0].end_to_end_id, tx.to_string());
        assert_eq!(
            bank.credits_to_send("VC-CT-2", "2026-12-05T14:00:00", "2026-12-06", |_| Ok(()))
                .expect("file"),
            0
        );
    }
}

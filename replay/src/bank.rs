//! Bank reconciliation: the bank's own statement against the log. Every
//! settled purchase in the log must be a debit of the same amount in the
//! statement, every redemption (a payment redeemed, an aggregate paid out)
//! a credit of the same amount under its transaction id, every returned
//! debit (`PurchaseDebitReturned`) a return of the same amount, and every
//! statement entry must be one of those (rules `bank_entry_missing`,
//! `bank_entry_unexplained`). A return of a debit the statement never
//! collected moved no money (the bank refused it before settlement) and
//! is matched against nothing.
//!
//! The statement format ([`BankStatement::to_text`]) is text, one entry a
//! line after a header, and carries no account: the auditor could not
//! match accounts anyway (the log holds them sealed), and the statement
//! then reveals nobody's. The simulated bank's export writes it
//! (`varietycash bank export`); a bank's camt.053 statements are read into
//! the same entries (`varietycash audit --bank-statement FILE.xml|DIR`).
//!
//! ```text
//! varietycash bank statement 1
//! debit <purchase id, hex> <amount in minor units>
//! credit <transaction id, hex> <amount in minor units>
//! returned <purchase id, hex> <amount in minor units>
//! ```

use std::collections::BTreeMap;

use ledger::{Amount, Event, PurchaseId, Seq, TxId};

use crate::rule::{Rule, Violation};

/// First line of a bank statement file.
pub const BANK_STATEMENT_MAGIC: &str = "varietycash bank statement 1";

/// Largest statement file read.
pub const BANK_STATEMENT_BYTES_MAX: u64 = 1 << 30;

/// One movement of money as the bank reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BankEntry {
    /// A settled purchase debit: money from a purchaser to the issuer.
    Debit {
        purchase: PurchaseId,
        amount: Amount,
    },
    /// A credit to a payee or merchant, referenced by the transaction that
    /// redeemed the value.
    Credit { tx: TxId, amount: Amount },
    /// A collected purchase debit the bank gave back to the purchaser.
    Returned {
        purchase: PurchaseId,
        amount: Amount,
    },
}

/// The bank's statement: its entries, in its order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BankStatement {
    pub entries: Vec<BankEntry>,
}

/// Why a statement file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BankStatementError {
    #[error("bank statement i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("bank statement of {0} bytes exceeds the limit")]
    TooLong(u64),
    #[error("bank statement line {line}: {why}")]
    Malformed { line: usize, why: &'static str },
}

impl BankStatement {
    /// The file's text (see the module docs).
    pub fn to_text(&self) -> String {
        let mut out = format!("{BANK_STATEMENT_MAGIC}\n");
        for entry in &self.entries {
            match entry {
                BankEntry::Debit { purchase, amount } => {
                    out.push_str(&format!("debit {purchase} {}\n", amount.minor_units()));
                }
                BankEntry::Credit { tx, amount } => {
                    out.push_str(&format!("credit {tx} {}\n", amount.minor_units()));
                }
                BankEntry::Returned { purchase, amount } => {
                    out.push_str(&format!("returned {purchase} {}\n", amount.minor_units()));
                }
            }
        }
        out
    }

    /// Reads [`BankStatement::to_text`]'s text, exactly.
    pub fn parse(text: &str) -> Result<BankStatement, BankStatementError> {
        let mut lines = text.lines().enumerate();
        let bad = |line: usize, why| BankStatementError::Malformed {
            line: line + 1,
            why,
        };
        match lines.next() {
            Some((_, first)) if first == BANK_STATEMENT_MAGIC => {}
            _ => {
                return Err(bad(
                    0,
                    "expected it to start with `varietycash bank statement 1`",
                ));
            }
        }
        let mut entries = Vec::new();
        for (n, line) in lines {
            let mut fields = line.split(' ');
            let (Some(kind), Some(id), Some(amount), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(bad(n, "expected three fields"));
            };
            let amount = amount
                .parse::<u64>()
                .map(Amount::from_minor)
                .map_err(|_| bad(n, "expected an amount in minor units"))?;
            entries.push(match kind {
                "debit" => BankEntry::Debit {
                    purchase: PurchaseId::from_hex(id)
                        .ok_or(bad(n, "expected a purchase id in hex"))?,
                    amount,
                },
                "credit" => BankEntry::Credit {
                    tx: TxId::from_hex(id).ok_or(bad(n, "expected a transaction id in hex"))?,
                    amount,
                },
                "returned" => BankEntry::Returned {
                    purchase: PurchaseId::from_hex(id)
                        .ok_or(bad(n, "expected a purchase id in hex"))?,
                    amount,
                },
                _ => return Err(bad(n, "expected `debit`, `credit` or `returned`")),
            });
        }
        Ok(BankStatement { entries })
    }

    pub fn read_file(path: &std::path::Path) -> Result<BankStatement, BankStatementError> {
        let len = std::fs::metadata(path)?.len();
        if len > BANK_STATEMENT_BYTES_MAX {
            return Err(BankStatementError::TooLong(len));
        }
        BankStatement::parse(&std::fs::read_to_string(path)?)
    }
}

/// What the log says the bank must show, gathered during the replay (only
/// when a statement is to be reconciled).
#[derive(Debug, Clone, Default)]
pub struct BankExpectations {
    /// Settled purchases: where, and the amount debited.
    debits: BTreeMap<PurchaseId, (Seq, Amount)>,
    /// Redemptions per transaction: where, and the amount credited.
    credits: BTreeMap<TxId, (Seq, u128)>,
    /// Returned debits: where, and the amount given back.
    returns: BTreeMap<PurchaseId, (Seq, Amount)>,
}

impl BankExpectations {
    /// Notes what a committed transaction owes the bank statement.
    pub fn note_transaction(&mut self, first_seq: Seq, tx: TxId, events: &[Event]) {
        for event in events {
            match event {
                Event::PurchaseSettled { purchase, amount } => {
                    self.debits.insert(*purchase, (first_seq, *amount));
                }
                Event::Redeemed { amount, .. } => {
                    let entry = self.credits.entry(tx).or_insert((first_seq, 0));
                    entry.1 += u128::from(amount.minor_units());
                }
                Event::PurchaseDebitReturned {
                    purchase, amount, ..
                } => {
                    self.returns.insert(*purchase, (first_seq, *amount));
                }
                _ => {}
            }
        }
    }

    /// The first difference between the log and `statement`: a log entry
    /// the bank lacks (or shows with another amount) is named at its
    /// record; a bank entry the log does not explain at `end` (the last
    /// record audited).
    pub fn reconcile(&self, statement: &BankStatement, end: Seq) -> Result<(), Violation> {
        let mut debits: BTreeMap<PurchaseId, u128> = BTreeMap::new();
        let mut credits: BTreeMap<TxId, u128> = BTreeMap::new();
        let mut returns: BTreeMap<PurchaseId, u128> = BTreeMap::new();
        for entry in &statement.entries {
            match entry {
                BankEntry::Debit { purchase, amount } => {
                    *debits.entry(*purchase).or_default() += u128::from(amount.minor_units());
                }
                BankEntry::Credit { tx, amount } => {
                    *credits.entry(*tx).or_default() += u128::from(amount.minor_units());
                }
                BankEntry::Returned { purchase, amount } => {
                    *returns.entry(*purchase).or_default() += u128::from(amount.minor_units());
                }
            }
        }
        // A return of a debit never collected: refused before settlement,
        // no money moved either way.
        returns.retain(|purchase, _| debits.contains_key(purchase));
        let mut missing: Vec<Violation> = Vec::new();
        for (purchase, (seq, amount)) in &self.debits {
            let expected = u128::from(amount.minor_units());
            let found = debits.remove(purchase).unwrap_or(0);
            if found != expected {
                missing.push(
                    Violation::new(
                        *seq,
                        None,
                        Rule::BankEntryMissing,
                        format!("purchase {purchase} settled in the log, the bank debited {found} minor units for it"),
                    )
                    .amounts(found as i128, expected as i128),
                );
            }
        }
        for (tx, (seq, expected)) in &self.credits {
            let found = credits.remove(tx).unwrap_or(0);
            if found != *expected {
                missing.push(
                    Violation::new(
                        *seq,
                        Some(*tx),
                        Rule::BankEntryMissing,
                        format!("redemption {tx} in the log, the bank credited {found} minor units for it"),
                    )
                    .amounts(found as i128, *expected as i128),
                );
            }
        }
        for (purchase, (seq, amount)) in &self.returns {
            let expected = u128::from(amount.minor_units());
            let found = returns.remove(purchase).unwrap_or(0);
            if found != expected {
                missing.push(
                    Violation::new(
                        *seq,
                        None,
                        Rule::BankEntryMissing,
                        format!("the debit of purchase {purchase} returned in the log, the bank gave back {found} minor units of it"),
                    )
                    .amounts(found as i128, expected as i128),
                );
            }
        }
        if let Some(first) = missing.into_iter().min_by_key(|v| v.seq) {
            return Err(first);
        }
        if let Some((purchase, amount)) = debits.into_iter().next() {
            return Err(Violation::new(
                end,
                None,
                Rule::BankEntryUnexplained,
                format!("the bank debited {amount} minor units for purchase {purchase}, which the log never settled"),
            )
            .amounts(amount as i128, 0));
        }
        if let Some((purchase, amount)) = returns.into_iter().next() {
            return Err(Violation::new(
                end,
                None,
                Rule::BankEntryUnexplained,
                format!("the bank gave back {amount} minor units of the debit of purchase {purchase}, which the log never returned"),
            )
            .amounts(amount as i128, 0));
        }
        if let Some((tx, amount)) = credits.into_iter().next() {
            return Err(Violation::new(
                end,
                Some(tx),
                Rule::BankEntryUnexplained,
                format!("the bank credited {amount} minor units under transaction {tx}, which the log holds no redemption of"),
            )
            .amounts(amount as i128, 0));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purchase(n: u8) -> PurchaseId {
        PurchaseId::from_bytes([n; PurchaseId::LEN])
    }

    fn tx(n: u8) -> TxId {
        TxId::from_bytes([n; TxId::LEN])
    }

    fn expectations() -> BankExpectations {
        let mut expected = BankExpectations::default();
        expected.note_transaction(
            Seq(3),
            tx(1),
            &[Event::PurchaseSettled {
                purchase: purchase(1),
                amount: Amount::from_minor(500),
            }],
        );
        expected.note_transaction(
            Seq(7),
            tx(2),
            &[Event::Redeemed {
                amount: Amount::from_minor(200),
                bank_account: ledger::SealedBankAccount::from_sealed_bytes(vec![1]).expect("short"),
            }],
        );
        expected
    }

    fn matching() -> BankStatement {
        BankStatement {
            entries: vec![
                BankEntry::Debit {
                    purchase: purchase(1),
                    amount: Amount::from_minor(500),
                },
                BankEntry::Credit {
                    tx: tx(2),
                    amount: Amount::from_minor(200),
                },
            ],
        }
    }

    #[test]
    fn a_statement_survives_its_text() {
        let statement = matching();
        assert_eq!(
            BankStatement::parse(&statement.to_text()).expect("parses"),
            statement
        );
        assert!(BankStatement::parse("debit 00 1\n").is_err());
        assert!(BankStatement::parse(&format!("{BANK_STATEMENT_MAGIC}\ndebit zz 1\n")).is_err());
    }

    #[test]
    fn a_matching_statement_reconciles() {
        expectations()
            .reconcile(&matching(), Seq(9))
            .expect("reconciles");
    }

    #[test]
    fn a_settlement_the_bank_never_debited_is_missing_at_its_record() {
        let mut statement = matching();
        statement.entries.remove(0);
        let v = expectations()
            .reconcile(&statement, Seq(9))
            .expect_err("missing");
        assert_eq!((v.rule, v.seq), (Rule::BankEntryMissing, Seq(3)));
    }

    #[test]
    fn a_credit_of_another_amount_is_missing_with_both_amounts() {
        let mut statement = matching();
        statement.entries[1] = BankEntry::Credit {
            tx: tx(2),
            amount: Amount::from_minor(300),
        };
        let v = expectations()
            .reconcile(&statement, Seq(9))
            .expect_err("differs");
        assert_eq!((v.rule, v.seq), (Rule::BankEntryMissing, Seq(7)));
        assert_eq!(v.amounts.map(|a| a.found_minor), Some(300));
    }

    #[test]
    fn a_returned_debit_must_be_in_the_log_and_the_logs_in_the_statement() {
        let mut expected = expectations();
        let mut statement = matching();
        statement.entries.push(BankEntry::Returned {
            purchase: purchase(1),
            amount: Amount::from_minor(500),
        });
        let v = expected
            .reconcile(&statement, Seq(9))
            .expect_err("a return the log never made");
        assert_eq!((v.rule, v.seq), (Rule::BankEntryUnexplained, Seq(9)));
        expected.note_transaction(
            Seq(8),
            tx(3),
            &[Event::PurchaseDebitReturned {
                purchase: purchase(1),
                amount: Amount::from_minor(500),
                reason: "AM04".into(),
            }],
        );
        expected.reconcile(&statement, Seq(9)).expect("reconciles");
        let v = expected
            .reconcile(&matching(), Seq(9))
            .expect_err("the bank shows no return");
        assert_eq!((v.rule, v.seq), (Rule::BankEntryMissing, Seq(8)));
        // A return of a debit the bank never collected moved nothing.
        let mut refused = matching();
        refused.entries.push(BankEntry::Returned {
            purchase: purchase(4),
            amount: Amount::from_minor(70),
        });
        expectations()
            .reconcile(&refused, Seq(9))
            .expect("nothing moved");
        assert_eq!(
            BankStatement::parse(&statement.to_text()).expect("parses"),
            statement
        );
    }

    #[test]
    fn a_bank_entry_the_log_does_not_explain_is_named() {
        let mut statement = matching();
        statement.entries.push(BankEntry::Credit {
            tx: tx(9),
            amount: Amount::from_minor(50),
        });
        let v = expectations()
            .reconcile(&statement, Seq(9))
            .expect_err("unexplained");
        assert_eq!(
            (v.rule, v.seq, v.tx),
            (Rule::BankEntryUnexplained, Seq(9), Some(tx(9)))
        );
    }
}

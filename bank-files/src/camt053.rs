//! `camt.053.001.08`: the bank's statement of the issuer's account. What
//! the issuer takes from it: collected purchase debits (credits to its
//! account), payouts made (debits), and returned debits — a purchase the
//! bank collected and then gave back (insufficient funds, no mandate, the
//! purchaser's refund claim), each with its ISO reason code and the
//! purchase id as end-to-end id.

use serde::{Deserialize, Serialize};

use crate::amount;
use crate::error::BankFileError;
use crate::iban::Iban;
use crate::pain001::{Account, CurrencyAmount, PaymentId, read_document, write_document};

/// The message's XML namespace.
pub const NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08";
/// The currency of the issuer's account: every amount read must be in it.
pub use crate::pain001::CURRENCY;

/// Why a collected debit came back (ISO 20022 external return reason codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnReason {
    /// AM04: insufficient funds.
    InsufficientFunds,
    /// MD01: no valid mandate (revoked or never given).
    NoMandate,
    /// AC04: the account is closed.
    AccountClosed,
    /// MD06: the debtor claimed a refund.
    RefundRequested,
    /// Any other code, as given.
    Other(String),
}

impl ReturnReason {
    pub fn from_code(code: &str) -> ReturnReason {
        match code {
            "AM04" => ReturnReason::InsufficientFunds,
            "MD01" => ReturnReason::NoMandate,
            "AC04" => ReturnReason::AccountClosed,
            "MD06" => ReturnReason::RefundRequested,
            other => ReturnReason::Other(other.to_owned()),
        }
    }

    pub fn code(&self) -> &str {
        match self {
            ReturnReason::InsufficientFunds => "AM04",
            ReturnReason::NoMandate => "MD01",
            ReturnReason::AccountClosed => "AC04",
            ReturnReason::RefundRequested => "MD06",
            ReturnReason::Other(code) => code,
        }
    }
}

/// What one booked entry is, from the issuer's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A purchase debit collected: money in.
    Collected,
    /// A payout (redemption, cash-out) made: money out.
    Paid,
    /// A collected purchase debit given back: money out again.
    Returned(ReturnReason),
}

/// One booked entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub end_to_end_id: String,
    pub amount: ledger::Amount,
    pub kind: EntryKind,
    /// `YYYY-MM-DD`.
    pub booked_on: String,
}

impl Entry {
    /// Whether it credits the issuer's account.
    pub fn is_credit(&self) -> bool {
        self.kind == EntryKind::Collected
    }
}

/// One statement of the issuer's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub message_id: String,
    /// `YYYY-MM-DDThh:mm:ss`.
    pub created_at: String,
    pub statement_id: String,
    pub account: Iban,
    /// Balances at the start and end (never negative here).
    pub opening: ledger::Amount,
    pub closing: ledger::Amount,
    pub entries: Vec<Entry>,
}

// --- the XML -----------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Document {
    #[serde(rename = "@xmlns")]
    pub xmlns: String,
    #[serde(rename = "BkToCstmrStmt")]
    pub statement: BankToCustomer,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BankToCustomer {
    #[serde(rename = "GrpHdr")]
    pub header: Header,
    #[serde(rename = "Stmt")]
    pub statement: Stmt,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Header {
    #[serde(rename = "MsgId")]
    pub message_id: String,
    #[serde(rename = "CreDtTm")]
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Stmt {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "CreDtTm")]
    pub created_at: String,
    #[serde(rename = "Acct")]
    pub account: Account,
    #[serde(rename = "Bal")]
    pub balances: Vec<Balance>,
    #[serde(rename = "Ntry", default)]
    pub entries: Vec<Ntry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Balance {
    #[serde(rename = "Tp")]
    pub kind: BalanceType,
    #[serde(rename = "Amt")]
    pub amount: CurrencyAmount,
    #[serde(rename = "CdtDbtInd")]
    pub credit_debit: String,
    #[serde(rename = "Dt")]
    pub date: DateOnly,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BalanceType {
    #[serde(rename = "CdOrPrtry")]
    pub code: crate::pain008::Code,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DateOnly {
    #[serde(rename = "Dt")]
    pub date: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Ntry {
    #[serde(rename = "Amt")]
    pub amount: CurrencyAmount,
    #[serde(rename = "CdtDbtInd")]
    pub credit_debit: String,
    /// `true`: the entry undoes an earlier one (not read, see
    /// [`Statement::from_xml`]).
    #[serde(rename = "RvslInd", default, skip_serializing_if = "Option::is_none")]
    pub reversal: Option<String>,
    #[serde(rename = "Sts")]
    pub status: crate::pain008::Code,
    #[serde(rename = "BookgDt")]
    pub booked: DateOnly,
    #[serde(rename = "BkTxCd")]
    pub bank_code: BankTransactionCode,
    /// Absent for an entry that names no transaction (a fee).
    #[serde(rename = "NtryDtls", default, skip_serializing_if = "Option::is_none")]
    pub details: Option<EntryDetails>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BankTransactionCode {
    #[serde(rename = "Domn")]
    pub domain: Domain,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Domain {
    #[serde(rename = "Cd")]
    pub code: String,
    #[serde(rename = "Fmly")]
    pub family: Family,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Family {
    #[serde(rename = "Cd")]
    pub code: String,
    #[serde(rename = "SubFmlyCd")]
    pub sub_family: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct EntryDetails {
    #[serde(rename = "TxDtls")]
    pub transaction: TxDetails,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TxDetails {
    #[serde(rename = "Refs")]
    pub refs: PaymentId,
    #[serde(rename = "RtrInf", default, skip_serializing_if = "Option::is_none")]
    pub return_info: Option<ReturnInfo>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ReturnInfo {
    #[serde(rename = "Rsn")]
    pub reason: crate::pain008::Code,
}

fn date_of(at: &str) -> String {
    at.get(..10).unwrap_or(at).to_owned()
}

impl Statement {
    /// The statement as a bank writes it (the simulated file-exchange bank,
    /// tests), checked by [`crate::rules::check_camt053`].
    pub fn to_xml(&self) -> Result<String, BankFileError> {
        let balance = |code: &str, amount| Balance {
            kind: BalanceType {
                code: crate::pain008::Code { code: code.into() },
            },
            amount: CurrencyAmount::eur(amount),
            credit_debit: "CRDT".into(),
            date: DateOnly {
                date: date_of(&self.created_at),
            },
        };
        let document = Document {
            xmlns: NAMESPACE.into(),
            statement: BankToCustomer {
                header: Header {
                    message_id: self.message_id.clone(),
                    created_at: self.created_at.clone(),
                },
                statement: Stmt {
                    id: self.statement_id.clone(),
                    created_at: self.created_at.clone(),
                    account: Account::of(&self.account),
                    balances: vec![balance("OPBD", self.opening), balance("CLBD", self.closing)],
                    entries: self
                        .entries
                        .iter()
                        .map(|e| {
                            let (family, sub_family) = match e.kind {
                                EntryKind::Paid => ("ICDT", "ESCT"),
                                _ => ("IDDT", "ESDD"),
                            };
                            Ntry {
                                amount: CurrencyAmount::eur(e.amount),
                                credit_debit: if e.is_credit() { "CRDT" } else { "DBIT" }.into(),
                                reversal: None,
                                status: crate::pain008::Code {
                                    code: "BOOK".into(),
                                },
                                booked: DateOnly {
                                    date: e.booked_on.clone(),
                                },
                                bank_code: BankTransactionCode {
                                    domain: Domain {
                                        code: "PMNT".into(),
                                        family: Family {
                                            code: family.into(),
                                            sub_family: if matches!(e.kind, EntryKind::Returned(_))
                                            {
                                                "UPDD".into()
                                            } else {
                                                sub_family.into()
                                            },
                                        },
                                    },
                                },
                                details: Some(EntryDetails {
                                    transaction: TxDetails {
                                        refs: PaymentId {
                                            end_to_end_id: e.end_to_end_id.clone(),
                                        },
                                        return_info: match &e.kind {
                                            EntryKind::Returned(reason) => Some(ReturnInfo {
                                                reason: crate::pain008::Code {
                                                    code: reason.code().into(),
                                                },
                                            }),
                                            _ => None,
                                        },
                                    },
                                }),
                            }
                        })
                        .collect(),
                },
            },
        };
        let xml = write_document(&document)?;
        crate::rules::check_camt053(&xml)?;
        Ok(xml)
    }

    /// Reads a statement, after [`crate::rules::check_camt053`] (which
    /// also checks that the balances add up to the booked entries). Text
    /// is taken as the rules take it, white space around it trimmed.
    ///
    /// Only what the balances account for is read: entries the bank has
    /// booked (`Sts` `BOOK`; a pending or informational entry moved no
    /// money yet), every amount in [`CURRENCY`], and no reversal
    /// (`RvslInd` true undoes an earlier entry of the other direction,
    /// which this reader cannot place): such a statement is refused.
    pub fn from_xml(xml: &str) -> Result<Statement, BankFileError> {
        crate::rules::check_camt053(xml)?;
        let doc: Document = read_document(xml)?;
        let s = doc.statement.statement;
        let in_currency = crate::pain001::require_currency;
        let balance = |code: &str| -> Result<ledger::Amount, BankFileError> {
            let b = s
                .balances
                .iter()
                .find(|b| b.kind.code.code.trim() == code)
                .ok_or(BankFileError::BadField {
                    field: "Bal",
                    reason: "an opening (OPBD) and a closing (CLBD) balance",
                })?;
            in_currency(&b.amount, "Bal/Amt/@Ccy")?;
            if b.credit_debit.trim() != "CRDT" {
                return Err(BankFileError::BadField {
                    field: "Bal/CdtDbtInd",
                    reason: "the issuer's account is never overdrawn",
                });
            }
            amount::from_text(&b.amount.value)
        };
        let (opening, closing) = (balance("OPBD")?, balance("CLBD")?);
        let mut entries = Vec::new();
        for n in s.entries.iter().filter(|n| n.status.code.trim() == "BOOK") {
            in_currency(&n.amount, "Ntry/Amt/@Ccy")?;
            if n.reversal
                .as_deref()
                .is_some_and(|r| !matches!(r.trim(), "false" | "0"))
            {
                return Err(BankFileError::BadField {
                    field: "Ntry/RvslInd",
                    reason: "a reversal of an earlier entry is not read",
                });
            }
            // An entry naming no transaction (the bank's fee, interest) is
            // none of the issuer's debits or payouts; the balances hold it.
            let Some(details) = &n.details else {
                continue;
            };
            let kind = match (n.credit_debit.trim(), &details.transaction.return_info) {
                ("CRDT", None) => EntryKind::Collected,
                ("DBIT", None) => EntryKind::Paid,
                ("DBIT", Some(r)) => {
                    EntryKind::Returned(ReturnReason::from_code(r.reason.code.trim()))
                }
                _ => {
                    return Err(BankFileError::BadField {
                        field: "Ntry",
                        reason: "a return is a debit; credits carry no return reason",
                    });
                }
            };
            entries.push(Entry {
                end_to_end_id: details.transaction.refs.end_to_end_id.trim().to_owned(),
                amount: amount::from_text(&n.amount.value)?,
                kind,
                booked_on: n.booked.date.trim().to_owned(),
            });
        }
        Ok(Statement {
            message_id: doc.statement.header.message_id.trim().to_owned(),
            created_at: doc.statement.header.created_at.trim().to_owned(),
            statement_id: s.id.trim().to_owned(),
            account: Iban::parse(&s.account.id.iban)?,
            opening,
            closing,
            entries,
        })
    }
}

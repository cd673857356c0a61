//! `pain.001.001.09`: the issuer asks its bank to pay redemptions and
//! merchants' cash-outs by SEPA credit transfer. The end-to-end id is the
//! issuer's transaction id (32 hex digits). Also the pieces pain.008
//! shares with it (group header, parties, accounts, amounts).

use serde::{Deserialize, Serialize};

use crate::amount;
use crate::error::BankFileError;
use crate::iban::{Bic, Iban};

/// The message's XML namespace.
pub const NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09";

/// The debtor (the issuer) of every transfer in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Debtor {
    pub name: String,
    pub iban: Iban,
    pub bic: Bic,
}

/// One payout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The issuer's transaction id, hex: the end-to-end id.
    pub end_to_end_id: String,
    pub amount: ledger::Amount,
    pub creditor_name: String,
    pub creditor_iban: Iban,
}

/// One pain.001 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditTransferFile {
    pub message_id: String,
    /// `YYYY-MM-DDThh:mm:ss`.
    pub created_at: String,
    /// `YYYY-MM-DD`.
    pub execution_date: String,
    pub debtor: Debtor,
    pub transfers: Vec<Transfer>,
}

// --- shared elements ------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct GroupHeader {
    #[serde(rename = "MsgId")]
    pub message_id: String,
    #[serde(rename = "CreDtTm")]
    pub created_at: String,
    #[serde(rename = "NbOfTxs")]
    pub n_transactions: String,
    #[serde(rename = "CtrlSum")]
    pub control_sum: String,
    #[serde(rename = "InitgPty")]
    pub initiating_party: Party,
}

impl GroupHeader {
    pub(crate) fn new(id: &str, at: &str, n: &str, sum: &str, party: &str) -> GroupHeader {
        GroupHeader {
            message_id: id.into(),
            created_at: at.into(),
            n_transactions: n.into(),
            control_sum: sum.into(),
            initiating_party: Party::named(party),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Party {
    #[serde(rename = "Nm")]
    pub name: String,
}

impl Party {
    pub(crate) fn named(name: &str) -> Party {
        Party { name: name.into() }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Account {
    #[serde(rename = "Id")]
    pub id: AccountId,
}

impl Account {
    pub(crate) fn of(iban: &Iban) -> Account {
        Account {
            id: AccountId {
                iban: iban.as_str().into(),
            },
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AccountId {
    #[serde(rename = "IBAN")]
    pub iban: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Agent {
    #[serde(rename = "FinInstnId")]
    pub institution: Institution,
}

impl Agent {
    pub(crate) fn of(bic: &Bic) -> Agent {
        Agent {
            institution: Institution {
                bic: bic.as_str().into(),
            },
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Institution {
    #[serde(rename = "BICFI")]
    pub bic: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct OtherId {
    #[serde(rename = "Id")]
    pub id: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PaymentId {
    #[serde(rename = "EndToEndId")]
    pub end_to_end_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CurrencyAmount {
    #[serde(rename = "@Ccy")]
    pub currency: String,
    #[serde(rename = "$text")]
    pub value: String,
}

impl CurrencyAmount {
    pub(crate) fn eur(amount: ledger::Amount) -> CurrencyAmount {
        CurrencyAmount {
            currency: CURRENCY.into(),
            value: amount::to_text(amount),
        }
    }
}

/// The one currency of every amount this system writes and reads: the
/// issuer's account, its purchases and payouts are in euros.
pub const CURRENCY: &str = "EUR";

/// Refuses an amount in another currency than [`CURRENCY`] (the rules
/// allow any three-letter code).
pub(crate) fn require_currency(
    amount: &CurrencyAmount,
    field: &'static str,
) -> Result<(), BankFileError> {
    if amount.currency == CURRENCY {
        Ok(())
    } else {
        Err(BankFileError::BadField {
            field,
            reason: "amounts are in EUR",
        })
    }
}

/// The sum of `amounts` as decimal text; an overflow is an error.
pub(crate) fn control_sum(
    amounts: impl Iterator<Item = ledger::Amount>,
) -> Result<String, BankFileError> {
    let mut sum = ledger::Amount::ZERO;
    for a in amounts {
        sum = sum
            .checked_add(a)
            .map_err(|_| BankFileError::BadAmount("the control sum overflows"))?;
    }
    Ok(amount::to_text(sum))
}

/// An XML declaration and the document under the root `Document`.
pub(crate) fn write_document<T: Serialize>(document: &T) -> Result<String, BankFileError> {
    let body = quick_xml::se::to_string_with_root("Document", document)
        .map_err(|e| BankFileError::Xml(e.to_string()))?;
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}\n"
    ))
}

pub(crate) fn read_document<T: for<'de> Deserialize<'de>>(xml: &str) -> Result<T, BankFileError> {
    if xml.len() > crate::FILE_BYTES_MAX {
        return Err(BankFileError::TooLarge(crate::FILE_BYTES_MAX));
    }
    quick_xml::de::from_str(xml).map_err(|e| BankFileError::Xml(e.to_string()))
}

// --- pain.001 itself -------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize)]
struct Document {
    #[serde(rename = "@xmlns")]
    xmlns: String,
    #[serde(rename = "CstmrCdtTrfInitn")]
    initiation: Initiation,
}

#[derive(Debug, Serialize, Deserialize)]
struct Initiation {
    #[serde(rename = "GrpHdr")]
    header: GroupHeader,
    #[serde(rename = "PmtInf")]
    payment: PaymentInformation,
}

#[derive(Debug, Serialize, Deserialize)]
struct PaymentInformation {
    #[serde(rename = "PmtInfId")]
    id: String,
    #[serde(rename = "PmtMtd")]
    method: String,
    #[serde(rename = "NbOfTxs")]
    n_transactions: String,
    #[serde(rename = "CtrlSum")]
    control_sum: String,
    #[serde(rename = "ReqdExctnDt")]
    execution_date: ExecutionDate,
    #[serde(rename = "Dbtr")]
    debtor: Party,
    #[serde(rename = "DbtrAcct")]
    debtor_account: Account,
    #[serde(rename = "DbtrAgt")]
    debtor_agent: Agent,
    #[serde(rename = "CdtTrfTxInf")]
    transactions: Vec<Transaction>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ExecutionDate {
    #[serde(rename = "Dt")]
    date: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Transaction {
    #[serde(rename = "PmtId")]
    payment_id: PaymentId,
    #[serde(rename = "Amt")]
    amount: InstructedAmount,
    #[serde(rename = "Cdtr")]
    creditor: Party,
    #[serde(rename = "CdtrAcct")]
    creditor_account: Account,
}

#[derive(Debug, Serialize, Deserialize)]
struct InstructedAmount {
    #[serde(rename = "InstdAmt")]
    instructed: CurrencyAmount,
}

impl CreditTransferFile {
    /// The file as XML, checked by [`crate::rules::check_pain001`].
    pub fn to_xml(&self) -> Result<String, BankFileError> {
        let sum = control_sum(self.transfers.iter().map(|t| t.amount))?;
        let n = self.transfers.len().to_string();
        let document = Document {
            xmlns: NAMESPACE.into(),
            initiation: Initiation {
                header: GroupHeader::new(
                    &self.message_id,
                    &self.created_at,
                    &n,
                    &sum,
                    &self.debtor.name,
                ),
                payment: PaymentInformation {
                    id: self.message_id.clone(),
                    method: "TRF".into(),
                    n_transactions: n.clone(),
                    control_sum: sum.clone(),
                    execution_date: ExecutionDate {
                        date: self.execution_date.clone(),
                    },
                    debtor: Party::named(&self.debtor.name),
                    debtor_account: Account::of(&self.debtor.iban),
                    debtor_agent: Agent::of(&self.debtor.bic),
                    transactions: self
                        .transfers
                        .iter()
                        .map(|t| Transaction {
                            payment_id: PaymentId {
                                end_to_end_id: t.end_to_end_id.clone(),
                            },
                            amount: InstructedAmount {
                                instructed: CurrencyAmount::eur(t.amount),
                            },
                            creditor: Party::named(&t.creditor_name),
                            creditor_account: Account::of(&t.creditor_iban),
                        })
                        .collect(),
                },
            },
        };
        let xml = write_document(&document)?;
        crate::rules::check_pain001(&xml)?;
        Ok(xml)
    }

    /// Reads a pain.001 file, after [`crate::rules::check_pain001`].
    pub fn from_xml(xml: &str) -> Result<CreditTransferFile, BankFileError> {
        crate::rules::check_pain001(xml)?;
        let doc: Document = read_document(xml)?;
        let p = doc.initiation.payment;
        let transfers = p
            .transactions
            .into_iter()
            .map(|t| {
                require_currency(&t.amount.instructed, "CdtTrfTxInf/Amt/InstdAmt/@Ccy")?;
                Ok(Transfer {
                    end_to_end_id: t.payment_id.end_to_end_id.trim().to_owned(),
                    amount: amount::from_text(&t.amount.instructed.value)?,
                    creditor_name: t.creditor.name,
                    creditor_iban: Iban::parse(&t.creditor_account.id.iban)?,
                })
            })
            .collect::<Result<Vec<_>, BankFileError>>()?;
        Ok(CreditTransferFile {
            message_id: doc.initiation.header.message_id,
            created_at: doc.initiation.header.created_at,
            execution_date: p.execution_date.date,
            debtor: Debtor {
                name: p.debtor.name,
                iban: Iban::parse(&p.debtor_account.id.iban)?,
                bic: Bic::parse(&p.debtor_agent.institution.bic)?,
            },
            transfers,
        })
    }
}

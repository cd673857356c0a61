//! `pain.008.001.08`: the issuer asks its bank to collect coin purchases
//! by SEPA core direct debit, one transaction per purchase. The end-to-end
//! id is the purchase id (32 hex digits), so the statement's entries and
//! returns come back under it.

use serde::{Deserialize, Serialize};

use crate::amount;
use crate::error::BankFileError;
use crate::iban::{Bic, Iban};

/// The message's XML namespace.
pub const NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:pain.008.001.08";

/// The creditor (the issuer) of every debit in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creditor {
    pub name: String,
    pub iban: Iban,
    pub bic: Bic,
    /// SEPA creditor identifier.
    pub scheme_id: String,
}

/// One purchase to collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Debit {
    /// The purchase id, hex: the end-to-end id.
    pub end_to_end_id: String,
    pub amount: ledger::Amount,
    pub debtor_name: String,
    pub debtor_iban: Iban,
    /// The mandate the purchaser signed (its enrollment).
    pub mandate_id: String,
    /// `YYYY-MM-DD`.
    pub mandate_signed_on: String,
}

/// One pain.008 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectDebitFile {
    pub message_id: String,
    /// `YYYY-MM-DDThh:mm:ss`.
    pub created_at: String,
    /// `YYYY-MM-DD`.
    pub collection_date: String,
    pub creditor: Creditor,
    pub debits: Vec<Debit>,
}

// --- the XML, element by element (ISO 20022 names) ---------------------------------

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Document {
    #[serde(rename = "@xmlns")]
    pub xmlns: String,
    #[serde(rename = "CstmrDrctDbtInitn")]
    pub initiation: Initiation,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Initiation {
    #[serde(rename = "GrpHdr")]
    pub header: crate::pain001::GroupHeader,
    #[serde(rename = "PmtInf")]
    pub payment: PaymentInformation,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PaymentInformation {
    #[serde(rename = "PmtInfId")]
    pub id: String,
    #[serde(rename = "PmtMtd")]
    pub method: String,
    #[serde(rename = "NbOfTxs")]
    pub n_transactions: String,
    #[serde(rename = "CtrlSum")]
    pub control_sum: String,
    #[serde(rename = "PmtTpInf")]
    pub payment_type: PaymentType,
    #[serde(rename = "ReqdColltnDt")]
    pub collection_date: String,
    #[serde(rename = "Cdtr")]
    pub creditor: crate::pain001::Party,
    #[serde(rename = "CdtrAcct")]
    pub creditor_account: crate::pain001::Account,
    #[serde(rename = "CdtrAgt")]
    pub creditor_agent: crate::pain001::Agent,
    #[serde(rename = "CdtrSchmeId")]
    pub scheme_id: SchemeId,
    #[serde(rename = "DrctDbtTxInf")]
    pub transactions: Vec<Transaction>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PaymentType {
    #[serde(rename = "SvcLvl")]
    pub service_level: Code,
    #[serde(rename = "LclInstrm")]
    pub local_instrument: Code,
    #[serde(rename = "SeqTp")]
    pub sequence: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Code {
    #[serde(rename = "Cd")]
    pub code: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SchemeId {
    #[serde(rename = "Id")]
    pub id: SchemePartyId,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SchemePartyId {
    #[serde(rename = "PrvtId")]
    pub private: SchemePrivateId,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SchemePrivateId {
    #[serde(rename = "Othr")]
    pub other: SchemeOther,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SchemeOther {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "SchmeNm")]
    pub scheme_name: Proprietary,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Proprietary {
    #[serde(rename = "Prtry")]
    pub proprietary: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Transaction {
    #[serde(rename = "PmtId")]
    pub payment_id: crate::pain001::PaymentId,
    #[serde(rename = "InstdAmt")]
    pub amount: crate::pain001::CurrencyAmount,
    #[serde(rename = "DrctDbtTx")]
    pub direct_debit: DirectDebitTx,
    #[serde(rename = "DbtrAgt")]
    pub debtor_agent: OtherAgent,
    #[serde(rename = "Dbtr")]
    pub debtor: crate::pain001::Party,
    #[serde(rename = "DbtrAcct")]
    pub debtor_account: crate::pain001::Account,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DirectDebitTx {
    #[serde(rename = "MndtRltdInf")]
    pub mandate: Mandate,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Mandate {
    #[serde(rename = "MndtId")]
    pub id: String,
    #[serde(rename = "DtOfSgntr")]
    pub signed_on: String,
}

/// The debtor's bank, left to the IBAN (SEPA: `NOTPROVIDED`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct OtherAgent {
    #[serde(rename = "FinInstnId")]
    pub institution: OtherInstitution,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct OtherInstitution {
    #[serde(rename = "Othr")]
    pub other: crate::pain001::OtherId,
}

impl DirectDebitFile {
    /// The file as XML, checked by [`crate::rules::check_pain008`].
    pub fn to_xml(&self) -> Result<String, BankFileError> {
        let sum = crate::pain001::control_sum(self.debits.iter().map(|d| d.amount))?;
        let n = self.debits.len().to_string();
        let document = Document {
            xmlns: NAMESPACE.into(),
            initiation: Initiation {
                header: crate::pain001::GroupHeader::new(
                    &self.message_id,
                    &self.created_at,
                    &n,
                    &sum,
                    &self.creditor.name,
                ),
                payment: PaymentInformation {
                    id: self.message_id.clone(),
                    method: "DD".into(),
                    n_transactions: n.clone(),
                    control_sum: sum.clone(),
                    payment_type: PaymentType {
                        service_level: Code {
                            code: "SEPA".into(),
                        },
                        local_instrument: Code {
                            code: "CORE".into(),
                        },
                        sequence: "RCUR".into(),
                    },
                    collection_date: self.collection_date.clone(),
                    creditor: crate::pain001::Party::named(&self.creditor.name),
                    creditor_account: crate::pain001::Account::of(&self.creditor.iban),
                    creditor_agent: crate::pain001::Agent::of(&self.creditor.bic),
                    scheme_id: SchemeId {
                        id: SchemePartyId {
                            private: SchemePrivateId {
                                other: SchemeOther {
                                    id: self.creditor.scheme_id.clone(),
                                    scheme_name: Proprietary {
                                        proprietary: "SEPA".into(),
                                    },
                                },
                            },
                        },
                    },
                    transactions: self
                        .debits
                        .iter()
                        .map(|d| Transaction {
                            payment_id: crate::pain001::PaymentId {
                                end_to_end_id: d.end_to_end_id.clone(),
                            },
                            amount: crate::pain001::CurrencyAmount::eur(d.amount),
                            direct_debit: DirectDebitTx {
                                mandate: Mandate {
                                    id: d.mandate_id.clone(),
                                    signed_on: d.mandate_signed_on.clone(),
                                },
                            },
                            debtor_agent: OtherAgent {
                                institution: OtherInstitution {
                                    other: crate::pain001::OtherId {
                                        id: "NOTPROVIDED".into(),
                                    },
                                },
                            },
                            debtor: crate::pain001::Party::named(&d.debtor_name),
                            debtor_account: crate::pain001::Account::of(&d.debtor_iban),
                        })
                        .collect(),
                },
            },
        };
        let xml = crate::pain001::write_document(&document)?;
        crate::rules::check_pain008(&xml)?;
        Ok(xml)
    }

    /// Reads a pain.008 file (a bank's view of what it was sent), after
    /// [`crate::rules::check_pain008`].
    pub fn from_xml(xml: &str) -> Result<DirectDebitFile, BankFileError> {
        crate::rules::check_pain008(xml)?;
        let doc: Document = crate::pain001::read_document(xml)?;
        let p = doc.initiation.payment;
        let debits = p
            .transactions
            .into_iter()
            .map(|t| {
                crate::pain001::require_currency(&t.amount, "DrctDbtTxInf/InstdAmt/@Ccy")?;
                Ok(Debit {
                    end_to_end_id: t.payment_id.end_to_end_id.trim().to_owned(),
                    amount: amount::from_text(&t.amount.value)?,
                    debtor_name: t.debtor.name,
                    debtor_iban: Iban::parse(&t.debtor_account.id.iban)?,
                    mandate_id: t.direct_debit.mandate.id,
                    mandate_signed_on: t.direct_debit.mandate.signed_on,
                })
            })
            .collect::<Result<Vec<_>, BankFileError>>()?;
        Ok(DirectDebitFile {
            message_id: doc.initiation.header.message_id,
            created_at: doc.initiation.header.created_at,
            collection_date: p.collection_date,
            creditor: Creditor {
                name: p.creditor.name,
                iban: Iban::parse(&p.creditor_account.id.iban)?,
                bic: Bic::parse(&p.creditor_agent.institution.bic)?,
                scheme_id: p.scheme_id.id.private.other.id,
            },
            debits,
        })
    }
}

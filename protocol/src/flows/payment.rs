//! Payment, client side (paper Figures 6–7): the payer seals its coins to
//! the issuer with the payee's identity and `H(Com)` inside (P3); the payee
//! wraps that in a ValidationRequest with its own key share and opens the
//! issuer's answer. Change, refresh and redeem are [`SelfPayment`]s through
//! the same path.

use ledger::{Amount, Coin, CoinId, CoinSpec, ParticipantId, Timestamp};
use serde::{Deserialize, Serialize};

use super::issuer::verify_reject;
use super::{FlowError, coins_match_spec};
use crate::crypto::{KeyShare, PublicKey, SecretKey, SessionKey, SuiteId};
use crate::wire::common::{CoinList, PaymentTid, RejectReason, RejectSubject, SignedReject};
use crate::wire::payment::{
    ComHash, Invoice, InvoiceCommitment, IssuerKeyBody, IssuerReceipt, PDesc, PayeeReceipt,
    PaymentIssuance1, PaymentIssuance2, PaymentOutcome, PaymentResult, ReceiptKind, SendCoins,
    SendCoinsBody, VDesc, VOption, ValidationBody, ValidationKind, ValidationRequest,
};
use crate::wire::purchase::IssuedCoins;
use crate::wire::registration::Certificate;
use crate::wire::{decode, encode, labels};

use super::registration::verify_certificate;

/// Refuses what the issuer would refuse undecoded: no coins, or a coin twice.
fn check_coins(coins: &[Coin]) -> Result<(), FlowError> {
    if coins.is_empty() {
        return Err(FlowError::WrongCoins { what: "no coins" });
    }
    let mut ids: Vec<CoinId> = coins.iter().map(Coin::id).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(FlowError::WrongCoins {
            what: "a coin appears twice",
        });
    }
    Ok(())
}

/// Seals coins to the issuer for one payee: SendCoins `EncC_1`.
fn seal_coins(
    suite: SuiteId,
    pk_i: &PublicKey,
    coins: Vec<Coin>,
    id_py: &ParticipantId,
    tid_py: PaymentTid,
    com_hash: ComHash,
) -> Result<SendCoins, FlowError> {
    let coins = CoinList::new(coins).map_err(|_| FlowError::WrongCoins {
        what: "more coins than one transaction may carry",
    })?;
    let body = SendCoinsBody {
        coins,
        id_py: id_py.clone(),
        tid_py,
        com_hash,
    };
    let enc_c1 = pk_i.seal(suite, labels::PAY_SEND_COINS, &encode(&body))?;
    Ok(SendCoins { enc_c1 })
}

/// The payer of one payment, from the invoice to the payee's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentPayer {
    pk_i: PublicKey,
    id_py: ParticipantId,
    tid_py: PaymentTid,
    com_hash: ComHash,
    coins: Vec<CoinId>,
    /// The payee's certified key, when the invoice was signed.
    pk_py: Option<PublicKey>,
}

/// What the payer learns at the end of a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayerOutcome {
    /// Paid. `receipt_verified` is true when the payee's receipt checked
    /// under its certified key (only possible for a signed invoice); only
    /// then is it a proof, and only then does a purse take its coins as
    /// spent (`client::Wallet` reclaims them through the issuer otherwise).
    Paid { receipt_verified: bool },
    /// The issuer refused, signature checked: `bad_coins` are ours and are
    /// to be marked bad (the others may be retried).
    Rejected {
        reason: RejectReason,
        bad_coins: Vec<CoinId>,
        statement: SignedReject,
    },
}

impl PaymentPayer {
    /// SendCoins for `invoice`. Checks that the invoice is addressed to us
    /// (`id_pa`) and names our issuer, that the coins total its amount, and,
    /// if the payee signed it, its certificate and `S_PY(H(Com))`.
    /// The invoice's own checks, before any coin is chosen for it: meant
    /// for `id_pa` through our issuer, and, if signed, signed over its
    /// `H(Com)` by a payee the issuer certified (its key is returned). A
    /// wallet runs this before it selects coins or makes change, so a
    /// forged amount sets nothing in motion.
    pub fn verify_invoice(
        pk_i: &PublicKey,
        id_i: &ParticipantId,
        id_pa: &ParticipantId,
        invoice: &Invoice,
        now: Timestamp,
    ) -> Result<Option<PublicKey>, FlowError> {
        if &invoice.id_pa != id_pa {
            return Err(FlowError::Mismatch { what: "payer id" });
        }
        if &invoice.id_i != id_i {
            return Err(FlowError::Mismatch { what: "issuer id" });
        }
        let Some(InvoiceCommitment { signature, cert_py }) = &invoice.commitment else {
            return Ok(None);
        };
        verify_certificate(pk_i, cert_py, now)?;
        if cert_py.id != invoice.id_py {
            return Err(FlowError::BadCertificate);
        }
        cert_py
            .public_key
            .verify(labels::INVOICE, &invoice.com().hash().0, signature)
            .map_err(|_| FlowError::BadSignature { what: "invoice" })?;
        Ok(Some(cert_py.public_key.clone()))
    }

    pub fn pay(
        suite: SuiteId,
        pk_i: &PublicKey,
        id_i: &ParticipantId,
        id_pa: &ParticipantId,
        invoice: &Invoice,
        coins: Vec<Coin>,
        now: Timestamp,
    ) -> Result<(PaymentPayer, SendCoins), FlowError> {
        let pk_py = Self::verify_invoice(pk_i, id_i, id_pa, invoice, now)?;
        check_coins(&coins)?;
        let total = Amount::checked_sum(coins.iter().map(Coin::value))?;
        if total != invoice.amount {
            return Err(FlowError::WrongCoins {
                what: "coins do not total the invoice",
            });
        }
        let com_hash = invoice.com().hash();
        let ids = coins.iter().map(Coin::id).collect();
        let send = seal_coins(suite, pk_i, coins, &invoice.id_py, invoice.tid_py, com_hash)?;
        let payer = PaymentPayer {
            pk_i: pk_i.clone(),
            id_py: invoice.id_py.clone(),
            tid_py: invoice.tid_py,
            com_hash,
            coins: ids,
            pk_py,
        };
        Ok((payer, send))
    }

    /// The payee's answer: a receipt, or the issuer's rejection, which is
    /// believed only if the issuer's signature checks and it is about this
    /// payment and our coins.
    pub fn on_result(&self, msg: &PaymentResult) -> Result<PayerOutcome, FlowError> {
        match msg {
            PaymentResult::Paid(None) => Ok(PayerOutcome::Paid {
                receipt_verified: false,
            }),
            PaymentResult::Paid(Some(receipt)) => {
                if receipt.com_hash != self.com_hash {
                    return Err(FlowError::Mismatch { what: "receipt" });
                }
                let receipt_verified = match &self.pk_py {
                    None => false,
                    Some(pk_py) => {
                        pk_py
                            .verify(
                                labels::RECEIPT,
                                &PayeeReceipt::signed_bytes(&receipt.com_hash),
                                &receipt.signature,
                            )
                            .map_err(|_| FlowError::BadSignature { what: "receipt" })?;
                        true
                    }
                };
                Ok(PayerOutcome::Paid { receipt_verified })
            }
            PaymentResult::Rejected(reject) => {
                verify_reject(&self.pk_i, reject)?;
                let ours = RejectSubject::Payment {
                    id_py: self.id_py.clone(),
                    tid_py: self.tid_py,
                };
                if reject.subject != ours {
                    return Err(FlowError::Mismatch {
                        what: "rejection subject",
                    });
                }
                if reject.bad_coins.iter().any(|c| !self.coins.contains(c)) {
                    return Err(FlowError::Mismatch {
                        what: "rejected coins are not ours",
                    });
                }
                Ok(PayerOutcome::Rejected {
                    reason: reject.reason,
                    bad_coins: reject.bad_coins.to_vec(),
                    statement: reject.clone(),
                })
            }
        }
    }
}

/// The payee of one payment: issues the invoice, then validates what the
/// payer sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentPayee {
    invoice: Invoice,
}

impl PaymentPayee {
    /// Invoice `TID_PY, P-DESC, amount [, S_PY(H(Com)), CERT_PY]`; signed
    /// when `signer` gives the payee's key and certificate.
    pub fn invoice(
        id_py: ParticipantId,
        id_pa: ParticipantId,
        id_i: ParticipantId,
        p_desc: PDesc,
        amount: Amount,
        signer: Option<(&SecretKey, &Certificate)>,
    ) -> (PaymentPayee, Invoice) {
        let mut invoice = Invoice {
            tid_py: PaymentTid::random(),
            p_desc,
            amount,
            id_pa,
            id_py,
            id_i,
            commitment: None,
        };
        if let Some((sk_py, cert_py)) = signer {
            let com_hash = invoice.com().hash();
            invoice.commitment = Some(InvoiceCommitment {
                signature: sk_py.sign(labels::INVOICE, &com_hash.0),
                cert_py: cert_py.clone(),
            });
        }
        (
            PaymentPayee {
                invoice: invoice.clone(),
            },
            invoice,
        )
    }

    pub fn invoice_sent(&self) -> &Invoice {
        &self.invoice
    }

    /// ValidationRequest `E*_I(ID_PY, ID_PA, K_PY, TID_PY, V-DESC, EncC_1)`:
    /// the payee's choice `option` for the invoice's amount, signed with
    /// the payee's registered key `sk_py` (the issuer checks it).
    pub fn on_send_coins(
        &self,
        suite: SuiteId,
        pk_i: &PublicKey,
        sk_py: &SecretKey,
        msg: SendCoins,
        option: VOption,
    ) -> Result<(PayeeAwaitingIssuance, ValidationRequest), FlowError> {
        let inv = &self.invoice;
        validation_request(
            suite,
            pk_i,
            sk_py,
            ValidationParts {
                id_py: inv.id_py.clone(),
                id_pa: inv.id_pa.clone(),
                id_i: inv.id_i.clone(),
                tid_py: inv.tid_py,
                kind: ValidationKind::Payment,
                v_desc: VDesc {
                    amount: inv.amount,
                    option,
                },
                com_hash: inv.com().hash(),
            },
            msg,
        )
    }
}

struct ValidationParts {
    id_py: ParticipantId,
    id_pa: ParticipantId,
    id_i: ParticipantId,
    tid_py: PaymentTid,
    kind: ValidationKind,
    v_desc: VDesc,
    com_hash: ComHash,
}

fn validation_request(
    suite: SuiteId,
    pk_i: &PublicKey,
    sk_py: &SecretKey,
    parts: ValidationParts,
    msg: SendCoins,
) -> Result<(PayeeAwaitingIssuance, ValidationRequest), FlowError> {
    // Refused here, before anything is journaled or sent, rather than by
    // the issuer after.
    parts.v_desc.check().map_err(|what| {
        FlowError::Wire(crate::wire::WireError::Invalid {
            message: "V-DESC",
            reason: what,
        })
    })?;
    let k_py = KeyShare::random();
    let signature = sk_py.sign(
        labels::PAY_VALIDATION_SIGNATURE,
        &ValidationBody::signed_bytes(
            &parts.id_py,
            &parts.id_pa,
            &k_py,
            &parts.tid_py,
            parts.kind,
            &parts.v_desc,
            &msg.enc_c1,
        ),
    );
    let body = ValidationBody {
        id_py: parts.id_py.clone(),
        id_pa: parts.id_pa,
        k_py: k_py.clone(),
        tid_py: parts.tid_py,
        kind: parts.kind,
        v_desc: parts.v_desc.clone(),
        enc_c1: msg.enc_c1,
        signature,
    };
    let envelope = pk_i.seal(suite, labels::PAY_VALIDATION, &encode(&body))?;
    let state = PayeeAwaitingIssuance {
        suite,
        pk_i: pk_i.clone(),
        id_i: parts.id_i,
        id_py: parts.id_py,
        tid_py: parts.tid_py,
        k_py,
        v_desc: parts.v_desc,
        com_hash: parts.com_hash,
    };
    Ok((state, ValidationRequest { envelope }))
}

/// What the payee got from the issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayeeOutcome {
    /// Refresh: the new coins (checked against the spec) and the ack to send.
    Coins {
        coins: Vec<Coin>,
        ack: PaymentIssuance2,
    },
    /// Redeem or aggregate: the issuer's receipt, signature checked.
    Receipt(IssuerReceipt),
    /// P4: the issuer's rejection, signature checked; pass it to the payer.
    Rejected(SignedReject),
}

/// Sent a ValidationRequest; waiting for the issuer's Issuance1. Kept (not
/// consumed) by [`PayeeAwaitingIssuance::on_issuance1`]: a retry of the same
/// request gets the same outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PayeeAwaitingIssuance {
    suite: SuiteId,
    pk_i: PublicKey,
    id_i: ParticipantId,
    id_py: ParticipantId,
    tid_py: PaymentTid,
    k_py: KeyShare,
    v_desc: VDesc,
    com_hash: ComHash,
}

impl PayeeAwaitingIssuance {
    pub fn tid_py(&self) -> PaymentTid {
        self.tid_py
    }

    /// Issuance1. Refresh: opens `E*_PY(K_I, ID_I)`, forms `K = K_I ⊕ K_PY`,
    /// checks the MAC before decrypting, then that the coins are the spec's.
    /// Redeem and aggregate: checks the issuer's receipt. Reject: checks its
    /// signature and that it is about this payment.
    pub fn on_issuance1(
        &self,
        sk_py: &SecretKey,
        msg: &PaymentIssuance1,
    ) -> Result<PayeeOutcome, FlowError> {
        if msg.tid_py != self.tid_py {
            return Err(FlowError::Mismatch { what: "TID_PY" });
        }
        match &msg.outcome {
            PaymentOutcome::Refreshed {
                key_envelope,
                enc_coins,
                mac,
            } => {
                let VOption::Refresh { spec } = &self.v_desc.option else {
                    return Err(FlowError::Mismatch {
                        what: "coins where a receipt was due",
                    });
                };
                let opened = open_issued_coins(
                    sk_py,
                    self.suite,
                    &self.k_py,
                    &self.id_i,
                    key_envelope,
                    labels::PAY_ISSUE_KEY,
                    |k| {
                        k.verify_mac(
                            labels::PAY_ISSUE_MAC,
                            &PaymentIssuance1::mac_bytes(&self.id_i, &self.tid_py, enc_coins),
                            mac,
                        )
                        .map_err(|_| FlowError::BadMac { what: "Issuance1" })?;
                        Ok(k.decrypt(labels::PAY_ISSUE, enc_coins)?)
                    },
                )?;
                coins_match_spec(&opened.coins, spec)?;
                let ack = PaymentIssuance2 {
                    id_py: self.id_py.clone(),
                    tid_py: self.tid_py,
                    mac: opened.k.mac(
                        labels::PAY_ACK,
                        &PaymentIssuance2::mac_bytes(&self.id_py, &self.tid_py),
                    ),
                };
                Ok(PayeeOutcome::Coins {
                    coins: opened.coins,
                    ack,
                })
            }
            PaymentOutcome::Receipt(receipt) => {
                let expected_kind = match &self.v_desc.option {
                    VOption::Redeem { .. } => ReceiptKind::Redeemed,
                    VOption::Aggregate => ReceiptKind::Aggregated,
                    VOption::Refresh { .. } => {
                        return Err(FlowError::Mismatch {
                            what: "a receipt where coins were due",
                        });
                    }
                };
                self.pk_i
                    .verify(
                        labels::PAY_ISSUER_RECEIPT,
                        &IssuerReceipt::signed_bytes(
                            &receipt.id_py,
                            &receipt.tid_py,
                            receipt.kind,
                            receipt.amount,
                            &receipt.inputs,
                            receipt.issued_at,
                        ),
                        &receipt.signature,
                    )
                    .map_err(|_| FlowError::BadSignature {
                        what: "issuer receipt",
                    })?;
                if receipt.id_py != self.id_py
                    || receipt.tid_py != self.tid_py
                    || receipt.kind != expected_kind
                    || receipt.amount != self.v_desc.amount
                {
                    return Err(FlowError::Mismatch {
                        what: "issuer receipt",
                    });
                }
                Ok(PayeeOutcome::Receipt(receipt.clone()))
            }
            PaymentOutcome::Rejected(reject) => {
                verify_reject(&self.pk_i, reject)?;
                let ours = RejectSubject::Payment {
                    id_py: self.id_py.clone(),
                    tid_py: self.tid_py,
                };
                if reject.subject != ours {
                    return Err(FlowError::Mismatch {
                        what: "rejection subject",
                    });
                }
                Ok(PayeeOutcome::Rejected(reject.clone()))
            }
        }
    }

    /// What to tell the payer: the payee's receipt `S_PY("vc/receipt", H(Com))`
    /// (when it has a key to sign with) or the issuer's rejection, passed on.
    /// `None` for an outcome that is not final for the payer.
    pub fn result_for_payer(
        &self,
        outcome: &PayeeOutcome,
        sk_py: Option<&SecretKey>,
    ) -> PaymentResult {
        match outcome {
            PayeeOutcome::Rejected(reject) => PaymentResult::Rejected(reject.clone()),
            PayeeOutcome::Coins { .. } | PayeeOutcome::Receipt(_) => {
                PaymentResult::Paid(sk_py.map(|sk| PayeeReceipt {
                    com_hash: self.com_hash,
                    signature:
                        sk.sign(labels::RECEIPT, &PayeeReceipt::signed_bytes(&self.com_hash)),
                }))
            }
        }
    }
}

/// Coins from an issuance, and the session key they came under (for the ack).
pub(crate) struct OpenedCoins {
    pub(crate) coins: Vec<Coin>,
    pub(crate) k: SessionKey,
}

/// Opens `E*_X(K_I, ID_I)`, checks `ID_I`, forms `K = K_I ⊕ K_X`, and hands
/// `K` to `open` (which must check the MAC before decrypting) for the coins.
pub(crate) fn open_issued_coins(
    sk_x: &SecretKey,
    suite: SuiteId,
    k_x: &KeyShare,
    id_i: &ParticipantId,
    key_envelope: &crate::crypto::Envelope,
    key_label: &str,
    open: impl FnOnce(&SessionKey) -> Result<Vec<u8>, FlowError>,
) -> Result<OpenedCoins, FlowError> {
    let plain = sk_x
        .open(key_label, key_envelope)
        .map_err(|_| FlowError::CannotOpen {
            what: "issuer key envelope",
        })?;
    let key_body: IssuerKeyBody = decode(&plain)?;
    if &key_body.id_i != id_i {
        return Err(FlowError::Mismatch { what: "issuer id" });
    }
    let k = SessionKey::combine(suite, &key_body.k_i, k_x);
    let plain = open(&k)?;
    let issued: IssuedCoins = decode(&plain)?;
    Ok(OpenedCoins {
        coins: issued.coins.into_vec(),
        k,
    })
}

/// Change, refresh and redeem: a payment to oneself through the validation
/// path. The holder plays payer and payee at once.
pub struct SelfPayment;

impl SelfPayment {
    /// `holder`: the holder's key (it signs as payee) and identity.
    fn start(
        suite: SuiteId,
        pk_i: &PublicKey,
        holder: (&SecretKey, &ParticipantId),
        id_i: &ParticipantId,
        coins: Vec<Coin>,
        kind: ValidationKind,
        option: VOption,
    ) -> Result<(PayeeAwaitingIssuance, ValidationRequest), FlowError> {
        let (sk, id) = holder;
        check_coins(&coins)?;
        let amount = Amount::checked_sum(coins.iter().map(Coin::value))?;
        let (payee, invoice) = PaymentPayee::invoice(
            id.clone(),
            id.clone(),
            id_i.clone(),
            PDesc::new(String::new()).map_err(|_| FlowError::Mismatch { what: "P-DESC" })?,
            amount,
            None,
        );
        let send = seal_coins(suite, pk_i, coins, id, invoice.tid_py, invoice.com().hash())?;
        validation_request(
            suite,
            pk_i,
            sk,
            ValidationParts {
                id_py: id.clone(),
                id_pa: id.clone(),
                id_i: id_i.clone(),
                tid_py: invoice.tid_py,
                kind,
                v_desc: VDesc { amount, option },
                com_hash: payee.invoice.com().hash(),
            },
            send,
        )
    }

    /// Change: `coins` in, coins of `spec` (of equal total) out.
    pub fn change(
        suite: SuiteId,
        pk_i: &PublicKey,
        sk: &SecretKey,
        id_i: &ParticipantId,
        id: &ParticipantId,
        coins: Vec<Coin>,
        spec: CoinSpec,
    ) -> Result<(PayeeAwaitingIssuance, ValidationRequest), FlowError> {
        Self::start(
            suite,
            pk_i,
            (sk, id),
            id_i,
            coins,
            ValidationKind::Change,
            VOption::Refresh { spec },
        )
    }

    /// Refresh: expired coins (within the grace period) in, fresh coins of
    /// `spec` out.
    pub fn refresh(
        suite: SuiteId,
        pk_i: &PublicKey,
        sk: &SecretKey,
        id_i: &ParticipantId,
        id: &ParticipantId,
        coins: Vec<Coin>,
        spec: CoinSpec,
    ) -> Result<(PayeeAwaitingIssuance, ValidationRequest), FlowError> {
        Self::start(
            suite,
            pk_i,
            (sk, id),
            id_i,
            coins,
            ValidationKind::Refresh,
            VOption::Refresh { spec },
        )
    }

    /// Redeem: coins in, an ACH credit to the holder's enrolled account out.
    pub fn redeem(
        suite: SuiteId,
        pk_i: &PublicKey,
        sk: &SecretKey,
        id_i: &ParticipantId,
        id: &ParticipantId,
        coins: Vec<Coin>,
        bank_account: ledger::BankAccount,
    ) -> Result<(PayeeAwaitingIssuance, ValidationRequest), FlowError> {
        Self::start(
            suite,
            pk_i,
            (sk, id),
            id_i,
            coins,
            ValidationKind::Redeem,
            VOption::Redeem { bank_account },
        )
    }
}

//! Payment (and change, refresh, redeem), issuer side (paper Figures 6–7,
//! P1–P4). The coin checks (tag, unspent, expiry, reservations) and the
//! atomic commit are the actors'; this module opens and answers.

use ledger::{Amount, Coin, CoinId, ParticipantId, Timestamp, TxId};
use serde::{Deserialize, Serialize};

use super::sign_reject;
use crate::crypto::{KeyShare, PublicKey, SecretKey, SessionKey, SuiteId};
use crate::flows::FlowError;
use crate::wire::common::{CoinList, CoinSerials, PaymentTid, RejectReason, RejectSubject};
use crate::wire::payment::{
    ComHash, IssuerKeyBody, IssuerReceipt, PaymentIssuance1, PaymentIssuance2, PaymentOutcome,
    ReceiptKind, SendCoinsBody, VDesc, ValidationBody, ValidationKind, ValidationRequest,
};
use crate::wire::purchase::IssuedCoins;
use crate::wire::{decode, encode, labels};

/// Label under which a payment's [`TxId`] is derived.
pub const PAYMENT_TX_LABEL: &str = "vc/tx/payment";

/// A ValidationRequest with both envelopes open and P3 and the amount checked.
/// Serializable for the issuer's validator nodes, which open requests and
/// hand them to the issuer over their authenticated, encrypted channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenedValidation {
    /// The suite of the payee's envelope: Issuance1 answers under it.
    pub suite: SuiteId,
    pub id_py: ParticipantId,
    pub id_pa: ParticipantId,
    pub k_py: KeyShare,
    pub tid_py: PaymentTid,
    pub kind: ValidationKind,
    pub v_desc: VDesc,
    /// The payer's coins, distinct, totalling `v_desc.amount`.
    pub coins: Vec<Coin>,
    pub com_hash: ComHash,
}

impl OpenedValidation {
    /// What identifies this payment for idempotency: payee, `TID_PY` and the
    /// input serials (paper §3.2). A retry maps to the same id.
    pub fn tx_id(&self) -> TxId {
        let mut serials: Vec<CoinId> = self.coins.iter().map(Coin::id).collect();
        serials.sort_unstable();
        let mut parts: Vec<&[u8]> = vec![self.id_py.as_str().as_bytes(), self.tid_py.as_bytes()];
        parts.extend(serials.iter().map(|s| s.as_bytes().as_slice()));
        TxId::derive(PAYMENT_TX_LABEL, &parts)
    }

    /// The subject of a rejection of this payment.
    pub fn subject(&self) -> RejectSubject {
        RejectSubject::Payment {
            id_py: self.id_py.clone(),
            tid_py: self.tid_py,
        }
    }

    pub fn serials(&self) -> Vec<CoinId> {
        self.coins.iter().map(Coin::id).collect()
    }
}

/// Opens a ValidationRequest, checks the payee's signature under the key
/// `registered_key` gives for `ID_PY` (before `EncC_1` is opened, so a
/// request from anyone but the payee costs one decryption and commits
/// nothing), then opens the payer's `EncC_1` inside it; refuses,
/// with a reason the issuer signs ([`FlowError::Refused`]), a payment whose
/// inner payee or `TID_PY` differs from the outer one (P3: someone re-wrapped
/// the payer's coins under its own identity) or whose coins do not total
/// V-DESC's amount. For a redeem, the caller must still check that the bank
/// account is `id_py`'s enrolled one.
pub fn open_validation_request(
    sk_i: &SecretKey,
    msg: &ValidationRequest,
    registered_key: impl FnOnce(&ParticipantId) -> Option<PublicKey>,
) -> Result<OpenedValidation, FlowError> {
    let plain = sk_i
        .open(labels::PAY_VALIDATION, &msg.envelope)
        .map_err(|_| FlowError::CannotOpen {
            what: "ValidationRequest",
        })?;
    let outer: ValidationBody = decode(&plain)?;
    let pk_py = super::registered_or_decoy(registered_key(&outer.id_py), sk_i);
    pk_py
        .verify(
            labels::PAY_VALIDATION_SIGNATURE,
            &ValidationBody::signed_bytes(
                &outer.id_py,
                &outer.id_pa,
                &outer.k_py,
                &outer.tid_py,
                outer.kind,
                &outer.v_desc,
                &outer.enc_c1,
            ),
            &outer.signature,
        )
        .map_err(|_| FlowError::BadSignature {
            what: "ValidationRequest (not signed by the payee it names)",
        })?;
    let plain = sk_i
        .open(labels::PAY_SEND_COINS, &outer.enc_c1)
        .map_err(|_| FlowError::CannotOpen { what: "EncC_1" })?;
    let inner: SendCoinsBody = decode(&plain)?;
    let subject = RejectSubject::Payment {
        id_py: outer.id_py.clone(),
        tid_py: outer.tid_py,
    };
    if inner.id_py != outer.id_py || inner.tid_py != outer.tid_py {
        return Err(FlowError::Refused {
            subject,
            reason: RejectReason::PayeeMismatch,
        });
    }
    let total = Amount::checked_sum(inner.coins.iter().map(Coin::value));
    if total != Ok(outer.v_desc.amount) {
        return Err(FlowError::Refused {
            subject,
            reason: RejectReason::AmountMismatch,
        });
    }
    Ok(OpenedValidation {
        suite: msg.envelope.suite(),
        id_py: outer.id_py,
        id_pa: outer.id_pa,
        k_py: outer.k_py,
        tid_py: outer.tid_py,
        kind: outer.kind,
        v_desc: outer.v_desc,
        coins: inner.coins.into_vec(),
        com_hash: inner.com_hash,
    })
}

/// What the issuer keeps to check a payment's Issuance2.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentAckSession {
    pub suite: SuiteId,
    pub id_py: ParticipantId,
    pub tid_py: PaymentTid,
    k_i: KeyShare,
    k_py: KeyShare,
}

/// New coins granted to a payment's payee with the issuer's key share
/// `K_I` for their Issuance1, before anything is sealed: what the issuer
/// decides and keeps (`K_I` goes into the ack session), and what a
/// validator node seals to the payee ([`seal_payment_issuance1`]), over
/// the cluster's encrypted channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CoinGrant {
    k_i: KeyShare,
    coins: CoinList,
}

impl CoinGrant {
    pub fn coins(&self) -> &[Coin] {
        &self.coins
    }
}

/// What the issuer decided of an opened payment, neither sealed nor
/// signed: new coins, a receipt, or a refusal (P4). The public-key work
/// of saying it ([`PaymentDecision::answer`]) runs wherever the request was
/// opened: the issuer's own gateway, or the validator node that opened it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PaymentDecision {
    /// A refresh or change: new coins for the payee.
    NewCoins(CoinGrant),
    /// A redeem or an aggregate, committed; the receipt is dated `at`.
    Receipt { kind: ReceiptKind, at: Timestamp },
    /// Refused, naming the bad coins.
    Rejected {
        reason: RejectReason,
        bad_coins: Vec<CoinId>,
        at: Timestamp,
    },
}

impl PaymentDecision {
    /// The Issuance1 that says this decision to the payee of `opened`: new
    /// coins sealed to `pk_py` (the payee's registered key, which its
    /// signature of the request was checked under; new coins without one
    /// are [`FlowError::UnknownParticipant`]), a receipt or refusal signed
    /// with `sk_i`.
    pub fn answer(
        &self,
        sk_i: &SecretKey,
        id_i: &ParticipantId,
        opened: &OpenedValidation,
        pk_py: Option<&PublicKey>,
    ) -> Result<PaymentIssuance1, FlowError> {
        match self {
            PaymentDecision::NewCoins(grant) => {
                let pk_py = pk_py.ok_or(FlowError::UnknownParticipant)?;
                seal_payment_issuance1(opened, pk_py, id_i, grant)
            }
            PaymentDecision::Receipt { kind, at } => Ok(payment_receipt(sk_i, opened, *kind, *at)),
            PaymentDecision::Rejected {
                reason,
                bad_coins,
                at,
            } => Ok(reject_payment(
                sk_i,
                opened.id_py.clone(),
                opened.tid_py,
                *reason,
                bad_coins.clone(),
                *at,
            )),
        }
    }
}

/// Grants `new_coins` to the payee of `opened`: picks `K_I` and returns the
/// grant with the session that checks the payee's Issuance2.
pub fn grant_payment_coins(
    opened: &OpenedValidation,
    new_coins: Vec<Coin>,
) -> Result<(CoinGrant, PaymentAckSession), FlowError> {
    let coins = CoinList::new(new_coins).map_err(|_| FlowError::WrongCoins {
        what: "more coins than one message may carry",
    })?;
    let k_i = KeyShare::random();
    let session = PaymentAckSession {
        suite: opened.suite,
        id_py: opened.id_py.clone(),
        tid_py: opened.tid_py,
        k_i: k_i.clone(),
        k_py: opened.k_py.clone(),
    };
    Ok((CoinGrant { k_i, coins }, session))
}

/// Issuance1 for a refresh (or change): `E*_PY(K_I, ID_I), e_K(NewCoins),
/// mac_K(ID_I, TID_PY, e_K(NewCoins))` with `K = K_I ⊕ K_PY`, under the
/// payee's registered key `pk_py`. For a retransmitted request, grant the
/// same new coins again with the newest `opened.k_py`: only the real payee
/// can open `K_I`.
pub fn seal_payment_issuance1(
    opened: &OpenedValidation,
    pk_py: &PublicKey,
    id_i: &ParticipantId,
    grant: &CoinGrant,
) -> Result<PaymentIssuance1, FlowError> {
    let key_body = IssuerKeyBody {
        k_i: grant.k_i.clone(),
        id_i: id_i.clone(),
    };
    let key_envelope = pk_py.seal(opened.suite, labels::PAY_ISSUE_KEY, &encode(&key_body))?;
    let k = SessionKey::combine(opened.suite, &grant.k_i, &opened.k_py);
    let enc_coins = k.encrypt(
        labels::PAY_ISSUE,
        &encode(&IssuedCoins {
            coins: grant.coins.clone(),
        }),
    );
    let mac = k.mac(
        labels::PAY_ISSUE_MAC,
        &PaymentIssuance1::mac_bytes(id_i, &opened.tid_py, &enc_coins),
    );
    Ok(PaymentIssuance1 {
        tid_py: opened.tid_py,
        outcome: PaymentOutcome::Refreshed {
            key_envelope,
            enc_coins,
            mac,
        },
    })
}

/// [`grant_payment_coins`] and [`seal_payment_issuance1`] in one step.
pub fn build_payment_issuance1(
    opened: &OpenedValidation,
    pk_py: &PublicKey,
    id_i: &ParticipantId,
    new_coins: Vec<Coin>,
) -> Result<(PaymentIssuance1, PaymentAckSession), FlowError> {
    let (grant, session) = grant_payment_coins(opened, new_coins)?;
    let msg = seal_payment_issuance1(opened, pk_py, id_i, &grant)?;
    Ok((msg, session))
}

/// Checks a payment's Issuance2 `mac_K(ID_PY, TID_PY)`.
pub fn open_payment_issuance2(
    session: &PaymentAckSession,
    msg: &PaymentIssuance2,
) -> Result<(), FlowError> {
    if msg.id_py != session.id_py || msg.tid_py != session.tid_py {
        return Err(FlowError::Mismatch {
            what: "payment of Issuance2",
        });
    }
    SessionKey::combine(session.suite, &session.k_i, &session.k_py)
        .verify_mac(
            labels::PAY_ACK,
            &PaymentIssuance2::mac_bytes(&msg.id_py, &msg.tid_py),
            &msg.mac,
        )
        .map_err(|_| FlowError::BadMac { what: "Issuance2" })
}

/// The issuer's signed receipt for a redeem or an aggregate.
pub fn sign_receipt(
    sk_i: &SecretKey,
    opened: &OpenedValidation,
    kind: ReceiptKind,
    now: Timestamp,
) -> IssuerReceipt {
    let inputs = CoinSerials::new(opened.serials()).unwrap_or_else(|_| CoinSerials::empty());
    let signature = sk_i.sign(
        labels::PAY_ISSUER_RECEIPT,
        &IssuerReceipt::signed_bytes(
            &opened.id_py,
            &opened.tid_py,
            kind,
            opened.v_desc.amount,
            &inputs,
            now,
        ),
    );
    IssuerReceipt {
        id_py: opened.id_py.clone(),
        tid_py: opened.tid_py,
        kind,
        amount: opened.v_desc.amount,
        inputs,
        issued_at: now,
        signature,
    }
}

/// Issuance1 for a redeem or an aggregate: the signed receipt.
pub fn payment_receipt(
    sk_i: &SecretKey,
    opened: &OpenedValidation,
    kind: ReceiptKind,
    now: Timestamp,
) -> PaymentIssuance1 {
    PaymentIssuance1 {
        tid_py: opened.tid_py,
        outcome: PaymentOutcome::Receipt(sign_receipt(sk_i, opened, kind, now)),
    }
}

/// Issuance1 for a refused payment (P4): `S_I("vc/reject", ...)`, which the
/// payee passes to the payer.
pub fn reject_payment(
    sk_i: &SecretKey,
    id_py: ParticipantId,
    tid_py: PaymentTid,
    reason: RejectReason,
    bad_coins: Vec<CoinId>,
    now: Timestamp,
) -> PaymentIssuance1 {
    PaymentIssuance1 {
        tid_py,
        outcome: PaymentOutcome::Rejected(sign_reject(
            sk_i,
            RejectSubject::Payment { id_py, tid_py },
            reason,
            bad_coins,
            now,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::payment::{VDesc, VOption};

    fn opened() -> OpenedValidation {
        OpenedValidation {
            suite: SuiteId::Dhaes,
            id_py: ParticipantId::new("shop").expect("an id"),
            id_pa: ParticipantId::new("alice").expect("an id"),
            k_py: KeyShare::random(),
            tid_py: PaymentTid::random(),
            kind: ValidationKind::Payment,
            v_desc: VDesc {
                amount: Amount::from_minor(0),
                option: VOption::Aggregate,
            },
            coins: Vec::new(),
            com_hash: ComHash([0; 32]),
        }
    }

    #[test]
    fn new_coins_are_never_said_without_the_payees_key() {
        let sk_i = SecretKey::generate_for(SuiteId::Dhaes, 2048).expect("a key");
        let id_i = ParticipantId::new("issuer").expect("an id");
        let opened = opened();
        let (grant, _session) = grant_payment_coins(&opened, Vec::new()).expect("a grant");
        let decision = PaymentDecision::NewCoins(grant);
        assert!(matches!(
            decision.answer(&sk_i, &id_i, &opened, None),
            Err(FlowError::UnknownParticipant)
        ));
        assert!(
            decision
                .answer(&sk_i, &id_i, &opened, Some(&sk_i.public()))
                .is_ok()
        );
    }
}

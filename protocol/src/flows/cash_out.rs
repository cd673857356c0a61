//! Cash-out, both sides: the merchant signs a [`CashOutRequest`], the
//! issuer opens it under the merchant's registered key and signs a
//! [`CashOutReceipt`], the merchant checks the receipt. The payout itself
//! (balance, bank credit, idempotency) is the issuer's actors'.

use ledger::{Amount, ParticipantId};

use crate::crypto::{PublicKey, SecretKey};
use crate::wire::cash_out::{CashOutAmount, CashOutId, CashOutReceipt, CashOutRequest};
use crate::wire::labels;

use super::FlowError;

/// The merchant's signed request to the issuer `id_i` whose key is `pk_i`.
pub fn cash_out_request(
    sk_m: &SecretKey,
    id_m: ParticipantId,
    id_i: ParticipantId,
    pk_i: &PublicKey,
    id: CashOutId,
    amount: CashOutAmount,
) -> CashOutRequest {
    let signature = sk_m.sign(
        labels::CASH_OUT_SIGNATURE,
        &CashOutRequest::signed_bytes(&id_m, &id_i, pk_i, &id, &amount),
    );
    CashOutRequest {
        id_m,
        id_i,
        id,
        amount,
        signature,
    }
}

/// Checks that the request is meant for this issuer (`id_i`) and signed by
/// the key `registered_key` gives for the merchant it names: nobody else
/// can ask for that merchant's balance.
pub fn open_cash_out(
    msg: &CashOutRequest,
    id_i: &ParticipantId,
    pk_i: &PublicKey,
    registered_key: impl FnOnce(&ParticipantId) -> Option<PublicKey>,
) -> Result<(), FlowError> {
    if &msg.id_i != id_i {
        return Err(FlowError::Mismatch {
            what: "cash-out request for another issuer",
        });
    }
    let pk_m = registered_key(&msg.id_m).ok_or(FlowError::UnknownParticipant)?;
    pk_m.verify(
        labels::CASH_OUT_SIGNATURE,
        &CashOutRequest::signed_bytes(&msg.id_m, &msg.id_i, pk_i, &msg.id, &msg.amount),
        &msg.signature,
    )
    .map_err(|_| FlowError::BadSignature {
        what: "CashOutRequest (not signed by the merchant it names)",
    })
}

/// The issuer's receipt for `paid` under request `id`.
pub fn cash_out_receipt(
    sk_i: &SecretKey,
    id_m: ParticipantId,
    id: CashOutId,
    paid: Amount,
) -> CashOutReceipt {
    let signature = sk_i.sign(
        labels::CASH_OUT_RECEIPT,
        &CashOutReceipt::signed_bytes(&id_m, &id, paid),
    );
    CashOutReceipt {
        id_m,
        id,
        paid,
        signature,
    }
}

/// Checks the issuer's signature and that the receipt answers `request`;
/// returns what was paid (which, for a repeat, is what the first request
/// paid).
pub fn verify_cash_out_receipt(
    pk_i: &PublicKey,
    request: &CashOutRequest,
    receipt: &CashOutReceipt,
) -> Result<Amount, FlowError> {
    if receipt.id_m != request.id_m || receipt.id != request.id {
        return Err(FlowError::Mismatch {
            what: "cash-out receipt for another request",
        });
    }
    pk_i.verify(
        labels::CASH_OUT_RECEIPT,
        &CashOutReceipt::signed_bytes(&receipt.id_m, &receipt.id, receipt.paid),
        &receipt.signature,
    )
    .map_err(|_| FlowError::BadSignature {
        what: "cash-out receipt",
    })?;
    Ok(receipt.paid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::generate(2048).expect("key")
    }

    #[test]
    fn only_the_named_merchants_key_opens_a_request_for_this_issuer() {
        let (sk_m, sk_x, sk_i, sk_other_i) = (key(), key(), key(), key());
        let (pk_i, pk_other_i) = (sk_i.public(), sk_other_i.public());
        let id_m = ParticipantId::new("shop").expect("id");
        let id_i = ParticipantId::new("issuer").expect("id");
        let msg = cash_out_request(
            &sk_m,
            id_m.clone(),
            id_i.clone(),
            &pk_i,
            CashOutId([1; 16]),
            CashOutAmount::All,
        );
        assert!(open_cash_out(&msg, &id_i, &pk_i, |_| Some(sk_m.public())).is_ok());
        assert!(matches!(
            open_cash_out(&msg, &id_i, &pk_i, |_| Some(sk_x.public())),
            Err(FlowError::BadSignature { .. })
        ));
        let other = ParticipantId::new("other-issuer").expect("id");
        assert!(open_cash_out(&msg, &other, &pk_i, |_| Some(sk_m.public())).is_err());
        // Another issuer under the same name, where the merchant registered
        // the same key: its key is under the signature.
        assert!(matches!(
            open_cash_out(&msg, &id_i, &pk_other_i, |_| Some(sk_m.public())),
            Err(FlowError::BadSignature { .. })
        ));
        let mut more = msg.clone();
        more.amount = CashOutAmount::Exactly(Amount::from_minor(5));
        assert!(open_cash_out(&more, &id_i, &pk_i, |_| Some(sk_m.public())).is_err());
        let receipt = cash_out_receipt(&sk_x, id_m, msg.id, Amount::from_minor(7));
        assert_eq!(
            verify_cash_out_receipt(&sk_x.public(), &msg, &receipt).expect("receipt"),
            Amount::from_minor(7)
        );
        assert!(verify_cash_out_receipt(&sk_m.public(), &msg, &receipt).is_err());
    }
}

//! The issuer's side of every flow, as pure helpers for the issuer actors:
//! open and check a request, build an answer. No I/O, no storage, no clock
//! (pass `now`). What must outlive one call (a purchase session, a spent
//! `R_I`, a payment's ack key) is returned as a serde value for the caller
//! to keep; lookups (a participant's public key) are passed in.
//!
//! - [`registration`] — [`open_register_request`], [`certify`],
//!   [`open_enrollment_request`].
//! - [`purchase`] — [`open_wrequest1`], [`answer_wrequest1`] → [`PurchaseSession`],
//!   [`open_wrequest3`] → [`PurchaseOrder`] (signature, single-use `R_I`),
//!   [`build_purchase_issuance1`], [`purchase_pending`], [`reject_purchase`],
//!   [`open_purchase_poll`], [`open_purchase_issuance2`].
//! - [`payment`] — [`open_validation_request`] → [`OpenedValidation`] (both
//!   envelopes, P3, amount), [`build_payment_issuance1`] → [`PaymentAckSession`],
//!   [`open_payment_issuance2`], [`sign_receipt`], [`payment_receipt`],
//!   [`reject_payment`].
//! - [`refund`] — [`open_refund_request`], [`build_refund_answer`], [`reject_refund`].
//! - here: [`sign_reject`] / [`verify_reject`] (P4), [`answer_coin_status`].

pub mod payment;
pub mod purchase;
pub mod refund;
pub mod registration;

pub use payment::{
    CoinGrant, OpenedValidation, PaymentAckSession, PaymentDecision, build_payment_issuance1,
    grant_payment_coins, open_payment_issuance2, open_validation_request, payment_receipt,
    reject_payment, seal_payment_issuance1, sign_receipt,
};
pub use purchase::{
    OpenedWRequest1, PurchaseOrder, PurchaseSession, answer_wrequest1, build_purchase_issuance1,
    open_purchase_issuance2, open_purchase_poll, open_wrequest1, open_wrequest3, purchase_pending,
    reject_purchase, seal_wrequest2,
};
pub use refund::{OpenedRefund, build_refund_answer, open_refund_request, reject_refund};
pub use registration::{certify, open_enrollment_request, open_register_request};

use ledger::{CoinId, Timestamp};

use super::FlowError;
use crate::crypto::{PublicKey, SecretKey};

/// The key a request's signature is checked under: the registered key of
/// the participant it names or, for an id nobody registered, the issuer's
/// own, under which no participant's signature verifies. A stranger's
/// request naming an unknown id then fails exactly as one naming a known
/// id with somebody else's signature (the same `BadSignature`, the same
/// verification's work): the answer says nothing of who is registered.
pub(crate) fn registered_or_decoy(registered: Option<PublicKey>, sk_i: &SecretKey) -> PublicKey {
    registered.unwrap_or_else(|| sk_i.public())
}
use crate::wire::common::{CoinSerials, RejectReason, RejectSubject, SignedReject};
use crate::wire::labels;
use crate::wire::limits::SERIALS_MAX;
use crate::wire::status::{CoinStatusAnswer, CoinStatusEntry};
use crate::wire::{BoundedVec, WireError};

/// P4: `S_I("vc/reject", subject, reason, bad serials, now)`. At most
/// [`SERIALS_MAX`] serials are named (a transaction has no more inputs).
pub fn sign_reject(
    sk_i: &SecretKey,
    subject: RejectSubject,
    reason: RejectReason,
    mut bad_coins: Vec<CoinId>,
    now: Timestamp,
) -> SignedReject {
    bad_coins.truncate(SERIALS_MAX);
    let bad_coins = CoinSerials::new(bad_coins).unwrap_or_else(|_| CoinSerials::empty());
    let signature = sk_i.sign(
        labels::REJECT,
        &SignedReject::signed_bytes(&subject, reason, &bad_coins, now),
    );
    SignedReject {
        subject,
        reason,
        bad_coins,
        issued_at: now,
        signature,
    }
}

/// Checks the issuer's signature on a rejection: nobody marks coins bad, or
/// gives up a purchase, on an unsigned word.
pub fn verify_reject(pk_i: &PublicKey, reject: &SignedReject) -> Result<(), FlowError> {
    pk_i.verify(
        labels::REJECT,
        &SignedReject::signed_bytes(
            &reject.subject,
            reject.reason,
            &reject.bad_coins,
            reject.issued_at,
        ),
        &reject.signature,
    )
    .map_err(|_| FlowError::BadSignature { what: "rejection" })
}

/// The signed answer to a coin status query.
pub fn answer_coin_status(
    sk_i: &SecretKey,
    entries: Vec<CoinStatusEntry>,
    now: Timestamp,
) -> Result<CoinStatusAnswer, FlowError> {
    let entries = BoundedVec::new(entries).map_err(|_| WireError::Invalid {
        message: "CoinStatusAnswer",
        reason: "too many entries",
    })?;
    let signature = sk_i.sign(
        labels::COIN_STATUS,
        &CoinStatusAnswer::signed_bytes(now, &entries),
    );
    Ok(CoinStatusAnswer {
        as_of: now,
        entries,
        signature,
    })
}

//! The flows of `docs/protocol.md` as pure code: no I/O, no storage, no clock
//! (callers pass `now`); randomness only from the OS CSPRNG inside
//! [`crate::crypto`].
//!
//! Client side, one state machine per flow; each state is a type, each step
//! consumes a message and yields the next state and the message to send:
//! - [`registration`] — [`RegistrationClient`]; [`verify_certificate`].
//! - [`enrollment`] — [`enrollment_request`].
//! - [`purchase`] — [`PurchaseClient`] → [`PurchaseAwaitingIssuance`].
//! - [`payment`] — [`PaymentPayer`] (builds SendCoins from an invoice, believes
//!   a rejection only once the issuer's signature checks), [`PaymentPayee`]
//!   (invoice, ValidationRequest, opens Issuance1), [`SelfPayment`] for
//!   change, refresh and redeem.
//! - [`refund`] — [`RefundClient`].
//! - [`status`] — [`verify_coin_status`].
//! - [`cash_out`] — both sides of a merchant's cash-out (request, receipt).
//! - [`key_change`] — both sides of a participant's key change.
//!
//! Issuer side, [`issuer`]: pure helpers the issuer actors call; they open
//! and check requests and build answers, and leave storage, single-use
//! bookkeeping beyond one session, and the clock to the caller.
//!
//! Every MAC is checked before the ciphertext it covers is decrypted.

pub mod cash_out;
pub mod enrollment;
pub mod issuer;
pub mod key_change;
pub mod payment;
pub mod purchase;
pub mod refund;
pub mod registration;
pub mod status;

pub use enrollment::enrollment_request;
pub use payment::{
    PayeeAwaitingIssuance, PayeeOutcome, PayerOutcome, PaymentPayee, PaymentPayer, SelfPayment,
};
pub use purchase::{
    PurchaseAwaitingIssuance, PurchaseAwaitingWRequest2, PurchaseClient, PurchaseUpdate,
};
pub use refund::{RefundClient, RefundUpdate};
pub use registration::{RegistrationClient, verify_certificate};
pub use status::verify_coin_status;

use ledger::{Amount, Coin, CoinSpec, MoneyError};

use crate::crypto::CryptoError;
use crate::wire::{RejectReason, RejectSubject, WireError};

/// Longest a signed enrollment or refund request stays acceptable, in
/// seconds, either side of the issuer's clock: it bounds how long the issuer
/// must remember a refund's `R` to refuse its replay.
pub const REQUEST_AGE_SECS_MAX: u64 = 600;

/// Why a step of a flow refused a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    #[error(transparent)]
    Wire(#[from] WireError),
    /// An envelope does not open under our key and this step's label.
    #[error("{what} does not open")]
    CannotOpen { what: &'static str },
    #[error("bad signature on {what}")]
    BadSignature { what: &'static str },
    #[error("bad mac on {what}")]
    BadMac { what: &'static str },
    /// A field does not match what this session expects (handle, ids).
    #[error("{what} does not match this session")]
    Mismatch { what: &'static str },
    #[error("W3: the nonce R_I of this purchase was already used")]
    ReplayedNonce,
    #[error("certificate expired or for someone else")]
    BadCertificate,
    #[error("participant is not registered")]
    UnknownParticipant,
    #[error("request is stale or from the future")]
    Stale,
    #[error("coins do not match what was asked: {what}")]
    WrongCoins { what: &'static str },
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// The issuer refuses, and owes the requester a signed statement saying
    /// so (P4): build it with [`issuer::sign_reject`] from these fields.
    #[error("refused: {reason:?}")]
    Refused {
        subject: RejectSubject,
        reason: RejectReason,
    },
    #[error("cryptographic failure: {0}")]
    Crypto(#[from] CryptoError),
}

/// Checks that `coins` are exactly the coins `spec` asks for (as a multiset
/// of values): the issuer cannot short-change a purchase or a refresh.
pub(crate) fn coins_match_spec(coins: &[Coin], spec: &CoinSpec) -> Result<(), FlowError> {
    let mut got: Vec<Amount> = coins.iter().map(Coin::value).collect();
    let mut want: Vec<Amount> = spec.values().collect();
    got.sort_unstable();
    want.sort_unstable();
    if got != want {
        return Err(FlowError::WrongCoins {
            what: "values differ from the spec",
        });
    }
    Ok(())
}

/// Whether a signed request's time is within [`REQUEST_AGE_SECS_MAX`] of `now`.
pub(crate) fn is_fresh(requested_at: ledger::Timestamp, now: ledger::Timestamp) -> bool {
    requested_at.0.abs_diff(now.0) <= REQUEST_AGE_SECS_MAX
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::{CoinBody, CoinId, Denomination, KeyEpoch, Tag, Timestamp};

    fn coin(v: u64) -> Coin {
        Coin {
            body: CoinBody {
                id: CoinId::random(),
                value: Amount::from_minor(v),
                expiry: Timestamp(10),
                epoch: KeyEpoch(1),
            },
            tag: Tag([0; 16]),
        }
    }

    #[test]
    fn coins_match_their_spec_in_any_order_and_nothing_else() {
        let spec = CoinSpec::new(vec![
            Denomination {
                count: 2,
                value: Amount::from_minor(250),
            },
            Denomination {
                count: 1,
                value: Amount::from_minor(125),
            },
        ])
        .expect("spec");
        assert!(coins_match_spec(&[coin(125), coin(250), coin(250)], &spec).is_ok());
        // Same total, other coins: refused.
        assert!(coins_match_spec(&[coin(500), coin(125)], &spec).is_err());
        assert!(coins_match_spec(&[coin(250), coin(250)], &spec).is_err());
        assert!(coins_match_spec(&[], &spec).is_err());
    }

    #[test]
    fn freshness_window_is_symmetric_and_inclusive() {
        let now = Timestamp(10_000);
        assert!(is_fresh(now, now));
        assert!(is_fresh(Timestamp(now.0 - REQUEST_AGE_SECS_MAX), now));
        assert!(is_fresh(Timestamp(now.0 + REQUEST_AGE_SECS_MAX), now));
        assert!(!is_fresh(Timestamp(now.0 - REQUEST_AGE_SECS_MAX - 1), now));
        assert!(!is_fresh(Timestamp(now.0 + REQUEST_AGE_SECS_MAX + 1), now));
    }
}

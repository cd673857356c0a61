//! A purchase debit the bank returns after the coins were issued
//! (insufficient funds, a revoked mandate, the purchaser's refund claim).
//! The coins cannot be called back — they may be spent already, and who
//! holds them is not the issuer's to know — so the issuer logs
//! `PurchaseDebitReturned` (its loss, a named line of the conservation
//! statement) and suspends the purchaser enrollments of the account the
//! debit was drawn on, until an operator approves them again.

use ledger::{Amount, BankAccount, Event, PurchaseId, Role, Seq, TxId};

use super::core::{IssuerCore, IssuerError, PurchaseStatus};
use crate::idempotency::Begin;

/// What a returned debit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebitReturned {
    pub amount: Amount,
    /// Where the log records it (`None`: it was recorded before).
    pub logged_at: Option<Seq>,
    /// Purchaser enrollments suspended on the account.
    pub n_suspended: usize,
}

/// Why a returned debit was not recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReturnedDebitError {
    #[error("purchase {0} is unknown")]
    UnknownPurchase(PurchaseId),
    #[error("purchase {0} was never settled: nothing was collected to return")]
    NotSettled(PurchaseId),
    #[error("the return reason is a bank's code of at most 35 characters")]
    BadReason,
    #[error(transparent)]
    Issuer(#[from] IssuerError),
}

/// The pure decision of a returned debit: the batch that records it, from
/// the purchase as the log knows it (`logged`: its amount and status), or
/// why it is refused. A debit is returned only once it was collected
/// (settled); the reason is a bank's return code.
fn decide_debit_returned(
    purchase: PurchaseId,
    logged: Option<(Amount, PurchaseStatus)>,
    reason: &str,
) -> Result<(TxId, Event, Amount), ReturnedDebitError> {
    if reason.is_empty() || reason.len() > RETURN_REASON_CHARS_MAX {
        return Err(ReturnedDebitError::BadReason);
    }
    let (amount, status) = logged.ok_or(ReturnedDebitError::UnknownPurchase(purchase))?;
    if !matches!(
        status,
        PurchaseStatus::Settled(_) | PurchaseStatus::Acknowledged
    ) {
        return Err(ReturnedDebitError::NotSettled(purchase));
    }
    Ok((
        TxId::derive("vc/tx/debit-returned", &[purchase.as_bytes()]),
        Event::PurchaseDebitReturned {
            purchase,
            amount,
            reason: reason.to_owned(),
        },
        amount,
    ))
}

/// An ISO 20022 return reason code is at most this long.
const RETURN_REASON_CHARS_MAX: usize = 35;

impl IssuerCore {
    /// Records that the bank returned the settled debit of `purchase`,
    /// drawn on `account`, for `reason` (an ISO 20022 return reason code).
    /// Idempotent: the same return again logs nothing more.
    pub fn debit_returned(
        &self,
        purchase: PurchaseId,
        account: &BankAccount,
        reason: &str,
    ) -> Result<DebitReturned, ReturnedDebitError> {
        let logged = ledger::sync::lock(&self.state)
            .purchases
            .get(&purchase)
            .map(|p| (p.amount, p.status.clone()));
        let (tx, event, amount) = decide_debit_returned(purchase, logged, reason)?;
        let logged_at = match self.idempotency.begin(tx).map_err(IssuerError::from)? {
            Begin::Started => {
                let result = self.commit_batch(tx, &[], vec![event], Vec::new());
                self.idempotency.abandon(tx);
                Some(result?.first_seq)
            }
            Begin::Committed(_) => None,
            Begin::InFlight => return Err(IssuerError::InFlight.into()),
        };
        let n_suspended = {
            let _one_change_at_a_time = ledger::sync::lock(&self.participants_lock);
            self.registry
                .suspend_enrollments_on_account(Role::CoinPurchaser, account)
                .map_err(IssuerError::from)?
        };
        tracing::warn!(%purchase, %amount, reason, n_suspended, "purchase debit returned");
        Ok(DebitReturned {
            amount,
            logged_at,
            n_suspended,
        })
    }
}

#[cfg(test)]
mod tests {
    use ledger::BankRejection;

    use super::*;

    // Given a purchase whose debit was collected (settled, or acknowledged
    // after), its return is logged for its amount, the same transaction
    // every time; an unknown, pending or rejected purchase, or a reason
    // that is no bank code, is refused.
    #[test]
    fn only_a_collected_debit_is_returned() {
        let purchase = PurchaseId::random();
        let amount = Amount::from_minor(300);
        for status in [
            PurchaseStatus::Settled(Vec::new()),
            PurchaseStatus::Acknowledged,
        ] {
            let (tx, event, returned) =
                decide_debit_returned(purchase, Some((amount, status.clone())), "AM04")
                    .expect("returned");
            assert_eq!(returned, amount);
            assert!(matches!(event, Event::PurchaseDebitReturned { .. }));
            let (again, _, _) =
                decide_debit_returned(purchase, Some((amount, status)), "MD06").expect("returned");
            assert_eq!(tx, again);
        }
        assert!(matches!(
            decide_debit_returned(purchase, None, "AM04"),
            Err(ReturnedDebitError::UnknownPurchase(_))
        ));
        for status in [
            PurchaseStatus::Pending,
            PurchaseStatus::Rejected(BankRejection::InsufficientFunds),
        ] {
            assert!(matches!(
                decide_debit_returned(purchase, Some((amount, status)), "AM04"),
                Err(ReturnedDebitError::NotSettled(_))
            ));
        }
        for reason in ["", &"X".repeat(36)] {
            assert!(matches!(
                decide_debit_returned(
                    purchase,
                    Some((amount, PurchaseStatus::Acknowledged)),
                    reason
                ),
                Err(ReturnedDebitError::BadReason)
            ));
        }
    }
}

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
        if reason.is_empty() || reason.len() > 35 {
            return Err(ReturnedDebitError::BadReason);
        }
        let (amount, settled) = {
            let state = ledger::sync::lock(&self.state);
            let p = state
                .purchases
                .get(&purchase)
                .ok_or(ReturnedDebitError::UnknownPurchase(purchase))?;
            (
                p.amount,
                matches!(
                    p.status,
                    PurchaseStatus::Settled(_) | PurchaseStatus::Acknowledged
                ),
            )
        };
        if !settled {
            return Err(ReturnedDebitError::NotSettled(purchase));
        }
        let tx = TxId::derive("vc/tx/debit-returned", &[purchase.as_bytes()]);
        let event = Event::PurchaseDebitReturned {
            purchase,
            amount,
            reason: reason.to_owned(),
        };
        let logged_at = match self.idempotency.begin(tx).map_err(IssuerError::from)? {
            Begin::Started => {
                let result = self.commit_batch(tx, &[], vec![event], Vec::new());
                self.idempotency.abandon(tx);
                Some(result?.first_seq)
            }
            Begin::Committed(_) => None,
            Begin::InFlight => return Err(IssuerError::InFlight.into()),
        };
        let n_suspended = self
            .registry
            .suspend_enrollments_on_account(Role::CoinPurchaser, account)
            .map_err(IssuerError::from)?;
        tracing::warn!(%purchase, %amount, reason, n_suspended, "purchase debit returned");
        Ok(DebitReturned {
            amount,
            logged_at,
            n_suspended,
        })
    }
}

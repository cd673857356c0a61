//! Cash-out, issuer side: a merchant's signed request to pay its aggregated
//! balance (all or an amount) to its enrolled redeem account, answered with
//! the issuer's signed receipt. The payout is the aggregate redemption of
//! [`IssuerCore::redeem_aggregate`] (same events, same idempotency by the
//! merchant's request id), so the auditor reconciles it with the bank like
//! any other redemption.

use protocol::flows::cash_out::{cash_out_receipt, open_cash_out};
use protocol::wire::cash_out::{CashOutAmount, CashOutReceipt, CashOutRequest};

use crate::issuer::core::{IssuerCore, IssuerError};

impl IssuerCore {
    /// Checks the merchant's signature (before anything is read or paid),
    /// pays, and signs the receipt. A repeat of the request id pays nothing
    /// more and gets the first payout's receipt. Refusals: not signed by
    /// the merchant's registered key ([`IssuerError::Flow`]), not enrolled
    /// as a merchant ([`IssuerError::NoSuchEnrollment`]), above the balance
    /// ([`IssuerError::AboveBalance`]), all of a zero balance
    /// ([`IssuerError::NothingToCashOut`]); a zero amount does not decode.
    pub fn cash_out(&self, msg: &CashOutRequest) -> Result<CashOutReceipt, IssuerError> {
        let pk_i = self.sk_i.public();
        self.open_with_registered_keys(|key| open_cash_out(msg, &self.id_i, &pk_i, key))?;
        let amount = match msg.amount {
            CashOutAmount::All => None,
            CashOutAmount::Exactly(amount) => Some(amount),
        };
        let paid = self.withdraw_aggregate(&msg.id_m, amount, msg.id.0)?;
        // No merchant id: identities stay out of the logs (tests/secrets_in_logs.rs).
        tracing::info!(request = %msg.id.to_hex(), %paid, "cash-out");
        Ok(cash_out_receipt(&self.sk_i, msg.id_m.clone(), msg.id, paid))
    }
}

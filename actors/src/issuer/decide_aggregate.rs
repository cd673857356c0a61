//! The pure decision of a withdrawal from a merchant's aggregated balance
//! (an aggregate redemption, a cash-out): how much it pays, or why not,
//! and the batch that pays it. What it reads (the balance, under the
//! aggregate lock) is read before, the sealed account made before; the
//! pending credit, the commit path and the bank credit are I/O around it.
//! No clock, lock or I/O here.
//!
//! Its refusals ([`WithdrawalRefusal`]) are the merchant's answers; the
//! issuer reports them as the matching `IssuerError`.

use ledger::{Amount, BalanceId, Event, SealedBankAccount};

use crate::issuer::core::IssuerError;

/// Why a withdrawal pays nothing; nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WithdrawalRefusal {
    /// More asked than the balance holds.
    AboveBalance { balance: Amount, asked: Amount },
    /// All of a balance that is zero.
    NothingToCashOut,
}

impl From<WithdrawalRefusal> for IssuerError {
    fn from(refusal: WithdrawalRefusal) -> IssuerError {
        match refusal {
            WithdrawalRefusal::AboveBalance { balance, asked } => {
                IssuerError::AboveBalance { balance, asked }
            }
            WithdrawalRefusal::NothingToCashOut => IssuerError::NothingToCashOut,
        }
    }
}

/// What a withdrawal of `asked` (`None`: all of it) from a balance holding
/// `available` pays.
pub(crate) fn withdrawal_amount(
    available: Amount,
    asked: Option<Amount>,
) -> Result<Amount, WithdrawalRefusal> {
    let amount = match asked {
        Some(amount) => amount,
        None if available.is_zero() => return Err(WithdrawalRefusal::NothingToCashOut),
        None => available,
    };
    if available < amount {
        return Err(WithdrawalRefusal::AboveBalance {
            balance: available,
            asked: amount,
        });
    }
    Ok(amount)
}

/// The batch of a withdrawal of `amount` from `balance`, credited to the
/// merchant's enrolled account (`bank_account`, sealed for the log).
pub(crate) fn withdrawal_events(
    balance: BalanceId,
    amount: Amount,
    bank_account: SealedBankAccount,
) -> Vec<Event> {
    vec![
        Event::AggregateWithdrawn { balance, amount },
        Event::Redeemed {
            amount,
            bank_account,
        },
    ]
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use ledger::Flows;

    use super::*;

    // Given a balance of 500: asking 200 pays 200, all pays 500, 600 is
    // above the balance; all of a zero balance is "nothing to cash out",
    // while asking an amount of it is above the balance.
    #[test]
    fn a_withdrawal_pays_what_is_asked_up_to_the_balance() {
        let (five, six) = (Amount::from_minor(500), Amount::from_minor(600));
        assert_eq!(
            withdrawal_amount(five, Some(Amount::from_minor(200))),
            Ok(Amount::from_minor(200))
        );
        assert_eq!(withdrawal_amount(five, None), Ok(five));
        assert_eq!(
            withdrawal_amount(five, Some(six)),
            Err(WithdrawalRefusal::AboveBalance {
                balance: five,
                asked: six
            })
        );
        assert_eq!(
            withdrawal_amount(Amount::ZERO, None),
            Err(WithdrawalRefusal::NothingToCashOut)
        );
        assert!(matches!(
            withdrawal_amount(Amount::ZERO, Some(five)),
            Err(WithdrawalRefusal::AboveBalance { .. })
        ));
    }

    // The batch moves the amount from the balance to the bank: it balances.
    #[test]
    fn a_withdrawal_batch_balances() {
        let events = withdrawal_events(
            BalanceId::random(),
            Amount::from_minor(500),
            SealedBankAccount::from_sealed_bytes(vec![2; 32]).expect("sealed"),
        );
        Flows::of(&events)
            .check_balanced()
            .expect("a withdrawal balances");
    }
}

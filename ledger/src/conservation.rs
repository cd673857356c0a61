//! Conservation of cash, as one pure function used twice: the issuer's
//! coordinator asserts that every batch balances before it goes to the log,
//! and the auditor checks the same rule with the same code on replay.
//!
//! ```text
//! unspent coins + aggregated balances + owed to card systems
//!   + forfeited float (the issuer's breakage)
//!   = real money in (settled purchases, clearing receipts, the issuer's
//!     own money covering returned debits)
//!   − real money out (redemptions, clearing payments, returned debits)
//! ```
//!
//! Forfeited float is the value of coins still unspent when their key
//! epoch was erased (`Event::FloatForfeited`): nobody can present them
//! any more, so they leave the outstanding e-money, and the money that
//! bought them stays with the issuer as its own.
//!
//! [`Flows::of`] sums what one transaction's events move; a transaction
//! balances when the change of the left side equals the change of the right.
//! [`Totals`] keeps the running stocks and checks the equation after every
//! transaction. Card float is signed (a load/unload server may owe the
//! issuer), so the running sums are `i128`: no `u64` amount can overflow them.

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::money::{Amount, MoneyError};

/// What one transaction's events move, in minor units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flows {
    pub coins_issued: u128,
    pub coins_spent: u128,
    pub coins_revoked: u128,
    pub aggregated: u128,
    pub aggregate_withdrawn: u128,
    pub card_loaded: u128,
    pub card_unloaded: u128,
    pub real_in: u128,
    pub real_out: u128,
    pub cleared_to_lus: u128,
    pub cleared_from_lus: u128,
    /// Collected purchase debits the bank gave back: real money out.
    pub debits_returned: u128,
    /// The issuer's own money covering the coins of returned debits: real
    /// money in, equal to `debits_returned` (the issuer's loss).
    pub loss_covered: u128,
    /// Unspent coins of an erased epoch, forfeited: out of the outstanding
    /// e-money, into the issuer's breakage.
    pub forfeited: u128,
}

/// Why a transaction or the running state breaks conservation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConservationError {
    #[error(
        "transaction does not balance: stocks change by {stocks_delta}, real money by {real_delta} (minor units)"
    )]
    Unbalanced {
        stocks_delta: i128,
        real_delta: i128,
    },
    #[error("outstanding e-money would be negative ({0} minor units)")]
    NegativeOutstanding(i128),
    #[error("aggregated balances would be negative ({0} minor units)")]
    NegativeAggregates(i128),
    /// A running stock left the range of `i128` (only a forged log gets
    /// there: every amount is a `u64`).
    #[error("a running total overflows")]
    TotalsOverflow,
    #[error("amount overflow in a coin list")]
    Overflow(#[from] MoneyError),
}

fn add(acc: &mut u128, a: Amount) {
    *acc += u128::from(a.minor_units());
}

impl Flows {
    /// Sums the money movements of one transaction's events.
    pub fn of<'a>(events: impl IntoIterator<Item = &'a Event>) -> Flows {
        let mut f = Flows::default();
        for event in events {
            match event {
                Event::PurchaseSettled { amount, .. } => add(&mut f.real_in, *amount),
                Event::CoinsIssued { coins, .. } => {
                    coins.iter().for_each(|c| add(&mut f.coins_issued, c.value))
                }
                Event::CoinsSpent { coins, .. } => {
                    coins.iter().for_each(|c| add(&mut f.coins_spent, c.value))
                }
                Event::CoinsRevoked { coins } => coins
                    .iter()
                    .for_each(|c| add(&mut f.coins_revoked, c.value)),
                Event::Redeemed { amount, .. } => add(&mut f.real_out, *amount),
                Event::Aggregated { amount, .. } => add(&mut f.aggregated, *amount),
                Event::AggregateWithdrawn { amount, .. } => {
                    add(&mut f.aggregate_withdrawn, *amount)
                }
                Event::CardLoaded { amount, .. } => add(&mut f.card_loaded, *amount),
                Event::CardUnloaded { amount, .. } => add(&mut f.card_unloaded, *amount),
                Event::Cleared {
                    paid_to_lus,
                    received_from_lus,
                    ..
                } => {
                    add(&mut f.cleared_to_lus, *paid_to_lus);
                    add(&mut f.cleared_from_lus, *received_from_lus);
                }
                Event::PurchaseDebitReturned { amount, .. } => {
                    // The coins stay outstanding: what the bank took back,
                    // the issuer puts in from its own funds.
                    add(&mut f.debits_returned, *amount);
                    add(&mut f.loss_covered, *amount);
                }
                Event::FloatForfeited { value, .. } => add(&mut f.forfeited, *value),
                Event::Registered { .. }
                | Event::EnrollmentRequested { .. }
                | Event::Enrolled { .. }
                | Event::PurchaseRequested { .. }
                | Event::PurchaseRejected { .. }
                | Event::PurchaseAcknowledged { .. }
                | Event::EpochOpened { .. }
                | Event::EpochClosed { .. }
                | Event::SpentCoinsErased { .. }
                | Event::EpochRevoked { .. }
                | Event::EpochErased { .. }
                | Event::IdentityDisclosed { .. }
                | Event::EnrollmentRefused { .. }
                | Event::StandingChanged { .. }
                | Event::KeyChanged { .. }
                | Event::IdentityDisclosedUnderDualControl { .. }
                | Event::Checkpoint(_) => {}
            }
        }
        f
    }

    /// Change of outstanding e-money (unspent coins).
    pub fn outstanding_delta(&self) -> i128 {
        self.coins_issued as i128
            - self.coins_spent as i128
            - self.coins_revoked as i128
            - self.forfeited as i128
    }

    /// Change of the forfeited float (the issuer's breakage): it only grows.
    pub fn forfeited_delta(&self) -> i128 {
        self.forfeited as i128
    }

    /// Change of aggregated balances.
    pub fn aggregates_delta(&self) -> i128 {
        self.aggregated as i128 - self.aggregate_withdrawn as i128
    }

    /// Change of what the issuer owes card systems.
    pub fn card_float_delta(&self) -> i128 {
        self.card_loaded as i128 - self.card_unloaded as i128 - self.cleared_to_lus as i128
            + self.cleared_from_lus as i128
    }

    /// Change of real money held (in − out).
    pub fn real_delta(&self) -> i128 {
        self.real_in as i128 + self.cleared_from_lus as i128 + self.loss_covered as i128
            - self.real_out as i128
            - self.cleared_to_lus as i128
            - self.debits_returned as i128
    }

    /// Whether the transaction moves any money at all.
    pub fn is_empty(&self) -> bool {
        *self == Flows::default()
    }

    /// The rule every transaction obeys: value in equals value out.
    pub fn check_balanced(&self) -> Result<(), ConservationError> {
        let stocks_delta = self.outstanding_delta()
            + self.aggregates_delta()
            + self.card_float_delta()
            + self.forfeited_delta();
        let real_delta = self.real_delta();
        if stocks_delta == real_delta {
            Ok(())
        } else {
            Err(ConservationError::Unbalanced {
                stocks_delta,
                real_delta,
            })
        }
    }
}

/// Running stocks of the conservation equation, in minor units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub outstanding: i128,
    pub aggregates: i128,
    pub card_float: i128,
    pub real_in: i128,
    pub real_out: i128,
    /// Value of the coins forfeited with their erased epochs (the issuer's
    /// breakage): out of `outstanding`, never redeemable again.
    pub forfeited: i128,
}

impl Totals {
    /// Applies one balanced transaction, then checks the whole equation and
    /// that no stock went negative. On error `self` is unchanged.
    pub fn apply(&mut self, flows: &Flows) -> Result<(), ConservationError> {
        flows.check_balanced()?;
        let mut next = *self;
        let grow = |stock: i128, by: i128| {
            stock
                .checked_add(by)
                .ok_or(ConservationError::TotalsOverflow)
        };
        next.outstanding = grow(next.outstanding, flows.outstanding_delta())?;
        next.aggregates = grow(next.aggregates, flows.aggregates_delta())?;
        next.card_float = grow(next.card_float, flows.card_float_delta())?;
        next.forfeited = grow(next.forfeited, flows.forfeited_delta())?;
        next.real_in = grow(
            next.real_in,
            flows.real_in as i128 + flows.cleared_from_lus as i128 + flows.loss_covered as i128,
        )?;
        next.real_out = grow(
            next.real_out,
            flows.real_out as i128 + flows.cleared_to_lus as i128 + flows.debits_returned as i128,
        )?;
        if next.outstanding < 0 {
            return Err(ConservationError::NegativeOutstanding(next.outstanding));
        }
        if next.aggregates < 0 {
            return Err(ConservationError::NegativeAggregates(next.aggregates));
        }
        next.check_equation()?;
        *self = next;
        Ok(())
    }

    /// `outstanding + aggregates + card float + forfeited = real in − real out`.
    pub fn check_equation(&self) -> Result<(), ConservationError> {
        let stocks = [self.aggregates, self.card_float, self.forfeited]
            .into_iter()
            .try_fold(self.outstanding, i128::checked_add)
            .ok_or(ConservationError::TotalsOverflow)?;
        let real = self
            .real_in
            .checked_sub(self.real_out)
            .ok_or(ConservationError::TotalsOverflow)?;
        if stocks == real {
            Ok(())
        } else {
            Err(ConservationError::Unbalanced {
                stocks_delta: stocks,
                real_delta: real,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coin::CoinBody;
    use crate::event::{IssueCause, PaymentOption, SpendCause};
    use crate::ids::{
        BalanceId, CardId, CoinId, KeyEpoch, LusId, PurchaseId, SealedBankAccount, Timestamp,
    };

    fn coins(values: &[u64]) -> Vec<CoinBody> {
        values
            .iter()
            .map(|&v| CoinBody {
                id: CoinId::random(),
                value: Amount::from_minor(v),
                expiry: Timestamp(10),
                epoch: KeyEpoch(1),
            })
            .collect()
    }

    fn account() -> SealedBankAccount {
        SealedBankAccount::from_sealed_bytes(vec![1, 2, 3]).expect("short")
    }

    #[test]
    fn purchase_then_payments_balance_and_conserve() {
        let mut totals = Totals::default();
        let purchase = PurchaseId::random();
        let bought = coins(&[250, 250, 125]);
        let tx = [
            Event::PurchaseSettled {
                purchase,
                amount: Amount::from_minor(625),
            },
            Event::CoinsIssued {
                coins: bought.clone(),
                holder: None,
                cause: IssueCause::Purchase(purchase),
            },
        ];
        totals.apply(&Flows::of(&tx)).expect("purchase balances");
        let refresh = [
            Event::CoinsSpent {
                coins: bought[..1].to_vec(),
                cause: SpendCause::Payment(PaymentOption::Refresh),
            },
            Event::CoinsIssued {
                coins: coins(&[200, 50]),
                holder: None,
                cause: IssueCause::Payment,
            },
        ];
        totals
            .apply(&Flows::of(&refresh))
            .expect("refresh balances");
        let balance = BalanceId::random();
        let aggregate = [
            Event::CoinsSpent {
                coins: bought[1..2].to_vec(),
                cause: SpendCause::Payment(PaymentOption::Aggregate),
            },
            Event::Aggregated {
                balance,
                amount: Amount::from_minor(250),
            },
        ];
        totals
            .apply(&Flows::of(&aggregate))
            .expect("aggregate balances");
        let redeem = [
            Event::AggregateWithdrawn {
                balance,
                amount: Amount::from_minor(250),
            },
            Event::Redeemed {
                amount: Amount::from_minor(250),
                bank_account: account(),
            },
        ];
        totals
            .apply(&Flows::of(&redeem))
            .expect("aggregate redemption balances");
        assert_eq!(totals.outstanding, 375);
        assert_eq!(totals.aggregates, 0);
        assert_eq!(totals.real_in - totals.real_out, 375);
    }

    #[test]
    fn card_float_is_signed_and_clears() {
        let mut totals = Totals::default();
        let (lus, card) = (LusId(1), CardId::from_bytes([1; 8]));
        let unload = [
            Event::CardUnloaded {
                lus,
                card,
                nt: 1,
                amount: Amount::from_minor(500),
            },
            Event::CoinsIssued {
                coins: coins(&[500]),
                holder: None,
                cause: IssueCause::CardUnload,
            },
        ];
        totals.apply(&Flows::of(&unload)).expect("unload balances");
        assert_eq!(totals.card_float, -500);
        let clear = [Event::Cleared {
            lus,
            period: 1,
            paid_to_lus: Amount::ZERO,
            received_from_lus: Amount::from_minor(500),
        }];
        totals.apply(&Flows::of(&clear)).expect("clearing balances");
        assert_eq!(totals.card_float, 0);
        assert_eq!(totals.real_in, 500);
    }

    #[test]
    fn unbalanced_transactions_are_refused_and_leave_totals_alone() {
        let mut totals = Totals::default();
        let minted_from_nothing = [Event::CoinsIssued {
            coins: coins(&[100]),
            holder: None,
            cause: IssueCause::Change,
        }];
        let before = totals;
        assert!(matches!(
            totals.apply(&Flows::of(&minted_from_nothing)),
            Err(ConservationError::Unbalanced { .. })
        ));
        assert_eq!(totals, before);
    }

    // Given 6.25 outstanding, of which 2.50 is forfeited with its epoch:
    // outstanding falls to 3.75, the forfeited float rises to 2.50, and
    // the equation still holds with real money untouched. A forged
    // forfeiture of more than is outstanding is a typed failure and
    // changes nothing.
    #[test]
    fn a_forfeiture_moves_value_from_outstanding_to_the_forfeited_float() {
        let mut totals = Totals::default();
        let purchase = PurchaseId::random();
        let tx = [
            Event::PurchaseSettled {
                purchase,
                amount: Amount::from_minor(625),
            },
            Event::CoinsIssued {
                coins: coins(&[250, 250, 125]),
                holder: None,
                cause: IssueCause::Purchase(purchase),
            },
        ];
        totals.apply(&Flows::of(&tx)).expect("purchase balances");
        let forfeiture = |value| Event::FloatForfeited {
            epoch: KeyEpoch(1),
            n_coins: 1,
            value: Amount::from_minor(value),
            digest: crate::Hash32([0; 32]),
        };
        let flows = Flows::of(&[forfeiture(250)]);
        flows.check_balanced().expect("a forfeiture balances alone");
        assert_eq!(flows.outstanding_delta(), -250);
        totals.apply(&flows).expect("forfeited");
        assert_eq!(totals.outstanding, 375);
        assert_eq!(totals.forfeited, 250);
        assert_eq!(totals.real_in - totals.real_out, 625);
        totals.check_equation().expect("conserved");
        let before = totals;
        assert_eq!(
            totals.apply(&Flows::of(&[forfeiture(1_000)])),
            Err(ConservationError::NegativeOutstanding(-625))
        );
        assert_eq!(totals, before);
    }

    // Stocks near the edge of i128 (a forged log's) give a typed failure,
    // never a wrapped sum or a panic.
    #[test]
    fn a_running_total_past_i128_is_a_typed_failure() {
        let mut totals = Totals {
            forfeited: i128::MAX,
            ..Totals::default()
        };
        let flows = Flows {
            forfeited: 1,
            coins_issued: 1,
            ..Flows::default()
        };
        let before = totals;
        assert_eq!(
            totals.apply(&flows),
            Err(ConservationError::Unbalanced {
                stocks_delta: 1,
                real_delta: 0
            })
        );
        let balanced = Flows {
            coins_issued: 2,
            forfeited: 1,
            real_in: 2,
            ..Flows::default()
        };
        assert_eq!(
            totals.apply(&balanced),
            Err(ConservationError::TotalsOverflow)
        );
        assert_eq!(totals, before);
        let skewed = Totals {
            outstanding: i128::MAX,
            forfeited: 1,
            ..Totals::default()
        };
        assert_eq!(
            skewed.check_equation(),
            Err(ConservationError::TotalsOverflow)
        );
    }

    #[test]
    fn spending_what_was_never_outstanding_is_refused() {
        let mut totals = Totals::default();
        let tx = [
            Event::CoinsSpent {
                coins: coins(&[100]),
                cause: SpendCause::Redeem,
            },
            Event::Redeemed {
                amount: Amount::from_minor(100),
                bank_account: account(),
            },
        ];
        assert!(matches!(
            totals.apply(&Flows::of(&tx)),
            Err(ConservationError::NegativeOutstanding(-100))
        ));
    }
}

//! The pure decision of a validation once its inputs are reserved: given
//! what was read before (the logged bodies of the inputs, the clock, the
//! refresh grace of their epochs, the fresh coins or sealed account of the
//! payout), either a domain refusal, signed to the client afterwards, or
//! the events to commit. No clock, randomness, lock or I/O here: the
//! caller reads first and writes after.
//!
//! Refusals ([`PaymentRefusal`]) are answers the protocol owes the client
//! (P4), never technical failures: those stay `IssuerError`.

use ledger::{
    Amount, BalanceId, CoinBody, CoinId, Event, IssueCause, KeyEpoch, SealedBankAccount,
    SealedIdentity, SpendCause, Timestamp,
};
use protocol::wire::RejectReason;

/// A domain refusal of a validation: the reason and the coins it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PaymentRefusal {
    pub(crate) reason: RejectReason,
    pub(crate) bad_coins: Vec<CoinId>,
}

/// What a validation pays out, with everything the events need read or
/// made beforehand.
#[derive(Debug, Clone)]
pub(crate) enum PayoutDecided {
    /// Fresh coins (minted by the caller), issued for `cause`, to `holder`
    /// when they are a holder's own change or refresh of coins issued to it.
    Coins {
        fresh: Vec<CoinBody>,
        cause: IssueCause,
        holder: Option<SealedIdentity>,
    },
    /// A bank credit to the sealed enrolled account.
    Redeem(SealedBankAccount),
    /// The merchant's aggregated balance.
    Aggregate(BalanceId),
}

/// What the decision reads besides the request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InputsView<'a> {
    /// The inputs' bodies as the shards hold them (from the log), in the
    /// order the request presents them.
    pub(crate) logged: &'a [CoinBody],
    /// The bodies the request presents (their tags were checked).
    pub(crate) presented: &'a [CoinBody],
    pub(crate) now: Timestamp,
    /// A refresh takes expired coins until their epoch's grace ends.
    pub(crate) refresh: bool,
}

/// The inputs' refusal, if any: a presented body other than the logged one
/// (its tag vouches for the presented body only), then expiry (a refresh
/// until the end of the epoch's grace, `grace_ends`; an unknown epoch has
/// none).
pub(crate) fn refuse_inputs(
    view: InputsView<'_>,
    grace_ends: impl Fn(KeyEpoch) -> Option<Timestamp>,
) -> Option<PaymentRefusal> {
    let mismatched: Vec<CoinId> = view
        .logged
        .iter()
        .zip(view.presented)
        .filter(|(logged, presented)| logged != presented)
        .map(|(logged, _)| logged.id)
        .collect();
    if !mismatched.is_empty() {
        return Some(PaymentRefusal {
            reason: RejectReason::BadTag,
            bad_coins: mismatched,
        });
    }
    let expired: Vec<CoinId> = view
        .logged
        .iter()
        .filter(|c| {
            c.is_expired_at(view.now)
                && (!view.refresh || grace_ends(c.epoch).is_none_or(|end| view.now >= end))
        })
        .map(|c| c.id)
        .collect();
    (!expired.is_empty()).then_some(PaymentRefusal {
        reason: RejectReason::Expired,
        bad_coins: expired,
    })
}

/// The events of an accepted validation: the inputs spent for
/// `spend_cause`, and the payout of `amount`. Returns the coins issued.
pub(crate) fn payment_events(
    inputs: &[CoinBody],
    spend_cause: SpendCause,
    amount: Amount,
    payout: PayoutDecided,
) -> (Vec<Event>, Vec<CoinBody>) {
    let spent = Event::CoinsSpent {
        coins: inputs.to_vec(),
        cause: spend_cause,
    };
    match payout {
        PayoutDecided::Coins {
            fresh,
            cause,
            holder,
        } => (
            vec![
                spent,
                Event::CoinsIssued {
                    coins: fresh.clone(),
                    holder,
                    cause,
                },
            ],
            fresh,
        ),
        PayoutDecided::Redeem(bank_account) => (
            vec![
                spent,
                Event::Redeemed {
                    amount,
                    bank_account,
                },
            ],
            Vec::new(),
        ),
        PayoutDecided::Aggregate(balance) => (
            vec![spent, Event::Aggregated { balance, amount }],
            Vec::new(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use ledger::Flows;

    use super::*;

    const NOW: Timestamp = Timestamp(1_000);

    fn coin(expiry: u64) -> CoinBody {
        CoinBody {
            id: CoinId::random(),
            value: Amount::from_minor(100),
            expiry: Timestamp(expiry),
            epoch: KeyEpoch(1),
        }
    }

    fn view<'a>(
        logged: &'a [CoinBody],
        presented: &'a [CoinBody],
        refresh: bool,
    ) -> InputsView<'a> {
        InputsView {
            logged,
            presented,
            now: NOW,
            refresh,
        }
    }

    // Given a presented body other than the logged one, when deciding,
    // then the refusal is a bad tag naming that coin, before any expiry.
    #[test]
    fn a_presented_body_other_than_the_logged_one_is_a_bad_tag() {
        let logged = [coin(2_000), coin(500)];
        let mut presented = logged;
        presented[0].value = Amount::from_minor(1_000);
        assert_eq!(
            refuse_inputs(view(&logged, &presented, false), |_| None),
            Some(PaymentRefusal {
                reason: RejectReason::BadTag,
                bad_coins: vec![logged[0].id],
            })
        );
    }

    // Given an expired input, a payment is refused naming it; a refresh is
    // accepted until its epoch's grace ends, and refused from then on.
    #[test]
    fn expired_coins_are_refused_except_by_a_refresh_within_grace() {
        let logged = [coin(2_000), coin(900)];
        let expired = PaymentRefusal {
            reason: RejectReason::Expired,
            bad_coins: vec![logged[1].id],
        };
        assert_eq!(
            refuse_inputs(view(&logged, &logged, false), |_| Some(Timestamp(5_000))),
            Some(expired.clone())
        );
        assert_eq!(
            refuse_inputs(view(&logged, &logged, true), |_| Some(Timestamp(5_000))),
            None
        );
        assert_eq!(
            refuse_inputs(view(&logged, &logged, true), |_| Some(NOW)),
            Some(expired.clone())
        );
        assert_eq!(
            refuse_inputs(view(&logged, &logged, true), |_| None),
            Some(expired)
        );
    }

    // Every accepted payout balances: what the inputs hold leaves as new
    // coins, a bank credit or an aggregated balance.
    #[test]
    fn every_payout_balances() {
        let inputs = [coin(2_000), coin(2_000)];
        let amount = Amount::from_minor(200);
        let fresh = vec![coin(9_000), coin(9_000)];
        let payouts = [
            PayoutDecided::Coins {
                fresh: fresh.clone(),
                cause: IssueCause::Refresh,
                holder: None,
            },
            PayoutDecided::Aggregate(BalanceId::random()),
        ];
        for payout in payouts {
            let (events, issued) = payment_events(&inputs, SpendCause::Refresh, amount, payout);
            Flows::of(&events)
                .check_balanced()
                .expect("an accepted payment balances");
            assert!(issued.is_empty() || issued == fresh);
        }
    }
}

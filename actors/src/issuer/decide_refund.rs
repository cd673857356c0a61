//! The pure decisions of a refund: which of the holder's recorded coins
//! are refundable (or the refusal "nothing to refund"), and, once they are
//! reserved and their replacements minted, the batch that revokes them
//! and issues the replacements to the holder. What they read (the coins
//! recorded against the holder, their bodies in the shards, the standing
//! of their epochs) is read before; the replacements and the sealed
//! identity are made before. No clock, lock or I/O here.
//!
//! Refusals ([`RefundRefusal`]) are answers signed to the holder
//! (`reject_refund`), never technical failures: those stay `IssuerError`.

use std::collections::BTreeMap;

use ledger::{
    Amount, CoinBody, CoinId, CoinSpec, Denomination, Event, IssueCause, MoneyError, SealedIdentity,
};
use protocol::wire::RejectReason;

/// A domain refusal of a refund, signed to the holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RefundRefusal {
    pub(crate) reason: RejectReason,
}

/// One coin recorded against the holder, as read before the decision.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeldCoin {
    pub(crate) id: CoinId,
    /// Its body, if the shards hold it unspent.
    pub(crate) unspent: Option<CoinBody>,
    /// Whether it is still worth something to its holder: not past its
    /// epoch's refresh grace, its epoch neither revoked nor erased.
    pub(crate) live: bool,
}

/// The coins to revoke, at most `max` (one batch and one answer carry
/// that many; a holder with more asks again), in the order recorded: the
/// unspent, live ones. A coin past its epoch's grace is worth nothing to
/// its holder any more (a refresh refuses it), so a refund must not turn
/// it into fresh coins either. None: "nothing to refund".
pub(crate) fn refundable(
    held: impl IntoIterator<Item = HeldCoin>,
    max: usize,
) -> Result<Vec<CoinId>, RefundRefusal> {
    let coins: Vec<CoinId> = held
        .into_iter()
        .filter(|c| c.unspent.is_some() && c.live)
        .map(|c| c.id)
        .take(max)
        .collect();
    if coins.is_empty() {
        return Err(RefundRefusal {
            reason: RejectReason::NothingToRefund,
        });
    }
    Ok(coins)
}

/// The spec of the replacements of `revoked`: one coin of each value.
pub(crate) fn replacement_spec(revoked: &[CoinBody]) -> Result<CoinSpec, MoneyError> {
    let mut counts: BTreeMap<Amount, u32> = BTreeMap::new();
    for c in revoked {
        *counts.entry(c.value).or_insert(0) += 1;
    }
    CoinSpec::new(
        counts
            .into_iter()
            .map(|(value, count)| Denomination { count, value })
            .collect(),
    )
}

/// The refund's batch: `revoked` (reserved for it) revoked, the
/// `replacements` (minted from [`replacement_spec`]) issued to `holder`.
pub(crate) fn refund_events(
    revoked: &[CoinBody],
    replacements: &[CoinBody],
    holder: SealedIdentity,
) -> Vec<Event> {
    vec![
        Event::CoinsRevoked {
            coins: revoked.to_vec(),
        },
        Event::CoinsIssued {
            coins: replacements.to_vec(),
            holder: Some(holder),
            cause: IssueCause::Refund,
        },
    ]
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use ledger::{Flows, KeyEpoch, Timestamp};

    use super::*;

    fn body(minor: u64) -> CoinBody {
        CoinBody {
            id: CoinId::random(),
            value: Amount::from_minor(minor),
            expiry: Timestamp(10_000),
            epoch: KeyEpoch(1),
        }
    }

    fn held(body: CoinBody, unspent: bool, live: bool) -> HeldCoin {
        HeldCoin {
            id: body.id,
            unspent: unspent.then_some(body),
            live,
        }
    }

    // Given coins recorded against the holder, when deciding, then only
    // the unspent live ones are refunded, at most `max`, in record order;
    // with none, the refusal is "nothing to refund".
    #[test]
    fn only_unspent_live_coins_are_refunded_and_none_is_a_refusal() {
        let (a, b, c, d) = (body(100), body(200), body(300), body(400));
        let coins = [
            held(a, false, true),
            held(b, true, false),
            held(c, true, true),
            held(d, true, true),
        ];
        assert_eq!(refundable(coins, 10), Ok(vec![c.id, d.id]));
        assert_eq!(refundable(coins, 1), Ok(vec![c.id]));
        assert_eq!(
            refundable([held(a, false, true), held(b, true, false)], 10),
            Err(RefundRefusal {
                reason: RejectReason::NothingToRefund
            })
        );
    }

    // The replacements are worth exactly what is revoked, and the batch
    // balances.
    #[test]
    fn the_replacements_are_worth_what_is_revoked_and_the_batch_balances() {
        let revoked = [body(100), body(100), body(500)];
        let spec = replacement_spec(&revoked).expect("spec");
        assert_eq!(spec.total().expect("total"), Amount::from_minor(700));
        let replacements: Vec<CoinBody> = spec.values().map(|v| body(v.minor_units())).collect();
        let events = refund_events(
            &revoked,
            &replacements,
            SealedIdentity::from_sealed_bytes(vec![1; 32]).expect("sealed"),
        );
        Flows::of(&events)
            .check_balanced()
            .expect("a refund balances");
    }
}

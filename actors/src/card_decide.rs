//! The pure decisions of the card agency's money steps: whether soft coins
//! may guarantee a load, the batch of a committed load (once its
//! guaranteed coins are reserved again), of a
//! committed unload (once its coins are minted), and of a clearing
//! settlement (the net of the records the agency finished). Everything
//! they read (the guarantee, the finished records, the reserved bodies) is
//! read before; minting is done before; the agency's store and the commit
//! path are I/O around them. No clock, lock or I/O here.
//!
//! Their refusal ([`CardConflict`]) is the agency's domain answer to a
//! record or settlement that does not match what it holds, reported to
//! the card system as `AgencyError::Conflict`; technical failures stay
//! the store's and the issuer's errors.

use card_bridge::records::{CardTxRecord, LoadRequest, Settlement};
use card_bridge::wire::{Direction, Outcome};
use ledger::{Amount, BankAccount, CoinBody, Event, IssueCause, SpendCause, Timestamp};

/// Why soft coins may not guarantee a card load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GuaranteeRefusal {
    /// Not a load, or not the load of this transfer's holder.
    NotThisTransfersLoad,
    /// The coins are not worth the load's amount.
    AmountMismatch,
    /// Expired coins are refreshed, not loaded.
    Expired,
}

/// Whether `coins` (worth `value`, as the issuer's record says) may
/// guarantee `load` for the transfer whose holder account is `holder`, at
/// `now`.
pub(crate) fn decide_load_guarantee(
    load: &LoadRequest,
    holder: &BankAccount,
    coins: &[CoinBody],
    value: Amount,
    now: Timestamp,
) -> Result<(), GuaranteeRefusal> {
    if load.direction() != Direction::Load || load.holder != *holder {
        return Err(GuaranteeRefusal::NotThisTransfersLoad);
    }
    if value != load.amount() {
        return Err(GuaranteeRefusal::AmountMismatch);
    }
    if coins.iter().any(|c| c.is_expired_at(now)) {
        return Err(GuaranteeRefusal::Expired);
    }
    Ok(())
}

/// A card record or settlement that does not match what the agency holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CardConflict {
    /// Another direction or outcome than the step, or other coins than the
    /// guarantee holds.
    Record,
    /// A settlement whose loads or unloads are not the net of the records.
    Settlement,
    /// The sums overflow.
    Overflow,
}

/// A committed load's batch: the guaranteed coins (`guaranteed`, as given
/// at `guaranteed_at`) spent into the card. `reserved` are the bodies the
/// shards hold for the load's transaction: they must be the guaranteed ones.
pub(crate) fn load_events(
    rec: &CardTxRecord,
    guaranteed: &[CoinBody],
    guaranteed_at: Timestamp,
    reserved: &[CoinBody],
) -> Result<Vec<Event>, CardConflict> {
    if rec.direction != Direction::Load || rec.outcome != Outcome::Committed {
        return Err(CardConflict::Record);
    }
    if reserved != guaranteed {
        return Err(CardConflict::Record);
    }
    let loaded = rec.to_event(guaranteed_at).ok_or(CardConflict::Record)?;
    Ok(vec![
        Event::CoinsSpent {
            coins: reserved.to_vec(),
            cause: SpendCause::CardLoad,
        },
        loaded,
    ])
}

/// A committed unload's batch: the card's value out, `fresh` coins (minted
/// for the unload's amount) in.
pub(crate) fn unload_events(
    rec: &CardTxRecord,
    guaranteed_at: Timestamp,
    fresh: &[CoinBody],
) -> Result<Vec<Event>, CardConflict> {
    if rec.direction != Direction::Unload || rec.outcome != Outcome::Committed {
        return Err(CardConflict::Record);
    }
    let unloaded = rec.to_event(guaranteed_at).ok_or(CardConflict::Record)?;
    Ok(vec![
        unloaded,
        Event::CoinsIssued {
            coins: fresh.to_vec(),
            holder: None,
            cause: IssueCause::CardUnload,
        },
    ])
}

/// A clearing settlement's event, if it is the net of the committed
/// records the agency finished in its period (`finished`).
pub(crate) fn settlement_event<'a>(
    settlement: &Settlement,
    finished: impl IntoIterator<Item = &'a CardTxRecord>,
) -> Result<Event, CardConflict> {
    let mut loads = Amount::ZERO;
    let mut unloads = Amount::ZERO;
    for r in finished {
        if r.outcome != Outcome::Committed {
            continue;
        }
        let sum = match r.direction {
            Direction::Load => &mut loads,
            Direction::Unload => &mut unloads,
        };
        *sum = sum
            .checked_add(r.amount)
            .map_err(|_| CardConflict::Overflow)?;
    }
    if (loads, unloads) != (settlement.loads, settlement.unloads) {
        return Err(CardConflict::Settlement);
    }
    Ok(settlement.to_event())
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use card_bridge::crypto::Mac;
    use card_bridge::records::LoadId;
    use card_bridge::wire::L1;
    use ledger::{CardId, CoinId, Flows, KeyEpoch, LusId};

    use super::*;

    fn record(direction: Direction, outcome: Outcome, minor: u64) -> CardTxRecord {
        CardTxRecord {
            lus: LusId(1),
            load_id: LoadId::random(),
            card: CardId::from_bytes([1; 8]),
            nt: 3,
            direction,
            amount: Amount::from_minor(minor),
            outcome,
            period: 7,
        }
    }

    fn body(minor: u64) -> CoinBody {
        CoinBody {
            id: CoinId::random(),
            value: Amount::from_minor(minor),
            expiry: Timestamp(10_000),
            epoch: KeyEpoch(1),
        }
    }

    // A committed load spends exactly the guaranteed coins into the card,
    // balanced; another direction, outcome or other coins is a conflict.
    #[test]
    fn a_load_spends_exactly_the_guaranteed_coins() {
        let coins = [body(200), body(300)];
        let load = record(Direction::Load, Outcome::Committed, 500);
        let events = load_events(&load, &coins, Timestamp(5), &coins).expect("load");
        Flows::of(&events)
            .check_balanced()
            .expect("a load balances");
        let other = [body(200), body(300)];
        assert_eq!(
            load_events(&load, &coins, Timestamp(5), &other),
            Err(CardConflict::Record)
        );
        for wrong in [
            record(Direction::Unload, Outcome::Committed, 500),
            record(Direction::Load, Outcome::Rejected, 500),
        ] {
            assert_eq!(
                load_events(&wrong, &coins, Timestamp(5), &coins),
                Err(CardConflict::Record)
            );
        }
    }

    // A committed unload issues coins worth the amount, balanced; a load
    // record or a rejected one is a conflict.
    #[test]
    fn an_unload_issues_its_amount_in_fresh_coins() {
        let unload = record(Direction::Unload, Outcome::Committed, 700);
        let fresh = [body(500), body(200)];
        let events = unload_events(&unload, Timestamp(5), &fresh).expect("unload");
        Flows::of(&events)
            .check_balanced()
            .expect("an unload balances");
        assert_eq!(
            unload_events(
                &record(Direction::Load, Outcome::Committed, 700),
                Timestamp(5),
                &fresh
            ),
            Err(CardConflict::Record)
        );
        assert_eq!(
            unload_events(
                &record(Direction::Unload, Outcome::Rejected, 700),
                Timestamp(5),
                &fresh
            ),
            Err(CardConflict::Record)
        );
    }

    // A settlement is logged only as the net of the committed records of
    // its period (rejected ones move nothing).
    #[test]
    fn a_settlement_must_be_the_net_of_the_committed_records() {
        let records = [
            record(Direction::Load, Outcome::Committed, 500),
            record(Direction::Load, Outcome::Rejected, 900),
            record(Direction::Unload, Outcome::Committed, 200),
        ];
        let settlement = |loads, unloads| Settlement {
            lus: LusId(1),
            period: 7,
            loads: Amount::from_minor(loads),
            unloads: Amount::from_minor(unloads),
            paid_to_lus: Amount::from_minor(300),
            received_from_lus: Amount::ZERO,
        };
        assert_eq!(
            settlement_event(&settlement(500, 200), &records),
            Ok(settlement(500, 200).to_event())
        );
        assert_eq!(
            settlement_event(&settlement(1_400, 200), &records),
            Err(CardConflict::Settlement)
        );
    }

    fn load_request(direction: Direction, minor: u64, holder: &BankAccount) -> LoadRequest {
        LoadRequest {
            load_id: LoadId::random(),
            lus: LusId(1),
            holder: holder.clone(),
            l1: L1 {
                direction,
                card: CardId::from_bytes([1; 8]),
                nt: 3,
                amount: Amount::from_minor(minor),
                balance: Amount::ZERO,
                balance_max: Amount::from_minor(100_000),
                last_nt: 2,
                last_outcome: None,
                r_sm: [0; card_bridge::constants::NONCE_BYTES],
                commitment: [0; 32],
                s1: Mac::from_slice(&[]).expect("empty tag"),
            },
        }
    }

    // Soft coins guarantee a load only for a load of the transfer's holder,
    // worth exactly its amount, none of them expired.
    #[test]
    fn coins_guarantee_only_their_transfers_load_at_its_amount_unexpired() {
        let holder = BankAccount::new("xfer-0001".to_owned()).expect("account");
        let coins = [body(200), body(300)];
        let value = Amount::from_minor(500);
        let now = Timestamp(5);
        let load = load_request(Direction::Load, 500, &holder);
        assert_eq!(
            decide_load_guarantee(&load, &holder, &coins, value, now),
            Ok(())
        );
        let stranger = BankAccount::new("xfer-0002".to_owned()).expect("account");
        assert_eq!(
            decide_load_guarantee(&load, &stranger, &coins, value, now),
            Err(GuaranteeRefusal::NotThisTransfersLoad)
        );
        assert_eq!(
            decide_load_guarantee(
                &load_request(Direction::Unload, 500, &holder),
                &holder,
                &coins,
                value,
                now
            ),
            Err(GuaranteeRefusal::NotThisTransfersLoad)
        );
        assert_eq!(
            decide_load_guarantee(&load, &holder, &coins, Amount::from_minor(400), now),
            Err(GuaranteeRefusal::AmountMismatch)
        );
        assert_eq!(
            decide_load_guarantee(&load, &holder, &coins, value, Timestamp(10_000)),
            Err(GuaranteeRefusal::Expired)
        );
    }
}

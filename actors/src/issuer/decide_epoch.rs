//! The pure decisions of the key epochs' life: when the next epoch is due
//! and the batch that opens it, whether an epoch may be revoked or erased
//! (or already was), and the batches that do it (an erasure forfeits the
//! epoch's unspent coins in its own batch). What they read (the
//! epochs and their ends as the log says, the clock, what the shards hold
//! of the epoch, the coin-status projection's erasure plan) is read before;
//! the mint key is persisted before the opening is logged and destroyed
//! after the erasure is. No clock, lock or I/O here.
//!
//! The operator's refusals ([`EpochRefusal`]) are their own type; the
//! issuer reports them as the matching `IssuerError`.

use ledger::{Amount, Event, KeyEpoch, MoneyError, Timestamp, TxId};
use projections::ErasurePlan;

use crate::issuer::core::{EpochEnd, EpochInfo, IssuerError};
use crate::issuer::epoch_end::{EpochErasure, EpochRevocation};
use crate::shard::EpochHoldings;

/// The epochs' schedule (from the issuer's configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EpochSchedule {
    /// Coins of an epoch expire this long after it opens.
    pub(crate) coin_lifetime_secs: u64,
    /// Expired coins may be refreshed for this long after they expire.
    pub(crate) grace_secs: u64,
    /// A new epoch opens this long after the current one.
    pub(crate) epoch_period_secs: u64,
}

/// Why the operator's epoch step is refused; nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EpochRefusal {
    /// The log never opened it.
    Unknown(KeyEpoch),
    /// It is erased: nothing of it is accepted any more.
    Erased(KeyEpoch),
    /// Its grace period is not over: coins of it may still be refreshed.
    GraceNotOver {
        epoch: KeyEpoch,
        grace_ends_at: Timestamp,
        now: Timestamp,
    },
}

impl From<EpochRefusal> for IssuerError {
    fn from(refusal: EpochRefusal) -> IssuerError {
        match refusal {
            EpochRefusal::Unknown(epoch) => IssuerError::UnknownEpoch(epoch),
            EpochRefusal::Erased(epoch) => IssuerError::EpochErased(epoch),
            EpochRefusal::GraceNotOver {
                epoch,
                grace_ends_at,
                now,
            } => IssuerError::GraceNotOver {
                epoch,
                grace_ends_at,
                now,
            },
        }
    }
}

/// The epoch to open now on schedule: the first if none is open, the next
/// once the current one is `epoch_period_secs` old; else none.
pub(crate) fn epoch_due(
    current: Option<(KeyEpoch, EpochInfo)>,
    now: Timestamp,
    schedule: EpochSchedule,
) -> Option<KeyEpoch> {
    match current {
        None => Some(KeyEpoch(1)),
        Some((epoch, info)) => {
            let opened_at = info
                .coins_expire_at
                .0
                .saturating_sub(schedule.coin_lifetime_secs);
            (now.0 >= opened_at.saturating_add(schedule.epoch_period_secs))
                .then_some(KeyEpoch(epoch.0 + 1))
        }
    }
}

/// The epoch after `current` (an opening on demand, off schedule).
pub(crate) fn next_epoch(current: Option<KeyEpoch>) -> KeyEpoch {
    current.map_or(KeyEpoch(1), |epoch| KeyEpoch(epoch.0 + 1))
}

/// The batch that opens `next` at `now` and closes the one before. Its
/// transaction is the same whichever path opens the epoch (schedule or on
/// demand): an epoch is opened once.
pub(crate) fn epoch_opening(
    next: KeyEpoch,
    now: Timestamp,
    schedule: EpochSchedule,
) -> (TxId, Vec<Event>) {
    let lifetime = schedule.coin_lifetime_secs;
    let mut events = vec![Event::EpochOpened {
        epoch: next,
        coins_expire_at: now.plus_secs(lifetime),
        grace_ends_at: now.plus_secs(lifetime.saturating_add(schedule.grace_secs)),
    }];
    if next.0 > 1 {
        events.push(Event::EpochClosed {
            epoch: KeyEpoch(next.0 - 1),
        });
    }
    (
        TxId::derive("vc/tx/epoch", &[&next.0.to_le_bytes()]),
        events,
    )
}

/// What a revocation of an epoch does, given how it ended so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RevocationStep {
    /// Revoked already: the same answer again, nothing logged.
    Done(EpochRevocation),
    /// To revoke.
    Revoke,
}

/// Whether `epoch` (opened: `known`) may be revoked.
pub(crate) fn decide_revocation(
    epoch: KeyEpoch,
    known: bool,
    end: Option<&EpochEnd>,
) -> Result<RevocationStep, EpochRefusal> {
    match end {
        Some(EpochEnd::Revoked { owed, still_owed }) => Ok(RevocationStep::Done(EpochRevocation {
            epoch,
            owed: *owed,
            still_owed: *still_owed,
        })),
        Some(EpochEnd::Erased { .. }) => Err(EpochRefusal::Erased(epoch)),
        None if !known => Err(EpochRefusal::Unknown(epoch)),
        None => Ok(RevocationStep::Revoke),
    }
}

/// The batch that revokes `epoch`, owing what its unspent coins hold
/// (`value_unspent_minor`, as the shards hold it once the epoch drained).
pub(crate) fn revocation_events(
    epoch: KeyEpoch,
    value_unspent_minor: u128,
) -> Result<(TxId, Vec<Event>, Amount), MoneyError> {
    let owed =
        Amount::from_minor(u64::try_from(value_unspent_minor).map_err(|_| MoneyError::Overflow)?);
    Ok((
        TxId::derive("vc/tx/epoch-revoke", &[&epoch.0.to_le_bytes()]),
        vec![Event::EpochRevoked { epoch, owed }],
        owed,
    ))
}

/// What an erasure of an epoch does, given how it ended so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErasureStep {
    /// Erased already: the same answer again, nothing logged.
    Done(EpochErasure),
    /// To erase (its grace is over).
    Erase,
}

/// Whether `epoch` (`info`: as the log opened it) may be erased at `now`:
/// only once its grace period is over.
pub(crate) fn decide_erasure(
    epoch: KeyEpoch,
    info: Option<EpochInfo>,
    end: Option<&EpochEnd>,
    now: Timestamp,
) -> Result<ErasureStep, EpochRefusal> {
    if let Some(EpochEnd::Erased {
        through,
        n_coins,
        value,
        forfeited_n_coins,
        forfeited,
    }) = end
    {
        return Ok(ErasureStep::Done(EpochErasure {
            epoch,
            through: *through,
            n_coins: *n_coins,
            value: *value,
            forfeited_n_coins: *forfeited_n_coins,
            forfeited: *forfeited,
        }));
    }
    let info = info.ok_or(EpochRefusal::Unknown(epoch))?;
    if now < info.grace_ends_at {
        return Err(EpochRefusal::GraceNotOver {
            epoch,
            grace_ends_at: info.grace_ends_at,
            now,
        });
    }
    Ok(ErasureStep::Erase)
}

/// The batch that erases `epoch` as `plan` (the coin-status projection's,
/// made once the epoch drained) says, and what it reports: `EpochErased`
/// for its spent coins, then `FloatForfeited` for its unspent ones (always,
/// even of no coins, so every erasure says what it forfeited).
///
/// The forfeiture must be what the shards hold unspent of the epoch
/// (`held`, read after the drain), and for a revoked epoch (`end`) what
/// its recoups still owed: the projection, the shards and the log state
/// agree, or nothing is logged.
pub(crate) fn erasure_events(
    epoch: KeyEpoch,
    plan: &ErasurePlan,
    held: EpochHoldings,
    end: Option<&EpochEnd>,
) -> Result<(TxId, Vec<Event>, EpochErasure), IssuerError> {
    let forfeit = &plan.forfeiture;
    let planned_minor = u128::from(forfeit.value.minor_units());
    let owed_minor = match end {
        Some(EpochEnd::Revoked { still_owed, .. }) => Some(u128::from(still_owed.minor_units())),
        _ => None,
    };
    if forfeit.epoch != epoch
        || forfeit.n_coins() != held.n_unspent
        || planned_minor != held.value_unspent_minor
        || owed_minor.is_some_and(|owed| owed != planned_minor)
    {
        return Err(IssuerError::FloatOutOfStep {
            epoch,
            planned_minor,
            held_minor: held.value_unspent_minor,
            owed_minor,
        });
    }
    Ok((
        TxId::derive("vc/tx/epoch-erase", &[&epoch.0.to_le_bytes()]),
        vec![
            Event::EpochErased {
                epoch,
                through: plan.as_of,
                n_coins: plan.n_coins(),
                value: plan.value,
                digest: plan.digest,
            },
            forfeit.event(),
        ],
        EpochErasure {
            epoch,
            through: plan.as_of,
            n_coins: plan.n_coins(),
            value: plan.value,
            forfeited_n_coins: forfeit.n_coins(),
            forfeited: forfeit.value,
        },
    ))
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use ledger::{CoinId, Flows, Seq};

    use super::*;

    const SCHEDULE: EpochSchedule = EpochSchedule {
        coin_lifetime_secs: 1_000,
        grace_secs: 500,
        epoch_period_secs: 400,
    };

    fn opened_at(at: u64) -> EpochInfo {
        EpochInfo {
            coins_expire_at: Timestamp(at + SCHEDULE.coin_lifetime_secs),
            grace_ends_at: Timestamp(at + SCHEDULE.coin_lifetime_secs + SCHEDULE.grace_secs),
        }
    }

    // Given no epoch, the first is due; given one opened at 100, the next
    // is due from 500 on, not before.
    #[test]
    fn the_next_epoch_is_due_one_period_after_the_current_one_opened() {
        assert_eq!(epoch_due(None, Timestamp(0), SCHEDULE), Some(KeyEpoch(1)));
        let current = Some((KeyEpoch(3), opened_at(100)));
        assert_eq!(epoch_due(current, Timestamp(499), SCHEDULE), None);
        assert_eq!(
            epoch_due(current, Timestamp(500), SCHEDULE),
            Some(KeyEpoch(4))
        );
        assert_eq!(next_epoch(None), KeyEpoch(1));
        assert_eq!(next_epoch(Some(KeyEpoch(3))), KeyEpoch(4));
    }

    // Opening epoch n closes n-1 in the same batch (the first closes
    // nothing), with its expiry and grace from the schedule, as one
    // transaction per epoch whichever path opens it.
    #[test]
    fn an_opening_closes_the_epoch_before_in_one_transaction_per_epoch() {
        let (tx1, first) = epoch_opening(KeyEpoch(1), Timestamp(100), SCHEDULE);
        assert_eq!(first.len(), 1);
        let (tx2, second) = epoch_opening(KeyEpoch(2), Timestamp(500), SCHEDULE);
        assert_ne!(tx1, tx2);
        assert_eq!(
            second,
            vec![
                Event::EpochOpened {
                    epoch: KeyEpoch(2),
                    coins_expire_at: Timestamp(1_500),
                    grace_ends_at: Timestamp(2_000),
                },
                Event::EpochClosed { epoch: KeyEpoch(1) },
            ]
        );
        assert_eq!(
            epoch_opening(KeyEpoch(2), Timestamp(900), SCHEDULE).0,
            tx2,
            "the same epoch, the same transaction"
        );
    }

    // A revocation: unknown and erased epochs are refused; a revoked one
    // answers as before; the batch owes what the unspent coins hold and
    // balances.
    #[test]
    fn a_revocation_is_refused_repeated_or_owes_the_unspent_value() {
        let epoch = KeyEpoch(2);
        let owed = Amount::from_minor(300);
        assert_eq!(
            decide_revocation(epoch, false, None),
            Err(EpochRefusal::Unknown(epoch))
        );
        let erased = EpochEnd::Erased {
            through: Seq(9),
            n_coins: 1,
            value: owed,
            forfeited_n_coins: 0,
            forfeited: Amount::ZERO,
        };
        assert_eq!(
            decide_revocation(epoch, true, Some(&erased)),
            Err(EpochRefusal::Erased(epoch))
        );
        let revoked = EpochEnd::Revoked {
            owed,
            still_owed: Amount::from_minor(100),
        };
        assert!(matches!(
            decide_revocation(epoch, true, Some(&revoked)),
            Ok(RevocationStep::Done(r)) if r.still_owed == Amount::from_minor(100)
        ));
        assert_eq!(
            decide_revocation(epoch, true, None),
            Ok(RevocationStep::Revoke)
        );
        let (_, events, owes) = revocation_events(epoch, 300).expect("fits");
        assert_eq!(owes, owed);
        Flows::of(&events)
            .check_balanced()
            .expect("a revocation balances");
        assert!(revocation_events(epoch, u128::MAX).is_err());
    }

    // An erasure waits for the epoch's grace to end; an erased epoch
    // answers as before.
    #[test]
    fn an_erasure_waits_for_the_grace_and_is_answered_once_done() {
        let epoch = KeyEpoch(1);
        let info = opened_at(0);
        assert_eq!(
            decide_erasure(epoch, None, None, Timestamp(9_999)),
            Err(EpochRefusal::Unknown(epoch))
        );
        assert_eq!(
            decide_erasure(epoch, Some(info), None, Timestamp(1_499)),
            Err(EpochRefusal::GraceNotOver {
                epoch,
                grace_ends_at: Timestamp(1_500),
                now: Timestamp(1_499),
            })
        );
        assert_eq!(
            decide_erasure(epoch, Some(info), None, Timestamp(1_500)),
            Ok(ErasureStep::Erase)
        );
        let erased = EpochEnd::Erased {
            through: Seq(7),
            n_coins: 3,
            value: Amount::from_minor(30),
            forfeited_n_coins: 2,
            forfeited: Amount::from_minor(50),
        };
        assert!(matches!(
            decide_erasure(epoch, Some(info), Some(&erased), Timestamp(0)),
            Ok(ErasureStep::Done(e)) if e.n_coins == 3 && e.through == Seq(7)
                && e.forfeited == Amount::from_minor(50)
        ));
    }

    /// The plan of an epoch with one spent coin (1.00) and two unspent
    /// ones (1.00 and 2.00).
    fn plan_of(epoch: KeyEpoch) -> ErasurePlan {
        let spent = [CoinId::from_bytes([1; 16])];
        let unspent = [CoinId::from_bytes([2; 16]), CoinId::from_bytes([3; 16])];
        ErasurePlan {
            epoch,
            as_of: Seq(40),
            coin_ids: spent.to_vec(),
            value: Amount::from_minor(100),
            digest: ledger::erasure_digest(&spent),
            forfeiture: projections::ForfeiturePlan {
                epoch,
                coin_ids: unspent.to_vec(),
                value: Amount::from_minor(300),
                digest: ledger::erasure_digest(&unspent),
            },
        }
    }

    fn holding(n_unspent: u64, value_unspent_minor: u128) -> EpochHoldings {
        EpochHoldings {
            n_unspent,
            value_unspent_minor,
            n_reserved: 0,
        }
    }

    // Given an epoch whose unspent coins the shards hold as the plan says,
    // the erasure logs EpochErased then FloatForfeited in one balanced
    // batch that moves 3.00 from outstanding to the forfeited float, and
    // reports both figures.
    #[test]
    fn an_erasure_forfeits_the_unspent_coins_in_its_own_batch() {
        let epoch = KeyEpoch(2);
        let plan = plan_of(epoch);
        let (tx, events, erasure) =
            erasure_events(epoch, &plan, holding(2, 300), None).expect("in step");
        assert_eq!(
            tx,
            TxId::derive("vc/tx/epoch-erase", &[&epoch.0.to_le_bytes()])
        );
        assert!(matches!(events[0], Event::EpochErased { n_coins: 1, .. }));
        assert_eq!(events[1], plan.forfeiture.event());
        let flows = Flows::of(&events);
        flows.check_balanced().expect("an erasure balances");
        assert_eq!(flows.outstanding_delta(), -300);
        assert_eq!(flows.forfeited_delta(), 300);
        assert_eq!(
            (erasure.forfeited_n_coins, erasure.forfeited),
            (2, Amount::from_minor(300))
        );
    }

    // The shards holding other coins than the plan, or a revoked epoch
    // owing another amount than it would forfeit, log nothing.
    #[test]
    fn an_erasure_whose_float_is_out_of_step_logs_nothing() {
        let epoch = KeyEpoch(2);
        let plan = plan_of(epoch);
        for held in [holding(1, 300), holding(2, 299), holding(3, 400)] {
            assert!(matches!(
                erasure_events(epoch, &plan, held, None),
                Err(IssuerError::FloatOutOfStep { .. })
            ));
        }
        let revoked = |still_owed| EpochEnd::Revoked {
            owed: Amount::from_minor(500),
            still_owed: Amount::from_minor(still_owed),
        };
        assert!(matches!(
            erasure_events(epoch, &plan, holding(2, 300), Some(&revoked(200))),
            Err(IssuerError::FloatOutOfStep {
                owed_minor: Some(200),
                ..
            })
        ));
        let (_, events, _) = erasure_events(epoch, &plan, holding(2, 300), Some(&revoked(300)))
            .expect("a revoked epoch forfeits what it still owed");
        assert_eq!(events.len(), 2);
    }
}

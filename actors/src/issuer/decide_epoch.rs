//! The pure decisions of the key epochs' life: when the next epoch is due
//! and the batch that opens it, whether an epoch may be revoked or erased
//! (or already was), and the batches that do it. What they read (the
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
    }) = end
    {
        return Ok(ErasureStep::Done(EpochErasure {
            epoch,
            through: *through,
            n_coins: *n_coins,
            value: *value,
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
/// made once the epoch drained) says, and what it reports.
pub(crate) fn erasure_events(
    epoch: KeyEpoch,
    plan: &ErasurePlan,
) -> (TxId, Vec<Event>, EpochErasure) {
    (
        TxId::derive("vc/tx/epoch-erase", &[&epoch.0.to_le_bytes()]),
        vec![Event::EpochErased {
            epoch,
            through: plan.as_of,
            n_coins: plan.n_coins(),
            value: plan.value,
            digest: plan.digest,
        }],
        EpochErasure {
            epoch,
            through: plan.as_of,
            n_coins: plan.n_coins(),
            value: plan.value,
        },
    )
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use ledger::{Flows, Seq};

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
        };
        assert!(matches!(
            decide_erasure(epoch, Some(info), Some(&erased), Timestamp(0)),
            Ok(ErasureStep::Done(e)) if e.n_coins == 3 && e.through == Seq(7)
        ));
    }
}

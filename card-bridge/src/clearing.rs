//! Clearing between a LUS and its agency, per period: both must hold the
//! same set of committed (card, NT) records; the net position is
//! Σ loads − Σ unloads; the agency pays the LUS that (or the LUS pays the
//! agency its negative); after settlement the two are even. Records still
//! pending or in doubt belong to no closed period: they finish, and are
//! cleared, in the period in which they are resolved (carried forward).
//!
//! The report also says which cards do not add up in the LUS's log (more
//! unloaded and spent than was ever loaded: an image copied or edited and
//! used again) and which card claims the LUS refused, for the operator and
//! the auditor to follow up.

use std::collections::BTreeSet;

use ledger::{Amount, CardId};

use crate::agency::{Agency, AgencyError};
use crate::lus::{CardStanding, LoadUnloadServer, LusError, RefusedClaim};
use crate::records::{CardTxRecord, Settlement};
use crate::wire::{Direction, Outcome};

/// Why a period could not be cleared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClearingError {
    #[error("load/unload server: {0}")]
    Lus(#[from] LusError),
    #[error("agency: {0}")]
    Agency(#[from] AgencyError),
    #[error("period {0} is still open")]
    PeriodOpen(u32),
    #[error(
        "LUS and agency disagree: {} records only at the LUS, {} only at the agency",
        only_at_lus.len(),
        only_at_agency.len()
    )]
    Mismatch {
        only_at_lus: Vec<(CardId, u32)>,
        only_at_agency: Vec<(CardId, u32)>,
    },
    #[error("amount overflow")]
    Overflow,
}

/// The outcome of clearing one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearingReport {
    pub settlement: Settlement,
    /// Records not final at clearing time, carried to a later period.
    pub carried_forward: Vec<(CardId, u32)>,
    /// Cards whose committed loads fall short of their committed unloads
    /// and collected purchases, with what the LUS's log says of each.
    pub cards_overspent: Vec<(CardId, CardStanding)>,
    /// Every card claim the LUS refused because the card's history
    /// contradicted it.
    pub refused_claims: Vec<RefusedClaim>,
}

type RecordKey = (CardId, u32, Direction, Amount);

fn committed(records: &[CardTxRecord]) -> BTreeSet<RecordKey> {
    records
        .iter()
        .filter(|r| r.outcome == Outcome::Committed)
        .map(|r| (r.card, r.nt, r.direction, r.amount))
        .collect()
}

/// What one side still owes after settling: Σ loads − Σ unloads − paid to
/// the LUS + received from it, in minor units. Zero means even.
pub fn position(records: &[CardTxRecord], settlement: Option<&Settlement>) -> i128 {
    let mut p: i128 = 0;
    for r in records.iter().filter(|r| r.outcome == Outcome::Committed) {
        let a = i128::from(r.amount.minor_units());
        p += match r.direction {
            Direction::Load => a,
            Direction::Unload => -a,
        };
    }
    if let Some(s) = settlement {
        p -= i128::from(s.paid_to_lus.minor_units());
        p += i128::from(s.received_from_lus.minor_units());
    }
    p
}

/// Settles every closed period left unsettled, then closes the LUS's
/// current period and settles it. A period is closed durably before it is
/// settled, so a crash between the two (or a settling that failed) leaves
/// a closed period nobody settles: the next clearing finds it first,
/// rather than close the next period and leave the LUS unpaid for it.
pub fn clear<A: Agency + ?Sized>(
    lus: &LoadUnloadServer,
    agency: &A,
) -> Result<ClearingReport, ClearingError> {
    for period in lus.unsettled_periods()? {
        tracing::warn!(lus = %lus.id(), period, "settling a period closed and left unsettled");
        settle_period(lus, agency, period)?;
    }
    let period = lus.close_period()?;
    settle_period(lus, agency, period)
}

/// Settles a closed `period`. Safe to run again after a crash: a period
/// already settled at the LUS is only re-announced to the agency.
pub fn settle_period<A: Agency + ?Sized>(
    lus: &LoadUnloadServer,
    agency: &A,
    period: u32,
) -> Result<ClearingReport, ClearingError> {
    if period >= lus.current_period()? {
        return Err(ClearingError::PeriodOpen(period));
    }
    let carried_forward = lus
        .records()?
        .iter()
        .filter(|r| !r.state.is_final())
        .map(|r| (r.card(), r.nt()))
        .collect();
    if let Some(settlement) = lus.settlement(period)? {
        agency.settle(&settlement)?;
        return Ok(ClearingReport {
            settlement,
            carried_forward,
            cards_overspent: lus.cards_overspent()?,
            refused_claims: lus.refused_claims()?,
        });
    }
    let at_lus = lus.finished_in(period)?;
    // The agency may have missed a confirmation: the LUS holds the card's
    // proofs, so its finished records are told to the agency first.
    for rec in &at_lus {
        agency.finished(rec)?;
    }
    let at_agency = agency.finished_records(lus.id(), period)?;
    let (lus_set, agency_set) = (committed(&at_lus), committed(&at_agency));
    if lus_set != agency_set {
        let key = |k: &RecordKey| (k.0, k.1);
        return Err(ClearingError::Mismatch {
            only_at_lus: lus_set.difference(&agency_set).map(key).collect(),
            only_at_agency: agency_set.difference(&lus_set).map(key).collect(),
        });
    }
    let sum = |d: Direction| {
        Amount::checked_sum(lus_set.iter().filter(|k| k.2 == d).map(|k| k.3))
            .map_err(|_| ClearingError::Overflow)
    };
    let (loads, unloads) = (sum(Direction::Load)?, sum(Direction::Unload)?);
    let (paid_to_lus, received_from_lus) = if loads >= unloads {
        (
            loads
                .checked_sub(unloads)
                .map_err(|_| ClearingError::Overflow)?,
            Amount::ZERO,
        )
    } else {
        (
            Amount::ZERO,
            unloads
                .checked_sub(loads)
                .map_err(|_| ClearingError::Overflow)?,
        )
    };
    let settlement = Settlement {
        lus: lus.id(),
        period,
        loads,
        unloads,
        paid_to_lus,
        received_from_lus,
    };
    // Agency first: a crash between the two leaves the LUS unsettled, and
    // the re-run finds the agency's identical settlement and goes on.
    agency.settle(&settlement)?;
    lus.record_settlement(&settlement)?;
    tracing::info!(lus = %lus.id(), period, "clearing period settled");
    Ok(ClearingReport {
        settlement,
        carried_forward,
        cards_overspent: lus.cards_overspent()?,
        refused_claims: lus.refused_claims()?,
    })
}

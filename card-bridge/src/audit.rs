//! The auditor's reading of a card system's records (the directory of
//! [`crate::system::CardSystem`]): with none of its keys, from three
//! records kept apart (the LUS's log, the collection server's, the
//! agency's) and the card images present, which cards' value does not add
//! up. Nothing is written.
//!
//! A card adds up when, in minor units and per card:
//!
//! - committed loads − committed unloads (the LUS) − purchases collected
//!   (the collection server's own records, not the copy the LUS was told)
//!   ≥ 0: the card has not paid out more than was loaded onto it;
//! - the collection server's running total of the card's purchases is
//!   what its collected batches add up to (the larger of the two counts);
//! - every load or unload the agency holds as finished is in the LUS's log
//!   with the same amount and outcome (the agency may lag the LUS, never
//!   lead it or disagree);
//! - its image, if present, holds no more than its history allows
//!   (the bound of [`CardStanding::balance_bound`]).
//!
//! Beside those, the report lists the claims the LUS refused and the
//! purchases the collection server refused: attempts that were stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ledger::{Amount, CardId};
use serde::Serialize;

use crate::agency::{AgencyError, DurableAgency};
use crate::card::{Eeprom, SmartCard};
use crate::collection::{
    CollectionError, RefusedPurchase, collected_by_card_in, refused_purchases_in, spent_by_card_in,
};
use crate::lus::{
    CardStanding, LusError, LusState, RefusedClaim, cards_in, records_in, refused_claims_in,
    standing_in,
};
use crate::store::Db;
use crate::wire::{Direction, Outcome};

/// Why the records could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error("{0} is not a card system's directory (no lus.redb)")]
    NotACardSystem(PathBuf),
    #[error(transparent)]
    Lus(#[from] LusError),
    #[error(transparent)]
    Collection(#[from] CollectionError),
    #[error(transparent)]
    Agency(#[from] AgencyError),
    #[error("listing {dir}: {error}")]
    Io { dir: PathBuf, error: String },
}

/// What does not add up for one card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum CardProblem {
    /// Unloads and collected purchases exceed the loads by `by`.
    Overspent { by: Amount },
    /// The agency holds a finished load or unload the LUS's log does not
    /// hold as finished with that amount and outcome.
    AgencyDisagrees {
        nt: u32,
        direction: Direction,
        amount: Amount,
    },
    /// The card's image holds more than its history allows.
    ImageAboveHistory { balance: Amount, bound_minor: i128 },
    /// The card's image is unreadable (corrupt, or another card's).
    ImageUnreadable { error: String },
    /// The collection server's running total of the card's purchases is
    /// not what the batches it collected add up to (a lost update, or an
    /// edited record).
    CollectedTotalDisagrees { running: Amount, in_batches: Amount },
}

/// One card as the records show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardAudit {
    pub card: CardId,
    /// The LUS's standing, with the collection server's own total of purchases.
    pub standing: CardStanding,
    /// The balance the card's image shows, if the image is in the directory.
    pub image_balance: Option<Amount>,
    pub problems: Vec<CardProblem>,
}

/// Every card of one card system, and the attempts its servers refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardRecordsReport {
    pub cards: Vec<CardAudit>,
    pub refused_claims: Vec<RefusedClaim>,
    pub refused_purchases: Vec<RefusedPurchase>,
}

impl CardRecordsReport {
    /// The cards whose value does not add up.
    pub fn cards_not_adding_up(&self) -> impl Iterator<Item = &CardAudit> {
        self.cards.iter().filter(|c| !c.problems.is_empty())
    }
}

fn image_of(dir: &Path, card: &CardId) -> Option<Result<Amount, String>> {
    let path = dir.join(format!("card-{card}.img"));
    if !path.exists() {
        return None;
    }
    let read = || -> Result<Amount, String> {
        let eeprom = Eeprom::load(&path, SmartCard::IMAGE_BYTES).map_err(|e| e.to_string())?;
        let sc = SmartCard::from_eeprom(eeprom).map_err(|e| e.to_string())?;
        let info = sc.info().map_err(|e| e.to_string())?;
        if info.card != *card {
            return Err(format!("the image is card {}'s", info.card));
        }
        Ok(info.balance)
    };
    Some(read())
}

/// Reads the card system in `dir` and checks every card it knows.
pub fn audit_card_records(dir: &Path) -> Result<CardRecordsReport, AuditError> {
    let lus_path = dir.join("lus.redb");
    if !lus_path.is_file() {
        return Err(AuditError::NotACardSystem(dir.to_path_buf()));
    }
    let lus = Db::open(&lus_path).map_err(LusError::from)?;
    let collection_path = dir.join("collection.redb");
    let (spent, in_batches, refused_purchases) = if collection_path.is_file() {
        let db = Db::open(&collection_path).map_err(CollectionError::from)?;
        (
            spent_by_card_in(&db)?,
            collected_by_card_in(&db)?,
            refused_purchases_in(&db)?,
        )
    } else {
        (Vec::new(), BTreeMap::new(), Vec::new())
    };
    let spent: BTreeMap<CardId, Amount> = spent.into_iter().collect();
    let agency_path = dir.join("agency.redb");
    let agency_records = if agency_path.is_file() {
        DurableAgency::open(&agency_path)?.all_finished()?
    } else {
        Vec::new()
    };
    let lus_records = records_in(&lus)?;

    let mut cards = cards_in(&lus)?;
    cards.extend(spent.keys().copied());
    cards.extend(in_batches.keys().copied());
    cards.extend(agency_records.iter().map(|r| r.card));
    cards.sort();
    cards.dedup();

    let mut out = Vec::new();
    for card in cards {
        let mut standing = standing_in(&lus, &card)?;
        let running = spent.get(&card).copied().unwrap_or(Amount::ZERO);
        let batched = in_batches.get(&card).copied().unwrap_or(Amount::ZERO);
        // The larger count: the card paid out at least that much.
        standing.purchases_collected = running.max(batched);
        let mut problems = Vec::new();
        if running != batched {
            problems.push(CardProblem::CollectedTotalDisagrees {
                running,
                in_batches: batched,
            });
        }
        if standing.value_minor() < 0 {
            let by = u64::try_from(-standing.value_minor()).unwrap_or(u64::MAX);
            problems.push(CardProblem::Overspent {
                by: Amount::from_minor(by),
            });
        }
        for rec in agency_records.iter().filter(|r| r.card == card) {
            let agrees = lus_records.iter().any(|l| {
                l.card() == card
                    && l.nt() == rec.nt
                    && l.l1.direction == rec.direction
                    && l.l1.amount == rec.amount
                    && matches!(
                        (l.state, rec.outcome),
                        (LusState::Committed, Outcome::Committed)
                            | (LusState::Rejected, Outcome::Rejected)
                    )
            });
            // A load the LUS never authorised is rejected by the agency
            // alone (on the card's reject proof): nothing moved.
            let never_authorised = rec.outcome == Outcome::Rejected
                && !lus_records
                    .iter()
                    .any(|l| l.card() == card && l.nt() == rec.nt);
            if !agrees && !never_authorised {
                problems.push(CardProblem::AgencyDisagrees {
                    nt: rec.nt,
                    direction: rec.direction,
                    amount: rec.amount,
                });
            }
        }
        let image_balance = match image_of(dir, &card) {
            None => None,
            Some(Err(error)) => {
                problems.push(CardProblem::ImageUnreadable { error });
                None
            }
            Some(Ok(balance)) => {
                let bound_minor =
                    standing.value_minor() + i128::from(standing.loads_open.minor_units());
                if i128::from(balance.minor_units()) > bound_minor {
                    problems.push(CardProblem::ImageAboveHistory {
                        balance,
                        bound_minor,
                    });
                }
                Some(balance)
            }
        };
        out.push(CardAudit {
            card,
            standing,
            image_balance,
            problems,
        });
    }
    Ok(CardRecordsReport {
        cards: out,
        refused_claims: refused_claims_in(&lus)?,
        refused_purchases,
    })
}

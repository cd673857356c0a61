//! Erasing spent coins (paper §1.2): a coin is valid only if its tag checks
//! AND the store says unspent, so once an epoch's refresh grace period is
//! over its spent and revoked coins need not be remembered.
//!
//! Two steps, so that the log stays the truth: [`plan`] (given `now`, which
//! apply never sees) lists the epoch's retired coins and builds the
//! `SpentCoinsErased` event; the issuer appends it; applying it removes
//! exactly the coins whose ids hash to its digest. The digest is SHA-256 over
//! the erased coin ids (16 bytes each) in ascending order, so an auditor
//! replaying the log can recompute it.
//!
//! The same plan lists the epoch's coins still unspent ([`ForfeiturePlan`]):
//! an epoch erased for good (`EpochErased`, its key destroyed) forfeits
//! them in the same batch (`FloatForfeited`), and applying that removes
//! them from the store ([`apply_forfeiture`]), checked the same way. The
//! unspent coins are keyed by id alone, so finding an epoch's means one
//! scan of the unspent table, once per epoch's life.

use ledger::{Amount, CoinId, Event, Hash32, KeyEpoch, Seq, Timestamp};

use super::{CoinState, EPOCHS, RETIRED, coin, coin_id, epoch_bytes, epoch_info, retired_key};
use crate::error::{HistoryError, ProjectionError, history};
use crate::state::{StateRead, StateWrite};

/// Why no erasure can be planned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErasureError {
    #[error("{0} was never opened")]
    UnknownEpoch(KeyEpoch),
    #[error("the grace period of {epoch} ends at {grace_ends_at:?}, it is {now:?}")]
    GraceNotOver {
        epoch: KeyEpoch,
        grace_ends_at: Timestamp,
        now: Timestamp,
    },
    #[error("erasable value overflows: {0}")]
    Money(#[from] ledger::MoneyError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
}

/// The spent and revoked coins of one epoch that may now be erased, and the
/// event that erases them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasurePlan {
    pub epoch: KeyEpoch,
    /// The coin-status state this plan was made from.
    pub as_of: Seq,
    /// Ascending.
    pub coin_ids: Vec<CoinId>,
    pub value: Amount,
    pub digest: Hash32,
    /// The epoch's coins still unspent in the same state: what an erasure
    /// of the epoch forfeits.
    pub forfeiture: ForfeiturePlan,
}

/// The coins of one epoch still unspent, and the event that forfeits them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForfeiturePlan {
    pub epoch: KeyEpoch,
    /// Ascending.
    pub coin_ids: Vec<CoinId>,
    pub value: Amount,
    pub digest: Hash32,
}

impl ForfeiturePlan {
    pub fn n_coins(&self) -> u64 {
        self.coin_ids.len() as u64
    }

    /// The event to append beside the epoch's `EpochErased`; applying it
    /// removes exactly [`ForfeiturePlan::coin_ids`].
    pub fn event(&self) -> Event {
        Event::FloatForfeited {
            epoch: self.epoch,
            n_coins: self.n_coins(),
            value: self.value,
            digest: self.digest,
        }
    }
}

impl ErasurePlan {
    pub fn n_coins(&self) -> u64 {
        self.coin_ids.len() as u64
    }

    /// The event to append; applying it erases exactly [`ErasurePlan::coin_ids`].
    pub fn event(&self) -> Event {
        Event::SpentCoinsErased {
            epoch: self.epoch,
            n_coins: self.n_coins(),
            value: self.value,
            digest: self.digest,
        }
    }
}

pub use ledger::erasure_digest;

/// The retired (spent or revoked, not yet erased) coins of `epoch`,
/// ascending, and their value in minor units.
fn retired_of(
    state: &dyn StateRead,
    epoch: KeyEpoch,
) -> Result<(Vec<CoinId>, u128), ProjectionError> {
    let mut ids = Vec::new();
    let mut value_minor = 0u128;
    state.scan_prefix(RETIRED, &epoch.0.to_be_bytes(), &mut |k, v| {
        let id = coin_id(RETIRED, k.get(4..).unwrap_or_default())?;
        let mut r = crate::state::Reader::new(RETIRED, v);
        value_minor += u128::from(r.u64()?);
        ids.push(id);
        Ok(true)
    })?;
    Ok((ids, value_minor))
}

/// The unspent coins of `epoch`, ascending, and their value in minor units.
fn unspent_of(
    state: &dyn StateRead,
    epoch: KeyEpoch,
) -> Result<(Vec<CoinId>, u128), ProjectionError> {
    let mut ids = Vec::new();
    let mut value_minor = 0u128;
    super::for_each_unspent(state, &mut |body| {
        if body.epoch == epoch {
            value_minor += u128::from(body.value.minor_units());
            ids.push(body.id);
        }
    })?;
    Ok((ids, value_minor))
}

fn to_amount(value_minor: u128) -> Result<Amount, ledger::MoneyError> {
    u64::try_from(value_minor)
        .map(Amount::from_minor)
        .map_err(|_| ledger::MoneyError::Overflow)
}

/// Plans the erasure of `epoch` as of `now`: refused until its grace period is over.
pub fn plan(
    state: &dyn StateRead,
    epoch: KeyEpoch,
    now: Timestamp,
    as_of: Seq,
) -> Result<ErasurePlan, ErasureError> {
    let info = epoch_info(state, epoch)?.ok_or(ErasureError::UnknownEpoch(epoch))?;
    if now < info.grace_ends_at {
        return Err(ErasureError::GraceNotOver {
            epoch,
            grace_ends_at: info.grace_ends_at,
            now,
        });
    }
    let (coin_ids, value_minor) = retired_of(state, epoch)?;
    let value = to_amount(value_minor)?;
    let digest = erasure_digest(&coin_ids);
    let (unspent_ids, unspent_minor) = unspent_of(state, epoch)?;
    let forfeiture = ForfeiturePlan {
        epoch,
        value: to_amount(unspent_minor)?,
        digest: erasure_digest(&unspent_ids),
        coin_ids: unspent_ids,
    };
    Ok(ErasurePlan {
        epoch,
        as_of,
        coin_ids,
        value,
        digest,
        forfeiture,
    })
}

/// Applies a `SpentCoinsErased`: recomputes what is erasable, refuses the
/// event unless count, value and digest all match, and removes those coins,
/// checking each is not unspent.
pub(crate) fn apply(
    state: &mut dyn StateWrite,
    seq: Seq,
    epoch: KeyEpoch,
    n_coins: u64,
    value: Amount,
    digest: Hash32,
) -> Result<(), ProjectionError> {
    let Some(mut info) = epoch_info(state, epoch)? else {
        return Err(history(seq, HistoryError::UnknownEpoch(epoch)));
    };
    let (ids, store_value_minor) = retired_of(state, epoch)?;
    let store_value =
        to_amount(store_value_minor).map_err(|m| history(seq, HistoryError::Money(m)))?;
    let store_n_coins = ids.len() as u64;
    if store_n_coins != n_coins || store_value != value || erasure_digest(&ids) != digest {
        return Err(history(
            seq,
            HistoryError::ErasureMismatch {
                epoch,
                event_n_coins: n_coins,
                store_n_coins,
            },
        ));
    }
    for id in &ids {
        match coin(state, id)? {
            Some(entry) if entry.state == CoinState::Unspent => {
                return Err(history(seq, HistoryError::WouldEraseUnspent(*id)));
            }
            Some(_) => {
                state.remove(super::COINS, id.as_bytes())?;
            }
            None => {
                return Err(ProjectionError::Corrupt {
                    table: RETIRED,
                    reason: "retired coin missing from the coin table",
                });
            }
        }
        state.remove(RETIRED, &retired_key(epoch, id))?;
    }
    info.n_coins_erased = info.n_coins_erased.saturating_add(n_coins);
    info.value_erased = info
        .value_erased
        .checked_add(value)
        .map_err(|m| history(seq, HistoryError::Money(m)))?;
    state.put(EPOCHS, &epoch.0.to_be_bytes(), &epoch_bytes(&info))?;
    tracing::info!(%epoch, n_coins, "erased spent coins");
    Ok(())
}

/// Applies a `FloatForfeited`: recomputes the epoch's unspent coins,
/// refuses the event unless count, value and digest all match, and removes
/// those coins from the store for good (they are neither unspent nor
/// retired any more: nothing of an erased epoch is accepted, so nothing
/// needs to remember them).
pub(crate) fn apply_forfeiture(
    state: &mut dyn StateWrite,
    seq: Seq,
    epoch: KeyEpoch,
    n_coins: u64,
    value: Amount,
    digest: Hash32,
) -> Result<(), ProjectionError> {
    if epoch_info(state, epoch)?.is_none() {
        return Err(history(seq, HistoryError::UnknownEpoch(epoch)));
    }
    let (ids, store_value_minor) = unspent_of(state, epoch)?;
    let store_value =
        to_amount(store_value_minor).map_err(|m| history(seq, HistoryError::Money(m)))?;
    let store_n_coins = ids.len() as u64;
    if store_n_coins != n_coins || store_value != value || erasure_digest(&ids) != digest {
        return Err(history(
            seq,
            HistoryError::ForfeitureMismatch {
                epoch,
                event_n_coins: n_coins,
                store_n_coins,
            },
        ));
    }
    for id in &ids {
        state.remove(super::COINS, id.as_bytes())?;
        state.remove(super::UNSPENT, id.as_bytes())?;
    }
    tracing::info!(%epoch, n_coins, "forfeited unspent coins");
    Ok(())
}

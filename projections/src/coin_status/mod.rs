//! Coin status: for every coin the issuer has minted and not yet erased, its
//! value, expiry, key epoch and state ([`CoinState`]). It answers "what is
//! the status of this coin" and "which coins of shard N of M are unspent"
//! (what an issuer shard boots from), and plans the erasure of spent coins
//! whose epoch's refresh grace period is over ([`erasure`]).
//!
//! Tables (keys big-endian, so scans run in the order queries need):
//! - `coins`: coin id → value, expiry, epoch, state, tx;
//! - `unspent`: coin id → value, expiry, epoch — only the unspent coins, so
//!   a shard boots by scanning them alone, however long the history;
//! - `retired`: (epoch, coin id) → value for spent and revoked coins not yet
//!   erased, in ascending id order within an epoch: the erasure order;
//! - `epochs`: epoch → expiry, end of grace, closed, what was erased.
//!
//! **Invariant:** erasure removes only spent or revoked coins, never an
//! unspent one: the `retired` table holds no unspent coin, and applying an
//! erasure re-checks every coin's state before removing it. The unspent
//! coins of an epoch leave only by a forfeiture (`FloatForfeited`, in the
//! batch that erases the epoch), exactly those the event's digest names.
//! Once an epoch is erased and forfeited, the store holds nothing of its
//! coins.

pub mod erasure;

use ledger::{Amount, CoinBody, CoinId, Event, KeyEpoch, Record, Seq, ShardIdx, Timestamp, TxId};

use crate::error::{HistoryError, ProjectionError, history};
use crate::framework::{Projection, ProjectionDb};
use crate::state::{Reader, StateRead, StateWrite, TableName};

pub use erasure::{ErasureError, ErasurePlan, ForfeiturePlan, erasure_digest};

pub(crate) const COINS: TableName = "coin_status.coins";
pub(crate) const UNSPENT: TableName = "coin_status.unspent";
pub(crate) const RETIRED: TableName = "coin_status.retired";
pub(crate) const EPOCHS: TableName = "coin_status.epochs";

/// Where a coin is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoinState {
    Unspent,
    /// Validated and taken out of circulation by transaction `tx`.
    Spent {
        tx: TxId,
    },
    /// Revoked by the refund transaction `tx`.
    Revoked {
        tx: TxId,
    },
}

/// One coin as the coin-status store knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CoinStatusEntry {
    pub body: CoinBody,
    pub state: CoinState,
}

/// What the store knows of a key epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochInfo {
    pub epoch: KeyEpoch,
    pub coins_expire_at: Timestamp,
    pub grace_ends_at: Timestamp,
    pub closed: bool,
    /// Coins erased so far (over every erasure of this epoch).
    pub n_coins_erased: u64,
    pub value_erased: Amount,
}

/// Count and value of the unspent coins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnspentTotals {
    pub n_coins: u64,
    pub value_minor_units: u128,
}

/// The coin-status projection (pure apply; see [`CoinStatus`] for its file).
#[derive(Debug, Clone, Copy, Default)]
pub struct CoinStatusModel;

/// The coin-status projection in its own redb file.
pub type CoinStatus = ProjectionDb<CoinStatusModel>;

const STATE_UNSPENT: u8 = 0;
const STATE_SPENT: u8 = 1;
const STATE_REVOKED: u8 = 2;

fn body_bytes(body: &CoinBody) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[..8].copy_from_slice(&body.value.minor_units().to_be_bytes());
    out[8..16].copy_from_slice(&body.expiry.0.to_be_bytes());
    out[16..20].copy_from_slice(&body.epoch.0.to_be_bytes());
    out
}

fn read_body(id: CoinId, r: &mut Reader<'_>) -> Result<CoinBody, ProjectionError> {
    Ok(CoinBody {
        id,
        value: Amount::from_minor(r.u64()?),
        expiry: Timestamp(r.u64()?),
        epoch: KeyEpoch(r.u32()?),
    })
}

pub(crate) fn entry_bytes(entry: &CoinStatusEntry) -> [u8; 37] {
    let mut out = [0u8; 37];
    out[..20].copy_from_slice(&body_bytes(&entry.body));
    let (tag, tx) = match entry.state {
        CoinState::Unspent => (STATE_UNSPENT, [0u8; 16]),
        CoinState::Spent { tx } => (STATE_SPENT, *tx.as_bytes()),
        CoinState::Revoked { tx } => (STATE_REVOKED, *tx.as_bytes()),
    };
    out[20] = tag;
    out[21..].copy_from_slice(&tx);
    out
}

pub(crate) fn read_entry(id: CoinId, bytes: &[u8]) -> Result<CoinStatusEntry, ProjectionError> {
    let mut r = Reader::new(COINS, bytes);
    let body = read_body(id, &mut r)?;
    let tag = r.u8()?;
    let tx = TxId::from_bytes(r.take()?);
    let state = match tag {
        STATE_UNSPENT => CoinState::Unspent,
        STATE_SPENT => CoinState::Spent { tx },
        STATE_REVOKED => CoinState::Revoked { tx },
        _ => return Err(r.corrupt("unknown coin state")),
    };
    Ok(CoinStatusEntry { body, state })
}

pub(crate) fn coin_id(table: TableName, key: &[u8]) -> Result<CoinId, ProjectionError> {
    let bytes: [u8; 16] = key.try_into().map_err(|_| ProjectionError::Corrupt {
        table,
        reason: "coin id key is not 16 bytes",
    })?;
    Ok(CoinId::from_bytes(bytes))
}

pub(crate) fn retired_key(epoch: KeyEpoch, id: &CoinId) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[..4].copy_from_slice(&epoch.0.to_be_bytes());
    out[4..].copy_from_slice(id.as_bytes());
    out
}

fn epoch_bytes(info: &EpochInfo) -> [u8; 33] {
    let mut out = [0u8; 33];
    out[..8].copy_from_slice(&info.coins_expire_at.0.to_be_bytes());
    out[8..16].copy_from_slice(&info.grace_ends_at.0.to_be_bytes());
    out[16] = u8::from(info.closed);
    out[17..25].copy_from_slice(&info.n_coins_erased.to_be_bytes());
    out[25..].copy_from_slice(&info.value_erased.minor_units().to_be_bytes());
    out
}

fn read_epoch(epoch: KeyEpoch, bytes: &[u8]) -> Result<EpochInfo, ProjectionError> {
    let mut r = Reader::new(EPOCHS, bytes);
    Ok(EpochInfo {
        epoch,
        coins_expire_at: Timestamp(r.u64()?),
        grace_ends_at: Timestamp(r.u64()?),
        closed: r.u8()? != 0,
        n_coins_erased: r.u64()?,
        value_erased: Amount::from_minor(r.u64()?),
    })
}

// --- queries -------------------------------------------------------------------

/// The status of one coin, `None` if it was never issued or has been erased.
pub fn coin(
    state: &dyn StateRead,
    id: &CoinId,
) -> Result<Option<CoinStatusEntry>, ProjectionError> {
    state
        .get(COINS, id.as_bytes())?
        .map(|bytes| read_entry(*id, &bytes))
        .transpose()
}

/// What the store knows of `epoch`.
pub fn epoch_info(
    state: &dyn StateRead,
    epoch: KeyEpoch,
) -> Result<Option<EpochInfo>, ProjectionError> {
    state
        .get(EPOCHS, &epoch.0.to_be_bytes())?
        .map(|bytes| read_epoch(epoch, &bytes))
        .transpose()
}

/// Visits every unspent coin, in ascending id order.
pub fn for_each_unspent(
    state: &dyn StateRead,
    visit: &mut dyn FnMut(CoinBody),
) -> Result<(), ProjectionError> {
    state.scan_prefix(UNSPENT, &[], &mut |k, v| {
        let id = coin_id(UNSPENT, k)?;
        visit(read_body(id, &mut Reader::new(UNSPENT, v))?);
        Ok(true)
    })
}

/// The unspent coins of shard `shard` of `n_shards` (see [`CoinId::shard`]).
pub fn unspent_of_shard(
    state: &dyn StateRead,
    shard: ShardIdx,
    n_shards: u16,
) -> Result<Vec<CoinBody>, ProjectionError> {
    let mut out = Vec::new();
    for_each_unspent(state, &mut |body| {
        if body.id.shard(n_shards) == shard {
            out.push(body);
        }
    })?;
    Ok(out)
}

/// The unspent coins of every shard of `n_shards`, in one scan: how a
/// whole issuer boots (index `i` holds shard `i`'s coins).
pub fn unspent_by_shard(
    state: &dyn StateRead,
    n_shards: u16,
) -> Result<Vec<Vec<CoinBody>>, ProjectionError> {
    let mut out = vec![Vec::new(); usize::from(n_shards.max(1))];
    for_each_unspent(state, &mut |body| {
        let idx = usize::from(body.id.shard(n_shards).0);
        if let Some(shard) = out.get_mut(idx) {
            shard.push(body);
        }
    })?;
    Ok(out)
}

/// Count and value of the unspent coins.
pub fn unspent_totals(state: &dyn StateRead) -> Result<UnspentTotals, ProjectionError> {
    let mut totals = UnspentTotals::default();
    for_each_unspent(state, &mut |body| {
        totals.n_coins += 1;
        totals.value_minor_units += u128::from(body.value.minor_units());
    })?;
    Ok(totals)
}

/// Number of coins the store holds in any state (what erasure shrinks).
pub fn n_coins_stored(state: &dyn StateRead) -> Result<u64, ProjectionError> {
    let mut n = 0u64;
    state.scan_prefix(COINS, &[], &mut |_, _| {
        n += 1;
        Ok(true)
    })?;
    Ok(n)
}

impl ProjectionDb<CoinStatusModel> {
    /// The status of one coin, `None` if never issued or erased.
    pub fn status(&self, id: &CoinId) -> Result<Option<CoinStatusEntry>, ProjectionError> {
        self.read(|s| coin(s, id))
    }

    pub fn epoch_info(&self, epoch: KeyEpoch) -> Result<Option<EpochInfo>, ProjectionError> {
        self.read(|s| epoch_info(s, epoch))
    }

    /// The unspent coins of shard `shard` of `n_shards`.
    pub fn unspent_of_shard(
        &self,
        shard: ShardIdx,
        n_shards: u16,
    ) -> Result<Vec<CoinBody>, ProjectionError> {
        self.read(|s| unspent_of_shard(s, shard, n_shards))
    }

    /// The unspent coins of every shard, in one scan.
    pub fn unspent_by_shard(&self, n_shards: u16) -> Result<Vec<Vec<CoinBody>>, ProjectionError> {
        self.read(|s| unspent_by_shard(s, n_shards))
    }

    pub fn unspent_totals(&self) -> Result<UnspentTotals, ProjectionError> {
        self.read(unspent_totals)
    }

    pub fn n_coins_stored(&self) -> Result<u64, ProjectionError> {
        self.read(n_coins_stored)
    }

    /// Plans the erasure of `epoch`'s spent and revoked coins and the
    /// forfeiture of its unspent ones, from one read (see [`erasure`]).
    pub fn plan_erasure(
        &self,
        epoch: KeyEpoch,
        now: Timestamp,
    ) -> Result<ErasurePlan, ErasureError> {
        let state_seq = self.applied_seq()?;
        self.read(|s| Ok(erasure::plan(s, epoch, now, state_seq)))?
    }
}

// --- apply -------------------------------------------------------------------

/// Takes a coin out of circulation: it must be issued, unspent, and logged
/// with the body it was issued with.
fn retire(
    state: &mut dyn StateWrite,
    seq: Seq,
    body: &CoinBody,
    to: CoinState,
) -> Result<(), ProjectionError> {
    let Some(mut entry) = coin(state, &body.id)? else {
        return Err(history(seq, HistoryError::UnknownCoin(body.id)));
    };
    if entry.state != CoinState::Unspent {
        return Err(history(seq, HistoryError::CoinNotUnspent(body.id)));
    }
    if entry.body != *body {
        return Err(history(seq, HistoryError::CoinBodyMismatch(body.id)));
    }
    entry.state = to;
    state.put(COINS, body.id.as_bytes(), &entry_bytes(&entry))?;
    state.remove(UNSPENT, body.id.as_bytes())?;
    state.put(
        RETIRED,
        &retired_key(body.epoch, &body.id),
        &body.value.minor_units().to_be_bytes(),
    )?;
    Ok(())
}

impl Projection for CoinStatusModel {
    const NAME: &'static str = "coin_status";
    const TABLES: &'static [TableName] = &[COINS, UNSPENT, RETIRED, EPOCHS];
    const FORMAT: u32 = 1;

    fn apply(&self, state: &mut dyn StateWrite, record: &Record) -> Result<(), ProjectionError> {
        let seq = record.seq;
        match &record.event {
            Event::CoinsIssued { coins, .. } => {
                for body in coins {
                    let entry = CoinStatusEntry {
                        body: *body,
                        state: CoinState::Unspent,
                    };
                    // One B-tree walk instead of a get then a put: on a
                    // duplicate the whole transaction is dropped anyway.
                    if state.put(COINS, body.id.as_bytes(), &entry_bytes(&entry))? {
                        return Err(history(seq, HistoryError::CoinIssuedTwice(body.id)));
                    }
                    state.put(UNSPENT, body.id.as_bytes(), &body_bytes(body))?;
                }
            }
            Event::CoinsSpent { coins, .. } => {
                for body in coins {
                    retire(state, seq, body, CoinState::Spent { tx: record.tx })?;
                }
            }
            Event::CoinsRevoked { coins } => {
                for body in coins {
                    retire(state, seq, body, CoinState::Revoked { tx: record.tx })?;
                }
            }
            Event::EpochOpened {
                epoch,
                coins_expire_at,
                grace_ends_at,
            } => {
                if epoch_info(state, *epoch)?.is_some() {
                    return Err(history(seq, HistoryError::EpochOpenedTwice(*epoch)));
                }
                let info = EpochInfo {
                    epoch: *epoch,
                    coins_expire_at: *coins_expire_at,
                    grace_ends_at: *grace_ends_at,
                    closed: false,
                    n_coins_erased: 0,
                    value_erased: Amount::ZERO,
                };
                state.put(EPOCHS, &epoch.0.to_be_bytes(), &epoch_bytes(&info))?;
            }
            Event::EpochClosed { epoch } => {
                let Some(mut info) = epoch_info(state, *epoch)? else {
                    return Err(history(seq, HistoryError::UnknownEpoch(*epoch)));
                };
                info.closed = true;
                state.put(EPOCHS, &epoch.0.to_be_bytes(), &epoch_bytes(&info))?;
            }
            Event::SpentCoinsErased {
                epoch,
                n_coins,
                value,
                digest,
            } => erasure::apply(state, seq, *epoch, *n_coins, *value, *digest)?,
            // The issuer appends it only once nothing of the epoch can
            // leave circulation any more, so the epoch's retired coins are
            // exactly those retired through `through` (the auditor checks
            // that against the log).
            Event::EpochErased {
                epoch,
                n_coins,
                value,
                digest,
                ..
            } => erasure::apply(state, seq, *epoch, *n_coins, *value, *digest)?,
            Event::FloatForfeited {
                epoch,
                n_coins,
                value,
                digest,
            } => erasure::apply_forfeiture(state, seq, *epoch, *n_coins, *value, *digest)?,
            Event::EpochRevoked { .. } => {}
            Event::Registered { .. }
            | Event::EnrollmentRequested { .. }
            | Event::Enrolled { .. }
            | Event::PurchaseRequested { .. }
            | Event::PurchaseSettled { .. }
            | Event::PurchaseRejected { .. }
            | Event::PurchaseAcknowledged { .. }
            | Event::Redeemed { .. }
            | Event::Aggregated { .. }
            | Event::AggregateWithdrawn { .. }
            | Event::CardLoaded { .. }
            | Event::CardUnloaded { .. }
            | Event::Cleared { .. }
            | Event::IdentityDisclosed { .. }
            | Event::EnrollmentRefused { .. }
            | Event::StandingChanged { .. }
            | Event::KeyChanged { .. }
            | Event::IdentityDisclosedUnderDualControl { .. }
            | Event::PurchaseDebitReturned { .. }
            | Event::Checkpoint(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

//! What the auditor remembers between transactions: the coins, epochs,
//! purchases, balances and card positions it has replayed, and the running
//! [`Totals`] of the conservation equation. All of it is serializable, so an
//! incremental audit resumes from a checkpoint file without re-reading the
//! log behind it.

use std::collections::{BTreeMap, BTreeSet};

// Keyed with per-process randomness: a hostile log cannot aim collisions
// at the auditor's tables, and hashing a 16-byte id stays cheap. An
// unkeyed hash of the (random) coin id's own bytes was measured and gained
// nothing beyond the noise on a 10 M-event log: the coin tables cost cache
// misses on million-entry tables, not hashing.
use foldhash::{HashMap, HashSet};

use ledger::{Amount, BalanceId, CardId, KeyEpoch, LusId, PurchaseId, Timestamp, Totals};

use crate::coins::CoinTable;
use serde::{Deserialize, Serialize};

/// One key epoch as the log described it, and the value minted and spent
/// under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochState {
    pub coins_expire_at: Timestamp,
    pub grace_ends_at: Timestamp,
    pub closed: bool,
    /// Value issued under this epoch's key, in minor units.
    pub issued_minor: u128,
    /// Value spent or revoked under this epoch's key, in minor units.
    pub spent_minor: u128,
    /// Number of `SpentCoinsErased` events for this epoch.
    pub n_erasures: u32,
    /// After `EpochRevoked`: what its recoups may still pay out, in minor units.
    pub revoked_still_owed: Option<u128>,
    /// After `EpochErased`: nothing of the epoch is accepted any more.
    pub erased: bool,
    /// Coins of the epoch still unspent at its erasure and forfeited with
    /// it (`FloatForfeited`), and their value in minor units.
    pub n_forfeited: u64,
    pub forfeited_minor: u128,
    /// The last record at which a coin of the epoch left circulation.
    pub last_retired_seq: Option<ledger::Seq>,
}

/// Where a coin purchase stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PurchaseState {
    Requested {
        amount: Amount,
    },
    Settled {
        amount: Amount,
    },
    Rejected,
    /// Coins were issued for it: it can pay for nothing more.
    CoinsIssued {
        amount: Amount,
    },
    /// The bank gave its debit back after it was collected.
    DebitReturned,
}

/// The net position with one load/unload server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardServerState {
    pub loaded_minor: u128,
    pub unloaded_minor: u128,
    pub paid_to_lus_minor: u128,
    pub received_from_lus_minor: u128,
    pub n_clearings: u64,
    /// Clearing periods settled, each once.
    pub settled_periods: BTreeSet<u32>,
}

impl CardServerState {
    /// What the issuer owes this server: loads − unloads − clearings (a
    /// negative figure is owed to the issuer).
    pub fn float_minor(&self) -> i128 {
        self.loaded_minor as i128 - self.unloaded_minor as i128 - self.paid_to_lus_minor as i128
            + self.received_from_lus_minor as i128
    }
}

/// The whole replay state at a transaction boundary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerState {
    /// Coins issued and not yet erased, each unspent or spent (spent or
    /// revoked): what tells a double spend from a coin never issued, and
    /// what an erasure must match.
    pub coins: CoinTable,
    pub epochs: BTreeMap<KeyEpoch, EpochState>,
    pub purchases: HashMap<PurchaseId, PurchaseState>,
    /// Aggregate balances in minor units.
    pub balances: HashMap<BalanceId, u128>,
    pub card_servers: BTreeMap<LusId, CardServerState>,
    /// Every committed card transaction number, per server and card.
    pub card_nts: HashSet<(LusId, CardId, u32)>,
    pub totals: Totals,
    /// The latest transaction time in the log so far (log time may step
    /// back a little, see [`crate::constants::LOG_TIME_SKEW_MAX_SECS`]).
    pub latest_at: Option<Timestamp>,
}

impl LedgerState {
    /// Outstanding e-money as the coin set says it (it must equal
    /// `totals.outstanding`).
    pub fn unspent_value_minor(&self) -> u128 {
        self.coins
            .unspent_coins()
            .map(|c| u128::from(c.value.minor_units()))
            .sum()
    }
}

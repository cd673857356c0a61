//! The shard reservation core: the unspent coins of one shard and who holds
//! a reservation on them. Plain Rust over `ledger::sync`, so the same code
//! runs in the issuer (owned by its `CommitPath`, the only holder of its
//! shards) and under loom.
//!
//! A transaction reserves its input coins (never waiting: a coin held by
//! another transaction is [`ReserveError::Busy`]), then either commits
//! (reserved coins leave for good, coins issued into this shard enter) or
//! aborts (reservations released). [`ShardSet`] spans every shard and
//! reserves a transaction's inputs shard by shard in index order, aborting
//! all of them on any failure.
//!
//! **Invariants (asserted, money is at stake):** a coin that left a shard is
//! never unspent again; an issued coin id never collides with one the shard
//! has seen; a coin is reserved by at most one transaction; a coin is
//! reserved only while unspent.

use std::collections::{BTreeMap, HashMap, HashSet};

use ledger::sync::{Arc, Mutex, lock};
use ledger::{CoinBody, CoinId, Event, ShardIdx, TxId};

/// Why a reservation was refused. Nothing was reserved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReserveError {
    /// Held by another transaction in flight: a retry may succeed.
    #[error("{} coin(s) are in use by another transaction", coins.len())]
    Busy { coins: Vec<CoinId> },
    /// Spent, revoked or never issued.
    #[error("{} coin(s) are not unspent", coins.len())]
    NotUnspent { coins: Vec<CoinId> },
    /// The same coin twice in one request.
    #[error("coin listed twice in one transaction")]
    Duplicate { coin: CoinId },
    /// A coin routed to a shard that does not own it (a caller's bug).
    #[error("coin sent to the wrong shard")]
    WrongShard { coin: CoinId },
}

#[derive(Debug, Default)]
struct ShardState {
    unspent: HashMap<CoinId, CoinBody>,
    /// Coin -> the transaction holding it.
    reserved: HashMap<CoinId, TxId>,
    /// Transaction -> its coins here, for commit and abort.
    by_tx: HashMap<TxId, Vec<CoinId>>,
    /// Coins that left this shard (spent or revoked) since the last
    /// [`ShardCore::retire_gone`]: answered as gone by presence queries and
    /// checked against by issues.
    gone: HashSet<CoinId>,
    /// Gone coins handed to the coin-status projection: kept until it has
    /// applied the log past them ([`ShardCore::forget_retired`]), then the
    /// projection answers for them. Without this split the set of spent
    /// coins would grow in memory for as long as the issuer runs.
    retiring: HashSet<CoinId>,
}

impl ShardState {
    fn is_gone(&self, coin: &CoinId) -> bool {
        self.gone.contains(coin) || self.retiring.contains(coin)
    }
}

/// What a shard knows of a coin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoinPresence {
    Unspent,
    /// Unspent and reserved by a transaction in flight.
    Reserved,
    /// Spent or revoked since this shard was loaded.
    Gone,
    /// Not known here: never issued, or gone before the shard was loaded.
    Unseen,
}

/// What the shards hold of one key epoch (see [`ShardCore::epoch_holdings`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EpochHoldings {
    pub n_unspent: u64,
    pub value_unspent_minor: u128,
    /// Unspent coins of the epoch reserved by a transaction in flight.
    pub n_reserved: u64,
}

impl EpochHoldings {
    fn add(self, other: EpochHoldings) -> EpochHoldings {
        EpochHoldings {
            n_unspent: self.n_unspent + other.n_unspent,
            value_unspent_minor: self.value_unspent_minor + other.value_unspent_minor,
            n_reserved: self.n_reserved + other.n_reserved,
        }
    }
}

/// The unspent coins of one shard and their reservations.
#[derive(Debug)]
pub struct ShardCore {
    idx: ShardIdx,
    n_shards: u16,
    state: Mutex<ShardState>,
}

impl ShardCore {
    /// An empty shard `idx` of `n_shards`.
    pub fn new(idx: ShardIdx, n_shards: u16) -> ShardCore {
        assert!(n_shards > 0 && idx.0 < n_shards, "shard index out of range");
        ShardCore {
            idx,
            n_shards,
            state: Mutex::new(ShardState::default()),
        }
    }

    pub fn idx(&self) -> ShardIdx {
        self.idx
    }

    fn owns(&self, coin: &CoinId) -> bool {
        coin.shard(self.n_shards) == self.idx
    }

    /// Reserves `coins` for `tx`, all or nothing, without waiting. Coins
    /// this transaction already holds here are granted again (a retried step
    /// of the same transaction).
    pub fn reserve(&self, tx: TxId, coins: &[CoinId]) -> Result<Vec<CoinBody>, ReserveError> {
        let mut seen = HashSet::with_capacity(coins.len());
        for coin in coins {
            if !self.owns(coin) {
                return Err(ReserveError::WrongShard { coin: *coin });
            }
            if !seen.insert(*coin) {
                return Err(ReserveError::Duplicate { coin: *coin });
            }
        }
        let mut state = lock(&self.state);
        let mut not_unspent = Vec::new();
        let mut busy = Vec::new();
        for coin in coins {
            match state.reserved.get(coin) {
                Some(holder) if *holder != tx => busy.push(*coin),
                _ if !state.unspent.contains_key(coin) => not_unspent.push(*coin),
                _ => {}
            }
        }
        // A coin that is gone is the stronger answer: a retry will never help.
        if !not_unspent.is_empty() {
            return Err(ReserveError::NotUnspent { coins: not_unspent });
        }
        if !busy.is_empty() {
            return Err(ReserveError::Busy { coins: busy });
        }
        let mut bodies = Vec::with_capacity(coins.len());
        for coin in coins {
            let body = *state
                .unspent
                .get(coin)
                .expect("checked unspent under the same lock");
            if state.reserved.insert(*coin, tx).is_none() {
                state.by_tx.entry(tx).or_default().push(*coin);
            }
            bodies.push(body);
        }
        Ok(bodies)
    }

    /// Commits `tx` here: its reserved coins leave for good and `issued`
    /// (coins of this shard) enter as unspent. Returns the coins that left.
    ///
    /// # Panics
    /// If an issued coin is not of this shard or collides with a coin this
    /// shard has seen: minting it would create money twice.
    pub fn commit(&self, tx: TxId, issued: &[CoinBody]) -> Vec<CoinBody> {
        let mut state = lock(&self.state);
        let reserved = state.by_tx.remove(&tx).unwrap_or_default();
        let mut left = Vec::with_capacity(reserved.len());
        for coin in reserved {
            let holder = state.reserved.remove(&coin);
            assert_eq!(holder, Some(tx), "reservation table out of step");
            let body = state
                .unspent
                .remove(&coin)
                .expect("a reserved coin is unspent until its transaction commits");
            assert!(
                !state.retiring.contains(&coin) && state.gone.insert(coin),
                "coin {coin} left its shard twice"
            );
            left.push(body);
        }
        for body in issued {
            assert!(
                self.owns(&body.id),
                "coin {} issued to the wrong shard",
                body.id
            );
            assert!(
                !state.is_gone(&body.id) && !state.unspent.contains_key(&body.id),
                "issued coin id {} collides with an existing coin",
                body.id
            );
            state.unspent.insert(body.id, *body);
        }
        left
    }

    /// Releases every reservation of `tx` here. Aborting a transaction
    /// that holds nothing is a no-op.
    pub fn abort(&self, tx: TxId) {
        let mut state = lock(&self.state);
        if let Some(coins) = state.by_tx.remove(&tx) {
            for coin in coins {
                let holder = state.reserved.remove(&coin);
                assert_eq!(holder, Some(tx), "reservation table out of step");
            }
        }
    }

    /// The unspent body of `coin`, if any (a read; reserves nothing).
    pub fn get(&self, coin: &CoinId) -> Option<CoinBody> {
        lock(&self.state).unspent.get(coin).copied()
    }

    /// What this shard knows of `coin`.
    pub fn presence(&self, coin: &CoinId) -> CoinPresence {
        let state = lock(&self.state);
        if state.reserved.contains_key(coin) {
            CoinPresence::Reserved
        } else if state.unspent.contains_key(coin) {
            CoinPresence::Unspent
        } else if state.is_gone(coin) {
            CoinPresence::Gone
        } else {
            CoinPresence::Unseen
        }
    }

    /// Hands every coin gone so far to the projection: they stay known as
    /// gone until [`ShardCore::forget_retired`]. Call it before reading the
    /// log head the projection is to catch up with: a coin leaves a shard
    /// only after its batch is durable, so every retired coin lies at or
    /// below that head.
    pub fn retire_gone(&self) {
        let mut state = lock(&self.state);
        let gone = std::mem::take(&mut state.gone);
        if state.retiring.is_empty() {
            state.retiring = gone;
        } else {
            // A catch-up failed after the last retire: keep both.
            state.retiring.extend(gone);
        }
    }

    /// Forgets the retired coins, once the coin-status projection has
    /// applied the log up to a head read after [`ShardCore::retire_gone`];
    /// returns how many.
    pub fn forget_retired(&self) -> usize {
        let mut state = lock(&self.state);
        let n = state.retiring.len();
        state.retiring = HashSet::new();
        n
    }

    /// Coins known here as gone (spent or revoked, not yet forgotten).
    pub fn n_gone(&self) -> usize {
        let state = lock(&self.state);
        state.gone.len() + state.retiring.len()
    }

    /// Tests only: holds this shard's lock while `busy` runs, as a slow
    /// call on this shard would, to show other shards do not wait for it.
    #[cfg(test)]
    pub(crate) fn hold_busy_while(&self, busy: impl FnOnce()) {
        let _held = lock(&self.state);
        busy();
    }

    /// Whether `coin` is unspent here (reserved or not).
    pub fn is_unspent(&self, coin: &CoinId) -> bool {
        lock(&self.state).unspent.contains_key(coin)
    }

    pub fn n_unspent(&self) -> usize {
        lock(&self.state).unspent.len()
    }

    /// Reservations currently held, over all transactions.
    pub fn n_reserved(&self) -> usize {
        let state = lock(&self.state);
        debug_assert_eq!(
            state.reserved.len(),
            state.by_tx.values().map(Vec::len).sum::<usize>()
        );
        state.reserved.len()
    }

    /// What this shard holds of `epoch`: its unspent coins and their value,
    /// and how many of them a transaction in flight holds.
    pub fn epoch_holdings(&self, epoch: ledger::KeyEpoch) -> EpochHoldings {
        let state = lock(&self.state);
        let mut out = EpochHoldings::default();
        for body in state.unspent.values().filter(|b| b.epoch == epoch) {
            out.n_unspent += 1;
            out.value_unspent_minor += u128::from(body.value.minor_units());
            if state.reserved.contains_key(&body.id) {
                out.n_reserved += 1;
            }
        }
        out
    }

    /// Removes every unspent coin of `epoch` (its float forfeited with its
    /// erasure) and returns what it removed. The coins are not kept as
    /// gone: nothing of an erased epoch is accepted, so nothing needs to
    /// remember them.
    ///
    /// # Panics
    /// If a transaction holds one of them: the erasure drains the epoch
    /// first, so a reservation here is a broken invariant.
    pub fn forfeit_epoch(&self, epoch: ledger::KeyEpoch) -> EpochHoldings {
        let mut state = lock(&self.state);
        let mut out = EpochHoldings::default();
        let ShardState {
            unspent, reserved, ..
        } = &mut *state;
        unspent.retain(|id, body| {
            if body.epoch != epoch {
                return true;
            }
            assert!(
                !reserved.contains_key(id),
                "a forfeited coin {id} is reserved by a transaction in flight"
            );
            out.n_unspent += 1;
            out.value_unspent_minor += u128::from(body.value.minor_units());
            false
        });
        out
    }

    /// Every unspent coin of this shard (for checks and checkpoints).
    pub fn unspent(&self) -> Vec<CoinBody> {
        lock(&self.state).unspent.values().copied().collect()
    }

    /// Loads unspent coins at boot (from the coin-status checkpoint).
    /// Refuses to run while transactions hold reservations.
    pub fn load_unspent(&self, coins: &[CoinBody]) {
        let mut state = lock(&self.state);
        assert!(state.reserved.is_empty(), "loading while serving");
        for body in coins {
            assert!(
                self.owns(&body.id),
                "checkpoint put coin {} in the wrong shard",
                body.id
            );
            assert!(
                state.unspent.insert(body.id, *body).is_none(),
                "checkpoint lists coin {} twice",
                body.id
            );
        }
    }

    /// Applies a logged event at boot (log replay): issued coins of this
    /// shard enter, spent or revoked ones leave, a forfeited epoch's go. Refuses to run while
    /// transactions hold reservations, since replay happens before serving.
    pub fn apply_logged(&self, event: &Event) {
        let mut state = lock(&self.state);
        assert!(state.reserved.is_empty(), "replay while serving");
        match event {
            Event::CoinsIssued { coins, .. } => {
                for body in coins.iter().filter(|c| self.owns(&c.id)) {
                    assert!(
                        !state.is_gone(&body.id) && !state.unspent.contains_key(&body.id),
                        "the log issues coin {} twice",
                        body.id
                    );
                    state.unspent.insert(body.id, *body);
                }
            }
            Event::CoinsSpent { coins, .. } | Event::CoinsRevoked { coins } => {
                for body in coins.iter().filter(|c| self.owns(&c.id)) {
                    assert!(
                        state.unspent.remove(&body.id).is_some(),
                        "the log spends coin {} that is not unspent",
                        body.id
                    );
                    state.gone.insert(body.id);
                }
            }
            Event::FloatForfeited { epoch, .. } => {
                state.unspent.retain(|_, body| body.epoch != *epoch);
            }
            _ => {}
        }
    }
}

/// Every shard of the issuer; routes coins to their shard and reserves a
/// transaction's inputs shard by shard in index order.
#[derive(Debug, Clone)]
pub struct ShardSet {
    shards: Arc<Vec<ShardCore>>,
}

impl ShardSet {
    /// `n_shards` empty shards.
    pub fn new(n_shards: u16) -> ShardSet {
        assert!(
            n_shards > 0 && n_shards <= crate::constants::SHARDS_MAX,
            "shard count out of range"
        );
        ShardSet {
            shards: Arc::new(
                (0..n_shards)
                    .map(|i| ShardCore::new(ShardIdx(i), n_shards))
                    .collect(),
            ),
        }
    }

    pub fn n_shards(&self) -> u16 {
        self.shards.len() as u16
    }

    pub fn shard(&self, idx: ShardIdx) -> &ShardCore {
        &self.shards[usize::from(idx.0)]
    }

    fn shard_of(&self, coin: &CoinId) -> &ShardCore {
        self.shard(coin.shard(self.n_shards()))
    }

    /// Groups `coins` by shard, in ascending shard order.
    pub fn group<'a>(
        &self,
        coins: impl IntoIterator<Item = &'a CoinId>,
    ) -> BTreeMap<ShardIdx, Vec<CoinId>> {
        let mut groups: BTreeMap<ShardIdx, Vec<CoinId>> = BTreeMap::new();
        for coin in coins {
            groups
                .entry(coin.shard(self.n_shards()))
                .or_default()
                .push(*coin);
        }
        groups
    }

    /// Reserves `coins` for `tx` in every shard concerned, in shard order;
    /// on any failure every reservation of `tx` is released. The bodies come
    /// back in the order of `coins`.
    pub fn reserve(&self, tx: TxId, coins: &[CoinId]) -> Result<Vec<CoinBody>, ReserveError> {
        let mut seen = HashSet::with_capacity(coins.len());
        if let Some(dup) = coins.iter().find(|c| !seen.insert(**c)) {
            return Err(ReserveError::Duplicate { coin: *dup });
        }
        let mut found: HashMap<CoinId, CoinBody> = HashMap::with_capacity(coins.len());
        for (idx, group) in self.group(coins) {
            match self.shard(idx).reserve(tx, &group) {
                Ok(bodies) => found.extend(bodies.into_iter().map(|b| (b.id, b))),
                Err(err) => {
                    self.abort(tx);
                    return Err(err);
                }
            }
        }
        Ok(coins
            .iter()
            .map(|c| *found.get(c).expect("every shard answered for its coins"))
            .collect())
    }

    /// Commits `tx` in the shards of `inputs` (the coins it reserved) and of
    /// `issued`: reserved coins leave, `issued` enter their shards. Returns
    /// the coins that left. Visits only those shards, not all of them (a
    /// payment touches two of, say, 16).
    pub fn commit_touched(
        &self,
        tx: TxId,
        inputs: &[CoinId],
        issued: &[CoinBody],
    ) -> Vec<CoinBody> {
        let mut by_shard: BTreeMap<ShardIdx, Vec<CoinBody>> = BTreeMap::new();
        for coin in inputs {
            by_shard.entry(coin.shard(self.n_shards())).or_default();
        }
        for body in issued {
            by_shard
                .entry(body.id.shard(self.n_shards()))
                .or_default()
                .push(*body);
        }
        let mut left = Vec::with_capacity(inputs.len());
        for (idx, mine) in by_shard {
            left.extend(self.shard(idx).commit(tx, &mine));
        }
        left
    }

    /// Commits `tx` in every shard: reserved coins leave, `issued` enter
    /// their shards. Returns the coins that left.
    pub fn commit(&self, tx: TxId, issued: &[CoinBody]) -> Vec<CoinBody> {
        let mut by_shard: BTreeMap<ShardIdx, Vec<CoinBody>> = BTreeMap::new();
        for body in issued {
            by_shard
                .entry(body.id.shard(self.n_shards()))
                .or_default()
                .push(*body);
        }
        let mut left = Vec::new();
        for shard in self.shards.iter() {
            let mine = by_shard.remove(&shard.idx()).unwrap_or_default();
            left.extend(shard.commit(tx, &mine));
        }
        left
    }

    /// Releases every reservation of `tx` in every shard.
    pub fn abort(&self, tx: TxId) {
        for shard in self.shards.iter() {
            shard.abort(tx);
        }
    }

    /// Which of `coins` are not unspent (for a signed error statement).
    pub fn not_unspent(&self, coins: &[CoinId]) -> Vec<CoinId> {
        coins
            .iter()
            .filter(|c| !self.shard_of(c).is_unspent(c))
            .copied()
            .collect()
    }

    /// The unspent body of `coin`, if any.
    pub fn get(&self, coin: &CoinId) -> Option<CoinBody> {
        self.shard_of(coin).get(coin)
    }

    /// What the shards know of `coin`.
    pub fn presence(&self, coin: &CoinId) -> CoinPresence {
        self.shard_of(coin).presence(coin)
    }

    /// [`ShardCore::retire_gone`] in every shard.
    pub fn retire_gone(&self) {
        for shard in self.shards.iter() {
            shard.retire_gone();
        }
    }

    /// [`ShardCore::forget_retired`] in every shard; returns how many.
    pub fn forget_retired(&self) -> usize {
        self.shards.iter().map(ShardCore::forget_retired).sum()
    }

    /// Coins the shards know as gone, over all shards.
    pub fn n_gone(&self) -> usize {
        self.shards.iter().map(ShardCore::n_gone).sum()
    }

    pub fn n_unspent(&self) -> usize {
        self.shards.iter().map(ShardCore::n_unspent).sum()
    }

    pub fn n_reserved(&self) -> usize {
        self.shards.iter().map(ShardCore::n_reserved).sum()
    }

    /// What every shard holds of `epoch`, summed.
    pub fn epoch_holdings(&self, epoch: ledger::KeyEpoch) -> EpochHoldings {
        self.shards
            .iter()
            .map(|s| s.epoch_holdings(epoch))
            .fold(EpochHoldings::default(), EpochHoldings::add)
    }

    /// Removes every unspent coin of `epoch` from every shard
    /// ([`ShardCore::forfeit_epoch`]) and returns what it removed.
    pub fn forfeit_epoch(&self, epoch: ledger::KeyEpoch) -> EpochHoldings {
        self.shards
            .iter()
            .map(|s| s.forfeit_epoch(epoch))
            .fold(EpochHoldings::default(), EpochHoldings::add)
    }

    /// Every unspent coin, by id (for checks).
    pub fn unspent_ids(&self) -> std::collections::BTreeSet<CoinId> {
        self.shards
            .iter()
            .flat_map(|s| s.unspent().into_iter().map(|c| c.id))
            .collect()
    }

    /// Applies a logged event to every shard (boot from the log).
    pub fn apply_logged(&self, event: &Event) {
        for shard in self.shards.iter() {
            shard.apply_logged(event);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use ledger::{Amount, IssueCause, KeyEpoch, Timestamp};

    use super::*;

    fn body_in(n_shards: u16, shard: u16, value: u64) -> CoinBody {
        loop {
            let id = CoinId::random();
            if id.shard(n_shards) == ShardIdx(shard) {
                return CoinBody {
                    id,
                    value: Amount::from_minor(value),
                    expiry: Timestamp(u64::MAX),
                    epoch: KeyEpoch(1),
                };
            }
        }
    }

    fn shard_with(n: usize) -> (ShardCore, Vec<CoinBody>) {
        let shard = ShardCore::new(ShardIdx(0), 1);
        let coins: Vec<CoinBody> = (0..n).map(|_| body_in(1, 0, 100)).collect();
        shard.commit(TxId::random(), &coins);
        (shard, coins)
    }

    #[test]
    fn reserve_commit_removes_coins_for_good() {
        let (shard, coins) = shard_with(2);
        let tx = TxId::random();
        let got = shard.reserve(tx, &[coins[0].id]).expect("unspent");
        assert_eq!(got, vec![coins[0]]);
        let fresh = body_in(1, 0, 100);
        assert_eq!(shard.commit(tx, &[fresh]), vec![coins[0]]);
        assert_eq!(shard.n_reserved(), 0);
        assert!(!shard.is_unspent(&coins[0].id));
        assert!(shard.is_unspent(&fresh.id));
        assert_eq!(
            shard.reserve(TxId::random(), &[coins[0].id]),
            Err(ReserveError::NotUnspent {
                coins: vec![coins[0].id]
            })
        );
    }

    #[test]
    fn a_coin_held_by_another_transaction_is_busy_and_nothing_is_reserved() {
        let (shard, coins) = shard_with(2);
        let (a, b) = (TxId::random(), TxId::random());
        shard.reserve(a, &[coins[0].id]).expect("free");
        assert_eq!(
            shard.reserve(b, &[coins[1].id, coins[0].id]),
            Err(ReserveError::Busy {
                coins: vec![coins[0].id]
            })
        );
        // All or nothing: coin 1 was not left reserved by the failed call.
        assert_eq!(shard.n_reserved(), 1);
        shard.abort(a);
        assert_eq!(shard.n_reserved(), 0);
        assert!(shard.reserve(b, &[coins[1].id, coins[0].id]).is_ok());
    }

    #[test]
    fn never_issued_and_duplicate_coins_are_refused() {
        let (shard, coins) = shard_with(1);
        let stranger = body_in(1, 0, 5).id;
        assert_eq!(
            shard.reserve(TxId::random(), &[coins[0].id, stranger]),
            Err(ReserveError::NotUnspent {
                coins: vec![stranger]
            })
        );
        assert_eq!(
            shard.reserve(TxId::random(), &[coins[0].id, coins[0].id]),
            Err(ReserveError::Duplicate { coin: coins[0].id })
        );
        assert_eq!(shard.n_reserved(), 0);
    }

    #[test]
    fn the_same_transaction_may_reserve_again() {
        let (shard, coins) = shard_with(1);
        let tx = TxId::random();
        shard.reserve(tx, &[coins[0].id]).expect("free");
        shard.reserve(tx, &[coins[0].id]).expect("already mine");
        assert_eq!(shard.n_reserved(), 1);
        assert_eq!(shard.commit(tx, &[]).len(), 1);
    }

    #[test]
    fn reissuing_a_spent_coin_id_is_refused_loudly() {
        let (shard, coins) = shard_with(1);
        let tx = TxId::random();
        shard.reserve(tx, &[coins[0].id]).expect("free");
        shard.commit(tx, &[]);
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            shard.commit(TxId::random(), &[coins[0]])
        }));
        assert!(again.is_err(), "a spent coin id came back to life");
        // The assertion fired under the shard's lock: the shard is trusted
        // no more, and every later use escalates to the issuer's fail-stop
        // instead of reading it.
        let after = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            shard.is_unspent(&coins[0].id)
        }));
        assert!(
            after.is_err(),
            "a shard poisoned by a broken invariant was read"
        );
    }

    #[test]
    fn gone_coins_are_kept_until_the_projection_has_them_then_forgotten() {
        let (shard, coins) = shard_with(3);
        let spend = |coin: &CoinBody| {
            let tx = TxId::random();
            shard.reserve(tx, &[coin.id]).expect("free");
            shard.commit(tx, &[]);
        };
        spend(&coins[0]);
        shard.retire_gone();
        // Spent while the projection catches up: not retired yet.
        spend(&coins[1]);
        assert_eq!(shard.presence(&coins[0].id), CoinPresence::Gone);
        assert_eq!(shard.presence(&coins[1].id), CoinPresence::Gone);
        // A catch-up that failed leaves the retired coins known; the next
        // retire keeps them.
        shard.retire_gone();
        assert_eq!(shard.n_gone(), 2);
        assert_eq!(shard.forget_retired(), 2);
        assert_eq!(shard.presence(&coins[0].id), CoinPresence::Unseen);
        assert_eq!(shard.presence(&coins[1].id), CoinPresence::Unseen);
        assert_eq!(shard.n_gone(), 0);
        // Forgotten or not, a spent coin stays spent.
        assert!(matches!(
            shard.reserve(TxId::random(), &[coins[0].id]),
            Err(ReserveError::NotUnspent { .. })
        ));
        spend(&coins[2]);
        assert_eq!(shard.forget_retired(), 0, "retired only by retire_gone");
        assert_eq!(shard.presence(&coins[2].id), CoinPresence::Gone);
    }

    #[test]
    fn commit_touched_spends_and_issues_across_shards_like_commit() {
        let set = ShardSet::new(4);
        let inputs = [body_in(4, 0, 10), body_in(4, 2, 10)];
        set.commit(TxId::random(), &inputs);
        let tx = TxId::random();
        let ids: Vec<CoinId> = inputs.iter().map(|c| c.id).collect();
        set.reserve(tx, &ids).expect("unspent");
        let fresh = [body_in(4, 3, 10), body_in(4, 0, 10)];
        let mut left = set.commit_touched(tx, &ids, &fresh);
        left.sort_by_key(|c| c.id);
        let mut expected = inputs.to_vec();
        expected.sort_by_key(|c| c.id);
        assert_eq!(left, expected);
        assert!(ids.iter().all(|id| set.get(id).is_none()));
        assert!(fresh.iter().all(|c| set.get(&c.id) == Some(*c)));
        assert_eq!(set.n_unspent(), 2);
        assert!((0..4).all(|i| set.shard(ShardIdx(i)).n_reserved() == 0));
    }

    #[test]
    fn multi_shard_reservation_aborts_everywhere_on_failure() {
        let set = ShardSet::new(4);
        let coins: Vec<CoinBody> = (0..4).map(|s| body_in(4, s, 10)).collect();
        set.commit(TxId::random(), &coins);
        let holder = TxId::random();
        set.reserve(holder, &[coins[3].id]).expect("free");
        let tx = TxId::random();
        let ids: Vec<CoinId> = coins.iter().map(|c| c.id).collect();
        assert_eq!(
            set.reserve(tx, &ids),
            Err(ReserveError::Busy {
                coins: vec![coins[3].id]
            })
        );
        assert_eq!(set.n_reserved(), 1, "shards 0-2 must have been released");
        set.abort(holder);
        let got = set.reserve(tx, &ids).expect("all free now");
        assert_eq!(got, coins);
        assert_eq!(set.commit(tx, &[]).len(), 4);
        assert_eq!(set.n_unspent(), 0);
        assert_eq!(set.not_unspent(&ids), ids);
    }

    #[test]
    fn replaying_the_log_rebuilds_the_unspent_set() {
        let set = ShardSet::new(3);
        let coins: Vec<CoinBody> = (0..3).map(|s| body_in(3, s, 10)).collect();
        set.apply_logged(&Event::CoinsIssued {
            coins: coins.clone(),
            holder: None,
            cause: IssueCause::Change,
        });
        set.apply_logged(&Event::CoinsSpent {
            coins: vec![coins[1]],
            cause: ledger::SpendCause::Change,
        });
        assert_eq!(set.n_unspent(), 2);
        assert!(set.get(&coins[1].id).is_none());
        assert_eq!(set.get(&coins[2].id), Some(coins[2]));
    }

    // Given coins of epochs 1 and 2 over three shards, forfeiting epoch 1
    // removes its unspent coins from every shard (a live run and a replay
    // of the log alike) and leaves epoch 2's; nothing is kept as gone.
    #[test]
    fn a_forfeited_epoch_leaves_every_shard() {
        let of_epoch_2 = |c: CoinBody| CoinBody {
            epoch: KeyEpoch(2),
            ..c
        };
        let coins: Vec<CoinBody> = (0..3).map(|s| body_in(3, s, 10 + u64::from(s))).collect();
        let later = of_epoch_2(body_in(3, 1, 50));
        let live = ShardSet::new(3);
        live.commit(TxId::random(), &[coins.clone(), vec![later]].concat());
        let gone = live.forfeit_epoch(KeyEpoch(1));
        assert_eq!((gone.n_unspent, gone.value_unspent_minor), (3, 33));
        assert_eq!(live.n_unspent(), 1);
        assert_eq!(live.get(&later.id), Some(later));
        assert_eq!(live.n_gone(), 0);
        let replayed = ShardSet::new(3);
        replayed.apply_logged(&Event::CoinsIssued {
            coins: [coins, vec![later]].concat(),
            holder: None,
            cause: IssueCause::Change,
        });
        replayed.apply_logged(&Event::FloatForfeited {
            epoch: KeyEpoch(1),
            n_coins: 3,
            value: Amount::from_minor(33),
            digest: ledger::Hash32([0; 32]),
        });
        assert_eq!(replayed.unspent_ids(), live.unspent_ids());
    }

    /// Two payments race for the same coin from two threads, 1,000 times:
    /// exactly one wins every time, and nothing stays reserved.
    #[test]
    fn two_racing_payments_for_one_coin_exactly_one_wins_in_1000_runs() {
        use std::sync::Barrier;
        let set = ShardSet::new(2);
        for _ in 0..1000 {
            let coin = body_in(2, 1, 100);
            set.commit(TxId::random(), &[coin]);
            let barrier = Barrier::new(2);
            let wins: usize = std::thread::scope(|s| {
                let racers: Vec<_> = (0..2)
                    .map(|_| {
                        s.spawn(|| {
                            let tx = TxId::random();
                            barrier.wait();
                            match set.reserve(tx, &[coin.id]) {
                                Ok(_) => {
                                    set.commit(tx, &[]);
                                    1
                                }
                                Err(
                                    ReserveError::Busy { .. } | ReserveError::NotUnspent { .. },
                                ) => {
                                    set.abort(tx);
                                    0
                                }
                                Err(other) => panic!("unexpected refusal: {other}"),
                            }
                        })
                    })
                    .collect();
                racers.into_iter().map(|r| r.join().expect("racer")).sum()
            });
            assert_eq!(wins, 1);
            assert_eq!(set.n_reserved(), 0);
            assert!(set.get(&coin.id).is_none());
        }
        assert_eq!(set.n_unspent(), 0);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use ledger::{Amount, KeyEpoch, Timestamp};

    use super::*;

    fn coin(byte: u8) -> CoinBody {
        CoinBody {
            id: CoinId::from_bytes([byte; 16]),
            value: Amount::from_minor(1),
            expiry: Timestamp(u64::MAX),
            epoch: KeyEpoch(1),
        }
    }

    /// Three transactions contend for overlapping pairs of three coins
    /// ({a,b}, {b,c}, {c,a}): in every interleaving no coin is committed
    /// twice and no reservation outlives its transaction.
    #[test]
    fn three_threads_over_overlapping_coins_never_commit_a_coin_twice() {
        loom::model(|| {
            let shard = Arc::new(ShardCore::new(ShardIdx(0), 1));
            let coins = [coin(1), coin(2), coin(3)];
            shard.commit(TxId::from_bytes([0; 16]), &coins);
            let pairs = [(0usize, 1usize), (1, 2), (2, 0)];
            let handles: Vec<_> = pairs
                .iter()
                .enumerate()
                .map(|(t, &(i, j))| {
                    let shard = shard.clone();
                    let ids = [coins[i].id, coins[j].id];
                    loom::thread::spawn(move || {
                        let tx = TxId::from_bytes([t as u8 + 1; 16]);
                        // A refused reservation holds nothing (all or nothing),
                        // so the loser has nothing to abort.
                        shard.reserve(tx, &ids).ok()?;
                        let left = shard.commit(tx, &[]);
                        assert_eq!(left.len(), 2);
                        Some([i, j])
                    })
                })
                .collect();
            let mut committed = [0usize; 3];
            for h in handles {
                if let Some(won) = h.join().expect("thread") {
                    for k in won {
                        committed[k] += 1;
                    }
                }
            }
            for (k, n) in committed.iter().enumerate() {
                assert!(*n <= 1, "coin {k} committed {n} times");
                assert_eq!(shard.is_unspent(&coins[k].id), *n == 0);
            }
            // Any two pairs overlap, so exactly one transaction wins: the
            // first to reserve.
            assert_eq!(committed.iter().sum::<usize>(), 2);
            assert_eq!(
                shard.n_reserved(),
                0,
                "a reservation outlived its transaction"
            );
        });
    }

    /// Two transactions commit, a third reserves and then aborts (as after a
    /// failed durable write), all over overlapping coins: the aborted one
    /// leaves nothing reserved and never takes a coin out.
    #[test]
    fn an_aborting_transaction_releases_everything_under_contention() {
        loom::model(|| {
            let shard = Arc::new(ShardCore::new(ShardIdx(0), 1));
            let coins = [coin(1), coin(2), coin(3)];
            shard.commit(TxId::from_bytes([0; 16]), &coins);
            let plans = [((0usize, 1usize), true), ((1, 2), true), ((2, 0), false)];
            let handles: Vec<_> = plans
                .iter()
                .enumerate()
                .map(|(t, &((i, j), commits))| {
                    let shard = shard.clone();
                    let ids = [coins[i].id, coins[j].id];
                    loom::thread::spawn(move || {
                        let tx = TxId::from_bytes([t as u8 + 1; 16]);
                        shard.reserve(tx, &ids).ok()?;
                        if commits {
                            assert_eq!(shard.commit(tx, &[]).len(), 2);
                            Some([i, j])
                        } else {
                            shard.abort(tx);
                            None
                        }
                    })
                })
                .collect();
            let mut committed = [0usize; 3];
            for h in handles {
                if let Some(won) = h.join().expect("thread") {
                    for k in won {
                        committed[k] += 1;
                    }
                }
            }
            for (k, n) in committed.iter().enumerate() {
                assert!(*n <= 1, "coin {k} committed {n} times");
                assert_eq!(shard.is_unspent(&coins[k].id), *n == 0);
            }
            assert_eq!(
                shard.n_reserved(),
                0,
                "a reservation outlived its transaction"
            );
        });
    }
}

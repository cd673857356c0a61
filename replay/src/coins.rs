//! [`CoinTable`]: every coin the replay has seen issued and not yet erased
//! or forfeited,
//! in one hash table keyed by coin id, each with a spent flag. A spend is
//! one probe that flips the flag and an issuance one probe that inserts;
//! two tables (unspent, and spent-until-erased) cost two cache-missing
//! probes per coin on a log of millions of coins.

// foldhash's `RandomState` seeds every table at random, as std's SipHash
// does, so ids an issuer chose cannot be aimed at one probe sequence; it is
// cheaper per probe, though this table's cost is its cache misses.
use foldhash::HashMap;
use ledger::{Amount, CoinBody, CoinId, KeyEpoch, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What the replay keeps of one coin: its body (less the id, the key) and
/// whether it was spent or revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoinEntry {
    pub value: Amount,
    pub expiry: Timestamp,
    pub epoch: KeyEpoch,
    /// Spent or revoked: kept until its epoch's erasure, so a second spend
    /// is told from a coin never issued, and an erasure can be checked.
    pub spent: bool,
}

impl CoinEntry {
    fn body(&self, id: CoinId) -> CoinBody {
        CoinBody {
            id,
            value: self.value,
            expiry: self.expiry,
            epoch: self.epoch,
        }
    }
}

/// What issuing a coin found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Issued {
    /// New: now unspent.
    Fresh,
    /// The id is already unspent (nothing changed).
    AlreadyUnspent,
    /// The id was already issued and spent (nothing changed).
    AlreadySpent,
}

/// Why a coin could not be spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpendRefusal {
    /// Never issued, or issued and erased with its epoch.
    NeverIssued,
    /// Already spent or revoked.
    AlreadySpent,
    /// Unspent, but issued with this other body.
    Altered(CoinBody),
}

/// The coins issued and not erased; see the module docs. Serialized as the
/// map from id to entry (the unspent count is recomputed when read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoinTable {
    coins: HashMap<CoinId, CoinEntry>,
    n_unspent: usize,
}

impl CoinTable {
    /// The coin `id` if it is issued and unspent.
    pub fn unspent(&self, id: &CoinId) -> Option<CoinBody> {
        self.coins.get(id).filter(|e| !e.spent).map(|e| e.body(*id))
    }

    /// Whether `id` was issued and then spent or revoked (and not erased).
    pub fn is_spent(&self, id: &CoinId) -> bool {
        self.coins.get(id).is_some_and(|e| e.spent)
    }

    /// Number of unspent coins.
    pub fn n_unspent(&self) -> usize {
        self.n_unspent
    }

    /// The unspent coins, in no particular order.
    pub fn unspent_coins(&self) -> impl Iterator<Item = CoinBody> + '_ {
        self.coins
            .iter()
            .filter(|(_, e)| !e.spent)
            .map(|(id, e)| e.body(*id))
    }

    /// The spent and revoked coins of `epoch` not yet erased.
    pub fn spent_of_epoch(&self, epoch: KeyEpoch) -> impl Iterator<Item = (CoinId, Amount)> + '_ {
        self.coins
            .iter()
            .filter(move |(_, e)| e.spent && e.epoch == epoch)
            .map(|(id, e)| (*id, e.value))
    }

    /// The unspent coins of `epoch`: what an erasure of it forfeits.
    pub fn unspent_of_epoch(&self, epoch: KeyEpoch) -> impl Iterator<Item = (CoinId, Amount)> + '_ {
        self.coins
            .iter()
            .filter(move |(_, e)| !e.spent && e.epoch == epoch)
            .map(|(id, e)| (*id, e.value))
    }

    /// Whether `id` is in the table at all (issued and not erased).
    pub fn contains(&self, id: &CoinId) -> bool {
        self.coins.contains_key(id)
    }

    /// Records `coin` as issued and unspent unless its id is already in
    /// the table: one probe.
    pub(crate) fn issue(&mut self, coin: &CoinBody) -> Issued {
        match self.coins.entry(coin.id) {
            std::collections::hash_map::Entry::Occupied(e) if e.get().spent => Issued::AlreadySpent,
            std::collections::hash_map::Entry::Occupied(_) => Issued::AlreadyUnspent,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(CoinEntry {
                    value: coin.value,
                    expiry: coin.expiry,
                    epoch: coin.epoch,
                    spent: false,
                });
                self.n_unspent += 1;
                Issued::Fresh
            }
        }
    }

    /// Marks `coin` spent if it is unspent with exactly this body: one
    /// probe of the table.
    pub(crate) fn spend(&mut self, coin: &CoinBody) -> Result<(), SpendRefusal> {
        let Some(entry) = self.coins.get_mut(&coin.id) else {
            return Err(SpendRefusal::NeverIssued);
        };
        if entry.spent {
            return Err(SpendRefusal::AlreadySpent);
        }
        let issued = entry.body(coin.id);
        if issued != *coin {
            return Err(SpendRefusal::Altered(issued));
        }
        entry.spent = true;
        self.n_unspent -= 1;
        Ok(())
    }

    /// Forgets erased or forfeited coins.
    pub(crate) fn forget(&mut self, ids: &[CoinId]) {
        for id in ids {
            if let Some(e) = self.coins.remove(id)
                && !e.spent
            {
                self.n_unspent -= 1;
            }
        }
    }
}

impl Serialize for CoinTable {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.coins.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CoinTable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let coins = HashMap::<CoinId, CoinEntry>::deserialize(deserializer)?;
        let n_unspent = coins.values().filter(|e| !e.spent).count();
        Ok(CoinTable { coins, n_unspent })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coin(n: u8, minor: u64) -> CoinBody {
        CoinBody {
            id: CoinId::from_bytes([n; 16]),
            value: Amount::from_minor(minor),
            expiry: Timestamp(1000),
            epoch: KeyEpoch(1),
        }
    }

    #[test]
    fn a_coin_is_issued_once_and_spent_once_with_its_own_body() {
        let mut table = CoinTable::default();
        let c = coin(1, 250);
        assert_eq!(table.issue(&c), Issued::Fresh);
        assert_eq!(table.issue(&c), Issued::AlreadyUnspent);
        assert_eq!(table.n_unspent(), 1);
        let altered = CoinBody {
            value: Amount::from_minor(999),
            ..c
        };
        assert_eq!(table.spend(&altered), Err(SpendRefusal::Altered(c)));
        assert_eq!(table.spend(&coin(2, 250)), Err(SpendRefusal::NeverIssued));
        assert_eq!(table.spend(&c), Ok(()));
        assert_eq!(table.spend(&c), Err(SpendRefusal::AlreadySpent));
        assert_eq!(table.issue(&c), Issued::AlreadySpent);
        assert_eq!(table.n_unspent(), 0);
        assert!(table.is_spent(&c.id));
        assert_eq!(
            table.spent_of_epoch(KeyEpoch(1)).collect::<Vec<_>>(),
            vec![(c.id, c.value)]
        );
        table.forget(&[c.id]);
        assert!(!table.contains(&c.id));
        assert_eq!(table.spend(&c), Err(SpendRefusal::NeverIssued));
    }

    #[test]
    fn the_unspent_count_survives_serialization() {
        let mut table = CoinTable::default();
        for n in 0..5 {
            table.issue(&coin(n, 100));
        }
        table.spend(&coin(3, 100)).expect("unspent");
        let bytes = postcard::to_allocvec(&table).expect("encode");
        let back: CoinTable = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back, table);
        assert_eq!(back.n_unspent(), 4);
        assert_eq!(back.unspent(&coin(3, 100).id), None);
        assert_eq!(back.unspent(&coin(4, 100).id), Some(coin(4, 100)));
    }
}

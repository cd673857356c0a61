//! The reference model of the model-based test: what the issuer should say
//! of every coin and every balance, kept in a few maps with arithmetic a
//! reader can check by eye. It knows nothing of cryptography, shards, logs or
//! restarts; it learns coin ids from the issuer's answers (ids are random)
//! and decides everything else itself: who may do what, which coins are
//! expired, what each purchase, payment, refund and card transfer must do to
//! coins, bank accounts, the merchant's aggregate, card balances, the card
//! float the issuer owes the card system, and money in and out.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use ledger::CoinId;
use protocol::wire::RejectReason;

/// The simulated participants, by index.
pub const N_HOLDERS: usize = 3;
pub const ALICE: usize = 0;
pub const BOB: usize = 1;
pub const SHOP: usize = 2;
pub const NAMES: [&str; N_HOLDERS] = ["alice", "bob", "shop"];
/// What each holder has in the bank when the run starts.
pub const FUNDS_MINOR: [u64; N_HOLDERS] = [5_000, 800, 1_000];

/// Stored-value cards in the run (through one load/unload server).
pub const N_CARDS: usize = 2;

/// The issuer's schedule in the test harness (`util::Harness::config`).
pub const COIN_LIFETIME_SECS: u64 = 1000;
pub const GRACE_SECS: u64 = 500;
pub const EPOCH_PERIOD_SECS: u64 = 400;

/// Which roles each holder is enrolled for (fixed for the whole run).
#[derive(Debug, Clone, Copy)]
pub struct Roles {
    pub purchaser: bool,
    pub redeemer: bool,
    pub merchant: bool,
}

pub const ROLES: [Roles; N_HOLDERS] = [
    // alice buys and redeems
    Roles {
        purchaser: true,
        redeemer: true,
        merchant: false,
    },
    // bob only buys: his redemptions and aggregates are refused
    Roles {
        purchaser: true,
        redeemer: false,
        merchant: false,
    },
    // the shop buys and is a merchant (aggregate balance, redeem)
    Roles {
        purchaser: true,
        redeemer: false,
        merchant: true,
    },
];

/// One unspent coin as the model knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelCoin {
    pub value: u64,
    pub expires_at: u64,
    /// Issued to this holder by name (non-anonymous purchase or refund), so
    /// a refund revokes it.
    pub registered: bool,
}

/// What a validation turns its input coins into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payout {
    /// New coins to the payee.
    Coins,
    /// A bank credit to the payee's account.
    Redeem,
    /// The shop's aggregate balance.
    Aggregate,
}

/// Which validation: ordinary payments (and change, redeem) refuse expired
/// coins; refresh takes them until the grace period ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Payment,
    Refresh,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub now: u64,
    /// When the current key epoch opened (`None` before the first).
    epoch_opened_at: Option<u64>,
    /// Each holder's unspent coins.
    pub wallets: [BTreeMap<CoinId, ModelCoin>; N_HOLDERS],
    /// Coins that are gone (spent or revoked).
    pub gone: BTreeSet<CoinId>,
    pub bank_minor: [u64; N_HOLDERS],
    /// The shop's aggregate balance.
    pub aggregate_minor: u64,
    /// Real money the issuer took (settled debits) and paid out (credits).
    pub money_in_minor: u64,
    pub money_out_minor: u64,
    /// What each card holds.
    pub card_minor: [u64; N_CARDS],
    /// What the issuer owes the card system: loaded minus unloaded.
    pub card_float_minor: i128,
}

impl Model {
    pub fn new(now: u64) -> Model {
        let mut model = Model {
            now,
            epoch_opened_at: None,
            wallets: Default::default(),
            gone: BTreeSet::new(),
            bank_minor: FUNDS_MINOR,
            aggregate_minor: 0,
            money_in_minor: 0,
            money_out_minor: 0,
            card_minor: [0; N_CARDS],
            card_float_minor: 0,
        };
        model.rotate_epoch_if_due();
        model
    }

    /// A new epoch opens when none has or the current one is a period old.
    pub fn rotate_epoch_if_due(&mut self) {
        match self.epoch_opened_at {
            Some(at) if self.now < at + EPOCH_PERIOD_SECS => {}
            _ => self.epoch_opened_at = Some(self.now),
        }
    }

    pub fn advance(&mut self, secs: u64) {
        self.now += secs;
    }

    /// The expiry of coins minted now.
    pub fn new_coin_expiry(&self) -> u64 {
        self.epoch_opened_at.unwrap_or(self.now) + COIN_LIFETIME_SECS
    }

    pub fn outstanding_minor(&self) -> u64 {
        self.wallets
            .iter()
            .flat_map(|w| w.values())
            .map(|c| c.value)
            .sum()
    }

    pub fn n_unspent(&self) -> usize {
        self.wallets.iter().map(BTreeMap::len).sum()
    }

    /// A purchase of `amount` by `who`: issued, or refused and why.
    pub fn purchase_outcome(&self, who: usize, amount: u64) -> Result<(), RejectReason> {
        if !ROLES[who].purchaser {
            return Err(RejectReason::NotEnrolled);
        }
        if self.bank_minor[who] < amount {
            return Err(RejectReason::BankRejected(
                ledger::BankRejection::InsufficientFunds,
            ));
        }
        Ok(())
    }

    /// A settled purchase: the bank pays the issuer, the coins are the buyer's.
    pub fn apply_purchase(&mut self, who: usize, coins: &[(CoinId, u64)], anonymous: bool) {
        let amount: u64 = coins.iter().map(|(_, v)| v).sum();
        self.bank_minor[who] -= amount;
        self.money_in_minor += amount;
        let expires_at = self.new_coin_expiry();
        for (id, value) in coins {
            self.wallets[who].insert(
                *id,
                ModelCoin {
                    value: *value,
                    expires_at,
                    registered: !anonymous,
                },
            );
        }
    }

    /// A validation of `coins` (all in `payer`'s wallet) for `payee`.
    pub fn validation_outcome(
        &self,
        kind: Kind,
        payer: usize,
        payee: usize,
        coins: &[CoinId],
        payout: Payout,
    ) -> Result<(), RejectReason> {
        let roles = ROLES[payee];
        let enrolled = match payout {
            Payout::Coins => true,
            Payout::Redeem => roles.redeemer || roles.merchant,
            Payout::Aggregate => roles.merchant,
        };
        if !enrolled {
            return Err(RejectReason::NotEnrolled);
        }
        if coins.iter().any(|id| self.gone.contains(id)) {
            return Err(RejectReason::AlreadySpent);
        }
        let refusable = |c: &ModelCoin| {
            let expired = self.now >= c.expires_at;
            let in_grace = self.now < c.expires_at + GRACE_SECS;
            expired && !(kind == Kind::Refresh && in_grace)
        };
        if coins
            .iter()
            .filter_map(|id| self.wallets[payer].get(id))
            .any(refusable)
        {
            return Err(RejectReason::Expired);
        }
        Ok(())
    }

    /// A committed validation: the inputs are gone, the payout happens.
    /// `new_coins` are the payee's new coins for [`Payout::Coins`].
    pub fn apply_validation(
        &mut self,
        payer: usize,
        payee: usize,
        coins: &[CoinId],
        payout: Payout,
        new_coins: &[(CoinId, u64)],
    ) {
        // Change and refresh (a payment to oneself) of coins all
        // registered to the holder: the new coins are registered too (a
        // refund brings them back); an anonymous input keeps them not.
        let registered = payer == payee
            && coins
                .iter()
                .all(|id| self.wallets[payer].get(id).is_some_and(|c| c.registered));
        let mut total = 0;
        for id in coins {
            let coin = self.wallets[payer]
                .remove(id)
                .expect("the model pays only coins the payer holds");
            total += coin.value;
            self.gone.insert(*id);
        }
        match payout {
            Payout::Coins => {
                let expires_at = self.new_coin_expiry();
                for (id, value) in new_coins {
                    self.wallets[payee].insert(
                        *id,
                        ModelCoin {
                            value: *value,
                            expires_at,
                            registered,
                        },
                    );
                }
            }
            Payout::Redeem => {
                self.bank_minor[payee] += total;
                self.money_out_minor += total;
            }
            Payout::Aggregate => self.aggregate_minor += total,
        }
    }

    /// The shop redeems `amount` of its aggregate: refused if it exceeds it.
    pub fn redeem_aggregate_outcome(&self, amount: u64) -> bool {
        amount <= self.aggregate_minor
    }

    pub fn apply_redeem_aggregate(&mut self, amount: u64) {
        self.aggregate_minor -= amount;
        self.bank_minor[SHOP] += amount;
        self.money_out_minor += amount;
    }

    /// What a refund of `who` revokes: every registered coin it still holds,
    /// but for those past their refresh grace (worthless to it already).
    pub fn refund_revokes(&self, who: usize) -> BTreeSet<CoinId> {
        self.wallets[who]
            .iter()
            .filter(|(_, c)| c.registered && self.now < c.expires_at + GRACE_SECS)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The value of `coins` in `who`'s wallet, sorted.
    pub fn values_of(&self, who: usize, coins: &BTreeSet<CoinId>) -> Vec<u64> {
        let mut values: Vec<u64> = coins
            .iter()
            .filter_map(|id| self.wallets[who].get(id))
            .map(|c| c.value)
            .collect();
        values.sort_unstable();
        values
    }

    /// A refund: the revoked coins are gone, the replacements are fresh and
    /// registered to the holder.
    pub fn apply_refund(&mut self, who: usize, revoked: &BTreeSet<CoinId>, new: &[(CoinId, u64)]) {
        for id in revoked {
            self.wallets[who].remove(id);
            self.gone.insert(*id);
        }
        let expires_at = self.new_coin_expiry();
        for (id, value) in new {
            self.wallets[who].insert(
                *id,
                ModelCoin {
                    value: *value,
                    expires_at,
                    registered: true,
                },
            );
        }
    }

    /// Coins `who` may load onto a card: unspent and not expired.
    pub fn loadable(&self, who: usize, id: &CoinId) -> bool {
        self.wallets[who]
            .get(id)
            .is_some_and(|c| self.now < c.expires_at)
    }

    /// A card load paid with `coins` of `who`: the coins are gone, the card
    /// and the float grow by their value.
    pub fn apply_card_load(&mut self, who: usize, card: usize, coins: &[CoinId]) {
        for id in coins {
            let coin = self.wallets[who]
                .remove(id)
                .expect("the model loads only coins the holder has");
            self.gone.insert(*id);
            self.card_minor[card] += coin.value;
            self.card_float_minor += i128::from(coin.value);
        }
    }

    /// A card unload of `amount` into fresh coins for `who`.
    pub fn apply_card_unload(&mut self, card: usize, who: usize, new_coins: &[(CoinId, u64)]) {
        let amount: u64 = new_coins.iter().map(|(_, v)| v).sum();
        self.card_minor[card] -= amount;
        self.card_float_minor -= i128::from(amount);
        let expires_at = self.new_coin_expiry();
        for (id, value) in new_coins {
            self.wallets[who].insert(
                *id,
                ModelCoin {
                    value: *value,
                    expires_at,
                    registered: false,
                },
            );
        }
    }

    /// A card-to-card transfer through the issuer: an unload and a load of
    /// the same amount, so the float does not move.
    pub fn apply_card_to_card(&mut self, from: usize, to: usize, amount: u64) {
        self.card_minor[from] -= amount;
        self.card_minor[to] += amount;
    }
}

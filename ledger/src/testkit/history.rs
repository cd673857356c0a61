//! The one generator of valid histories for tests: [`History`], a model of
//! the issuer's books that emits only transactions a correct issuer would
//! append (coins spent only if issued, unspent and of an epoch not erased;
//! every batch balances; times never go back), and records them as
//! [`Batch`]es stamped with its own clock.
//!
//! Two ways to drive it: one named operation at a time (`purchase`,
//! `pay_refresh`, `refund`, `rotate_epoch`, ...: the auditor's scenarios),
//! or a list of operation codes ([`History::step`], [`History::run`],
//! [`busy_ops`]) that proptest can generate and shrink (the projections'
//! properties). Identities and accounts are sealed reversibly
//! ([`seal`] / [`unseal`]), so a test unsealer can open them.

use std::collections::BTreeMap;

use crate::coin::CoinBody;
use crate::event::{
    BankRejection, Event, IssueCause, PaymentOption, PublicKeyDer, SignatureBytes, SpendCause,
    erasure_digest,
};
use crate::ids::{
    BalanceId, CardId, CoinId, KeyEpoch, LusId, ParticipantId, PurchaseId, Role, SealedBankAccount,
    SealedIdentity, Timestamp, TxId,
};
use crate::money::{Amount, CoinSpec, Denomination};
use crate::store::{Batch, EventStore, Seq};

/// When a history starts: a little before the first epoch's coins expire
/// ([`History::with_a_merchant`]).
pub const HISTORY_START: Timestamp = Timestamp(1_699_000_000);
/// Seconds between two batches of a history.
pub const HISTORY_STEP_SECS: u64 = 60;
/// Seconds between an epoch's coins' expiry and the end of its refresh
/// grace, for epochs opened by [`History::with_a_merchant`] and
/// [`History::rotate_epoch`].
pub const GRACE_SECS: u64 = 100_000;
/// Seconds between the expiries of two epochs [`History::rotate_epoch`] opens.
pub const EPOCH_SECS: u64 = 1_000_000;

pub const PARTICIPANTS: [&str; 3] = ["alice", "bob", "carol"];
pub const ACCOUNTS: [&str; 3] = ["111-0001", "111-0002", "111-0003"];

const SEAL_MAGIC: &[u8] = b"test-seal";
const SEAL_MASK: u8 = 0x5a;

/// Seals reversibly with a nonce byte, so that one participant's sealed
/// identity differs between events (as real ciphertexts do).
pub fn seal(clear: &str, nonce: u8) -> Vec<u8> {
    let mut out = SEAL_MAGIC.to_vec();
    out.push(nonce);
    out.extend(clear.bytes().map(|b| b ^ SEAL_MASK ^ nonce));
    out
}

/// Opens what [`seal`] sealed; `None` for anything else.
pub fn unseal(bytes: &[u8]) -> Option<Vec<u8>> {
    let rest = bytes.strip_prefix(SEAL_MAGIC)?;
    let (nonce, body) = rest.split_first()?;
    Some(body.iter().map(|b| b ^ SEAL_MASK ^ nonce).collect())
}

#[allow(clippy::expect_used)]
pub fn seal_identity(participant: &str, nonce: u8) -> SealedIdentity {
    SealedIdentity::from_sealed_bytes(seal(participant, nonce)).expect("a short sealed field")
}

#[allow(clippy::expect_used)]
pub fn seal_account(account: &str, nonce: u8) -> SealedBankAccount {
    SealedBankAccount::from_sealed_bytes(seal(account, nonce)).expect("a short sealed field")
}

/// One of [`PARTICIPANTS`].
#[allow(clippy::expect_used)]
pub fn participant(i: usize) -> ParticipantId {
    ParticipantId::new(PARTICIPANTS[i % PARTICIPANTS.len()]).expect("a valid id")
}

/// A coin id for test number `n`: distinct for each `n`, not sorted by it.
pub fn coin_id(n: u64) -> CoinId {
    CoinId::from_bytes(*TxId::derive("test/coin", &[&n.to_le_bytes()]).as_bytes())
}

/// Operation codes that make a busy history for [`History::run`]: an epoch
/// and two merchants first, then `n` pseudo-random operations.
pub fn busy_ops(n: u32) -> Vec<u32> {
    let mut ops = vec![0, 13 + (1 << 8), 13 + (2 << 8)];
    let mut x = 0x9e37_79b9u32;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        ops.push(x);
    }
    ops
}

/// A key epoch as the history knows it.
#[derive(Debug, Clone)]
pub struct EpochModel {
    pub epoch: KeyEpoch,
    pub expire: Timestamp,
    pub grace: Timestamp,
    pub closed: bool,
    pub erased: bool,
}

/// A model of the issuer's books and the batches it appended.
#[derive(Debug)]
pub struct History {
    /// Every batch, in log order.
    pub batches: Vec<Batch>,
    /// The issuer's clock: the time of the next batch.
    pub now: Timestamp,
    pub epochs: Vec<EpochModel>,
    /// Unspent coins, oldest first, with the participant they were issued
    /// to, if any.
    pub unspent: Vec<(CoinBody, Option<usize>)>,
    /// Spent or revoked coins not yet erased, per epoch, in the order
    /// they left.
    pub retired: BTreeMap<KeyEpoch, Vec<CoinBody>>,
    /// Purchases requested, not yet settled or refused: id, amount,
    /// purchaser, anonymous.
    pub pending: Vec<(PurchaseId, Amount, usize, bool)>,
    /// Merchants' aggregate balances and what each holds, in minor units.
    pub balances: Vec<(BalanceId, u64)>,
    /// Each card server's float: loads minus unloads since its last clearing.
    pub float: BTreeMap<u32, i128>,
    pub erased_coins: Vec<CoinId>,
    /// The card server and card of the named card operations.
    pub lus: LusId,
    pub card: CardId,
    next_id: u64,
    nonce: u8,
    next_nt: u32,
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}

impl History {
    /// An issuer with nothing yet: no epoch, no participant.
    pub fn new() -> History {
        History {
            batches: Vec::new(),
            now: HISTORY_START,
            epochs: Vec::new(),
            unspent: Vec::new(),
            retired: BTreeMap::new(),
            pending: Vec::new(),
            balances: Vec::new(),
            float: BTreeMap::new(),
            erased_coins: Vec::new(),
            lus: LusId(7),
            card: CardId::from_bytes([5; 8]),
            next_id: 0,
            nonce: 0,
            next_nt: 1,
        }
    }

    /// An issuer with epoch 1 open (its coins expire 1,000,000 s after the
    /// start) and a registered merchant with an aggregate balance.
    pub fn with_a_merchant() -> History {
        let mut h = History::new();
        let expire = Timestamp(HISTORY_START.0 + EPOCH_SECS);
        h.open_epoch(expire, Timestamp(expire.0 + GRACE_SECS));
        let balance = BalanceId::from_bytes(h.id16("balance"));
        h.balances.push((balance, 0));
        let (n1, n2) = (h.nonce(), h.nonce());
        h.push(vec![
            Event::Registered {
                participant: seal_identity(PARTICIPANTS[0], n1),
                public_key: PublicKeyDer(vec![1; 32]),
                cert_expiry: expire,
            },
            Event::Enrolled {
                participant: seal_identity(PARTICIPANTS[0], n2),
                role: Role::Merchant,
                balance: Some(balance),
            },
        ]);
        h
    }

    fn fresh(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn id16(&mut self, kind: &str) -> [u8; 16] {
        let n = self.fresh();
        *TxId::derive(&format!("test/{kind}"), &[&n.to_le_bytes()]).as_bytes()
    }

    fn nonce(&mut self) -> u8 {
        self.nonce = self.nonce.wrapping_add(1);
        self.nonce
    }

    /// Appends a batch at the history's clock, then moves the clock on;
    /// returns the batch's index in [`History::batches`].
    pub fn push(&mut self, events: Vec<Event>) -> usize {
        let tx = TxId::from_bytes(self.id16("tx"));
        self.batches.push(Batch {
            tx,
            at: self.now,
            events,
        });
        self.now = self.now.plus_secs(HISTORY_STEP_SECS);
        self.batches.len() - 1
    }

    /// Moves the issuer's clock forward to `t` (never back).
    pub fn advance_to(&mut self, t: Timestamp) {
        self.now = self.now.max(t);
    }

    /// The epoch new coins are minted under: the newest one not closed.
    pub fn current_epoch(&self) -> Option<&EpochModel> {
        self.epochs.iter().rev().find(|e| !e.closed)
    }

    /// When the current epoch's coins expire.
    #[allow(clippy::expect_used)]
    pub fn expiry(&self) -> Timestamp {
        self.current_epoch().expect("an open epoch").expire
    }

    /// When the current epoch's refresh grace ends.
    #[allow(clippy::expect_used)]
    pub fn grace_end(&self) -> Timestamp {
        self.current_epoch().expect("an open epoch").grace
    }

    /// The first merchant's aggregate balance.
    #[allow(clippy::expect_used)]
    pub fn merchant_balance(&self) -> BalanceId {
        self.balances.first().expect("a merchant").0
    }

    /// The coins users hold, oldest first.
    pub fn wallet(&self) -> Vec<CoinBody> {
        self.unspent.iter().map(|(c, _)| *c).collect()
    }

    /// The coins spent or revoked and not yet erased, epoch by epoch.
    pub fn spent(&self) -> Vec<CoinBody> {
        self.retired.values().flatten().copied().collect()
    }

    fn grace_of(&self, epoch: KeyEpoch) -> Timestamp {
        self.epochs
            .iter()
            .find(|e| e.epoch == epoch)
            .map_or(Timestamp(0), |e| e.grace)
    }

    fn erased(&self, epoch: KeyEpoch) -> bool {
        self.epochs.iter().any(|e| e.epoch == epoch && e.erased)
    }

    fn open_epoch(&mut self, expire: Timestamp, grace: Timestamp) -> usize {
        let epoch = KeyEpoch(self.epochs.len() as u32 + 1);
        self.epochs.push(EpochModel {
            epoch,
            expire,
            grace,
            closed: false,
            erased: false,
        });
        self.push(vec![Event::EpochOpened {
            epoch,
            coins_expire_at: expire,
            grace_ends_at: grace,
        }])
    }

    /// A coin of the current epoch, not yet held by anyone.
    #[allow(clippy::expect_used)]
    pub fn coin(&mut self, minor: u64) -> CoinBody {
        let epoch = self.current_epoch().expect("an open epoch").clone();
        let n = self.fresh();
        CoinBody {
            id: coin_id(n),
            value: Amount::from_minor(minor),
            expiry: epoch.expire,
            epoch: epoch.epoch,
        }
    }

    /// Coins of the given values, now held (by `holder`, if named).
    fn issue(&mut self, values: &[u64], holder: Option<usize>) -> Vec<CoinBody> {
        let coins: Vec<CoinBody> = values.iter().map(|&v| self.coin(v)).collect();
        self.unspent.extend(coins.iter().map(|c| (*c, holder)));
        coins
    }

    /// `total` split into at most `parts` values.
    fn split(total: u64, parts: u64) -> Vec<u64> {
        let parts = parts.clamp(1, total.max(1));
        (0..parts)
            .map(|i| {
                if i + 1 == parts {
                    total - (parts - 1) * (total / parts)
                } else {
                    total / parts
                }
            })
            .collect()
    }

    fn retire(&mut self, coins: &[CoinBody]) {
        for c in coins {
            self.retired.entry(c.epoch).or_default().push(*c);
        }
    }

    /// Removes the unspent coins at `indices` (ascending) and retires them.
    fn take_at(&mut self, mut indices: Vec<usize>) -> Vec<CoinBody> {
        indices.sort_unstable();
        let mut out = Vec::with_capacity(indices.len());
        for (k, i) in indices.into_iter().enumerate() {
            out.push(self.unspent.remove(i - k).0);
        }
        self.retire(&out);
        out
    }

    /// Takes `n` coins, oldest first among those not yet expired (a holder
    /// spends expired coins only by refreshing them), then the oldest
    /// expired ones.
    pub fn take(&mut self, n: usize) -> Vec<CoinBody> {
        let now = self.now;
        let mut picked: Vec<usize> = (0..self.unspent.len())
            .filter(|&i| !self.unspent[i].0.is_expired_at(now))
            .take(n)
            .collect();
        let more = n - picked.len();
        picked.extend(
            (0..self.unspent.len())
                .filter(|&i| self.unspent[i].0.is_expired_at(now))
                .take(more),
        );
        self.take_at(picked)
    }

    /// Takes the `n` oldest coins that may still be refreshed: not past
    /// their epoch's grace.
    pub fn take_refreshable(&mut self, n: usize) -> Vec<CoinBody> {
        let picked: Vec<usize> = (0..self.unspent.len())
            .filter(|&i| self.now <= self.grace_of(self.unspent[i].0.epoch))
            .take(n)
            .collect();
        self.take_at(picked)
    }

    /// Takes up to `n` coins of epochs not erased, scanning from position
    /// `pick`, held by `holder` if one is named (the operation codes' way).
    fn take_from(&mut self, pick: u32, n: usize, holder: Option<usize>) -> Vec<CoinBody> {
        let len = self.unspent.len();
        if len == 0 {
            return Vec::new();
        }
        let start = pick as usize % len;
        let picked: Vec<usize> = (0..len)
            .map(|k| (start + k) % len)
            .filter(|&i| {
                let (body, h) = self.unspent[i];
                holder.is_none_or(|want| h == Some(want)) && !self.erased(body.epoch)
            })
            .take(n)
            .collect();
        self.take_at(picked)
    }

    /// Coins a holder may still spend now (not expired).
    pub fn spendable(&self) -> usize {
        self.unspent
            .iter()
            .filter(|(c, _)| !c.is_expired_at(self.now))
            .count()
    }

    /// Coins a holder may still refresh now (not past their grace).
    pub fn refreshable(&self) -> usize {
        self.unspent
            .iter()
            .filter(|(c, _)| self.now <= self.grace_of(c.epoch))
            .count()
    }

    fn total(coins: &[CoinBody]) -> u64 {
        coins.iter().map(|c| c.value.minor_units()).sum()
    }

    /// A coin purchase (anonymous) requested, settled with the coins
    /// issued, then acknowledged. Returns the index of the settlement batch.
    #[allow(clippy::expect_used)]
    pub fn purchase(&mut self, values: &[u64]) -> usize {
        let purchase = PurchaseId::from_bytes(self.id16("purchase"));
        let amount = Amount::from_minor(values.iter().sum());
        let spec = CoinSpec::new(
            values
                .iter()
                .map(|&v| Denomination {
                    count: 1,
                    value: Amount::from_minor(v),
                })
                .collect(),
        )
        .expect("a valid spec");
        let (n1, n2) = (self.nonce(), self.nonce());
        self.push(vec![Event::PurchaseRequested {
            purchase,
            purchaser: seal_identity(PARTICIPANTS[1], n1),
            bank_account: seal_account(ACCOUNTS[1], n2),
            spec,
            amount,
            anonymous: true,
            authorization: SignatureBytes(vec![7; 256]),
        }]);
        let coins = self.issue(values, None);
        let settled = self.push(vec![
            Event::PurchaseSettled { purchase, amount },
            Event::CoinsIssued {
                coins,
                holder: None,
                cause: IssueCause::Purchase(purchase),
            },
        ]);
        self.push(vec![Event::PurchaseAcknowledged { purchase }]);
        settled
    }

    /// A purchase the bank refused: no coins.
    #[allow(clippy::expect_used)]
    pub fn rejected_purchase(&mut self, minor: u64) -> PurchaseId {
        let purchase = PurchaseId::from_bytes(self.id16("purchase"));
        let amount = Amount::from_minor(minor);
        let (n1, n2) = (self.nonce(), self.nonce());
        self.push(vec![Event::PurchaseRequested {
            purchase,
            purchaser: seal_identity(PARTICIPANTS[2], n1),
            bank_account: seal_account(ACCOUNTS[2], n2),
            spec: CoinSpec::single(amount).expect("a valid spec"),
            amount,
            anonymous: false,
            authorization: SignatureBytes(vec![8; 256]),
        }]);
        self.push(vec![Event::PurchaseRejected {
            purchase,
            reason: BankRejection::InsufficientFunds,
        }]);
        purchase
    }

    fn spend(&mut self, n: usize) -> (Vec<CoinBody>, u64) {
        let coins = self.take(n);
        let value = Self::total(&coins);
        (coins, value)
    }

    /// Payment with refresh: the payee gets fresh coins of equal value.
    pub fn pay_refresh(&mut self, n: usize) -> usize {
        let (coins, value) = self.spend(n);
        let fresh = self.issue(&[value], None);
        self.push(vec![
            Event::CoinsSpent {
                coins,
                cause: SpendCause::Payment(PaymentOption::Refresh),
            },
            Event::CoinsIssued {
                coins: fresh,
                holder: None,
                cause: IssueCause::Payment,
            },
        ])
    }

    /// Payment into the first merchant's aggregate balance.
    pub fn pay_aggregate(&mut self, n: usize) -> usize {
        let (coins, value) = self.spend(n);
        let balance = self.merchant_balance();
        self.balances[0].1 += value;
        self.push(vec![
            Event::CoinsSpent {
                coins,
                cause: SpendCause::Payment(PaymentOption::Aggregate),
            },
            Event::Aggregated {
                balance,
                amount: Amount::from_minor(value),
            },
        ])
    }

    /// Payment redeemed straight to the payee's bank account.
    pub fn pay_redeem(&mut self, n: usize) -> usize {
        let (coins, value) = self.spend(n);
        let nonce = self.nonce();
        self.push(vec![
            Event::CoinsSpent {
                coins,
                cause: SpendCause::Payment(PaymentOption::Redeem),
            },
            Event::Redeemed {
                amount: Amount::from_minor(value),
                bank_account: seal_account(ACCOUNTS[0], nonce),
            },
        ])
    }

    /// Change: one coin in, two of the same total out.
    pub fn change(&mut self) -> usize {
        let (coins, value) = self.spend(1);
        let half = value / 2;
        let out = self.issue(&[half, value - half], None);
        self.push(vec![
            Event::CoinsSpent {
                coins,
                cause: SpendCause::Change,
            },
            Event::CoinsIssued {
                coins: out,
                holder: None,
                cause: IssueCause::Change,
            },
        ])
    }

    /// Refresh of the oldest refreshable coin into the current epoch.
    pub fn refresh(&mut self) -> usize {
        let coins = self.take_refreshable(1);
        let value = Self::total(&coins);
        let out = self.issue(&[value], None);
        self.push(vec![
            Event::CoinsSpent {
                coins,
                cause: SpendCause::Refresh,
            },
            Event::CoinsIssued {
                coins: out,
                holder: None,
                cause: IssueCause::Refresh,
            },
        ])
    }

    /// A holder redeems coins for a bank credit.
    pub fn redeem(&mut self, n: usize) -> usize {
        let (coins, value) = self.spend(n);
        let nonce = self.nonce();
        self.push(vec![
            Event::CoinsSpent {
                coins,
                cause: SpendCause::Redeem,
            },
            Event::Redeemed {
                amount: Amount::from_minor(value),
                bank_account: seal_account(ACCOUNTS[1], nonce),
            },
        ])
    }

    /// The first merchant redeems part of its aggregate balance.
    pub fn withdraw_aggregate(&mut self, minor: u64) -> usize {
        let balance = self.merchant_balance();
        self.balances[0].1 = self.balances[0].1.saturating_sub(minor);
        let nonce = self.nonce();
        self.push(vec![
            Event::AggregateWithdrawn {
                balance,
                amount: Amount::from_minor(minor),
            },
            Event::Redeemed {
                amount: Amount::from_minor(minor),
                bank_account: seal_account(ACCOUNTS[0], nonce),
            },
        ])
    }

    /// Cardcash to softcash: an unload paid out in coins.
    pub fn card_unload(&mut self, minor: u64) -> usize {
        let nt = self.next_nt;
        self.next_nt += 1;
        *self.float.entry(self.lus.0).or_default() -= i128::from(minor);
        let coins = self.issue(&[minor], None);
        self.push(vec![
            Event::CardUnloaded {
                lus: self.lus,
                card: self.card,
                nt,
                amount: Amount::from_minor(minor),
            },
            Event::CoinsIssued {
                coins,
                holder: None,
                cause: IssueCause::CardUnload,
            },
        ])
    }

    /// Softcash to cardcash: coins redeemed onto a card load.
    pub fn card_load(&mut self, n: usize) -> usize {
        let nt = self.next_nt;
        self.next_nt += 1;
        let (coins, value) = self.spend(n);
        *self.float.entry(self.lus.0).or_default() += i128::from(value);
        self.push(vec![
            Event::CoinsSpent {
                coins,
                cause: SpendCause::CardLoad,
            },
            Event::CardLoaded {
                lus: self.lus,
                card: self.card,
                nt,
                amount: Amount::from_minor(value),
                guaranteed_at: self.now,
            },
        ])
    }

    /// A clearing period with the card server.
    pub fn clear(&mut self, period: u32, paid_to_lus: u64, received_from_lus: u64) -> usize {
        *self.float.entry(self.lus.0).or_default() -=
            i128::from(paid_to_lus) - i128::from(received_from_lus);
        self.push(vec![Event::Cleared {
            lus: self.lus,
            period,
            paid_to_lus: Amount::from_minor(paid_to_lus),
            received_from_lus: Amount::from_minor(received_from_lus),
        }])
    }

    /// A refund: the oldest coin revoked, a replacement issued to its holder.
    pub fn refund(&mut self) -> usize {
        let coins = self.take(1);
        let value = Self::total(&coins);
        let out = self.issue(&[value], Some(1));
        let nonce = self.nonce();
        self.push(vec![
            Event::CoinsRevoked { coins },
            Event::CoinsIssued {
                coins: out,
                holder: Some(seal_identity(PARTICIPANTS[1], nonce)),
                cause: IssueCause::Refund,
            },
        ])
    }

    /// Opens the next epoch ([`EPOCH_SECS`] later) and closes the current one.
    pub fn rotate_epoch(&mut self) {
        let old = self.current_epoch().map(|e| (e.epoch, e.expire));
        let expire = Timestamp(old.map_or(HISTORY_START.0, |(_, e)| e.0) + EPOCH_SECS);
        self.open_epoch(expire, Timestamp(expire.0 + GRACE_SECS));
        if let Some((epoch, _)) = old {
            self.close_epoch(epoch);
        }
    }

    fn close_epoch(&mut self, epoch: KeyEpoch) -> usize {
        if let Some(e) = self.epochs.iter_mut().find(|e| e.epoch == epoch) {
            e.closed = true;
        }
        self.push(vec![Event::EpochClosed { epoch }])
    }

    /// Erases the retired coins of `epoch`, with the digest the coin-status
    /// projection computes.
    pub fn erase(&mut self, epoch: KeyEpoch) -> usize {
        let event = self.erasure_event(epoch);
        self.push(vec![event])
    }

    /// The erasure event for `epoch`'s retired coins; forgets them and
    /// marks the epoch erased.
    pub fn erasure_event(&mut self, epoch: KeyEpoch) -> Event {
        let mut coins = self.retired.remove(&epoch).unwrap_or_default();
        coins.sort_by_key(|c| c.id);
        let value: u64 = Self::total(&coins);
        let ids: Vec<CoinId> = coins.iter().map(|c| c.id).collect();
        self.erased_coins.extend(&ids);
        if let Some(e) = self.epochs.iter_mut().find(|e| e.epoch == epoch) {
            e.erased = true;
        }
        Event::SpentCoinsErased {
            epoch,
            n_coins: ids.len() as u64,
            value: Amount::from_minor(value),
            digest: erasure_digest(&ids),
        }
    }

    /// One operation chosen by `op` (its low bits the operation, the rest
    /// its argument), appended to [`History::batches`]; `None`, and nothing
    /// appended, if it does not apply to the current state.
    pub fn step(&mut self, op: u32) -> Option<&Batch> {
        let events = self.events_of(op)?;
        let i = self.push(events);
        self.batches.get(i)
    }

    /// Runs `ops`, appending each batch that applies to `store` too.
    #[allow(clippy::expect_used)]
    pub fn run(&mut self, ops: &[u32], store: &(impl EventStore + ?Sized)) {
        for op in ops {
            if let Some(batch) = self.step(*op) {
                store.append(std::slice::from_ref(batch)).expect("append");
            }
        }
    }

    /// The events of operation `op`, the model updated as if they were
    /// appended.
    #[allow(clippy::expect_used)]
    fn events_of(&mut self, op: u32) -> Option<Vec<Event>> {
        let arg = op >> 8;
        let who = (arg % 3) as usize;
        match op % 17 {
            0 => {
                // Short epochs: the operation codes make many.
                let epoch = KeyEpoch(self.epochs.len() as u32 + 1);
                let expire = self.now.plus_secs(100 * HISTORY_STEP_SECS);
                let grace = self.now.plus_secs(200 * HISTORY_STEP_SECS);
                self.epochs.push(EpochModel {
                    epoch,
                    expire,
                    grace,
                    closed: false,
                    erased: false,
                });
                Some(vec![Event::EpochOpened {
                    epoch,
                    coins_expire_at: expire,
                    grace_ends_at: grace,
                }])
            }
            1 => {
                let purchase = PurchaseId::from_bytes(self.id16("purchase"));
                let amount = Amount::from_minor(25 * u64::from(1 + arg % 8));
                let anonymous = arg.is_multiple_of(5);
                self.pending.push((purchase, amount, who, anonymous));
                let (n1, n2) = (self.nonce(), self.nonce());
                Some(vec![Event::PurchaseRequested {
                    purchase,
                    purchaser: seal_identity(PARTICIPANTS[who], n1),
                    bank_account: seal_account(ACCOUNTS[who], n2),
                    spec: CoinSpec::single(amount).expect("a valid spec"),
                    amount,
                    anonymous,
                    authorization: SignatureBytes(vec![1; 16]),
                }])
            }
            2 => {
                self.current_epoch()?;
                if self.pending.is_empty() {
                    return None;
                }
                let (purchase, amount, p, anonymous) =
                    self.pending.remove(arg as usize % self.pending.len());
                let holder = (!anonymous).then_some(p);
                let values = Self::split(amount.minor_units(), u64::from(1 + arg % 3));
                let coins = self.issue(&values, holder);
                let n = self.nonce();
                Some(vec![
                    Event::PurchaseSettled { purchase, amount },
                    Event::CoinsIssued {
                        coins,
                        holder: holder.map(|p| seal_identity(PARTICIPANTS[p], n)),
                        cause: IssueCause::Purchase(purchase),
                    },
                ])
            }
            3 => {
                if self.pending.is_empty() {
                    return None;
                }
                let (purchase, ..) = self.pending.remove(arg as usize % self.pending.len());
                Some(vec![Event::PurchaseRejected {
                    purchase,
                    reason: BankRejection::InsufficientFunds,
                }])
            }
            4 | 8 => {
                self.current_epoch()?;
                let spent = self.take_from(arg, 1 + (arg % 3) as usize, None);
                if spent.is_empty() {
                    return None;
                }
                let total = Self::total(&spent);
                let (spend_cause, issue_cause) = if op % 17 == 4 {
                    (
                        SpendCause::Payment(PaymentOption::Refresh),
                        IssueCause::Payment,
                    )
                } else {
                    (SpendCause::Change, IssueCause::Change)
                };
                let fresh = self.issue(&Self::split(total, u64::from(1 + arg % 4)), None);
                Some(vec![
                    Event::CoinsSpent {
                        coins: spent,
                        cause: spend_cause,
                    },
                    Event::CoinsIssued {
                        coins: fresh,
                        holder: None,
                        cause: issue_cause,
                    },
                ])
            }
            5 => {
                if self.balances.is_empty() {
                    return None;
                }
                let spent = self.take_from(arg, 1 + (arg % 2) as usize, None);
                if spent.is_empty() {
                    return None;
                }
                let total = Self::total(&spent);
                let b = arg as usize % self.balances.len();
                self.balances[b].1 += total;
                Some(vec![
                    Event::CoinsSpent {
                        coins: spent,
                        cause: SpendCause::Payment(PaymentOption::Aggregate),
                    },
                    Event::Aggregated {
                        balance: self.balances[b].0,
                        amount: Amount::from_minor(total),
                    },
                ])
            }
            6 => {
                let spent = self.take_from(arg, 1, None);
                if spent.is_empty() {
                    return None;
                }
                let n = self.nonce();
                Some(vec![
                    Event::CoinsSpent {
                        coins: spent.clone(),
                        cause: SpendCause::Redeem,
                    },
                    Event::Redeemed {
                        amount: Amount::from_minor(Self::total(&spent)),
                        bank_account: seal_account(ACCOUNTS[who], n),
                    },
                ])
            }
            7 => {
                let b = self.balances.iter().position(|(_, v)| *v > 0)?;
                let amount = self.balances[b].1.div_ceil(2);
                self.balances[b].1 -= amount;
                let n = self.nonce();
                Some(vec![
                    Event::AggregateWithdrawn {
                        balance: self.balances[b].0,
                        amount: Amount::from_minor(amount),
                    },
                    Event::Redeemed {
                        amount: Amount::from_minor(amount),
                        bank_account: seal_account(ACCOUNTS[who], n),
                    },
                ])
            }
            9 => {
                self.current_epoch()?;
                let revoked = self.take_from(arg, 5, Some(who));
                if revoked.is_empty() {
                    return None;
                }
                let fresh = self.issue(&[Self::total(&revoked)], Some(who));
                let n = self.nonce();
                Some(vec![
                    Event::CoinsRevoked { coins: revoked },
                    Event::CoinsIssued {
                        coins: fresh,
                        holder: Some(seal_identity(PARTICIPANTS[who], n)),
                        cause: IssueCause::Refund,
                    },
                ])
            }
            10 => {
                let spent = self.take_from(arg, 1, None);
                if spent.is_empty() {
                    return None;
                }
                let total = Self::total(&spent);
                let lus = arg % 3;
                *self.float.entry(lus).or_default() += i128::from(total);
                Some(vec![
                    Event::CoinsSpent {
                        coins: spent,
                        cause: SpendCause::CardLoad,
                    },
                    Event::CardLoaded {
                        lus: LusId(lus),
                        card: CardId::from_bytes([7; 8]),
                        nt: arg,
                        amount: Amount::from_minor(total),
                        guaranteed_at: self.now,
                    },
                ])
            }
            11 => {
                self.current_epoch()?;
                let total = 10 * u64::from(1 + arg % 5);
                let coins = self.issue(&[total], None);
                let lus = arg % 3;
                *self.float.entry(lus).or_default() -= i128::from(total);
                Some(vec![
                    Event::CardUnloaded {
                        lus: LusId(lus),
                        card: CardId::from_bytes([8; 8]),
                        nt: arg,
                        amount: Amount::from_minor(total),
                    },
                    Event::CoinsIssued {
                        coins,
                        holder: None,
                        cause: IssueCause::CardUnload,
                    },
                ])
            }
            12 => {
                let lus = arg % 3;
                let f = self.float.get(&lus).copied().unwrap_or(0);
                if f == 0 {
                    return None;
                }
                self.float.insert(lus, 0);
                let (paid, received) = if f > 0 {
                    (f.unsigned_abs() as u64, 0)
                } else {
                    (0, f.unsigned_abs() as u64)
                };
                Some(vec![Event::Cleared {
                    lus: LusId(lus),
                    period: arg,
                    paid_to_lus: Amount::from_minor(paid),
                    received_from_lus: Amount::from_minor(received),
                }])
            }
            13 => {
                let balance = BalanceId::from_bytes(self.id16("balance"));
                self.balances.push((balance, 0));
                let (n1, n2, n3) = (self.nonce(), self.nonce(), self.nonce());
                Some(vec![
                    Event::EnrollmentRequested {
                        participant: seal_identity(PARTICIPANTS[who], n1),
                        role: Role::Merchant,
                        bank_account: seal_account(ACCOUNTS[who], n2),
                        signature: SignatureBytes(vec![2; 16]),
                    },
                    Event::Enrolled {
                        participant: seal_identity(PARTICIPANTS[who], n3),
                        role: Role::Merchant,
                        balance: Some(balance),
                    },
                ])
            }
            14 => {
                let open: Vec<usize> = (0..self.epochs.len())
                    .filter(|i| !self.epochs[*i].closed)
                    .collect();
                if open.len() < 2 {
                    return None;
                }
                self.epochs[open[0]].closed = true;
                Some(vec![Event::EpochClosed {
                    epoch: self.epochs[open[0]].epoch,
                }])
            }
            15 => {
                let epoch = self.epochs.iter().find(|e| e.closed && !e.erased)?.epoch;
                Some(vec![self.erasure_event(epoch)])
            }
            _ => {
                let n = self.nonce();
                Some(vec![Event::Registered {
                    participant: seal_identity(PARTICIPANTS[who], n),
                    public_key: PublicKeyDer(vec![3; 32]),
                    cert_expiry: self.now.plus_secs(1000 * HISTORY_STEP_SECS),
                }])
            }
        }
    }
}

/// Appends `events` as one batch to any store: a transaction id derived
/// from the next seq, stamped [`super::SAMPLE_EPOCH_SECS`] plus that seq,
/// so times never go back.
#[allow(clippy::expect_used)]
pub(super) fn append_events(store: &(impl EventStore + ?Sized), events: Vec<Event>) -> Seq {
    let next = store.head().expect("head").last_seq.0 + 1;
    let tx = TxId::derive("test/tx", &[&next.to_le_bytes()]);
    let at = Timestamp(super::SAMPLE_EPOCH_SECS + next);
    store.append(&[Batch { tx, at, events }]).expect("append")[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conservation::Flows;
    use crate::testkit::StoreExt;

    #[test]
    fn every_batch_of_a_busy_history_balances_and_time_never_goes_back() {
        let mut h = History::with_a_merchant();
        h.purchase(&[500, 250, 125]);
        h.pay_refresh(2);
        h.pay_aggregate(1);
        h.card_load(1);
        h.rotate_epoch();
        h.refresh();
        for op in busy_ops(300) {
            h.step(op);
        }
        for pair in h.batches.windows(2) {
            assert!(pair[0].at <= pair[1].at);
        }
        for batch in &h.batches {
            Flows::of(&batch.events)
                .check_balanced()
                .unwrap_or_else(|e| panic!("{e}: {:?}", batch.events));
        }
    }

    #[test]
    fn sealed_fields_open_again() {
        assert_eq!(unseal(&seal("alice", 7)).as_deref(), Some(&b"alice"[..]));
        assert_ne!(seal("alice", 1), seal("alice", 2));
        assert_eq!(unseal(b"something else"), None);
    }

    #[test]
    fn the_store_extension_appends_one_batch_at_a_time() {
        let store = crate::MemoryStore::new();
        let seq = store.append_events(vec![Event::EpochClosed { epoch: KeyEpoch(1) }]);
        assert_eq!(seq, Seq(1));
        assert_eq!(store.all().len(), 1);
    }
}

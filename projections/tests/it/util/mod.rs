//! Helpers shared by the projection tests: an in-memory event log (tests
//! only; the real one is ledger's), a reversible test unsealer, and a
//! generator of valid histories driven by a list of operation codes (so
//! proptest can shrink them).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Mutex;

use ledger::store::record_hash;
use ledger::{
    Amount, BalanceId, BankAccount, Batch, CardId, Checkpoint, CoinBody, CoinId, CoinSpec, Event,
    EventStore, Hash32, Head, IssueCause, KeyEpoch, LusId, ParticipantId, PaymentOption,
    PublicKeyDer, PurchaseId, Record, Role, SealedBankAccount, SealedIdentity, Seq, SignatureBytes,
    SpendCause, StoreError, StoredRecord, Timestamp, TxId,
};
use projections::{UnsealError, Unsealer};

/// An append-only log in memory with the real hash chain.
#[derive(Default)]
pub struct MemLog {
    records: Mutex<Vec<StoredRecord>>,
}

impl MemLog {
    pub fn new() -> MemLog {
        MemLog::default()
    }

    pub fn append_events(&self, events: Vec<Event>) -> Seq {
        let seq = self.records.lock().expect("lock").len() as u64 + 1;
        let tx = TxId::derive("test/tx", &[&seq.to_le_bytes()]);
        let at = ledger::Timestamp(1_767_225_600 + seq);
        self.append(&[Batch { tx, at, events }]).expect("append")[0]
    }

    pub fn all(&self) -> Vec<StoredRecord> {
        self.records.lock().expect("lock").clone()
    }
}

impl EventStore for MemLog {
    fn append(&self, batches: &[Batch]) -> Result<Vec<Seq>, StoreError> {
        let mut records = self.records.lock().expect("lock");
        let mut firsts = Vec::new();
        for batch in batches {
            firsts.push(Seq(records.len() as u64 + 1));
            let len = batch.events.len() as u16;
            for (i, event) in batch.events.iter().enumerate() {
                let seq = Seq(records.len() as u64 + 1);
                let prev_hash = records.last().map_or(Hash32::GENESIS, |r| r.hash);
                let hash = record_hash(
                    &prev_hash,
                    seq,
                    &batch.tx,
                    batch.at,
                    i as u16,
                    len,
                    &event.encode(),
                );
                records.push(StoredRecord {
                    record: Record {
                        seq,
                        tx: batch.tx,
                        at: batch.at,
                        batch_index: i as u16,
                        batch_len: len,
                        event: event.clone(),
                    },
                    prev_hash,
                    hash,
                });
            }
        }
        Ok(firsts)
    }

    fn head(&self) -> Result<Head, StoreError> {
        let records = self.records.lock().expect("lock");
        Ok(records.last().map_or(
            Head {
                last_seq: Seq(0),
                last_hash: Hash32::GENESIS,
            },
            |r| Head {
                last_seq: r.record.seq,
                last_hash: r.hash,
            },
        ))
    }

    fn read(&self, from: Seq, max_records: usize) -> Result<Vec<StoredRecord>, StoreError> {
        let records = self.records.lock().expect("lock");
        let start = (from.0.max(1) - 1) as usize;
        Ok(records
            .iter()
            .skip(start)
            .take(max_records)
            .cloned()
            .collect())
    }
}

const SEAL_MAGIC: &[u8] = b"test-seal";
const SEAL_MASK: u8 = 0x5a;

/// Seals reversibly with a nonce byte, so that one participant's sealed
/// identity differs between events (as real OAEP ciphertexts do).
pub fn seal(clear: &str, nonce: u8) -> Vec<u8> {
    let mut out = SEAL_MAGIC.to_vec();
    out.push(nonce);
    out.extend(clear.bytes().map(|b| b ^ SEAL_MASK ^ nonce));
    out
}

pub fn seal_identity(p: &str, nonce: u8) -> SealedIdentity {
    SealedIdentity::from_sealed_bytes(seal(p, nonce)).expect("short")
}

pub fn seal_account(a: &str, nonce: u8) -> SealedBankAccount {
    SealedBankAccount::from_sealed_bytes(seal(a, nonce)).expect("short")
}

fn unseal(bytes: &[u8]) -> Result<String, UnsealError> {
    let rest = bytes
        .strip_prefix(SEAL_MAGIC)
        .ok_or(UnsealError::Undecryptable)?;
    let (nonce, body) = rest.split_first().ok_or(UnsealError::Undecryptable)?;
    String::from_utf8(body.iter().map(|b| b ^ SEAL_MASK ^ nonce).collect())
        .map_err(|_| UnsealError::Invalid("not utf-8".into()))
}

/// Opens what [`seal`] sealed.
pub struct TestUnsealer;

impl Unsealer for TestUnsealer {
    fn unseal_identity(&self, sealed: &SealedIdentity) -> Result<ParticipantId, UnsealError> {
        ParticipantId::new(unseal(sealed.as_sealed_bytes())?)
            .map_err(|e| UnsealError::Invalid(e.to_string()))
    }

    fn unseal_account(&self, sealed: &SealedBankAccount) -> Result<BankAccount, UnsealError> {
        BankAccount::new(unseal(sealed.as_sealed_bytes())?)
            .map_err(|e| UnsealError::Invalid(e.to_string()))
    }
}

pub const PARTICIPANTS: [&str; 3] = ["alice", "bob", "carol"];
pub const ACCOUNTS: [&str; 3] = ["111-0001", "111-0002", "111-0003"];

pub fn participant(i: usize) -> ParticipantId {
    ParticipantId::new(PARTICIPANTS[i % 3]).expect("valid")
}

pub fn coin_id(n: u64) -> CoinId {
    CoinId::from_bytes(*TxId::derive("test/coin", &[&n.to_le_bytes()]).as_bytes())
}

#[derive(Debug, Clone)]
pub struct EpochModel {
    pub epoch: KeyEpoch,
    pub expire: Timestamp,
    pub grace: Timestamp,
    pub closed: bool,
    pub erased: bool,
}

/// A model of the issuer's books that emits only valid transactions: coins
/// are spent only if issued and unspent, every batch balances.
#[derive(Debug, Default)]
pub struct World {
    pub now: u64,
    next_id: u64,
    nonce: u8,
    pub epochs: Vec<EpochModel>,
    /// Unspent coins with the participant they were issued to, if any.
    pub unspent: Vec<(CoinBody, Option<usize>)>,
    /// Spent or revoked coins not yet erased, per epoch.
    pub retired: BTreeMap<KeyEpoch, Vec<(CoinId, Amount)>>,
    pub pending: Vec<(PurchaseId, Amount, usize, bool)>,
    pub balances: Vec<(BalanceId, u64)>,
    pub float: BTreeMap<u32, i128>,
    pub erased_coins: Vec<CoinId>,
}

impl World {
    pub fn new() -> World {
        World::default()
    }

    fn fresh(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn nonce(&mut self) -> u8 {
        self.nonce = self.nonce.wrapping_add(1);
        self.nonce
    }

    fn current_epoch(&self) -> Option<&EpochModel> {
        self.epochs.iter().rev().find(|e| !e.closed)
    }

    /// Coins worth `total` in up to `parts` coins of the current epoch.
    fn mint(&mut self, total: u64, parts: u64, holder: Option<usize>) -> Option<Vec<CoinBody>> {
        let epoch = self.current_epoch()?.clone();
        let parts = parts.clamp(1, total.max(1));
        let mut out = Vec::new();
        let mut left = total;
        for i in 0..parts {
            let value = if i + 1 == parts { left } else { total / parts };
            left -= value;
            let n = self.fresh();
            let body = CoinBody {
                id: coin_id(n),
                value: Amount::from_minor(value),
                expiry: epoch.expire,
                epoch: epoch.epoch,
            };
            self.unspent.push((body, holder));
            out.push(body);
        }
        Some(out)
    }

    /// Takes up to `n` spendable coins (not of an erased epoch) starting at `pick`.
    fn take(&mut self, pick: u32, n: usize, holder: Option<usize>) -> Vec<CoinBody> {
        let erased: Vec<KeyEpoch> = self
            .epochs
            .iter()
            .filter(|e| e.erased)
            .map(|e| e.epoch)
            .collect();
        let mut out = Vec::new();
        let len = self.unspent.len();
        if len == 0 {
            return out;
        }
        let mut i = pick as usize % len;
        let mut scanned = 0;
        while out.len() < n && scanned < len {
            if i >= self.unspent.len() {
                i = 0;
            }
            let (body, h) = self.unspent[i];
            let holder_ok = holder.is_none_or(|want| h == Some(want));
            if holder_ok && !erased.contains(&body.epoch) {
                self.unspent.swap_remove(i);
                self.retired
                    .entry(body.epoch)
                    .or_default()
                    .push((body.id, body.value));
                out.push(body);
            } else {
                i += 1;
            }
            scanned += 1;
        }
        out
    }

    fn total(coins: &[CoinBody]) -> u64 {
        coins.iter().map(|c| c.value.minor_units()).sum()
    }

    /// One operation; `None` if it does not apply to the current state.
    pub fn step(&mut self, op: u32) -> Option<Vec<Event>> {
        self.now += 10;
        let arg = op >> 8;
        let who = (arg % 3) as usize;
        match op % 17 {
            0 => {
                let epoch = KeyEpoch(self.epochs.len() as u32 + 1);
                let expire = Timestamp(self.now + 100);
                let grace = Timestamp(self.now + 200);
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
                let purchase = PurchaseId::from_bytes(coin_id(self.fresh()).as_bytes().to_owned());
                let amount = Amount::from_minor(25 * u64::from(1 + arg % 8));
                let anonymous = arg.is_multiple_of(5);
                self.pending.push((purchase, amount, who, anonymous));
                let n1 = self.nonce();
                let n2 = self.nonce();
                Some(vec![Event::PurchaseRequested {
                    purchase,
                    purchaser: seal_identity(PARTICIPANTS[who], n1),
                    bank_account: seal_account(ACCOUNTS[who], n2),
                    spec: CoinSpec::single(amount).expect("spec"),
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
                let coins = self.mint(amount.minor_units(), u64::from(1 + arg % 3), holder)?;
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
                    reason: ledger::BankRejection::InsufficientFunds,
                }])
            }
            4 | 8 => {
                self.current_epoch()?;
                let spent = self.take(arg, 1 + (arg % 3) as usize, None);
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
                let fresh = self.mint(total, u64::from(1 + arg % 4), None)?;
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
                let spent = self.take(arg, 1 + (arg % 2) as usize, None);
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
                let spent = self.take(arg, 1, None);
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
                let revoked = self.take(arg, 5, Some(who));
                if revoked.is_empty() {
                    return None;
                }
                let total = Self::total(&revoked);
                let fresh = self.mint(total, 1, Some(who))?;
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
                let spent = self.take(arg, 1, None);
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
                        guaranteed_at: Timestamp(self.now),
                    },
                ])
            }
            11 => {
                let total = 10 * u64::from(1 + arg % 5);
                let coins = self.mint(total, 1, None)?;
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
                    (f as u64, 0)
                } else {
                    (0, (-f) as u64)
                };
                Some(vec![Event::Cleared {
                    lus: LusId(lus),
                    period: arg,
                    paid_to_lus: Amount::from_minor(paid),
                    received_from_lus: Amount::from_minor(received),
                }])
            }
            13 => {
                let balance = BalanceId::from_bytes(*coin_id(self.fresh()).as_bytes());
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
                let i = self.epochs.iter().position(|e| e.closed && !e.erased)?;
                self.epochs[i].erased = true;
                Some(vec![self.erasure_event(self.epochs[i].epoch)])
            }
            _ => {
                let n = self.nonce();
                Some(vec![Event::Registered {
                    participant: seal_identity(PARTICIPANTS[who], n),
                    public_key: PublicKeyDer(vec![3; 32]),
                    cert_expiry: Timestamp(self.now + 1000),
                }])
            }
        }
    }

    /// The erasure event for `epoch`'s retired coins; forgets them.
    pub fn erasure_event(&mut self, epoch: KeyEpoch) -> Event {
        let mut coins = self.retired.remove(&epoch).unwrap_or_default();
        coins.sort();
        let value: u64 = coins.iter().map(|(_, v)| v.minor_units()).sum();
        let ids: Vec<CoinId> = coins.iter().map(|(id, _)| *id).collect();
        self.erased_coins.extend(&ids);
        Event::SpentCoinsErased {
            epoch,
            n_coins: ids.len() as u64,
            value: Amount::from_minor(value),
            digest: projections::coin_status::erasure_digest(&ids),
        }
    }

    /// Runs `ops`, appending every applicable one to `log` as one batch.
    pub fn run(&mut self, ops: &[u32], log: &MemLog) {
        for op in ops {
            if let Some(events) = self.step(*op) {
                log.append_events(events);
            }
        }
    }
}

/// A checkpoint event, which every projection ignores.
pub fn checkpoint() -> Event {
    Event::Checkpoint(Checkpoint {
        seq: Seq(0),
        hash: Hash32::GENESIS,
        signature: SignatureBytes(vec![9; 8]),
    })
}

/// Ops that make a busy history: epochs first, many purchases and payments.
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

/// What the erasure scenario measured.
#[derive(Debug, Clone)]
pub struct ErasureFigures {
    pub n_issued: u64,
    pub n_spent: u64,
    pub n_unspent: u64,
    pub n_records: u64,
    pub catch_up_secs: f64,
    pub erase_secs: f64,
    pub bytes_before: u64,
    pub bytes_after_erasure: u64,
    pub bytes_after_compaction: u64,
    pub boot_secs: f64,
    pub boot_n_coins: u64,
    /// Payments applied after boot (the tail path), in each of two passes.
    pub n_tail_commits: u64,
    /// Seconds for the pass with one transaction per payment, then for the
    /// pass with one transaction per 32 payments.
    pub tail_secs: [f64; 2],
}

/// Issues `n_spent + n_unspent` coins over `n_epochs` epochs (the last one
/// holds `n_unspent` coins nobody spends; in the others every coin but one
/// in `keep_every` is spent), erases every earlier epoch once its grace
/// period is over, compacts, then boots 8 shards from the file. Coin events
/// carry the ledger's maximum of coins each; this log holds the coin
/// events alone (the money side is not what is measured here).
pub fn erasure_scenario(
    dir: &std::path::Path,
    n_spent: u64,
    n_unspent: u64,
    n_epochs: u32,
    keep_every: u64,
) -> ErasureFigures {
    use ledger::constants::COINS_PER_TX_MAX;
    use projections::{CoinStatus, CoinStatusModel};
    use std::time::Instant;

    assert!(n_epochs >= 2);
    let log = MemLog::new();
    let n_old_epochs = u64::from(n_epochs - 1);
    // Old epochs get enough coins that n_spent of them are spent.
    let spent_per_old = n_spent.div_ceil(n_old_epochs);
    let issued_per_old = spent_per_old + spent_per_old / (keep_every - 1).max(1);
    let mut next = 0u64;
    let mut n_issued = 0u64;
    let mut spent_total = 0u64;
    let mut unspent_total = 0u64;
    for e in 1..=n_epochs {
        let epoch = KeyEpoch(e);
        log.append_events(vec![Event::EpochOpened {
            epoch,
            coins_expire_at: Timestamp(1000 * u64::from(e)),
            grace_ends_at: Timestamp(1000 * u64::from(e) + 500),
        }]);
        let last = e == n_epochs;
        let n_coins = if last { n_unspent } else { issued_per_old };
        let mut issued = 0u64;
        while issued < n_coins {
            let k = (n_coins - issued).min(COINS_PER_TX_MAX as u64);
            let coins: Vec<CoinBody> = (0..k)
                .map(|i| {
                    next += 1;
                    CoinBody {
                        id: coin_id(next),
                        value: Amount::from_minor(1 + (issued + i) % 100),
                        expiry: Timestamp(1000 * u64::from(e)),
                        epoch,
                    }
                })
                .collect();
            issued += k;
            n_issued += k;
            let (spend, keep): (Vec<CoinBody>, Vec<CoinBody>) = if last {
                (Vec::new(), coins.clone())
            } else {
                coins.iter().partition(|c| {
                    let n = u64::from_le_bytes(c.id.as_bytes()[..8].try_into().expect("8"));
                    !n.is_multiple_of(keep_every)
                })
            };
            let spend: Vec<CoinBody> = spend
                .into_iter()
                .take((n_spent - spent_total) as usize)
                .collect();
            spent_total += spend.len() as u64;
            unspent_total += k - spend.len() as u64;
            let _ = keep;
            let mut events = vec![Event::CoinsIssued {
                coins,
                holder: None,
                cause: IssueCause::Change,
            }];
            if !spend.is_empty() {
                events.push(Event::CoinsSpent {
                    coins: spend,
                    cause: SpendCause::Redeem,
                });
            }
            log.append_events(events);
        }
    }
    let path = dir.join("coin-status.redb");
    let mut coins = CoinStatus::open(&path, CoinStatusModel).expect("open");
    let t = Instant::now();
    coins.catch_up(&log).expect("catch up");
    let catch_up_secs = t.elapsed().as_secs_f64();
    let bytes_before = coins.file_size_bytes().expect("size");
    assert_eq!(coins.n_coins_stored().expect("count"), n_issued);

    let now = Timestamp(1000 * u64::from(n_epochs) + 500);
    let t = Instant::now();
    let mut n_erased = 0;
    for e in 1..n_epochs {
        let plan = coins.plan_erasure(KeyEpoch(e), now).expect("grace is over");
        n_erased += plan.n_coins();
        log.append_events(vec![plan.event()]);
        coins.catch_up(&log).expect("erasure applies");
    }
    let erase_secs = t.elapsed().as_secs_f64();
    assert_eq!(n_erased, spent_total);
    let bytes_after_erasure = coins.file_size_bytes().expect("size");
    coins.compact().expect("compact");
    let bytes_after_compaction = coins.file_size_bytes().expect("size");

    // The store holds exactly the unspent coins.
    assert_eq!(coins.n_coins_stored().expect("count"), unspent_total);
    let totals = coins.unspent_totals().expect("totals");
    assert_eq!(totals.n_coins, unspent_total);

    // Boot: what a restarted issuer's 8 shards load.
    drop(coins);
    let t = Instant::now();
    let coins = CoinStatus::open(&path, CoinStatusModel).expect("reopen");
    let shards = coins.unspent_by_shard(8).expect("boot");
    let boot_secs = t.elapsed().as_secs_f64();
    let boot_n_coins: u64 = shards.iter().map(|s| s.len() as u64).sum();
    assert_eq!(boot_n_coins, unspent_total);

    // Following the tail: payments (2 coins in, 2 fresh out) applied one
    // durable transaction per payment, then one per group of 32 (what the
    // issuer does after a group commit).
    let fresh_epoch = KeyEpoch(n_epochs);
    let n_tail_commits = (unspent_total / 4).min(1000);
    let mut inputs = shards.into_iter().flatten();
    let mut tail_secs = [0f64; 2];
    for (pass, group) in [1u64, 32].into_iter().enumerate() {
        let t = Instant::now();
        let mut pending_from = None;
        for i in 0..n_tail_commits {
            let spent: Vec<CoinBody> = inputs.by_ref().take(2).collect();
            let fresh: Vec<CoinBody> = spent
                .iter()
                .map(|c| {
                    next += 1;
                    CoinBody {
                        id: coin_id(next),
                        value: c.value,
                        expiry: c.expiry,
                        epoch: fresh_epoch,
                    }
                })
                .collect();
            let first = log.append_events(vec![
                Event::CoinsSpent {
                    coins: spent,
                    cause: SpendCause::Payment(PaymentOption::Refresh),
                },
                Event::CoinsIssued {
                    coins: fresh,
                    holder: None,
                    cause: IssueCause::Payment,
                },
            ]);
            let from = *pending_from.get_or_insert(first);
            if (i + 1) % group == 0 || i + 1 == n_tail_commits {
                let committed = log.read(from, usize::MAX).expect("read");
                coins.apply_records(&committed).expect("tail");
                pending_from = None;
            }
        }
        tail_secs[pass] = t.elapsed().as_secs_f64();
    }
    assert_eq!(
        coins.unspent_totals().expect("totals").n_coins,
        unspent_total
    );

    ErasureFigures {
        n_issued,
        n_spent: spent_total,
        n_unspent: unspent_total,
        n_records: log.head().expect("head").last_seq.0,
        catch_up_secs,
        erase_secs,
        bytes_before,
        bytes_after_erasure,
        bytes_after_compaction,
        boot_secs,
        boot_n_coins,
        n_tail_commits,
        tail_secs,
    }
}

//! Helpers shared by the projection tests: a reversible test unsealer for
//! what `ledger::testkit` seals, and the erasure scenario at scale. The
//! history generator (`History`) and the in-memory store (`MemoryStore`)
//! are ledger's test kit, re-exported here.

#![allow(dead_code)]

use ledger::testkit::unseal;
// Re-exported for the test modules (the example uses only the scenario).
#[allow(unused_imports)]
pub use ledger::MemoryStore;
#[allow(unused_imports)]
pub use ledger::testkit::{
    ACCOUNTS, History, StoreExt, busy_ops, coin_id, participant, seal_account, seal_identity,
};
use ledger::{
    Amount, BankAccount, Checkpoint, CoinBody, Event, EventStore, Hash32, IssueCause, KeyEpoch,
    ParticipantId, PaymentOption, SealedBankAccount, SealedIdentity, Seq, SignatureBytes,
    SpendCause, Timestamp,
};
use projections::{UnsealError, Unsealer};

fn open(bytes: &[u8]) -> Result<String, UnsealError> {
    let clear = unseal(bytes).ok_or(UnsealError::Undecryptable)?;
    String::from_utf8(clear).map_err(|_| UnsealError::Invalid("not utf-8".into()))
}

/// Opens what `ledger::testkit::seal` sealed.
pub struct TestUnsealer;

impl Unsealer for TestUnsealer {
    fn unseal_identity(&self, sealed: &SealedIdentity) -> Result<ParticipantId, UnsealError> {
        ParticipantId::new(open(sealed.as_sealed_bytes())?)
            .map_err(|e| UnsealError::Invalid(e.to_string()))
    }

    fn unseal_account(&self, sealed: &SealedBankAccount) -> Result<BankAccount, UnsealError> {
        BankAccount::new(open(sealed.as_sealed_bytes())?)
            .map_err(|e| UnsealError::Invalid(e.to_string()))
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
    let log = MemoryStore::new();
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

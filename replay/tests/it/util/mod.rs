//! Shared by the integration tests: a simulated issuer that produces a
//! genuine log of realistic batches (every process of the paper), a writer
//! that appends them through ledger's stores with checkpoints signed by a
//! real RSA key (protocol's crypto), and the tools a forger would use on the
//! stored records.

#![allow(dead_code)]

use std::sync::OnceLock;

use ledger::store::record_hash;
use ledger::{
    Amount, BalanceId, Batch, CardId, CoinBody, CoinId, CoinSpec, Denomination, Event, EventStore,
    Hash32, Head, IssueCause, KeyEpoch, LusId, PaymentOption, PurchaseId, RawEventStore, RawRecord,
    Record, Role, SealedBankAccount, SealedIdentity, Seq, SpendCause, StoreError, StoredRecord,
    Timestamp, TxId,
};
use protocol::crypto::{PublicKey, SecretKey};
use vc_replay::CheckpointVerifier;

/// The issuer's signing key, made once per test binary (RSA keygen is slow).
pub fn issuer_key() -> &'static SecretKey {
    static KEY: OnceLock<SecretKey> = OnceLock::new();
    KEY.get_or_init(|| SecretKey::generate(2048).expect("rsa key generation"))
}

/// How the CLI builds the checkpoint check from the issuer's public key:
/// with protocol's one verification function, so issuer and auditor agree.
pub fn verifier_for(public: PublicKey) -> CheckpointVerifier {
    Box::new(move |message: &[u8], signature: &[u8]| {
        protocol::checkpoint::verify_signed_bytes(&public, message, signature)
    })
}

pub fn issuer_verifier() -> CheckpointVerifier {
    verifier_for(issuer_key().public())
}

/// A simulated issuer: it keeps the coins its users hold, so every batch it
/// produces is one a correct issuer would append.
pub struct Sim {
    next_id: u64,
    pub batches: Vec<Batch>,
    pub epoch: KeyEpoch,
    /// Coins users hold, oldest first.
    pub wallet: Vec<CoinBody>,
    /// Coins spent or revoked and not yet erased.
    pub spent: Vec<CoinBody>,
    pub balance: BalanceId,
    pub lus: LusId,
    pub card: CardId,
    next_nt: u32,
    pub expiry: Timestamp,
    /// The issuer's clock: the time of the next batch.
    pub now: Timestamp,
}

/// When the simulated issuer starts: a little before epoch 1's coins expire.
pub const SIM_START: Timestamp = Timestamp(1_699_000_000);
/// Seconds between two simulated batches.
pub const SIM_STEP_SECS: u64 = 60;

fn sealed(tag: u64) -> SealedIdentity {
    SealedIdentity::from_sealed_bytes(tag.to_le_bytes().to_vec()).expect("short sealed field")
}

fn account(tag: u64) -> SealedBankAccount {
    SealedBankAccount::from_sealed_bytes(tag.to_be_bytes().to_vec()).expect("short sealed field")
}

fn id16(n: u64, kind: u8) -> [u8; 16] {
    let mut out = [0u8; 16];
    // Spread the bits so ids do not sort in creation order.
    out[..8].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    out[8..15].copy_from_slice(&n.to_le_bytes()[..7]);
    out[15] = kind;
    out
}

impl Sim {
    /// An issuer with epoch 1 open, a registered merchant and a card server.
    pub fn new() -> Sim {
        let mut sim = Sim {
            next_id: 1,
            batches: Vec::new(),
            epoch: KeyEpoch(1),
            wallet: Vec::new(),
            spent: Vec::new(),
            balance: BalanceId::from_bytes(id16(0, 9)),
            lus: LusId(7),
            card: CardId::from_bytes([5; 8]),
            next_nt: 1,
            expiry: Timestamp(1_700_000_000),
            now: SIM_START,
        };
        sim.push(vec![Event::EpochOpened {
            epoch: KeyEpoch(1),
            coins_expire_at: sim.expiry,
            grace_ends_at: sim.grace_end(),
        }]);
        sim.push(vec![
            Event::Registered {
                participant: sealed(1),
                public_key: ledger::PublicKeyDer(vec![1; 32]),
                cert_expiry: Timestamp(1_700_000_000),
            },
            Event::Enrolled {
                participant: sealed(1),
                role: Role::Merchant,
                balance: Some(sim.balance),
            },
        ]);
        sim
    }

    /// When the refresh grace of the current epoch ends.
    pub fn grace_end(&self) -> Timestamp {
        Timestamp(self.expiry.0 + 100_000)
    }

    /// Moves the issuer's clock forward to `t`.
    pub fn advance_to(&mut self, t: Timestamp) {
        self.now = self.now.max(t);
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn coin(&mut self, minor: u64) -> CoinBody {
        let n = self.id();
        CoinBody {
            id: CoinId::from_bytes(id16(n, 1)),
            value: Amount::from_minor(minor),
            expiry: self.expiry,
            epoch: self.epoch,
        }
    }

    fn coins(&mut self, values: &[u64]) -> Vec<CoinBody> {
        values.iter().map(|&v| self.coin(v)).collect()
    }

    /// Appends a batch; returns its index in [`Sim::batches`].
    pub fn push(&mut self, events: Vec<Event>) -> usize {
        let n = self.id();
        self.batches.push(Batch {
            tx: TxId::from_bytes(id16(n, 2)),
            at: self.now,
            events,
        });
        self.now = self.now.plus_secs(SIM_STEP_SECS);
        self.batches.len() - 1
    }

    /// Takes `n` coins from the wallet, oldest first among those not yet
    /// expired (a holder spends expired coins only by refreshing them),
    /// then the oldest expired ones.
    pub fn take(&mut self, n: usize) -> Vec<CoinBody> {
        let now = self.now;
        let (mut fresh, expired): (Vec<CoinBody>, Vec<CoinBody>) =
            self.wallet.drain(..).partition(|c| !c.is_expired_at(now));
        let from_fresh = n.min(fresh.len());
        let mut taken: Vec<CoinBody> = fresh.drain(..from_fresh).collect();
        let mut expired = expired.into_iter();
        taken.extend(expired.by_ref().take(n - from_fresh));
        // Keep the wallet oldest first.
        let mut rest: Vec<CoinBody> = expired.chain(fresh).collect();
        rest.sort_by_key(|c| self.wallet_order(c));
        self.wallet = rest;
        taken
    }

    /// Takes the `n` oldest coins that may still be refreshed: not past
    /// their epoch's grace (every epoch's grace ends 100,000 s after expiry).
    pub fn take_refreshable(&mut self, n: usize) -> Vec<CoinBody> {
        let now = self.now;
        let mut taken = Vec::new();
        self.wallet.retain(|c| {
            if taken.len() < n && now.0 <= c.expiry.0 + 100_000 {
                taken.push(*c);
                false
            } else {
                true
            }
        });
        taken
    }

    /// Coins a holder may still spend now (not expired).
    pub fn spendable(&self) -> usize {
        self.wallet
            .iter()
            .filter(|c| !c.is_expired_at(self.now))
            .count()
    }

    /// Coins a holder may still refresh now (not past their grace).
    pub fn refreshable(&self) -> usize {
        self.wallet
            .iter()
            .filter(|c| self.now.0 <= c.expiry.0 + 100_000)
            .count()
    }

    /// Coins are created in id order: the creation counter is in bytes 8..15.
    fn wallet_order(&self, c: &CoinBody) -> u64 {
        let b = c.id.as_bytes();
        let mut n = [0u8; 8];
        n[..7].copy_from_slice(&b[8..15]);
        u64::from_le_bytes(n)
    }

    fn total(coins: &[CoinBody]) -> u64 {
        coins.iter().map(|c| c.value.minor_units()).sum()
    }

    /// A coin purchase: requested, then settled with the coins issued, then
    /// acknowledged. Returns the index of the settlement batch.
    pub fn purchase(&mut self, values: &[u64]) -> usize {
        let purchase = PurchaseId::from_bytes(id16(self.id(), 3));
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
        .expect("valid spec");
        self.push(vec![Event::PurchaseRequested {
            purchase,
            purchaser: sealed(2),
            bank_account: account(2),
            spec,
            amount,
            anonymous: true,
            authorization: ledger::SignatureBytes(vec![7; 256]),
        }]);
        let coins = self.coins(values);
        self.wallet.extend(coins.iter().copied());
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
    pub fn rejected_purchase(&mut self, minor: u64) -> PurchaseId {
        let purchase = PurchaseId::from_bytes(id16(self.id(), 3));
        let amount = Amount::from_minor(minor);
        let spec = CoinSpec::new(vec![Denomination {
            count: 1,
            value: amount,
        }])
        .expect("spec");
        self.push(vec![Event::PurchaseRequested {
            purchase,
            purchaser: sealed(3),
            bank_account: account(3),
            spec,
            amount,
            anonymous: false,
            authorization: ledger::SignatureBytes(vec![8; 256]),
        }]);
        self.push(vec![Event::PurchaseRejected {
            purchase,
            reason: ledger::BankRejection::InsufficientFunds,
        }]);
        purchase
    }

    fn spend(&mut self, n: usize) -> (Vec<CoinBody>, u64) {
        let coins = self.take(n);
        let value = Sim::total(&coins);
        self.spent.extend(coins.iter().copied());
        (coins, value)
    }

    /// Payment with refresh: the payee gets fresh coins of equal value.
    pub fn pay_refresh(&mut self, n: usize) -> usize {
        let (coins, value) = self.spend(n);
        let fresh = self.coins(&[value]);
        self.wallet.extend(fresh.iter().copied());
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

    /// Payment into the merchant's aggregate balance.
    pub fn pay_aggregate(&mut self, n: usize) -> usize {
        let (coins, value) = self.spend(n);
        self.push(vec![
            Event::CoinsSpent {
                coins,
                cause: SpendCause::Payment(PaymentOption::Aggregate),
            },
            Event::Aggregated {
                balance: self.balance,
                amount: Amount::from_minor(value),
            },
        ])
    }

    /// Payment redeemed straight to the payee's bank account.
    pub fn pay_redeem(&mut self, n: usize) -> usize {
        let (coins, value) = self.spend(n);
        self.push(vec![
            Event::CoinsSpent {
                coins,
                cause: SpendCause::Payment(PaymentOption::Redeem),
            },
            Event::Redeemed {
                amount: Amount::from_minor(value),
                bank_account: account(4),
            },
        ])
    }

    /// Change: one coin in, two of the same total out.
    pub fn change(&mut self) -> usize {
        let (coins, value) = self.spend(1);
        let half = value / 2;
        let out = self.coins(&[half, value - half]);
        self.wallet.extend(out.iter().copied());
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

    /// Refresh of the oldest coin into the current epoch.
    pub fn refresh(&mut self) -> usize {
        let coins = self.take_refreshable(1);
        let value = Sim::total(&coins);
        self.spent.extend(coins.iter().copied());
        let out = self.coins(&[value]);
        self.wallet.extend(out.iter().copied());
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
        self.push(vec![
            Event::CoinsSpent {
                coins,
                cause: SpendCause::Redeem,
            },
            Event::Redeemed {
                amount: Amount::from_minor(value),
                bank_account: account(5),
            },
        ])
    }

    /// The merchant redeems part of its aggregate balance.
    pub fn withdraw_aggregate(&mut self, minor: u64) -> usize {
        self.push(vec![
            Event::AggregateWithdrawn {
                balance: self.balance,
                amount: Amount::from_minor(minor),
            },
            Event::Redeemed {
                amount: Amount::from_minor(minor),
                bank_account: account(6),
            },
        ])
    }

    /// Cardcash to softcash: an unload paid out in coins.
    pub fn card_unload(&mut self, minor: u64) -> usize {
        let nt = self.next_nt;
        self.next_nt += 1;
        let coins = self.coins(&[minor]);
        self.wallet.extend(coins.iter().copied());
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
        self.push(vec![Event::Cleared {
            lus: self.lus,
            period,
            paid_to_lus: Amount::from_minor(paid_to_lus),
            received_from_lus: Amount::from_minor(received_from_lus),
        }])
    }

    /// A refund: the oldest coin revoked, a replacement issued.
    pub fn refund(&mut self) -> usize {
        let coins = self.take(1);
        let value = Sim::total(&coins);
        self.spent.extend(coins.iter().copied());
        let out = self.coins(&[value]);
        self.wallet.extend(out.iter().copied());
        self.push(vec![
            Event::CoinsRevoked { coins },
            Event::CoinsIssued {
                coins: out,
                holder: Some(sealed(2)),
                cause: IssueCause::Refund,
            },
        ])
    }

    /// Opens the next epoch and closes the current one.
    pub fn rotate_epoch(&mut self) {
        let old = self.epoch;
        self.epoch = KeyEpoch(old.0 + 1);
        self.expiry = Timestamp(self.expiry.0 + 1_000_000);
        self.push(vec![Event::EpochOpened {
            epoch: self.epoch,
            coins_expire_at: self.expiry,
            grace_ends_at: self.grace_end(),
        }]);
        self.push(vec![Event::EpochClosed { epoch: old }]);
    }

    /// Erases the spent coins of `epoch`, with the digest computed as the
    /// issuer's coin-status projection computes it.
    pub fn erase(&mut self, epoch: KeyEpoch) -> usize {
        let mut ids: Vec<CoinId> = self
            .spent
            .iter()
            .filter(|c| c.epoch == epoch)
            .map(|c| c.id)
            .collect();
        ids.sort();
        let value: u64 = self
            .spent
            .iter()
            .filter(|c| c.epoch == epoch)
            .map(|c| c.value.minor_units())
            .sum();
        self.spent.retain(|c| c.epoch != epoch);
        self.push(vec![Event::SpentCoinsErased {
            epoch,
            n_coins: ids.len() as u64,
            value: Amount::from_minor(value),
            digest: projections::coin_status::erasure_digest(&ids),
        }])
    }
}

/// Positions of interesting batches in the genuine scenario.
pub struct Genuine {
    pub sim: Sim,
    /// A purchase's settlement batch (PurchaseSettled + CoinsIssued).
    pub settlement: usize,
    /// A card unload whose coin is never spent afterwards.
    pub unload: usize,
}

/// A day of an issuer's life: purchases (one refused), payments of each
/// option, change, refresh, redemptions, a refund, card unload, load and
/// clearing, an epoch rotation with refresh across it, and the erasure of
/// the old epoch's spent coins.
pub fn genuine(rounds: usize) -> Genuine {
    let mut sim = Sim::new();
    let settlement = sim.purchase(&[250, 250, 125, 200, 200, 200]);
    sim.rejected_purchase(10_000);
    for round in 0..rounds {
        sim.purchase(&[500, 250, 125, 100 + round as u64]);
        sim.pay_refresh(2);
        sim.pay_aggregate(1);
        sim.pay_redeem(1);
        sim.change();
        sim.refresh();
        sim.redeem(1);
    }
    sim.withdraw_aggregate(100);
    sim.refund();
    let load = sim.card_load(2);
    let loaded = match &sim.batches[load].events[1] {
        Event::CardLoaded { amount, .. } => amount.minor_units(),
        _ => 0,
    };
    // The clearing pays the server exactly the net position so far.
    sim.clear(1, loaded, 0);
    let unload = sim.card_unload(300);
    let epoch1_expiry = sim.expiry;
    let epoch1_grace_end = sim.grace_end();
    sim.rotate_epoch();
    // Epoch 1's coins have expired; refresh still takes them in its grace.
    sim.advance_to(Timestamp(epoch1_expiry.0 + 50_000));
    sim.refresh();
    sim.refresh();
    sim.purchase(&[1000, 1000]);
    sim.pay_refresh(1);
    // The issuer erases epoch 1's spent coins once its grace has ended.
    sim.advance_to(epoch1_grace_end);
    sim.erase(KeyEpoch(1));
    sim.pay_redeem(1);
    Genuine {
        sim,
        settlement,
        unload,
    }
}

/// Appends `batches` to `store`, with a checkpoint of the head signed by
/// `key` after every `checkpoint_every` batches and at the end.
pub fn write_log(
    store: &impl EventStore,
    batches: &[Batch],
    key: &SecretKey,
    checkpoint_every: usize,
) {
    for (i, batch) in batches.iter().enumerate() {
        store.append(std::slice::from_ref(batch)).expect("append");
        if (i + 1) % checkpoint_every == 0 || i + 1 == batches.len() {
            append_checkpoint(store, key);
        }
    }
}

/// Appends the issuer's signed checkpoint of the current head.
pub fn append_checkpoint(store: &impl EventStore, key: &SecretKey) {
    let head = store.head().expect("head");
    // The issuer's clock at the checkpoint: no earlier than the last record.
    let at = store
        .read(head.last_seq, 1)
        .expect("read the head")
        .first()
        .map_or(SIM_START, |r| r.record.at);
    let batch = Batch {
        tx: TxId::derive("vc/tx/checkpoint", &[&head.last_seq.0.to_le_bytes()]),
        at,
        events: vec![Event::Checkpoint(protocol::checkpoint::sign_checkpoint(
            key,
            head.last_seq,
            head.last_hash,
        ))],
    };
    store.append(&[batch]).expect("append checkpoint");
}

/// All records of a store, as stored.
pub fn raw_records(store: &impl RawEventStore) -> Vec<RawRecord> {
    store.read_raw(Seq(1), usize::MAX).expect("read raw")
}

/// Recomputes the chain from `records[from]` on, as a forger who rewrote a
/// record would (the sequence numbers stay as they are).
pub fn rechain(records: &mut [RawRecord], from: usize) {
    let mut prev = if from == 0 {
        Hash32::GENESIS
    } else {
        records[from - 1].hash
    };
    for r in records[from..].iter_mut() {
        r.prev_hash = prev;
        r.hash = record_hash(
            &prev,
            r.seq,
            &r.tx,
            r.at,
            r.batch_index,
            r.batch_len,
            &r.event_bytes,
        );
        prev = r.hash;
    }
}

/// Index of the first record of the `batch`-th batch that the writer
/// appended (checkpoint batches included).
pub fn first_record_of_tx(records: &[RawRecord], tx: TxId) -> usize {
    records.iter().position(|r| r.tx == tx).expect("tx in log")
}

/// A log held as a plain list of stored records, which a forger can edit
/// freely (delete, reorder) unlike a real store.
pub struct VecLog(pub Vec<RawRecord>);

impl EventStore for VecLog {
    fn append(&self, _batches: &[Batch]) -> Result<Vec<Seq>, StoreError> {
        Err(StoreError::ReadOnly)
    }

    fn head(&self) -> Result<Head, StoreError> {
        Ok(self.0.last().map_or(
            Head {
                last_seq: Seq(0),
                last_hash: Hash32::GENESIS,
            },
            |r| Head {
                last_seq: r.seq,
                last_hash: r.hash,
            },
        ))
    }

    fn read(&self, from: Seq, max_records: usize) -> Result<Vec<StoredRecord>, StoreError> {
        self.read_raw(from, max_records)?
            .iter()
            .map(RawRecord::decode)
            .collect()
    }
}

impl RawEventStore for VecLog {
    /// By position, like a store whose values were moved under their keys:
    /// the `from`-th stored record on, whatever seq it claims.
    fn read_raw(&self, from: Seq, max_records: usize) -> Result<Vec<RawRecord>, StoreError> {
        let start = usize::try_from(from.0.max(1) - 1).unwrap_or(usize::MAX);
        Ok(self
            .0
            .iter()
            .skip(start)
            .take(max_records)
            .cloned()
            .collect())
    }
}

/// Decodes a record's event, lets `edit` change it, re-encodes it in place.
pub fn edit_event(record: &mut RawRecord, edit: impl FnOnce(&mut Event)) {
    let mut event = Event::decode(&record.event_bytes).expect("genuine event decodes");
    edit(&mut event);
    record.event_bytes = event.encode();
}

/// Keeps `Record` in scope for tests that build records by hand.
pub type DecodedRecord = Record;

//! Crash tests: crashes injected under the issuer, in the stores it
//! writes, while four payers pay at once through the actor path (the
//! `Issuer` handle the gateway calls). The issuer runs unchanged: nothing
//! in it knows about crashes. A wrapper stops dead at one point and drops
//! its file, as a dead process does; the test stops the actor system,
//! restarts the issuer from its files, and every payee retries every
//! payment of the crashed round, answered or not (an answer may have been
//! lost on the way). Afterwards:
//!
//! - every acknowledged payment is present exactly once, and its retry gets
//!   the same coins;
//! - no coin is spendable twice: every payer's coin is spent, no coin id is
//!   in two `CoinsSpent` events, and the payee holds one fresh coin per
//!   payment, all unspent;
//! - conservation holds (the issuer's totals, and the auditor over the
//!   files alone).
//!
//! The points, at the append that takes the log past two batches of the
//! crashed round (`ledger::fault::FaultyStore` around `log.redb`):
//! - before append (`StoreFault::BeforeAppend`): nothing of the batch written;
//! - after append, before fsync (`StoreFault::FsyncFails`, with
//!   `ledger::fault::FaultyFile` under redb): the pages written, the fsync
//!   failed; redb's commit protocol decides whether the batch survives
//!   (either is correct);
//! - after durable (`StoreFault::AfterDurable`): durable, the issuer never told;
//! - after shard commit (`StoreFault::AfterAcknowledged`): durable and
//!   acknowledged, the shards commit and the answers may go out, then the
//!   log is dead (answers treated as lost);
//!
//! and in the coin-status projection, on `coin-status.redb` opened over
//! `ledger::fault::DyingFile` (`IssuerConfig::coin_status_backend`):
//! - during projection apply: the file dies in the middle of a commit of
//!   the checkpoint that races the payments (the shards boot from it);
//! - during erasure: an old epoch is erased while the payments run, and the
//!   file dies in the middle of the commit that removes its spent coins.
//!
//! With the idempotency rebuild at start removed (the table neither fed
//! from the log nor backed by the transaction index), every test here
//! fails: a retry of a payment whose batch is in the log is refused
//! "already spent". Projection-level crashes at every write of a commit
//! are in `projections/tests/it/crash_points.rs`.

use crate::util;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::fault::{DiskDeath, DyingFile, FaultPlan, StoreFault};
use ledger::{Coin, CoinId, Event, EventStore, KeyEpoch, Role};
use protocol::flows::{PayeeOutcome, PaymentPayee};
use protocol::wire::payment::{PaymentIssuance1, SendCoins};
use util::{Harness, Who, refresh, spec};
use vc_actors::{Issuer, IssuerCore, IssuerError};

const PAYERS: usize = 4;
/// Each payer's coins: one payment per round (before, at and after the crash).
const COINS_EACH: u32 = 3;
const COIN_MINOR: u64 = 100;
/// Batches of the crashed round appended before the one the fault meets.
const BATCHES_BEFORE_CRASH: u64 = 2;
/// How long a restart waits for the stopped actor system's threads to let
/// go of the issuer's files.
const RESTART_WAIT_SECS: u64 = 30;
/// How long a payment of the crashed round may wait for its answer.
const ANSWER_WAIT_SECS: u64 = 60;
/// Backend writes the coin-status file takes after the issuer's start
/// before it dies: inside the first commit of a checkpoint.
const PROJECTION_WRITES_BEFORE_CRASH: u64 = 5;
/// Backend writes the commit of an erasure takes before the file dies.
const ERASURE_WRITES_BEFORE_CRASH: u64 = 1;
/// Harness time (s) from the first purchases until the payers' epoch
/// opens: past the first epoch's expiry, so that its coins are gone by the
/// erasure, not past the payers' epoch's.
const TO_PAYERS_EPOCH_SECS: u64 = 1_100;
/// Harness time (s) from the payers' purchases until the crashed round:
/// past the first epoch's grace, before the payers' coins expire.
const TO_ERASURE_SECS: u64 = 500;

/// Where the crashed round's crash strikes.
#[derive(Clone)]
enum Crash {
    /// The log dies as the plan says.
    Log(Arc<FaultPlan>),
    /// `coin-status.redb` dies in the middle of a checkpoint's commit.
    ProjectionApply(Arc<DiskDeath>),
    /// `coin-status.redb` dies in the middle of the commit that erases the
    /// spent coins of the epoch.
    Erasure(Arc<DiskDeath>, KeyEpoch),
}

impl Crash {
    fn name(&self) -> String {
        match self {
            Crash::Log(plan) => format!("{:?}", plan.fault()),
            Crash::ProjectionApply(_) => "projection apply".into(),
            Crash::Erasure(..) => "erasure".into(),
        }
    }

    fn has_struck(&self) -> bool {
        match self {
            Crash::Log(plan) => plan.has_struck(),
            Crash::ProjectionApply(death) | Crash::Erasure(death, _) => death.has_died(),
        }
    }
}

/// One payment of one coin to the shop, as its payee retries it.
struct Payment {
    payee_state: PaymentPayee,
    send: SendCoins,
    /// The fresh coins the issuer's answer gave the payee, once answered.
    answered: Option<Vec<Coin>>,
}

fn restart(h: &mut Harness) {
    h.core = None;
    let started = Instant::now();
    loop {
        match IssuerCore::open(h.config(), h.bank().clone()) {
            Ok(core) => {
                h.core = Some(core);
                return;
            }
            Err(e) if started.elapsed() < Duration::from_secs(RESTART_WAIT_SECS) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("the issuer does not restart: {e}"),
        }
    }
}

/// Sends the ValidationRequest of `payment` (a retry builds a new one for
/// the same transaction); returns the fresh coins of the answer.
fn validate(h: &Harness, shop: &Who, payment: &Payment) -> Result<Vec<Coin>, IssuerError> {
    let (awaiting, vreq) = h.validation(&payment.payee_state, &payment.send, refresh(COIN_MINOR));
    let iss1: PaymentIssuance1 = h.core().validate(&vreq)?;
    match awaiting
        .on_issuance1(shop.sk, &iss1)
        .expect("the answer opens")
    {
        PayeeOutcome::Coins { coins, ack } => {
            let _ = h.core().payment_issuance2(&ack);
            Ok(coins)
        }
        other => panic!("a payment with good coins was refused: {other:?}"),
    }
}

fn payments_of_round(
    h: &Harness,
    shop: &Who,
    payers: &[(Who, Vec<Coin>)],
    round: usize,
) -> Vec<Payment> {
    payers
        .iter()
        .map(|(payer, coins)| {
            let (payee_state, _payer, _invoice, send) =
                h.send_coins(payer, shop, vec![coins[round]]);
            Payment {
                payee_state,
                send,
                answered: None,
            }
        })
        .collect()
}

/// Every payer pays its coin `round` to the shop at once, on a healthy issuer.
fn pay_round(h: &Harness, shop: &Who, payers: &[(Who, Vec<Coin>)], round: usize) -> Vec<Payment> {
    let mut payments = payments_of_round(h, shop, payers, round);
    std::thread::scope(|s| {
        for payment in payments.iter_mut() {
            s.spawn(move || {
                payment.answered = Some(validate(h, shop, payment).expect("answered"));
            });
        }
    });
    payments
}

/// Round 1 through the `Issuer` handle of an issuer that meets `crash`:
/// every payer's ValidationRequest goes to `Issuer::validate` at once and
/// each answer is opened and acknowledged, while (for a crash in the
/// coin-status projection) a housekeeper's checkpoint or an erasure races
/// them. Returns with the actor system stopped.
fn crash_round_through_the_issuer(
    h: &mut Harness,
    shop: &Who,
    payers: &[(Who, Vec<Coin>)],
    crash: &Crash,
) -> Vec<Payment> {
    let mut payments = payments_of_round(h, shop, payers, 1);
    let requests: Vec<_> = payments
        .iter()
        .map(|p| h.validation(&p.payee_state, &p.send, refresh(COIN_MINOR)))
        .collect();
    let mut config = h.config();
    match crash {
        Crash::Log(plan) => {
            config.log_store = Some(h.faulty_log(plan));
        }
        Crash::ProjectionApply(death) | Crash::Erasure(death, _) => {
            h.core = None;
            let death = death.clone();
            config.coin_status_backend = Some(Arc::new(move |path: &std::path::Path| {
                let file: Box<dyn redb::StorageBackend> =
                    Box::new(DyingFile::open(path, death.clone())?);
                Ok(file)
            }));
        }
    }
    let bank = h.bank().clone();
    let sk_py = shop.sk;
    let system = actix_rt::System::new();
    let racing = crash.clone();
    let answered: Vec<Option<Vec<Coin>>> = system.block_on(async move {
        let issuer = Issuer::start(config, bank).expect("issuer starts");
        let housekeeper = race_the_payments(issuer.core().clone(), racing);
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|(awaiting, vreq)| {
                let issuer = issuer.clone();
                actix_rt::spawn(async move {
                    let answer = tokio::time::timeout(
                        Duration::from_secs(ANSWER_WAIT_SECS),
                        issuer.validate(vreq),
                    )
                    .await
                    .expect("every payment is answered or refused, none hangs");
                    // Any failure here is the dead log, seen from above.
                    let iss1: PaymentIssuance1 = answer.ok()?;
                    match awaiting
                        .on_issuance1(sk_py, &iss1)
                        .expect("the answer opens")
                    {
                        PayeeOutcome::Coins { coins, ack } => {
                            let _ = issuer.payment_issuance2(ack).await;
                            Some(coins)
                        }
                        other => panic!("a payment with good coins was refused: {other:?}"),
                    }
                })
            })
            .collect();
        let mut answered = Vec::with_capacity(tasks.len());
        for task in tasks {
            answered.push(task.await.expect("a payment task"));
        }
        if let Some(housekeeper) = housekeeper {
            housekeeper.join().expect("housekeeper thread");
        }
        answered
    });
    drop(system);
    assert!(
        crash.has_struck(),
        "{}: the crash was reached",
        crash.name()
    );
    for (payment, coins) in payments.iter_mut().zip(answered) {
        payment.answered = coins;
    }
    payments
}

/// What races the payments of the crashed round for a crash in the
/// coin-status projection, on a thread of its own as the housekeeper's
/// passes run: checkpoints until the file dies, or an erasure of the old
/// epoch and the checkpoint that applies it.
fn race_the_payments(
    core: Arc<vc_actors::IssuerCore>,
    crash: Crash,
) -> Option<std::thread::JoinHandle<()>> {
    match crash {
        Crash::Log(_) => None,
        Crash::ProjectionApply(death) => Some(std::thread::spawn(move || {
            death.arm(PROJECTION_WRITES_BEFORE_CRASH);
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(ANSWER_WAIT_SECS) {
                match core.checkpoint_coin_status() {
                    Ok(_) => std::thread::sleep(Duration::from_millis(2)),
                    Err(e) => {
                        assert!(death.has_died(), "checkpoint failed otherwise: {e}");
                        return;
                    }
                }
            }
            panic!("the coin-status file never died");
        })),
        Crash::Erasure(death, epoch) => Some(std::thread::spawn(move || {
            core.erase_epoch(epoch, Duration::from_secs(ANSWER_WAIT_SECS))
                .expect("the old epoch is erased while the payments run");
            death.arm(ERASURE_WRITES_BEFORE_CRASH);
            assert!(
                core.checkpoint_coin_status().is_err(),
                "the erasure's commit meets the dead file"
            );
        })),
    }
}

/// Runs the three rounds with `crash` in the second.
fn crash_under_load_then_retry(crash: Crash) {
    let fault = crash.name();
    let mut h = Harness::new();
    let shop = Who::new("shop", 5);
    h.register(&shop, 0);
    h.enroll(&shop, Role::Merchant);
    // For the erasure: an epoch whose coins were all redeemed, whose grace
    // ends before the crashed round.
    let old_epoch = matches!(crash, Crash::Erasure(..)).then(|| {
        let (epoch, _) = h.core().current_epoch().expect("an epoch");
        let early = h.purchaser("early", 4, 10_000);
        let old = h.buy(&early, spec(&[(2, COIN_MINOR)]));
        h.pay(
            &early,
            &shop,
            old,
            protocol::wire::payment::VOption::Redeem {
                bank_account: shop.account.clone(),
            },
        );
        h.clock.advance(TO_PAYERS_EPOCH_SECS);
        h.core().rotate_epoch_if_due().expect("epoch rotation");
        epoch
    });
    let crash = match (crash, old_epoch) {
        (Crash::Erasure(death, _), Some(epoch)) => Crash::Erasure(death, epoch),
        (crash, _) => crash,
    };
    let payers: Vec<(Who, Vec<Coin>)> = (0..PAYERS)
        .map(|i| {
            let payer = h.purchaser(&format!("payer-{i}"), i, 10_000);
            let coins = h.buy(&payer, spec(&[(COINS_EACH, COIN_MINOR)]));
            (payer, coins)
        })
        .collect();

    let mut all = pay_round(&h, &shop, &payers, 0);
    if old_epoch.is_some() {
        h.clock.advance(TO_ERASURE_SECS);
    }

    let mut crashed_round = crash_round_through_the_issuer(&mut h, &shop, &payers, &crash);
    let unanswered = crashed_round
        .iter()
        .filter(|p| p.answered.is_none())
        .count();
    match &crash {
        Crash::Log(plan) if plan.fault() != StoreFault::AfterAcknowledged => {
            assert!(unanswered >= 1, "{fault}: every payment was answered");
        }
        // The log took every batch: every payment was answered.
        Crash::ProjectionApply(_) | Crash::Erasure(..) => {
            assert_eq!(unanswered, 0, "{fault}");
        }
        Crash::Log(_) => {}
    }

    // Restart from the files; every payee retries every payment of the
    // crashed round (an answer may have been lost), and one answered
    // payment of the first round is sent again: each gets the outcome it
    // got before, never "double spent".
    restart(&mut h);
    assert_eq!(h.core().n_reserved(), 0, "{fault}");
    if !matches!(crash, Crash::Log(_)) {
        assert!(h.core().shards_booted_from_checkpoint(), "{fault}");
    }
    if let Some(epoch) = old_epoch {
        assert!(
            h.core()
                .epoch_ends()
                .iter()
                .any(|(e, end)| *e == epoch && matches!(end, vc_actors::EpochEnd::Erased { .. })),
            "the erasure is in the log"
        );
    }
    for payment in crashed_round.iter_mut() {
        let coins = validate(&h, &shop, payment).expect("the retry is answered");
        if let Some(before) = &payment.answered {
            assert_eq!(
                coins.iter().map(Coin::id).collect::<Vec<_>>(),
                before.iter().map(Coin::id).collect::<Vec<_>>(),
                "{fault}: a retry of an answered payment gets the same coins"
            );
        }
        payment.answered = Some(coins);
    }
    let first = all.first_mut().expect("a payment");
    let again = validate(&h, &shop, first).expect("a repeat is answered");
    assert_eq!(
        again.iter().map(Coin::id).collect::<Vec<_>>(),
        first
            .answered
            .as_ref()
            .expect("answered")
            .iter()
            .map(Coin::id)
            .collect::<Vec<_>>(),
        "{fault}: a repeat gets the same coins"
    );
    all.append(&mut crashed_round);
    all.extend(pay_round(&h, &shop, &payers, 2));

    // Every payment present exactly once: one fresh coin each, unspent.
    let shop_coins: Vec<CoinId> = all
        .iter()
        .flat_map(|p| p.answered.as_ref().expect("answered"))
        .map(Coin::id)
        .collect();
    assert_eq!(shop_coins.len(), PAYERS * COINS_EACH as usize, "{fault}");
    assert_eq!(
        shop_coins.iter().collect::<BTreeSet<_>>().len(),
        shop_coins.len(),
        "{fault}: no coin given twice"
    );
    for id in &shop_coins {
        assert!(h.core().unspent_coin(id).is_some(), "{fault}");
    }
    for (_, coins) in &payers {
        for c in coins {
            assert!(h.core().unspent_coin(&c.id()).is_none(), "{fault}");
        }
    }
    h.assert_conserved();
    assert_eq!(
        h.core().totals().outstanding,
        i128::from(COIN_MINOR) * shop_coins.len() as i128,
        "{fault}: the outstanding e-money is the payee's coins"
    );

    // No coin spent twice, in the log itself.
    let mut spent = BTreeSet::new();
    for record in
        EventStore::read(h.core().store().as_ref(), ledger::Seq(1), 100_000).expect("read")
    {
        if let Event::CoinsSpent { coins, .. } = &record.record.event {
            for c in coins {
                assert!(spent.insert(c.id), "{fault}: coin {} spent twice", c.id);
            }
        }
    }
    // The early payer's coins, for the erasure, were spent before.
    let early_spent = if old_epoch.is_some() { 2 } else { 0 };
    assert_eq!(
        spent.len(),
        PAYERS * COINS_EACH as usize + early_spent,
        "{fault}"
    );

    let report = h.stop_and_audit();
    assert_eq!(
        report.outcome,
        replay::Outcome::Holds,
        "{fault}: {}",
        report.headline()
    );
    assert_eq!(report.unspent_coins, shop_coins.len() as u64, "{fault}");
}

fn log_dies(fault: StoreFault) -> Crash {
    Crash::Log(FaultPlan::new(fault, BATCHES_BEFORE_CRASH))
}

#[test]
fn a_log_that_dies_before_the_append_under_load_loses_nothing_and_spends_nothing_twice() {
    crash_under_load_then_retry(log_dies(StoreFault::BeforeAppend));
}

#[test]
fn a_log_whose_fsync_fails_under_load_loses_nothing_and_spends_nothing_twice() {
    crash_under_load_then_retry(log_dies(StoreFault::FsyncFails));
}

#[test]
fn a_log_that_dies_after_the_durable_append_under_load_loses_nothing() {
    crash_under_load_then_retry(log_dies(StoreFault::AfterDurable));
}

#[test]
fn a_log_that_dies_after_acknowledging_under_load_loses_nothing_and_answers_the_same() {
    crash_under_load_then_retry(log_dies(StoreFault::AfterAcknowledged));
}

#[test]
fn a_coin_status_file_that_dies_mid_apply_under_load_loses_nothing() {
    crash_under_load_then_retry(Crash::ProjectionApply(DiskDeath::new()));
}

#[test]
fn a_coin_status_file_that_dies_mid_erasure_under_load_loses_nothing_and_erases_once() {
    // The epoch is filled in once the test has opened it.
    crash_under_load_then_retry(Crash::Erasure(DiskDeath::new(), KeyEpoch(0)));
}

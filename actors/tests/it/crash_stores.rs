//! Crashes injected under the issuer, in the store it writes its log to:
//! the production issuer runs unchanged over a wrapper
//! (`ledger::fault::FaultyStore`, and for a failed fsync
//! `ledger::fault::FaultyFile` under redb) that stops dead at one point of
//! an append while four payers pay at once through the actor path (the
//! `Issuer` handle the gateway calls). The wrapper then drops the log file,
//! as a dead process does; the test stops the actor system, restarts the
//! issuer from its files, and every payee retries every payment of the
//! crashed round, answered or not (an answer may have been lost on the
//! way). Afterwards:
//!
//! - every acknowledged payment is present exactly once, and its retry gets
//!   the same coins;
//! - no coin is spendable twice: every payer's coin is spent, no coin id is
//!   in two `CoinsSpent` events, and the payee holds one fresh coin per
//!   payment, all unspent;
//! - conservation holds (the issuer's totals, and the auditor over the
//!   files alone).
//!
//! The faults, at the append that takes the log past two batches of the
//! crashed round:
//! - `BeforeAppend`: nothing of the batch written;
//! - `FsyncFails`: the pages written, the fsync failed (redb's commit
//!   protocol decides whether the batch survives: either is correct);
//! - `AfterDurable`: durable, the issuer never told;
//! - `AfterAcknowledged`: durable and acknowledged: the shards commit and
//!   the answers may go out, then the log is dead (answers treated as lost).
//!
//! These are the points of `tests/it/crash_points.rs` reached from below, with
//! no hook in the issuer; crashes inside the coin-status projection
//! (during its apply, during the erasure of spent coins) are in
//! `tests/it/crash_points.rs` and `projections/tests/it/crash_points.rs`.

use crate::util;

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::fault::{FaultPlan, FaultyFile, FaultyStore, StoreFault};
use ledger::{Coin, CoinId, Event, EventStore, RedbOptions, RedbStore, Role};
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

/// The issuer's log over the fault wrapper: `log.redb` opened as the
/// issuer opens it, on a `FaultyFile` for a failed fsync.
fn faulty_log(h: &Harness, plan: &Arc<FaultPlan>) -> Arc<dyn EventStore> {
    let path = h.config().dir.join("log.redb");
    let store = match plan.fault() {
        StoreFault::FsyncFails => {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .expect("log file");
            let backend = FaultyFile::new(file, plan.clone()).expect("backend");
            RedbStore::open_on_backend(backend, RedbOptions::default()).expect("log opens")
        }
        _ => RedbStore::open(&path).expect("log opens"),
    };
    Arc::new(FaultyStore::new(store, plan.clone()))
}

/// Round 1 through the `Issuer` handle of an issuer whose log stops dead as
/// `plan` says: every payer's ValidationRequest goes to `Issuer::validate`
/// at once and each answer is opened and acknowledged. Returns with the
/// actor system stopped.
fn crash_round_through_the_issuer(
    h: &mut Harness,
    shop: &Who,
    payers: &[(Who, Vec<Coin>)],
    plan: &Arc<FaultPlan>,
) -> Vec<Payment> {
    let mut payments = payments_of_round(h, shop, payers, 1);
    let requests: Vec<_> = payments
        .iter()
        .map(|p| h.validation(&p.payee_state, &p.send, refresh(COIN_MINOR)))
        .collect();
    h.core = None;
    let mut config = h.config();
    config.log_store = Some(faulty_log(h, plan));
    let bank = h.bank().clone();
    let sk_py = shop.sk;
    let system = actix_rt::System::new();
    let answered: Vec<Option<Vec<Coin>>> = system.block_on(async move {
        let issuer = Issuer::start(config, bank).expect("issuer starts");
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
        answered
    });
    drop(system);
    assert!(plan.has_struck(), "the fault was reached");
    for (payment, coins) in payments.iter_mut().zip(answered) {
        payment.answered = coins;
    }
    payments
}

/// Runs the three rounds with `fault` in the second.
fn crash_under_load_then_retry(fault: StoreFault) {
    let mut h = Harness::new();
    let shop = Who::new("shop", 5);
    h.register(&shop, 0);
    h.enroll(&shop, Role::Merchant);
    let payers: Vec<(Who, Vec<Coin>)> = (0..PAYERS)
        .map(|i| {
            let payer = h.purchaser(&format!("payer-{i}"), i, 10_000);
            let coins = h.buy(&payer, spec(&[(COINS_EACH, COIN_MINOR)]));
            (payer, coins)
        })
        .collect();

    let mut all = pay_round(&h, &shop, &payers, 0);

    let plan = FaultPlan::new(fault, BATCHES_BEFORE_CRASH);
    let mut crashed_round = crash_round_through_the_issuer(&mut h, &shop, &payers, &plan);
    let unanswered = crashed_round
        .iter()
        .filter(|p| p.answered.is_none())
        .count();
    if fault != StoreFault::AfterAcknowledged {
        assert!(unanswered >= 1, "{fault:?}: every payment was answered");
    }

    // Restart from the files; every payee retries every payment of the
    // crashed round (an answer may have been lost), and one answered
    // payment of the first round is sent again: each gets the outcome it
    // got before, never "double spent".
    restart(&mut h);
    assert_eq!(h.core().n_reserved(), 0, "{fault:?}");
    for payment in crashed_round.iter_mut() {
        let coins = validate(&h, &shop, payment).expect("the retry is answered");
        if let Some(before) = &payment.answered {
            assert_eq!(
                coins.iter().map(Coin::id).collect::<Vec<_>>(),
                before.iter().map(Coin::id).collect::<Vec<_>>(),
                "{fault:?}: a retry of an answered payment gets the same coins"
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
        "{fault:?}: a repeat gets the same coins"
    );
    all.append(&mut crashed_round);
    all.extend(pay_round(&h, &shop, &payers, 2));

    // Every payment present exactly once: one fresh coin each, unspent.
    let shop_coins: Vec<CoinId> = all
        .iter()
        .flat_map(|p| p.answered.as_ref().expect("answered"))
        .map(Coin::id)
        .collect();
    assert_eq!(shop_coins.len(), PAYERS * COINS_EACH as usize, "{fault:?}");
    assert_eq!(
        shop_coins.iter().collect::<BTreeSet<_>>().len(),
        shop_coins.len(),
        "{fault:?}: no coin given twice"
    );
    for id in &shop_coins {
        assert!(h.core().unspent_coin(id).is_some(), "{fault:?}");
    }
    for (_, coins) in &payers {
        for c in coins {
            assert!(h.core().unspent_coin(&c.id()).is_none(), "{fault:?}");
        }
    }
    h.assert_conserved();
    assert_eq!(
        h.core().totals().outstanding,
        i128::from(COIN_MINOR) * shop_coins.len() as i128,
        "{fault:?}: the outstanding e-money is the payee's coins"
    );

    // No coin spent twice, in the log itself.
    let mut spent = BTreeSet::new();
    for record in
        EventStore::read(h.core().store().as_ref(), ledger::Seq(1), 100_000).expect("read")
    {
        if let Event::CoinsSpent { coins, .. } = &record.record.event {
            for c in coins {
                assert!(spent.insert(c.id), "{fault:?}: coin {} spent twice", c.id);
            }
        }
    }
    assert_eq!(spent.len(), PAYERS * COINS_EACH as usize, "{fault:?}");

    let report = h.stop_and_audit();
    assert_eq!(
        report.outcome,
        replay::Outcome::Holds,
        "{fault:?}: {}",
        report.headline()
    );
    assert_eq!(report.unspent_coins, shop_coins.len() as u64, "{fault:?}");
}

#[test]
fn a_log_that_dies_before_the_append_under_load_loses_nothing_and_spends_nothing_twice() {
    crash_under_load_then_retry(StoreFault::BeforeAppend);
}

#[test]
fn a_log_whose_fsync_fails_under_load_loses_nothing_and_spends_nothing_twice() {
    crash_under_load_then_retry(StoreFault::FsyncFails);
}

#[test]
fn a_log_that_dies_after_the_durable_append_under_load_loses_nothing() {
    crash_under_load_then_retry(StoreFault::AfterDurable);
}

#[test]
fn a_log_that_dies_after_acknowledging_under_load_loses_nothing_and_answers_the_same() {
    crash_under_load_then_retry(StoreFault::AfterAcknowledged);
}

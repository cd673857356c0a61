//! Crash points under concurrent load: for each named point of the commit
//! path, several payers pay at once through the actor path (the `Issuer`
//! handle the gateway calls, started as the gateway starts it) while the
//! issuer stops dead at that point (after two payments have passed it);
//! the issuer is restarted from its files and every payee retries what was
//! not answered. Afterwards:
//!
//! - the auditor (`replay::run_audit`, with the coin-status check) passes
//!   over the log;
//! - no acknowledged payment is missing: every coin an answer gave the
//!   payee is unspent in the restarted issuer;
//! - no coin is spent twice: no coin id appears in two `CoinsSpent` events;
//! - every client ends with exactly what it should: the payers' coins are
//!   all spent, the payee holds one fresh coin per payment, and the
//!   outstanding e-money is exactly the payee's coins (conservation).
//!
//! The sixth point, during the erasure of spent coins, belongs to the
//! coin-status projection: `projections/tests/it/crash_points.rs`.

use crate::util;

use std::collections::BTreeSet;

use std::time::{Duration, Instant};

use ledger::{Coin, CoinId, Event, Role};
use protocol::flows::{PayeeOutcome, PaymentPayee};
use protocol::wire::payment::{PaymentIssuance1, SendCoins};
use util::{Harness, Who, refresh, spec};
use vc_actors::{CrashPoint, Issuer, IssuerCore, IssuerError};

const PAYERS: usize = 4;
/// Each payer's coins: one payment per round (before, at and after the crash).
const COINS_EACH: u32 = 3;
const COIN_MINOR: u64 = 100;
/// Payments that pass the crash point before the one that stops there.
const PASSES_BEFORE_CRASH: u32 = 2;
/// Table writes the coin-status checkpoint makes before it stops: past the
/// first record of a batch and before its last.
const PROJECTION_WRITES_BEFORE_CRASH: u32 = 5;

/// One payment of one coin to the shop, as its payee retries it.
struct Payment {
    payee_state: PaymentPayee,
    send: SendCoins,
    /// The fresh coins the issuer's answer gave the payee, once answered.
    answered: Option<Vec<Coin>>,
}

/// How long a restart waits for the stopped actor system's threads to let
/// go of the issuer's files.
const RESTART_WAIT_SECS: u64 = 30;

fn restart(h: &mut Harness) {
    h.core = None;
    let started = Instant::now();
    loop {
        match IssuerCore::open(h.config(), h.bank().clone()) {
            Ok(core) => {
                h.core = Some(core);
                return;
            }
            // The stopped actor system's worker threads may still hold the
            // files for a moment.
            Err(e) if started.elapsed() < Duration::from_secs(RESTART_WAIT_SECS) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("the issuer does not restart: {e}"),
        }
    }
}

/// Sends the ValidationRequest of `payment` (a retry builds a new one for
/// the same transaction) and keeps the payee's coins if it is answered.
fn validate(h: &Harness, shop: &Who, payment: &mut Payment) -> Result<(), IssuerError> {
    let (awaiting, vreq) = h.validation(&payment.payee_state, &payment.send, refresh(COIN_MINOR));
    let iss1: PaymentIssuance1 = h.core().validate(&vreq)?;
    match awaiting
        .on_issuance1(shop.sk, &iss1)
        .expect("the answer opens")
    {
        PayeeOutcome::Coins { coins, ack } => {
            // The ack only closes the session: a dead issuer may refuse it.
            let _ = h.core().payment_issuance2(&ack);
            payment.answered = Some(coins);
            Ok(())
        }
        other => panic!("a payment with good coins was refused: {other:?}"),
    }
}

/// Every payer's payment of its coin `round` to the shop, not yet sent.
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

/// Every payer pays its coin `round` to the shop, all at once; returns the
/// payments, answered or not.
fn pay_round(h: &Harness, shop: &Who, payers: &[(Who, Vec<Coin>)], round: usize) -> Vec<Payment> {
    let mut payments = payments_of_round(h, shop, payers, round);
    std::thread::scope(|s| {
        for payment in payments.iter_mut() {
            s.spawn(move || match validate(h, shop, payment) {
                Ok(()) | Err(IssuerError::Crashed) => {}
                Err(e) => panic!("a payment failed otherwise than by the crash: {e}"),
            });
        }
    });
    payments
}

/// Round 1 through the `Issuer` handle of an issuer that stops dead at
/// `point` after `passes`: every payer's ValidationRequest goes to
/// `Issuer::validate` at once, each answer is opened and acknowledged
/// (the ack only closes the session: a dead issuer may refuse it). For a
/// crash in the coin-status projection, its checkpoint races the payments
/// as the housekeeper's does. Returns with the actor system stopped.
fn crash_round_through_the_issuer(
    h: &mut Harness,
    shop: &Who,
    payers: &[(Who, Vec<Coin>)],
    point: CrashPoint,
    passes: u32,
) -> Vec<Payment> {
    let mut payments = payments_of_round(h, shop, payers, 1);
    let requests: Vec<_> = payments
        .iter()
        .map(|p| h.validation(&p.payee_state, &p.send, refresh(COIN_MINOR)))
        .collect();
    let mut config = h.config();
    config.crash_at = Some(point);
    config.crash_after_passes = passes;
    h.core = None;
    let bank = h.bank().clone();
    let sk_py = shop.sk;
    let projection = point == CrashPoint::DuringProjectionApply;
    let system = actix_rt::System::new();
    let answered: Vec<Option<Vec<Coin>>> = system.block_on(async move {
        let issuer = Issuer::start(config, bank).expect("issuer starts");
        let checkpoints = projection.then(|| {
            let core = issuer.core().clone();
            std::thread::spawn(move || {
                while !core.has_crashed() {
                    match core.checkpoint_coin_status() {
                        Ok(_) => std::thread::sleep(Duration::from_millis(2)),
                        Err(IssuerError::Crashed) => break,
                        Err(e) => panic!("checkpoint failed otherwise than by the crash: {e}"),
                    }
                }
            })
        });
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|(awaiting, vreq)| {
                let issuer = issuer.clone();
                actix_rt::spawn(async move {
                    let iss1: PaymentIssuance1 = match issuer.validate(vreq).await {
                        Ok(iss1) => iss1,
                        Err(IssuerError::Crashed) => return None,
                        Err(e) => panic!("a payment failed otherwise than by the crash: {e}"),
                    };
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
        if let Some(checkpoints) = checkpoints {
            if !issuer.core().has_crashed() {
                // The payments were quicker: their records are still to apply.
                assert!(matches!(
                    issuer.core().checkpoint_coin_status(),
                    Err(IssuerError::Crashed)
                ));
            }
            checkpoints.join().expect("checkpoint thread");
        }
        assert!(
            issuer.core().has_crashed(),
            "{point:?}: the crash point was reached"
        );
        answered
    });
    drop(system);
    for (payment, coins) in payments.iter_mut().zip(answered) {
        payment.answered = coins;
    }
    payments
}

/// Runs the three rounds with a crash at `point` in the second.
fn crash_under_load_then_retry(point: CrashPoint) {
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
    assert!(
        all.iter().all(|p| p.answered.is_some()),
        "{point:?}: round 0"
    );

    // The crash, under load, through the actor path.
    let projection = point == CrashPoint::DuringProjectionApply;
    let passes = if projection {
        PROJECTION_WRITES_BEFORE_CRASH
    } else {
        PASSES_BEFORE_CRASH
    };
    let mut crashed_round = crash_round_through_the_issuer(&mut h, &shop, &payers, point, passes);

    let unanswered = crashed_round
        .iter()
        .filter(|p| p.answered.is_none())
        .count();
    if !projection {
        assert!(
            unanswered >= PAYERS - PASSES_BEFORE_CRASH as usize,
            "{point:?}: {unanswered} unanswered"
        );
    }

    // Restart from the files; every payee retries what was not answered,
    // and one answered payment is sent again: the same outcome, never
    // "double spent".
    restart(&mut h);
    if projection {
        assert!(h.core().shards_booted_from_checkpoint(), "{point:?}");
    }
    assert_eq!(h.core().n_reserved(), 0, "{point:?}");
    for payment in crashed_round.iter_mut().filter(|p| p.answered.is_none()) {
        validate(&h, &shop, payment).expect("the retry is answered");
    }
    let first = all.first_mut().expect("a payment");
    let before = first.answered.clone();
    validate(&h, &shop, first).expect("a repeat is answered");
    assert_eq!(
        first
            .answered
            .as_ref()
            .map(|c| c.iter().map(Coin::id).collect::<Vec<_>>()),
        before
            .as_ref()
            .map(|c| c.iter().map(Coin::id).collect::<Vec<_>>()),
        "{point:?}: a repeat gets the same coins"
    );
    all.append(&mut crashed_round);

    // The restarted issuer serves the last round in full.
    let last = pay_round(&h, &shop, &payers, 2);
    assert!(
        last.iter().all(|p| p.answered.is_some()),
        "{point:?}: round 2"
    );
    all.extend(last);

    // Acknowledged payments are all there; the payee holds exactly one
    // fresh coin per payment, and they are all unspent.
    let shop_coins: Vec<CoinId> = all
        .iter()
        .flat_map(|p| p.answered.as_ref().expect("answered"))
        .map(Coin::id)
        .collect();
    assert_eq!(shop_coins.len(), PAYERS * COINS_EACH as usize, "{point:?}");
    for id in &shop_coins {
        assert!(
            h.core().unspent_coin(id).is_some(),
            "{point:?}: an answered payment's coin is not unspent"
        );
    }
    // The payers hold nothing any more.
    for (_, coins) in &payers {
        for c in coins {
            assert!(h.core().unspent_coin(&c.id()).is_none(), "{point:?}");
        }
    }
    h.assert_conserved();
    assert_eq!(
        h.core().totals().outstanding,
        i128::from(COIN_MINOR) * shop_coins.len() as i128,
        "{point:?}: the outstanding e-money is the payee's coins"
    );

    // No coin spent twice, in the log itself.
    let mut spent = BTreeSet::new();
    for record in
        ledger::EventStore::read(h.core().store().as_ref(), ledger::Seq(1), 100_000).expect("read")
    {
        if let Event::CoinsSpent { coins, .. } = &record.record.event {
            for c in coins {
                assert!(spent.insert(c.id), "{point:?}: coin {} spent twice", c.id);
            }
        }
    }
    assert_eq!(spent.len(), PAYERS * COINS_EACH as usize, "{point:?}");

    // The auditor agrees, over the files alone.
    let report = h.stop_and_audit();
    assert_eq!(
        report.outcome,
        replay::Outcome::Holds,
        "{point:?}: {}",
        report.headline()
    );
    assert_eq!(report.unspent_coins, shop_coins.len() as u64, "{point:?}");
}

#[test]
fn a_crash_after_reserving_under_load_loses_nothing_and_spends_nothing_twice() {
    crash_under_load_then_retry(CrashPoint::AfterReserve);
}

#[test]
fn a_crash_before_the_append_under_load_loses_nothing_and_spends_nothing_twice() {
    crash_under_load_then_retry(CrashPoint::BeforeAppend);
}

#[test]
fn a_crash_after_the_append_before_its_fsync_under_load_loses_nothing_and_spends_nothing_twice() {
    crash_under_load_then_retry(CrashPoint::AfterAppendBeforeFsync);
}

#[test]
fn a_crash_after_the_durable_append_before_the_shards_commit_under_load_loses_nothing() {
    crash_under_load_then_retry(CrashPoint::AfterDurable);
}

#[test]
fn a_crash_after_the_commit_before_the_answer_under_load_loses_nothing() {
    crash_under_load_then_retry(CrashPoint::AfterCommit);
}

#[test]
fn a_crash_during_the_coin_status_apply_under_load_loses_nothing() {
    crash_under_load_then_retry(CrashPoint::DuringProjectionApply);
}

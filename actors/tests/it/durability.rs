//! Nothing is acknowledged before it is durable: when the log stops taking
//! writes, the payment is not answered with coins, its reservations are
//! released, no coin leaves the shards, and the issuer stops (fail-stop):
//! it refuses every later commit until restarted from its log (it never
//! guesses what the disk holds).

use crate::util;

use std::sync::Arc;

use ledger::fault::{FaultPlan, StoreFault};
use ledger::{MemoryStore, Role};
use protocol::wire::payment::PaymentOutcome;
use util::{Harness, Who, refresh, spec};
use vc_actors::{IssuerCore, IssuerError};

#[test]
fn a_failed_log_append_acknowledges_nothing_and_releases_the_reservations() {
    // Build coins with an ordinary issuer, then run a second issuer over a
    // memory log that a test can break. Its log starts with the same events.
    let h = Harness::new();
    let alice = h.purchaser("alice", 0, 1_000);
    let shop = Who::new("shop", 1);
    h.register(&shop, 0);
    h.enroll(&shop, Role::Merchant);
    let coins = h.buy(&alice, spec(&[(1, 500)]));
    let (payee_state, _payer, _inv, send) = h.send_coins(&alice, &shop, coins.clone());
    let (_awaiting, vreq) = h.validation(&payee_state, &send, refresh(500));

    let memory = Arc::new(MemoryStore::new());
    let records =
        ledger::EventStore::read(h.core().store().as_ref(), ledger::Seq(1), 10_000).expect("read");
    let mut batches: Vec<ledger::Batch> = Vec::new();
    for r in records {
        let r = r.record;
        if r.batch_index == 0 {
            batches.push(ledger::Batch {
                tx: r.tx,
                at: r.at,
                events: Vec::new(),
            });
        }
        batches.last_mut().expect("a batch").events.push(r.event);
    }
    ledger::EventStore::append(memory.as_ref(), &batches).expect("copy the log");
    let mut config = h.config();
    config.dir = h.dir.path().join("issuer-copy");
    std::fs::create_dir_all(&config.dir).expect("dir");
    for file in [
        "issuer.key",
        "user-index.pub",
        "mint.key",
        "registry.redb",
        "registry.key",
    ] {
        std::fs::copy(
            h.dir.path().join("issuer").join(file),
            config.dir.join(file),
        )
        .expect("copy issuer file");
    }
    config.memory_log = Some(memory.clone());
    let copy = IssuerCore::open(config, h.bank().clone()).expect("second issuer");
    assert!(copy.unspent_coin(&coins[0].id()).is_some());

    memory.fail_after_appends(0);
    let err = copy
        .validate(&vreq)
        .expect_err("no answer without a durable log");
    assert!(matches!(err, IssuerError::Log(_)), "got {err}");
    assert_eq!(copy.n_reserved(), 0, "reservations outlived the failure");
    assert!(
        copy.unspent_coin(&coins[0].id()).is_some(),
        "the coin left without a log record"
    );
    // The issuer stopped (fail-stop): later commits are refused, not guessed.
    assert!(copy.fail_stop().is_stopped());
    assert!(matches!(
        copy.validate(&vreq),
        Err(IssuerError::FailStopped(_))
    ));

    // The original issuer still serves the same request once.
    let iss1 = h.core().validate(&vreq).expect("served");
    assert!(matches!(iss1.outcome, PaymentOutcome::Refreshed { .. }));
    h.assert_conserved();
}

/// A bank whose credits fail while `down` is set: stands in for a crash
/// between the durable redemption and its bank credit.
struct FlakyBank {
    inner: Arc<vc_actors::SimulatedBank>,
    down: std::sync::atomic::AtomicBool,
}

impl vc_actors::Bank for FlakyBank {
    fn debit(
        &self,
        purchase: ledger::PurchaseId,
        account: &ledger::BankAccount,
        amount: ledger::Amount,
    ) -> Result<vc_actors::DebitStatus, vc_actors::BankError> {
        self.inner.debit(purchase, account, amount)
    }
    fn debit_status(
        &self,
        purchase: ledger::PurchaseId,
    ) -> Result<vc_actors::DebitStatus, vc_actors::BankError> {
        self.inner.debit_status(purchase)
    }
    fn check_account(&self, account: &ledger::BankAccount) -> Result<(), vc_actors::BankError> {
        self.inner.check_account(account)
    }
    fn credit(
        &self,
        reference: ledger::TxId,
        account: &ledger::BankAccount,
        amount: ledger::Amount,
    ) -> Result<(), vc_actors::BankError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(vc_actors::BankError::Corrupt("bank link down".into()));
        }
        self.inner.credit(reference, account, amount)
    }
    fn statement(
        &self,
        from_seq: u64,
        max_entries: usize,
    ) -> Result<Vec<vc_actors::StatementEntry>, vc_actors::BankError> {
        self.inner.statement(from_seq, max_entries)
    }
}

#[test]
fn a_redemption_committed_before_its_bank_credit_is_credited_once_after_restart() {
    use vc_actors::Bank;
    let mut h = Harness::new();
    let alice = h.purchaser("alice", 0, 1_000);
    let shop = Who::new("shop", 1);
    h.register(&shop, 0);
    h.enroll(&shop, Role::Merchant);
    let coins = h.buy(&alice, spec(&[(1, 400)]));
    let (payee_state, _payer, _inv, send) = h.send_coins(&alice, &shop, coins);
    let option = protocol::wire::payment::VOption::Redeem {
        bank_account: shop.account.clone(),
    };
    let (awaiting, vreq) = h.validation(&payee_state, &send, option);
    let config = h.config();
    h.core = None;
    {
        let flaky = Arc::new(FlakyBank {
            inner: h.bank().clone(),
            down: std::sync::atomic::AtomicBool::new(true),
        });
        let issuer = IssuerCore::open(config, flaky).expect("issuer");
        assert!(matches!(issuer.validate(&vreq), Err(IssuerError::Bank(_))));
        // The redemption is in the log; the money has not reached the bank.
        assert_eq!(issuer.totals().real_out, 400);
        assert_eq!(
            h.bank().balance(&shop.account).expect("balance"),
            ledger::Amount::ZERO
        );
    }
    h.restart();
    assert_eq!(
        h.bank().balance(&shop.account).expect("balance"),
        ledger::Amount::from_minor(400),
        "the restart finished the credit"
    );
    // The payee's retry gets its receipt; the bank is not credited twice.
    let iss1 = h.core().validate(&vreq).expect("retry");
    assert!(matches!(
        awaiting.on_issuance1(shop.sk, &iss1),
        Ok(protocol::flows::PayeeOutcome::Receipt(_))
    ));
    assert_eq!(
        h.bank().balance(&shop.account).expect("balance"),
        ledger::Amount::from_minor(400)
    );
    assert_eq!(h.bank().statement(1, 100).expect("statement").len(), 2);
    h.assert_conserved();
}

/// Crash tests: the issuer's log dies at one point of a payment's append
/// (`ledger::fault::FaultyStore` under the unchanged issuer, a
/// `FaultyFile` under redb for the failed fsync), the issuer is restarted
/// from its files, and the payee retries: the payment completes exactly
/// once, with a new coin or a receipt whether or not the batch reached the
/// log, and a redemption credits the bank once. With the idempotency
/// rebuild at start removed (the table neither fed from the log nor backed
/// by the transaction index), each of the eight fails: a retry after a
/// restart is refused "already spent".
fn a_crash_in_the_append_then_a_retry_completes_exactly_once(fault: StoreFault, redeem: bool) {
    use protocol::flows::PayeeOutcome;
    use protocol::wire::payment::VOption;
    let mut h = Harness::new();
    let alice = h.purchaser("alice", 0, 1_000);
    let shop = Who::new("shop", 1);
    h.register(&shop, 0);
    h.enroll(&shop, Role::Merchant);
    let coins = h.buy(&alice, spec(&[(2, 250)]));
    let option = if redeem {
        VOption::Redeem {
            bank_account: shop.account.clone(),
        }
    } else {
        refresh(500)
    };
    let (payee_state, _payer, _inv, send) = h.send_coins(&alice, &shop, coins.clone());
    let (_lost, vreq) = h.validation(&payee_state, &send, option.clone());
    let plan = FaultPlan::new(fault, 0);
    let log = h.faulty_log(&plan);
    h.restart_on_log(log);
    let answered = h.core().validate(&vreq);
    assert!(plan.has_struck(), "{fault:?}: the append met the fault");
    // Acknowledged batches may be answered; the answer is treated as lost.
    assert!(
        answered.is_err() || fault == StoreFault::AfterAcknowledged,
        "{fault:?}"
    );
    h.restart();
    assert_eq!(h.core().n_reserved(), 0, "{fault:?}");
    let spent_in_log = |h: &Harness| {
        ledger::EventStore::read(h.core().store().as_ref(), ledger::Seq(1), 1000)
            .expect("read")
            .iter()
            .filter(|r| matches!(r.record.event, ledger::Event::CoinsSpent { .. }))
            .count()
    };
    let logged = spent_in_log(&h) == 1;
    match fault {
        StoreFault::BeforeAppend => assert!(!logged, "nothing written"),
        // Written, its fsync failed: redb's commit protocol decides.
        StoreFault::FsyncFails => {}
        StoreFault::AfterDurable | StoreFault::AfterAcknowledged => {
            assert!(logged, "{fault:?}: durable")
        }
    }
    for c in &coins {
        assert_eq!(
            h.core().unspent_coin(&c.id()).is_none(),
            logged,
            "{fault:?}: the log decides whether the coins are spent"
        );
    }
    let (awaiting, vreq) = h.validation(&payee_state, &send, option.clone());
    let iss1 = h.core().validate(&vreq).expect("retry answered");
    match awaiting.on_issuance1(shop.sk, &iss1).expect("opens") {
        PayeeOutcome::Coins { coins: new, .. } => {
            assert!(!redeem);
            assert_eq!(new.len(), 1);
        }
        PayeeOutcome::Receipt(_) => assert!(redeem),
        PayeeOutcome::Rejected(s) => panic!("{fault:?}: refused {:?}", s.reason),
    }
    // Once more after another restart: still the same outcome, never
    // "double spent" (the restart knows the transaction from its log).
    h.restart();
    let (again, vreq) = h.validation(&payee_state, &send, option);
    assert!(
        !matches!(
            again.on_issuance1(shop.sk, &h.core().validate(&vreq).expect("answered")),
            Ok(PayeeOutcome::Rejected(_))
        ),
        "{fault:?}"
    );
    let credited = h.bank().balance(&shop.account).expect("balance");
    let expected = if redeem { 500 } else { 0 };
    assert_eq!(credited, ledger::Amount::from_minor(expected), "{fault:?}");
    assert_eq!(spent_in_log(&h), 1, "{fault:?}: exactly once");
    h.assert_conserved();
}

#[test]
fn a_refresh_whose_log_died_before_the_append_completes_once_on_retry() {
    a_crash_in_the_append_then_a_retry_completes_exactly_once(StoreFault::BeforeAppend, false);
}

#[test]
fn a_redemption_whose_log_died_before_the_append_credits_once_on_retry() {
    a_crash_in_the_append_then_a_retry_completes_exactly_once(StoreFault::BeforeAppend, true);
}

#[test]
fn a_refresh_whose_fsync_failed_completes_once_on_retry() {
    a_crash_in_the_append_then_a_retry_completes_exactly_once(StoreFault::FsyncFails, false);
}

#[test]
fn a_redemption_whose_fsync_failed_credits_once_on_retry() {
    a_crash_in_the_append_then_a_retry_completes_exactly_once(StoreFault::FsyncFails, true);
}

#[test]
fn a_refresh_durable_but_never_told_completes_once_on_retry() {
    a_crash_in_the_append_then_a_retry_completes_exactly_once(StoreFault::AfterDurable, false);
}

#[test]
fn a_redemption_durable_but_never_told_credits_once_on_retry() {
    a_crash_in_the_append_then_a_retry_completes_exactly_once(StoreFault::AfterDurable, true);
}

#[test]
fn a_refresh_committed_then_the_log_died_answers_the_same_on_retry() {
    a_crash_in_the_append_then_a_retry_completes_exactly_once(StoreFault::AfterAcknowledged, false);
}

#[test]
fn a_redemption_committed_then_the_log_died_credits_once_on_retry() {
    a_crash_in_the_append_then_a_retry_completes_exactly_once(StoreFault::AfterAcknowledged, true);
}

/// W3 without losing purchases: a WRequest3 whose append failed has not
/// spent R_I, so the same message, retried after the restart, logs the
/// purchase (once) instead of being refused as a replay; a second copy
/// after that is the replay W3 refuses, and no second debit is asked.
#[test]
fn a_wrequest3_whose_append_failed_is_logged_by_its_retry_and_then_refused_as_a_replay() {
    use protocol::flows::{PurchaseClient, PurchaseUpdate};
    use protocol::wire::purchase::WDesc;
    let mut h = Harness::new();
    let memory = Arc::new(MemoryStore::new());
    let mut config = h.config();
    config.dir = h.dir.path().join("issuer-memory-log");
    config.memory_log = Some(memory.clone());
    h.core = Some(IssuerCore::open(config.clone(), h.bank().clone()).expect("issuer"));
    let alice = h.purchaser("alice", 0, 1_000);
    let core = h.core();
    let (state, w1) = PurchaseClient::start(
        core.suite(),
        alice.sk,
        alice.id.clone(),
        &h.pk_i(),
        core.now(),
    )
    .expect("wrequest1");
    let w2 = core.wrequest1(&w1).expect("wrequest2");
    let w_desc = WDesc {
        spec: spec(&[(3, 100)]),
        amount: ledger::Amount::from_minor(300),
        bank_account: alice.account.clone(),
        anonymous: false,
    };
    let (awaiting, w3) = state
        .on_wrequest2(alice.sk, core.id(), &w2, w_desc)
        .expect("wrequest3");

    memory.fail_after_appends(0);
    assert!(matches!(core.wrequest3(&w3), Err(IssuerError::Log(_))));
    // The disk is back; the issuer restarts from its files (its writer
    // stays poisoned until then).
    memory.fail_after_appends(u64::MAX);
    h.core = None;
    h.core = Some(IssuerCore::open(config, h.bank().clone()).expect("issuer restarts"));
    let iss1 = h
        .core()
        .wrequest3(&w3)
        .expect("the retry is served, not refused as a replay");
    // W3 still holds: a copy sent now is a replay, and asks no debit.
    let replay = h.core().wrequest3(&w3);
    assert!(
        matches!(
            replay,
            Err(IssuerError::Flow(protocol::flows::FlowError::ReplayedNonce))
        ),
        "W3: a replay after the purchase is logged is refused, got {replay:?}"
    );
    match awaiting.on_issuance1(&iss1).expect("issuance1 opens") {
        PurchaseUpdate::Issued { coins, ack } => {
            assert_eq!(coins.len(), 3);
            h.core().purchase_issuance2(&ack).expect("ack");
        }
        other => panic!("purchase did not settle: {other:?}"),
    }
    assert!(h.core().wrequest3(&w3).is_err(), "closed purchase");
    assert_eq!(
        h.bank().balance(&alice.account).expect("balance"),
        ledger::Amount::from_minor(700),
        "debited exactly once"
    );
    let n_purchases = ledger::EventStore::read(memory.as_ref(), ledger::Seq(1), 1000)
        .expect("read")
        .iter()
        .filter(|r| matches!(r.record.event, ledger::Event::PurchaseRequested { .. }))
        .count();
    assert_eq!(n_purchases, 1);
    h.assert_conserved();
}

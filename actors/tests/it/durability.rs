//! Nothing is acknowledged before it is durable: when the log stops taking
//! writes, the payment is not answered with coins, its reservations are
//! released, no coin leaves the shards, and the issuer stops (fail-stop):
//! it refuses every later commit until restarted from its log (it never
//! guesses what the disk holds).

use crate::util;

use std::sync::Arc;

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

/// Crash tests: the issuer stops dead at each point of a payment's commit
/// path (after reserving, after staging, with the append unacknowledged,
/// after the durable append, after the commit before the answer), is
/// restarted from its files, and the payee retries: the payment completes
/// exactly once, with the same coins whether or not the crash was after the
/// append, and a redemption credits the bank once.
#[test]
fn a_crash_at_every_point_of_the_commit_path_then_a_retry_completes_exactly_once() {
    use protocol::flows::PayeeOutcome;
    use protocol::wire::payment::VOption;
    use vc_actors::CrashPoint;
    for crash_at in [
        CrashPoint::AfterReserve,
        CrashPoint::BeforeAppend,
        CrashPoint::AfterAppendBeforeFsync,
        CrashPoint::AfterDurable,
        CrashPoint::AfterCommit,
    ] {
        for redeem in [false, true] {
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
            h.restart_with_crash_point(Some(crash_at));
            assert!(
                matches!(h.core().validate(&vreq), Err(IssuerError::Crashed)),
                "{crash_at:?}"
            );
            h.restart_with_crash_point(None);
            assert_eq!(h.core().n_reserved(), 0, "{crash_at:?}");
            let logged = matches!(
                crash_at,
                CrashPoint::AfterAppendBeforeFsync
                    | CrashPoint::AfterDurable
                    | CrashPoint::AfterCommit
            );
            for c in &coins {
                assert_eq!(
                    h.core().unspent_coin(&c.id()).is_none(),
                    logged,
                    "{crash_at:?}: the log decides whether the coins are spent"
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
                PayeeOutcome::Rejected(s) => panic!("{crash_at:?}: refused {:?}", s.reason),
            }
            // Once more: still the same outcome, never "double spent".
            let (again, vreq) = h.validation(&payee_state, &send, option);
            assert!(
                !matches!(
                    again.on_issuance1(shop.sk, &h.core().validate(&vreq).expect("answered")),
                    Ok(PayeeOutcome::Rejected(_))
                ),
                "{crash_at:?}"
            );
            let credited = h.bank().balance(&shop.account).expect("balance");
            let expected = if redeem { 500 } else { 0 };
            assert_eq!(
                credited,
                ledger::Amount::from_minor(expected),
                "{crash_at:?}"
            );
            let n_payment_batches =
                ledger::EventStore::read(h.core().store().as_ref(), ledger::Seq(1), 1000)
                    .expect("read")
                    .iter()
                    .filter(|r| matches!(r.record.event, ledger::Event::CoinsSpent { .. }))
                    .count();
            assert_eq!(n_payment_batches, 1, "{crash_at:?}: exactly once");
            h.assert_conserved();
        }
    }
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

//! Coin purchase (paper Figure 5) against the issuer core, named after the
//! paper's requirements W1–W3. Each test ends by checking conservation from
//! the log.

use crate::util;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::{Amount, BankRejection, Event, IssueCause, Role};
use protocol::flows::PurchaseUpdate;
use protocol::wire::RejectReason;
use protocol::wire::purchase::PurchaseIssuance2;
use util::{Harness, Who, spec};
use vc_actors::{Bank, IssuerError, PurchaseStatus};

/// How long a test waits for the simulated bank to settle a debit.
const SETTLE_WAIT_SECS: u64 = 10;

fn coins_issued_for_purchases(h: &Harness) -> usize {
    let mut n = 0;
    let store = h.core().store().clone();
    let records = ledger::EventStore::read(store.as_ref(), ledger::Seq(1), 10_000).expect("read");
    for r in records {
        if let Event::CoinsIssued {
            coins,
            cause: IssueCause::Purchase(_),
            ..
        } = &r.record.event
        {
            n += coins.len();
        }
    }
    n
}

/// W1: a valid purchase goes through: the debit settles, the purchaser gets
/// exactly the coins of its spec, the coins verify, the bank moved the money.
#[test]
fn w1_valid_purchase_goes_through() {
    let h = Harness::new();
    let alice = h.purchaser("alice", 0, 10_000);
    let coins = h.buy(&alice, spec(&[(2, 250), (1, 125), (3, 200)]));
    assert_eq!(coins.len(), 6);
    let total = Amount::checked_sum(coins.iter().map(|c| c.value())).expect("sum");
    assert_eq!(total, Amount::from_minor(1225));
    assert_eq!(
        h.bank().balance(&alice.account).expect("balance"),
        Amount::from_minor(10_000 - 1225)
    );
    for c in &coins {
        assert_eq!(h.core().unspent_coin(&c.id()), Some(c.body));
    }
    h.assert_conserved();
}

/// W1 with anonymity: the coins are recorded against nobody.
#[test]
fn w1_anonymous_purchase_records_no_holder() {
    let h = Harness::new();
    let alice = h.purchaser("alice", 0, 1_000);
    let (awaiting, iss1) = h.start_purchase(&alice, spec(&[(1, 500)]), true);
    let PurchaseUpdate::Issued { ack, .. } = awaiting.on_issuance1(&iss1).expect("opens") else {
        panic!("not issued");
    };
    h.core().purchase_issuance2(&ack).expect("ack");
    let records =
        ledger::EventStore::read(h.core().store().as_ref(), ledger::Seq(1), 1000).expect("read");
    let holders: Vec<bool> = records
        .iter()
        .filter_map(|r| match &r.record.event {
            Event::CoinsIssued { holder, .. } => Some(holder.is_some()),
            _ => None,
        })
        .collect();
    assert_eq!(holders, vec![false]);
    h.assert_conserved();
}

/// W2: no coins without a settled debit. A debit the bank rejects yields a
/// signed rejection and no coins.
#[test]
fn w2_rejected_debit_yields_no_coins() {
    let h = Harness::new();
    let poor = h.purchaser("poor", 1, 100);
    let (awaiting, iss1) = h.start_purchase(&poor, spec(&[(1, 500)]), false);
    match awaiting.on_issuance1(&iss1).expect("opens") {
        PurchaseUpdate::Rejected(statement) => assert_eq!(
            statement.reason,
            RejectReason::BankRejected(BankRejection::InsufficientFunds)
        ),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(coins_issued_for_purchases(&h), 0);
    assert_eq!(h.core().n_unspent(), 0);
    h.assert_conserved();
}

/// W2: a purchase whose bank rejects later (the account closed before the
/// debit settled) issues nothing, and polling says so, signed.
#[test]
fn w2_debit_rejected_later_issues_nothing() {
    let h = Harness::with_settle_delay(Duration::from_millis(100));
    let bob = h.purchaser("bob", 1, 1_000);
    let (awaiting, iss1) = h.start_purchase(&bob, spec(&[(2, 100)]), false);
    assert_eq!(
        awaiting.on_issuance1(&iss1).expect("opens"),
        PurchaseUpdate::Pending
    );
    h.bank().close_account(&bob.account).expect("close");
    // Poll until the debit has settled (rejected), as a purse would.
    let deadline = Instant::now() + Duration::from_secs(SETTLE_WAIT_SECS);
    let update = loop {
        let answer = h.core().purchase_poll(&awaiting.poll()).expect("poll");
        match awaiting.on_issuance1(&answer).expect("opens") {
            PurchaseUpdate::Pending => {
                assert!(Instant::now() < deadline, "the debit never settled");
                std::thread::sleep(Duration::from_millis(10));
            }
            update => break update,
        }
    };
    assert!(matches!(
        update,
        PurchaseUpdate::Rejected(s) if s.reason == RejectReason::BankRejected(BankRejection::AccountClosed)
    ));
    assert_eq!(coins_issued_for_purchases(&h), 0);
    h.assert_conserved();
}

/// W2: a forged Issuance2 (wrong MAC) is refused and issues nothing more;
/// the real purchaser can still fetch the same coins and acknowledge them.
#[test]
fn w2_forged_issuance2_issues_nothing() {
    let h = Harness::new();
    let carol = h.purchaser("carol", 2, 1_000);
    let (awaiting, iss1) = h.start_purchase(&carol, spec(&[(1, 300)]), false);
    let PurchaseUpdate::Issued { coins, ack } = awaiting.on_issuance1(&iss1).expect("opens") else {
        panic!("not issued");
    };
    let forged = PurchaseIssuance2 {
        purchase: ack.purchase,
        mac: protocol::crypto::MacTag::from_bytes(vec![0; 16]).expect("tag"),
    };
    assert!(matches!(
        h.core().purchase_issuance2(&forged),
        Err(IssuerError::Flow(_))
    ));
    // Same coins again until the real ack.
    let again = h.core().purchase_poll(&awaiting.poll()).expect("poll");
    let PurchaseUpdate::Issued { coins: same, .. } = awaiting.on_issuance1(&again).expect("opens")
    else {
        panic!("not issued");
    };
    assert_eq!(same, coins);
    h.core().purchase_issuance2(&ack).expect("real ack");
    assert_eq!(coins_issued_for_purchases(&h), 1);
    h.assert_conserved();
}

/// W3: a replayed WRequest3 causes no second debit (R_I is single-use), and
/// a forged one (MAC bit flipped) causes none at all.
#[test]
fn w3_replayed_or_forged_wrequest3_causes_no_debit() {
    let h = Harness::new();
    let dave = h.purchaser("dave", 3, 1_000);
    let core = h.core();
    let (state, w1) = protocol::flows::PurchaseClient::start(
        core.suite(),
        dave.sk,
        dave.id.clone(),
        &h.pk_i(),
        core.now(),
    )
    .expect("w1");
    let w2 = core.wrequest1(&w1).expect("w2");
    let w_desc = protocol::wire::purchase::WDesc {
        spec: spec(&[(1, 400)]),
        amount: Amount::from_minor(400),
        bank_account: dave.account.clone(),
        anonymous: false,
    };
    let (_awaiting, w3) = state
        .on_wrequest2(dave.sk, core.id(), &w2, w_desc)
        .expect("w3");
    let mut forged = w3.clone();
    let mut mac = forged.mac.as_bytes().to_vec();
    mac[0] ^= 1;
    forged.mac = protocol::crypto::MacTag::from_bytes(mac).expect("tag");
    assert!(matches!(core.wrequest3(&forged), Err(IssuerError::Flow(_))));
    assert_eq!(
        h.bank().balance(&dave.account).expect("balance"),
        Amount::from_minor(1_000)
    );
    core.wrequest3(&w3).expect("first WRequest3");
    assert!(matches!(
        core.wrequest3(&w3),
        Err(IssuerError::Flow(protocol::flows::FlowError::ReplayedNonce))
    ));
    assert_eq!(
        h.bank().balance(&dave.account).expect("balance"),
        Amount::from_minor(600)
    );
    assert_eq!(h.bank().statement(1, 100).expect("statement").len(), 1);
    h.assert_conserved();
}

/// A participant not enrolled as a purchaser is refused at WRequest1 (no
/// session is opened for it) and no debit.
#[test]
fn an_unenrolled_participant_cannot_purchase() {
    let h = Harness::new();
    let eve = Who::new("eve", 4);
    h.register(&eve, 1_000);
    assert!(matches!(
        h.wrequest1(&eve),
        Err(vc_actors::IssuerError::NoSuchEnrollment)
    ));
    assert_eq!(
        h.bank().balance(&eve.account).expect("balance"),
        Amount::from_minor(1_000)
    );
    h.enroll(&eve, Role::CoinPurchaser);
    assert_eq!(h.buy(&eve, spec(&[(1, 100)])).len(), 1);
    h.assert_conserved();
}

/// A pending purchase survives a restart of the issuer and the bank, then
/// settles and issues its coins exactly once.
#[test]
fn a_pending_purchase_survives_a_restart() {
    let mut h = Harness::with_settle_delay(Duration::from_millis(100));
    let fred = h.purchaser("fred", 5, 1_000);
    let (awaiting, iss1) = h.start_purchase(&fred, spec(&[(4, 50)]), false);
    assert_eq!(
        awaiting.on_issuance1(&iss1).expect("opens"),
        PurchaseUpdate::Pending
    );
    let purchase = awaiting.purchase();
    h.restart();
    assert_eq!(
        h.core().purchase_status(purchase),
        Some(PurchaseStatus::Pending)
    );
    // Settle as the housekeeper would, until the bank has settled the debit.
    let deadline = Instant::now() + Duration::from_secs(SETTLE_WAIT_SECS);
    let mut settled = 0;
    while settled == 0 {
        assert!(Instant::now() < deadline, "the debit never settled");
        std::thread::sleep(Duration::from_millis(10));
        settled += h.core().settle_pending_purchases().expect("settle");
    }
    assert_eq!(settled, 1);
    h.restart();
    let answer = h.core().purchase_poll(&awaiting.poll()).expect("poll");
    let PurchaseUpdate::Issued { coins, ack } = awaiting.on_issuance1(&answer).expect("opens")
    else {
        panic!("not issued after restart");
    };
    assert_eq!(coins.len(), 4);
    h.core().purchase_issuance2(&ack).expect("ack");
    assert_eq!(coins_issued_for_purchases(&h), 4);
    assert_eq!(
        h.bank().balance(&fred.account).expect("balance"),
        Amount::from_minor(800)
    );
    h.assert_conserved();
}

/// While a purchase waits for the bank, its session (the purchaser, the
/// account to debit, the key shares) is on disk, and so are the purchaser's
/// slot and a second session opened by WRequest1 alone: no file of the
/// issuer's directory names the purchaser or the account, and after a
/// restart the session is found by its id and the purchase completes.
#[test]
fn an_open_purchase_session_names_nobody_on_disk() {
    let mut h = Harness::with_settle_delay(Duration::from_millis(100));
    let zoe = h.purchaser("zoe-sealed", 5, 1_000);
    let (awaiting, _) = h.start_purchase(&zoe, spec(&[(1, 50)]), false);
    h.wrequest1(&zoe).expect("a second session");
    h.restart();
    let issuer_dir = h.dir.path().join("issuer");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&issuer_dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        for needle in [zoe.id.as_str(), zoe.account.as_str()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds {needle} in the clear",
                path.display()
            );
        }
        checked.push(
            path.file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
        );
    }
    assert!(checked.iter().any(|n| n == "sessions.redb"), "{checked:?}");
    let deadline = Instant::now() + Duration::from_secs(SETTLE_WAIT_SECS);
    while h.core().settle_pending_purchases().expect("settle") == 0 {
        assert!(Instant::now() < deadline, "the debit never settled");
        std::thread::sleep(Duration::from_millis(10));
    }
    let answer = h.core().purchase_poll(&awaiting.poll()).expect("poll");
    let PurchaseUpdate::Issued { coins, ack } = awaiting.on_issuance1(&answer).expect("opens")
    else {
        panic!("not issued after restart");
    };
    assert_eq!(coins.len(), 1);
    h.core().purchase_issuance2(&ack).expect("ack");
    h.assert_conserved();
}

/// A settlement whose batch is durable while its append reported failure
/// (the log died after the fsync, `ledger::fault::FaultyStore`): after the
/// restart the purchase stands settled, as the log says, and its coins are
/// recorded against the purchaser, who can have them refunded.
#[test]
fn a_settlement_durable_but_never_told_leaves_the_coins_refundable() {
    use ledger::fault::{FaultPlan, StoreFault};
    use protocol::flows::{PurchaseClient, RefundUpdate};
    use protocol::wire::purchase::WDesc;
    let mut h = Harness::new();
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
        spec: spec(&[(2, 100)]),
        amount: Amount::from_minor(200),
        bank_account: alice.account.clone(),
        anonymous: false,
    };
    let (_awaiting, w3) = state
        .on_wrequest2(alice.sk, core.id(), &w2, w_desc)
        .expect("wrequest3");
    // The purchase's batch passes; the settlement's is durable, not told.
    let plan = FaultPlan::new(StoreFault::AfterDurable, 1);
    let log = h.faulty_log(&plan);
    h.restart_on_log(log);
    assert!(h.core().wrequest3(&w3).is_err(), "the issuer was not told");
    assert!(plan.has_struck());
    h.restart();
    let Some(PurchaseStatus::Settled(bodies)) = h.core().purchase_status(w3.purchase) else {
        panic!("the log holds the settlement");
    };
    let (client, req) = h.refund_request(&alice);
    let answer = h.core().refund(&req).expect("answered");
    let RefundUpdate::Replaced { mut revoked, .. } =
        client.on_answer(alice.sk, &answer).expect("opens")
    else {
        panic!("the purchased coins are not refundable");
    };
    revoked.sort();
    let mut bought: Vec<_> = bodies.iter().map(|b| b.id).collect();
    bought.sort();
    assert_eq!(revoked, bought);
    h.assert_conserved();
}

/// The session rows in the tables beside the log.
fn session_rows(tables: &ledger::MemoryKv) -> usize {
    ledger::KvStore::scan(tables, vc_actors::SESSIONS_TABLE, &[])
        .expect("scan")
        .len()
}

/// With its tables beside the log, the issuer writes its purchase sessions
/// there too: a replacement whose session file is gone (another host)
/// delivers the coins of a purchase left waiting for the bank, exactly
/// once. Payments' ack sessions are not written there.
#[test]
fn a_pending_purchase_is_delivered_by_a_replacement_without_the_session_file() {
    let tables = Arc::new(ledger::MemoryKv::new());
    let mut h =
        Harness::with_settle_delay_and_side_tables(Duration::from_millis(100), tables.clone());
    let fred = h.purchaser("fred", 5, 1_000);
    let (awaiting, iss1) = h.start_purchase(&fred, spec(&[(4, 50)]), false);
    assert_eq!(
        awaiting.on_issuance1(&iss1).expect("opens"),
        PurchaseUpdate::Pending
    );
    let purchase = awaiting.purchase();
    let rows = session_rows(&tables);
    assert!(rows > 0, "the purchase session is in the tables");
    let sessions_file = h.config().dir.join("sessions.redb");
    h.core = None;
    std::fs::remove_file(&sessions_file).expect("the session file goes");
    h.restart();
    assert_eq!(
        h.core().purchase_status(purchase),
        Some(PurchaseStatus::Pending)
    );
    let deadline = Instant::now() + Duration::from_secs(SETTLE_WAIT_SECS);
    while h.core().settle_pending_purchases().expect("settle") == 0 {
        assert!(Instant::now() < deadline, "the debit never settled");
        std::thread::sleep(Duration::from_millis(10));
    }
    let answer = h.core().purchase_poll(&awaiting.poll()).expect("poll");
    let PurchaseUpdate::Issued { coins, ack } = awaiting.on_issuance1(&answer).expect("opens")
    else {
        panic!("not issued by the replacement");
    };
    assert_eq!(coins.len(), 4);
    h.core().purchase_issuance2(&ack).expect("ack");
    assert_eq!(coins_issued_for_purchases(&h), 4);

    // A payment adds no row: its ack session is soft, in the file only.
    let shop = Who::new("shop", 1);
    h.register(&shop, 0);
    h.enroll(&shop, Role::Merchant);
    let rows = session_rows(&tables);
    let outcome = h.pay(&fred, &shop, coins[..1].to_vec(), util::refresh(50));
    assert!(matches!(
        outcome,
        protocol::flows::PayeeOutcome::Coins { .. }
    ));
    assert_eq!(session_rows(&tables), rows);
    assert_eq!(
        h.bank().balance(&fred.account).expect("balance"),
        Amount::from_minor(800)
    );
    h.assert_conserved();
}

/// A purchase session the tables beside the log refuse to take stops the
/// issuer (a write whose answer was lost may have committed), and the
/// purchaser is answered with an error, not a WRequest2.
#[test]
fn a_session_the_tables_fail_to_take_stops_the_issuer() {
    let tables = Arc::new(RefusingSessions::default());
    let h = Harness::with_side_tables(tables.clone());
    let fred = h.purchaser("fred", 5, 1_000);
    tables
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(matches!(
        h.wrequest1(&fred),
        Err(IssuerError::Session(vc_actors::SessionError::SideTables(_)))
    ));
    assert!(matches!(
        h.core().ensure_alive(),
        Err(IssuerError::FailStopped(_))
    ));
}

/// Tables that fail every write of sessions once `failing` is set.
#[derive(Default)]
struct RefusingSessions {
    inner: ledger::MemoryKv,
    failing: std::sync::atomic::AtomicBool,
}

impl ledger::KvStore for RefusingSessions {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, ledger::KvError> {
        self.inner.get(table, key)
    }
    fn scan(&self, table: &str, prefix: &[u8]) -> Result<Vec<ledger::KvRow>, ledger::KvError> {
        self.inner.scan(table, prefix)
    }
    fn write(&self, batch: &ledger::KvBatch) -> Result<(), ledger::KvError> {
        let sessions = batch
            .writes
            .iter()
            .any(|w| w.table == vc_actors::SESSIONS_TABLE);
        if sessions && self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ledger::KvError::Storage("the database is gone".into()));
        }
        self.inner.write(batch)
    }
}

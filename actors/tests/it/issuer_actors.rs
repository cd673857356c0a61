//! The actix shell: every step through the `Issuer` handle, as the gateway
//! will call it, with the housekeeper settling a delayed debit on its own
//! and payments racing through the crypto pool.

use crate::util;

use std::sync::Arc;
use std::time::Duration;

use ledger::SystemClock;
use ledger::{Amount, Role, Timestamp};
use protocol::flows::{
    PayeeOutcome, PaymentPayee, PaymentPayer, PurchaseClient, PurchaseUpdate, RegistrationClient,
    enrollment_request,
};
use protocol::wire::payment::{PDesc, PaymentOutcome, VOption};
use protocol::wire::purchase::WDesc;
use util::{Who, spec};
use vc_actors::SimulatedBank;
use vc_actors::{Issuer, IssuerConfig};

async fn join(issuer: &Issuer, who: &Who, roles: &[Role], bank: &SimulatedBank, funds: u64) {
    let (client, req) = RegistrationClient::start(who.id.clone(), who.sk);
    let cert = issuer.register(req).await.expect("registered");
    client
        .on_certificate(&issuer.public_key(), cert, Timestamp::now())
        .expect("certificate");
    bank.open_account(&who.account, Amount::from_minor(funds))
        .expect("account");
    for role in roles {
        let req = enrollment_request(
            issuer.core().suite(),
            who.sk,
            &issuer.public_key(),
            who.id.clone(),
            *role,
            who.account.clone(),
            Timestamp::now(),
        )
        .expect("enrollment");
        issuer.request_enrollment(req).await.expect("recorded");
        issuer
            .approve_enrollment(who.id.clone(), *role)
            .await
            .expect("approved");
    }
}

#[actix_rt::test]
async fn every_step_through_the_issuer_handle_with_a_delayed_debit_and_racing_payments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bank = Arc::new(
        SimulatedBank::open(dir.path().join("bank.redb"), Duration::from_millis(300))
            .expect("bank"),
    );
    let mut config = IssuerConfig::new(dir.path().join("issuer"));
    config.n_shards = 3;
    config.clock = Arc::new(SystemClock);
    let issuer = Issuer::start(config, bank.clone()).expect("issuer starts");

    let alice = Who::new("alice", 0);
    let shop = Who::new("shop", 1);
    let bob = Who::new("bob", 2);
    join(&issuer, &alice, &[Role::CoinPurchaser], &bank, 10_000).await;
    join(&issuer, &shop, &[Role::Merchant], &bank, 0).await;
    join(&issuer, &bob, &[Role::Merchant], &bank, 0).await;

    // Purchase: pending at first; the housekeeper settles it without a poll.
    let (state, w1) = PurchaseClient::start(
        issuer.core().suite(),
        alice.sk,
        alice.id.clone(),
        &issuer.public_key(),
        issuer.core().now(),
    )
    .expect("w1");
    let w2 = issuer.wrequest1(w1).await.expect("w2");
    let w_desc = WDesc {
        spec: spec(&[(20, 10)]),
        amount: Amount::from_minor(200),
        bank_account: alice.account.clone(),
        anonymous: false,
    };
    let (awaiting, w3) = state
        .on_wrequest2(alice.sk, &issuer.id(), &w2, w_desc)
        .expect("w3");
    let first = issuer.wrequest3(w3).await.expect("issuance1");
    assert_eq!(
        awaiting.on_issuance1(&first).expect("opens"),
        PurchaseUpdate::Pending
    );
    let purchase = awaiting.purchase();
    let mut settled = false;
    for _ in 0..40 {
        actix_rt::time::sleep(Duration::from_millis(50)).await;
        if matches!(
            issuer.purchase_status(purchase).await.expect("status"),
            Some(vc_actors::PurchaseStatus::Settled(_))
        ) {
            settled = true;
            break;
        }
    }
    assert!(settled, "the housekeeper did not settle the purchase");
    let answer = issuer.purchase_poll(awaiting.poll()).await.expect("poll");
    let PurchaseUpdate::Issued { coins, ack } = awaiting.on_issuance1(&answer).expect("opens")
    else {
        panic!("not issued");
    };
    issuer.purchase_issuance2(ack).await.expect("ack");

    // Twenty pairs of payments race, all at once, through the pool.
    let mut races = Vec::new();
    for coin in &coins {
        for payee in [&shop, &bob] {
            let (payee_state, invoice) = PaymentPayee::invoice(
                payee.id.clone(),
                alice.id.clone(),
                issuer.id(),
                PDesc::new("race").expect("text"),
                coin.value(),
                None,
            );
            let (_payer, send) = PaymentPayer::pay(
                issuer.core().suite(),
                &issuer.public_key(),
                &issuer.id(),
                &alice.id,
                &invoice,
                vec![*coin],
                Timestamp::now(),
            )
            .expect("send");
            let (_awaiting, vreq) = payee_state
                .on_send_coins(
                    issuer.core().suite(),
                    &issuer.public_key(),
                    payee.sk,
                    send,
                    VOption::Aggregate,
                )
                .expect("vreq");
            let issuer = issuer.clone();
            races.push(actix_rt::spawn(async move { issuer.validate(vreq).await }));
        }
    }
    let mut wins = 0;
    for race in races {
        match race.await.expect("task").expect("answered").outcome {
            PaymentOutcome::Receipt(_) => wins += 1,
            PaymentOutcome::Rejected(_) => {}
            PaymentOutcome::Refreshed { .. } => panic!("coins for an aggregate"),
        }
    }
    assert_eq!(wins, coins.len(), "exactly one payment per coin");

    // A refresh payment through the handle, acknowledged.
    let more = {
        let (state, w1) = PurchaseClient::start(
            issuer.core().suite(),
            alice.sk,
            alice.id.clone(),
            &issuer.public_key(),
            issuer.core().now(),
        )
        .expect("w1");
        let w2 = issuer.wrequest1(w1).await.expect("w2");
        let w_desc = WDesc {
            spec: spec(&[(1, 50)]),
            amount: Amount::from_minor(50),
            bank_account: alice.account.clone(),
            anonymous: true,
        };
        let (awaiting, w3) = state
            .on_wrequest2(alice.sk, &issuer.id(), &w2, w_desc)
            .expect("w3");
        issuer.wrequest3(w3).await.expect("issuance1");
        loop {
            actix_rt::time::sleep(Duration::from_millis(50)).await;
            let answer = issuer.purchase_poll(awaiting.poll()).await.expect("poll");
            if let PurchaseUpdate::Issued { coins, ack } =
                awaiting.on_issuance1(&answer).expect("opens")
            {
                issuer.purchase_issuance2(ack).await.expect("ack");
                break coins;
            }
        }
    };
    let (payee_state, invoice) = PaymentPayee::invoice(
        shop.id.clone(),
        alice.id.clone(),
        issuer.id(),
        PDesc::new("tea").expect("text"),
        Amount::from_minor(50),
        None,
    );
    let (_payer, send) = PaymentPayer::pay(
        issuer.core().suite(),
        &issuer.public_key(),
        &issuer.id(),
        &alice.id,
        &invoice,
        more,
        Timestamp::now(),
    )
    .expect("send");
    let (awaiting, vreq) = payee_state
        .on_send_coins(
            issuer.core().suite(),
            &issuer.public_key(),
            shop.sk,
            send,
            VOption::Refresh {
                spec: spec(&[(2, 25)]),
            },
        )
        .expect("vreq");
    let timed_before = issuer.core().stage_timings().snapshot();
    let iss1 = issuer.validate(vreq).await.expect("issuance1");
    // A new-coins validation passes every stage of the path once, and the
    // log committed at least once for it; its ack session is a soft write,
    // in no session transaction of its own (a purge may make one).
    let timed = issuer
        .core()
        .stage_timings()
        .snapshot()
        .since(&timed_before);
    for stage in vc_actors::Stage::ALL {
        let n = timed.stage(stage).count;
        match stage {
            // Timed by the gateway's HTTP handler, not here.
            vc_actors::Stage::HttpHandler => assert_eq!(n, 0),
            vc_actors::Stage::LogAppend => assert!(n >= 1, "{stage:?} {n}"),
            vc_actors::Stage::SessionCommit => {}
            _ => assert_eq!(n, 1, "{stage:?}"),
        }
    }
    let PayeeOutcome::Coins { coins: fresh, ack } =
        awaiting.on_issuance1(shop.sk, &iss1).expect("opens")
    else {
        panic!("no coins");
    };
    assert_eq!(fresh.len(), 2);
    issuer.payment_issuance2(ack).await.expect("ack");

    let core = issuer.core();
    let totals = core.audit_conservation().expect("audit");
    assert_eq!(totals, core.totals());
    assert_eq!(totals.real_in, 250);
    assert_eq!(totals.aggregates, 200);
    assert_eq!(totals.outstanding, 50);
    assert_eq!(core.unspent_value(), 50);
    assert_eq!(core.n_reserved(), 0);

    // Idle, the housekeeper hands every committed transaction over to the
    // transaction index and the issuer's memory lets go of them.
    let mut held = core.n_committed_in_memory();
    for _ in 0..100 {
        if held == 0 {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
        held = core.n_committed_in_memory();
    }
    assert_eq!(
        held, 0,
        "the housekeeper left committed transactions in memory"
    );
}

/// The actor path's refusals and failures: a retransmission gets the same
/// coins, a double spend a signed refusal, and a log that stops taking
/// writes gets no answer, leaves no reservation and spends no coin.
#[actix_rt::test]
async fn the_actor_commit_path_retransmits_refuses_and_aborts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bank =
        Arc::new(SimulatedBank::open(dir.path().join("bank.redb"), Duration::ZERO).expect("bank"));
    let memory = Arc::new(ledger::MemoryStore::new());
    let mut config = IssuerConfig::new(dir.path().join("issuer"));
    config.n_shards = 5;
    config.memory_log = Some(memory.clone());
    let issuer = Issuer::start(config, bank.clone()).expect("issuer starts");
    let alice = Who::new("alice", 0);
    let shop = Who::new("shop", 1);
    join(&issuer, &alice, &[Role::CoinPurchaser], &bank, 10_000).await;
    join(&issuer, &shop, &[Role::Merchant], &bank, 0).await;
    let (state, w1) = PurchaseClient::start(
        issuer.core().suite(),
        alice.sk,
        alice.id.clone(),
        &issuer.public_key(),
        issuer.core().now(),
    )
    .expect("w1");
    let w2 = issuer.wrequest1(w1).await.expect("w2");
    let w_desc = WDesc {
        spec: spec(&[(6, 100)]),
        amount: Amount::from_minor(600),
        bank_account: alice.account.clone(),
        anonymous: false,
    };
    let (awaiting, w3) = state
        .on_wrequest2(alice.sk, &issuer.id(), &w2, w_desc)
        .expect("w3");
    let iss1 = issuer.wrequest3(w3).await.expect("issuance1");
    let PurchaseUpdate::Issued { coins, ack } = awaiting.on_issuance1(&iss1).expect("opens") else {
        panic!("not issued");
    };
    issuer.purchase_issuance2(ack).await.expect("ack");

    let payment = |coins: Vec<ledger::Coin>, option: VOption| {
        let (payee_state, invoice) = PaymentPayee::invoice(
            shop.id.clone(),
            alice.id.clone(),
            issuer.id(),
            PDesc::new("x").expect("text"),
            Amount::checked_sum(coins.iter().map(|c| c.value())).expect("sum"),
            None,
        );
        let (_payer, send) = PaymentPayer::pay(
            issuer.core().suite(),
            &issuer.public_key(),
            &issuer.id(),
            &alice.id,
            &invoice,
            coins,
            Timestamp::now(),
        )
        .expect("send");
        (payee_state, send, option)
    };
    // Coins spread over several shards, refreshed; then the same again.
    let refresh = VOption::Refresh {
        spec: spec(&[(1, 300)]),
    };
    let (payee_state, send, option) = payment(coins[..3].to_vec(), refresh.clone());
    let suite = issuer.core().suite();
    let (first, vreq) = payee_state
        .on_send_coins(
            suite,
            &issuer.public_key(),
            shop.sk,
            send.clone(),
            option.clone(),
        )
        .expect("vreq");
    let got = match first.on_issuance1(shop.sk, &issuer.validate(vreq).await.expect("iss1")) {
        Ok(PayeeOutcome::Coins { coins, .. }) => coins,
        other => panic!("expected coins, got {other:?}"),
    };
    let (second, vreq) = payee_state
        .on_send_coins(suite, &issuer.public_key(), shop.sk, send, option)
        .expect("vreq again");
    match second.on_issuance1(shop.sk, &issuer.validate(vreq).await.expect("iss1 again")) {
        Ok(PayeeOutcome::Coins { coins, .. }) => assert_eq!(coins, got),
        other => panic!("expected the same coins, got {other:?}"),
    }
    // A double spend of one of them, mixed with an unspent coin.
    let (payee_state, send, option) = payment(vec![coins[3], coins[0]], VOption::Aggregate);
    let (awaiting, vreq) = payee_state
        .on_send_coins(suite, &issuer.public_key(), shop.sk, send, option)
        .expect("vreq");
    match awaiting.on_issuance1(shop.sk, &issuer.validate(vreq).await.expect("iss1")) {
        Ok(PayeeOutcome::Rejected(s)) => {
            assert_eq!(s.reason, protocol::wire::RejectReason::AlreadySpent);
            assert_eq!(s.bad_coins.to_vec(), vec![coins[0].id()]);
        }
        other => panic!("double spend not refused: {other:?}"),
    }
    assert!(issuer.core().unspent_coin(&coins[3].id()).is_some());
    // The disk stops taking writes.
    memory.fail_after_appends(0);
    let (payee_state, send, option) = payment(coins[3..].to_vec(), VOption::Aggregate);
    let (_awaiting, vreq) = payee_state
        .on_send_coins(suite, &issuer.public_key(), shop.sk, send, option)
        .expect("vreq");
    assert!(matches!(
        issuer.validate(vreq).await,
        Err(vc_actors::IssuerError::Log(_))
    ));
    assert_eq!(issuer.core().n_reserved(), 0);
    for c in &coins[3..] {
        assert!(
            issuer.core().unspent_coin(&c.id()).is_some(),
            "a coin left without a log record"
        );
    }
    let totals = issuer.core().audit_conservation().expect("audit");
    assert_eq!(totals, issuer.core().totals());
    assert_eq!(totals.outstanding as u128, issuer.core().unspent_value());
    assert_eq!(totals.outstanding, 600);
}

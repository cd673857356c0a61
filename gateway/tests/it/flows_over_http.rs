//! The paper's flows over real loopback HTTP: registration, enrollment
//! (approved through the operator route), a coin purchase (W1) through the
//! issuer gateway, and payments to the merchant server (P1 with refresh and
//! with aggregate, a retried payment answered the same, and a double spend
//! refused with the issuer's signed statement, P4), ending with the
//! conservation audit of the issuer's log.

use crate::util;

use std::sync::Arc;

use client::{
    CatalogItem, ClientConfig, CollectOption, ErrorCode, IssuerClient, MerchantClient,
    MerchantConfig, ServerConfig, serve_merchant,
};
use ledger::{Amount, BankAccount, Coin, CoinSpec, ParticipantId, Role, Timestamp};
use protocol::crypto::SecretKey;
use protocol::flows::{
    PayerOutcome, PaymentPayer, PurchaseClient, PurchaseUpdate, RegistrationClient,
    enrollment_request,
};
use protocol::wire::payment::PaymentResult;
use protocol::wire::purchase::WDesc;
use protocol::wire::registration::Certificate;
use protocol::wire::{RejectReason, encode};
use purse::{IssuerInfo, Purse, PurseProfile};
use vc_gateway::serve_issuer;

use util::{issuer, key, spec};

struct Participant {
    id: ParticipantId,
    sk: &'static SecretKey,
    account: BankAccount,
    cert: Certificate,
}

/// Registers `name` over HTTP, opens its bank account, enrolls it for
/// `role` and has the operator approve.
fn join(client: &IssuerClient, name: &str, key_idx: usize, role: Role) -> Participant {
    let core = &issuer().core;
    let id = ParticipantId::new(name).expect("id");
    let sk = key(key_idx);
    let account = BankAccount::new(format!("acct-{name}")).expect("account");
    issuer()
        .bank
        .open_account(&account, Amount::from_minor(100_000))
        .expect("bank account");
    let (registration, request) = RegistrationClient::start(id.clone(), sk);
    let cert = client.register(&request).expect("registered");
    let cert = registration
        .on_certificate(&core.public_key(), cert, Timestamp::now())
        .expect("certificate checks");
    let enrollment = enrollment_request(
        core.suite(),
        sk,
        &core.public_key(),
        id.clone(),
        role,
        account.clone(),
        Timestamp::now(),
    )
    .expect("enrollment request");
    client.enroll(&enrollment).expect("enrollment recorded");
    client.approve_enrollment(&id, role).expect("approved");
    Participant {
        id,
        sk,
        account,
        cert,
    }
}

/// WRequest1..3 over HTTP, polling until the debit settles, then the ack.
fn buy(client: &IssuerClient, who: &Participant, spec: CoinSpec) -> Vec<Coin> {
    let core = &issuer().core;
    let (state, w1) = PurchaseClient::start(
        core.suite(),
        who.sk,
        who.id.clone(),
        &core.public_key(),
        core.now(),
    )
    .expect("w1");
    let w2 = client.wrequest1(&w1).expect("wrequest2 over http");
    let amount = spec.total().expect("total");
    let w_desc = WDesc {
        spec,
        amount,
        bank_account: who.account.clone(),
        anonymous: false,
    };
    let (awaiting, w3) = state
        .on_wrequest2(who.sk, core.id(), &w2, w_desc)
        .expect("wrequest3");
    let mut issuance = client.wrequest3(&w3).expect("issuance1 over http");
    // Polled until a deadline, not a count: a busy machine settles late.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        match awaiting.on_issuance1(&issuance).expect("issuance1 checks") {
            PurchaseUpdate::Issued { coins, ack } => {
                client.purchase_ack(&ack).expect("ack over http");
                // A repeated ack is answered the same.
                client.purchase_ack(&ack).expect("repeated ack");
                return coins;
            }
            PurchaseUpdate::Pending => {
                std::thread::sleep(std::time::Duration::from_millis(20));
                issuance = client.purchase_poll(&awaiting.poll()).expect("poll");
            }
            PurchaseUpdate::Rejected(r) => panic!("purchase rejected: {r:?}"),
        }
    }
    panic!("purchase never settled");
}

/// The merchant's purse: its key, certificate and the issuer's record as
/// the gateway describes it.
fn merchant_purse(
    client: &IssuerClient,
    shop: &Participant,
    gateway_url: &str,
) -> (Arc<Purse>, tempfile::TempDir) {
    let descriptor = client.descriptor().expect("descriptor");
    let mut profile =
        PurseProfile::from_secret_key(shop.id.clone(), descriptor.suite, shop.sk).expect("profile");
    profile.certificate = Some(encode(&shop.cert));
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = Purse::create(
        dir.path().join("shop.purse"),
        &profile,
        Some(&IssuerInfo {
            issuer: descriptor.id_i.clone(),
            public_key: descriptor.public_key.clone(),
            gateway_url: gateway_url.to_owned(),
        }),
        util::purse_key(),
    )
    .expect("merchant purse");
    (Arc::new(purse), dir)
}

fn book_shop(purse: Arc<Purse>) -> client::ServerHandle {
    serve_merchant(
        &MerchantConfig {
            server: util::operator_config(ServerConfig::loopback()),
            shop_name: "Books".into(),
            catalog: vec![CatalogItem {
                sku: "book".into(),
                title: "A book".into(),
                price: Amount::from_minor(500),
                collect: None,
            }],
            collect: CollectOption::Refresh,
            client: ClientConfig::default(),
        },
        purse,
    )
    .expect("merchant server")
}

fn holdings(purse: &Purse) -> Amount {
    purse.balance().expect("balance").holdings().expect("sum")
}

/// The merchant cannot reach the issuer: the payer gets a typed 502, the
/// validation stays journaled in the merchant's purse, and retrying the same
/// SendCoins once the issuer is back pays the order exactly once. A
/// collection still journaled when the merchant server stops is finished by
/// the next start, so its coins are not lost.
#[test]
fn payments_cut_off_from_the_issuer_finish_by_retrying_or_restarting() {
    let core = issuer().core.clone();
    let gateway = serve_issuer(
        &util::operator_config(ServerConfig::loopback()),
        issuer().handle(),
    )
    .expect("gateway");
    let addr = gateway.addr();
    let client = util::operator_client(&gateway.url());
    let bob = join(&client, "bob-http", 2, Role::CoinPurchaser);
    let shop = join(&client, "shop2-http", 1, Role::Merchant);
    let (purse, _dir) = merchant_purse(&client, &shop, &gateway.url());
    let shop_server = book_shop(purse.clone());
    let merchant = MerchantClient::new(&shop_server.url(), ClientConfig::default()).expect("mc");
    let coins = buy(&client, &bob, spec(&[(4, 250)]));

    let pay_with = |coins: &[Coin]| {
        let invoice = merchant.invoice("book", &bob.id).expect("invoice");
        let (payer, send) = PaymentPayer::pay(
            core.suite(),
            &core.public_key(),
            core.id(),
            &bob.id,
            &invoice,
            coins.to_vec(),
            Timestamp::now(),
        )
        .expect("send coins");
        (invoice, payer, send)
    };

    // The issuer goes away; the merchant answers 502 and keeps the request.
    gateway.stop().expect("gateway stops");
    let (invoice, payer, send) = pay_with(&coins[..2]);
    let e = merchant
        .pay(&invoice.tid_py, &send)
        .expect_err("issuer down");
    assert_eq!(e.code(), Some(ErrorCode::IssuerUnavailable), "{e}");
    assert_eq!(purse.in_flight().expect("journal").len(), 1);

    // Back on the same address: the same bytes pay the order, once.
    let gateway = serve_issuer(
        &util::operator_config(ServerConfig::new(addr)),
        issuer().handle(),
    )
    .expect("again");
    let result = merchant.pay(&invoice.tid_py, &send).expect("paid on retry");
    assert!(matches!(
        payer.on_result(&result).expect("checks"),
        PayerOutcome::Paid {
            receipt_verified: true
        }
    ));
    assert_eq!(merchant.pay(&invoice.tid_py, &send).expect("again"), result);
    assert_eq!(holdings(&purse), Amount::from_minor(500));
    assert!(purse.in_flight().expect("journal").is_empty());

    // Cut off again, and this time the merchant server stops too.
    gateway.stop().expect("gateway stops");
    let (invoice, _payer, send) = pay_with(&coins[2..]);
    let e = merchant
        .pay(&invoice.tid_py, &send)
        .expect_err("issuer down");
    assert_eq!(e.code(), Some(ErrorCode::IssuerUnavailable), "{e}");
    shop_server.stop().expect("merchant stops");
    let gateway = serve_issuer(
        &util::operator_config(ServerConfig::new(addr)),
        issuer().handle(),
    )
    .expect("again");
    let shop_server = book_shop(purse.clone());
    assert_eq!(
        holdings(&purse),
        Amount::from_minor(1000),
        "resumed at start"
    );
    assert!(purse.in_flight().expect("journal").is_empty());
    for c in &coins {
        assert!(core.unspent_coin(&c.id()).is_none(), "payer's coin unspent");
    }
    core.audit_conservation()
        .expect("log audits")
        .check_equation()
        .expect("conservation holds");
    shop_server.stop().expect("merchant stops");
    gateway.stop().expect("gateway stops");
}

#[test]
fn purchase_and_payments_through_the_gateway_and_the_merchant_server() {
    let core = issuer().core.clone();
    let gateway = serve_issuer(
        &util::operator_config(ServerConfig::loopback()),
        issuer().handle(),
    )
    .expect("gateway");
    let client = util::operator_client(&gateway.url());
    let alice = join(&client, "alice-http", 0, Role::CoinPurchaser);
    let shop = join(&client, "shop-http", 1, Role::Merchant);

    let (purse, _dir) = merchant_purse(&client, &shop, &gateway.url());
    let shop_server = serve_merchant(
        &MerchantConfig {
            server: util::operator_config(ServerConfig::loopback()),
            shop_name: "Books & <Tea>".into(),
            catalog: vec![
                CatalogItem {
                    sku: "book".into(),
                    title: "A book".into(),
                    price: Amount::from_minor(500),
                    collect: None,
                },
                CatalogItem {
                    sku: "tea".into(),
                    title: "Tea".into(),
                    price: Amount::from_minor(250),
                    collect: Some(CollectOption::Aggregate),
                },
            ],
            collect: CollectOption::Refresh,
            client: ClientConfig::default(),
        },
        purse.clone(),
    )
    .expect("merchant server");
    let merchant = MerchantClient::new(&shop_server.url(), ClientConfig::default()).expect("mc");
    let page = merchant.http().get_text("/").expect("shop page");
    assert!(page.contains("href=\"/item/book/invoice\""), "{page}");
    assert!(page.contains("Books &amp; &lt;Tea&gt;"), "{page}");

    // W1: a purchase through the gateway.
    let coins = buy(&client, &alice, spec(&[(2, 250), (1, 250)]));
    assert_eq!(coins.len(), 3);

    // P1 with refresh: a signed invoice, the payment, the payee's receipt.
    let invoice = merchant.invoice("book", &alice.id).expect("invoice");
    assert_eq!(invoice.amount, Amount::from_minor(500));
    assert!(
        invoice.commitment.is_some(),
        "the merchant signs its invoices"
    );
    assert_eq!(
        merchant.order_invoice(&invoice.tid_py).expect("re-fetched"),
        invoice
    );
    let paying = coins[..2].to_vec();
    let (payer, send) = PaymentPayer::pay(
        core.suite(),
        &core.public_key(),
        core.id(),
        &alice.id,
        &invoice,
        paying.clone(),
        Timestamp::now(),
    )
    .expect("send coins");
    let result = merchant.pay(&invoice.tid_py, &send).expect("paid");
    assert_eq!(
        payer.on_result(&result).expect("result checks"),
        PayerOutcome::Paid {
            receipt_verified: true
        }
    );
    // A retry of the same bytes is answered the same, and pays nothing twice.
    assert_eq!(merchant.pay(&invoice.tid_py, &send).expect("retry"), result);
    assert_eq!(holdings(&purse), Amount::from_minor(500));
    assert!(purse.in_flight().expect("journal").is_empty());

    // P4: the same coins again, for a new order: the issuer's signed
    // rejection, passed on by the merchant, checks for the payer.
    let invoice2 = merchant.invoice("book", &alice.id).expect("invoice");
    let (payer2, send2) = PaymentPayer::pay(
        core.suite(),
        &core.public_key(),
        core.id(),
        &alice.id,
        &invoice2,
        paying.clone(),
        Timestamp::now(),
    )
    .expect("send coins");
    let result2 = merchant.pay(&invoice2.tid_py, &send2).expect("answered");
    assert!(matches!(result2, PaymentResult::Rejected(_)));
    match payer2.on_result(&result2).expect("statement checks") {
        PayerOutcome::Rejected {
            reason, bad_coins, ..
        } => {
            assert_eq!(reason, RejectReason::AlreadySpent);
            // The issuer names at least one of the coins, and only ours.
            let ours: Vec<_> = paying.iter().map(Coin::id).collect();
            assert!(!bad_coins.is_empty());
            assert!(bad_coins.iter().all(|c| ours.contains(c)));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(
        holdings(&purse),
        Amount::from_minor(500),
        "a rejected payment adds nothing"
    );

    // P1 with aggregate (the item's own choice): no coins back, a credit.
    let aggregates_before = core.totals().aggregates;
    let invoice3 = merchant.invoice("tea", &alice.id).expect("invoice");
    let (payer3, send3) = PaymentPayer::pay(
        core.suite(),
        &core.public_key(),
        core.id(),
        &alice.id,
        &invoice3,
        coins[2..].to_vec(),
        Timestamp::now(),
    )
    .expect("send coins");
    let result3 = merchant.pay(&invoice3.tid_py, &send3).expect("paid");
    assert!(matches!(
        payer3.on_result(&result3).expect("checks"),
        PayerOutcome::Paid { .. }
    ));
    assert_eq!(core.totals().aggregates, aggregates_before + 250);

    // Paying a paid order with other bytes, or an unknown order, is refused.
    let e = merchant
        .pay(&invoice.tid_py, &send2)
        .expect_err("already paid");
    assert_eq!(e.code(), Some(ErrorCode::Refused));
    let e = merchant
        .pay(&protocol::wire::PaymentTid::random(), &send)
        .expect_err("unknown");
    assert_eq!(e.code(), Some(ErrorCode::UnknownOrder));

    let metrics = merchant
        .http()
        .metrics(util::scrape_token())
        .expect("metrics");
    assert!(
        metrics.contains("vc_merchant_orders_paid_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vc_merchant_payments_rejected_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vc_merchant_purse_holdings_minor 500"),
        "{metrics}"
    );

    let totals = core.audit_conservation().expect("log audits");
    totals.check_equation().expect("conservation holds");
    shop_server.stop().expect("merchant stops");
    gateway.stop().expect("gateway stops");
}

//! A coin holder's wallet over real loopback HTTP: registration,
//! enrollment, the paper's purchase of (2, 2.50), (1, 1.25), (3, 2.00), a
//! payment with exact coins, a payment that needs change first, a redeem,
//! a purchase cut off from the issuer that `Wallet::resume` finishes from
//! the purse's journal alone, and a payment to a merchant that forgot the
//! order, reclaimed through the issuer. Ends with the conservation audit.

use crate::util;

use client::{
    CatalogItem, ClientConfig, ClientError, CollectOption, MerchantConfig, PurchaseOutcome,
    ServerConfig, Wallet, WalletError, serve_merchant,
};
use ledger::{Amount, CoinSpec, Denomination, Role};
use protocol::flows::PayerOutcome;
use purse::Purse;

use util::{client_of, issuer, join_wallet, purse_for, serve_shared_issuer};

fn paper_spec() -> CoinSpec {
    let line = |count, minor| Denomination {
        count,
        value: Amount::from_minor(minor),
    };
    CoinSpec::new(vec![line(2, 250), line(1, 125), line(3, 200)]).expect("spec")
}

fn shop_config(server: ServerConfig) -> MerchantConfig {
    MerchantConfig {
        server,
        shop_name: "Shop".into(),
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
                price: Amount::from_minor(300),
                collect: None,
            },
        ],
        collect: CollectOption::Refresh,
        client: ClientConfig::default(),
    }
}

fn holdings(purse: &Purse) -> Amount {
    purse.balance().expect("balance").holdings().expect("sum")
}

#[test]
fn a_wallet_buys_pays_with_and_without_change_redeems_and_resumes() {
    let core = issuer().core.clone();
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let addr = gateway.addr();
    let client = client_of(&gateway);
    let dir = tempfile::tempdir().expect("tempdir");

    let shop_purse = purse_for(&client, "shop-w", 1, &gateway.url(), dir.path());
    let shop_wallet = Wallet::open(shop_purse.clone(), ClientConfig::default()).expect("wallet");
    join_wallet(&shop_wallet, &client, &[Role::Merchant]);
    // The merchant signs its invoices with the certificate it now holds.
    let shop = serve_merchant(&shop_config(ServerConfig::loopback()), shop_purse.clone())
        .expect("merchant server");

    let alice_purse = purse_for(&client, "alice-w", 0, &gateway.url(), dir.path());
    let alice = Wallet::open(alice_purse.clone(), ClientConfig::default()).expect("wallet");
    let account = join_wallet(&alice, &client, &[Role::CoinPurchaser, Role::Redeemer]);
    assert!(
        alice_purse
            .profile()
            .expect("profile")
            .certificate
            .is_some()
    );

    let PurchaseOutcome::Issued(coins) = alice
        .buy(paper_spec(), account.clone(), false)
        .expect("bought")
    else {
        panic!("purchase did not settle");
    };
    assert_eq!(coins.len(), 6);
    assert_eq!(holdings(&alice_purse), Amount::from_minor(1225));

    // Exact coins (2 x 2.50), and the payee's receipt checks.
    let paid = alice.pay(&shop.url(), "book").expect("paid");
    assert_eq!(
        paid,
        PayerOutcome::Paid {
            receipt_verified: true
        }
    );
    // 3.00 from 1.25 + 3 x 2.00: change first, then exact.
    let paid = alice.pay(&shop.url(), "tea").expect("paid");
    assert!(matches!(paid, PayerOutcome::Paid { .. }));
    assert_eq!(holdings(&alice_purse), Amount::from_minor(425));
    assert_eq!(holdings(&shop_purse), Amount::from_minor(800));

    // Redeem 1.25 to the bank.
    let bank_before = client.bank_balance(&account).expect("balance");
    alice
        .redeem(Amount::from_minor(125), account.clone())
        .expect("redeemed");
    assert_eq!(
        client.bank_balance(&account).expect("balance"),
        bank_before
            .checked_add(Amount::from_minor(125))
            .expect("sum")
    );
    assert_eq!(holdings(&alice_purse), Amount::from_minor(300));

    // More than she has.
    let e = alice.pay(&shop.url(), "book").expect_err("too poor");
    assert!(matches!(e, WalletError::Insufficient { .. }), "{e}");

    // A purchase cut off from the issuer stays journaled, and resuming it
    // once the issuer is back buys the coins once.
    gateway.stop().expect("gateway stops");
    let e = alice
        .buy(paper_spec(), account.clone(), true)
        .expect_err("issuer away");
    assert!(
        matches!(e, WalletError::Client(ClientError::Transport { .. })),
        "{e}"
    );
    assert_eq!(alice_purse.in_flight().expect("journal").len(), 1);
    let gateway = serve_shared_issuer(&ServerConfig::new(addr));
    let report = alice.resume().expect("resumed");
    assert_eq!(report.finished, 1);
    assert_eq!(report.unfinished, 0);
    assert!(alice_purse.in_flight().expect("journal").is_empty());
    assert_eq!(holdings(&alice_purse), Amount::from_minor(300 + 1225));

    // The merchant restarts between the invoice and the payment and forgets
    // the order: "no such order" proves nothing, so the payment turns at
    // once into a change with the issuer, which gives the coins back fresh.
    let merchant =
        client::MerchantClient::new(&shop.url(), ClientConfig::default()).expect("merchant client");
    let invoice = merchant.invoice("book", alice.id()).expect("invoice");
    let shop_addr = shop.addr();
    shop.stop().expect("merchant stops");
    let shop = serve_merchant(
        &shop_config(ServerConfig::new(shop_addr)),
        shop_purse.clone(),
    )
    .expect("merchant again");
    let before = holdings(&alice_purse);
    let e = alice
        .pay_invoice(&shop.url(), &invoice)
        .expect_err("order forgotten");
    assert!(
        matches!(&e, WalletError::Unproven { why } if why.contains("UnknownOrder")),
        "{e}"
    );
    assert_eq!(holdings(&alice_purse), before, "the coins came back");
    assert!(alice_purse.in_flight().expect("journal").is_empty());
    assert_eq!(holdings(&shop_purse), Amount::from_minor(800));

    core.audit_conservation()
        .expect("log audits")
        .check_equation()
        .expect("conservation holds");
    shop.stop().expect("merchant stops");
    gateway.stop().expect("gateway stops");
}

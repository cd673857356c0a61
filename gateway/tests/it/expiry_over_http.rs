//! Coin expiry over real loopback HTTP, with a clock the test moves
//! forward (never back), shared by the issuer (`IssuerConfig.clock`) and the
//! wallet (`Wallet::with_clock`): once the coins' expiry has passed, the
//! purse no longer offers them, the issuer refuses them in an ordinary
//! exchange (signed "expired", and the purse keeps them for refreshing),
//! and within the grace period `refresh_expired` turns them into coins of a
//! new key epoch that pay.

use crate::util;

use std::sync::Arc;
use std::time::Duration;

use actors::IssuerConfig;
use actors::SimulatedBank;
use client::{ClientConfig, PurchaseOutcome, ServerConfig, Wallet, WalletError};
use ledger::testkit::ForwardClock;
use ledger::{Amount, Role};
use protocol::flows::PayerOutcome;
use protocol::wire::RejectReason;
use purse::CoinState;
use vc_gateway::{IssuerRuntime, serve_issuer_with_bank};

use util::{join_wallet, purse_for, spec, tea_shop};

const DAY_SECS: u64 = 24 * 3600;

#[test]
fn expired_coins_are_refused_then_refreshed_within_the_grace_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ForwardClock::default());
    let bank =
        Arc::new(SimulatedBank::open(dir.path().join("bank.redb"), Duration::ZERO).expect("bank"));
    let mut config = IssuerConfig::new(dir.path().join("issuer"));
    config.n_shards = 2;
    config.clock = clock.clone();
    let lifetime = config.coin_lifetime_secs;
    let runtime = IssuerRuntime::start(config, bank.clone()).expect("issuer starts");
    let core = runtime.issuer().core().clone();
    let gateway = serve_issuer_with_bank(
        &util::operator_config(ServerConfig::loopback()),
        runtime.issuer().clone(),
        bank.clone(),
    )
    .expect("gateway");
    let client = util::operator_client(&gateway.url());

    let shop_purse = purse_for(&client, "shop-x", 1, &gateway.url(), dir.path());
    let shop_wallet = Wallet::open(shop_purse.clone(), ClientConfig::default()).expect("wallet");
    shop_wallet.register().expect("registered");
    let shop = tea_shop(shop_purse);

    let purse = purse_for(&client, "fay-x", 0, &gateway.url(), dir.path());
    let wallet = Wallet::open(purse.clone(), ClientConfig::default())
        .expect("wallet")
        .with_clock(clock.clone());
    let account = join_wallet(&wallet, &client, &[Role::CoinPurchaser]);
    let PurchaseOutcome::Issued(coins) = wallet
        .buy(spec(&[(2, 250)]), account, false)
        .expect("bought")
    else {
        panic!("purchase did not settle");
    };

    // A day past the coins' expiry, inside the grace period.
    clock.advance(lifetime + DAY_SECS);
    let epoch = core.open_epoch_now().expect("a new key epoch");
    assert_eq!(purse.expired(wallet.now()).expect("expired").len(), 2);
    let e = wallet
        .pay(&shop.url(), "tea")
        .expect_err("nothing spendable");
    assert!(matches!(e, WalletError::Insufficient { .. }), "{e}");

    // Past the purse, the issuer itself refuses them, with a signed
    // statement; the purse keeps them, for a refresh may still take them.
    let e = wallet
        .change(vec![coins[0]], spec(&[(2, 125)]))
        .expect_err("expired");
    assert!(
        matches!(&e, WalletError::Rejected(r) if r.reason == RejectReason::Expired),
        "{e}"
    );
    assert_eq!(
        purse
            .coin(coins[0].id())
            .expect("coin")
            .expect("held")
            .state,
        CoinState::Available
    );

    let fresh = wallet.refresh_expired().expect("refreshed");
    assert_eq!(fresh.len(), 2);
    assert!(fresh.iter().all(|c| c.body.epoch == epoch));
    assert!(fresh.iter().all(|c| c.body.expiry > wallet.now()));
    assert!(purse.expired(wallet.now()).expect("expired").is_empty());
    assert_eq!(
        purse.balance().expect("balance").available,
        Amount::from_minor(500)
    );
    assert!(matches!(
        wallet.pay(&shop.url(), "tea").expect("paid"),
        PayerOutcome::Paid { .. }
    ));

    shop.stop().expect("merchant stops");
    gateway.stop().expect("gateway stops");
    // Stopping waits for the core's last holder; this test is one.
    drop(core);
    runtime.try_stop().expect("the issuer closes its files");
}

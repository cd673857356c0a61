//! The operator's day on a serving issuer, over real loopback HTTP: a new
//! mint key epoch opened on demand through `POST /admin/epoch/open` while
//! payments go on before and after it, and a stop that returns only once
//! the issuer's log is closed, so an auditor may open it read-only at once.

use crate::util;

use std::sync::Arc;
use std::time::Duration;

use actors::IssuerConfig;
use actors::SimulatedBank;
use client::{ClientConfig, PurchaseOutcome, ServerConfig, Wallet};
use ledger::{
    Amount, CoinSpec, Denomination, Event, EventStore, KeyEpoch, RedbStore, Role, Seq, Sharing,
    Timestamp, verify_store,
};
use protocol::flows::PayerOutcome;
use vc_gateway::{IssuerRuntime, serve_issuer_with_bank};

use util::{join_wallet, purse_for, tea_shop};

fn spec(count: u32, minor: u64) -> CoinSpec {
    CoinSpec::new(vec![Denomination {
        count,
        value: Amount::from_minor(minor),
    }])
    .expect("spec")
}

fn start_issuer(dir: &std::path::Path) -> (IssuerRuntime, Arc<SimulatedBank>) {
    let bank = Arc::new(SimulatedBank::open(dir.join("bank.redb"), Duration::ZERO).expect("bank"));
    let mut config = IssuerConfig::new(dir.join("issuer"));
    config.n_shards = 2;
    let runtime = IssuerRuntime::start(config, bank.clone()).expect("issuer starts");
    (runtime, bank)
}

/// Every event of the log at `path`, opened read-only (as an auditor
/// does), after its hash chain checks.
fn events_read_only(path: &std::path::Path) -> Vec<Event> {
    let store = RedbStore::open_read_only(path, Sharing::default())
        .expect("the stopped issuer's log opens read-only at once");
    verify_store(&store, 1024).expect("the chain verifies");
    let head = store.head().expect("head");
    let records = store
        .read(Seq(1), usize::try_from(head.last_seq.0).expect("small log"))
        .expect("records");
    records.into_iter().map(|r| r.record.event).collect()
}

#[test]
fn a_serving_issuer_opens_an_epoch_on_demand_and_payments_go_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (runtime, bank) = start_issuer(dir.path());
    let gateway = serve_issuer_with_bank(
        &util::operator_config(ServerConfig::loopback()),
        runtime.issuer().clone(),
        bank,
    )
    .expect("gateway");
    let client = util::operator_client(&gateway.url());

    let shop_purse = purse_for(&client, "shop-e", 1, &gateway.url(), dir.path());
    Wallet::open(shop_purse.clone(), ClientConfig::default())
        .expect("wallet")
        .register()
        .expect("registered");
    let shop = tea_shop(shop_purse.clone());

    let purse = purse_for(&client, "gus-e", 0, &gateway.url(), dir.path());
    let wallet = Wallet::open(purse, ClientConfig::default()).expect("wallet");
    let account = join_wallet(&wallet, &client, &[Role::CoinPurchaser]);
    let PurchaseOutcome::Issued(old) = wallet
        .buy(spec(2, 250), account.clone(), false)
        .expect("bought")
    else {
        panic!("purchase did not settle");
    };
    assert!(old.iter().all(|c| c.body.epoch == KeyEpoch(1)));
    let paid = wallet.pay(&shop.url(), "tea").expect("paid before");
    assert!(matches!(paid, PayerOutcome::Paid { .. }), "{paid:?}");

    let opened = client.open_epoch().expect("epoch opened over HTTP");
    assert_eq!(opened.epoch, KeyEpoch(2));
    assert!(opened.coins_expire_at > Timestamp::now());
    assert!(opened.grace_ends_at > opened.coins_expire_at);

    // New coins are of the new epoch; the old epoch's last coin still pays,
    // and the merchant's refresh of it mints under the new key.
    let PurchaseOutcome::Issued(new) = wallet.buy(spec(1, 250), account, false).expect("bought")
    else {
        panic!("purchase did not settle");
    };
    assert!(new.iter().all(|c| c.body.epoch == KeyEpoch(2)));
    for _ in 0..2 {
        let paid = wallet.pay(&shop.url(), "tea").expect("paid after");
        assert!(matches!(paid, PayerOutcome::Paid { .. }), "{paid:?}");
    }
    let shop_coins = shop_purse.coins().expect("shop coins");
    assert!(shop_coins.iter().any(|c| c.coin.body.epoch == KeyEpoch(2)));

    shop.stop().expect("merchant stops");
    gateway.stop().expect("gateway stops");
    runtime.try_stop().expect("the issuer closes its files");

    let events = events_read_only(&dir.path().join("issuer").join("log.redb"));
    let opened_at = events
        .iter()
        .position(|e| matches!(e, Event::EpochOpened { epoch, .. } if *epoch == KeyEpoch(2)))
        .expect("the log records EpochOpened for epoch 2");
    assert!(matches!(
        events.get(opened_at + 1),
        Some(Event::EpochClosed { epoch }) if *epoch == KeyEpoch(1)
    ));
}

#[test]
fn the_operator_route_refuses_a_request_that_is_not_an_open_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (runtime, bank) = start_issuer(dir.path());
    let gateway = serve_issuer_with_bank(
        &util::operator_config(ServerConfig::loopback()),
        runtime.issuer().clone(),
        bank,
    )
    .expect("gateway");
    let client = util::operator_client(&gateway.url());
    let e = client
        .http()
        .post_encoded_ack("/admin/epoch/open", b"\x01\x00")
        .expect_err("unsigned");
    assert_eq!(e.code(), Some(client::ErrorCode::Unauthenticated), "{e}");
    // Signed by the operator, but trailing bytes are not an OpenEpoch.
    let audience = client.operator_audience().expect("the issuer's key");
    let signed = util::operator_key()
        .sign(Some(audience), "/admin/epoch/open", b"\x01\x00".to_vec())
        .expect("signed");
    let e = client
        .http()
        .post_encoded_ack("/admin/epoch/open", &protocol::wire::encode(&signed))
        .expect_err("trailing bytes are not an OpenEpoch");
    assert_eq!(e.code(), Some(client::ErrorCode::Malformed), "{e}");
    gateway.stop().expect("gateway stops");
    runtime.try_stop().expect("the issuer closes its files");
    let events = events_read_only(&dir.path().join("issuer").join("log.redb"));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::EpochOpened { epoch, .. } if *epoch == KeyEpoch(2))),
        "a refused request opened an epoch"
    );
}

/// Stops in a row: a worker thread that let go of the issuer a moment
/// after `stop` returned would be seen within a few.
const STOPS: u32 = 12;

#[test]
fn stop_returns_only_once_the_issuer_has_closed_its_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("issuer").join("log.redb");
    for round in 0..STOPS {
        let (runtime, bank) = start_issuer(dir.path());
        let gateway = serve_issuer_with_bank(
            &util::operator_config(ServerConfig::loopback()),
            runtime.issuer().clone(),
            bank,
        )
        .expect("gateway");
        let client = util::operator_client(&gateway.url());
        // Work on the pool, so a worker thread has run with the core.
        let opened = client.open_epoch().expect("epoch opened");
        assert_eq!(opened.epoch, KeyEpoch(round + 2));
        let core = Arc::downgrade(runtime.issuer().core());
        gateway.stop().expect("gateway stops");
        runtime.stop();

        // No thread holds the core any more: `stop` closed its files.
        assert_eq!(
            core.strong_count(),
            0,
            "round {round}: the core outlived stop"
        );
        let events = events_read_only(&log);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::EpochOpened { epoch, .. } if *epoch == opened.epoch)),
            "round {round}: the epoch is not in the log"
        );
    }
    // And a writer may open it again (no lock left behind).
    drop(RedbStore::open(&log).expect("reopens writable"));
}

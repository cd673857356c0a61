//! A collection the issuer committed but whose answer the merchant never
//! received: the merchant's link to the issuer passes through a proxy that
//! forwards each `POST /v1/validate` and swallows the answer. The payer,
//! told "no answer", takes its coins back through the issuer and is
//! refused "already spent", so the money is the merchant's; no payer comes
//! back for that order, and the merchant's own retry must collect the
//! coins once the link is healthy. Without the retry the shop never held
//! them (the kill -9 soak's "a coin the issuer counts unspent that no
//! purse holds"), also when the merchant restarted before the link healed. Meanwhile the shop's key cannot change: the issuer
//! checks the repeat's signature under the registered key.

use crate::util;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use client::{ClientConfig, ServerConfig, Wallet, WalletError};
use ledger::{Amount, Role};

use util::{client_of, issuer, join_wallet, purse_for, serve_shared_issuer, spec, tea_shop};

/// A TCP proxy to `upstream` that, while `swallow` is set, forwards a
/// validation request and closes the client's connection without its
/// answer (counted in `swallowed`).
struct LossyProxy {
    addr: SocketAddr,
    swallow: Arc<AtomicBool>,
    swallowed: Arc<AtomicU32>,
}

impl LossyProxy {
    fn start(upstream: SocketAddr) -> LossyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let swallow = Arc::new(AtomicBool::new(false));
        let swallowed = Arc::new(AtomicU32::new(0));
        let (on, count) = (swallow.clone(), swallowed.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                pump(client, server, on.clone(), count.clone());
            }
        });
        LossyProxy {
            addr,
            swallow,
            swallowed,
        }
    }
}

/// Copies both ways; a validation request seen while `swallow` is set
/// makes the answer go nowhere and the client's connection close.
fn pump(client: TcpStream, server: TcpStream, swallow: Arc<AtomicBool>, count: Arc<AtomicU32>) {
    let validation_seen = Arc::new(AtomicBool::new(false));
    let (mut from_client, mut to_server) = (
        client.try_clone().expect("clone"),
        server.try_clone().expect("clone"),
    );
    let seen = validation_seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n @ 1..) = from_client.read(&mut buf) {
            let chunk = &buf[..n];
            if swallow.load(Ordering::SeqCst)
                && chunk.windows(18).any(|w| w == b"POST /v1/validate ")
            {
                seen.store(true, Ordering::SeqCst);
            }
            if to_server.write_all(chunk).is_err() {
                break;
            }
        }
        let _ = to_server.shutdown(Shutdown::Write);
    });
    let (mut from_server, mut to_client) = (server, client);
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n @ 1..) = from_server.read(&mut buf) {
            if validation_seen.load(Ordering::SeqCst) {
                // The issuer answered (it has decided); the merchant never
                // hears it.
                count.fetch_add(1, Ordering::SeqCst);
                let _ = to_client.shutdown(Shutdown::Both);
                return;
            }
            if to_client.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to_client.shutdown(Shutdown::Write);
    });
}

fn holdings(purse: &purse::Purse) -> Amount {
    purse.balance().expect("balance").holdings().expect("sum")
}

#[test]
fn a_collection_committed_but_unanswered_reaches_the_merchant_without_the_payer() {
    let core = issuer().core.clone();
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = client_of(&gateway);
    let proxy = LossyProxy::start(gateway.addr());
    let dir = tempfile::tempdir().expect("tempdir");

    // The shop reaches the issuer only through the proxy.
    let shop_purse = purse_for(
        &client,
        "shop-lost",
        1,
        &format!("http://{}", proxy.addr),
        dir.path(),
    );
    let shop_wallet = Wallet::open(shop_purse.clone(), ClientConfig::default()).expect("wallet");
    join_wallet(&shop_wallet, &client, &[Role::Merchant]);
    let shop = tea_shop(shop_purse.clone());

    let payer_purse = purse_for(&client, "payer-lost", 0, &gateway.url(), dir.path());
    let payer = Wallet::open(payer_purse.clone(), ClientConfig::default()).expect("wallet");
    let account = join_wallet(&payer, &client, &[Role::CoinPurchaser]);
    payer
        .buy(spec(&[(1, 250)]), account, false)
        .expect("bought");

    // The issuer commits the shop's validation; its answer is lost.
    proxy.swallow.store(true, Ordering::SeqCst);
    let e = payer
        .pay(&shop.url(), "tea")
        .expect_err("no proof of payment");
    assert!(matches!(e, WalletError::Unproven { .. }), "{e}");
    assert!(proxy.swallowed.load(Ordering::SeqCst) >= 1);
    // The payer's change was refused "already spent": the shop's
    // validation committed, and the coin is gone from the payer.
    assert_eq!(
        holdings(&payer_purse),
        Amount::ZERO,
        "the payer's coin went to the shop's committed validation"
    );
    assert!(payer_purse.in_flight().expect("journal").is_empty());
    assert_eq!(holdings(&shop_purse), Amount::ZERO);

    // The shop's key cannot change while the validation signed with it is
    // unanswered: the issuer answers a repeat only under the registered key.
    let e = shop_wallet
        .change_key(2048)
        .expect_err("a collection is unanswered");
    assert!(
        matches!(
            e,
            WalletError::Invalid {
                what: "key change",
                ..
            }
        ),
        "{e}"
    );

    // The shop restarts while the link still loses answers: its start
    // re-sends the journaled validation and hears nothing, and no order of
    // the new run holds it.
    shop.stop().expect("merchant stops");
    let before = proxy.swallowed.load(Ordering::SeqCst);
    let shop = tea_shop(shop_purse.clone());
    assert!(proxy.swallowed.load(Ordering::SeqCst) > before);
    assert_eq!(holdings(&shop_purse), Amount::ZERO);

    // The link heals; nobody pays again. The restarted shop's retry
    // thread collects.
    proxy.swallow.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    while holdings(&shop_purse) != Amount::from_minor(250)
        || !shop_purse.in_flight().expect("journal").is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the shop never collected the coins the issuer committed to it"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    core.audit_conservation()
        .expect("log audits")
        .check_equation()
        .expect("conservation holds");
    shop.stop().expect("merchant stops");
    gateway.stop().expect("gateway stops");
}

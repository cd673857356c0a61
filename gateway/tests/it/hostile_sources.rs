//! Hostile sources over TLS: 2,000 connections of each kind against the
//! issuer gateway (from 127.0.0.2 to .5) and 2,000 against the merchant
//! server (from 127.0.0.6 to .9) leave an honest payment (127.0.0.1, through
//! both) under a second. 2,000 trickling bodies are more than a server's
//! 1,024 places for bodies still arriving: without the per-source shares
//! they lock the honest payment out.
//!
//! - idle: connections that never send a byte (not even a TLS ClientHello);
//! - trickled bodies: a full TLS handshake and request head, then the body
//!   one byte at a time;
//! - request floods: pipelined requests as fast as a connection takes them.
//!
//! Each attacker address gets its share of the servers' places (bodies
//! still arriving, requests in flight, requests per second) and no more, so
//! the honest address always finds room. Every loop here is bounded in
//! count and in time; the figures are printed.

#![allow(clippy::expect_used)]

use crate::util;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use client::{
    CatalogItem, ClientConfig, CollectOption, IssuerCa, IssuerClient, MerchantConfig,
    PurchaseOutcome, ServerConfig, ServerHandle, TlsAuthority, Wallet, serve_merchant,
};
use ledger::{Amount, CoinSpec, Denomination, Role};
use rustls::pki_types::{CertificateDer, ServerName};

use client::constants::REQUEST_BODIES_RECEIVING_PER_SOURCE_MAX;
use util::{issuer, join_wallet, operator_config, operator_key, purse_for};

/// Hostile connections of each kind, against each server.
const CONNECTIONS_PER_SERVER: usize = 2_000;
/// Hostile connections of each kind, in all.
const CONNECTIONS_PER_KIND: usize = 2 * CONNECTIONS_PER_SERVER;
/// Attacker addresses: 127.0.0.2 ..= 127.0.0.(1 + ATTACKER_SOURCES); the
/// first half aim at the issuer, the second at the merchant.
const ATTACKER_SOURCES: u8 = 8;
/// Honest payments made under each kind of attack.
const PAYMENTS_PER_KIND: usize = 3;
/// The bound on an honest payment's latency under attack.
const HONEST_LATENCY_MAX: Duration = Duration::from_secs(1);
/// How long an attack may take to set up before it is given up on.
const SETUP_TIME_MAX: Duration = Duration::from_secs(30);
/// Pause between two trickled body bytes.
const TRICKLE_INTERVAL_MS: u64 = 500;
/// Requests a flooding connection pipelines per write.
const FLOOD_PIPELINE: usize = 8;
/// Threads that drive the flooding and trickling connections.
const DRIVER_THREADS: usize = 4;
/// The servers' body timeout here: longer than the attack.
const BODY_TIMEOUT_MS: u64 = 30_000;
/// Price of the shop's one item.
const PRICE_MINOR: u64 = 250;

fn attacker(i: usize) -> IpAddr {
    let n = u8::try_from(i % usize::from(ATTACKER_SOURCES)).expect("few sources");
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + n))
}

/// Connects from `from` to `to` (a socket bound to the source address).
fn connect_from(
    runtime: &tokio::runtime::Runtime,
    from: IpAddr,
    to: SocketAddr,
) -> std::net::TcpStream {
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(from, 0))
            .expect("bind the source address");
        let stream = socket.connect(to).await.expect("connect");
        let stream = stream.into_std().expect("std stream");
        stream.set_nonblocking(false).expect("blocking");
        stream
    })
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// A TLS connection from `from`, handshake done.
fn tls_from(
    runtime: &tokio::runtime::Runtime,
    config: &Arc<rustls::ClientConfig>,
    from: IpAddr,
    to: SocketAddr,
) -> Option<Tls> {
    let tcp = connect_from(runtime, from, to);
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    tcp.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    let name = ServerName::IpAddress(to.ip().into());
    let connection = rustls::ClientConnection::new(config.clone(), name).ok()?;
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).ok()?;
    }
    Some(tls)
}

fn tls_client_config(ca: &IssuerCa) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.der().to_vec()))
        .expect("root");
    Arc::new(
        rustls::ClientConfig::builder_with_provider(client::tls::crypto_provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn spec(count: u32, minor: u64) -> CoinSpec {
    CoinSpec::new(vec![Denomination {
        count,
        value: Amount::from_minor(minor),
    }])
    .expect("spec")
}

fn pay_timed(wallet: &Wallet, shop_url: &str) -> Duration {
    let started = Instant::now();
    let outcome = wallet
        .pay(shop_url, "tea")
        .expect("an honest payment completes");
    assert!(
        matches!(outcome, protocol::flows::PayerOutcome::Paid { .. }),
        "{outcome:?}"
    );
    started.elapsed()
}

struct Servers {
    gateway: ServerHandle,
    shop: ServerHandle,
    ca: IssuerCa,
}

impl Servers {
    /// The target of attacker `i`: the issuer for the first half of the
    /// sources, the merchant for the second.
    fn target(&self, i: usize) -> SocketAddr {
        if i % usize::from(ATTACKER_SOURCES) < usize::from(ATTACKER_SOURCES) / 2 {
            self.gateway.addr()
        } else {
            self.shop.addr()
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime")
}

/// [`CONNECTIONS_PER_KIND`] TLS connections from the attacker addresses to
/// their targets, opened by [`DRIVER_THREADS`] threads at once, each sent
/// `head(target)` once its handshake is done.
fn open_tls(
    servers: &Servers,
    config: &Arc<rustls::ClientConfig>,
    head: impl Fn(SocketAddr) -> String + Sync,
) -> Vec<Tls> {
    let started = Instant::now();
    let head = &head;
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..DRIVER_THREADS)
            .map(|t| {
                s.spawn(move || {
                    let runtime = runtime();
                    let mut out = Vec::new();
                    for i in (t..CONNECTIONS_PER_KIND).step_by(DRIVER_THREADS) {
                        assert!(
                            started.elapsed() < SETUP_TIME_MAX,
                            "the attackers took too long to connect"
                        );
                        let target = servers.target(i);
                        let Some(mut tls) = tls_from(&runtime, config, attacker(i), target) else {
                            continue;
                        };
                        let head = head(target);
                        if tls
                            .write_all(head.as_bytes())
                            .and_then(|()| tls.flush())
                            .is_ok()
                        {
                            out.push(tls);
                        }
                    }
                    out
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("the thread ran to its end"))
            .collect()
    })
}

/// Honest payments while `attack` holds its connections; their latencies.
fn pay_during(wallet: &Wallet, shop_url: &str) -> Vec<Duration> {
    (0..PAYMENTS_PER_KIND)
        .map(|_| pay_timed(wallet, shop_url))
        .collect()
}

/// The issuer's gauge of requests whose bodies are still arriving.
fn bodies_receiving(client: &IssuerClient) -> usize {
    let metrics = client.metrics(util::scrape_token()).expect("metrics");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("vc_issuer_http_bodies_receiving "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the gauge")
}

fn assert_fast(kind: &str, latencies: &[Duration]) {
    println!("under {kind}: honest payments took {latencies:?}");
    for latency in latencies {
        assert!(
            *latency < HONEST_LATENCY_MAX,
            "under {kind}, an honest payment took {latency:?}"
        );
    }
}

#[test]
fn two_thousand_hostile_connections_of_each_kind_leave_honest_payments_under_a_second() {
    let authority = TlsAuthority::generate().expect("authority");
    let ca = authority.ca().expect("ca");
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let identity = authority
        .issue(&names)
        .expect("cert")
        .identity()
        .expect("identity");
    let mut server = operator_config(ServerConfig::loopback());
    server.tls = Some(identity.clone());
    // Bodies may take long to arrive here, so the tricklers all hold their
    // places while the honest payments run (a short timeout would only
    // make the attacker reconnect).
    server.body_timeout_ms = BODY_TIMEOUT_MS;
    let gateway =
        vc_gateway::serve_issuer_with_bank(&server, issuer().handle(), issuer().bank.clone())
            .expect("issuer gateway over TLS");
    assert!(gateway.url().starts_with("https://"));
    let client = IssuerClient::new(&gateway.url(), ClientConfig::pinned(ca.clone()))
        .expect("client")
        .with_operator(operator_key().clone());

    let dir = tempfile::tempdir().expect("tempdir");
    let shop_purse = purse_for(&client, "shop-sources", 1, &gateway.url(), dir.path());
    let shop_wallet =
        Wallet::open(shop_purse.clone(), ClientConfig::pinned(ca.clone())).expect("wallet");
    join_wallet(&shop_wallet, &client, &[Role::Merchant]);
    let mut shop_server = ServerConfig::loopback();
    shop_server.tls = Some(identity);
    shop_server.body_timeout_ms = BODY_TIMEOUT_MS;
    let shop = serve_merchant(
        &MerchantConfig {
            server: shop_server,
            shop_name: "Tea".into(),
            catalog: vec![CatalogItem {
                sku: "tea".into(),
                title: "Tea".into(),
                price: Amount::from_minor(PRICE_MINOR),
                collect: None,
            }],
            collect: CollectOption::Refresh,
            client: ClientConfig::pinned(ca.clone()),
        },
        shop_purse,
    )
    .expect("merchant server over TLS");
    let shop_url = shop.url();

    let alice_purse = purse_for(&client, "alice-sources", 0, &gateway.url(), dir.path());
    let alice = Wallet::open(alice_purse, ClientConfig::pinned(ca.clone())).expect("wallet");
    let account = join_wallet(&alice, &client, &[Role::CoinPurchaser]);
    // Two purchases (a purchase issues at most ten coins): one payment
    // before, three per kind, one after.
    for _ in 0..2 {
        let PurchaseOutcome::Issued(_) = alice
            .buy(spec(6, PRICE_MINOR), account.clone(), false)
            .expect("bought")
        else {
            panic!("purchase did not settle");
        };
    }
    let baseline = pay_timed(&alice, &shop_url);
    println!("baseline: an honest payment over TLS took {baseline:?}");

    let servers = Servers { gateway, shop, ca };
    let runtime = runtime();
    let tls_config = tls_client_config(&servers.ca);

    // 1. Idle connections: TCP only, not even a ClientHello.
    let started = Instant::now();
    let idle: Vec<std::net::TcpStream> = (0..CONNECTIONS_PER_KIND)
        .map(|i| connect_from(&runtime, attacker(i), servers.target(i)))
        .collect();
    println!(
        "{} idle connections open in {:?}",
        idle.len(),
        started.elapsed()
    );
    assert_fast("idle connections", &pay_during(&alice, &shop_url));
    drop(idle);

    // 2. Trickled bodies: handshake, head, then a byte at a time.
    let started = Instant::now();
    let mut tricklers = open_tls(&servers, &tls_config, |target| {
        let path = if target == servers.gateway.addr() {
            "/v1/register"
        } else {
            "/order/00000000000000000000000000000000/pay"
        };
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.varietycash+postcard\r\nContent-Length: 1000\r\n\r\n"
        )
    });
    println!(
        "{} trickling connections set up in {:?}",
        tricklers.len(),
        started.elapsed()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let trickled = std::thread::scope(|s| {
        let per_thread = tricklers.len().div_ceil(DRIVER_THREADS).max(1);
        for chunk in tricklers.chunks_mut(per_thread) {
            let stop = stop.clone();
            s.spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(30);
                while !stop.load(Ordering::Acquire) && Instant::now() < deadline {
                    for tls in chunk.iter_mut() {
                        let _ = tls.write_all(b"\x00").and_then(|()| tls.flush());
                    }
                    std::thread::sleep(Duration::from_millis(TRICKLE_INTERVAL_MS));
                }
            });
        }
        // Each attacking address holds its share of the issuer's places
        // for bodies still arriving, and no more: once they are all taken,
        // and a trickle later, none more.
        let share = usize::from(ATTACKER_SOURCES / 2) * REQUEST_BODIES_RECEIVING_PER_SOURCE_MAX;
        let deadline = Instant::now() + Duration::from_secs(10);
        while bodies_receiving(&client) < share && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(TRICKLE_INTERVAL_MS));
        let receiving = bodies_receiving(&client);
        println!("the issuer's bodies still arriving: {receiving}");
        assert_eq!(
            receiving,
            usize::from(ATTACKER_SOURCES / 2) * REQUEST_BODIES_RECEIVING_PER_SOURCE_MAX,
            "the tricklers hold every place their addresses may"
        );
        let latencies = pay_during(&alice, &shop_url);
        stop.store(true, Ordering::Release);
        latencies
    });
    assert_fast("trickled bodies", &trickled);
    drop(tricklers);

    // 3. Request floods: pipelined requests on every connection.
    let started = Instant::now();
    let mut flooders = open_tls(&servers, &tls_config, |_| String::new());
    for tls in &flooders {
        tls.sock
            .set_read_timeout(Some(Duration::from_millis(1)))
            .expect("timeout");
    }
    println!(
        "{} flooding connections set up in {:?}",
        flooders.len(),
        started.elapsed()
    );
    let burst = "GET /v1/issuer HTTP/1.1\r\nHost: x\r\n\r\n".repeat(FLOOD_PIPELINE);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let flooders_n = flooders.len();
    let flooded = std::thread::scope(|s| {
        let per_thread = flooders.len().div_ceil(DRIVER_THREADS).max(1);
        for chunk in flooders.chunks_mut(per_thread) {
            let (stop, sent, burst) = (stop.clone(), sent.clone(), burst.as_bytes());
            s.spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(30);
                let mut buf = vec![0u8; 64 * 1024];
                while !stop.load(Ordering::Acquire) && Instant::now() < deadline {
                    for tls in chunk.iter_mut() {
                        if tls.write_all(burst).and_then(|()| tls.flush()).is_ok() {
                            sent.fetch_add(FLOOD_PIPELINE, Ordering::Relaxed);
                        }
                        // Drain what the server answered, without waiting.
                        let _ = tls.read(&mut buf);
                    }
                }
            });
        }
        // The flood is under way once every connection has sent a burst.
        let deadline = Instant::now() + Duration::from_secs(10);
        while sent.load(Ordering::Relaxed) < flooders_n * FLOOD_PIPELINE
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let latencies = pay_during(&alice, &shop_url);
        stop.store(true, Ordering::Release);
        latencies
    });
    println!(
        "{} flooding requests sent by {} connections",
        sent.load(Ordering::Relaxed),
        flooders.len()
    );
    assert_fast("request floods", &flooded);
    // What held the floods back: each address's request rate.
    let metrics = client.metrics(util::scrape_token()).expect("metrics");
    let limited: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("vc_issuer_http_requests_total{") && l.contains("status=\"429\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    println!("the issuer answered {limited} flooding requests 429");
    assert!(
        limited > 0,
        "the floods were never rate limited:\n{metrics}"
    );
    drop(flooders);

    println!(
        "alice after the attacks: {:?}",
        alice.purse().balance().expect("balance")
    );
    // The honest address is still served as before.
    let after = pay_timed(&alice, &shop_url);
    println!("after the attacks: an honest payment took {after:?}");
    assert!(after < HONEST_LATENCY_MAX);
}

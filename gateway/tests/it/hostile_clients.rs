//! Hostile clients over real loopback HTTPS (every connection a TLS one,
//! the issuer's authority pinned), while honest wallets keep buying and
//! paying through the same issuer gateway:
//!
//! - oversized bodies, declared up front or sent chunked without a length;
//! - slow-loris senders: many connections trickling their request head, and
//!   256 (as many as the places in flight) holding back or trickling their
//!   body after a complete head; honest payments complete while all 256 are
//!   connected;
//! - 10,000 garbage requests: random bytes under the right media type,
//!   wrong media types, truncated and bit-flipped valid messages;
//! - replayed messages (a WRequest3 after its purchase closed, a
//!   PurchaseIssuance2, a ValidationRequest and a PaymentIssuance2 sent
//!   again) and valid messages under the wrong session (purchase A's
//!   WRequest3, poll and ack sent as purchase B's; payment X's
//!   PaymentIssuance2 sent as payment Y's, or in another payee's name);
//!   the forged copies do not use up the real sessions, whose own messages
//!   go through afterwards.
//!
//! Every hostile request gets a typed error ([`ErrorBody`] under the error
//! media type) or is cut off by a timeout; the honest wallets' purchases and
//! payments all complete; the issuer's log audits (conservation). The
//! figures (garbage answered per second, honest payment latency with and
//! without the attack) are printed to the test's output.

use crate::util;

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use client::media::{ERROR, INVOICE, POSTCARD};
use client::{
    CatalogItem, CollectOption, ErrorBody, ErrorCode, IssuerClient, MerchantConfig,
    PurchaseOutcome, ServerConfig, ServerHandle, Wallet, serve_merchant,
};
use ledger::{Amount, BankAccount, Coin, CoinSpec, Denomination, ParticipantId, Role, Timestamp};
use protocol::crypto::SecretKey;
use protocol::flows::{
    PayeeOutcome, PaymentPayee, PaymentPayer, PurchaseClient, PurchaseUpdate, RegistrationClient,
    enrollment_request,
};
use protocol::wire::payment::{PDesc, PaymentIssuance2, VOption};
use protocol::wire::purchase::{WDesc, WRequest3};
use protocol::wire::{decode, encode};
use purse::Purse;

use util::{
    client_of, issuer, join_wallet, key, parse_response, post_request, purse_for,
    serve_shared_issuer,
};

/// Garbage requests sent during the attack, over this many threads.
const GARBAGE_REQUESTS: usize = 10_000;
const GARBAGE_THREADS: usize = 4;
/// Slow-loris connections trickling their head, and their body. Body
/// tricklers wait among the bodies being received and take no place in
/// flight, so as many as `REQUESTS_IN_FLIGHT_MAX` (256) of them do not lock
/// honest clients out (were they counted in flight, 256 would for the whole
/// body timeout).
const LORIS_HEAD_CONNECTIONS: usize = 150;
const LORIS_BODY_CONNECTIONS: usize = 256;
/// The gateway's body timeout in this test: as long as the lockout was, so
/// the body senders stay connected while the honest payments run.
const BODY_TIMEOUT_MS: u64 = 10_000;
/// Honest payments made while only the body senders are connected.
const PAYMENTS_BESIDE_SLOW_BODIES: usize = 2;
/// Pause between two trickled bytes on one slow-loris connection.
const LORIS_BYTE_INTERVAL_MS: u64 = 200;
/// Oversized requests sent during the attack.
const OVERSIZED_REQUESTS: usize = 200;
/// Price of the shop's one item, and the honest wallets' coins.
const PRICE_MINOR: u64 = 250;
/// Honest payments made before the attack, for the latency baseline.
const PAYMENTS_BASELINE: usize = 4;
/// Honest payments per wallet made under attack.
const PAYMENTS_UNDER_ATTACK: usize = 4;

// ---------------------------------------------------------------- helpers

/// A tiny xorshift generator: the garbage needs no cryptographic quality,
/// only variety, and a fixed seed per thread keeps a failure reproducible.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Whether a raw response is a typed refusal: an error status, the error
/// media type, and a body that decodes as an [`ErrorBody`].
fn typed_error(resp: &util::RawResponse) -> Option<ErrorCode> {
    if resp.status < 400 || resp.header("content-type") != Some(ERROR) {
        return None;
    }
    decode::<ErrorBody>(&resp.body).ok().map(|b| b.code)
}

fn spec(count: u32, minor: u64) -> CoinSpec {
    CoinSpec::new(vec![Denomination {
        count,
        value: Amount::from_minor(minor),
    }])
    .expect("spec")
}

fn holdings(purse: &Purse) -> Amount {
    purse.balance().expect("balance").holdings().expect("sum")
}

fn start_gateway() -> ServerHandle {
    let mut config = ServerConfig::loopback();
    config.body_timeout_ms = BODY_TIMEOUT_MS;
    // Every client here, honest or not, is 127.0.0.1: this test holds the
    // global limits to account; `hostile_sources.rs` the per-source ones.
    config.per_source = client::SourceLimits::unlimited();
    serve_shared_issuer(&util::tls_config(config))
}

// ------------------------------------------------------ valid messages

/// Encoded valid messages of several routes, for truncating and flipping
/// (and sending under wrong media types: never intact under their own).
fn valid_samples(client: &IssuerClient) -> Vec<(&'static str, Vec<u8>)> {
    let core = &issuer().core;
    let template = join_manual(client, "garbage-template", &[Role::CoinPurchaser]);
    let id = template.id.clone();
    let (_, register) = RegistrationClient::start(id.clone(), key(2));
    let (state, w1) = PurchaseClient::start(
        core.suite(),
        template.sk,
        id.clone(),
        &core.public_key(),
        core.now(),
    )
    .expect("wrequest1");
    let mut samples = vec![
        ("/v1/register", encode(&register)),
        ("/v1/purchase/1", encode(&w1)),
    ];
    // A WRequest3 of a live session (never sent intact, so never debited)
    // and a poll of it.
    let w2 = client.wrequest1(&w1).expect("wrequest2");
    let (awaiting, w3) = state
        .on_wrequest2(
            key(2),
            core.id(),
            &w2,
            w_desc(&template, spec(1, PRICE_MINOR)),
        )
        .expect("wrequest3");
    samples.push(("/v1/purchase/3", encode(&w3)));
    samples.push(("/v1/purchase/poll", encode(&awaiting.poll())));
    samples
}

/// Reads one response, returning as soon as its head and declared body are
/// in (not waiting for the server to close), or `None` if the server
/// closed or `timeout` passed first.
fn read_response(stream: &mut util::Tls, timeout: Duration) -> Option<util::RawResponse> {
    stream
        .sock
        .set_read_timeout(Some(timeout))
        .expect("timeout");
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(head_end) = bytes.windows(4).position(|w| w == b"\r\n\r\n")
            && let Some(resp) = parse_response(&bytes)
        {
            let declared = resp
                .header("content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if bytes.len() >= head_end + 4 + declared {
                return Some(resp);
            }
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return parse_response(&bytes),
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `request` on a fresh connection and reads the one response.
fn exchange(addr: SocketAddr, request: &[u8]) -> util::RawResponse {
    let mut stream = util::tls_connect(addr);
    stream.write_all(request).expect("send");
    read_response(&mut stream, Duration::from_secs(10)).expect("an HTTP response")
}

// ---------------------------------------------------------------- garbage

#[derive(Debug, Default)]
struct GarbageTally {
    sent: usize,
    typed: usize,
    /// 2xx answers to garbage: must stay 0.
    accepted: usize,
    /// Answers that were neither typed errors nor 2xx: must stay 0.
    untyped: Vec<String>,
    /// Statuses 5xx other than 503.
    server_errors: usize,
}

const ROUTES: &[&str] = &[
    "/v1/register",
    "/v1/enroll",
    "/v1/purchase/1",
    "/v1/purchase/3",
    "/v1/purchase/poll",
    "/v1/purchase/ack",
    "/v1/validate",
    "/v1/validate/ack",
    "/v1/refund",
    "/v1/coin-status",
];

/// One garbage request: `i` picks its kind, `rng` its bytes.
fn garbage_request(i: usize, rng: &mut XorShift, samples: &[(&str, Vec<u8>)]) -> Vec<u8> {
    match i % 4 {
        // Random bytes under the right media type, to any route.
        0 => {
            let len = rng.below(600);
            let mut body = rng.bytes(len);
            if !body.is_empty() && rng.below(2) == 0 {
                body[0] = 1; // the wire version, to get past the first check
            }
            post_request(ROUTES[rng.below(ROUTES.len())], POSTCARD, &body)
        }
        // A valid message under a wrong media type (or none).
        1 => {
            let (route, bytes) = &samples[rng.below(samples.len())];
            let media = ["application/json", "text/plain", INVOICE, ERROR, ""][rng.below(5)];
            if media.is_empty() {
                let mut req = format!(
                    "POST {route} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                    bytes.len()
                )
                .into_bytes();
                req.extend_from_slice(bytes);
                req
            } else {
                post_request(route, media, bytes)
            }
        }
        // A valid message cut short.
        2 => {
            let (route, bytes) = &samples[rng.below(samples.len())];
            let cut = rng.below(bytes.len());
            post_request(route, POSTCARD, &bytes[..cut])
        }
        // A valid message with one bit flipped.
        _ => {
            let (route, bytes) = &samples[rng.below(samples.len())];
            let mut bytes = bytes.clone();
            let bit = rng.below(bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            post_request(route, POSTCARD, &bytes)
        }
    }
}

fn send_garbage(
    addr: SocketAddr,
    seed: u64,
    count: usize,
    samples: &[(&'static str, Vec<u8>)],
) -> GarbageTally {
    let mut rng = XorShift(seed);
    let mut tally = GarbageTally::default();
    for i in 0..count {
        let request = garbage_request(i, &mut rng, samples);
        tally.sent += 1;
        let resp = exchange(addr, &request);
        if resp.status / 100 == 2 {
            tally.accepted += 1;
        } else if typed_error(&resp).is_some() {
            tally.typed += 1;
            if resp.status >= 500 && resp.status != 503 {
                tally.server_errors += 1;
            }
        } else if tally.untyped.len() < 10 {
            tally
                .untyped
                .push(format!("{} {:?}", resp.status, resp.headers));
        }
    }
    tally
}

// --------------------------------------------------------------- oversized

#[derive(Debug, Default)]
struct OversizedTally {
    typed_413: usize,
    /// Chunked bodies the server stopped reading by closing the connection
    /// before its answer could be read (the answer may be lost to a reset).
    cut_off: usize,
    other: Vec<String>,
}

fn send_oversized(addr: SocketAddr, count: usize) -> OversizedTally {
    let mut tally = OversizedTally::default();
    for i in 0..count {
        if i % 2 == 0 {
            // Declared: a head claiming 64 MiB, no body. Refused before a
            // byte of it is read.
            let route = ROUTES[i % ROUTES.len()];
            let head = format!(
                "POST {route} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: {POSTCARD}\r\nContent-Length: {}\r\n\r\n",
                64 * 1024 * 1024
            );
            let resp = exchange(addr, head.as_bytes());
            if resp.status == 413 && typed_error(&resp) == Some(ErrorCode::BodyTooLarge) {
                tally.typed_413 += 1;
            } else {
                tally.other.push(format!("declared: {resp:?}"));
            }
        } else {
            // Chunked, no length: 512 KiB to the ack route (at most 512
            // bytes), sent until the server stops taking it.
            let mut stream = util::tls_connect(addr);
            let head = format!(
                "POST /v1/validate/ack HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: {POSTCARD}\r\nTransfer-Encoding: chunked\r\n\r\n"
            );
            let mut complete = stream.write_all(head.as_bytes()).is_ok();
            let chunk = [7u8; 0x1000];
            for _ in 0..128 {
                if !complete {
                    break;
                }
                complete = stream.write_all(b"1000\r\n").is_ok()
                    && stream.write_all(&chunk).is_ok()
                    && stream.write_all(b"\r\n").is_ok();
            }
            if complete {
                let _ = stream.write_all(b"0\r\n\r\n");
            }
            match read_response(&mut stream, Duration::from_secs(10)) {
                Some(resp)
                    if resp.status == 413
                        && typed_error(&resp) == Some(ErrorCode::BodyTooLarge) =>
                {
                    tally.typed_413 += 1
                }
                Some(resp) => tally.other.push(format!("chunked: {resp:?}")),
                None => tally.cut_off += 1,
            }
        }
    }
    tally
}

// --------------------------------------------------------------- slow loris

#[derive(Debug, Default)]
struct LorisTally {
    /// Cut off by the server (closed, or answered 408) within the limit.
    cut_off: usize,
    /// Of those, answered with a typed 408.
    typed_408: usize,
    /// Longest a connection was kept.
    longest: Duration,
}

/// Opens `n` connections and trickles one byte per interval into each
/// (head bytes, or body bytes after a complete head) until the server cuts
/// it off or `give_up` passes.
fn slow_loris(addr: SocketAddr, n: usize, body: bool, give_up: Duration) -> LorisTally {
    let head_only =
        "POST /v1/register HTTP/1.1\r\nHost: t\r\nX-Padding: ".to_owned() + &"a".repeat(4096);
    let with_body = format!(
        "POST /v1/register HTTP/1.1\r\nHost: t\r\nContent-Type: {POSTCARD}\r\nContent-Length: 4000\r\n\r\n"
    );
    struct Conn {
        stream: util::Tls,
        opened: Instant,
        sent: usize,
        answer: Vec<u8>,
        done: Option<Duration>,
    }
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = util::tls_connect(addr);
        if body {
            stream.write_all(with_body.as_bytes()).expect("head");
        }
        stream.sock.set_nonblocking(true).expect("nonblocking");
        conns.push(Conn {
            stream,
            opened: Instant::now(),
            sent: 0,
            answer: Vec::new(),
            done: None,
        });
    }
    let started = Instant::now();
    while started.elapsed() < give_up && conns.iter().any(|c| c.done.is_none()) {
        for c in conns.iter_mut().filter(|c| c.done.is_none()) {
            let mut buf = [0u8; 1024];
            match c.stream.read(&mut buf) {
                Ok(0) => c.done = Some(c.opened.elapsed()),
                Ok(k) => {
                    c.answer.extend_from_slice(&buf[..k]);
                    if c.answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        c.done = Some(c.opened.elapsed());
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let byte = if body {
                        [1u8]
                    } else {
                        [head_only.as_bytes()[c.sent % head_only.len()]]
                    };
                    match c.stream.write(&byte) {
                        Ok(_) => c.sent += 1,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(_) => c.done = Some(c.opened.elapsed()),
                    }
                }
                Err(_) => c.done = Some(c.opened.elapsed()),
            }
        }
        std::thread::sleep(Duration::from_millis(LORIS_BYTE_INTERVAL_MS));
    }
    let mut tally = LorisTally::default();
    for c in &conns {
        if let Some(kept) = c.done {
            tally.cut_off += 1;
            tally.longest = tally.longest.max(kept);
            if let Some(resp) = parse_response(&c.answer)
                && resp.status == 408
                && (!body || typed_error(&resp) == Some(ErrorCode::RequestTimeout))
            {
                tally.typed_408 += 1;
            }
        }
    }
    tally
}

// ------------------------------------------------------------- the attack

/// Opens `n` connections that each send a complete head announcing a body,
/// and then nothing.
fn stalled_bodies(addr: SocketAddr, n: usize) -> Vec<util::Tls> {
    let head = format!(
        "POST /v1/validate HTTP/1.1\r\nHost: t\r\nContent-Type: {POSTCARD}\r\nContent-Length: 4000\r\n\r\n"
    );
    (0..n)
        .map(|_| {
            let mut stream = util::tls_connect(addr);
            stream.write_all(head.as_bytes()).expect("head");
            stream
        })
        .collect()
}

/// The gateway's count of requests whose bodies are still arriving.
fn bodies_receiving(client: &IssuerClient) -> usize {
    let metrics = client.metrics(util::scrape_token()).expect("metrics");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("vc_issuer_http_bodies_receiving "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the receiving gauge")
}

fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle.join().expect("the thread ran to its end")
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

fn summary(latencies: &[Duration]) -> String {
    let n = latencies.len().max(1) as u32;
    let mean = latencies.iter().sum::<Duration>() / n;
    let max = latencies.iter().max().copied().unwrap_or_default();
    format!("n={} mean={mean:?} max={max:?}", latencies.len())
}

#[test]
fn honest_wallets_pay_while_hostile_clients_attack_the_issuer() {
    let test_started = Instant::now();
    let core = issuer().core.clone();
    let gateway = start_gateway();
    let addr = gateway.addr();
    let client = client_of(&gateway);
    let dir = tempfile::tempdir().expect("tempdir");

    let shop_purse = purse_for(&client, "shop-hostile", 1, &gateway.url(), dir.path());
    let shop_wallet = Wallet::open(shop_purse.clone(), util::pinned()).expect("wallet");
    join_wallet(&shop_wallet, &client, &[Role::Merchant]);
    let shop = serve_merchant(
        &MerchantConfig {
            server: util::tls_config(ServerConfig::loopback()),
            shop_name: "Tea".into(),
            catalog: vec![CatalogItem {
                sku: "tea".into(),
                title: "Tea".into(),
                price: Amount::from_minor(PRICE_MINOR),
                collect: None,
            }],
            collect: CollectOption::Refresh,
            client: util::pinned(),
        },
        shop_purse.clone(),
    )
    .expect("merchant server");

    let mut wallets = Vec::new();
    for name in ["alice-hostile", "bob-hostile"] {
        let purse = purse_for(&client, name, 0, &gateway.url(), dir.path());
        let wallet = Wallet::open(purse, util::pinned()).expect("wallet");
        let account = join_wallet(&wallet, &client, &[Role::CoinPurchaser]);
        wallets.push((wallet, account));
    }

    // Without the attack: alice buys, and pays a few times.
    let coins_each =
        (PAYMENTS_BASELINE + PAYMENTS_BESIDE_SLOW_BODIES + PAYMENTS_UNDER_ATTACK) as u32;
    let (alice, alice_account) = &wallets[0];
    let PurchaseOutcome::Issued(_) = alice
        .buy(spec(coins_each, PRICE_MINOR), alice_account.clone(), false)
        .expect("bought")
    else {
        panic!("purchase did not settle");
    };
    let baseline: Vec<Duration> = (0..PAYMENTS_BASELINE)
        .map(|_| pay_timed(alice, &shop.url()))
        .collect();

    // 256 senders hold their bodies back: honest payments still complete
    // while every one of them is connected.
    let stalled = stalled_bodies(addr, LORIS_BODY_CONNECTIONS);
    let deadline = Instant::now() + Duration::from_secs(5);
    while bodies_receiving(&client) < LORIS_BODY_CONNECTIONS {
        assert!(Instant::now() < deadline, "the body senders never got in");
        std::thread::sleep(Duration::from_millis(20));
    }
    let beside_slow_bodies: Vec<Duration> = (0..PAYMENTS_BESIDE_SLOW_BODIES)
        .map(|_| pay_timed(alice, &shop.url()))
        .collect();
    assert_eq!(
        bodies_receiving(&client),
        LORIS_BODY_CONNECTIONS,
        "the body senders were connected throughout the payments"
    );
    drop(stalled);

    let samples = valid_samples(&client);

    // The attack, and the honest wallets at the same time.
    let stop = Arc::new(AtomicBool::new(false));
    let attack_started = Instant::now();
    let (garbage, oversized, loris_heads, loris_bodies, under_attack) = std::thread::scope(|s| {
        let garbage: Vec<_> = (0..GARBAGE_THREADS)
            .map(|t| {
                let samples = &samples;
                s.spawn(move || {
                    let started = Instant::now();
                    let tally = send_garbage(
                        addr,
                        0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1),
                        GARBAGE_REQUESTS / GARBAGE_THREADS,
                        samples,
                    );
                    (tally, started.elapsed())
                })
            })
            .collect();
        let oversized = s.spawn(move || send_oversized(addr, OVERSIZED_REQUESTS));
        // Past the head timeout (5 s) and the body timeout (10 s) with room.
        let loris_heads = s.spawn(move || {
            slow_loris(addr, LORIS_HEAD_CONNECTIONS, false, Duration::from_secs(15))
        });
        let loris_bodies = s
            .spawn(move || slow_loris(addr, LORIS_BODY_CONNECTIONS, true, Duration::from_secs(20)));
        let honest: Vec<_> = wallets
            .iter()
            .enumerate()
            .map(|(i, (wallet, account))| {
                let shop_url = shop.url();
                let stop = stop.clone();
                s.spawn(move || {
                    if i > 0 {
                        // Bob buys under attack.
                        let PurchaseOutcome::Issued(_) = wallet
                            .buy(spec(coins_each, PRICE_MINOR), account.clone(), false)
                            .expect("an honest purchase completes under attack")
                        else {
                            panic!("purchase did not settle under attack");
                        };
                    }
                    let mut latencies = Vec::new();
                    for _ in 0..PAYMENTS_UNDER_ATTACK {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        latencies.push(pay_timed(wallet, &shop_url));
                        // Spread the payments over the attack.
                        std::thread::sleep(Duration::from_millis(500));
                    }
                    latencies
                })
            })
            .collect();
        let under_attack: Vec<Duration> = honest.into_iter().flat_map(join).collect();
        let garbage: Vec<(GarbageTally, Duration)> = garbage.into_iter().map(join).collect();
        stop.store(true, Ordering::Relaxed);
        (
            garbage,
            join(oversized),
            join(loris_heads),
            join(loris_bodies),
            under_attack,
        )
    });
    let attack_took = attack_started.elapsed();

    // Every honest payment completed.
    assert_eq!(under_attack.len(), 2 * PAYMENTS_UNDER_ATTACK);
    assert_eq!(
        holdings(&shop_purse),
        Amount::from_minor(
            PRICE_MINOR
                * (PAYMENTS_BASELINE + PAYMENTS_BESIDE_SLOW_BODIES + 2 * PAYMENTS_UNDER_ATTACK)
                    as u64
        )
    );
    for (wallet, _) in &wallets {
        assert!(wallet.purse().in_flight().expect("journal").is_empty());
    }
    // Alice spent every coin she bought.
    let alice_left = u64::from(coins_each)
        - (PAYMENTS_BASELINE + PAYMENTS_BESIDE_SLOW_BODIES + PAYMENTS_UNDER_ATTACK) as u64;
    assert_eq!(
        holdings(wallets[0].0.purse()),
        Amount::from_minor(PRICE_MINOR * alice_left)
    );

    // Every garbage request was answered, each with a typed error.
    let sent: usize = garbage.iter().map(|(t, _)| t.sent).sum();
    let typed: usize = garbage.iter().map(|(t, _)| t.typed).sum();
    let accepted: usize = garbage.iter().map(|(t, _)| t.accepted).sum();
    let server_errors: usize = garbage.iter().map(|(t, _)| t.server_errors).sum();
    let untyped: Vec<&String> = garbage.iter().flat_map(|(t, _)| &t.untyped).collect();
    let garbage_took = garbage.iter().map(|(_, d)| *d).max().unwrap_or_default();
    assert_eq!(sent, GARBAGE_REQUESTS);
    assert!(untyped.is_empty(), "untyped answers: {untyped:?}");
    assert_eq!(accepted, 0, "garbage accepted");
    assert_eq!(server_errors, 0, "garbage made the server fail");
    assert_eq!(typed, GARBAGE_REQUESTS);

    // Oversized bodies: refused with a typed 413, or cut off.
    assert!(oversized.other.is_empty(), "{:?}", oversized.other);
    assert_eq!(oversized.typed_413 + oversized.cut_off, OVERSIZED_REQUESTS);
    assert!(oversized.typed_413 >= OVERSIZED_REQUESTS / 2);

    // Slow loris: every connection cut off by the server, within its
    // timeout plus scheduling slack; body tricklers get a typed 408.
    assert_eq!(
        loris_heads.cut_off, LORIS_HEAD_CONNECTIONS,
        "{loris_heads:?}"
    );
    assert!(
        loris_heads.longest < Duration::from_secs(9),
        "{loris_heads:?}"
    );
    assert_eq!(
        loris_bodies.cut_off, LORIS_BODY_CONNECTIONS,
        "{loris_bodies:?}"
    );
    assert_eq!(
        loris_bodies.typed_408, LORIS_BODY_CONNECTIONS,
        "{loris_bodies:?}"
    );
    assert!(
        loris_bodies.longest < Duration::from_millis(BODY_TIMEOUT_MS + 4_000),
        "{loris_bodies:?}"
    );

    // Still up, and still serving.
    client.health().expect("healthy after the attack");
    pay_timed(&wallets[1].0, &shop.url());
    let bob_left = u64::from(coins_each) - PAYMENTS_UNDER_ATTACK as u64 - 1;
    assert_eq!(
        holdings(wallets[1].0.purse()),
        Amount::from_minor(PRICE_MINOR * bob_left)
    );
    core.audit_conservation()
        .expect("log audits")
        .check_equation()
        .expect("conservation holds");

    eprintln!(
        "hostile: {GARBAGE_REQUESTS} garbage requests in {garbage_took:?} = {:.0}/s answered, all typed",
        GARBAGE_REQUESTS as f64 / garbage_took.as_secs_f64()
    );
    eprintln!(
        "hostile: oversized {OVERSIZED_REQUESTS}: {} typed 413, {} cut off",
        oversized.typed_413, oversized.cut_off
    );
    eprintln!("hostile: loris heads {loris_heads:?}");
    eprintln!("hostile: loris bodies {loris_bodies:?}");
    eprintln!(
        "hostile: honest payment latency without attack {}, beside {LORIS_BODY_CONNECTIONS} stalled bodies {}, under attack {}",
        summary(&baseline),
        summary(&beside_slow_bodies),
        summary(&under_attack)
    );
    eprintln!(
        "hostile: attack phase {attack_took:?}, whole test {:?}",
        test_started.elapsed()
    );
    shop.stop().expect("merchant stops");
    gateway.stop().expect("gateway stops");
}

// ------------------------------------------- replays and wrong sessions

/// A participant driven by hand through the protocol flows.
struct Manual {
    id: ParticipantId,
    sk: &'static SecretKey,
    account: BankAccount,
}

fn join_manual(client: &IssuerClient, name: &str, roles: &[Role]) -> Manual {
    let core = &issuer().core;
    let id = ParticipantId::new(name).expect("id");
    let sk = key(2);
    let account = BankAccount::new(format!("acct-{name}")).expect("account");
    client
        .open_bank_account(&account, Amount::from_minor(100_000))
        .expect("bank account");
    let (registration, request) = RegistrationClient::start(id.clone(), sk);
    let cert = client.register(&request).expect("registered");
    registration
        .on_certificate(&core.public_key(), cert, Timestamp::now())
        .expect("certificate checks");
    for role in roles {
        let enrollment = enrollment_request(
            core.suite(),
            sk,
            &core.public_key(),
            id.clone(),
            *role,
            account.clone(),
            Timestamp::now(),
        )
        .expect("enrollment request");
        client.enroll(&enrollment).expect("enrollment recorded");
        client.approve_enrollment(&id, *role).expect("approved");
    }
    Manual { id, sk, account }
}

fn w_desc(who: &Manual, spec: CoinSpec) -> WDesc {
    WDesc {
        amount: spec.total().expect("total"),
        spec,
        bank_account: who.account.clone(),
        anonymous: false,
    }
}

/// Polls until the coins come; returns them and the ack, not yet sent.
fn settle_purchase(
    client: &IssuerClient,
    awaiting: &protocol::flows::PurchaseAwaitingIssuance,
    first: protocol::wire::purchase::PurchaseIssuance1,
) -> (Vec<Coin>, protocol::wire::purchase::PurchaseIssuance2) {
    let mut issuance = first;
    // Polled until a deadline, not a count: a busy machine settles late.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        match awaiting.on_issuance1(&issuance).expect("issuance1 checks") {
            PurchaseUpdate::Issued { coins, ack } => return (coins, ack),
            PurchaseUpdate::Pending => {
                std::thread::sleep(Duration::from_millis(20));
                issuance = client.purchase_poll(&awaiting.poll()).expect("poll");
            }
            PurchaseUpdate::Rejected(r) => panic!("purchase rejected: {r:?}"),
        }
    }
    panic!("purchase never settled");
}

fn code_of(e: &client::ClientError) -> Option<ErrorCode> {
    e.code()
}

#[test]
fn replayed_and_wrong_session_messages_get_typed_refusals_and_change_nothing() {
    let core = issuer().core.clone();
    let gateway = start_gateway();
    let client = client_of(&gateway);
    let carol = join_manual(&client, "carol-replay", &[Role::CoinPurchaser]);
    let dave = join_manual(&client, "dave-replay", &[Role::Merchant]);
    let bank = &issuer().bank;
    let bank_before = bank.balance(&carol.account).expect("balance");

    // Two purchase sessions, A and B, both at WRequest3.
    let start = |spec| {
        let (state, w1) = PurchaseClient::start(
            core.suite(),
            carol.sk,
            carol.id.clone(),
            &core.public_key(),
            core.now(),
        )
        .expect("wrequest1");
        let w2 = client.wrequest1(&w1).expect("wrequest2");
        state
            .on_wrequest2(carol.sk, core.id(), &w2, w_desc(&carol, spec))
            .expect("wrequest3")
    };
    let (awaiting_a, w3_a) = start(spec(2, PRICE_MINOR));
    let (awaiting_b, w3_b) = start(spec(1, PRICE_MINOR));

    // A's WRequest3 under B's purchase id: B's key opens nothing of it.
    let wrong = WRequest3 {
        purchase: w3_b.purchase,
        ..w3_a.clone()
    };
    let e = client.wrequest3(&wrong).expect_err("wrong session");
    assert_eq!(code_of(&e), Some(ErrorCode::Refused), "{e}");
    // Under a purchase id that names no session.
    let nowhere = WRequest3 {
        purchase: ledger::PurchaseId::random(),
        ..w3_a.clone()
    };
    let e = client.wrequest3(&nowhere).expect_err("no session");
    assert!(
        matches!(
            code_of(&e),
            Some(ErrorCode::UnknownPurchase | ErrorCode::Refused)
        ),
        "{e}"
    );
    // B's session survived the forgery: its own WRequest3 goes through.
    let issuance_b = client.wrequest3(&w3_b).expect("B's own WRequest3");
    let (coins_b, ack_b) = settle_purchase(&client, &awaiting_b, issuance_b);
    let issuance_a = client.wrequest3(&w3_a).expect("A's own WRequest3");
    let (coins_a, ack_a) = settle_purchase(&client, &awaiting_a, issuance_a);

    // A's poll and A's ack under B's purchase id: their MACs are under A's
    // key. Then B's own ack, A's own, and A's again (answered the same).
    let poll = protocol::wire::purchase::PurchasePoll {
        purchase: w3_b.purchase,
        ..awaiting_a.poll()
    };
    let e = client.purchase_poll(&poll).expect_err("wrong session");
    assert_eq!(code_of(&e), Some(ErrorCode::Refused), "{e}");
    let wrong = protocol::wire::purchase::PurchaseIssuance2 {
        purchase: w3_b.purchase,
        ..ack_a.clone()
    };
    let e = client.purchase_ack(&wrong).expect_err("wrong session");
    assert_eq!(code_of(&e), Some(ErrorCode::Refused), "{e}");
    client.purchase_ack(&ack_b).expect("B's own ack");
    client.purchase_ack(&ack_a).expect("A's own ack");
    client.purchase_ack(&ack_a).expect("A's ack replayed");

    // A's WRequest3 replayed after its purchase closed: refused, typed.
    let resp = util::raw_exchange_tls(
        gateway.addr(),
        &post_request("/v1/purchase/3", POSTCARD, &encode(&w3_a)),
    );
    let code = typed_error(&resp).expect("a typed refusal of the replay");
    assert!(
        matches!(
            code,
            ErrorCode::Replayed
                | ErrorCode::PurchaseClosed
                | ErrorCode::UnknownPurchase
                | ErrorCode::Refused
        ),
        "{code:?}"
    );
    // Debited once for each purchase.
    assert_eq!(
        bank.balance(&carol.account).expect("balance"),
        bank_before
            .checked_sub(Amount::from_minor(3 * PRICE_MINOR))
            .expect("difference")
    );

    // Two payments X and Y from carol to dave, validated by hand; both
    // acks held back.
    let validate = |coins: Vec<Coin>| {
        let (payee, invoice) = PaymentPayee::invoice(
            dave.id.clone(),
            carol.id.clone(),
            core.id().clone(),
            PDesc::new("replay".to_owned()).expect("p-desc"),
            Amount::from_minor(PRICE_MINOR * coins.len() as u64),
            None,
        );
        let (_payer, send) = PaymentPayer::pay(
            core.suite(),
            &core.public_key(),
            core.id(),
            &carol.id,
            &invoice,
            coins.clone(),
            Timestamp::now(),
        )
        .expect("send coins");
        let option = VOption::Refresh {
            spec: spec(coins.len() as u32, PRICE_MINOR),
        };
        let (awaiting, request) = payee
            .on_send_coins(core.suite(), &core.public_key(), dave.sk, send, option)
            .expect("validation request");
        let issuance = client.validate(&request).expect("validated");
        match awaiting
            .on_issuance1(dave.sk, &issuance)
            .expect("issuance1")
        {
            PayeeOutcome::Coins { coins, ack } => (request, awaiting, coins, ack),
            other => panic!("expected coins, got {other:?}"),
        }
    };
    let (request_x, awaiting_x, coins_x, ack_x) = validate(coins_a);
    let (_, _, _, ack_y) = validate(coins_b);

    // X's ack under Y's transaction: its MAC is under X's key.
    let wrong = PaymentIssuance2 {
        tid_py: ack_y.tid_py,
        ..ack_x.clone()
    };
    let e = client.validate_ack(&wrong).expect_err("wrong session");
    assert_eq!(code_of(&e), Some(ErrorCode::Refused), "{e}");
    // X's ack in another payee's name.
    let wrong = PaymentIssuance2 {
        id_py: carol.id.clone(),
        ..ack_x.clone()
    };
    let e = client.validate_ack(&wrong).expect_err("wrong payee");
    assert!(e.code().is_some(), "a typed refusal: {e}");
    // Y's session survived: its own ack goes through; X's too, and a
    // replay of X's is answered the same and changes nothing.
    client.validate_ack(&ack_y).expect("Y's own ack");
    client.validate_ack(&ack_x).expect("X's own ack");
    client.validate_ack(&ack_x).expect("X's ack replayed");
    // X's ValidationRequest replayed: answered with the same coins, so
    // nothing is issued twice (the issuer's totals are shared with the
    // concurrent test, so the coins themselves are compared).
    let again = client.validate(&request_x).expect("replayed validation");
    match awaiting_x.on_issuance1(dave.sk, &again).expect("issuance1") {
        PayeeOutcome::Coins { coins, .. } => {
            let ids = |c: &[Coin]| c.iter().map(Coin::id).collect::<Vec<_>>();
            assert_eq!(ids(&coins), ids(&coins_x));
        }
        other => panic!("expected the same coins, got {other:?}"),
    }

    core.audit_conservation()
        .expect("log audits")
        .check_equation()
        .expect("conservation holds");
    gateway.stop().expect("gateway stops");
}

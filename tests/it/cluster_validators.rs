//! The issuer's payment cluster on loopback, every party its own process:
//! the whole issuer serving its gateway and, on its cluster address, two
//! validator nodes (`issuer serve --role validator`) that open the shop's
//! payments with the issuer's key and have the issuer's one state decide
//! them. What must hold:
//! - payments through either node are the issuer's payments: the purse
//!   pays, the shop holds fresh coins, the audit passes with every record
//!   signed;
//! - a node cut off from the issuer answers 503 with Retry-After (read
//!   off the wire), never a guess, and serves again once the issuer is
//!   back;
//! - a node killed with SIGKILL mid-burst loses nothing: the shop sends
//!   the same bytes to the other node, and every payment is in the log
//!   exactly once;
//! - the issuer killed with SIGKILL: its standby on the same directory
//!   takes the lease, rebuilds from the log and serves; the nodes, which
//!   list both cluster addresses, follow it; every payment once, the audit
//!   passes with every record signed.

use crate::util;
use util::books;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use util::process::{
    alice_enrolled, an_enrolled_shop, free_port, kill_hard, ok, spawn, terminate, wait_healthy,
};

/// How long any stage may take before the test fails.
const STAGE_SECS_MAX: u64 = 120;

/// The cluster: the issuer (gateway on `ip`, validators' sequencer on
/// `cp`) and two nodes.
struct Cluster {
    issuer: Child,
    ip: u16,
    cp: u16,
    nodes: Vec<(Child, u16)>,
}

impl Cluster {
    fn issuer_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.ip)
    }

    fn node_url(&self, i: usize) -> String {
        format!("https://127.0.0.1:{}", self.nodes[i].1)
    }
}

fn serve_issuer(dir: &Path, cp: u16) -> Child {
    spawn(
        dir,
        &[
            "issuer",
            "serve",
            "--dir",
            "iss",
            "--cluster-listen",
            &format!("127.0.0.1:{cp}"),
        ],
    )
}

fn serve_node(dir: &Path, node: &str, cp: u16) -> (Child, u16) {
    serve_node_of(dir, node, &[cp])
}

/// A node trying the issuers' cluster addresses `cps` in order.
fn serve_node_of(dir: &Path, node: &str, cps: &[u16]) -> (Child, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let key = format!("{node}.key");
    let sequencers: Vec<String> = cps.iter().map(|cp| format!("127.0.0.1:{cp}")).collect();
    let mut args = vec![
        "issuer",
        "serve",
        "--role",
        "validator",
        "--dir",
        "iss",
        "--listen",
        &listen,
        "--node",
        node,
        "--node-key",
        &key,
    ];
    for sequencer in &sequencers {
        args.extend(["--sequencer", sequencer.as_str()]);
    }
    let child = spawn(dir, &args);
    wait_healthy(port);
    (child, port)
}

/// `issuer init`, keys for nodes v1 and v2, the issuer and both nodes
/// serving.
fn cluster(dir: &Path) -> Cluster {
    let (ip, cp) = (free_port(), free_port());
    ok(
        dir,
        &[
            "issuer",
            "init",
            "--dir",
            "iss",
            "--listen",
            &format!("127.0.0.1:{ip}"),
            "--shards",
            "2",
        ],
    );
    for node in ["v1", "v2"] {
        ok(
            dir,
            &[
                "cluster",
                "node-key",
                "--dir",
                "iss",
                "--node",
                node,
                "--out",
                &format!("{node}.key"),
            ],
        );
    }
    let issuer = serve_issuer(dir, cp);
    wait_healthy(ip);
    wait_healthy(cp);
    let nodes = vec![serve_node(dir, "v1", cp), serve_node(dir, "v2", cp)];
    Cluster {
        issuer,
        ip,
        cp,
        nodes,
    }
}

/// [`cluster`] with a standby issuer on the same directory (it waits for
/// the lease, then rebuilds the whole issuer from the log and serves on
/// the same gateway address and on its own cluster address `cp2`), and
/// nodes that list both cluster addresses.
fn cluster_with_standby(dir: &Path) -> (Cluster, Child, u16) {
    let mut c = cluster(dir);
    let cp2 = free_port();
    let standby = serve_issuer(dir, cp2);
    let nodes: Vec<(Child, u16)> = c.nodes.drain(..).collect();
    for (node, _) in nodes {
        kill_hard(node);
    }
    c.nodes = vec![
        serve_node_of(dir, "v1", &[c.cp, cp2]),
        serve_node_of(dir, "v2", &[c.cp, cp2]),
    ];
    (c, standby, cp2)
}

/// The shop serving `book=1.00`, its payments through `validators`.
fn serve_shop(dir: &Path, validators: &[String]) -> (Child, String) {
    let mp = free_port();
    let listen = format!("127.0.0.1:{mp}");
    let mut args = vec![
        "merchant",
        "serve",
        "--purse",
        "shop.purse",
        "--listen",
        &listen,
        "--item",
        "book=1.00",
    ];
    for url in validators {
        args.extend(["--validator", url.as_str()]);
    }
    let shop = spawn(dir, &args);
    wait_healthy(mp);
    (shop, format!("https://{listen}"))
}

fn pay(dir: &Path, shop_url: &str) -> std::process::Output {
    util::process::run(
        dir,
        &["purse", "pay", shop_url, "book", "--purse", "alice.purse"],
    )
}

/// [`pay`], which must succeed (`what` names the payment if it fails).
fn pays(dir: &Path, shop_url: &str, what: &str) {
    let out = pay(dir, shop_url);
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn audit(dir: &Path) -> String {
    ok(
        dir,
        &[
            "audit",
            "--log",
            "iss/log.redb",
            "--issuer-key",
            "iss/issuer.pub",
        ],
    )
}

/// Alice holding `n` coins of 1.00.
fn alice_with_coins(dir: &Path, issuer_url: &str, n: usize) {
    alice_enrolled(dir, issuer_url);
    ok(
        dir,
        &[
            "purse",
            "buy",
            &format!("{n}x1.00"),
            "--account",
            "ACH-alice",
            "--purse",
            "alice.purse",
        ],
    );
}

#[test]
fn payments_through_two_validators_are_the_issuers_payments() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let c = cluster(dir);
    alice_with_coins(dir, &c.issuer_url(), 4);
    an_enrolled_shop(dir, &c.issuer_url());
    let (shop, shop_url) = serve_shop(dir, &[c.node_url(0), c.node_url(1)]);
    for _ in 0..4 {
        pays(dir, &shop_url, "purse pay");
    }
    // The purse has nothing left to pay with: the shop holds the coins.
    assert!(!pay(dir, &shop_url).status.success());
    terminate(shop);
    for (node, _) in c.nodes {
        terminate(node);
    }
    terminate(c.issuer);
    let report = audit(dir);
    assert!(report.contains("AUDIT PASSED"), "{report}");
}

/// POSTs a well-formed ValidationRequest (an envelope sealed to the
/// issuer's key) to the node at `url`; its HTTP status and error code.
fn post_validation(dir: &Path, url: &str) -> Result<(), (u16, Option<client::ErrorCode>)> {
    let sk_i = protocol::crypto::SecretKey::read_pkcs8(&dir.join("iss").join("issuer.key"))
        .expect("the issuer's key");
    let envelope = sk_i
        .public()
        .seal(protocol::crypto::SuiteId::default(), "test", b"a payment")
        .expect("seal");
    let body = protocol::wire::encode(&protocol::wire::payment::ValidationRequest { envelope });
    let ca = client::IssuerCa::read_pem(&dir.join("iss").join("tls-ca.pem")).expect("the CA");
    let config = client::ClientConfig {
        attempts_max: 1,
        ..client::ClientConfig::pinned(ca)
    };
    let http = client::client::HttpClient::new(url, config).expect("client");
    match http.post_encoded::<protocol::wire::payment::PaymentIssuance1>("/v1/validate", &body) {
        Ok(_) => Ok(()),
        Err(e) => Err(match &e {
            client::ClientError::Refused { status, .. } => (*status, e.code()),
            _ => (0, None),
        }),
    }
}

#[test]
fn a_validator_cut_off_from_the_issuer_answers_503_never_a_guess() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let c = cluster(dir);
    alice_with_coins(dir, &c.issuer_url(), 2);
    an_enrolled_shop(dir, &c.issuer_url());
    let node_url = c.node_url(0);
    let (shop, shop_url) = serve_shop(dir, std::slice::from_ref(&node_url));
    assert!(pay(dir, &shop_url).status.success());
    // Connected, the node opens the request: a sealed body that is no
    // ValidationBody is refused (422), not put off.
    assert_eq!(
        post_validation(dir, &node_url).map_err(|(status, _)| status),
        Err(422)
    );
    kill_hard(c.issuer);
    // The node learns the connection is gone (at once on a reset, at the
    // latest when heartbeats go unanswered), then says "retry later".
    let deadline = Instant::now() + Duration::from_secs(STAGE_SECS_MAX);
    loop {
        match post_validation(dir, &node_url) {
            Err((503, code)) => {
                assert_eq!(code, Some(client::ErrorCode::Overloaded));
                break;
            }
            other => {
                assert!(Instant::now() < deadline, "still answering: {other:?}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    // The issuer comes back on its addresses: the node reconnects and the
    // next payment goes through.
    let issuer = serve_issuer(dir, c.cp);
    wait_healthy(c.ip);
    wait_healthy(c.cp);
    let deadline = Instant::now() + Duration::from_secs(STAGE_SECS_MAX);
    while post_validation(dir, &node_url).map_err(|(s, _)| s) != Err(422) {
        assert!(Instant::now() < deadline, "the node did not reconnect");
        std::thread::sleep(Duration::from_millis(50));
    }
    pays(dir, &shop_url, "purse pay");
    terminate(shop);
    // The issuer stops cleanly with its nodes still connected.
    terminate(issuer);
    for (node, _) in c.nodes {
        terminate(node);
    }
    assert!(audit(dir).contains("AUDIT PASSED"));
}

/// Every payment batch in the log (a `CoinsSpent` of a payment): its
/// transaction, hex, and how many batches it has.
fn payments_in_log(dir: &Path) -> std::collections::HashMap<String, usize> {
    use ledger::EventStore;
    let store = ledger::RedbStore::open(dir.join("iss").join("log.redb")).expect("the log opens");
    let mut out = std::collections::HashMap::new();
    let mut next = ledger::Seq(1);
    loop {
        let records = store.read(next, 4096).expect("read");
        let Some(last) = records.last() else { break };
        next = ledger::Seq(last.record.seq.0 + 1);
        for r in &records {
            if let ledger::Event::CoinsSpent {
                cause: ledger::SpendCause::Payment(_),
                ..
            } = r.record.event
            {
                *out.entry(r.record.tx.to_string()).or_insert(0) += 1;
            }
        }
    }
    out
}

#[test]
fn killing_a_validator_mid_burst_loses_no_payment() {
    const PAYMENTS: usize = 24;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let mut c = cluster(dir);
    alice_with_coins(dir, &c.issuer_url(), PAYMENTS);
    an_enrolled_shop(dir, &c.issuer_url());
    let (shop, shop_url) = serve_shop(dir, &[c.node_url(0), c.node_url(1)]);
    let paid = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let payer = {
        let (dir, paid) = (dir.to_path_buf(), paid.clone());
        std::thread::spawn(move || {
            for i in 0..PAYMENTS {
                pays(&dir, &shop_url, &format!("payment {i}"));
                paid.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };
    // Mid-burst: a third of the payments done, the next ones in flight
    // (the shop sends every other one through v1).
    let deadline = Instant::now() + Duration::from_secs(STAGE_SECS_MAX);
    while paid.load(std::sync::atomic::Ordering::SeqCst) < PAYMENTS / 3 {
        assert!(Instant::now() < deadline, "the burst stalled");
        std::thread::sleep(Duration::from_millis(5));
    }
    let (v1, _) = c.nodes.remove(0);
    kill_hard(v1);
    payer
        .join()
        .expect("every payment went through the other node");
    terminate(shop);
    for (node, _) in c.nodes {
        terminate(node);
    }
    terminate(c.issuer);
    let payments = payments_in_log(dir);
    assert_eq!(payments.len(), PAYMENTS, "one batch per payment made");
    assert!(
        payments.values().all(|n| *n == 1),
        "a payment logged twice: {payments:?}"
    );
    assert!(audit(dir).contains("AUDIT PASSED"));
}

#[test]
fn the_standby_issuer_takes_over_and_the_nodes_follow_it() {
    const BEFORE: usize = 3;
    const AFTER: usize = 3;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (c, standby, cp2) = cluster_with_standby(dir);
    alice_with_coins(dir, &c.issuer_url(), BEFORE + AFTER);
    an_enrolled_shop(dir, &c.issuer_url());
    let (shop, shop_url) = serve_shop(dir, &[c.node_url(0), c.node_url(1)]);
    for _ in 0..BEFORE {
        assert!(pay(dir, &shop_url).status.success());
    }
    kill_hard(c.issuer);
    wait_healthy(cp2);
    wait_healthy(c.ip);
    for i in 0..AFTER {
        pays(dir, &shop_url, &format!("payment {i} after the fail-over"));
    }
    terminate(shop);
    terminate(standby);
    for (node, _) in c.nodes {
        terminate(node);
    }
    let payments = payments_in_log(dir);
    assert_eq!(payments.len(), BEFORE + AFTER);
    assert!(payments.values().all(|n| *n == 1));
    // The standby's first seal covers its dead predecessor's last records.
    assert!(audit(dir).contains("AUDIT PASSED"));
}

/// The issuer SIGKILLed in the middle of a burst of payments through the
/// nodes: payments cut off fail and the purse resumes them, its standby
/// takes over, the nodes follow it and the burst goes on. Nothing is lost
/// or paid twice: every payment once in the log, the purses agree with
/// the log coin by coin and hold together every coin bought, and the
/// audit passes with every record signed.
#[test]
fn the_issuer_killed_mid_burst_through_the_nodes_loses_nothing() {
    const PAYMENTS: usize = 12;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (c, standby, cp2) = cluster_with_standby(dir);
    alice_with_coins(dir, &c.issuer_url(), PAYMENTS);
    an_enrolled_shop(dir, &c.issuer_url());
    let (shop, shop_url) = serve_shop(dir, &[c.node_url(0), c.node_url(1)]);
    let tried = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let payer = {
        let (dir, tried) = (dir.to_path_buf(), tried.clone());
        std::thread::spawn(move || {
            let mut paid = 0;
            for _ in 0..PAYMENTS {
                if pay(&dir, &shop_url).status.success() {
                    paid += 1;
                } else {
                    // Cut off by the kill: finish or take back what it left.
                    std::thread::sleep(Duration::from_millis(300));
                    books::resume(&dir, "alice.purse");
                }
                tried.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            paid
        })
    };
    let deadline = Instant::now() + Duration::from_secs(STAGE_SECS_MAX);
    while tried.load(std::sync::atomic::Ordering::SeqCst) < PAYMENTS / 3 {
        assert!(Instant::now() < deadline, "the burst stalled");
        std::thread::sleep(Duration::from_millis(5));
    }
    kill_hard(c.issuer);
    wait_healthy(cp2);
    let paid = payer.join().expect("the payer");
    assert!(
        paid >= PAYMENTS / 2,
        "only {paid} payments after the fail-over"
    );
    books::resume(dir, "alice.purse");
    // A collection whose answer the kill cut off reaches the shop by its
    // own retry.
    std::thread::sleep(Duration::from_millis(
        2 * client::constants::MERCHANT_COLLECTION_RETRY_MS + 1_000,
    ));
    terminate(shop);
    for (node, _) in c.nodes {
        terminate(node);
    }
    terminate(standby);
    let payments = payments_in_log(dir);
    assert!(
        payments.len() >= paid,
        "a payment the purse made is missing"
    );
    assert!(
        payments.values().all(|n| *n == 1),
        "a payment logged twice: {payments:?}"
    );
    let held_minor: u64 = books::purses_agree_with_the_log(
        dir,
        &dir.join("iss").join("log.redb"),
        &["alice.purse", "shop.purse"],
    )
    .values()
    .sum();
    assert_eq!(
        held_minor,
        100 * PAYMENTS as u64,
        "every coin bought is held"
    );
    assert!(audit(dir).contains("AUDIT PASSED"));
    eprintln!(
        "{paid} of {PAYMENTS} payments succeeded at once, {} in the log",
        payments.len()
    );
}

/// The answer of a node with no issuer to reach, on the wire: status line
/// and headers as they arrive (plain HTTP on loopback, so the test reads
/// the bytes themselves).
#[test]
fn a_node_with_no_issuer_answers_503_with_retry_after_on_the_wire() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    ok(dir, &["issuer", "init", "--dir", "iss"]);
    ok(
        dir,
        &[
            "cluster", "node-key", "--dir", "iss", "--node", "v1", "--out", "v1.key",
        ],
    );
    let (port, nobody) = (free_port(), free_port());
    let node = spawn(
        dir,
        &[
            "issuer",
            "serve",
            "--role",
            "validator",
            "--insecure-http",
            "--dir",
            "iss",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--sequencer",
            &format!("127.0.0.1:{nobody}"),
            "--node",
            "v1",
            "--node-key",
            "v1.key",
        ],
    );
    wait_healthy(port);
    let sk_i = protocol::crypto::SecretKey::read_pkcs8(&dir.join("iss").join("issuer.key"))
        .expect("the issuer's key");
    let envelope = sk_i
        .public()
        .seal(protocol::crypto::SuiteId::default(), "test", b"a payment")
        .expect("seal");
    let body = protocol::wire::encode(&protocol::wire::payment::ValidationRequest { envelope });
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(STAGE_SECS_MAX)))
        .expect("timeout");
    let head = format!(
        "POST /v1/validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        client::media::POSTCARD,
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send");
    stream.write_all(&body).expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read");
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 503"), "{answer}");
    assert!(answer.contains("\r\nretry-after: 1\r\n"), "{answer}");
    terminate(node);
}

/// A node keeps the payees' keys it has read. The issuer checks at every
/// payment that the key a node checked the payee's signature under is
/// the payee's registered key: after the shop changes its key, a thief
/// holding the old one (a copy of the old purse) is refused through the
/// node that kept it, and the shop's new key is read again and served.
#[test]
fn a_node_never_pays_on_a_payees_replaced_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let c = cluster(dir);
    alice_with_coins(dir, &c.issuer_url(), 4);
    an_enrolled_shop(dir, &c.issuer_url());
    // One payment through node 0: it reads and keeps the shop's key.
    let (shop, shop_url) = serve_shop(dir, &[c.node_url(0)]);
    pays(dir, &shop_url, "purse pay");
    terminate(shop);
    // The thief's copy of the shop's purse, then the shop changes its key.
    std::fs::copy(dir.join("shop.purse"), dir.join("thief.purse")).expect("copy the purse");
    ok(dir, &["merchant", "change-key", "--purse", "shop.purse"]);
    // The thief's shop signs with the old key, which node 0 still keeps.
    std::fs::rename(dir.join("shop.purse"), dir.join("shop.purse.new")).expect("set aside");
    std::fs::rename(dir.join("thief.purse"), dir.join("shop.purse")).expect("the thief's purse");
    let (thief, thief_url) = serve_shop(dir, &[c.node_url(0)]);
    let out = pay(dir, &thief_url);
    assert!(
        !out.status.success(),
        "a payment to the replaced key was validated: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    terminate(thief);
    // The shop with its new key is served through the same node.
    std::fs::rename(dir.join("shop.purse"), dir.join("thief.purse")).expect("set aside");
    std::fs::rename(dir.join("shop.purse.new"), dir.join("shop.purse")).expect("the shop's purse");
    let (shop, shop_url) = serve_shop(dir, &[c.node_url(0)]);
    pays(dir, &shop_url, "purse pay");
    terminate(shop);
    for (node, _) in c.nodes {
        terminate(node);
    }
    terminate(c.issuer);
    let report = audit(dir);
    assert!(report.contains("AUDIT PASSED"), "{report}");
}

//! Two whole issuers (`issuer serve`, gateway and state in one process)
//! on two hosts (two copies of the issuer's directory, so no file lease
//! orders them) sharing one log on PostgreSQL: the database decides which
//! one serves, as it does for bare sequencers.
//!
//! - The second waits for the database's writer lock while the first
//!   serves; the first killed with SIGKILL, the second fences the log at
//!   the next epoch and serves on the same address. Every acknowledged
//!   payment is in the log exactly once, the audit passes with every
//!   record signed, and an operator request the first accepted is refused
//!   by the second as a replay (the nonces are in the database, not in
//!   the first host's directory).
//! - The first paused (SIGSTOP) and its database session ended (as an
//!   operator ends a stuck writer's), the second fences and serves; the
//!   first, woken (SIGCONT) and asked to append, is refused and stops
//!   (fail-stop, non-zero exit); nothing of it reaches the log.
//!
//! Skipped without PostgreSQL (`VC_TEST_POSTGRES_URL`, which `./test.sh`
//! sets), except in CI.

use crate::util;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use ledger::{Event, EventStore, Seq, SpendCause};
use pg_store::fence::{FenceEpoch, current_epoch_at, end_other_writers};
use util::process::{
    alice_enrolled, an_enrolled_shop, free_port, kill_hard, ok, run, signal, spawn, terminate,
    wait_healthy,
};

/// How long any stage may take before the test fails.
const STAGE_SECS_MAX: u64 = 60;
const PAYMENTS_BEFORE: usize = 2;
const PAYMENTS_AFTER: usize = 2;

/// `issuer init` on PostgreSQL, listening on a free port, and a copy of
/// its directory for the other host (`iss2`). Returns the port.
fn two_hosts(dir: &Path, url: &str) -> u16 {
    let ip = free_port();
    ok(
        dir,
        &[
            "issuer",
            "init",
            "--dir",
            "iss",
            "--store",
            url,
            "--listen",
            &format!("127.0.0.1:{ip}"),
            "--shards",
            "2",
        ],
    );
    let copied = std::process::Command::new("cp")
        .args(["-a", "iss", "iss2"])
        .current_dir(dir)
        .status()
        .expect("cp runs");
    assert!(copied.success());
    ip
}

fn serve(dir: &Path, issuer_dir: &str, extra: &[&str]) -> Child {
    spawn(
        dir,
        &[&["issuer", "serve", "--dir", issuer_dir][..], extra].concat(),
    )
}

/// Whether nothing listens on `port` (the standby does not serve).
fn not_serving(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
}

/// Each payment in the log (a `CoinsSpent` of a payment): its
/// transaction and how many batches it has; and how many epochs were
/// opened.
fn scan_log(url: &str) -> (std::collections::HashMap<String, usize>, usize) {
    let store = pg_store::PostgresStore::open_read_only(url).expect("the log opens");
    let mut payments = std::collections::HashMap::new();
    let mut epochs = 0;
    let mut next = Seq(1);
    loop {
        let records = store.read(next, 4096).expect("read");
        let Some(last) = records.last() else { break };
        next = Seq(last.record.seq.0 + 1);
        for r in &records {
            match &r.record.event {
                Event::CoinsSpent {
                    cause: SpendCause::Payment(_),
                    ..
                } => *payments.entry(r.record.tx.to_string()).or_insert(0) += 1,
                Event::EpochOpened { .. } => epochs += 1,
                _ => {}
            }
        }
    }
    (payments, epochs)
}

fn audit(dir: &Path, url: &str) {
    let report = ok(
        dir,
        &["audit", "--log", url, "--issuer-key", "iss/issuer.pub"],
    );
    assert!(report.contains("AUDIT PASSED"), "{report}");
}

/// A signed operator request for the balance of ACH-alice.
fn balance_request(dir: &Path) -> Vec<u8> {
    let key = client::OperatorKey::read(&dir.join("iss").join("operator.key")).expect("key");
    let query = client::api::BankBalanceQuery {
        account: ledger::BankAccount::new("ACH-alice").expect("account"),
    };
    let issuer_key = protocol::crypto::PublicKey::read_spki(&dir.join("iss").join("issuer.pub"))
        .expect("the issuer's key");
    let signed = key
        .sign(
            Some(client::KeyFingerprint::of(&issuer_key)),
            "/admin/bank/balance",
            protocol::wire::encode(&query),
        )
        .expect("signed");
    protocol::wire::encode(&signed)
}

/// POSTs `body` to the issuer at `port`'s balance route; its status and
/// error code if refused.
fn post_balance(
    dir: &Path,
    port: u16,
    body: &[u8],
) -> Result<(), (u16, Option<client::ErrorCode>)> {
    let ca = client::IssuerCa::read_pem(&dir.join("iss").join("tls-ca.pem")).expect("the CA");
    let config = client::ClientConfig {
        attempts_max: 1,
        ..client::ClientConfig::pinned(ca)
    };
    let http = client::client::HttpClient::new(&format!("https://127.0.0.1:{port}"), config)
        .expect("client");
    match http.post_encoded::<client::api::BankBalance>("/admin/bank/balance", body) {
        Ok(_) => Ok(()),
        Err(e) => Err(match &e {
            client::ClientError::Refused { status, .. } => (*status, e.code()),
            _ => (0, None),
        }),
    }
}

fn pay(dir: &Path, shop_url: &str) {
    let out = run(
        dir,
        &["purse", "pay", shop_url, "book", "--purse", "alice.purse"],
    );
    assert!(
        out.status.success(),
        "purse pay: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits for `child` to exit on its own; its status.
fn exits_within(mut child: Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            kill_hard(child);
            panic!("did not stop within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_second_whole_issuer_stands_by_and_takes_over_after_kill_9() {
    let Some(db) = pg_store::testkit::ScratchDatabase::create("whole_issuer_takes_over") else {
        return;
    };
    let url = db.url();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let ip = two_hosts(dir, &url);
    let issuer_url = format!("https://127.0.0.1:{ip}");
    let first = serve(dir, "iss", &[]);
    wait_healthy(ip);
    // The other host's issuer, on the same address (it binds it only once
    // it holds the log): it stands by for the database's writer lock.
    let second = serve(dir, "iss2", &[]);
    alice_enrolled(dir, &issuer_url);
    ok(
        dir,
        &[
            "purse",
            "buy",
            &format!("{}x1.00", PAYMENTS_BEFORE + PAYMENTS_AFTER),
            "--account",
            "ACH-alice",
            "--purse",
            "alice.purse",
        ],
    );
    an_enrolled_shop(dir, &issuer_url);
    let mp = free_port();
    let shop_listen = format!("127.0.0.1:{mp}");
    let shop = spawn(
        dir,
        &[
            "merchant",
            "serve",
            "--purse",
            "shop.purse",
            "--listen",
            &shop_listen,
            "--item",
            "book=1.00",
        ],
    );
    wait_healthy(mp);
    let shop_url = format!("https://{shop_listen}");
    for _ in 0..PAYMENTS_BEFORE {
        pay(dir, &shop_url);
    }
    let captured = balance_request(dir);
    assert_eq!(post_balance(dir, ip, &captured), Ok(()));
    assert_eq!(
        current_epoch_at(&url).expect("epoch"),
        Some(FenceEpoch(1)),
        "the standby has not fenced beside the first"
    );

    kill_hard(first);
    let deadline = Instant::now() + Duration::from_secs(STAGE_SECS_MAX);
    while not_serving(ip) {
        assert!(Instant::now() < deadline, "the standby did not take over");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(current_epoch_at(&url).expect("epoch"), Some(FenceEpoch(2)));
    for _ in 0..PAYMENTS_AFTER {
        pay(dir, &shop_url);
    }
    // The request the first issuer accepted, replayed on its replacement.
    assert_eq!(
        post_balance(dir, ip, &captured),
        Err((401, Some(client::ErrorCode::Replayed)))
    );
    terminate(shop);
    terminate(second);

    let (payments, _) = scan_log(&url);
    assert_eq!(payments.len(), PAYMENTS_BEFORE + PAYMENTS_AFTER);
    assert!(
        payments.values().all(|n| *n == 1),
        "a payment logged twice: {payments:?}"
    );
    audit(dir, &url);
}

#[test]
fn a_paused_whole_issuer_whose_session_was_ended_is_refused_when_it_wakes() {
    let Some(db) = pg_store::testkit::ScratchDatabase::create("paused_whole_issuer_refused") else {
        return;
    };
    let url = db.url();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let ip = two_hosts(dir, &url);
    let first = serve(dir, "iss", &[]);
    wait_healthy(ip);
    let ip2 = free_port();
    let second = serve(dir, "iss2", &["--listen", &format!("127.0.0.1:{ip2}")]);

    signal(first.id(), "STOP");
    // The operator ends the stuck writer's session; the standby gets the
    // lock, fences the log at epoch 2 and serves.
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    assert_eq!(end_other_writers(&mut admin).expect("ended"), 1);
    wait_healthy(ip2);
    assert_eq!(current_epoch_at(&url).expect("epoch"), Some(FenceEpoch(2)));
    let (_, epochs_before) = scan_log(&url);

    signal(first.id(), "CONT");
    // Asked to append (an operator action that is logged), the woken
    // issuer is refused and stops itself rather than serve a state the
    // log does not have.
    let asked = run(
        dir,
        &[
            "issuer",
            "epoch",
            "open",
            "--dir",
            "iss",
            "--issuer",
            &format!("https://127.0.0.1:{ip}"),
        ],
    );
    assert!(!asked.status.success(), "the fenced issuer opened an epoch");
    let status = exits_within(first, Duration::from_secs(STAGE_SECS_MAX));
    assert_eq!(
        status.code(),
        Some(actors::FAIL_STOP_EXIT_CODE),
        "the fenced issuer exited with {status:?}"
    );
    assert_eq!(
        scan_log(&url).1,
        epochs_before,
        "the fenced issuer appended"
    );

    // The successor serves and appends.
    ok(
        dir,
        &[
            "issuer",
            "epoch",
            "open",
            "--dir",
            "iss2",
            "--issuer",
            &format!("https://127.0.0.1:{ip2}"),
        ],
    );
    assert_eq!(scan_log(&url).1, epochs_before + 1);
    terminate(second);
    audit(dir, &url);
}

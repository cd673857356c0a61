//! The issuer's log on PostgreSQL with two synchronous standbys: no
//! payment is acknowledged on one disk, and none acknowledged is lost.
//!
//! - Cut off from its standbys, the primary (and so the issuer) acknowledges
//!   nothing; a payment waits and completes once they are back.
//! - During a burst of concurrent payments through the real binary over
//!   HTTPS, the primary is killed (kill -9); a standby is promoted; a new
//!   issuer starts on it (its derived stores removed: they rebuild from the
//!   log); the purses' retries complete. Every acknowledged payment is in
//!   the promoted log exactly once, the auditor (the read-only role) passes
//!   it, `log export` copies it to a redb file that audits the same, and
//!   the purses agree with the log coin by coin.
//! - One standby lost, the other acknowledges; both lost, nothing is.
//!
//! Every party, and each PostgreSQL node, is its own process
//! (`scripts/pg-cluster.sh`, in a temporary directory on free loopback
//! ports).

use crate::util;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ledger::{CoinId, Event, EventStore, RawEventStore, RedbStore, Seq, Sharing};
use purse::{CoinState, Purse};
use util::process::{
    SERVE_ISSUER, an_enrolled_shop, free_port, kill_hard, ok, run, spawn, terminate, wait_healthy,
};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster.sh");
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A primary and two standbys in a temporary directory, stopped and
/// removed on drop.
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    /// `None` (with a notice) where PostgreSQL is not installed, outside CI.
    fn start() -> Option<Cluster> {
        if !Path::new(PG_BIN).join("initdb").exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PostgreSQL 15 is not installed in CI: .ci/run installs it"
            );
            eprintln!("skipped: PostgreSQL 15 is not installed (apt-get install postgresql-15)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("vc-pg-cluster")
            .tempdir()
            .expect("tempdir");
        let cluster = Cluster {
            dir,
            port: three_free_ports(),
        };
        cluster.script(&["start"]);
        Some(cluster)
    }

    fn script(&self, args: &[&str]) -> String {
        let out = Command::new("bash")
            .arg(SCRIPT)
            .args(args)
            .env("PG_CLUSTER_DIR", self.dir.path())
            .env("PG_CLUSTER_PORT", self.port.to_string())
            .output()
            .expect("the script runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "pg-cluster.sh {args:?}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout.trim().to_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(SCRIPT)
            .arg("stop")
            .env("PG_CLUSTER_DIR", self.dir.path())
            .env("PG_CLUSTER_PORT", self.port.to_string())
            .output();
    }
}

/// A port `p` with `p + 1` and `p + 2` free too.
fn three_free_ports() -> u16 {
    loop {
        let p = free_port();
        if p < 65_000 && (1..=2).all(|i| std::net::TcpListener::bind(("127.0.0.1", p + i)).is_ok())
        {
            return p;
        }
    }
}

/// Coins each payer buys, and the price of the shop's one item: each
/// payment spends one coin, no change.
const COINS_EACH: u32 = 12;
const PRICE: &str = "0.10";
const PRICE_MINOR: u64 = 10;
const PAYERS: [&str; 3] = ["alice", "bob", "carol"];
/// Payments each payer tries in the burst (the kill cuts them short).
const BURST_PAYMENTS_EACH: u32 = 8;
/// Acknowledged payments of the burst before the primary is killed.
const ACKED_BEFORE_KILL: u32 = 4;
/// How long a payment must stay unacknowledged while the primary is cut off.
const CUT_OFF_FOR: Duration = Duration::from_secs(3);
/// `purse resume` attempts after the new issuer starts.
const RESUME_ATTEMPTS: u32 = 5;

/// A payer's purse `NAME.purse`: an account with 100.00, registered,
/// enrolled as purchaser (approved), holding COINS_EACH coins of PRICE.
fn payer(dir: &Path, name: &str, issuer_url: &str) -> String {
    let purse = format!("{name}.purse");
    let account = format!("ACH-{name}");
    util::process::open_account(dir, issuer_url, &account, "100.00");
    let p = ["--purse", purse.as_str()];
    ok(
        dir,
        &[
            &["purse", "init"][..],
            &p,
            &["--id", name, "--issuer", issuer_url],
        ]
        .concat(),
    );
    ok(dir, &[&["purse", "register"][..], &p].concat());
    ok(
        dir,
        &[
            &["purse", "enroll", "purchaser", "--account", &account][..],
            &p,
        ]
        .concat(),
    );
    ok(
        dir,
        &[
            "issuer",
            "enroll",
            "approve",
            name,
            "purchaser",
            "--dir",
            "iss",
        ],
    );
    ok(
        dir,
        &[
            &[
                "purse",
                "buy",
                &format!("{COINS_EACH}x{PRICE}"),
                "--account",
                &account,
            ][..],
            &p,
        ]
        .concat(),
    );
    purse
}

/// Waits for `child` to end on its own for up to `within`; kills it
/// (kill -9) if it has not. Whether it ended on its own.
fn stopped_within(mut child: Child, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if child.try_wait().expect("wait").is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    kill_hard(child);
    false
}

/// `purse resume` until nothing is left unfinished.
fn resume(dir: &Path, purse: &str) {
    for attempt in 1..=RESUME_ATTEMPTS {
        let out = run(dir, &["purse", "resume", "--purse", purse]);
        if out.status.success() {
            return;
        }
        assert!(
            attempt < RESUME_ATTEMPTS,
            "{purse} could not resume: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The coins the log issued and has not spent, and those it spent; a coin
/// issued or spent twice fails the test.
fn coins_in_log(log: &Path) -> (BTreeSet<CoinId>, BTreeSet<CoinId>) {
    let store = RedbStore::open_read_only(log, Sharing::FollowableByReaders).expect("open log");
    let (mut unspent, mut spent) = (BTreeSet::new(), BTreeSet::new());
    let mut next = Seq(1);
    loop {
        let records = store.read(next, 4096).expect("read log");
        let Some(last) = records.last() else { break };
        next = Seq(last.record.seq.0 + 1);
        for r in &records {
            match &r.record.event {
                Event::CoinsIssued { coins, .. } => {
                    for c in coins {
                        assert!(unspent.insert(c.id), "coin {} issued twice", c.id);
                    }
                }
                Event::CoinsSpent { coins, .. } | Event::CoinsRevoked { coins } => {
                    for c in coins {
                        assert!(unspent.remove(&c.id), "coin {} spent twice", c.id);
                        spent.insert(c.id);
                    }
                }
                _ => {}
            }
        }
    }
    (unspent, spent)
}

#[test]
fn acknowledged_payments_survive_the_loss_of_the_primary_in_a_burst() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let issuer_url = cluster.script(&["url", "issuer"]);
    let auditor_url = cluster.script(&["url", "auditor"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();

    let ip = free_port();
    let listen = format!("127.0.0.1:{ip}");
    ok(
        dir,
        &[
            "issuer",
            "init",
            "--dir",
            "iss",
            "--listen",
            &listen,
            "--shards",
            "2",
            "--store",
            &issuer_url,
        ],
    );
    assert!(
        !dir.join("iss").join("log.redb").exists(),
        "the log is in PostgreSQL, not in the directory"
    );
    let toml = std::fs::read_to_string(dir.join("iss").join("issuer.toml")).expect("issuer.toml");
    assert!(toml.contains("log_store"), "{toml}");
    let issuer = spawn(dir, &SERVE_ISSUER);
    wait_healthy(ip);
    let gateway = format!("https://127.0.0.1:{ip}");
    let purses: Vec<String> = PAYERS.iter().map(|n| payer(dir, n, &gateway)).collect();
    an_enrolled_shop(dir, &gateway);
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
            &format!("tea={PRICE}"),
        ],
    );
    wait_healthy(mp);
    let shop_url = format!("https://{shop_listen}");
    let pay = |purse: &str| spawn(dir, &["purse", "pay", &shop_url, "tea", "--purse", purse]);

    // Cut off from both standbys, the primary acknowledges nothing: the
    // payment waits (the client's timeout is longer) and completes once
    // they are back.
    cluster.script(&["isolate"]);
    let mut waiting = pay(&purses[0]);
    std::thread::sleep(CUT_OFF_FOR);
    assert!(
        waiting.try_wait().expect("wait").is_none(),
        "a payment was acknowledged with the primary cut off from its standbys"
    );
    cluster.script(&["rejoin"]);
    assert!(
        waiting.wait().expect("wait").success(),
        "the waiting payment completes once the standbys are back"
    );
    let mut acked = 1u32;

    // A burst: every payer pays again and again, concurrently, until its
    // payment fails; the primary is killed once some are acknowledged.
    let acked_in_burst = Arc::new(AtomicU32::new(0));
    let burst: Vec<_> = purses
        .iter()
        .map(|purse| {
            let (dir, shop_url, purse) = (dir.to_path_buf(), shop_url.clone(), purse.clone());
            let acked_in_burst = acked_in_burst.clone();
            std::thread::spawn(move || {
                for _ in 0..BURST_PAYMENTS_EACH {
                    let out = run(&dir, &["purse", "pay", &shop_url, "tea", "--purse", &purse]);
                    if !out.status.success() {
                        return;
                    }
                    acked_in_burst.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked_in_burst.load(Ordering::SeqCst) < ACKED_BEFORE_KILL {
        assert!(
            Instant::now() < deadline,
            "the burst acknowledged too little"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.script(&["kill", "p"]);
    // Its log gone, the issuer stops (fail-stop) rather than acknowledge
    // from memory; a supervisor would kill it otherwise.
    let stopped_itself = stopped_within(issuer, Duration::from_secs(5));
    for payer in burst {
        payer.join().expect("payer thread");
    }
    acked += acked_in_burst.load(Ordering::SeqCst);

    let failover = cluster.script(&["failover"]);
    assert!(failover.contains("fenced p, promoted s"), "{failover}");
    let status = cluster.script(&["status"]);
    assert!(status.contains("fenced"), "{status}");

    // A new issuer on the promoted standby: the same URL (every node
    // listed, read-write wanted), the directory less what rebuilds from
    // the log.
    for derived in ["coin-status.redb", "tx-index.redb", "log-state.snapshot"] {
        let path = dir.join("iss").join(derived);
        if path.exists() {
            std::fs::remove_file(&path).expect("remove a derived store");
        }
    }
    let issuer = spawn(dir, &SERVE_ISSUER);
    wait_healthy(ip);
    for purse in &purses {
        resume(dir, purse);
    }
    // The new issuer serves: one more payment each.
    for purse in &purses {
        ok(dir, &["purse", "pay", &shop_url, "tea", "--purse", purse]);
    }
    acked += purses.len() as u32;
    terminate(shop);
    terminate(issuer);

    // The auditor passes the promoted log, and a redb export of it.
    let audit = ok(
        dir,
        &[
            "audit",
            "--log",
            &auditor_url,
            "--issuer-key",
            "iss/issuer.pub",
        ],
    );
    assert!(audit.contains("AUDIT PASSED"), "{audit}");
    assert!(
        !audit.contains(auditor_url.split('@').next().unwrap_or("?")),
        "the report shows no password: {audit}"
    );
    let exported = ok(
        dir,
        &[
            "log",
            "export",
            "--from",
            &auditor_url,
            "--out",
            "exported.redb",
        ],
    );
    assert!(!exported.contains(auditor_url.split('@').next().unwrap_or("?")));
    let exported_audit = ok(
        dir,
        &[
            "audit",
            "--log",
            "exported.redb",
            "--issuer-key",
            "iss/issuer.pub",
        ],
    );
    assert!(exported_audit.contains("AUDIT PASSED"), "{exported_audit}");
    let pg = pg_store::PostgresStore::open_read_only(&auditor_url).expect("open the log");
    let export = RedbStore::open_read_only(dir.join("exported.redb"), Sharing::FollowableByReaders)
        .expect("open the export");
    let head = pg.head().expect("head");
    assert_eq!(export.head().expect("head"), head);
    assert_eq!(
        export.read_raw(Seq(1), usize::MAX).expect("read"),
        pg.read_raw(Seq(1), usize::MAX).expect("read"),
        "the export holds the promoted log's records byte for byte"
    );

    // Coin by coin: every coin a purse holds is unspent in the promoted
    // log, every coin it spent is spent there, and the log's unspent coins
    // are exactly the purses'.
    let (unspent, spent) = coins_in_log(&dir.join("exported.redb"));
    let mut held = BTreeSet::new();
    let mut held_minor = 0u64;
    let mut payers_minor = 0u64;
    for purse in purses.iter().map(String::as_str).chain(["shop.purse"]) {
        let purse_db = Purse::open(dir.join(purse), &util::passphrase()).expect("purse opens");
        for c in purse_db.coins().expect("coins") {
            match c.state {
                CoinState::Available => {
                    assert!(
                        unspent.contains(&c.coin.id()),
                        "{purse} holds a coin the log does not have unspent"
                    );
                    assert!(held.insert(c.coin.id()), "a coin in two purses");
                    held_minor += c.coin.value().minor_units();
                    if purse != "shop.purse" {
                        payers_minor += c.coin.value().minor_units();
                    }
                }
                CoinState::Spent(_) => assert!(
                    spent.contains(&c.coin.id()),
                    "{purse} spent a coin the log did not"
                ),
                CoinState::Pending(_) => panic!("{purse} left a payment unfinished"),
                CoinState::Bad(_) => {}
            }
        }
    }
    assert_eq!(held, unspent, "the log's unspent coins are the purses'");
    let bought_minor = u64::from(COINS_EACH) * PRICE_MINOR * PAYERS.len() as u64;
    assert_eq!(held_minor, bought_minor, "no money made or lost");
    // Each payment moved its price to the shop, once: the shop holds what
    // the payers no longer hold, and that is every acknowledged payment's
    // price, plus at most one cut off by the kill per payer (committed, or
    // refreshed back to its payer by the resume).
    let shop_minor = Purse::open(dir.join("shop.purse"), &util::passphrase())
        .expect("shop purse")
        .balance()
        .expect("balance")
        .available
        .minor_units();
    let paid = (bought_minor - payers_minor) / PRICE_MINOR;
    assert_eq!(
        shop_minor,
        bought_minor - payers_minor,
        "the shop holds what the payers paid"
    );
    assert!(
        paid >= u64::from(acked) && paid <= u64::from(acked) + PAYERS.len() as u64,
        "acknowledged {acked}, in the log {paid}"
    );
    eprintln!(
        "burst: {acked} payments acknowledged ({} in the burst before and during the kill), {paid} in the promoted log, head {}; the issuer {} when its primary died",
        acked - 1 - PAYERS.len() as u32,
        head.last_seq,
        if stopped_itself {
            "stopped itself"
        } else {
            "was killed"
        },
    );
}

#[test]
fn no_commit_is_acknowledged_on_the_primarys_disk_alone() {
    use ledger::testkit::sample_batch;

    let Some(cluster) = Cluster::start() else {
        return;
    };
    let store = std::sync::Arc::new(
        pg_store::PostgresStore::open(&cluster.script(&["url", "issuer"])).expect("open"),
    );
    store.append(&[sample_batch(0, 2)]).expect("append");

    // One standby lost: the other still acknowledges.
    cluster.script(&["kill", "s1"]);
    store
        .append(&[sample_batch(1, 2)])
        .expect("append with one standby");

    // Both lost: the commit waits rather than acknowledging on one disk.
    cluster.script(&["kill", "s2"]);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let appender = {
        let store = store.clone();
        std::thread::spawn(move || {
            let _ = done_tx.send(store.append(&[sample_batch(2, 1)]));
        })
    };
    assert!(
        done_rx.recv_timeout(Duration::from_secs(3)).is_err(),
        "a commit was acknowledged with no standby"
    );

    // A standby back: the waiting commit is acknowledged, and is in the log.
    cluster.script(&["start"]);
    let firsts = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("acknowledged once a standby is back")
        .expect("append");
    assert_eq!(firsts, vec![ledger::Seq(5)]);
    appender.join().expect("appender");
    assert_eq!(store.head().expect("head").last_seq, ledger::Seq(5));
}

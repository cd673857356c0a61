//! The issuer's log on PostgreSQL with two synchronous standbys: no
//! payment is acknowledged on one disk, none acknowledged is lost, and a
//! replacement issuer starts from PostgreSQL and its keys alone.
//!
//! - Through the issuer: one standby lost, payments are still
//!   acknowledged; both lost, a payment waits (nothing is acknowledged on
//!   the primary's disk alone) and completes when a standby is back; the
//!   primary cut off from both (all three running), the same.
//! - During a burst of concurrent payments through the real binary over
//!   HTTPS, the primary is killed (kill -9): the issuer stops itself
//!   (fail-stop, exit 70: the outcome of its last commit is unknown, and
//!   it acknowledges nothing more), a standby is promoted, and a new issuer
//!   starts on it in a FRESH directory holding only the keys and
//!   `issuer.toml` (the log, the registry, the card agency and the durable
//!   protocol sessions are in PostgreSQL; everything else rebuilds or
//!   starts empty). It serves the existing purses (payments, a purchase),
//!   delivers the coins of a purchase whose bank debit was pending at the
//!   kill, and serves the merchant and the card holder (an unload from the
//!   card loaded before the fail-over, then a clearing that counts both
//!   legs). Every acknowledged payment is in
//!   the promoted log exactly once, the auditor (the read-only role) passes
//!   it, `log export` copies it to a redb file that audits the same, and
//!   the purses and the card agree with the log coin by coin.
//! - The store alone: one standby lost, the other acknowledges; both
//!   lost, nothing is.
//!
//! Every party, and each PostgreSQL node, is its own process
//! (`scripts/pg-cluster.sh`, in a temporary directory on free loopback
//! ports).

use crate::util;
use util::books;

use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use actors::FAIL_STOP_EXIT_CODE;
use ledger::{Event, EventStore, RawEventStore, RedbStore, Seq, Sharing};
use purse::Purse;
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
/// How long an acknowledged payment may take with a standby down (or a
/// waiting one once a standby is back).
const ACK_WITHIN: Duration = Duration::from_secs(60);
/// How long the issuer may take to stop itself once its primary is gone.
const FAIL_STOP_WITHIN: Duration = Duration::from_secs(20);
/// The card holder: a purse that loads a card before the fail-over and
/// unloads part of it after.
const CARD_HOLDER: &str = "dave";
const CARD: &str = "00000000000000d1";
const CARD_LOAD: &str = "0.30";
const CARD_UNLOAD: &str = "0.20";
/// What the card holds at the end, in minor units.
const CARD_LEFT_MINOR: u64 = 10;
/// How long the simulated bank takes to settle a debit: long enough that
/// a purchase asked for just before the kill is still pending at it.
const BANK_SETTLE_DELAY_MS: &str = "2000";
/// Coins of the card holder's purchase pending at the kill.
const PENDING_COINS: u32 = 2;
/// How long the purchase may take to reach the log.
const REQUESTED_WITHIN: Duration = Duration::from_secs(30);
/// What the issuer's directory holds that a replacement issuer must be
/// given: keys and configuration. Everything else it finds in PostgreSQL,
/// rebuilds from the log, or starts empty (pg-store/README.md).
const REPLACEMENT_FILES: [&str; 11] = [
    "issuer.toml",
    "issuer.key",
    "issuer.pub",
    "mint.key",
    "registry.key",
    "user-index.pub",
    "operator.key",
    "tls-ca.pem",
    "tls-ca.key",
    "tls.pem",
    "tls.key",
];

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
/// (kill -9) if it has not. Its exit status if it ended on its own.
fn stopped_within(mut child: Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    kill_hard(child);
    None
}

/// Whether `child` is still running after `within`.
fn still_running_after(child: &mut Child, within: Duration) -> bool {
    std::thread::sleep(within);
    child.try_wait().expect("wait").is_none()
}

/// A card command with the card system in `cards`.
fn card(dir: &Path, args: &[&str]) -> String {
    ok(dir, &[&["card", "--dir", "cards"][..], args].concat())
}

/// What `card show` says the card holds, in minor units.
fn card_minor(dir: &Path) -> u64 {
    let shown = card(dir, &["show", "--card", CARD]);
    let balance = shown
        .lines()
        .find_map(|l| l.trim().strip_prefix("balance"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
        .to_owned();
    let (units, cents) = balance.split_once('.').unwrap_or((&balance, "0"));
    units.parse::<u64>().expect("units") * 100 + cents.parse::<u64>().expect("cents")
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
            "--bank-settle-delay-ms",
            BANK_SETTLE_DELAY_MS,
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
    let holder = payer(dir, CARD_HOLDER, &gateway);
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

    // A card loaded from the holder's purse through the issuer's agency.
    card(dir, &["issue", "--card", CARD]);
    let loaded = card(
        dir,
        &[
            "from-purse",
            "--card",
            CARD,
            CARD_LOAD,
            "--issuer-dir",
            "iss",
            "--purse",
            &holder,
        ],
    );
    assert!(loaded.contains("loaded onto"), "{loaded}");

    // The registry, the card agency and the durable sessions are in
    // PostgreSQL, sealed: the issuer's directory has no file of the
    // registry's or the agency's, and the database names no participant,
    // account or card.
    for file in ["registry.redb", "card-agency.redb"] {
        assert!(
            !dir.join("iss").join(file).exists(),
            "{file} in the directory"
        );
    }
    let tables = side_table_rows(&cluster);
    assert!(tables.iter().any(|(t, _, _)| t.starts_with("registry/")));
    assert!(tables.iter().any(|(t, _, _)| t.starts_with("card-ag/")));
    assert!(tables.iter().any(|(t, _, _)| t == actors::SESSIONS_TABLE));
    let card_id = hex::decode(CARD).expect("card id");
    for (table, key, value) in &tables {
        for row in [key, value] {
            for name in PAYERS.iter().chain([&CARD_HOLDER, &"shop"]) {
                assert!(!contains(row, name.as_bytes()), "{name} in {table}");
                assert!(
                    !contains(row, format!("ACH-{name}").as_bytes()),
                    "an account in {table}"
                );
            }
            assert!(!contains(row, &card_id), "the card id in {table}");
        }
    }

    // One standby lost: the other acknowledges, payments go on.
    cluster.script(&["kill", "s1"]);
    let one_standby = pay(&purses[0]);
    assert!(
        stopped_within(one_standby, ACK_WITHIN).is_some_and(|s| s.success()),
        "a payment was not acknowledged with one standby up"
    );
    // Both lost: the payment waits, unacknowledged, until one is back.
    cluster.script(&["kill", "s2"]);
    let mut waiting = pay(&purses[1]);
    assert!(
        still_running_after(&mut waiting, CUT_OFF_FOR),
        "a payment was acknowledged with both standbys lost"
    );
    cluster.script(&["start"]);
    assert!(
        stopped_within(waiting, ACK_WITHIN).is_some_and(|s| s.success()),
        "the waiting payment completes once the standbys are back"
    );

    // Cut off from both standbys (all three running), the primary
    // acknowledges nothing: the payment waits and completes once they are
    // back.
    cluster.script(&["isolate"]);
    let mut waiting = pay(&purses[2]);
    assert!(
        still_running_after(&mut waiting, CUT_OFF_FOR),
        "a payment was acknowledged with the primary cut off from its standbys"
    );
    cluster.script(&["rejoin"]);
    assert!(
        stopped_within(waiting, ACK_WITHIN).is_some_and(|s| s.success()),
        "the waiting payment completes once the standbys are back"
    );
    let mut acked = 3u32;

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
    // A purchase left waiting for the bank at the kill: its WRequest3 is
    // in the log, its debit settles later.
    let requested = purchases_requested(&auditor_url);
    let pending_buy = spawn(
        dir,
        &[
            "purse",
            "buy",
            &format!("{PENDING_COINS}x{PRICE}"),
            "--account",
            &format!("ACH-{CARD_HOLDER}"),
            "--purse",
            &holder,
        ],
    );
    let deadline = Instant::now() + REQUESTED_WITHIN;
    while purchases_requested(&auditor_url) == requested {
        assert!(
            Instant::now() < deadline,
            "the purchase never reached the log"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.script(&["kill", "p"]);
    // Its log gone mid-commit, the issuer stops itself (fail-stop, exit
    // 70) rather than acknowledge anything more: a supervisor restarts it.
    let stopped = stopped_within(issuer, FAIL_STOP_WITHIN);
    assert_eq!(
        stopped.and_then(|s| s.code()),
        Some(FAIL_STOP_EXIT_CODE),
        "the issuer did not stop itself when its primary died"
    );
    for payer in burst {
        payer.join().expect("payer thread");
    }
    assert!(
        !stopped_within(pending_buy, ACK_WITHIN).is_some_and(|s| s.success()),
        "the purchase was delivered before the fail-over"
    );
    acked += acked_in_burst.load(Ordering::SeqCst);

    let failover = cluster.script(&["failover"]);
    assert!(failover.contains("fenced p, promoted s"), "{failover}");
    let status = cluster.script(&["status"]);
    assert!(status.contains("fenced"), "{status}");

    // A replacement issuer: the old directory is lost; a fresh one holds
    // only the keys and issuer.toml (the same URL: every node listed,
    // read-write wanted, so it finds the promoted standby).
    std::fs::rename(dir.join("iss"), dir.join("iss-lost")).expect("lose the directory");
    ledger::private_file::create_private_dir(&dir.join("iss")).expect("fresh directory");
    // The simulated bank keeps its books in the issuer's directory; a
    // real bank is another institution's, and outlives the issuer's disk.
    let copy = |file: &str| {
        std::fs::copy(dir.join("iss-lost").join(file), dir.join("iss").join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    };
    for file in REPLACEMENT_FILES.iter().chain(&["bank.redb"]) {
        if *file != "registry.key" {
            copy(file);
        }
    }
    // Without the registry key it refuses to start, rather than serve an
    // empty registry under a new key.
    let refused = run(dir, &SERVE_ISSUER);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("registry.key"),
        "{said}"
    );
    assert!(!dir.join("iss").join("registry.key").exists());
    copy("registry.key");
    let issuer = spawn(dir, &SERVE_ISSUER);
    wait_healthy(ip);
    // The holder's resume polls the purchase pending at the kill: the
    // replacement finds its session in PostgreSQL and delivers the coins.
    for purse in purses.iter().chain([&holder]) {
        books::resume(dir, purse);
    }
    // It serves the existing purses and merchant: one more payment each.
    for purse in &purses {
        ok(dir, &["purse", "pay", &shop_url, "tea", "--purse", purse]);
    }
    acked += purses.len() as u32;
    // A purchase: the holder's enrollment and account come from the
    // registry in PostgreSQL.
    ok(
        dir,
        &[
            "purse",
            "buy",
            &format!("1x{PRICE}"),
            "--account",
            &format!("ACH-{CARD_HOLDER}"),
            "--purse",
            &holder,
        ],
    );
    // The card holder: an unload of the card loaded before the fail-over,
    // then a clearing that must count the load the old issuer's agency
    // recorded (in PostgreSQL) and the unload the new one did.
    let unloaded = card(
        dir,
        &[
            "to-purse",
            "--card",
            CARD,
            CARD_UNLOAD,
            "--issuer-dir",
            "iss",
            "--purse",
            &holder,
        ],
    );
    assert!(unloaded.contains("unloaded from"), "{unloaded}");
    let cleared = card(dir, &["clear"]);
    assert!(!cleared.is_empty(), "{cleared}");
    assert_eq!(card_minor(dir), CARD_LEFT_MINOR);
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
    let names: Vec<&str> = purses
        .iter()
        .map(String::as_str)
        .chain([holder.as_str(), "shop.purse"])
        .collect();
    let held = books::purses_agree_with_the_log(dir, &dir.join("exported.redb"), &names);
    let held_minor: u64 = held.values().sum();
    let payers_minor: u64 = purses.iter().map(|p| held[p.as_str()]).sum();
    let payers_bought_minor = u64::from(COINS_EACH) * PRICE_MINOR * PAYERS.len() as u64;
    // The holder bought COINS_EACH coins, PENDING_COINS pending at the
    // kill, and one more after the fail-over.
    let holder_bought_minor = u64::from(COINS_EACH + PENDING_COINS + 1) * PRICE_MINOR;
    assert_eq!(
        held_minor + CARD_LEFT_MINOR,
        payers_bought_minor + holder_bought_minor,
        "no money made or lost: the purses and the card hold what was bought"
    );
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
    let paid = (payers_bought_minor - payers_minor) / PRICE_MINOR;
    assert_eq!(
        shop_minor,
        payers_bought_minor - payers_minor,
        "the shop holds what the payers paid"
    );
    assert!(
        paid >= u64::from(acked) && paid <= u64::from(acked) + PAYERS.len() as u64,
        "acknowledged {acked}, in the log {paid}"
    );
    eprintln!(
        "burst: {acked} payments acknowledged ({} in the burst before and during the kill), {paid} in the promoted log, head {}",
        acked - 3 - PAYERS.len() as u32,
        head.last_seq,
    );
}

/// How many purchases the log on PostgreSQL holds requested (WRequest3
/// committed).
fn purchases_requested(url: &str) -> usize {
    let store = pg_store::PostgresStore::open_read_only(url).expect("open the log");
    let mut n = 0;
    let mut next = Seq(1);
    loop {
        let records = store.read(next, 4096).expect("read the log");
        let Some(last) = records.last() else { break };
        next = Seq(last.record.seq.0 + 1);
        n += records
            .iter()
            .filter(|r| matches!(r.record.event, Event::PurchaseRequested { .. }))
            .count();
    }
    n
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every row of the issuer's tables beside the log, read as the
/// cluster's superuser.
fn side_table_rows(cluster: &Cluster) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let admin = cluster.script(&["url", "admin"]);
    let issuer = cluster.script(&["url", "issuer"]);
    // The issuer's database, as the superuser.
    let db = issuer
        .split_once('?')
        .map_or(issuer.as_str(), |(base, _)| base)
        .rsplit_once('/')
        .map(|(_, db)| db.to_owned())
        .expect("a database in the URL");
    let url = pg_store::testkit::with_database(&admin, &db, None);
    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    client
        .query("SELECT tbl, key, value FROM vc_issuer_tables", &[])
        .expect("read the tables")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
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

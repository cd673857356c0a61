//! The issuer's log on PostgreSQL with two synchronous standbys survives
//! the loss of its primary: a payment acknowledged before the primary is
//! killed (kill -9) is in the log of the standby promoted in its place,
//! the issuer restarted on it (its derived stores removed: they rebuild
//! from the log) serves the next payment, and the auditor,
//! reading with the read-only role, passes the log. Every party, and each
//! PostgreSQL node, is its own process (`scripts/pg-cluster.sh`, in a
//! temporary directory on free loopback ports).

use crate::util;

use std::path::{Path, PathBuf};
use std::process::Command;

use util::process::{
    SERVE_ISSUER, alice_holding_4_x_2_50, an_enrolled_shop, free_port, kill_hard, ok, run, spawn,
    terminate, wait_healthy,
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

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
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

#[test]
fn an_acknowledged_payment_survives_the_loss_of_the_primary() {
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
    alice_holding_4_x_2_50(dir, &gateway);
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
            "book=5.00",
        ],
    );
    wait_healthy(mp);
    let shop_url = format!("https://{shop_listen}");

    // Acknowledged: on the primary and on at least one standby.
    ok(
        dir,
        &["purse", "pay", &shop_url, "book", "--purse", "alice.purse"],
    );
    let balance = ok(dir, &["purse", "balance", "--purse", "alice.purse"]);
    assert!(balance.starts_with("available 5.00"), "{balance}");

    // The primary dies; nothing more is acknowledged until a standby is
    // promoted.
    cluster.script(&["kill", "p"]);
    let down = run(
        dir,
        &["purse", "pay", &shop_url, "book", "--purse", "alice.purse"],
    );
    assert!(!down.status.success(), "paid with the primary dead");
    kill_hard(issuer);

    let failover = cluster.script(&["failover"]);
    assert!(failover.contains("fenced p, promoted s"), "{failover}");
    let status = cluster.script(&["status"]);
    assert!(status.contains("p port"), "{status}");
    assert!(status.contains("fenced"), "{status}");

    // The same directory less what rebuilds from the log (as on a
    // replacement machine), the same URL (every node listed, read-write
    // wanted): the issuer finds the promoted standby and rebuilds its
    // coin status, transaction index and log state from it.
    for derived in ["coin-status.redb", "tx-index.redb", "log-state.snapshot"] {
        let path = dir.join("iss").join(derived);
        if path.exists() {
            std::fs::remove_file(&path).expect("remove a derived store");
        }
    }
    let issuer = spawn(dir, &SERVE_ISSUER);
    wait_healthy(ip);
    ok(dir, &["purse", "resume", "--purse", "alice.purse"]);
    let balance = ok(dir, &["purse", "balance", "--purse", "alice.purse"]);
    if balance.starts_with("available 5.00") {
        ok(
            dir,
            &["purse", "pay", &shop_url, "book", "--purse", "alice.purse"],
        );
    }
    let balance = ok(dir, &["purse", "balance", "--purse", "alice.purse"]);
    assert!(balance.starts_with("available 0.00"), "{balance}");
    let broke = run(
        dir,
        &["purse", "pay", &shop_url, "book", "--purse", "alice.purse"],
    );
    assert!(!broke.status.success(), "paid with no money left");

    terminate(shop);
    terminate(issuer);
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
        audit.contains("real money in                     10.00"),
        "{audit}"
    );
    assert!(
        !audit.contains(auditor_url.split('@').next().unwrap_or("?")),
        "the report shows no password: {audit}"
    );
    drop(cluster.path());
}

#[test]
fn no_commit_is_acknowledged_on_the_primarys_disk_alone() {
    use ledger::EventStore;
    use ledger::testkit::sample_batch;
    use std::time::Duration;

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

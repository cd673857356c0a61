//! The issuer across processes on loopback: two validators' commit streams
//! (`cluster drive`, each a validator node with its own key) in front of a
//! sequencer and a standby (`issuer serve --role sequencer` twice on one
//! directory). What must hold whatever is killed:
//! - a validator killed with SIGKILL mid-burst loses nothing: its clients'
//!   requests, sent again through the other validator, are each in the log
//!   exactly once (the ones that had landed get their logged outcome);
//! - the sequencer killed with SIGKILL: the standby takes the lease, rebuilds
//!   from the log, the validators reconnect; every acknowledged commit is in
//!   the log once, at the place it was acknowledged, and the audit passes;
//! - a paused sequencer (SIGSTOP) keeps its lease: the standby never
//!   appends beside it, validators are told "unavailable" (their 503 with
//!   Retry-After) instead of a guess, and after SIGCONT it serves again;
//! - with the log on PostgreSQL and the sequencers on two directories (two
//!   hosts), the database decides: the standby waits for the writer's
//!   lock, fences the log at the next epoch, and takes over.
//!
//! The sequencer signs checkpoints, so every audit here requires every
//! record to be signed.

use crate::util;

use std::collections::HashMap;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use ledger::{EventStore, RedbStore, Seq};
use util::process::{free_port, kill_hard, ok, run, signal, spawn, terminate, wait_healthy};

/// Commits of one burst of 300 coins: two purchases (256 and 44 coins, a
/// request and a settlement each), then 300 payments.
const BURST_COMMITS: usize = 2 * 2 + 300;

/// How long any stage may take before the test fails.
const STAGE_SECS_MAX: u64 = 120;

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn wait_for_lines(path: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(STAGE_SECS_MAX);
    while lines(path).len() < n {
        assert!(Instant::now() < deadline, "{} stalled", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_exit_ok(mut child: Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(STAGE_SECS_MAX);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "{what} exited with {status:?}");
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An issuer directory with keys for validator nodes v1 and v2.
fn stage(dir: &Path) {
    ok(dir, &["issuer", "init", "--dir", "iss"]);
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
}

fn sequencer(dir: &Path, port: u16) -> Child {
    sequencer_of(dir, "iss", port)
}

fn sequencer_of(dir: &Path, issuer_dir: &str, port: u16) -> Child {
    spawn(
        dir,
        &[
            "issuer",
            "serve",
            "--dir",
            issuer_dir,
            "--role",
            "sequencer",
            "--cluster-listen",
            &format!("127.0.0.1:{port}"),
        ],
    )
}

fn drive_args(node: &str, ports: &[u16], extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["cluster", "drive", "--node", node, "--node-key"]
        .map(str::to_owned)
        .to_vec();
    args.push(format!("{node}.key"));
    for port in ports {
        args.push("--sequencer".into());
        args.push(format!("127.0.0.1:{port}"));
    }
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    args
}

fn drive(dir: &Path, node: &str, ports: &[u16], extra: &[&str]) -> Child {
    let args = drive_args(node, ports, extra);
    spawn(dir, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Every transaction in the log but the sequencer's signed checkpoints:
/// tx (hex) -> the first seq of each batch.
fn batches_in_log(dir: &Path) -> HashMap<String, Vec<u64>> {
    let store = RedbStore::open(dir.join("iss").join("log.redb")).expect("the log opens");
    batches_in(&store)
}

fn batches_in(store: &dyn EventStore) -> HashMap<String, Vec<u64>> {
    let mut out: HashMap<String, Vec<u64>> = HashMap::new();
    let mut next = Seq(1);
    loop {
        let records = store.read(next, 4096).expect("read");
        let Some(last) = records.last() else { break };
        next = Seq(last.record.seq.0 + 1);
        let transactions = records.iter().filter(|r| {
            r.record.batch_index == 0 && !matches!(r.record.event, ledger::Event::Checkpoint(_))
        });
        for r in transactions {
            out.entry(r.record.tx.to_string())
                .or_default()
                .push(r.record.seq.0);
        }
    }
    out
}

fn audit(dir: &Path) -> String {
    // The sequencer signs checkpoints with the issuer's key: every record,
    // a dead sequencer's last ones included (its successor's first seal
    // covers them), is under a signature.
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

#[test]
fn killing_a_validator_then_the_sequencer_loses_no_acknowledged_payment() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    stage(dir);
    let (active_port, standby_port) = (free_port(), free_port());
    let active = sequencer(dir, active_port);
    wait_healthy(active_port);
    let standby = sequencer(dir, standby_port);
    let ports = [active_port, standby_port];

    let coins = "300";
    let v1 = drive(
        dir,
        "v1",
        &ports,
        &[
            "--coins",
            coins,
            "--intents",
            "v1.intents",
            "--acked",
            "v1.acked",
        ],
    );
    let v2 = drive(
        dir,
        "v2",
        &ports,
        &[
            "--coins",
            coins,
            "--intents",
            "v2.intents",
            "--acked",
            "v2.acked",
        ],
    );

    // Validator v1 dies mid-burst; its clients retry through v2.
    wait_for_lines(&dir.join("v1.acked"), 40);
    kill_hard(v1);
    let v1_acked = lines(&dir.join("v1.acked"));
    let v1_intents = lines(&dir.join("v1.intents"));
    // Killed mid-burst: it had not finished.
    assert!(
        v1_intents.len() < BURST_COMMITS,
        "v1 finished before the kill"
    );
    assert!(v1_acked.len() <= v1_intents.len());
    let retried = drive(
        dir,
        "v2",
        &ports,
        &["--resend", "v1.intents", "--acked", "v1-retried.acked"],
    );

    // The sequencer dies mid-burst; the standby takes over.
    let before = lines(&dir.join("v2.acked")).len();
    wait_for_lines(&dir.join("v2.acked"), before + 40);
    kill_hard(active);
    wait_healthy(standby_port);
    wait_exit_ok(v2, "validator v2");
    wait_exit_ok(retried, "the retries through v2");
    terminate(standby);

    let log = batches_in_log(dir);
    let mut acknowledged = 0;
    for file in ["v1.acked", "v2.acked", "v1-retried.acked"] {
        for line in lines(&dir.join(file)) {
            let (tx, seq) = line.split_once(' ').expect("TX SEQ");
            let seq: u64 = seq.parse().expect("seq");
            assert_eq!(
                log.get(tx),
                Some(&vec![seq]),
                "{file}: {tx} acknowledged at #{seq}, not once there in the log"
            );
            acknowledged += 1;
        }
    }
    // Every request v1 sent is in the log once, through v1 or its retry.
    let retried: Vec<String> = lines(&dir.join("v1-retried.acked"));
    assert_eq!(
        retried.len(),
        v1_intents.len(),
        "a retried request was lost"
    );
    // v2 finished its whole burst.
    assert_eq!(lines(&dir.join("v2.acked")).len(), BURST_COMMITS);
    assert!(acknowledged >= BURST_COMMITS + 40);
    let epoch = std::fs::read_to_string(dir.join("iss").join("sequencer.epoch")).expect("epoch");
    assert_eq!(epoch.trim(), "2", "the standby took the lease once");

    let report = audit(dir);
    assert!(report.contains("AUDIT PASSED"), "{report}");

    // The cluster's files are their owner's alone (ledger::private_file).
    use std::os::unix::fs::PermissionsExt;
    for file in [
        "iss/cluster-nodes.keys",
        "iss/sequencer.lease",
        "iss/sequencer.epoch",
        "v1.key",
        "v1.intents",
        "v2.acked",
    ] {
        let mode = std::fs::metadata(dir.join(file))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{file} is {mode:o}");
    }
}

#[test]
fn a_paused_sequencer_keeps_its_lease_and_validators_are_told_to_retry() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    stage(dir);
    let at_init = batches_in_log(dir).len();
    let (active_port, standby_port) = (free_port(), free_port());
    let mut active = sequencer(dir, active_port);
    wait_healthy(active_port);
    // The active one serves before any standby exists: it holds the lease
    // (a port that merely answers could be anybody's).
    ok(
        dir,
        &drive_args("v1", &[active_port], &["--coins", "5"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let standby = sequencer(dir, standby_port);
    let ports = [active_port, standby_port];

    assert!(
        active.try_wait().expect("wait").is_none(),
        "the active sequencer exited"
    );
    signal(active.id(), "STOP");
    // Cut off: the validator is told "unavailable" and gives up, never
    // guessing; nothing reaches the log.
    let cut_off = run(
        dir,
        &drive_args("v2", &ports, &["--coins", "1", "--give-up-secs", "3"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        !cut_off.status.success(),
        "committed with the sequencer paused"
    );
    let stderr = String::from_utf8_lossy(&cut_off.stderr);
    assert!(stderr.contains("no sequencer"), "{stderr}");
    // The standby did not take over from the paused holder.
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", standby_port)).is_err(),
        "the standby serves beside a paused sequencer"
    );

    signal(active.id(), "CONT");
    ok(
        dir,
        &drive_args("v2", &ports, &["--coins", "5"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let epoch = std::fs::read_to_string(dir.join("iss").join("sequencer.epoch")).expect("epoch");
    assert_eq!(epoch.trim(), "1", "the lease never changed hands");
    terminate(active);
    // Now the standby takes over, at the next epoch.
    wait_healthy(standby_port);
    terminate(standby);
    let after = batches_in_log(dir);
    // Two bursts of a purchase (2 transactions) and 5 payments each; the
    // cut-off validator's purchase never reached the log.
    assert_eq!(
        after.len(),
        at_init + 2 * (2 + 5),
        "the paused interval appended nothing"
    );
    assert!(after.values().all(|seqs| seqs.len() == 1));
    let epoch = std::fs::read_to_string(dir.join("iss").join("sequencer.epoch")).expect("epoch");
    assert_eq!(epoch.trim(), "2");
    let report = audit(dir);
    assert!(report.contains("AUDIT PASSED"), "{report}");
}

/// The log on PostgreSQL, the sequencers on two "hosts" (two copies of the
/// issuer's directory, so no file lease orders them): the standby waits
/// for the database's writer lock; the active one killed with SIGKILL
/// mid-burst, the standby fences the log at epoch 2 and serves; every
/// acknowledged commit is in the log once at its place, and the audit
/// passes with every record signed.
#[test]
fn on_postgresql_the_standby_of_another_host_fences_the_log_and_takes_over() {
    let Some(db) = pg_store::testkit::ScratchDatabase::create("cluster_on_postgresql") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let url = db.url();
    ok(dir, &["issuer", "init", "--dir", "iss", "--store", &url]);
    ok(
        dir,
        &[
            "cluster", "node-key", "--dir", "iss", "--node", "v1", "--out", "v1.key",
        ],
    );
    let copied = std::process::Command::new("cp")
        .args(["-a", "iss", "iss2"])
        .current_dir(dir)
        .status()
        .expect("cp runs");
    assert!(copied.success());
    let (active_port, standby_port) = (free_port(), free_port());
    let active = sequencer_of(dir, "iss", active_port);
    wait_healthy(active_port);
    let standby = sequencer_of(dir, "iss2", standby_port);
    let ports = [active_port, standby_port];
    let v1 = drive(
        dir,
        "v1",
        &ports,
        &["--coins", "300", "--acked", "v1.acked"],
    );
    wait_for_lines(&dir.join("v1.acked"), 40);
    // The standby of the other host has not appended beside the active one.
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", standby_port)).is_err(),
        "the standby serves beside the active sequencer"
    );
    kill_hard(active);
    wait_healthy(standby_port);
    wait_exit_ok(v1, "validator v1");
    terminate(standby);

    let store = pg_store::PostgresStore::open(&url).expect("the log opens");
    let log = batches_in(&store);
    let acked = lines(&dir.join("v1.acked"));
    assert_eq!(acked.len(), BURST_COMMITS);
    for line in acked {
        let (tx, seq) = line.split_once(' ').expect("TX SEQ");
        let seq: u64 = seq.parse().expect("seq");
        assert_eq!(log.get(tx), Some(&vec![seq]), "{tx} not once at #{seq}");
    }
    drop(store);
    assert_eq!(
        pg_store::fence::current_epoch_at(&url).expect("epoch"),
        Some(pg_store::fence::FenceEpoch(2)),
        "the standby fenced the log once"
    );
    let report = ok(
        dir,
        &["audit", "--log", &url, "--issuer-key", "iss/issuer.pub"],
    );
    assert!(report.contains("AUDIT PASSED"), "{report}");
}

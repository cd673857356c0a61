//! A real crash: a child process applies the log to the coin-status and
//! accounts files in many small transactions and is killed (SIGKILL) in the
//! middle of that work. Reopening the files must show each projection at a
//! record boundary whose tables equal a replay of the log up to its applied
//! sequence number, and catching up from there must equal a clean rebuild.
//!
//! The test runs itself as the child: the same test binary, filtered to
//! this test, with `VC_PROJECTIONS_CRASH_DIR` set.

use crate::util;
use ledger::testkit::StoreExt as _;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use ledger::MemoryStore;
use ledger::testkit::History;
use ledger::{EventStore, RedbStore, Seq, Sharing};
use projections::{AccountsModel, CoinStatusModel, Projection, ProjectionDb, replay_in_memory};

const CHILD_DIR_ENV: &str = "VC_PROJECTIONS_CRASH_DIR";
const CHUNK_RECORDS: usize = 7;

/// The child: applies the log chunk by chunk, announcing each commit.
fn child(dir: &Path) {
    let log =
        RedbStore::open_read_only(dir.join("log.redb"), Sharing::FollowableByReaders).expect("log");
    let coins = ProjectionDb::open(dir.join("coins.redb"), CoinStatusModel).expect("coins");
    let accounts = ProjectionDb::open(dir.join("accounts.redb"), AccountsModel).expect("accounts");
    let mut from = Seq(1);
    loop {
        let records = log.read(from, CHUNK_RECORDS).expect("read");
        let Some(last) = records.last() else { break };
        coins.apply_records(&records).expect("coins");
        accounts.apply_records(&records).expect("accounts");
        from = Seq(last.record.seq.0 + 1);
        println!("applied {}", last.record.seq.0);
    }
    println!("done");
}

fn check_recovered<P: Projection>(
    dir: &Path,
    name: &str,
    model: fn() -> P,
    log: &RedbStore,
) -> Seq {
    let db = ProjectionDb::open(dir.join(name), model()).expect("reopen after kill");
    let applied = db.applied_seq().expect("seq");
    let (expected, _) = replay_in_memory(&model(), log, Some(applied)).expect("replay");
    assert_eq!(
        db.snapshot().expect("snapshot"),
        expected,
        "{name} at {applied}"
    );
    db.catch_up(log).expect("catch up after crash");
    let (full, _) = replay_in_memory(&model(), log, None).expect("replay");
    assert_eq!(
        db.snapshot().expect("snapshot"),
        full,
        "{name} after catch-up"
    );
    applied
}

#[test]
fn killed_while_applying_then_reopened_equals_a_replay_to_the_applied_record() {
    if let Some(dir) = std::env::var_os(CHILD_DIR_ENV) {
        child(Path::new(&dir));
        return;
    }
    let head;
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    {
        let log_mem = MemoryStore::new();
        History::new().run(&util::busy_ops(1500), &log_mem);
        head = log_mem.head().expect("head").last_seq;
        let batches: Vec<ledger::Batch> = log_mem
            .all()
            .chunk_by(|a, b| a.record.tx == b.record.tx)
            .map(|chunk| ledger::Batch {
                tx: chunk[0].record.tx,
                at: chunk[0].record.at,
                events: chunk.iter().map(|r| r.record.event.clone()).collect(),
            })
            .collect();
        let first = dirs[0].path().join("log.redb");
        RedbStore::open(&first)
            .expect("log")
            .append(&batches)
            .expect("append");
        for dir in &dirs[1..] {
            std::fs::copy(&first, dir.path().join("log.redb")).expect("copy log");
        }
    }
    let child_test = test_in_this_module(
        "killed_while_applying_then_reopened_equals_a_replay_to_the_applied_record",
    );
    for (run, dir) in dirs.iter().enumerate() {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                child_test.as_str(),
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        // Kill after a few commits, at a different point in each run.
        let wanted_commits = 3 + run * 11;
        let stdout = child.stdout.take().expect("piped");
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            if line.starts_with("applied") {
                seen += 1;
                if seen == wanted_commits {
                    break;
                }
            }
        }
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert_eq!(seen, wanted_commits, "child stopped before being killed");

        let log =
            RedbStore::open_read_only(dir.path().join("log.redb"), Sharing::FollowableByReaders)
                .expect("log");
        let coins_at = check_recovered(dir.path(), "coins.redb", || CoinStatusModel, &log);
        let accounts_at = check_recovered(dir.path(), "accounts.redb", || AccountsModel, &log);
        assert!(coins_at.0 >= (wanted_commits * CHUNK_RECORDS) as u64);
        assert!(coins_at < head, "the kill came before the end of the log");
        // Accounts commit after coins, so they are at most one chunk behind.
        assert!(accounts_at <= Seq(coins_at.0 + CHUNK_RECORDS as u64));
    }
}

/// The harness's name of this module's test `name` (`module::name`, the
/// binary's crate name left out), to run that test alone in a child.
fn test_in_this_module(name: &str) -> String {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    format!("{module}::{name}")
}

//! Crash safety: a writer process is killed (SIGKILL, no chance to close
//! the file) while submitters stream batches through group commit; the file
//! is reopened, the chain verifies, and every batch that had been
//! acknowledged is there. The writer is this test binary re-run as a child
//! (`crash_child_writer`), which prints one line per acknowledged batch.

use crate::util;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger::testkit::sample_batch;
use ledger::{
    EventStore, GroupCommit, GroupCommitConfig, RedbStore, Seq, Sharing, StoreError, verify_store,
};

const CHILD_LOG_ENV: &str = "VC_CRASH_CHILD_LOG";
const CHILD_BATCH_BASE_ENV: &str = "VC_CRASH_CHILD_BATCH_BASE";
const SUBMITTERS: u64 = 4;

/// One acknowledged batch as the child reported it.
#[derive(Debug)]
struct Acked {
    first: u64,
    n_events: u64,
    batch_no: u64,
}

/// Streams batches through group commit into `path` from `SUBMITTERS`
/// threads, `per_submitter` each (forever if `None`), printing each ack.
fn stream_batches(path: &Path, batch_base: u64, per_submitter: Option<u64>) -> u64 {
    let store = Arc::new(RedbStore::open(path).expect("open log"));
    let writer = Arc::new(
        GroupCommit::start(Arc::clone(&store), GroupCommitConfig::default()).expect("start"),
    );
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let handles: Vec<_> = (0..SUBMITTERS)
        .map(|t| {
            let writer = Arc::clone(&writer);
            let out = Arc::clone(&out);
            std::thread::spawn(move || {
                let mut n = 0;
                let mut i = 0u64;
                while per_submitter.is_none_or(|max| i < max) {
                    let batch_no = batch_base + t * 1_000_000 + i;
                    let n_events = batch_no % 3 + 1;
                    let first = writer
                        .submit_wait(sample_batch(batch_no, n_events as usize))
                        .expect("acknowledged");
                    let mut out = out.lock().expect("stdout lock");
                    writeln!(out, "ack {} {} {}", first.0, n_events, batch_no).expect("print");
                    out.flush().expect("flush");
                    n += 1;
                    i += 1;
                }
                n
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("submitter"))
        .sum()
}

#[test]
fn crash_child_writer() {
    // As a child: stream until killed. Run directly: a bounded stream into a
    // fresh file, whose every acknowledgement must be in the verified log.
    if let Ok(path) = std::env::var(CHILD_LOG_ENV) {
        let base = std::env::var(CHILD_BATCH_BASE_ENV)
            .ok()
            .and_then(|b| b.parse().ok())
            .unwrap_or(0);
        stream_batches(Path::new(&path), base, None);
        return;
    }
    let log = util::TempLog::new();
    let n = stream_batches(&log.path(), 0, Some(25));
    assert_eq!(n, 25 * SUBMITTERS);
    let store = log.open();
    verify_store(&store, 256).expect("chain verifies");
}

/// The harness's name of this module's test `name` (`module::name`, the
/// binary's crate name left out), to run that test alone in a child.
fn test_in_this_module(name: &str) -> String {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    format!("{module}::{name}")
}

fn run_child_until(path: &Path, batch_base: u64, acks_wanted: usize) -> Vec<Acked> {
    let child_test = test_in_this_module("crash_child_writer");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            child_test.as_str(),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_LOG_ENV, path)
        .env(CHILD_BATCH_BASE_ENV, batch_base.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child writer");
    let stdout = child.stdout.take().expect("child stdout");
    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("child output");
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let ["ack", first, n_events, batch_no] = fields[..] {
            acked.push(Acked {
                first: first.parse().expect("seq"),
                n_events: n_events.parse().expect("count"),
                batch_no: batch_no.parse().expect("batch"),
            });
        }
        if acked.len() >= acks_wanted || Instant::now() > deadline {
            break;
        }
    }
    // SIGKILL while the submitters are still streaming.
    child.kill().expect("kill child");
    child.wait().expect("reap child");
    acked
}

#[test]
fn sigkill_mid_stream_loses_no_acknowledged_batch() {
    let log = util::TempLog::new();
    let mut all_acked = Vec::new();
    for round in 0..3u64 {
        let acked = run_child_until(&log.path(), round * 100_000_000, 150);
        assert!(
            acked.len() >= 150,
            "round {round}: child acknowledged {}",
            acked.len()
        );
        all_acked.extend(acked);

        // redb will not open a crashed file read-only (it needs a repair,
        // which writes): an auditor gets a typed error, not stale or partial
        // data, and can repair a copy instead of the evidence.
        let refused = RedbStore::open_read_only(log.path(), Sharing::FollowableByReaders);
        assert!(
            matches!(refused, Err(StoreError::NeedsRepair)),
            "a crashed log needs a writable open first"
        );
        let copy_dir = tempfile::tempdir().expect("tempdir");
        let copy = copy_dir.path().join("log-copy.redb");
        RedbStore::repaired_copy(log.path(), &copy).expect("repaired copy");
        let from_copy = RedbStore::open_read_only(&copy, Sharing::Exclusive)
            .expect("the repaired copy opens read-only");
        let copy_head = verify_store(&from_copy, 512).expect("the copy's chain verifies");
        drop(from_copy);
        assert!(
            matches!(
                RedbStore::open_read_only(log.path(), Sharing::FollowableByReaders),
                Err(StoreError::NeedsRepair)
            ),
            "repairing the copy left the original as it was"
        );

        let store = log.open();
        let head = verify_store(&store, 512).expect("chain verifies after the crash");
        assert_eq!(head, store.head().expect("head"));
        assert_eq!(
            copy_head, head,
            "the copy's repair kept what the writer's did"
        );
        // Once the writer has reopened (repaired) it, readers may open it beside.
        let reader = RedbStore::open_read_only(log.path(), Sharing::FollowableByReaders)
            .expect("read-only open after the repair");
        assert_eq!(
            verify_store(&reader, 512).expect("verifies read-only"),
            head
        );
        drop(reader);
        for ack in &all_acked {
            let records = store
                .read(Seq(ack.first), ack.n_events as usize)
                .expect("read acknowledged batch");
            let want = sample_batch(ack.batch_no, ack.n_events as usize);
            assert_eq!(records.len() as u64, ack.n_events, "batch {}", ack.batch_no);
            for (record, event) in records.iter().zip(&want.events) {
                assert_eq!(record.record.tx, want.tx);
                assert_eq!(&record.record.event, event);
            }
        }
    }
}

#[test]
fn dropping_the_writer_mid_stream_from_another_thread_loses_no_acknowledged_batch() {
    // In-process variant: submitters stream through callbacks while another
    // thread drops the writer and the store; then the file is reopened.
    let log = util::TempLog::new();
    let store = Arc::new(log.open());
    let writer = Arc::new(Mutex::new(Some(
        GroupCommit::start(Arc::clone(&store), GroupCommitConfig::default()).expect("start"),
    )));
    let (acks_tx, acks_rx) = std::sync::mpsc::channel();
    let submitters: Vec<_> = (0..SUBMITTERS)
        .map(|t| {
            let writer = Arc::clone(&writer);
            let acks_tx = acks_tx.clone();
            std::thread::spawn(move || {
                for i in 0.. {
                    let guard = writer.lock().expect("writer lock");
                    let Some(writer) = guard.as_ref() else {
                        return;
                    };
                    let batch_no = t * 1_000_000 + i;
                    let acks_tx = acks_tx.clone();
                    writer.submit(sample_batch(batch_no, 2), move |r| {
                        if let Ok(first) = r {
                            let _ = acks_tx.send((first.0, batch_no));
                        }
                    });
                }
            })
        })
        .collect();
    drop(acks_tx);
    // Let some commits happen, then drop the writer from this thread.
    let mut acked = vec![acks_rx.recv().expect("a first ack")];
    while acked.len() < 50 {
        acked.push(acks_rx.recv().expect("ack"));
    }
    let stopped = writer.lock().expect("writer lock").take();
    drop(stopped);
    for s in submitters {
        s.join().expect("submitter");
    }
    acked.extend(acks_rx.iter());
    drop(store);

    let store = log.open();
    verify_store(&store, 512).expect("chain verifies");
    for (first, batch_no) in &acked {
        let records = store.read(Seq(*first), 2).expect("read");
        let want = sample_batch(*batch_no, 2);
        assert_eq!(records.len(), 2);
        assert!(records.iter().all(|r| r.record.tx == want.tx));
    }
    assert_eq!(
        store.head().expect("head").last_seq.0,
        2 * acked.len() as u64,
        "every batch the dropped writer took was appended and acknowledged"
    );
}

//! Incremental audits: a run writes a checkpoint file, the next run resumes
//! from it and reads only the new records, with the same result as a full
//! audit; a history rewritten behind the checkpoint is caught.

use crate::util;

use ledger::{Amount, Event, EventStore, MemoryStore, RedbOptions, RedbStore, Seq, Sharing};
use util::*;
use vc_replay::{AuditOptions, Outcome, Rule, audit_store, run_audit};

fn open_writer(path: &std::path::Path) -> RedbStore {
    RedbStore::open_with(
        path,
        RedbOptions {
            sharing: Sharing::FollowableByReaders,
            verify_integrity_on_open: true,
        },
    )
    .expect("open log for writing")
}

#[test]
fn a_daily_audit_reads_only_the_new_records_and_agrees_with_a_full_audit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("log.redb");
    let ckpt = dir.path().join("audit.ckpt");
    let g = genuine(3);
    let (day1, day2) = g.sim.batches.split_at(g.sim.batches.len() / 2);
    {
        let store = open_writer(&log);
        write_log(&store, day1, issuer_key(), 4);
    }
    let mut opts = AuditOptions::new(&log);
    opts.checkpoint_verifier = Some(issuer_verifier());
    opts.write_checkpoint = Some(ckpt.clone());
    let first = run_audit(opts).expect("day 1 audit");
    assert_eq!(first.outcome, Outcome::Holds, "{}", first.to_text());
    assert!(ckpt.exists());

    let total_records = {
        let store = open_writer(&log);
        write_log(&store, day2, issuer_key(), 4);
        store.head().expect("head").last_seq.0
    };
    let mut opts = AuditOptions::new(&log);
    opts.checkpoint_verifier = Some(issuer_verifier());
    opts.from_checkpoint = Some(ckpt.clone());
    opts.write_checkpoint = Some(ckpt.clone());
    let second = run_audit(opts).expect("day 2 audit");
    assert_eq!(second.outcome, Outcome::Holds, "{}", second.to_text());
    assert_eq!(second.resumed_from, Some(first.audited_through));
    assert_eq!(
        second.records_read_this_run,
        total_records - first.audited_through.0
    );

    let mut opts = AuditOptions::new(&log);
    opts.checkpoint_verifier = Some(issuer_verifier());
    let full = run_audit(opts).expect("full audit");
    assert_eq!(full.outcome, Outcome::Holds);
    assert_eq!(second.audited_through, full.audited_through);
    assert_eq!(second.totals, full.totals);
    assert_eq!(second.unspent_coins, full.unspent_coins);
    assert_eq!(second.stats.records, full.stats.records);
    assert_eq!(second.stats.events_by_kind, full.stats.events_by_kind);
    assert_eq!(second.epochs, full.epochs);
}

#[test]
fn a_history_rewritten_behind_the_checkpoint_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ckpt = dir.path().join("audit.ckpt");
    let g = genuine(3);
    let store = ledger::MemoryStore::new();
    write_log(&store, &g.sim.batches, issuer_key(), 4);
    let records = raw_records(&store);
    let half = records.len() / 2;

    let mut opts = AuditOptions::new("first half");
    opts.write_checkpoint = Some(ckpt.clone());
    // Half a log: its newest records await the next checkpoint.
    opts.allow_unsigned_tail = u64::MAX;
    let first = audit_store(
        &MemoryStore::from_raw_records(records[..half].to_vec()),
        opts,
    )
    .expect("audit");
    assert!(matches!(
        first.outcome,
        Outcome::Holds | Outcome::Truncated { .. }
    ));

    // The issuer rewrites an old settlement (chain and checkpoints
    // recomputed, as an issuer with its own key could) and hands over the log.
    let tx = g.sim.batches[g.settlement].tx;
    let mut forged = records.clone();
    let at = first_record_of_tx(&forged, tx);
    edit_event(&mut forged[at], |e| {
        if let Event::PurchaseSettled { amount, .. } = e {
            *amount = Amount::from_minor(amount.minor_units() + 1);
        }
    });
    rechain(&mut forged, at);
    let mut opts = AuditOptions::new("rewritten");
    opts.from_checkpoint = Some(ckpt.clone());
    let report = audit_store(&MemoryStore::from_raw_records(forged), opts).expect("audit");
    let Outcome::Violation(v) = &report.outcome else {
        panic!("expected a violation, got {:?}", report.outcome);
    };
    assert_eq!(v.rule, Rule::HistoryRewritten);
    assert_eq!(v.seq, first.audited_through);
    assert_eq!(report.records_read_this_run, 0);

    // A log cut short behind the checkpoint is a rewrite too.
    let mut opts = AuditOptions::new("cut");
    opts.from_checkpoint = Some(ckpt);
    let cut =
        audit_store(&MemoryStore::from_raw_records(records[..3].to_vec()), opts).expect("audit");
    assert_eq!(
        cut.violation().map(|v| v.rule),
        Some(Rule::HistoryRewritten)
    );
}

#[test]
fn no_checkpoint_file_is_written_after_a_violation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ckpt = dir.path().join("audit.ckpt");
    let g = genuine(1);
    let store = ledger::MemoryStore::new();
    write_log(&store, &g.sim.batches, issuer_key(), 4);
    let mut records = raw_records(&store);
    let k = records.len() / 2;
    records[k].event_bytes[0] ^= 0xff;
    let mut opts = AuditOptions::new("broken");
    opts.write_checkpoint = Some(ckpt.clone());
    let report = audit_store(&MemoryStore::from_raw_records(records), opts).expect("audit");
    assert_eq!(report.violation().map(|v| v.rule), Some(Rule::ChainBroken));
    assert_eq!(report.violation().map(|v| v.seq), Some(Seq(k as u64 + 1)));
    assert!(!ckpt.exists());
}

#[test]
fn a_checkpoint_read_after_resuming_must_vouch_for_the_record_just_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ckpt = dir.path().join("audit.ckpt");
    let g = genuine(1);
    let store = ledger::MemoryStore::new();
    write_log(&store, &g.sim.batches, issuer_key(), 1_000);
    let mut opts = AuditOptions::new("day 1");
    opts.write_checkpoint = Some(ckpt.clone());
    let first = audit_store(&store, opts).expect("audit");
    assert_eq!(first.outcome, Outcome::Holds);

    // A checkpoint signed over a record a few places back: a copy of an
    // older signature, or a stale one; either way it no longer binds the
    // records after what it vouches for.
    let records = raw_records(&store);
    let older = &records[records.len() - 6];
    let batch = ledger::Batch {
        tx: ledger::TxId::from_bytes([0xcc; 16]),
        at: records[records.len() - 1].at,
        events: vec![Event::Checkpoint(protocol::checkpoint::sign_checkpoint(
            issuer_key(),
            older.seq,
            older.hash,
        ))],
    };
    store.append(&[batch]).expect("append");
    let mut opts = AuditOptions::new("day 2");
    opts.checkpoint_verifier = Some(issuer_verifier());
    opts.from_checkpoint = Some(ckpt.clone());
    let second = audit_store(&store, opts).expect("audit");
    assert_eq!(
        second.violation().map(|v| v.rule),
        Some(Rule::CheckpointMisplaced),
        "{}",
        second.to_text()
    );
    assert_eq!(second.records_read_this_run, 1);
}

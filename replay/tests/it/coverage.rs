//! The tamper corpus, continued: forgeries of what binds the whole log
//! rather than one record. A forger here can write the log file and
//! recompute SHA-256, but cannot sign: every case names its rule.
//!
//! - coverage: checkpoints deleted, an older genuine checkpoint copied
//!   forward, records appended after the last checkpoint
//!   (`unsigned_records`, `checkpoint_misplaced`);
//! - anchors: the log cut at a transaction boundary, every record removed
//!   (`head_not_reached`, "nothing to audit");
//! - strict reading: a meta or records table removed from the redb file, a
//!   storage engine that panics (`log_unreadable`);
//! - one byte form per content (`non_canonical`);
//! - a transaction id committed twice (`transaction_twice`).

use crate::util;

use ledger::{Checkpoint, Event, EventStore, Hash32, Head, MemoryStore, RawRecord, Seq};
use util::*;
use vc_replay::{
    AuditOptions, AuditReport, EXIT_ERROR, EXIT_HOLDS, Outcome, Rule, Violation, audit_store,
};

fn write(batches: &[ledger::Batch]) -> Vec<RawRecord> {
    let store = MemoryStore::new();
    write_log(&store, batches, issuer_key(), 5);
    raw_records(&store)
}

fn audit_with(records: &[RawRecord], set: impl FnOnce(&mut AuditOptions)) -> AuditReport {
    let mut opts = AuditOptions::new("coverage");
    opts.checkpoint_verifier = Some(issuer_verifier());
    set(&mut opts);
    audit_store(&MemoryStore::from_raw_records(records.to_vec()), opts).expect("the audit runs")
}

fn violation(report: &AuditReport) -> &Violation {
    match &report.outcome {
        Outcome::Violation(v) => v,
        other => panic!("expected a violation, got {other:?}\n{}", report.to_text()),
    }
}

fn is_checkpoint(record: &RawRecord) -> bool {
    matches!(Event::decode(&record.event_bytes), Ok(Event::Checkpoint(_)))
}

/// Renumbers `records` from 1 and recomputes the whole chain: what a forger
/// who removed or inserted records does.
fn renumber(records: &mut [RawRecord]) {
    for (i, r) in records.iter_mut().enumerate() {
        r.seq = Seq(i as u64 + 1);
    }
    rechain(records, 0);
}

/// The issuer's signed head over `records[..=index]`.
fn signed_head(records: &[RawRecord], index: usize) -> Checkpoint {
    protocol::checkpoint::sign_checkpoint(issuer_key(), records[index].seq, records[index].hash)
}

#[test]
fn the_genuine_log_is_signed_through_its_last_record() {
    let records = write(&genuine(2).sim.batches);
    let report = audit_with(&records, |_| {});
    assert_eq!(report.outcome, Outcome::Holds, "{}", report.to_text());
    assert_eq!(report.signed_through, records.last().expect("records").seq);
    assert_eq!(report.unsigned_records, 0);
    assert!(report.to_text().contains("signed through record"));
}

#[test]
fn deleting_every_checkpoint_leaves_every_record_unsigned() {
    let mut records = write(&genuine(2).sim.batches);
    records.retain(|r| !is_checkpoint(r));
    renumber(&mut records);
    let report = audit_with(&records, |_| {});
    let v = violation(&report);
    assert_eq!((v.rule, v.seq), (Rule::UnsignedRecords, Seq(1)));
    assert_eq!(report.signed_through, Seq(0));
}

#[test]
fn deleting_the_later_checkpoints_leaves_the_records_after_the_first_unsigned() {
    let mut records = write(&genuine(2).sim.batches);
    let first = records
        .iter()
        .position(is_checkpoint)
        .expect("a checkpoint");
    let mut kept: Vec<RawRecord> = records.drain(..=first).collect();
    kept.extend(records.into_iter().filter(|r| !is_checkpoint(r)));
    renumber(&mut kept);
    let report = audit_with(&kept, |_| {});
    let v = violation(&report);
    assert_eq!((v.rule, v.seq.0), (Rule::UnsignedRecords, first as u64 + 2));
    // An auditor of a live issuer may accept a tail that long, no shorter.
    let tail = (kept.len() - first - 1) as u64;
    let live = audit_with(&kept, |o| o.allow_unsigned_tail = tail);
    assert_eq!(live.outcome, Outcome::Holds, "{}", live.to_text());
    assert_eq!(live.unsigned_records, tail);
    let short = audit_with(&kept, |o| o.allow_unsigned_tail = tail - 1);
    assert_eq!(violation(&short).rule, Rule::UnsignedRecords);
}

#[test]
fn an_older_genuine_checkpoint_copied_forward_is_misplaced() {
    let mut records = write(&genuine(2).sim.batches);
    let positions: Vec<usize> = (0..records.len())
        .filter(|&i| is_checkpoint(&records[i]))
        .collect();
    let (first, second) = (positions[0], positions[1]);
    // The forger replaces the second checkpoint by a copy of the first
    // (signed, genuine) and recomputes the chain from there.
    records[second].event_bytes = records[first].event_bytes.clone();
    rechain(&mut records, second);
    let report = audit_with(&records, |_| {});
    let v = violation(&report);
    assert_eq!(
        (v.rule, v.seq),
        (Rule::CheckpointMisplaced, records[second].seq)
    );
}

#[test]
fn a_checkpoint_inside_another_transaction_is_misplaced() {
    let mut records = write(&genuine(1).sim.batches);
    let at = records
        .iter()
        .position(is_checkpoint)
        .expect("a checkpoint");
    // Glue the checkpoint onto the transaction before it.
    let before = &records[at - 1];
    let (tx, time, len) = (before.tx, before.at, before.batch_len);
    let first = at - usize::from(len);
    for r in &mut records[first..at] {
        r.batch_len = len + 1;
    }
    records[at].tx = tx;
    records[at].at = time;
    records[at].batch_index = len;
    records[at].batch_len = len + 1;
    rechain(&mut records, first);
    let report = audit_with(&records, |o| o.checkpoint_verifier = None);
    let v = violation(&report);
    assert_eq!(
        (v.rule, v.seq),
        (Rule::CheckpointMisplaced, records[at].seq)
    );
}

#[test]
fn records_appended_after_the_last_checkpoint_are_unsigned() {
    let mut g = genuine(2);
    let n_genuine = write(&g.sim.batches).len();
    // The forger's redemption, chained on after the issuer's last signature.
    g.sim.redeem(1);
    let forged = g.sim.batches.pop().expect("the forged batch");
    let store = MemoryStore::new();
    write_log(&store, &g.sim.batches, issuer_key(), 5);
    store.append(&[forged]).expect("append");
    let records = raw_records(&store);
    assert!(records.len() > n_genuine - 1);
    let report = audit_with(&records, |_| {});
    let v = violation(&report);
    assert_eq!(v.rule, Rule::UnsignedRecords);
    assert_eq!(v.seq.0, records.len() as u64 - 1);
}

#[test]
fn a_log_cut_at_a_transaction_boundary_does_not_reach_the_published_head() {
    let records = write(&genuine(2).sim.batches);
    let head = signed_head(&records, records.len() - 2);
    // Cut just after an earlier checkpoint: every remaining record is signed,
    // so only the head published outside the log shows the cut.
    let cut = records
        .iter()
        .take(records.len() - 1)
        .rposition(is_checkpoint)
        .expect("an earlier checkpoint");
    let kept = &records[..=cut];
    let unanchored = audit_with(kept, |_| {});
    assert_eq!(
        unanchored.outcome,
        Outcome::Holds,
        "{}",
        unanchored.to_text()
    );
    let anchored = audit_with(kept, |o| o.expect_head = Some(head.clone()));
    let v = violation(&anchored);
    assert_eq!((v.rule, v.seq.0), (Rule::HeadNotReached, cut as u64 + 2));
    // The whole log reaches it.
    let whole = audit_with(&records, |o| o.expect_head = Some(head.clone()));
    assert_eq!(whole.outcome, Outcome::Holds, "{}", whole.to_text());
}

#[test]
fn a_head_the_log_holds_with_another_hash_is_not_reached() {
    let records = write(&genuine(1).sim.batches);
    let mut head = signed_head(&records, 3);
    head.hash = Hash32([7; 32]);
    head = protocol::checkpoint::sign_checkpoint(issuer_key(), head.seq, head.hash);
    let report = audit_with(&records, |o| o.expect_head = Some(head));
    let v = violation(&report);
    assert_eq!((v.rule, v.seq), (Rule::HeadNotReached, records[3].seq));
}

#[test]
fn a_head_not_signed_by_the_issuer_anchors_nothing() {
    let records = write(&genuine(1).sim.batches);
    let mut head = signed_head(&records, 3);
    head.signature.0[0] ^= 1;
    let mut opts = AuditOptions::new("coverage");
    opts.checkpoint_verifier = Some(issuer_verifier());
    opts.expect_head = Some(head);
    let result = audit_store(&MemoryStore::from_raw_records(records), opts);
    assert!(matches!(
        result,
        Err(vc_replay::AuditError::ExpectedHeadForged(_))
    ));
}

#[test]
fn a_log_with_every_record_removed_is_nothing_to_audit_never_a_pass() {
    let report = audit_with(&[], |_| {});
    assert_eq!(report.outcome, Outcome::NothingToAudit);
    assert_eq!(report.exit_code(), EXIT_ERROR);
    assert!(report.headline().starts_with("NOTHING TO AUDIT"));
    // Held to the issuer's head, it fails outright.
    let records = write(&genuine(1).sim.batches);
    let head = signed_head(&records, 3);
    let report = audit_with(&[], |o| o.expect_head = Some(head));
    let v = violation(&report);
    assert_eq!((v.rule, v.seq), (Rule::HeadNotReached, Seq(1)));
}

#[test]
fn a_non_canonical_encoding_is_named_at_its_record() {
    let mut records = write(&genuine(1).sim.batches);
    // An EpochClosed event: its epoch number (small) is the last byte; the
    // forger writes it as an overlong varint and rechains.
    let k = records
        .iter()
        .position(|r| matches!(Event::decode(&r.event_bytes), Ok(Event::EpochClosed { .. })))
        .expect("an epoch closed");
    let last = records[k].event_bytes.pop().expect("a byte");
    assert!(last < 0x80);
    records[k]
        .event_bytes
        .extend_from_slice(&[last | 0x80, 0x00]);
    rechain(&mut records, k);
    let report = audit_with(&records, |_| {});
    let v = violation(&report);
    assert_eq!((v.rule, v.seq), (Rule::NonCanonical, records[k].seq));
}

#[test]
fn a_transaction_id_committed_twice_is_named_at_the_second() {
    let mut records = write(&genuine(2).sim.batches);
    let first = records
        .iter()
        .position(|r| r.batch_len == 2 && r.batch_index == 0)
        .expect("a two-record transaction");
    let second = (first + 2..records.len())
        .find(|&i| records[i].batch_len == 2 && records[i].batch_index == 0)
        .expect("another");
    let tx = records[first].tx;
    records[second].tx = tx;
    records[second + 1].tx = tx;
    rechain(&mut records, second);
    for chunk in [1, 3, 256] {
        let report = audit_with(&records, |o| {
            o.checkpoint_verifier = None;
            o.read_chunk_records = chunk;
        });
        let v = violation(&report);
        assert_eq!(
            (v.rule, v.seq, v.tx),
            (Rule::TransactionTwice, records[second].seq, Some(tx)),
            "chunk {chunk}"
        );
    }
}

#[test]
fn an_incremental_audit_remembers_transactions_and_coverage() {
    let records = write(&genuine(2).sim.batches);
    let dir = tempfile::tempdir().expect("tempdir");
    let ckpt = dir.path().join("audit.ckpt");
    let half = records.len() / 2;
    let first = audit_with(&records[..half], |o| {
        o.allow_unsigned_tail = u64::MAX;
        o.write_checkpoint = Some(ckpt.clone());
    });
    assert!(first.exit_code() != 1, "{}", first.to_text());
    // The rest, with a transaction of the first half repeated at its end.
    let mut rest = records.clone();
    let repeated = rest[1].tx;
    let last = rest.len() - 1;
    assert_eq!(rest[last].batch_len, 1);
    rest[last].tx = repeated;
    rechain(&mut rest, last);
    let second = audit_with(&rest, |o| {
        o.checkpoint_verifier = None;
        o.from_checkpoint = Some(ckpt.clone());
    });
    let v = violation(&second);
    assert_eq!((v.rule, v.seq), (Rule::TransactionTwice, rest[last].seq));
    // Unchanged, the rest passes, signed through its last record.
    let second = audit_with(&records, |o| o.from_checkpoint = Some(ckpt.clone()));
    assert_eq!(second.exit_code(), EXIT_HOLDS, "{}", second.to_text());
    assert_eq!(second.signed_through, records[last].seq);
}

/// A store whose storage engine panics when reading from `panic_at` on.
struct PanickingStore {
    records: Vec<RawRecord>,
    panic_at: Seq,
}

impl EventStore for PanickingStore {
    fn append(&self, _batches: &[ledger::Batch]) -> Result<Vec<Seq>, ledger::StoreError> {
        Err(ledger::StoreError::ReadOnly)
    }

    fn head(&self) -> Result<Head, ledger::StoreError> {
        MemoryStore::from_raw_records(self.records.clone()).head()
    }

    fn read(
        &self,
        _from: Seq,
        _max: usize,
    ) -> Result<Vec<ledger::StoredRecord>, ledger::StoreError> {
        Err(ledger::StoreError::ReadOnly)
    }
}

impl ledger::RawEventStore for PanickingStore {
    fn read_raw(&self, from: Seq, max: usize) -> Result<Vec<RawRecord>, ledger::StoreError> {
        let records = MemoryStore::from_raw_records(self.records.clone()).read_raw(from, max)?;
        if records.iter().any(|r| r.seq >= self.panic_at) {
            panic!("a damaged page (simulated)");
        }
        Ok(records)
    }
}

#[test]
fn a_panic_inside_the_storage_engine_is_log_unreadable_at_its_record() {
    let records = write(&genuine(1).sim.batches);
    let k = records.len() / 2;
    let store = PanickingStore {
        records: records.clone(),
        panic_at: records[k].seq,
    };
    for chunk in [1, 256] {
        let mut opts = AuditOptions::new("panics");
        opts.read_chunk_records = chunk;
        let report = audit_store(&store, opts).expect("the audit runs");
        let v = violation(&report);
        assert_eq!(v.rule, Rule::LogUnreadable, "chunk {chunk}");
        assert!(v.seq <= records[k].seq, "chunk {chunk}: {v}");
        assert!(v.detail.contains("panicked"), "{v}");
    }
}

/// A redb file of the genuine log, then `damage` done to it with redb's API.
fn damaged_redb_file(damage: impl FnOnce(&redb::WriteTransaction)) -> AuditReport {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log.redb");
    {
        let store = ledger::RedbStore::open(&path).expect("open");
        write_log(&store, &genuine(1).sim.batches, issuer_key(), 5);
    }
    {
        let db = redb::Database::open(&path).expect("open with redb");
        let txn = db.begin_write().expect("write");
        damage(&txn);
        txn.commit().expect("commit");
    }
    let mut opts = AuditOptions::new(&path);
    opts.checkpoint_verifier = Some(issuer_verifier());
    vc_replay::run_audit(opts).expect("the audit runs")
}

#[test]
fn a_log_file_without_its_meta_table_is_unreadable_not_empty() {
    const META: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("vc_log_meta");
    let report = damaged_redb_file(|txn| {
        txn.delete_table(META).expect("delete meta");
    });
    let v = violation(&report);
    assert_eq!((v.rule, v.seq), (Rule::LogUnreadable, Seq(1)));
}

#[test]
fn a_log_file_without_its_records_table_is_unreadable_not_empty() {
    const RECORDS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("vc_log_records");
    let report = damaged_redb_file(|txn| {
        txn.delete_table(RECORDS).expect("delete records");
    });
    assert_eq!(violation(&report).rule, Rule::LogUnreadable);
}

#[test]
fn a_log_file_with_a_foreign_table_or_meta_entry_is_unreadable() {
    const META: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("vc_log_meta");
    const OTHER: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("other");
    let report = damaged_redb_file(|txn| {
        txn.open_table(OTHER).expect("other table");
    });
    assert_eq!(violation(&report).rule, Rule::LogUnreadable);
    let report = damaged_redb_file(|txn| {
        txn.open_table(META)
            .expect("meta")
            .insert("extra", 1)
            .expect("insert");
    });
    assert_eq!(violation(&report).rule, Rule::LogUnreadable);
}

/// The statement a faithful bank would export for `batches`.
fn faithful_statement(batches: &[ledger::Batch]) -> vc_replay::BankStatement {
    let mut entries = Vec::new();
    for batch in batches {
        for event in &batch.events {
            match event {
                Event::PurchaseSettled { purchase, amount } => {
                    entries.push(vc_replay::BankEntry::Debit {
                        purchase: *purchase,
                        amount: *amount,
                    });
                }
                Event::Redeemed { amount, .. } => entries.push(vc_replay::BankEntry::Credit {
                    tx: batch.tx,
                    amount: *amount,
                }),
                _ => {}
            }
        }
    }
    vc_replay::BankStatement { entries }
}

#[test]
fn the_bank_statement_reconciles_and_each_difference_is_named() {
    let g = genuine(2);
    let records = write(&g.sim.batches);
    let statement = faithful_statement(&g.sim.batches);
    assert!(statement.entries.len() >= 4);
    let report = audit_with(&records, |o| o.bank_statement = Some(statement.clone()));
    assert_eq!(report.outcome, Outcome::Holds, "{}", report.to_text());
    assert!(report.notes.iter().any(|n| n.contains("reconciles")));

    // A redemption the bank never paid.
    let mut unpaid = statement.clone();
    let credit = unpaid
        .entries
        .iter()
        .position(|e| matches!(e, vc_replay::BankEntry::Credit { .. }))
        .expect("a credit");
    let vc_replay::BankEntry::Credit { tx, .. } = unpaid.entries.remove(credit) else {
        unreachable!("a credit")
    };
    let report = audit_with(&records, |o| o.bank_statement = Some(unpaid));
    let v = violation(&report);
    assert_eq!((v.rule, v.tx), (Rule::BankEntryMissing, Some(tx)));

    // A debit the log never settled (coins the issuer would owe nobody).
    let mut extra = statement.clone();
    extra.entries.push(vc_replay::BankEntry::Debit {
        purchase: ledger::PurchaseId::from_bytes([0xee; 16]),
        amount: ledger::Amount::from_minor(1),
    });
    let report = audit_with(&records, |o| o.bank_statement = Some(extra));
    assert_eq!(violation(&report).rule, Rule::BankEntryUnexplained);

    // The statement survives its file.
    let parsed = vc_replay::BankStatement::parse(&statement.to_text()).expect("parses");
    assert_eq!(parsed, statement);
}

#[test]
fn a_damaged_page_fails_redbs_integrity_check_before_any_record_is_trusted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log.redb");
    {
        let store = ledger::RedbStore::open(&path).expect("open");
        write_log(&store, &genuine(1).sim.batches, issuer_key(), 5);
    }
    let audit = |verify_integrity: bool| {
        let mut opts = AuditOptions::new(&path);
        opts.checkpoint_verifier = Some(issuer_verifier());
        opts.verify_integrity = verify_integrity;
        vc_replay::run_audit(opts).expect("the audit runs")
    };
    assert_eq!(audit(true).outcome, Outcome::Holds);
    // A byte of record 10's stored hash, flipped on disk (not through redb).
    let records = {
        let store =
            ledger::RedbStore::open_read_only(&path, ledger::Sharing::default()).expect("open");
        raw_records(&store)
    };
    let mut bytes = std::fs::read(&path).expect("read the file");
    let needle = records[9].hash.0;
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the hash is in the file");
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).expect("write the file");
    let checked = audit(true);
    let v = violation(&checked);
    assert_eq!((v.rule, v.seq), (Rule::LogUnreadable, Seq(1)), "{v}");
    assert!(v.detail.contains("integrity"), "{v}");
    // Without the check, the chain catches the same byte at its record.
    let unchecked = audit(false);
    assert_ne!(unchecked.outcome, Outcome::Holds);
}

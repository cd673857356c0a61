//! The tampered-log corpus: a genuine log, built with ledger's store and
//! checkpoints signed by a real RSA key, passes; every forgery of it is
//! caught with the right rule named, at the right record.

use crate::util;

use ledger::{Amount, Event, MemoryStore, RawRecord, SpendCause};
use util::*;
use vc_replay::{
    AuditOptions, AuditReport, EXIT_ERROR, EXIT_HOLDS, EXIT_VIOLATION, Outcome, Rule, Violation,
    audit_store,
};

fn audit(store: &impl ledger::RawEventStore, with_key: bool) -> AuditReport {
    let mut opts = AuditOptions::new("corpus");
    if with_key {
        opts.checkpoint_verifier = Some(issuer_verifier());
    }
    audit_store(store, opts).expect("the audit runs")
}

fn write(batches: &[ledger::Batch]) -> Vec<RawRecord> {
    let store = MemoryStore::new();
    write_log(&store, batches, issuer_key(), 5);
    raw_records(&store)
}

fn violation(report: &AuditReport) -> &Violation {
    match &report.outcome {
        Outcome::Violation(v) => v,
        other => panic!("expected a violation, got {other:?}\n{}", report.to_text()),
    }
}

fn mid_log_index(records: &[RawRecord]) -> usize {
    records.len() / 2
}

#[test]
fn the_genuine_log_passes_with_every_signature_verified() {
    let g = genuine(4);
    let records = write(&g.sim.batches);
    let n_checkpoints = records
        .iter()
        .filter(|r| matches!(Event::decode(&r.event_bytes), Ok(Event::Checkpoint(_))))
        .count() as u64;
    let report = audit(&MemoryStore::from_raw_records(records.clone()), true);
    assert_eq!(report.outcome, Outcome::Holds, "{}", report.to_text());
    assert_eq!(report.exit_code(), EXIT_HOLDS);
    assert_eq!(report.audited_through.0, records.len() as u64);
    assert!(n_checkpoints >= 10);
    assert_eq!(report.stats.checkpoint_signatures_verified, n_checkpoints);
    let held: u64 = g.sim.wallet().iter().map(|c| c.value.minor_units()).sum();
    assert_eq!(report.totals.outstanding, i128::from(held));
    assert_eq!(report.unspent_coins, g.sim.wallet().len() as u64);
    for kind in [
        "coins_issued",
        "coins_spent",
        "coins_revoked",
        "purchase_settled",
        "purchase_rejected",
        "redeemed",
        "aggregated",
        "aggregate_withdrawn",
        "card_loaded",
        "card_unloaded",
        "cleared",
        "spent_coins_erased",
        "checkpoint",
    ] {
        assert!(
            report.stats.events_by_kind.contains_key(kind),
            "no {kind} in the genuine log"
        );
    }
}

#[test]
fn a_flipped_byte_breaks_the_chain_at_that_record() {
    let mut records = write(&genuine(4).sim.batches);
    let k = mid_log_index(&records);
    let last = records[k].event_bytes.len() - 1;
    records[k].event_bytes[last] ^= 0x01;
    let report = audit(&MemoryStore::from_raw_records(records.clone()), true);
    let v = violation(&report);
    assert_eq!(v.rule, Rule::ChainBroken);
    assert_eq!(v.seq, records[k].seq);
    assert_eq!(report.exit_code(), EXIT_VIOLATION);
}

#[test]
fn a_deleted_record_leaves_a_sequence_gap() {
    let mut records = write(&genuine(4).sim.batches);
    let k = mid_log_index(&records);
    let missing = records.remove(k).seq;
    let report = audit(&MemoryStore::from_raw_records(records), true);
    let v = violation(&report);
    assert_eq!(v.rule, Rule::SequenceGap);
    assert_eq!(v.seq, missing);
}

#[test]
fn two_swapped_records_break_the_chain() {
    let mut records = write(&genuine(4).sim.batches);
    let k = mid_log_index(&records);
    let (first_seq, second_seq) = (records[k].seq, records[k + 1].seq);
    records.swap(k, k + 1);
    // Stored under their old keys: only the values moved.
    records[k].seq = first_seq;
    records[k + 1].seq = second_seq;
    let report = audit(&MemoryStore::from_raw_records(records), true);
    let v = violation(&report);
    assert_eq!(v.rule, Rule::ChainBroken);
    assert_eq!(v.seq, first_seq);
}

#[test]
fn coins_issued_without_settled_money_are_caught_even_in_a_signed_log() {
    let mut g = genuine(4);
    // The issuer itself mints for a purchase the bank never settled, and
    // signs its checkpoints as usual.
    let batch = &mut g.sim.batches[g.settlement];
    batch
        .events
        .retain(|e| !matches!(e, Event::PurchaseSettled { .. }));
    let tx = batch.tx;
    let records = write(&g.sim.batches);
    let at = first_record_of_tx(&records, tx);
    let report = audit(&MemoryStore::from_raw_records(records.clone()), true);
    let v = violation(&report);
    assert_eq!(v.rule, Rule::CoinsWithoutMoney);
    assert_eq!(v.tx, Some(tx));
    assert_eq!(v.seq, records[at].seq);
    assert_eq!(v.amounts.map(|a| a.found_minor), Some(1225));
}

/// Appends a redemption of a coin the genuine log already spent; returns
/// its transaction and the coin.
fn redeem_a_spent_coin_again(g: &mut Genuine) -> (ledger::TxId, ledger::CoinBody) {
    let already_spent = g.sim.spent()[0];
    let tx_index = g.sim.push(vec![
        Event::CoinsSpent {
            coins: vec![already_spent],
            cause: SpendCause::Redeem,
        },
        Event::Redeemed {
            amount: already_spent.value,
            bank_account: ledger::SealedBankAccount::from_sealed_bytes(vec![1]).expect("short"),
        },
    ]);
    (g.sim.batches[tx_index].tx, already_spent)
}

#[test]
fn a_coin_spent_twice_is_a_double_spend() {
    let mut g = genuine(4);
    let (tx, already_spent) = redeem_a_spent_coin_again(&mut g);
    let records = write(&g.sim.batches);
    let report = audit(&MemoryStore::from_raw_records(records.clone()), true);
    let v = violation(&report);
    assert_eq!(v.rule, Rule::DoubleSpend);
    assert_eq!(v.tx, Some(tx));
    assert_eq!(v.seq, records[first_record_of_tx(&records, tx)].seq);
    assert_eq!(
        v.amounts.map(|a| a.found_minor),
        Some(i128::from(already_spent.value.minor_units()))
    );
}

/// Changes the card unload of the genuine log from 3.00 to 7.00 (and its
/// coin with it, so everything balances), recomputes the chain, and, when
/// `rewrite_checkpoints`, also the hashes the later checkpoints vouch for:
/// everything a forger without the issuer's key can do.
fn forge_unload_amount(rewrite_checkpoints: bool) -> (Vec<RawRecord>, usize) {
    let g = genuine(4);
    let tx = g.sim.batches[g.unload].tx;
    let mut records = write(&g.sim.batches);
    let at = first_record_of_tx(&records, tx);
    for record in &mut records[at..at + 2] {
        edit_event(record, |event| match event {
            Event::CardUnloaded { amount, .. } => *amount = Amount::from_minor(700),
            Event::CoinsIssued { coins, .. } => coins[0].value = Amount::from_minor(700),
            _ => {}
        });
    }
    for i in at..records.len() {
        if rewrite_checkpoints {
            let new_hashes: Vec<(ledger::Seq, ledger::Hash32)> =
                records[..i].iter().map(|r| (r.seq, r.hash)).collect();
            edit_event(&mut records[i], |event| {
                if let Event::Checkpoint(cp) = event
                    && let Some((_, hash)) = new_hashes.iter().find(|(s, _)| *s == cp.seq)
                {
                    cp.hash = *hash;
                }
            });
        }
        rechain(&mut records, i);
    }
    let first_checkpoint_after = (at..records.len())
        .find(|&i| {
            matches!(
                Event::decode(&records[i].event_bytes),
                Ok(Event::Checkpoint(_))
            )
        })
        .expect("a checkpoint follows the forged record");
    (records, first_checkpoint_after)
}

#[test]
fn an_amount_changed_with_the_chain_recomputed_is_caught_by_the_checkpoint_signature() {
    let (records, checkpoint) = forge_unload_amount(true);
    let report = audit(&MemoryStore::from_raw_records(records.clone()), true);
    let v = violation(&report);
    assert_eq!(v.rule, Rule::CheckpointSignatureInvalid);
    assert_eq!(v.seq, records[checkpoint].seq);
    // Only the signature catches it: every other rule holds for this forgery.
    let unsigned = audit(&MemoryStore::from_raw_records(records), false);
    assert_eq!(unsigned.outcome, Outcome::Holds, "{}", unsigned.to_text());
}

#[test]
fn an_amount_changed_under_unchanged_checkpoints_mismatches_the_checkpoint_hash() {
    let (records, checkpoint) = forge_unload_amount(false);
    let report = audit(&MemoryStore::from_raw_records(records.clone()), false);
    let v = violation(&report);
    assert_eq!(v.rule, Rule::CheckpointMismatch);
    assert_eq!(v.seq, records[checkpoint].seq);
}

#[test]
fn a_truncated_tail_is_reported_as_truncation_not_fraud() {
    let mut records = write(&genuine(4).sim.batches);
    let last_multi = records
        .iter()
        .rposition(|r| r.batch_len >= 2 && r.batch_index == 0)
        .expect("a batch of two records or more");
    records.truncate(last_multi + 1);
    // A crash leaves the records after the last checkpoint unsigned: the
    // auditor of a crashed issuer accepts that tail, and then says the
    // log is truncated; without it, the unsigned records fail first.
    let strict = audit(&MemoryStore::from_raw_records(records.clone()), true);
    assert_eq!(violation(&strict).rule, Rule::UnsignedRecords);
    let mut opts = AuditOptions::new("corpus");
    opts.checkpoint_verifier = Some(issuer_verifier());
    opts.allow_unsigned_tail = u64::MAX;
    let report =
        audit_store(&MemoryStore::from_raw_records(records.clone()), opts).expect("the audit runs");
    match report.outcome {
        Outcome::Truncated {
            batch_first_seq,
            records_present,
            batch_len,
        } => {
            assert_eq!(batch_first_seq, records[last_multi].seq);
            assert_eq!(records_present, 1);
            assert!(batch_len >= 2);
        }
        ref other => panic!("expected truncation, got {other:?}"),
    }
    assert_eq!(report.exit_code(), EXIT_ERROR);
    assert_eq!(report.audited_through.0, records[last_multi].seq.0 - 1);
    assert!(report.headline().contains("not fraud"));
}

#[test]
fn a_checkpoint_signed_by_another_key_is_refused() {
    let g = genuine(1);
    let store = MemoryStore::new();
    let stranger = protocol::crypto::SecretKey::generate(2048).expect("keygen");
    write_log(&store, &g.sim.batches, &stranger, 4);
    let report = audit(&store, true);
    assert_eq!(violation(&report).rule, Rule::CheckpointSignatureInvalid);
}

/// The same tampering done to the redb file itself, with redb's own API, as
/// someone with the file would: a record's stored bytes changed in place.
#[test]
fn a_record_altered_in_the_redb_file_is_caught_at_that_record() {
    use redb::ReadableTable as _;
    const RECORDS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("vc_log_records");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log.redb");
    let g = genuine(2);
    {
        let store = ledger::RedbStore::open(&path).expect("open");
        write_log(&store, &g.sim.batches, issuer_key(), 5);
    }
    let alter = |seq: u64, change: &dyn Fn(&mut Vec<u8>)| {
        let db = redb::Database::open(&path).expect("open with redb");
        let txn = db.begin_write().expect("write");
        {
            let mut table = txn.open_table(RECORDS).expect("records table");
            let mut value = table
                .get(seq)
                .expect("get")
                .expect("record")
                .value()
                .to_vec();
            change(&mut value);
            table.insert(seq, value.as_slice()).expect("insert");
        }
        txn.commit().expect("commit");
    };
    let run = || {
        let mut opts = AuditOptions::new(&path);
        opts.checkpoint_verifier = Some(issuer_verifier());
        vc_replay::run_audit(opts).expect("audit runs")
    };
    // A flipped bit in the event bytes (after the 85-byte header).
    alter(30, &|v| v[90] ^= 0x04);
    let v = violation(&run()).clone();
    assert_eq!((v.rule, v.seq.0), (Rule::ChainBroken, 30));
    // A header the reader cannot even parse, earlier in the log: the records
    // before it are still audited, and it is named.
    alter(12, &|v| v[0] = 9);
    let v = violation(&run()).clone();
    assert_eq!((v.rule, v.seq.0), (Rule::ChainBroken, 12));
}

#[test]
fn the_earliest_violation_wins_across_the_two_stages() {
    // A double spend (found by the replay stage) before a flipped byte
    // (found by the chain stage, which runs ahead on the reading thread).
    let mut g = genuine(4);
    let already_spent = g.sim.spent()[0];
    let tx_index = g.sim.push(vec![
        Event::CoinsSpent {
            coins: vec![already_spent],
            cause: SpendCause::Redeem,
        },
        Event::Redeemed {
            amount: already_spent.value,
            bank_account: ledger::SealedBankAccount::from_sealed_bytes(vec![1]).expect("short"),
        },
    ]);
    g.sim.pay_redeem(1);
    let tx = g.sim.batches[tx_index].tx;
    let mut records = write(&g.sim.batches);
    let last = records.len() - 1;
    records[last].event_bytes[1] ^= 0x40;
    let mut opts = AuditOptions::new("both");
    opts.read_chunk_records = 4096;
    let report = audit_store(&MemoryStore::from_raw_records(records.clone()), opts).expect("audit");
    let v = violation(&report);
    assert_eq!(v.rule, Rule::DoubleSpend);
    assert_eq!(v.tx, Some(tx));

    // The single-threaded state machine agrees.
    let mut auditor = vc_replay::Auditor::new(None);
    let first_error = records.iter().find_map(|r| auditor.feed(r).err());
    assert_eq!(
        first_error.as_ref().map(|v| v.rule),
        Some(Rule::DoubleSpend)
    );
    assert!(auditor.snapshot().is_none());
}

#[test]
fn the_single_threaded_auditor_and_run_audit_agree_on_the_genuine_log() {
    let records = write(&genuine(3).sim.batches);
    let mut auditor = vc_replay::Auditor::new(Some(issuer_verifier()));
    for record in &records {
        auditor.feed(record).expect("genuine record");
    }
    assert_eq!(auditor.verdict(), vc_replay::Verdict::Holds);
    let report = audit(&MemoryStore::from_raw_records(records), true);
    assert_eq!(auditor.state().totals, report.totals);
    assert_eq!(auditor.stats(), &report.stats);
}

#[test]
fn an_event_of_an_unknown_version_makes_the_audit_incomplete_not_failed() {
    let mut records = write(&genuine(1).sim.batches);
    let k = mid_log_index(&records);
    // A newer issuer wrote this record (chain and all): this auditor cannot judge it.
    records[k].event_bytes[0] = ledger::event::EVENT_VERSION + 1;
    rechain(&mut records, k);
    let report = audit(&MemoryStore::from_raw_records(records.clone()), false);
    let v = violation(&report);
    assert_eq!(v.rule, Rule::UnknownEventVersion);
    assert_eq!(v.seq, records[k].seq);
    assert_eq!(report.exit_code(), EXIT_ERROR);
    assert!(report.headline().starts_with("AUDIT INCOMPLETE"));
}

/// Re-dates every record of transaction `tx` to `at` and recomputes the
/// chain from there on, as a forger with the log file would.
fn redate(records: &mut [RawRecord], tx: ledger::TxId, at: ledger::Timestamp) -> usize {
    let first = first_record_of_tx(records, tx);
    for r in records[first..].iter_mut().take_while(|r| r.tx == tx) {
        r.at = at;
    }
    rechain(records, first);
    first
}

#[test]
fn a_coin_spent_after_its_expiry_is_caught_by_the_expiry_rule() {
    // A payment in the middle of the log, re-dated to a second after its
    // coins expired and the chain recomputed: the expiry rule names it,
    // with or without the issuer's key (not only a checkpoint signature).
    let mut sim = History::with_a_merchant();
    sim.purchase(&[500, 250]);
    let payment = sim.pay_aggregate(1);
    for _ in 0..3 {
        sim.purchase(&[100]);
        sim.redeem(1);
    }
    let tx = sim.batches[payment].tx;
    let expiry = match &sim.batches[payment].events[0] {
        Event::CoinsSpent { coins, .. } => coins[0].expiry,
        other => panic!("expected the payment's spend, got {other:?}"),
    };
    let mut records = write(&sim.batches);
    assert_eq!(
        audit(&MemoryStore::from_raw_records(records.clone()), true).outcome,
        Outcome::Holds
    );
    let at = redate(&mut records, tx, expiry.plus_secs(1));
    for with_key in [false, true] {
        let report = audit(&MemoryStore::from_raw_records(records.clone()), with_key);
        let v = violation(&report);
        assert_eq!(v.rule, Rule::ExpiredSpend, "{}", report.to_text());
        assert_eq!(v.tx, Some(tx));
        assert_eq!(v.seq, records[at].seq);
        assert_eq!(report.exit_code(), EXIT_VIOLATION);
    }
}

#[test]
fn a_transaction_moved_back_in_time_breaks_the_log_time_rule() {
    let g = genuine(4);
    let mut records = write(&g.sim.batches);
    let k = mid_log_index(&records);
    let tx = records[k].tx;
    // An hour back: far beyond what concurrent validation can explain.
    let earlier = ledger::Timestamp(records[k].at.0 - 3_600);
    let at = redate(&mut records, tx, earlier);
    let report = audit(&MemoryStore::from_raw_records(records.clone()), false);
    let v = violation(&report);
    assert_eq!(v.rule, Rule::LogTimeBackwards, "{}", report.to_text());
    assert_eq!(v.seq, records[at].seq);
    assert_eq!(v.tx, Some(tx));
}

#[test]
fn a_transaction_a_moment_out_of_time_order_is_tolerated() {
    // Two shards validated concurrently: the batch validated first reached
    // the log second, within the skew the log-time rule allows.
    let mut sim = History::with_a_merchant();
    sim.purchase(&[500, 250]);
    let late = sim.pay_redeem(1);
    let previous_at = sim.batches[late - 1].at;
    sim.batches[late].at =
        ledger::Timestamp(previous_at.0 - vc_replay::constants::LOG_TIME_SKEW_MAX_SECS);
    sim.purchase(&[100]);
    let report = audit(&MemoryStore::from_raw_records(write(&sim.batches)), true);
    assert_eq!(report.outcome, Outcome::Holds, "{}", report.to_text());
}

#[test]
fn the_genuine_log_is_judged_at_its_own_times() {
    // The genuine log refreshes epoch 1's coins after they expired, within
    // the grace, and erases them after the grace: the time rules ran on
    // every transaction and all held. The report shows the log's time span.
    let g = genuine(2);
    let report = audit(&MemoryStore::from_raw_records(write(&g.sim.batches)), true);
    assert_eq!(report.outcome, Outcome::Holds, "{}", report.to_text());
    assert_eq!(report.stats.first_at, Some(HISTORY_START));
    let latest = g.sim.batches.iter().map(|b| b.at).max();
    assert_eq!(report.stats.latest_at, latest);
    assert!(
        report.to_text().contains("log time: 2023-11-"),
        "{}",
        report.to_text()
    );
    assert!(!report.to_text().contains("carry no time"));
}

#[test]
fn a_log_dated_in_the_future_of_the_auditors_clock_is_reported() {
    use vc_replay::constants::LOG_TIME_FUTURE_SKEW_MAX_SECS as SKEW;
    let g = genuine(2);
    let records = write(&g.sim.batches);
    let latest = records.iter().map(|r| r.at).max().expect("a log");
    let audit_at = |records: &[RawRecord], now: Option<u64>| {
        let mut opts = AuditOptions::new("corpus");
        opts.checkpoint_verifier = Some(issuer_verifier());
        opts.now = now.map(ledger::Timestamp);
        audit_store(&MemoryStore::from_raw_records(records.to_vec()), opts).expect("the audit runs")
    };
    // The auditor's clock a little behind the issuer's: tolerated.
    let report = audit_at(&records, Some(latest.0 - SKEW));
    assert_eq!(report.outcome, Outcome::Holds, "{}", report.to_text());
    // A second further behind: the first transaction dated past it is named.
    let report = audit_at(&records, Some(latest.0 - SKEW - 1));
    let v = violation(&report);
    assert_eq!(v.rule, Rule::LogTimeInFuture, "{}", report.to_text());
    let first_late = records.iter().find(|r| r.at == latest).expect("latest");
    assert_eq!((v.seq, v.tx), (first_late.seq, Some(first_late.tx)));
    assert_eq!(report.exit_code(), EXIT_VIOLATION);

    // A forger dates the last transaction a day after today, chain
    // recomputed: the auditor's wall clock (the default) catches it.
    let mut forged = records.clone();
    let tx = forged.last().expect("a log").tx;
    let tomorrow = ledger::Timestamp::now().plus_secs(86_400);
    let at = redate(&mut forged, tx, tomorrow);
    let report = audit_at(&forged, None);
    let v = violation(&report);
    assert_eq!(v.rule, Rule::LogTimeInFuture, "{}", report.to_text());
    assert_eq!(v.seq, forged[at].seq);
}

/// Audits `records` through `run`'s two threads, reading `chunk` records at
/// a time, with the events decoded on the reading thread (`reader`) or on
/// the replay's.
fn audit_in_chunks(records: &[RawRecord], chunk: usize, reader: bool) -> AuditReport {
    let mut opts = AuditOptions::new("chunks");
    opts.checkpoint_verifier = Some(issuer_verifier());
    opts.read_chunk_records = chunk;
    opts.decode_on_reader_when_queued = if reader { 0 } else { usize::MAX };
    // A log cut by a crash has an unsigned tail: accepted here, where the
    // truncation itself is the subject.
    opts.allow_unsigned_tail = u64::MAX;
    audit_store(&MemoryStore::from_raw_records(records.to_vec()), opts).expect("the audit runs")
}

/// Every combination the two-thread audit can run in.
fn chunk_plans(sizes: &[usize]) -> Vec<(usize, bool)> {
    sizes
        .iter()
        .flat_map(|&chunk| [(chunk, true), (chunk, false)])
        .collect()
}

#[test]
fn transactions_cut_by_chunk_ends_are_judged_whole_at_every_chunk_size() {
    // The reading thread hands the replay chunks of records (small ones,
    // so that they are still in cache when the replay reads them), their
    // events decoded by either thread: a transaction cut by a chunk's end
    // is finished in the next, and every chunk size, with the events
    // decoded on either thread, must give the single-threaded result.
    let records = write(&genuine(3).sim.batches);
    let mut auditor = vc_replay::Auditor::new(Some(issuer_verifier()));
    for record in &records {
        auditor.feed(record).expect("genuine record");
    }
    for (chunk, reader) in chunk_plans(&[1, 2, 3, 5, 7, 64, 4096]) {
        let report = audit_in_chunks(&records, chunk, reader);
        assert_eq!(report.outcome, Outcome::Holds, "chunk {chunk} {reader}");
        assert_eq!(report.totals, auditor.state().totals, "chunk {chunk}");
        assert_eq!(&report.stats, auditor.stats(), "chunk {chunk}");
        assert_eq!(report.audited_through, auditor.boundary().last_seq);
        assert_eq!(report.records_read_this_run, records.len() as u64);
    }

    // A tail cut inside a batch of three: truncated, with the records
    // present counted across chunks (the batch is never judged).
    let mut g = genuine(3);
    let closed = Event::EpochClosed {
        epoch: ledger::KeyEpoch(99),
    };
    g.sim.push(vec![closed.clone(), closed.clone(), closed]);
    let records = write(&g.sim.batches);
    let last_long = records
        .iter()
        .rposition(|r| r.batch_len == 3 && r.batch_index == 0)
        .expect("the batch of three records");
    let cut = &records[..last_long + 2];
    for (chunk, reader) in chunk_plans(&[1, 2, 3, 4096]) {
        match audit_in_chunks(cut, chunk, reader).outcome {
            Outcome::Truncated {
                batch_first_seq,
                records_present,
                ..
            } => {
                assert_eq!(batch_first_seq, records[last_long].seq, "chunk {chunk}");
                assert_eq!(records_present, 2, "chunk {chunk}");
            }
            other => panic!("chunk {chunk} {reader}: expected truncation, got {other:?}"),
        }
    }
}

#[test]
fn a_double_spend_in_a_transaction_cut_by_a_chunk_end_is_named_at_every_chunk_size() {
    let mut g = genuine(3);
    let (tx, _) = redeem_a_spent_coin_again(&mut g);
    let records = write(&g.sim.batches);
    let first = first_record_of_tx(&records, tx);
    for (chunk, reader) in chunk_plans(&[1, 2, 3, first + 1, 4096]) {
        let report = audit_in_chunks(&records, chunk, reader);
        let v = violation(&report);
        assert_eq!((v.rule, v.seq), (Rule::DoubleSpend, records[first].seq));
        assert_eq!(v.tx, Some(tx), "chunk {chunk}");
        assert_eq!(
            report.records_read_this_run,
            first as u64 + 2,
            "chunk {chunk}"
        );
    }
}

#[test]
fn an_undecodable_event_is_named_at_its_record_whichever_thread_decodes() {
    let mut records = write(&genuine(2).sim.batches);
    let k = mid_log_index(&records);
    records[k].event_bytes[0] = ledger::event::EVENT_VERSION + 1;
    rechain(&mut records, k);
    for (chunk, reader) in chunk_plans(&[1, 3, k, k + 1, 4096]) {
        let report = audit_in_chunks(&records, chunk, reader);
        let v = violation(&report);
        assert_eq!(
            (v.rule, v.seq),
            (Rule::UnknownEventVersion, records[k].seq),
            "chunk {chunk} {reader}"
        );
        assert_eq!(report.records_read_this_run, k as u64 + 1);
    }
}

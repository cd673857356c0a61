//! The audit of a real redb log file, end to end through `run_audit`, and
//! its three renderings: text, JSON and HTML.

use crate::util;

use ledger::RedbStore;
use util::*;
use vc_replay::{AuditError, AuditOptions, EXIT_VIOLATION, Outcome, Progress, Rule, run_audit};

#[test]
fn a_redb_log_is_audited_and_reported_three_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("issuer-log.redb");
    let g = genuine(5);
    {
        let store = RedbStore::open(&path).expect("open log");
        write_log(&store, &g.sim.batches, issuer_key(), 6);
    }
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Progress>::new()));
    let sink = seen.clone();
    let mut opts = AuditOptions::new(&path);
    opts.checkpoint_verifier = Some(issuer_verifier());
    opts.read_chunk_records = 16;
    opts.progress = Some(Box::new(move |p| {
        if let Ok(mut v) = sink.lock() {
            v.push(p);
        }
    }));
    let report = run_audit(opts).expect("audit");
    assert_eq!(report.outcome, Outcome::Holds, "{}", report.to_text());
    assert_eq!(report.exit_code(), 0);
    if std::env::var_os("VC_AUDIT_SHOW").is_some() {
        eprintln!("{}", report.to_text());
        std::fs::write("/tmp/vc-audit.html", report.to_html()).expect("write html");
    }

    let progress = seen.lock().expect("progress").clone();
    assert!(progress.len() >= 2, "progress reported per chunk");
    assert!(
        progress
            .windows(2)
            .all(|w| w[0].records_read < w[1].records_read)
    );
    assert_eq!(progress.last().map(|p| p.seq), Some(report.audited_through));

    let text = report.to_text();
    assert!(text.starts_with("AUDIT PASSED"));
    assert!(text.contains("outstanding e-money"));
    assert!(text.contains("largest transactions"));
    assert!(text.contains("coins_spent"));

    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("valid JSON");
    assert_eq!(json["outcome"]["status"], "holds");
    assert_eq!(json["audited_through"], report.audited_through.0);
    assert_eq!(
        json["stats"]["events_by_kind"]["checkpoint"],
        report.stats.events_by_kind["checkpoint"]
    );
    assert_eq!(
        json["totals"]["outstanding"].as_i64().map(i128::from),
        Some(report.totals.outstanding)
    );

    let html = report.to_html();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg") && html.contains("<polyline"));
    assert!(!html.contains("<script"));
    // One bar per calendar day of log time; the genuine log spans days.
    assert_eq!(
        html.matches("<rect").count(),
        report.stats.daily_volume_minor.len()
    );
    assert!(report.stats.daily_volume_minor.len() > 1);
    assert!(html.contains("log time: 2023-11-"), "{html}");
}

#[test]
fn a_missing_log_is_an_error_not_a_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let result = run_audit(AuditOptions::new(dir.path().join("absent.redb")));
    assert!(matches!(result, Err(AuditError::OpenLog { .. })));
}

#[test]
fn a_violation_report_names_seq_transaction_rule_and_amounts() {
    let mut g = genuine(1);
    let batch = &mut g.sim.batches[g.settlement];
    batch
        .events
        .retain(|e| !matches!(e, ledger::Event::PurchaseSettled { .. }));
    let store = ledger::MemoryStore::new();
    write_log(&store, &g.sim.batches, issuer_key(), 4);
    let report = vc_replay::audit_store(&store, AuditOptions::new("mem")).expect("audit");
    let v = report.violation().expect("violation").clone();
    let text = report.to_text();
    assert!(text.starts_with("AUDIT FAILED"));
    assert!(text.contains(&format!("record {}", v.seq)));
    assert!(text.contains("coins_without_money"));
    assert!(text.contains(&v.tx.expect("tx").to_string()));
    assert!(text.contains("found 12.25"));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("json");
    assert_eq!(json["outcome"]["status"], "violation");
    assert_eq!(json["outcome"]["rule"], v.rule.name());
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn a_compromised_mint_key_leads_the_report() {
    let mut g = genuine(1);
    // A coin the mint never issued, worth more than all of epoch 1 ever
    // minted, accepted by the issuer: its tag was forged with the epoch's key.
    let mut forged = g.sim.coin(1_000_000);
    forged.epoch = ledger::KeyEpoch(1);
    g.sim.push(vec![
        ledger::Event::CoinsSpent {
            coins: vec![forged],
            cause: ledger::SpendCause::Redeem,
        },
        ledger::Event::Redeemed {
            amount: forged.value,
            bank_account: ledger::SealedBankAccount::from_sealed_bytes(vec![9]).expect("short"),
        },
    ]);
    let store = ledger::MemoryStore::new();
    write_log(&store, &g.sim.batches, issuer_key(), 4);
    let report = vc_replay::audit_store(&store, AuditOptions::new("mem")).expect("audit");
    let v = report.violation().expect("violation");
    assert_eq!(v.rule, vc_replay::Rule::EpochOverspent);
    assert!(
        report
            .to_text()
            .starts_with("EMERGENCY: MINT KEY COMPROMISED")
    );
    assert!(report.to_html().contains("EMERGENCY"));
}

#[test]
fn a_log_without_checkpoints_fails_as_unsigned_and_the_report_states_coverage() {
    let g = genuine(1);
    let store = ledger::MemoryStore::new();
    for batch in &g.sim.batches {
        ledger::EventStore::append(&store, std::slice::from_ref(batch)).expect("append");
    }
    let report = vc_replay::audit_store(&store, AuditOptions::new("mem")).expect("audit");
    let v = report.violation().expect("unsigned");
    assert_eq!((v.rule, v.seq), (Rule::UnsignedRecords, ledger::Seq(1)));
    assert_eq!(report.exit_code(), EXIT_VIOLATION);
    assert!(
        report.to_text().contains("signed through record #0"),
        "{}",
        report.to_text()
    );
    let signed = vc_replay::audit_store(
        &{
            let s = ledger::MemoryStore::new();
            write_log(&s, &g.sim.batches, issuer_key(), 4);
            s
        },
        AuditOptions::new("mem"),
    )
    .expect("audit");
    assert_eq!(signed.outcome, Outcome::Holds, "{}", signed.to_text());
    assert_eq!(signed.unsigned_records, 0);
    // Without the key the coverage counts checkpoints by place and hash
    // only, and the report says so.
    assert!(
        signed
            .notes
            .iter()
            .any(|n| n.contains("signatures prove nothing"))
    );
}

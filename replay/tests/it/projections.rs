//! The issuer's projection files, rebuilt by the projections crate, equal
//! the replay; files built from another history do not.

use crate::util;

use ledger::{Amount, Event, MemoryStore};
use projections::{AccountsModel, CoinStatusModel, ProjectionDb};
use util::*;
use vc_replay::{
    AccountsFile, AuditError, AuditOptions, CoinStatusFile, Outcome, Rule, audit_store,
};

fn with_checks(coin_status: &std::path::Path, accounts: &std::path::Path) -> AuditOptions {
    let mut opts = AuditOptions::new("log");
    opts.projection_checks = vec![
        Box::new(CoinStatusFile(coin_status.to_path_buf())),
        Box::new(AccountsFile(accounts.to_path_buf())),
    ];
    opts
}

#[test]
fn projections_rebuilt_from_the_log_equal_the_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = genuine(3);
    let store = MemoryStore::new();
    write_log(&store, &g.sim.batches, issuer_key(), 5);
    let (cs, acc) = (
        dir.path().join("coin_status.redb"),
        dir.path().join("accounts.redb"),
    );
    drop(ProjectionDb::rebuild(&cs, CoinStatusModel, &store).expect("coin status"));
    drop(ProjectionDb::rebuild(&acc, AccountsModel, &store).expect("accounts"));
    let report = audit_store(&store, with_checks(&cs, &acc)).expect("audit");
    assert_eq!(report.outcome, Outcome::Holds, "{}", report.to_text());
    assert!(!report.notes.iter().any(|n| n.contains("not compared")));
    assert!(
        report
            .notes
            .iter()
            .any(|n| n == "the issuer's projections equal the replay: coin_status, accounts"),
        "{:?}",
        report.notes
    );
}

#[test]
fn a_projection_of_another_history_is_a_mismatch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = genuine(3);
    let store = MemoryStore::new();
    write_log(&store, &g.sim.batches, issuer_key(), 5);
    // The issuer's coin-status file says the unload paid out 7.00, not 3.00.
    let mut other = raw_records(&store);
    let at = first_record_of_tx(&other, g.sim.batches[g.unload].tx);
    for record in &mut other[at..at + 2] {
        edit_event(record, |event| match event {
            Event::CardUnloaded { amount, .. } => *amount = Amount::from_minor(700),
            Event::CoinsIssued { coins, .. } => coins[0].value = Amount::from_minor(700),
            _ => {}
        });
    }
    rechain(&mut other, at);
    let (cs, acc) = (
        dir.path().join("coin_status.redb"),
        dir.path().join("accounts.redb"),
    );
    drop(
        ProjectionDb::rebuild(
            &cs,
            CoinStatusModel,
            &MemoryStore::from_raw_records(other.clone()),
        )
        .expect("coin status"),
    );
    drop(ProjectionDb::rebuild(&acc, AccountsModel, &store).expect("accounts"));
    let report = audit_store(&store, with_checks(&cs, &acc)).expect("audit");
    let v = report.violation().expect("mismatch");
    assert_eq!(v.rule, Rule::ProjectionMismatch);
    assert!(v.detail.contains("coin_status"), "{}", v.detail);

    // Accounts built from the other history: its card float differs.
    let acc2 = dir.path().join("accounts-other.redb");
    let cs2 = dir.path().join("coin_status-genuine.redb");
    drop(ProjectionDb::rebuild(&cs2, CoinStatusModel, &store).expect("coin status"));
    drop(
        ProjectionDb::rebuild(&acc2, AccountsModel, &MemoryStore::from_raw_records(other))
            .expect("accounts"),
    );
    let report = audit_store(&store, with_checks(&cs2, &acc2)).expect("audit");
    let v = report.violation().expect("mismatch");
    assert_eq!(v.rule, Rule::ProjectionMismatch);
    assert!(v.detail.contains("card float"), "{}", v.detail);
}

#[test]
fn a_lagging_projection_is_caught_up_on_a_copy_and_one_ahead_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = genuine(2);
    let store = MemoryStore::new();
    write_log(&store, &g.sim.batches, issuer_key(), 5);
    let records = raw_records(&store);
    let cs = dir.path().join("coin_status.redb");
    let acc = dir.path().join("accounts.redb");
    // The issuer's projections stopped a few records before the end of its
    // log, at a transaction boundary, as a running issuer's do.
    let stop = records.len() - 3;
    assert_eq!(
        records[stop - 1].batch_index + 1,
        records[stop - 1].batch_len
    );
    drop(
        ProjectionDb::rebuild(
            &cs,
            CoinStatusModel,
            &MemoryStore::from_raw_records(records[..stop].to_vec()),
        )
        .expect("cs"),
    );
    drop(
        ProjectionDb::rebuild(
            &acc,
            AccountsModel,
            &MemoryStore::from_raw_records(records[..stop].to_vec()),
        )
        .expect("acc"),
    );
    let report = audit_store(&store, with_checks(&cs, &acc)).expect("audit");
    assert_eq!(report.outcome, Outcome::Holds, "{}", report.to_text());
    // The issuer's files were read, not written.
    let applied = ProjectionDb::open(&cs, CoinStatusModel)
        .expect("open")
        .applied_seq()
        .expect("applied");
    assert_eq!(applied, records[stop - 1].seq);

    // Projections ahead of the log the auditor was given do not match it.
    let short = MemoryStore::from_raw_records(records[..stop].to_vec());
    let cs_full = dir.path().join("coin_status-full.redb");
    drop(ProjectionDb::rebuild(&cs_full, CoinStatusModel, &store).expect("cs"));
    let mut opts = with_checks(&cs_full, &acc);
    // The cut log's newest records await their checkpoint.
    opts.allow_unsigned_tail = u64::MAX;
    let report = audit_store(&short, opts).expect("audit");
    let v = report.violation().expect("ahead");
    assert_eq!(v.rule, Rule::ProjectionMismatch);
    assert!(
        v.detail.contains("beyond the audited record"),
        "{}",
        v.detail
    );

    let missing = dir.path().join("absent.redb");
    let result = audit_store(&store, with_checks(&missing, &acc));
    assert!(matches!(result, Err(AuditError::Projection { .. })));
    assert!(!missing.exists(), "the auditor created no file");
}

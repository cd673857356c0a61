//! The state the issuer rebuilds from its log (key epochs, purchases,
//! aggregates, conservation totals) starts from its snapshot,
//! `log-state.snapshot`, and the log's tail past it: the result equals a
//! replay of the whole log. A snapshot that is missing, damaged, torn by a
//! crash while written, or of another log is not trusted: the state is
//! rebuilt from the whole log, and equals it still.

use crate::util;

use ledger::Role;
use protocol::wire::payment::VOption;
use util::{Harness, Who, spec};
use vc_actors::LOG_STATE_SNAPSHOT_FILE;

/// An issuer with purchases (one pending), an aggregated balance and
/// payments, part of it before the snapshot and part after.
fn busy_issuer_with_a_snapshot_and_a_tail() -> (Harness, [u8; 32]) {
    let h = Harness::new();
    let alice = h.purchaser("alice", 0, 100_000);
    let shop = Who::new("shop", 1);
    h.register(&shop, 0);
    h.enroll(&shop, Role::Merchant);
    let coins = h.buy(&alice, spec(&[(100, 4)]));
    h.pay(&alice, &shop, coins[..2].to_vec(), VOption::Aggregate);
    let covered = h.core().checkpoint_log_state_now().expect("snapshot");
    assert!(covered.0 > 0);
    // The tail: more purchases and payments the snapshot does not hold.
    let more = h.buy(&alice, spec(&[(50, 2)]));
    h.pay(&alice, &shop, coins[2..].to_vec(), VOption::Aggregate);
    h.pay(&alice, &shop, more, VOption::Aggregate);
    let (_pending, _iss1) = h.start_purchase(&alice, spec(&[(10, 1)]), false);
    let live = h.core().log_state_fingerprint().expect("fingerprint");
    (h, live)
}

fn snapshot_path(h: &Harness) -> std::path::PathBuf {
    h.dir.path().join("issuer").join(LOG_STATE_SNAPSHOT_FILE)
}

#[test]
fn a_start_from_the_snapshot_and_its_tail_equals_a_full_replay() {
    let (mut h, live) = busy_issuer_with_a_snapshot_and_a_tail();
    h.restart();
    assert!(
        h.core().log_state_booted_from_snapshot().is_some(),
        "the start read the snapshot"
    );
    assert_eq!(h.core().log_state_fingerprint().expect("fingerprint"), live);

    std::fs::remove_file(snapshot_path(&h)).expect("snapshot removed");
    h.restart();
    assert_eq!(h.core().log_state_booted_from_snapshot(), None);
    assert_eq!(
        h.core().log_state_fingerprint().expect("fingerprint"),
        live,
        "a full replay gives the same state"
    );
    h.assert_conserved();
    let report = h.stop_and_audit();
    assert_eq!(report.exit_code(), 0, "{}", report.to_text());
}

#[test]
fn a_damaged_snapshot_is_rebuilt_from_the_log() {
    let (mut h, live) = busy_issuer_with_a_snapshot_and_a_tail();
    let path = snapshot_path(&h);
    let mut bytes = std::fs::read(&path).expect("snapshot");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, &bytes).expect("damaged");
    h.restart();
    assert_eq!(h.core().log_state_booted_from_snapshot(), None);
    assert_eq!(h.core().log_state_fingerprint().expect("fingerprint"), live);

    // Garbage, and an empty file: the same.
    for garbage in [
        b"not a snapshot at all, not even close".to_vec(),
        Vec::new(),
    ] {
        std::fs::write(&path, &garbage).expect("garbage");
        h.restart();
        assert_eq!(h.core().log_state_booted_from_snapshot(), None);
        assert_eq!(h.core().log_state_fingerprint().expect("fingerprint"), live);
    }
    // A damaged snapshot is replaced by the next checkpoint.
    h.core().checkpoint_log_state_now().expect("rewritten");
    h.restart();
    assert!(h.core().log_state_booted_from_snapshot().is_some());
    assert_eq!(h.core().log_state_fingerprint().expect("fingerprint"), live);
    h.assert_conserved();
}

#[test]
fn a_crash_while_writing_the_snapshot_leaves_a_usable_state() {
    let (mut h, live) = busy_issuer_with_a_snapshot_and_a_tail();
    let path = snapshot_path(&h);
    let complete = std::fs::read(&path).expect("snapshot");
    // The write is a temporary file renamed over the snapshot: a crash
    // before the rename leaves the old snapshot and a stray partial file.
    let stray = path.with_file_name(format!(".{LOG_STATE_SNAPSHOT_FILE}.tmp-crashed"));
    std::fs::write(&stray, &complete[..complete.len() / 3]).expect("stray");
    h.restart();
    assert!(h.core().log_state_booted_from_snapshot().is_some());
    assert_eq!(h.core().log_state_fingerprint().expect("fingerprint"), live);
    // And if a file system kept only part of the renamed file: torn, so
    // rebuilt from the log.
    for cut in [1, complete.len() / 2, complete.len() - 1] {
        std::fs::write(&path, &complete[..cut]).expect("torn");
        h.restart();
        assert_eq!(h.core().log_state_booted_from_snapshot(), None, "cut {cut}");
        assert_eq!(h.core().log_state_fingerprint().expect("fingerprint"), live);
    }
    h.assert_conserved();
}

#[test]
fn a_snapshot_of_another_log_is_not_trusted() {
    let (h, _) = busy_issuer_with_a_snapshot_and_a_tail();
    let (mut other, other_live) = busy_issuer_with_a_snapshot_and_a_tail();
    // Same history shape, different keys and times: a different log.
    std::fs::copy(snapshot_path(&h), snapshot_path(&other)).expect("copied");
    other.restart();
    assert_eq!(other.core().log_state_booted_from_snapshot(), None);
    assert_eq!(
        other.core().log_state_fingerprint().expect("fingerprint"),
        other_live
    );
    other.assert_conserved();
}

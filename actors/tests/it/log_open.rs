//! How the issuer opens `log.redb`: without redb's whole-file integrity
//! check after a clean shutdown (so a start does not grow with the log),
//! with it when `IssuerConfig::verify_log_on_open` asks; either way a
//! damaged file is a typed error at start, never a panic, and the
//! auditor's verified open refuses it.

use crate::util;

use ledger::{RedbStore, Role};
use util::{Harness, Who};
use vc_actors::IssuerCore;

/// Overwrites the file past its header with garbage, as a disk or a hand
/// that is not redb's would: every page but the first few, so the damage
/// reaches pages in use whatever the file's layout (a lone stretch in the
/// middle may land in free space, which no check reads).
fn damage_the_middle(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).expect("log");
    let from = 16 * 1024;
    assert!(bytes.len() > 2 * from, "a log of some size");
    for b in &mut bytes[from..] {
        *b ^= 0xa5;
    }
    std::fs::write(path, bytes).expect("write");
}

fn a_log_of_some_size() -> Harness {
    let h = Harness::new();
    for i in 0..40 {
        let who = Who::new(&format!("p-{i}"), i % 6);
        h.register(&who, 0);
        h.enroll(&who, Role::Merchant);
    }
    h
}

#[test]
fn a_clean_log_opens_without_the_whole_file_check_and_a_verified_open_still_passes() {
    let mut h = a_log_of_some_size();
    let config = h.config();
    assert!(
        !config.verify_log_on_open,
        "the default start trusts a clean log"
    );
    h.restart();
    h.core = None;
    let mut verified = h.config();
    verified.verify_log_on_open = true;
    IssuerCore::open(verified, h.bank().clone()).expect("a sound log passes the check");
}

#[test]
fn a_damaged_log_is_refused_by_a_verified_start_and_by_the_auditor_and_nothing_panics() {
    let mut h = a_log_of_some_size();
    h.core = None;
    let path = h.config().dir.join("log.redb");
    damage_the_middle(&path);

    let mut verified = h.config();
    verified.verify_log_on_open = true;
    assert!(
        IssuerCore::open(verified, h.bank().clone()).is_err(),
        "a verified start refuses a damaged log"
    );
    assert!(
        RedbStore::open_verified(&path).is_err(),
        "the auditor's open refuses a damaged log"
    );
    // The default start trusts a clean file: whatever it makes of the
    // damage, it answers (a typed error or a start), it does not panic.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        IssuerCore::open(h.config(), h.bank().clone()).map(drop)
    }));
    assert!(
        outcome.is_ok(),
        "the default start panicked on a damaged log"
    );
}

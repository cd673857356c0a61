//! A card transfer the binary tells its user to run again never moves value
//! twice. Each transfer is stopped at every step (`--stop-at`, as a crash
//! there would leave it), run again with the transfer id the first run
//! printed, then run once more after it finished: the purse gives up its
//! coins once, the card is loaded or unloaded once, and the purse receives
//! the unload's coins once.
//!
//! Without the check of the journal before reserving coins, the run after
//! the finish reserved fresh coins and wrote them off as spent.

use crate::util;

use std::path::Path;

use util::process::{ok, run, terminate};

const CARD: &str = "00000000000000d1";
const PURSE: [&str; 2] = ["--purse", "alice.purse"];

/// An issuer (stopped again: card transfers then run it in-process), alice's
/// purse holding 4 × 2.50, and a card.
fn stage(dir: &Path) {
    let (issuer, ip) = util::process::serve_new_issuer(dir);
    let url = format!("https://127.0.0.1:{ip}");
    util::process::alice_holding_4_x_2_50(dir, &url);
    terminate(issuer);
    ok(dir, &["card", "--dir", "cards", "issue", "--card", CARD]);
}

fn available(dir: &Path) -> String {
    let balance = ok(dir, &["purse", "balance", PURSE[0], PURSE[1]]);
    balance
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

fn card_balance(dir: &Path) -> String {
    let shown = ok(dir, &["card", "--dir", "cards", "show", "--card", CARD]);
    shown
        .lines()
        .find_map(|l| l.trim().strip_prefix("balance"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
        .to_string()
}

/// The id a run printed before it moved anything.
fn transfer_id(stdout: &str) -> String {
    stdout
        .split_whitespace()
        .skip_while(|w| *w != "--transfer")
        .nth(1)
        .map(|w| w.trim_end_matches(')').to_string())
        .unwrap_or_else(|| panic!("no transfer id printed: {stdout}"))
}

/// Runs `args` stopped at `stop`, then again with its id until it
/// finishes, then once more; returns the stdout of the two reruns.
fn stopped_then_rerun(dir: &Path, args: &[&str], stop: &str) -> (String, String) {
    let mut first = vec!["card", "--dir", "cards", "--stop-at", stop];
    first.extend_from_slice(args);
    let out = run(dir, &first);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{stop}: did not stop: {stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let id = transfer_id(&stdout);
    assert!(
        stderr.contains(&format!("--transfer {id}")),
        "{stop}: the failure does not say how to retry: {stderr}"
    );
    let mut again = vec!["card", "--dir", "cards"];
    again.extend_from_slice(args);
    again.extend_from_slice(&["--transfer", &id]);
    (ok(dir, &again), ok(dir, &again))
}

fn minor(amount: &str) -> u64 {
    let (units, cents) = amount.split_once('.').unwrap_or((amount, "0"));
    units.parse::<u64>().unwrap_or(u64::MAX) * 100 + cents.parse::<u64>().unwrap_or(u64::MAX)
}

#[test]
fn from_purse_stopped_at_any_step_and_run_again_spends_the_coins_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    stage(dir);
    let args = [
        "from-purse",
        "--card",
        CARD,
        "2.50",
        "--issuer-dir",
        "iss",
        PURSE[0],
        PURSE[1],
    ];
    let steps = [
        "after-reserve",
        "after-journal",
        "after-guarantee",
        "before-purse",
    ];
    let mut loaded = 0;
    for stop in steps {
        let (finished, last) = stopped_then_rerun(dir, &args, stop);
        // Stopped early, the transfer is undone; stopped late, it completes.
        if finished.contains("loaded onto") {
            loaded += 250;
        } else {
            assert!(finished.contains("did not happen"), "{stop}: {finished}");
        }
        assert!(last.contains("already finished"), "{stop}: {last}");
        assert_eq!(minor(&card_balance(dir)), loaded, "{stop}");
        assert_eq!(
            minor(&available(dir)),
            1_000 - loaded,
            "{stop}: the purse gave up other than what the card received"
        );
    }
    assert!(loaded >= 250, "no stopped transfer completed");
}

#[test]
fn to_purse_stopped_at_any_step_and_run_again_unloads_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    stage(dir);
    for _ in 0..4 {
        ok(
            dir,
            &[
                "card",
                "--dir",
                "cards",
                "from-purse",
                "--card",
                CARD,
                "2.50",
                "--issuer-dir",
                "iss",
                PURSE[0],
                PURSE[1],
            ],
        );
    }
    assert_eq!(card_balance(dir), "10.00");
    let args = [
        "to-purse",
        "--card",
        CARD,
        "1.00",
        "--issuer-dir",
        "iss",
        PURSE[0],
        PURSE[1],
    ];
    let steps = [
        "after-journal",
        "after-guarantee",
        "before-coins",
        "after-coins",
        "before-purse",
    ];
    let mut unloaded = 0;
    for stop in steps {
        let (finished, last) = stopped_then_rerun(dir, &args, stop);
        if finished.contains("unloaded from") {
            unloaded += 100;
        } else {
            assert!(
                finished.contains("unload was refused"),
                "{stop}: {finished}"
            );
        }
        // The run after the finish gives the purse nothing more.
        assert!(
            last.contains(": 0 coins into") || last.contains("refused"),
            "{stop}: {last}"
        );
        assert_eq!(minor(&card_balance(dir)), 1_000 - unloaded, "{stop}");
        assert_eq!(
            minor(&available(dir)),
            unloaded,
            "{stop}: the purse did not receive the unload exactly once"
        );
    }
    assert!(unloaded >= 100, "no stopped transfer completed");
}

#[test]
fn card_to_card_stopped_at_any_step_and_run_again_moves_the_value_once() {
    const PAYEE: &str = "00000000000000d2";
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    stage(dir);
    ok(dir, &["card", "--dir", "cards", "issue", "--card", PAYEE]);
    for _ in 0..4 {
        ok(
            dir,
            &[
                "card",
                "--dir",
                "cards",
                "from-purse",
                "--card",
                CARD,
                "2.50",
                "--issuer-dir",
                "iss",
                PURSE[0],
                PURSE[1],
            ],
        );
    }
    let args = [
        "transfer",
        "--from",
        CARD,
        "--to",
        PAYEE,
        "1.00",
        "--issuer-dir",
        "iss",
    ];
    let balance_of = |card: &str| {
        let shown = ok(dir, &["card", "--dir", "cards", "show", "--card", card]);
        minor(
            shown
                .lines()
                .find_map(|l| l.trim().strip_prefix("balance"))
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap_or_default(),
        )
    };
    let mut moved = 0;
    for stop in [
        "after-journal",
        "after-guarantee",
        "before-coins",
        "after-coins",
    ] {
        let (finished, last) = stopped_then_rerun(dir, &args, stop);
        if finished.contains("moved from") {
            moved += 100;
        } else {
            assert!(finished.contains("nothing moved"), "{stop}: {finished}");
        }
        assert_eq!(finished, last, "{stop}: the run after the finish differs");
        assert_eq!(balance_of(PAYEE), moved, "{stop}");
        assert_eq!(balance_of(CARD), 1_000 - moved, "{stop}");
    }
    assert!(moved >= 100, "no stopped transfer completed");
}

#[test]
fn purse_resume_leaves_a_card_transfer_to_the_card_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    stage(dir);
    let args = [
        "from-purse",
        "--card",
        CARD,
        "2.50",
        "--issuer-dir",
        "iss",
        PURSE[0],
        PURSE[1],
    ];
    let mut first = vec!["card", "--dir", "cards", "--stop-at", "after-guarantee"];
    first.extend_from_slice(&args);
    let out = run(dir, &first);
    assert!(!out.status.success());
    let id = transfer_id(&String::from_utf8_lossy(&out.stdout));
    // The purse's journal holds the coins for the transfer; resume does
    // not know how to finish it and must neither release nor spend them.
    let resumed = run(dir, &["purse", "resume", PURSE[0], PURSE[1]]);
    assert!(
        !resumed.status.success(),
        "resume claims to have finished it"
    );
    assert_eq!(available(dir), "7.50");
    let mut again = vec!["card", "--dir", "cards"];
    again.extend_from_slice(&args);
    again.extend_from_slice(&["--transfer", &id]);
    let finished = ok(dir, &again);
    assert!(finished.contains("loaded onto"), "{finished}");
    assert_eq!(available(dir), "7.50");
    assert_eq!(card_balance(dir), "2.50");
    let resumed = ok(dir, &["purse", "resume", PURSE[0], PURSE[1]]);
    assert!(resumed.contains("still unfinished 0"), "{resumed}");
}

#[test]
fn a_card_to_card_transfer_the_payee_refuses_returns_once_however_often_it_is_rerun() {
    const SMALL: &str = "00000000000000d3";
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    stage(dir);
    ok(
        dir,
        &[
            "card", "--dir", "cards", "issue", "--card", SMALL, "--max", "0.50",
        ],
    );
    ok(
        dir,
        &[
            "card",
            "--dir",
            "cards",
            "from-purse",
            "--card",
            CARD,
            "2.50",
            "--issuer-dir",
            "iss",
            PURSE[0],
            PURSE[1],
        ],
    );
    let args = [
        "transfer",
        "--from",
        CARD,
        "--to",
        SMALL,
        "1.00",
        "--issuer-dir",
        "iss",
    ];
    let (finished, last) = stopped_then_rerun(dir, &args, "after-coins");
    assert!(finished.contains("went back onto"), "{finished}");
    assert_eq!(finished, last);
    assert_eq!(card_balance(dir), "2.50");
    let small = ok(dir, &["card", "--dir", "cards", "show", "--card", SMALL]);
    assert!(small.contains("balance     0.00"), "{small}");
}

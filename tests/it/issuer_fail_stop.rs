//! A broken invariant in a serving issuer stops its whole process: it exits
//! with the fail-stop code (70) and says why at error level, instead of
//! losing one thread and serving on. Restarted, it boots clean from its log:
//! coins bought before the stop pay once each, and the auditor passes the
//! log. The invariant is broken through a test hook that only debug builds
//! contain (a panic on the housekeeper's thread while it holds the issuer's
//! state lock), so this file is compiled for debug builds only.
#![cfg(debug_assertions)]

use crate::util;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::process::{
    BIN, SERVE_ISSUER, Stage, alice_and_a_bookshop, audit_stage, ok, run, spawn, terminate,
    wait_healthy, with_tls,
};

/// How long a broken issuer may take to stop: its test hook fires at its
/// eighth housekeeping run (2 s), and boot comes before.
const STOP_WAIT_SECS: u64 = 60;

#[test]
fn a_broken_invariant_exits_the_issuer_process_which_restarts_clean_from_its_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let Stage {
        issuer,
        shop,
        ip,
        shop_url,
    } = alice_and_a_bookshop(dir);
    let pay = ["purse", "pay", &shop_url, "book", "--purse", "alice.purse"];
    ok(dir, &pay);
    terminate(issuer);

    let mut broken = Command::new(BIN)
        .current_dir(dir)
        .env(actors::BREAK_INVARIANT_ENV, "8")
        .args(with_tls(dir, &SERVE_ISSUER))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(STOP_WAIT_SECS);
    let status = loop {
        if let Some(status) = broken.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the issuer kept running after breaking an invariant"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::io::read_to_string(broken.stderr.take().expect("stderr")).expect("stderr");
    assert_eq!(
        status.code(),
        Some(actors::FAIL_STOP_EXIT_CODE),
        "{status:?}\n{stderr}"
    );
    assert!(stderr.contains("ERROR"), "{stderr}");
    assert!(stderr.contains("broken invariant"), "{stderr}");
    assert!(stderr.contains("fail-stop test hook"), "{stderr}");

    // Restarted without the hook: it boots from its log and serves.
    let issuer = spawn(dir, &SERVE_ISSUER);
    wait_healthy(ip);
    ok(dir, &pay);
    let balance = ok(dir, &["purse", "balance", "--purse", "alice.purse"]);
    assert!(balance.starts_with("available 0.00"), "{balance}");
    let broke = run(dir, &pay);
    assert!(!broke.status.success(), "paid with no money left");

    terminate(shop);
    terminate(issuer);
    let audit = audit_stage(dir);
    assert!(audit.contains("AUDIT PASSED"), "{audit}");
}

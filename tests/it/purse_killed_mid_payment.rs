//! A purse killed (SIGKILL) in the middle of a payment, then resumed,
//! completes the payment exactly once. The issuer is frozen (SIGSTOP) so
//! the payment is in flight, journaled in the purse, when the purse
//! process is killed; the issuer then thaws and answers the merchant, and
//! `purse resume` re-sends the journaled bytes, which the merchant answers
//! as it answered the first copy. Every party is its own process.

use crate::util;

use std::time::Duration;

use util::process::{
    Stage, alice_and_a_bookshop, audit_stage, kill_hard, ok, signal, spawn_piped, terminate,
};

#[test]
fn a_payment_cut_off_by_killing_the_purse_completes_once_on_resume() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let Stage {
        issuer,
        shop,
        shop_url,
        ..
    } = alice_and_a_bookshop(dir);

    // Freeze the issuer; the payment goes out and waits on it.
    signal(issuer.id(), "STOP");
    let payer = spawn_piped(
        dir,
        &["purse", "pay", &shop_url, "book", "--purse", "alice.purse"],
    );
    std::thread::sleep(Duration::from_millis(1500));
    kill_hard(payer);
    signal(issuer.id(), "CONT");

    // Finished from the purse's journal alone.
    let resumed = ok(dir, &["purse", "resume", "--purse", "alice.purse"]);
    assert!(
        resumed.contains("finished 1, still unfinished 0"),
        "{resumed}"
    );
    let balance = ok(dir, &["purse", "balance", "--purse", "alice.purse"]);
    assert!(
        balance.starts_with("available 5.00") && balance.contains("pending 0.00"),
        "paid exactly once: {balance}"
    );
    // Resuming again changes nothing.
    ok(dir, &["purse", "resume", "--purse", "alice.purse"]);
    assert_eq!(
        ok(dir, &["purse", "balance", "--purse", "alice.purse"]),
        balance
    );

    terminate(shop);
    terminate(issuer);
    let audit = audit_stage(dir);
    assert!(audit.contains("AUDIT PASSED"), "{audit}");
    // 10.00 in; 5.00 still alice's, 5.00 the shop's fresh coins.
    assert!(
        audit.contains("outstanding e-money               10.00"),
        "{audit}"
    );
    assert!(
        audit.contains("coins spent                        5.00"),
        "{audit}"
    );
}

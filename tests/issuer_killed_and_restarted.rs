//! The issuer killed (SIGKILL, no chance to close anything) and restarted:
//! its log is repaired by the next start, coins bought before the crash
//! spend once after it, a coin spent before the crash stays spent, and the
//! auditor passes the log. Every party is its own process.

mod util;

use util::process::{free_port, kill_hard, ok, run, spawn, terminate, wait_healthy};

#[test]
fn coins_survive_an_issuer_crash_and_spend_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (ip, mp) = (free_port(), free_port());
    let listen = format!("127.0.0.1:{ip}");
    let issuer_url = format!("http://{listen}");
    let shop_url = format!("http://127.0.0.1:{mp}");
    let serve = ["issuer", "serve", "--dir", "iss"];

    ok(
        dir,
        &[
            "issuer", "init", "--dir", "iss", "--listen", &listen, "--shards", "2",
        ],
    );
    let issuer = spawn(dir, &serve);
    wait_healthy(ip);
    ok(
        dir,
        &[
            "bank",
            "open-account",
            "ACH-alice",
            "100.00",
            "--issuer",
            &issuer_url,
        ],
    );
    ok(
        dir,
        &[
            "bank",
            "open-account",
            "ACH-shop",
            "0.00",
            "--issuer",
            &issuer_url,
        ],
    );
    ok(
        dir,
        &[
            "purse",
            "init",
            "--purse",
            "alice.purse",
            "--id",
            "alice",
            "--issuer",
            &issuer_url,
        ],
    );
    ok(dir, &["purse", "register", "--purse", "alice.purse"]);
    ok(
        dir,
        &[
            "purse",
            "enroll",
            "purchaser",
            "--account",
            "ACH-alice",
            "--purse",
            "alice.purse",
        ],
    );
    ok(
        dir,
        &[
            "issuer",
            "enroll",
            "approve",
            "alice",
            "purchaser",
            "--dir",
            "iss",
        ],
    );
    ok(
        dir,
        &[
            "purse",
            "buy",
            "4x2.50",
            "--account",
            "ACH-alice",
            "--purse",
            "alice.purse",
        ],
    );
    ok(
        dir,
        &[
            "merchant",
            "init",
            "--purse",
            "shop.purse",
            "--id",
            "shop",
            "--issuer",
            &issuer_url,
            "--account",
            "ACH-shop",
        ],
    );
    ok(
        dir,
        &[
            "issuer", "enroll", "approve", "shop", "merchant", "--dir", "iss",
        ],
    );
    let shop = spawn(
        dir,
        &[
            "merchant",
            "serve",
            "--purse",
            "shop.purse",
            "--listen",
            &format!("127.0.0.1:{mp}"),
            "--item",
            "book=5.00",
        ],
    );
    wait_healthy(mp);
    ok(
        dir,
        &["purse", "pay", &shop_url, "book", "--purse", "alice.purse"],
    );

    // Crash, and come back on the same address.
    kill_hard(issuer);
    let down = run(
        dir,
        &["purse", "pay", &shop_url, "book", "--purse", "alice.purse"],
    );
    assert!(!down.status.success(), "paid with the issuer down");
    let issuer = spawn(dir, &serve);
    wait_healthy(ip);

    // The payment cut off by the crash is finished (or reclaimed) by
    // resuming; then the rest of the coins pay once more and no further.
    ok(dir, &["purse", "resume", "--purse", "alice.purse"]);
    let balance = ok(dir, &["purse", "balance", "--purse", "alice.purse"]);
    let paid_again = balance.starts_with("available 5.00");
    if paid_again {
        ok(
            dir,
            &["purse", "pay", &shop_url, "book", "--purse", "alice.purse"],
        );
    }
    let balance = ok(dir, &["purse", "balance", "--purse", "alice.purse"]);
    assert!(balance.starts_with("available 0.00"), "{balance}");
    let broke = run(
        dir,
        &["purse", "pay", &shop_url, "book", "--purse", "alice.purse"],
    );
    assert!(!broke.status.success(), "paid with no money left");

    terminate(shop);
    terminate(issuer);
    let audit = ok(
        dir,
        &[
            "audit",
            "--log",
            "iss/log.redb",
            "--issuer-key",
            "iss/issuer.pub",
        ],
    );
    assert!(audit.contains("AUDIT PASSED"), "{audit}");
    assert!(
        audit.contains("real money in                     10.00"),
        "{audit}"
    );
    assert!(
        audit.contains("outstanding e-money               10.00"),
        "{audit}"
    );
}

//! The parties as separate processes, as their users run them: an issuer
//! (`issuer init`, `issuer serve`), a merchant server (`merchant init`,
//! `merchant serve`, in its data directory with its merchant.toml) and a
//! coin holder's purse driven one command at a time, over loopback HTTPS
//! with the issuer's TLS authority pinned; operator commands sign with the
//! key `issuer init` made, and another operator key, or plain HTTP, is
//! refused.
//! The operator opens a key epoch on the serving issuer between two
//! payments. The servers stop on SIGTERM; an epoch opened then runs the
//! issuer in-process, and the auditor (`varietycash audit`) right after
//! passes the issuer's log.

use crate::util;

use util::process::{
    audit_stage, free_port, ok, run, serve_new_issuer, spawn, terminate, wait_healthy,
};

#[test]
fn issuer_merchant_and_purse_as_separate_processes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (issuer, ip) = serve_new_issuer(dir);
    let mp = free_port();
    let issuer_url = format!("https://127.0.0.1:{ip}");
    let shop_url = format!("https://127.0.0.1:{mp}");

    ok(
        dir,
        &[
            "bank",
            "--dir",
            "iss",
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
            "--dir",
            "iss",
            "open-account",
            "ACH-shop",
            "0.00",
            "--issuer",
            &issuer_url,
        ],
    );
    // `issuer init` made the operator key, the TLS keys and the
    // configuration (which holds the scrape token) private.
    for name in ["operator.key", "tls-ca.key", "tls.key", "issuer.toml"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("iss").join(name))
            .expect(name)
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    let toml = std::fs::read_to_string(dir.join("iss").join("issuer.toml")).expect("toml");
    assert!(
        toml.contains("[[operators]]") && toml.contains("metrics_token"),
        "{toml}"
    );
    // A key the issuer does not list is refused, and so is plain HTTP.
    ok(
        dir,
        &[
            "issuer",
            "init",
            "--dir",
            "other",
            "--listen",
            "127.0.0.1:1",
            "--shards",
            "1",
        ],
    );
    let stranger = run(
        dir,
        &[
            "bank",
            "--dir",
            "iss",
            "--operator-key",
            "other/operator.key",
            "balance",
            "ACH-alice",
            "--issuer",
            &issuer_url,
        ],
    );
    let said = String::from_utf8_lossy(&stranger.stderr);
    assert!(!stranger.status.success(), "an unlisted key was obeyed");
    assert!(said.contains("not listed"), "{said}");
    let plain = run(
        dir,
        &[
            "bank",
            "--dir",
            "iss",
            "--insecure-http",
            "balance",
            "ACH-alice",
            "--issuer",
            &issuer_url.replace("https://", "http://"),
        ],
    );
    assert!(
        !plain.status.success(),
        "plain HTTP reached the TLS gateway"
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
    // Before the operator approves, the issuer refuses the purchase.
    let refused = run(
        dir,
        &[
            "purse",
            "buy",
            "1x5.00",
            "--account",
            "ACH-alice",
            "--purse",
            "alice.purse",
        ],
    );
    assert!(
        !refused.status.success(),
        "bought without an approved enrollment"
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
    let bought = ok(
        dir,
        &[
            "purse",
            "buy",
            "2x2.50,1x1.25,3x2.00",
            "--account",
            "ACH-alice",
            "--purse",
            "alice.purse",
        ],
    );
    assert!(bought.contains("bought 12.25 in 6 coins"), "{bought}");
    assert!(
        ok(
            dir,
            &[
                "bank",
                "balance",
                "ACH-alice",
                "--dir",
                "iss",
                "--issuer",
                &issuer_url
            ]
        )
        .contains("87.75")
    );

    ok(
        dir,
        &[
            "merchant",
            "init",
            "--dir",
            "shop",
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
    // The shop's data directory holds its purse and merchant.toml, which
    // `init` wrote with defaults; the catalog goes there.
    let config_path = dir.join("shop").join("merchant.toml");
    let mut config = std::fs::read_to_string(&config_path).expect("merchant.toml");
    assert!(config.contains("redeem_account = \"ACH-shop\""), "{config}");
    config.push_str("\n[[item]]\nsku = \"tea\"\nprice = \"2.50\"\n");
    std::fs::write(&config_path, config).expect("catalog");
    let shop = spawn(
        dir,
        &[
            "merchant",
            "serve",
            "--dir",
            "shop",
            "--listen",
            &format!("127.0.0.1:{mp}"),
            "--item",
            "book=5.00=A book",
        ],
    );
    wait_healthy(mp);

    let paid = ok(
        dir,
        &["purse", "pay", &shop_url, "book", "--purse", "alice.purse"],
    );
    assert!(paid.contains("receipt verified"), "{paid}");
    // The operator opens a key epoch without stopping the issuer; the
    // merchant's refresh of the next payment mints under it.
    let opened = ok(dir, &["issuer", "epoch", "open", "--dir", "iss"]);
    assert!(
        opened.contains(&format!(
            "key epoch 2 opened by the issuer serving at {issuer_url}"
        )),
        "{opened}"
    );
    let paid = ok(
        dir,
        &["purse", "pay", &shop_url, "tea", "--purse", "alice.purse"],
    );
    assert!(paid.contains("paid for tea"), "{paid}");
    let balance = ok(dir, &["purse", "balance", "--purse", "alice.purse"]);
    assert!(balance.starts_with("available 4.75"), "{balance}");

    terminate(shop);
    terminate(issuer);
    // Nothing serves now: the command runs the issuer itself, and its
    // files are closed when it exits, so the audit may read them at once.
    let opened = ok(dir, &["issuer", "epoch", "open", "--dir", "iss"]);
    assert!(opened.starts_with("key epoch 3 opened: "), "{opened}");
    let audit = audit_stage(dir);
    assert!(audit.contains("AUDIT PASSED"), "{audit}");
    assert!(
        audit.contains("outstanding e-money               12.25"),
        "{audit}"
    );
}

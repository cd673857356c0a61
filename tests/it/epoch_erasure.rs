//! Erasure over HTTPS with the real binary, on an issuer whose epochs are
//! seconds long (`[epochs]` in issuer.toml): once an epoch's grace is over
//! the serving issuer erases its spent coins on its own and destroys its
//! key; `issuer epoch erase 2` then reports that erasure (named through a
//! log record) and the coins it forfeited (those still unspent, whose
//! value leaves the outstanding e-money); a coin of the epoch is refused
//! from then on; and the audit checks the erased and forfeited sets against
//! the log and reports the forfeited float.

use crate::util;

use std::io::Write;
use std::time::{Duration, Instant};

use ledger::KeyEpoch;
use protocol::mint::Mint;

use util::process::{
    SERVE_ISSUER, alice_holding_4_x_2_50, audit_stage, free_port, ok, run, spawn, terminate,
    wait_healthy,
};

#[test]
fn an_epoch_past_its_grace_is_erased_on_schedule_and_its_coins_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let ip = free_port();
    let listen = format!("127.0.0.1:{ip}");
    ok(
        dir,
        &[
            "issuer", "init", "--dir", "iss", "--listen", &listen, "--shards", "2",
        ],
    );
    // Coins expire 15 s after their epoch opens and may be refreshed 2 s
    // more: the setup below (a purchase and a change, a few processes) has
    // 15 s to finish on a loaded machine; no epoch opens on its own.
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("iss").join("issuer.toml"))
        .and_then(|mut f| {
            f.write_all(
                b"\n[epochs]\ncoin_lifetime_secs = 15\ngrace_secs = 2\nepoch_period_secs = 600\n",
            )
        })
        .expect("issuer.toml");
    let issuer = spawn(dir, &SERVE_ISSUER);
    wait_healthy(ip);
    let url = format!("https://{listen}");
    // `init` opened epoch 1 with the default dates; epoch 2 has these.
    let opened = ok(dir, &["issuer", "epoch", "open", "--dir", "iss"]);
    assert!(opened.contains("key epoch 2 opened"), "{opened}");
    alice_holding_4_x_2_50(dir, &url);
    // A spent coin of the epoch: change one 2.50 coin into two 1.25.
    ok(
        dir,
        &["purse", "change", "2x1.25", "--purse", "alice.purse"],
    );

    // Too early: the grace of epoch 2 is not over.
    let early = run(dir, &["issuer", "epoch", "erase", "2", "--dir", "iss"]);
    assert!(!early.status.success(), "{early:?}");
    assert!(
        String::from_utf8_lossy(&early.stderr).contains("grace period"),
        "{early:?}"
    );

    // Past it (17 s after epoch 2 opened), the serving issuer's
    // housekeeper erases it on its own: its key leaves the mint file.
    wait_until_key_destroyed(&dir.join("iss").join("mint.key"), KeyEpoch(2));
    let erased = ok(dir, &["issuer", "epoch", "erase", "2", "--dir", "iss"]);
    assert!(
        erased.contains("key epoch 2 erased: 1 spent coin(s) worth 2.50"),
        "{erased}"
    );
    assert!(erased.contains("logged through record"), "{erased}");
    // Alice still held 3 x 2.50 and 2 x 1.25 of epoch 2: forfeited.
    assert!(
        erased.contains("5 unspent coin(s) worth 10.00 forfeited"),
        "{erased}"
    );

    // Alice's unspent coins of epoch 2 are past their grace: refused.
    let refresh = run(dir, &["purse", "refresh", "--purse", "alice.purse"]);
    let out = format!("{refresh:?}");
    assert!(
        !refresh.status.success() || out.contains("refreshed 0"),
        "{out}"
    );

    terminate(issuer);
    let audit = audit_stage(dir);
    assert!(audit.contains("epoch_erased"), "{audit}");
    assert!(audit.contains("erased"), "{audit}");
    assert!(audit.contains("float_forfeited"), "{audit}");
    let forfeited_line = audit
        .lines()
        .find(|l| l.trim_start().starts_with("forfeited (breakage)"))
        .unwrap_or_else(|| panic!("no forfeited total in the report: {audit}"));
    assert!(forfeited_line.trim_end().ends_with("10.00"), "{audit}");
    assert!(audit.contains("forfeited 10.00 in 5 coins"), "{audit}");
}

/// Polls the mint file until `epoch`'s key is gone: the serving issuer
/// destroys it after logging the epoch's erasure. The deadline is wide
/// (the grace ends 17 s after the epoch opened; a loaded machine may run
/// the housekeeper late), the poll returns as soon as it is done.
fn wait_until_key_destroyed(mint_file: &std::path::Path, epoch: KeyEpoch) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        // The file is replaced atomically; a read that fails is retried.
        if Mint::open(mint_file).is_ok_and(|m| !m.has_epoch(epoch)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the serving issuer did not erase {epoch} within 90 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

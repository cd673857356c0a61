//! The README's first command: `varietycash demo` runs the whole system on
//! loopback and ends with the auditor's verdict: every step of the demo
//! (registration under a pseudonym, payments, change, a refund after a
//! purse file is deleted, an expired coin refused then refreshed, a double
//! spend, cards), in under a minute. Runs the built binary.

use std::process::Command;

#[test]
fn the_demo_binary_runs_every_flow_and_passes_its_audit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_varietycash"))
        .arg("demo")
        .arg("--dir")
        .arg(dir.path())
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("AUDIT PASSED"), "{stdout}");
    for step in [
        "purchase",
        "pay/refresh",
        "pay/aggregate",
        "pay/redeem",
        "change",
        "redeem",
        "double spend",
        "(varietycash card transfer)",
    ] {
        assert!(stdout.contains(step), "no {step} step:\n{stdout}");
    }
    // The steps whose outcome the line itself states.
    for line in [
        "the issuer knows this party only as `zorro`",
        "zorro spent it on a postcard",
        "the change of a 1.00 coin among them), restored from her key backup, refunded: 6 coins revoked, 4.00 back",
        "an old coin is now refused (AlreadySpent)",
        "refused (Expired), signed statement verified",
        "expired coins (",
        "double spend   refused: AlreadySpent",
        "no aggregated balance left",
        "refused (EpochRevoked), signed statement verified",
        "alice recouped 4.00",
        "0.00 of epoch 2 left to recoup",
        "its mint key destroyed",
    ] {
        assert!(stdout.contains(line), "no `{line}`:\n{stdout}");
    }
    let took: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("demo took "))
        .and_then(|l| l.trim_end_matches(" s").parse().ok())
        .expect("the demo says how long it took");
    assert!(took < 60.0, "the demo took {took} s");
    assert!(dir.path().join("issuer").join("log.redb").exists());
}

//! The README's first command: `varietycash demo` runs the whole system on
//! loopback and ends with the auditor's verdict. Runs the built binary.

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
    ] {
        assert!(stdout.contains(step), "no {step} step:\n{stdout}");
    }
    assert!(dir.path().join("issuer").join("log.redb").exists());
}

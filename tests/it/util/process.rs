//! Running the `varietycash` binary as separate processes: commands that
//! must succeed, servers spawned and stopped by signal, free loopback ports.

#![allow(dead_code, clippy::expect_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_varietycash");

pub fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .env("VC_PURSE_PASSPHRASE", super::PASSPHRASE)
        .env("VC_PURSE_KDF", "insecure-fast")
        .args(with_tls(dir, args))
        .output()
        .expect("the binary runs")
}

/// `args`, plus the TLS flags the parties use in these tests: every
/// purse, bank and merchant command pins the issuer's authority
/// (`iss/tls-ca.pem`, as `issuer init` wrote it), and a merchant server
/// serves a certificate that authority issued for 127.0.0.1 (made on first
/// use with `issuer tls-cert`). Commands that say `--insecure-http` or
/// `--issuer-cert` themselves are left as they are.
pub fn with_tls(dir: &Path, args: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    if args
        .iter()
        .any(|a| *a == "--insecure-http" || *a == "--issuer-cert")
    {
        return out;
    }
    let ca = dir.join("iss").join("tls-ca.pem").display().to_string();
    match args.first().copied() {
        Some("purse" | "bank" | "audit") => out.extend(["--issuer-cert".to_owned(), ca]),
        Some("merchant") => {
            out.extend(["--issuer-cert".to_owned(), ca]);
            if args.get(1) == Some(&"serve") && !args.contains(&"--tls-cert") {
                if !dir.join("shop-tls.pem").exists() {
                    let made = Command::new(BIN)
                        .current_dir(dir)
                        .args([
                            "issuer",
                            "tls-cert",
                            "--dir",
                            "iss",
                            "--name",
                            "127.0.0.1",
                            "--name",
                            "localhost",
                            "--cert",
                            "shop-tls.pem",
                            "--key",
                            "shop-tls.key",
                        ])
                        .output()
                        .expect("the binary runs");
                    assert!(made.status.success(), "issuer tls-cert: {made:?}");
                }
                out.extend(
                    ["--tls-cert", "shop-tls.pem", "--tls-key", "shop-tls.key"].map(str::to_owned),
                );
            }
        }
        _ => {}
    }
    out
}

/// Runs a command and expects exit 0; its stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?} failed ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub fn spawn(dir: &Path, args: &[&str]) -> Child {
    Command::new(BIN)
        .current_dir(dir)
        .env("VC_PURSE_PASSPHRASE", super::PASSPHRASE)
        .env("VC_PURSE_KDF", "insecure-fast")
        .args(with_tls(dir, args))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn")
}

/// Waits until something listens on `port` (the server is up).
pub fn wait_healthy(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on port {port}");
}

/// SIGTERM, then the exit status (a graceful stop exits 0).
pub fn terminate(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "stopped with {status:?}");
            return;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGKILL: no chance to flush or close anything.
pub fn kill_hard(mut child: Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
}

/// Sends `signal` (e.g. "STOP", "CONT") to the process `pid`.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Spawns a command whose output the test reads later.
pub fn spawn_piped(dir: &Path, args: &[&str]) -> Child {
    Command::new(BIN)
        .current_dir(dir)
        .env("VC_PURSE_PASSPHRASE", super::PASSPHRASE)
        .env("VC_PURSE_KDF", "insecure-fast")
        .args(with_tls(dir, args))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

/// `issuer init` (2 shards, in `dir/iss`) on a free loopback port, then
/// `issuer serve` until it answers `/health`; returns the process and port.
pub fn serve_new_issuer(dir: &Path) -> (Child, u16) {
    let ip = free_port();
    let listen = format!("127.0.0.1:{ip}");
    ok(
        dir,
        &[
            "issuer", "init", "--dir", "iss", "--listen", &listen, "--shards", "2",
        ],
    );
    let issuer = spawn(dir, &SERVE_ISSUER);
    wait_healthy(ip);
    (issuer, ip)
}

/// The stage the crash tests start from, every party its own process: an
/// issuer serving on `ip`; alice's purse holding 4 × 2.50 bought from
/// ACH-alice (100.00 opened); a bookshop enrolled as merchant and serving
/// `book=5.00` on `mp`, collecting into ACH-shop.
pub struct Stage {
    pub issuer: Child,
    pub shop: Child,
    /// The issuer's port (it comes back on the same address after a crash).
    pub ip: u16,
    pub shop_url: String,
}

/// The `issuer serve` command of a [`Stage`] (to respawn it after a crash).
pub const SERVE_ISSUER: [&str; 4] = ["issuer", "serve", "--dir", "iss"];

pub fn alice_and_a_bookshop(dir: &Path) -> Stage {
    let (issuer, ip) = serve_new_issuer(dir);
    let issuer_url = format!("https://127.0.0.1:{ip}");
    let mp = free_port();
    let shop_listen = format!("127.0.0.1:{mp}");
    alice_holding_4_x_2_50(dir, &issuer_url);
    an_enrolled_shop(dir, &issuer_url);
    let shop = spawn(
        dir,
        &[
            "merchant",
            "serve",
            "--purse",
            "shop.purse",
            "--listen",
            &shop_listen,
            "--item",
            "book=5.00",
        ],
    );
    wait_healthy(mp);
    Stage {
        issuer,
        shop,
        ip,
        shop_url: format!("https://{shop_listen}"),
    }
}

/// Opens `account` at the serving issuer's simulated bank, signed with the
/// operator key of `iss`.
pub fn open_account(dir: &Path, issuer_url: &str, account: &str, opening: &str) {
    ok(
        dir,
        &[
            "bank",
            "--dir",
            "iss",
            "open-account",
            account,
            opening,
            "--issuer",
            issuer_url,
        ],
    );
}

/// Alice's purse `alice.purse`, registered and enrolled as purchaser
/// (approved by the operator) on ACH-alice, which is opened with 100.00.
pub fn alice_enrolled(dir: &Path, issuer_url: &str) {
    open_account(dir, issuer_url, "ACH-alice", "100.00");
    let alice = ["--purse", "alice.purse"];
    ok(
        dir,
        &[
            &["purse", "init"][..],
            &alice,
            &["--id", "alice", "--issuer", issuer_url],
        ]
        .concat(),
    );
    ok(dir, &[&["purse", "register"][..], &alice].concat());
    ok(
        dir,
        &[
            &["purse", "enroll", "purchaser", "--account", "ACH-alice"][..],
            &alice,
        ]
        .concat(),
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
}

/// Alice's purse `alice.purse`, registered, enrolled as purchaser (approved
/// by the operator) and holding 4 × 2.50 bought from ACH-alice, which is
/// opened with 100.00.
pub fn alice_holding_4_x_2_50(dir: &Path, issuer_url: &str) {
    alice_enrolled(dir, issuer_url);
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
}

/// `merchant serve` of `shop.purse` selling a book at 5.00, its takings
/// aggregated at the issuer; returns the server and its URL once healthy.
pub fn serve_aggregating_bookshop(dir: &Path) -> (Child, String) {
    let mp = free_port();
    let listen = format!("127.0.0.1:{mp}");
    let shop = spawn(
        dir,
        &[
            "merchant",
            "serve",
            "--purse",
            "shop.purse",
            "--listen",
            &listen,
            "--item",
            "book=5.00",
            "--collect",
            "aggregate",
        ],
    );
    wait_healthy(mp);
    (shop, format!("https://{listen}"))
}

/// The shop's purse `shop.purse`, a merchant (approved by the operator)
/// redeeming into ACH-shop, which is opened empty. Not serving.
pub fn an_enrolled_shop(dir: &Path, issuer_url: &str) {
    open_account(dir, issuer_url, "ACH-shop", "0.00");
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
            issuer_url,
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
}

/// Audits the stage's issuer log with its public key; returns the report.
pub fn audit_stage(dir: &Path) -> String {
    ok(
        dir,
        &[
            "audit",
            "--log",
            "iss/log.redb",
            "--issuer-key",
            "iss/issuer.pub",
        ],
    )
}

//! The issuer's payment cluster on loopback, every party its own process:
//! the whole issuer serving its gateway and, on its cluster address, two
//! validator nodes (`issuer serve --role validator`) that open the shop's
//! payments with the issuer's key and have the issuer's one state decide
//! them. What must hold:
//! - payments through either node are the issuer's payments: the purse
//!   pays, the shop holds fresh coins, the audit passes with every record
//!   signed;
//! - a node cut off from the issuer answers 503 with Retry-After, never a
//!   guess, and serves again once the issuer is back;
//! - a node killed with SIGKILL mid-burst loses nothing: the shop sends
//!   the same bytes to the other node, and every payment is in the log
//!   exactly once.

use crate::util;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use util::process::{
    alice_enrolled, an_enrolled_shop, free_port, kill_hard, ok, spawn, terminate, wait_healthy,
};

/// How long any stage may take before the test fails.
const STAGE_SECS_MAX: u64 = 120;

/// The cluster: the issuer (gateway on `ip`, validators' sequencer on
/// `cp`) and two nodes.
struct Cluster {
    issuer: Child,
    ip: u16,
    cp: u16,
    nodes: Vec<(Child, u16)>,
}

impl Cluster {
    fn issuer_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.ip)
    }

    fn node_url(&self, i: usize) -> String {
        format!("https://127.0.0.1:{}", self.nodes[i].1)
    }
}

fn serve_issuer(dir: &Path, cp: u16) -> Child {
    spawn(
        dir,
        &[
            "issuer",
            "serve",
            "--dir",
            "iss",
            "--cluster-listen",
            &format!("127.0.0.1:{cp}"),
        ],
    )
}

fn serve_node(dir: &Path, node: &str, cp: u16) -> (Child, u16) {
    let port = free_port();
    let child = spawn(
        dir,
        &[
            "issuer",
            "serve",
            "--role",
            "validator",
            "--dir",
            "iss",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--sequencer",
            &format!("127.0.0.1:{cp}"),
            "--node",
            node,
            "--node-key",
            &format!("{node}.key"),
        ],
    );
    wait_healthy(port);
    (child, port)
}

/// `issuer init`, keys for nodes v1 and v2, the issuer and both nodes
/// serving.
fn cluster(dir: &Path) -> Cluster {
    let (ip, cp) = (free_port(), free_port());
    ok(
        dir,
        &[
            "issuer",
            "init",
            "--dir",
            "iss",
            "--listen",
            &format!("127.0.0.1:{ip}"),
            "--shards",
            "2",
        ],
    );
    for node in ["v1", "v2"] {
        ok(
            dir,
            &[
                "cluster",
                "node-key",
                "--dir",
                "iss",
                "--node",
                node,
                "--out",
                &format!("{node}.key"),
            ],
        );
    }
    let issuer = serve_issuer(dir, cp);
    wait_healthy(ip);
    wait_healthy(cp);
    let nodes = vec![serve_node(dir, "v1", cp), serve_node(dir, "v2", cp)];
    Cluster {
        issuer,
        ip,
        cp,
        nodes,
    }
}

/// The shop serving `book=1.00`, its payments through `validators`.
fn serve_shop(dir: &Path, validators: &[String]) -> (Child, String) {
    let mp = free_port();
    let listen = format!("127.0.0.1:{mp}");
    let mut args = vec![
        "merchant",
        "serve",
        "--purse",
        "shop.purse",
        "--listen",
        &listen,
        "--item",
        "book=1.00",
    ];
    for url in validators {
        args.extend(["--validator", url.as_str()]);
    }
    let shop = spawn(dir, &args);
    wait_healthy(mp);
    (shop, format!("https://{listen}"))
}

fn pay(dir: &Path, shop_url: &str) -> std::process::Output {
    util::process::run(
        dir,
        &["purse", "pay", shop_url, "book", "--purse", "alice.purse"],
    )
}

fn audit(dir: &Path) -> String {
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

/// Alice holding `n` coins of 1.00.
fn alice_with_coins(dir: &Path, issuer_url: &str, n: usize) {
    alice_enrolled(dir, issuer_url);
    ok(
        dir,
        &[
            "purse",
            "buy",
            &format!("{n}x1.00"),
            "--account",
            "ACH-alice",
            "--purse",
            "alice.purse",
        ],
    );
}

#[test]
fn payments_through_two_validators_are_the_issuers_payments() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let c = cluster(dir);
    alice_with_coins(dir, &c.issuer_url(), 4);
    an_enrolled_shop(dir, &c.issuer_url());
    let (shop, shop_url) = serve_shop(dir, &[c.node_url(0), c.node_url(1)]);
    for _ in 0..4 {
        let out = pay(dir, &shop_url);
        assert!(
            out.status.success(),
            "purse pay: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The purse has nothing left to pay with: the shop holds the coins.
    assert!(!pay(dir, &shop_url).status.success());
    terminate(shop);
    for (node, _) in c.nodes {
        terminate(node);
    }
    terminate(c.issuer);
    let report = audit(dir);
    assert!(
        report.contains("passed") || report.contains("PASS") || report.contains("ok"),
        "{report}"
    );
}

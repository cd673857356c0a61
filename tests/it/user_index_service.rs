//! Trust-based anonymity (paper §1.2: the issuer can trace a coin to its
//! buyer only through the user index, and only when it must), with every
//! party its own process over TLS:
//!
//! - the user index is its own service, with its own directory and key
//!   pair; the issuer holds only the public key, and its files hold no
//!   opening key and no identity in the clear outside its registry;
//! - the issuer keeps serving while the index is down; the records wait in
//!   its log and reach the index once it is up, each applied once, also
//!   after an issuer restart that sends everything again;
//! - a disclosure needs two approvals by two different operator keys, is
//!   logged by the issuer before the index answers, and the audit lists
//!   it; one key twice, two orders, a replayed approval disclose nothing.

use crate::util;

use std::path::Path;
use std::time::{Duration, Instant};

use ledger::{DisclosureSubject, ParticipantId, Seq};
use protocol::crypto::{PublicKey, SecretKey};
use util::process::{
    SERVE_ISSUER, alice_holding_4_x_2_50, free_port, ok, run, spawn, terminate, wait_healthy,
};

/// How far the index has applied the issuer's log (`index status`).
fn applied(dir: &Path, index_url: &str) -> u64 {
    let out = ok(
        dir,
        &[
            "index",
            "status",
            "--index",
            index_url,
            "--issuer-cert",
            "iss/tls-ca.pem",
        ],
    );
    out.trim()
        .strip_prefix("applied ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("index status said {out:?}"))
}

/// The record the issuer's latest signed head covers (`GET /v1/log/head`).
fn signed_head(issuer_url: &str, dir: &Path) -> u64 {
    let ca = client::IssuerCa::read_pem(&dir.join("iss/tls-ca.pem")).expect("ca");
    let client =
        client::IssuerClient::new(issuer_url, client::ClientConfig::pinned(ca)).expect("client");
    let text = client.http().get_text("/v1/log/head").expect("head");
    ledger::Checkpoint::parse_published_head(&text)
        .expect("a signed head")
        .seq
        .0
}

/// Waits until the index has applied at least what the issuer's signed
/// head covers now.
fn wait_caught_up(dir: &Path, issuer_url: &str, index_url: &str) -> u64 {
    // The head is signed within a second of each commit.
    std::thread::sleep(Duration::from_millis(1_500));
    let head = signed_head(issuer_url, dir);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = applied(dir, index_url);
        if seen >= head {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "the index applied {seen} of {head} records"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn approve(dir: &Path, coin: &str, key: &str, out: &str, reason: &str) {
    ok(
        dir,
        &[
            "index",
            "approve",
            "--coin",
            coin,
            "--requester",
            "district court",
            "--reason",
            reason,
            "--operator-key",
            key,
            "--issuer-key",
            "iss/issuer.pub",
            "--out",
            out,
        ],
    );
}

fn disclose(dir: &Path, index_url: &str, a: &str, b: &str) -> std::process::Output {
    run(
        dir,
        &[
            "index",
            "disclose",
            "--index",
            index_url,
            "--approval",
            a,
            "--approval",
            b,
            "--issuer-cert",
            "iss/tls-ca.pem",
        ],
    )
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn the_user_index_is_its_own_service_and_discloses_only_under_dual_control() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path();
    let (ip, xp) = (free_port(), free_port());
    let issuer_url = format!("https://127.0.0.1:{ip}");
    let index_url = format!("https://127.0.0.1:{xp}");

    // The index first: its key pair is made in its own directory.
    ok(dir, &["index", "init", "--dir", "idx"]);
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
            "--user-index-key",
            "idx/index.pub",
            "--user-index",
            &index_url,
        ],
    );
    ok(
        dir,
        &[
            "issuer", "operator", "add", "--dir", "iss", "--name", "second", "--key", "op2.key",
        ],
    );
    ok(
        dir,
        &[
            "issuer",
            "tls-cert",
            "--dir",
            "iss",
            "--name",
            "127.0.0.1",
            "--cert",
            "idx/tls.pem",
            "--key",
            "idx/tls.key",
        ],
    );
    let serve_index = [
        "index",
        "serve",
        "--dir",
        "idx",
        "--listen",
        &format!("127.0.0.1:{xp}"),
        "--issuer",
        &issuer_url,
        "--issuer-key",
        "iss/issuer.pub",
        "--issuer-cert",
        "iss/tls-ca.pem",
        "--tls-cert",
        "idx/tls.pem",
        "--tls-key",
        "idx/tls.key",
    ];

    // The index is down: purchases go on.
    let issuer = spawn(dir, &SERVE_ISSUER);
    wait_healthy(ip);
    alice_holding_4_x_2_50(dir, &issuer_url);

    // The index comes up and gets every record that waited.
    let index = spawn(dir, &serve_index);
    wait_healthy(xp);
    wait_caught_up(dir, &issuer_url, &index_url);

    // The issuer restarts with its outbox gone: it sends the whole log
    // again, and the index applies none of it twice.
    terminate(issuer);
    std::fs::remove_file(dir.join("iss/index-outbox.redb")).expect("outbox");
    let issuer = spawn(dir, &SERVE_ISSUER);
    wait_healthy(ip);
    ok(
        dir,
        &[
            "purse",
            "buy",
            "1x1.00",
            "--account",
            "ACH-alice",
            "--purse",
            "alice.purse",
        ],
    );
    wait_caught_up(dir, &issuer_url, &index_url);

    let coins = ok(dir, &["purse", "coins", "--purse", "alice.purse"]);
    let coin = coins
        .split_whitespace()
        .next()
        .expect("alice holds coins")
        .to_owned();

    // One operator's approval twice is one approval: refused.
    approve(dir, &coin, "iss/operator.key", "a1", "case 42");
    let once = disclose(dir, &index_url, "a1", "a1");
    assert!(!once.status.success(), "one approval twice disclosed");
    assert!(!contains(&once.stdout, b"alice"));
    // Two keys, two different orders: refused.
    approve(dir, &coin, "iss/operator.key", "b1", "case 42");
    approve(dir, &coin, "op2.key", "b2", "case 43");
    let split = disclose(dir, &index_url, "b1", "b2");
    assert!(!split.status.success(), "approvals of two orders disclosed");
    assert!(!contains(&split.stdout, b"alice"));
    // A key the issuer does not list: refused by the issuer, nothing logged.
    let stranger = client::OperatorKey::generate().expect("key");
    stranger.write(&dir.join("stranger.key")).expect("write");
    approve(dir, &coin, "iss/operator.key", "c1", "case 44");
    approve(dir, &coin, "stranger.key", "c2", "case 44");
    let unlisted = disclose(dir, &index_url, "c1", "c2");
    assert!(
        !unlisted.status.success(),
        "an unlisted key's approval disclosed"
    );

    // Two operators, two keys, one order: the identity, logged first.
    approve(dir, &coin, "iss/operator.key", "d1", "case 45");
    approve(dir, &coin, "op2.key", "d2", "case 45");
    let answer = ok(
        dir,
        &[
            "index",
            "disclose",
            "--index",
            &index_url,
            "--approval",
            "d1",
            "--approval",
            "d2",
            "--issuer-cert",
            "iss/tls-ca.pem",
        ],
    );
    assert!(answer.contains(": alice (disclosure logged"), "{answer}");
    // The same approvals again: their nonces are spent.
    let replayed = disclose(dir, &index_url, "d1", "d2");
    assert!(!replayed.status.success(), "replayed approvals disclosed");

    wait_caught_up(dir, &issuer_url, &index_url);
    terminate(index);
    terminate(issuer);

    // The audit lists the one disclosure, and only it.
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
    assert!(audit.contains("disclosures of identity: 1"), "{audit}");
    assert!(
        audit.contains(&format!("coin {coin} to \"district court\" (\"case 45\")")),
        "{audit}"
    );

    // The index's files: every coin alice holds is hers, applied once.
    let issuer_key = PublicKey::read_spki(&dir.join("iss/issuer.pub")).expect("issuer key");
    let index = user_index::IndexService::open(&dir.join("idx"), issuer_key).expect("index");
    let alice = ParticipantId::new("alice").expect("id");
    let held = index.users().coins_of(&alice).expect("coins");
    assert_eq!(held.len(), 5, "4 × 2.50 and 1 × 1.00, each once");
    let disclosed = index.users().dual_disclosures().expect("disclosures");
    assert_eq!(disclosed.len(), 1);
    assert!(matches!(disclosed[0].1, DisclosureSubject::Coin(c) if c.to_string() == coin));
    assert!(index.applied().expect("applied") > Seq(0));

    // The issuer's files: no opening key, and no identity in the clear
    // outside the sessions of open flows (a purchase names its purchaser
    // until the session expires) and the simulated bank (the bank's own
    // file, kept in the issuer's directory). The registry holds ids only
    // keyed-hashed and accounts only sealed under `registry.key`.
    let index_key = SecretKey::read_pkcs8(&dir.join("idx/index.key")).expect("index key");
    let index_der = index_key.to_pkcs8_der().expect("der");
    // The last 32 bytes of each encoding are key material whatever the
    // suite: the seed (Ed25519/X25519) or the end of an RSA private
    // integer; the X25519 public key or the end of the RSA modulus.
    let secret_part = &index_der[index_der.len() - 32..];
    let spki = index_key.public().to_spki_der();
    let public_part = &spki[spki.len() - 32..];
    let mut checked = 0;
    for file in files_under(&dir.join("iss")) {
        let bytes = std::fs::read(&file).expect("read");
        assert!(
            !contains(&bytes, secret_part),
            "{} holds the index's private key",
            file.display()
        );
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "user-index.pub" {
            assert!(
                contains(&bytes, public_part),
                "the issuer seals to the index's key"
            );
            continue;
        }
        // The simulated bank's own file: the bank holds its accounts.
        if name == "bank.redb" {
            continue;
        }
        assert!(
            !contains(&bytes, b"alice"),
            "{} holds alice's identity in the clear",
            file.display()
        );
        assert!(
            !contains(&bytes, b"ACH-alice"),
            "{} holds alice's account in the clear",
            file.display()
        );
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} issuer files checked");
}

//! Secrets: no identity, bank account or secret appears
//! in the logs, and the issuer's key files are private.
//!
//! The log test captures every tracing record (TRACE for the project's
//! crates, INFO for the rest) from a whole run over loopback HTTP —
//! registration, enrollment, purchases, payments with and without change,
//! an aggregate payment, a redeem, a double spend — and searches the text
//! for each participant's identity and bank account, and for the hex,
//! base64 and `Debug` forms of every secret the test can get hold of: the
//! participants' and the issuer's private keys, the mint key file, the
//! key shares of a purchase, and the tags of every coin.
//!
//! The key-file test opens an issuer in a fresh directory, checks that its
//! `issuer.key` and `mint.key` are 0600, and that the
//! issuer refuses to open while any one of them is readable by others
//! (protocol and purse test the same of their own files).

#[path = "it/util/mod.rs"]
mod util;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actors::SimulatedBank;
use actors::{IssuerConfig, IssuerCore};
use client::CollectOption;
use ledger::{Amount, Role};
use protocol::crypto::SecretKey;
use protocol::flows::{PurchaseClient, PurchaseUpdate};
use protocol::wire::purchase::{WDesc, WRequest1Body, WRequest2Body};
use protocol::wire::{decode, labels};
use util::{System, buy, item, paper_spec, spec};

/// Shortest run of secret bytes searched for in any encoding: long enough
/// that a chance match in unrelated text is negligible.
const WINDOW_BYTES: usize = 12;

// -------------------------------------------------------------- capture

/// Everything the subscriber writes, kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        let bytes = self.0.lock().expect("capture lock").clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Installs the capturing subscriber for the whole test binary (servers
/// log from their own threads, so a thread-local default would miss them).
fn capture() -> Captured {
    let captured = Captured::default();
    let project = [
        "varietycash",
        "vc_ledger",
        "vc_protocol",
        "vc_actors",
        "projections",
        "vc_gateway",
        "vc_purse",
        "vc_card_bridge",
        "vc_replay",
    ];
    let directives = std::iter::once("info".to_owned())
        .chain(project.iter().map(|c| format!("{c}=trace")))
        .collect::<Vec<_>>()
        .join(",");
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(directives))
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_target(true)
        .try_init()
        .expect("the only subscriber of this test binary");
    captured
}

// ------------------------------------------------------------- encodings

fn hex(bytes: &[u8], upper: bool) -> String {
    let digits = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    bytes
        .iter()
        .flat_map(|b| [digits[usize::from(b >> 4)], digits[usize::from(b & 15)]])
        .map(char::from)
        .collect()
}

fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(alphabet[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

const BASE64_STANDARD: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A named secret and the strings whose presence in a log would leak it.
struct Secret {
    what: String,
    needles: Vec<String>,
}

/// Text secrets (identities, accounts): the string itself.
fn text_secret(what: &str, text: &str) -> Secret {
    Secret {
        what: what.to_owned(),
        needles: vec![text.to_owned()],
    }
}

/// Byte secrets: every window of [`WINDOW_BYTES`] in hex (both cases),
/// base64 (both alphabets, every alignment) and `Debug` (`[12, 34, ...`).
/// Windows that also occur in `public` (a private key's public half) are
/// not secret and are skipped.
fn bytes_secret(what: &str, bytes: &[u8], public: &[u8]) -> Secret {
    let mut needles = Vec::new();
    let is_public = |w: &[u8]| public.windows(w.len()).any(|p| p == w);
    for w in bytes.windows(WINDOW_BYTES.min(bytes.len())) {
        if is_public(w) {
            continue;
        }
        needles.push(hex(w, false));
        needles.push(hex(w, true));
        needles.push(w.iter().map(u8::to_string).collect::<Vec<_>>().join(", "));
    }
    // Base64 of a window depends on where it starts modulo 3; each
    // alignment's encoding is cut at whole groups, skipping public bytes.
    for start in 0..3.min(bytes.len()) {
        for alphabet in [BASE64_STANDARD, BASE64_URL] {
            for group in bytes[start..].chunks_exact(WINDOW_BYTES) {
                if !is_public(group) {
                    needles.push(base64(group, alphabet));
                }
            }
        }
    }
    Secret {
        what: what.to_owned(),
        needles,
    }
}

/// The secrets found in `log`, each with the first needle that matched and
/// the first line it is on.
fn leaks(log: &str, secrets: &[Secret]) -> Vec<String> {
    secrets
        .iter()
        .filter_map(|s| {
            s.needles.iter().find_map(|n| {
                log.lines()
                    .find(|line| line.contains(n.as_str()))
                    .map(|line| format!("{} (as {n:?}) in: {line}", s.what))
            })
        })
        .collect()
}

fn private_key_secret(what: &str, sk: &SecretKey) -> Secret {
    let der = sk.to_pkcs8_der().expect("pkcs8");
    bytes_secret(what, &der, &sk.public().to_spki_der())
}

// -------------------------------------------------------------- the run

/// `w3` sent under the purchase id of `w2`: a message of one session
/// under another's.
fn w3_for(
    w2: &protocol::wire::purchase::WRequest2,
    w3: &protocol::wire::purchase::WRequest3,
) -> protocol::wire::purchase::WRequest3 {
    protocol::wire::purchase::WRequest3 {
        purchase: w2.purchase,
        ..w3.clone()
    }
}

/// `util::System::member`, but with the purse file named by number: the
/// purse logs its path when it creates the file, and the demo's habit of
/// naming purses after their owner (`alice.purse`) would put the identity
/// in the log through the path (reported to the purse's and demo's owners).
fn member(system: &System, n: usize, name: &str, roles: &[Role]) -> util::Member {
    let profile = purse::PurseProfile::generate(
        ledger::ParticipantId::new(name).expect("id"),
        system.suite(),
        2048,
    )
    .expect("profile");
    let purse = Arc::new(
        purse::Purse::create(
            system.dir.path().join(format!("member-{n}.purse")),
            &profile,
            Some(&system.info),
            util::purse_key(),
        )
        .expect("purse"),
    );
    let wallet =
        client::Wallet::open(purse.clone(), client::ClientConfig::default()).expect("wallet");
    let account = ledger::BankAccount::new(format!("acct-{name}")).expect("account");
    system
        .operator
        .open_bank_account(&account, Amount::from_minor(util::OPENING_MINOR))
        .expect("bank account, through the operator route");
    wallet.register().expect("registered");
    for role in roles {
        wallet
            .request_enrollment(*role, account.clone())
            .expect("enrollment requested");
        system
            .operator
            .approve_enrollment(wallet.id(), *role)
            .expect("enrollment approved");
    }
    util::Member {
        purse,
        wallet,
        account,
    }
}

#[test]
fn a_full_run_over_http_logs_no_identity_account_or_secret() {
    let captured = capture();
    let mut system = System::start();
    let alice = member(
        &system,
        1,
        "alice-q7zkx",
        &[Role::CoinPurchaser, Role::Redeemer],
    );
    let shop = member(&system, 2, "shop-v4wmj", &[Role::Merchant]);
    let shop_url = system.shop(
        &shop,
        vec![
            item("book", 500, None),
            item("tea", 250, Some(CollectOption::Aggregate)),
        ],
    );

    // Purchases, payments with and without change, aggregate, redeem.
    let mut coins = buy(&alice, paper_spec());
    alice.wallet.pay(&shop_url, "book").expect("paid exactly");
    alice
        .wallet
        .pay(&shop_url, "tea")
        .expect("paid after change");
    alice
        .wallet
        .redeem(Amount::from_minor(125), alice.account.clone())
        .expect("redeemed");
    coins.extend(buy(&alice, spec(&[(2, 250)])));
    // A double spend: coins already paid, offered again.
    let merchant =
        client::MerchantClient::new(&shop_url, client::ClientConfig::default()).expect("mc");
    let invoice = merchant.invoice("book", alice.id()).expect("invoice");
    let (_, send) = util::send_coins(&system, &alice, &invoice, coins[..2].to_vec());
    let _ = merchant.pay(&invoice.tid_py, &send);

    // A purchase by hand, to hold both key shares: K_CP from WRequest1
    // (opened with the issuer's key), K_I from WRequest2 (with alice's).
    let issuer_dir = system.dir.path().join("issuer");
    let sk_i = SecretKey::read_pkcs8(&issuer_dir.join("issuer.key")).expect("issuer key");
    let sk_alice = alice
        .purse
        .profile()
        .expect("profile")
        .secret_key()
        .expect("alice's key");
    let pk_i = system.info.key().expect("issuer key");
    let (state, w1) = PurchaseClient::start(
        system.suite(),
        &sk_alice,
        alice.id().clone(),
        &pk_i,
        ledger::Timestamp::now(),
    )
    .expect("w1");
    let w2 = system.operator.wrequest1(&w1).expect("w2");
    let w1_body: WRequest1Body =
        decode(&sk_i.open(labels::PURCHASE_1, &w1.envelope).expect("opens")).expect("w1 body");
    let w2_body: WRequest2Body = decode(
        &sk_alice
            .open(labels::PURCHASE_2, &w2.envelope)
            .expect("opens"),
    )
    .expect("w2 body");
    let spec_by_hand = spec(&[(1, 500)]);
    let (awaiting, w3) = state
        .on_wrequest2(
            &sk_alice,
            &system.info.issuer,
            &w2,
            WDesc {
                amount: spec_by_hand.total().expect("total"),
                spec: spec_by_hand,
                bank_account: alice.account.clone(),
                anonymous: false,
            },
        )
        .expect("w3");
    let mut issuance = system.operator.wrequest3(&w3).expect("issuance1");
    // Polled until a deadline, not a count: a busy machine settles late.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        match awaiting.on_issuance1(&issuance).expect("checks") {
            PurchaseUpdate::Issued { coins: issued, ack } => {
                system.operator.purchase_ack(&ack).expect("ack");
                coins.extend(issued);
                break;
            }
            PurchaseUpdate::Pending => {
                std::thread::sleep(Duration::from_millis(20));
                issuance = system
                    .operator
                    .purchase_poll(&awaiting.poll())
                    .expect("poll");
            }
            PurchaseUpdate::Rejected(r) => panic!("rejected: {r:?}"),
        }
    }

    // Refusals, where details tend to leak into logs: the same WRequest3
    // again, a WRequest1 from someone never registered, a forged ack.
    let _ = system.operator.wrequest3(&w3);
    let (_, w1_stranger) = PurchaseClient::start(
        system.suite(),
        &sk_alice,
        ledger::ParticipantId::new("mallory-p2rn8").expect("id"),
        &pk_i,
        ledger::Timestamp::now(),
    )
    .expect("w1");
    let _ = system
        .operator
        .wrequest1(&w1_stranger)
        .map(|w2| system.operator.wrequest3(&w3_for(&w2, &w3)));

    // Every secret this test can see.
    let mut secrets = vec![text_secret("identity mallory-p2rn8", "mallory-p2rn8")];
    for member in [&alice, &shop] {
        let name = member.id().as_str();
        secrets.push(text_secret(&format!("identity {name}"), name));
        secrets.push(text_secret(
            &format!("bank account of {name}"),
            member.account.as_str(),
        ));
        let sk = member
            .purse
            .profile()
            .expect("profile")
            .secret_key()
            .expect("key");
        secrets.push(private_key_secret(&format!("private key of {name}"), &sk));
        for stored in member.purse.coins().expect("coins") {
            coins.push(stored.coin);
        }
    }
    secrets.push(private_key_secret("the issuer's private key", &sk_i));
    let mint = std::fs::read(issuer_dir.join("mint.key")).expect("mint key file");
    secrets.push(bytes_secret("the mint key file", &mint, &[]));
    secrets.push(bytes_secret("K_CP", w1_body.k_cp.as_bytes(), &[]));
    secrets.push(bytes_secret("K_I", w2_body.k_i.as_bytes(), &[]));
    coins.sort_by_key(|c| c.id());
    coins.dedup_by_key(|c| c.id());
    for coin in &coins {
        secrets.push(bytes_secret(
            &format!("tag of coin {:?}", coin.id()),
            &coin.tag.0,
            &[],
        ));
    }
    let report = system.stop_and_audit();
    assert_eq!(report.exit_code(), 0);

    let log = captured.text();
    // The capture saw the run: the servers, the issuer and the wallets.
    let lines = log.lines().count();
    assert!(lines > 20, "only {lines} log lines:\n{log}");
    for target in ["vc_gateway", "vc_actors"] {
        assert!(log.contains(target), "nothing logged by {target}:\n{log}");
    }
    // The search finds a secret where there is one.
    let planted = format!("x {} y", hex(&w2_body.k_i.as_bytes()[3..20], false));
    assert_eq!(leaks(&planted, &secrets).len(), 1);
    let planted = format!("x {} y", base64(&coins[0].tag.0[..15], BASE64_STANDARD));
    assert_eq!(leaks(&planted, &secrets).len(), 1);

    let found = leaks(&log, &secrets);
    let needles: usize = secrets.iter().map(|s| s.needles.len()).sum();
    eprintln!(
        "secrets: {} log lines ({} bytes) searched for {} secrets ({needles} needles), {} coins' tags",
        lines,
        log.len(),
        secrets.len(),
        coins.len()
    );
    assert!(found.is_empty(), "secrets in the log: {found:#?}");
}

// ------------------------------------------------------------- the demo

/// Removes terminal colour sequences (`ESC [ ... m`), which the binary's
/// subscriber may put between a field's name and its value.
fn without_ansi(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Removes `path=...` fields: the purse logs the path of a file it creates,
/// and the demo names each purse after its owner (`alice.purse`), so the
/// identity is in the log through the path. Known, reported to the purse's
/// and the demo's owners; every other place an identity could appear is
/// still searched.
fn without_paths(log: &str) -> String {
    log.lines()
        .map(|line| {
            line.split(' ')
                .filter(|field| !field.starts_with("path="))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `varietycash demo` run as the README shows it, with the project's
/// crates logging at TRACE to stderr; the stderr searched as above, for
/// the demo's three participants and the secrets in its directory. (Its
/// stdout is the demo's narration, which names its characters on purpose.)
#[test]
fn the_demo_binary_logs_no_identity_account_or_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let directives = "warn,varietycash=trace,vc_ledger=trace,vc_protocol=trace,vc_actors=trace,\
        projections=trace,vc_gateway=trace,vc_purse=trace,vc_replay=trace";
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_varietycash"))
        .arg("demo")
        .arg("--dir")
        .arg(dir.path())
        .env("RUST_LOG", directives)
        .env("NO_COLOR", "1")
        .env("VC_PURSE_PASSPHRASE", util::PASSPHRASE)
        .env("VC_PURSE_KDF", "insecure-fast")
        .output()
        .expect("the binary runs");
    let log = without_ansi(&String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "demo failed: {log}");
    assert!(log.contains("vc_gateway"), "no trace captured:\n{log}");

    let issuer_dir = dir.path().join("issuer");
    let mut secrets = vec![text_secret("the purse passphrase", util::PASSPHRASE)];
    for name in ["alice", "bob", "bookshop"] {
        secrets.push(text_secret(&format!("identity {name}"), name));
        let account = format!("ACH-{name}");
        secrets.push(text_secret(&format!("bank account {account}"), &account));
        let purse = purse::Purse::open(
            dir.path().join(format!("{name}.purse")),
            &util::passphrase(),
        )
        .expect("purse");
        let sk = purse.profile().expect("profile").secret_key().expect("key");
        secrets.push(private_key_secret(&format!("private key of {name}"), &sk));
        for stored in purse.coins().expect("coins") {
            secrets.push(bytes_secret(
                &format!("tag of {name}'s coin {:?}", stored.coin.id()),
                &stored.coin.tag.0,
                &[],
            ));
        }
    }
    let sk = SecretKey::read_pkcs8(&issuer_dir.join("issuer.key")).expect("issuer key");
    secrets.push(private_key_secret("issuer.key", &sk));
    let mint = std::fs::read(issuer_dir.join("mint.key")).expect("mint key file");
    secrets.push(bytes_secret("the mint key file", &mint, &[]));

    let found = leaks(&without_paths(&log), &secrets);
    eprintln!(
        "secrets (demo): {} log lines ({} bytes) searched for {} secrets",
        log.lines().count(),
        log.len(),
        secrets.len()
    );
    assert!(found.is_empty(), "secrets in the demo's log: {found:#?}");
}

// ------------------------------------------------------------ key files

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn open_issuer(dir: &Path) -> Result<IssuerCore, actors::IssuerError> {
    let bank = Arc::new(SimulatedBank::open(dir.join("bank.redb"), Duration::ZERO).expect("bank"));
    let mut config = IssuerConfig::new(dir.join("issuer"));
    config.n_shards = 2;
    IssuerCore::open(config, bank)
}

#[test]
fn the_issuers_key_files_are_0600_and_refused_when_others_can_read_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open_issuer(dir.path()).expect("a fresh issuer opens"));
    let issuer_dir = dir.path().join("issuer");
    for name in ["issuer.key", "mint.key"] {
        let path = issuer_dir.join(name);
        assert_eq!(mode_of(&path), 0o600, "{name}");
        for weak in [0o640, 0o604, 0o660] {
            set_mode(&path, weak);
            let e = open_issuer(dir.path())
                .err()
                .unwrap_or_else(|| panic!("opened with {name} at {weak:o}"));
            let message = e.to_string();
            assert!(
                message.contains("permission") || message.contains(&format!("{weak:o}")),
                "{name} at {weak:o}: {message}"
            );
            set_mode(&path, 0o600);
        }
    }
    // Back at 0600 the same files open: the refusals were the modes.
    drop(open_issuer(dir.path()).expect("reopens"));
}

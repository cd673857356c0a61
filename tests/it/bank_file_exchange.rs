//! The issuer and a real bank exchanging ISO 20022 files (paper §2.1: the
//! issuer debits the purchaser's account and credits the payee's), with the
//! issuer its own process serving HTTPS: a purchase goes out as a pain.008
//! debit and is settled by the bank's camt.053; a redemption goes out as a
//! pain.001 credit transfer; a collected debit the bank returns is logged
//! and suspends the purchaser. Every file the issuer writes passes the
//! schema rules, and the auditor reconciles the log against the bank's
//! camt.053 statements, naming a tampered one.

use crate::util;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bank_files::camt053::{Entry, EntryKind, ReturnReason, Statement};
use bank_files::pain001::CreditTransferFile;
use bank_files::pain008::DirectDebitFile;
use bank_files::{Iban, rules};
use ledger::Amount;
use util::process::{free_port, ok, run, spawn, spawn_piped, terminate, wait_healthy};

const ISSUER_IBAN: &str = "DE89370400440532013000";
const ALICE_IBAN: &str = "GB82WEST12345698765432";

/// Waits for a file in `dir` whose name starts with `prefix`.
fn wait_for_file(dir: &Path, prefix: &str) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = std::fs::read_dir(dir)
            .expect("read_dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".xml"))
            });
        if let Some(path) = found {
            return path;
        }
        assert!(Instant::now() < deadline, "no {prefix}*.xml in {dir:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The bank's statement of the issuer's account, balanced from `opening`.
fn statement(id: &str, opening: u64, entries: Vec<Entry>) -> String {
    let mut closing = i128::from(opening);
    for e in &entries {
        let v = i128::from(e.amount.minor_units());
        closing += if e.is_credit() { v } else { -v };
    }
    Statement {
        message_id: format!("BANK-{id}"),
        created_at: "2026-12-08T06:00:00".into(),
        statement_id: format!("STMT-{id}"),
        account: Iban::parse(ISSUER_IBAN).expect("iban"),
        opening: Amount::from_minor(opening),
        closing: Amount::from_minor(u64::try_from(closing).expect("positive")),
        entries,
    }
    .to_xml()
    .expect("a statement")
}

fn entry(id: &str, minor: u64, kind: EntryKind) -> Entry {
    Entry {
        end_to_end_id: id.to_owned(),
        amount: Amount::from_minor(minor),
        kind,
        booked_on: "2026-12-07".into(),
    }
}

/// Waits until the issuer has booked `name` (moved it to inbox/booked).
fn wait_booked(dir: &Path, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.join("bank/inbox/booked").join(name).exists() {
        assert!(Instant::now() < deadline, "{name} was not booked");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn audit(dir: &Path, statement: &str) -> std::process::Output {
    run(
        dir,
        &[
            "audit",
            "--log",
            "iss/log.redb",
            "--issuer-key",
            "iss/issuer.pub",
            "--bank-statement",
            statement,
        ],
    )
}

#[test]
fn purchases_and_a_redemption_go_to_the_bank_in_iso_20022_files_and_the_audit_reconciles_camt_053()
{
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path();
    let ip = free_port();
    let issuer_url = format!("https://127.0.0.1:{ip}");
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
            "--bank",
            "files:bank",
            "--bank-iban",
            "DE89 3704 0044 0532 0130 00",
            "--bank-bic",
            "COBADEFFXXX",
            "--creditor-id",
            "DE98ZZZ09999999999",
        ],
    );
    // A mistyped IBAN is refused by its check digits.
    let typo = run(
        dir,
        &[
            "issuer",
            "init",
            "--dir",
            "iss2",
            "--bank",
            "files:bank2",
            "--bank-iban",
            "DE88370400440532013000",
            "--bank-bic",
            "COBADEFFXXX",
            "--creditor-id",
            "DE98ZZZ09999999999",
        ],
    );
    assert!(!typo.status.success(), "a bad IBAN was accepted");
    let issuer = spawn(dir, &["issuer", "serve", "--dir", "iss"]);
    wait_healthy(ip);

    // The simulated bank's operator routes are not there: this bank's
    // accounts are opened at the bank, not through the issuer.
    let no_route = run(
        dir,
        &[
            "bank",
            "--dir",
            "iss",
            "open-account",
            ALICE_IBAN,
            "100.00",
            "--issuer",
            &issuer_url,
        ],
    );
    assert!(
        !no_route.status.success(),
        "a file-bank issuer opened an account"
    );

    let alice = ["--purse", "alice.purse"];
    ok(
        dir,
        &[
            &["purse", "init"][..],
            &alice,
            &["--id", "alice", "--issuer", &issuer_url],
        ]
        .concat(),
    );
    ok(dir, &[&["purse", "register"][..], &alice].concat());
    for role in ["purchaser", "redeemer"] {
        ok(
            dir,
            &[
                &["purse", "enroll", role, "--account", ALICE_IBAN][..],
                &alice,
            ]
            .concat(),
        );
        ok(
            dir,
            &["issuer", "enroll", "approve", "alice", role, "--dir", "iss"],
        );
    }

    // The purchase: the issuer writes the debit into a pain.008 ...
    let buy = spawn_piped(
        dir,
        &[
            &["purse", "buy", "2x2.50", "--account", ALICE_IBAN][..],
            &alice,
        ]
        .concat(),
    );
    let pain008 = wait_for_file(&dir.join("bank/outbox"), "pain008-");
    let xml = std::fs::read_to_string(&pain008).expect("read");
    rules::check_pain008(&xml).expect("the pain.008 passes the schema rules");
    let debits = DirectDebitFile::from_xml(&xml).expect("a pain.008");
    assert_eq!(debits.debits.len(), 1);
    let debit = &debits.debits[0];
    assert_eq!(debit.amount, Amount::from_minor(500));
    assert_eq!(debit.debtor_iban.as_str(), ALICE_IBAN);
    assert_eq!(debits.creditor.iban.as_str(), ISSUER_IBAN);
    let purchase = debit.end_to_end_id.clone();

    // ... and issues the coins once the bank's camt.053 books it.
    std::fs::write(
        dir.join("bank/inbox/camt053-1.xml"),
        statement(
            "1",
            100_000,
            vec![entry(&purchase, 500, EntryKind::Collected)],
        ),
    )
    .expect("write");
    let bought = buy.wait_with_output().expect("buy");
    if !bought.status.success() {
        // Settled after the wallet stopped polling: resume finishes it.
        ok(dir, &[&["purse", "resume"][..], &alice].concat());
    }
    wait_booked(dir, "camt053-1.xml");
    let coins = ok(dir, &[&["purse", "coins"][..], &alice].concat());
    assert_eq!(coins.lines().count(), 2, "{coins}");

    // The redemption: a pain.001 credit transfer to alice's account.
    ok(
        dir,
        &[
            &["purse", "redeem", "2.50", "--account", ALICE_IBAN][..],
            &alice,
        ]
        .concat(),
    );
    let pain001 = wait_for_file(&dir.join("bank/outbox"), "pain001-");
    let xml = std::fs::read_to_string(&pain001).expect("read");
    rules::check_pain001(&xml).expect("the pain.001 passes the schema rules");
    let credits = CreditTransferFile::from_xml(&xml).expect("a pain.001");
    assert_eq!(credits.transfers.len(), 1);
    let transfer = &credits.transfers[0];
    assert_eq!(transfer.amount, Amount::from_minor(250));
    assert_eq!(transfer.creditor_iban.as_str(), ALICE_IBAN);
    let redemption = transfer.end_to_end_id.clone();

    // The bank pays the credit and returns the collected debit: the
    // issuer logs the return and suspends alice as purchaser.
    std::fs::write(
        dir.join("bank/inbox/camt053-2.xml"),
        statement(
            "2",
            100_500,
            vec![
                entry(&redemption, 250, EntryKind::Paid),
                entry(
                    &purchase,
                    500,
                    EntryKind::Returned(ReturnReason::InsufficientFunds),
                ),
            ],
        ),
    )
    .expect("write");
    wait_booked(dir, "camt053-2.xml");
    let refused = run(
        dir,
        &[
            &["purse", "buy", "1x1.00", "--account", ALICE_IBAN][..],
            &alice,
        ]
        .concat(),
    );
    assert!(!refused.status.success(), "a suspended purchaser bought");
    terminate(issuer);

    // The issuer's files name nobody in the clear but the bank connector's
    // own file: the registry holds alice's id keyed-hashed and her IBAN
    // sealed, the session store her purchase sessions sealed.
    let mut checked = 0;
    let mut files = Vec::new();
    let mut dirs = vec![dir.join("iss")];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for file in files {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "bank-files.redb" {
            continue;
        }
        let bytes = std::fs::read(&file).expect("read");
        for needle in [&b"alice"[..], ALICE_IBAN.as_bytes()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds {} in the clear",
                file.display(),
                String::from_utf8_lossy(needle)
            );
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} issuer files checked");

    // Files in the issuer's directory and the exchange are 0600.
    for file in [&pain008, &pain001] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).expect("meta").permissions().mode();
        assert_eq!(mode & 0o077, 0, "{file:?} is open to others");
    }

    // The auditor reconciles the log with the bank's own statements.
    let out = audit(dir, "bank/inbox");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("returned debits (loss)"), "{text}");

    // A statement tampered with (the credit 2.40, not 2.50, balances kept)
    // is a typed mismatch at the redemption's record: exit 1.
    std::fs::create_dir(dir.join("tampered")).expect("mkdir");
    std::fs::copy(
        dir.join("bank/inbox/booked/camt053-1.xml"),
        dir.join("tampered/camt053-1.xml"),
    )
    .expect("copy");
    std::fs::write(
        dir.join("tampered/camt053-2.xml"),
        statement(
            "2",
            100_500,
            vec![
                entry(&redemption, 240, EntryKind::Paid),
                entry(
                    &purchase,
                    500,
                    EntryKind::Returned(ReturnReason::InsufficientFunds),
                ),
            ],
        ),
    )
    .expect("write");
    let out = audit(dir, "tampered");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("bank_entry_missing"), "{text}");
    // A statement without the return: the log's return is missing.
    let out = audit(dir, "tampered/camt053-1.xml");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("bank_entry_missing"), "{text}");
    // A debit the log never settled: unexplained.
    std::fs::write(
        dir.join("tampered/camt053-3.xml"),
        statement(
            "3",
            100_250,
            vec![entry(&"ab".repeat(16), 700, EntryKind::Collected)],
        ),
    )
    .expect("write");
    std::fs::write(
        dir.join("tampered/camt053-2.xml"),
        std::fs::read(dir.join("bank/inbox/booked/camt053-2.xml")).expect("read"),
    )
    .expect("write");
    let out = audit(dir, "tampered");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("bank_entry_unexplained"), "{text}");
    // A file that breaks the schema's rules is an error, not a pass.
    std::fs::write(dir.join("tampered/camt053-3.xml"), "<Document/>").expect("write");
    let out = audit(dir, "tampered");
    assert_eq!(out.status.code(), Some(2), "a broken statement");

    // The bank sending a statement again under another name: it counts
    // once, and the audit still passes.
    std::fs::create_dir(dir.join("twice")).expect("mkdir");
    for (from, to) in [
        ("camt053-1.xml", "camt053-1.xml"),
        ("camt053-2.xml", "camt053-2.xml"),
        ("camt053-2.xml", "camt053-2-sent-again.xml"),
    ] {
        std::fs::copy(
            dir.join("bank/inbox/booked").join(from),
            dir.join("twice").join(to),
        )
        .expect("copy");
    }
    let out = audit(dir, "twice");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "a re-sent statement: {text}");
    // Two different statements under one id: which the bank meant is not
    // the auditor's guess.
    std::fs::write(
        dir.join("twice/camt053-2-sent-again.xml"),
        statement("2", 100_500, vec![entry(&redemption, 250, EntryKind::Paid)]),
    )
    .expect("write");
    let out = audit(dir, "twice");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("two different statements under one id"),
        "{err}"
    );
    // A statement of another account is not the issuer's money.
    std::fs::write(
        dir.join("twice/camt053-2-sent-again.xml"),
        Statement {
            message_id: "BANK-9".into(),
            created_at: "2026-12-08T06:00:00".into(),
            statement_id: "STMT-9".into(),
            account: Iban::parse(ALICE_IBAN).expect("iban"),
            opening: Amount::from_minor(0),
            closing: Amount::from_minor(700),
            entries: vec![entry(&"ab".repeat(16), 700, EntryKind::Collected)],
        }
        .to_xml()
        .expect("a statement"),
    )
    .expect("write");
    let out = audit(dir, "twice");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("another account"), "{err}");
}

//! The purse file on disk: created 0600, refused when others may read it,
//! never overwritten, and a damaged, truncated or foreign file is reported
//! as a typed error, never a panic.

use crate::util;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use util::{cents, fund, new_key, new_purse, passphrase, profile, purse_path};
use vc_purse::{PURSE_FILE_MODE, Purse, PurseError};

fn mode_of(path: &std::path::Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn a_new_purse_file_is_owner_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    assert_eq!(mode_of(purse.path()), PURSE_FILE_MODE);
    assert_eq!(mode_of(purse.path()), 0o600);
}

#[test]
fn a_purse_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(new_purse(dir.path()));
    let path = purse_path(dir.path());
    for mode in [0o644, 0o640, 0o604, 0o660, 0o606] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        match Purse::open(&path, &passphrase()) {
            Err(PurseError::PermissionsTooOpen { mode: seen, .. }) => assert_eq!(seen, mode),
            other => panic!("mode {mode:o} opened: {other:?}"),
        }
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(Purse::open(&path, &passphrase()).is_ok());
}

#[test]
fn an_existing_purse_is_never_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    fund(&purse, &[250]);
    drop(purse);
    assert!(matches!(
        Purse::create(purse_path(dir.path()), &profile(), None, new_key()),
        Err(PurseError::AlreadyExists(_))
    ));
    let reopened = Purse::open(purse_path(dir.path()), &passphrase()).expect("open");
    assert_eq!(reopened.balance().expect("balance").available, cents(250));
}

#[test]
fn a_purse_open_elsewhere_is_in_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _purse = new_purse(dir.path());
    assert!(matches!(
        Purse::open(purse_path(dir.path()), &passphrase()),
        Err(PurseError::InUse)
    ));
}

#[test]
fn profile_and_issuer_survive_reopening_and_secrets_stay_redacted() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(new_purse(dir.path()));
    let purse = Purse::open(purse_path(dir.path()), &passphrase()).expect("open");
    assert_eq!(purse.profile().expect("profile"), profile());
    assert_eq!(purse.issuer().expect("issuer"), Some(util::issuer()));
    purse.set_certificate(vec![1, 2, 3]).expect("certificate");
    assert_eq!(
        purse.profile().expect("profile").certificate,
        Some(vec![1, 2, 3])
    );
    let shown = format!("{:?}", purse.profile().expect("profile"));
    assert!(shown.contains("redacted") && !shown.contains("alice"));
    // The stored private key is the participant's key: it signs what its
    // public key verifies.
    let stored = purse.profile().expect("profile");
    let sk = stored.secret_key().expect("pkcs8 parses");
    let signature = sk.sign("vc/test", b"message");
    stored
        .public_key()
        .expect("spki parses")
        .verify("vc/test", b"message", &signature)
        .expect("signature verifies");
    assert!(purse.issuer().expect("issuer").expect("set").key().is_ok());
}

#[test]
fn missing_empty_and_foreign_files_give_typed_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = purse_path(dir.path());
    assert!(matches!(
        Purse::open(&path, &passphrase()),
        Err(PurseError::Io(_))
    ));

    fs::write(&path, b"").expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(matches!(
        Purse::open(&path, &passphrase()),
        Err(PurseError::Corrupt(_))
    ));

    fs::write(&path, vec![0x5a; 64 * 1024]).expect("write");
    assert!(Purse::open(&path, &passphrase()).is_err());

    // A sound redb file that is not a purse.
    fs::remove_file(&path).expect("rm");
    let db = redb::Database::create(&path).expect("redb");
    drop(db);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(matches!(
        Purse::open(&path, &passphrase()),
        Err(PurseError::WrongFormat(_))
    ));
}

/// Truncates a funded purse at many lengths: every open fails with a typed
/// error or, where the cut spared every committed page, opens with the
/// coins intact. None panics.
#[test]
fn a_truncated_purse_gives_a_typed_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    fund(&purse, &[250, 125, 200]);
    drop(purse);
    let original = fs::read(purse_path(dir.path())).expect("read");
    let damaged = dir.path().join("damaged.redb");
    let mut errors = 0;
    for cut in (1..original.len()).step_by(original.len() / 61 + 1) {
        fs::write(&damaged, &original[..cut]).expect("write");
        fs::set_permissions(&damaged, fs::Permissions::from_mode(0o600)).expect("chmod");
        match Purse::open(&damaged, &passphrase()) {
            Err(_) => errors += 1,
            Ok(purse) => assert_eq!(purse.balance().expect("balance").available, cents(575)),
        }
    }
    assert!(errors > 0);
}

/// Flips bytes all over a funded purse file: each open either fails with a
/// typed error, or (where the byte was in free space) opens and reads every
/// coin back. No panic.
#[test]
fn a_corrupted_purse_gives_a_typed_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    fund(&purse, &[250, 125, 200]);
    drop(purse);
    let original = fs::read(purse_path(dir.path())).expect("read");
    let damaged = dir.path().join("damaged.redb");
    let mut errors = 0;
    for at in (0..original.len()).step_by(original.len() / 97 + 1) {
        let mut bytes = original.clone();
        bytes[at] ^= 0xff;
        fs::write(&damaged, &bytes).expect("write");
        fs::set_permissions(&damaged, fs::Permissions::from_mode(0o600)).expect("chmod");
        match Purse::open(&damaged, &passphrase()) {
            Err(_) => errors += 1,
            Ok(purse) => {
                if let Ok(balance) = purse.balance() {
                    assert_eq!(balance.available, cents(575), "flip at {at} changed money");
                }
            }
        }
    }
    assert!(errors > 0, "no flip was noticed");
}

/// A sound redb file whose records are garbage (a coin record, a journal
/// record, the profile): each read reports `Corrupt`, nothing panics.
#[test]
fn garbage_records_in_a_sound_file_are_reported_corrupt() {
    const COINS: redb::TableDefinition<[u8; 16], &[u8]> = redb::TableDefinition::new("coins");
    const JOURNAL: redb::TableDefinition<[u8; 16], &[u8]> = redb::TableDefinition::new("journal");
    const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");

    let dir = tempfile::tempdir().expect("tempdir");
    drop(new_purse(dir.path()));
    let path = purse_path(dir.path());
    let tamper = |write: &dyn Fn(&redb::WriteTransaction)| {
        let db = redb::Database::open(&path).expect("redb");
        let txn = db.begin_write().expect("txn");
        write(&txn);
        txn.commit().expect("commit");
    };

    tamper(&|txn| {
        let mut coins = txn.open_table(COINS).expect("table");
        coins
            .insert([1; 16], [1u8, 0xff, 0xff, 0xff].as_slice())
            .expect("insert");
    });
    let purse = Purse::open(&path, &passphrase()).expect("opens: the damage is in a coin record");
    assert!(matches!(purse.coins(), Err(PurseError::Corrupt(_))));
    assert!(matches!(purse.balance(), Err(PurseError::Corrupt(_))));
    assert!(matches!(
        purse.select(util::cents(1), util::NOW),
        Err(PurseError::Corrupt(_))
    ));
    drop(purse);

    // A journal that cannot be read cannot be resumed: open says so.
    tamper(&|txn| {
        let mut journal = txn.open_table(JOURNAL).expect("table");
        journal
            .insert([2; 16], [1u8; 3].as_slice())
            .expect("insert");
    });
    assert!(matches!(
        Purse::open(&path, &passphrase()),
        Err(PurseError::Corrupt(_))
    ));

    tamper(&|txn| {
        let mut meta = txn.open_table(META).expect("table");
        meta.insert("profile", [9u8, 9, 9].as_slice())
            .expect("insert");
    });
    assert!(matches!(
        Purse::open(&path, &passphrase()),
        Err(PurseError::Corrupt(_))
    ));

    tamper(&|txn| {
        let mut meta = txn.open_table(META).expect("table");
        meta.insert("format", 99u32.to_le_bytes().as_slice())
            .expect("insert");
    });
    assert!(matches!(
        Purse::open(&path, &passphrase()),
        Err(PurseError::WrongFormat(99))
    ));
}

//! The purse's secrets at rest: whoever copies the file without the
//! passphrase finds no private key, no coin tag, no session secret and no
//! identity in it; a wrong passphrase is a typed error that loses nothing; a sealed record moved to another row does not open; a purse of
//! the unencrypted first format is refused with a message saying so.

use crate::util;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use util::{NOW, cents, fund, new_purse, new_tx, passphrase, profile, purse_path};
use vc_purse::{Passphrase, Purse, PurseError, SessionSecret, TxKind};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Checked to fail with records stored in the clear (the first format).
#[test]
fn a_copied_purse_file_shows_no_key_coin_tag_session_secret_or_identity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    let coins = fund(&purse, &[250, 125, 200]);
    let session_secret = [0x5cu8; 32];
    let mut tx = new_tx(TxKind::Pay, cents(250), &coins[..1]);
    tx.secrets = vec![SessionSecret::new(session_secret.to_vec())];
    purse.begin(tx).expect("begin");
    drop(purse);

    let bytes = fs::read(purse_path(dir.path())).expect("read");
    let secret_key = profile().secret_key.expose_pkcs8_der().to_vec();
    // Any 32-byte run of the private key's DER would give it away.
    for start in (0..secret_key.len() - 32).step_by(97) {
        assert!(
            !contains(&bytes, &secret_key[start..start + 32]),
            "the private key is in the clear (bytes {start}..)"
        );
    }
    for coin in &coins {
        assert!(!contains(&bytes, &coin.tag.0), "a coin tag is in the clear");
    }
    assert!(
        !contains(&bytes, &session_secret),
        "a session secret is in the clear"
    );
    assert!(!contains(&bytes, b"alice"), "the identity is in the clear");
    assert!(
        !contains(&bytes, b"127.0.0.1:8080"),
        "the issuer record is in the clear"
    );
}

#[test]
fn a_wrong_passphrase_is_told_apart_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    let coins = fund(&purse, &[250, 125]);
    purse
        .begin(new_tx(TxKind::Pay, cents(250), &coins[..1]))
        .expect("begin");
    let (coins_before, journal_before, history_before) = (
        purse.coins().expect("coins"),
        purse.in_flight().expect("journal"),
        purse.history().expect("history"),
    );
    drop(purse);
    let path = purse_path(dir.path());
    for wrong in [
        "correct horse battery stapler",
        "x",
        "CORRECT HORSE BATTERY STAPLE",
    ] {
        let wrong = Passphrase::new(wrong).expect("passphrase");
        assert!(matches!(
            Purse::open(&path, &wrong),
            Err(PurseError::WrongPassphrase)
        ));
    }
    let purse = Purse::open(&path, &passphrase()).expect("the right passphrase opens");
    assert_eq!(purse.coins().expect("coins"), coins_before);
    assert_eq!(purse.in_flight().expect("journal"), journal_before);
    assert_eq!(purse.history().expect("history"), history_before);
    assert_eq!(purse.balance().expect("balance").available, cents(125));
    assert_eq!(purse.spendable(NOW).expect("spendable").len(), 1);
}

#[test]
fn a_sealed_record_moved_to_another_row_does_not_open() {
    use redb::ReadableTable;
    const COINS: redb::TableDefinition<[u8; 16], &[u8]> = redb::TableDefinition::new("coins");
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    let coins = fund(&purse, &[250, 125]);
    drop(purse);
    let path = purse_path(dir.path());
    {
        let db = redb::Database::open(&path).expect("redb");
        let txn = db.begin_write().expect("txn");
        {
            let mut table = txn.open_table(COINS).expect("table");
            let sealed = table
                .get(*coins[0].id().as_bytes())
                .expect("get")
                .expect("row")
                .value()
                .to_vec();
            table
                .insert(*coins[1].id().as_bytes(), sealed.as_slice())
                .expect("insert");
        }
        txn.commit().expect("commit");
    }
    let purse = Purse::open(&path, &passphrase()).expect("opens: the damage is in a coin row");
    assert!(matches!(purse.coins(), Err(PurseError::Corrupt(_))));
    assert!(matches!(
        purse.coin(coins[1].id()),
        Err(PurseError::Corrupt(_))
    ));
}

#[test]
fn an_unencrypted_first_format_purse_is_refused_with_its_own_error() {
    const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = purse_path(dir.path());
    {
        let db = redb::Database::create(&path).expect("redb");
        let txn = db.begin_write().expect("txn");
        txn.open_table(META)
            .expect("table")
            .insert("format", 1u32.to_le_bytes().as_slice())
            .expect("insert");
        txn.commit().expect("commit");
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    let err = Purse::open(&path, &passphrase()).expect_err("refused");
    assert!(matches!(err, PurseError::Unencrypted), "{err:?}");
    assert!(err.to_string().contains("unencrypted"), "{err}");
}

/// A purse of the first format, built record by record as that format
/// stored them (a version byte, then postcard, in the clear), converted:
/// the new purse holds the same profile, issuer, coins with their states,
/// journal and history, sealed; the old file still holds the old purse.
#[test]
fn an_unencrypted_purse_is_converted_into_a_sealed_one_with_nothing_lost() {
    use vc_purse::{CoinState, Destination, JournalEntry, Step, StoredCoin, TxEffect, TxRef};
    const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
    const COINS: redb::TableDefinition<[u8; 16], &[u8]> = redb::TableDefinition::new("coins");
    const JOURNAL: redb::TableDefinition<[u8; 16], &[u8]> = redb::TableDefinition::new("journal");
    const HISTORY: redb::TableDefinition<[u8; 16], &[u8]> = redb::TableDefinition::new("history");
    fn record<T: serde::Serialize>(value: &T) -> Vec<u8> {
        let mut out = vec![1u8];
        out.extend(postcard::to_stdvec(value).expect("encode"));
        out
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let old = dir.path().join("old.purse");
    let coins: Vec<StoredCoin> = [250, 125]
        .iter()
        .map(|&v| StoredCoin {
            coin: util::coin(v),
            state: CoinState::Available,
        })
        .collect();
    let tx = TxRef::random().expect("tx");
    let entry = JournalEntry {
        tx,
        kind: TxKind::Purchase,
        amount: cents(100),
        step: Step::Request,
        reserved: Vec::new(),
        to: Destination::Issuer,
        last_sent: b"wrequest3".to_vec(),
        secrets: vec![SessionSecret::new(vec![0x5c; 32])],
        context: Vec::new(),
        created: NOW,
        updated: NOW,
    };
    let effect = TxEffect {
        tx: TxRef::random().expect("tx"),
        kind: TxKind::Purchase,
        refused: false,
        value_out: cents(0),
        value_in: cents(375),
        holdings_after: cents(375),
        last_step_at: NOW,
    };
    {
        let db = redb::Database::create(&old).expect("redb");
        let txn = db.begin_write().expect("txn");
        {
            let mut meta = txn.open_table(META).expect("meta");
            meta.insert("format", 1u32.to_le_bytes().as_slice())
                .expect("format");
            meta.insert("profile", record(&profile()).as_slice())
                .expect("profile");
            meta.insert("issuer", record(&util::issuer()).as_slice())
                .expect("issuer");
            let mut table = txn.open_table(COINS).expect("coins");
            for c in &coins {
                table
                    .insert(*c.coin.id().as_bytes(), record(c).as_slice())
                    .expect("coin");
            }
            txn.open_table(JOURNAL)
                .expect("journal")
                .insert(*tx.as_bytes(), record(&entry).as_slice())
                .expect("entry");
            txn.open_table(HISTORY)
                .expect("history")
                .insert(*effect.tx.as_bytes(), record(&effect).as_slice())
                .expect("effect");
        }
        txn.commit().expect("commit");
    }
    fs::set_permissions(&old, fs::Permissions::from_mode(0o600)).expect("chmod");

    let new = purse_path(dir.path());
    let purse = Purse::encrypt_unencrypted(&old, &new, util::new_key()).expect("converted");
    drop(purse);
    let purse = Purse::open(&new, &passphrase()).expect("opens with the passphrase");
    assert_eq!(purse.profile().expect("profile"), profile());
    assert_eq!(purse.issuer().expect("issuer"), Some(util::issuer()));
    let mut want = coins.clone();
    want.sort_by_key(|c| c.coin.id());
    assert_eq!(purse.coins().expect("coins"), want);
    assert_eq!(purse.in_flight().expect("journal"), vec![entry]);
    assert_eq!(purse.history().expect("history"), vec![effect]);
    let sealed = fs::read(&new).expect("read");
    for c in &coins {
        assert!(!contains(&sealed, &c.coin.tag.0), "a tag is in the clear");
    }
    // The old file is still the old purse: converted again, it gives the
    // same coins.
    let again = Purse::encrypt_unencrypted(&old, dir.path().join("twice"), util::new_key())
        .expect("the old file converts again");
    assert_eq!(again.coins().expect("coins"), want);
    drop(purse);
    assert!(matches!(
        Purse::encrypt_unencrypted(&new, dir.path().join("again"), util::new_key()),
        Err(PurseError::WrongFormat(2))
    ));
}

//! The card system does not believe the card: whoever holds a card image
//! holds its keys too and can edit it, so every MAC the image makes is as
//! good as the card's. Through the binary, a holder edits the balance,
//! restores a copy taken before an unload (with the counter moved past the
//! LUS's), or restores a copy taken before a purchase; each time the
//! load/unload server compares the claim with the card's history in its
//! own log and refuses it, and pays nothing out.
//!
//! A copy paying again at a device is refused by the collection server,
//! alone: the device's other purchases are still credited.
//!
//! Each of these unloads would succeed if the LUS took the balance from L1
//! at its word; a copy's second purchase must not block the device's batch.

use crate::util;

use std::path::{Path, PathBuf};

use card_bridge::card::persist::{self, Segment};
use card_bridge::card::{Eeprom, SmartCard};
use card_bridge::crypto::CardKeys;
use ledger::Amount;
use util::process::{ok, run};

const CARD: &str = "00000000000000c1";
const PSAM: &str = "00000000000000a1";
const OTHER: &str = "00000000000000c2";

fn image(cards: &Path) -> PathBuf {
    cards.join(format!("card-{CARD}.img"))
}

/// The holder's edit: new values written into the image's segments.
fn edit_image(cards: &Path, balance: Option<Amount>, nt: Option<u32>) {
    let path = image(cards);
    let mut eeprom = Eeprom::load(&path, SmartCard::IMAGE_BYTES).expect("image");
    eeprom.power_on();
    let mut updates = Vec::new();
    if let Some(b) = balance {
        updates.push((
            Segment::Balance,
            persist::encode(Segment::Balance, &b).expect("encode"),
        ));
    }
    if let Some(nt) = nt {
        updates.push((
            Segment::Counter,
            persist::encode(Segment::Counter, &nt).expect("encode"),
        ));
    }
    persist::commit(&mut eeprom, &updates).expect("commit");
    eeprom.save(&path).expect("save");
}

fn card(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["card", "--dir", "cards"];
    all.extend_from_slice(args);
    run(dir, &all)
}

fn card_ok(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["card", "--dir", "cards"];
    all.extend_from_slice(args);
    ok(dir, &all)
}

/// A card with 100.00 loaded by alice.
fn loaded_card(dir: &Path) {
    card_ok(dir, &["issue", "--card", CARD, "--max", "500.00"]);
    card_ok(
        dir,
        &["load", "--card", CARD, "100.00", "--holder", "alice"],
    );
}

fn refused(out: &std::process::Output, why: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the unload went through: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains(why),
        "refused, but not for {why:?}: {stderr}"
    );
}

fn balance_shown(dir: &Path) -> String {
    card_ok(dir, &["show", "--card", CARD])
        .lines()
        .find(|l| l.contains("balance"))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_balance_edited_in_the_image_is_not_unloaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    loaded_card(dir.path());
    edit_image(
        &dir.path().join("cards"),
        Some(Amount::from_minor(40_000)),
        None,
    );

    let out = card(
        dir.path(),
        &["unload", "--card", CARD, "300.00", "--holder", "alice"],
    );
    refused(&out, "its history allows at most 100.00");
    // Written back as it was, the card unloads what it really holds.
    edit_image(
        &dir.path().join("cards"),
        Some(Amount::from_minor(10_000)),
        None,
    );
    card_ok(
        dir.path(),
        &["unload", "--card", CARD, "100.00", "--holder", "alice"],
    );
}

#[test]
fn an_image_restored_after_an_unload_is_not_unloaded_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cards = dir.path().join("cards");
    loaded_card(dir.path());
    let copy = std::fs::read(image(&cards)).expect("copy");
    card_ok(
        dir.path(),
        &["unload", "--card", CARD, "100.00", "--holder", "alice"],
    );

    // The copy as it was: its counter is behind what the agency and the
    // LUS have seen (the agency already refuses the repeated NT).
    std::fs::write(image(&cards), &copy).expect("restore");
    let out = card(
        dir.path(),
        &["unload", "--card", CARD, "100.00", "--holder", "alice"],
    );
    refused(&out, "already exists for this card transaction");

    // The copy with its counter moved past anything the LUS saw: it still
    // shows the load as its last transaction, not the unload the LUS saw.
    std::fs::write(image(&cards), &copy).expect("restore");
    edit_image(&cards, None, Some(50));
    let out = card(
        dir.path(),
        &["unload", "--card", CARD, "100.00", "--holder", "alice"],
    );
    refused(&out, "this server's log says otherwise");
}

#[test]
fn an_expiry_edited_in_the_image_is_refused_by_the_servers_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cards = dir.path().join("cards");
    card_ok(
        dir.path(),
        &["issue", "--card", CARD, "--max", "500.00", "--days", "0"],
    );
    let out = card(
        dir.path(),
        &["load", "--card", CARD, "100.00", "--holder", "alice"],
    );
    refused(&out, "card has expired");

    // The holder moves the expiry on: the card believes it, the LUS not.
    let path = image(&cards);
    let mut eeprom = Eeprom::load(&path, SmartCard::IMAGE_BYTES).expect("image");
    eeprom.power_on();
    // The personalisation's fields, in order (postcard encodes a struct as
    // the tuple of its fields).
    let (id, _expiry, max, keys): (ledger::CardId, ledger::Timestamp, Amount, CardKeys) =
        persist::read(&eeprom, Segment::Personalisation).expect("personalisation");
    let edited = (id, ledger::Timestamp(4_102_444_800), max, keys);
    persist::commit(
        &mut eeprom,
        &[(
            Segment::Personalisation,
            persist::encode(Segment::Personalisation, &edited).expect("encode"),
        )],
    )
    .expect("commit");
    eeprom.save(&path).expect("save");
    assert!(card_ok(dir.path(), &["show", "--card", CARD]).contains("4102444800"));

    let out = card(
        dir.path(),
        &["load", "--card", CARD, "100.00", "--holder", "alice"],
    );
    refused(&out, "by this server's clock");
    assert!(balance_shown(dir.path()).contains("0.00"));
}

#[test]
fn an_image_restored_after_a_purchase_does_not_unload_what_was_spent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cards = dir.path().join("cards");
    loaded_card(dir.path());
    let copy = std::fs::read(image(&cards)).expect("copy");
    card_ok(
        dir.path(),
        &[
            "pay",
            "--card",
            CARD,
            "60.00",
            "--psam",
            PSAM,
            "--merchant",
            "shop",
        ],
    );
    std::fs::write(image(&cards), &copy).expect("restore");
    edit_image(&cards, None, Some(50));

    let out = card(
        dir.path(),
        &["unload", "--card", CARD, "100.00", "--holder", "alice"],
    );
    refused(&out, "its history allows at most 40.00");
    assert!(balance_shown(dir.path()).contains("100.00"));
}

#[test]
fn a_copy_paying_again_is_refused_alone_and_the_device_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cards = dir.path().join("cards");
    loaded_card(dir.path());
    let copy = std::fs::read(image(&cards)).expect("copy");
    let pay = |card: &'static str, amount: &'static str| {
        [
            "pay",
            "--card",
            card,
            amount,
            "--psam",
            PSAM,
            "--merchant",
            "shop",
        ]
    };
    card_ok(dir.path(), &pay(CARD, "60.00"));
    std::fs::write(image(&cards), &copy).expect("restore");

    let out = card(dir.path(), &pay(CARD, "60.00"));
    assert!(!out.status.success(), "the copy's purchase was credited");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("its NT was already collected"), "{stderr}");

    // Another card at the same device is collected and credited.
    card_ok(dir.path(), &["issue", "--card", OTHER]);
    card_ok(
        dir.path(),
        &["load", "--card", OTHER, "10.00", "--holder", "bob"],
    );
    let out = card_ok(dir.path(), &pay(OTHER, "5.00"));
    assert!(out.contains("5.00 credited to shop"), "{out}");
}

#[test]
fn a_copy_paying_off_line_beyond_what_was_loaded_is_not_credited_and_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cards = dir.path().join("cards");
    loaded_card(dir.path());
    let copy = std::fs::read(image(&cards)).expect("copy");
    let pay = |psam: &'static str| {
        [
            "pay",
            "--card",
            CARD,
            "60.00",
            "--psam",
            psam,
            "--merchant",
            "shop",
        ]
    };
    card_ok(dir.path(), &pay(PSAM));
    // The copy, its counter moved on, pays again at another device: off
    // line, nothing stops it, but the collection server credits no card
    // beyond what the card system took in for it (100.00, 60.00 collected).
    std::fs::write(image(&cards), &copy).expect("restore");
    edit_image(&cards, None, Some(50));
    let out = card(dir.path(), &pay("00000000000000a2"));
    refused(&out, "above the 100.00 it was loaded with");
    // What the card really still has (40.00) is all it can unload.
    let out = card(
        dir.path(),
        &["unload", "--card", CARD, "41.00", "--holder", "alice"],
    );
    assert!(!out.status.success());
    card_ok(
        dir.path(),
        &["unload", "--card", CARD, "40.00", "--holder", "alice"],
    );

    let cleared = card_ok(dir.path(), &["clear"]);
    assert!(!cleared.contains("does not add up"), "{cleared}");
    assert!(
        cleared.contains("purchase refused at collection: 60.00"),
        "{cleared}"
    );

    // The auditor reads the card system's records, with none of its keys:
    // the card adds up (100.00 in, 60.00 + 40.00 out) and the refused
    // purchase is listed.
    let audit = run(dir.path(), &["audit", "--card-records", "cards"]);
    let text = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.status.success(), "{text}");
    assert!(text.contains("every card adds up"), "{text}");
    assert!(text.contains("refused purchase: card"), "{text}");
}

#[test]
fn the_auditor_finds_an_honest_card_system_adds_up_and_an_edited_image_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    loaded_card(dir.path());
    card_ok(
        dir.path(),
        &[
            "pay",
            "--card",
            CARD,
            "25.00",
            "--psam",
            PSAM,
            "--merchant",
            "shop",
        ],
    );
    card_ok(
        dir.path(),
        &["unload", "--card", CARD, "15.00", "--holder", "alice"],
    );
    let audit = run(dir.path(), &["audit", "--card-records", "cards"]);
    let text = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.status.success(), "{text}");
    assert!(text.contains("every card adds up"), "{text}");
    assert!(
        text.contains(&format!(
            "card {CARD}: loaded 100.00, unloaded 15.00, purchases collected 25.00"
        )) && text.contains("image holds 60.00"),
        "{text}"
    );

    edit_image(
        &dir.path().join("cards"),
        Some(Amount::from_minor(40_000)),
        None,
    );
    let audit = run(dir.path(), &["audit", "--card-records", "cards"]);
    let text = String::from_utf8_lossy(&audit.stdout);
    assert_eq!(audit.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "DOES NOT ADD UP: card {CARD}: its image holds 400.00"
        )),
        "{text}"
    );
}

//! The directory-backed card system the commands use: issue, load, pay,
//! collect, unload and clear, then reopen everything from disk as a new
//! process would and find the same balances, credits and records.

use crate::util;

use ledger::{BankAccount, CardId, LusId};
use util::*;
use vc_card_bridge::crypto::Suite;
use vc_card_bridge::system::{CardSystem, SystemError};
use vc_card_bridge::wire::PsamId;

#[test]
fn a_card_system_survives_reopening_from_its_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let merchant = BankAccount::new("shop-1").expect("account");
    let card = CardId::from_bytes([4; 8]);
    {
        let sys = CardSystem::open(dir.path(), LusId(7), Suite::Tdes).expect("open");
        sys.issue_card(card, EXPIRY, cents(50_000)).expect("issue");
        assert!(matches!(
            sys.issue_card(card, EXPIRY, cents(1)),
            Err(SystemError::CardExists(_))
        ));
        sys.load(&card, cents(2_000), &holder(), NOW).expect("load");
        let mut psam = sys.psam(PsamId([1; 8]), &merchant).expect("psam");
        sys.pay(&card, &mut psam, cents(125), NOW).expect("pay");
        sys.pay(&card, &mut psam, cents(75), NOW).expect("pay");
        let receipts = sys.collect(&mut psam).expect("collect");
        assert_eq!(receipts.len(), 1);
        assert_eq!(receipts[0].total, cents(200));
        sys.unload(&card, cents(300), &holder(), NOW)
            .expect("unload");
        let report = sys.clear().expect("clear");
        assert_eq!(report.settlement.paid_to_lus, cents(1_700));
    }
    let sys = CardSystem::open(dir.path(), LusId(7), Suite::Aes256).expect("reopen");
    let sc = sys.card(&card).expect("card");
    assert_eq!(sc.balance(), Ok(cents(1_500)));
    assert_eq!(sc.info().expect("info").nt, 4);
    assert_eq!(sys.collection.merchant_credit(&merchant), Ok(cents(200)));
    assert_eq!(sys.lus.current_period(), Ok(1));
    // The masters came from the key file, not from the suite asked for now.
    sys.load(&card, cents(10), &holder(), NOW)
        .expect("load with the same keys");
    assert!(sys.resolve(&card).expect("resolve").is_empty());
}

/// Card master keys break every card: a key file others may read is refused,
/// not trusted.
#[test]
fn a_key_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    drop(CardSystem::open(dir.path(), LusId(7), Suite::Tdes).expect("create"));
    let key_path = dir.path().join("keys.bin");
    let mode = std::fs::metadata(&key_path)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "created 0600");
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    assert!(CardSystem::open(dir.path(), LusId(7), Suite::Tdes).is_err());
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(CardSystem::open(dir.path(), LusId(7), Suite::Tdes).is_ok());
}

/// A device stopped between the card's debit and its booking (the process
/// killed there): the next purchase at the device finishes the open one
/// from the card's log first, so the merchant is credited the debit and
/// the device is not left busy.
#[test]
fn a_purchase_left_open_by_a_stopped_device_is_booked_by_the_next() {
    let dir = tempfile::tempdir().expect("tempdir");
    let merchant = BankAccount::new("shop-1").expect("account");
    let card = CardId::from_bytes([5; 8]);
    let other = CardId::from_bytes([6; 8]);
    let sys = CardSystem::open(dir.path(), LusId(7), Suite::Tdes).expect("open");
    for c in [card, other] {
        sys.issue_card(c, EXPIRY, cents(50_000)).expect("issue");
        sys.load(&c, cents(1_000), &holder(), NOW).expect("load");
    }
    {
        let mut psam = sys.psam(PsamId([1; 8]), &merchant).expect("psam");
        let req = psam.request(card, cents(300)).expect("request");
        let mut sc = sys.card(&card).expect("card");
        sc.purchase(&req, NOW).expect("the card pays");
        // Stopped here: the device never sees the proof.
    }
    let mut psam = sys.psam(PsamId([1; 8]), &merchant).expect("reopen psam");
    sys.pay(&other, &mut psam, cents(100), NOW)
        .expect("the next purchase goes through");
    let receipts = sys.collect(&mut psam).expect("collect");
    assert_eq!(receipts[0].credited, cents(400));
    assert_eq!(sys.card(&card).expect("card").balance(), Ok(cents(700)));
}

/// An image copied over another card's file is refused, not run under the
/// other card's name.
#[test]
fn an_image_copied_over_another_cards_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (CardId::from_bytes([7; 8]), CardId::from_bytes([8; 8]));
    let sys = CardSystem::open(dir.path(), LusId(7), Suite::Tdes).expect("open");
    for c in [a, b] {
        sys.issue_card(c, EXPIRY, cents(50_000)).expect("issue");
    }
    std::fs::copy(
        dir.path().join(format!("card-{a}.img")),
        dir.path().join(format!("card-{b}.img")),
    )
    .expect("copy");
    assert!(matches!(
        sys.load(&b, cents(100), &holder(), NOW),
        Err(SystemError::ImageOfAnotherCard { wanted, found }) if wanted == b && found == a
    ));
}

/// The collection server's running total of a card's purchases set back
/// (a lost update, or an edit of its file): the auditor sums the collected
/// batches themselves, says the two disagree, and judges the card by the
/// larger count.
#[test]
fn the_auditor_checks_collected_totals_against_the_batches() {
    use vc_card_bridge::audit::{CardProblem, audit_card_records};
    use vc_card_bridge::store::{Db, WriteBatch};

    let dir = tempfile::tempdir().expect("tempdir");
    let merchant = BankAccount::new("shop-1").expect("account");
    let card = CardId::from_bytes([9; 8]);
    {
        let sys = CardSystem::open(dir.path(), LusId(7), Suite::Tdes).expect("open");
        sys.issue_card(card, EXPIRY, cents(50_000)).expect("issue");
        sys.load(&card, cents(1_000), &holder(), NOW).expect("load");
        let mut psam = sys.psam(PsamId([1; 8]), &merchant).expect("psam");
        sys.pay(&card, &mut psam, cents(600), NOW).expect("pay");
        sys.collect(&mut psam).expect("collect");
        sys.unload(&card, cents(400), &holder(), NOW)
            .expect("unload");
    }
    let honest = audit_card_records(dir.path()).expect("audit");
    assert!(honest.cards_not_adding_up().next().is_none(), "{honest:?}");
    {
        let db = Db::open(&dir.path().join("collection.redb")).expect("collection");
        let mut edit = WriteBatch::new();
        edit.put("col/card-spent", card.as_bytes(), &cents(0));
        db.write(edit).expect("edit");
    }
    let report = audit_card_records(dir.path()).expect("audit");
    let audit = report
        .cards
        .iter()
        .find(|c| c.card == card)
        .expect("audited");
    assert_eq!(audit.standing.purchases_collected, cents(600));
    assert_eq!(
        audit.problems,
        vec![CardProblem::CollectedTotalDisagrees {
            running: cents(0),
            in_batches: cents(600),
        }]
    );
}

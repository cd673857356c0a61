//! Off-line purchases: a PSAM debits cards, closes MACed batches, and the
//! collection server credits the merchant once, refusing duplicates by
//! (card, NT) and (PSAM, NT), bad totals and moved MACs. A copy of a card
//! paying again is refused by the PSAM (its counter went back) or, at
//! another device, by the collection server, which refuses that purchase
//! alone and credits the rest of the batch. Tears: power is
//! cut after every write of a purchase; the PSAM recovers the proof from the
//! card, and merchant credit always equals what cards were debited.

use crate::util;

use ledger::BankAccount;
use util::*;
use vc_card_bridge::card::{CardError, SmartCard, TearAfter};
use vc_card_bridge::collection::{CollectionError, CollectionServer, PurchaseRefusal};
use vc_card_bridge::crypto::{MasterKey, Suite};
use vc_card_bridge::psam::{Psam, PsamError};
use vc_card_bridge::wire::PsamId;

struct Shop {
    psam: Psam,
    collection: CollectionServer,
    merchant: BankAccount,
}

fn shop(w: &World, psam_byte: u8) -> Shop {
    let batch_master = MasterKey::random(w.masters.suite());
    let psam_id = PsamId([psam_byte; 8]);
    let psam = Psam::new(psam_id, w.masters.purchase.clone(), batch_master.clone());
    let collection = CollectionServer::open(
        &w.dir.path().join(format!("collection-{psam_byte}.redb")),
        w.masters.purchase.clone(),
        batch_master,
    )
    .expect("open collection");
    let merchant = BankAccount::new("merchant-1").expect("account");
    collection
        .register_psam(psam_id, &merchant)
        .expect("register");
    Shop {
        psam,
        collection,
        merchant,
    }
}

/// A collection server in `w`'s directory, under a fresh batch master
/// (the PSAMs that feed it are made under the same master).
fn collection_server(w: &World) -> (MasterKey, CollectionServer) {
    let batch_master = MasterKey::random(w.masters.suite());
    let collection = CollectionServer::open(
        &w.dir.path().join("collection.redb"),
        w.masters.purchase.clone(),
        batch_master.clone(),
    )
    .expect("open collection");
    (batch_master, collection)
}

fn loaded_card(w: &World, n: u8, amount: u64) -> SmartCard {
    let mut card = w.card(n);
    w.terminal()
        .load(&mut card, cents(amount), &holder(), NOW)
        .expect("load");
    card
}

#[test]
fn purchases_are_collected_and_credit_the_merchant_once() {
    for suite in [Suite::Tdes, Suite::Aes256] {
        let w = World::new(suite);
        let mut s = shop(&w, 7);
        let mut a = loaded_card(&w, 1, 1_000);
        let mut b = loaded_card(&w, 2, 1_000);
        s.psam.pay(&mut a, cents(250), NOW).expect("pay a");
        s.psam.pay(&mut b, cents(100), NOW).expect("pay b");
        s.psam.pay(&mut a, cents(50), NOW).expect("pay a again");
        assert_eq!(s.psam.running_totals(), (3, cents(400)));
        let batch = s.psam.close_batch().expect("close");
        assert_eq!(s.psam.running_totals(), (0, cents(0)));
        let receipt = s.collection.collect(&batch).expect("collect");
        assert_eq!(receipt.total, cents(400));
        // The same batch again: same receipt, no second credit.
        assert_eq!(s.collection.collect(&batch), Ok(receipt));
        assert_eq!(s.collection.merchant_credit(&s.merchant), Ok(cents(400)));
        assert_eq!(a.balance(), Ok(cents(700)));
        assert_eq!(b.balance(), Ok(cents(900)));
        assert_one_outcome_per_nt(&w, &a);
        assert_conserved(&w, &[&a, &b]);
    }
}

#[test]
fn duplicates_bad_totals_and_moved_macs_are_refused() {
    let w = World::new(Suite::Tdes);
    let mut s = shop(&w, 7);
    let mut a = loaded_card(&w, 1, 1_000);
    s.psam.pay(&mut a, cents(100), NOW).expect("pay");
    let first = s.psam.close_batch().expect("close");
    s.collection.collect(&first).expect("collect");
    s.psam.pay(&mut a, cents(10), NOW).expect("pay");
    let second = s.psam.close_batch().expect("close");

    // A purchase already collected, smuggled into a later batch.
    let mut dup = second.clone();
    dup.entries.push(first.entries[0].clone());
    dup.count += 1;
    dup.total = cents(110);
    dup.mac = dup.mac_input().sign(&vc_card_bridge::crypto::diversify(
        &MasterKey::random(Suite::Tdes),
        &dup.psam.as_card_id(),
    ));
    // Without the PSAM's batch key the batch MAC fails first.
    assert_eq!(
        s.collection.collect(&dup),
        Err(CollectionError::BadBatchMac)
    );

    // Totals that do not match the entries, under a valid MAC (a PSAM bug).
    let merchant2 = BankAccount::new("merchant-2").expect("account");
    let batch_master = MasterKey::random(Suite::Tdes);
    let mut psam2 = Psam::new(
        PsamId([8; 8]),
        w.masters.purchase.clone(),
        batch_master.clone(),
    );
    let collection2 = CollectionServer::open(
        &w.dir.path().join("collection-x.redb"),
        w.masters.purchase.clone(),
        batch_master.clone(),
    )
    .expect("open");
    collection2
        .register_psam(psam2.id(), &merchant2)
        .expect("register");
    psam2.pay(&mut a, cents(20), NOW).expect("pay");
    let good = psam2.close_batch().expect("close");
    let key = vc_card_bridge::crypto::diversify(&batch_master, &good.psam.as_card_id());
    let mut bad_total = good.clone();
    bad_total.total = cents(21);
    bad_total.mac = bad_total.mac_input().sign(&key);
    assert_eq!(
        collection2.collect(&bad_total),
        Err(CollectionError::BadTotals)
    );
    // The same purchase twice in one batch: the PSAM's counter twice.
    let mut twice = good.clone();
    twice.entries.push(good.entries[0].clone());
    twice.count = 2;
    twice.total = cents(40);
    twice.mac = twice.mac_input().sign(&key);
    assert!(matches!(
        collection2.collect(&twice),
        Err(CollectionError::DuplicatePsamNt { .. })
    ));
    // A purchase MAC of card a relabelled as card b.
    let mut moved = good.clone();
    moved.entries[0].card = vc_card_bridge::wire::PsamId([2; 8]).as_card_id();
    moved.mac = moved.mac_input().sign(&key);
    assert_eq!(
        collection2.collect(&moved),
        Err(CollectionError::BadPurchaseMac { index: 0 })
    );
    // A batch number reused with other contents.
    collection2.collect(&good).expect("good batch");
    assert_eq!(
        collection2.collect(&bad_total),
        Err(CollectionError::BatchConflict)
    );
    let mut renumbered = twice.clone();
    renumbered.entries.truncate(1);
    renumbered.count = 1;
    renumbered.total = cents(20);
    renumbered.batch_no = 2;
    renumbered.mac = renumbered.mac_input().sign(&key);
    assert!(matches!(
        collection2.collect(&renumbered),
        Err(CollectionError::DuplicatePsamNt { .. })
    ));
    assert_eq!(collection2.merchant_credit(&merchant2), Ok(cents(20)));
    // The untouched second batch of the first shop still collects.
    s.collection.collect(&second).expect("second batch");
    assert_eq!(s.collection.merchant_credit(&s.merchant), Ok(cents(110)));
}

#[test]
fn a_card_refuses_a_forged_psam_and_a_request_for_another_card() {
    let w = World::new(Suite::Tdes);
    let mut a = loaded_card(&w, 1, 1_000);
    let b = loaded_card(&w, 2, 1_000);
    let mut rogue = Psam::new(
        PsamId([9; 8]),
        MasterKey::random(Suite::Tdes),
        MasterKey::random(Suite::Tdes),
    );
    assert_eq!(
        rogue.pay(&mut a, cents(10), NOW),
        Err(PsamError::Card(CardError::BadMac))
    );
    let mut s = shop(&w, 7);
    let req = s
        .psam
        .request(b.id().expect("id"), cents(10))
        .expect("request");
    assert_eq!(a.purchase(&req, NOW), Err(CardError::WrongCard));
    assert_eq!(a.balance(), Ok(cents(1_000)));
    assert!(matches!(
        s.psam.pay(&mut a, cents(2_000), NOW),
        Err(PsamError::Busy)
    ));
}

#[test]
fn a_purchase_torn_after_any_write_is_paid_exactly_once() {
    let mut n = 1;
    loop {
        let w = World::new(Suite::Tdes);
        let mut s = shop(&w, 7);
        let mut card = loaded_card(&w, 1, 1_000);
        card.arm_tear(Some(TearAfter(n)));
        let result = s.psam.pay(&mut card, cents(300), NOW);
        let torn = !card.eeprom().is_powered();
        assert_eq!(torn, result.is_err(), "write {n}: {result:?}");
        card.power_up().expect("power up");
        s.psam.recover(&card).expect("recover");
        let batch = s.psam.close_batch().expect("close");
        s.collection.collect(&batch).expect("collect");
        let debited = 1_000 - card.balance().expect("balance").minor_units();
        assert!(
            debited == 0 || debited == 300,
            "write {n}: debited {debited}"
        );
        assert_eq!(
            s.collection.merchant_credit(&s.merchant),
            Ok(cents(debited)),
            "write {n}: merchant credit differs from the card debit"
        );
        assert_one_outcome_per_nt(&w, &card);
        assert_conserved(&w, &[&card]);
        if !torn {
            break;
        }
        n += 1;
    }
    assert_eq!(n, 13, "a purchase commits 5 segments: 12 writes");
}

/// A copy of the card's image as it is now: what its holder can restore.
fn copy_of(card: &SmartCard) -> SmartCard {
    SmartCard::from_eeprom(card.eeprom().clone()).expect("copy")
}

#[test]
fn a_card_copy_paying_again_at_the_same_device_is_refused() {
    let w = World::new(Suite::Tdes);
    let mut s = shop(&w, 7);
    let mut a = loaded_card(&w, 1, 1_000);
    let mut copy = copy_of(&a);
    s.psam.pay(&mut a, cents(400), NOW).expect("pay");
    assert!(matches!(
        s.psam.pay(&mut copy, cents(400), NOW),
        Err(PsamError::CardCounterNotNew {
            nt: 2,
            booked: 2,
            ..
        })
    ));
    // The device is free again and its batch holds the one genuine purchase.
    let mut b = loaded_card(&w, 2, 1_000);
    s.psam.pay(&mut b, cents(100), NOW).expect("pay b");
    let batch = s.psam.close_batch().expect("close");
    let receipt = s.collection.collect(&batch).expect("collect");
    assert_eq!((receipt.count, receipt.credited), (2, cents(500)));
}

#[test]
fn a_card_copy_paying_again_elsewhere_is_refused_alone() {
    let w = World::new(Suite::Tdes);
    let (batch_master, collection) = collection_server(&w);
    let (m1, m2) = (
        BankAccount::new("merchant-1").expect("account"),
        BankAccount::new("merchant-2").expect("account"),
    );
    let mut p1 = Psam::new(
        PsamId([1; 8]),
        w.masters.purchase.clone(),
        batch_master.clone(),
    );
    let mut p2 = Psam::new(PsamId([2; 8]), w.masters.purchase.clone(), batch_master);
    collection.register_psam(p1.id(), &m1).expect("register");
    collection.register_psam(p2.id(), &m2).expect("register");

    let mut a = loaded_card(&w, 1, 1_000);
    let mut copy = copy_of(&a);
    let mut b = loaded_card(&w, 2, 1_000);
    p1.pay(&mut a, cents(400), NOW).expect("pay at 1");
    p2.pay(&mut copy, cents(400), NOW)
        .expect("the copy pays at 2");
    p2.pay(&mut b, cents(100), NOW).expect("b pays at 2");

    collection
        .collect(&p1.close_batch().expect("close"))
        .expect("collect 1");
    let receipt = collection
        .collect(&p2.close_batch().expect("close"))
        .expect("the rest of the batch is collected");
    assert_eq!(receipt.credited, cents(100));
    assert_eq!(receipt.refused.len(), 1);
    assert_eq!(receipt.refused[0].amount, cents(400));
    assert_eq!(collection.merchant_credit(&m1), Ok(cents(400)));
    assert_eq!(collection.merchant_credit(&m2), Ok(cents(100)));
    assert_eq!(
        collection.refused_purchases().expect("refused"),
        receipt.refused
    );
    assert_eq!(collection.spent_by(&a.id().expect("id")), Ok(cents(400)));
}

// A copy with its counter moved on pays off line at another device: the
// PSAM cannot tell, and its (card, NT) is new. Collected within what the
// card system took in for the card (its loads less its unloads), the
// purchase that would spend more is refused alone; the card's genuine
// purchases and other cards' are credited.
#[test]
fn a_purchase_beyond_what_the_card_was_loaded_with_is_refused_alone() {
    let w = World::new(Suite::Tdes);
    let mut s = shop(&w, 7);
    let mut a = loaded_card(&w, 1, 1_000);
    let id = a.id().expect("id");
    let mut b = loaded_card(&w, 2, 1_000);
    let mut copy = copy_of(&a);
    s.psam.pay(&mut a, cents(700), NOW).expect("pay");
    // The copy's counter moved past the device's booking (an image edit).
    for _ in 0..2 {
        let _ = copy.begin(vc_card_bridge::wire::Direction::Load, cents(1), NOW);
        copy.reject_pending().expect("abort");
    }
    s.psam
        .pay(&mut copy, cents(700), NOW)
        .expect("off line, the copy pays");
    s.psam.pay(&mut b, cents(100), NOW).expect("b pays");
    let intake = |card: &ledger::CardId| {
        let st = w.lus.standing(card).expect("standing");
        Ok(Some(
            st.loaded
                .checked_sub(st.unloaded)
                .expect("loads cover unloads"),
        ))
    };
    let receipt = s
        .collection
        .collect_within(&s.psam.close_batch().expect("close"), &intake)
        .expect("collected");
    assert_eq!(receipt.credited, cents(800));
    assert_eq!(receipt.refused.len(), 1);
    assert_eq!(
        receipt.refused[0].reason,
        PurchaseRefusal::BeyondIntake {
            spent: cents(1_400),
            intake: cents(1_000)
        }
    );
    assert_eq!(s.collection.spent_by(&id), Ok(cents(700)));
    assert_eq!(s.collection.merchant_credit(&s.merchant), Ok(cents(800)));
}

/// Batches of several PSAMs of one merchant, collected at once from as
/// many threads: every one is credited, and so is every card's running
/// total of purchases. Each collection reads the merchant's credit and the
/// card's total and writes them back; two collections that both read
/// before either wrote would credit only the later one.
#[test]
fn concurrent_collections_of_one_merchant_lose_no_credit() {
    const N_PSAMS: u8 = 8;
    let w = World::new(Suite::Tdes);
    let (batch_master, collection) = collection_server(&w);
    let merchant = BankAccount::new("merchant-1").expect("account");
    // One card pays at every PSAM: its running total is shared too.
    let mut shared = loaded_card(&w, 100, 10_000);
    let mut batches = Vec::new();
    for n in 1..=N_PSAMS {
        let id = PsamId([n; 8]);
        collection.register_psam(id, &merchant).expect("register");
        let mut psam = Psam::new(id, w.masters.purchase.clone(), batch_master.clone());
        let mut card = loaded_card(&w, n, 1_000);
        psam.pay(&mut card, cents(100), NOW).expect("pay");
        psam.pay(&mut shared, cents(10), NOW).expect("pay shared");
        batches.push(psam.close_batch().expect("close"));
    }
    let start = std::sync::Barrier::new(batches.len());
    std::thread::scope(|s| {
        for batch in &batches {
            let (collection, start) = (&collection, &start);
            s.spawn(move || {
                start.wait();
                collection.collect(batch).expect("collect");
            });
        }
    });
    let n = u64::from(N_PSAMS);
    assert_eq!(
        collection.merchant_credit(&merchant),
        Ok(cents(110 * n)),
        "every batch credited"
    );
    assert_eq!(
        collection.spent_by(&shared.id().expect("card id")),
        Ok(cents(10 * n)),
        "every purchase of the shared card counted"
    );
}

/// A PSAM credits the merchant it was registered to, for good: registering
/// it again to that merchant changes nothing, to another is refused, and
/// its batch is still credited to the first.
#[test]
fn a_psam_registered_to_one_merchant_cannot_be_moved_to_another() {
    let w = World::new(Suite::Tdes);
    let mut s = shop(&w, 8);
    let other = BankAccount::new("merchant-2").expect("account");
    let mut card = loaded_card(&w, 1, 1_000);
    s.psam.pay(&mut card, cents(250), NOW).expect("pay");
    let batch = s.psam.close_batch().expect("close");
    s.collection
        .register_psam(s.psam.id(), &s.merchant)
        .expect("the same merchant again");
    assert_eq!(
        s.collection.register_psam(s.psam.id(), &other),
        Err(CollectionError::PsamRegistered)
    );
    s.collection.collect(&batch).expect("collect");
    assert_eq!(s.collection.merchant_credit(&s.merchant), Ok(cents(250)));
    assert_eq!(s.collection.merchant_credit(&other), Ok(cents(0)));
}

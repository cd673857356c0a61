//! The card on its own: NT is durable before any MAC leaves the card, a card
//! image survives a round trip through a file, and the cyclic logs keep the
//! newest records of each kind.

use crate::util;

use util::*;
use vc_card_bridge::card::{Eeprom, SmartCard, TearAfter, TxKind};
use vc_card_bridge::crypto::{MasterKey, Suite};
use vc_card_bridge::psam::Psam;
use vc_card_bridge::wire::{Direction, PsamId};

#[test]
fn nt_is_committed_before_l1_or_a_purchase_proof_leaves_the_card() {
    let w = World::new(Suite::Tdes);
    for n in 1..=6 {
        let mut card = w.card(1);
        card.arm_tear(Some(TearAfter(n)));
        let l1 = card.begin(Direction::Load, cents(10), NOW);
        // Whatever the card said, after power-up its NT is at least what it showed.
        let image = card.eeprom().image().to_vec();
        let after = SmartCard::from_eeprom(
            Eeprom::from_image(image, SmartCard::IMAGE_BYTES).expect("image"),
        )
        .expect("power up");
        let nt = after.info().expect("info").nt;
        match l1 {
            Ok(l1) => assert_eq!(nt, l1.nt, "tear after {n}"),
            Err(_) => assert!(nt <= 1, "tear after {n}"),
        }
    }
    let mut psam = Psam::new(
        PsamId([7; 8]),
        w.masters.purchase.clone(),
        MasterKey::random(Suite::Tdes),
    );
    for n in 1..=12u8 {
        // A fresh card id each round: the LUS remembers every (card, NT).
        let mut card = w.card(100 + n);
        w.terminal()
            .load(&mut card, cents(100), &holder(), NOW)
            .expect("load");
        card.arm_tear(Some(TearAfter(u64::from(n))));
        let proof = psam.pay(&mut card, cents(10), NOW);
        card.power_up().expect("power up");
        let _ = psam.recover(&card);
        if let Ok(p) = proof {
            assert_eq!(card.info().expect("info").nt, p.nt, "tear after {n}");
            assert_eq!(card.balance(), Ok(cents(90)));
        }
    }
}

#[test]
fn a_card_image_round_trips_through_a_file() {
    let w = World::new(Suite::Aes256);
    let mut card = w.card(3);
    w.terminal()
        .load(&mut card, cents(1_234), &holder(), NOW)
        .expect("load");
    let path = w.dir.path().join("card.img");
    card.eeprom().save(&path).expect("save");
    let back = SmartCard::from_eeprom(Eeprom::load(&path, SmartCard::IMAGE_BYTES).expect("load"))
        .expect("power up");
    assert_eq!(back.info(), card.info());
    assert_eq!(back.log(), card.log());
}

#[test]
fn purchases_do_not_push_load_records_out_of_the_log() {
    let w = World::new(Suite::Tdes);
    let mut card = w.card(1);
    w.terminal()
        .load(&mut card, cents(1_000), &holder(), NOW)
        .expect("load");
    let mut psam = Psam::new(
        PsamId([7; 8]),
        w.masters.purchase.clone(),
        MasterKey::random(Suite::Tdes),
    );
    for _ in 0..20 {
        psam.pay(&mut card, cents(1), NOW).expect("pay");
    }
    let log = card.log().expect("log");
    assert!(
        log.iter().any(|r| r.nt == 1 && r.kind == TxKind::Load),
        "load record evicted"
    );
    let purchases: Vec<u32> = log
        .iter()
        .filter(|r| r.kind == TxKind::Purchase)
        .map(|r| r.nt)
        .collect();
    assert_eq!(
        purchases,
        (14..=21).collect::<Vec<u32>>(),
        "the newest 8 purchases are kept"
    );
}

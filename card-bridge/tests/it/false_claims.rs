//! The LUS does not believe the card. Whoever holds a card image holds its
//! diversified keys, so these tests forge L1s the way such a holder would
//! (any balance, limit or NT, with a valid S1) and check that the LUS
//! compares each with the card's history in its own log, refuses what the
//! history contradicts with a typed error, and keeps the refusal in its log.

use crate::util;

use util::*;
use vc_card_bridge::card::SmartCard;
use vc_card_bridge::crypto::{Suite, diversify};
use vc_card_bridge::lus::{CardTerms, LusClock, LusError};
use vc_card_bridge::records::LoadId;
use vc_card_bridge::wire::{Direction, L1};

/// What the holder of the image can do: change any field and sign again.
fn forge(w: &World, mut l1: L1, edit: impl FnOnce(&mut L1)) -> L1 {
    edit(&mut l1);
    l1.s1 = l1.s1_input().sign(&diversify(&w.masters.load, &l1.card));
    l1
}

fn load(w: &World, card: &mut SmartCard, minor: u64) {
    w.terminal()
        .load(card, cents(minor), &holder(), NOW)
        .expect("load");
}

#[test]
fn a_balance_above_the_history_is_refused_and_logged() {
    let w = World::new(Suite::Tdes);
    let mut card = w.card(1);
    load(&w, &mut card, 100);
    let l1 = card.begin(Direction::Unload, cents(500), NOW);
    // The card itself refuses: it holds 1.00. The forged one claims 5.00.
    assert!(l1.is_err());
    card.reject_pending().ok();
    let honest = card.begin(Direction::Unload, cents(100), NOW).expect("L1");
    let forged = forge(&w, honest, |l1| {
        l1.balance = cents(500);
        l1.amount = cents(500);
    });
    assert_eq!(
        w.lus.authorise(LoadId::random(), &forged),
        Err(LusError::BalanceBeyondHistory {
            claimed: cents(500),
            known_max: cents(100)
        })
    );
    let refused = w.lus.refused_claims().expect("refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].claimed_balance, cents(500));
    assert_eq!(refused[0].nt, forged.nt);
}

#[test]
fn a_limit_other_than_the_issued_one_is_refused() {
    let w = World::new(Suite::Tdes);
    let mut card = w.card(2);
    let id = card.id().expect("id");
    w.lus
        .register_card(
            &id,
            CardTerms {
                balance_max: cents(100_000),
                expiry: Some(EXPIRY),
            },
        )
        .expect("register");
    let honest = card.begin(Direction::Load, cents(100), NOW).expect("L1");
    let forged = forge(&w, honest, |l1| {
        l1.balance_max = cents(10_000_000);
        l1.amount = cents(5_000_000);
    });
    assert_eq!(
        w.lus.authorise(LoadId::random(), &forged),
        Err(LusError::LimitMismatch {
            claimed: cents(10_000_000),
            known: cents(100_000)
        })
    );
    assert_eq!(w.lus.refused_claims().expect("refused").len(), 1);
    // Registering other terms for the same card is refused too.
    assert_eq!(
        w.lus.register_card(
            &id,
            CardTerms {
                balance_max: cents(1),
                expiry: Some(EXPIRY),
            }
        ),
        Err(LusError::CardRegistered)
    );
}

#[test]
fn a_card_never_registered_is_held_to_the_limit_it_first_showed() {
    let w = World::new(Suite::Tdes);
    let mut card = w.card(3);
    load(&w, &mut card, 100);
    let honest = card.begin(Direction::Load, cents(100), NOW).expect("L1");
    let forged = forge(&w, honest, |l1| l1.balance_max = cents(10_000_000));
    assert!(matches!(
        w.lus.authorise(LoadId::random(), &forged),
        Err(LusError::LimitMismatch { .. })
    ));
}

#[test]
fn an_open_unload_counts_against_the_next_one() {
    let w = World::new(Suite::Tdes);
    let mut card = w.card(4);
    load(&w, &mut card, 100);
    // The first unload is authorised and never finished (its S3 kept back).
    let first = card.begin(Direction::Unload, cents(100), NOW).expect("L1");
    w.lus.authorise(LoadId::random(), &first).expect("L2");
    // A second L1 with the same balance and a newer NT, the first as its last.
    let second = forge(&w, first.clone(), |l1| {
        l1.last_nt = l1.nt;
        l1.nt += 1;
    });
    assert_eq!(
        w.lus.authorise(LoadId::random(), &second),
        Err(LusError::BalanceBeyondHistory {
            claimed: cents(100),
            known_max: cents(0)
        })
    );
}

#[test]
fn collected_purchases_lower_what_a_card_can_claim_and_an_overspent_card_is_listed() {
    let w = World::new(Suite::Tdes);
    let mut card = w.card(5);
    let id = card.id().expect("id");
    load(&w, &mut card, 100);
    w.lus
        .note_collected_purchases(&id, cents(60))
        .expect("note");
    // An older, smaller total arriving late changes nothing.
    w.lus
        .note_collected_purchases(&id, cents(10))
        .expect("note");
    assert_eq!(
        w.lus.standing(&id).expect("standing").purchases_collected,
        cents(60)
    );
    let honest = card.begin(Direction::Unload, cents(100), NOW).expect("L1");
    assert_eq!(
        w.lus.authorise(LoadId::random(), &honest),
        Err(LusError::BalanceBeyondHistory {
            claimed: cents(100),
            known_max: cents(40)
        })
    );
    assert!(w.lus.cards_overspent().expect("overspent").is_empty());
    w.lus
        .note_collected_purchases(&id, cents(150))
        .expect("note");
    let overspent = w.lus.cards_overspent().expect("overspent");
    assert_eq!(overspent.len(), 1);
    assert_eq!(overspent[0].0, id);
    assert_eq!(overspent[0].1.value_minor(), -50);
    card.reject_pending().ok();
    let next = card.begin(Direction::Unload, cents(1), NOW).expect("L1");
    let next = forge(&w, next, |l1| l1.balance = cents(0));
    assert_eq!(
        w.lus.authorise(LoadId::random(), &next),
        Err(LusError::Overspent { by: cents(50) })
    );
}

#[test]
fn an_expiry_edited_in_the_image_does_not_fool_the_servers_clock() {
    let w = World::new(Suite::Tdes);
    let mut card = w.card(6);
    let id = card.id().expect("id");
    w.lus
        .register_card(
            &id,
            CardTerms {
                balance_max: cents(100_000),
                expiry: Some(EXPIRY),
            },
        )
        .expect("register");
    load(&w, &mut card, 100);
    // The LUS's clock passes the expiry; the terminal's (and the card's
    // edited expiry) say the card is still good.
    let lus = w.lus.with_clock(LusClock::new(|| EXPIRY));
    let l1 = card.begin(Direction::Unload, cents(100), NOW).expect("L1");
    assert_eq!(
        lus.authorise(LoadId::random(), &l1),
        Err(LusError::Expired { expiry: EXPIRY })
    );
    let refused = lus.refused_claims().expect("refused");
    assert_eq!(refused.len(), 1);
    assert!(refused[0].reason.contains("expired"), "{refused:?}");
}

#[test]
fn a_last_transaction_the_log_contradicts_is_refused() {
    let w = World::new(Suite::Tdes);
    let mut card = w.card(7);
    load(&w, &mut card, 100);
    load(&w, &mut card, 100);
    let honest = card.begin(Direction::Unload, cents(50), NOW).expect("L1");
    assert_eq!(honest.last_nt, 2);
    // A copy from before the second load, its counter moved past the LUS's.
    let older = forge(&w, honest.clone(), |l1| l1.last_nt = 1);
    assert_eq!(
        w.lus.authorise(LoadId::random(), &older),
        Err(LusError::HistoryMismatch {
            claimed_last_nt: 1,
            last_seen: 2
        })
    );
    // The last load, claimed as never having happened.
    let denied = forge(&w, honest.clone(), |l1| {
        l1.last_outcome = Some(vc_card_bridge::wire::Outcome::Rejected)
    });
    assert!(matches!(
        w.lus.authorise(LoadId::random(), &denied),
        Err(LusError::HistoryMismatch { .. })
    ));
    assert_eq!(w.lus.refused_claims().expect("refused").len(), 2);
    w.lus
        .authorise(LoadId::random(), &honest)
        .expect("the honest claim is answered");
}

/// Totals of collected purchases told to the LUS from many threads at
/// once: the largest stays, whatever order the writes land in. Each note
/// reads the known total and writes the new one if larger; two notes that
/// both read before either wrote would let the smaller land last, and the
/// card could unload again what it already paid out.
#[test]
fn concurrent_notes_of_collected_purchases_keep_the_largest() {
    const N_NOTES: u64 = 16;
    let w = World::new(Suite::Tdes);
    let id = w.card(6).id().expect("id");
    let start = std::sync::Barrier::new(N_NOTES as usize);
    std::thread::scope(|s| {
        for n in 1..=N_NOTES {
            let (lus, start, id) = (&w.lus, &start, &id);
            s.spawn(move || {
                start.wait();
                lus.note_collected_purchases(id, cents(n * 10))
                    .expect("note");
            });
        }
    });
    assert_eq!(
        w.lus.standing(&id).expect("standing").purchases_collected,
        cents(N_NOTES * 10)
    );
}

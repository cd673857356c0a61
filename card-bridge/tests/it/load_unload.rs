//! Load and Unload end to end between a card, the agency and the LUS: the
//! happy paths under both suites, replays of L1/L2/L3, MACs moved between
//! cards, rejects and refusals. Each test ends with the invariant checks.

use crate::util;

use ledger::{Event, Timestamp};
use util::*;
use vc_card_bridge::agency::Agency;
use vc_card_bridge::card::CardError;
use vc_card_bridge::crypto::Suite;
use vc_card_bridge::flows::FlowError;
use vc_card_bridge::lus::{LusError, LusState};
use vc_card_bridge::records::{LoadId, LoadRequest};
use vc_card_bridge::wire::{CardProof, Direction, Outcome};

fn happy_path(suite: Suite) {
    let w = World::new(suite);
    let mut card = w.card(1);
    let t = w.terminal();
    let rec = t
        .load(&mut card, cents(5_000), &holder(), NOW)
        .expect("load");
    assert_eq!(rec.outcome, Outcome::Committed);
    assert_eq!(card.balance(), Ok(cents(5_000)));
    let rec2 = t
        .unload(&mut card, cents(1_250), &holder(), NOW)
        .expect("unload");
    assert_eq!(rec2.outcome, Outcome::Committed);
    assert_eq!(card.balance(), Ok(cents(3_750)));
    assert_eq!(card.info().expect("info").nt, 2);
    assert!(matches!(
        rec.to_event(Timestamp(0)),
        Some(Event::CardLoaded { nt: 1, .. })
    ));
    assert!(matches!(
        rec2.to_event(Timestamp(0)),
        Some(Event::CardUnloaded { nt: 2, .. })
    ));
    let acc = w.agency.holder(&holder()).expect("holder");
    assert_eq!(acc.paid_for_loads, cents(5_000));
    assert_eq!(acc.credited_from_unloads, cents(1_250));
    assert_one_outcome_per_nt(&w, &card);
    assert_conserved(&w, &[&card]);
    assert_agency_agrees(&w, &[&card]);
}

#[test]
fn load_and_unload_commit_under_tdes() {
    happy_path(Suite::Tdes);
}

#[test]
fn load_and_unload_commit_under_aes256() {
    happy_path(Suite::Aes256);
}

#[test]
fn lus_log_survives_a_restart() {
    let w = World::new(Suite::Tdes);
    let mut card = w.card(1);
    w.terminal()
        .load(&mut card, cents(700), &holder(), NOW)
        .expect("load");
    let w = w.restart();
    let r = w
        .lus
        .record(&card.id().expect("id"), 1)
        .expect("read")
        .expect("present");
    assert_eq!(r.state, LusState::Committed);
    assert_eq!(r.new_balance, Some(cents(700)));
    assert_agency_agrees(&w, &[&card]);
}

#[test]
fn replayed_l1_is_refused() {
    let w = World::new(Suite::Tdes);
    let mut card = w.card(1);
    let l1 = card.begin(Direction::Load, cents(100), NOW).expect("L1");
    let id = LoadId::random();
    let l2 = w.lus.authorise(id, &l1).expect("L2");
    // A retry of the same L1 while pending gets the same L2, nothing new.
    assert_eq!(w.lus.authorise(id, &l1), Ok(l2.clone()));
    let l3 = card.complete(&l2).expect("L3");
    w.lus.finish(&l3).expect("commit");
    assert_eq!(
        w.lus.authorise(id, &l1),
        Err(LusError::AlreadyFinal(LusState::Committed))
    );
    assert_eq!(
        w.lus.authorise(LoadId::random(), &l1),
        Err(LusError::AlreadyFinal(LusState::Committed))
    );
    // An older L1 the LUS never saw, delivered late, is not new either.
    let stale = card
        .begin(Direction::Load, cents(100), NOW)
        .expect("L1 nt 2");
    let newer = card
        .begin(Direction::Load, cents(100), NOW)
        .expect("L1 nt 3");
    w.lus
        .authorise(LoadId::random(), &newer)
        .expect("nt 3 is new");
    assert_eq!(
        w.lus.authorise(LoadId::random(), &stale),
        Err(LusError::Replay {
            nt: 2,
            last_seen: 3
        })
    );
}

#[test]
fn replayed_l2_is_refused_by_the_card() {
    let w = World::new(Suite::Tdes);
    let mut card = w.card(1);
    let l1 = card.begin(Direction::Load, cents(100), NOW).expect("L1");
    let l2 = w.lus.authorise(LoadId::random(), &l1).expect("L2");
    card.complete(&l2).expect("first L2 credits");
    assert_eq!(card.complete(&l2), Err(CardError::NoMatchingPending));
    assert_eq!(card.balance(), Ok(cents(100)));
    // Nor does it credit a later pending transaction of the same amount.
    let _ = card
        .begin(Direction::Load, cents(100), NOW)
        .expect("L1 nt 2");
    assert_eq!(card.complete(&l2), Err(CardError::NoMatchingPending));
    let mut moved = l2.clone();
    moved.nt = 2;
    assert_eq!(card.complete(&moved), Err(CardError::BadMac));
    assert_eq!(card.balance(), Ok(cents(100)));
}

#[test]
fn replayed_l3_is_refused_and_agency_effects_are_once() {
    let w = World::new(Suite::Tdes);
    let mut card = w.card(1);
    let rec = w
        .terminal()
        .load(&mut card, cents(300), &holder(), NOW)
        .expect("load");
    let CardProof::Completed(l3) = card.prove(Direction::Load, 1).expect("prove") else {
        panic!("card should prove the completed load");
    };
    assert_eq!(
        w.lus.finish(&l3),
        Err(LusError::AlreadyFinal(LusState::Committed))
    );
    w.agency.finished(&rec).expect("idempotent");
    assert_eq!(
        w.agency.holder(&holder()).expect("holder").paid_for_loads,
        cents(300)
    );
    assert_agency_agrees(&w, &[&card]);
}

#[test]
fn macs_of_one_card_do_not_work_for_another() {
    let w = World::new(Suite::Tdes);
    let mut a = w.card(1);
    let mut b = w.card(2);
    let la = a.begin(Direction::Load, cents(100), NOW).expect("L1 a");
    let lb = b.begin(Direction::Load, cents(100), NOW).expect("L1 b");
    // S1 of card a under card b's id.
    let mut forged = la.clone();
    forged.card = lb.card;
    assert_eq!(
        w.lus.authorise(LoadId::random(), &forged),
        Err(LusError::BadMac)
    );
    // L2 for card a presented to card b (same NT and amount pending there).
    let l2a = w.lus.authorise(LoadId::random(), &la).expect("L2 a");
    assert_eq!(b.complete(&l2a), Err(CardError::WrongCard));
    let mut l2_to_b = l2a.clone();
    l2_to_b.card = lb.card;
    assert_eq!(b.complete(&l2_to_b), Err(CardError::BadMac));
    // S3 of card a claimed for card b.
    let l2b = w.lus.authorise(LoadId::random(), &lb).expect("L2 b");
    let l3a = a.complete(&l2a).expect("L3 a");
    let mut l3_for_b = l3a.clone();
    l3_for_b.card = lb.card;
    assert_eq!(w.lus.finish(&l3_for_b), Err(LusError::BadMac));
    assert_eq!(b.balance(), Ok(cents(0)));
    w.lus.finish(&l3a).expect("a commits");
    let l3b = b.complete(&l2b).expect("L3 b");
    w.lus.finish(&l3b).expect("b commits");
}

#[test]
fn reject_proof_finishes_a_load_and_a_forged_one_does_not() {
    let w = World::new(Suite::Tdes);
    let mut card = w.card(1);
    let l1 = card.begin(Direction::Load, cents(100), NOW).expect("L1");
    let l2 = w.lus.authorise(LoadId::random(), &l1).expect("L2");
    let proof = card.reject_pending().expect("abort");
    let mut forged = proof.clone();
    forged.r_sm_prime[0] ^= 1;
    assert_eq!(w.lus.reject(&forged), Err(LusError::BadRejectProof));
    let rec = w.lus.reject(&proof).expect("rejected");
    assert_eq!(rec.outcome, Outcome::Rejected);
    assert!(rec.to_event(Timestamp(0)).is_none());
    // Having revealed R'_SM the card never credits that NT.
    assert_eq!(card.complete(&l2), Err(CardError::NoMatchingPending));
    assert_eq!(
        w.lus.reject(&proof),
        Err(LusError::AlreadyFinal(LusState::Rejected))
    );
}

#[test]
fn lus_refusal_aborts_the_card_and_releases_the_guarantee() {
    let w = World::new(Suite::Tdes);
    let mut card = w.card(1);
    let t = w.terminal();
    t.load(&mut card, cents(500), &holder(), NOW).expect("load");
    // The card itself refuses an unload beyond its balance…
    assert!(matches!(
        t.unload(&mut card, cents(600), &holder(), NOW),
        Err(FlowError::Card(CardError::InsufficientBalance { .. }))
    ));
    // …and over the maximum.
    assert!(matches!(
        t.load(&mut card, cents(100_000), &holder(), NOW),
        Err(FlowError::Card(CardError::OverMaximum { .. }))
    ));
    assert_one_outcome_per_nt(&w, &card);
    assert_conserved(&w, &[&card]);
    assert_agency_agrees(&w, &[&card]);
}

#[test]
fn expired_and_blocked_cards_do_not_transact() {
    let w = World::new(Suite::Tdes);
    let mut card = w.card(1);
    assert_eq!(
        card.begin(Direction::Load, cents(1), Timestamp(EXPIRY.0))
            .map(|_| ()),
        Err(CardError::Expired)
    );
    card.block().expect("block");
    assert_eq!(
        card.begin(Direction::Load, cents(1), NOW).map(|_| ()),
        Err(CardError::Blocked)
    );
    assert_eq!(card.info().expect("info").nt, 0);
}

/// Loads of one holder guaranteed from many threads at once: the agency
/// books every payment for them. Each guarantee reads the holder's account,
/// adds the load and writes it back; two that both read before either
/// wrote would book only one.
#[test]
fn concurrent_guarantees_of_one_holder_book_every_payment() {
    const N_LOADS: u8 = 12;
    let w = World::new(Suite::Tdes);
    let requests: Vec<LoadRequest> = (1..=N_LOADS)
        .map(|n| {
            let l1 = w
                .card(n)
                .begin(Direction::Load, cents(100), NOW)
                .expect("L1");
            LoadRequest {
                load_id: LoadId::random(),
                lus: w.lus.id(),
                holder: holder(),
                l1,
            }
        })
        .collect();
    let start = std::sync::Barrier::new(requests.len());
    std::thread::scope(|s| {
        for req in &requests {
            let (agency, start) = (&w.agency, &start);
            s.spawn(move || {
                start.wait();
                agency.guarantee(req).expect("guarantee");
            });
        }
    });
    assert_eq!(
        w.agency.holder(&holder()).expect("holder").paid_for_loads,
        cents(100 * u64::from(N_LOADS))
    );
}

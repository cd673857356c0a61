//! Faults in Load and Unload. Tears: the card's power is cut after every
//! single memory write of a load and of an unload (and again during the
//! recovery that follows); losses: every message of a load and an unload is
//! dropped in turn, with a restart of the servers before recovery. After the
//! card is presented again, every NT must have exactly one outcome, the LUS
//! and agency must agree, and Σ balances = Σ loads − Σ unloads.

use crate::util;

use util::*;
use vc_card_bridge::card::{SmartCard, TearAfter};
use vc_card_bridge::crypto::Suite;
use vc_card_bridge::flows::{FlowError, LossPoint};
use vc_card_bridge::wire::Direction;

fn prepared(w: &World, direction: Direction) -> SmartCard {
    let mut card = w.card(1);
    if direction == Direction::Unload {
        w.terminal()
            .load(&mut card, cents(1_000), &holder(), NOW)
            .expect("preload");
    }
    card
}

fn check(w: &World, card: &SmartCard) {
    assert_one_outcome_per_nt(w, card);
    assert_conserved(w, &[card]);
    assert_agency_agrees(w, &[card]);
}

/// Tears the flow after write `n`, recovers (tearing the recovery after
/// write `m` first, if given), and checks. Returns whether the tear hit.
fn tear_once(direction: Direction, n: u64, m: Option<u64>) -> bool {
    let w = World::new(Suite::Tdes);
    let mut card = prepared(&w, direction);
    card.arm_tear(Some(TearAfter(n)));
    let result = w
        .terminal()
        .transact(&mut card, direction, cents(400), &holder(), NOW, None);
    let torn = !card.eeprom().is_powered();
    assert_eq!(torn, result.is_err(), "write {n}: {result:?}");
    card.power_up().expect("power up");
    if let Some(m) = m {
        card.arm_tear(Some(TearAfter(m)));
        let _ = w.terminal().resolve(&mut card);
        card.power_up().expect("power up after a torn recovery");
    }
    w.terminal().resolve(&mut card).expect("resolve");
    check(&w, &card);
    // The card goes on working afterwards.
    w.terminal()
        .load(&mut card, cents(10), &holder(), NOW)
        .expect("load after recovery");
    check(&w, &card);
    torn
}

fn tear_after_every_write(direction: Direction) {
    let mut n = 1;
    while tear_once(direction, n, None) {
        // Recovery writes at most 12 times; every third keeps the run short.
        for m in (1..=12).step_by(3) {
            tear_once(direction, n, Some(m));
        }
        n += 1;
    }
    // begin commits 2 segments (6 writes), complete 5 (12 writes).
    assert_eq!(
        n, 19,
        "a load or unload is 18 writes; the 19th run is untorn"
    );
}

#[test]
fn a_load_torn_after_any_write_recovers_to_one_outcome() {
    tear_after_every_write(Direction::Load);
}

#[test]
fn an_unload_torn_after_any_write_recovers_to_one_outcome() {
    tear_after_every_write(Direction::Unload);
}

#[test]
fn a_lost_message_at_any_step_leaves_cash_conserved() {
    for direction in [Direction::Load, Direction::Unload] {
        for lose in LossPoint::ALL {
            let w = World::new(Suite::Tdes);
            let mut card = prepared(&w, direction);
            let result =
                w.terminal()
                    .transact(&mut card, direction, cents(400), &holder(), NOW, Some(lose));
            assert_eq!(result, Err(FlowError::Lost(lose)));
            let w = w.restart();
            w.terminal().resolve(&mut card).expect("resolve");
            check(&w, &card);
            // Resolving twice changes nothing.
            assert!(w.terminal().resolve(&mut card).expect("again").is_empty());
            w.terminal()
                .transact(&mut card, direction, cents(100), &holder(), NOW, None)
                .expect("next transaction");
            check(&w, &card);
        }
    }
}

#[test]
fn the_next_load_first_completes_one_whose_l2_was_lost() {
    let w = World::new(Suite::Tdes);
    let mut card = w.card(1);
    let t = w.terminal();
    let lost = t.transact(
        &mut card,
        Direction::Load,
        cents(400),
        &holder(),
        NOW,
        Some(LossPoint::L2ToCard),
    );
    assert_eq!(lost, Err(FlowError::Lost(LossPoint::L2ToCard)));
    t.load(&mut card, cents(50), &holder(), NOW)
        .expect("second load");
    assert_eq!(card.balance(), Ok(cents(450)));
    check(&w, &card);
}

#[test]
fn a_pending_load_aborted_by_a_new_l1_resolves_as_rejected() {
    let w = World::new(Suite::Tdes);
    let mut card = w.card(1);
    let t = w.terminal();
    let lost = t.transact(
        &mut card,
        Direction::Load,
        cents(400),
        &holder(),
        NOW,
        Some(LossPoint::L2ToCard),
    );
    assert_eq!(lost, Err(FlowError::Lost(LossPoint::L2ToCard)));
    // A reader that is not connected to this LUS starts another transaction:
    // the card aborts the pending one, logging R'_SM.
    let _other = card.begin(Direction::Load, cents(50), NOW).expect("new L1");
    let finished = t.resolve(&mut card).expect("resolve");
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].outcome, vc_card_bridge::wire::Outcome::Rejected);
    assert_eq!(card.balance(), Ok(cents(0)));
    check(&w, &card);
}

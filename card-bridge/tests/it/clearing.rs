//! Clearing between the LUS and the agency: per period both hold the same
//! committed records, the settlement pays the net position, both sides are
//! even afterwards, and an in-doubt load is carried into the period in
//! which it is resolved. The issuer-log events balance under ledger's rule.

use crate::util;

use ledger::Flows;
use util::*;
use vc_card_bridge::agency::Agency;
use vc_card_bridge::clearing::{ClearingError, clear, position, settle_period};
use vc_card_bridge::crypto::Suite;
use vc_card_bridge::flows::{FlowError, LossPoint};
use vc_card_bridge::wire::Direction;

#[test]
fn clearing_leaves_both_sides_even_and_carries_in_doubt_forward() {
    let w = World::new(Suite::Tdes);
    let t = w.terminal();
    let mut a = w.card(1);
    let mut b = w.card(2);
    t.load(&mut a, cents(5_000), &holder(), NOW)
        .expect("load a");
    t.load(&mut b, cents(2_000), &holder(), NOW)
        .expect("load b");
    t.unload(&mut a, cents(1_500), &holder(), NOW)
        .expect("unload a");
    // A load whose L3 is lost: in doubt at clearing time.
    let lost = t.transact(
        &mut b,
        Direction::Load,
        cents(700),
        &holder(),
        NOW,
        Some(LossPoint::L3ToLus),
    );
    assert_eq!(lost, Err(FlowError::Lost(LossPoint::L3ToLus)));

    let report = clear(&w.lus, &w.agency).expect("clear period 0");
    let s = &report.settlement;
    assert_eq!(
        (s.period, s.loads, s.unloads),
        (0, cents(7_000), cents(1_500))
    );
    assert_eq!(
        (s.paid_to_lus, s.received_from_lus),
        (cents(5_500), cents(0))
    );
    assert_eq!(report.carried_forward, vec![(b.id().expect("id"), 2)]);
    let lus_side = w.lus.finished_in(0).expect("lus records");
    let ag_side = w
        .agency
        .finished_records(w.lus.id(), 0)
        .expect("agency records");
    assert_eq!(
        position(&lus_side, w.lus.settlement(0).expect("s").as_ref()),
        0
    );
    assert_eq!(
        position(
            &ag_side,
            w.agency.settlement(w.lus.id(), 0).expect("s").as_ref()
        ),
        0
    );

    // Settling again is a no-op; an open period cannot be settled.
    assert_eq!(
        settle_period(&w.lus, &w.agency, 0)
            .expect("again")
            .settlement,
        *s
    );
    assert_eq!(
        settle_period(&w.lus, &w.agency, 1),
        Err(ClearingError::PeriodOpen(1))
    );

    // The card is presented again in period 1: the load commits there.
    t.resolve(&mut b).expect("resolve");
    t.unload(&mut b, cents(2_700), &holder(), NOW)
        .expect("unload b");
    let report = clear(&w.lus, &w.agency).expect("clear period 1");
    let s1 = &report.settlement;
    assert_eq!((s1.loads, s1.unloads), (cents(700), cents(2_700)));
    assert_eq!(
        (s1.paid_to_lus, s1.received_from_lus),
        (cents(0), cents(2_000))
    );
    assert!(report.carried_forward.is_empty());

    // Across both periods: the issuer's card float is what the cards hold.
    let mut events = Vec::new();
    for rec in w.agency.all_finished().expect("all") {
        events.extend(rec.to_event(ledger::Timestamp(0)));
    }
    for p in 0..2 {
        events.push(
            w.lus
                .settlement(p)
                .expect("read")
                .expect("settled")
                .to_event(),
        );
    }
    let f = Flows::of(&events);
    assert_eq!(
        f.card_float_delta(),
        0,
        "after settlement the issuer owes the LUS nothing"
    );
    let on_cards = a.balance().expect("a").minor_units() + b.balance().expect("b").minor_units();
    assert_eq!(
        on_cards as i128,
        f.card_loaded as i128 - f.card_unloaded as i128
    );
    assert_conserved(&w, &[&a, &b]);
    assert_agency_agrees(&w, &[&a, &b]);
}

#[test]
fn a_confirmation_the_agency_missed_is_delivered_by_clearing() {
    let w = World::new(Suite::Tdes);
    let mut a = w.card(1);
    let lost = w.terminal().transact(
        &mut a,
        Direction::Load,
        cents(900),
        &holder(),
        NOW,
        Some(LossPoint::ConfirmationToAgency),
    );
    assert_eq!(lost, Err(FlowError::Lost(LossPoint::ConfirmationToAgency)));
    assert!(
        w.agency
            .finished_records(w.lus.id(), 0)
            .expect("records")
            .is_empty()
    );
    let report = clear(&w.lus, &w.agency).expect("clear");
    assert_eq!(report.settlement.paid_to_lus, cents(900));
    assert_eq!(
        w.agency
            .finished_records(w.lus.id(), 0)
            .expect("records")
            .len(),
        1
    );
    assert_agency_agrees(&w, &[&a]);
}

/// A crash between closing a period and settling it: the period is closed
/// and unsettled. The next clearing settles it first (the LUS is paid for
/// its loads) and then the period it closes.
#[test]
fn a_period_closed_but_not_settled_before_a_crash_is_settled_by_the_next_clearing() {
    let w = World::new(Suite::Tdes);
    let mut card = w.card(1);
    w.terminal()
        .load(&mut card, cents(3_000), &holder(), NOW)
        .expect("load");
    // What `clear` does first, then the process stops.
    assert_eq!(w.lus.close_period(), Ok(0));
    let w = w.restart();
    w.terminal()
        .load(&mut card, cents(500), &holder(), NOW)
        .expect("load in period 1");
    let report = clear(&w.lus, &w.agency).expect("clear");
    assert_eq!(report.settlement.period, 1);
    assert_eq!(report.settlement.paid_to_lus, cents(500));
    let first = w
        .lus
        .settlement(0)
        .expect("read")
        .expect("period 0 settled");
    assert_eq!(first.paid_to_lus, cents(3_000));
    assert_eq!(
        w.agency.settlement(w.lus.id(), 0).expect("read"),
        Some(first)
    );
    assert_eq!(w.lus.unsettled_periods(), Ok(Vec::new()));
}

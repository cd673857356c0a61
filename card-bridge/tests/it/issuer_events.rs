//! The records the card side hands the issuer become events that balance
//! under the ledger's own conservation rule: a Cardcash-to-Softcash leg is
//! `CardUnloaded` + `CoinsIssued(CardUnload)`, a Softcash-to-Cardcash leg is
//! `CoinsSpent(CardLoad)` + `CardLoaded`, and a settlement `Cleared` brings
//! the issuer's card float back to zero.

use crate::util;

use ledger::{CoinBody, CoinId, Event, Flows, IssueCause, KeyEpoch, SpendCause, Timestamp};
use util::*;
use vc_card_bridge::clearing::clear;
use vc_card_bridge::crypto::Suite;

fn coin(value: u64) -> CoinBody {
    CoinBody {
        id: CoinId::random(),
        value: cents(value),
        expiry: Timestamp(9_999_999),
        epoch: KeyEpoch(1),
    }
}

#[test]
fn transfer_legs_and_clearing_balance_in_the_issuer_log() {
    let w = World::new(Suite::Tdes);
    let t = w.terminal();
    let mut card = w.card(1);
    let load = t.load(&mut card, cents(800), &holder(), NOW).expect("load");
    let unload = t
        .unload(&mut card, cents(300), &holder(), NOW)
        .expect("unload");

    // Softcash-to-Cardcash: the redeemed coins are spent as the load commits.
    let s2c = vec![
        Event::CoinsSpent {
            coins: vec![coin(500), coin(300)],
            cause: SpendCause::CardLoad,
        },
        load.to_event(Timestamp(0)).expect("committed load"),
    ];
    Flows::of(&s2c).check_balanced().expect("S2C balances");

    // Cardcash-to-Softcash: the confirmed unload pays for new coins.
    let c2s = vec![
        unload.to_event(Timestamp(0)).expect("committed unload"),
        Event::CoinsIssued {
            coins: vec![coin(300)],
            holder: None,
            cause: IssueCause::CardUnload,
        },
    ];
    Flows::of(&c2s).check_balanced().expect("C2S balances");

    // A load event alone does not balance: the issuer must log it with its coins.
    let alone = [load.to_event(Timestamp(0)).expect("event")];
    assert!(Flows::of(&alone).check_balanced().is_err());

    // Clearing: the settlement balances on its own and evens the float.
    let report = clear(&w.lus, &w.agency).expect("clear");
    let cleared = [report.settlement.to_event()];
    Flows::of(&cleared)
        .check_balanced()
        .expect("clearing balances");
    let all: Vec<Event> = s2c.into_iter().chain(c2s).chain(cleared).collect();
    assert_eq!(Flows::of(&all).card_float_delta(), 0);
}

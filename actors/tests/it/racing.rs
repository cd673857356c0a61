//! P2 under contention: two payments for the same coin, to two payees,
//! validated at the same moment from two threads. Exactly one wins, every
//! time, across 1,000 runs; the loser gets a signed "in use" or "already
//! spent" naming the coin.

use crate::util;

use std::sync::Barrier;

use ledger::Role;
use protocol::wire::RejectReason;
use protocol::wire::payment::{PaymentOutcome, VOption};
use util::{Harness, Who, spec};

const RUNS: usize = 1000;

#[test]
fn p2_two_payments_racing_for_one_coin_exactly_one_wins_in_1000_runs() {
    let h = Harness::new();
    let alice = h.purchaser("alice", 0, 1_000_000);
    let shop = Who::new("shop", 1);
    let bob = Who::new("bob", 2);
    for merchant in [&shop, &bob] {
        h.register(merchant, 0);
        h.enroll(merchant, Role::Merchant);
    }
    let coins = h.buy(&alice, spec(&[(RUNS as u32, 1)]));
    let core = h.core();
    let (mut in_use, mut already_spent) = (0, 0);
    for coin in coins {
        // Both payees hold a ValidationRequest for the same coin.
        let requests: Vec<_> = [&shop, &bob]
            .into_iter()
            .map(|payee| {
                let (payee_state, _payer, _inv, send) = h.send_coins(&alice, payee, vec![coin]);
                h.validation(&payee_state, &send, VOption::Aggregate).1
            })
            .collect();
        let barrier = Barrier::new(2);
        let answers: Vec<_> = std::thread::scope(|s| {
            let racers: Vec<_> = requests
                .iter()
                .map(|req| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        core.validate(req).expect("answered")
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().expect("racer"))
                .collect()
        });
        let mut wins = 0;
        for answer in answers {
            match answer.outcome {
                PaymentOutcome::Receipt(_) => wins += 1,
                PaymentOutcome::Rejected(s) => {
                    assert_eq!(s.bad_coins.to_vec(), vec![coin.id()]);
                    match s.reason {
                        RejectReason::InUse => in_use += 1,
                        RejectReason::AlreadySpent => already_spent += 1,
                        other => panic!("unexpected refusal {other:?}"),
                    }
                }
                PaymentOutcome::Refreshed { .. } => panic!("coins for an aggregate"),
            }
        }
        assert_eq!(wins, 1, "exactly one payment wins");
        assert!(core.unspent_coin(&coin.id()).is_none());
    }
    assert_eq!(in_use + already_spent, RUNS);
    h.assert_conserved();
    assert_eq!(h.core().totals().aggregates, RUNS as i128);
}

//! Many purses paying many merchants at once over loopback HTTP: 20 coin
//! holders, each in its own thread, pay 5 merchant servers in turn for 30
//! seconds, buying more coins whenever they run short. At the end no
//! transaction is left in flight, each purse holds what it bought less what
//! it paid, every coin a purse holds is one
//! the issuer counts unspent, every coin it spent is one the issuer counts
//! spent, the purses together hold exactly the e-money the auditor finds
//! outstanding, and conservation holds.

use crate::util;

use std::time::{Duration, Instant};

use client::{CollectOption, WalletError};
use ledger::{Amount, Role};
use protocol::flows::PayerOutcome;
use purse::CoinState;
use util::{OPENING_MINOR, System, buy, item, minor, spec};

const PURSES: usize = 20;
const MERCHANTS: usize = 5;
/// How long the purses keep paying.
const PAYING_FOR: Duration = Duration::from_secs(30);

/// What one purse did.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    payments: usize,
    paid: u64,
    bought: u64,
}

#[test]
fn twenty_purses_paying_five_merchants_for_thirty_seconds_agree_with_the_issuer() {
    let mut system = System::start();
    let merchants: Vec<_> = (0..MERCHANTS)
        .map(|m| system.member(&format!("shop{m}"), &[Role::Merchant], OPENING_MINOR))
        .collect();
    let urls: Vec<String> = merchants
        .iter()
        .enumerate()
        .map(|(m, shop)| {
            // One of them aggregates instead of refreshing.
            let collect = (m == 0).then_some(CollectOption::Aggregate);
            system.shop(
                shop,
                vec![
                    item("small", 250, collect.clone()),
                    item("large", 450, collect),
                ],
            )
        })
        .collect();
    let refill = spec(&[(4, 250), (2, 200), (4, 50)]);
    let refill_minor = refill.total().expect("total").minor_units();
    let purses: Vec<_> = (0..PURSES)
        .map(|p| {
            let member = system.member(&format!("payer{p}"), &[Role::CoinPurchaser], OPENING_MINOR);
            buy(&member, refill.clone());
            member
        })
        .collect();

    let deadline = Instant::now() + PAYING_FOR;
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let threads: Vec<_> = purses
            .iter()
            .enumerate()
            .map(|(p, purse)| {
                let (urls, refill) = (&urls, &refill);
                scope.spawn(move || {
                    let mut tally = Tally {
                        bought: refill_minor,
                        ..Tally::default()
                    };
                    let mut k = 0;
                    while Instant::now() < deadline {
                        let url = &urls[(p + k) % MERCHANTS];
                        let (sku, price) = if k % 2 == 0 {
                            ("small", 250)
                        } else {
                            ("large", 450)
                        };
                        match purse.wallet.pay(url, sku) {
                            Ok(PayerOutcome::Paid { .. }) => {
                                tally.payments += 1;
                                tally.paid += price;
                                k += 1;
                            }
                            Ok(other) => panic!("payment refused: {other:?}"),
                            Err(WalletError::Insufficient { .. }) => {
                                buy(purse, refill.clone());
                                tally.bought += refill_minor;
                            }
                            Err(e) => panic!("payment failed: {e}"),
                        }
                    }
                    tally
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a purse's thread"))
            .collect()
    });
    let payments: usize = tallies.iter().map(|t| t.payments).sum();
    assert!(
        tallies.iter().all(|t| t.payments > 0),
        "a purse never paid: {tallies:?}"
    );

    let mut held = Amount::ZERO;
    for member in purses.iter().chain(&merchants) {
        assert!(member.purse.in_flight().expect("journal").is_empty());
        for c in member.purse.coins().expect("coins") {
            match c.state {
                CoinState::Available => {
                    assert!(
                        system.is_unspent(c.coin.id()),
                        "held but spent at the issuer"
                    )
                }
                CoinState::Spent(_) => {
                    assert!(
                        !system.is_unspent(c.coin.id()),
                        "spent but live at the issuer"
                    )
                }
                other => panic!("coin left {}", other.name()),
            }
        }
        held = held.checked_add(member.holdings()).expect("sum");
    }
    for (purse, tally) in purses.iter().zip(&tallies) {
        assert_eq!(
            purse.holdings(),
            Amount::from_minor(tally.bought - tally.paid),
            "a purse holds what it bought less what it paid"
        );
    }

    let report = system.stop_and_audit();
    let t = report.totals;
    let bought: u64 = tallies.iter().map(|t| t.bought).sum();
    assert_eq!(t.real_in, i128::from(bought));
    eprintln!("{payments} payments by {PURSES} purses to {MERCHANTS} merchants in {PAYING_FOR:?}");
    assert_eq!(
        t.outstanding,
        minor(held),
        "the purses hold what is outstanding"
    );
    assert_eq!(t.aggregates + t.outstanding, t.real_in - t.real_out);
}

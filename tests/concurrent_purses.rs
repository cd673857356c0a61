//! Many purses paying many merchants at once over loopback HTTP: 20 coin
//! holders, each in its own thread, pay 5 merchant servers in turn. At the
//! end no transaction is left in flight, every coin a purse holds is one
//! the issuer counts unspent, every coin it spent is one the issuer counts
//! spent, the purses together hold exactly the e-money the auditor finds
//! outstanding, and conservation holds.

mod util;

use gateway::CollectOption;
use ledger::{Amount, Role};
use protocol::flows::PayerOutcome;
use purse::CoinState;
use util::{OPENING_MINOR, System, buy, item, minor, spec};

const PURSES: usize = 20;
const MERCHANTS: usize = 5;
const PAYMENTS_PER_PURSE: usize = 4;

#[test]
fn twenty_purses_paying_five_merchants_agree_with_the_issuer() {
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
    let purses: Vec<_> = (0..PURSES)
        .map(|p| {
            let member = system.member(&format!("payer{p}"), &[Role::CoinPurchaser], OPENING_MINOR);
            buy(&member, spec(&[(4, 250), (2, 200), (4, 50)]));
            member
        })
        .collect();

    std::thread::scope(|scope| {
        for (p, purse) in purses.iter().enumerate() {
            let urls = &urls;
            scope.spawn(move || {
                for k in 0..PAYMENTS_PER_PURSE {
                    let url = &urls[(p + k) % MERCHANTS];
                    let sku = if k % 2 == 0 { "small" } else { "large" };
                    let outcome = purse.wallet.pay(url, sku).expect("paid");
                    assert!(matches!(outcome, PayerOutcome::Paid { .. }), "{outcome:?}");
                }
            });
        }
    });

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
    let per_purse = Amount::from_minor(1600 - 2 * (250 + 450));
    for purse in &purses {
        assert_eq!(purse.holdings(), per_purse);
    }

    let report = system.stop_and_audit();
    let t = report.totals;
    assert_eq!(t.real_in, 1600 * PURSES as i128);
    assert_eq!(
        t.outstanding,
        minor(held),
        "the purses hold what is outstanding"
    );
    assert_eq!(t.aggregates + t.outstanding, t.real_in - t.real_out);
}

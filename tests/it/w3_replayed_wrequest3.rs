//! W3: a replayed WRequest3 causes no second debit. Over loopback HTTP, a
//! purchaser's WRequest3 is sent again while the purchase is under way and
//! again after it was acknowledged, as an eavesdropper or a confused client
//! would: the issuer answers each copy as the first or refuses it (a
//! replay; a purchase already closed), the bank is debited once, the coins are issued once, and the
//! auditor finds exactly one purchase's money in the log.

use crate::util;

use client::ErrorCode;
use ledger::{Amount, Coin, Role};
use protocol::flows::{PurchaseClient, PurchaseUpdate};
use protocol::wire::purchase::{PurchaseIssuance1, WDesc};
use util::{OPENING_MINOR, System, minor, paper_spec};

#[test]
fn a_replayed_wrequest3_debits_and_issues_nothing_twice() {
    let system = System::start();
    let alice = system.member("alice", &[Role::CoinPurchaser], OPENING_MINOR);
    let profile = alice.purse.profile().expect("profile");
    let sk = profile.secret_key().expect("key");
    let pk_i = system.info.key().expect("issuer key");
    let spec = paper_spec();
    let amount = spec.total().expect("total");
    let issuer = &system.operator;

    let (state, w1) = PurchaseClient::start(
        system.suite(),
        &sk,
        alice.id().clone(),
        &pk_i,
        ledger::Timestamp::now(),
    )
    .expect("wrequest1");
    let w2 = issuer.wrequest1(&w1).expect("wrequest2");
    let w_desc = WDesc {
        spec,
        amount,
        bank_account: alice.account.clone(),
        anonymous: false,
    };
    let (awaiting, w3) = state
        .on_wrequest2(&sk, &system.info.issuer, &w2, w_desc)
        .expect("wrequest3");

    // A copy answered like the first, or refused as a replay: both are fine,
    // as long as it moves no money.
    let replay = |what: &str| -> Option<PurchaseIssuance1> {
        match issuer.wrequest3(&w3) {
            Ok(answer) => Some(answer),
            Err(e) => {
                // Replayed, or (after the ack closed it) a purchase the
                // issuer no longer takes: refused either way.
                assert!(
                    matches!(
                        e.code(),
                        Some(
                            ErrorCode::Replayed
                                | ErrorCode::UnknownPurchase
                                | ErrorCode::PurchaseClosed
                        )
                    ),
                    "{what}: {e}"
                );
                None
            }
        }
    };

    let mut issuance = issuer.wrequest3(&w3).expect("issuance1");
    let _ = replay("replay while under way");
    let mut coins: Vec<Coin> = Vec::new();
    // Polled until a deadline, not a count: a busy machine settles late.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        match awaiting.on_issuance1(&issuance).expect("issuance1 checks") {
            PurchaseUpdate::Issued { coins: c, ack } => {
                issuer.purchase_ack(&ack).expect("ack");
                coins = c;
                break;
            }
            PurchaseUpdate::Pending => {
                std::thread::sleep(std::time::Duration::from_millis(20));
                issuance = issuer.purchase_poll(&awaiting.poll()).expect("poll");
            }
            PurchaseUpdate::Rejected(r) => panic!("purchase refused: {r:?}"),
        }
    }
    assert_eq!(coins.len(), 6, "the purchase settled");
    let _ = replay("replay after the acknowledgement");
    let _ = replay("another replay");

    assert_eq!(
        system.bank_balance(&alice.account),
        Amount::from_minor(OPENING_MINOR - 1225),
        "one debit, whatever the copies"
    );
    let report = system.stop_and_audit();
    assert_eq!(
        report.totals.real_in,
        minor(amount),
        "one purchase's money in"
    );
    assert_eq!(report.totals.outstanding, minor(amount));
    assert_eq!(report.unspent_coins, 6, "coins issued once");
}

//! Every flow end to end in memory, between the client state machines and
//! an issuer made of the `flows::issuer` helpers, under both suites. Every
//! message crosses `wire::encode` / `wire::decode` on the way.

use crate::flow_support;

use flow_support::*;
use ledger::{Amount, Coin, CoinId, Timestamp};
use protocol::crypto::SuiteId;
use protocol::flows::{PayeeOutcome, PayerOutcome, RefundUpdate, SelfPayment};
use protocol::wire::RejectReason;
use protocol::wire::payment::{ReceiptKind, VOption};
use protocol::wire::status::CoinState;

fn total(coins: &[Coin]) -> Amount {
    Amount::checked_sum(coins.iter().map(Coin::value)).expect("total")
}

fn ids(coins: &[Coin]) -> Vec<CoinId> {
    coins.iter().map(Coin::id).collect()
}

// Registration and enrollment run in `World::new`: certificates check under
// the issuer's key and every participant ends up enrolled.
#[test]
fn registration_and_enrollment_certify_and_enroll_everyone() {
    for suite in SuiteId::ALL {
        let w = World::new(suite);
        for p in [&w.alice, &w.bob, &w.mallory] {
            let cert = p.cert.as_ref().expect("certified");
            assert_eq!(cert.id, p.id);
            assert_eq!(cert.public_key, p.pk());
            assert!(w.issuer.enrolled.contains_key(&p.id));
        }
    }
}

// Purchase: the paper's "(2, $2.50), (1, $1.25), (3, $2)"; the coins carry
// valid mint tags and exactly the spec's values.
#[test]
fn purchase_issues_the_coins_of_the_spec() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let s = spec(&[(2, 250), (1, 125), (3, 200)]);
        let coins = w.buy(&s, false);
        assert_eq!(coins.len(), 6);
        assert_eq!(total(&coins), amount(1225));
        for c in &coins {
            w.issuer.mint.check(c).expect("tag checks");
        }
        assert_eq!(w.issuer.acknowledged.len(), 1);
    }
}

// Payment with refresh: bob gets fresh coins of his spec, the payer's coins
// are spent, and alice verifies bob's signed receipt.
#[test]
fn payment_with_refresh_gives_the_payee_fresh_coins() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let coins = w.buy(&spec(&[(2, 250)]), true);
        let paid = w.pay(
            coins.clone(),
            VOption::Refresh {
                spec: spec(&[(5, 100)]),
            },
            true,
        );
        let PayeeOutcome::Coins { coins: fresh, .. } = &paid.payee_outcome else {
            panic!("expected coins, got {:?}", paid.payee_outcome);
        };
        assert_eq!(total(fresh), amount(500));
        assert_eq!(
            paid.payer_outcome,
            PayerOutcome::Paid {
                receipt_verified: true
            }
        );
        for c in &coins {
            assert!(w.issuer.spent.contains(&c.id()));
        }
        for c in fresh {
            w.issuer.mint.check(c).expect("fresh coin tag");
        }
    }
}

// Payment with redeem: an ACH credit to bob's enrolled account, and a receipt
// signed by the issuer.
#[test]
fn payment_with_redeem_credits_the_payees_account() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let coins = w.buy(&spec(&[(3, 100)]), false);
        let paid = w.pay(
            coins,
            VOption::Redeem {
                bank_account: account("222-bob"),
            },
            false,
        );
        let PayeeOutcome::Receipt(receipt) = &paid.payee_outcome else {
            panic!("expected a receipt");
        };
        assert_eq!(receipt.kind, ReceiptKind::Redeemed);
        assert_eq!(receipt.amount, amount(300));
        assert_eq!(w.issuer.redeemed, vec![(account("222-bob"), amount(300))]);
        // The invoice was not signed, so the payer cannot verify a receipt.
        assert_eq!(
            paid.payer_outcome,
            PayerOutcome::Paid {
                receipt_verified: false
            }
        );
    }
}

// Payment with aggregate: bob's merchant balance grows by the amount.
#[test]
fn payment_with_aggregate_credits_the_merchant_balance() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let coins = w.buy(&spec(&[(1, 125), (1, 200)]), true);
        let paid = w.pay(coins, VOption::Aggregate, true);
        let PayeeOutcome::Receipt(receipt) = &paid.payee_outcome else {
            panic!("expected a receipt");
        };
        assert_eq!(receipt.kind, ReceiptKind::Aggregated);
        assert_eq!(w.issuer.aggregated[&w.bob.id], amount(325));
    }
}

// Change: coins in, coins of another spec and the same total out.
#[test]
fn change_splits_coins_into_the_requested_spec() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let coins = w.buy(&spec(&[(1, 1000)]), false);
        let started = SelfPayment::change(
            suite,
            &w.issuer.pk(),
            &w.alice.sk,
            &w.issuer.id,
            &w.alice.id,
            coins.clone(),
            spec(&[(4, 200), (8, 25)]),
        )
        .expect("change request");
        let alice_sk = w.alice.sk.clone();
        let PayeeOutcome::Coins { coins: change, .. } = w.self_pay(&alice_sk, started) else {
            panic!("expected change");
        };
        assert_eq!(change.len(), 12);
        assert_eq!(total(&change), amount(1000));
        assert!(w.issuer.spent.contains(&coins[0].id()));
    }
}

// Refresh: expired coins, which an ordinary payment refuses (signed, naming
// them), are exchanged for fresh ones through refresh.
#[test]
fn refresh_exchanges_expired_coins_that_a_payment_refuses() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let alice = w.alice.id.clone();
        let expired = w
            .issuer
            .mint(&spec(&[(2, 50)]), Timestamp(NOW.0 - 10), Some(&alice));
        let paid = w.pay(expired.clone(), VOption::Aggregate, true);
        let PayerOutcome::Rejected {
            reason, bad_coins, ..
        } = &paid.payer_outcome
        else {
            panic!("expected a rejection");
        };
        assert_eq!(*reason, RejectReason::Expired);
        assert_eq!(bad_coins, &ids(&expired));

        let started = SelfPayment::refresh(
            suite,
            &w.issuer.pk(),
            &w.alice.sk,
            &w.issuer.id,
            &alice,
            expired,
            spec(&[(1, 100)]),
        )
        .expect("refresh request");
        let alice_sk = w.alice.sk.clone();
        let PayeeOutcome::Coins { coins: fresh, .. } = w.self_pay(&alice_sk, started) else {
            panic!("expected fresh coins");
        };
        assert_eq!(total(&fresh), amount(100));
        assert!(!fresh[0].body.is_expired_at(NOW));
    }
}

// Redeem: bob, enrolled with an account, redeems his coins for a credit;
// alice, enrolled only as a purchaser, is refused with a signed statement.
#[test]
fn redeem_pays_enrolled_redeemers_only() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let bob = w.bob.id.clone();
        let bobs = w.issuer.mint(&spec(&[(2, 500)]), COIN_EXPIRY, Some(&bob));
        let started = SelfPayment::redeem(
            suite,
            &w.issuer.pk(),
            &w.bob.sk,
            &w.issuer.id,
            &bob,
            bobs,
            account("222-bob"),
        )
        .expect("redeem request");
        let bob_sk = w.bob.sk.clone();
        let PayeeOutcome::Receipt(receipt) = w.self_pay(&bob_sk, started) else {
            panic!("expected a receipt");
        };
        assert_eq!(receipt.amount, amount(1000));
        assert_eq!(w.issuer.redeemed, vec![(account("222-bob"), amount(1000))]);

        let alices = w.buy(&spec(&[(1, 100)]), false);
        let started = SelfPayment::redeem(
            suite,
            &w.issuer.pk(),
            &w.alice.sk,
            &w.issuer.id,
            &w.alice.id.clone(),
            alices,
            account("111-alice"),
        )
        .expect("redeem request");
        let alice_sk = w.alice.sk.clone();
        let PayeeOutcome::Rejected(reject) = w.self_pay(&alice_sk, started) else {
            panic!("expected a rejection");
        };
        assert_eq!(reject.reason, RejectReason::NotEnrolled);
    }
}

// Refund: alice's non-anonymous unspent coins are revoked and replaced at
// equal value; the revoked ones no longer pay; a second refund finds nothing.
#[test]
fn refund_revokes_and_replaces_named_coins() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let named = w.buy(&spec(&[(2, 250)]), false);
        let _anonymous = w.buy(&spec(&[(1, 999)]), true);
        let RefundUpdate::Replaced { revoked, coins } = w.refund() else {
            panic!("expected replacements");
        };
        let mut expected = ids(&named);
        expected.sort_unstable();
        let mut revoked_sorted = revoked.clone();
        revoked_sorted.sort_unstable();
        assert_eq!(revoked_sorted, expected);
        assert_eq!(total(&coins), amount(500));

        let paid = w.pay(named, VOption::Aggregate, false);
        assert!(matches!(
            paid.payer_outcome,
            PayerOutcome::Rejected {
                reason: RejectReason::AlreadySpent,
                ..
            }
        ));
        // Only anonymous coins and spent ones are left: nothing to refund.
        // The replacements are named too, so spend them first.
        w.pay(coins, VOption::Aggregate, false);
        let RefundUpdate::Rejected(reject) = w.refund() else {
            panic!("expected nothing to refund");
        };
        assert_eq!(reject.reason, RejectReason::NothingToRefund);
    }
}

// Retransmission (paper §3.2): the same ValidationRequest again gets the same
// coins, not "double spent".
#[test]
fn repeated_validation_request_gets_the_same_coins() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let coins = w.buy(&spec(&[(1, 300)]), true);
        let paid = w.pay(
            coins,
            VOption::Refresh {
                spec: spec(&[(3, 100)]),
            },
            false,
        );
        let PayeeOutcome::Coins { coins: first, .. } = &paid.payee_outcome else {
            panic!("expected coins");
        };
        let again = w.issuer.validate(&paid.validation).expect("retry");
        let PayeeOutcome::Coins { coins: second, .. } =
            paid.payee.on_issuance1(&w.bob.sk, &again).expect("opens")
        else {
            panic!("expected the same coins, not a rejection");
        };
        assert_eq!(first, &second);
    }
}

// Coin status: signed, and it tells unspent from spent from unknown.
#[test]
fn coin_status_reports_each_serial() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let coins = w.buy(&spec(&[(2, 100)]), true);
        w.pay(vec![coins[0]], VOption::Aggregate, false);
        let unknown = CoinId::random();
        let got = w.status(vec![coins[0].id(), coins[1].id(), unknown]);
        let states: Vec<CoinState> = got.iter().map(|e| e.state).collect();
        assert_eq!(
            states,
            vec![CoinState::Spent, CoinState::Unspent, CoinState::Unknown]
        );
    }
}

// Client states are plain data: a purse can journal one (here through
// postcard), crash, and finish the flow from the journal.
#[test]
fn client_states_survive_a_journal_round_trip() {
    use protocol::flows::{
        PayeeAwaitingIssuance, PurchaseAwaitingIssuance, PurchaseClient, PurchaseUpdate,
    };
    use protocol::wire::purchase::WDesc;
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let pk_i = w.issuer.pk();
        let (state, w1) =
            PurchaseClient::start(suite, &w.alice.sk, w.alice.id.clone(), &pk_i, NOW).expect("w1");
        let w2 = w.issuer.wrequest1(&w1).expect("w2");
        let s = spec(&[(2, 100)]);
        let w_desc = WDesc {
            spec: s.clone(),
            amount: amount(200),
            bank_account: account("111-alice"),
            anonymous: false,
        };
        let (state, w3) = state
            .on_wrequest2(&w.alice.sk, &w.issuer.id, &w2, w_desc)
            .expect("w3");
        w.issuer.wrequest3(&w3).expect("accepted");
        let journal = postcard::to_stdvec(&state).expect("journal");
        drop(state);
        let state: PurchaseAwaitingIssuance = postcard::from_bytes(&journal).expect("recovered");
        w.issuer.settle(state.purchase());
        let issued = w.issuer.poll(&state.poll()).expect("issued");
        let PurchaseUpdate::Issued { coins, .. } = state.on_issuance1(&issued).expect("opens")
        else {
            panic!("expected coins");
        };
        assert_eq!(total(&coins), amount(200));

        let paid = w.pay(
            coins,
            VOption::Refresh {
                spec: spec(&[(1, 200)]),
            },
            false,
        );
        let journal = postcard::to_stdvec(&paid.payee).expect("journal");
        let payee: PayeeAwaitingIssuance = postcard::from_bytes(&journal).expect("recovered");
        let again = w.issuer.validate(&paid.validation).expect("retry");
        assert!(matches!(
            payee.on_issuance1(&w.bob.sk, &again),
            Ok(PayeeOutcome::Coins { .. })
        ));
    }
}

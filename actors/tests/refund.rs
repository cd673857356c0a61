//! Refund for non-anonymous holders: unspent coins revoked and replaced at
//! equal value; the old copies die; anonymous coins cannot be refunded.

mod util;

use ledger::Role;
use protocol::flows::{PayeeOutcome, RefundClient, RefundUpdate};
use protocol::wire::RejectReason;
use util::{Harness, Who, refresh, spec};

#[test]
fn refund_revokes_the_holders_unspent_coins_and_replaces_them() {
    let h = Harness::new();
    let alice = h.purchaser("alice", 0, 10_000);
    let shop = Who::new("shop", 1);
    h.register(&shop, 0);
    h.enroll(&shop, Role::Merchant);
    let coins = h.buy(&alice, spec(&[(2, 100), (1, 300)]));
    h.pay(&alice, &shop, vec![coins[0]], refresh(100));
    let (client, req) = RefundClient::start(
        h.core().suite(),
        alice.sk,
        &h.pk_i(),
        h.core().id().clone(),
        alice.id.clone(),
        h.now(),
    )
    .expect("refund request");
    let answer = h.core().refund(&req).expect("answered");
    let RefundUpdate::Replaced {
        revoked,
        coins: new,
    } = client.on_answer(alice.sk, &answer).expect("opens")
    else {
        panic!("nothing refunded");
    };
    let mut expected = vec![coins[1].id(), coins[2].id()];
    expected.sort();
    let mut got = revoked.clone();
    got.sort();
    assert_eq!(got, expected, "only the unspent coins are revoked");
    let mut values: Vec<u64> = new.iter().map(|c| c.value().minor_units()).collect();
    values.sort();
    assert_eq!(values, vec![100, 300]);
    // The same request again: the same replacements, nothing revoked twice.
    let again = h.core().refund(&req).expect("answered again");
    let RefundUpdate::Replaced { coins: same, .. } =
        client.on_answer(alice.sk, &again).expect("opens")
    else {
        panic!("not replaced");
    };
    assert_eq!(same, new);
    // A copy of a revoked coin on a lost disk is worthless now.
    assert!(matches!(
        h.pay(&alice, &shop, vec![coins[2]], refresh(300)),
        PayeeOutcome::Rejected(s) if s.reason == RejectReason::AlreadySpent
    ));
    // The replacements spend.
    assert!(matches!(
        h.pay(&alice, &shop, new, refresh(400)),
        PayeeOutcome::Coins { .. }
    ));
    h.assert_conserved();
}

#[test]
fn anonymous_coins_cannot_be_refunded() {
    let h = Harness::new();
    let bob = h.purchaser("bob", 2, 10_000);
    let (awaiting, iss1) = h.start_purchase(&bob, spec(&[(1, 500)]), true);
    let protocol::flows::PurchaseUpdate::Issued { ack, .. } =
        awaiting.on_issuance1(&iss1).expect("opens")
    else {
        panic!("not issued");
    };
    h.core().purchase_issuance2(&ack).expect("ack");
    let (client, req) = RefundClient::start(
        h.core().suite(),
        bob.sk,
        &h.pk_i(),
        h.core().id().clone(),
        bob.id.clone(),
        h.now(),
    )
    .expect("refund request");
    let answer = h.core().refund(&req).expect("answered");
    assert!(matches!(
        client.on_answer(bob.sk, &answer).expect("signature checks"),
        RefundUpdate::Rejected(s) if s.reason == RejectReason::NothingToRefund
    ));
    assert_eq!(h.core().shards().n_unspent(), 1);
    h.assert_conserved();
}

/// A holder of many coins (more than a participant record could list)
/// stays usable, and a refund revokes and replaces them all at once.
#[test]
fn a_holder_of_a_thousand_coins_is_refunded_in_one_transaction() {
    let h = Harness::new();
    let carol = h.purchaser("carol", 3, 10_000);
    let coins = h.buy(&carol, spec(&[(1000, 1)]));
    // The registry still serves the participant after recording 1,000 coins.
    assert!(h.core().participant(&carol.id).expect("registry").is_some());
    let (client, req) = RefundClient::start(
        h.core().suite(),
        carol.sk,
        &h.pk_i(),
        h.core().id().clone(),
        carol.id.clone(),
        h.now(),
    )
    .expect("refund request");
    let answer = h.core().refund(&req).expect("answered");
    let RefundUpdate::Replaced {
        revoked,
        coins: new,
    } = client.on_answer(carol.sk, &answer).expect("opens")
    else {
        panic!("nothing refunded");
    };
    assert_eq!(revoked.len(), 1000);
    assert_eq!(new.len(), 1000);
    assert!(
        coins
            .iter()
            .all(|c| h.core().shards().get(&c.id()).is_none())
    );
    h.assert_conserved();
}

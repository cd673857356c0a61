//! Refund for non-anonymous holders: unspent coins revoked and replaced at
//! equal value; the old copies die; anonymous coins cannot be refunded.

use crate::util;

use ledger::Role;
use protocol::flows::{PayeeOutcome, RefundUpdate};
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
    let (client, req) = h.refund_request(&alice);
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

/// A repeat of a refund is answered from its batch in the log however old
/// it is: after the transaction index caught up (the issuer's memory lets go
/// of it) and after a restart, the same replacements, nothing revoked twice.
#[test]
fn a_refund_repeated_after_the_index_caught_up_and_a_restart_gets_the_same_replacements() {
    let mut h = Harness::new();
    let alice = h.purchaser("alice", 0, 10_000);
    h.buy(&alice, spec(&[(2, 100)]));
    let (client, req) = h.refund_request(&alice);
    let answer = h.core().refund(&req).expect("answered");
    let RefundUpdate::Replaced { coins: new, .. } =
        client.on_answer(alice.sk, &answer).expect("opens")
    else {
        panic!("nothing refunded");
    };
    h.core().checkpoint_tx_index().expect("index catch-up");
    assert_eq!(h.core().n_committed_in_memory(), 0);
    for when in ["after the catch-up", "after a restart"] {
        let again = h.core().refund(&req).expect("answered again");
        let RefundUpdate::Replaced { coins: same, .. } =
            client.on_answer(alice.sk, &again).expect("opens")
        else {
            panic!("not replaced {when}");
        };
        assert_eq!(same, new, "{when}");
        assert_eq!(h.core().n_unspent(), 2, "{when}");
        h.restart();
    }
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
    let (client, req) = h.refund_request(&bob);
    let answer = h.core().refund(&req).expect("answered");
    assert!(matches!(
        client.on_answer(bob.sk, &answer).expect("signature checks"),
        RefundUpdate::Rejected(s) if s.reason == RejectReason::NothingToRefund
    ));
    assert_eq!(h.core().n_unspent(), 1);
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
    let (client, req) = h.refund_request(&carol);
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
            .all(|c| h.core().unspent_coin(&c.id()).is_none())
    );
    h.assert_conserved();
}

/// Asks for `who`'s refund once and opens the answer.
fn refund(h: &Harness, who: &Who) -> RefundUpdate {
    let (client, req) = h.refund_request(who);
    let answer = h.core().refund(&req).expect("answered");
    client.on_answer(who.sk, &answer).expect("opens")
}

/// A refund is no way round the refresh grace period: a coin whose epoch's
/// grace is over is worth nothing to its holder (refresh refuses it), so the
/// refund leaves it alone, while an expired coin still in its grace and a
/// live coin are replaced.
#[test]
fn a_refund_replaces_no_coin_past_its_refresh_grace() {
    // Harness: coins live 1,000 s, refresh grace 500 s, an epoch every 400 s.
    let mut h = Harness::new();
    let dave = h.purchaser("dave", 4, 10_000);
    let erin = h.purchaser("erin", 5, 10_000);
    let past_grace = h.buy(&dave, spec(&[(1, 100)]));
    let erins = h.buy(&erin, spec(&[(1, 800)]));
    let next_epoch = |h: &Harness, secs| {
        h.clock.advance(secs);
        h.core().rotate_epoch_if_due().expect("epoch rotation");
    };
    next_epoch(&h, 450);
    let in_grace = h.buy(&dave, spec(&[(1, 200)]));
    next_epoch(&h, 1_150);
    let live = h.buy(&dave, spec(&[(1, 400)]));
    let now = h.now();
    assert!(past_grace[0].body.is_expired_at(now) && in_grace[0].body.is_expired_at(now));
    assert!(!live[0].body.is_expired_at(now));

    let RefundUpdate::Replaced { revoked, coins } = refund(&h, &dave) else {
        panic!("nothing refunded");
    };
    let mut got = revoked.clone();
    got.sort();
    let mut expected = vec![in_grace[0].id(), live[0].id()];
    expected.sort();
    assert_eq!(got, expected, "the coin past its grace is not revoked");
    let mut values: Vec<u64> = coins.iter().map(|c| c.value().minor_units()).collect();
    values.sort();
    assert_eq!(
        values,
        vec![200, 400],
        "no value for the coin past its grace"
    );
    assert!(
        h.core().unspent_coin(&past_grace[0].id()).is_some(),
        "the coin past its grace stays outstanding, unspendable"
    );
    h.assert_conserved();

    // A holder whose only coin is past its grace has nothing to refund.
    assert!(matches!(
        refund(&h, &erin),
        RefundUpdate::Rejected(s) if s.reason == RejectReason::NothingToRefund
    ));
    assert!(h.core().unspent_coin(&erins[0].id()).is_some());
    h.assert_conserved();
    h.stop_and_audit_holding();
}

/// A refund whose batch is durable while its append reported failure (the
/// log died after the fsync, `ledger::fault::FaultyStore`): after the
/// restart its retry answers the replacements the log holds, and those are
/// the holder's to refund in turn, as replacements of any refund are.
#[test]
fn a_refund_durable_but_never_told_leaves_its_replacements_refundable() {
    use ledger::fault::{FaultPlan, StoreFault};
    let mut h = Harness::new();
    let alice = h.purchaser("alice", 0, 10_000);
    h.buy(&alice, spec(&[(2, 100)]));
    let (client, req) = h.refund_request(&alice);
    let plan = FaultPlan::new(StoreFault::AfterDurable, 0);
    let log = h.faulty_log(&plan);
    h.restart_on_log(log);
    assert!(h.core().refund(&req).is_err(), "the issuer was not told");
    assert!(plan.has_struck());
    h.restart();
    let answer = h.core().refund(&req).expect("the retry is answered");
    let RefundUpdate::Replaced { coins: new, .. } =
        client.on_answer(alice.sk, &answer).expect("opens")
    else {
        panic!("nothing refunded");
    };
    assert_eq!(new.len(), 2);
    // The holder lost the disk again: the replacements are refunded.
    let (client, req) = h.refund_request(&alice);
    let answer = h.core().refund(&req).expect("answered");
    let RefundUpdate::Replaced { revoked, .. } =
        client.on_answer(alice.sk, &answer).expect("opens")
    else {
        panic!("the replacements of a refund are not refundable");
    };
    let mut revoked = revoked;
    revoked.sort();
    let mut replaced: Vec<_> = new.iter().map(|c| c.id()).collect();
    replaced.sort();
    assert_eq!(revoked, replaced);
    h.assert_conserved();
}

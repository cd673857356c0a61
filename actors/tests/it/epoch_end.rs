//! A year of an issuer on a moving clock: every period a purchaser buys
//! coins and pays them to a merchant, who redeems them. Epochs open on
//! schedule and the housekeeper's erasure pass erases each one once its
//! grace is over, destroying its key. The coin-status store and the shards
//! stay bounded by the epochs still alive, not by the traffic so far; the
//! audit checks every erasure against the log.
//!
//! Harness units: coins live 1,000 s, grace 500 s, an epoch every 400 s;
//! a "month" is one epoch period, so a year is twelve.

use crate::util;

use ledger::{Amount, KeyEpoch, Role};
use protocol::wire::payment::VOption;
use util::{Harness, Who, spec};
use vc_actors::EpochEnd;

#[test]
fn a_year_of_traffic_keeps_coin_status_and_shards_bounded() {
    let mut h = Harness::new();
    let alice = h.purchaser("alice", 0, 1_000_000);
    let shop = Who::new("shop", 1);
    h.register(&shop, 0);
    h.enroll(&shop, Role::Merchant);

    let months = 12;
    let mut stored = Vec::new();
    for _ in 0..months {
        for _ in 0..4 {
            let coins = h.buy(&alice, spec(&[(4, 100)]));
            h.pay(
                &alice,
                &shop,
                coins,
                VOption::Redeem {
                    bank_account: shop.account.clone(),
                },
            );
        }
        h.clock.advance(400);
        h.core().rotate_epoch_if_due().expect("epoch rotation");
        h.core().erase_epochs_due().expect("erasure pass");
        stored.push(h.core().coin_status_n_coins().expect("coin status"));
    }
    println!("coins in the coin-status store, month by month: {stored:?}");
    // 16 coins a month leave the store once their epoch's grace is over
    // (1,500 s, under four months): never more than five months' worth.
    let most = *stored.iter().max().expect("months");
    assert!(most <= 5 * 16, "coin status grew to {most}: {stored:?}");
    assert!(
        stored[months - 1] <= stored[5],
        "coin status keeps growing: {stored:?}"
    );
    assert_eq!(h.core().n_unspent(), 0, "every coin was redeemed");
    let erased: Vec<KeyEpoch> = h
        .core()
        .epoch_ends()
        .into_iter()
        .filter(|(_, end)| matches!(end, EpochEnd::Erased { .. }))
        .map(|(e, _)| e)
        .collect();
    assert!(erased.len() >= 8, "erased {erased:?}");
    h.stop_and_audit_holding();
}

#[test]
fn an_erased_epoch_is_refused_and_erasure_waits_for_its_grace() {
    let mut h = Harness::new();
    let alice = h.purchaser("alice", 0, 100_000);
    let shop = Who::new("shop", 1);
    h.register(&shop, 0);
    h.enroll(&shop, Role::Merchant);
    let kept = h.buy(&alice, spec(&[(2, 100)]));
    let (epoch, _) = h.core().current_epoch().expect("an epoch");
    let wait = std::time::Duration::ZERO;
    assert!(matches!(
        h.core().erase_epoch(epoch, wait),
        Err(vc_actors::IssuerError::GraceNotOver { .. })
    ));
    h.clock.advance(1_600);
    h.core().rotate_epoch_if_due().expect("epoch rotation");
    let erased = h.core().erase_epoch(epoch, wait).expect("erased");
    assert_eq!(erased, h.core().erase_epoch(epoch, wait).expect("again"));
    // Its coins are refused: a refresh of them is no longer possible.
    let outcome = h.pay(&alice, &alice, kept, util::refresh(200));
    assert!(
        matches!(outcome, protocol::flows::payment::PayeeOutcome::Rejected(_)),
        "{outcome:?}"
    );
    h.stop_and_audit_holding();
}

// A revocation refused because coins of the epoch stay held (a card load
// in doubt) changes nothing: the epoch serves its other coins as before,
// nothing is logged, and the operator's next run, once the coins are
// released, revokes it.
#[test]
fn a_refused_revocation_leaves_the_epoch_serving() {
    let mut h = Harness::new();
    let alice = h.purchaser("alice", 0, 100_000);
    let held = h.buy(&alice, spec(&[(1, 100)]));
    let kept = h.buy(&alice, spec(&[(2, 100)]));
    let (epoch, _) = h.core().current_epoch().expect("an epoch");
    let in_doubt = ledger::TxId::random();
    let held_ids: Vec<ledger::CoinId> = held.iter().map(|c| c.body.id).collect();
    h.core()
        .reserve_for_tests(in_doubt, &held_ids)
        .expect("held");
    let wait = std::time::Duration::from_millis(50);
    assert!(matches!(
        h.core().revoke_epoch_within(epoch, wait),
        Err(vc_actors::IssuerError::EpochInUse { n_reserved: 1, .. })
    ));
    assert!(h.core().epoch_ends().is_empty(), "nothing revoked");
    assert!(h.core().revoked_epochs().is_empty());
    // The epoch's other coins still pay (here a refresh to oneself).
    let outcome = h.pay(&alice, &alice, kept, util::refresh(200));
    assert!(
        matches!(
            outcome,
            protocol::flows::payment::PayeeOutcome::Coins { .. }
        ),
        "{outcome:?}"
    );
    // The card reports; the operator runs it again.
    h.core().abort_for_tests(in_doubt);
    let revoked = h.core().revoke_epoch_within(epoch, wait).expect("revoked");
    // Owed: the held coin (the refresh's coins are of a later epoch).
    assert_eq!(revoked.owed, ledger::Amount::from_minor(100));
    assert_eq!(h.core().revoked_epochs(), vec![epoch]);
    h.stop_and_audit_holding();
}

/// An erasure whose batch is durable while its append reported failure
/// (the log died after the fsync, `ledger::fault::FaultyStore`): the key
/// is still in the mint when the issuer stops; the restart finds the epoch
/// erased in the log and destroys the key before it serves, with no
/// housekeeper pass.
#[test]
fn an_erasure_durable_but_never_told_destroys_the_key_at_the_restart() {
    use ledger::fault::{FaultPlan, StoreFault};
    use protocol::mint::Mint;
    let mut h = Harness::new();
    let alice = h.purchaser("alice", 0, 100_000);
    h.buy(&alice, spec(&[(2, 100)]));
    let (epoch, _) = h.core().current_epoch().expect("an epoch");
    h.clock.advance(1_600);
    h.core().rotate_epoch_if_due().expect("epoch rotation");
    let mint_file = h.config().dir.join("mint.key");
    let plan = FaultPlan::new(StoreFault::AfterDurable, 0);
    let log = h.faulty_log(&plan);
    h.restart_on_log(log);
    assert!(
        h.core()
            .erase_epoch(epoch, std::time::Duration::ZERO)
            .is_err(),
        "the issuer was not told"
    );
    assert!(plan.has_struck());
    h.core = None;
    assert!(
        Mint::open(&mint_file).expect("mint").has_epoch(epoch),
        "the key outlived the crash"
    );
    h.restart();
    assert!(
        !Mint::open(&mint_file).expect("mint").has_epoch(epoch),
        "the restart destroyed the key of the epoch the log erased"
    );
    assert!(matches!(
        h.core().epoch_ends().iter().find(|(e, _)| *e == epoch),
        Some((_, EpochEnd::Erased { .. }))
    ));
    h.stop_and_audit_holding();
}

// Given coins bought under an epoch, one paid on and three kept, when the
// epoch is erased after its grace, then the kept coins are forfeited: the
// issuer's totals move their value from outstanding into the forfeited
// float, the shards and the coin-status store keep nothing of the epoch
// (before and after a restart), and the audit holds with the same figures.
#[test]
fn an_erased_epochs_unspent_coins_are_forfeited_and_the_audit_agrees() {
    let mut h = Harness::new();
    let alice = h.purchaser("alice", 0, 100_000);
    let shop = Who::new("shop", 1);
    h.register(&shop, 0);
    h.enroll(&shop, Role::Merchant);
    let mut coins = h.buy(&alice, spec(&[(3, 100), (1, 250)]));
    let paid = coins.remove(0);
    h.pay(
        &alice,
        &shop,
        vec![paid],
        VOption::Redeem {
            bank_account: shop.account.clone(),
        },
    );
    let kept_minor: u64 = coins.iter().map(|c| c.body.value.minor_units()).sum();
    assert_eq!(kept_minor, 450);
    assert_eq!(h.core().totals().outstanding, 450);
    let (epoch, _) = h.core().current_epoch().expect("an epoch");
    h.clock.advance(1_600);
    h.core().rotate_epoch_if_due().expect("epoch rotation");
    let erased = h
        .core()
        .erase_epoch(epoch, std::time::Duration::ZERO)
        .expect("erased");
    assert_eq!((erased.n_coins, erased.value), (1, Amount::from_minor(100)));
    assert_eq!(
        (erased.forfeited_n_coins, erased.forfeited),
        (3, Amount::from_minor(kept_minor))
    );
    let totals = h.core().totals();
    assert_eq!((totals.outstanding, totals.forfeited), (0, 450));
    h.assert_conserved();
    assert_eq!(
        h.core().n_unspent(),
        0,
        "the shards dropped the forfeited coins"
    );
    assert_eq!(h.core().coin_status_n_coins().expect("coin status"), 0);
    assert!(matches!(
        h.core().epoch_ends().iter().find(|(e, _)| *e == epoch),
        Some((_, EpochEnd::Erased { forfeited, forfeited_n_coins: 3, .. }))
            if *forfeited == Amount::from_minor(450)
    ));
    // The kept coins are refused like any coin of an erased epoch.
    let outcome = h.pay(&alice, &alice, coins, util::refresh(kept_minor));
    assert!(
        matches!(outcome, protocol::flows::payment::PayeeOutcome::Rejected(_)),
        "{outcome:?}"
    );
    h.restart();
    assert_eq!(
        h.core().n_unspent(),
        0,
        "a restart reloads nothing forfeited"
    );
    assert_eq!(h.core().totals(), totals);
    h.assert_conserved();
    let report = h.stop_and_audit_holding();
    assert_eq!(report.totals.forfeited, 450);
    assert_eq!(report.totals.outstanding, 0);
    assert!(
        report.to_text().contains("forfeited (breakage)"),
        "{}",
        report.to_text()
    );
}

// A revoked epoch whose coins are never recouped forfeits, when it is
// erased, exactly what it still owed.
#[test]
fn a_revoked_epoch_erased_later_forfeits_what_it_still_owed() {
    let mut h = Harness::new();
    let alice = h.purchaser("alice", 0, 100_000);
    h.buy(&alice, spec(&[(2, 100), (1, 50)]));
    let (epoch, _) = h.core().current_epoch().expect("an epoch");
    let revoked = h
        .core()
        .revoke_epoch_within(epoch, std::time::Duration::from_millis(50))
        .expect("revoked");
    assert_eq!(revoked.still_owed, Amount::from_minor(250));
    h.clock.advance(1_600);
    h.core().rotate_epoch_if_due().expect("epoch rotation");
    let erased = h.core().erase_epochs_due().expect("erasure pass");
    let erased = erased
        .iter()
        .find(|e| e.epoch == epoch)
        .expect("the revoked epoch is erased");
    assert_eq!(erased.forfeited, revoked.still_owed);
    assert_eq!(h.core().totals().forfeited, 250);
    h.assert_conserved();
    let report = h.stop_and_audit_holding();
    assert_eq!(report.totals.forfeited, 250);
}

// A year on a moving clock where every month one coin of 1.00 is kept and
// never spent: each erased epoch forfeits it, so the coin-status store and
// the shards stay bounded by the epochs still alive even though coins are
// left behind, and the forfeited float grows by 1.00 per erased epoch.
#[test]
fn a_year_of_coins_left_unspent_is_forfeited_epoch_by_epoch_and_stays_bounded() {
    let mut h = Harness::new();
    let alice = h.purchaser("alice", 0, 1_000_000);
    let shop = Who::new("shop", 1);
    h.register(&shop, 0);
    h.enroll(&shop, Role::Merchant);
    let months = 12;
    let mut stored = Vec::new();
    for _ in 0..months {
        let coins = h.buy(&alice, spec(&[(4, 100)]));
        h.pay(
            &alice,
            &shop,
            coins,
            VOption::Redeem {
                bank_account: shop.account.clone(),
            },
        );
        h.buy(&alice, spec(&[(1, 100)]));
        h.clock.advance(400);
        h.core().rotate_epoch_if_due().expect("epoch rotation");
        h.core().erase_epochs_due().expect("erasure pass");
        stored.push(h.core().coin_status_n_coins().expect("coin status"));
    }
    println!("coins in the coin-status store, month by month: {stored:?}");
    let most = *stored.iter().max().expect("months");
    assert!(most <= 5 * 5, "coin status grew to {most}: {stored:?}");
    let n_erased = h
        .core()
        .epoch_ends()
        .iter()
        .filter(|(_, end)| matches!(end, EpochEnd::Erased { .. }))
        .count();
    assert!(n_erased >= 8, "erased {n_erased}");
    let totals = h.core().totals();
    assert_eq!(totals.forfeited, 100 * n_erased as i128);
    assert_eq!(
        h.core().n_unspent(),
        months - n_erased,
        "one kept coin per live epoch"
    );
    h.assert_conserved();
    let report = h.stop_and_audit_holding();
    assert_eq!(report.totals.forfeited, totals.forfeited);
}

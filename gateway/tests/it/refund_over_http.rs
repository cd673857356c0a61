//! Refund over real loopback HTTP (`docs/protocol.md`, "Refund"): a holder who
//! lost her purse file restores an empty purse from her key backup and gets
//! the value of her unspent coins back as new coins, while every copy of the
//! old coins is refused; and a refund cut off after the issuer committed it
//! (the purse crashed before the answer was stored) is finished by
//! `Wallet::resume` from the journal, once, with the issuer's same answer.

use crate::util;

use std::sync::Arc;

use client::{
    ClientConfig, ClientError, PurchaseOutcome, RefundOutcome, ServerConfig, Wallet, WalletError,
};
use ledger::{Amount, CoinSpec, Role};
use protocol::wire::RejectReason;
use protocol::wire::refund::RefundAnswer;
use purse::{CoinState, Purse, TxKind};

use util::{client_of, issuer, join_wallet, purse_for, serve_shared_issuer, spec};

fn holdings(purse: &Purse) -> Amount {
    purse
        .balance()
        .expect("balance")
        .holdings()
        .expect("holdings")
}

fn buy(wallet: &Wallet, account: &ledger::BankAccount, spec: CoinSpec) -> Vec<ledger::Coin> {
    match wallet.buy(spec, account.clone(), false).expect("bought") {
        PurchaseOutcome::Issued(coins) => coins,
        other => panic!("purchase not issued: {other:?}"),
    }
}

#[test]
fn a_restored_purse_is_refunded_its_value_and_the_old_coins_die() {
    let core = issuer().core.clone();
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = client_of(&gateway);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dora-r.purse");
    let keys = dir.path().join("dora.keys");

    let purse = purse_for(&client, "dora-r", 0, &gateway.url(), dir.path());
    let wallet = Wallet::open(purse.clone(), ClientConfig::default()).expect("wallet");
    let account = join_wallet(&wallet, &client, &[Role::CoinPurchaser]);
    purse.backup_keys(&keys).expect("key backup");
    let coins = buy(&wallet, &account, spec(&[(2, 250), (1, 125)]));
    let lost = holdings(&purse);
    drop((wallet, purse));

    // The disk dies; a stale copy of the file survives somewhere.
    let stale = dir.path().join("stale.purse");
    std::fs::copy(&path, &stale).expect("copy");
    std::fs::remove_file(&path).expect("lost");
    let purse = Arc::new(Purse::restore(&path, &keys, &util::passphrase()).expect("restored"));
    assert_eq!(holdings(&purse), Amount::ZERO);
    let wallet = Wallet::open(purse.clone(), ClientConfig::default()).expect("wallet");
    let RefundOutcome::Replaced {
        revoked,
        coins: new,
    } = wallet.refund().expect("refund runs")
    else {
        panic!("the refund was refused");
    };
    assert_eq!(revoked, coins.len());
    assert_eq!(holdings(&purse), lost, "the same value is back");
    assert!(purse.in_flight().expect("journal").is_empty());
    for c in &new {
        assert!(core.unspent_coin(&c.id()).is_some(), "a new coin is live");
    }
    for c in &coins {
        assert!(core.unspent_coin(&c.id()).is_none(), "an old coin is dead");
    }

    // Replacements are issued to the holder too: a second refund revokes
    // them in turn (the purse marks them bad) and the value stays the same.
    let RefundOutcome::Replaced { revoked, .. } = wallet.refund().expect("second refund runs")
    else {
        panic!("the second refund was refused");
    };
    assert_eq!(revoked, new.len());
    assert_eq!(holdings(&purse), lost);
    assert!(matches!(
        purse.coin(new[0].id()).expect("coin").expect("known").state,
        CoinState::Bad(_)
    ));

    // The stale copy's coins are refused by the issuer (signed statement),
    // and that purse marks them bad.
    let stale = Arc::new(Purse::open(&stale, &util::passphrase()).expect("stale copy opens"));
    let thief = Wallet::open(stale.clone(), ClientConfig::default()).expect("wallet");
    let old = stale
        .coins()
        .expect("coins")
        .into_iter()
        .find(|c| c.coin.value() == Amount::from_minor(250))
        .expect("an old 2.50 coin")
        .coin;
    let e = thief
        .change(vec![old], spec(&[(2, 125)]))
        .expect_err("a revoked coin");
    assert!(
        matches!(&e, WalletError::Rejected(r) if r.reason == RejectReason::AlreadySpent),
        "{e}"
    );
    assert!(matches!(
        stale.coin(old.id()).expect("coin").expect("known").state,
        CoinState::Bad(_)
    ));
    gateway.stop().expect("gateway stops");
}

#[test]
fn a_refund_cut_off_after_the_issuer_committed_it_is_resumed_once() {
    let core = issuer().core.clone();
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let addr = gateway.addr();
    let client = client_of(&gateway);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("eve-r.purse");

    let purse = purse_for(&client, "eve-r", 1, &gateway.url(), dir.path());
    let wallet = Wallet::open(purse.clone(), ClientConfig::default()).expect("wallet");
    let account = join_wallet(&wallet, &client, &[Role::CoinPurchaser]);
    let coins = buy(&wallet, &account, spec(&[(3, 100)]));
    let value = holdings(&purse);

    // The issuer is away: the request is journaled before it goes out and
    // stays in the journal.
    gateway.stop().expect("gateway stops");
    let e = wallet.refund().expect_err("issuer away");
    assert!(
        matches!(e, WalletError::Client(ClientError::Transport { .. })),
        "{e}"
    );
    let entry = purse.in_flight().expect("journal").remove(0);
    assert_eq!(entry.kind, TxKind::Refund);

    // The issuer comes back and the journaled bytes reach it (the first
    // copy), but the purse crashes before it stores the answer.
    let gateway = serve_shared_issuer(&ServerConfig::new(addr));
    let _lost: RefundAnswer = client
        .http()
        .post_encoded("/v1/refund", &entry.last_sent)
        .expect("the issuer answers");
    for c in &coins {
        assert!(core.unspent_coin(&c.id()).is_none(), "the issuer committed");
    }
    drop((wallet, purse));

    // Restarted, the purse resends the same request and stores the
    // issuer's same replacements, once.
    let purse = Arc::new(Purse::open(&path, &util::passphrase()).expect("reopened"));
    let wallet = Wallet::open(purse.clone(), ClientConfig::default()).expect("wallet");
    let report = wallet.resume().expect("resumed");
    assert_eq!((report.finished, report.unfinished), (1, 0));
    assert!(purse.in_flight().expect("journal").is_empty());
    assert_eq!(holdings(&purse), value, "the refund counted once");
    let mut live = 0;
    for c in purse.coins().expect("coins") {
        match c.state {
            CoinState::Available => {
                assert!(core.unspent_coin(&c.coin.id()).is_some());
                live += 1;
            }
            CoinState::Bad(_) => assert!(core.unspent_coin(&c.coin.id()).is_none()),
            other => panic!("coin left {}", other.name()),
        }
    }
    assert_eq!(live, coins.len());
    gateway.stop().expect("gateway stops");
}

// The same cut-off refund, and the holder runs `refund` again instead of
// `resume`. The rerun must not start a second refund beside the first: a
// second one would revoke the first one's replacements, and the first
// one's answer, stored later, would leave dead coins counted as money.
#[test]
fn a_refund_run_again_while_one_is_journaled_finishes_that_one_instead() {
    let core = issuer().core.clone();
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let addr = gateway.addr();
    let client = client_of(&gateway);
    let dir = tempfile::tempdir().expect("tempdir");

    let purse = purse_for(&client, "fay-r", 2, &gateway.url(), dir.path());
    let wallet = Wallet::open(purse.clone(), ClientConfig::default()).expect("wallet");
    let account = join_wallet(&wallet, &client, &[Role::CoinPurchaser]);
    let coins = buy(&wallet, &account, spec(&[(3, 100)]));
    let value = holdings(&purse);

    gateway.stop().expect("gateway stops");
    wallet.refund().expect_err("issuer away");
    let entry = purse.in_flight().expect("journal").remove(0);
    let gateway = serve_shared_issuer(&ServerConfig::new(addr));
    let _lost: RefundAnswer = client
        .http()
        .post_encoded("/v1/refund", &entry.last_sent)
        .expect("the issuer answers");

    let RefundOutcome::Replaced { revoked, .. } = wallet.refund().expect("the rerun") else {
        panic!("the rerun was refused");
    };
    assert_eq!(revoked, coins.len(), "the journaled refund, finished");
    let report = wallet.resume().expect("resumed");
    assert_eq!(report.unfinished, 0);
    assert!(purse.in_flight().expect("journal").is_empty());
    assert_eq!(holdings(&purse), value, "the refund counted once");
    for c in purse.coins().expect("coins") {
        if c.state == CoinState::Available {
            assert!(
                core.unspent_coin(&c.coin.id()).is_some(),
                "a coin the purse counts is dead at the issuer"
            );
        }
    }
    gateway.stop().expect("gateway stops");
}

//! The issuer's memory of committed transactions is bounded by what the
//! transaction index (`tx-index.redb`) has not applied yet, and a repeat of
//! a committed transaction is still answered from its batch in the log,
//! forever: after the index caught up, after a restart, and after the index
//! file was lost or damaged (it is rebuilt from the log, the truth).

use crate::util;

use ledger::{Coin, EventStore, Role};
use protocol::flows::PayeeOutcome;
use protocol::wire::payment::VOption;
use util::{Harness, Who, refresh, spec};

fn setup() -> (Harness, Who, Who) {
    let h = Harness::new();
    let alice = h.purchaser("alice", 0, 100_000);
    let shop = Who::new("shop", 1);
    h.register(&shop, 0);
    h.enroll(&shop, Role::Merchant);
    (h, alice, shop)
}

/// What happens to the index file while the issuer is down.
type Damage = fn(&std::path::Path);

fn index_path(h: &Harness) -> std::path::PathBuf {
    h.dir.path().join("issuer").join("tx-index.redb")
}

#[test]
fn after_a_catch_up_with_no_traffic_no_committed_transaction_is_held_in_memory() {
    let (h, alice, shop) = setup();
    let coins = h.buy(&alice, spec(&[(3, 100)]));
    h.pay(&alice, &shop, coins[..1].to_vec(), refresh(100));
    h.pay(&alice, &shop, coins[1..2].to_vec(), VOption::Aggregate);
    assert!(
        h.core().n_committed_in_memory() >= 4,
        "registration, enrollment, purchase and payments are committed: {}",
        h.core().n_committed_in_memory()
    );
    let head = h.core().store().head().expect("head").last_seq;
    assert_eq!(h.core().checkpoint_tx_index().expect("catch-up"), head);
    assert_eq!(h.core().n_committed_in_memory(), 0);
    // Traffic after the catch-up is held until the next one.
    h.pay(&alice, &shop, coins[2..3].to_vec(), refresh(100));
    assert!(h.core().n_committed_in_memory() > 0);
    h.core().checkpoint_tx_index().expect("catch-up");
    assert_eq!(h.core().n_committed_in_memory(), 0);
    h.assert_conserved();
}

/// Asks the issuer once to validate a payment of `coins` to `shop` (its
/// answer is then "lost": no acknowledgement) and keeps what a retry needs.
fn validate_once(h: &Harness, alice: &Who, shop: &Who, coins: Vec<Coin>) -> RetryKit {
    let (payee_state, _payer, _inv, send) = h.send_coins(alice, shop, coins);
    let (first, vreq) = h.validation(&payee_state, &send, refresh(250));
    let got = h.coins_of(&first, shop, &h.core().validate(&vreq).expect("iss1"));
    RetryKit {
        payee_state,
        send,
        got,
    }
}

struct RetryKit {
    payee_state: protocol::flows::PaymentPayee,
    send: protocol::wire::payment::SendCoins,
    got: Vec<Coin>,
}

impl RetryKit {
    /// The same payment asked again (a new K_PY): must get the same coins.
    fn retransmit(&self, h: &Harness, shop: &Who) -> Vec<Coin> {
        let (retry, vreq) = h.validation(&self.payee_state, &self.send, refresh(250));
        h.coins_of(&retry, shop, &h.core().validate(&vreq).expect("retry"))
    }

    /// The payee's acknowledgement, ending the payment.
    fn finish(&self, h: &Harness, shop: &Who) {
        let (retry, vreq) = h.validation(&self.payee_state, &self.send, refresh(250));
        let PayeeOutcome::Coins { ack, .. } = retry
            .on_issuance1(shop.sk, &h.core().validate(&vreq).expect("iss1"))
            .expect("opens")
        else {
            panic!("no coins");
        };
        h.core().payment_issuance2(&ack).expect("ack");
    }
}

#[test]
fn a_payment_retransmitted_after_a_catch_up_and_a_restart_gets_the_same_coins() {
    let (mut h, alice, shop) = setup();
    let coins = h.buy(&alice, spec(&[(1, 250)]));
    let kit = validate_once(&h, &alice, &shop, coins.clone());
    h.core().checkpoint_tx_index().expect("catch-up");
    assert_eq!(h.core().n_committed_in_memory(), 0);
    // Answered from the index: the same coins, not "already spent".
    assert_eq!(kit.retransmit(&h, &shop), kit.got);
    h.restart();
    // The restart caught the index up first and held nothing back in memory.
    assert_eq!(h.core().n_committed_in_memory(), 0);
    assert_eq!(kit.retransmit(&h, &shop), kit.got);
    kit.finish(&h, &shop);
    assert!(h.core().unspent_coin(&coins[0].id()).is_none());
    assert_eq!(h.core().n_unspent(), 1, "only the payee's new coin");
    h.assert_conserved();
}

#[test]
fn a_deleted_or_damaged_index_is_rebuilt_at_restart_and_retransmissions_get_their_answer() {
    let (mut h, alice, shop) = setup();
    let coins = h.buy(&alice, spec(&[(2, 250)]));
    let kits: Vec<RetryKit> = coins
        .iter()
        .map(|c| validate_once(&h, &alice, &shop, vec![*c]))
        .collect();
    h.core().checkpoint_tx_index().expect("catch-up");
    let damages: [(&str, Damage); 2] = [
        ("deleted", |p| std::fs::remove_file(p).expect("delete")),
        ("overwritten with garbage", |p| {
            std::fs::write(p, vec![0xa5u8; 64 * 1024]).expect("overwrite")
        }),
    ];
    for (what, damage) in damages {
        h.core = None;
        damage(&index_path(&h));
        h.restart();
        assert!(index_path(&h).exists(), "{what}: rebuilt");
        assert_eq!(h.core().n_committed_in_memory(), 0, "{what}");
        for kit in &kits {
            assert_eq!(kit.retransmit(&h, &shop), kit.got, "{what}");
        }
    }
    for kit in &kits {
        kit.finish(&h, &shop);
    }
    h.assert_conserved();
}

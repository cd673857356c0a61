//! The journal and the store's use of the coin state machine: what begins,
//! advances, completes and refuses a transaction, and that every answer
//! that does not fit its transaction is refused without changing anything.

use crate::util;

use ledger::{Amount, Coin, CoinId};
use util::{NOW, cents, coin, fund, new_purse, new_tx, passphrase, purse_path};
use vc_purse::{
    BadKind, CoinState, Completion, Destination, Purse, PurseError, Refusal, Selection,
    SessionSecret, Step, StepRecord, TxKind,
};

fn state(purse: &Purse, id: CoinId) -> CoinState {
    purse.coin(id).expect("read").expect("present").state
}

fn ids(coins: &[Coin]) -> Vec<CoinId> {
    coins.iter().map(Coin::id).collect()
}

#[test]
fn begin_reserves_inputs_durably_and_refuses_coins_in_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    let coins = fund(&purse, &[250, 125]);
    let tx = purse
        .begin(new_tx(TxKind::Pay, cents(250), &coins[..1]))
        .expect("begin");
    assert_eq!(state(&purse, coins[0].id()), CoinState::Pending(tx));
    // The same coin cannot go into a second transaction.
    let again = purse.begin(new_tx(TxKind::Pay, cents(375), &coins));
    assert!(matches!(
        again,
        Err(PurseError::TransitionRefused {
            from: "pending",
            ..
        })
    ));
    // ... and the failed begin reserved nothing.
    assert_eq!(state(&purse, coins[1].id()), CoinState::Available);
    assert_eq!(purse.in_flight().expect("journal").len(), 1);
    let balance = purse.balance().expect("balance");
    assert_eq!(
        (balance.available, balance.pending),
        (cents(125), cents(250))
    );
    drop(purse);

    let purse = Purse::open(purse_path(dir.path()), &passphrase()).expect("reopen");
    let entry = &purse.in_flight().expect("journal")[0];
    assert_eq!(entry.tx, tx);
    assert_eq!(entry.reserved, vec![coins[0].id()]);
    assert_eq!(entry.last_sent, b"pay request".to_vec());
    assert_eq!(purse.reserved_coins(tx).expect("reserved"), vec![coins[0]]);
}

#[test]
fn begin_refuses_inputs_that_do_not_fit_the_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    let coins = fund(&purse, &[250, 125]);
    let cases = [
        new_tx(TxKind::Pay, cents(300), &coins[..1]),
        new_tx(TxKind::Pay, cents(250), &[]),
        new_tx(TxKind::Purchase, cents(250), &coins[..1]),
        new_tx(TxKind::Change, cents(375), &[coins[0], coins[0]]),
        new_tx(TxKind::Pay, cents(1), &[coin(1)]),
    ];
    for case in cases {
        assert!(purse.begin(case).is_err());
    }
    assert!(purse.in_flight().expect("journal").is_empty());
    assert_eq!(purse.balance().expect("balance").available, cents(375));
}

#[test]
fn payment_completes_atomically_and_releases_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    let coins = fund(&purse, &[250, 125, 200]);
    let Selection::Exact(picked) = purse.select(cents(450), NOW).expect("select") else {
        panic!("450 is 250 + 200");
    };
    let tx = purse
        .begin(new_tx(TxKind::Pay, cents(450), &picked))
        .expect("begin");
    let effect = purse
        .complete(
            tx,
            Completion {
                spent: ids(&picked),
                ..Completion::default()
            },
        )
        .expect("complete");
    assert_eq!(
        (effect.value_out, effect.value_in),
        (cents(450), Amount::ZERO)
    );
    assert_eq!(effect.holdings_after, cents(125));
    for c in &picked {
        assert_eq!(state(&purse, c.id()), CoinState::Spent(tx));
    }
    assert!(purse.in_flight().expect("journal").is_empty());
    assert_eq!(purse.history().expect("history").len(), 2);
    assert_eq!(purse.balance().expect("balance").n_spent, 2);
    // Spent records can go; the money and the other coins stay.
    assert_eq!(purse.forget_spent().expect("forget"), 2);
    let balance = purse.balance().expect("balance");
    assert_eq!((balance.n_spent, balance.available), (0, cents(125)));
    assert_eq!(purse.coins().expect("coins").len(), coins.len() - 2);
}

#[test]
fn answers_that_do_not_fit_are_refused_without_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    let coins = fund(&purse, &[250, 125, 200]);
    let pay = purse
        .begin(new_tx(TxKind::Pay, cents(250), &coins[..1]))
        .expect("begin pay");
    let change = purse
        .begin(new_tx(TxKind::Change, cents(125), &coins[1..2]))
        .expect("begin change");
    let before = purse.coins().expect("coins");
    let bad_answers = [
        // Spends a coin it did not reserve.
        (
            pay,
            Completion {
                spent: ids(&coins[..2]),
                ..Completion::default()
            },
        ),
        (
            pay,
            Completion {
                spent: vec![coins[2].id()],
                ..Completion::default()
            },
        ),
        // A payment that leaves an input unspent.
        (pay, Completion::default()),
        // A payment that brings coins back.
        (
            pay,
            Completion {
                spent: ids(&coins[..1]),
                received: vec![coin(5)],
                ..Completion::default()
            },
        ),
        // Change that returns a different total.
        (
            change,
            Completion {
                spent: ids(&coins[1..2]),
                received: vec![coin(100)],
                ..Completion::default()
            },
        ),
        // Change that returns a coin already in the purse.
        (
            change,
            Completion {
                spent: ids(&coins[1..2]),
                received: vec![coins[2]],
                ..Completion::default()
            },
        ),
        // The same new coin twice.
        (change, {
            let c = coin(62);
            Completion {
                spent: ids(&coins[1..2]),
                received: vec![c, c],
                ..Completion::default()
            }
        }),
        // Only a refund revokes.
        (
            change,
            Completion {
                spent: ids(&coins[1..2]),
                revoked: vec![coins[2].id()],
                received: vec![coin(125)],
                ..Completion::default()
            },
        ),
    ];
    for (tx, answer) in bad_answers {
        assert!(purse.complete(tx, answer).is_err());
        assert_eq!(purse.coins().expect("coins"), before);
        assert_eq!(purse.in_flight().expect("journal").len(), 2);
    }
    // A refusal naming a coin the transaction did not send.
    let wrong = Refusal {
        bad: vec![(coins[2].id(), BadKind::AlreadySpent)],
        statement: vec![1],
    };
    assert!(matches!(
        purse.refuse(pay, wrong),
        Err(PurseError::OutcomeMismatch { .. })
    ));
    assert_eq!(purse.coins().expect("coins"), before);
}

#[test]
fn change_then_exact_payment_with_acknowledgement() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    fund(&purse, &[500]);
    let Selection::NeedsChange { give, want } = purse.select(cents(225), NOW).expect("select")
    else {
        panic!("500 cannot pay 225 exactly");
    };
    let tx = purse
        .begin(new_tx(TxKind::Change, cents(500), &give))
        .expect("begin change");
    let new_coins: Vec<Coin> = want.values().map(|v| coin(v.minor_units())).collect();
    purse
        .complete(
            tx,
            Completion {
                spent: ids(&give),
                received: new_coins,
                acknowledge: Some(b"issuance2".to_vec()),
                ..Completion::default()
            },
        )
        .expect("complete change");
    // Settled: the coins are in, only the ack is left to deliver.
    let entry = purse.entry(tx).expect("entry");
    assert!(entry.is_settled());
    assert_eq!(entry.last_sent, b"issuance2".to_vec());
    assert!(purse.complete(tx, Completion::default()).is_err());
    assert!(purse.record_step(tx, step(Step::Poll)).is_err());
    purse.close(tx).expect("close");
    assert!(purse.in_flight().expect("journal").is_empty());

    let Selection::Exact(picked) = purse.select(cents(225), NOW).expect("select") else {
        panic!("change made 225");
    };
    assert_eq!(picked.len(), 1);
    assert_eq!(purse.balance().expect("balance").available, cents(500));
}

fn step(step: Step) -> StepRecord {
    StepRecord {
        step,
        message: format!("{} message", step.name()).into_bytes(),
        secrets: Some(vec![SessionSecret::new(vec![7; 32])]),
        context: Some(b"purchase-id".to_vec()),
        now: NOW,
    }
}

#[test]
fn steps_only_move_forward_and_keep_secrets_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    let mut purchase = new_tx(TxKind::Purchase, cents(1225), &[]);
    purchase.step = Step::SessionOpen;
    purchase.secrets = vec![SessionSecret::new(vec![1; 32])];
    let tx = purse.begin(purchase).expect("begin");
    purse.record_step(tx, step(Step::Request)).expect("request");
    purse.record_step(tx, step(Step::Poll)).expect("poll");
    purse.record_step(tx, step(Step::Poll)).expect("poll again");
    assert!(matches!(
        purse.record_step(tx, step(Step::Request)),
        Err(PurseError::StepBackwards { .. })
    ));
    assert!(purse.record_step(tx, step(Step::Acknowledge)).is_err());
    assert!(
        purse.abandon(tx).is_err(),
        "a sent request cannot be abandoned"
    );
    drop(purse);

    let purse = Purse::open(purse_path(dir.path()), &passphrase()).expect("reopen");
    let entry = purse.entry(tx).expect("entry");
    assert_eq!(entry.step, Step::Poll);
    assert_eq!(entry.secrets, vec![SessionSecret::new(vec![7; 32])]);
    assert_eq!(entry.context, b"purchase-id".to_vec());
    assert_eq!(entry.to, Destination::Issuer);
    assert!(!format!("{entry:?}").contains("7, 7"), "secret in Debug");
}

#[test]
fn a_session_never_sent_can_be_abandoned_and_its_coins_come_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    let coins = fund(&purse, &[250]);
    let mut change = new_tx(TxKind::Change, cents(250), &coins);
    change.step = Step::SessionOpen;
    let tx = purse.begin(change).expect("begin");
    purse.abandon(tx).expect("abandon");
    assert_eq!(state(&purse, coins[0].id()), CoinState::Available);
    assert!(matches!(
        purse.entry(tx),
        Err(PurseError::UnknownTransaction(_))
    ));
}

/// A copy of the purse (a restored backup) spends a coin the original
/// already spent: the issuer refuses with a signed statement; the coin
/// becomes Bad with that statement, the other input is released.
#[test]
fn a_refused_double_spend_marks_only_the_named_coins_bad() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    let coins = fund(&purse, &[250, 125]);
    let tx = purse
        .begin(new_tx(TxKind::Pay, cents(375), &coins))
        .expect("begin");
    let statement = b"S_I(vc/reject, AlreadySpent, [coin 0])".to_vec();
    let effect = purse
        .refuse(
            tx,
            Refusal {
                bad: vec![(coins[0].id(), BadKind::AlreadySpent)],
                statement: statement.clone(),
            },
        )
        .expect("refuse");
    assert!(effect.refused);
    assert_eq!(effect.value_out, cents(250));
    match state(&purse, coins[0].id()) {
        CoinState::Bad(reason) => {
            assert_eq!(reason.kind, BadKind::AlreadySpent);
            assert_eq!(reason.statement, statement);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(state(&purse, coins[1].id()), CoinState::Available);
    let balance = purse.balance().expect("balance");
    assert_eq!(
        (balance.available, balance.bad, balance.n_bad),
        (cents(125), cents(250), 1)
    );
    assert!(purse.in_flight().expect("journal").is_empty());
}

#[test]
fn a_refund_revokes_held_coins_and_adds_replacements() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    let coins = fund(&purse, &[250, 125]);
    let tx = purse
        .begin(new_tx(TxKind::Refund, cents(375), &[]))
        .expect("begin");
    let replacements = vec![coin(250), coin(125), coin(400)];
    let effect = purse
        .complete(
            tx,
            Completion {
                revoked: ids(&coins),
                received: replacements,
                ..Completion::default()
            },
        )
        .expect("complete");
    assert_eq!(
        (effect.value_out, effect.value_in),
        (cents(375), cents(775))
    );
    assert_eq!(purse.balance().expect("balance").available, cents(775));
    assert!(
        matches!(state(&purse, coins[0].id()), CoinState::Bad(r) if r.kind == BadKind::Revoked)
    );
}

#[test]
fn a_refund_into_a_restored_purse_adds_the_replacements_of_coins_it_never_held() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    // Revoked coins the purse never held (its file was lost and restored
    // from a key backup): nothing to mark, the replacements come in.
    let lost = [coin(250), coin(125)];
    let tx = purse
        .begin(new_tx(TxKind::Refund, Amount::ZERO, &[]))
        .expect("begin");
    let effect = purse
        .complete(
            tx,
            Completion {
                revoked: ids(&lost),
                received: vec![coin(250), coin(125)],
                ..Completion::default()
            },
        )
        .expect("complete");
    assert_eq!((effect.value_out, effect.value_in), (cents(0), cents(375)));
    assert_eq!(purse.balance().expect("balance").available, cents(375));
    assert!(purse.coin(lost[0].id()).expect("read").is_none());
}

#[test]
fn expired_coins_are_not_spendable_but_can_be_exported_for_refresh() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    let coins = fund(&purse, &[250, 125]);
    let later = coins[0].body.expiry;
    assert_eq!(purse.spendable(NOW).expect("spendable").len(), 2);
    assert!(purse.spendable(later).expect("spendable").is_empty());
    assert_eq!(purse.expired(later).expect("expired").len(), 2);
    assert!(matches!(
        purse.select(cents(125), later).expect("select"),
        Selection::Insufficient { .. }
    ));
    let exported = purse.export_coins(&[coins[1].id()], NOW).expect("export");
    assert_eq!(exported, vec![coins[1]]);
    let tx = purse
        .begin(new_tx(TxKind::Refresh, cents(375), &coins))
        .expect("refresh");
    assert!(purse.export_coins(&[coins[1].id()], NOW).is_err());
    purse
        .complete(
            tx,
            Completion {
                spent: ids(&coins),
                received: vec![coin(375)],
                ..Completion::default()
            },
        )
        .expect("complete refresh");
    assert_eq!(purse.spendable(NOW).expect("spendable").len(), 1);
}

#[test]
fn a_collected_payment_brings_the_amount_or_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    let mut collect = new_tx(TxKind::Collect, cents(450), &[]);
    collect.to = Destination::Issuer;
    let tx = purse.begin(collect.clone()).expect("begin");
    assert!(
        purse
            .complete(
                tx,
                Completion {
                    received: vec![coin(400)],
                    ..Completion::default()
                }
            )
            .is_err()
    );
    purse
        .complete(
            tx,
            Completion {
                received: vec![coin(250), coin(200)],
                ..Completion::default()
            },
        )
        .expect("refresh of a payment");
    let tx = purse.begin(collect).expect("begin");
    purse
        .complete(tx, Completion::default())
        .expect("redeemed payment");
    assert_eq!(purse.balance().expect("balance").available, cents(450));
}

/// The issuer's rejection is believed only under its key: a statement
/// signed by anyone else is refused and changes nothing; a genuine one
/// saying "already spent" marks the named coin bad; one about something
/// other than the coins ("in use") releases every input.
#[test]
fn only_a_rejection_signed_by_the_issuer_marks_coins_bad() {
    use ledger::ParticipantId;
    use protocol::crypto::{RSA_BITS_DEFAULT, SecretKey};
    use protocol::flows::issuer::sign_reject;
    use protocol::wire::{PaymentTid, RejectReason, RejectSubject};

    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    let coins = fund(&purse, &[250, 125]);
    let issuer_key = purse
        .issuer()
        .expect("issuer")
        .expect("set")
        .key()
        .expect("key");
    let subject = RejectSubject::Payment {
        id_py: ParticipantId::new("shop").expect("id"),
        tid_py: PaymentTid::from_bytes([3; 16]),
    };
    let reject =
        |sk: &SecretKey, reason| sign_reject(sk, subject.clone(), reason, vec![coins[0].id()], NOW);

    let forger = SecretKey::generate(RSA_BITS_DEFAULT).expect("key");
    let forged = reject(&forger, RejectReason::AlreadySpent);
    assert!(matches!(
        Refusal::from_signed_reject(&forged, &issuer_key),
        Err(PurseError::Statement(_))
    ));

    let tx = purse
        .begin(new_tx(TxKind::Pay, cents(375), &coins))
        .expect("begin");
    let in_use = reject(util::issuer_secret_key(), RejectReason::InUse);
    let refusal = Refusal::from_signed_reject(&in_use, &issuer_key).expect("genuine");
    assert!(refusal.bad.is_empty());
    purse.refuse(tx, refusal).expect("refuse");
    assert_eq!(purse.balance().expect("balance").available, cents(375));

    let tx = purse
        .begin(new_tx(TxKind::Pay, cents(375), &coins))
        .expect("begin");
    let spent = reject(util::issuer_secret_key(), RejectReason::AlreadySpent);
    let refusal = Refusal::from_signed_reject(&spent, &issuer_key).expect("genuine");
    purse.refuse(tx, refusal).expect("refuse");
    match state(&purse, coins[0].id()) {
        CoinState::Bad(reason) => {
            assert_eq!(reason.kind, BadKind::AlreadySpent);
            let statement: protocol::wire::SignedReject =
                protocol::wire::decode(&reason.statement).expect("kept verbatim");
            assert_eq!(statement, spent);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(state(&purse, coins[1].id()), CoinState::Available);
}

/// A payment refused because a coin expired does not lose the coin: it goes
/// back to Available for a refresh; only a refused refresh makes it bad.
#[test]
fn an_expired_coin_is_bad_only_when_its_refresh_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    let coins = fund(&purse, &[250]);
    let expired = || Refusal {
        bad: vec![(coins[0].id(), BadKind::Expired)],
        statement: b"S_I(expired)".to_vec(),
    };
    let tx = purse
        .begin(new_tx(TxKind::Pay, cents(250), &coins))
        .expect("begin");
    purse.refuse(tx, expired()).expect("refuse");
    assert_eq!(state(&purse, coins[0].id()), CoinState::Available);
    let tx = purse
        .begin(new_tx(TxKind::Refresh, cents(250), &coins))
        .expect("begin");
    purse.refuse(tx, expired()).expect("refuse");
    assert!(
        matches!(state(&purse, coins[0].id()), CoinState::Bad(r) if r.kind == BadKind::Expired)
    );
}

/// A flow's client state, with its key shares, round-trips through the
/// journal as a secret.
#[test]
fn a_flow_state_is_kept_as_a_secret_across_restarts() {
    use protocol::crypto::KeyShare;

    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    let share = KeyShare::random();
    let mut purchase = new_tx(TxKind::Purchase, cents(1225), &[]);
    purchase.step = Step::SessionOpen;
    purchase.secrets = vec![SessionSecret::from_state(&share).expect("fits")];
    let tx = purse.begin(purchase).expect("begin");
    drop(purse);
    let purse = Purse::open(purse_path(dir.path()), &passphrase()).expect("reopen");
    let kept: KeyShare = purse.entry(tx).expect("entry").secrets[0]
        .to_state()
        .expect("decodes");
    assert!(kept == share);
}

/// A payee that never answers: the payment becomes a change over the same
/// coins. If the issuer gives fresh coins the money is back; if it says the
/// coins were spent, the payee got them, and the coins are gone from the
/// holdings exactly once either way.
#[test]
fn an_unanswered_payment_is_reclaimed_through_a_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    let coins = fund(&purse, &[250, 125]);
    let mut pay = new_tx(TxKind::Pay, cents(375), &coins);
    pay.to = Destination::Payee("http://gone.test".into());
    let tx = purse.begin(pay).expect("begin");
    let change = StepRecord {
        step: Step::Request,
        message: b"validation request: change".to_vec(),
        secrets: Some(vec![SessionSecret::new(vec![5; 32])]),
        context: None,
        now: NOW,
    };
    purse.reclaim(tx, change.clone()).expect("reclaim");
    let entry = purse.entry(tx).expect("entry");
    assert_eq!(
        (entry.kind, entry.to.clone()),
        (TxKind::Change, Destination::Issuer)
    );
    assert!(
        purse.reclaim(tx, change).is_err(),
        "a change is not reclaimed again"
    );
    purse
        .complete(
            tx,
            Completion {
                spent: ids(&coins),
                received: vec![coin(375)],
                ..Completion::default()
            },
        )
        .expect("fresh coins");
    assert_eq!(purse.balance().expect("balance").available, cents(375));
}

/// Two threads race to spend the same coin: exactly one reserves it.
#[test]
fn concurrent_transactions_never_share_a_coin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = new_purse(dir.path());
    let coins = fund(&purse, &[250]);
    let wins = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| purse.begin(new_tx(TxKind::Pay, cents(250), &coins)).is_ok()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .filter(|won| *won)
            .count()
    });
    assert_eq!(wins, 1);
    assert_eq!(purse.in_flight().expect("journal").len(), 1);
}

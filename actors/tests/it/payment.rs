//! Payment (paper Figures 6–7) and its variants against the issuer core,
//! named after the paper's requirements P1–P4, the spoiler attacks of §3.2,
//! change, refresh and redeem. Each test ends by checking conservation from
//! the log.

use crate::util;

use ledger::{Amount, Coin, Role};
use protocol::crypto::{KeyShare, MacTag};
use protocol::flows::{PayeeOutcome, PayerOutcome, SelfPayment};
use protocol::wire::RejectReason;
use protocol::wire::payment::{
    PaymentOutcome, ReceiptKind, VDesc, VOption, ValidationBody, ValidationKind, ValidationRequest,
};
use protocol::wire::{encode, labels};
use util::{Harness, Who, refresh, spec};
use vc_actors::{Bank, IssuerCore, IssuerError, SessionError};

fn setup() -> (Harness, Who, Who) {
    let h = Harness::new();
    let alice = h.purchaser("alice", 0, 100_000);
    let shop = Who::new("shop", 1);
    h.register(&shop, 0);
    h.enroll(&shop, Role::Merchant);
    (h, alice, shop)
}

/// A ValidationRequest built by hand: `parts` (without a signature) signed
/// by `signer`, whoever that is, and sealed to the issuer.
fn hand_made_validation(
    h: &Harness,
    signer: &protocol::crypto::SecretKey,
    parts: (ValidationKind, VDesc),
    ids: (&ledger::ParticipantId, &ledger::ParticipantId),
    k_py: KeyShare,
    tid_py: protocol::wire::PaymentTid,
    enc_c1: protocol::crypto::Envelope,
) -> ValidationRequest {
    let (kind, v_desc) = parts;
    let (id_py, id_pa) = ids;
    let signature = signer.sign(
        labels::PAY_VALIDATION_SIGNATURE,
        &ValidationBody::signed_bytes(id_py, id_pa, &k_py, &tid_py, kind, &v_desc, &enc_c1),
    );
    let body = ValidationBody {
        id_py: id_py.clone(),
        id_pa: id_pa.clone(),
        k_py,
        tid_py,
        kind,
        v_desc,
        enc_c1,
        signature,
    };
    let envelope = h
        .pk_i()
        .seal(h.core().suite(), labels::PAY_VALIDATION, &encode(&body))
        .expect("seal");
    ValidationRequest { envelope }
}

fn total(coins: &[Coin]) -> u64 {
    coins.iter().map(|c| c.value().minor_units()).sum()
}

/// P1: a valid payment with refresh goes through: the payee gets new coins
/// of its spec, the payer's coins are spent.
#[test]
fn p1_valid_payment_with_refresh_goes_through() {
    let (h, alice, shop) = setup();
    let coins = h.buy(&alice, spec(&[(2, 250)]));
    let outcome = h.pay(
        &alice,
        &shop,
        coins.clone(),
        VOption::Refresh {
            spec: spec(&[(5, 100)]),
        },
    );
    let PayeeOutcome::Coins { coins: new, .. } = outcome else {
        panic!("expected coins");
    };
    assert_eq!(new.len(), 5);
    assert_eq!(total(&new), 500);
    for c in &coins {
        assert!(
            h.core().unspent_coin(&c.id()).is_none(),
            "payer's coin still unspent"
        );
    }
    for c in &new {
        assert!(h.core().unspent_coin(&c.id()).is_some());
    }
    h.assert_conserved();
}

/// P1: a payment with redeem credits the payee's enrolled account at once,
/// with a signed receipt.
#[test]
fn p1_valid_payment_with_redeem_goes_through() {
    let (h, alice, shop) = setup();
    let coins = h.buy(&alice, spec(&[(1, 700)]));
    let outcome = h.pay(
        &alice,
        &shop,
        coins,
        VOption::Redeem {
            bank_account: shop.account.clone(),
        },
    );
    assert!(matches!(outcome, PayeeOutcome::Receipt(r) if r.kind == ReceiptKind::Redeemed));
    assert_eq!(
        h.bank().balance(&shop.account).expect("balance"),
        Amount::from_minor(700)
    );
    h.assert_conserved();
}

/// P1: a payment with aggregate adds to the merchant's balance, which is
/// later redeemed to its bank account (once, even if the request repeats,
/// with the same amount or another).
#[test]
fn p1_valid_payment_with_aggregate_then_redeem_of_the_balance() {
    let (h, alice, shop) = setup();
    let coins = h.buy(&alice, spec(&[(3, 100)]));
    let outcome = h.pay(&alice, &shop, coins, VOption::Aggregate);
    assert!(matches!(outcome, PayeeOutcome::Receipt(r) if r.kind == ReceiptKind::Aggregated));
    let balance = h
        .core()
        .participant(&shop.id)
        .expect("registry")
        .and_then(|p| p.enrolled(Role::Merchant).and_then(|e| e.balance))
        .expect("merchant balance");
    assert_eq!(h.core().aggregate_balance(balance), Amount::from_minor(300));
    h.assert_conserved();
    let request = [7u8; 16];
    h.core()
        .redeem_aggregate(&shop.id, Amount::from_minor(200), request)
        .expect("redeem");
    h.core()
        .redeem_aggregate(&shop.id, Amount::from_minor(200), request)
        .expect("repeat");
    // A repeat naming another amount pays what the commit recorded, no
    // more and no less (the bank holds that credit already).
    h.core()
        .redeem_aggregate(&shop.id, Amount::from_minor(50), request)
        .expect("repeat with another amount");
    assert_eq!(h.core().aggregate_balance(balance), Amount::from_minor(100));
    assert_eq!(
        h.bank().balance(&shop.account).expect("balance"),
        Amount::from_minor(200)
    );
    assert!(
        h.core()
            .redeem_aggregate(&shop.id, Amount::from_minor(101), [8; 16])
            .is_err(),
        "more than the balance"
    );
    h.assert_conserved();
}

/// P2: a double spend is detected: the same coins paid to a second payee
/// get a signed "already spent" naming them.
#[test]
fn p2_double_spend_is_detected() {
    let (h, alice, shop) = setup();
    let bob = Who::new("bob", 2);
    h.register(&bob, 0);
    let coins = h.buy(&alice, spec(&[(1, 500)]));
    h.pay(&alice, &shop, coins.clone(), refresh(500));
    match h.pay(&alice, &bob, coins.clone(), refresh(500)) {
        PayeeOutcome::Rejected(s) => {
            assert_eq!(s.reason, RejectReason::AlreadySpent);
            assert_eq!(s.bad_coins.to_vec(), vec![coins[0].id()]);
        }
        other => panic!("double spend not detected: {other:?}"),
    }
    h.assert_conserved();
}

/// P4: the statement names every spent coin of a double spend, also when
/// they lie in different shards (reserving stops at the first shard that
/// refuses, the statement must not).
#[test]
fn p4_a_double_spend_statement_names_every_spent_coin() {
    let (h, alice, shop) = setup();
    let bob = Who::new("bob", 2);
    h.register(&bob, 0);
    let coins = h.buy(&alice, spec(&[(8, 100)]));
    let n_shards = h.config().n_shards;
    let first = coins[0];
    let other = *coins
        .iter()
        .find(|c| c.id().shard(n_shards) != first.id().shard(n_shards))
        .expect("eight coins over four shards fill more than one");
    h.pay(&alice, &shop, vec![first], refresh(100));
    h.pay(&alice, &shop, vec![other], refresh(100));
    match h.pay(&alice, &bob, vec![first, other], refresh(200)) {
        PayeeOutcome::Rejected(s) => {
            assert_eq!(s.reason, RejectReason::AlreadySpent);
            let mut named = s.bad_coins.to_vec();
            named.sort();
            let mut expected = vec![first.id(), other.id()];
            expected.sort();
            assert_eq!(named, expected);
        }
        other => panic!("double spend not detected: {other:?}"),
    }
    h.assert_conserved();
}

/// P3: an attacker who re-wraps the payer's SendCoins in a ValidationRequest
/// under its own identity is refused, and the real payee is then paid.
#[test]
fn p3_diverted_payment_is_refused() {
    let (h, alice, shop) = setup();
    let mallory = Who::new("mallory", 3);
    h.register(&mallory, 0);
    let coins = h.buy(&alice, spec(&[(1, 400)]));
    let (payee_state, _payer, invoice, send) = h.send_coins(&alice, &shop, coins);
    // Mallory intercepts SendCoins and asks the issuer to pay her (signing
    // as herself: she is the payee she names).
    let stolen = hand_made_validation(
        &h,
        mallory.sk,
        (
            ValidationKind::Payment,
            VDesc {
                amount: invoice.amount,
                option: refresh(400),
            },
        ),
        (&mallory.id, &alice.id),
        KeyShare::random(),
        invoice.tid_py,
        send.enc_c1.clone(),
    );
    let answer = h.core().validate(&stolen).expect("answered");
    assert!(matches!(
        answer.outcome,
        PaymentOutcome::Rejected(ref s) if s.reason == RejectReason::PayeeMismatch
    ));
    let (awaiting, vreq) = h.validation(&payee_state, &send, refresh(400));
    let iss1 = h.core().validate(&vreq).expect("issuance1");
    assert_eq!(total(&h.coins_of(&awaiting, &shop, &iss1)), 400);
    h.assert_conserved();
}

/// P4: the payer receives an issuer-signed statement through the payee and
/// verifies it before marking its coins bad; a forged statement is refused.
#[test]
fn p4_payer_verifies_the_signed_statement() {
    let (h, alice, shop) = setup();
    let coins = h.buy(&alice, spec(&[(1, 300)]));
    h.pay(&alice, &shop, coins.clone(), VOption::Aggregate);
    let (payee_state, payer_state, _inv, send) = h.send_coins(&alice, &shop, coins.clone());
    let (awaiting, vreq) = h.validation(&payee_state, &send, VOption::Aggregate);
    let iss1 = h.core().validate(&vreq).expect("issuance1");
    let outcome = awaiting.on_issuance1(shop.sk, &iss1).expect("opens");
    let result = awaiting.result_for_payer(&outcome, Some(shop.sk));
    match payer_state.on_result(&result).expect("statement verifies") {
        PayerOutcome::Rejected {
            reason, bad_coins, ..
        } => {
            assert_eq!(reason, RejectReason::AlreadySpent);
            assert_eq!(bad_coins, vec![coins[0].id()]);
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    // A statement with a tampered reason does not verify.
    let protocol::wire::payment::PaymentResult::Rejected(mut forged) = result else {
        panic!("not a rejection");
    };
    forged.reason = RejectReason::BadTag;
    assert!(
        payer_state
            .on_result(&protocol::wire::payment::PaymentResult::Rejected(forged))
            .is_err()
    );
    h.assert_conserved();
}

/// A coin with a forged tag is refused with a signed statement naming it,
/// and nothing is spent.
#[test]
fn a_coin_with_a_bad_tag_is_refused_and_nothing_spent() {
    let (h, alice, shop) = setup();
    let mut coins = h.buy(&alice, spec(&[(2, 100)]));
    coins[1].tag.0[0] ^= 1;
    match h.pay(&alice, &shop, coins.clone(), refresh(200)) {
        PayeeOutcome::Rejected(s) => {
            assert_eq!(s.reason, RejectReason::BadTag);
            assert_eq!(s.bad_coins.to_vec(), vec![coins[1].id()]);
        }
        other => panic!("bad tag accepted: {other:?}"),
    }
    assert!(h.core().unspent_coin(&coins[0].id()).is_some());
    h.assert_conserved();
}

/// A session store too full for the payment's ack session refuses the
/// payment before it moves money; once there is room, the same request
/// goes through.
#[test]
fn a_payment_without_room_for_its_ack_session_is_refused_before_money_moves() {
    let (mut h, alice, shop) = setup();
    let coins = h.buy(&alice, spec(&[(2, 100)]));
    h.core = None;
    let mut config = h.config();
    // No room at all: the store is as full as it may get.
    config.session_limits = vc_actors::SessionLimits {
        flow_sessions_max: 0,
        ack_headroom: 0,
    };
    h.core = Some(IssuerCore::open(config, h.bank().clone()).expect("issuer opens"));
    let (payee_state, _payer, _invoice, send) = h.send_coins(&alice, &shop, coins.clone());
    let (_awaiting, vreq) = h.validation(&payee_state, &send, refresh(200));
    match h.core().validate(&vreq) {
        Err(IssuerError::Session(SessionError::Full)) => {}
        other => panic!("a payment went ahead without room for its ack: {other:?}"),
    }
    for coin in &coins {
        assert!(h.core().unspent_coin(&coin.id()).is_some(), "coin spent");
    }
    h.assert_conserved();
    h.restart();
    h.core().validate(&vreq).expect("the retry goes through");
    for coin in &coins {
        assert!(h.core().unspent_coin(&coin.id()).is_none(), "coin unspent");
    }
    h.assert_conserved();
}

/// Idempotent retransmission: the same payment asked again (new K_PY) gets
/// the same coins, not "double spent".
#[test]
fn a_retransmitted_validation_gets_the_same_coins() {
    let (h, alice, shop) = setup();
    let coins = h.buy(&alice, spec(&[(1, 250)]));
    let (payee_state, _payer, _inv, send) = h.send_coins(&alice, &shop, coins);
    let (first, vreq1) = h.validation(&payee_state, &send, refresh(250));
    let got1 = h.coins_of(&first, &shop, &h.core().validate(&vreq1).expect("iss1"));
    let (second, vreq2) = h.validation(&payee_state, &send, refresh(250));
    let got2 = h.coins_of(
        &second,
        &shop,
        &h.core().validate(&vreq2).expect("iss1 again"),
    );
    assert_eq!(got1, got2);
    h.assert_conserved();
}

/// The ack session is a soft write (no fsync of its own), so a crash after
/// the payment's batch is durable may lose it. The issuer restarts over the
/// sessions file such a crash leaves (as it was before the payment): the
/// payee's Issuance2 of the first answer is refused and nothing else is;
/// the coins stay unspent in the log, the payee's, and a retransmission of
/// the validation gets the same coins with a new ack session, whose
/// Issuance2 is taken.
#[test]
fn a_payment_whose_ack_session_a_crash_lost_is_recovered_by_its_retransmission() {
    let (mut h, alice, shop) = setup();
    let coins = h.buy(&alice, spec(&[(1, 250)]));
    let (payee_state, _payer, _inv, send) = h.send_coins(&alice, &shop, coins);
    let sessions = h.dir.path().join("issuer").join("sessions.redb");
    h.core = None;
    let before_payment = std::fs::read(&sessions).expect("sessions file");
    h.restart();

    let (first, vreq1) = h.validation(&payee_state, &send, refresh(250));
    let iss1 = h.core().validate(&vreq1).expect("iss1");
    let PayeeOutcome::Coins { coins: got1, ack } =
        first.on_issuance1(shop.sk, &iss1).expect("opens")
    else {
        panic!("expected coins");
    };
    // The crash: the batch is in the log, the ack session never reached
    // the disk.
    h.core = None;
    std::fs::write(&sessions, &before_payment).expect("the crash's sessions file");
    h.restart();

    assert!(matches!(
        h.core().payment_issuance2(&ack),
        Err(IssuerError::Session(SessionError::Unknown))
    ));
    for coin in &got1 {
        assert!(
            h.core().unspent_coin(&coin.id()).is_some(),
            "the payee's coin is unspent"
        );
    }
    let (second, vreq2) = h.validation(&payee_state, &send, refresh(250));
    let iss1_again = h
        .core()
        .validate(&vreq2)
        .expect("the retransmission is answered");
    let PayeeOutcome::Coins { coins: got2, ack } =
        second.on_issuance1(shop.sk, &iss1_again).expect("opens")
    else {
        panic!("expected coins");
    };
    assert_eq!(got1, got2, "the same coins, from the logged batch");
    h.core()
        .payment_issuance2(&ack)
        .expect("the new ack session takes its Issuance2");
    h.assert_conserved();
}

/// Spoiler 1: a flipped MAC bit in Issuance1 makes the payee refuse it; its
/// retry gets the same new coins, which nobody else can open.
#[test]
fn spoiler_flipped_mac_bit_in_issuance1_costs_only_a_retry() {
    let (h, alice, shop) = setup();
    let coins = h.buy(&alice, spec(&[(1, 600)]));
    let (payee_state, _payer, _inv, send) = h.send_coins(&alice, &shop, coins);
    let (awaiting, vreq) = h.validation(&payee_state, &send, refresh(600));
    let mut iss1 = h.core().validate(&vreq).expect("iss1");
    if let PaymentOutcome::Refreshed { mac, .. } = &mut iss1.outcome {
        let mut bytes = mac.as_bytes().to_vec();
        bytes[0] ^= 1;
        *mac = MacTag::from_bytes(bytes).expect("tag");
    }
    assert!(
        awaiting.on_issuance1(shop.sk, &iss1).is_err(),
        "a spoiled MAC was accepted"
    );
    let (retry, vreq2) = h.validation(&payee_state, &send, refresh(600));
    let iss1b = h.core().validate(&vreq2).expect("retry");
    let new = h.coins_of(&retry, &shop, &iss1b);
    assert_eq!(total(&new), 600);
    // Nobody else can open it: the key share is under the payee's key.
    assert!(retry.on_issuance1(alice.sk, &iss1b).is_err());
    h.assert_conserved();
}

/// Spoiler 2: an attacker substitutes its own K_PY (re-sealing the payee's
/// request with the same SendCoins), or another option: it cannot sign as
/// the payee, so the issuer refuses it before anything is committed, and the
/// payee's own request then gets the coins.
#[test]
fn spoiler_substituted_k_py_leaves_the_coins_to_the_payee() {
    let (h, alice, shop) = setup();
    let mallory = Who::new("mallory", 3);
    h.register(&mallory, 0);
    let coins = h.buy(&alice, spec(&[(1, 800)]));
    let (payee_state, _payer, invoice, send) = h.send_coins(&alice, &shop, coins);
    for option in [refresh(800), VOption::Aggregate] {
        let spoiled = hand_made_validation(
            &h,
            mallory.sk,
            (
                ValidationKind::Payment,
                VDesc {
                    amount: invoice.amount,
                    option,
                },
            ),
            (&shop.id, &alice.id),
            KeyShare::random(),
            invoice.tid_py,
            send.enc_c1.clone(),
        );
        let refused = h.core().validate(&spoiled).expect_err("not the payee");
        assert!(
            matches!(
                refused,
                IssuerError::Flow(protocol::flows::FlowError::BadSignature { .. })
            ),
            "{refused}"
        );
    }
    let (awaiting, vreq) = h.validation(&payee_state, &send, refresh(800));
    let new = h.coins_of(&awaiting, &shop, &h.core().validate(&vreq).expect("retry"));
    assert_eq!(total(&new), 800);
    h.assert_conserved();
}

/// Change: coins in, coins of another spec and equal total out.
#[test]
fn change_gives_coins_of_the_requested_spec() {
    let (h, alice, _shop) = setup();
    let coins = h.buy(&alice, spec(&[(1, 1000)]));
    let (awaiting, vreq) = SelfPayment::change(
        h.core().suite(),
        &h.pk_i(),
        alice.sk,
        h.core().id(),
        &alice.id,
        coins,
        spec(&[(4, 200), (2, 100)]),
    )
    .expect("change request");
    let new = h.coins_of(&awaiting, &alice, &h.core().validate(&vreq).expect("iss1"));
    assert_eq!(new.len(), 6);
    assert_eq!(total(&new), 1000);
    h.assert_conserved();
}

/// Ordinary payments refuse expired coins; refresh takes them within the
/// grace period and refuses them after it.
#[test]
fn expired_coins_are_refused_by_payment_and_refreshed_within_grace() {
    let (h, alice, shop) = setup();
    let coins = h.buy(&alice, spec(&[(3, 100)]));
    h.clock.advance(1000); // the coins' lifetime
    match h.pay(&alice, &shop, vec![coins[0]], refresh(100)) {
        PayeeOutcome::Rejected(s) => assert_eq!(s.reason, RejectReason::Expired),
        other => panic!("expired coin paid: {other:?}"),
    }
    h.core().rotate_epoch_if_due().expect("rotate");
    let (awaiting, vreq) = SelfPayment::refresh(
        h.core().suite(),
        &h.pk_i(),
        alice.sk,
        h.core().id(),
        &alice.id,
        vec![coins[1]],
        spec(&[(1, 100)]),
    )
    .expect("refresh");
    let fresh = h.coins_of(&awaiting, &alice, &h.core().validate(&vreq).expect("iss1"));
    assert!(
        fresh[0].body.epoch > coins[1].body.epoch,
        "fresh coin under the new epoch"
    );
    assert!(!fresh[0].body.is_expired_at(h.now()));
    h.clock.advance(500); // past the grace period
    let (awaiting, vreq) = SelfPayment::refresh(
        h.core().suite(),
        &h.pk_i(),
        alice.sk,
        h.core().id(),
        &alice.id,
        vec![coins[2]],
        spec(&[(1, 100)]),
    )
    .expect("refresh");
    assert!(matches!(
        awaiting.on_issuance1(alice.sk, &h.core().validate(&vreq).expect("iss1")),
        Ok(PayeeOutcome::Rejected(s)) if s.reason == RejectReason::Expired
    ));
    h.assert_conserved();
}

/// Redeem (a payment to oneself): coins in, credit to the enrolled account.
#[test]
fn redeem_credits_the_enrolled_account() {
    let (h, alice, _shop) = setup();
    h.enroll(&alice, Role::Redeemer);
    let coins = h.buy(&alice, spec(&[(2, 150)]));
    let before = h.bank().balance(&alice.account).expect("balance");
    let (awaiting, vreq) = SelfPayment::redeem(
        h.core().suite(),
        &h.pk_i(),
        alice.sk,
        h.core().id(),
        &alice.id,
        coins,
        alice.account.clone(),
    )
    .expect("redeem");
    let outcome = awaiting
        .on_issuance1(alice.sk, &h.core().validate(&vreq).expect("iss1"))
        .expect("opens");
    assert!(matches!(outcome, PayeeOutcome::Receipt(_)));
    assert_eq!(
        h.bank().balance(&alice.account).expect("balance"),
        before.checked_add(Amount::from_minor(300)).expect("sum")
    );
    // Redeem to someone else's account is refused: not hers.
    let coins = h.buy(&alice, spec(&[(1, 50)]));
    let (awaiting, vreq) = SelfPayment::redeem(
        h.core().suite(),
        &h.pk_i(),
        alice.sk,
        h.core().id(),
        &alice.id,
        coins,
        ledger::BankAccount::new("acct-shop").expect("account"),
    )
    .expect("redeem");
    assert!(matches!(
        awaiting.on_issuance1(alice.sk, &h.core().validate(&vreq).expect("iss1")),
        Ok(PayeeOutcome::Rejected(s)) if s.reason == RejectReason::AccountNotEnrolled
    ));
    h.assert_conserved();
}

/// Restart between any two steps of a payment, then retry: the payment
/// completes exactly once (the payee gets the same coins, the payer's coins
/// are spent once, conservation holds).
#[test]
fn restart_between_any_two_steps_of_a_payment_completes_exactly_once() {
    for stop_after in 0..4 {
        let (mut h, alice, shop) = setup();
        let coins = h.buy(&alice, spec(&[(1, 500)]));
        let (payee_state, _payer, _inv, send) = h.send_coins(&alice, &shop, coins.clone());
        if stop_after == 0 {
            h.restart(); // after SendCoins, before the ValidationRequest
        }
        let (awaiting, vreq) = h.validation(&payee_state, &send, refresh(500));
        let first = h.core().validate(&vreq).expect("iss1");
        if stop_after == 1 {
            h.restart(); // committed; the answer was lost on the way
        }
        let first_coins = h.coins_of(&awaiting, &shop, &first);
        let (retry, vreq2) = h.validation(&payee_state, &send, refresh(500));
        if stop_after == 2 {
            h.restart(); // the payee got Issuance1 and retries anyway
        }
        let again = h.coins_of(&retry, &shop, &h.core().validate(&vreq2).expect("retry"));
        assert_eq!(first_coins, again, "stop after step {stop_after}");
        let PayeeOutcome::Coins { ack, .. } = retry
            .on_issuance1(shop.sk, &h.core().validate(&vreq2).expect("iss1"))
            .expect("opens")
        else {
            panic!("no coins");
        };
        if stop_after == 3 {
            h.restart(); // before Issuance2
        }
        h.core().payment_issuance2(&ack).expect("ack");
        assert!(h.core().unspent_coin(&coins[0].id()).is_none());
        assert_eq!(h.core().n_unspent(), 1, "stop after step {stop_after}");
        h.assert_conserved();
    }
}

/// Conservation across a mixed day: purchases, payments of every kind, a
/// redemption; computed from the log after a restart.
#[test]
fn conservation_holds_from_the_log_after_a_mixed_run_and_restart() {
    let (mut h, alice, shop) = setup();
    let coins = h.buy(&alice, spec(&[(4, 100), (2, 50)]));
    h.pay(&alice, &shop, coins[..2].to_vec(), refresh(200));
    h.pay(&alice, &shop, coins[2..3].to_vec(), VOption::Aggregate);
    h.pay(
        &alice,
        &shop,
        coins[3..4].to_vec(),
        VOption::Redeem {
            bank_account: shop.account.clone(),
        },
    );
    h.restart();
    h.assert_conserved();
    let totals = h.core().totals();
    assert_eq!(totals.real_in, 500);
    assert_eq!(totals.real_out, 100);
    assert_eq!(totals.aggregates, 100);
    assert_eq!(totals.outstanding, 300);
    let st = h.bank().statement(1, 100).expect("statement");
    assert_eq!(st.len(), 2, "one settled debit, one redemption credit");
}

/// Shards boot from the coin-status checkpoint plus the log tail: after a
/// checkpoint midway and more payments, a restart serves exactly the coins
/// a replay of the whole log says are unspent.
#[test]
fn shards_boot_from_the_coin_status_checkpoint_and_the_log_tail() {
    let (mut h, alice, shop) = setup();
    let coins = h.buy(&alice, spec(&[(6, 100)]));
    h.pay(&alice, &shop, coins[..2].to_vec(), refresh(200));
    h.core().checkpoint_coin_status().expect("checkpoint");
    h.pay(&alice, &shop, coins[2..4].to_vec(), VOption::Aggregate);
    h.pay(&alice, &shop, coins[4..5].to_vec(), refresh(100));
    h.restart();
    assert!(h.core().shards_booted_from_checkpoint());
    let from_log = h.core().unspent_ids_from_log().expect("replay");
    assert_eq!(h.core().unspent_ids(), from_log);
    assert_eq!(from_log.len(), 3, "one left of the purchase, two refreshed");
    // The booted shards serve: a spent coin is refused, an unspent one pays.
    assert!(matches!(
        h.pay(&alice, &shop, vec![coins[4]], refresh(100)),
        PayeeOutcome::Rejected(s) if s.reason == RejectReason::AlreadySpent
    ));
    assert!(matches!(
        h.pay(&alice, &shop, vec![coins[5]], refresh(100)),
        PayeeOutcome::Coins { .. }
    ));
    h.assert_conserved();
}

/// Coin status: signed advice on serials (unspent, in use, spent, unknown),
/// verified by the asker, and still right for coins spent before a restart.
#[test]
fn coin_status_answers_are_signed_and_survive_a_restart() {
    use protocol::flows::verify_coin_status;
    use protocol::wire::common::CoinSerials;
    use protocol::wire::status::{CoinState, CoinStatusQuery};
    let (mut h, alice, shop) = setup();
    let coins = h.buy(&alice, spec(&[(3, 100)]));
    h.pay(&alice, &shop, vec![coins[0]], refresh(100));
    let stranger = ledger::CoinId::random();
    let query = CoinStatusQuery {
        coins: CoinSerials::new(vec![coins[0].id(), coins[1].id(), stranger]).expect("serials"),
    };
    let states = |h: &Harness| -> Vec<CoinState> {
        let answer = h.core().coin_status(&query).expect("answered");
        verify_coin_status(&h.pk_i(), &query, &answer)
            .expect("signature checks")
            .into_iter()
            .map(|e| e.state)
            .collect()
    };
    assert_eq!(
        states(&h),
        vec![CoinState::Spent, CoinState::Unspent, CoinState::Unknown]
    );
    h.restart();
    assert_eq!(
        states(&h),
        vec![CoinState::Spent, CoinState::Unspent, CoinState::Unknown]
    );
    // A coin held by a transaction in flight: its batch waits on a log
    // whose append is held until the test lets it go.
    h.core = None;
    let log = std::sync::Arc::new(HeldLog::new(
        ledger::RedbStore::open(h.log_file()).expect("log opens"),
    ));
    h.restart_on_log(log.clone());
    log.arm();
    let (payee_state, _payer, _inv, send) = h.send_coins(&alice, &shop, vec![coins[1]]);
    let (awaiting, vreq) = h.validation(&payee_state, &send, refresh(100));
    std::thread::scope(|s| {
        let paying = s.spawn(|| h.core().validate(&vreq));
        log.wait_until_held();
        assert_eq!(states(&h)[1], CoinState::InUse);
        log.release();
        let iss1 = paying.join().expect("payer thread").expect("answered");
        assert!(matches!(
            awaiting.on_issuance1(shop.sk, &iss1).expect("opens"),
            PayeeOutcome::Coins { .. }
        ));
    });
    assert_eq!(states(&h)[1], CoinState::Spent);
}

/// A log whose appends wait until the test releases them: a transaction
/// in flight, its batch handed to the log and not yet durable.
struct HeldLog {
    inner: ledger::RedbStore,
    /// Whether appends are held (those of the issuer's start are not).
    armed: std::sync::atomic::AtomicBool,
    held: std::sync::Mutex<bool>,
    changed: std::sync::Condvar,
    released: std::sync::atomic::AtomicBool,
}

impl HeldLog {
    fn new(inner: ledger::RedbStore) -> HeldLog {
        HeldLog {
            inner,
            armed: std::sync::atomic::AtomicBool::new(false),
            held: std::sync::Mutex::new(false),
            changed: std::sync::Condvar::new(),
            released: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn arm(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn wait_until_held(&self) {
        let mut held = self.held.lock().expect("lock");
        while !*held {
            held = self.changed.wait(held).expect("lock");
        }
    }

    fn release(&self) {
        self.released
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let _held = self.held.lock().expect("lock");
        self.changed.notify_all();
    }
}

impl ledger::EventStore for HeldLog {
    fn append(&self, batches: &[ledger::Batch]) -> Result<Vec<ledger::Seq>, ledger::StoreError> {
        if !self.armed.load(std::sync::atomic::Ordering::SeqCst) {
            return self.inner.append(batches);
        }
        let mut held = self.held.lock().expect("lock");
        *held = true;
        self.changed.notify_all();
        while !self.released.load(std::sync::atomic::Ordering::SeqCst) {
            held = self.changed.wait(held).expect("lock");
        }
        drop(held);
        self.inner.append(batches)
    }
    fn head(&self) -> Result<ledger::Head, ledger::StoreError> {
        self.inner.head()
    }
    fn read(
        &self,
        from: ledger::Seq,
        max_records: usize,
    ) -> Result<Vec<ledger::StoredRecord>, ledger::StoreError> {
        self.inner.read(from, max_records)
    }
}

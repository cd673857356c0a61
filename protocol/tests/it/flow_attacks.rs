//! Attacks on the flows, under both suites: a flipped bit anywhere in an
//! envelope, MAC or signature is refused with a typed error (never a panic,
//! never acceptance); a replayed WRequest3 is refused (W3); a payee that
//! re-wraps someone else's SendCoins under its own identity is refused (P3);
//! forged or misdirected rejections are not believed (P4).

use crate::flow_support;

use flow_support::*;
use ledger::{Coin, PurchaseId, Timestamp};
use protocol::crypto::SuiteId;
use protocol::flows::issuer;
use protocol::flows::{
    FlowError, PayeeOutcome, PaymentPayee, PaymentPayer, PurchaseClient, PurchaseUpdate,
    RegistrationClient, verify_certificate,
};
use protocol::wire::payment::{PDesc, VOption};
use protocol::wire::purchase::{PurchaseIssuance2, WDesc};
use protocol::wire::{RejectReason, RejectSubject, WireMessage, decode, encode};

/// Bit positions spread over a message of `len` bytes, ending with the last.
fn bit_positions(len: usize) -> Vec<usize> {
    let bits = len * 8;
    let n = 48.min(bits);
    let mut out: Vec<usize> = (0..n)
        .map(|i| (i * bits / n + i % 8).min(bits - 1))
        .collect();
    out.push(bits - 1);
    out.push(8); // first bit after the version byte
    out.dedup();
    out
}

/// Flips each chosen bit of `msg`'s encoding; whatever still decodes must be
/// refused by `receive`, which must accept the untampered message. Returns
/// how many flips got as far as `receive` (at least one).
fn every_flip_refused<M: WireMessage>(
    msg: &M,
    mut receive: impl FnMut(M) -> Result<(), FlowError>,
) -> usize {
    let bytes = encode(msg);
    // The untampered message passes: the refusals below are the flips' doing.
    let intact = decode::<M>(&bytes).expect("decodes");
    if let Err(e) = receive(intact) {
        panic!("{}: the untampered message is refused: {e}", M::NAME);
    }
    let mut reached = 0;
    for bit in bit_positions(bytes.len()) {
        let mut t = bytes.clone();
        t[bit / 8] ^= 1 << (bit % 8);
        if let Ok(m) = decode::<M>(&t) {
            reached += 1;
            assert!(
                receive(m).is_err(),
                "{}: flipped bit {bit} of {} was accepted",
                M::NAME,
                bytes.len() * 8
            );
        }
    }
    assert!(
        reached > 0,
        "{}: no flipped message got past decoding",
        M::NAME
    );
    reached
}

fn w_desc(s: &ledger::CoinSpec) -> WDesc {
    WDesc {
        spec: s.clone(),
        amount: s.total().expect("total"),
        bank_account: account("111-alice"),
        anonymous: false,
    }
}

// Every purchase message, tampered, is refused by its receiver; the
// untampered ones still go through afterwards (tampering consumed nothing).
#[test]
fn tampered_purchase_messages_are_refused() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let pk_i = w.issuer.pk();
        let (state, w1) =
            PurchaseClient::start(suite, &w.alice.sk, w.alice.id.clone(), &pk_i, NOW).expect("w1");
        let sk_i = w.issuer.sk.clone();
        let alice_pk = w.alice.pk();
        assert!(
            every_flip_refused(&w1, |m| {
                issuer::open_wrequest1(&sk_i, &m, |_| Some(alice_pk.clone()), NOW).map(|_| ())
            }) > 0
        );
        let w2 = w.issuer.wrequest1(&w1).expect("w2");
        let (alice_sk, id_i) = (w.alice.sk.clone(), w.issuer.id.clone());
        let s = spec(&[(2, 100)]);
        every_flip_refused(&w2, |m| {
            state
                .clone()
                .on_wrequest2(&alice_sk, &id_i, &m, w_desc(&s))
                .map(|_| ())
        });
        let (state, w3) = state
            .on_wrequest2(&alice_sk, &id_i, &w2, w_desc(&s))
            .expect("w3");
        let session = w.issuer.purchases[&w3.purchase].clone();
        let pk_cp = w.alice.pk();
        every_flip_refused(&w3, |m| {
            issuer::open_wrequest3(&mut session.clone(), &pk_cp, &m).map(|_| ())
        });
        w.issuer
            .wrequest3(&w3)
            .expect("untampered WRequest3 accepted");
        w.issuer.settle(state.purchase());
        let poll = state.poll();
        every_flip_refused(&poll, |m| issuer::open_purchase_poll(&session, &m));
        let issued = w.issuer.poll(&poll).expect("issued");
        every_flip_refused(&issued, |m| state.on_issuance1(&m).map(|_| ()));
        let PurchaseUpdate::Issued { ack, .. } = state.on_issuance1(&issued).expect("coins") else {
            panic!("expected coins");
        };
        every_flip_refused(&ack, |m| issuer::open_purchase_issuance2(&session, &m));
        w.issuer.purchase_ack(&ack).expect("untampered ack");
    }
}

// W3: R_I is single-use. The same WRequest3 twice is a replay; a WRequest3 of
// one session presented in another does not authenticate.
#[test]
fn replayed_wrequest3_is_refused() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let pk_i = w.issuer.pk();
        let (state, w1) =
            PurchaseClient::start(suite, &w.alice.sk, w.alice.id.clone(), &pk_i, NOW).expect("w1");
        let w2 = w.issuer.wrequest1(&w1).expect("w2");
        let s = spec(&[(1, 500)]);
        let (_state, w3) = state
            .on_wrequest2(&w.alice.sk, &w.issuer.id, &w2, w_desc(&s))
            .expect("w3");
        w.issuer.wrequest3(&w3).expect("first WRequest3");
        assert!(matches!(
            w.issuer.wrequest3(&w3),
            Err(FlowError::ReplayedNonce)
        ));

        // Another session of the same purchaser: the old WRequest3 re-aimed at it.
        let (_other, w1b) =
            PurchaseClient::start(suite, &w.alice.sk, w.alice.id.clone(), &pk_i, NOW).expect("w1");
        let w2b = w.issuer.wrequest1(&w1b).expect("w2");
        let mut aimed = w3.clone();
        aimed.purchase = w2b.purchase;
        assert!(matches!(
            w.issuer.wrequest3(&aimed),
            Err(FlowError::BadMac { .. })
        ));
    }
}

// The issuer cannot short-change a purchase: coins other than W-DESC's are refused.
#[test]
fn issuance_with_coins_other_than_the_spec_is_refused() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let pk_i = w.issuer.pk();
        let (state, w1) =
            PurchaseClient::start(suite, &w.alice.sk, w.alice.id.clone(), &pk_i, NOW).expect("w1");
        let w2 = w.issuer.wrequest1(&w1).expect("w2");
        let s = spec(&[(2, 100)]);
        let (state, w3) = state
            .on_wrequest2(&w.alice.sk, &w.issuer.id, &w2, w_desc(&s))
            .expect("w3");
        w.issuer.wrequest3(&w3).expect("accepted");
        let short = w.issuer.mint(&spec(&[(1, 100)]), COIN_EXPIRY, None);
        let session = w.issuer.purchases[&state.purchase()].clone();
        let bad = issuer::build_purchase_issuance1(&session, short).expect("built");
        assert!(matches!(
            state.on_issuance1(&bad),
            Err(FlowError::WrongCoins { .. })
        ));
    }
}

// Labels separate steps: the MAC of a poll is not an Issuance2.
#[test]
fn a_mac_from_one_step_does_not_pass_at_another() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let pk_i = w.issuer.pk();
        let (state, w1) =
            PurchaseClient::start(suite, &w.alice.sk, w.alice.id.clone(), &pk_i, NOW).expect("w1");
        let w2 = w.issuer.wrequest1(&w1).expect("w2");
        let (state, w3) = state
            .on_wrequest2(&w.alice.sk, &w.issuer.id, &w2, w_desc(&spec(&[(1, 5)])))
            .expect("w3");
        w.issuer.wrequest3(&w3).expect("accepted");
        let poll = state.poll();
        let forged = PurchaseIssuance2 {
            purchase: poll.purchase,
            mac: poll.mac,
        };
        assert!(matches!(
            w.issuer.purchase_ack(&forged),
            Err(FlowError::BadMac { .. })
        ));
    }
}

/// alice's SendCoins to bob for `coins`, and bob's payee state.
fn alice_pays_bob(
    w: &mut World,
    coins: Vec<Coin>,
) -> (
    PaymentPayer,
    PaymentPayee,
    protocol::wire::payment::SendCoins,
) {
    let total = ledger::Amount::checked_sum(coins.iter().map(Coin::value)).expect("total");
    let cert = w.bob.cert.clone().expect("cert");
    let (payee, invoice) = PaymentPayee::invoice(
        w.bob.id.clone(),
        w.alice.id.clone(),
        w.issuer.id.clone(),
        PDesc::new("tea").expect("short"),
        total,
        Some((&w.bob.sk, &cert)),
    );
    let (payer, send) = PaymentPayer::pay(
        w.suite,
        &w.issuer.pk(),
        &w.issuer.id,
        &w.alice.id,
        &invoice,
        coins,
        NOW,
    )
    .expect("send");
    (payer, payee, send)
}

// Every payment message, tampered, is refused by its receiver.
#[test]
fn tampered_payment_messages_are_refused() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let coins = w.buy(&spec(&[(2, 100)]), true);
        let (payer, payee, send) = alice_pays_bob(&mut w, coins);
        let (pk_i, sk_i) = (w.issuer.pk(), w.issuer.sk.clone());
        let (bob_sk, bob_pk) = (w.bob.sk.clone(), w.bob.pk());

        // The invoice, as the payer receives it.
        let invoice = payee.invoice_sent().clone();
        let alice = w.alice.id.clone();
        let (id_i, fresh) = (w.issuer.id.clone(), w.buy(&spec(&[(2, 100)]), true));
        every_flip_refused(&invoice, |m| {
            PaymentPayer::pay(suite, &pk_i, &id_i, &alice, &m, fresh.clone(), NOW).map(|_| ())
        });

        // SendCoins, as the issuer finally opens it inside a ValidationRequest.
        every_flip_refused(&send, |m| {
            let (_, v) = payee.on_send_coins(suite, &pk_i, &bob_sk, m, VOption::Aggregate)?;
            issuer::open_validation_request(&sk_i, &v, |_| Some(bob_pk.clone())).map(|_| ())
        });

        let option = VOption::Refresh {
            spec: spec(&[(1, 200)]),
        };
        let (awaiting, validation) = payee
            .on_send_coins(suite, &pk_i, &bob_sk, send, option)
            .expect("validation");
        every_flip_refused(&validation, |m| {
            issuer::open_validation_request(&sk_i, &m, |_| Some(bob_pk.clone())).map(|_| ())
        });
        let issuance = w.issuer.validate(&validation).expect("validated");
        every_flip_refused(&issuance, |m| {
            awaiting.on_issuance1(&bob_sk, &m).map(|_| ())
        });
        let outcome = awaiting.on_issuance1(&bob_sk, &issuance).expect("coins");
        let PayeeOutcome::Coins { ack, .. } = &outcome else {
            panic!("expected coins");
        };
        let session = w
            .issuer
            .ack_sessions
            .values()
            .next()
            .expect("ack session")
            .clone();
        every_flip_refused(ack, |m| issuer::open_payment_issuance2(&session, &m));
        let result = awaiting.result_for_payer(&outcome, Some(&bob_sk));
        every_flip_refused(&result, |m| payer.on_result(&m).map(|_| ()));
        assert!(payer.on_result(&result).is_ok());
    }
}

// Receipts and rejections from the issuer, tampered, are refused by the payee
// and (the rejection, passed on) by the payer.
#[test]
fn tampered_receipts_and_rejections_are_refused() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let pk_i = w.issuer.pk();
        let bob_sk = w.bob.sk.clone();

        let coins = w.buy(&spec(&[(1, 100)]), true);
        let (_payer, payee, send) = alice_pays_bob(&mut w, coins);
        let (awaiting, v) = payee
            .on_send_coins(suite, &pk_i, &bob_sk, send, VOption::Aggregate)
            .expect("v");
        let receipt = w.issuer.validate(&v).expect("receipt");
        assert!(matches!(
            awaiting.on_issuance1(&bob_sk, &receipt),
            Ok(PayeeOutcome::Receipt(_))
        ));
        every_flip_refused(&receipt, |m| awaiting.on_issuance1(&bob_sk, &m).map(|_| ()));

        let old = w
            .issuer
            .mint(&spec(&[(1, 100)]), Timestamp(NOW.0 - 1), None);
        let (payer, payee, send) = alice_pays_bob(&mut w, old);
        let (awaiting, v) = payee
            .on_send_coins(suite, &pk_i, &bob_sk, send, VOption::Aggregate)
            .expect("v");
        let rejected = w.issuer.validate(&v).expect("rejection");
        let outcome = awaiting.on_issuance1(&bob_sk, &rejected).expect("signed");
        assert!(matches!(outcome, PayeeOutcome::Rejected(_)));
        every_flip_refused(&rejected, |m| {
            awaiting.on_issuance1(&bob_sk, &m).map(|_| ())
        });
        let passed_on = awaiting.result_for_payer(&outcome, Some(&bob_sk));
        every_flip_refused(&passed_on, |m| payer.on_result(&m).map(|_| ()));
        assert!(payer.on_result(&passed_on).is_ok());
    }
}

// The other signed or sealed messages, tampered: registration, certificate,
// enrollment, refund request and answer, coin status.
#[test]
fn tampered_registration_enrollment_refund_and_status_are_refused() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let (sk_i, pk_i) = (w.issuer.sk.clone(), w.issuer.pk());

        let (client, req) = RegistrationClient::start(pid("carol"), &w.mallory.sk);
        every_flip_refused(&req, |m| issuer::open_register_request(&m));
        let cert = w.issuer.register(&req).expect("cert");
        every_flip_refused(&cert, |m| {
            client.clone().on_certificate(&pk_i, m, NOW).map(|_| ())
        });
        every_flip_refused(&cert, |m| verify_certificate(&pk_i, &m, NOW));

        let enroll = protocol::flows::enrollment_request(
            suite,
            &w.alice.sk,
            &pk_i,
            w.alice.id.clone(),
            ledger::Role::Redeemer,
            account("111-alice"),
            NOW,
        )
        .expect("enroll");
        let registry = w.issuer.registry.clone();
        every_flip_refused(&enroll, |m| {
            issuer::open_enrollment_request(&sk_i, &m, |id| registry.get(id).cloned(), NOW)
                .map(|_| ())
        });

        w.buy(&spec(&[(1, 100)]), false);
        let (refund, req) = protocol::flows::RefundClient::start(
            suite,
            &w.alice.sk,
            &pk_i,
            w.issuer.id.clone(),
            w.alice.id.clone(),
            NOW,
        )
        .expect("refund");
        every_flip_refused(&req, |m| {
            issuer::open_refund_request(&sk_i, &m, |id| registry.get(id).cloned(), NOW).map(|_| ())
        });
        // A stale request is refused even though everything checks.
        assert!(matches!(
            issuer::open_refund_request(
                &sk_i,
                &req,
                |id| registry.get(id).cloned(),
                NOW.plus_secs(protocol::flows::REQUEST_AGE_SECS_MAX + 1)
            ),
            Err(FlowError::Stale)
        ));
        let answer = w.issuer.refund(&req).expect("answer");
        let alice_sk = w.alice.sk.clone();
        every_flip_refused(&answer, |m| refund.on_answer(&alice_sk, &m).map(|_| ()));
        assert!(refund.on_answer(&alice_sk, &answer).is_ok());

        let coins = w.buy(&spec(&[(2, 1)]), true);
        let query = protocol::wire::status::CoinStatusQuery {
            coins: protocol::wire::CoinSerials::new(coins.iter().map(Coin::id).collect())
                .expect("few"),
        };
        let status = w.issuer.coin_status(&query).expect("status");
        every_flip_refused(&status, |m| {
            protocol::flows::verify_coin_status(&pk_i, &query, &m).map(|_| ())
        });
    }
}

// P3: mallory intercepts alice's SendCoins to bob and re-wraps it in her own
// ValidationRequest. The issuer refuses (signed, PayeeMismatch) and spends
// nothing; bob's own request then goes through.
#[test]
fn rewrapped_send_coins_under_another_payee_is_refused() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let coins = w.buy(&spec(&[(3, 100)]), true);
        let (_payer, payee, send) = alice_pays_bob(&mut w, coins.clone());
        let pk_i = w.issuer.pk();

        let (thief, _) = PaymentPayee::invoice(
            w.mallory.id.clone(),
            w.alice.id.clone(),
            w.issuer.id.clone(),
            PDesc::new("tea").expect("short"),
            ledger::Amount::from_minor(300),
            None,
        );
        let (thief_state, stolen) = thief
            .on_send_coins(
                suite,
                &pk_i,
                &w.mallory.sk,
                send.clone(),
                VOption::Aggregate,
            )
            .expect("mallory can wrap");
        let answer = w.issuer.validate(&stolen).expect("answered");
        let outcome = thief_state
            .on_issuance1(&w.mallory.sk, &answer)
            .expect("signed rejection");
        let PayeeOutcome::Rejected(reject) = outcome else {
            panic!("P3 violated: mallory got {outcome:?}");
        };
        assert_eq!(reject.reason, RejectReason::PayeeMismatch);
        assert!(w.issuer.aggregated.is_empty());
        for c in &coins {
            assert!(w.issuer.unspent.contains_key(&c.id()), "a coin was spent");
        }

        let (awaiting, v) = payee
            .on_send_coins(suite, &pk_i, &w.bob.sk, send, VOption::Aggregate)
            .expect("bob wraps");
        let answer = w.issuer.validate(&v).expect("answered");
        assert!(matches!(
            awaiting.on_issuance1(&w.bob.sk, &answer),
            Ok(PayeeOutcome::Receipt(_))
        ));
        assert_eq!(
            w.issuer.aggregated[&w.bob.id],
            ledger::Amount::from_minor(300)
        );
    }
}

// Spoiler (paper §3.2): mallory submits bob's payment under bob's id with her
// own K_PY (and, had she her way, another option). The request must be signed
// by the payee it names: hers is refused before anything is committed, and
// bob's own request then gets its coins.
#[test]
fn substituted_key_share_gains_the_attacker_nothing() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let coins = w.buy(&spec(&[(2, 100)]), true);
        let (_payer, payee, send) = alice_pays_bob(&mut w, coins);
        let pk_i = w.issuer.pk();
        let option = VOption::Refresh {
            spec: spec(&[(1, 200)]),
        };
        // Mallory copies the invoice (it is not secret) and wraps with her
        // share, signing with the only key she has.
        for spoiler_option in [option.clone(), VOption::Aggregate] {
            let (_spoiler_state, spoiled) = payee
                .clone()
                .on_send_coins(suite, &pk_i, &w.mallory.sk, send.clone(), spoiler_option)
                .expect("wrap");
            assert!(matches!(
                w.issuer.validate(&spoiled),
                Err(FlowError::BadSignature { .. })
            ));
        }
        assert!(w.issuer.payments.is_empty(), "nothing committed");
        let (awaiting, v) = payee
            .on_send_coins(suite, &pk_i, &w.bob.sk, send, option)
            .expect("bob wraps");
        let answer_b = w.issuer.validate(&v).expect("same outcome");
        let PayeeOutcome::Coins { coins: got, .. } = awaiting
            .on_issuance1(&w.bob.sk, &answer_b)
            .expect("bob opens")
        else {
            panic!("expected coins");
        };
        assert_eq!(got.len(), 1);
        assert_eq!(w.issuer.payments.len(), 1, "one payment, committed once");
    }
}

// P4: a rejection not signed by the issuer, or about another payment, is not
// believed by the payer.
#[test]
fn forged_or_misdirected_rejections_are_not_believed() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let coins = w.buy(&spec(&[(1, 100)]), true);
        let (payer, payee, _send) = alice_pays_bob(&mut w, coins.clone());
        let tid = payee.invoice_sent().tid_py;
        let subject = RejectSubject::Payment {
            id_py: w.bob.id.clone(),
            tid_py: tid,
        };
        let forged = issuer::sign_reject(
            &w.mallory.sk,
            subject.clone(),
            RejectReason::AlreadySpent,
            vec![coins[0].id()],
            NOW,
        );
        assert!(matches!(
            payer.on_result(&protocol::wire::payment::PaymentResult::Rejected(forged)),
            Err(FlowError::BadSignature { .. })
        ));
        let elsewhere = issuer::sign_reject(
            &w.issuer.sk,
            RejectSubject::Purchase(PurchaseId::random()),
            RejectReason::AlreadySpent,
            vec![coins[0].id()],
            NOW,
        );
        assert!(matches!(
            payer.on_result(&protocol::wire::payment::PaymentResult::Rejected(elsewhere)),
            Err(FlowError::Mismatch { .. })
        ));
        let genuine = issuer::sign_reject(
            &w.issuer.sk,
            subject,
            RejectReason::AlreadySpent,
            vec![coins[0].id()],
            NOW,
        );
        assert!(
            payer
                .on_result(&protocol::wire::payment::PaymentResult::Rejected(genuine))
                .is_ok()
        );
    }
}

// Domain separation: an envelope made for one step does not open at another,
// even under the right key (the payer's EncC_1 is not a ValidationRequest; a
// refund request is not an enrollment).
#[test]
fn an_envelope_for_one_step_does_not_open_at_another() {
    for suite in SuiteId::ALL {
        let mut w = World::new(suite);
        let coins = w.buy(&spec(&[(1, 100)]), true);
        let (_payer, _payee, send) = alice_pays_bob(&mut w, coins);
        let sk_i = w.issuer.sk.clone();
        let as_validation = protocol::wire::payment::ValidationRequest {
            envelope: send.enc_c1,
        };
        assert!(matches!(
            issuer::open_validation_request(&sk_i, &as_validation, |_| None),
            Err(FlowError::CannotOpen { .. })
        ));
        let (_refund, req) = protocol::flows::RefundClient::start(
            suite,
            &w.alice.sk,
            &w.issuer.pk(),
            w.issuer.id.clone(),
            w.alice.id.clone(),
            NOW,
        )
        .expect("refund");
        let as_enrollment = protocol::wire::enrollment::EnrollmentRequest {
            envelope: req.envelope,
        };
        let registry = w.issuer.registry.clone();
        assert!(matches!(
            issuer::open_enrollment_request(
                &sk_i,
                &as_enrollment,
                |id| registry.get(id).cloned(),
                NOW
            ),
            Err(FlowError::CannotOpen { .. })
        ));
    }
}

//! The wire format: every message of every flow round-trips, and no strict
//! prefix (a truncation by one byte or more), trailing byte, unknown version
//! or oversized input decodes; hostile counts are refused before allocation;
//! the largest legal messages fit their limits. Both suites.

use crate::flow_support;

use std::collections::BTreeSet;

use flow_support::*;
use ledger::constants::COINS_PER_TX_MAX;
use ledger::{Amount, Coin, CoinBody, CoinId, KeyEpoch, Tag, Timestamp};
use protocol::crypto::{KeyShare, Nonce, SessionKey, SuiteId};
use protocol::flows::SelfPayment;
use protocol::flows::issuer;
use protocol::wire::payment::{
    ComHash, SendCoins, SendCoinsBody, VDesc, VOption, ValidationBody, ValidationKind,
    ValidationRequest,
};
use protocol::wire::purchase::{IssuedCoins, WDesc, WRequest3Body};
use protocol::wire::status::CoinStatusQuery;
use protocol::wire::{
    CoinList, PROTOCOL_VERSION, PaymentTid, RejectReason, RejectSubject, SignedReject, WireError,
    WireMessage, decode, encode, labels,
};

/// Runs every flow once under `suite` and returns what crossed the wire.
fn every_flow(suite: SuiteId) -> Vec<Recorded> {
    let mut w = World::new(suite);
    let coins = w.buy(&spec(&[(2, 100), (1, 50)]), false);
    w.pay(
        coins[..1].to_vec(),
        VOption::Refresh {
            spec: spec(&[(2, 50)]),
        },
        true,
    );
    w.pay(coins[1..2].to_vec(), VOption::Aggregate, false);
    let bob = w.bob.id.clone();
    let bobs = w.issuer.mint(&spec(&[(1, 10)]), COIN_EXPIRY, Some(&bob));
    let redeem = SelfPayment::redeem(
        suite,
        &w.issuer.pk(),
        &w.bob.sk,
        &w.issuer.id,
        &bob,
        bobs,
        account("222-bob"),
    )
    .expect("redeem");
    let bob_sk = w.bob.sk.clone();
    w.self_pay(&bob_sk, redeem);
    let expired = w.issuer.mint(&spec(&[(1, 10)]), Timestamp(NOW.0 - 1), None);
    w.pay(expired, VOption::Aggregate, true);
    w.refund();
    w.status(coins.iter().map(Coin::id).collect());
    w.wire.seen
}

/// Checks one encoding: it decodes, and none of its strict prefixes, nor it
/// with a byte more, nor it under another version, decodes.
fn check_encoding(name: &str, bytes: &[u8], decode: fn(&[u8]) -> Result<(), WireError>) {
    decode(bytes).unwrap_or_else(|e| panic!("{name} does not decode: {e}"));
    for len in 0..bytes.len() {
        assert!(
            decode(&bytes[..len]).is_err(),
            "{name}: a prefix of {len} of {} bytes decodes",
            bytes.len()
        );
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(
        matches!(
            decode(&longer),
            Err(WireError::TrailingBytes { count: 1, .. } | WireError::TooLong { .. })
        ),
        "{name}: a trailing byte is accepted"
    );
    let mut other = bytes.to_vec();
    other[0] = PROTOCOL_VERSION.wrapping_add(1);
    assert!(
        matches!(decode(&other), Err(WireError::UnknownVersion(_))),
        "{name}: another version is accepted"
    );
}

fn decode_as<M: WireMessage>(bytes: &[u8]) -> Result<(), WireError> {
    decode::<M>(bytes).map(|_| ())
}

fn check_message<M: WireMessage + PartialEq + std::fmt::Debug>(msg: &M) {
    let bytes = encode(msg);
    assert_eq!(&decode::<M>(&bytes).expect("decodes"), msg, "{}", M::NAME);
    check_encoding(M::NAME, &bytes, decode_as::<M>);
}

// Every message every flow sends round-trips (checked in transit), and
// every truncation of it is refused.
#[test]
fn every_flow_message_refuses_truncation_trailing_bytes_and_other_versions() {
    let expected: BTreeSet<&str> = [
        "RegisterRequest",
        "Certificate",
        "EnrollmentRequest",
        "EnrollmentAnswer",
        "WRequest1",
        "WRequest2",
        "WRequest3",
        "PurchasePoll",
        "PurchaseIssuance1",
        "PurchaseIssuance2",
        "Invoice",
        "SendCoins",
        "ValidationRequest",
        "PaymentIssuance1",
        "PaymentIssuance2",
        "PaymentResult",
        "RefundRequest",
        "RefundAnswer",
        "CoinStatusQuery",
        "CoinStatusAnswer",
    ]
    .into_iter()
    .collect();
    for suite in SuiteId::ALL {
        let seen = every_flow(suite);
        let names: BTreeSet<&str> = seen.iter().map(|r| r.name).collect();
        assert_eq!(
            names, expected,
            "{suite:?}: flows did not send every message"
        );
        for r in &seen {
            check_encoding(r.name, &r.bytes, r.decode);
        }
    }
}

fn coin(value: u64) -> Coin {
    Coin {
        body: CoinBody {
            id: CoinId::random(),
            value: Amount::from_minor(value),
            expiry: COIN_EXPIRY,
            epoch: KeyEpoch(1),
        },
        tag: Tag([9; 16]),
    }
}

/// The largest coin encoding: every varint at its widest.
fn widest_coin() -> Coin {
    Coin {
        body: CoinBody {
            id: CoinId::random(),
            value: Amount::from_minor(u64::MAX / COINS_PER_TX_MAX as u64),
            expiry: Timestamp(u64::MAX),
            epoch: KeyEpoch(u32::MAX),
        },
        tag: Tag([0xff; 16]),
    }
}

// The bodies inside envelopes and ciphertexts are messages too.
#[test]
fn sealed_bodies_round_trip_and_refuse_truncation() {
    let k = keys();
    let id = pid("alice");
    check_message(&protocol::wire::purchase::WRequest1Body {
        id_cp: id.clone(),
        k_cp: KeyShare::random(),
        requested_at: ledger::Timestamp(1_700_000_000),
        signature: k[0].sign(labels::PURCHASE_1_SIGNATURE, b"w1"),
    });
    check_message(&protocol::wire::purchase::WRequest2Body {
        purchase: ledger::PurchaseId::random(),
        id_i: pid("issuer"),
        k_i: KeyShare::random(),
        r_i: Nonce::random(),
    });
    let s = spec(&[(2, 250), (1, 125)]);
    check_message(&WRequest3Body {
        w_desc: WDesc {
            spec: s.clone(),
            amount: Amount::from_minor(625),
            bank_account: account("1-2"),
            anonymous: true,
        },
        signature: k[1].sign(labels::PURCHASE_3_SIGNATURE, b"x"),
    });
    check_message(&IssuedCoins {
        coins: CoinList::new(vec![coin(1), coin(2)]).expect("few"),
    });
    check_message(&SendCoinsBody {
        coins: CoinList::new(vec![coin(5)]).expect("few"),
        id_py: id.clone(),
        tid_py: PaymentTid::random(),
        com_hash: ComHash([3; 32]),
    });
    let enc_c1 = k[0]
        .public()
        .seal(SuiteId::Aes256, labels::PAY_SEND_COINS, b"coins")
        .expect("seal");
    check_message(&ValidationBody {
        id_py: id.clone(),
        id_pa: pid("bob"),
        k_py: KeyShare::random(),
        tid_py: PaymentTid::random(),
        kind: ValidationKind::Payment,
        v_desc: VDesc {
            amount: Amount::from_minor(625),
            option: VOption::Refresh { spec: s },
        },
        enc_c1,
        signature: k[0].sign(labels::PAY_VALIDATION_SIGNATURE, b"v"),
    });
    check_message(&protocol::wire::payment::IssuerKeyBody {
        k_i: KeyShare::random(),
        id_i: pid("issuer"),
    });
    check_message(&protocol::wire::enrollment::EnrollmentBody {
        id: id.clone(),
        role: ledger::Role::Merchant,
        bank_account: account("9"),
        requested_at: NOW,
        signature: k[1].sign(labels::ENROLL_SIGNATURE, b"x"),
    });
    check_message(&protocol::wire::refund::RefundBody {
        id_ch: id.clone(),
        r: Nonce::random(),
        k_ch: KeyShare::random(),
        requested_at: NOW,
        signature: k[1].sign(labels::REFUND_SIGNATURE, b"x"),
    });
    let reject: SignedReject = issuer::sign_reject(
        &k[0],
        RejectSubject::Refund {
            id_ch: id,
            r: Nonce::random(),
        },
        RejectReason::BankRejected(ledger::BankRejection::InsufficientFunds),
        vec![CoinId::random()],
        NOW,
    );
    check_message(&reject);
}

// A count field claiming 2^40 serials is refused without reading (or
// allocating for) them; so is one more serial than the bound.
#[test]
fn hostile_counts_are_refused_before_allocation() {
    let mut claim = vec![PROTOCOL_VERSION];
    let mut n: u64 = 1 << 40;
    while n >= 0x80 {
        claim.push((n as u8) | 0x80);
        n >>= 7;
    }
    claim.push(n as u8);
    assert!(matches!(
        decode::<CoinStatusQuery>(&claim),
        Err(WireError::Malformed { .. })
    ));

    let too_many: Vec<CoinId> = (0..=protocol::wire::limits::SERIALS_MAX)
        .map(|_| CoinId::random())
        .collect();
    let mut bytes = vec![PROTOCOL_VERSION];
    bytes.extend(postcard::to_stdvec(&too_many).expect("encode"));
    assert!(decode::<CoinStatusQuery>(&bytes).is_err());

    // Over the size limit: refused before postcard runs.
    let huge = vec![PROTOCOL_VERSION; CoinStatusQuery::BYTES_MAX + 1];
    assert!(matches!(
        decode::<CoinStatusQuery>(&huge),
        Err(WireError::TooLong { .. })
    ));
    assert!(matches!(
        decode::<CoinStatusQuery>(&[]),
        Err(WireError::Empty)
    ));
}

// What serde cannot check, validate does: a coin twice, a spec that does not
// total its amount, a "change" paid to someone else.
#[test]
fn decoded_messages_are_validated() {
    let c = coin(7);
    let dup = IssuedCoins {
        coins: CoinList::new(vec![c, c]).expect("two"),
    };
    assert!(matches!(
        decode::<IssuedCoins>(&encode_unchecked(&dup)),
        Err(WireError::Invalid { .. })
    ));
    let k = keys();
    let bad_total = WRequest3Body {
        w_desc: WDesc {
            spec: spec(&[(2, 100)]),
            amount: Amount::from_minor(201),
            bank_account: account("1"),
            anonymous: false,
        },
        signature: k[1].sign("x", b"x"),
    };
    assert!(matches!(
        decode::<WRequest3Body>(&encode_unchecked(&bad_total)),
        Err(WireError::Invalid { .. })
    ));
    let enc_c1 = k[0]
        .public()
        .seal(SuiteId::Tdes, labels::PAY_SEND_COINS, b"c")
        .expect("seal");
    let change_to_other = ValidationBody {
        id_py: pid("bob"),
        id_pa: pid("alice"),
        k_py: KeyShare::random(),
        tid_py: PaymentTid::random(),
        kind: ValidationKind::Change,
        v_desc: VDesc {
            amount: Amount::from_minor(100),
            option: VOption::Refresh {
                spec: spec(&[(1, 100)]),
            },
        },
        enc_c1,
        signature: k[1].sign("x", b"x"),
    };
    assert!(matches!(
        decode::<ValidationBody>(&encode_unchecked(&change_to_other)),
        Err(WireError::Invalid { .. })
    ));
}

/// Encodes without `encode`'s limit assertion, for messages that are invalid
/// on purpose.
fn encode_unchecked<M: serde::Serialize>(msg: &M) -> Vec<u8> {
    let mut out = vec![PROTOCOL_VERSION];
    out.extend(postcard::to_stdvec(msg).expect("encode"));
    out
}

// The largest legal payment (COINS_PER_TX_MAX coins, every field at its
// widest) fits the limits of SendCoins and ValidationRequest, sealed under
// either suite; so does an issuance of as many coins.
#[test]
fn largest_messages_fit_their_limits() {
    for suite in SuiteId::ALL {
        let pk_i = keys_for(suite)[0].public();
        let coins: Vec<Coin> = (0..COINS_PER_TX_MAX).map(|_| widest_coin()).collect();
        let body = SendCoinsBody {
            coins: CoinList::new(coins.clone()).expect("at the bound"),
            id_py: pid(&"p".repeat(64)),
            tid_py: PaymentTid::random(),
            com_hash: ComHash([0xff; 32]),
        };
        let body_bytes = encode(&body);
        assert!(body_bytes.len() <= SendCoinsBody::BYTES_MAX);
        let send = SendCoins {
            enc_c1: pk_i
                .seal(suite, labels::PAY_SEND_COINS, &body_bytes)
                .expect("seal"),
        };
        let send_bytes = encode(&send);
        assert!(send_bytes.len() <= SendCoins::BYTES_MAX);
        decode::<SendCoins>(&send_bytes).expect("decodes");

        let v = ValidationBody {
            id_py: pid(&"p".repeat(64)),
            id_pa: pid(&"a".repeat(64)),
            k_py: KeyShare::random(),
            tid_py: PaymentTid::random(),
            kind: ValidationKind::Payment,
            v_desc: VDesc {
                amount: Amount::from_minor(u64::MAX),
                option: VOption::Redeem {
                    bank_account: account(&"9".repeat(64)),
                },
            },
            enc_c1: send.enc_c1,
            // The widest signature a registered key (4096 bits) makes.
            signature: protocol::crypto::Signature::try_from(vec![
                0xff;
                ledger::constants::SIGNATURE_BYTES_MAX
            ])
            .expect("a signature's length"),
        };
        let v_bytes = encode(&v);
        assert!(v_bytes.len() <= ValidationBody::BYTES_MAX);
        let request = ValidationRequest {
            envelope: pk_i
                .seal(suite, labels::PAY_VALIDATION, &v_bytes)
                .expect("seal"),
        };
        assert!(encode(&request).len() <= ValidationRequest::BYTES_MAX);

        let session_key = SessionKey::combine(suite, &KeyShare::random(), &KeyShare::random());
        let issued = encode(&IssuedCoins {
            coins: CoinList::new(coins).expect("at the bound"),
        });
        assert!(issued.len() <= IssuedCoins::BYTES_MAX);
        let enc = session_key.encrypt(labels::PAY_ISSUE, &issued);
        let answer = protocol::wire::payment::PaymentIssuance1 {
            tid_py: PaymentTid::random(),
            outcome: protocol::wire::payment::PaymentOutcome::Refreshed {
                key_envelope: pk_i
                    .seal(suite, labels::PAY_ISSUE_KEY, &[0; 128])
                    .expect("seal"),
                mac: session_key.mac(labels::PAY_ISSUE_MAC, b"x"),
                enc_coins: enc,
            },
        };
        let answer_bytes = encode(&answer);
        assert!(answer_bytes.len() <= protocol::wire::payment::PaymentIssuance1::BYTES_MAX);
    }
}

// Decoders never panic on hostile bytes: random mutations (overwrite, insert,
// delete) of real messages of every type only ever yield a value or a typed
// error. The flows run once; the mutations are cheap (no crypto).
#[test]
fn mutated_messages_never_panic_a_decoder() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let seen = every_flow(SuiteId::Tdes);
    let mut runner = TestRunner::new(Config {
        cases: 512,
        ..Config::default()
    });
    runner
        .run(
            &(
                0..seen.len(),
                proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8),
            ),
            |(which, edits)| {
                let r = &seen[which];
                let mut bytes = r.bytes.clone();
                for (at, value, op) in edits {
                    let at = at % (bytes.len() + 1);
                    match op {
                        0 if at < bytes.len() => bytes[at] = value,
                        1 => bytes.insert(at, value),
                        _ if at < bytes.len() => {
                            bytes.remove(at);
                        }
                        _ => {}
                    }
                }
                // Either outcome is fine; a panic fails the test.
                let _ = (r.decode)(&bytes);
                Ok(())
            },
        )
        .expect("no decoder panics");
}

// The cash-out and held coin status messages round-trip, refuse truncation,
// trailing bytes and other versions, and refuse what they must not carry
// (a cash-out of zero, a query of no coins).
#[test]
fn cash_out_and_held_coin_status_messages_are_bounded_and_checked() {
    use ledger::{Amount, ParticipantId};
    use protocol::wire::cash_out::{CashOutAmount, CashOutId, CashOutReceipt, CashOutRequest};
    use protocol::wire::status::HeldCoinStatusQuery;
    let sk = protocol::crypto::SecretKey::generate(2048).expect("key");
    let id_m = ParticipantId::new("shop").expect("id");
    let id_i = ParticipantId::new("issuer").expect("id");
    let request = protocol::flows::cash_out::cash_out_request(
        &sk,
        id_m.clone(),
        id_i.clone(),
        &sk.public(),
        CashOutId([3; 16]),
        CashOutAmount::Exactly(Amount::from_minor(250)),
    );
    check_message(&request);
    assert!(encode(&request).len() <= CashOutRequest::BYTES_MAX);
    let zero = CashOutRequest {
        amount: CashOutAmount::Exactly(Amount::ZERO),
        ..request.clone()
    };
    assert!(decode::<CashOutRequest>(&encode(&zero)).is_err());
    let receipt = protocol::flows::cash_out::cash_out_receipt(
        &sk,
        id_m,
        CashOutId([3; 16]),
        Amount::from_minor(250),
    );
    check_message(&receipt);
    assert!(encode(&receipt).len() <= CashOutReceipt::BYTES_MAX);
    let none = HeldCoinStatusQuery {
        coins: protocol::wire::BoundedVec::new(Vec::new()).expect("empty"),
    };
    assert!(decode::<HeldCoinStatusQuery>(&encode(&none)).is_err());
}

// A key change round-trips within its bound, refuses truncation, trailing
// bytes and other versions, and a "change" to the same key.
#[test]
fn key_change_requests_are_bounded_and_checked() {
    use ledger::{ParticipantId, Timestamp};
    use protocol::wire::key_change::KeyChangeRequest;
    let sk_old = protocol::crypto::SecretKey::generate(2048).expect("key");
    let sk_new = protocol::crypto::SecretKey::generate(2048).expect("key");
    let request = protocol::flows::key_change::key_change_request(
        &sk_old,
        &sk_new,
        ParticipantId::new("alice").expect("id"),
        ParticipantId::new("issuer").expect("id"),
        &sk_old.public(),
        Timestamp(1_700_000_000),
    );
    check_message(&request);
    assert!(encode(&request).len() <= KeyChangeRequest::BYTES_MAX);
    let same = KeyChangeRequest {
        new_key: request.old_key.clone(),
        ..request
    };
    assert!(decode::<KeyChangeRequest>(&encode(&same)).is_err());
}

//! A validator node's own decisions: what it says on the payee's word
//! without the issuer (the signed refusal of a payment whose inner payee
//! or amount differs: P3) is said only under the payee's registered key,
//! never under a key it kept that the payee has since replaced.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use ledger::{Amount, Coin, CoinBody, CoinId, KeyEpoch, ParticipantId, Tag, Timestamp, TxId};
use protocol::crypto::{PublicKey, SecretKey, SuiteId};
use protocol::flows::payment::{PaymentPayee, PaymentPayer};
use protocol::wire::payment::{PDesc, PaymentOutcome, VOption};
use vc_cluster::wire::{PaymentAnswer, PaymentCall, PaymentRefusal};
use vc_cluster::{
    ClientConfig, CoinState, CommitRequest, FencingEpoch, FromSequencer, NodeKey, NodeKeys,
    NodeName, Reply, SequencerClient, Service, Validator, ValidatorError, serve_service,
};

/// The issuer behind the sequencer, as far as a node sees it: the payee's
/// registered key, which the test replaces.
struct Registry {
    payee_key: Mutex<PublicKey>,
}

impl Service for Registry {
    fn epoch(&self) -> FencingEpoch {
        FencingEpoch(1)
    }

    fn commit(&self, request: CommitRequest, reply: Reply<FromSequencer>) {
        reply(FromSequencer::Refused {
            request: request.request,
            tx: request.tx,
            refusal: vc_cluster::Refusal::Storage,
        });
    }

    fn abort(&self, _tx: TxId) {}

    fn lookup(&self, coins: &[CoinId]) -> Option<Vec<CoinState>> {
        Some(vec![CoinState::NotUnspent; coins.len()])
    }

    fn payment(&self, call: PaymentCall, reply: Reply<PaymentAnswer>) {
        reply(match call {
            PaymentCall::RegisteredKey { .. } => {
                PaymentAnswer::Key(Some(self.payee_key.lock().unwrap().to_ledger().0))
            }
            _ => PaymentAnswer::Refused(PaymentRefusal::Internal),
        })
    }
}

fn id(name: &str) -> ParticipantId {
    ParticipantId::new(name).unwrap()
}

fn coin(minor: u64) -> Coin {
    Coin {
        body: CoinBody {
            id: CoinId::random(),
            value: Amount::from_minor(minor),
            expiry: Timestamp(u64::from(u32::MAX)),
            epoch: KeyEpoch(1),
        },
        tag: Tag([0; 16]),
    }
}

/// A ValidationRequest signed by `sk_py` whose coins were sent for another
/// order of the same shop: the issuer's refusal is PayeeMismatch (P3).
fn diverted_request(
    sk_i: &SecretKey,
    sk_py: &SecretKey,
) -> protocol::wire::payment::ValidationRequest {
    let (pk_i, suite) = (sk_i.public(), SuiteId::Dhaes);
    let invoice = |amount| {
        PaymentPayee::invoice(
            id("shop"),
            id("alice"),
            id(protocol::wire::registration::ISSUER_ID),
            PDesc::new("a book").unwrap(),
            Amount::from_minor(amount),
            None,
        )
    };
    let (_, first) = invoice(500);
    let (second, _) = invoice(500);
    let (_, send) = PaymentPayer::pay(
        suite,
        &pk_i,
        &id(protocol::wire::registration::ISSUER_ID),
        &id("alice"),
        &first,
        vec![coin(500)],
        Timestamp::now(),
    )
    .unwrap();
    second
        .on_send_coins(suite, &pk_i, sk_py, send, VOption::Aggregate)
        .unwrap()
        .1
}

#[test]
fn a_node_signs_no_refusal_on_a_key_the_payee_has_replaced() {
    let sk_i = SecretKey::generate_for(SuiteId::Dhaes, 2048).unwrap();
    let old = SecretKey::generate_for(SuiteId::Dhaes, 2048).unwrap();
    let new = SecretKey::generate_for(SuiteId::Dhaes, 2048).unwrap();
    let registry = Arc::new(Registry {
        payee_key: Mutex::new(old.public()),
    });
    let key = NodeKey::random().unwrap();
    let mut keys = NodeKeys::default();
    let node = NodeName::parse("v1").unwrap();
    keys.insert(node.clone(), key.clone());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = serve_service(listener, registry.clone(), Arc::new(keys)).unwrap();
    let client = SequencerClient::start(ClientConfig {
        node,
        key,
        sequencers: vec![server.addr()],
    });
    let validator = Validator::new(sk_i.clone(), SuiteId::Dhaes, client.clone());

    // Under the registered key: the issuer's signed refusal (P3).
    let answer = validator.validate(&diverted_request(&sk_i, &old)).unwrap();
    assert!(matches!(answer.outcome, PaymentOutcome::Rejected(_)));

    // The shop replaces its key; the node still keeps the old one. A thief
    // holding the old key gets no statement signed by the issuer's key.
    *registry.payee_key.lock().unwrap() = new.public();
    match validator.validate(&diverted_request(&sk_i, &old)) {
        Err(ValidatorError::Flow(protocol::flows::FlowError::BadSignature { .. })) => {}
        other => panic!("a refusal said on a replaced key's word: {other:?}"),
    }
    // The shop's new key is answered as before.
    let answer = validator.validate(&diverted_request(&sk_i, &new)).unwrap();
    assert!(matches!(answer.outcome, PaymentOutcome::Rejected(_)));
    client.stop();
    server.stop();
}

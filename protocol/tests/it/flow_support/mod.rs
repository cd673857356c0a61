//! Shared by the flow and wire tests: RSA keys made once per test binary, a
//! small in-memory issuer built only from `flows::issuer` helpers and the
//! mint, and a recorder that passes every message through `wire::encode` /
//! `wire::decode` and keeps its bytes for the truncation tests.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use ledger::{
    Amount, BankAccount, Coin, CoinBody, CoinId, CoinSpec, Denomination, KeyEpoch, ParticipantId,
    PurchaseId, Role, Timestamp, TxId,
};
use protocol::crypto::{KeyKind, PublicKey, SecretKey, SuiteId};
use protocol::flows::FlowError;
use protocol::flows::issuer::{self, PaymentAckSession, PurchaseSession};
use protocol::mint::Mint;
use protocol::wire::enrollment::{EnrollmentAnswer, EnrollmentRequest, EnrollmentStatus};
use protocol::wire::payment::{
    PaymentIssuance1, PaymentIssuance2, ReceiptKind, VOption, ValidationKind, ValidationRequest,
};
use protocol::wire::purchase::{
    PurchaseIssuance1, PurchaseIssuance2, PurchasePoll, WRequest1, WRequest2, WRequest3,
};
use protocol::wire::refund::{RefundAnswer, RefundRequest};
use protocol::wire::registration::{Certificate, RegisterRequest};
use protocol::wire::status::{CoinState, CoinStatusAnswer, CoinStatusEntry, CoinStatusQuery};
use protocol::wire::{RejectReason, WireError, WireMessage, decode, encode};

/// The fixed clock of every test.
pub const NOW: Timestamp = Timestamp(1_900_000_000);
/// Coins minted in tests expire a day after [`NOW`].
pub const COIN_EXPIRY: Timestamp = Timestamp(1_900_086_400);
pub const EPOCH: KeyEpoch = KeyEpoch(1);

/// The four keys of a test binary under `suite`: issuer, alice, bob,
/// mallory; Ed25519 + X25519 under `dhaes`, RSA-2048 under the RSA suites.
pub fn keys_for(suite: SuiteId) -> &'static [SecretKey; 4] {
    static DHAES: OnceLock<[SecretKey; 4]> = OnceLock::new();
    match suite.key_kind() {
        KeyKind::Rsa => keys(),
        KeyKind::Ed25519X25519 => DHAES.get_or_init(|| {
            [0, 1, 2, 3].map(|_| SecretKey::generate_for(suite, 0).expect("dhaes keygen"))
        }),
    }
}

/// The four RSA-2048 keys of a test binary: issuer, alice, bob, mallory.
/// Generated once (keygen is the slow part), on parallel threads.
pub fn keys() -> &'static [SecretKey; 4] {
    static KEYS: OnceLock<[SecretKey; 4]> = OnceLock::new();
    KEYS.get_or_init(|| {
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| SecretKey::generate(2048).expect("rsa keygen")))
            .collect();
        let mut keys = handles
            .into_iter()
            .map(|h| h.join().expect("keygen thread"));
        [
            keys.next().expect("4 keys"),
            keys.next().expect("4 keys"),
            keys.next().expect("4 keys"),
            keys.next().expect("4 keys"),
        ]
    })
}

pub fn pid(s: &str) -> ParticipantId {
    ParticipantId::new(s).expect("valid id")
}

pub fn account(s: &str) -> BankAccount {
    BankAccount::new(s).expect("valid account")
}

pub fn amount(minor: u64) -> Amount {
    Amount::from_minor(minor)
}

pub fn spec(lines: &[(u32, u64)]) -> CoinSpec {
    CoinSpec::new(
        lines
            .iter()
            .map(|&(count, v)| Denomination {
                count,
                value: Amount::from_minor(v),
            })
            .collect(),
    )
    .expect("valid spec")
}

/// One encoded message seen in transit, with a decoder for its type.
pub struct Recorded {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub decode: fn(&[u8]) -> Result<(), WireError>,
}

fn decode_as<M: WireMessage>(bytes: &[u8]) -> Result<(), WireError> {
    decode::<M>(bytes).map(|_| ())
}

/// Every message goes through here: encoded, recorded, decoded, and checked
/// to decode to what was sent.
#[derive(Default)]
pub struct Wire {
    pub seen: Vec<Recorded>,
}

impl Wire {
    pub fn send<M: WireMessage + PartialEq + std::fmt::Debug>(&mut self, msg: M) -> M {
        let bytes = encode(&msg);
        assert!(bytes.len() <= M::BYTES_MAX, "{} over its limit", M::NAME);
        let back: M = decode(&bytes).expect("a message we encoded decodes");
        assert_eq!(back, msg, "{} does not round-trip", M::NAME);
        self.seen.push(Recorded {
            name: M::NAME,
            bytes,
            decode: decode_as::<M>,
        });
        back
    }
}

/// A participant: its id, key, and (once registered) certificate.
pub struct Party {
    pub id: ParticipantId,
    pub sk: SecretKey,
    pub cert: Option<Certificate>,
}

impl Party {
    pub fn pk(&self) -> PublicKey {
        self.sk.public()
    }
}

/// An issuer in memory, made of the `flows::issuer` helpers, a real mint,
/// and maps standing in for the actors' stores. Deliberately simple: it is
/// the other end of the state machines, not the system's issuer.
pub struct TestIssuer {
    pub suite: SuiteId,
    pub id: ParticipantId,
    pub sk: SecretKey,
    pub mint: Mint,
    _mint_dir: tempfile::TempDir,
    pub registry: HashMap<ParticipantId, PublicKey>,
    pub enrolled: HashMap<ParticipantId, (Role, BankAccount)>,
    pub purchases: HashMap<PurchaseId, PurchaseSession>,
    pub orders: HashMap<PurchaseId, issuer::PurchaseOrder>,
    pub settled: HashMap<PurchaseId, Vec<Coin>>,
    pub acknowledged: HashSet<PurchaseId>,
    pub unspent: HashMap<CoinId, CoinBody>,
    pub spent: HashSet<CoinId>,
    pub issued_to: HashMap<ParticipantId, Vec<CoinId>>,
    /// Idempotency: a committed payment's outcome, by what identifies it.
    pub payments: HashMap<TxId, Committed>,
    pub ack_sessions: HashMap<TxId, PaymentAckSession>,
    pub aggregated: HashMap<ParticipantId, Amount>,
    pub redeemed: Vec<(BankAccount, Amount)>,
    pub refund_nonces: HashSet<[u8; 16]>,
}

#[derive(Clone)]
pub enum Committed {
    NewCoins(Vec<Coin>),
    Receipt(ReceiptKind),
}

impl TestIssuer {
    pub fn new(suite: SuiteId) -> TestIssuer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut mint = Mint::create(&dir.path().join("mint.key"), suite).expect("mint");
        mint.open_epoch(EPOCH).expect("epoch");
        TestIssuer {
            suite,
            id: pid("issuer"),
            sk: keys_for(suite)[0].clone(),
            mint,
            _mint_dir: dir,
            registry: HashMap::new(),
            enrolled: HashMap::new(),
            purchases: HashMap::new(),
            orders: HashMap::new(),
            settled: HashMap::new(),
            acknowledged: HashSet::new(),
            unspent: HashMap::new(),
            spent: HashSet::new(),
            issued_to: HashMap::new(),
            payments: HashMap::new(),
            ack_sessions: HashMap::new(),
            aggregated: HashMap::new(),
            redeemed: Vec::new(),
            refund_nonces: HashSet::new(),
        }
    }

    pub fn pk(&self) -> PublicKey {
        self.sk.public()
    }

    /// Mints coins of `spec` expiring at `expiry`, optionally recorded
    /// against a holder (non-anonymous coins).
    pub fn mint(
        &mut self,
        spec: &CoinSpec,
        expiry: Timestamp,
        holder: Option<&ParticipantId>,
    ) -> Vec<Coin> {
        let coins: Vec<Coin> = spec
            .values()
            .map(|value| {
                let body = CoinBody {
                    id: CoinId::random(),
                    value,
                    expiry,
                    epoch: EPOCH,
                };
                Coin {
                    body,
                    tag: self.mint.tag(&body).expect("tag"),
                }
            })
            .collect();
        for c in &coins {
            self.unspent.insert(c.id(), c.body);
            if let Some(h) = holder {
                self.issued_to.entry(h.clone()).or_default().push(c.id());
            }
        }
        coins
    }

    pub fn register(&mut self, msg: &RegisterRequest) -> Result<Certificate, FlowError> {
        issuer::open_register_request(msg)?;
        self.registry.insert(msg.id.clone(), msg.public_key.clone());
        Ok(issuer::certify(
            &self.sk,
            msg.id.clone(),
            msg.public_key.clone(),
            NOW.plus_secs(365 * 86_400),
        ))
    }

    /// Records the enrollment and, standing in for the operator, approves it.
    pub fn enroll(&mut self, msg: &EnrollmentRequest) -> Result<EnrollmentAnswer, FlowError> {
        let registry = &self.registry;
        let body =
            issuer::open_enrollment_request(&self.sk, msg, |id| registry.get(id).cloned(), NOW)?;
        self.enrolled
            .insert(body.id.clone(), (body.role, body.bank_account.clone()));
        Ok(EnrollmentAnswer {
            role: body.role,
            status: EnrollmentStatus::Approved,
        })
    }

    pub fn wrequest1(&mut self, msg: &WRequest1) -> Result<WRequest2, FlowError> {
        let registry = &self.registry;
        let opened = issuer::open_wrequest1(&self.sk, msg, |id| registry.get(id).cloned(), NOW)?;
        let pk_cp = self
            .registry
            .get(&opened.id_cp)
            .cloned()
            .ok_or(FlowError::UnknownParticipant)?;
        let (session, answer) =
            issuer::answer_wrequest1(opened, &pk_cp, self.id.clone(), PurchaseId::random())?;
        self.purchases.insert(session.purchase, session);
        Ok(answer)
    }

    pub fn wrequest3(&mut self, msg: &WRequest3) -> Result<PurchaseIssuance1, FlowError> {
        let session = self
            .purchases
            .get_mut(&msg.purchase)
            .ok_or(FlowError::Mismatch {
                what: "unknown purchase",
            })?;
        let pk_cp = self
            .registry
            .get(&session.id_cp)
            .cloned()
            .ok_or(FlowError::UnknownParticipant)?;
        let order = issuer::open_wrequest3(session, &pk_cp, msg)?;
        if !matches!(
            self.enrolled.get(&order.id_cp),
            Some((Role::CoinPurchaser, _))
        ) {
            return Ok(issuer::reject_purchase(
                &self.sk,
                order.purchase,
                RejectReason::NotEnrolled,
                NOW,
            ));
        }
        let purchase = order.purchase;
        self.orders.insert(purchase, order);
        Ok(issuer::purchase_pending(purchase))
    }

    /// The bank's answer arrives: mint the coins, or remember the refusal.
    pub fn settle(&mut self, purchase: PurchaseId) {
        let order = self.orders.get(&purchase).expect("known order").clone();
        let holder = (!order.w_desc.anonymous).then_some(order.id_cp.clone());
        let coins = self.mint(&order.w_desc.spec, COIN_EXPIRY, holder.as_ref());
        self.settled.insert(purchase, coins);
    }

    pub fn poll(&mut self, msg: &PurchasePoll) -> Result<PurchaseIssuance1, FlowError> {
        let session = self
            .purchases
            .get(&msg.purchase)
            .ok_or(FlowError::Mismatch {
                what: "unknown purchase",
            })?;
        issuer::open_purchase_poll(session, msg)?;
        match self.settled.get(&msg.purchase) {
            None => Ok(issuer::purchase_pending(msg.purchase)),
            Some(coins) => issuer::build_purchase_issuance1(session, coins.clone()),
        }
    }

    pub fn purchase_ack(&mut self, msg: &PurchaseIssuance2) -> Result<(), FlowError> {
        let session = self
            .purchases
            .get(&msg.purchase)
            .ok_or(FlowError::Mismatch {
                what: "unknown purchase",
            })?;
        issuer::open_purchase_issuance2(session, msg)?;
        self.acknowledged.insert(msg.purchase);
        Ok(())
    }

    /// Validation: open, replay check first, then every coin, then commit.
    pub fn validate(&mut self, msg: &ValidationRequest) -> Result<PaymentIssuance1, FlowError> {
        let registry = &self.registry;
        let opened =
            match issuer::open_validation_request(&self.sk, msg, |id| registry.get(id).cloned()) {
                Ok(opened) => opened,
                Err(FlowError::Refused {
                    subject: protocol::wire::RejectSubject::Payment { id_py, tid_py },
                    reason,
                }) => {
                    return Ok(issuer::reject_payment(
                        &self.sk,
                        id_py,
                        tid_py,
                        reason,
                        Vec::new(),
                        NOW,
                    ));
                }
                Err(e) => return Err(e),
            };
        let pk_py = self
            .registry
            .get(&opened.id_py)
            .cloned()
            .ok_or(FlowError::UnknownParticipant)?;
        let tx = opened.tx_id();
        if let Some(done) = self.payments.get(&tx).cloned() {
            return self.answer(&opened, &pk_py, tx, done);
        }
        let reject = |reason, bad: Vec<CoinId>| {
            issuer::reject_payment(
                &self.sk,
                opened.id_py.clone(),
                opened.tid_py,
                reason,
                bad,
                NOW,
            )
        };
        let bad_tag: Vec<CoinId> = opened
            .coins
            .iter()
            .filter(|c| self.mint.check(c).is_err())
            .map(Coin::id)
            .collect();
        if !bad_tag.is_empty() {
            return Ok(reject(RejectReason::BadTag, bad_tag));
        }
        let spent: Vec<CoinId> = opened
            .coins
            .iter()
            .filter(|c| !self.unspent.contains_key(&c.id()))
            .map(Coin::id)
            .collect();
        if !spent.is_empty() {
            return Ok(reject(RejectReason::AlreadySpent, spent));
        }
        let expired: Vec<CoinId> = opened
            .coins
            .iter()
            .filter(|c| c.body.is_expired_at(NOW))
            .map(Coin::id)
            .collect();
        if !expired.is_empty() && opened.kind != ValidationKind::Refresh {
            return Ok(reject(RejectReason::Expired, expired));
        }
        if let VOption::Redeem { bank_account } = &opened.v_desc.option {
            match self.enrolled.get(&opened.id_py) {
                Some((Role::Redeemer | Role::Merchant, acct)) if acct == bank_account => {}
                _ => return Ok(reject(RejectReason::NotEnrolled, Vec::new())),
            }
        }
        for c in &opened.coins {
            self.unspent.remove(&c.id());
            self.spent.insert(c.id());
        }
        let done = match &opened.v_desc.option {
            VOption::Refresh { spec } => {
                let coins = self.mint(spec, COIN_EXPIRY, Some(&opened.id_py));
                Committed::NewCoins(coins)
            }
            VOption::Redeem { bank_account } => {
                self.redeemed
                    .push((bank_account.clone(), opened.v_desc.amount));
                Committed::Receipt(ReceiptKind::Redeemed)
            }
            VOption::Aggregate => {
                let bal = self.aggregated.entry(opened.id_py.clone()).or_default();
                *bal = bal.checked_add(opened.v_desc.amount)?;
                Committed::Receipt(ReceiptKind::Aggregated)
            }
        };
        self.payments.insert(tx, done.clone());
        self.answer(&opened, &pk_py, tx, done)
    }

    fn answer(
        &mut self,
        opened: &issuer::OpenedValidation,
        pk_py: &PublicKey,
        tx: TxId,
        done: Committed,
    ) -> Result<PaymentIssuance1, FlowError> {
        match done {
            Committed::NewCoins(coins) => {
                let (grant, ack) = issuer::grant_payment_coins(opened, coins)?;
                self.ack_sessions.insert(tx, ack);
                // Said as a validator node says it: the decision crosses
                // the cluster's channel, then is sealed to the payee.
                let decision = issuer::PaymentDecision::NewCoins(grant);
                let bytes = postcard::to_allocvec(&decision).expect("encode a decision");
                let decision: issuer::PaymentDecision =
                    postcard::from_bytes(&bytes).expect("decode a decision");
                decision.answer(&self.sk, &self.id, opened, Some(pk_py))
            }
            Committed::Receipt(kind) => issuer::PaymentDecision::Receipt { kind, at: NOW }
                .answer(&self.sk, &self.id, opened, None),
        }
    }

    pub fn payment_ack(&mut self, msg: &PaymentIssuance2) -> Result<(), FlowError> {
        let session = self
            .ack_sessions
            .values()
            .find(|s| s.id_py == msg.id_py && s.tid_py == msg.tid_py)
            .ok_or(FlowError::Mismatch {
                what: "unknown payment",
            })?;
        issuer::open_payment_issuance2(session, msg)
    }

    pub fn refund(&mut self, msg: &RefundRequest) -> Result<RefundAnswer, FlowError> {
        let registry = &self.registry;
        let opened =
            issuer::open_refund_request(&self.sk, msg, |id| registry.get(id).cloned(), NOW)?;
        if !self.refund_nonces.insert(*opened.r.as_bytes()) {
            return Err(FlowError::ReplayedNonce);
        }
        let pk_ch = self.registry[&opened.id_ch].clone();
        let revoked: Vec<CoinId> = self
            .issued_to
            .get(&opened.id_ch)
            .into_iter()
            .flatten()
            .copied()
            .filter(|id| self.unspent.contains_key(id))
            .collect();
        if revoked.is_empty() {
            return Ok(issuer::reject_refund(
                &self.sk,
                &opened,
                RejectReason::NothingToRefund,
                NOW,
            ));
        }
        let values: Vec<Amount> = revoked.iter().map(|id| self.unspent[id].value).collect();
        for id in &revoked {
            self.unspent.remove(id);
        }
        let spec = CoinSpec::new(
            values
                .iter()
                .map(|&value| Denomination { count: 1, value })
                .collect(),
        )?;
        let coins = self.mint(&spec, COIN_EXPIRY, Some(&opened.id_ch));
        issuer::build_refund_answer(&opened, &pk_ch, &self.id, revoked, coins)
    }

    pub fn coin_status(&self, query: &CoinStatusQuery) -> Result<CoinStatusAnswer, FlowError> {
        let entries = query
            .coins
            .iter()
            .map(|&coin| CoinStatusEntry {
                coin,
                state: if self.unspent.contains_key(&coin) {
                    CoinState::Unspent
                } else if self.spent.contains(&coin) {
                    CoinState::Spent
                } else {
                    CoinState::Unknown
                },
            })
            .collect();
        issuer::answer_coin_status(&self.sk, entries, NOW)
    }
}

/// An issuer, alice (purchaser, payer), bob (merchant and redeemer) and
/// mallory (registered, up to no good), all registered and enrolled.
pub struct World {
    pub suite: SuiteId,
    pub issuer: TestIssuer,
    pub alice: Party,
    pub bob: Party,
    pub mallory: Party,
    pub wire: Wire,
}

impl World {
    pub fn new(suite: SuiteId) -> World {
        let k = keys_for(suite);
        let mut world = World {
            suite,
            issuer: TestIssuer::new(suite),
            alice: Party {
                id: pid("alice"),
                sk: k[1].clone(),
                cert: None,
            },
            bob: Party {
                id: pid("bob.shop"),
                sk: k[2].clone(),
                cert: None,
            },
            mallory: Party {
                id: pid("mallory"),
                sk: k[3].clone(),
                cert: None,
            },
            wire: Wire::default(),
        };
        for who in 0..3 {
            let party = match who {
                0 => &world.alice,
                1 => &world.bob,
                _ => &world.mallory,
            };
            let (client, req) =
                protocol::flows::RegistrationClient::start(party.id.clone(), &party.sk);
            let req = world.wire.send(req);
            let cert = world.issuer.register(&req).expect("registration");
            let cert = world.wire.send(cert);
            let cert = client
                .on_certificate(&world.issuer.pk(), cert, NOW)
                .expect("certificate checks");
            match who {
                0 => world.alice.cert = Some(cert),
                1 => world.bob.cert = Some(cert),
                _ => world.mallory.cert = Some(cert),
            }
        }
        for (party, role, acct) in [
            (&world.alice, Role::CoinPurchaser, "111-alice"),
            (&world.bob, Role::Merchant, "222-bob"),
            (&world.mallory, Role::CoinPurchaser, "666-mallory"),
        ] {
            let req = protocol::flows::enrollment_request(
                suite,
                &party.sk,
                &world.issuer.pk(),
                party.id.clone(),
                role,
                account(acct),
                NOW,
            )
            .expect("enrollment request");
            let req = world.wire.send(req);
            let answer = world.issuer.enroll(&req).expect("enrollment");
            world.wire.send(answer);
        }
        world
    }
}

/// What a payment left behind, for the tests to look at.
pub struct Paid {
    pub payee_outcome: protocol::flows::PayeeOutcome,
    pub payer_outcome: protocol::flows::PayerOutcome,
    pub validation: ValidationRequest,
    pub payee: protocol::flows::PayeeAwaitingIssuance,
}

impl World {
    /// A whole coin purchase by alice: WRequest1..3, a pending poll, the
    /// bank's settlement, Issuance1 twice (same coins), Issuance2.
    pub fn buy(&mut self, spec: &CoinSpec, anonymous: bool) -> Vec<Coin> {
        use protocol::flows::{PurchaseClient, PurchaseUpdate};
        use protocol::wire::purchase::WDesc;
        let pk_i = self.issuer.pk();
        let (state, w1) = PurchaseClient::start(
            self.suite,
            &self.alice.sk,
            self.alice.id.clone(),
            &pk_i,
            NOW,
        )
        .expect("WRequest1");
        let w1 = self.wire.send(w1);
        let w2 = self
            .wire
            .send(self.issuer.wrequest1(&w1).expect("WRequest2"));
        let w_desc = WDesc {
            spec: spec.clone(),
            amount: spec.total().expect("total"),
            bank_account: account("111-alice"),
            anonymous,
        };
        let (state, w3) = state
            .on_wrequest2(&self.alice.sk, &self.issuer.id, &w2, w_desc)
            .expect("WRequest3");
        let w3 = self.wire.send(w3);
        let first = self
            .wire
            .send(self.issuer.wrequest3(&w3).expect("accepted"));
        assert_eq!(
            state.on_issuance1(&first).expect("pending"),
            PurchaseUpdate::Pending
        );
        let poll = self.wire.send(state.poll());
        let pending = self.wire.send(self.issuer.poll(&poll).expect("poll"));
        assert_eq!(
            state.on_issuance1(&pending).expect("pending"),
            PurchaseUpdate::Pending
        );
        self.issuer.settle(state.purchase());
        let issued = self.wire.send(self.issuer.poll(&poll).expect("poll"));
        let PurchaseUpdate::Issued { coins, ack } = state.on_issuance1(&issued).expect("issued")
        else {
            panic!("expected coins");
        };
        // Until the ack, Issuance1 can be fetched again: the same coins.
        let again = self.issuer.poll(&poll).expect("poll again");
        let PurchaseUpdate::Issued { coins: again, .. } =
            state.on_issuance1(&again).expect("issued")
        else {
            panic!("expected coins again");
        };
        assert_eq!(coins, again);
        let ack = self.wire.send(ack);
        self.issuer.purchase_ack(&ack).expect("ack");
        coins
    }

    /// alice pays bob `coins` for an invoice (signed by bob when `signed`),
    /// bob asks for `option`; returns both sides' outcomes.
    pub fn pay(&mut self, coins: Vec<Coin>, option: VOption, signed: bool) -> Paid {
        use protocol::flows::{PayeeOutcome, PaymentPayee, PaymentPayer};
        use protocol::wire::payment::PDesc;
        let pk_i = self.issuer.pk();
        let total = Amount::checked_sum(coins.iter().map(Coin::value)).expect("total");
        let cert = self.bob.cert.clone().expect("bob registered");
        let (payee, invoice) = PaymentPayee::invoice(
            self.bob.id.clone(),
            self.alice.id.clone(),
            self.issuer.id.clone(),
            PDesc::new("one paper, 1998").expect("short"),
            total,
            signed.then_some((&self.bob.sk, &cert)),
        );
        let invoice = self.wire.send(invoice);
        let (payer, send) = PaymentPayer::pay(
            self.suite,
            &pk_i,
            &self.issuer.id,
            &self.alice.id,
            &invoice,
            coins,
            NOW,
        )
        .expect("SendCoins");
        let send = self.wire.send(send);
        let (awaiting, validation) = payee
            .on_send_coins(self.suite, &pk_i, &self.bob.sk, send, option)
            .expect("ValidationRequest");
        let validation = self.wire.send(validation);
        let issuance = self
            .wire
            .send(self.issuer.validate(&validation).expect("validated"));
        let payee_outcome = awaiting
            .on_issuance1(&self.bob.sk, &issuance)
            .expect("Issuance1 opens");
        if let PayeeOutcome::Coins { ack, .. } = &payee_outcome {
            let ack = self.wire.send(ack.clone());
            self.issuer.payment_ack(&ack).expect("ack");
        }
        let result = self
            .wire
            .send(awaiting.result_for_payer(&payee_outcome, Some(&self.bob.sk)));
        let payer_outcome = payer.on_result(&result).expect("payer reads result");
        Paid {
            payee_outcome,
            payer_outcome,
            validation,
            payee: awaiting,
        }
    }

    /// Sends a self-payment's ValidationRequest and opens the answer with `sk`.
    pub fn self_pay(
        &mut self,
        sk: &SecretKey,
        started: (protocol::flows::PayeeAwaitingIssuance, ValidationRequest),
    ) -> protocol::flows::PayeeOutcome {
        let (awaiting, validation) = started;
        let validation = self.wire.send(validation);
        let issuance = self
            .wire
            .send(self.issuer.validate(&validation).expect("validated"));
        let outcome = awaiting
            .on_issuance1(sk, &issuance)
            .expect("Issuance1 opens");
        if let protocol::flows::PayeeOutcome::Coins { ack, .. } = &outcome {
            let ack = self.wire.send(ack.clone());
            self.issuer.payment_ack(&ack).expect("ack");
        }
        outcome
    }

    /// alice asks for a refund of her non-anonymous coins.
    pub fn refund(&mut self) -> protocol::flows::RefundUpdate {
        let (client, req) = protocol::flows::RefundClient::start(
            self.suite,
            &self.alice.sk,
            &self.issuer.pk(),
            self.issuer.id.clone(),
            self.alice.id.clone(),
            NOW,
        )
        .expect("refund request");
        let req = self.wire.send(req);
        let answer = self
            .wire
            .send(self.issuer.refund(&req).expect("refund answered"));
        client
            .on_answer(&self.alice.sk, &answer)
            .expect("refund answer opens")
    }

    /// A signed coin status query.
    pub fn status(&mut self, coins: Vec<CoinId>) -> Vec<CoinStatusEntry> {
        let query = self.wire.send(CoinStatusQuery {
            coins: protocol::wire::CoinSerials::new(coins).expect("few"),
        });
        let answer = self
            .wire
            .send(self.issuer.coin_status(&query).expect("status"));
        protocol::flows::verify_coin_status(&self.issuer.pk(), &query, &answer).expect("signed")
    }
}

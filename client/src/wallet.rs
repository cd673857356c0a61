//! [`Wallet`]: a participant's purse driven over HTTP, the client side of
//! every flow a coin holder runs (registration, enrollment, purchase,
//! payment to a merchant server, change, refresh, redeem, refund) with the
//! purse's journal written BEFORE each message goes out.
//!
//! Its time comes from a [`Clock`] (the wall clock unless
//! [`Wallet::with_clock`] says otherwise), so that expiry can be shown and
//! tested with a clock that is moved forward.
//!
//! Each flow is a journal entry moved forward one step at a time by a
//! `drive_*` function that reads the entry alone (message bytes, flow state
//! as a session secret, context): the first run and a resume after a crash
//! or a lost connection ([`Wallet::resume`]) are the same code, and a resend
//! is always the journaled bytes, which the issuer and the merchant server
//! answer as they answered the first copy.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ledger::{Clock, SystemClock};

use ledger::{Amount, BankAccount, Coin, CoinSpec, Denomination, ParticipantId, Role, Timestamp};
use protocol::crypto::{PublicKey, SecretKey, SuiteId};
use protocol::flows::{
    FlowError, PayeeAwaitingIssuance, PayeeOutcome, PayerOutcome, PaymentPayer,
    PurchaseAwaitingIssuance, PurchaseAwaitingWRequest2, PurchaseClient, PurchaseUpdate,
    RefundClient, RefundUpdate, RegistrationClient, SelfPayment, enrollment_request,
};
use protocol::wire::enrollment::EnrollmentAnswer;
use protocol::wire::payment::{Invoice, PaymentIssuance1, ValidationRequest};
use protocol::wire::purchase::{PurchaseIssuance1, WDesc, WRequest2};
use protocol::wire::refund::RefundAnswer;
use protocol::wire::registration::Certificate;
use protocol::wire::{RejectReason, SignedReject, WireError, decode, encode};
use purse::{
    Completion, Destination, JournalEntry, NewTransaction, Purse, PurseError, Refusal, Selection,
    SessionSecret, Step, StepRecord, TxKind, TxRef,
};

use crate::client::{ClientConfig, ClientError, IssuerClient, MerchantClient};
use crate::constants::{
    WALLET_CHANGE_ROUNDS_MAX, WALLET_MERCHANT_WAIT_SECS, WALLET_POLL_INTERVAL_MS, WALLET_POLLS_MAX,
};
use crate::media::ErrorCode;

/// Why a wallet operation did not finish. A transaction it had journaled
/// stays in the purse to be finished by [`Wallet::resume`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("purse: {0}")]
    Purse(#[from] PurseError),
    #[error("protocol: {0}")]
    Flow(#[from] FlowError),
    #[error("answer: {0}")]
    Wire(#[from] WireError),
    #[error("the purse has no issuer record")]
    NoIssuer,
    #[error("not enough money: {available} available, {wanted} wanted")]
    Insufficient { available: Amount, wanted: Amount },
    /// The issuer refused with a signed statement (already applied to the
    /// purse: named coins are bad, the others released).
    #[error("the issuer refused: {:?}", .0.reason)]
    Rejected(Box<SignedReject>),
    #[error("journal entry {tx} cannot be resumed: {why}")]
    Journal { tx: TxRef, why: &'static str },
    /// A request the issuer would refuse, caught before anything was
    /// journaled or sent (so nothing is left to resume).
    #[error("invalid {what}: {why}")]
    Invalid {
        what: &'static str,
        why: &'static str,
    },
    /// An invoice the payer does not pay: unsigned, or not what it asked
    /// for. Nothing was journaled or sent.
    #[error("invoice refused: {0}")]
    Invoice(&'static str),
    /// The merchant server answered a payment with something that proves
    /// nothing (no receipt verified under its certified key, a refusal
    /// that may not be final, another order's answer, garbage). The coins
    /// were not taken as spent: they were reclaimed through the issuer
    /// (fresh coins, or its signed "already spent").
    #[error(
        "the merchant gave no proof of payment ({why}); the coins were reclaimed through the issuer"
    )]
    Unproven { why: String },
    /// The issuer answered that another transaction in flight holds the
    /// coins. They stay reserved in the journal entry, neither spent nor
    /// released, until a later `resume` is answered for good.
    #[error(
        "the issuer holds these coins for another transaction in flight; they stay reserved: run resume later (journal entry {tx})"
    )]
    CoinsInUse { tx: TxRef },
}

/// What a payer expects of an invoice beyond what it checks always (its
/// own id, its issuer, a payee certified by the issuer and its signature
/// over `H(Com)`): the merchant it means and the most it will pay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentExpectation {
    /// The payee's participant id: an invoice from anyone else is refused,
    /// whatever the server at the URL is.
    pub payee: Option<ParticipantId>,
    /// The most the payer pays for the item.
    pub amount_max: Option<Amount>,
}

impl PaymentExpectation {
    /// Checks an invoice against what the payer asked for; the invoice's
    /// signature is checked by `PaymentPayer::pay`.
    pub fn check(&self, invoice: &Invoice) -> Result<(), WalletError> {
        if invoice.commitment.is_none() {
            return Err(WalletError::Invoice(
                "unsigned: it names no payee certified by the issuer",
            ));
        }
        if let Some(payee) = &self.payee
            && &invoice.id_py != payee
        {
            return Err(WalletError::Invoice(
                "from another payee than the one meant",
            ));
        }
        if let Some(max) = self.amount_max
            && invoice.amount > max
        {
            return Err(WalletError::Invoice(
                "for more than the payer agreed to pay",
            ));
        }
        Ok(())
    }
}

/// Whether a failed payment step is worth asking the merchant again: no
/// answer, or "retry later". Anything else it answered is final and, not
/// being a proof, sends the payer to the issuer.
fn merchant_may_still_answer(e: &WalletError) -> bool {
    matches!(e, WalletError::Client(c) if c.is_transient())
}

/// How a purchase ended (for now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurchaseOutcome {
    /// The coins are in the purse (empty when a resume found them already
    /// stored and only delivered the acknowledgement).
    Issued(Vec<Coin>),
    /// The bank refused the debit; the issuer's signed statement.
    Rejected(Box<SignedReject>),
    /// Not settled yet; journaled, [`Wallet::resume`] polls again.
    Pending(TxRef),
}

/// How a refund ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// The issuer revoked `revoked` coins issued to this participant (the
    /// purse marks those it holds bad) and sent `coins` of equal value.
    Replaced { revoked: usize, coins: Vec<Coin> },
    /// The issuer's signed refusal (e.g. nothing left to refund), verified.
    Rejected(Box<SignedReject>),
}

/// What [`Wallet::resume`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResumeReport {
    pub finished: usize,
    /// Still journaled (a purchase not settled, a server still away).
    pub unfinished: usize,
}

/// A participant's purse and its issuer, over HTTP.
pub struct Wallet {
    purse: Arc<Purse>,
    issuer: IssuerClient,
    client_config: ClientConfig,
    id: ParticipantId,
    sk: SecretKey,
    suite: SuiteId,
    id_i: ParticipantId,
    pk_i: PublicKey,
    poll_interval: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet").finish_non_exhaustive()
    }
}

fn secret<T: serde::de::DeserializeOwned>(entry: &JournalEntry) -> Result<T, WalletError> {
    let secret = entry.secrets.first().ok_or(WalletError::Journal {
        tx: entry.tx,
        why: "no flow state",
    })?;
    Ok(secret.to_state()?)
}

fn ids(coins: &[Coin]) -> Vec<ledger::CoinId> {
    coins.iter().map(Coin::id).collect()
}

/// A spec of exactly these coin values (for a refresh).
fn spec_of(coins: &[Coin]) -> Result<CoinSpec, WalletError> {
    let mut counts: BTreeMap<Amount, u32> = BTreeMap::new();
    for c in coins {
        *counts.entry(c.value()).or_insert(0) += 1;
    }
    let lines = counts
        .into_iter()
        .rev()
        .map(|(value, count)| Denomination { count, value })
        .collect();
    CoinSpec::new(lines).map_err(|e| WalletError::Flow(e.into()))
}

impl Wallet {
    /// A wallet over `purse`, talking to the gateway its issuer record names.
    pub fn open(purse: Arc<Purse>, config: ClientConfig) -> Result<Wallet, WalletError> {
        let profile = purse.profile()?;
        let info = purse.issuer()?.ok_or(WalletError::NoIssuer)?;
        Ok(Wallet {
            issuer: IssuerClient::new(&info.gateway_url, config.clone())?,
            id: profile.participant.clone(),
            sk: profile.secret_key()?,
            suite: profile.suite,
            id_i: info.issuer.clone(),
            pk_i: info.key()?,
            purse,
            client_config: config,
            poll_interval: Duration::from_millis(WALLET_POLL_INTERVAL_MS),
            clock: Arc::new(SystemClock),
        })
    }

    /// The same wallet reading its time from `clock` (expiry, selection,
    /// timestamps of signed requests). A demo or a test moves it forward;
    /// it should agree with the issuer's clock, which checks those times.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Wallet {
        self.clock = clock;
        self
    }

    pub fn purse(&self) -> &Arc<Purse> {
        &self.purse
    }

    pub fn issuer(&self) -> &IssuerClient {
        &self.issuer
    }

    pub fn id(&self) -> &ParticipantId {
        &self.id
    }

    /// The wallet's time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Registration: proves possession of the key, checks `CERT` and keeps
    /// it in the purse.
    pub fn register(&self) -> Result<Certificate, WalletError> {
        let (client, request) = RegistrationClient::start(self.id.clone(), &self.sk);
        let cert = self.issuer.register(&request)?;
        let cert = client.on_certificate(&self.pk_i, cert, self.now())?;
        self.purse.set_certificate(encode(&cert))?;
        Ok(cert)
    }

    /// The cipher suite of the purse's key and messages.
    pub fn suite(&self) -> SuiteId {
        self.suite
    }

    /// Replaces the participant's key with a fresh one of the purse's
    /// suite's kind (`rsa_bits` bits where that kind is RSA):
    /// the request, signed by the current key and proving the new one, is
    /// kept in the purse with the new key before it is sent, so a run cut
    /// short sends the same request again (a repeat the issuer answers
    /// with a certificate). The new key becomes the purse's only once the
    /// issuer's certificate for it checks; a request the issuer refuses
    /// for good is dropped and the old key stays. The wallet keeps signing
    /// with the old key: open it again to use the new one. Refused
    /// (`WalletError::Invalid`, nothing sent) while the journal holds an
    /// unanswered validation or refund: the issuer checks a repeat's
    /// signature under the registered key before it answers with what the
    /// first one committed.
    pub fn change_key(&self, rsa_bits: usize) -> Result<Certificate, WalletError> {
        let pending = match self.purse.pending_key_change()? {
            Some(pending) => pending,
            None => {
                // A journaled validation or refund, signed with the current
                // key and not answered yet (the issuer may have committed
                // it), is answered only while that key is the registered
                // one. (A purchase's WRequest1 is signed afresh if refused,
                // and nothing before it commits.)
                let signed_and_unanswered = |e: &JournalEntry| {
                    !e.is_settled()
                        && matches!(
                            e.kind,
                            TxKind::Collect
                                | TxKind::Change
                                | TxKind::Refresh
                                | TxKind::Redeem
                                | TxKind::Refund
                        )
                };
                if self.purse.in_flight()?.iter().any(signed_and_unanswered) {
                    return Err(WalletError::Invalid {
                        what: "key change",
                        why: "a journaled request signed with the current key is unanswered: resume it first (a shop: serve it until its collections are done)",
                    });
                }
                let sk_new =
                    SecretKey::generate_for(self.suite, rsa_bits).map_err(PurseError::from)?;
                let request = protocol::flows::key_change::key_change_request(
                    &self.sk,
                    &sk_new,
                    self.id.clone(),
                    self.id_i.clone(),
                    &self.pk_i,
                    self.now(),
                );
                let der = sk_new.to_pkcs8_der().map_err(PurseError::from)?;
                let pending = purse::PendingKeyChange {
                    secret_key: purse::SecretKeyDer::new(der.to_vec())?,
                    request: encode(&request),
                };
                self.purse.begin_key_change(&pending)?;
                pending
            }
        };
        let request: protocol::wire::key_change::KeyChangeRequest = decode(&pending.request)?;
        let cert = match self.issuer.change_key(&request) {
            Ok(cert) => cert,
            Err(e) => {
                if e.code().is_some() && !e.is_transient() {
                    self.purse.abandon_key_change()?;
                }
                return Err(e.into());
            }
        };
        protocol::flows::verify_certificate(&self.pk_i, &cert, self.now())?;
        if cert.id != self.id || cert.public_key != request.new_key {
            return Err(FlowError::BadCertificate.into());
        }
        self.purse.complete_key_change(encode(&cert))?;
        Ok(cert)
    }

    /// Enrollment 1; an operator approves it out of band.
    pub fn request_enrollment(
        &self,
        role: Role,
        bank_account: BankAccount,
    ) -> Result<EnrollmentAnswer, WalletError> {
        let request = enrollment_request(
            self.suite,
            &self.sk,
            &self.pk_i,
            self.id.clone(),
            role,
            bank_account,
            self.now(),
        )?;
        Ok(self.issuer.enroll(&request)?)
    }

    /// Coin purchase of `spec`, debited from `bank_account`; polls until the
    /// bank settles (or hands the purchase back as pending).
    pub fn buy(
        &self,
        spec: CoinSpec,
        bank_account: BankAccount,
        anonymous: bool,
    ) -> Result<PurchaseOutcome, WalletError> {
        let amount = spec.total().map_err(FlowError::from)?;
        let w_desc = WDesc {
            spec,
            amount,
            bank_account,
            anonymous,
        };
        // The issuer refuses such a W-DESC only at step 3; journaled, it
        // would be re-sent and refused on every resume.
        w_desc.check().map_err(|why| WalletError::Invalid {
            what: "coin spec",
            why,
        })?;
        let context = postcard::to_stdvec(&w_desc).map_err(|_| PurseError::Invalid("W-DESC"))?;
        let (state, w1) = PurchaseClient::start(
            self.suite,
            &self.sk,
            self.id.clone(),
            &self.pk_i,
            self.now(),
        )?;
        let tx = self.purse.begin(NewTransaction {
            kind: TxKind::Purchase,
            amount,
            reserve: Vec::new(),
            step: Step::SessionOpen,
            to: Destination::Issuer,
            message: encode(&w1),
            secrets: vec![SessionSecret::from_state(&state)?],
            context,
            now: self.now(),
        })?;
        self.drive_purchase(tx)
    }

    fn drive_purchase(&self, tx: TxRef) -> Result<PurchaseOutcome, WalletError> {
        let mut signed_afresh = false;
        loop {
            let entry = self.purse.entry(tx)?;
            match entry.step {
                Step::SessionOpen => {
                    let state: PurchaseAwaitingWRequest2 = secret(&entry)?;
                    let w2: WRequest2 = match self
                        .issuer
                        .http()
                        .post_encoded("/v1/purchase/1", &entry.last_sent)
                    {
                        Ok(w2) => w2,
                        // WRequest1 carries its time and goes stale: one
                        // resumed long after it was journaled is refused
                        // (as is one journaled in an older wire shape).
                        // Nothing that commits was sent yet, so it is
                        // signed afresh, once.
                        Err(e)
                            if !signed_afresh
                                && matches!(
                                    e.code(),
                                    Some(ErrorCode::Refused | ErrorCode::Malformed)
                                ) =>
                        {
                            signed_afresh = true;
                            let (state, w1) = PurchaseClient::start(
                                self.suite,
                                &self.sk,
                                self.id.clone(),
                                &self.pk_i,
                                self.now(),
                            )?;
                            self.purse.record_step(
                                tx,
                                StepRecord {
                                    step: Step::SessionOpen,
                                    message: encode(&w1),
                                    secrets: Some(vec![SessionSecret::from_state(&state)?]),
                                    context: None,
                                    now: self.now(),
                                },
                            )?;
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    };
                    let w_desc: WDesc =
                        postcard::from_bytes(&entry.context).map_err(|_| WalletError::Journal {
                            tx,
                            why: "W-DESC unreadable",
                        })?;
                    let (state, w3) = state.on_wrequest2(&self.sk, &self.id_i, &w2, w_desc)?;
                    self.purse.record_step(
                        tx,
                        StepRecord {
                            step: Step::Request,
                            message: encode(&w3),
                            secrets: Some(vec![SessionSecret::from_state(&state)?]),
                            context: None,
                            now: self.now(),
                        },
                    )?;
                }
                Step::Request => {
                    let state: PurchaseAwaitingIssuance = secret(&entry)?;
                    let answer = match self
                        .issuer
                        .http()
                        .post_encoded::<PurchaseIssuance1>("/v1/purchase/3", &entry.last_sent)
                    {
                        Ok(answer) => Some(answer),
                        // W3: our first copy arrived; its answer comes by polling.
                        Err(e) if e.code() == Some(ErrorCode::Replayed) => None,
                        Err(e) => return Err(e.into()),
                    };
                    self.purse.record_step(
                        tx,
                        StepRecord {
                            step: Step::Poll,
                            message: encode(&state.poll()),
                            secrets: None,
                            context: None,
                            now: self.now(),
                        },
                    )?;
                    if let Some(answer) = answer
                        && let Some(outcome) = self.on_purchase_issuance(tx, &state, &answer)?
                    {
                        return Ok(outcome);
                    }
                }
                Step::Poll => {
                    let state: PurchaseAwaitingIssuance = secret(&entry)?;
                    for _ in 0..WALLET_POLLS_MAX {
                        let answer: PurchaseIssuance1 = self
                            .issuer
                            .http()
                            .post_encoded("/v1/purchase/poll", &entry.last_sent)?;
                        if let Some(outcome) = self.on_purchase_issuance(tx, &state, &answer)? {
                            return Ok(outcome);
                        }
                        std::thread::sleep(self.poll_interval);
                    }
                    return Ok(PurchaseOutcome::Pending(tx));
                }
                Step::Acknowledge => {
                    self.deliver_ack(tx, "/v1/purchase/ack", &entry.last_sent);
                    return Ok(PurchaseOutcome::Issued(Vec::new()));
                }
            }
        }
    }

    /// `None` while pending.
    fn on_purchase_issuance(
        &self,
        tx: TxRef,
        state: &PurchaseAwaitingIssuance,
        answer: &PurchaseIssuance1,
    ) -> Result<Option<PurchaseOutcome>, WalletError> {
        match state.on_issuance1(answer)? {
            PurchaseUpdate::Pending => Ok(None),
            PurchaseUpdate::Issued { coins, ack } => {
                let ack = encode(&ack);
                self.purse.complete(
                    tx,
                    Completion {
                        received: coins.clone(),
                        acknowledge: Some(ack.clone()),
                        ..Completion::default()
                    },
                )?;
                self.deliver_ack(tx, "/v1/purchase/ack", &ack);
                Ok(Some(PurchaseOutcome::Issued(coins)))
            }
            PurchaseUpdate::Rejected(reject) => {
                self.purse
                    .refuse(tx, Refusal::from_signed_reject(&reject, &self.pk_i)?)?;
                Ok(Some(PurchaseOutcome::Rejected(Box::new(reject))))
            }
        }
    }

    /// An Issuance2; on failure it stays journaled for [`Wallet::resume`]
    /// (the coins are stored either way). An ack the issuer refuses for
    /// good (its session expired, or a crash lost it) closes the entry:
    /// re-sending it could only be refused again.
    fn deliver_ack(&self, tx: TxRef, path: &str, ack: &[u8]) {
        match self.issuer.http().post_encoded_ack(path, ack) {
            Ok(()) => {
                if let Err(e) = self.purse.close(tx) {
                    tracing::warn!(%tx, error = %e, "could not close an acknowledged transaction");
                }
            }
            Err(e) if e.refuses_the_bytes() => {
                tracing::info!(%tx, error = %e, "the issuer refused the ack for good; the coins are stored");
                if let Err(e) = self.purse.close(tx) {
                    tracing::warn!(%tx, error = %e, "could not close a transaction");
                }
            }
            Err(e) => tracing::warn!(%tx, error = %e, "ack not delivered; kept in the journal"),
        }
    }

    /// Buys item `sku` at the merchant server at `merchant_url`.
    pub fn pay(&self, merchant_url: &str, sku: &str) -> Result<PayerOutcome, WalletError> {
        self.pay_expecting(merchant_url, sku, &PaymentExpectation::default())
    }

    /// [`Wallet::pay`], refusing an invoice from another payee than
    /// `expected.payee` or above `expected.amount_max`.
    pub fn pay_expecting(
        &self,
        merchant_url: &str,
        sku: &str,
        expected: &PaymentExpectation,
    ) -> Result<PayerOutcome, WalletError> {
        let merchant = MerchantClient::new(merchant_url, self.client_config.clone())?;
        let invoice = merchant.invoice(sku, &self.id)?;
        expected.check(&invoice)?;
        self.pay_invoice(merchant_url, &invoice)
    }

    /// Pays `invoice` (from the merchant server at `merchant_url`) with
    /// coins of exactly its amount, making change with the issuer first if
    /// no subset is exact (the paper's way). Only a signed invoice is paid,
    /// and the payment ends only on proof: the payee's receipt verified
    /// under its certified key. Any other final answer from the merchant
    /// has the coins reclaimed through the issuer ([`WalletError::Unproven`],
    /// or the issuer's statement for a rejection); no answer leaves the
    /// payment journaled for [`Wallet::resume`].
    pub fn pay_invoice(
        &self,
        merchant_url: &str,
        invoice: &Invoice,
    ) -> Result<PayerOutcome, WalletError> {
        PaymentExpectation::default().check(invoice)?;
        // Believed before anything is done for it: no coin is chosen and
        // no change is made for a forged or misaddressed invoice.
        PaymentPayer::verify_invoice(&self.pk_i, &self.id_i, &self.id, invoice, self.now())?;
        let coins = self.coins_for(invoice.amount)?;
        let (payer, send) = PaymentPayer::pay(
            self.suite,
            &self.pk_i,
            &self.id_i,
            &self.id,
            invoice,
            coins.clone(),
            self.now(),
        )?;
        let tx = self.purse.begin(NewTransaction {
            kind: TxKind::Pay,
            amount: invoice.amount,
            reserve: ids(&coins),
            step: Step::Request,
            to: Destination::Payee(merchant_url.to_owned()),
            message: encode(&send),
            secrets: vec![SessionSecret::from_state(&payer)?],
            context: encode(invoice),
            now: self.now(),
        })?;
        self.settle_pay(tx)
    }

    /// One attempt at a journaled payment: the merchant's proof completes
    /// it; a final answer that proves nothing reclaims the coins through
    /// the issuer; no answer leaves it journaled.
    fn settle_pay(&self, tx: TxRef) -> Result<PayerOutcome, WalletError> {
        match self.drive_pay(tx) {
            Ok(PayerOutcome::Rejected {
                reason,
                bad_coins,
                statement,
            }) => {
                // The issuer refused one validation of this payment; a
                // later one by the payee may still succeed, so the coins
                // are only ours again once the issuer has swapped them.
                self.reclaim(tx)?;
                Ok(PayerOutcome::Rejected {
                    reason,
                    bad_coins,
                    statement,
                })
            }
            Ok(paid) => Ok(paid),
            Err(e) if merchant_may_still_answer(&e) => Err(e),
            Err(e @ (WalletError::Purse(_) | WalletError::Journal { .. })) => Err(e),
            Err(e) => {
                tracing::warn!(%tx, error = %e, "no proof of payment; reclaiming the coins");
                self.reclaim(tx)?;
                Err(WalletError::Unproven { why: e.to_string() })
            }
        }
    }

    fn drive_pay(&self, tx: TxRef) -> Result<PayerOutcome, WalletError> {
        let entry = self.purse.entry(tx)?;
        let Destination::Payee(url) = &entry.to else {
            return Err(WalletError::Journal {
                tx,
                why: "a payment without its payee",
            });
        };
        let invoice: Invoice = decode(&entry.context)?;
        let payer: PaymentPayer = secret(&entry)?;
        let merchant = MerchantClient::new(url, self.client_config.clone())?;
        let result = merchant.pay_encoded(&invoice.tid_py, &entry.last_sent)?;
        let outcome = payer.on_result(&result)?;
        match &outcome {
            PayerOutcome::Paid {
                receipt_verified: false,
            } => {
                return Err(WalletError::Flow(FlowError::Mismatch {
                    what: "a payment answered without the payee's signed receipt",
                }));
            }
            PayerOutcome::Paid {
                receipt_verified: true,
            } => {
                self.purse.complete(
                    tx,
                    Completion {
                        spent: entry.reserved.clone(),
                        ..Completion::default()
                    },
                )?;
            }
            PayerOutcome::Rejected { .. } => {}
        }
        Ok(outcome)
    }

    /// Available coins totalling exactly `amount`, changing some first if
    /// needed.
    fn coins_for(&self, amount: Amount) -> Result<Vec<Coin>, WalletError> {
        for _ in 0..=WALLET_CHANGE_ROUNDS_MAX {
            match self.purse.select(amount, self.now())? {
                Selection::Exact(coins) => return Ok(coins),
                Selection::NeedsChange { give, want } => {
                    self.change(give, want)?;
                }
                Selection::Insufficient { available, wanted } => {
                    return Err(WalletError::Insufficient { available, wanted });
                }
            }
        }
        Err(WalletError::Insufficient {
            available: self.purse.balance()?.available,
            wanted: amount,
        })
    }

    /// Change: `give` in, coins of `want` (same total) out.
    pub fn change(&self, give: Vec<Coin>, want: CoinSpec) -> Result<Vec<Coin>, WalletError> {
        let (awaiting, request) = SelfPayment::change(
            self.suite,
            &self.pk_i,
            &self.sk,
            &self.id_i,
            &self.id,
            give.clone(),
            want,
        )?;
        self.self_payment(TxKind::Change, &give, &awaiting, &request)
    }

    /// Refresh: every expired coin (within its grace period) in, fresh
    /// coins of the same values out.
    pub fn refresh_expired(&self) -> Result<Vec<Coin>, WalletError> {
        let expired = self.purse.expired(self.now())?;
        if expired.is_empty() {
            return Ok(Vec::new());
        }
        let (awaiting, request) = SelfPayment::refresh(
            self.suite,
            &self.pk_i,
            &self.sk,
            &self.id_i,
            &self.id,
            expired.clone(),
            spec_of(&expired)?,
        )?;
        self.self_payment(TxKind::Refresh, &expired, &awaiting, &request)
    }

    /// Recoup (after the issuer revoked key epoch `epoch`): every available
    /// coin of the epoch, whatever its expiry, goes back to the issuer for
    /// fresh coins of a good epoch, or, with `to_account`, for an ACH
    /// credit to that enrolled account. One transaction per
    /// `COINS_PER_TX_MAX` coins; returns the value recouped and the fresh
    /// coins.
    pub fn recoup(
        &self,
        epoch: ledger::KeyEpoch,
        to_account: Option<BankAccount>,
    ) -> Result<(Amount, Vec<Coin>), WalletError> {
        let held: Vec<Coin> = self
            .purse
            .coins()?
            .into_iter()
            .filter(|c| c.state == purse::CoinState::Available && c.coin.body.epoch == epoch)
            .map(|c| c.coin)
            .collect();
        let mut value = Amount::ZERO;
        let mut fresh = Vec::new();
        for coins in held.chunks(ledger::constants::COINS_PER_TX_MAX) {
            let amount =
                Amount::checked_sum(coins.iter().map(Coin::value)).map_err(FlowError::from)?;
            let got = match &to_account {
                None => {
                    let (awaiting, request) = SelfPayment::refresh(
                        self.suite,
                        &self.pk_i,
                        &self.sk,
                        &self.id_i,
                        &self.id,
                        coins.to_vec(),
                        spec_of(coins)?,
                    )?;
                    self.self_payment(TxKind::Refresh, coins, &awaiting, &request)?
                }
                Some(account) => {
                    let (awaiting, request) = SelfPayment::redeem(
                        self.suite,
                        &self.pk_i,
                        &self.sk,
                        &self.id_i,
                        &self.id,
                        coins.to_vec(),
                        account.clone(),
                    )?;
                    self.self_payment(TxKind::Redeem, coins, &awaiting, &request)?
                }
            };
            value = value.checked_add(amount).map_err(FlowError::from)?;
            fresh.extend(got);
        }
        Ok((value, fresh))
    }

    /// Recoup of every revoked epoch: asks the issuer which epochs are
    /// revoked (`GET /v1/epochs/revoked`) and recoups every available coin
    /// the purse holds of them, epoch by epoch. Returns, per epoch of
    /// which the purse held coins, the value recouped, and the fresh coins.
    /// A false list (the answer is not signed; it is believed over the
    /// pinned TLS connection) costs nothing: coins of a live epoch sent as
    /// a recoup are an ordinary refresh of the holder's own coins.
    #[allow(clippy::type_complexity)]
    pub fn recoup_revoked(
        &self,
        to_account: Option<BankAccount>,
    ) -> Result<(Vec<(ledger::KeyEpoch, Amount)>, Vec<Coin>), WalletError> {
        let revoked = self.issuer.revoked_epochs()?.epochs;
        let held: std::collections::BTreeSet<ledger::KeyEpoch> = self
            .purse
            .coins()?
            .into_iter()
            .filter(|c| c.state == purse::CoinState::Available)
            .map(|c| c.coin.body.epoch)
            .collect();
        let mut recouped = Vec::new();
        let mut fresh = Vec::new();
        for epoch in revoked.into_iter().filter(|e| held.contains(e)) {
            let (value, coins) = self.recoup(epoch, to_account.clone())?;
            recouped.push((epoch, value));
            fresh.extend(coins);
        }
        Ok((recouped, fresh))
    }

    /// Redeem: coins of `amount` in, an ACH credit to the enrolled
    /// `bank_account` out.
    pub fn redeem(&self, amount: Amount, bank_account: BankAccount) -> Result<(), WalletError> {
        let coins = self.coins_for(amount)?;
        let (awaiting, request) = SelfPayment::redeem(
            self.suite,
            &self.pk_i,
            &self.sk,
            &self.id_i,
            &self.id,
            coins.clone(),
            bank_account,
        )?;
        self.self_payment(TxKind::Redeem, &coins, &awaiting, &request)
            .map(drop)
    }

    fn self_payment(
        &self,
        kind: TxKind,
        coins: &[Coin],
        awaiting: &PayeeAwaitingIssuance,
        request: &ValidationRequest,
    ) -> Result<Vec<Coin>, WalletError> {
        let amount = Amount::checked_sum(coins.iter().map(Coin::value)).map_err(FlowError::from)?;
        let tx = self.purse.begin(NewTransaction {
            kind,
            amount,
            reserve: ids(coins),
            step: Step::Request,
            to: Destination::Issuer,
            message: encode(request),
            secrets: vec![SessionSecret::from_state(awaiting)?],
            context: Vec::new(),
            now: self.now(),
        })?;
        self.drive_self_payment(tx)
    }

    fn drive_self_payment(&self, tx: TxRef) -> Result<Vec<Coin>, WalletError> {
        let entry = self.purse.entry(tx)?;
        if entry.is_settled() {
            self.deliver_ack(tx, "/v1/validate/ack", &entry.last_sent);
            return Ok(Vec::new());
        }
        let awaiting: PayeeAwaitingIssuance = secret(&entry)?;
        let answer: PaymentIssuance1 = self
            .issuer
            .http()
            .post_encoded("/v1/validate", &entry.last_sent)?;
        match awaiting.on_issuance1(&self.sk, &answer)? {
            PayeeOutcome::Coins { coins, ack } => {
                let ack = encode(&ack);
                self.purse.complete(
                    tx,
                    Completion {
                        spent: entry.reserved.clone(),
                        received: coins.clone(),
                        acknowledge: Some(ack.clone()),
                        ..Completion::default()
                    },
                )?;
                self.deliver_ack(tx, "/v1/validate/ack", &ack);
                Ok(coins)
            }
            PayeeOutcome::Receipt(_) => {
                self.purse.complete(
                    tx,
                    Completion {
                        spent: entry.reserved.clone(),
                        ..Completion::default()
                    },
                )?;
                Ok(Vec::new())
            }
            PayeeOutcome::Rejected(reject) => {
                protocol::flows::issuer::verify_reject(&self.pk_i, &reject)?;
                if reject.reason == RejectReason::InUse {
                    // Another transaction holds these coins at the issuer:
                    // perhaps the very payment a reclaim is about, being
                    // validated late by its merchant. Released, they could
                    // be spent twice in the purse's books; kept, a resend
                    // later is judged afresh (the issuer let its claim go
                    // when it refused).
                    return Err(WalletError::CoinsInUse { tx });
                }
                self.purse
                    .refuse(tx, Refusal::from_signed_reject(&reject, &self.pk_i)?)?;
                Err(WalletError::Rejected(Box::new(reject)))
            }
        }
    }

    /// Refund (non-anonymous holders): the issuer revokes every unspent coin
    /// it issued to this participant and sends replacements of equal value,
    /// so that copies of the old coins (a lost disk, a stolen backup of the
    /// purse file) are worthless. Journaled like the other flows: a refund
    /// cut off after its request went out is finished by [`Wallet::resume`],
    /// which re-sends the same request and gets the same replacements.
    pub fn refund(&self) -> Result<RefundOutcome, WalletError> {
        // A refund already journaled (its answer lost) is finished first,
        // and its answer is this one: a second refund beside it would revoke
        // its replacements, and its answer stored afterwards would count
        // dead coins as money. So running `refund` again is idempotent.
        if let Some(journaled) = self
            .purse
            .in_flight()?
            .into_iter()
            .find(|e| e.kind == TxKind::Refund)
        {
            return self.drive_refund(journaled.tx);
        }
        let (state, request) = RefundClient::start(
            self.suite,
            &self.sk,
            &self.pk_i,
            self.id_i.clone(),
            self.id.clone(),
            self.now(),
        )?;
        let tx = self.purse.begin(NewTransaction {
            kind: TxKind::Refund,
            // Unknown until the issuer answers: a restored purse holds none
            // of the coins it gets back.
            amount: Amount::ZERO,
            reserve: Vec::new(),
            step: Step::Request,
            to: Destination::Issuer,
            message: encode(&request),
            secrets: vec![SessionSecret::from_state(&state)?],
            context: Vec::new(),
            now: self.now(),
        })?;
        self.drive_refund(tx)
    }

    fn drive_refund(&self, tx: TxRef) -> Result<RefundOutcome, WalletError> {
        let entry = self.purse.entry(tx)?;
        let state: RefundClient = secret(&entry)?;
        let answer: RefundAnswer = self
            .issuer
            .http()
            .post_encoded("/v1/refund", &entry.last_sent)?;
        match state.on_answer(&self.sk, &answer)? {
            RefundUpdate::Replaced { revoked, coins } => {
                self.purse.complete(
                    tx,
                    Completion {
                        revoked: revoked.clone(),
                        received: coins.clone(),
                        ..Completion::default()
                    },
                )?;
                Ok(RefundOutcome::Replaced {
                    revoked: revoked.len(),
                    coins,
                })
            }
            RefundUpdate::Rejected(reject) => {
                self.purse
                    .refuse(tx, Refusal::from_signed_reject(&reject, &self.pk_i)?)?;
                Ok(RefundOutcome::Rejected(Box::new(reject)))
            }
        }
    }

    /// Turns a payment the payee no longer knows into a change of the same
    /// coins with the issuer (the paper's way to find out): fresh coins if
    /// the payee never validated them, or the issuer's signed "already
    /// spent" if it did, and then the money is the payee's.
    pub fn reclaim(&self, tx: TxRef) -> Result<(), WalletError> {
        let coins = self.purse.reserved_coins(tx)?;
        let (awaiting, request) = SelfPayment::change(
            self.suite,
            &self.pk_i,
            &self.sk,
            &self.id_i,
            &self.id,
            coins.clone(),
            spec_of(&coins)?,
        )?;
        self.purse.reclaim(
            tx,
            StepRecord {
                step: Step::Request,
                message: encode(&request),
                secrets: Some(vec![SessionSecret::from_state(&awaiting)?]),
                context: Some(Vec::new()),
                now: self.now(),
            },
        )?;
        match self.drive_self_payment(tx) {
            Ok(_) | Err(WalletError::Rejected(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Finishes every journaled transaction of this wallet by re-sending its
    /// recorded message (collections belong to the merchant server). A
    /// payment whose payee answers "no such order" is reclaimed through the
    /// issuer ([`Wallet::reclaim`]).
    pub fn resume(&self) -> Result<ResumeReport, WalletError> {
        self.resume_with(|_| {})
    }

    /// [`Wallet::resume`], calling `on_each` after each journal entry (done
    /// or not): a caller's progress display.
    pub fn resume_with(
        &self,
        mut on_each: impl FnMut(&JournalEntry),
    ) -> Result<ResumeReport, WalletError> {
        let mut report = ResumeReport::default();
        for entry in self.purse.in_flight()? {
            let tx = entry.tx;
            let result = match entry.kind {
                TxKind::Purchase => self
                    .drive_purchase(tx)
                    .map(|o| !matches!(o, PurchaseOutcome::Pending(_))),
                TxKind::Pay => match self.settle_pay(tx) {
                    Ok(_) | Err(WalletError::Unproven { .. }) => Ok(true),
                    // A merchant that has not answered for long enough is
                    // not waited for: the issuer settles it instead.
                    Err(e)
                        if merchant_may_still_answer(&e)
                            && self.now() >= entry.created.plus_secs(WALLET_MERCHANT_WAIT_SECS) =>
                    {
                        self.reclaim(tx).map(|()| true)
                    }
                    Err(e) => Err(e),
                },
                TxKind::Change | TxKind::Refresh | TxKind::Redeem => {
                    match self.drive_self_payment(tx) {
                        Ok(_) | Err(WalletError::Rejected(_)) => Ok(true),
                        Err(e) => Err(e),
                    }
                }
                TxKind::Refund => self.drive_refund(tx).map(|_| true),
                TxKind::Collect => Ok(false),
            };
            match result {
                Ok(true) => report.finished += 1,
                Ok(false) => report.unfinished += 1,
                Err(e) => {
                    tracing::warn!(%tx, kind = entry.kind.name(), error = %e, "still unfinished");
                    report.unfinished += 1;
                }
            }
            on_each(&entry);
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_asks_for_the_same_values_it_gives() {
        let coin = |v: u64| Coin {
            body: ledger::CoinBody {
                id: ledger::CoinId::random(),
                value: Amount::from_minor(v),
                expiry: Timestamp(0),
                epoch: ledger::KeyEpoch(1),
            },
            tag: ledger::Tag([0; 16]),
        };
        let coins = [coin(250), coin(125), coin(250)];
        let spec = spec_of(&coins).expect("spec");
        let mut asked: Vec<Amount> = spec.values().collect();
        let mut given: Vec<Amount> = coins.iter().map(Coin::value).collect();
        asked.sort();
        given.sort();
        assert_eq!(asked, given);
    }
}

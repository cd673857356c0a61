//! Payment, and through the same path change, refresh and redeem
//! (paper Figures 6–7; P1–P4 and §3.2's retransmission).
//!
//! Order of checks: open both envelopes (P3 and the amount are checked
//! there) -> **replay check** (a committed payment is answered with its
//! outcome, the same coins re-encrypted under the newest `K_PY`, never "double
//! spent") -> payee's enrollment -> tags (mint) -> reserve inputs in every
//! shard -> expiry -> events -> commit path. Refusals are signed statements
//! (P4) naming the bad coins.

use ledger::{
    Amount, Coin, CoinBody, CoinId, Event, IssueCause, ParticipantId, Role, Timestamp, TxId,
};
use protocol::crypto::PublicKey;
use protocol::flows::FlowError;
use protocol::flows::issuer::{
    CoinGrant, OpenedValidation, PaymentAckSession, PaymentDecision, grant_payment_coins,
    open_payment_issuance2, open_validation_request, reject_payment,
};
use protocol::wire::RejectReason;
use protocol::wire::common::PaymentTid;
use protocol::wire::payment::{
    PaymentIssuance1, PaymentIssuance2, ReceiptKind, VOption, ValidationKind, ValidationRequest,
};

use crate::idempotency::{Begin, CommitRef};
use crate::issuer::commit::{Commit, block_on};
use crate::issuer::core::{IssuerCore, IssuerError, reserve_reason};
use crate::issuer::decide::{InputsView, PayoutDecided, payment_events, refuse_inputs};
use crate::issuer::decide_aggregate;
use crate::issuer::registry::{Participant, PendingCredit};
use crate::sessions::{Persist, SessionError, SessionId};
use crate::timing::Stage;
use std::time::Instant;

fn ack_session_id(id_py: &ParticipantId, tid_py: &PaymentTid) -> SessionId {
    SessionId(
        *TxId::derive(
            "vc/session/payment-ack",
            &[id_py.as_str().as_bytes(), tid_py.as_bytes()],
        )
        .as_bytes(),
    )
}

/// Told once whether a write to the session store is committed (durable):
/// an answer that needs the write waits for it. Called on the session
/// writer's thread, so it must be short (complete a future, send on a channel).
pub(crate) type SessionDone = Box<dyn FnOnce(Result<(), SessionError>) + Send + 'static>;

/// Runs `step`, which hands its session write's outcome to the callback it
/// is given, and waits for that outcome: the synchronous callers' way (the
/// actor path awaits it instead, off the crypto workers).
pub(crate) fn wait_for_sessions<R>(
    step: impl FnOnce(SessionDone) -> Result<R, IssuerError>,
) -> Result<R, IssuerError> {
    let (done, written) = std::sync::mpsc::channel();
    let result = step(Box::new(move |outcome| {
        // The receiver below waits until it has the outcome.
        let _ = done.send(outcome);
    }))?;
    // A callback dropped without being called is a failure, never a success.
    written.recv().unwrap_or(Err(SessionError::Stopped))?;
    Ok(result)
}

/// A validation's outcome, before the public-key work of saying it to the
/// payee, which runs where the request was opened: the issuer's own
/// gateway ([`ValidationOutcome::answer`]) or the validator node that
/// opened it.
#[derive(Debug)]
pub enum ValidationOutcome {
    /// Refused while the request was opened (P3, the amount): signed.
    Signed(PaymentIssuance1),
    /// Decided of an opened request: new coins, a receipt or a refusal.
    Decided(Box<DecidedPayment>),
}

/// What the issuer decided of one opened request.
#[derive(Debug)]
pub struct DecidedPayment {
    pub opened: OpenedValidation,
    pub decision: PaymentDecision,
    /// The payee's registered key, which new coins are sealed to.
    pub payee_key: Option<PublicKey>,
}

impl ValidationOutcome {
    fn decided(
        opened: OpenedValidation,
        decision: PaymentDecision,
        payee_key: Option<PublicKey>,
    ) -> ValidationOutcome {
        ValidationOutcome::Decided(Box::new(DecidedPayment {
            opened,
            decision,
            payee_key,
        }))
    }

    /// Whether saying it takes a signature (a receipt or a refusal), which
    /// may be RSA: the actor shell runs those on a crypto worker.
    pub(crate) fn needs_signature(&self) -> bool {
        match self {
            ValidationOutcome::Signed(_) => false,
            ValidationOutcome::Decided(d) => !matches!(d.decision, PaymentDecision::NewCoins(_)),
        }
    }

    /// The Issuance1 that says it: new coins sealed to the payee's key, a
    /// receipt or refusal signed with `sk_i`.
    pub fn answer(
        self,
        sk_i: &protocol::crypto::SecretKey,
        id_i: &ParticipantId,
    ) -> Result<PaymentIssuance1, FlowError> {
        match self {
            ValidationOutcome::Signed(answer) => Ok(answer),
            ValidationOutcome::Decided(d) => {
                d.decision
                    .answer(sk_i, id_i, &d.opened, d.payee_key.as_ref())
            }
        }
    }
}

/// What step 1 of a validation decided.
pub(crate) enum Opened {
    /// Final: a refusal or the outcome of a committed repeat.
    Answered(ValidationOutcome),
    /// Reserve `pending.opened.serials()` for `pending.tx`, then stage.
    Reserve(Pending),
}

/// A validation between its checks and its reservation.
pub(crate) struct Pending {
    pub(crate) opened: OpenedValidation,
    pub(crate) tx: TxId,
    payout: Payout,
}

/// What step 2 of a validation decided.
pub(crate) enum Staged {
    Answered(ValidationOutcome),
    Commit(Box<StagedPayment>),
}

/// A balanced batch ready for the log, and what to do after it.
pub(crate) struct StagedPayment {
    opened: OpenedValidation,
    /// The batch, its reserved inputs and the coins it issues.
    pub(crate) commit: Commit,
    redeem: bool,
    /// New coins, granted before the log append (their ack session is
    /// written meanwhile), with the payee's key; said only once the batch
    /// is durable.
    prepared: Option<(CoinGrant, PublicKey)>,
}

/// What the checks of step 1 concluded.
enum Checked {
    Pass(Payout),
    Refused(ValidationOutcome),
}

/// What a validated payment pays out, decided before the commit.
enum Payout {
    /// New coins, sealed to the payee's key.
    Coins {
        spec: ledger::CoinSpec,
        payee_key: Box<protocol::crypto::PublicKey>,
    },
    Redeem(ledger::BankAccount),
    Aggregate(ledger::BalanceId),
}

impl IssuerCore {
    /// ValidationRequest -> Issuance1: new coins (refresh, change), a signed
    /// receipt (redeem, aggregate) or a signed rejection (P4), for a
    /// synchronous caller: the one validation sequence
    /// (`super::validation`) with every step on this thread. The actor
    /// path (`Issuer::validate`) runs the same sequence with its expensive
    /// steps on the crypto workers.
    pub fn validate(&self, msg: &ValidationRequest) -> Result<PaymentIssuance1, IssuerError> {
        let outcome = block_on(super::validation::validate(
            &super::validation::Inline(self),
            super::validation::Presented::Sealed(msg.clone()),
        ))?;
        self.answer(outcome)
    }

    /// Says a validation's outcome: seals new coins, signs a receipt or a
    /// refusal.
    pub(crate) fn answer(
        &self,
        outcome: ValidationOutcome,
    ) -> Result<PaymentIssuance1, IssuerError> {
        Ok(outcome.answer(&self.sk_i, &self.id_i)?)
    }

    fn reject(
        &self,
        opened: &OpenedValidation,
        reason: RejectReason,
        bad_coins: Vec<CoinId>,
    ) -> Result<ValidationOutcome, IssuerError> {
        tracing::debug!(?reason, n_bad = bad_coins.len(), "payment refused");
        Ok(ValidationOutcome::decided(
            opened.clone(),
            PaymentDecision::Rejected {
                reason,
                bad_coins,
                at: self.now(),
            },
            None,
        ))
    }

    /// Releases the claim on a transaction that will not commit now.
    pub(crate) fn validation_abandon(&self, tx: TxId) {
        // Releases the claim unless it committed (see `abandon`).
        self.idempotency.abandon(tx);
    }

    /// Step 1 (crypto worker): opens both envelopes, the replay check, the
    /// payee's enrollment and the coins' tags. Either answers at once (a
    /// refusal, or the outcome of a committed repeat) or hands back what to
    /// reserve; in the latter case `tx` is claimed in the idempotency table.
    pub(crate) fn validation_open(&self, msg: &ValidationRequest) -> Result<Opened, IssuerError> {
        let now = self.now();
        let started = Instant::now();
        // Only the payee a request names may submit it: its signature is
        // checked under the registered key before anything else happens.
        let opened = match self
            .open_with_registered_keys(|key| open_validation_request(&self.sk_i, msg, key))
        {
            Err(IssuerError::Flow(e)) => Err(e),
            Err(other) => return Err(other),
            Ok(opened) => Ok(opened),
        };
        let decrypted = Instant::now();
        self.timings
            .record(Stage::Decrypt, decrypted.duration_since(started));
        let opened = match opened {
            Ok(opened) => opened,
            Err(FlowError::Refused {
                subject: protocol::wire::RejectSubject::Payment { id_py, tid_py },
                reason,
            }) => {
                return Ok(Opened::Answered(ValidationOutcome::Signed(reject_payment(
                    &self.sk_i,
                    id_py,
                    tid_py,
                    reason,
                    Vec::new(),
                    now,
                ))));
            }
            Err(e) => return Err(e.into()),
        };
        self.validation_checked(opened, decrypted, None)
    }

    /// Step 1 of a request a validator node opened (its envelopes, the
    /// payee's signature under `checked_under`, P3 and the amount): the
    /// payee's standing, that `checked_under` is the payee's registered
    /// key now (a node may hold a key the payee has since changed: its
    /// signature proves nothing, and the node asks again), then as
    /// [`IssuerCore::validation_open`] from the replay check on.
    pub(crate) fn validation_forwarded(
        &self,
        opened: OpenedValidation,
        checked_under: &ledger::PublicKeyDer,
    ) -> Result<Opened, IssuerError> {
        self.require_good_standing(&opened.id_py)?;
        let payee = self
            .registry
            .get(&opened.id_py)?
            .ok_or(IssuerError::UnknownParticipant)?;
        if payee.public_key.to_ledger() != *checked_under {
            return Err(IssuerError::PayeeKeyChanged);
        }
        self.validation_checked(opened, Instant::now(), Some(payee))
    }

    /// The replay check, the payee's enrollment and the coins' tags;
    /// `payee` is the payee's registry entry if it was read already.
    fn validation_checked(
        &self,
        opened: OpenedValidation,
        decrypted: Instant,
        payee: Option<Participant>,
    ) -> Result<Opened, IssuerError> {
        let tx = opened.tx_id();
        // The replay check comes first: a retry of a committed payment is
        // answered with its outcome, whatever the coins' state is now.
        match self.idempotency.begin(tx)? {
            Begin::Committed(at) => {
                // A repeat: rare, so its session write may hold the worker.
                let answer =
                    wait_for_sessions(|done| self.answer_committed(&opened, tx, at, done))?;
                return Ok(Opened::Answered(answer));
            }
            Begin::InFlight => return Err(IssuerError::InFlight),
            Begin::Started => {}
        }
        let checked = self.validation_checks(&opened, payee);
        self.timings.record(Stage::Checks, decrypted.elapsed());
        match checked {
            Ok(Checked::Pass(payout)) => Ok(Opened::Reserve(Pending { opened, tx, payout })),
            Ok(Checked::Refused(answer)) => {
                self.validation_abandon(tx);
                Ok(Opened::Answered(answer))
            }
            Err(e) => {
                self.validation_abandon(tx);
                Err(e)
            }
        }
    }

    fn validation_checks(
        &self,
        opened: &OpenedValidation,
        payee: Option<Participant>,
    ) -> Result<Checked, IssuerError> {
        let refuse =
            |reason, bad: Vec<CoinId>| self.reject(opened, reason, bad).map(Checked::Refused);
        let payee = match payee {
            Some(payee) => Some(payee),
            None => self.registry.get(&opened.id_py)?,
        };
        let Some(payee) = payee else {
            return refuse(RejectReason::NotEnrolled, Vec::new());
        };
        let payout = match &opened.v_desc.option {
            VOption::Refresh { spec } => Payout::Coins {
                spec: spec.clone(),
                payee_key: Box::new(payee.public_key.clone()),
            },
            VOption::Redeem { bank_account } => {
                let enrollments: Vec<_> = [Role::Redeemer, Role::Merchant]
                    .into_iter()
                    .filter_map(|r| payee.enrolled(r))
                    .collect();
                if enrollments.is_empty() {
                    return refuse(RejectReason::NotEnrolled, Vec::new());
                }
                if !enrollments.iter().any(|e| e.bank_account == *bank_account) {
                    return refuse(RejectReason::AccountNotEnrolled, Vec::new());
                }
                if let Err(e) = self.bank.check_account(bank_account) {
                    tracing::info!(error = %e, "redeem to an account the bank refuses");
                    let why = match e {
                        crate::bank::BankError::AccountClosed => {
                            ledger::BankRejection::AccountClosed
                        }
                        _ => ledger::BankRejection::UnknownAccount,
                    };
                    return refuse(RejectReason::BankRejected(why), Vec::new());
                }
                Payout::Redeem(bank_account.clone())
            }
            VOption::Aggregate => match payee.enrolled(Role::Merchant).and_then(|e| e.balance) {
                Some(balance) => Payout::Aggregate(balance),
                None => return refuse(RejectReason::NotEnrolled, Vec::new()),
            },
        };
        let bad_tags: Vec<CoinId> = {
            let mint = self.mint.read().expect(ledger::sync::POISONED_LOCK);
            opened
                .coins
                .iter()
                .filter(|c| mint.check(c).is_err())
                .map(Coin::id)
                .collect()
        };
        if !bad_tags.is_empty() {
            return refuse(RejectReason::BadTag, bad_tags);
        }
        Ok(Checked::Pass(payout))
    }

    /// The signed refusal when the inputs could not be reserved (busy or
    /// gone); releases the claim on the transaction.
    pub(crate) fn validation_unreserved(
        &self,
        pending: &Pending,
        e: &crate::shard::ReserveError,
    ) -> Result<ValidationOutcome, IssuerError> {
        self.validation_abandon(pending.tx);
        let (reason, mut bad) = reserve_reason(e);
        if reason == RejectReason::AlreadySpent {
            // Reserving stops at the first shard that refuses; the statement
            // must name every bad coin (P4), so look at each input.
            for id in pending.opened.serials() {
                if self.commit.get(&id).is_none() && !bad.contains(&id) {
                    bad.push(id);
                }
            }
        }
        self.reject(&pending.opened, reason, bad)
    }

    /// Step 2, with the inputs reserved (new coins: inline in the
    /// coordinator; a receipt: on a crypto worker): checks the logged
    /// bodies and expiry, mints the outputs, builds and balances the batch,
    /// and records a redemption's credit as owed. On `Answered` or an error
    /// the caller releases the reservations and the claim.
    ///
    /// New coins' Issuance1 is built here too, and its ack session held
    /// (a soft session write: no fsync of its own). On `Commit`, `done` is
    /// told once when that session is written (at once when there is
    /// none); the answer may go out only after both the log append and
    /// `done`. A session written for
    /// a batch that then fails holds a key for coins that never existed;
    /// it expires unused.
    pub(crate) fn validation_stage(
        &self,
        pending: Pending,
        inputs: Vec<CoinBody>,
        done: SessionDone,
    ) -> Result<Staged, IssuerError> {
        // Read first: the clock, the inputs' epochs, the payout's coins or
        // sealed account. Then decide, purely. Then write.
        let now = self.now();
        let Pending { opened, tx, payout } = pending;
        let presented: Vec<CoinBody> = opened.coins.iter().map(|c| c.body).collect();
        // After the reservation, so a revocation or erasure waiting for the
        // epoch's reservations to drain never misses this one.
        let recoup_allowed = matches!(
            opened.kind,
            ValidationKind::Refresh | ValidationKind::Redeem
        );
        let recoup = match self.epoch_gate(&inputs, recoup_allowed) {
            Ok(recoup) => recoup,
            Err(refusal) => {
                return Ok(Staged::Answered(self.reject(
                    &opened,
                    refusal.reason,
                    refusal.bad_coins,
                )?));
            }
        };
        let inputs_view = InputsView {
            logged: &inputs,
            presented: &presented,
            now,
            refresh: opened.kind == ValidationKind::Refresh || recoup,
        };
        // A recoup takes coins of a revoked epoch whatever their expiry,
        // until the epoch is erased.
        if let Some(refusal) = refuse_inputs(inputs_view, |epoch| {
            if recoup {
                Some(Timestamp(u64::MAX))
            } else {
                self.epoch_info(epoch).map(|e| e.grace_ends_at)
            }
        }) {
            return Ok(Staged::Answered(self.reject(
                &opened,
                refusal.reason,
                refusal.bad_coins,
            )?));
        }
        let amount = opened.v_desc.amount;
        let decided = match &payout {
            Payout::Coins { spec, .. } => {
                // Its ack session must be writable once the batch is in
                // the log: refuse (503, retry later) before money moves.
                self.sessions.has_room_for_payment()?;
                let fresh = self.mint_bodies(spec)?;
                PayoutDecided::Coins {
                    holder: self.self_payment_holder(&opened, &inputs, &fresh)?,
                    fresh,
                    cause: match opened.kind {
                        _ if recoup => IssueCause::Recoup,
                        ValidationKind::Change => IssueCause::Change,
                        ValidationKind::Refresh => IssueCause::Refresh,
                        ValidationKind::Payment | ValidationKind::Redeem => IssueCause::Payment,
                    },
                }
            }
            Payout::Redeem(account) => PayoutDecided::Redeem(self.sealer.seal_account(account)),
            Payout::Aggregate(balance) => PayoutDecided::Aggregate(*balance),
        };
        let (events, issued) = payment_events(
            &inputs,
            if recoup {
                ledger::SpendCause::Recoup
            } else {
                opened.kind.spend_cause(&opened.v_desc.option)
            },
            amount,
            decided,
        );
        let commit = Commit::new(tx, now, events, &inputs, issued)?;
        if let Payout::Redeem(account) = &payout {
            self.registry.put_pending_credit(
                tx,
                &PendingCredit {
                    account: account.clone(),
                    amount,
                },
            )?;
        }
        let prepared = match &payout {
            Payout::Coins { payee_key, .. } => {
                let coins = commit
                    .issued()
                    .iter()
                    .map(|b| self.tagged(*b))
                    .collect::<Result<Vec<_>, _>>()?;
                let (grant, session) = grant_payment_coins(&opened, coins)?;
                self.keep_ack_session(&session, done);
                Some((grant, (**payee_key).clone()))
            }
            Payout::Redeem(_) | Payout::Aggregate(_) => {
                done(Ok(()));
                None
            }
        };
        Ok(Staged::Commit(Box::new(StagedPayment {
            opened,
            commit,
            redeem: matches!(payout, Payout::Redeem(_)),
            prepared,
        })))
    }

    /// After a staged payment failed to commit. If the batch never reached
    /// the log, nothing is owed. If it `maybe_durable` (the append failed:
    /// the batch may be on disk all the same), a redemption's pending
    /// credit stays: the next start pays it if the log holds the batch and
    /// drops it if not (`finish_pending_credits`).
    pub(crate) fn validation_failed(&self, staged: &StagedPayment, maybe_durable: bool) {
        let tx = staged.commit.tx();
        if staged.redeem
            && !maybe_durable
            && let Err(e) = self.registry.remove_pending_credit(tx)
        {
            tracing::warn!(error = %e, "could not drop a pending credit");
        }
        self.validation_abandon(tx);
    }

    /// Step 3, the batch committed at `at` (durable, shards committed,
    /// transaction recorded): gives the answer (new coins: the one prepared
    /// at staging; a receipt: built now, with a redemption's bank credit).
    /// Short, and no RSA unless it signs a receipt: the sequence runs the
    /// new-coins case inline.
    pub(crate) fn validation_finish(
        &self,
        staged: StagedPayment,
        at: CommitRef,
    ) -> Result<ValidationOutcome, IssuerError> {
        tracing::debug!(tx = %staged.commit.tx(), seq = %at.first_seq, "payment committed");
        match staged.prepared {
            Some((grant, payee_key)) => Ok(ValidationOutcome::decided(
                staged.opened,
                PaymentDecision::NewCoins(grant),
                Some(payee_key),
            )),
            // A receipt writes no session: this does not wait.
            None => wait_for_sessions(|done| {
                self.answer_committed(&staged.opened, staged.commit.tx(), at, done)
            }),
        }
    }

    /// Whether staging `pending` is short and touches no disk (new coins:
    /// minting, tags, one RSA public-key operation), so the coordinator may
    /// run it inline. A redemption records its credit durably, a change or
    /// refresh its holder's new coins: pool.
    pub(crate) fn stages_inline(pending: &Pending) -> bool {
        // Change and refresh may record their new coins for a refund.
        matches!(pending.payout, Payout::Coins { .. })
            && !matches!(
                pending.opened.kind,
                ValidationKind::Change | ValidationKind::Refresh
            )
    }

    /// Whether the new coins were granted at staging, so finishing needs
    /// no worker.
    pub(crate) fn is_prepared(staged: &StagedPayment) -> bool {
        staged.prepared.is_some()
    }

    /// The answer to a committed payment, built from its batch in the log:
    /// the same coins (re-tagged by the mint) under the newest `K_PY`, or the
    /// receipt. Completes a redemption's bank credit if a crash cut it short
    /// (credits are idempotent by transaction). `done` is told when the ack
    /// session of new coins is written (at once for a receipt); on `Err` it
    /// may never be called.
    fn answer_committed(
        &self,
        opened: &OpenedValidation,
        tx: TxId,
        at: CommitRef,
        done: SessionDone,
    ) -> Result<ValidationOutcome, IssuerError> {
        let now = self.now();
        let events = self.read_batch(at)?;
        for event in &events {
            match event {
                Event::CoinsIssued { coins, .. } => {
                    let payee = self
                        .registry
                        .get(&opened.id_py)?
                        .ok_or(IssuerError::UnknownParticipant)?;
                    let coins = coins
                        .iter()
                        .map(|b| self.tagged(*b))
                        .collect::<Result<Vec<_>, _>>()?;
                    let (grant, session) = grant_payment_coins(opened, coins)?;
                    self.keep_ack_session(&session, done);
                    return Ok(ValidationOutcome::decided(
                        opened.clone(),
                        PaymentDecision::NewCoins(grant),
                        Some(payee.public_key),
                    ));
                }
                Event::Redeemed { .. } => {
                    // The account and amount are the ones the commit
                    // recorded, never the repeat's: a repeat may name
                    // another account (the payee's other enrollment).
                    self.pay_owed_credit(tx)?;
                    done(Ok(()));
                    return Ok(ValidationOutcome::decided(
                        opened.clone(),
                        PaymentDecision::Receipt {
                            kind: ReceiptKind::Redeemed,
                            at: now,
                        },
                        None,
                    ));
                }
                Event::Aggregated { .. } => {
                    done(Ok(()));
                    return Ok(ValidationOutcome::decided(
                        opened.clone(),
                        PaymentDecision::Receipt {
                            kind: ReceiptKind::Aggregated,
                            at: now,
                        },
                        None,
                    ));
                }
                _ => {}
            }
        }
        Err(IssuerError::Log(ledger::StoreError::Corrupt {
            seq: at.first_seq,
            reason: "a payment batch without a payout".into(),
        }))
    }

    /// Completes the bank credit a committed redemption `tx` still owes
    /// (a crash or a bank failure cut it short), to the account and for the
    /// amount recorded before it was logged; nothing if the bank has it.
    /// Credits are idempotent by transaction, so a race with the start-up
    /// payment of owed credits pays once.
    fn pay_owed_credit(&self, tx: TxId) -> Result<(), IssuerError> {
        if let Some(credit) = self.registry.pending_credit(tx)? {
            self.bank.credit(tx, &credit.account, credit.amount)?;
            self.registry.remove_pending_credit(tx)?;
        }
        Ok(())
    }

    /// Holds the ack session as a soft write (no fsync of its own: on disk
    /// with the next durable session group, within the housekeeper's
    /// period, or at a clean stop); a retransmission overwrites it: the
    /// newest `K_PY` wins. A crash may lose it and no money goes with it:
    /// the coins are in the log, a retransmission of the validation is
    /// answered from its batch with a new ack session, and an Issuance2
    /// whose session is gone is refused while the coins stay the payee's
    /// (see "Design choices" in actors/README.md).
    fn keep_ack_session(&self, session: &PaymentAckSession, done: SessionDone) {
        let id = ack_session_id(&session.id_py, &session.tid_py);
        let expires = self.now().plus_secs(self.config.payment_session_secs);
        self.sessions
            .upsert_then(id, session, expires, Persist::Soft, done);
    }

    /// A payment's Issuance2: the payee confirms it holds the new coins.
    pub fn payment_issuance2(&self, msg: &PaymentIssuance2) -> Result<(), IssuerError> {
        wait_for_sessions(|done| self.payment_issuance2_then(msg, done))
    }

    /// [`IssuerCore::payment_issuance2`] with the session's tombstone
    /// reported to `done` (a soft write, told at once): `Ok` here means the
    /// ack checked out, and it may be answered once `done` is told. On
    /// `Err`, `done` may never be called.
    pub(crate) fn payment_issuance2_then(
        &self,
        msg: &PaymentIssuance2,
        done: SessionDone,
    ) -> Result<(), IssuerError> {
        let id = ack_session_id(&msg.id_py, &msg.tid_py);
        let now = self.now();
        let session: PaymentAckSession = match self.sessions.get(id, now) {
            Ok(s) => s,
            // Acknowledged already: a retried ack is answered the same.
            Err(SessionError::AlreadyUsed) => {
                done(Ok(()));
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        // Checked before the session is used up, so a forged ack cannot
        // spend the real one's place.
        open_payment_issuance2(&session, msg)?;
        self.sessions
            .use_up_then(id, now, Persist::Soft, move |used| {
                // Two acks racing past `get`: the second finds the session used,
                // and a retried ack is answered the same.
                done(match used {
                    Err(SessionError::AlreadyUsed) => Ok(()),
                    other => other,
                })
            });
        Ok(())
    }

    /// Redeems part or all of a merchant's aggregated balance to its
    /// enrolled bank account: balance in, bank credit out. `request` names
    /// the request so a retry credits once.
    pub fn redeem_aggregate(
        &self,
        merchant: &ParticipantId,
        amount: Amount,
        request: [u8; 16],
    ) -> Result<(), IssuerError> {
        self.withdraw_aggregate(merchant, Some(amount), request)
            .map(|_| ())
    }

    /// [`IssuerCore::redeem_aggregate`] of `amount`, or of the whole
    /// balance (`None`, read under the aggregate lock; refused if zero,
    /// before anything is committed); returns what the
    /// request paid. A repeat of `request` pays nothing more and returns
    /// what the commit recorded, whatever amount it names.
    pub(crate) fn withdraw_aggregate(
        &self,
        merchant: &ParticipantId,
        amount: Option<Amount>,
        request: [u8; 16],
    ) -> Result<Amount, IssuerError> {
        let participant = self
            .registry
            .get(merchant)?
            .ok_or(IssuerError::UnknownParticipant)?;
        let enrollment = participant
            .enrolled(Role::Merchant)
            .ok_or(IssuerError::NoSuchEnrollment)?;
        let balance = enrollment.balance.ok_or(IssuerError::NoSuchEnrollment)?;
        let tx = TxId::derive(
            "vc/tx/redeem-aggregate",
            &[merchant.as_str().as_bytes(), &request],
        );
        match self.idempotency.begin(tx)? {
            Begin::Committed(at) => {
                // What the commit recorded, not this repeat's amount.
                self.pay_owed_credit(tx)?;
                return self
                    .read_batch(at)?
                    .iter()
                    .find_map(|e| match e {
                        Event::AggregateWithdrawn { amount, .. } => Some(*amount),
                        _ => None,
                    })
                    .ok_or(IssuerError::Log(ledger::StoreError::Corrupt {
                        seq: at.first_seq,
                        reason: "an aggregate redemption without a withdrawal".into(),
                    }));
            }
            Begin::InFlight => return Err(IssuerError::InFlight),
            Begin::Started => {}
        }
        let _serial = ledger::sync::lock(&self.aggregate_lock);
        let result = (|| {
            self.bank.check_account(&enrollment.bank_account)?;
            let available = self.aggregate_balance(balance);
            let amount = decide_aggregate::withdrawal_amount(available, amount)?;
            self.registry.put_pending_credit(
                tx,
                &PendingCredit {
                    account: enrollment.bank_account.clone(),
                    amount,
                },
            )?;
            let events = decide_aggregate::withdrawal_events(
                balance,
                amount,
                self.sealer.seal_account(&enrollment.bank_account),
            );
            self.commit_batch(tx, &[], events, Vec::new())?;
            self.bank.credit(tx, &enrollment.bank_account, amount)?;
            self.registry.remove_pending_credit(tx)?;
            Ok(amount)
        })();
        // Releases the claim unless it committed (see `abandon`).
        self.idempotency.abandon(tx);
        result
    }
}

//! Coin purchase, issuer side (paper Figure 5; W1–W3).
//!
//! WRequest1 opens a durable session (`K_I`, `R_I`); WRequest3 spends `R_I`
//! durably before anything else happens (W3: a replay finds it spent and
//! causes no debit), logs the purchase, and asks the bank for the debit.
//! Coins are minted only when the bank says settled (W2), in the same batch
//! as the settlement; until Issuance2 every poll returns the same coins.

use ledger::{Amount, BankAccount, Event, ParticipantId, PurchaseId, Role, TxId};
use protocol::flows::issuer::{
    PurchaseSession, answer_wrequest1, build_purchase_issuance1, open_purchase_issuance2,
    open_purchase_poll, open_wrequest1, open_wrequest3, purchase_pending, reject_purchase,
    seal_wrequest2,
};
use protocol::wire::RejectReason;
use protocol::wire::purchase::{
    PurchaseIssuance1, PurchaseIssuance2, PurchasePoll, WRequest1, WRequest2, WRequest3,
};
use serde::{Deserialize, Serialize};

use crate::bank::DebitStatus;
use crate::idempotency::Begin;
use crate::issuer::core::{IssuerCore, IssuerError, PurchaseStatus};
use crate::issuer::decide_purchase::{
    OrderView, SettlementView, decide_order, decide_settlement, purchase_tx,
};
use crate::sessions::{Persist, SessionError, SessionId};

/// A purchase session as the issuer keeps it (in the durable session store).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredPurchase {
    session: PurchaseSession,
    /// The account to debit, once WRequest3 was accepted.
    bank_account: Option<BankAccount>,
}

fn session_id(purchase: PurchaseId) -> SessionId {
    SessionId(*purchase.as_bytes())
}

/// What a purchaser's slot holds.
enum Slot {
    /// Nothing live: free to take.
    Free,
    /// A purchase that has begun (money may be at stake): kept.
    Begun,
    /// A purchase not begun yet (no WRequest3), or refused by the bank:
    /// gives way to a new one.
    NotBegun(PurchaseId),
}

impl IssuerCore {
    /// Slot `slot` of a purchaser's purchase sessions: a session holding
    /// the handle of the purchase that takes it. Its id is a keyed hash of
    /// the purchaser's id (under the registry key): the session file does
    /// not tell which participants hold purchase sessions.
    fn slot_id(&self, id_cp: &ParticipantId, slot: usize) -> SessionId {
        self.registry.session_seal().keyed_session_id(
            "vc/session/purchase-slot",
            &[id_cp.as_str().as_bytes(), &(slot as u64).to_le_bytes()],
        )
    }

    fn load_purchase(&self, purchase: PurchaseId) -> Result<StoredPurchase, IssuerError> {
        self.sessions
            .get(session_id(purchase), self.now())
            .map_err(|e| match e {
                SessionError::Unknown | SessionError::Expired => IssuerError::UnknownPurchase,
                SessionError::AlreadyUsed => IssuerError::PurchaseClosed,
                other => other.into(),
            })
    }

    /// WRequest1 -> WRequest2: the purchase handle, `K_I` and `R_I` under
    /// the purchaser's registered key. The request must be signed by the
    /// purchaser it names, fresh, and the purchaser enrolled (approved), so
    /// sessions (kept for days) are opened only by approved purchasers for
    /// themselves; a copy of a request (retry or replay) gets its session's
    /// keys again and opens no other.
    pub fn wrequest1(&self, msg: &WRequest1) -> Result<WRequest2, IssuerError> {
        let now = self.now();
        let opened =
            self.open_with_registered_keys(|key| open_wrequest1(&self.sk_i, msg, key, now))?;
        let participant = self
            .registry
            .get(&opened.id_cp)?
            .ok_or(IssuerError::UnknownParticipant)?;
        // Registration is open to anyone; enrollment is approved by an
        // operator. Sessions (kept for days) only for approved purchasers.
        if participant.enrolled(Role::CoinPurchaser).is_none() {
            return Err(IssuerError::NoSuchEnrollment);
        }
        let purchase = opened.handle;
        // A copy of a request already answered: its session's keys again.
        if let Ok(existing) = self.load_purchase(purchase) {
            return Ok(seal_wrequest2(&existing.session, &participant.public_key)?);
        }
        let id_cp = opened.id_cp.clone();
        let slot = self.claim_purchase_slot(&id_cp, now)?;
        let (session, answer) =
            answer_wrequest1(opened, &participant.public_key, self.id_i.clone(), purchase)?;
        let stored = StoredPurchase {
            session,
            bank_account: None,
        };
        let expires = now.plus_secs(self.config.purchase_session_secs);
        match self.sessions.insert(session_id(purchase), &stored, expires) {
            Ok(()) => {}
            Err(SessionError::Exists) => {
                let existing = self.load_purchase(purchase)?;
                return Ok(seal_wrequest2(&existing.session, &participant.public_key)?);
            }
            Err(e) => return Err(e.into()),
        }
        crate::issuer::payment::wait_for_sessions(|done| {
            self.sessions.upsert_then(
                self.slot_id(&id_cp, slot),
                &purchase,
                expires,
                Persist::Durable,
                done,
            );
            Ok(())
        })?;
        Ok(answer)
    }

    /// A slot for a new purchase session of `id_cp`: a free one, else one
    /// whose purchase has not begun (that session is dropped: it holds no
    /// money, and its purchaser is the one asking), else the store is full
    /// for this purchaser.
    fn claim_purchase_slot(
        &self,
        id_cp: &ParticipantId,
        now: ledger::Timestamp,
    ) -> Result<usize, IssuerError> {
        let mut not_begun = None;
        for slot in 0..crate::constants::PURCHASE_SESSIONS_PER_PURCHASER_MAX {
            match self.purchase_slot(id_cp, slot, now)? {
                Slot::Free => return Ok(slot),
                Slot::NotBegun(held) => {
                    not_begun.get_or_insert((slot, held));
                }
                Slot::Begun => {}
            }
        }
        let Some((slot, held)) = not_begun else {
            return Err(IssuerError::Session(SessionError::Full));
        };
        self.sessions.remove(session_id(held))?;
        Ok(slot)
    }

    fn purchase_slot(
        &self,
        id_cp: &ParticipantId,
        slot: usize,
        now: ledger::Timestamp,
    ) -> Result<Slot, IssuerError> {
        let held: PurchaseId = match self.sessions.get(self.slot_id(id_cp, slot), now) {
            Ok(held) => held,
            Err(SessionError::Unknown | SessionError::Expired | SessionError::AlreadyUsed) => {
                return Ok(Slot::Free);
            }
            Err(e) => return Err(e.into()),
        };
        // A logged purchase: kept while money is at stake (debit asked,
        // coins not acknowledged); a refused one only until the slot is
        // needed (its purchaser had the signed refusal to fetch).
        match self.purchase_state(held).map(|p| p.status) {
            Some(PurchaseStatus::Pending | PurchaseStatus::Settled(_)) => return Ok(Slot::Begun),
            Some(PurchaseStatus::Rejected(_)) => return Ok(Slot::NotBegun(held)),
            Some(PurchaseStatus::Acknowledged) => return Ok(Slot::Free),
            None => {}
        }
        match self.sessions.get::<StoredPurchase>(session_id(held), now) {
            Ok(stored) if stored.bank_account.is_some() || stored.session.r_i_used => {
                Ok(Slot::Begun)
            }
            Ok(_) => Ok(Slot::NotBegun(held)),
            Err(SessionError::Unknown | SessionError::Expired | SessionError::AlreadyUsed) => {
                Ok(Slot::Free)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// WRequest3 -> Issuance1 (usually "pending"). A replayed or forged
    /// WRequest3 is refused before any debit is asked (W3).
    pub fn wrequest3(&self, msg: &WRequest3) -> Result<PurchaseIssuance1, IssuerError> {
        let now = self.now();
        let mut stored = self.load_purchase(msg.purchase)?;
        let participant = self
            .registry
            .get(&stored.session.id_cp)?
            .ok_or(IssuerError::UnknownParticipant)?;
        // Suspended or revoked since WRequest1: no debit.
        self.require_good_standing(&stored.session.id_cp)?;
        // R_I is checked on a copy: it is spent on disk only once the
        // purchase is durable in the log, so a purchase whose append failed
        // can be retried with the same WRequest3 instead of being lost as a
        // "replay". Concurrent copies of one WRequest3 meet in the
        // idempotency table; one logged purchase makes every later copy a
        // replay (W3: no second debit).
        let mut session = stored.session.clone();
        let order = open_wrequest3(&mut session, &participant.public_key, msg)?;
        let purchase = order.purchase;
        let tx = purchase_tx("vc/tx/purchase", purchase);
        match self.idempotency.begin(tx)? {
            Begin::Started => {}
            Begin::InFlight => return Err(IssuerError::InFlight),
            Begin::Committed(_) => {
                self.spend_r_i(purchase, &mut stored)?;
                return Err(protocol::flows::FlowError::ReplayedNonce.into());
            }
        }
        let answered = self.log_purchase(now, tx, &participant, order, &mut stored);
        if answered.is_err() {
            self.idempotency.abandon(tx);
        }
        answered
    }

    /// Records R_I as spent in the stored session (after the purchase is
    /// logged, or refused for good).
    fn spend_r_i(
        &self,
        purchase: PurchaseId,
        stored: &mut StoredPurchase,
    ) -> Result<(), IssuerError> {
        if !stored.session.r_i_used {
            stored.session.r_i_used = true;
            self.sessions.replace(session_id(purchase), &*stored)?;
        }
        Ok(())
    }

    /// The rest of WRequest3 once its transaction is claimed: refusals,
    /// the durable purchase, then R_I spent, then the debit.
    fn log_purchase(
        &self,
        now: ledger::Timestamp,
        tx: TxId,
        participant: &crate::issuer::registry::Participant,
        order: protocol::flows::issuer::PurchaseOrder,
        stored: &mut StoredPurchase,
    ) -> Result<PurchaseIssuance1, IssuerError> {
        let purchase = order.purchase;
        let view = OrderView {
            enrolled_account: participant
                .enrolled(Role::CoinPurchaser)
                .map(|e| &e.bank_account),
            purchaser: self.sealer.seal_identity(&order.id_cp),
            bank_account: self.sealer.seal_account(&order.w_desc.bank_account),
        };
        let event = match decide_order(view, &order) {
            Ok(event) => event,
            Err(refusal) => {
                self.idempotency.abandon(tx);
                self.spend_r_i(purchase, stored)?;
                return Ok(reject_purchase(&self.sk_i, purchase, refusal.reason, now));
            }
        };
        // The account to debit is stored before the log names the purchase:
        // a restart resumes the debits of logged purchases from it.
        stored.bank_account = Some(order.w_desc.bank_account.clone());
        self.sessions.replace(session_id(purchase), &*stored)?;
        self.commit_batch(tx, &[], vec![event], Vec::new())?;
        self.spend_r_i(purchase, stored)?;
        self.ask_debit(purchase)?;
        self.purchase_answer(purchase, stored)
    }

    /// Asks the bank to debit a logged purchase (idempotent by purchase).
    pub(crate) fn ask_debit(&self, purchase: PurchaseId) -> Result<DebitStatus, IssuerError> {
        let stored = self.load_purchase(purchase)?;
        let account = stored
            .bank_account
            .as_ref()
            .ok_or(IssuerError::UnknownPurchase)?;
        let amount = self
            .purchase_state(purchase)
            .map(|p| p.amount)
            .ok_or(IssuerError::UnknownPurchase)?;
        Ok(self.bank.debit(purchase, account, amount)?)
    }

    fn purchase_state(&self, purchase: PurchaseId) -> Option<crate::issuer::core::PurchaseState> {
        ledger::sync::lock(&self.state)
            .purchases
            .get(&purchase)
            .cloned()
    }

    /// Issuance1 as things stand: pending, the coins, or the signed rejection.
    /// Settles with the bank on the way when the debit is due.
    fn purchase_answer(
        &self,
        purchase: PurchaseId,
        stored: &StoredPurchase,
    ) -> Result<PurchaseIssuance1, IssuerError> {
        let now = self.now();
        let state = self
            .purchase_state(purchase)
            .ok_or(IssuerError::UnknownPurchase)?;
        let status = match state.status {
            PurchaseStatus::Pending => self.settle_purchase(purchase)?,
            other => other,
        };
        match status {
            PurchaseStatus::Pending => Ok(purchase_pending(purchase)),
            PurchaseStatus::Settled(bodies) => {
                let coins = bodies
                    .into_iter()
                    .map(|b| self.tagged(b))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(build_purchase_issuance1(&stored.session, coins)?)
            }
            PurchaseStatus::Rejected(reason) => Ok(reject_purchase(
                &self.sk_i,
                purchase,
                RejectReason::BankRejected(reason),
                now,
            )),
            PurchaseStatus::Acknowledged => Err(IssuerError::PurchaseClosed),
        }
    }

    /// Asks the bank where a pending purchase stands; logs the settlement
    /// with its coins (W2: coins exist only with a settled debit), or the
    /// rejection. Returns the new status.
    pub fn settle_purchase(&self, purchase: PurchaseId) -> Result<PurchaseStatus, IssuerError> {
        let state = self
            .purchase_state(purchase)
            .ok_or(IssuerError::UnknownPurchase)?;
        if state.status != PurchaseStatus::Pending {
            return Ok(state.status);
        }
        let Some(to_settle) = state.to_settle else {
            return Ok(state.status);
        };
        let debit = self.bank.debit_status(purchase)?;
        let fresh = match debit {
            DebitStatus::Settled => self.mint_bodies(&to_settle.spec)?,
            DebitStatus::Pending | DebitStatus::Rejected(_) => Vec::new(),
        };
        let view = SettlementView {
            purchase,
            amount: state.amount,
            to_settle: &to_settle,
            debit: &debit,
        };
        let Some(settlement) = decide_settlement(view, fresh) else {
            return Ok(PurchaseStatus::Pending);
        };
        let (tx, holder_coins) = (settlement.tx, settlement.holder_coins);
        match self.idempotency.begin(tx)? {
            Begin::Started => {
                // The coins are recorded against the purchaser before the
                // batch goes to the log, so a batch durable while its append
                // reported failure leaves them refundable; if it never
                // commits, the entries name coins that never existed, which
                // a refund skips.
                let recorded = if holder_coins.is_empty() {
                    Ok(())
                } else {
                    self.load_purchase(purchase).and_then(|stored| {
                        Ok(self
                            .registry
                            .add_coins(&stored.session.id_cp, holder_coins)?)
                    })
                };
                let committed = recorded.and_then(|()| {
                    self.commit_batch(tx, &[], settlement.events, settlement.issued)
                });
                if let Err(e) = committed {
                    self.idempotency.abandon(tx);
                    return Err(e);
                }
            }
            Begin::InFlight => return Ok(PurchaseStatus::Pending),
            Begin::Committed(_) => {}
        }
        Ok(self
            .purchase_state(purchase)
            .map(|p| p.status)
            .unwrap_or(PurchaseStatus::Pending))
    }

    /// Settles every pending purchase that the bank has decided (run on a
    /// timer). Returns how many changed.
    pub fn settle_pending_purchases(&self) -> Result<usize, IssuerError> {
        let pending: Vec<PurchaseId> = ledger::sync::lock(&self.state)
            .purchases
            .iter()
            .filter(|(_, p)| p.status == PurchaseStatus::Pending)
            .map(|(id, _)| *id)
            .collect();
        let mut changed = 0;
        for purchase in pending {
            if self.settle_purchase(purchase)? != PurchaseStatus::Pending {
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// A poll for Issuance1 (MAC'd under the session key).
    pub fn purchase_poll(&self, msg: &PurchasePoll) -> Result<PurchaseIssuance1, IssuerError> {
        let stored = self.load_purchase(msg.purchase)?;
        open_purchase_poll(&stored.session, msg)?;
        self.purchase_answer(msg.purchase, &stored)
    }

    /// Issuance2: the purchaser has the coins; Issuance1 is served no more.
    pub fn purchase_issuance2(&self, msg: &PurchaseIssuance2) -> Result<(), IssuerError> {
        let state = self
            .purchase_state(msg.purchase)
            .ok_or(IssuerError::UnknownPurchase)?;
        if state.status == PurchaseStatus::Acknowledged {
            return Ok(());
        }
        let stored = self.load_purchase(msg.purchase)?;
        open_purchase_issuance2(&stored.session, msg)?;
        if !matches!(state.status, PurchaseStatus::Settled(_)) {
            return Err(IssuerError::UnknownPurchase);
        }
        let tx = purchase_tx("vc/tx/purchase-ack", msg.purchase);
        self.commit_once(tx, || {
            vec![Event::PurchaseAcknowledged {
                purchase: msg.purchase,
            }]
        })?;
        self.sessions.remove(session_id(msg.purchase))?;
        Ok(())
    }

    /// The amount of a logged purchase (for reports).
    pub fn purchase_amount(&self, purchase: PurchaseId) -> Option<Amount> {
        self.purchase_state(purchase).map(|p| p.amount)
    }

    /// Where a logged purchase stands.
    pub fn purchase_status(&self, purchase: PurchaseId) -> Option<PurchaseStatus> {
        self.purchase_state(purchase).map(|p| p.status)
    }
}

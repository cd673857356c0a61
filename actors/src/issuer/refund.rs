//! Refund for non-anonymous holders: the unspent coins issued to `ID_CH`
//! are revoked and replaced by new coins of equal value, sealed to the
//! holder, so copies on a lost disk become worthless. The coins recorded
//! against a holder are those of its non-anonymous purchases, its refunds,
//! and its change and refresh of such coins only
//! ([`IssuerCore::self_payment_holder`]). Anonymous coins, and whatever
//! they are changed into, were never recorded against anyone and cannot be
//! refunded.

use ledger::{CoinId, Event, TxId};
use protocol::flows::issuer::{
    OpenedValidation, build_refund_answer, open_refund_request, reject_refund,
};
use protocol::wire::payment::ValidationKind;
use protocol::wire::refund::{RefundAnswer, RefundRequest};

use crate::idempotency::Begin;
use crate::issuer::core::{IssuerCore, IssuerError, reserve_reason};
use crate::issuer::decide_refund::{HeldCoin, refund_events, refundable, replacement_spec};

impl IssuerCore {
    /// Whom a self-payment's new coins are issued to, for a refund to bring
    /// them back: the payee of a change or refresh all of whose input coins
    /// are recorded as issued to it. If any input is not (bought
    /// anonymously, or received from someone else), none is recorded: the
    /// new coins would tie those coins to the holder in the log and the
    /// user index. The coins are recorded in the registry here, before the
    /// batch goes to the log, so a crash cannot leave them unrefundable; if
    /// the batch never commits, the entries name coins that never existed,
    /// which a refund skips (it revokes only coins the shards hold).
    pub(crate) fn self_payment_holder(
        &self,
        opened: &OpenedValidation,
        inputs: &[ledger::CoinBody],
        new: &[ledger::CoinBody],
    ) -> Result<Option<ledger::SealedIdentity>, IssuerError> {
        let self_payment = matches!(
            opened.kind,
            ValidationKind::Change | ValidationKind::Refresh
        ) && opened.id_pa == opened.id_py;
        if !self_payment
            || !self
                .registry
                .holds_all(&opened.id_py, inputs.iter().map(|c| &c.id))?
        {
            return Ok(None);
        }
        self.registry
            .add_coins(&opened.id_py, new.iter().map(|c| c.id))?;
        Ok(Some(self.sealer.seal_identity(&opened.id_py)))
    }

    /// A refund request -> the revoked serials and the replacements, or a
    /// signed refusal (nothing to refund). A repeat of the same request
    /// (same `R`) gets the same replacements.
    pub fn refund(&self, msg: &RefundRequest) -> Result<RefundAnswer, IssuerError> {
        let now = self.now();
        let opened =
            self.open_with_registered_keys(|key| open_refund_request(&self.sk_i, msg, key, now))?;
        let participant = self
            .registry
            .get(&opened.id_ch)?
            .ok_or(IssuerError::UnknownParticipant)?;
        let tx = TxId::derive(
            "vc/tx/refund",
            &[opened.id_ch.as_str().as_bytes(), opened.r.as_bytes()],
        );
        let answer = |revoked: Vec<CoinId>, bodies: Vec<ledger::CoinBody>| {
            let coins = bodies
                .into_iter()
                .map(|b| self.tagged(b))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, IssuerError>(build_refund_answer(
                &opened,
                &participant.public_key,
                &self.id_i,
                revoked,
                coins,
            )?)
        };
        match self.idempotency.begin(tx)? {
            Begin::Committed(at) => {
                let (mut revoked, mut issued) = (Vec::new(), Vec::new());
                for event in self.read_batch(at)? {
                    match event {
                        Event::CoinsRevoked { coins } => revoked = coins,
                        Event::CoinsIssued { coins, .. } => issued = coins,
                        _ => {}
                    }
                }
                return answer(revoked.iter().map(|c| c.id).collect(), issued);
            }
            Begin::InFlight => return Err(IssuerError::InFlight),
            Begin::Started => {}
        }
        let result = (|| {
            // Read lazily: the decision stops at a batch's worth.
            let held = self
                .registry
                .coins_of(&opened.id_ch)?
                .into_iter()
                .map(|id| {
                    let unspent = self.commit.get(&id);
                    HeldCoin {
                        id,
                        unspent,
                        live: unspent.is_some_and(|b| {
                            !self.past_grace(&b, now) && self.epoch_is_live(b.epoch)
                        }),
                    }
                });
            let unspent: Vec<CoinId> = match refundable(held, ledger::constants::COINS_PER_TX_MAX) {
                Ok(coins) => coins,
                Err(refusal) => {
                    return Ok(reject_refund(&self.sk_i, &opened, refusal.reason, now));
                }
            };
            let revoked = match self.commit.reserve(tx, &unspent) {
                Ok(bodies) => bodies,
                Err(e) => {
                    let (reason, _) = reserve_reason(&e);
                    return Ok(reject_refund(&self.sk_i, &opened, reason, now));
                }
            };
            // Coins of a revoked epoch come back by recoup only; checked
            // after the reservation, as for payments (`issuer::epoch_end`).
            if let Err(refusal) = self.epoch_gate(&revoked, false) {
                self.commit.abort(tx);
                return Ok(reject_refund(&self.sk_i, &opened, refusal.reason, now));
            }
            let replacements = match replacement_spec(&revoked)
                .map_err(IssuerError::from)
                .and_then(|spec| self.mint_bodies(&spec))
            {
                Ok(r) => r,
                Err(e) => {
                    self.commit.abort(tx);
                    return Err(e);
                }
            };
            let events = refund_events(
                &revoked,
                &replacements,
                self.sealer.seal_identity(&opened.id_ch),
            );
            // The replacements are recorded against the holder before the
            // batch goes to the log (as a self-payment's new coins are), so
            // a batch durable while its append reported failure leaves them
            // refundable; if it never commits, the entries name coins that
            // never existed, which a refund skips.
            if let Err(e) = self
                .registry
                .add_coins(&opened.id_ch, replacements.iter().map(|c| c.id))
            {
                self.commit.abort(tx);
                return Err(e.into());
            }
            self.commit_batch(tx, &revoked, events, replacements.clone())?;
            self.registry
                .remove_coins(&opened.id_ch, revoked.iter().map(|c| &c.id))?;
            answer(revoked.iter().map(|c| c.id).collect(), replacements)
        })();
        // Releases the claim unless it committed (see `abandon`).
        self.idempotency.abandon(tx);
        result
    }
}

//! The end of a key epoch's life: revocation (its mint key is suspected
//! compromised) with recoup, and erasure once its grace period is over.
//!
//! Both stop the epoch's coins the same way, safely against transactions
//! in flight: if it is the current epoch, the next one opens first (which
//! closes it in the log); then the epoch is marked closing (every
//! validation and card load checks the mark after it reserved its inputs,
//! see [`IssuerCore::epoch_gate`], and the commit path refuses a batch
//! issuing coins of it, whose bodies were made while it was current), the
//! issuer waits for the batches queued before the mark to reach the shards
//! (a seal of the log), then until no coin of the epoch is reserved (a refresh in flight commits or aborts; a card load in
//! doubt holds its coins until the card reports, and makes the step fail
//! with [`IssuerError::EpochInUse`], to be run again). From then on nothing
//! of the epoch can leave circulation but by the step itself.
//!
//! The closing mark lives in memory only and for the length of one step:
//! a step refused (coins still held, or any error) removes it, and the
//! epoch serves as before until the operator runs the step again. An
//! operator command that fails has changed nothing: the log is the one
//! truth of an epoch's standing, so what a restart, a replica or the
//! auditor sees is what the issuer serves. A durable close would need a
//! logged event of its own and a way to lift it, and would stop honest
//! payments for as long as a card load stays in doubt (possibly days);
//! while revocation is refused the epoch stands exactly as before the
//! command, which the operator is told (409, "try again"):
//!
//! - **revocation** logs `EpochRevoked { owed }`, `owed` being the value of
//!   the epoch's coins still unspent in the shards. Afterwards a coin of the
//!   epoch is accepted only by a recoup (a holder's own refresh or redeem
//!   of coins all of revoked epochs), and the recoups of an epoch never pay
//!   out more than `owed` (checked before the commit, asserted when the
//!   state applies it). Forged coins minted with a stolen key are not in
//!   the shards (never issued), so they are refused, whatever their tag.
//! - **erasure** (after `grace_ends_at`) catches the coin-status projection
//!   up with the log, plans the erasure of the epoch's spent and revoked
//!   coins as of the record it has applied (`through`) and the forfeiture
//!   of its coins still unspent, logs `EpochErased { through, n_coins,
//!   value, digest }` and `FloatForfeited { n_coins, value, digest }` in one
//!   batch, then destroys the epoch's mint key (a crash in between: the key
//!   is destroyed at the next scheduled pass, and the log already refuses
//!   the epoch). The forfeited coins can never be presented again, so their
//!   value leaves the outstanding e-money for the issuer's breakage
//!   (`Totals::forfeited`); the shards drop them when the batch commits. A
//!   revoked epoch forfeits what its recoups still owed. The housekeeper
//!   runs it for every epoch past its grace.

use std::time::{Duration, Instant};

use ledger::sync::lock;
use ledger::{Amount, CoinBody, CoinId, KeyEpoch, Seq, Timestamp};
use protocol::wire::RejectReason;

use crate::issuer::core::{EpochEnd, IssuerCore, IssuerError};
use crate::issuer::decide::PaymentRefusal;
use crate::issuer::decide_epoch::{self, ErasureStep, RevocationStep};

/// How long an operator's revocation or erasure waits for transactions in
/// flight holding coins of the epoch.
pub const EPOCH_DRAIN_WAIT_MS: u64 = 5_000;
/// How often it looks while it waits.
const EPOCH_DRAIN_POLL_MS: u64 = 20;

/// An epoch revoked: what its recoups may still pay out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochRevocation {
    pub epoch: KeyEpoch,
    /// Value of the epoch's coins unspent when it was revoked.
    pub owed: Amount,
    /// What recoups may still pay out.
    pub still_owed: Amount,
}

/// An epoch erased: its spent coins erased through record `through`, its
/// unspent ones forfeited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochErasure {
    pub epoch: KeyEpoch,
    pub through: Seq,
    /// Spent and revoked coins erased, and their value.
    pub n_coins: u64,
    pub value: Amount,
    /// Unspent coins forfeited (out of the outstanding e-money, into the
    /// issuer's breakage), and their value.
    pub forfeited_n_coins: u64,
    pub forfeited: Amount,
}

/// How an epoch stands for a coin presented now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EpochStanding {
    Live,
    /// A revocation or erasure is under way: retry later.
    Closing,
    Revoked {
        still_owed: Amount,
    },
    Erased,
}

/// The pure gate on reserved inputs: `Ok(true)` for a recoup (every input
/// of a revoked epoch, within what each epoch still owes), `Ok(false)` for
/// inputs all of live epochs, else the refusal naming the coins at fault.
pub(crate) fn gate_inputs(
    inputs: &[CoinBody],
    standing: impl Fn(KeyEpoch) -> EpochStanding,
    recoup_allowed: bool,
) -> Result<bool, PaymentRefusal> {
    let named = |reason, pick: &dyn Fn(EpochStanding) -> bool| {
        let bad: Vec<CoinId> = inputs
            .iter()
            .filter(|c| pick(standing(c.epoch)))
            .map(|c| c.id)
            .collect();
        (!bad.is_empty()).then_some(PaymentRefusal {
            reason,
            bad_coins: bad,
        })
    };
    if let Some(r) = named(RejectReason::Expired, &|s| s == EpochStanding::Erased) {
        return Err(r);
    }
    if let Some(r) = named(RejectReason::InUse, &|s| s == EpochStanding::Closing) {
        return Err(r);
    }
    let is_revoked = |s| matches!(s, EpochStanding::Revoked { .. });
    let n_revoked = inputs
        .iter()
        .filter(|c| is_revoked(standing(c.epoch)))
        .count();
    if n_revoked == 0 {
        return Ok(false);
    }
    if (!recoup_allowed || n_revoked != inputs.len())
        && let Some(r) = named(RejectReason::EpochRevoked, &is_revoked)
    {
        return Err(r);
    }
    let mut by_epoch: std::collections::BTreeMap<KeyEpoch, u128> = Default::default();
    for c in inputs {
        *by_epoch.entry(c.epoch).or_default() += u128::from(c.value.minor_units());
    }
    for (epoch, value) in by_epoch {
        if let EpochStanding::Revoked { still_owed } = standing(epoch)
            && value > u128::from(still_owed.minor_units())
        {
            return Err(PaymentRefusal {
                reason: RejectReason::EpochRevoked,
                bad_coins: inputs
                    .iter()
                    .filter(|c| c.epoch == epoch)
                    .map(|c| c.id)
                    .collect(),
            });
        }
    }
    Ok(true)
}

/// An epoch marked closing; the mark goes with it, whatever the step's
/// outcome (an early return, an error, a panic).
struct ClosingMark<'a> {
    core: &'a IssuerCore,
    epoch: KeyEpoch,
}

impl Drop for ClosingMark<'_> {
    fn drop(&mut self) {
        // Never panics (a drop while unwinding would abort): a set of
        // epochs stays whole even if a holder of the lock panicked.
        self.core.epochs_closing.remove(self.epoch);
    }
}

impl IssuerCore {
    pub(crate) fn epoch_standing(&self, epoch: KeyEpoch) -> EpochStanding {
        if self.epochs_closing.contains(epoch) {
            return EpochStanding::Closing;
        }
        match lock(&self.state).epoch_ends.get(&epoch) {
            None => EpochStanding::Live,
            Some(EpochEnd::Revoked { still_owed, .. }) => EpochStanding::Revoked {
                still_owed: *still_owed,
            },
            Some(EpochEnd::Erased { .. }) => EpochStanding::Erased,
        }
    }

    /// The gate every flow passes once its inputs are reserved (see the
    /// module doc): `Ok(true)` for a recoup.
    pub(crate) fn epoch_gate(
        &self,
        inputs: &[CoinBody],
        recoup_allowed: bool,
    ) -> Result<bool, PaymentRefusal> {
        gate_inputs(inputs, |e| self.epoch_standing(e), recoup_allowed)
    }

    /// Whether coins of `epoch` are still accepted by ordinary flows.
    pub(crate) fn epoch_is_live(&self, epoch: KeyEpoch) -> bool {
        self.epoch_standing(epoch) == EpochStanding::Live
    }

    /// Epochs revoked or erased, as the log says.
    pub fn epoch_ends(&self) -> Vec<(KeyEpoch, EpochEnd)> {
        lock(&self.state)
            .epoch_ends
            .iter()
            .map(|(e, end)| (*e, *end))
            .collect()
    }

    /// Epochs revoked and not yet erased: those whose coins are recouped.
    pub fn revoked_epochs(&self) -> Vec<KeyEpoch> {
        lock(&self.state)
            .epoch_ends
            .iter()
            .filter(|(_, end)| matches!(end, EpochEnd::Revoked { .. }))
            .map(|(e, _)| *e)
            .collect()
    }

    /// Coins the coin-status store holds, once caught up with the log.
    pub fn coin_status_n_coins(&self) -> Result<u64, IssuerError> {
        self.coin_status.catch_up(self.store().as_ref())?;
        Ok(self.coin_status.n_coins_stored()?)
    }

    /// Marks `epoch` closing for as long as the returned guard lives (see
    /// the module doc: a step that fails leaves the epoch serving). From
    /// the mark on the commit path refuses batches issuing coins of it;
    /// the wait for the log after it lets every batch queued before the
    /// mark reach the shards, so nothing of the epoch enters them later.
    fn close_epoch(&self, epoch: KeyEpoch) -> Result<ClosingMark<'_>, IssuerError> {
        self.epochs_closing.insert(epoch);
        let mark = ClosingMark { core: self, epoch };
        self.seal_log()?;
        Ok(mark)
    }

    /// Waits (up to `wait`) until no coin of `epoch` is reserved.
    fn drain_epoch(&self, epoch: KeyEpoch, wait: Duration) -> Result<(), IssuerError> {
        let started = Instant::now();
        loop {
            let held = self.commit.epoch_holdings(epoch);
            if held.n_reserved == 0 {
                return Ok(());
            }
            if started.elapsed() >= wait {
                return Err(IssuerError::EpochInUse {
                    epoch,
                    n_reserved: held.n_reserved,
                });
            }
            std::thread::sleep(Duration::from_millis(EPOCH_DRAIN_POLL_MS));
        }
    }

    /// Revokes `epoch` (operator): from the logged `EpochRevoked` on, its
    /// coins are accepted only by recoups, up to what it owes. If it is the
    /// current epoch, the next one opens first, so recoups get coins of a
    /// good key. Revoking again changes nothing. Waits up to
    /// [`EPOCH_DRAIN_WAIT_MS`] for coins held in flight; on
    /// [`IssuerError::EpochInUse`] nothing changed (the epoch serves as
    /// before) and the operator runs it again.
    pub fn revoke_epoch(&self, epoch: KeyEpoch) -> Result<EpochRevocation, IssuerError> {
        self.revoke_epoch_within(epoch, Duration::from_millis(EPOCH_DRAIN_WAIT_MS))
    }

    /// [`IssuerCore::revoke_epoch`], waiting up to `wait` for coins held.
    pub fn revoke_epoch_within(
        &self,
        epoch: KeyEpoch,
        wait: Duration,
    ) -> Result<EpochRevocation, IssuerError> {
        let _guard = lock(&self.epoch_lock);
        let end = lock(&self.state).epoch_ends.get(&epoch).copied();
        let known = self.epoch_info(epoch).is_some();
        match decide_epoch::decide_revocation(epoch, known, end.as_ref())? {
            RevocationStep::Done(revocation) => return Ok(revocation),
            RevocationStep::Revoke => {}
        }
        if self.current_epoch().map(|(e, _)| e) == Some(epoch) {
            self.open_next_epoch_locked()?;
        }
        let closing = self.close_epoch(epoch)?;
        self.drain_epoch(epoch, wait)?;
        let held = self.commit.epoch_holdings(epoch);
        let (tx, events, owed) = decide_epoch::revocation_events(epoch, held.value_unspent_minor)?;
        let committed = self.commit_batch(tx, &[], events, Vec::new());
        drop(closing);
        committed?;
        self.seal_log()?;
        tracing::info!(%epoch, "key epoch revoked");
        Ok(EpochRevocation {
            epoch,
            owed,
            still_owed: owed,
        })
    }

    /// Erases `epoch` (operator, or the housekeeper once its grace is
    /// over): see the module doc. Erasing again changes nothing.
    pub fn erase_epoch(
        &self,
        epoch: KeyEpoch,
        wait: Duration,
    ) -> Result<EpochErasure, IssuerError> {
        let _guard = lock(&self.epoch_lock);
        let end = lock(&self.state).epoch_ends.get(&epoch).copied();
        let now = self.now();
        match decide_epoch::decide_erasure(epoch, self.epoch_info(epoch), end.as_ref(), now)? {
            ErasureStep::Done(erasure) => return Ok(erasure),
            ErasureStep::Erase => {}
        }
        // Its key is about to go: fresh coins come from the next epoch,
        // and the log closes this one (no coin of it is issued after).
        if self.current_epoch().map(|(e, _)| e) == Some(epoch) {
            self.open_next_epoch_locked()?;
        }
        let closing = self.close_epoch(epoch)?;
        let erased = self.erase_closed_epoch(epoch, now, wait, end.as_ref());
        drop(closing);
        let erased = erased?;
        self.retire_erased_keys()?;
        self.seal_log()?;
        tracing::info!(
            %epoch,
            n_coins = erased.n_coins,
            forfeited_n_coins = erased.forfeited_n_coins,
            "key epoch erased, its unspent coins forfeited"
        );
        Ok(erased)
    }

    fn erase_closed_epoch(
        &self,
        epoch: KeyEpoch,
        now: Timestamp,
        wait: Duration,
        end: Option<&EpochEnd>,
    ) -> Result<EpochErasure, IssuerError> {
        self.drain_epoch(epoch, wait)?;
        // The projection alone: the shards' retiring sets are the
        // housekeeper's (`checkpoint_coin_status`), which may run meanwhile.
        self.coin_status.catch_up(self.store().as_ref())?;
        let plan = self.coin_status_plan_erasure(epoch, now)?;
        let held = self.commit.epoch_holdings(epoch);
        let (tx, events, erasure) = decide_epoch::erasure_events(epoch, &plan, held, end)?;
        self.commit_batch(tx, &[], events, Vec::new())?;
        Ok(erasure)
    }

    /// Destroys the mint keys of erased epochs the mint still holds.
    pub(crate) fn retire_erased_keys(&self) -> Result<(), IssuerError> {
        let erased: Vec<KeyEpoch> = lock(&self.state)
            .epoch_ends
            .iter()
            .filter(|(_, end)| matches!(end, EpochEnd::Erased { .. }))
            .map(|(e, _)| *e)
            .collect();
        let held: Vec<KeyEpoch> = {
            let mint = self.mint.read().expect(ledger::sync::POISONED_LOCK);
            erased.into_iter().filter(|e| mint.has_epoch(*e)).collect()
        };
        if held.is_empty() {
            return Ok(());
        }
        let mut mint = self.mint.write().expect(ledger::sync::POISONED_LOCK);
        for epoch in held {
            if mint.has_epoch(epoch) {
                mint.retire_epoch(epoch)?;
            }
        }
        Ok(())
    }

    /// The housekeeper's pass: erases every epoch past its grace whose
    /// coins no transaction holds (one held by a card load in doubt waits
    /// for a later pass), and destroys keys of erased epochs. Returns the
    /// epochs erased.
    pub fn erase_epochs_due(&self) -> Result<Vec<EpochErasure>, IssuerError> {
        let now = self.now();
        let due: Vec<KeyEpoch> = {
            let state = lock(&self.state);
            state
                .epochs
                .iter()
                .filter(|(e, info)| {
                    now >= info.grace_ends_at
                        && !matches!(state.epoch_ends.get(e), Some(EpochEnd::Erased { .. }))
                })
                .map(|(e, _)| *e)
                .collect()
        };
        let mut done = Vec::new();
        for epoch in due {
            if self.commit.epoch_holdings(epoch).n_reserved > 0 {
                continue;
            }
            match self.erase_epoch(epoch, Duration::ZERO) {
                Ok(erased) => done.push(erased),
                Err(IssuerError::EpochInUse { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.retire_erased_keys()?;
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use ledger::Timestamp;

    use super::*;

    fn coin(epoch: u32, value: u64) -> CoinBody {
        CoinBody {
            id: CoinId::random(),
            value: Amount::from_minor(value),
            expiry: Timestamp(10),
            epoch: KeyEpoch(epoch),
        }
    }

    fn standing(e: KeyEpoch) -> EpochStanding {
        match e.0 {
            1 => EpochStanding::Erased,
            2 => EpochStanding::Revoked {
                still_owed: Amount::from_minor(300),
            },
            3 => EpochStanding::Closing,
            _ => EpochStanding::Live,
        }
    }

    // Given coins of live epochs, the gate lets them through as no recoup;
    // coins of an erased epoch are expired, of a closing one in use.
    #[test]
    fn live_coins_pass_erased_are_expired_closing_are_in_use() {
        assert_eq!(gate_inputs(&[coin(4, 1)], standing, false), Ok(false));
        let erased = coin(1, 1);
        assert_eq!(
            gate_inputs(&[erased, coin(4, 1)], standing, true).map_err(|r| r.reason),
            Err(RejectReason::Expired)
        );
        assert_eq!(
            gate_inputs(&[coin(3, 1)], standing, true).map_err(|r| r.reason),
            Err(RejectReason::InUse)
        );
    }

    // Coins of a revoked epoch pass only as a recoup of revoked coins
    // alone, and only up to what the epoch still owes.
    #[test]
    fn revoked_coins_pass_only_as_a_recoup_within_what_is_owed() {
        let revoked = [coin(2, 100), coin(2, 200)];
        assert_eq!(gate_inputs(&revoked, standing, true), Ok(true));
        let refused = gate_inputs(&revoked, standing, false).expect_err("refused");
        assert_eq!(refused.reason, RejectReason::EpochRevoked);
        assert_eq!(refused.bad_coins.len(), 2);
        let mixed = [coin(2, 100), coin(4, 100)];
        assert_eq!(
            gate_inputs(&mixed, standing, true).map_err(|r| r.bad_coins),
            Err(vec![mixed[0].id])
        );
        let too_much = [coin(2, 200), coin(2, 200)];
        assert_eq!(
            gate_inputs(&too_much, standing, true).map_err(|r| r.reason),
            Err(RejectReason::EpochRevoked)
        );
    }
}

//! The money rules of one transaction: applied to the [`LedgerState`] in
//! log order, stopping at the first broken rule. Balance and conservation
//! are checked with `ledger::conservation`, the same functions the issuer
//! asserts before it appends: there is no second rule here.

use ledger::{
    Amount, CoinBody, CoinId, ConservationError, Event, Flows, Hash32, IssueCause, KeyEpoch, Seq,
    SpendCause, Timestamp, TxId,
};

use crate::coins::{Issued, SpendRefusal};
use crate::constants::{LOG_TIME_FUTURE_SKEW_MAX_SECS, LOG_TIME_SKEW_MAX_SECS};
use crate::rule::{Rule, Violation};
use crate::state::{EpochState, LedgerState, PurchaseState};

/// Where the transaction sits in the log, and when the issuer decided it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TxContext {
    pub first_seq: Seq,
    pub tx: TxId,
    /// The transaction's time as its records carry it (`RawRecord::at`): the
    /// clock reading the issuer validated it with, so expiry, grace and
    /// erasure are judged at the time the issuer decided.
    pub now: Timestamp,
    /// The auditor's own clock when the audit started, if log time is to be
    /// checked against it.
    pub auditor_now: Option<Timestamp>,
}

impl TxContext {
    fn violation(&self, index: usize, rule: Rule, detail: impl Into<String>) -> Violation {
        Violation::new(
            Seq(self.first_seq.0.saturating_add(index as u64)),
            Some(self.tx),
            rule,
            detail,
        )
    }
}

/// SHA-256 over the erased coin ids in ascending order: the digest a
/// `SpentCoinsErased` event must carry. Sorts `ids`, then hashes them with
/// the coin-status projection's own function, the one the issuer's erasure
/// plan uses, so the two cannot drift apart.
pub fn erased_digest(ids: &mut [CoinId]) -> Hash32 {
    ids.sort_unstable();
    projections::coin_status::erasure_digest(ids.iter())
}

/// The ids of `coins` (sorted), their value in minor units and their
/// [`erased_digest`]: what an erasure or a forfeiture names of an epoch's
/// spent or unspent coins, as the replay recomputes it.
fn coins_summary(coins: impl Iterator<Item = (CoinId, Amount)>) -> (Vec<CoinId>, u128, Hash32) {
    let mut ids: Vec<CoinId> = Vec::new();
    let mut value: u128 = 0;
    for (id, v) in coins {
        ids.push(id);
        value += minor(v);
    }
    let digest = erased_digest(&mut ids);
    (ids, value, digest)
}

fn minor(a: Amount) -> u128 {
    u128::from(a.minor_units())
}

fn coins_minor(coins: &[CoinBody]) -> u128 {
    coins.iter().map(|c| minor(c.value)).sum()
}

/// Applies one whole transaction. On error the state is left part-applied:
/// the audit stops at its first violation, so nothing reads it again.
pub(crate) fn apply_transaction(
    state: &mut LedgerState,
    events: &[Event],
    ctx: TxContext,
) -> Result<Flows, Violation> {
    check_epoch_budgets(state, events, ctx)?;
    check_log_time(state, ctx)?;
    // Lifecycle events first: a batch may carry a settlement after the
    // issuance it pays for, and the order inside one atomic batch means nothing.
    for (index, event) in events.iter().enumerate() {
        apply_lifecycle(state, event, index, ctx)?;
    }
    let card_guaranteed_at = card_guarantee_time(events);
    for (index, event) in events.iter().enumerate() {
        apply_movement(state, events, event, index, ctx, card_guaranteed_at)?;
    }
    check_nothing_unspent_after_erasure(state, events, ctx)?;
    let flows = Flows::of(events);
    let last = events.len().saturating_sub(1);
    if let Err(e) = flows.check_balanced() {
        let (found, expected) = conservation_figures(&e);
        return Err(ctx
            .violation(last, Rule::Unbalanced, e.to_string())
            .amounts(found, expected));
    }
    if let Err(e) = state.totals.apply(&flows) {
        let (found, expected) = conservation_figures(&e);
        return Err(ctx
            .violation(last, Rule::ConservationBroken, e.to_string())
            .amounts(found, expected));
    }
    Ok(flows)
}

/// Log time runs forward, give or take [`LOG_TIME_SKEW_MAX_SECS`], and not
/// past the auditor's clock by more than [`LOG_TIME_FUTURE_SKEW_MAX_SECS`];
/// records the latest time seen.
fn check_log_time(state: &mut LedgerState, ctx: TxContext) -> Result<(), Violation> {
    if let Some(auditor_now) = ctx.auditor_now
        && ctx.now.0 > auditor_now.0.saturating_add(LOG_TIME_FUTURE_SKEW_MAX_SECS)
    {
        return Err(ctx.violation(
            0,
            Rule::LogTimeInFuture,
            format!(
                "transaction at {} lies {} s after the auditor's clock {}, more than the {LOG_TIME_FUTURE_SKEW_MAX_SECS} s tolerated",
                ctx.now.0,
                ctx.now.0 - auditor_now.0,
                auditor_now.0
            ),
        ));
    }
    if let Some(latest) = state.latest_at {
        if ctx.now.0.saturating_add(LOG_TIME_SKEW_MAX_SECS) < latest.0 {
            return Err(ctx.violation(
                0,
                Rule::LogTimeBackwards,
                format!(
                    "transaction at {} lies {} s before the log's latest time {}, more than the {LOG_TIME_SKEW_MAX_SECS} s tolerated",
                    ctx.now.0,
                    latest.0 - ctx.now.0,
                    latest.0
                ),
            ));
        }
        if ctx.now <= latest {
            return Ok(());
        }
    }
    state.latest_at = Some(ctx.now);
    Ok(())
}

/// When the issuer guaranteed the transaction's card load, if it is one: a
/// load can stay in doubt while the card is away and commit after the coins
/// it spends expired, so their expiry is judged at the guarantee.
fn card_guarantee_time(events: &[Event]) -> Option<Timestamp> {
    events.iter().find_map(|e| match e {
        Event::CardLoaded { guaranteed_at, .. } => Some(*guaranteed_at),
        _ => None,
    })
}

fn conservation_figures(e: &ConservationError) -> (i128, i128) {
    match e {
        ConservationError::Unbalanced {
            stocks_delta,
            real_delta,
        } => (*stocks_delta, *real_delta),
        ConservationError::NegativeOutstanding(v) | ConservationError::NegativeAggregates(v) => {
            (*v, 0)
        }
        _ => (0, 0),
    }
}

/// One epoch's share of a transaction: (epoch, issued, spent, index of the
/// last spending event).
type EpochDelta = (KeyEpoch, u128, u128, usize);

/// The epochs one transaction touches, in first-touched order: up to
/// `INLINE` on the stack, any further ones (no honest transaction has them)
/// in a Vec.
#[derive(Default)]
struct EpochDeltas {
    inline: [Option<EpochDelta>; EpochDeltas::INLINE],
    n_inline: usize,
    spill: Vec<EpochDelta>,
}

impl EpochDeltas {
    const INLINE: usize = 4;

    /// The entry of `epoch`, created (first touched at `index`) if new.
    fn slot(&mut self, epoch: KeyEpoch, index: usize) -> &mut EpochDelta {
        let n = self.n_inline;
        if let Some(i) = self.inline[..n]
            .iter()
            .position(|d| d.is_some_and(|d| d.0 == epoch))
        {
            return self.inline[i].get_or_insert((epoch, 0, 0, index));
        }
        if n < Self::INLINE && self.spill.is_empty() {
            self.n_inline += 1;
            return self.inline[n].get_or_insert((epoch, 0, 0, index));
        }
        let i = match self.spill.iter().position(|d| d.0 == epoch) {
            Some(i) => i,
            None => {
                self.spill.push((epoch, 0, 0, index));
                self.spill.len() - 1
            }
        };
        &mut self.spill[i]
    }

    fn iter(&self) -> impl Iterator<Item = &EpochDelta> {
        self.inline[..self.n_inline]
            .iter()
            .flatten()
            .chain(self.spill.iter())
    }
}

/// Per key epoch, value spent ≤ value issued, counting this transaction.
/// Checked before any per-coin rule: if it fails, the epoch's mint key is
/// compromised, and that is what the report must lead with.
fn check_epoch_budgets(
    state: &LedgerState,
    events: &[Event],
    ctx: TxContext,
) -> Result<(), Violation> {
    // Per epoch: (epoch, issued, spent, index of the last spending event).
    // A transaction touches one or two epochs: a short list on the stack
    // beats a map, and beats a fresh Vec per transaction.
    let mut delta = EpochDeltas::default();
    for (index, event) in events.iter().enumerate() {
        match event {
            Event::CoinsIssued { coins, .. } => {
                for c in coins {
                    delta.slot(c.epoch, index).1 += minor(c.value);
                }
            }
            Event::CoinsSpent { coins, .. } | Event::CoinsRevoked { coins } => {
                for c in coins {
                    let d = delta.slot(c.epoch, index);
                    d.2 += minor(c.value);
                    d.3 = index;
                }
            }
            _ => {}
        }
    }
    for &(epoch, issued, spent, index) in delta.iter() {
        if spent == 0 {
            continue;
        }
        let (before_issued, before_spent) = state
            .epochs
            .get(&epoch)
            .map(|e| (e.issued_minor, e.spent_minor))
            .unwrap_or((0, 0));
        let total_issued = before_issued + issued;
        let total_spent = before_spent + spent;
        if total_spent > total_issued {
            return Err(ctx
                .violation(
                    index,
                    Rule::EpochOverspent,
                    format!("{epoch}: more value spent than its key ever minted; the mint key of {epoch} is compromised"),
                )
                .amounts(total_spent as i128, total_issued as i128));
        }
    }
    Ok(())
}

fn apply_lifecycle(
    state: &mut LedgerState,
    event: &Event,
    index: usize,
    ctx: TxContext,
) -> Result<(), Violation> {
    match event {
        Event::PurchaseRequested {
            purchase, amount, ..
        } => {
            if state.purchases.contains_key(purchase) {
                return Err(ctx.violation(
                    index,
                    Rule::PurchaseOutOfOrder,
                    format!("purchase {purchase} requested twice"),
                ));
            }
            state
                .purchases
                .insert(*purchase, PurchaseState::Requested { amount: *amount });
        }
        Event::PurchaseSettled { purchase, amount } => match state.purchases.get(purchase) {
            Some(PurchaseState::Requested { amount: requested }) if requested == amount => {
                state
                    .purchases
                    .insert(*purchase, PurchaseState::Settled { amount: *amount });
            }
            Some(PurchaseState::Requested { amount: requested }) => {
                return Err(ctx
                    .violation(
                        index,
                        Rule::PurchaseOutOfOrder,
                        format!("purchase {purchase} settled for another amount than requested"),
                    )
                    .amounts(minor(*amount) as i128, minor(*requested) as i128));
            }
            other => {
                return Err(ctx.violation(
                    index,
                    Rule::PurchaseOutOfOrder,
                    format!(
                        "purchase {purchase} settled while {}",
                        purchase_state_name(other)
                    ),
                ));
            }
        },
        Event::PurchaseDebitReturned {
            purchase, amount, ..
        } => match state.purchases.get(purchase) {
            Some(
                PurchaseState::Settled { amount: collected }
                | PurchaseState::CoinsIssued { amount: collected },
            ) if collected == amount => {
                state
                    .purchases
                    .insert(*purchase, PurchaseState::DebitReturned);
            }
            other => {
                return Err(ctx.violation(
                    index,
                    Rule::PurchaseOutOfOrder,
                    format!(
                        "purchase {purchase}: a debit of {amount} returned while {}",
                        purchase_state_name(other)
                    ),
                ));
            }
        },
        Event::PurchaseRejected { purchase, .. } => match state.purchases.get(purchase) {
            Some(PurchaseState::Requested { .. }) => {
                state.purchases.insert(*purchase, PurchaseState::Rejected);
            }
            other => {
                return Err(ctx.violation(
                    index,
                    Rule::PurchaseOutOfOrder,
                    format!(
                        "purchase {purchase} rejected while {}",
                        purchase_state_name(other)
                    ),
                ));
            }
        },
        Event::EpochOpened {
            epoch,
            coins_expire_at,
            grace_ends_at,
        } => {
            if state.epochs.contains_key(epoch) {
                return Err(ctx.violation(
                    index,
                    Rule::EpochOutOfOrder,
                    format!("{epoch} opened twice"),
                ));
            }
            if grace_ends_at < coins_expire_at {
                return Err(ctx.violation(
                    index,
                    Rule::EpochOutOfOrder,
                    format!("{epoch}: refresh grace ends before its coins expire"),
                ));
            }
            state.epochs.insert(
                *epoch,
                EpochState {
                    coins_expire_at: *coins_expire_at,
                    grace_ends_at: *grace_ends_at,
                    closed: false,
                    issued_minor: 0,
                    spent_minor: 0,
                    n_erasures: 0,
                    revoked_still_owed: None,
                    erased: false,
                    n_forfeited: 0,
                    forfeited_minor: 0,
                    last_retired_seq: None,
                },
            );
        }
        Event::EpochClosed { epoch } => match state.epochs.get_mut(epoch) {
            Some(e) if !e.closed => e.closed = true,
            _ => {
                return Err(ctx.violation(
                    index,
                    Rule::EpochOutOfOrder,
                    format!("{epoch} closed without being open"),
                ));
            }
        },
        _ => {}
    }
    Ok(())
}

fn purchase_state_name(state: Option<&PurchaseState>) -> &'static str {
    match state {
        None => "never requested",
        Some(PurchaseState::Requested { .. }) => "only requested",
        Some(PurchaseState::Settled { .. }) => "already settled",
        Some(PurchaseState::Rejected) => "rejected",
        Some(PurchaseState::CoinsIssued { .. }) => "already paid out in coins",
        Some(PurchaseState::DebitReturned) => "its debit returned",
    }
}

fn apply_movement(
    state: &mut LedgerState,
    batch: &[Event],
    event: &Event,
    index: usize,
    ctx: TxContext,
    card_guaranteed_at: Option<Timestamp>,
) -> Result<(), Violation> {
    match event {
        Event::CoinsIssued { coins, cause, .. } => issue_coins(state, coins, *cause, index, ctx),
        Event::CoinsSpent { coins, cause } => {
            // A card load's coins are judged at its guarantee, never later
            // than the transaction itself: a guarantee dated after the
            // commit cannot make an expired coin good.
            let expiry_at = match (cause, card_guaranteed_at) {
                (SpendCause::CardLoad, Some(at)) => at.min(ctx.now),
                _ => ctx.now,
            };
            spend_coins(state, coins, Some(*cause), index, ctx, expiry_at)
        }
        Event::CoinsRevoked { coins } => spend_coins(state, coins, None, index, ctx, ctx.now),
        Event::Aggregated { balance, amount } => {
            *state.balances.entry(*balance).or_insert(0) += minor(*amount);
            Ok(())
        }
        Event::AggregateWithdrawn { balance, amount } => {
            let held = state.balances.get(balance).copied().unwrap_or(0);
            if minor(*amount) > held {
                return Err(ctx
                    .violation(
                        index,
                        Rule::AggregateOverdrawn,
                        format!("aggregate balance {balance} overdrawn"),
                    )
                    .amounts(minor(*amount) as i128, held as i128));
            }
            state.balances.insert(*balance, held - minor(*amount));
            Ok(())
        }
        Event::CardLoaded {
            lus,
            card,
            nt,
            amount,
            ..
        }
        | Event::CardUnloaded {
            lus,
            card,
            nt,
            amount,
        } => {
            if !state.card_nts.insert((*lus, *card, *nt)) {
                return Err(ctx.violation(
                    index,
                    Rule::CardNtReused,
                    format!("{lus}: card {card} transaction number {nt} committed twice"),
                ));
            }
            let server = state.card_servers.entry(*lus).or_default();
            if matches!(event, Event::CardLoaded { .. }) {
                server.loaded_minor += minor(*amount);
            } else {
                server.unloaded_minor += minor(*amount);
            }
            Ok(())
        }
        Event::Cleared {
            lus,
            period,
            paid_to_lus,
            received_from_lus,
        } => {
            let server = state.card_servers.entry(*lus).or_default();
            if !server.settled_periods.insert(*period) {
                return Err(ctx.violation(
                    index,
                    Rule::CardFloatMismatch,
                    format!("{lus}: clearing period {period} settled twice"),
                ));
            }
            server.paid_to_lus_minor += minor(*paid_to_lus);
            server.received_from_lus_minor += minor(*received_from_lus);
            // A clearing settles loads and unloads already committed: loads
            // and unloads after a period's cut-off may still be open, so the
            // float itself may have either sign, but over time the issuer
            // never pays a server more than was loaded through it, nor
            // receives more than was unloaded.
            if server.paid_to_lus_minor > server.loaded_minor {
                return Err(ctx
                    .violation(
                        index,
                        Rule::CardFloatMismatch,
                        format!("{lus}: clearings paid the server more than all loads through it"),
                    )
                    .amounts(
                        server.paid_to_lus_minor as i128,
                        server.loaded_minor as i128,
                    ));
            }
            if server.received_from_lus_minor > server.unloaded_minor {
                return Err(ctx
                    .violation(
                        index,
                        Rule::CardFloatMismatch,
                        format!(
                            "{lus}: clearings took from the server more than all unloads through it"
                        ),
                    )
                    .amounts(
                        server.received_from_lus_minor as i128,
                        server.unloaded_minor as i128,
                    ));
            }
            server.n_clearings += 1;
            Ok(())
        }
        Event::SpentCoinsErased {
            epoch,
            n_coins,
            value,
            digest,
        } => erase(state, *epoch, *n_coins, *value, digest, index, ctx),
        Event::EpochRevoked { epoch, owed } => revoke(state, *epoch, *owed, index, ctx),
        Event::EpochErased {
            epoch,
            through,
            n_coins,
            value,
            digest,
        } => {
            let seq = Seq(ctx.first_seq.0.saturating_add(index as u64));
            let bad = |detail: String| Err(ctx.violation(index, Rule::ErasureMismatch, detail));
            match state.epochs.get(epoch) {
                Some(e) if e.erased => return bad(format!("{epoch} erased twice")),
                Some(e) if e.last_retired_seq.is_some_and(|last| last > *through) => {
                    return bad(format!(
                        "{epoch}: a coin left circulation after record {}, which the erasure names as its end",
                        through.0
                    ));
                }
                _ if *through >= seq => {
                    return bad(format!(
                        "{epoch}: erasure names record {} ahead of itself",
                        through.0
                    ));
                }
                _ => {}
            }
            erase(state, *epoch, *n_coins, *value, digest, index, ctx)?;
            if let Some(e) = state.epochs.get_mut(epoch) {
                e.erased = true;
            }
            Ok(())
        }
        Event::FloatForfeited {
            epoch,
            n_coins,
            value,
            digest,
        } => forfeit(
            state,
            &batch[..index],
            Forfeiture {
                epoch: *epoch,
                n_coins: *n_coins,
                value: *value,
                digest,
            },
            index,
            ctx,
        ),
        _ => Ok(()),
    }
}

fn issue_coins(
    state: &mut LedgerState,
    coins: &[CoinBody],
    cause: IssueCause,
    index: usize,
    ctx: TxContext,
) -> Result<(), Violation> {
    if let IssueCause::Purchase(purchase) = cause {
        let total = coins_minor(coins);
        match state.purchases.get(&purchase) {
            Some(PurchaseState::Settled { amount }) if minor(*amount) == total => {
                state
                    .purchases
                    .insert(purchase, PurchaseState::CoinsIssued { amount: *amount });
            }
            Some(PurchaseState::Settled { amount }) => {
                return Err(ctx
                    .violation(
                        index,
                        Rule::CoinsWithoutMoney,
                        format!("coins for purchase {purchase} differ from its settled amount"),
                    )
                    .amounts(total as i128, minor(*amount) as i128));
            }
            other => {
                return Err(ctx
                    .violation(
                        index,
                        Rule::CoinsWithoutMoney,
                        format!(
                            "coins issued for purchase {purchase}, which is {}",
                            purchase_state_name(other)
                        ),
                    )
                    .amounts(total as i128, 0));
            }
        }
    }
    for coin in coins {
        let issued_twice = |ctx: TxContext| {
            ctx.violation(
                index,
                Rule::CoinIssuedTwice,
                format!("coin {} issued again", coin.id),
            )
        };
        // One probe of the coin table. A spent id is named as issued twice
        // before its epoch is judged, an unspent one after. (On a refusal
        // the coin may already be in the table: the audit stops there.)
        let issued = state.coins.issue(coin);
        if issued == Issued::AlreadySpent {
            return Err(issued_twice(ctx));
        }
        let Some(epoch) = state.epochs.get_mut(&coin.epoch) else {
            return Err(ctx.violation(
                index,
                Rule::EpochNotOpen,
                format!("coin {} minted under {}, never opened", coin.id, coin.epoch),
            ));
        };
        if epoch.closed {
            return Err(ctx.violation(
                index,
                Rule::EpochNotOpen,
                format!(
                    "coin {} minted under {}, already closed",
                    coin.id, coin.epoch
                ),
            ));
        }
        if issued == Issued::AlreadyUnspent {
            return Err(issued_twice(ctx));
        }
        epoch.issued_minor += minor(coin.value);
    }
    Ok(())
}

/// Spends (`cause` set) or revokes (`cause` none) coins; expiry is judged
/// at `expiry_at` (the transaction's time, or a card load's guarantee).
fn spend_coins(
    state: &mut LedgerState,
    coins: &[CoinBody],
    cause: Option<SpendCause>,
    index: usize,
    ctx: TxContext,
    expiry_at: Timestamp,
) -> Result<(), Violation> {
    for coin in coins {
        // Nothing of an erased epoch is in circulation any more: its spent
        // coins were erased, its unspent ones forfeited.
        if state.epochs.get(&coin.epoch).is_some_and(|e| e.erased) {
            return Err(ctx
                .violation(
                    index,
                    Rule::ForfeitedSpent,
                    format!(
                        "coin {} of {} left circulation after its epoch was erased and its unspent coins forfeited",
                        coin.id, coin.epoch
                    ),
                )
                .amounts(minor(coin.value) as i128, 0));
        }
        match state.coins.spend(coin) {
            Ok(()) => {}
            Err(SpendRefusal::Altered(issued)) => {
                return Err(ctx
                    .violation(
                        index,
                        Rule::CoinAltered,
                        format!("coin {} spent with another body than issued", coin.id),
                    )
                    .amounts(minor(coin.value) as i128, minor(issued.value) as i128));
            }
            Err(refusal) => {
                let (rule, what) = if refusal == SpendRefusal::AlreadySpent {
                    (Rule::DoubleSpend, "already spent or revoked")
                } else {
                    (Rule::SpentNeverIssued, "never issued (or erased)")
                };
                return Err(ctx
                    .violation(
                        index,
                        rule,
                        format!("coin {} of {} {what}", coin.id, coin.epoch),
                    )
                    .amounts(minor(coin.value) as i128, 0));
            }
        }
        check_epoch_end(state, coin, cause, index, ctx)?;
        // The coin spent has exactly the body it was issued with.
        let issued = coin;
        let now = expiry_at;
        // A recoup takes coins of a revoked epoch whatever their expiry.
        if issued.is_expired_at(now) && cause != Some(SpendCause::Recoup) {
            let past_grace = state
                .epochs
                .get(&issued.epoch)
                .map(|e| e.grace_ends_at)
                .is_none_or(|end| now > end);
            match cause {
                Some(cause) if cause != SpendCause::Refresh => {
                    return Err(ctx.violation(
                        index,
                        Rule::ExpiredSpend,
                        format!(
                            "coin {} expired at {} spent at {}",
                            coin.id, issued.expiry.0, now.0
                        ),
                    ));
                }
                Some(_) if past_grace => {
                    return Err(ctx.violation(
                        index,
                        Rule::RefreshAfterGrace,
                        format!(
                            "coin {} refreshed after the grace period of {}",
                            coin.id, issued.epoch
                        ),
                    ));
                }
                // A refund replaces what its holder could still refresh,
                // nothing more.
                None if past_grace => {
                    return Err(ctx
                        .violation(
                            index,
                            Rule::RevokedAfterGrace,
                            format!(
                                "coin {} revoked after the grace period of {}",
                                coin.id, issued.epoch
                            ),
                        )
                        .amounts(minor(coin.value) as i128, 0));
                }
                _ => {}
            }
        }
        if let Some(epoch) = state.epochs.get_mut(&issued.epoch) {
            epoch.spent_minor += minor(issued.value);
        }
    }
    Ok(())
}

/// `EpochRevoked`: `owed` must be what the epoch issued and did not see
/// spent or revoked; its recoups pay out at most that.
fn revoke(
    state: &mut LedgerState,
    epoch: KeyEpoch,
    owed: Amount,
    index: usize,
    ctx: TxContext,
) -> Result<(), Violation> {
    let bad = |detail: String| ctx.violation(index, Rule::RevocationBroken, detail);
    let Some(e) = state.epochs.get_mut(&epoch) else {
        return Err(bad(format!("revocation of unknown {epoch}")));
    };
    if e.revoked_still_owed.is_some() || e.erased {
        return Err(bad(format!("{epoch} revoked twice, or after its erasure")));
    }
    let unspent = e.issued_minor.saturating_sub(e.spent_minor);
    if minor(owed) != unspent {
        return Err(bad(format!(
            "{epoch}: the revocation owes {owed}, the replay has its unspent coins at {unspent} minor units"
        ))
        .amounts(minor(owed) as i128, unspent as i128));
    }
    e.revoked_still_owed = Some(unspent);
    Ok(())
}

/// What revocation and erasure allow of a coin leaving circulation now:
/// nothing of an erased epoch; of a revoked one a recoup only, within what
/// the epoch still owes; a recoup only of a revoked epoch. Records where
/// the epoch's coins last left circulation.
fn check_epoch_end(
    state: &mut LedgerState,
    coin: &CoinBody,
    cause: Option<SpendCause>,
    index: usize,
    ctx: TxContext,
) -> Result<(), Violation> {
    let seq = Seq(ctx.first_seq.0.saturating_add(index as u64));
    let recoup = cause == Some(SpendCause::Recoup);
    let Some(e) = state.epochs.get_mut(&coin.epoch) else {
        return Ok(());
    };
    if e.erased {
        return Err(ctx.violation(
            index,
            Rule::ErasureMismatch,
            format!("coin {} of erased {} left circulation", coin.id, coin.epoch),
        ));
    }
    match (&mut e.revoked_still_owed, recoup) {
        (None, false) => {}
        (Some(still), true) if *still >= minor(coin.value) => *still -= minor(coin.value),
        (Some(still), true) => {
            return Err(ctx
                .violation(
                    index,
                    Rule::RevocationBroken,
                    format!(
                        "recoups of {} pay out more than it owed when revoked",
                        coin.epoch
                    ),
                )
                .amounts(minor(coin.value) as i128, *still as i128));
        }
        (Some(_), false) => {
            return Err(ctx.violation(
                index,
                Rule::RevocationBroken,
                format!(
                    "coin {} of revoked {} left circulation other than by recoup",
                    coin.id, coin.epoch
                ),
            ));
        }
        (None, true) => {
            return Err(ctx.violation(
                index,
                Rule::RevocationBroken,
                format!(
                    "coin {} recouped, but {} is not revoked",
                    coin.id, coin.epoch
                ),
            ));
        }
    }
    e.last_retired_seq = Some(seq);
    Ok(())
}

/// What a `FloatForfeited` claims.
struct Forfeiture<'a> {
    epoch: KeyEpoch,
    n_coins: u64,
    value: Amount,
    digest: &'a Hash32,
}

/// `FloatForfeited`: it follows its epoch's `EpochErased` in the same batch
/// (`before`: the batch's events before it), once, and names exactly the
/// epoch's coins unspent in the replay (count, value, digest over the ids
/// ascending); a revoked epoch forfeits exactly what its recoups still
/// owed. The coins are forgotten: nothing of the epoch may be presented
/// again ([`Rule::ForfeitedSpent`]).
fn forfeit(
    state: &mut LedgerState,
    before: &[Event],
    claim: Forfeiture<'_>,
    index: usize,
    ctx: TxContext,
) -> Result<(), Violation> {
    let Forfeiture {
        epoch,
        n_coins,
        value,
        digest,
    } = claim;
    let bad = |detail: String| ctx.violation(index, Rule::ForfeitureMismatch, detail);
    let erased_here = before
        .iter()
        .any(|e| matches!(e, Event::EpochErased { epoch: erased, .. } if *erased == epoch));
    let Some(e) = state.epochs.get(&epoch) else {
        return Err(bad(format!("forfeiture of unknown {epoch}")));
    };
    if !erased_here || !e.erased {
        return Err(bad(format!(
            "{epoch}: a forfeiture outside the batch that erases the epoch"
        )));
    }
    // An epoch is erased once, so a second forfeiture can only be in the
    // same batch.
    let forfeited_before = before
        .iter()
        .any(|e| matches!(e, Event::FloatForfeited { epoch: other, .. } if *other == epoch));
    if forfeited_before {
        return Err(bad(format!("{epoch} forfeited twice")));
    }
    let (ids, replay_value, replay_digest) = coins_summary(state.coins.unspent_of_epoch(epoch));
    let replay_n = ids.len() as u64;
    if n_coins != replay_n || minor(value) != replay_value || *digest != replay_digest {
        return Err(bad(format!(
            "{epoch}: the forfeiture names {n_coins} coins, the replay has {replay_n} unspent (or their ids differ)"
        ))
        .amounts(minor(value) as i128, replay_value as i128));
    }
    if let Some(still_owed) = e.revoked_still_owed
        && still_owed != replay_value
    {
        return Err(bad(format!(
            "{epoch}: revoked, it forfeits other than what its recoups still owed"
        ))
        .amounts(replay_value as i128, still_owed as i128));
    }
    state.coins.forget(&ids);
    if let Some(e) = state.epochs.get_mut(&epoch) {
        e.n_forfeited = replay_n;
        e.forfeited_minor = replay_value;
    }
    Ok(())
}

/// An epoch erased by this transaction keeps no coin unspent: what was
/// unspent at its erasure is forfeited in the same batch. (An erasure's
/// transaction is small and rare, so the scan of the coin table is paid
/// once per epoch.)
fn check_nothing_unspent_after_erasure(
    state: &LedgerState,
    events: &[Event],
    ctx: TxContext,
) -> Result<(), Violation> {
    for (index, event) in events.iter().enumerate() {
        let Event::EpochErased { epoch, .. } = event else {
            continue;
        };
        let (n_left, value_left) = state
            .coins
            .unspent_of_epoch(*epoch)
            .fold((0u64, 0u128), |(n, v), (_, value)| {
                (n + 1, v + minor(value))
            });
        if n_left > 0 {
            return Err(ctx
                .violation(
                    index,
                    Rule::ForfeitureMismatch,
                    format!(
                        "{epoch} erased with {n_left} coins still unspent and not forfeited: they would stay outstanding for ever"
                    ),
                )
                .amounts(0, value_left as i128));
        }
    }
    Ok(())
}

fn erase(
    state: &mut LedgerState,
    epoch: KeyEpoch,
    n_coins: u64,
    value: Amount,
    digest: &Hash32,
    index: usize,
    ctx: TxContext,
) -> Result<(), Violation> {
    let Some(epoch_state) = state.epochs.get(&epoch) else {
        return Err(ctx.violation(
            index,
            Rule::ErasureMismatch,
            format!("erasure of unknown {epoch}"),
        ));
    };
    // The issuer plans an erasure only once `now >= grace_ends_at`.
    if ctx.now < epoch_state.grace_ends_at {
        return Err(ctx.violation(
            index,
            Rule::ErasureMismatch,
            format!("{epoch} erased before its grace period ended"),
        ));
    }
    let (ids, replay_value, replay_digest) = coins_summary(state.coins.spent_of_epoch(epoch));
    let replay_n = ids.len() as u64;
    if n_coins > replay_n || minor(value) > replay_value {
        return Err(ctx
            .violation(
                index,
                Rule::ErasedUnspent,
                format!("{epoch}: erasure names {n_coins} coins, the replay has {replay_n} spent"),
            )
            .amounts(minor(value) as i128, replay_value as i128));
    }
    if n_coins != replay_n || minor(value) != replay_value || *digest != replay_digest {
        return Err(ctx
            .violation(
                index,
                Rule::ErasureMismatch,
                format!("{epoch}: erased coins differ from the spent coins of the replay"),
            )
            .amounts(minor(value) as i128, replay_value as i128));
    }
    state.coins.forget(&ids);
    if let Some(e) = state.epochs.get_mut(&epoch) {
        e.n_erasures += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Given a state, when one transaction is applied, then which rule breaks.

    use ledger::{
        BalanceId, CardId, LusId, PaymentOption, PurchaseId, SealedBankAccount, Timestamp,
    };

    use super::*;

    const EXPIRY: Timestamp = Timestamp(1_000);
    const GRACE_END: Timestamp = Timestamp(2_000);

    /// A time before any coin of these tests expires.
    const EARLY: Timestamp = Timestamp(500);

    /// A transaction at `now`, or at [`EARLY`] for rules that time does not
    /// touch.
    fn ctx(now: Option<u64>) -> TxContext {
        TxContext {
            first_seq: Seq(10),
            tx: TxId::from_bytes([1; 16]),
            now: now.map_or(EARLY, Timestamp),
            auditor_now: None,
        }
    }

    fn coin(n: u8, minor: u64) -> CoinBody {
        CoinBody {
            id: CoinId::from_bytes([n; 16]),
            value: Amount::from_minor(minor),
            expiry: EXPIRY,
            epoch: KeyEpoch(1),
        }
    }

    fn account() -> SealedBankAccount {
        SealedBankAccount::from_sealed_bytes(vec![1]).expect("short")
    }

    fn opened() -> LedgerState {
        let mut state = LedgerState::default();
        apply_transaction(
            &mut state,
            &[Event::EpochOpened {
                epoch: KeyEpoch(1),
                coins_expire_at: EXPIRY,
                grace_ends_at: GRACE_END,
            }],
            ctx(None),
        )
        .expect("epoch opens");
        state
    }

    fn with_bought(coins: &[CoinBody]) -> LedgerState {
        let mut state = opened();
        let purchase = PurchaseId::from_bytes([9; 16]);
        let amount = Amount::from_minor(coins.iter().map(|c| c.value.minor_units()).sum());
        let spec = ledger::CoinSpec::new(vec![ledger::Denomination {
            count: 1,
            value: amount,
        }])
        .expect("spec");
        let request = Event::PurchaseRequested {
            purchase,
            purchaser: ledger::SealedIdentity::from_sealed_bytes(vec![2]).expect("short"),
            bank_account: account(),
            spec,
            amount,
            anonymous: true,
            authorization: ledger::SignatureBytes(vec![0; 8]),
        };
        apply_transaction(&mut state, &[request], ctx(None)).expect("request");
        let settle = [
            Event::CoinsIssued {
                coins: coins.to_vec(),
                holder: None,
                cause: IssueCause::Purchase(purchase),
            },
            Event::PurchaseSettled { purchase, amount },
        ];
        apply_transaction(&mut state, &settle, ctx(None))
            .expect("settlement, in any order inside its batch");
        state
    }

    fn rule_of(state: &mut LedgerState, events: &[Event], now: Option<u64>) -> Rule {
        match apply_transaction(state, events, ctx(now)) {
            Ok(_) => panic!("expected a violation for {events:?}"),
            Err(v) => v.rule,
        }
    }

    fn redeem(coins: Vec<CoinBody>, cause: SpendCause) -> Vec<Event> {
        let amount = Amount::from_minor(coins.iter().map(|c| c.value.minor_units()).sum());
        vec![
            Event::CoinsSpent { coins, cause },
            Event::Redeemed {
                amount,
                bank_account: account(),
            },
        ]
    }

    #[test]
    fn spending_more_than_an_epoch_minted_is_an_emergency_before_anything_else() {
        let mut state = with_bought(&[coin(1, 100)]);
        // A forged coin of the same epoch, larger than all it ever minted.
        let forged = coin(2, 500);
        assert_eq!(
            rule_of(&mut state, &redeem(vec![forged], SpendCause::Redeem), None),
            Rule::EpochOverspent
        );
        assert!(Rule::EpochOverspent.is_emergency());
    }

    // Given an epoch revoked with its two coins (3.00) unspent, a revocation
    // owing another amount, a spend other than a recoup, and a recoup of a
    // live epoch each break the revocation rule; recoups within what is
    // owed hold, expired or not.
    #[test]
    fn a_revoked_epoch_pays_recoups_only_and_only_what_it_owed() {
        let coins = [coin(1, 100), coin(2, 200)];
        let revoke = |owed| Event::EpochRevoked {
            epoch: KeyEpoch(1),
            owed: Amount::from_minor(owed),
        };
        let mut state = with_bought(&coins);
        assert_eq!(
            rule_of(&mut state, &[revoke(250)], None),
            Rule::RevocationBroken
        );
        let mut state = with_bought(&coins);
        assert_eq!(
            rule_of(
                &mut state,
                &redeem(vec![coins[0]], SpendCause::Recoup),
                None
            ),
            Rule::RevocationBroken
        );
        let mut state = with_bought(&coins);
        apply_transaction(&mut state, &[revoke(300)], ctx(None)).expect("revoked");
        assert_eq!(
            rule_of(
                &mut state,
                &redeem(vec![coins[0]], SpendCause::Redeem),
                None
            ),
            Rule::RevocationBroken
        );
        let mut state = with_bought(&coins);
        apply_transaction(&mut state, &[revoke(300)], ctx(None)).expect("revoked");
        apply_transaction(
            &mut state,
            &redeem(coins.to_vec(), SpendCause::Recoup),
            ctx(Some(EXPIRY.0 + 10)),
        )
        .expect("recoups of expired coins within what is owed");
        assert_eq!(
            state.epochs[&KeyEpoch(1)].revoked_still_owed,
            Some(0),
            "nothing left to recoup"
        );
    }

    // An erasure names the spent coins through a record, and nothing of
    // the epoch may leave circulation after that record or the erasure.
    #[test]
    fn an_erasure_covers_the_spent_coins_through_its_record_and_ends_the_epoch() {
        let coins = [coin(1, 100), coin(2, 200)];
        let mut state = with_bought(&coins);
        apply_transaction(
            &mut state,
            &redeem(vec![coins[0]], SpendCause::Redeem),
            ctx(None),
        )
        .expect("spent");
        let erased = |through| Event::EpochErased {
            epoch: KeyEpoch(1),
            through: Seq(through),
            n_coins: 1,
            value: Amount::from_minor(100),
            digest: erased_digest(&mut [coins[0].id]),
        };
        // The spend was record 10; the erasure is record 20.
        let at_20 = TxContext {
            first_seq: Seq(20),
            ..ctx(Some(GRACE_END.0 + 1))
        };
        let mut ahead = state.clone();
        assert_eq!(
            apply_transaction(&mut ahead, &[erased(20)], at_20).map_err(|v| v.rule),
            Err(Rule::ErasureMismatch),
            "a through at or after its own record"
        );
        let mut early = state.clone();
        assert_eq!(
            apply_transaction(&mut early, &[erased(9)], at_20).map_err(|v| v.rule),
            Err(Rule::ErasureMismatch),
            "a coin left circulation after through"
        );
        let forfeited = forfeiture(&[coins[1]]);
        apply_transaction(&mut state, &[erased(10), forfeited], at_20).expect("erased");
        assert_eq!(
            rule_of(
                &mut state,
                &redeem(vec![coins[1]], SpendCause::Refresh),
                Some(GRACE_END.0 + 2)
            ),
            Rule::ForfeitedSpent
        );
    }

    /// The `FloatForfeited` naming `coins` (of epoch 1), honestly figured.
    fn forfeiture(coins: &[CoinBody]) -> Event {
        Event::FloatForfeited {
            epoch: KeyEpoch(1),
            n_coins: coins.len() as u64,
            value: Amount::from_minor(coins.iter().map(|c| c.value.minor_units()).sum()),
            digest: erased_digest(&mut coins.iter().map(|c| c.id).collect::<Vec<_>>()),
        }
    }

    /// Epoch 1 with coins 1 (1.00, spent) and 2 and 3 (2.00 and 0.50,
    /// unspent), and the `EpochErased` of its spent coin, at record 20.
    fn spent_one_of_three() -> (LedgerState, [CoinBody; 3], Event, TxContext) {
        let coins = [coin(1, 100), coin(2, 200), coin(3, 50)];
        let mut state = with_bought(&coins);
        apply_transaction(
            &mut state,
            &redeem(vec![coins[0]], SpendCause::Redeem),
            ctx(None),
        )
        .expect("spent");
        let erased = Event::EpochErased {
            epoch: KeyEpoch(1),
            through: Seq(10),
            n_coins: 1,
            value: Amount::from_minor(100),
            digest: erased_digest(&mut [coins[0].id]),
        };
        let at_20 = TxContext {
            first_seq: Seq(20),
            ..ctx(Some(GRACE_END.0 + 1))
        };
        (state, coins, erased, at_20)
    }

    // Given an epoch erased with 2.50 unspent, the honest forfeiture
    // moves it from outstanding to the forfeited total, and the coins
    // can never be spent, revoked or recouped again.
    #[test]
    fn an_erasure_forfeits_the_unspent_coins_and_nothing_of_them_returns() {
        let (mut state, coins, erased, at_20) = spent_one_of_three();
        let outstanding = state.totals.outstanding;
        apply_transaction(&mut state, &[erased, forfeiture(&coins[1..])], at_20)
            .expect("erased and forfeited");
        assert_eq!(state.totals.outstanding, outstanding - 250);
        assert_eq!(state.totals.forfeited, 250);
        state.totals.check_equation().expect("conserved");
        let epoch = &state.epochs[&KeyEpoch(1)];
        assert_eq!((epoch.n_forfeited, epoch.forfeited_minor), (2, 250));
        assert_eq!(state.coins.n_unspent(), 0);
        let later = Some(GRACE_END.0 + 2);
        for spend in [
            redeem(vec![coins[1]], SpendCause::Redeem),
            redeem(vec![coins[2]], SpendCause::Recoup),
            vec![Event::CoinsRevoked {
                coins: vec![coins[2]],
            }],
        ] {
            assert_eq!(
                rule_of(&mut state.clone(), &spend, later),
                Rule::ForfeitedSpent
            );
        }
    }

    // A forged forfeiture: a wrong value, a coin missing, a coin too many
    // (a spent one), the right figures under another digest, no
    // forfeiture at all, one outside the erasure's batch, one before the
    // erasure in its batch, and two: each is refused.
    #[test]
    fn a_forged_forfeiture_is_refused() {
        let (state, coins, erased, at_20) = spent_one_of_three();
        let with_value = |value: u64| Event::FloatForfeited {
            epoch: KeyEpoch(1),
            n_coins: 2,
            value: Amount::from_minor(value),
            digest: erased_digest(&mut [coins[1].id, coins[2].id]),
        };
        let other_digest = Event::FloatForfeited {
            epoch: KeyEpoch(1),
            n_coins: 2,
            value: Amount::from_minor(250),
            digest: erased_digest(&mut [coins[0].id, coins[2].id]),
        };
        let forged: [(&str, Vec<Event>); 7] = [
            ("a wrong value", vec![erased.clone(), with_value(200)]),
            (
                "a coin missing",
                vec![erased.clone(), forfeiture(&coins[1..2])],
            ),
            ("a coin too many", vec![erased.clone(), forfeiture(&coins)]),
            ("another digest", vec![erased.clone(), other_digest]),
            ("no forfeiture", vec![erased.clone()]),
            (
                "the forfeiture first",
                vec![forfeiture(&coins[1..]), erased.clone()],
            ),
            (
                "forfeited twice",
                vec![erased.clone(), forfeiture(&coins[1..]), forfeiture(&[])],
            ),
        ];
        for (what, events) in forged {
            let mut after = state.clone();
            assert_eq!(
                apply_transaction(&mut after, &events, at_20).map_err(|v| v.rule),
                Err(Rule::ForfeitureMismatch),
                "{what}"
            );
        }
        let mut apart = state.clone();
        apply_transaction(&mut apart, &[erased], at_20).expect_err("nothing forfeited");
        let mut erased_first = state;
        let next = TxContext {
            first_seq: Seq(30),
            ..at_20
        };
        assert_eq!(
            apply_transaction(&mut erased_first, &[forfeiture(&coins[1..])], next)
                .map_err(|v| v.rule),
            Err(Rule::ForfeitureMismatch),
            "a forfeiture in a batch of its own"
        );
    }

    // A revoked epoch, recouped in part, forfeits what it still owed when
    // it is erased.
    #[test]
    fn a_revoked_epoch_forfeits_what_it_still_owed() {
        let (mut state, coins, erased, at_20) = spent_one_of_three();
        let revoke = Event::EpochRevoked {
            epoch: KeyEpoch(1),
            owed: Amount::from_minor(250),
        };
        apply_transaction(&mut state, &[revoke], ctx(None)).expect("revoked");
        apply_transaction(
            &mut state,
            &redeem(vec![coins[2]], SpendCause::Recoup),
            ctx(None),
        )
        .expect("recouped");
        assert!(matches!(erased, Event::EpochErased { n_coins: 1, .. }));
        let erased = Event::EpochErased {
            epoch: KeyEpoch(1),
            through: Seq(10),
            n_coins: 2,
            value: Amount::from_minor(150),
            digest: erased_digest(&mut [coins[0].id, coins[2].id]),
        };
        apply_transaction(&mut state, &[erased, forfeiture(&coins[1..2])], at_20)
            .expect("forfeits the 2.00 still owed");
        assert_eq!(state.totals.forfeited, 200);
        assert_eq!(state.totals.outstanding, 0);
    }

    #[test]
    fn a_coin_never_issued_cannot_be_spent() {
        let mut state = with_bought(&[coin(1, 100)]);
        assert_eq!(
            rule_of(
                &mut state,
                &redeem(vec![coin(2, 50)], SpendCause::Redeem),
                None
            ),
            Rule::SpentNeverIssued
        );
    }

    #[test]
    fn a_coin_spent_with_another_value_is_altered() {
        let mut state = with_bought(&[coin(1, 100)]);
        assert_eq!(
            rule_of(
                &mut state,
                &redeem(vec![coin(1, 90)], SpendCause::Redeem),
                None
            ),
            Rule::CoinAltered
        );
    }

    #[test]
    fn the_same_coin_twice_in_one_transaction_is_a_double_spend() {
        let mut state = with_bought(&[coin(1, 100), coin(3, 100)]);
        assert_eq!(
            rule_of(
                &mut state,
                &redeem(vec![coin(1, 100), coin(1, 100)], SpendCause::Redeem),
                None
            ),
            Rule::DoubleSpend
        );
    }

    #[test]
    fn a_revoked_coin_cannot_be_spent() {
        let mut state = with_bought(&[coin(1, 100), coin(3, 100)]);
        let refund = [
            Event::CoinsRevoked {
                coins: vec![coin(1, 100)],
            },
            Event::CoinsIssued {
                coins: vec![coin(4, 100)],
                holder: None,
                cause: IssueCause::Refund,
            },
        ];
        apply_transaction(&mut state, &refund, ctx(None)).expect("refund balances");
        assert_eq!(
            rule_of(
                &mut state,
                &redeem(vec![coin(1, 100)], SpendCause::Redeem),
                None
            ),
            Rule::DoubleSpend
        );
    }

    #[test]
    fn a_coin_id_is_never_issued_again() {
        let mut state = with_bought(&[coin(1, 100)]);
        let change = [
            Event::CoinsSpent {
                coins: vec![coin(1, 100)],
                cause: SpendCause::Change,
            },
            Event::CoinsIssued {
                coins: vec![coin(1, 100)],
                holder: None,
                cause: IssueCause::Change,
            },
        ];
        assert_eq!(rule_of(&mut state, &change, None), Rule::CoinIssuedTwice);
    }

    #[test]
    fn coins_of_an_unopened_or_closed_epoch_are_refused() {
        let mut state = with_bought(&[coin(1, 100)]);
        let mut other_epoch = coin(5, 100);
        other_epoch.epoch = KeyEpoch(2);
        let change = |out: CoinBody| {
            [
                Event::CoinsSpent {
                    coins: vec![coin(1, 100)],
                    cause: SpendCause::Change,
                },
                Event::CoinsIssued {
                    coins: vec![out],
                    holder: None,
                    cause: IssueCause::Change,
                },
            ]
        };
        assert_eq!(
            rule_of(&mut state.clone(), &change(other_epoch), None),
            Rule::EpochNotOpen
        );
        apply_transaction(
            &mut state,
            &[Event::EpochClosed { epoch: KeyEpoch(1) }],
            ctx(None),
        )
        .expect("close");
        assert_eq!(
            rule_of(&mut state, &change(coin(6, 100)), None),
            Rule::EpochNotOpen
        );
    }

    #[test]
    fn an_expired_coin_is_spent_only_by_refresh_within_the_grace_period() {
        let state = with_bought(&[coin(1, 100)]);
        let payment = redeem(
            vec![coin(1, 100)],
            SpendCause::Payment(PaymentOption::Redeem),
        );
        assert_eq!(
            rule_of(&mut state.clone(), &payment, Some(EXPIRY.0)),
            Rule::ExpiredSpend
        );
        apply_transaction(&mut state.clone(), &payment, ctx(Some(EXPIRY.0 - 1)))
            .expect("before expiry a payment is fine");
        let refresh = [
            Event::CoinsSpent {
                coins: vec![coin(1, 100)],
                cause: SpendCause::Refresh,
            },
            Event::CoinsIssued {
                coins: vec![coin(7, 100)],
                holder: None,
                cause: IssueCause::Refresh,
            },
        ];
        apply_transaction(&mut state.clone(), &refresh, ctx(Some(GRACE_END.0)))
            .expect("refresh within the grace period");
        assert_eq!(
            rule_of(&mut state.clone(), &refresh, Some(GRACE_END.0 + 1)),
            Rule::RefreshAfterGrace
        );
    }

    #[test]
    fn a_refund_revokes_an_expired_coin_only_within_the_grace_period() {
        let state = with_bought(&[coin(1, 100)]);
        let refund = [
            Event::CoinsRevoked {
                coins: vec![coin(1, 100)],
            },
            Event::CoinsIssued {
                coins: vec![coin(7, 100)],
                holder: None,
                cause: IssueCause::Refund,
            },
        ];
        apply_transaction(&mut state.clone(), &refund, ctx(Some(EXPIRY.0 - 1)))
            .expect("a live coin is refunded");
        apply_transaction(&mut state.clone(), &refund, ctx(Some(GRACE_END.0)))
            .expect("an expired coin within its grace is refunded");
        assert_eq!(
            rule_of(&mut state.clone(), &refund, Some(GRACE_END.0 + 1)),
            Rule::RevokedAfterGrace
        );
    }

    #[test]
    fn a_card_load_guaranteed_before_its_coins_expired_may_commit_after() {
        let state = with_bought(&[coin(1, 100)]);
        let load = |guaranteed_at: Timestamp| {
            [
                Event::CoinsSpent {
                    coins: vec![coin(1, 100)],
                    cause: SpendCause::CardLoad,
                },
                Event::CardLoaded {
                    lus: LusId(1),
                    card: CardId::from_bytes([1; 8]),
                    nt: 1,
                    amount: Amount::from_minor(100),
                    guaranteed_at,
                },
            ]
        };
        // Guaranteed a second before expiry, in doubt until long after it.
        let in_time = load(Timestamp(EXPIRY.0 - 1));
        apply_transaction(&mut state.clone(), &in_time, ctx(Some(GRACE_END.0 + 50)))
            .expect("a load guaranteed in time commits whenever the card returns");
        // Guaranteed at expiry: too late, whenever it commits.
        assert_eq!(
            rule_of(&mut state.clone(), &load(EXPIRY), Some(EXPIRY.0 + 5)),
            Rule::ExpiredSpend
        );
        // A guarantee dated after its own commit counts as the commit: it
        // cannot make a coin that expired by then good.
        let future = load(Timestamp(EXPIRY.0 - 1));
        apply_transaction(&mut state.clone(), &future, ctx(Some(EXPIRY.0 - 10)))
            .expect("before expiry either way");
        assert_eq!(
            rule_of(
                &mut state.clone(),
                &load(Timestamp(EXPIRY.0 + 100)),
                Some(EXPIRY.0)
            ),
            Rule::ExpiredSpend
        );
    }

    #[test]
    fn coins_need_a_settled_purchase_of_the_same_amount() {
        let mut state = opened();
        let purchase = PurchaseId::from_bytes([8; 16]);
        let amount = Amount::from_minor(100);
        let spec = ledger::CoinSpec::new(vec![ledger::Denomination {
            count: 1,
            value: amount,
        }])
        .expect("spec");
        let request = Event::PurchaseRequested {
            purchase,
            purchaser: ledger::SealedIdentity::from_sealed_bytes(vec![2]).expect("short"),
            bank_account: account(),
            spec,
            amount,
            anonymous: true,
            authorization: ledger::SignatureBytes(vec![0; 8]),
        };
        apply_transaction(&mut state, &[request], ctx(None)).expect("request");
        let more_coins_than_money = [
            Event::PurchaseSettled { purchase, amount },
            Event::CoinsIssued {
                coins: vec![coin(1, 100), coin(2, 100)],
                holder: None,
                cause: IssueCause::Purchase(purchase),
            },
        ];
        let v = apply_transaction(&mut state.clone(), &more_coins_than_money, ctx(None))
            .expect_err("coins without money");
        assert_eq!(v.rule, Rule::CoinsWithoutMoney);
        assert_eq!(
            v.amounts.map(|a| (a.found_minor, a.expected_minor)),
            Some((200, 100))
        );
        let settled_for_more = [Event::PurchaseSettled {
            purchase,
            amount: Amount::from_minor(150),
        }];
        assert_eq!(
            rule_of(&mut state.clone(), &settled_for_more, None),
            Rule::PurchaseOutOfOrder
        );
        apply_transaction(
            &mut state,
            &[Event::PurchaseRejected {
                purchase,
                reason: ledger::BankRejection::AccountClosed,
            }],
            ctx(None),
        )
        .expect("rejected");
        let after_rejection = [Event::CoinsIssued {
            coins: vec![coin(3, 100)],
            holder: None,
            cause: IssueCause::Purchase(purchase),
        }];
        assert_eq!(
            rule_of(&mut state, &after_rejection, None),
            Rule::CoinsWithoutMoney
        );
    }

    #[test]
    fn epochs_open_once_with_grace_after_expiry() {
        let mut state = opened();
        let again = [Event::EpochOpened {
            epoch: KeyEpoch(1),
            coins_expire_at: EXPIRY,
            grace_ends_at: GRACE_END,
        }];
        assert_eq!(rule_of(&mut state, &again, None), Rule::EpochOutOfOrder);
        let backwards = [Event::EpochOpened {
            epoch: KeyEpoch(3),
            coins_expire_at: GRACE_END,
            grace_ends_at: EXPIRY,
        }];
        assert_eq!(
            rule_of(&mut opened(), &backwards, None),
            Rule::EpochOutOfOrder
        );
    }

    #[test]
    fn log_time_may_step_back_within_the_skew_but_no_further() {
        let mut state = opened();
        let closed = [Event::EpochClosed { epoch: KeyEpoch(1) }];
        let t = 10_000;
        apply_transaction(&mut state, &[], ctx(Some(t))).expect("an empty transaction");
        // A batch validated a moment before the last one landed after it.
        apply_transaction(
            &mut state.clone(),
            &closed,
            ctx(Some(t - LOG_TIME_SKEW_MAX_SECS)),
        )
        .expect("within the skew");
        assert_eq!(
            rule_of(
                &mut state.clone(),
                &closed,
                Some(t - LOG_TIME_SKEW_MAX_SECS - 1)
            ),
            Rule::LogTimeBackwards
        );
        // The latest time is a high-water mark: a step back does not lower it.
        apply_transaction(&mut state, &[], ctx(Some(t - 30))).expect("within the skew");
        assert_eq!(state.latest_at, Some(Timestamp(t)));
        assert_eq!(
            rule_of(&mut state, &closed, Some(t - LOG_TIME_SKEW_MAX_SECS - 1)),
            Rule::LogTimeBackwards
        );
    }

    #[test]
    fn epoch_deltas_keep_every_epoch_once_in_first_touched_order_past_the_inline_ones() {
        let mut deltas = EpochDeltas::default();
        let epochs = [3, 1, 4, 5, 9, 2, 6];
        for round in 0..2u128 {
            for (index, &e) in epochs.iter().enumerate() {
                deltas.slot(KeyEpoch(e), index).1 += 10 + round;
            }
        }
        let seen: Vec<(u32, u128, usize)> = deltas.iter().map(|d| (d.0.0, d.1, d.3)).collect();
        let expected: Vec<(u32, u128, usize)> = epochs
            .iter()
            .enumerate()
            .map(|(index, &e)| (e, 21, index))
            .collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn log_time_may_lead_the_auditors_clock_within_the_skew_but_no_further() {
        let auditor_now = 10_000;
        let at = |t: u64| TxContext {
            auditor_now: Some(Timestamp(auditor_now)),
            ..ctx(Some(t))
        };
        apply_transaction(
            &mut opened(),
            &[],
            at(auditor_now + LOG_TIME_FUTURE_SKEW_MAX_SECS),
        )
        .expect("within the skew");
        let found = apply_transaction(
            &mut opened(),
            &[],
            at(auditor_now + LOG_TIME_FUTURE_SKEW_MAX_SECS + 1),
        )
        .expect_err("dated in the future");
        assert_eq!(found.rule, Rule::LogTimeInFuture);
        // Without the auditor's clock the same transaction is not judged so.
        apply_transaction(
            &mut opened(),
            &[],
            ctx(Some(auditor_now + LOG_TIME_FUTURE_SKEW_MAX_SECS + 1)),
        )
        .expect("no clock given");
    }

    #[test]
    fn an_erasure_must_name_exactly_the_spent_coins() {
        let mut state = with_bought(&[coin(1, 100), coin(2, 50), coin(3, 25)]);
        apply_transaction(
            &mut state,
            &redeem(vec![coin(2, 50), coin(1, 100)], SpendCause::Redeem),
            ctx(None),
        )
        .expect("redeem");
        let erasure = |n_coins: u64, minor: u64, ids: &mut [CoinId]| {
            [Event::SpentCoinsErased {
                epoch: KeyEpoch(1),
                n_coins,
                value: Amount::from_minor(minor),
                digest: erased_digest(ids),
            }]
        };
        let with_unspent = erasure(3, 175, &mut [coin(1, 0).id, coin(2, 0).id, coin(3, 0).id]);
        assert_eq!(
            rule_of(&mut state.clone(), &with_unspent, Some(GRACE_END.0)),
            Rule::ErasedUnspent
        );
        let wrong_coin = erasure(2, 150, &mut [coin(1, 0).id, coin(3, 0).id]);
        assert_eq!(
            rule_of(&mut state.clone(), &wrong_coin, Some(GRACE_END.0)),
            Rule::ErasureMismatch
        );
        let early = erasure(2, 150, &mut [coin(2, 0).id, coin(1, 0).id]);
        assert_eq!(
            rule_of(&mut state.clone(), &early, Some(GRACE_END.0 - 1)),
            Rule::ErasureMismatch
        );
        apply_transaction(&mut state, &early, ctx(Some(GRACE_END.0))).expect("exact erasure");
        assert_eq!(state.coins.spent_of_epoch(coin(1, 0).epoch).count(), 0);
        assert!(!state.coins.contains(&coin(1, 0).id), "erased");
        assert_eq!(state.coins.n_unspent(), 1);
    }

    #[test]
    fn an_aggregate_balance_cannot_be_overdrawn() {
        let mut state = with_bought(&[coin(1, 100)]);
        let balance = BalanceId::from_bytes([4; 16]);
        apply_transaction(
            &mut state,
            &[
                Event::CoinsSpent {
                    coins: vec![coin(1, 100)],
                    cause: SpendCause::Payment(PaymentOption::Aggregate),
                },
                Event::Aggregated {
                    balance,
                    amount: Amount::from_minor(100),
                },
            ],
            ctx(None),
        )
        .expect("aggregate");
        let other = BalanceId::from_bytes([5; 16]);
        let withdraw = |balance| {
            [
                Event::AggregateWithdrawn {
                    balance,
                    amount: Amount::from_minor(60),
                },
                Event::Redeemed {
                    amount: Amount::from_minor(60),
                    bank_account: account(),
                },
            ]
        };
        // The total of all balances would cover it; this balance does not.
        assert_eq!(
            rule_of(&mut state.clone(), &withdraw(other), None),
            Rule::AggregateOverdrawn
        );
        apply_transaction(&mut state, &withdraw(balance), ctx(None)).expect("within the balance");
    }

    #[test]
    fn card_transaction_numbers_are_used_once_and_clearings_settle_no_more_than_was_moved() {
        let mut state = with_bought(&[coin(1, 100), coin(2, 100)]);
        let (lus, card) = (LusId(1), CardId::from_bytes([1; 8]));
        let load = |c: CoinBody, nt| {
            [
                Event::CoinsSpent {
                    coins: vec![c],
                    cause: SpendCause::CardLoad,
                },
                Event::CardLoaded {
                    lus,
                    card,
                    nt,
                    amount: c.value,
                    guaranteed_at: EARLY,
                },
            ]
        };
        apply_transaction(&mut state, &load(coin(1, 100), 1), ctx(None)).expect("load");
        assert_eq!(
            rule_of(&mut state.clone(), &load(coin(2, 100), 1), None),
            Rule::CardNtReused
        );
        let clear = |paid| {
            [Event::Cleared {
                lus,
                period: 1,
                paid_to_lus: Amount::from_minor(paid),
                received_from_lus: Amount::ZERO,
            }]
        };
        assert_eq!(
            rule_of(&mut state.clone(), &clear(150), None),
            Rule::CardFloatMismatch
        );
        apply_transaction(&mut state, &clear(100), ctx(None)).expect("clears the net position");
        assert_eq!(
            state.card_servers.get(&lus).map(|s| s.float_minor()),
            Some(0)
        );
    }

    #[test]
    fn an_unbalanced_transaction_is_named_with_both_sides() {
        let mut state = with_bought(&[coin(1, 100)]);
        let short_redeem = [
            Event::CoinsSpent {
                coins: vec![coin(1, 100)],
                cause: SpendCause::Redeem,
            },
            Event::Redeemed {
                amount: Amount::from_minor(130),
                bank_account: account(),
            },
        ];
        let v = apply_transaction(&mut state, &short_redeem, ctx(None)).expect_err("unbalanced");
        assert_eq!(v.rule, Rule::Unbalanced);
        assert_eq!(
            v.amounts.map(|a| (a.found_minor, a.expected_minor)),
            Some((-100, -130))
        );
        assert_eq!(v.seq, Seq(11));
    }

    #[test]
    fn totals_that_disagree_with_the_coins_break_the_conservation_equation() {
        // The per-coin rules keep the stocks consistent on their own; the
        // equation is the paired check that catches a state that is not,
        // e.g. one resumed from a doctored checkpoint file.
        let mut state = with_bought(&[coin(1, 100)]);
        state.totals.outstanding = 0;
        state.totals.real_in = 0;
        let v = apply_transaction(
            &mut state,
            &redeem(vec![coin(1, 100)], SpendCause::Redeem),
            ctx(None),
        )
        .expect_err("outstanding would go negative");
        assert_eq!(v.rule, Rule::ConservationBroken);
        assert_eq!(v.amounts.map(|a| a.found_minor), Some(-100));
    }
}

//! Accounts and float: merchant aggregate balances, bank money (purchases
//! requested, settled, rejected; redemptions), outstanding e-money, the
//! float forfeited with erased epochs (the issuer's breakage), card
//! float per load/unload server, and the conservation equation of `docs/design.md`
//! computed from these stocks at any sequence number.
//!
//! The rule itself is `ledger::conservation`: every complete batch (one
//! protocol transaction) goes through [`Totals::apply`], exactly as the
//! coordinator checks it before appending and the auditor on replay. This
//! projection adds the books that explain the totals: per balance, per
//! purchase, per load/unload server. [`ConservationReport`] rebuilds the
//! equation's terms from those books and checks them with
//! [`Totals::check_equation`] and against the running totals.
//!
//! Tables: `balances` (balance id → amount), `purchases` (purchase id →
//! state, amount), `card_float` (LusId → signed minor units), and one
//! `summary` row (running totals, bank and clearing sums, the events of a
//! batch whose end has not arrived yet: catch-up may split a batch between
//! two transactions).

use ledger::{
    Amount, BalanceId, ConservationError, Event, Flows, LusId, PurchaseId, Record, Seq, Totals,
};
use serde::{Deserialize, Serialize};

use crate::error::{HistoryError, ProjectionError, history};
use crate::framework::{Projection, ProjectionDb, replay_in_memory};
use crate::state::{Reader, StateRead, StateWrite, TableName};

const BALANCES: TableName = "accounts.balances";
const PURCHASES: TableName = "accounts.purchases";
const CARD_FLOAT: TableName = "accounts.card_float";
const SUMMARY: TableName = "accounts.summary";
const SUMMARY_KEY: &[u8] = b"summary";

/// Where a coin purchase's bank debit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PurchaseState {
    Pending,
    Settled,
    Rejected,
}

/// The running sums of the accounts, in minor units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountsSummary {
    /// Stocks of the conservation equation, moved one whole batch at a time
    /// by [`Totals::apply`].
    pub running: Totals,
    /// Coins issued − spent − revoked − forfeited, moved event by event.
    pub outstanding: i128,
    /// Value of the coins forfeited with their erased epochs.
    pub forfeited: u128,
    /// Purchases requested and neither settled nor rejected.
    pub bank_pending: u128,
    pub n_purchases_pending: u64,
    pub bank_settled: u128,
    pub bank_rejected: u128,
    /// Credits to redeemers' accounts.
    pub redeemed: u128,
    /// Paid to load/unload servers at clearing.
    pub cleared_to_lus: u128,
    /// Received from load/unload servers at clearing.
    pub cleared_from_lus: u128,
    /// Events of the batch in progress (its last record not applied yet).
    pub open_batch: Vec<Event>,
}

/// The conservation equation's terms as computed from the books, beside the
/// running totals the per-transaction rule produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConservationReport {
    pub as_of: Seq,
    /// From the books: outstanding coins, Σ balances, Σ card float, bank
    /// settlements + clearing receipts, redemptions + clearing payments.
    pub from_books: Totals,
    /// From applying every batch's [`Flows`] to [`Totals`].
    pub running: Totals,
    /// Whether a batch is half-applied (the report is then between transactions).
    pub mid_batch: bool,
}

impl ConservationReport {
    /// `unspent coins + aggregated balances + owed to card systems = real in − real out`,
    /// on the books, and the books agree with the running totals.
    pub fn check(&self) -> Result<(), ConservationError> {
        self.from_books.check_equation()?;
        self.running.check_equation()?;
        if self.from_books != self.running {
            let stocks = |t: &Totals| t.outstanding + t.aggregates + t.card_float + t.forfeited;
            return Err(ConservationError::Unbalanced {
                stocks_delta: stocks(&self.from_books) - stocks(&self.running),
                real_delta: (self.from_books.real_in - self.from_books.real_out)
                    - (self.running.real_in - self.running.real_out),
            });
        }
        Ok(())
    }
}

/// The accounts projection (pure apply; see [`Accounts`] for its file).
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountsModel;

/// The accounts projection in its own redb file.
pub type Accounts = ProjectionDb<AccountsModel>;

fn amount_bytes(a: Amount) -> [u8; 8] {
    a.minor_units().to_be_bytes()
}

// --- queries -------------------------------------------------------------------

pub fn summary(state: &dyn StateRead) -> Result<AccountsSummary, ProjectionError> {
    match state.get(SUMMARY, SUMMARY_KEY)? {
        None => Ok(AccountsSummary::default()),
        Some(bytes) => postcard::from_bytes(&bytes).map_err(|_| ProjectionError::Corrupt {
            table: SUMMARY,
            reason: "summary does not decode",
        }),
    }
}

/// A merchant's aggregate balance, `None` if no such balance was ever opened or credited.
pub fn balance(state: &dyn StateRead, id: &BalanceId) -> Result<Option<Amount>, ProjectionError> {
    state
        .get(BALANCES, id.as_bytes())?
        .map(|b| Ok(Amount::from_minor(Reader::new(BALANCES, &b).u64()?)))
        .transpose()
}

/// Every aggregate balance, by id.
pub fn balances(state: &dyn StateRead) -> Result<Vec<(BalanceId, Amount)>, ProjectionError> {
    let mut out = Vec::new();
    state.scan_prefix(BALANCES, &[], &mut |k, v| {
        let id: [u8; 16] = k.try_into().map_err(|_| ProjectionError::Corrupt {
            table: BALANCES,
            reason: "balance id is not 16 bytes",
        })?;
        out.push((
            BalanceId::from_bytes(id),
            Amount::from_minor(Reader::new(BALANCES, v).u64()?),
        ));
        Ok(true)
    })?;
    Ok(out)
}

/// A purchase's state and amount.
pub fn purchase(
    state: &dyn StateRead,
    id: &PurchaseId,
) -> Result<Option<(PurchaseState, Amount)>, ProjectionError> {
    let Some(bytes) = state.get(PURCHASES, id.as_bytes())? else {
        return Ok(None);
    };
    let mut r = Reader::new(PURCHASES, &bytes);
    let purchase_state = match r.u8()? {
        0 => PurchaseState::Pending,
        1 => PurchaseState::Settled,
        2 => PurchaseState::Rejected,
        _ => return Err(r.corrupt("unknown purchase state")),
    };
    Ok(Some((purchase_state, Amount::from_minor(r.u64()?))))
}

/// What the issuer owes each load/unload server (negative: the server owes the issuer).
pub fn card_float(state: &dyn StateRead) -> Result<Vec<(LusId, i128)>, ProjectionError> {
    let mut out = Vec::new();
    state.scan_prefix(CARD_FLOAT, &[], &mut |k, v| {
        let lus: [u8; 4] = k.try_into().map_err(|_| ProjectionError::Corrupt {
            table: CARD_FLOAT,
            reason: "lus id is not 4 bytes",
        })?;
        out.push((
            LusId(u32::from_be_bytes(lus)),
            Reader::new(CARD_FLOAT, v).i128()?,
        ));
        Ok(true)
    })?;
    Ok(out)
}

/// The conservation equation's terms from the books of `state`, which has
/// applied up to `as_of`.
pub fn conservation(
    state: &dyn StateRead,
    as_of: Seq,
) -> Result<ConservationReport, ProjectionError> {
    let s = summary(state)?;
    let aggregates: i128 = balances(state)?
        .iter()
        .map(|(_, a)| i128::from(a.minor_units()))
        .sum();
    let card_float_sum: i128 = card_float(state)?.iter().map(|(_, f)| *f).sum();
    let wide = |v: u128| i128::try_from(v).unwrap_or(i128::MAX);
    Ok(ConservationReport {
        as_of,
        from_books: Totals {
            outstanding: s.outstanding,
            aggregates,
            card_float: card_float_sum,
            real_in: wide(s.bank_settled) + wide(s.cleared_from_lus),
            real_out: wide(s.redeemed) + wide(s.cleared_to_lus),
            forfeited: wide(s.forfeited),
        },
        running: s.running,
        mid_batch: !s.open_batch.is_empty(),
    })
}

impl ProjectionDb<AccountsModel> {
    pub fn summary(&self) -> Result<AccountsSummary, ProjectionError> {
        self.read(summary)
    }

    pub fn balance(&self, id: &BalanceId) -> Result<Option<Amount>, ProjectionError> {
        self.read(|s| balance(s, id))
    }

    pub fn balances(&self) -> Result<Vec<(BalanceId, Amount)>, ProjectionError> {
        self.read(balances)
    }

    pub fn purchase(
        &self,
        id: &PurchaseId,
    ) -> Result<Option<(PurchaseState, Amount)>, ProjectionError> {
        self.read(|s| purchase(s, id))
    }

    pub fn card_float(&self) -> Result<Vec<(LusId, i128)>, ProjectionError> {
        self.read(card_float)
    }

    /// The conservation report at the applied sequence number.
    pub fn conservation(&self) -> Result<ConservationReport, ProjectionError> {
        // One snapshot for both the books and the sequence number.
        let as_of = self.applied_seq()?;
        self.read(|s| conservation(s, as_of))
    }
}

/// The conservation report as of record `seq`, replayed from the log in
/// memory (the file is not touched).
pub fn conservation_at(
    log: &dyn ledger::EventStore,
    seq: Seq,
) -> Result<ConservationReport, ProjectionError> {
    let (state, reached) = replay_in_memory(&AccountsModel, log, Some(seq))?;
    conservation(&state, reached)
}

// --- apply -------------------------------------------------------------------

fn put_purchase(
    state: &mut dyn StateWrite,
    id: &PurchaseId,
    purchase_state: PurchaseState,
    amount: Amount,
) -> Result<(), ProjectionError> {
    let tag = match purchase_state {
        PurchaseState::Pending => 0u8,
        PurchaseState::Settled => 1,
        PurchaseState::Rejected => 2,
    };
    let mut bytes = [0u8; 9];
    bytes[0] = tag;
    bytes[1..].copy_from_slice(&amount_bytes(amount));
    state.put(PURCHASES, id.as_bytes(), &bytes)?;
    Ok(())
}

fn add_float(state: &mut dyn StateWrite, lus: LusId, delta: i128) -> Result<(), ProjectionError> {
    let key = lus.0.to_be_bytes();
    let current = match state.get(CARD_FLOAT, &key)? {
        Some(b) => Reader::new(CARD_FLOAT, &b).i128()?,
        None => 0,
    };
    state.put(CARD_FLOAT, &key, &(current + delta).to_be_bytes())?;
    Ok(())
}

fn minor(a: &Amount) -> u128 {
    u128::from(a.minor_units())
}

fn coins_value(coins: &[ledger::CoinBody]) -> i128 {
    coins
        .iter()
        .map(|c| i128::from(c.value.minor_units()))
        .sum()
}

/// Moves the books for one event. Batch-level conservation is checked by the caller.
fn apply_event(
    state: &mut dyn StateWrite,
    s: &mut AccountsSummary,
    seq: Seq,
    event: &Event,
) -> Result<(), ProjectionError> {
    let fail = |e: HistoryError| history(seq, e);
    match event {
        Event::PurchaseRequested {
            purchase: id,
            amount,
            ..
        } => {
            if purchase(state, id)?.is_some() {
                return Err(fail(HistoryError::PurchaseRequestedTwice(*id)));
            }
            put_purchase(state, id, PurchaseState::Pending, *amount)?;
            s.bank_pending += minor(amount);
            s.n_purchases_pending += 1;
        }
        Event::PurchaseSettled { purchase: id, .. }
        | Event::PurchaseRejected { purchase: id, .. } => {
            let Some((PurchaseState::Pending, requested)) = purchase(state, id)? else {
                return Err(fail(HistoryError::PurchaseNotPending(*id)));
            };
            s.bank_pending = s.bank_pending.saturating_sub(minor(&requested));
            s.n_purchases_pending = s.n_purchases_pending.saturating_sub(1);
            if let Event::PurchaseSettled { amount, .. } = event {
                if *amount != requested {
                    return Err(fail(HistoryError::PurchaseAmountMismatch(*id)));
                }
                s.bank_settled += minor(amount);
                put_purchase(state, id, PurchaseState::Settled, requested)?;
            } else {
                s.bank_rejected += minor(&requested);
                put_purchase(state, id, PurchaseState::Rejected, requested)?;
            }
        }
        Event::CoinsIssued { coins, .. } => s.outstanding += coins_value(coins),
        Event::CoinsSpent { coins, .. } | Event::CoinsRevoked { coins } => {
            s.outstanding -= coins_value(coins)
        }
        Event::FloatForfeited { value, .. } => {
            s.outstanding -= i128::from(value.minor_units());
            s.forfeited += minor(value);
        }
        Event::Redeemed { amount, .. } => s.redeemed += minor(amount),
        Event::Enrolled {
            balance: Some(id), ..
        } => {
            if balance(state, id)?.is_none() {
                state.put(BALANCES, id.as_bytes(), &amount_bytes(Amount::ZERO))?;
            }
        }
        Event::Aggregated {
            balance: id,
            amount,
        } => {
            let current = balance(state, id)?.unwrap_or(Amount::ZERO);
            let next = current
                .checked_add(*amount)
                .map_err(|m| fail(HistoryError::Money(m)))?;
            state.put(BALANCES, id.as_bytes(), &amount_bytes(next))?;
        }
        Event::AggregateWithdrawn {
            balance: id,
            amount,
        } => {
            let current = balance(state, id)?.unwrap_or(Amount::ZERO);
            let next = current
                .checked_sub(*amount)
                .map_err(|_| fail(HistoryError::BalanceOverdrawn))?;
            state.put(BALANCES, id.as_bytes(), &amount_bytes(next))?;
        }
        Event::CardLoaded { lus, amount, .. } => add_float(state, *lus, minor(amount) as i128)?,
        Event::CardUnloaded { lus, amount, .. } => {
            add_float(state, *lus, -(minor(amount) as i128))?
        }
        Event::Cleared {
            lus,
            paid_to_lus,
            received_from_lus,
            ..
        } => {
            s.cleared_to_lus += minor(paid_to_lus);
            s.cleared_from_lus += minor(received_from_lus);
            add_float(
                state,
                *lus,
                minor(received_from_lus) as i128 - minor(paid_to_lus) as i128,
            )?;
        }
        Event::Enrolled { balance: None, .. }
        | Event::Registered { .. }
        | Event::EnrollmentRequested { .. }
        | Event::PurchaseAcknowledged { .. }
        | Event::EpochOpened { .. }
        | Event::EpochClosed { .. }
        | Event::SpentCoinsErased { .. }
        | Event::EpochRevoked { .. }
        | Event::EpochErased { .. }
        | Event::IdentityDisclosed { .. }
        | Event::EnrollmentRefused { .. }
        | Event::StandingChanged { .. }
        | Event::KeyChanged { .. }
        | Event::IdentityDisclosedUnderDualControl { .. }
        | Event::PurchaseDebitReturned { .. }
        | Event::Checkpoint(_) => {}
    }
    Ok(())
}

impl Projection for AccountsModel {
    const NAME: &'static str = "accounts";
    const TABLES: &'static [TableName] = &[BALANCES, PURCHASES, CARD_FLOAT, SUMMARY];
    /// 2: the summary and its totals carry the forfeited float.
    const FORMAT: u32 = 2;

    fn apply(&self, state: &mut dyn StateWrite, record: &Record) -> Result<(), ProjectionError> {
        let seq = record.seq;
        let mut s = summary(state)?;
        if usize::from(record.batch_index) != s.open_batch.len()
            || record.batch_index >= record.batch_len
        {
            return Err(history(
                seq,
                HistoryError::BatchOutOfOrder {
                    index: record.batch_index,
                    len: record.batch_len,
                },
            ));
        }
        apply_event(state, &mut s, seq, &record.event)?;
        s.open_batch.push(record.event.clone());
        if record.batch_index + 1 == record.batch_len {
            let flows = Flows::of(&s.open_batch);
            s.running
                .apply(&flows)
                .map_err(|e| history(seq, HistoryError::Conservation(e)))?;
            s.open_batch.clear();
        }
        let bytes = postcard::to_stdvec(&s).map_err(|_| ProjectionError::Corrupt {
            table: SUMMARY,
            reason: "summary does not encode",
        })?;
        state.put(SUMMARY, SUMMARY_KEY, &bytes)?;
        Ok(())
    }
}

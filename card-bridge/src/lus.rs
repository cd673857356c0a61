//! The load/unload server (LUS): holds the load and completion masters,
//! authorises loads and unloads (L1 → L2), commits them on S3 or rejects
//! them on a reject proof, and keeps every record in its own durable log.
//!
//! A record moves only along the transitions of [`LusState::can_become`]:
//! `Pending → {InDoubt, Committed, Rejected}`, `InDoubt → {Committed,
//! Rejected}`; `Committed` and `Rejected` are final. Every transition is one
//! durable write before anyone is told of it.
//!
//! The LUS does not believe the card. Whoever holds a card image holds its
//! keys too, so a MAC from the card proves only that the claim comes from
//! that card's image, not that it is true. Before answering an L1 the LUS
//! checks what the card says against what it knows of the card: the limit
//! and expiry set at issue ([`LoadUnloadServer::register_card`]; a card
//! never registered is held to the first limit it showed), the expiry
//! against the LUS's own clock (never the terminal's or the card's), the NT
//! (never back), the card's last transaction (never older than the last
//! this log saw of it, and with the outcome this log gave it), and the
//! balance, which may not exceed what the card's own history in this log
//! allows ([`CardStanding`]). A claim beyond that is refused with a typed
//! error, logged (`tracing`) and kept in the LUS's own log of refused claims
//! ([`LoadUnloadServer::refused_claims`]).

use std::path::Path;

use std::sync::{Arc, Mutex, MutexGuard};

use ledger::{Amount, CardId, LusId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::crypto::{MasterKey, MasterKeys, diversify, random_bytes};
use crate::records::{CardTxRecord, LoadId, Settlement};
use crate::store::{Db, StoreError, WriteBatch};
use crate::wire::{
    Direction, L1, L2, L3, Nonce, Outcome, RejectProof, reject_commitment, s2_input, s3_input,
};

const TX: &str = "lus/tx";
const LAST_NT: &str = "lus/last-nt";
const META: &str = "lus/meta";
const SETTLED: &str = "lus/settled";
const PERIOD_KEY: &[u8] = b"period";
/// What the card system knows of each card from its issue: its limit.
const CARD_TERMS: &str = "lus/card";
/// ... and its expiry, when the LUS saw the card issued.
const CARD_EXPIRY: &str = "lus/card-expiry";
/// Purchases the collection server has collected, per card (a running total).
const PURCHASES: &str = "lus/purchases";
/// Claims a card made that the LUS refused, keyed (card, NT, reason).
const REFUSED: &str = "lus/refused";

/// What the card system set for a card when it was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardTerms {
    pub balance_max: Amount,
    /// The card is not used from this time on, by the LUS's clock. `None`
    /// for a card the LUS never saw issued (only its limit is known).
    pub expiry: Option<Timestamp>,
}

/// The LUS's own clock. A card's expiry is checked against it, never
/// against a time the terminal or the card supplies (an image's expiry is
/// as editable as its balance).
#[derive(Clone)]
pub struct LusClock(Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl LusClock {
    pub fn new(now: impl Fn() -> Timestamp + Send + Sync + 'static) -> LusClock {
        LusClock(Arc::new(now))
    }

    pub fn now(&self) -> Timestamp {
        (self.0)()
    }
}

impl Default for LusClock {
    /// The wall clock.
    fn default() -> LusClock {
        LusClock::new(Timestamp::now)
    }
}

impl std::fmt::Debug for LusClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LusClock")
    }
}

/// What this LUS's log says of one card's value: the most it can hold.
/// Purchases only ever lower a card's balance, so the committed loads minus
/// the committed unloads minus the collected purchases bound it from above;
/// open loads may have reached the card already (they count), open unloads
/// may yet commit (they count against it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardStanding {
    pub loaded: Amount,
    pub unloaded: Amount,
    pub loads_open: Amount,
    pub unloads_open: Amount,
    pub purchases_collected: Amount,
}

impl CardStanding {
    /// Committed loads − committed unloads − collected purchases, in minor
    /// units: negative when the card has paid out more than was loaded.
    pub fn value_minor(&self) -> i128 {
        i128::from(self.loaded.minor_units())
            - i128::from(self.unloaded.minor_units())
            - i128::from(self.purchases_collected.minor_units())
    }

    /// The most the card can hold now, or `None` if its history is overspent.
    pub fn balance_bound(&self) -> Option<Amount> {
        let bound = self.value_minor() + i128::from(self.loads_open.minor_units())
            - i128::from(self.unloads_open.minor_units());
        u64::try_from(bound).ok().map(Amount::from_minor)
    }
}

/// A claim of a card the LUS refused, as kept in its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedClaim {
    pub card: CardId,
    pub nt: u32,
    pub direction: Direction,
    pub amount: Amount,
    pub claimed_balance: Amount,
    pub claimed_balance_max: Amount,
    /// The refusal, as [`LusError`] prints it.
    pub reason: String,
}

/// What the LUS's log says of a card's transactions: the last NT it saw,
/// and the outcome it gave the card's claimed last transaction (`None`
/// when that one is not a final load or unload of this log: a purchase, an
/// abort nobody saw, a record still open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardHistory {
    pub last_seen_nt: u32,
    pub outcome_of_claimed_last: Option<Outcome>,
}

/// Checks what an L1 claims against what the LUS knows of the card: pure,
/// so the same function decides at authorisation and in tests. `now` is
/// the LUS's own clock.
pub fn check_claim(
    terms: &CardTerms,
    standing: &CardStanding,
    history: &CardHistory,
    now: Timestamp,
    l1: &L1,
) -> Result<(), LusError> {
    if l1.nt <= history.last_seen_nt {
        return Err(LusError::Replay {
            nt: l1.nt,
            last_seen: history.last_seen_nt,
        });
    }
    if l1.balance_max != terms.balance_max {
        return Err(LusError::LimitMismatch {
            claimed: l1.balance_max,
            known: terms.balance_max,
        });
    }
    if let Some(expiry) = terms.expiry
        && now >= expiry
    {
        return Err(LusError::Expired { expiry });
    }
    // An honest card's last transaction is at least the last one this log
    // saw (the terminal resolves every open one before a new L1), and ends
    // as it ended here. A copy restored from before, its NT edited past
    // ours, still shows its old last transaction.
    if l1.last_nt < history.last_seen_nt || l1.last_nt >= l1.nt {
        return Err(LusError::HistoryMismatch {
            claimed_last_nt: l1.last_nt,
            last_seen: history.last_seen_nt,
        });
    }
    if let Some(known) = history.outcome_of_claimed_last
        && l1.last_outcome != Some(known)
    {
        return Err(LusError::HistoryMismatch {
            claimed_last_nt: l1.last_nt,
            last_seen: history.last_seen_nt,
        });
    }
    let bound = standing.balance_bound().ok_or(LusError::Overspent {
        by: Amount::from_minor(u64::try_from(-standing.value_minor()).unwrap_or(u64::MAX)),
    })?;
    if l1.balance > bound {
        return Err(LusError::BalanceBeyondHistory {
            claimed: l1.balance,
            known_max: bound,
        });
    }
    Ok(())
}

/// Where a load or unload stands at the LUS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LusState {
    /// L2 sent; waiting for S3 or a reject.
    Pending,
    /// Neither S3 nor a reject arrived: resolved when the card is presented again.
    InDoubt,
    Committed,
    Rejected,
}

impl LusState {
    /// Every allowed transition, in one place.
    pub fn can_become(self, next: LusState) -> bool {
        use LusState::*;
        matches!(
            (self, next),
            (Pending, InDoubt) | (Pending | InDoubt, Committed) | (Pending | InDoubt, Rejected)
        )
    }

    pub fn is_final(self) -> bool {
        matches!(self, LusState::Committed | LusState::Rejected)
    }
}

/// One load or unload in the LUS log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LusRecord {
    pub load_id: LoadId,
    pub l1: L1,
    pub l2: L2,
    pub state: LusState,
    /// Clearing period in which the record became final.
    pub period: Option<u32>,
    /// The card's balance after a committed transaction, from S3.
    pub new_balance: Option<Amount>,
}

impl LusRecord {
    pub fn card(&self) -> CardId {
        self.l1.card
    }

    pub fn nt(&self) -> u32 {
        self.l1.nt
    }
}

/// Why the LUS refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LusError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("mac does not verify")]
    BadMac,
    #[error("transaction number {nt} is not new for this card (last seen {last_seen})")]
    Replay { nt: u32, last_seen: u32 },
    #[error("transaction is already {0:?}")]
    AlreadyFinal(LusState),
    #[error("no such transaction")]
    UnknownTransaction,
    #[error("amount must be positive")]
    ZeroAmount,
    #[error("load would exceed the card's maximum balance")]
    OverMaximum,
    #[error("unload exceeds the card's balance")]
    InsufficientBalance,
    #[error("message does not match the pending transaction")]
    Mismatch,
    #[error("reject proof does not open the card's commitment")]
    BadRejectProof,
    #[error("the masters are of different suites")]
    MixedSuites,
    #[error("the card claims a limit of {claimed}; it was issued with {known}")]
    LimitMismatch { claimed: Amount, known: Amount },
    #[error("the card claims a balance of {claimed}; its history allows at most {known_max}")]
    BalanceBeyondHistory { claimed: Amount, known_max: Amount },
    #[error("the card's history is overspent by {by}: it has paid out more than was loaded")]
    Overspent { by: Amount },
    #[error("the card expired at {} by this server's clock", expiry.0)]
    Expired { expiry: Timestamp },
    #[error(
        "the card claims its last transaction was {claimed_last_nt} (or how it ended); this server's log says otherwise (last seen {last_seen})"
    )]
    HistoryMismatch {
        claimed_last_nt: u32,
        last_seen: u32,
    },
    #[error("card is already registered with other terms")]
    CardRegistered,
    #[error("amount overflow in the card's history")]
    Overflow,
}

impl LusError {
    /// A claim of the card that its history contradicts (as opposed to a
    /// bad message or a failure of the LUS itself).
    pub fn is_false_claim(&self) -> bool {
        matches!(
            self,
            LusError::Replay { .. }
                | LusError::LimitMismatch { .. }
                | LusError::BalanceBeyondHistory { .. }
                | LusError::Overspent { .. }
                | LusError::Expired { .. }
                | LusError::HistoryMismatch { .. }
        )
    }
}

/// The masters a LUS holds: load (S1, S2) and completion (S3). Never the
/// purchase master.
#[derive(Debug, Clone)]
pub struct LusMasters {
    pub load: MasterKey,
    pub completion: MasterKey,
}

impl From<&MasterKeys> for LusMasters {
    fn from(m: &MasterKeys) -> LusMasters {
        LusMasters {
            load: m.load.clone(),
            completion: m.completion.clone(),
        }
    }
}

/// The load/unload server over its durable log.
#[derive(Debug)]
pub struct LoadUnloadServer {
    id: LusId,
    masters: LusMasters,
    db: Db,
    clock: LusClock,
    /// Held by every change from its first read to its write: a change
    /// decides on what it read (a record still open, the collected total
    /// it grows, the last NT of a card), and two changes interleaved there
    /// would each write over what the other decided: a committed record
    /// set back in doubt, a total of purchases set back lower.
    writing: Mutex<()>,
}

fn tx_key(card: &CardId, nt: u32) -> Vec<u8> {
    let mut k = card.as_bytes().to_vec();
    k.extend_from_slice(&nt.to_be_bytes());
    k
}

impl LoadUnloadServer {
    /// Opens (or creates) the LUS log at `path`.
    pub fn open(path: &Path, id: LusId, masters: LusMasters) -> Result<Self, LusError> {
        if masters.load.suite() != masters.completion.suite() {
            return Err(LusError::MixedSuites);
        }
        Ok(LoadUnloadServer {
            id,
            masters,
            db: Db::open(path)?,
            clock: LusClock::default(),
            writing: Mutex::new(()),
        })
    }

    /// The lock every change takes ([`LoadUnloadServer::writing`]). What
    /// it guards is in the log, each change one transaction, so a holder
    /// that panicked left nothing half-done: taken over.
    fn writing(&self) -> MutexGuard<'_, ()> {
        self.writing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The same server reading time from `clock` (tests; a server whose
    /// time comes from elsewhere than the wall clock).
    pub fn with_clock(mut self, clock: LusClock) -> Self {
        self.clock = clock;
        self
    }

    pub fn id(&self) -> LusId {
        self.id
    }

    /// The clearing period records finish in now.
    pub fn current_period(&self) -> Result<u32, LusError> {
        Ok(self.db.get(META, PERIOD_KEY)?.unwrap_or(0))
    }

    pub fn record(&self, card: &CardId, nt: u32) -> Result<Option<LusRecord>, LusError> {
        Ok(self.db.get(TX, &tx_key(card, nt))?)
    }

    /// Every record, in (card, NT) order.
    pub fn records(&self) -> Result<Vec<LusRecord>, LusError> {
        records_in(&self.db)
    }

    /// Records of `card` not yet final (pending or in doubt).
    pub fn open_records(&self, card: &CardId) -> Result<Vec<LusRecord>, LusError> {
        Ok(self
            .db
            .scan::<LusRecord>(TX, card.as_bytes())?
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| !r.state.is_final())
            .collect())
    }

    /// Steps 2–3: checks S1, that NT is new for the card and the amount
    /// fits, logs PENDING, and answers L2. The same L1 again while the record
    /// is still open gets the same L2 (the agency retrying a lost answer);
    /// once the record is final, or for any other old NT, it is a replay.
    pub fn authorise(&self, load_id: LoadId, l1: &L1) -> Result<L2, LusError> {
        let load_key = diversify(&self.masters.load, &l1.card);
        l1.s1_input()
            .verify(&load_key, &l1.s1)
            .map_err(|_| LusError::BadMac)?;
        let _writing = self.writing();
        if let Some(existing) = self.record(&l1.card, l1.nt)? {
            if existing.l1 == *l1 && existing.load_id == load_id && !existing.state.is_final() {
                return Ok(existing.l2);
            }
            return match existing.state.is_final() {
                true => Err(LusError::AlreadyFinal(existing.state)),
                false => Err(LusError::Mismatch),
            };
        }
        if l1.amount.is_zero() {
            return Err(LusError::ZeroAmount);
        }
        let known_terms = self.card_terms(&l1.card)?;
        // A card the LUS never saw issued (issued elsewhere, before the LUS
        // kept terms) is held from now on to the limit it first showed.
        let terms = known_terms.unwrap_or(CardTerms {
            balance_max: l1.balance_max,
            expiry: None,
        });
        if let Err(e) = self.check_card_history(l1, &terms) {
            return Err(self.refuse(l1, e));
        }
        match l1.direction {
            Direction::Load => {
                let fits = l1
                    .balance
                    .checked_add(l1.amount)
                    .map(|b| b <= terms.balance_max)
                    .unwrap_or(false);
                if !fits {
                    return Err(LusError::OverMaximum);
                }
            }
            Direction::Unload => {
                if l1.amount > l1.balance {
                    return Err(LusError::InsufficientBalance);
                }
            }
        }
        let r_lus: Nonce = random_bytes();
        let s2 = s2_input(
            l1.direction,
            &l1.card,
            l1.nt,
            l1.amount,
            &l1.r_sm,
            &r_lus,
            &l1.s1,
        )
        .sign(&load_key);
        let l2 = L2 {
            direction: l1.direction,
            card: l1.card,
            nt: l1.nt,
            amount: l1.amount,
            r_lus,
            s2,
        };
        let record = LusRecord {
            load_id,
            l1: l1.clone(),
            l2: l2.clone(),
            state: LusState::Pending,
            period: None,
            new_balance: None,
        };
        let mut batch = WriteBatch::new();
        batch.require_absent(TX, &tx_key(&l1.card, l1.nt));
        batch.put(TX, &tx_key(&l1.card, l1.nt), &record);
        batch.put(LAST_NT, l1.card.as_bytes(), &l1.nt);
        if known_terms.is_none() {
            batch.put(CARD_TERMS, l1.card.as_bytes(), &terms.balance_max);
        }
        self.db.write(batch).map_err(|e| match e {
            StoreError::AlreadyPresent { .. } => LusError::Mismatch,
            other => other.into(),
        })?;
        tracing::debug!(lus = %self.id, nt = l1.nt, "card transaction pending");
        Ok(l2)
    }

    /// What the card claims must agree with its terms, the LUS's clock and
    /// its history here ([`check_claim`]).
    fn check_card_history(&self, l1: &L1, terms: &CardTerms) -> Result<(), LusError> {
        let last_seen_nt: u32 = self.db.get(LAST_NT, l1.card.as_bytes())?.unwrap_or(0);
        let outcome_of_claimed_last =
            self.record(&l1.card, l1.last_nt)?
                .and_then(|r| match r.state {
                    LusState::Committed => Some(Outcome::Committed),
                    LusState::Rejected => Some(Outcome::Rejected),
                    LusState::Pending | LusState::InDoubt => None,
                });
        let history = CardHistory {
            last_seen_nt,
            outcome_of_claimed_last,
        };
        check_claim(
            terms,
            &self.standing(&l1.card)?,
            &history,
            self.clock.now(),
            l1,
        )
    }

    /// Logs a refused claim (tracing, and the LUS's own log when the claim
    /// is one the card's history contradicts) and hands the error back.
    fn refuse(&self, l1: &L1, e: LusError) -> LusError {
        if !e.is_false_claim() {
            return e;
        }
        // The card's id stays out of the trace (it points at its holder);
        // the LUS's own table, a private file, keeps it.
        tracing::warn!(
            lus = %self.id,
            nt = l1.nt,
            claimed_balance = %l1.balance,
            error = %e,
            "card claim refused"
        );
        let claim = RefusedClaim {
            card: l1.card,
            nt: l1.nt,
            direction: l1.direction,
            amount: l1.amount,
            claimed_balance: l1.balance,
            claimed_balance_max: l1.balance_max,
            reason: e.to_string(),
        };
        let mut key = tx_key(&l1.card, l1.nt);
        key.extend_from_slice(claim.reason.as_bytes());
        let mut batch = WriteBatch::new();
        batch.put(REFUSED, &key, &claim);
        if let Err(store) = self.db.write(batch) {
            // The refusal stands; only its record is missing.
            tracing::error!(lus = %self.id, error = %store, "could not log a refused card claim");
        }
        e
    }

    /// Records the limit and expiry a card was issued with; every L1 of the
    /// card must then show exactly that limit, and none is answered from
    /// the expiry on. Registering the same terms again is a no-op.
    pub fn register_card(&self, card: &CardId, terms: CardTerms) -> Result<(), LusError> {
        let _writing = self.writing();
        match self.card_terms(card)? {
            Some(known) if known == terms => Ok(()),
            Some(_) => Err(LusError::CardRegistered),
            None => {
                let mut batch = WriteBatch::new();
                batch.require_absent(CARD_TERMS, card.as_bytes());
                batch.put(CARD_TERMS, card.as_bytes(), &terms.balance_max);
                if let Some(expiry) = terms.expiry {
                    batch.put(CARD_EXPIRY, card.as_bytes(), &expiry);
                }
                self.db.write(batch).map_err(|e| match e {
                    StoreError::AlreadyPresent { .. } => LusError::CardRegistered,
                    other => other.into(),
                })
            }
        }
    }

    /// The terms the card was issued with (or first seen with).
    pub fn card_terms(&self, card: &CardId) -> Result<Option<CardTerms>, LusError> {
        card_terms_in(&self.db, card)
    }

    /// Tells the LUS the total of `card`'s purchases collected so far (the
    /// collection server's running total). Totals only grow, so an older
    /// total arriving late changes nothing.
    pub fn note_collected_purchases(&self, card: &CardId, total: Amount) -> Result<(), LusError> {
        let _writing = self.writing();
        let known: Amount = self
            .db
            .get(PURCHASES, card.as_bytes())?
            .unwrap_or(Amount::ZERO);
        if total <= known {
            return Ok(());
        }
        let mut batch = WriteBatch::new();
        batch.put(PURCHASES, card.as_bytes(), &total);
        Ok(self.db.write(batch)?)
    }

    /// What this log says of `card`'s value (see [`CardStanding`]).
    pub fn standing(&self, card: &CardId) -> Result<CardStanding, LusError> {
        standing_in(&self.db, card)
    }

    /// Every card known to this log whose history does not add up: more
    /// unloaded and spent than was ever loaded.
    pub fn cards_overspent(&self) -> Result<Vec<(CardId, CardStanding)>, LusError> {
        let mut out = Vec::new();
        for card in cards_in(&self.db)? {
            let s = self.standing(&card)?;
            if s.value_minor() < 0 {
                out.push((card, s));
            }
        }
        Ok(out)
    }

    /// Every claim of a card this LUS refused because its history
    /// contradicted it, in (card, NT) order.
    pub fn refused_claims(&self) -> Result<Vec<RefusedClaim>, LusError> {
        refused_claims_in(&self.db)
    }

    fn open_record(&self, card: &CardId, nt: u32) -> Result<LusRecord, LusError> {
        let rec = self.record(card, nt)?.ok_or(LusError::UnknownTransaction)?;
        if rec.state.is_final() {
            return Err(LusError::AlreadyFinal(rec.state));
        }
        Ok(rec)
    }

    fn finish_record(&self, mut rec: LusRecord, state: LusState) -> Result<CardTxRecord, LusError> {
        debug_assert!(rec.state.can_become(state));
        let period = self.current_period()?;
        rec.state = state;
        rec.period = Some(period);
        let mut batch = WriteBatch::new();
        batch.put(TX, &tx_key(&rec.l1.card, rec.l1.nt), &rec);
        self.db.write(batch)?;
        tracing::debug!(lus = %self.id, nt = rec.l1.nt, ?state, "card transaction final");
        Ok(self.report(&rec, period))
    }

    fn report(&self, rec: &LusRecord, period: u32) -> CardTxRecord {
        CardTxRecord {
            lus: self.id,
            load_id: rec.load_id,
            card: rec.l1.card,
            nt: rec.l1.nt,
            direction: rec.l1.direction,
            amount: rec.l1.amount,
            outcome: match rec.state {
                LusState::Rejected => Outcome::Rejected,
                _ => Outcome::Committed,
            },
            period,
        }
    }

    /// Step 5: checks S3 under the card's completion key and commits.
    pub fn finish(&self, l3: &L3) -> Result<CardTxRecord, LusError> {
        let _writing = self.writing();
        let mut rec = self.open_record(&l3.card, l3.nt)?;
        if l3.direction != rec.l1.direction || l3.amount != rec.l1.amount {
            return Err(LusError::Mismatch);
        }
        let completion_key = diversify(&self.masters.completion, &l3.card);
        s3_input(
            l3.direction,
            &l3.card,
            l3.nt,
            l3.amount,
            l3.new_balance,
            &rec.l2.r_lus,
        )
        .verify(&completion_key, &l3.s3)
        .map_err(|_| LusError::BadMac)?;
        rec.new_balance = Some(l3.new_balance);
        self.finish_record(rec, LusState::Committed)
    }

    /// The card's reject proof: `R'_SM` must open the commitment of L1.
    pub fn reject(&self, proof: &RejectProof) -> Result<CardTxRecord, LusError> {
        let _writing = self.writing();
        let rec = self.open_record(&proof.card, proof.nt)?;
        if proof.direction != rec.l1.direction {
            return Err(LusError::Mismatch);
        }
        let opened = reject_commitment(&proof.card, proof.nt, &proof.r_sm_prime);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            &opened[..],
            &rec.l1.commitment[..],
        )) {
            return Err(LusError::BadRejectProof);
        }
        self.finish_record(rec, LusState::Rejected)
    }

    /// Neither S3 nor a reject arrived in time: the record waits, in doubt,
    /// for the card to be presented again.
    pub fn mark_in_doubt(&self, card: &CardId, nt: u32) -> Result<(), LusError> {
        let _writing = self.writing();
        let mut rec = self.open_record(card, nt)?;
        if rec.state == LusState::InDoubt {
            return Ok(());
        }
        rec.state = LusState::InDoubt;
        let mut batch = WriteBatch::new();
        batch.put(TX, &tx_key(card, nt), &rec);
        Ok(self.db.write(batch)?)
    }

    /// The finished record for `(card, nt)`, as reported to the agency.
    pub fn report_for(&self, card: &CardId, nt: u32) -> Result<Option<CardTxRecord>, LusError> {
        Ok(self
            .record(card, nt)?
            .and_then(|r| match (r.state.is_final(), r.period) {
                (true, Some(p)) => Some(self.report(&r, p)),
                _ => None,
            }))
    }

    /// Every record finished in `period`, committed or rejected.
    pub fn finished_in(&self, period: u32) -> Result<Vec<CardTxRecord>, LusError> {
        Ok(self
            .records()?
            .iter()
            .filter(|r| r.state.is_final() && r.period == Some(period))
            .map(|r| self.report(r, period))
            .collect())
    }

    /// Closes the current period: records finishing from now on belong to
    /// the next one. Returns the closed period.
    pub fn close_period(&self) -> Result<u32, LusError> {
        let _writing = self.writing();
        let period = self.current_period()?;
        let next = period.checked_add(1).ok_or(LusError::Mismatch)?;
        let mut batch = WriteBatch::new();
        batch.put(META, PERIOD_KEY, &next);
        self.db.write(batch)?;
        Ok(period)
    }

    /// Records the settlement of a period.
    pub fn record_settlement(&self, s: &Settlement) -> Result<(), LusError> {
        let _writing = self.writing();
        let mut batch = WriteBatch::new();
        batch.put(SETTLED, &s.period.to_be_bytes(), s);
        Ok(self.db.write(batch)?)
    }

    /// Every closed period that has finished records and no settlement,
    /// oldest first: one closed just before a crash, or whose settling
    /// failed. Only periods with records are listed: one without any owes
    /// nothing.
    pub fn unsettled_periods(&self) -> Result<Vec<u32>, LusError> {
        let current = self.current_period()?;
        let with_records: std::collections::BTreeSet<u32> = records_in(&self.db)?
            .iter()
            .filter(|r| r.state.is_final())
            .filter_map(|r| r.period)
            .filter(|p| *p < current)
            .collect();
        let mut out = Vec::new();
        for period in with_records {
            if self.settlement(period)?.is_none() {
                out.push(period);
            }
        }
        Ok(out)
    }

    pub fn settlement(&self, period: u32) -> Result<Option<Settlement>, LusError> {
        Ok(self.db.get(SETTLED, &period.to_be_bytes())?)
    }
}

// Reads of the LUS's log that need none of its keys: the server's own
// methods and the auditor's ([`crate::audit`]) are the same functions.

pub(crate) fn records_in(db: &Db) -> Result<Vec<LusRecord>, LusError> {
    Ok(db.scan(TX, &[])?.into_iter().map(|(_, r)| r).collect())
}

pub(crate) fn card_terms_in(db: &Db, card: &CardId) -> Result<Option<CardTerms>, LusError> {
    let Some(balance_max) = db.get::<Amount>(CARD_TERMS, card.as_bytes())? else {
        return Ok(None);
    };
    Ok(Some(CardTerms {
        balance_max,
        expiry: db.get(CARD_EXPIRY, card.as_bytes())?,
    }))
}

pub(crate) fn standing_in(db: &Db, card: &CardId) -> Result<CardStanding, LusError> {
    let mut s = CardStanding {
        purchases_collected: db.get(PURCHASES, card.as_bytes())?.unwrap_or(Amount::ZERO),
        ..CardStanding::default()
    };
    for (_, r) in db.scan::<LusRecord>(TX, card.as_bytes())? {
        let slot = match (r.state, r.l1.direction) {
            (LusState::Committed, Direction::Load) => &mut s.loaded,
            (LusState::Committed, Direction::Unload) => &mut s.unloaded,
            (LusState::Pending | LusState::InDoubt, Direction::Load) => &mut s.loads_open,
            (LusState::Pending | LusState::InDoubt, Direction::Unload) => &mut s.unloads_open,
            (LusState::Rejected, _) => continue,
        };
        *slot = slot
            .checked_add(r.l1.amount)
            .map_err(|_| LusError::Overflow)?;
    }
    Ok(s)
}

/// Every card the log knows: by its records, its terms or its purchases.
pub(crate) fn cards_in(db: &Db) -> Result<Vec<CardId>, LusError> {
    let mut cards: Vec<CardId> = records_in(db)?.iter().map(|r| r.card()).collect();
    for table in [PURCHASES, CARD_TERMS] {
        for (k, _) in db.scan::<Amount>(table, &[])? {
            if let Ok(bytes) = <[u8; 8]>::try_from(k.as_slice()) {
                cards.push(CardId::from_bytes(bytes));
            }
        }
    }
    cards.sort();
    cards.dedup();
    Ok(cards)
}

pub(crate) fn refused_claims_in(db: &Db) -> Result<Vec<RefusedClaim>, LusError> {
    Ok(db.scan(REFUSED, &[])?.into_iter().map(|(_, c)| c).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_balance_bound_counts_open_loads_for_and_open_unloads_against() {
        let a = Amount::from_minor;
        let s = CardStanding {
            loaded: a(1_000),
            unloaded: a(300),
            loads_open: a(50),
            unloads_open: a(100),
            purchases_collected: a(200),
        };
        assert_eq!(s.value_minor(), 500);
        assert_eq!(s.balance_bound(), Some(a(450)));
        let overspent = CardStanding {
            purchases_collected: a(2_000),
            ..s
        };
        assert_eq!(overspent.balance_bound(), None);
        assert_eq!(overspent.value_minor(), -1_300);
    }

    #[test]
    fn state_transitions_are_exactly_the_documented_ones() {
        use LusState::*;
        let all = [Pending, InDoubt, Committed, Rejected];
        let allowed: Vec<(LusState, LusState)> = all
            .iter()
            .flat_map(|a| all.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Pending, InDoubt),
                (Pending, Committed),
                (Pending, Rejected),
                (InDoubt, Committed),
                (InDoubt, Rejected)
            ]
        );
        assert!(
            all.iter()
                .filter(|s| s.is_final())
                .all(|s| all.iter().all(|n| !s.can_become(*n)))
        );
    }
}

//! The load/unload server (LUS): holds the load and completion masters,
//! authorises loads and unloads (L1 → L2), commits them on S3 or rejects
//! them on a reject proof, and keeps every record in its own durable log.
//!
//! A record moves only along the transitions of [`LusState::can_become`]:
//! `Pending → {InDoubt, Committed, Rejected}`, `InDoubt → {Committed,
//! Rejected}`; `Committed` and `Rejected` are final. Every transition is one
//! durable write before anyone is told of it.

use std::path::Path;

use ledger::{Amount, CardId, LusId};
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
        })
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
        Ok(self.db.scan(TX, &[])?.into_iter().map(|(_, r)| r).collect())
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
        if let Some(existing) = self.record(&l1.card, l1.nt)? {
            if existing.l1 == *l1 && existing.load_id == load_id && !existing.state.is_final() {
                return Ok(existing.l2);
            }
            return match existing.state.is_final() {
                true => Err(LusError::AlreadyFinal(existing.state)),
                false => Err(LusError::Mismatch),
            };
        }
        let last_seen: u32 = self.db.get(LAST_NT, l1.card.as_bytes())?.unwrap_or(0);
        if l1.nt <= last_seen {
            return Err(LusError::Replay {
                nt: l1.nt,
                last_seen,
            });
        }
        if l1.amount.is_zero() {
            return Err(LusError::ZeroAmount);
        }
        match l1.direction {
            Direction::Load => {
                let fits = l1
                    .balance
                    .checked_add(l1.amount)
                    .map(|b| b <= l1.balance_max)
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
        self.db.write(batch).map_err(|e| match e {
            StoreError::AlreadyPresent { .. } => LusError::Mismatch,
            other => other.into(),
        })?;
        tracing::debug!(lus = %self.id, nt = l1.nt, "card transaction pending");
        Ok(l2)
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
        let period = self.current_period()?;
        let next = period.checked_add(1).ok_or(LusError::Mismatch)?;
        let mut batch = WriteBatch::new();
        batch.put(META, PERIOD_KEY, &next);
        self.db.write(batch)?;
        Ok(period)
    }

    /// Records the settlement of a period.
    pub fn record_settlement(&self, s: &Settlement) -> Result<(), LusError> {
        let mut batch = WriteBatch::new();
        batch.put(SETTLED, &s.period.to_be_bytes(), s);
        Ok(self.db.write(batch)?)
    }

    pub fn settlement(&self, period: u32) -> Result<Option<Settlement>, LusError> {
        Ok(self.db.get(SETTLED, &period.to_be_bytes())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

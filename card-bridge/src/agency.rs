//! The payment agency (AG) as the card side needs it. The issuer implements
//! [`Agency`] when it is the agency (transfers between card and soft cash);
//! [`DurableAgency`] is a small redb-backed agency for tests and tools.
//!
//! The AG's duties (`docs/protocol.md`, "Card cash"): at step 2 it guarantees
//! payment for a load it forwards; when the LUS commits a load, the AG owes
//! the LUS the amount; when the LUS confirms an unload, and only then, the AG
//! credits the holder. Every method is idempotent per load id or per
//! `(lus, card, nt)`, so a retry after a lost answer is always safe.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use ledger::{Amount, BankAccount, CardId, LusId};
use serde::{Deserialize, Serialize};

use crate::records::{CardTxRecord, LoadId, LoadRequest, Settlement, record_key};
use crate::store::{Db, StoreError, WriteBatch};
use crate::wire::{Direction, Outcome};

/// Why the agency refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AgencyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the agency guaranteed no load or unload with this id")]
    UnknownLoad,
    #[error("a different record already exists for this card transaction")]
    Conflict,
    #[error("the agency refuses: {0}")]
    Refused(String),
    #[error("amount overflow")]
    Overflow,
}

/// The payment agency's side of Load, Unload and clearing.
pub trait Agency {
    /// Step 2: the AG forwards `req.l1` to the LUS and guarantees payment
    /// (for a load: the holder has paid the AG; for an unload: the AG will
    /// credit `req.holder` once the LUS confirms).
    fn guarantee(&self, req: &LoadRequest) -> Result<(), AgencyError>;

    /// Guarantees for `card` whose outcome the AG has not yet been told.
    fn open_guarantees(&self, card: &CardId) -> Result<Vec<LoadRequest>, AgencyError>;

    /// Step 5 of Load: "AG owes LUS Amount".
    fn load_committed(&self, rec: &CardTxRecord) -> Result<(), AgencyError>;

    /// The card proved it will never credit this load: the guarantee is
    /// released (the holder gets the money back).
    fn load_rejected(&self, rec: &CardTxRecord) -> Result<(), AgencyError>;

    /// The LUS confirmed an unload: now, and only now, credit the holder.
    fn unload_committed(&self, rec: &CardTxRecord) -> Result<(), AgencyError>;

    /// The card proved it never debited this unload: nothing to credit.
    fn unload_rejected(&self, rec: &CardTxRecord) -> Result<(), AgencyError>;

    /// Records of `lus` the AG holds as finished in `period`.
    fn finished_records(&self, lus: LusId, period: u32) -> Result<Vec<CardTxRecord>, AgencyError>;

    /// A clearing period settled in real money.
    fn settle(&self, settlement: &Settlement) -> Result<(), AgencyError>;

    /// Dispatches a finished record to the matching duty.
    fn finished(&self, rec: &CardTxRecord) -> Result<(), AgencyError> {
        match (rec.direction, rec.outcome) {
            (Direction::Load, Outcome::Committed) => self.load_committed(rec),
            (Direction::Load, Outcome::Rejected) => self.load_rejected(rec),
            (Direction::Unload, Outcome::Committed) => self.unload_committed(rec),
            (Direction::Unload, Outcome::Rejected) => self.unload_rejected(rec),
        }
    }
}

const GUARANTEE: &str = "ag/guarantee";
const OPEN: &str = "ag/open";
const FINAL: &str = "ag/final";
const HOLDER: &str = "ag/holder";
const SETTLED: &str = "ag/settled";

/// What the agency holds for one holder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderAccount {
    /// Paid to the AG for loads (step 0).
    pub paid_for_loads: Amount,
    /// Given back for loads the card rejected.
    pub refunded: Amount,
    /// Credited for unloads the LUS confirmed.
    pub credited_from_unloads: Amount,
}

/// A simple agency over its own redb file: holder accounts, guarantees,
/// finished records and settlements.
#[derive(Debug)]
pub struct DurableAgency {
    db: Db,
    /// Held by every change from its first read to its write: a change
    /// reads a holder's account (and whether the record or guarantee is
    /// already there), adds to it and writes it back, and two changes
    /// interleaved there would each write over the other's.
    writing: Mutex<()>,
}

fn open_key(card: &CardId, load_id: &LoadId) -> Vec<u8> {
    let mut k = card.as_bytes().to_vec();
    k.extend_from_slice(&load_id.0);
    k
}

fn settled_key(lus: LusId, period: u32) -> Vec<u8> {
    let mut k = lus.0.to_be_bytes().to_vec();
    k.extend_from_slice(&period.to_be_bytes());
    k
}

impl DurableAgency {
    pub fn open(path: &Path) -> Result<DurableAgency, AgencyError> {
        Ok(DurableAgency {
            db: Db::open(path)?,
            writing: Mutex::new(()),
        })
    }

    /// The lock every change takes ([`DurableAgency::writing`]). What it
    /// guards is in the file, each change one transaction, so a holder
    /// that panicked left nothing half-done: taken over.
    fn writing(&self) -> MutexGuard<'_, ()> {
        self.writing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn holder(&self, holder: &BankAccount) -> Result<HolderAccount, AgencyError> {
        Ok(self
            .db
            .get(HOLDER, holder.as_str().as_bytes())?
            .unwrap_or_default())
    }

    pub fn settlement(&self, lus: LusId, period: u32) -> Result<Option<Settlement>, AgencyError> {
        Ok(self.db.get(SETTLED, &settled_key(lus, period))?)
    }

    /// Every finished record, in `(lus, card, nt)` order.
    pub fn all_finished(&self) -> Result<Vec<CardTxRecord>, AgencyError> {
        Ok(self
            .db
            .scan(FINAL, &[])?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// Records `rec` and applies `effect` to the holder, once.
    fn finish(
        &self,
        rec: &CardTxRecord,
        effect: impl FnOnce(&mut HolderAccount, Amount) -> Result<(), AgencyError>,
    ) -> Result<(), AgencyError> {
        let _writing = self.writing();
        if let Some(existing) = self.db.get::<CardTxRecord>(FINAL, &rec.key())? {
            return if existing == *rec {
                Ok(())
            } else {
                Err(AgencyError::Conflict)
            };
        }
        let (req, _) = self
            .db
            .get::<(LoadRequest, Option<Outcome>)>(GUARANTEE, &rec.load_id.0)?
            .ok_or(AgencyError::UnknownLoad)?;
        if req.l1.card != rec.card
            || req.l1.nt != rec.nt
            || req.l1.direction != rec.direction
            || req.l1.amount != rec.amount
            || req.lus != rec.lus
        {
            return Err(AgencyError::Conflict);
        }
        let mut account = self.holder(&req.holder)?;
        effect(&mut account, rec.amount)?;
        let mut batch = WriteBatch::new();
        batch.put(FINAL, &rec.key(), rec);
        batch.put(GUARANTEE, &rec.load_id.0, &(req.clone(), Some(rec.outcome)));
        batch.delete(OPEN, &open_key(&rec.card, &rec.load_id));
        batch.put(HOLDER, req.holder.as_str().as_bytes(), &account);
        self.db.write(batch)?;
        Ok(())
    }
}

fn add(a: &mut Amount, b: Amount) -> Result<(), AgencyError> {
    *a = a.checked_add(b).map_err(|_| AgencyError::Overflow)?;
    Ok(())
}

impl Agency for DurableAgency {
    fn guarantee(&self, req: &LoadRequest) -> Result<(), AgencyError> {
        let _writing = self.writing();
        if let Some((existing, _)) = self
            .db
            .get::<(LoadRequest, Option<Outcome>)>(GUARANTEE, &req.load_id.0)?
        {
            return if existing == *req {
                Ok(())
            } else {
                Err(AgencyError::Conflict)
            };
        }
        let mut account = self.holder(&req.holder)?;
        if req.direction() == Direction::Load {
            // Step 0 in this model: the holder pays the agency as it guarantees.
            add(&mut account.paid_for_loads, req.amount())?;
        }
        let mut batch = WriteBatch::new();
        batch.put(GUARANTEE, &req.load_id.0, &(req.clone(), None::<Outcome>));
        batch.put(OPEN, &open_key(&req.l1.card, &req.load_id), &req.load_id);
        batch.put(HOLDER, req.holder.as_str().as_bytes(), &account);
        Ok(self.db.write(batch)?)
    }

    fn open_guarantees(&self, card: &CardId) -> Result<Vec<LoadRequest>, AgencyError> {
        let mut out = Vec::new();
        for (_, id) in self.db.scan::<LoadId>(OPEN, card.as_bytes())? {
            if let Some((req, None)) = self
                .db
                .get::<(LoadRequest, Option<Outcome>)>(GUARANTEE, &id.0)?
            {
                out.push(req);
            }
        }
        Ok(out)
    }

    fn load_committed(&self, rec: &CardTxRecord) -> Result<(), AgencyError> {
        // What the AG owes the LUS is the sum of these records per period;
        // clearing reads it from the finished records themselves.
        self.finish(rec, |_, _| Ok(()))
    }

    fn load_rejected(&self, rec: &CardTxRecord) -> Result<(), AgencyError> {
        self.finish(rec, |acc, amount| add(&mut acc.refunded, amount))
    }

    fn unload_committed(&self, rec: &CardTxRecord) -> Result<(), AgencyError> {
        self.finish(rec, |acc, amount| {
            add(&mut acc.credited_from_unloads, amount)
        })
    }

    fn unload_rejected(&self, rec: &CardTxRecord) -> Result<(), AgencyError> {
        self.finish(rec, |_, _| Ok(()))
    }

    fn finished_records(&self, lus: LusId, period: u32) -> Result<Vec<CardTxRecord>, AgencyError> {
        Ok(self
            .db
            .scan::<CardTxRecord>(FINAL, &lus.0.to_be_bytes())?
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| r.period == period)
            .collect())
    }

    fn settle(&self, settlement: &Settlement) -> Result<(), AgencyError> {
        let _writing = self.writing();
        let key = settled_key(settlement.lus, settlement.period);
        if let Some(existing) = self.db.get::<Settlement>(SETTLED, &key)? {
            return if existing == *settlement {
                Ok(())
            } else {
                Err(AgencyError::Conflict)
            };
        }
        let mut batch = WriteBatch::new();
        batch.put(SETTLED, &key, settlement);
        Ok(self.db.write(batch)?)
    }
}

/// The key the agency files a finished record under (for implementers).
pub fn finished_record_key(lus: LusId, card: &CardId, nt: u32) -> Vec<u8> {
    record_key(lus, card, nt)
}

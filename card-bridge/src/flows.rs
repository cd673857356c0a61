//! The agency's card terminal: runs Load and Unload between a card, the
//! agency and the LUS, and resolves what a lost message or a power cut left
//! open when the card is presented again.
//!
//! Message loss is injectable ([`LossPoint`]): the flow stops where the
//! message would have been lost, exactly as a dropped connection would
//! leave it, so tests can check that [`CardTerminal::resolve`] always ends
//! with one outcome per NT and no value created or lost.

use ledger::{Amount, BankAccount, Timestamp};

use crate::agency::{Agency, AgencyError};
use crate::card::{CardError, SmartCard};
use crate::lus::{LoadUnloadServer, LusError};
use crate::records::{CardTxRecord, LoadId, LoadRequest};
use crate::wire::{CardProof, Direction, Outcome, RejectProof, reject_commitment};

/// A message of Load/Unload that can be lost in transit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LossPoint {
    /// L1 from the card to the agency.
    L1ToAgency,
    /// L1 from the agency to the LUS (after the agency guaranteed it).
    L1ToLus,
    /// L2 from the LUS back to the card.
    L2ToCard,
    /// L3 (or the reject) from the card to the LUS.
    L3ToLus,
    /// The LUS's confirmation to the agency.
    ConfirmationToAgency,
}

impl LossPoint {
    pub const ALL: [LossPoint; 5] = [
        LossPoint::L1ToAgency,
        LossPoint::L1ToLus,
        LossPoint::L2ToCard,
        LossPoint::L3ToLus,
        LossPoint::ConfirmationToAgency,
    ];
}

/// Why a load or unload did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    #[error("card: {0}")]
    Card(#[from] CardError),
    #[error("load/unload server: {0}")]
    Lus(#[from] LusError),
    #[error("agency: {0}")]
    Agency(#[from] AgencyError),
    #[error("message lost at {0:?}")]
    Lost(LossPoint),
}

/// The agency's terminal between a card, the agency and one LUS.
pub struct CardTerminal<'a, A: Agency + ?Sized> {
    pub lus: &'a LoadUnloadServer,
    pub agency: &'a A,
}

impl<'a, A: Agency + ?Sized> CardTerminal<'a, A> {
    pub fn new(lus: &'a LoadUnloadServer, agency: &'a A) -> Self {
        CardTerminal { lus, agency }
    }

    pub fn load(
        &self,
        card: &mut SmartCard,
        amount: Amount,
        holder: &BankAccount,
        now: Timestamp,
    ) -> Result<CardTxRecord, FlowError> {
        self.transact(card, Direction::Load, amount, holder, now, None)
    }

    pub fn unload(
        &self,
        card: &mut SmartCard,
        amount: Amount,
        holder: &BankAccount,
        now: Timestamp,
    ) -> Result<CardTxRecord, FlowError> {
        self.transact(card, Direction::Unload, amount, holder, now, None)
    }

    fn lost(lose: Option<LossPoint>, at: LossPoint) -> Result<(), FlowError> {
        match lose {
            Some(l) if l == at => Err(FlowError::Lost(at)),
            _ => Ok(()),
        }
    }

    /// One Load or Unload, losing the message at `lose` if given. Returns the
    /// finished record: committed, or rejected if the card refused L2.
    pub fn transact(
        &self,
        card: &mut SmartCard,
        direction: Direction,
        amount: Amount,
        holder: &BankAccount,
        now: Timestamp,
        lose: Option<LossPoint>,
    ) -> Result<CardTxRecord, FlowError> {
        // The card is presented again: whatever it left open is resolved
        // first, while its log still holds the proof.
        self.resolve(card)?;
        let l1 = card.begin(direction, amount, now)?;
        Self::lost(lose, LossPoint::L1ToAgency)?;
        let req = LoadRequest {
            load_id: LoadId::random(),
            lus: self.lus.id(),
            holder: holder.clone(),
            l1,
        };
        self.agency.guarantee(&req)?;
        self.forward(card, &req, lose)
    }

    /// Steps 2–5 for an L1 the agency has already guaranteed: the LUS
    /// authorises, the card completes, the LUS commits, the agency is told.
    /// Transfers call this after their own guarantee (a redeem).
    pub fn forward(
        &self,
        card: &mut SmartCard,
        req: &LoadRequest,
        lose: Option<LossPoint>,
    ) -> Result<CardTxRecord, FlowError> {
        let l1 = &req.l1;
        Self::lost(lose, LossPoint::L1ToLus)?;
        let l2 = match self.lus.authorise(req.load_id, l1) {
            Ok(l2) => l2,
            Err(e @ LusError::Store(_)) => return Err(e.into()),
            Err(refusal) => {
                // The LUS will never send an L2: the card aborts, and its
                // reject proof releases the agency's guarantee.
                let proof = card.reject_pending()?;
                self.agency_rejects_unauthorised(req, &proof)?;
                return Err(refusal.into());
            }
        };
        Self::lost(lose, LossPoint::L2ToCard)?;
        let answer = match card.complete(&l2) {
            Ok(l3) => Ok(l3),
            Err(e @ (CardError::Memory(_) | CardError::NoPower)) => {
                self.lus.mark_in_doubt(&l1.card, l1.nt)?;
                return Err(e.into());
            }
            Err(_) => Err(card.reject_pending()?),
        };
        Self::lost(lose, LossPoint::L3ToLus)?;
        let rec = match answer {
            Ok(l3) => self.lus.finish(&l3)?,
            Err(proof) => self.lus.reject(&proof)?,
        };
        Self::lost(lose, LossPoint::ConfirmationToAgency)?;
        self.agency.finished(&rec)?;
        Ok(rec)
    }

    /// The agency's own check of a reject proof for an L1 the LUS never
    /// authorised: `R'_SM` must open the commitment in L1.
    fn agency_rejects_unauthorised(
        &self,
        req: &LoadRequest,
        proof: &RejectProof,
    ) -> Result<Option<CardTxRecord>, FlowError> {
        let opened = reject_commitment(&proof.card, proof.nt, &proof.r_sm_prime);
        if opened != req.l1.commitment || proof.nt != req.l1.nt || proof.card != req.l1.card {
            return Ok(None);
        }
        let rec = CardTxRecord {
            lus: req.lus,
            load_id: req.load_id,
            card: req.l1.card,
            nt: req.l1.nt,
            direction: req.l1.direction,
            amount: req.l1.amount,
            outcome: Outcome::Rejected,
            period: self.lus.current_period()?,
        };
        self.agency.finished(&rec)?;
        Ok(Some(rec))
    }

    /// The card is presented again: every open load or unload of this card,
    /// at the LUS or the agency, is finished if the card can say how, and
    /// the agency is told every outcome it missed. Returns what was finished.
    pub fn resolve(&self, card: &mut SmartCard) -> Result<Vec<CardTxRecord>, FlowError> {
        let id = card.id()?;
        let mut finished = Vec::new();
        // 1. Guarantees whose L1 never reached the LUS: forward it again.
        for req in self.agency.open_guarantees(&id)? {
            if self.lus.record(&id, req.l1.nt)?.is_some() {
                continue;
            }
            match self.lus.authorise(req.load_id, &req.l1) {
                Ok(_) => {}
                Err(e @ LusError::Store(_)) => return Err(e.into()),
                Err(_) => {
                    // Never authorised: only a reject proof can settle it.
                    let proof = match card.prove(req.l1.direction, req.l1.nt)? {
                        CardProof::Rejected(p) => Some(p),
                        CardProof::Pending => Some(card.reject_pending()?),
                        CardProof::Completed(_) | CardProof::Unknown => None,
                    };
                    if let Some(p) = proof
                        && let Some(rec) = self.agency_rejects_unauthorised(&req, &p)?
                    {
                        finished.push(rec);
                    }
                }
            }
        }
        // 2. Open LUS records: ask the card what became of each.
        for rec in self.lus.open_records(&id)? {
            let (direction, nt) = (rec.l1.direction, rec.nt());
            let done = match card.prove(direction, nt)? {
                CardProof::Completed(l3) => Some(self.lus.finish(&l3)?),
                CardProof::Rejected(p) => Some(self.lus.reject(&p)?),
                CardProof::Pending => match card.complete(&rec.l2) {
                    Ok(l3) => Some(self.lus.finish(&l3)?),
                    Err(e @ (CardError::Memory(_) | CardError::NoPower)) => return Err(e.into()),
                    Err(_) => Some(self.lus.reject(&card.reject_pending()?)?),
                },
                CardProof::Unknown => {
                    self.lus.mark_in_doubt(&id, nt)?;
                    None
                }
            };
            finished.extend(done);
        }
        // 3. Tell the agency every outcome it has not heard.
        for req in self.agency.open_guarantees(&id)? {
            if let Some(rec) = self.lus.report_for(&id, req.l1.nt)? {
                self.agency.finished(&rec)?;
                if !finished.contains(&rec) {
                    finished.push(rec);
                }
            }
        }
        // 4. A pending slot nobody else knows of (L1 lost on its way to the
        //    agency) can never receive an L2: abort it so the NT has an outcome.
        if let Some((direction, nt)) = card.info()?.pending {
            let known_to_lus = self.lus.record(&id, nt)?.is_some();
            let known_to_agency = self
                .agency
                .open_guarantees(&id)?
                .iter()
                .any(|r| r.l1.nt == nt && r.l1.direction == direction);
            if !known_to_lus && !known_to_agency {
                card.reject_pending()?;
            }
        }
        Ok(finished)
    }

    /// Tells the agency every record the LUS finished in `period` (the
    /// agency ignores those it already has). Clearing runs this first.
    pub fn sync_agency(&self, period: u32) -> Result<usize, FlowError> {
        let records = self.lus.finished_in(period)?;
        for rec in &records {
            self.agency.finished(rec)?;
        }
        Ok(records.len())
    }
}

//! The purchase SAM in a merchant's device: derives each card's purchase
//! key from the purchase master, authenticates its debit requests, checks
//! the card's proofs, keeps its own counter and running totals, and closes
//! MACed batches for the collection server.
//!
//! A tear on the card during a purchase leaves the PSAM with an open
//! request; [`Psam::recover`] asks the card (powered up again) for the proof
//! of that request, so a debit the card committed is never lost to the
//! merchant, and a debit it did not commit is abandoned.

use ledger::{Amount, CardId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::card::{CardError, SmartCard};
use crate::constants::BATCH_ENTRIES_MAX;
use crate::crypto::{Mac, MacInput, MasterKey, diversify, random_bytes};
use crate::wire::{PsamId, PurchaseProof, PurchaseRequest};

/// A closed batch of purchases, MACed under the PSAM's batch key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub psam: PsamId,
    pub batch_no: u32,
    pub entries: Vec<PurchaseProof>,
    pub count: u32,
    pub total: Amount,
    pub mac: Mac,
}

impl Batch {
    /// The bytes the batch MAC covers: header, totals and every entry's MAC.
    pub fn mac_input(&self) -> MacInput {
        let mut input = MacInput::new("vc/card/psam/batch")
            .bytes(&self.psam.0)
            .u32(self.batch_no)
            .u32(self.count)
            .u64(self.total.minor_units());
        for e in &self.entries {
            input = input
                .bytes(e.card.as_bytes())
                .u32(e.nt)
                .u32(e.psam_nt)
                .u64(e.amount.minor_units())
                .bytes(e.mac.as_bytes());
        }
        input
    }
}

/// Why the PSAM refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PsamError {
    #[error("card: {0}")]
    Card(#[from] CardError),
    #[error("a purchase is already open at this device")]
    Busy,
    #[error("no open purchase matches this proof")]
    NoOpenPurchase,
    #[error("card proof does not verify")]
    BadMac,
    #[error("batch is full ({BATCH_ENTRIES_MAX} purchases): close it first")]
    BatchFull,
    #[error("counter exhausted")]
    CounterExhausted,
    #[error("amount overflow")]
    Overflow,
}

/// The purchase SAM.
#[derive(Debug)]
pub struct Psam {
    id: PsamId,
    purchase_master: MasterKey,
    batch_master: MasterKey,
    counter: u32,
    batch_no: u32,
    open: Option<PurchaseRequest>,
    entries: Vec<PurchaseProof>,
    running_total: Amount,
}

impl Psam {
    pub fn new(id: PsamId, purchase_master: MasterKey, batch_master: MasterKey) -> Psam {
        Psam {
            id,
            purchase_master,
            batch_master,
            counter: 0,
            batch_no: 0,
            open: None,
            entries: Vec::new(),
            running_total: Amount::ZERO,
        }
    }

    pub fn id(&self) -> PsamId {
        self.id
    }

    /// Purchases taken since the batch was opened, and their total.
    pub fn running_totals(&self) -> (usize, Amount) {
        (self.entries.len(), self.running_total)
    }

    /// A debit request for `card`, with a new PSAM counter.
    pub fn request(&mut self, card: CardId, amount: Amount) -> Result<PurchaseRequest, PsamError> {
        if self.open.is_some() {
            return Err(PsamError::Busy);
        }
        if self.entries.len() >= BATCH_ENTRIES_MAX {
            return Err(PsamError::BatchFull);
        }
        let psam_nt = self
            .counter
            .checked_add(1)
            .ok_or(PsamError::CounterExhausted)?;
        self.counter = psam_nt;
        let mut req = PurchaseRequest {
            psam: self.id,
            psam_nt,
            card,
            amount,
            r_psam: random_bytes(),
            mac: Mac::from_slice(&[]).ok_or(PsamError::BadMac)?,
        };
        let key = diversify(&self.purchase_master, &card);
        req.mac = req.mac_input().sign(&key);
        self.open = Some(req.clone());
        Ok(req)
    }

    /// Checks the card's proof against the open request and books it.
    pub fn accept(&mut self, proof: &PurchaseProof) -> Result<(), PsamError> {
        let open = self.open.as_ref().ok_or(PsamError::NoOpenPurchase)?;
        if proof.psam != self.id
            || proof.psam_nt != open.psam_nt
            || proof.card != open.card
            || proof.amount != open.amount
            || proof.r_psam != open.r_psam
        {
            return Err(PsamError::NoOpenPurchase);
        }
        let key = diversify(&self.purchase_master, &proof.card);
        proof
            .mac_input()
            .verify(&key, &proof.mac)
            .map_err(|_| PsamError::BadMac)?;
        self.running_total = self
            .running_total
            .checked_add(proof.amount)
            .map_err(|_| PsamError::Overflow)?;
        self.entries.push(proof.clone());
        self.open = None;
        Ok(())
    }

    /// One purchase: request, card debit, proof booked.
    pub fn pay(
        &mut self,
        card: &mut SmartCard,
        amount: Amount,
        now: Timestamp,
    ) -> Result<PurchaseProof, PsamError> {
        let req = self.request(card.id()?, amount)?;
        let proof = match card.purchase(&req, now) {
            Ok(p) => p,
            Err(e @ (CardError::Memory(_) | CardError::NoPower)) => return Err(e.into()),
            Err(refusal) => {
                // The card refused without debiting: the request dies.
                self.open = None;
                return Err(refusal.into());
            }
        };
        self.accept(&proof)?;
        Ok(proof)
    }

    /// After a tear: books the card's proof of the open request if the card
    /// committed it, otherwise abandons the request. Returns whether a
    /// purchase was booked.
    pub fn recover(&mut self, card: &SmartCard) -> Result<bool, PsamError> {
        let Some(open) = self.open.clone() else {
            return Ok(false);
        };
        if card.id()? != open.card {
            return Err(PsamError::NoOpenPurchase);
        }
        match card.purchase_proof(open.psam, open.psam_nt)? {
            Some(proof) => {
                self.accept(&proof)?;
                Ok(true)
            }
            None => {
                self.open = None;
                Ok(false)
            }
        }
    }

    /// Closes the current batch: entries, count and total under the batch MAC.
    pub fn close_batch(&mut self) -> Result<Batch, PsamError> {
        let batch_no = self
            .batch_no
            .checked_add(1)
            .ok_or(PsamError::CounterExhausted)?;
        let entries = std::mem::take(&mut self.entries);
        let mut batch = Batch {
            psam: self.id,
            batch_no,
            count: entries.len() as u32,
            total: std::mem::replace(&mut self.running_total, Amount::ZERO),
            entries,
            mac: Mac::from_slice(&[]).ok_or(PsamError::BadMac)?,
        };
        let key = diversify(&self.batch_master, &self.id.as_card_id());
        batch.mac = batch.mac_input().sign(&key);
        self.batch_no = batch_no;
        Ok(batch)
    }
}

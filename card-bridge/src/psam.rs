//! The purchase SAM in a merchant's device: derives each card's purchase
//! key from the purchase master, authenticates its debit requests, checks
//! the card's proofs, keeps its own counter and running totals, and closes
//! MACed batches for the collection server.
//!
//! A tear on the card during a purchase leaves the PSAM with an open
//! request; [`Psam::recover`] asks the card (powered up again) for the proof
//! of that request, so a debit the card committed is never lost to the
//! merchant, and a debit it did not commit is abandoned.
//!
//! Opened with [`Psam::open`], the PSAM keeps its state (counter, open
//! request, booked purchases, closed batches not yet acknowledged) in a file
//! written before anything leaves it (temporary file, fsync, rename), so a
//! device crash loses no booked purchase and never reuses a counter.

use std::path::{Path, PathBuf};

use ledger::{Amount, CardId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::card::{CardError, SmartCard};
use crate::constants::{BATCH_ENTRIES_MAX, PSAM_STATE_BYTES_MAX, PSAM_UNSENT_BATCHES_MAX};
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
    #[error("psam state file: {0}")]
    Storage(String),
    #[error("{PSAM_UNSENT_BATCHES_MAX} closed batches await collection: deliver them first")]
    TooManyUnsent,
    #[error("card {card} paid here with NT {booked} already: its NT {nt} is not new")]
    CardCounterNotNew { card: CardId, nt: u32, booked: u32 },
}

/// What the PSAM remembers between purchases.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct PsamState {
    counter: u32,
    batch_no: u32,
    open: Option<PurchaseRequest>,
    entries: Vec<PurchaseProof>,
    running_total: Amount,
    unsent: Vec<Batch>,
}

/// The purchase SAM.
#[derive(Debug)]
pub struct Psam {
    id: PsamId,
    purchase_master: MasterKey,
    batch_master: MasterKey,
    state: PsamState,
    path: Option<PathBuf>,
}

impl Psam {
    /// A PSAM that keeps its state in memory only (tests, simulations).
    pub fn new(id: PsamId, purchase_master: MasterKey, batch_master: MasterKey) -> Psam {
        Psam {
            id,
            purchase_master,
            batch_master,
            state: PsamState::default(),
            path: None,
        }
    }

    /// A PSAM whose state lives in the file at `path` (created if absent).
    pub fn open(
        path: &Path,
        id: PsamId,
        purchase_master: MasterKey,
        batch_master: MasterKey,
    ) -> Result<Psam, PsamError> {
        let io = |e: std::io::Error| PsamError::Storage(e.to_string());
        let state = match std::fs::metadata(path) {
            Ok(meta) if meta.len() > PSAM_STATE_BYTES_MAX as u64 => {
                return Err(PsamError::Storage("state file too large".into()));
            }
            Ok(_) => {
                let bytes = std::fs::read(path).map_err(io)?;
                postcard::from_bytes(&bytes)
                    .map_err(|_| PsamError::Storage("state file is malformed".into()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => PsamState::default(),
            Err(e) => return Err(io(e)),
        };
        Ok(Psam {
            id,
            purchase_master,
            batch_master,
            state,
            path: Some(path.to_path_buf()),
        })
    }

    /// Writes the state durably before anything derived from it leaves.
    fn persist(&self) -> Result<(), PsamError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let io = |e: std::io::Error| PsamError::Storage(e.to_string());
        let bytes = postcard::to_allocvec(&self.state)
            .map_err(|_| PsamError::Storage("cannot encode state".into()))?;
        if bytes.len() > PSAM_STATE_BYTES_MAX {
            return Err(PsamError::Storage("state too large".into()));
        }
        // Synced, renamed into place and the directory synced, mode 0600.
        ledger::private_file::write_private(path, &bytes).map_err(io)
    }

    /// Closed batches the collection server has not acknowledged, oldest first.
    pub fn unsent_batches(&self) -> &[Batch] {
        &self.state.unsent
    }

    /// The collection server took batch `batch_no`: forget it.
    pub fn acknowledge(&mut self, batch_no: u32) -> Result<(), PsamError> {
        self.state.unsent.retain(|b| b.batch_no != batch_no);
        self.persist()
    }

    pub fn id(&self) -> PsamId {
        self.id
    }

    /// The card of the purchase left open (a tear, or a device stopped
    /// between the card's debit and the booking), if any.
    pub fn open_card(&self) -> Option<CardId> {
        self.state.open.as_ref().map(|r| r.card)
    }

    /// Purchases taken since the batch was opened, and their total.
    pub fn running_totals(&self) -> (usize, Amount) {
        (self.state.entries.len(), self.state.running_total)
    }

    /// A debit request for `card`, with a new PSAM counter.
    pub fn request(&mut self, card: CardId, amount: Amount) -> Result<PurchaseRequest, PsamError> {
        if self.state.open.is_some() {
            return Err(PsamError::Busy);
        }
        if self.state.entries.len() >= BATCH_ENTRIES_MAX {
            return Err(PsamError::BatchFull);
        }
        let psam_nt = self
            .state
            .counter
            .checked_add(1)
            .ok_or(PsamError::CounterExhausted)?;
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
        let before = self.state.clone();
        self.state.counter = psam_nt;
        self.state.open = Some(req.clone());
        if let Err(e) = self.persist() {
            self.state = before;
            return Err(e);
        }
        Ok(req)
    }

    /// Checks the card's proof against the open request and books it.
    pub fn accept(&mut self, proof: &PurchaseProof) -> Result<(), PsamError> {
        let open = self.state.open.as_ref().ok_or(PsamError::NoOpenPurchase)?;
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
        if let Some(booked) = self.booked_nt(&proof.card).filter(|b| *b >= proof.nt) {
            // A copy of the card, restored to an older state, paying again:
            // the proof is genuine, the claim that the NT is new is not.
            tracing::warn!(
                nt = proof.nt,
                booked,
                "purchase refused: the card's counter went back"
            );
            self.state.open = None;
            self.persist()?;
            return Err(PsamError::CardCounterNotNew {
                card: proof.card,
                nt: proof.nt,
                booked,
            });
        }
        let before = self.state.clone();
        self.state.running_total = self
            .state
            .running_total
            .checked_add(proof.amount)
            .map_err(|_| PsamError::Overflow)?;
        self.state.entries.push(proof.clone());
        self.state.open = None;
        if let Err(e) = self.persist() {
            self.state = before;
            return Err(e);
        }
        Ok(())
    }

    /// The highest NT of `card` among the purchases booked here and not yet
    /// acknowledged by the collection server.
    fn booked_nt(&self, card: &CardId) -> Option<u32> {
        self.state
            .entries
            .iter()
            .chain(self.state.unsent.iter().flat_map(|b| b.entries.iter()))
            .filter(|e| e.card == *card)
            .map(|e| e.nt)
            .max()
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
                self.state.open = None;
                self.persist()?;
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
        let Some(open) = self.state.open.clone() else {
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
                self.state.open = None;
                self.persist()?;
                Ok(false)
            }
        }
    }

    /// Closes the current batch: entries, count and total under the batch
    /// MAC. The batch stays among [`Psam::unsent_batches`] until acknowledged.
    pub fn close_batch(&mut self) -> Result<Batch, PsamError> {
        if self.state.unsent.len() >= PSAM_UNSENT_BATCHES_MAX {
            return Err(PsamError::TooManyUnsent);
        }
        let batch_no = self
            .state
            .batch_no
            .checked_add(1)
            .ok_or(PsamError::CounterExhausted)?;
        let mut batch = Batch {
            psam: self.id,
            batch_no,
            count: self.state.entries.len() as u32,
            total: self.state.running_total,
            entries: self.state.entries.clone(),
            mac: Mac::from_slice(&[]).ok_or(PsamError::BadMac)?,
        };
        let key = diversify(&self.batch_master, &self.id.as_card_id());
        batch.mac = batch.mac_input().sign(&key);
        let before = self.state.clone();
        self.state.batch_no = batch_no;
        self.state.entries.clear();
        self.state.running_total = Amount::ZERO;
        self.state.unsent.push(batch.clone());
        if let Err(e) = self.persist() {
            self.state = before;
            return Err(e);
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{MasterKeys, Suite};

    #[test]
    fn a_reopened_psam_keeps_its_counter_open_request_and_batches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("psam.state");
        let masters = MasterKeys::random(Suite::Tdes);
        let batch_master = MasterKey::random(Suite::Tdes);
        let open = || {
            Psam::open(
                &path,
                PsamId([1; 8]),
                masters.purchase.clone(),
                batch_master.clone(),
            )
            .expect("open")
        };
        let card = CardId::from_bytes([9; 8]);
        let mut psam = open();
        let first = psam.request(card, Amount::from_minor(5)).expect("request");
        drop(psam);
        let mut psam = open();
        assert_eq!(
            psam.request(card, Amount::from_minor(5)),
            Err(PsamError::Busy)
        );
        assert_eq!(psam.state.open.as_ref(), Some(&first));
        psam.state.open = None;
        psam.persist().expect("persist");
        let second = psam.request(card, Amount::from_minor(5)).expect("request");
        assert_eq!(
            second.psam_nt,
            first.psam_nt + 1,
            "a counter is never reused"
        );
        psam.state.open = None;
        let batch = psam.close_batch().expect("close");
        drop(psam);
        let mut psam = open();
        assert_eq!(psam.unsent_batches(), std::slice::from_ref(&batch));
        psam.acknowledge(batch.batch_no).expect("ack");
        assert!(open().unsent_batches().is_empty());
        std::fs::write(&path, b"garbage").expect("write");
        assert!(matches!(
            Psam::open(
                &path,
                PsamId([1; 8]),
                masters.purchase.clone(),
                batch_master.clone()
            ),
            Err(PsamError::Storage(_))
        ));
    }
}

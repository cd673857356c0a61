//! The collection server: takes PSAM batches, checks the batch MAC, every
//! card's purchase MAC and the batch totals, refuses duplicates by
//! `(card, NT)` and by `(PSAM, PSAM NT)`, and only then credits the merchant
//! the PSAM is registered to, all in one durable write. A batch sent again
//! gets the same receipt and credits nothing more.
//!
//! A purchase whose `(card, NT)` was already collected (a card image copied
//! and paying again, with the same counter, at another device) is the
//! card's false claim, not the merchant's: it is refused alone, logged and
//! kept in the server's table of refused purchases, and the rest of the
//! batch is credited. So is a purchase that would take the card's collected
//! purchases above what the card system took in for it
//! ([`CollectionServer::collect_within`], given the LUS's committed loads
//! less its unloads, committed and open): a copy paying off line with its
//! counter moved on spends value the card no longer has, and the card
//! system never pays out more for a card than it took in. What is wrong
//! with the batch itself (its MAC, totals, a PSAM counter used twice) still
//! refuses the whole batch.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use ledger::{Amount, BankAccount, CardId};
use serde::{Deserialize, Serialize};

use crate::constants::BATCH_ENTRIES_MAX;
use crate::crypto::{MasterKey, diversify};
use crate::psam::Batch;
use crate::store::{Db, StoreError, WriteBatch};
use crate::wire::PsamId;

const PSAMS: &str = "col/psam";
const CARD_NT: &str = "col/card-nt";
const PSAM_NT: &str = "col/psam-nt";
const BATCHES: &str = "col/batch";
const MERCHANTS: &str = "col/merchant";
/// Running total of the purchases collected per card, for the LUS's check
/// that a card never pays out more than was loaded onto it.
const CARD_SPENT: &str = "col/card-spent";
/// Purchases refused because their `(card, NT)` was already collected.
const REFUSED: &str = "col/refused";

/// Why a batch was refused. Refusals take the whole batch: a batch is
/// collected entirely or not at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CollectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("psam is not registered to a merchant")]
    UnknownPsam,
    #[error("batch mac does not verify")]
    BadBatchMac,
    #[error("purchase {index} of the batch does not verify")]
    BadPurchaseMac { index: usize },
    #[error("batch totals do not match its entries")]
    BadTotals,
    #[error("batch has {0} entries, over the limit")]
    TooLarge(usize),
    #[error("psam transaction {psam_nt} was already collected")]
    DuplicatePsamNt { psam_nt: u32 },
    #[error("a different batch with this number was already collected")]
    BatchConflict,
    #[error("purchase {index} names another psam")]
    ForeignEntry { index: usize },
    #[error("amount overflow")]
    Overflow,
    #[error("another collection of the same purchases won the race: retry")]
    Concurrent,
    #[error("psam is registered to another merchant")]
    PsamRegistered,
}

/// A purchase of a batch the collection server refused to credit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedPurchase {
    pub card: CardId,
    pub nt: u32,
    pub psam: PsamId,
    pub psam_nt: u32,
    pub amount: Amount,
    pub reason: PurchaseRefusal,
}

/// Why a purchase was refused at collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum PurchaseRefusal {
    /// Its `(card, NT)` had already been collected (or came twice in the batch).
    #[error("its NT was already collected (a copy of the card paying again)")]
    NtAlreadyCollected,
    /// It would take the card's purchases above what the card system took
    /// in for the card (`intake`: loads less unloads).
    #[error("it would take the card's purchases to {spent}, above the {intake} it was loaded with")]
    BeyondIntake { spent: Amount, intake: Amount },
}

/// What the collection server answers for a collected batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchReceipt {
    pub psam: PsamId,
    pub batch_no: u32,
    /// The batch's own count and total, as its MAC covers them.
    pub count: u32,
    pub total: Amount,
    /// What the merchant was credited: the total less the refused purchases.
    pub credited: Amount,
    pub refused: Vec<RefusedPurchase>,
    pub merchant: BankAccount,
}

/// The collection server over its durable store.
#[derive(Debug)]
pub struct CollectionServer {
    db: Db,
    purchase_master: MasterKey,
    batch_master: MasterKey,
    /// Held from a collection's first read to its write: the merchant's
    /// credit and each card's running total are read, added to and written
    /// back, and two collections interleaved there would each write its
    /// own sum over the same old total, losing the other's credit.
    collecting: Mutex<()>,
}

fn card_nt_key(card: &CardId, nt: u32) -> Vec<u8> {
    let mut k = card.as_bytes().to_vec();
    k.extend_from_slice(&nt.to_be_bytes());
    k
}

fn psam_key(psam: &PsamId, n: u32) -> Vec<u8> {
    let mut k = psam.0.to_vec();
    k.extend_from_slice(&n.to_be_bytes());
    k
}

impl CollectionServer {
    pub fn open(
        path: &Path,
        purchase_master: MasterKey,
        batch_master: MasterKey,
    ) -> Result<CollectionServer, CollectionError> {
        Ok(CollectionServer {
            db: Db::open(path)?,
            purchase_master,
            batch_master,
            collecting: Mutex::new(()),
        })
    }

    /// Registers the merchant whose account a PSAM's purchases credit,
    /// once: registering it again to the same merchant changes nothing, to
    /// another is refused ([`CollectionError::PsamRegistered`]). A PSAM
    /// moved to another merchant would credit that one with the purchases
    /// its batches still carry, taken at the first merchant's device.
    pub fn register_psam(
        &self,
        psam: PsamId,
        merchant: &BankAccount,
    ) -> Result<(), CollectionError> {
        let registered = |db: &Db| -> Result<Option<()>, CollectionError> {
            match db.get::<BankAccount>(PSAMS, &psam.0)? {
                Some(known) if known == *merchant => Ok(Some(())),
                Some(_) => Err(CollectionError::PsamRegistered),
                None => Ok(None),
            }
        };
        if registered(&self.db)?.is_some() {
            return Ok(());
        }
        let mut b = WriteBatch::new();
        b.require_absent(PSAMS, &psam.0);
        b.put(PSAMS, &psam.0, merchant);
        match self.db.write(b) {
            Ok(()) => Ok(()),
            // Registered meanwhile: to this merchant is fine.
            Err(StoreError::AlreadyPresent { .. }) => {
                registered(&self.db)?.ok_or(CollectionError::PsamRegistered)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// What the merchant has been credited in total.
    pub fn merchant_credit(&self, merchant: &BankAccount) -> Result<Amount, CollectionError> {
        Ok(self
            .db
            .get(MERCHANTS, merchant.as_str().as_bytes())?
            .unwrap_or(Amount::ZERO))
    }

    /// Whether the purchase `(card, nt)` has been collected.
    pub fn collected(&self, card: &CardId, nt: u32) -> Result<bool, CollectionError> {
        Ok(self
            .db
            .get::<Vec<u8>>(CARD_NT, &card_nt_key(card, nt))?
            .is_some())
    }

    /// Every card with purchases collected, and their total.
    pub fn spent_by_card(&self) -> Result<Vec<(CardId, Amount)>, CollectionError> {
        spent_by_card_in(&self.db)
    }

    /// The total of `card`'s purchases collected so far.
    pub fn spent_by(&self, card: &CardId) -> Result<Amount, CollectionError> {
        Ok(self
            .db
            .get(CARD_SPENT, card.as_bytes())?
            .unwrap_or(Amount::ZERO))
    }

    /// Every purchase refused because its `(card, NT)` was already collected.
    pub fn refused_purchases(&self) -> Result<Vec<RefusedPurchase>, CollectionError> {
        refused_purchases_in(&self.db)
    }

    /// Checks and collects `batch` (see the module docs), with no bound on
    /// what a card may spend: for a collection server that knows nothing of
    /// the LUS. [`crate::system::CardSystem`] uses [`Self::collect_within`].
    pub fn collect(&self, batch: &Batch) -> Result<BatchReceipt, CollectionError> {
        self.collect_within(batch, &|_| Ok(None))
    }

    /// Checks and collects `batch`; `intake(card)` is what the card system
    /// took in for the card (`None`: no bound), and a purchase that would
    /// take the card's collected purchases above it is refused alone.
    pub fn collect_within(
        &self,
        batch: &Batch,
        intake: &dyn Fn(&CardId) -> Result<Option<Amount>, CollectionError>,
    ) -> Result<BatchReceipt, CollectionError> {
        if batch.entries.len() > BATCH_ENTRIES_MAX {
            return Err(CollectionError::TooLarge(batch.entries.len()));
        }
        // What it guards is in the store, written in one transaction, so a
        // holder that panicked left nothing half-done: taken over.
        let _collecting = self
            .collecting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let merchant: BankAccount = self
            .db
            .get(PSAMS, &batch.psam.0)?
            .ok_or(CollectionError::UnknownPsam)?;
        let batch_key = diversify(&self.batch_master, &batch.psam.as_card_id());
        batch
            .mac_input()
            .verify(&batch_key, &batch.mac)
            .map_err(|_| CollectionError::BadBatchMac)?;
        if let Some(receipt) = self
            .db
            .get::<(BatchReceipt, Batch)>(BATCHES, &psam_key(&batch.psam, batch.batch_no))?
        {
            return if receipt.1 == *batch {
                Ok(receipt.0)
            } else {
                Err(CollectionError::BatchConflict)
            };
        }
        let sum = Amount::checked_sum(batch.entries.iter().map(|e| e.amount))
            .map_err(|_| CollectionError::Overflow)?;
        if usize::try_from(batch.count).ok() != Some(batch.entries.len()) || sum != batch.total {
            return Err(CollectionError::BadTotals);
        }
        let mut seen_card = HashSet::new();
        let mut spent: std::collections::BTreeMap<CardId, Amount> = Default::default();
        let mut seen_psam = HashSet::new();
        let mut refused = Vec::new();
        let mut writes = WriteBatch::new();
        for (index, e) in batch.entries.iter().enumerate() {
            if e.psam != batch.psam {
                return Err(CollectionError::ForeignEntry { index });
            }
            let card_key = diversify(&self.purchase_master, &e.card);
            e.mac_input()
                .verify(&card_key, &e.mac)
                .map_err(|_| CollectionError::BadPurchaseMac { index })?;
            let ck = card_nt_key(&e.card, e.nt);
            let pk = psam_key(&e.psam, e.psam_nt);
            if !seen_psam.insert(pk.clone()) || self.db.get::<Vec<u8>>(PSAM_NT, &pk)?.is_some() {
                return Err(CollectionError::DuplicatePsamNt { psam_nt: e.psam_nt });
            }
            writes.require_absent(PSAM_NT, &pk);
            writes.put(PSAM_NT, &pk, &ck);
            let total = match spent.get(&e.card) {
                Some(t) => *t,
                None => self.spent_by(&e.card)?,
            };
            let after = total
                .checked_add(e.amount)
                .map_err(|_| CollectionError::Overflow)?;
            let refusal = if !seen_card.insert(ck.clone())
                || self.db.get::<Vec<u8>>(CARD_NT, &ck)?.is_some()
            {
                Some(PurchaseRefusal::NtAlreadyCollected)
            } else {
                match intake(&e.card)? {
                    Some(intake) if after > intake => Some(PurchaseRefusal::BeyondIntake {
                        spent: after,
                        intake,
                    }),
                    _ => None,
                }
            };
            if let Some(reason) = refusal {
                tracing::warn!(
                    nt = e.nt,
                    psam_nt = e.psam_nt,
                    amount = %e.amount,
                    %reason,
                    "purchase refused"
                );
                let r = RefusedPurchase {
                    card: e.card,
                    nt: e.nt,
                    psam: e.psam,
                    psam_nt: e.psam_nt,
                    amount: e.amount,
                    reason,
                };
                let mut rk = ck.clone();
                rk.extend_from_slice(&pk);
                writes.put(REFUSED, &rk, &r);
                refused.push(r);
                continue;
            }
            spent.insert(e.card, after);
            writes.require_absent(CARD_NT, &ck);
            writes.put(CARD_NT, &ck, &pk);
        }
        let refused_total = Amount::checked_sum(refused.iter().map(|r| r.amount))
            .map_err(|_| CollectionError::Overflow)?;
        let credit = batch
            .total
            .checked_sub(refused_total)
            .map_err(|_| CollectionError::Overflow)?;
        let credited = self
            .merchant_credit(&merchant)?
            .checked_add(credit)
            .map_err(|_| CollectionError::Overflow)?;
        let receipt = BatchReceipt {
            psam: batch.psam,
            batch_no: batch.batch_no,
            count: batch.count,
            total: batch.total,
            credited: credit,
            refused,
            merchant: merchant.clone(),
        };
        writes.require_absent(BATCHES, &psam_key(&batch.psam, batch.batch_no));
        writes.put(MERCHANTS, merchant.as_str().as_bytes(), &credited);
        for (card, total) in &spent {
            writes.put(CARD_SPENT, card.as_bytes(), total);
        }
        writes.put(
            BATCHES,
            &psam_key(&batch.psam, batch.batch_no),
            &(receipt.clone(), batch.clone()),
        );
        // The checks above ran outside the write; `require_absent` repeats
        // them inside it, so a concurrent collector cannot slip a duplicate in.
        self.db.write(writes).map_err(|e| match e {
            StoreError::AlreadyPresent { .. } => CollectionError::Concurrent,
            other => other.into(),
        })?;
        tracing::debug!(n = batch.count, "psam batch collected");
        Ok(receipt)
    }
}

// Reads that need none of the server's keys: its own methods and the
// auditor's ([`crate::audit`]) are the same functions.

pub(crate) fn spent_by_card_in(db: &Db) -> Result<Vec<(CardId, Amount)>, CollectionError> {
    let mut out = Vec::new();
    for (k, total) in db.scan::<Amount>(CARD_SPENT, &[])? {
        if let Ok(bytes) = <[u8; 8]>::try_from(k.as_slice()) {
            out.push((CardId::from_bytes(bytes), total));
        }
    }
    Ok(out)
}

/// Every card's purchases credited, summed from the collected batches
/// themselves (each entry of a batch less the ones its receipt refused):
/// what the running totals in [`CARD_SPENT`] must say, recomputed by the
/// auditor so that a total that lost an update, or was edited, is seen.
pub(crate) fn collected_by_card_in(
    db: &Db,
) -> Result<std::collections::BTreeMap<CardId, Amount>, CollectionError> {
    let mut out: std::collections::BTreeMap<CardId, Amount> = Default::default();
    for (_, (receipt, batch)) in db.scan::<(BatchReceipt, Batch)>(BATCHES, &[])? {
        for e in &batch.entries {
            let refused = receipt
                .refused
                .iter()
                .any(|r| r.card == e.card && r.nt == e.nt && r.psam_nt == e.psam_nt);
            if refused {
                continue;
            }
            let total = out.entry(e.card).or_insert(Amount::ZERO);
            *total = total
                .checked_add(e.amount)
                .map_err(|_| CollectionError::Overflow)?;
        }
    }
    Ok(out)
}

pub(crate) fn refused_purchases_in(db: &Db) -> Result<Vec<RefusedPurchase>, CollectionError> {
    Ok(db.scan(REFUSED, &[])?.into_iter().map(|(_, r)| r).collect())
}

//! A card system kept in one directory, for the `varietycash card …`
//! commands and the demo: master keys, the LUS log, a durable agency, the
//! collection server, PSAM state files and card images, each in its own
//! file. Every operation loads what it needs from disk and saves the card
//! image afterwards (also after a failure: the image is the card's truth).
//!
//! ```text
//! dir/keys.bin            masters (load, completion, purchase) + batch master, mode 0600
//! dir/lus.redb            LUS log          dir/agency.redb      agency
//! dir/collection.redb     collection       dir/psam-<id>.state  PSAM state
//! dir/card-<id>.img       card images
//! ```

use std::path::{Path, PathBuf};

use ledger::{Amount, BankAccount, CardId, LusId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::agency::{AgencyError, DurableAgency};
use crate::card::{CardError, Eeprom, EepromError, SmartCard};
use crate::clearing::{ClearingError, ClearingReport, clear};
use crate::collection::{BatchReceipt, CollectionError, CollectionServer};
use crate::crypto::{MasterKey, MasterKeys, Suite};
use crate::flows::{CardTerminal, FlowError};
use crate::lus::{CardTerms, LoadUnloadServer, LusError};
use crate::psam::{Psam, PsamError};
use crate::records::CardTxRecord;
use crate::wire::{PsamId, PurchaseProof};

/// Why a card-system operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SystemError {
    #[error("key file: {0}")]
    Keys(String),
    #[error("card {card}: {source}")]
    CardImage { card: CardId, source: EepromError },
    #[error(transparent)]
    Card(#[from] CardError),
    #[error(transparent)]
    Flow(#[from] FlowError),
    #[error(transparent)]
    Lus(#[from] LusError),
    #[error(transparent)]
    Agency(#[from] AgencyError),
    #[error(transparent)]
    Psam(#[from] PsamError),
    #[error(transparent)]
    Collection(#[from] CollectionError),
    #[error(transparent)]
    Clearing(#[from] ClearingError),
    #[error("card {0} already exists")]
    CardExists(CardId),
    #[error("the image of card {wanted} is the image of card {found}")]
    ImageOfAnotherCard { wanted: CardId, found: CardId },
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    masters: MasterKeys,
    batch: MasterKey,
}

/// One LUS, its agency and its collection server over a directory.
#[derive(Debug)]
pub struct CardSystem {
    dir: PathBuf,
    pub lus: LoadUnloadServer,
    pub agency: DurableAgency,
    pub collection: CollectionServer,
    purchase_master: MasterKey,
    batch_master: MasterKey,
    masters: MasterKeys,
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = ledger::private_file::create_new_private(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Reads a secret file, refusing one that group or others may access: card
/// master keys break every card, so a readable copy is treated as leaked.
fn read_private(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} has mode {:o}: group or others may read it; expected 0600",
                path.display(),
                mode & 0o777
            ),
        ));
    }
    std::fs::read(path)
}

impl CardSystem {
    /// Opens the system in `dir`, creating it (and fresh masters of `suite`)
    /// on first use. `suite` is ignored for an existing system.
    pub fn open(dir: &Path, lus_id: LusId, suite: Suite) -> Result<CardSystem, SystemError> {
        let keys_err = |e: std::io::Error| SystemError::Keys(e.to_string());
        ledger::private_file::create_private_dir(dir).map_err(keys_err)?;
        let key_path = dir.join("keys.bin");
        let keys: KeyFile = match read_private(&key_path) {
            Ok(bytes) if bytes.len() <= 4096 => postcard::from_bytes(&bytes)
                .map_err(|_| SystemError::Keys("malformed key file".into()))?,
            Ok(_) => return Err(SystemError::Keys("key file too large".into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let keys = KeyFile {
                    masters: MasterKeys::random(suite),
                    batch: MasterKey::random(suite),
                };
                let bytes = postcard::to_allocvec(&keys)
                    .map_err(|_| SystemError::Keys("cannot encode keys".into()))?;
                write_private(&key_path, &bytes).map_err(keys_err)?;
                keys
            }
            Err(e) => return Err(keys_err(e)),
        };
        let lus = LoadUnloadServer::open(&dir.join("lus.redb"), lus_id, (&keys.masters).into())?;
        let agency = DurableAgency::open(&dir.join("agency.redb"))?;
        let collection = CollectionServer::open(
            &dir.join("collection.redb"),
            keys.masters.purchase.clone(),
            keys.batch.clone(),
        )?;
        Ok(CardSystem {
            dir: dir.to_path_buf(),
            lus,
            agency,
            collection,
            purchase_master: keys.masters.purchase.clone(),
            batch_master: keys.batch,
            masters: keys.masters,
        })
    }

    fn card_path(&self, card: &CardId) -> PathBuf {
        self.dir.join(format!("card-{card}.img"))
    }

    /// Personalises a new card and saves its image.
    pub fn issue_card(
        &self,
        card: CardId,
        expiry: Timestamp,
        balance_max: Amount,
    ) -> Result<SmartCard, SystemError> {
        if self.card_path(&card).exists() {
            return Err(SystemError::CardExists(card));
        }
        let sc = SmartCard::issue(&self.masters, card, expiry, balance_max)?;
        // The LUS learns the limit and expiry from the issuer, not from the card.
        self.lus.register_card(
            &card,
            CardTerms {
                balance_max,
                expiry: Some(expiry),
            },
        )?;
        self.save_card(&sc)?;
        Ok(sc)
    }

    /// Inserts a card: loads its image and powers it up (journal recovery).
    /// Every write the card makes from then on is saved to its file at once.
    pub fn card(&self, card: &CardId) -> Result<SmartCard, SystemError> {
        // Write-through: a process killed in the middle of a card commit
        // leaves the file as a power cut leaves the card.
        let eeprom = Eeprom::open_write_through(&self.card_path(card), SmartCard::IMAGE_BYTES)
            .map_err(|source| SystemError::CardImage {
                card: *card,
                source,
            })?;
        let sc = SmartCard::from_eeprom(eeprom)?;
        // An image copied over another card's file would act as its own
        // card under the other's name (and the other's file would be lost).
        let found = sc.id()?;
        if found != *card {
            return Err(SystemError::ImageOfAnotherCard {
                wanted: *card,
                found,
            });
        }
        Ok(sc)
    }

    pub fn save_card(&self, card: &SmartCard) -> Result<(), SystemError> {
        let id = card.id()?;
        card.eeprom()
            .save(&self.card_path(&id))
            .map_err(|source| SystemError::CardImage { card: id, source })
    }

    fn with_card<T>(
        &self,
        card: &CardId,
        op: impl FnOnce(&mut SmartCard) -> Result<T, SystemError>,
    ) -> Result<T, SystemError> {
        let mut sc = self.card(card)?;
        let result = op(&mut sc);
        // The image is saved whatever happened, power cut included: it is
        // what the card holds, and the next insertion recovers from it.
        sc.eeprom()
            .save(&self.card_path(card))
            .map_err(|source| SystemError::CardImage {
                card: *card,
                source,
            })?;
        result
    }

    pub fn terminal(&self) -> CardTerminal<'_, DurableAgency> {
        CardTerminal::new(&self.lus, &self.agency)
    }

    pub fn load(
        &self,
        card: &CardId,
        amount: Amount,
        holder: &BankAccount,
        now: Timestamp,
    ) -> Result<CardTxRecord, SystemError> {
        self.note_purchases([*card])?;
        self.with_card(card, |sc| {
            Ok(self.terminal().load(sc, amount, holder, now)?)
        })
    }

    pub fn unload(
        &self,
        card: &CardId,
        amount: Amount,
        holder: &BankAccount,
        now: Timestamp,
    ) -> Result<CardTxRecord, SystemError> {
        self.note_purchases([*card])?;
        self.with_card(card, |sc| {
            Ok(self.terminal().unload(sc, amount, holder, now)?)
        })
    }

    /// Presents a card to resolve whatever it left open.
    pub fn resolve(&self, card: &CardId) -> Result<Vec<CardTxRecord>, SystemError> {
        self.with_card(card, |sc| Ok(self.terminal().resolve(sc)?))
    }

    /// The PSAM `psam`, registered to `merchant` at the collection server.
    pub fn psam(&self, psam: PsamId, merchant: &BankAccount) -> Result<Psam, SystemError> {
        self.collection.register_psam(psam, merchant)?;
        let hex: String = psam.0.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Psam::open(
            &self.dir.join(format!("psam-{hex}.state")),
            psam,
            self.purchase_master.clone(),
            self.batch_master.clone(),
        )?)
    }

    /// An off-line purchase of `amount` with `card` at `psam`.
    pub fn pay(
        &self,
        card: &CardId,
        psam: &mut Psam,
        amount: Amount,
        now: Timestamp,
    ) -> Result<PurchaseProof, SystemError> {
        // A purchase left open (the process stopped after the card's debit,
        // before the device booked it) is finished first from the card's
        // log: booked if the card paid, dropped if not. Otherwise the device
        // would stay busy, and the debit would never reach the merchant.
        if let Some(open) = psam.open_card() {
            self.with_card(&open, |sc| Ok(psam.recover(sc)?))?;
        }
        self.with_card(card, |sc| Ok(psam.pay(sc, amount, now)?))
    }

    /// Closes the PSAM's batch and delivers every unsent batch.
    pub fn collect(&self, psam: &mut Psam) -> Result<Vec<BatchReceipt>, SystemError> {
        if psam.running_totals().0 > 0 {
            psam.close_batch()?;
        }
        let mut receipts = Vec::new();
        // What the LUS's log says the card system took in for a card: its
        // committed loads less every unload that has or may commit.
        let intake = |card: &CardId| -> Result<Option<Amount>, CollectionError> {
            let s = self.lus.standing(card).map_err(|e| match e {
                LusError::Store(e) => CollectionError::Store(e),
                other => {
                    CollectionError::Store(crate::store::StoreError::Storage(other.to_string()))
                }
            })?;
            let net = i128::from(s.loaded.minor_units())
                - i128::from(s.unloaded.minor_units())
                - i128::from(s.unloads_open.minor_units());
            Ok(Some(Amount::from_minor(u64::try_from(net).unwrap_or(0))))
        };
        for batch in psam.unsent_batches().to_vec() {
            receipts.push(self.collection.collect_within(&batch, &intake)?);
            psam.acknowledge(batch.batch_no)?;
            self.note_purchases(batch.entries.iter().map(|e| e.card))?;
        }
        Ok(receipts)
    }

    /// Tells the LUS what the collection server has collected from `cards`,
    /// so that it never lets a card unload value it already paid out.
    pub fn note_purchases(
        &self,
        cards: impl IntoIterator<Item = CardId>,
    ) -> Result<(), SystemError> {
        for card in cards {
            self.lus
                .note_collected_purchases(&card, self.collection.spent_by(&card)?)?;
        }
        Ok(())
    }

    /// Tells the LUS every card's collected purchases (before clearing, so
    /// that its report of cards that do not add up is complete).
    pub fn note_all_purchases(&self) -> Result<(), SystemError> {
        for (card, total) in self.collection.spent_by_card()? {
            self.lus.note_collected_purchases(&card, total)?;
        }
        Ok(())
    }

    /// Clears the current period with the agency.
    pub fn clear(&self) -> Result<ClearingReport, SystemError> {
        self.note_all_purchases()?;
        Ok(clear(&self.lus, &self.agency)?)
    }
}

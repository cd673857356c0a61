//! Transfers between card cash and soft cash, as atomic composites over a
//! durable journal (`docs/protocol.md`, "Card cash"):
//! - **Cardcash-to-Softcash** = Unload (issuer as AG) + a coin purchase paid by it;
//! - **Softcash-to-Cardcash** = Redeem to the issuer as AG + Load;
//! - **Card-to-card** = the first onto coins, then the second with those coins.
//!
//! Every step is journaled before the next one starts, and every step is
//! idempotent, so running a transfer again with the same [`TransferId`]
//! after a failure at any point either completes it or finds it undone:
//! value is never created or lost. The issuer is the agency; what the card
//! side needs of it is the [`SoftCash`] trait (the issuer implements it).

use std::fmt;
use std::path::Path;

use ledger::{Amount, BankAccount, CardId, Timestamp};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::agency::{Agency, AgencyError};
use crate::card::{CardError, SmartCard};
use crate::crypto::random_bytes;
use crate::flows::{CardTerminal, FlowError, LossPoint};
use crate::records::{CardTxRecord, LoadId, LoadRequest};
use crate::store::{Db, StoreError, WriteBatch};
use crate::wire::{Direction, Outcome};

/// Identifies one transfer across retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TransferId(pub [u8; 16]);

impl TransferId {
    pub fn random() -> TransferId {
        TransferId(random_bytes())
    }

    /// A sub-transfer's id, derived so that a retry finds the same one.
    pub fn derive(&self, part: &str) -> TransferId {
        let digest = Sha256::new()
            .chain_update(b"vc/card/transfer/part")
            .chain_update(self.0)
            .chain_update(part.as_bytes())
            .finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        TransferId(out)
    }

    /// The account the agency books this transfer's card leg under.
    pub fn holder_account(&self) -> BankAccount {
        let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
        // 5 + 32 characters of [a-z0-9-]: always a valid account.
        #[allow(clippy::expect_used)]
        BankAccount::new(format!("xfer-{hex}")).expect("transfer account is well formed")
    }
}

/// Why the issuer's soft-cash side refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SoftCashError {
    #[error("coins are not valid: {0}")]
    InvalidCoins(String),
    #[error("the unload is not committed at the agency")]
    UnloadNotCommitted,
    #[error("amount does not match")]
    AmountMismatch,
    #[error("issuer: {0}")]
    Issuer(String),
}

/// What the card side needs of the issuer acting as the agency in transfers.
pub trait SoftCash: Agency {
    /// Soft cash as the holder carries it (the issuer's coins, opaque here).
    type Coins: Clone + PartialEq + fmt::Debug + Serialize + DeserializeOwned;

    /// The value of `coins`, as the issuer checks it.
    fn value_of(&self, coins: &Self::Coins) -> Result<Amount, SoftCashError>;

    /// Cardcash-to-Softcash: `unload` is committed and the issuer, as AG,
    /// has credited the transfer's holder account; it buys coins of the same
    /// amount with that credit. Idempotent per `transfer`: the same coins.
    fn buy_coins_with_unload(
        &self,
        transfer: TransferId,
        unload: &CardTxRecord,
    ) -> Result<Self::Coins, SoftCashError>;

    /// Softcash-to-Cardcash: redeems `coins` to the issuer as AG, which then
    /// guarantees `load` (as [`Agency::guarantee`]). The coins are spent when
    /// the load commits ([`Agency::load_committed`]) and valid again if it is
    /// rejected ([`Agency::load_rejected`]). Idempotent per `transfer`.
    fn redeem_for_load(
        &self,
        transfer: TransferId,
        coins: &Self::Coins,
        load: &LoadRequest,
    ) -> Result<(), SoftCashError>;
}

/// One transfer leg in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(serialize = "C: Serialize", deserialize = "C: DeserializeOwned"))]
pub enum TransferStep<C> {
    /// Card to soft cash: the unload is begun on the card as `nt`.
    Unloading {
        card: CardId,
        amount: Amount,
        nt: u32,
        req: LoadRequest,
    },
    /// Card to soft cash done: these coins were bought.
    CoinsIssued { coins: C },
    /// Soft cash to card: the load is begun as `req.l1.nt` against `coins`.
    Loading { coins: C, req: LoadRequest },
    /// Soft cash to card done.
    CardLoaded { record: CardTxRecord },
    /// Undone: nothing moved, and `coins` (if any) are the holder's again.
    Undone { coins: Option<C> },
}

/// How a Cardcash-to-Softcash transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardToSoft<C> {
    Issued(C),
    /// The unload was rejected: the card kept its value.
    Undone,
}

/// How a Softcash-to-Cardcash transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoftToCard<C> {
    Loaded(CardTxRecord),
    /// The load did not happen: the coins are the holder's again.
    Undone(C),
}

/// How a card-to-card transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardToCard<C> {
    Loaded(CardTxRecord),
    /// The payer's unload was rejected: nothing moved.
    Undone,
    /// The payee's card refused the load: the value went back onto the payer's card.
    Returned(CardTxRecord),
    /// Neither card would take the value back: the holder keeps it as coins.
    LeftAsCoins(C),
}

/// Injected failures, for tests: the composite stops right there, as a
/// crash of the process running it would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferFault {
    /// After the card began its leg and the journal recorded it.
    AfterJournal,
    /// After the agency guaranteed (or the coins were redeemed).
    AfterGuarantee,
    /// A message of the card leg is lost.
    Loss(LossPoint),
    /// After the card leg finished, before soft cash was bought.
    BeforeCoins,
    /// After soft cash was bought, before the journal recorded it.
    AfterCoins,
}

/// Why a transfer has not finished (yet): run it again with the same id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    #[error("card flow: {0}")]
    Flow(#[from] FlowError),
    #[error("journal: {0}")]
    Journal(#[from] StoreError),
    #[error("soft cash: {0}")]
    SoftCash(#[from] SoftCashError),
    #[error("agency: {0}")]
    Agency(#[from] AgencyError),
    #[error("the card leg is in doubt until the card can say what happened")]
    InDoubt,
    #[error("this transfer belongs to another card")]
    WrongCard,
    #[error("the journal holds another kind of transfer under this id")]
    WrongKind,
    #[error("this transfer was begun with other coins")]
    OtherCoins,
    #[error("injected failure at {0:?}")]
    Injected(TransferFault),
}

const JOURNAL: &str = "xfer/step";

/// The durable journal of transfers.
#[derive(Debug)]
pub struct TransferJournal {
    db: Db,
}

impl TransferJournal {
    pub fn open(path: &Path) -> Result<TransferJournal, StoreError> {
        Ok(TransferJournal {
            db: Db::open(path)?,
        })
    }

    pub fn step<C: DeserializeOwned>(
        &self,
        id: TransferId,
    ) -> Result<Option<TransferStep<C>>, StoreError> {
        self.db.get(JOURNAL, &id.0)
    }

    fn record<C: Serialize>(
        &self,
        id: TransferId,
        step: &TransferStep<C>,
    ) -> Result<(), StoreError> {
        let mut b = WriteBatch::new();
        b.put(JOURNAL, &id.0, step);
        self.db.write(b)
    }
}

/// Runs transfers through a terminal whose agency is the issuer.
pub struct Transfers<'a, S: SoftCash> {
    pub journal: &'a TransferJournal,
    pub terminal: CardTerminal<'a, S>,
    pub issuer: &'a S,
}

fn inject(fault: Option<TransferFault>, at: TransferFault) -> Result<(), TransferError> {
    match fault {
        Some(f) if f == at => Err(TransferError::Injected(at)),
        _ => Ok(()),
    }
}

fn loss(fault: Option<TransferFault>) -> Option<LossPoint> {
    match fault {
        Some(TransferFault::Loss(l)) => Some(l),
        _ => None,
    }
}

impl<'a, S: SoftCash> Transfers<'a, S> {
    pub fn new(journal: &'a TransferJournal, terminal: CardTerminal<'a, S>, issuer: &'a S) -> Self {
        Transfers {
            journal,
            terminal,
            issuer,
        }
    }

    /// The final record of a card leg, after presenting the card again, or
    /// `None` if the card leg never reached the agency (its pending slot has
    /// then been aborted by the resolution).
    fn settle_leg(
        &self,
        card: &mut SmartCard,
        req: &LoadRequest,
    ) -> Result<Option<CardTxRecord>, TransferError> {
        let id = card.id()?;
        if id != req.l1.card {
            return Err(TransferError::WrongCard);
        }
        self.terminal.resolve(card).map_err(TransferError::Flow)?;
        if let Some(rec) = self
            .terminal
            .lus
            .report_for(&id, req.l1.nt)
            .map_err(FlowError::from)?
        {
            return Ok(Some(rec));
        }
        let guaranteed = self
            .issuer
            .open_guarantees(&id)?
            .iter()
            .any(|g| g.load_id == req.load_id);
        let at_lus = self
            .terminal
            .lus
            .record(&id, req.l1.nt)
            .map_err(FlowError::from)?;
        if !guaranteed && at_lus.is_none() && card.info()?.pending.is_none() {
            // Never reached the agency; a rejection the agency already
            // recorded would have shown up in its finished records.
            return Ok(None);
        }
        Err(TransferError::InDoubt)
    }

    /// Cardcash-to-Softcash: unloads `amount` from `card` and buys coins with it.
    pub fn card_to_soft(
        &self,
        id: TransferId,
        card: &mut SmartCard,
        amount: Amount,
        now: Timestamp,
        fault: Option<TransferFault>,
    ) -> Result<CardToSoft<S::Coins>, TransferError> {
        let rec = match self.journal.step::<S::Coins>(id)? {
            Some(TransferStep::CoinsIssued { coins }) => return Ok(CardToSoft::Issued(coins)),
            Some(TransferStep::Undone { .. }) => return Ok(CardToSoft::Undone),
            Some(TransferStep::Unloading { req, .. }) => match self.settle_leg(card, &req)? {
                Some(rec) => rec,
                None => {
                    self.journal
                        .record(id, &TransferStep::<S::Coins>::Undone { coins: None })?;
                    return Ok(CardToSoft::Undone);
                }
            },
            Some(_) => return Err(TransferError::WrongKind),
            None => {
                self.terminal.resolve(card)?;
                let l1 = card.begin(Direction::Unload, amount, now)?;
                let req = LoadRequest {
                    load_id: LoadId::random(),
                    lus: self.terminal.lus.id(),
                    holder: id.holder_account(),
                    l1,
                };
                self.journal.record(
                    id,
                    &TransferStep::<S::Coins>::Unloading {
                        card: req.l1.card,
                        amount,
                        nt: req.l1.nt,
                        req: req.clone(),
                    },
                )?;
                inject(fault, TransferFault::AfterJournal)?;
                self.issuer.guarantee(&req)?;
                inject(fault, TransferFault::AfterGuarantee)?;
                self.terminal.forward(card, &req, loss(fault))?
            }
        };
        if rec.outcome == Outcome::Rejected {
            self.journal
                .record(id, &TransferStep::<S::Coins>::Undone { coins: None })?;
            return Ok(CardToSoft::Undone);
        }
        inject(fault, TransferFault::BeforeCoins)?;
        let coins = self.issuer.buy_coins_with_unload(id, &rec)?;
        inject(fault, TransferFault::AfterCoins)?;
        self.journal.record(
            id,
            &TransferStep::CoinsIssued {
                coins: coins.clone(),
            },
        )?;
        Ok(CardToSoft::Issued(coins))
    }

    /// Softcash-to-Cardcash: redeems `coins` to the issuer and loads their
    /// value onto `card`.
    pub fn soft_to_card(
        &self,
        id: TransferId,
        card: &mut SmartCard,
        coins: &S::Coins,
        now: Timestamp,
        fault: Option<TransferFault>,
    ) -> Result<SoftToCard<S::Coins>, TransferError> {
        let step = self.journal.step::<S::Coins>(id)?;
        // A retry names the transfer by its id, and must bring the same coins:
        // a caller that took the journal's word for coins it did not send
        // would write off its own coins as spent.
        let journaled = match &step {
            Some(TransferStep::Loading { coins, .. }) => Some(coins),
            Some(TransferStep::Undone { coins: Some(c) }) => Some(c),
            _ => None,
        };
        if journaled.is_some_and(|c| c != coins) {
            return Err(TransferError::OtherCoins);
        }
        let (coins, rec) = match step {
            Some(TransferStep::CardLoaded { record }) => return Ok(SoftToCard::Loaded(record)),
            Some(TransferStep::Undone { coins: Some(c) }) => return Ok(SoftToCard::Undone(c)),
            Some(TransferStep::Loading { coins, req }) => match self.settle_leg(card, &req)? {
                Some(rec) => (coins, rec),
                None => {
                    self.journal.record(
                        id,
                        &TransferStep::Undone {
                            coins: Some(coins.clone()),
                        },
                    )?;
                    return Ok(SoftToCard::Undone(coins));
                }
            },
            Some(_) => return Err(TransferError::WrongKind),
            None => {
                let amount = self.issuer.value_of(coins)?;
                self.terminal.resolve(card)?;
                let l1 = card.begin(Direction::Load, amount, now)?;
                let req = LoadRequest {
                    load_id: LoadId::random(),
                    lus: self.terminal.lus.id(),
                    holder: id.holder_account(),
                    l1,
                };
                self.journal.record(
                    id,
                    &TransferStep::Loading {
                        coins: coins.clone(),
                        req: req.clone(),
                    },
                )?;
                inject(fault, TransferFault::AfterJournal)?;
                self.issuer.redeem_for_load(id, coins, &req)?;
                inject(fault, TransferFault::AfterGuarantee)?;
                let rec = self.terminal.forward(card, &req, loss(fault))?;
                (coins.clone(), rec)
            }
        };
        match rec.outcome {
            Outcome::Committed => {
                self.journal.record(
                    id,
                    &TransferStep::<S::Coins>::CardLoaded {
                        record: rec.clone(),
                    },
                )?;
                Ok(SoftToCard::Loaded(rec))
            }
            Outcome::Rejected => {
                self.journal.record(
                    id,
                    &TransferStep::Undone {
                        coins: Some(coins.clone()),
                    },
                )?;
                Ok(SoftToCard::Undone(coins))
            }
        }
    }

    /// Card-to-card through the issuer: `from` onto coins, the coins onto
    /// `to`; if `to` will not take them, back onto `from`.
    pub fn card_to_card(
        &self,
        id: TransferId,
        from: &mut SmartCard,
        to: &mut SmartCard,
        amount: Amount,
        now: Timestamp,
        fault: Option<TransferFault>,
    ) -> Result<CardToCard<S::Coins>, TransferError> {
        let coins = match self.card_to_soft(id.derive("unload"), from, amount, now, fault)? {
            CardToSoft::Issued(c) => c,
            CardToSoft::Undone => return Ok(CardToCard::Undone),
        };
        let load_id = id.derive("load");
        let coins = match self.soft_to_card(load_id, to, &coins, now, fault) {
            Ok(SoftToCard::Loaded(rec)) => return Ok(CardToCard::Loaded(rec)),
            Ok(SoftToCard::Undone(c)) => c,
            // The payee's card refused L1 outright (limit, blocked, expired):
            // nothing was journaled or redeemed, so the value goes back.
            Err(TransferError::Flow(FlowError::Card(e)))
                if is_refusal(&e) && self.journal.step::<S::Coins>(load_id)?.is_none() =>
            {
                self.journal.record(
                    load_id,
                    &TransferStep::Undone {
                        coins: Some(coins.clone()),
                    },
                )?;
                coins
            }
            Err(e) => return Err(e),
        };
        match self.soft_to_card(id.derive("return"), from, &coins, now, None)? {
            SoftToCard::Loaded(rec) => Ok(CardToCard::Returned(rec)),
            SoftToCard::Undone(c) => Ok(CardToCard::LeftAsCoins(c)),
        }
    }
}

/// A card's refusal to begin, as opposed to a failure to finish.
fn is_refusal(e: &CardError) -> bool {
    matches!(
        e,
        CardError::OverMaximum { .. }
            | CardError::InsufficientBalance { .. }
            | CardError::Blocked
            | CardError::Expired
            | CardError::ZeroAmount
            | CardError::CounterExhausted
    )
}

impl From<crate::card::CardError> for TransferError {
    fn from(e: crate::card::CardError) -> TransferError {
        TransferError::Flow(FlowError::Card(e))
    }
}

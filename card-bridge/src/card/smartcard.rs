//! The card itself. Its rules, each enforced here:
//! - NT is incremented and committed to memory before any MAC leaves the card;
//! - one pending load/unload at a time; starting another aborts it (the abort
//!   is logged with `R'_SM`, so the LUS can later be shown the reject proof);
//! - every balance change is one journal commit with its log record;
//! - `R'_SM` is revealed only after the abort is committed, so a card that
//!   revealed it can never credit that NT.

use ledger::{Amount, CardId, Timestamp};
use serde::{Deserialize, Serialize};

use super::eeprom::{Eeprom, EepromError, TearAfter};
use super::persist::{self, IMAGE_BYTES, PersistError, Segment};
use crate::constants::{CARD_LOG_ENTRIES, CARD_LOG_SLOTS};
use crate::crypto::{CardKeys, Mac, MasterKeys, Suite, random_bytes};
use crate::wire::{
    CardProof, Direction, L1, L2, L3, Nonce, Outcome, PsamId, PurchaseProof, PurchaseRequest,
    RejectProof, reject_commitment, s2_input, s3_input,
};

/// Whether the card may transact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CardStatus {
    Active,
    Blocked,
}

/// What kind of transaction a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TxKind {
    Load,
    Unload,
    Purchase,
}

impl From<Direction> for TxKind {
    fn from(d: Direction) -> TxKind {
        match d {
            Direction::Load => TxKind::Load,
            Direction::Unload => TxKind::Unload,
        }
    }
}

/// What the card needs to answer for a finished transaction later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordDetail {
    /// A completed load or unload: `R_LUS` lets the card recompute S3.
    Lus { r_lus: Nonce },
    /// An aborted load or unload: `R'_SM` is the reject proof.
    Aborted { r_sm_prime: Nonce },
    /// A purchase at a PSAM.
    Psam {
        psam: PsamId,
        psam_nt: u32,
        r_psam: Nonce,
    },
}

/// One entry of the card's log (and its "last transaction record").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRecord {
    pub nt: u32,
    pub kind: TxKind,
    pub amount: Amount,
    pub balance_after: Amount,
    pub outcome: Outcome,
    pub detail: RecordDetail,
}

/// The pending-transaction slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTx {
    pub direction: Direction,
    pub nt: u32,
    pub amount: Amount,
    r_sm: Nonce,
    r_sm_prime: Nonce,
    s1: Mac,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Personalisation {
    card: CardId,
    expiry: Timestamp,
    balance_max: Amount,
    keys: CardKeys,
}

/// What anyone may read from a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardInfo {
    pub card: CardId,
    pub suite: Suite,
    pub expiry: Timestamp,
    pub status: CardStatus,
    pub balance: Amount,
    pub balance_max: Amount,
    pub nt: u32,
    pub pending: Option<(Direction, u32)>,
}

/// Why the card refused or could not act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CardError {
    #[error("card memory: {0}")]
    Memory(#[from] PersistError),
    #[error("the card has no power: power it up again")]
    NoPower,
    #[error("card is blocked")]
    Blocked,
    #[error("card has expired")]
    Expired,
    #[error("amount must be positive")]
    ZeroAmount,
    #[error("balance {balance} plus {amount} exceeds the maximum {balance_max}")]
    OverMaximum {
        balance: Amount,
        amount: Amount,
        balance_max: Amount,
    },
    #[error("balance {balance} is less than {amount}")]
    InsufficientBalance { balance: Amount, amount: Amount },
    #[error("transaction counter exhausted")]
    CounterExhausted,
    #[error("no pending transaction matches this message")]
    NoMatchingPending,
    #[error("message is for another card")]
    WrongCard,
    #[error("mac does not verify")]
    BadMac,
}

impl From<EepromError> for CardError {
    fn from(e: EepromError) -> CardError {
        CardError::Memory(PersistError::Eeprom(e))
    }
}

#[derive(Debug, Clone)]
struct Ram {
    perso: Personalisation,
    status: CardStatus,
    nt: u32,
    balance: Amount,
    pending: Option<PendingTx>,
    last: Option<TxRecord>,
    /// Next slot of each ring: `[loads and unloads, purchases]`.
    log_head: [u8; 2],
    log: Vec<Option<TxRecord>>,
}

/// A stored-value card: its memory image and, while powered, its state.
#[derive(Debug, Clone)]
pub struct SmartCard {
    eeprom: Eeprom,
    ram: Option<Ram>,
}

fn enc<T: Serialize>(seg: Segment, v: &T) -> Result<(Segment, Vec<u8>), CardError> {
    Ok((seg, persist::encode(seg, v)?))
}

impl SmartCard {
    /// Personalises a new card: diversified keys from `masters`, zero balance.
    pub fn issue(
        masters: &MasterKeys,
        card: CardId,
        expiry: Timestamp,
        balance_max: Amount,
    ) -> Result<SmartCard, CardError> {
        let perso = Personalisation {
            card,
            expiry,
            balance_max,
            keys: masters.card_keys(&card),
        };
        let mut segments = vec![
            enc(Segment::Personalisation, &perso)?,
            enc(Segment::Status, &CardStatus::Active)?,
            enc(Segment::Counter, &0u32)?,
            enc(Segment::Balance, &Amount::ZERO)?,
            enc(Segment::Pending, &None::<PendingTx>)?,
            enc(Segment::LastRecord, &None::<TxRecord>)?,
            enc(Segment::LogHead, &[0u8; 2])?,
        ];
        for i in 0..CARD_LOG_SLOTS as u8 {
            segments.push(enc(Segment::Log(i), &None::<TxRecord>)?);
        }
        let mut eeprom = Eeprom::blank(IMAGE_BYTES);
        persist::format(&mut eeprom, &segments)?;
        SmartCard::from_eeprom(eeprom)
    }

    /// Powers up a card from its memory: recovers the journal, loads state.
    pub fn from_eeprom(eeprom: Eeprom) -> Result<SmartCard, CardError> {
        let mut card = SmartCard { eeprom, ram: None };
        card.power_up()?;
        Ok(card)
    }

    /// Size of every card image, in bytes.
    pub const IMAGE_BYTES: usize = IMAGE_BYTES;

    /// Restores power: journal recovery first, then state from memory.
    pub fn power_up(&mut self) -> Result<(), CardError> {
        self.eeprom.power_on();
        persist::recover(&mut self.eeprom)?;
        let e = &self.eeprom;
        let mut log = Vec::with_capacity(CARD_LOG_SLOTS);
        for i in 0..CARD_LOG_SLOTS as u8 {
            log.push(persist::read(e, Segment::Log(i))?);
        }
        let log_head: [u8; 2] = persist::read(e, Segment::LogHead)?;
        if log_head.iter().any(|h| usize::from(*h) >= CARD_LOG_ENTRIES) {
            return Err(PersistError::Corrupt(Segment::LogHead).into());
        }
        self.ram = Some(Ram {
            perso: persist::read(e, Segment::Personalisation)?,
            status: persist::read(e, Segment::Status)?,
            nt: persist::read(e, Segment::Counter)?,
            balance: persist::read(e, Segment::Balance)?,
            pending: persist::read(e, Segment::Pending)?,
            last: persist::read(e, Segment::LastRecord)?,
            log_head,
            log,
        });
        Ok(())
    }

    /// Arms (or disarms) a power cut after the n-th memory write from now.
    pub fn arm_tear(&mut self, tear: Option<TearAfter>) {
        self.eeprom.arm(tear);
    }

    pub fn is_powered(&self) -> bool {
        self.ram.is_some() && self.eeprom.is_powered()
    }

    pub fn eeprom(&self) -> &Eeprom {
        &self.eeprom
    }

    fn ram(&self) -> Result<&Ram, CardError> {
        match (&self.ram, self.eeprom.is_powered()) {
            (Some(r), true) => Ok(r),
            _ => Err(CardError::NoPower),
        }
    }

    /// Commits `updates`; on any failure the card goes dark and its RAM is
    /// lost, as a real card's would be.
    fn commit(&mut self, updates: &[(Segment, Vec<u8>)]) -> Result<(), CardError> {
        match persist::commit(&mut self.eeprom, updates) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.ram = None;
                Err(e.into())
            }
        }
    }

    pub fn id(&self) -> Result<CardId, CardError> {
        Ok(self.ram()?.perso.card)
    }

    pub fn info(&self) -> Result<CardInfo, CardError> {
        let r = self.ram()?;
        Ok(CardInfo {
            card: r.perso.card,
            suite: r.perso.keys.load.suite(),
            expiry: r.perso.expiry,
            status: r.status,
            balance: r.balance,
            balance_max: r.perso.balance_max,
            nt: r.nt,
            pending: r.pending.as_ref().map(|p| (p.direction, p.nt)),
        })
    }

    pub fn balance(&self) -> Result<Amount, CardError> {
        Ok(self.ram()?.balance)
    }

    /// Both logs merged, oldest NT first.
    pub fn log(&self) -> Result<Vec<TxRecord>, CardError> {
        let mut out: Vec<TxRecord> = self.ram()?.log.iter().flatten().cloned().collect();
        out.sort_by_key(|r| r.nt);
        Ok(out)
    }

    /// Blocks the card (e.g. reported lost): one committed write.
    pub fn block(&mut self) -> Result<(), CardError> {
        self.ram()?;
        self.commit(&[enc(Segment::Status, &CardStatus::Blocked)?])?;
        if let Some(r) = self.ram.as_mut() {
            r.status = CardStatus::Blocked;
        }
        Ok(())
    }

    fn check_usable(r: &Ram, now: Timestamp) -> Result<(), CardError> {
        if r.status != CardStatus::Active {
            return Err(CardError::Blocked);
        }
        if now >= r.perso.expiry {
            return Err(CardError::Expired);
        }
        Ok(())
    }

    /// Which ring a record goes to: 0 for loads and unloads, 1 for purchases.
    fn ring(kind: TxKind) -> usize {
        match kind {
            TxKind::Load | TxKind::Unload => 0,
            TxKind::Purchase => 1,
        }
    }

    /// The log slot `record` takes and the ring heads after it.
    fn next_slot(r: &Ram, record: &TxRecord) -> (u8, [u8; 2]) {
        let ring = Self::ring(record.kind);
        let head = usize::from(r.log_head[ring]);
        let mut heads = r.log_head;
        heads[ring] = ((head + 1) % CARD_LOG_ENTRIES) as u8;
        ((ring * CARD_LOG_ENTRIES + head) as u8, heads)
    }

    /// Segments that append `record` to its log and make it the last record.
    fn record_updates(r: &Ram, record: &TxRecord) -> Result<Vec<(Segment, Vec<u8>)>, CardError> {
        let (slot, heads) = Self::next_slot(r, record);
        Ok(vec![
            enc(Segment::Log(slot), &Some(record.clone()))?,
            enc(Segment::LogHead, &heads)?,
            enc(Segment::LastRecord, &Some(record.clone()))?,
        ])
    }

    fn apply_record(r: &mut Ram, record: TxRecord) {
        let (slot, heads) = Self::next_slot(r, &record);
        r.log[usize::from(slot)] = Some(record.clone());
        r.log_head = heads;
        r.last = Some(record);
    }

    fn aborted_record(r: &Ram, p: &PendingTx) -> TxRecord {
        TxRecord {
            nt: p.nt,
            kind: p.direction.into(),
            amount: p.amount,
            balance_after: r.balance,
            outcome: Outcome::Rejected,
            detail: RecordDetail::Aborted {
                r_sm_prime: p.r_sm_prime,
            },
        }
    }

    /// Step 1 of Load/Unload: a new NT, committed with the pending slot,
    /// then L1 with S1. A pending transaction is aborted in the same commit.
    pub fn begin(
        &mut self,
        direction: Direction,
        amount: Amount,
        now: Timestamp,
    ) -> Result<L1, CardError> {
        let r = self.ram()?.clone();
        Self::check_usable(&r, now)?;
        if amount.is_zero() {
            return Err(CardError::ZeroAmount);
        }
        match direction {
            Direction::Load => {
                let fits = r
                    .balance
                    .checked_add(amount)
                    .map(|b| b <= r.perso.balance_max)
                    .unwrap_or(false);
                if !fits {
                    return Err(CardError::OverMaximum {
                        balance: r.balance,
                        amount,
                        balance_max: r.perso.balance_max,
                    });
                }
            }
            Direction::Unload => {
                if r.balance < amount {
                    return Err(CardError::InsufficientBalance {
                        balance: r.balance,
                        amount,
                    });
                }
            }
        }
        let nt = r.nt.checked_add(1).ok_or(CardError::CounterExhausted)?;
        let r_sm: Nonce = random_bytes();
        let r_sm_prime: Nonce = random_bytes();
        let (last_nt, last_outcome) = match &r.last {
            Some(rec) => (rec.nt, Some(rec.outcome)),
            None => (0, None),
        };
        let mut l1 = L1 {
            direction,
            card: r.perso.card,
            nt,
            amount,
            balance: r.balance,
            balance_max: r.perso.balance_max,
            last_nt,
            last_outcome,
            r_sm,
            commitment: reject_commitment(&r.perso.card, nt, &r_sm_prime),
            s1: Mac::from_slice(&[]).ok_or(CardError::BadMac)?,
        };
        l1.s1 = l1.s1_input().sign(&r.perso.keys.load);
        let pending = PendingTx {
            direction,
            nt,
            amount,
            r_sm,
            r_sm_prime,
            s1: l1.s1,
        };
        let mut updates = vec![
            enc(Segment::Counter, &nt)?,
            enc(Segment::Pending, &Some(pending.clone()))?,
        ];
        let aborted = r.pending.as_ref().map(|p| Self::aborted_record(&r, p));
        if let Some(rec) = &aborted {
            updates.extend(Self::record_updates(&r, rec)?);
        }
        self.commit(&updates)?;
        if let Some(ram) = self.ram.as_mut() {
            ram.nt = nt;
            ram.pending = Some(pending);
            if let Some(rec) = aborted {
                Self::apply_record(ram, rec);
            }
        }
        // Only now, with NT and the pending slot durable, does S1 leave the card.
        Ok(l1)
    }

    /// Step 4: checks S2 against the pending slot, credits or debits in one
    /// commit, then answers L3 with S3.
    pub fn complete(&mut self, l2: &L2) -> Result<L3, CardError> {
        let r = self.ram()?.clone();
        if l2.card != r.perso.card {
            return Err(CardError::WrongCard);
        }
        let p = r
            .pending
            .clone()
            .filter(|p| p.nt == l2.nt && p.direction == l2.direction && p.amount == l2.amount)
            .ok_or(CardError::NoMatchingPending)?;
        s2_input(
            p.direction,
            &r.perso.card,
            p.nt,
            p.amount,
            &p.r_sm,
            &l2.r_lus,
            &p.s1,
        )
        .verify(&r.perso.keys.load, &l2.s2)
        .map_err(|_| CardError::BadMac)?;
        let new_balance = match p.direction {
            Direction::Load => r
                .balance
                .checked_add(p.amount)
                .ok()
                .filter(|b| *b <= r.perso.balance_max)
                .ok_or(CardError::OverMaximum {
                    balance: r.balance,
                    amount: p.amount,
                    balance_max: r.perso.balance_max,
                })?,
            Direction::Unload => {
                r.balance
                    .checked_sub(p.amount)
                    .map_err(|_| CardError::InsufficientBalance {
                        balance: r.balance,
                        amount: p.amount,
                    })?
            }
        };
        let record = TxRecord {
            nt: p.nt,
            kind: p.direction.into(),
            amount: p.amount,
            balance_after: new_balance,
            outcome: Outcome::Committed,
            detail: RecordDetail::Lus { r_lus: l2.r_lus },
        };
        let mut updates = vec![
            enc(Segment::Balance, &new_balance)?,
            enc(Segment::Pending, &None::<PendingTx>)?,
        ];
        updates.extend(Self::record_updates(&r, &record)?);
        self.commit(&updates)?;
        if let Some(ram) = self.ram.as_mut() {
            ram.balance = new_balance;
            ram.pending = None;
            Self::apply_record(ram, record);
        }
        self.l3_for(p.direction, p.nt, p.amount, new_balance, &l2.r_lus)
    }

    fn l3_for(
        &self,
        direction: Direction,
        nt: u32,
        amount: Amount,
        new_balance: Amount,
        r_lus: &Nonce,
    ) -> Result<L3, CardError> {
        let r = self.ram()?;
        let s3 = s3_input(direction, &r.perso.card, nt, amount, new_balance, r_lus)
            .sign(&r.perso.keys.completion);
        Ok(L3 {
            direction,
            card: r.perso.card,
            nt,
            amount,
            new_balance,
            s3,
        })
    }

    /// Aborts the pending transaction and, once that is committed, reveals
    /// `R'_SM`: the card will never complete that NT.
    pub fn reject_pending(&mut self) -> Result<RejectProof, CardError> {
        let r = self.ram()?.clone();
        let p = r.pending.clone().ok_or(CardError::NoMatchingPending)?;
        let record = Self::aborted_record(&r, &p);
        let mut updates = vec![enc(Segment::Pending, &None::<PendingTx>)?];
        updates.extend(Self::record_updates(&r, &record)?);
        self.commit(&updates)?;
        if let Some(ram) = self.ram.as_mut() {
            ram.pending = None;
            Self::apply_record(ram, record);
        }
        Ok(RejectProof {
            direction: p.direction,
            card: r.perso.card,
            nt: p.nt,
            r_sm_prime: p.r_sm_prime,
        })
    }

    /// What became of transaction `nt`, for a LUS resolving an in-doubt one.
    pub fn prove(&self, direction: Direction, nt: u32) -> Result<CardProof, CardError> {
        let r = self.ram()?;
        if r.pending
            .as_ref()
            .is_some_and(|p| p.nt == nt && p.direction == direction)
        {
            return Ok(CardProof::Pending);
        }
        let kind: TxKind = direction.into();
        let Some(rec) = r
            .log
            .iter()
            .flatten()
            .find(|rec| rec.nt == nt && rec.kind == kind)
        else {
            return Ok(CardProof::Unknown);
        };
        Ok(match &rec.detail {
            RecordDetail::Lus { r_lus } => CardProof::Completed(self.l3_for(
                direction,
                nt,
                rec.amount,
                rec.balance_after,
                r_lus,
            )?),
            RecordDetail::Aborted { r_sm_prime } => CardProof::Rejected(RejectProof {
                direction,
                card: r.perso.card,
                nt,
                r_sm_prime: *r_sm_prime,
            }),
            RecordDetail::Psam { .. } => CardProof::Unknown,
        })
    }

    /// An off-line purchase: checks the PSAM's MAC, debits with a new NT in
    /// one commit, then answers with its MAC under the purchase key.
    pub fn purchase(
        &mut self,
        req: &PurchaseRequest,
        now: Timestamp,
    ) -> Result<PurchaseProof, CardError> {
        let r = self.ram()?.clone();
        Self::check_usable(&r, now)?;
        if req.card != r.perso.card {
            return Err(CardError::WrongCard);
        }
        req.mac_input()
            .verify(&r.perso.keys.purchase, &req.mac)
            .map_err(|_| CardError::BadMac)?;
        if req.amount.is_zero() {
            return Err(CardError::ZeroAmount);
        }
        let balance_after =
            r.balance
                .checked_sub(req.amount)
                .map_err(|_| CardError::InsufficientBalance {
                    balance: r.balance,
                    amount: req.amount,
                })?;
        let nt = r.nt.checked_add(1).ok_or(CardError::CounterExhausted)?;
        let record = TxRecord {
            nt,
            kind: TxKind::Purchase,
            amount: req.amount,
            balance_after,
            outcome: Outcome::Committed,
            detail: RecordDetail::Psam {
                psam: req.psam,
                psam_nt: req.psam_nt,
                r_psam: req.r_psam,
            },
        };
        let mut updates = vec![
            enc(Segment::Counter, &nt)?,
            enc(Segment::Balance, &balance_after)?,
        ];
        updates.extend(Self::record_updates(&r, &record)?);
        self.commit(&updates)?;
        if let Some(ram) = self.ram.as_mut() {
            ram.nt = nt;
            ram.balance = balance_after;
            Self::apply_record(ram, record);
        }
        self.purchase_proof_for(nt)
    }

    fn purchase_proof_for(&self, nt: u32) -> Result<PurchaseProof, CardError> {
        let r = self.ram()?;
        let rec = r
            .log
            .iter()
            .flatten()
            .find(|rec| rec.nt == nt && rec.kind == TxKind::Purchase)
            .ok_or(CardError::NoMatchingPending)?;
        let RecordDetail::Psam {
            psam,
            psam_nt,
            r_psam,
        } = rec.detail
        else {
            return Err(CardError::NoMatchingPending);
        };
        let mut proof = PurchaseProof {
            card: r.perso.card,
            nt,
            psam,
            psam_nt,
            amount: rec.amount,
            balance_after: rec.balance_after,
            r_psam,
            mac: Mac::from_slice(&[]).ok_or(CardError::BadMac)?,
        };
        proof.mac = proof.mac_input().sign(&r.perso.keys.purchase);
        Ok(proof)
    }

    /// Purchase recovery: if the card debited for `(psam, psam_nt)` but the
    /// proof never reached the PSAM (a tear), the card gives it again.
    pub fn purchase_proof(
        &self,
        psam: PsamId,
        psam_nt: u32,
    ) -> Result<Option<PurchaseProof>, CardError> {
        let r = self.ram()?;
        let found = r.log.iter().flatten().find(|rec| {
            matches!(rec.detail, RecordDetail::Psam { psam: p, psam_nt: n, .. } if p == psam && n == psam_nt)
        });
        match found {
            Some(rec) => Ok(Some(self.purchase_proof_for(rec.nt)?)),
            None => Ok(None),
        }
    }
}

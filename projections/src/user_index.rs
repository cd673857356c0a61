//! The user index: participant → coins issued to them (non-anonymous
//! purchases, refreshes, refunds: `CoinsIssued` with a holder), their bank
//! account and aggregate balance, and who bought which purchase. It is the
//! only projection that unseals identities and bank accounts, through the
//! [`Unsealer`] it is given, and it lives in its own file, apart from the
//! coin-status and accounts files.
//!
//! Looking up who withdrew a coin ([`UserIndex::who_withdrew`]) is explicit
//! and logged: it returns the identity together with the
//! `IdentityDisclosed` event the caller must append; applying that event
//! records the disclosure here too ([`UserIndex::disclosures`]).
//!
//! **Invariant:** identities are never logged through `tracing`; the
//! participant's `Debug` form is redacted by `ledger`.

use ledger::{
    BalanceId, BankAccount, CoinBody, CoinId, DisclosureSubject, Event, ParticipantId, PurchaseId,
    Record, SealedBankAccount, SealedIdentity, Seq,
};

use crate::coin_status::{CoinState, CoinStatusEntry, coin_id, entry_bytes, read_entry};
use crate::constants::DISCLOSURE_TEXT_BYTES_MAX;
use crate::error::{ProjectionError, UnsealError};
use crate::framework::{Projection, ProjectionDb};
use crate::state::{StateRead, StateWrite, TableName};

const HOLDINGS: TableName = "user_index.holdings";
const COIN_HOLDER: TableName = "user_index.coin_holder";
const BANK_ACCOUNTS: TableName = "user_index.bank_accounts";
const BALANCES: TableName = "user_index.balances";
const PURCHASERS: TableName = "user_index.purchasers";
const DISCLOSURES: TableName = "user_index.disclosures";
/// Disclosures approved by two operators, by the record that logged them:
/// the subject's tag (0 coin, 1 purchase) and id.
const DUAL_DISCLOSURES: TableName = "user_index.dual_disclosures";

/// Opens sealed identity fields. The issuer implements it with the protocol
/// crate's identity unsealer (RSA-OAEP under the user-index key); this crate
/// does not depend on `protocol`. Unsealing must be deterministic: the same
/// sealed bytes always open to the same value (replay depends on it).
pub trait Unsealer: Send + Sync {
    fn unseal_identity(&self, sealed: &SealedIdentity) -> Result<ParticipantId, UnsealError>;
    fn unseal_account(&self, sealed: &SealedBankAccount) -> Result<BankAccount, UnsealError>;
}

/// The user-index projection: pure apply, given its unsealer.
pub struct UserIndexModel {
    unsealer: Box<dyn Unsealer>,
}

impl UserIndexModel {
    pub fn new(unsealer: impl Unsealer + 'static) -> UserIndexModel {
        UserIndexModel {
            unsealer: Box::new(unsealer),
        }
    }
}

/// The user index in its own redb file.
pub type UserIndex = ProjectionDb<UserIndexModel>;

/// The answer to a law-enforcement lookup: the identity, and the event the
/// caller must append so that the disclosure is on the log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "the disclosure event must be appended to the log"]
pub struct Disclosure {
    pub participant: ParticipantId,
    /// `Event::IdentityDisclosed { coin, requester, reason }`.
    pub event: Event,
}

/// Why a lookup of who withdrew a coin was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DisclosureError {
    #[error("coin {0} was not issued to a known participant (anonymous, unknown or erased)")]
    NotAttributed(CoinId),
    #[error("requester and reason must each be 1 to {DISCLOSURE_TEXT_BYTES_MAX} bytes")]
    BadText,
    #[error(transparent)]
    Projection(#[from] ProjectionError),
}

fn participant_prefix(participant: &ParticipantId) -> Vec<u8> {
    let bytes = participant.as_str().as_bytes();
    let mut out = Vec::with_capacity(1 + bytes.len() + 16);
    // A participant id is at most 64 bytes (ledger's limit), so its length fits a byte.
    out.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(bytes);
    out
}

fn holding_key(participant: &ParticipantId, id: &CoinId) -> Vec<u8> {
    let mut key = participant_prefix(participant);
    key.extend_from_slice(id.as_bytes());
    key
}

fn read_participant(table: TableName, bytes: &[u8]) -> Result<ParticipantId, ProjectionError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| ParticipantId::new(s).ok())
        .ok_or(ProjectionError::Corrupt {
            table,
            reason: "not a participant id",
        })
}

// --- queries -------------------------------------------------------------------

/// Every coin issued to `participant`, with its state, in ascending id order.
pub fn coins_of(
    state: &dyn StateRead,
    participant: &ParticipantId,
) -> Result<Vec<CoinStatusEntry>, ProjectionError> {
    let prefix = participant_prefix(participant);
    let mut out = Vec::new();
    state.scan_prefix(HOLDINGS, &prefix, &mut |k, v| {
        let id = coin_id(HOLDINGS, k.get(prefix.len()..).unwrap_or_default())?;
        out.push(read_entry(id, v)?);
        Ok(true)
    })?;
    Ok(out)
}

/// The coins issued to `participant` that are not spent or revoked (what a refund revokes).
pub fn unspent_coins_of(
    state: &dyn StateRead,
    participant: &ParticipantId,
) -> Result<Vec<CoinBody>, ProjectionError> {
    Ok(coins_of(state, participant)?
        .into_iter()
        .filter(|e| e.state == CoinState::Unspent)
        .map(|e| e.body)
        .collect())
}

/// The participant a coin was issued to, if it was issued non-anonymously.
pub fn holder_of(
    state: &dyn StateRead,
    coin: &CoinId,
) -> Result<Option<ParticipantId>, ProjectionError> {
    state
        .get(COIN_HOLDER, coin.as_bytes())?
        .map(|b| read_participant(COIN_HOLDER, &b))
        .transpose()
}

pub fn bank_account_of(
    state: &dyn StateRead,
    participant: &ParticipantId,
) -> Result<Option<BankAccount>, ProjectionError> {
    state
        .get(BANK_ACCOUNTS, participant.as_str().as_bytes())?
        .map(|b| {
            std::str::from_utf8(&b)
                .ok()
                .and_then(|s| BankAccount::new(s).ok())
                .ok_or(ProjectionError::Corrupt {
                    table: BANK_ACCOUNTS,
                    reason: "not a bank account",
                })
        })
        .transpose()
}

pub fn balance_of(
    state: &dyn StateRead,
    participant: &ParticipantId,
) -> Result<Option<BalanceId>, ProjectionError> {
    state
        .get(BALANCES, participant.as_str().as_bytes())?
        .map(|b| {
            let bytes: [u8; 16] =
                b.as_slice()
                    .try_into()
                    .map_err(|_| ProjectionError::Corrupt {
                        table: BALANCES,
                        reason: "balance id is not 16 bytes",
                    })?;
            Ok(BalanceId::from_bytes(bytes))
        })
        .transpose()
}

pub fn purchaser_of(
    state: &dyn StateRead,
    purchase: &PurchaseId,
) -> Result<Option<ParticipantId>, ProjectionError> {
    state
        .get(PURCHASERS, purchase.as_bytes())?
        .map(|b| read_participant(PURCHASERS, &b))
        .transpose()
}

/// The disclosures on the log so far: the record and the coin asked about.
pub fn disclosures(state: &dyn StateRead) -> Result<Vec<(Seq, CoinId)>, ProjectionError> {
    let mut out = Vec::new();
    state.scan_prefix(DISCLOSURES, &[], &mut |k, v| {
        let seq: [u8; 8] = k.try_into().map_err(|_| ProjectionError::Corrupt {
            table: DISCLOSURES,
            reason: "sequence number is not 8 bytes",
        })?;
        out.push((Seq(u64::from_be_bytes(seq)), coin_id(DISCLOSURES, v)?));
        Ok(true)
    })?;
    Ok(out)
}

/// Who is behind a disclosure's subject: the holder a coin was issued
/// to, or the purchaser of a purchase. `None`: anonymous, unknown or erased.
pub fn subject_identity(
    state: &dyn StateRead,
    subject: &DisclosureSubject,
) -> Result<Option<ParticipantId>, ProjectionError> {
    match subject {
        DisclosureSubject::Coin(coin) => holder_of(state, coin),
        DisclosureSubject::Purchase(purchase) => purchaser_of(state, purchase),
    }
}

/// The disclosures under dual control on the log so far, in log order.
pub fn dual_disclosures(
    state: &dyn StateRead,
) -> Result<Vec<(Seq, DisclosureSubject)>, ProjectionError> {
    let corrupt = |reason| ProjectionError::Corrupt {
        table: DUAL_DISCLOSURES,
        reason,
    };
    let mut out = Vec::new();
    state.scan_prefix(DUAL_DISCLOSURES, &[], &mut |k, v| {
        let seq: [u8; 8] = k
            .try_into()
            .map_err(|_| corrupt("sequence number is not 8 bytes"))?;
        let (tag, id) = v.split_first().ok_or(corrupt("empty subject"))?;
        let id: [u8; 16] = id
            .try_into()
            .map_err(|_| corrupt("subject id is not 16 bytes"))?;
        let subject = match tag {
            0 => DisclosureSubject::Coin(CoinId::from_bytes(id)),
            1 => DisclosureSubject::Purchase(PurchaseId::from_bytes(id)),
            _ => return Err(corrupt("unknown subject tag")),
        };
        out.push((Seq(u64::from_be_bytes(seq)), subject));
        Ok(true)
    })?;
    Ok(out)
}

fn subject_bytes(subject: &DisclosureSubject) -> Vec<u8> {
    let (tag, id) = match subject {
        DisclosureSubject::Coin(coin) => (0u8, coin.as_bytes()),
        DisclosureSubject::Purchase(purchase) => (1u8, purchase.as_bytes()),
    };
    let mut out = Vec::with_capacity(17);
    out.push(tag);
    out.extend_from_slice(id);
    out
}

impl ProjectionDb<UserIndexModel> {
    /// See [`subject_identity`]. Reading is not disclosing: the caller
    /// hands the answer out only once the issuer logged the disclosure.
    pub fn subject_identity(
        &self,
        subject: &DisclosureSubject,
    ) -> Result<Option<ParticipantId>, ProjectionError> {
        self.read(|s| subject_identity(s, subject))
    }

    pub fn dual_disclosures(&self) -> Result<Vec<(Seq, DisclosureSubject)>, ProjectionError> {
        self.read(dual_disclosures)
    }

    pub fn coins_of(
        &self,
        participant: &ParticipantId,
    ) -> Result<Vec<CoinStatusEntry>, ProjectionError> {
        self.read(|s| coins_of(s, participant))
    }

    pub fn unspent_coins_of(
        &self,
        participant: &ParticipantId,
    ) -> Result<Vec<CoinBody>, ProjectionError> {
        self.read(|s| unspent_coins_of(s, participant))
    }

    pub fn bank_account_of(
        &self,
        participant: &ParticipantId,
    ) -> Result<Option<BankAccount>, ProjectionError> {
        self.read(|s| bank_account_of(s, participant))
    }

    pub fn balance_of(
        &self,
        participant: &ParticipantId,
    ) -> Result<Option<BalanceId>, ProjectionError> {
        self.read(|s| balance_of(s, participant))
    }

    pub fn purchaser_of(
        &self,
        purchase: &PurchaseId,
    ) -> Result<Option<ParticipantId>, ProjectionError> {
        self.read(|s| purchaser_of(s, purchase))
    }

    pub fn disclosures(&self) -> Result<Vec<(Seq, CoinId)>, ProjectionError> {
        self.read(disclosures)
    }

    /// Who withdrew `coin` (law enforcement). Returns the identity and the
    /// `IdentityDisclosed` event the caller must append before handing the
    /// identity over; nothing is disclosed for an anonymous or unknown coin.
    pub fn who_withdrew(
        &self,
        coin: &CoinId,
        requester: &str,
        reason: &str,
    ) -> Result<Disclosure, DisclosureError> {
        let text_ok = |t: &str| !t.is_empty() && t.len() <= DISCLOSURE_TEXT_BYTES_MAX;
        if !text_ok(requester) || !text_ok(reason) {
            return Err(DisclosureError::BadText);
        }
        let participant = self
            .read(|s| holder_of(s, coin))?
            .ok_or(DisclosureError::NotAttributed(*coin))?;
        tracing::warn!(%coin, requester, reason, "identity disclosed");
        Ok(Disclosure {
            participant,
            event: Event::IdentityDisclosed {
                coin: *coin,
                requester: requester.to_owned(),
                reason: reason.to_owned(),
            },
        })
    }
}

// --- apply -------------------------------------------------------------------

fn set_holding_state(
    state: &mut dyn StateWrite,
    body: &CoinBody,
    to: CoinState,
) -> Result<(), ProjectionError> {
    // Anonymous coins are not in the index: nothing to do for them.
    let Some(holder) = holder_of(state, &body.id)? else {
        return Ok(());
    };
    let key = holding_key(&holder, &body.id);
    if let Some(bytes) = state.get(HOLDINGS, &key)? {
        let mut entry = read_entry(body.id, &bytes)?;
        entry.state = to;
        state.put(HOLDINGS, &key, &entry_bytes(&entry))?;
    }
    Ok(())
}

/// Removes every unspent holding of `epoch` (a `FloatForfeited`: the
/// epoch is erased and its unspent coins gone for good), with the coins'
/// holder entries. Holdings are keyed by participant, so this is one scan
/// of them, once per epoch's life.
fn forfeit_holdings(
    state: &mut dyn StateWrite,
    epoch: ledger::KeyEpoch,
) -> Result<(), ProjectionError> {
    let mut gone: Vec<(Vec<u8>, CoinId)> = Vec::new();
    state.scan_prefix(HOLDINGS, &[], &mut |k, v| {
        let id_at = k.len().saturating_sub(16);
        let id = coin_id(HOLDINGS, k.get(id_at..).unwrap_or_default())?;
        let entry = read_entry(id, v)?;
        if entry.body.epoch == epoch && entry.state == CoinState::Unspent {
            gone.push((k.to_vec(), id));
        }
        Ok(true)
    })?;
    for (key, id) in gone {
        state.remove(HOLDINGS, &key)?;
        state.remove(COIN_HOLDER, id.as_bytes())?;
    }
    Ok(())
}

impl UserIndexModel {
    fn identity(
        &self,
        seq: Seq,
        sealed: &SealedIdentity,
    ) -> Result<ParticipantId, ProjectionError> {
        self.unsealer
            .unseal_identity(sealed)
            .map_err(|source| ProjectionError::Unseal { seq, source })
    }
}

impl Projection for UserIndexModel {
    const NAME: &'static str = "user_index";
    const TABLES: &'static [TableName] = &[
        HOLDINGS,
        COIN_HOLDER,
        BANK_ACCOUNTS,
        BALANCES,
        PURCHASERS,
        DISCLOSURES,
        DUAL_DISCLOSURES,
    ];
    const FORMAT: u32 = 2;

    fn apply(&self, state: &mut dyn StateWrite, record: &Record) -> Result<(), ProjectionError> {
        let seq = record.seq;
        match &record.event {
            Event::CoinsIssued {
                coins,
                holder: Some(holder),
                ..
            } => {
                let participant = self.identity(seq, holder)?;
                for body in coins {
                    let entry = CoinStatusEntry {
                        body: *body,
                        state: CoinState::Unspent,
                    };
                    state.put(
                        HOLDINGS,
                        &holding_key(&participant, &body.id),
                        &entry_bytes(&entry),
                    )?;
                    state.put(
                        COIN_HOLDER,
                        body.id.as_bytes(),
                        participant.as_str().as_bytes(),
                    )?;
                }
            }
            Event::CoinsSpent { coins, .. } => {
                for body in coins {
                    set_holding_state(state, body, CoinState::Spent { tx: record.tx })?;
                }
            }
            Event::CoinsRevoked { coins } => {
                for body in coins {
                    set_holding_state(state, body, CoinState::Revoked { tx: record.tx })?;
                }
            }
            Event::EnrollmentRequested {
                participant,
                bank_account,
                ..
            } => {
                let participant = self.identity(seq, participant)?;
                let account = self
                    .unsealer
                    .unseal_account(bank_account)
                    .map_err(|source| ProjectionError::Unseal { seq, source })?;
                state.put(
                    BANK_ACCOUNTS,
                    participant.as_str().as_bytes(),
                    account.as_str().as_bytes(),
                )?;
            }
            Event::Enrolled {
                participant,
                balance: Some(balance),
                ..
            } => {
                let participant = self.identity(seq, participant)?;
                state.put(
                    BALANCES,
                    participant.as_str().as_bytes(),
                    balance.as_bytes(),
                )?;
            }
            Event::PurchaseRequested {
                purchase,
                purchaser,
                ..
            } => {
                let participant = self.identity(seq, purchaser)?;
                state.put(
                    PURCHASERS,
                    purchase.as_bytes(),
                    participant.as_str().as_bytes(),
                )?;
            }
            Event::IdentityDisclosed { coin, .. } => {
                state.put(DISCLOSURES, &seq.0.to_be_bytes(), coin.as_bytes())?;
            }
            Event::IdentityDisclosedUnderDualControl { subject, .. } => {
                state.put(
                    DUAL_DISCLOSURES,
                    &seq.0.to_be_bytes(),
                    &subject_bytes(subject),
                )?;
            }
            Event::FloatForfeited { epoch, .. } => forfeit_holdings(state, *epoch)?,
            Event::CoinsIssued { holder: None, .. }
            | Event::Enrolled { balance: None, .. }
            | Event::Registered { .. }
            | Event::PurchaseSettled { .. }
            | Event::PurchaseRejected { .. }
            | Event::PurchaseAcknowledged { .. }
            | Event::Redeemed { .. }
            | Event::Aggregated { .. }
            | Event::AggregateWithdrawn { .. }
            | Event::CardLoaded { .. }
            | Event::CardUnloaded { .. }
            | Event::Cleared { .. }
            | Event::EpochOpened { .. }
            | Event::EpochClosed { .. }
            | Event::SpentCoinsErased { .. }
            | Event::EpochRevoked { .. }
            | Event::EpochErased { .. }
            | Event::EnrollmentRefused { .. }
            | Event::StandingChanged { .. }
            | Event::KeyChanged { .. }
            | Event::PurchaseDebitReturned { .. }
            | Event::Checkpoint(_) => {}
        }
        Ok(())
    }
}

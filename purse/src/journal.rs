//! The journal of in-flight transactions: what the purse must remember to
//! finish a transaction after a crash or a lost connection, by retrying.
//!
//! An entry is written (durably) BEFORE the message it records goes out.
//! It holds the transaction's kind and step, where the message goes, the
//! exact bytes of the message (a retry re-sends the same request, which the
//! issuer answers idempotently), the coins it reserved, and the session
//! secrets that open the answer. Secrets live only here, in the 0600 purse
//! file; their `Debug` is redacted and their memory is zeroed on drop.
//!
//! An entry ends in one of two ways, each one atomic redb transaction:
//! [`Completion`] (inputs spent, outputs added, entry closed or left
//! acknowledging) or [`Refusal`] (the issuer's signed statement marks coins
//! bad, the rest are released).

use std::fmt;

use ledger::{Amount, Coin, CoinId, Timestamp};
use protocol::crypto::PublicKey;
use protocol::wire::{RejectReason, SignedReject};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::constants::SECRET_BYTES_MAX;
use crate::error::{PurseError, check_len};
use crate::state::{BadKind, TxRef};

/// The flows a purse takes part in (`docs/protocol.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TxKind {
    /// Coin purchase: no inputs, coins of the amount out.
    Purchase,
    /// Payment as payer: inputs of exactly the amount go to the payee.
    Pay,
    /// Payment as payee: the payer's coins validated with refresh (new
    /// coins of the amount), redeem or aggregate (no coins back).
    Collect,
    /// Change: inputs out, coins of equal total back.
    Change,
    /// Refresh: expired inputs out, fresh coins of equal total back.
    Refresh,
    /// Redeem (or aggregate) own coins: inputs of the amount out, a bank
    /// credit or balance elsewhere.
    Redeem,
    /// Refund: the issuer revokes coins issued to this purse and replaces them.
    Refund,
}

impl TxKind {
    pub fn name(self) -> &'static str {
        match self {
            TxKind::Purchase => "purchase",
            TxKind::Pay => "pay",
            TxKind::Collect => "collect",
            TxKind::Change => "change",
            TxKind::Refresh => "refresh",
            TxKind::Redeem => "redeem",
            TxKind::Refund => "refund",
        }
    }

    /// Whether the kind takes coins of this purse as inputs.
    pub fn spends_own_coins(self) -> bool {
        matches!(
            self,
            TxKind::Pay | TxKind::Change | TxKind::Refresh | TxKind::Redeem
        )
    }
}

/// Where a transaction stands. Steps only move forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Step {
    /// The session is being opened (WRequest1: a key share sent); nothing
    /// is committed anywhere yet.
    SessionOpen,
    /// The request that commits (WRequest3, SendCoins, ValidationRequest,
    /// refund request) is recorded and may have gone out.
    Request,
    /// The issuer took the request and the result comes later (a purchase
    /// waiting for the bank): the recorded message is the poll.
    Poll,
    /// Outputs are stored; the recorded message is the acknowledgement
    /// (Issuance2), re-sent until delivered, then the entry is closed.
    Acknowledge,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::SessionOpen => "session-open",
            Step::Request => "request",
            Step::Poll => "poll",
            Step::Acknowledge => "acknowledge",
        }
    }
}

/// Who the recorded message goes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Destination {
    /// The issuer's gateway (its URL is in the purse's issuer record).
    Issuer,
    /// A payee's merchant server, at this URL.
    Payee(String),
}

/// A session secret (a key share `K_X`, a nonce): zeroed on drop, never
/// shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct SessionSecret(Vec<u8>);

impl SessionSecret {
    pub fn new(bytes: Vec<u8>) -> SessionSecret {
        SessionSecret(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// A flow's client state (e.g. `protocol::flows::PurchaseAwaitingIssuance`,
    /// which holds the key shares `K_CP`, `K_I`), kept as a secret so that
    /// it lives only in the purse file and is zeroed in memory.
    pub fn from_state<T: Serialize>(state: &T) -> Result<SessionSecret, PurseError> {
        let bytes = postcard::to_stdvec(state).map_err(|_| PurseError::Invalid("flow state"))?;
        let secret = SessionSecret(bytes);
        check_len("session secret", secret.0.len(), SECRET_BYTES_MAX)?;
        Ok(secret)
    }

    /// The flow state stored by [`SessionSecret::from_state`].
    pub fn to_state<T: DeserializeOwned>(&self) -> Result<T, PurseError> {
        match postcard::take_from_bytes(&self.0) {
            Ok((state, [])) => Ok(state),
            _ => Err(PurseError::Corrupt("journal flow state".into())),
        }
    }
}

impl fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionSecret(<redacted>)")
    }
}

/// What a flow records before its first message.
#[derive(Debug, Clone)]
pub struct NewTransaction {
    pub kind: TxKind,
    /// What the transaction is worth: the purchase total, the payment or
    /// redemption amount, the value changed or refreshed.
    pub amount: Amount,
    /// This purse's coins it takes as inputs; each must be Available.
    pub reserve: Vec<CoinId>,
    pub step: Step,
    pub to: Destination,
    /// The exact bytes about to be sent.
    pub message: Vec<u8>,
    pub secrets: Vec<SessionSecret>,
    /// Flow data the purse keeps but does not interpret (invoice, purchase
    /// handle, TID).
    pub context: Vec<u8>,
    pub now: Timestamp,
}

/// One in-flight transaction, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub tx: TxRef,
    pub kind: TxKind,
    pub amount: Amount,
    pub step: Step,
    pub reserved: Vec<CoinId>,
    pub to: Destination,
    pub last_sent: Vec<u8>,
    pub secrets: Vec<SessionSecret>,
    pub context: Vec<u8>,
    pub created: Timestamp,
    pub updated: Timestamp,
}

impl JournalEntry {
    /// Whether the outputs are already in the purse (only the
    /// acknowledgement is left to deliver).
    pub fn is_settled(&self) -> bool {
        self.step == Step::Acknowledge
    }
}

/// The next message of a transaction, recorded before it is sent.
#[derive(Debug, Clone)]
pub struct StepRecord {
    pub step: Step,
    pub message: Vec<u8>,
    /// Replaces the entry's secrets if `Some` (a new session key share).
    pub secrets: Option<Vec<SessionSecret>>,
    /// Replaces the entry's context if `Some`.
    pub context: Option<Vec<u8>>,
    pub now: Timestamp,
}

/// The issuer's answer to a transaction that went through. The caller has
/// opened and checked it (MACs, signatures) before handing it over.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    /// Reserved inputs the issuer spent; other reserved coins are released.
    pub spent: Vec<CoinId>,
    /// Coins of this purse a refund revoked.
    pub revoked: Vec<CoinId>,
    /// New coins for this purse.
    pub received: Vec<Coin>,
    /// If `Some`, the acknowledgement still to deliver: the entry stays in
    /// the journal at [`Step::Acknowledge`] until [`crate::Purse::close`].
    pub acknowledge: Option<Vec<u8>>,
}

/// The issuer refused the transaction with a signed statement (verified
/// before it gets here: build it with [`Refusal::from_signed_reject`]).
/// Coins it names are marked bad; the other reserved coins are released.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub bad: Vec<(CoinId, BadKind)>,
    pub statement: Vec<u8>,
}

impl Refusal {
    /// Checks the issuer's signature on `reject` (P4: the payer believes a
    /// rejection only under `PK_I`) and says which coins it makes bad. A
    /// reason that is not about the coins themselves (in use elsewhere,
    /// amount or payee mismatch, not enrolled, bank refusal...) makes none
    /// bad: the inputs are released, to be used again.
    pub fn from_signed_reject(
        reject: &SignedReject,
        issuer_key: &PublicKey,
    ) -> Result<Refusal, PurseError> {
        protocol::flows::issuer::verify_reject(issuer_key, reject)?;
        let kind = match reject.reason {
            RejectReason::AlreadySpent => Some(BadKind::AlreadySpent),
            RejectReason::BadTag => Some(BadKind::InvalidTag),
            RejectReason::Expired => Some(BadKind::Expired),
            _ => None,
        };
        let bad = match kind {
            Some(kind) => reject.bad_coins.iter().map(|id| (*id, kind)).collect(),
            None => Vec::new(),
        };
        Ok(Refusal {
            bad,
            statement: protocol::wire::encode(reject),
        })
    }
}

/// What a closed transaction did to the purse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxEffect {
    pub tx: TxRef,
    pub kind: TxKind,
    pub refused: bool,
    /// Value of the coins that left the purse (spent, revoked or bad).
    pub value_out: Amount,
    /// Value of the coins that came in.
    pub value_in: Amount,
    /// Holdings (available plus pending) after the transaction.
    pub holdings_after: Amount,
    /// When its last step was recorded (the purse has no clock of its own).
    pub last_step_at: Timestamp,
}

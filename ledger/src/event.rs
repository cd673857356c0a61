//! Every fact the issuer records. One variant per step of the paper's
//! processes; the events of one protocol transaction are appended together
//! as one [`crate::Batch`] and carry its [`crate::TxId`].
//!
//! Encoding: one version byte ([`EVENT_VERSION`]) then the postcard encoding
//! of [`Event`]. A reader refuses records longer than
//! [`EVENT_BYTES_MAX`] before decoding, so a hostile record cannot make it
//! allocate more. New variants are added at the end; a change to an
//! existing variant bumps the version and keeps a decoder for the old one.
//!
//! Events hold identities and bank accounts only sealed, and coins only as
//! bodies (never a tag): the log is safe to hand to an auditor.

use serde::{Deserialize, Serialize};

use crate::coin::CoinBody;
use crate::constants::{
    COINS_PER_TX_MAX, EVENT_BYTES_MAX, PUBLIC_KEY_DER_BYTES_MAX, SIGNATURE_BYTES_MAX,
    TEXT_BYTES_MAX,
};
use crate::ids::{
    BalanceId, CardId, CoinId, KeyEpoch, LusId, PurchaseId, Role, SealedBankAccount,
    SealedIdentity, Timestamp,
};
use crate::money::{Amount, CoinSpec};
use crate::store::{Hash32, Seq};

/// The encoding version written in front of every event.
pub const EVENT_VERSION: u8 = 1;

/// Why a stored event could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventDecodeError {
    #[error("event record is empty")]
    Empty,
    #[error("event record of {0} bytes exceeds the {EVENT_BYTES_MAX}-byte limit")]
    TooLong(usize),
    #[error("unknown event version {0}")]
    UnknownVersion(u8),
    #[error("malformed event: {0}")]
    Malformed(String),
    #[error("event violates a limit: {0}")]
    Invalid(&'static str),
}

/// A DER-encoded public key (SPKI), as registered.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublicKeyDer(pub Vec<u8>);

impl std::fmt::Debug for PublicKeyDer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKeyDer(<{} bytes>)", self.0.len())
    }
}

/// A detached signature, kept for non-repudiation or as a checkpoint's proof.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignatureBytes(pub Vec<u8>);

impl std::fmt::Debug for SignatureBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignatureBytes(<{} bytes>)", self.0.len())
    }
}

/// Why the bank refused a debit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BankRejection {
    InsufficientFunds,
    AccountClosed,
    UnknownAccount,
}

/// Which process created coins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IssueCause {
    /// Issuance1 of a settled coin purchase.
    Purchase(PurchaseId),
    /// Fresh coins to a payee (payment with refresh).
    Payment,
    /// Change: coins of another spec for coins of equal total.
    Change,
    /// Fresh coins for expired ones.
    Refresh,
    /// Replacements for coins revoked by a refund.
    Refund,
    /// Soft cash bought with value unloaded from a card.
    CardUnload,
}

/// Which process took coins out of circulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SpendCause {
    /// A payment; the other events of the transaction say what the payee got.
    Payment(PaymentOption),
    Change,
    Refresh,
    /// Redeemed by their holder for a bank credit.
    Redeem,
    /// Soft cash redeemed onto a card load.
    CardLoad,
}

/// The payee's choice in V-DESC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PaymentOption {
    Refresh,
    Redeem,
    Aggregate,
}

/// A signed checkpoint `S_I(seq, hash)`: the issuer vouches for the chain up
/// to and including record `seq`, whose hash is `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: Seq,
    pub hash: Hash32,
    pub signature: SignatureBytes,
}

impl Checkpoint {
    /// Domain-separation label of checkpoint signatures.
    pub const LABEL: &'static str = "vc/checkpoint/1";

    /// The exact bytes the issuer signs: label, seq, hash.
    pub fn signed_bytes(seq: Seq, hash: &Hash32) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LABEL.len() + 8 + 32);
        out.extend_from_slice(Self::LABEL.as_bytes());
        out.extend_from_slice(&seq.0.to_le_bytes());
        out.extend_from_slice(&hash.0);
        out
    }

    /// Checks the signature with `verify(message, signature)`, the hook the
    /// protocol crate's signature scheme plugs into (ledger holds no keys).
    pub fn verify_with(&self, verify: impl FnOnce(&[u8], &[u8]) -> bool) -> bool {
        verify(&Self::signed_bytes(self.seq, &self.hash), &self.signature.0)
    }
}

/// Every fact of the issuer's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    // --- participants -----------------------------------------------------
    /// Registration: the issuer certified `public_key` for the participant.
    Registered {
        participant: SealedIdentity,
        public_key: PublicKeyDer,
        cert_expiry: Timestamp,
    },
    /// An enrollment request awaits out-of-band approval.
    EnrollmentRequested {
        participant: SealedIdentity,
        role: Role,
        bank_account: SealedBankAccount,
        signature: SignatureBytes,
    },
    /// An operator approved the enrollment. Merchants get an aggregate balance.
    Enrolled {
        participant: SealedIdentity,
        role: Role,
        balance: Option<BalanceId>,
    },

    // --- coin purchase ------------------------------------------------------
    /// WRequest3 accepted: the debit was asked of the bank. The signature is
    /// the purchaser's authorization, kept for non-repudiation.
    PurchaseRequested {
        purchase: PurchaseId,
        purchaser: SealedIdentity,
        bank_account: SealedBankAccount,
        spec: CoinSpec,
        amount: Amount,
        anonymous: bool,
        authorization: SignatureBytes,
    },
    /// The bank settled the debit: real money in. Travels with the `CoinsIssued`.
    PurchaseSettled {
        purchase: PurchaseId,
        amount: Amount,
    },
    /// The bank refused the debit: no coins, ever.
    PurchaseRejected {
        purchase: PurchaseId,
        reason: BankRejection,
    },
    /// Issuance2: the purchaser confirmed receipt; Issuance1 is no longer served.
    PurchaseAcknowledged { purchase: PurchaseId },

    // --- coins --------------------------------------------------------------
    /// Coins created. `holder` is set only for non-anonymous coins (the user
    /// index records them against it; refund depends on it).
    CoinsIssued {
        coins: Vec<CoinBody>,
        holder: Option<SealedIdentity>,
        cause: IssueCause,
    },
    /// Coins validated and taken out of circulation.
    CoinsSpent {
        coins: Vec<CoinBody>,
        cause: SpendCause,
    },
    /// Unspent coins revoked by a refund (copies on a lost disk die here).
    CoinsRevoked { coins: Vec<CoinBody> },

    // --- where spent value goes -----------------------------------------------
    /// An ACH credit to a redeemer's account: real money out.
    Redeemed {
        amount: Amount,
        bank_account: SealedBankAccount,
    },
    /// Value added to a merchant's aggregate balance.
    Aggregated { balance: BalanceId, amount: Amount },
    /// Value taken from a merchant's aggregate balance (to be redeemed).
    AggregateWithdrawn { balance: BalanceId, amount: Amount },

    // --- card systems ----------------------------------------------------------
    /// A card load committed with the issuer as payment agency: the issuer
    /// owes the load/unload server `amount`.
    CardLoaded {
        lus: LusId,
        card: CardId,
        nt: u32,
        amount: Amount,
        /// When the issuer guaranteed the load against the coins it spends
        /// (it checked them unexpired then). A load can stay in doubt for
        /// as long as the card stays away, so it may commit after those
        /// coins expired; the auditor judges their expiry at this time,
        /// which must not be after the record's own.
        guaranteed_at: Timestamp,
    },
    /// A card unload committed with the issuer as payment agency: the
    /// load/unload server owes the issuer `amount`.
    CardUnloaded {
        lus: LusId,
        card: CardId,
        nt: u32,
        amount: Amount,
    },
    /// A clearing period settled with a load/unload server in real money.
    Cleared {
        lus: LusId,
        period: u32,
        paid_to_lus: Amount,
        received_from_lus: Amount,
    },

    // --- epochs and housekeeping ---------------------------------------------------
    /// A mint key epoch opened: its coins expire at `coins_expire_at` and may
    /// be refreshed until `grace_ends_at`.
    EpochOpened {
        epoch: KeyEpoch,
        coins_expire_at: Timestamp,
        grace_ends_at: Timestamp,
    },
    /// No more coins are minted under this epoch.
    EpochClosed { epoch: KeyEpoch },
    /// Spent and revoked coins of an epoch past its grace period were erased
    /// from the coin-status store. `digest` is SHA-256 over the erased ids in
    /// ascending order, so an auditor can check what was erased.
    SpentCoinsErased {
        epoch: KeyEpoch,
        n_coins: u64,
        value: Amount,
        digest: Hash32,
    },
    /// Someone was told who withdrew a coin (the law-enforcement path). The
    /// identity itself is not here; who asked and why is.
    IdentityDisclosed {
        coin: CoinId,
        requester: String,
        reason: String,
    },
    /// The issuer's signature over the chain so far.
    Checkpoint(Checkpoint),
}

impl Event {
    /// A short, stable name of the variant, for reports and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Registered { .. } => "registered",
            Event::EnrollmentRequested { .. } => "enrollment_requested",
            Event::Enrolled { .. } => "enrolled",
            Event::PurchaseRequested { .. } => "purchase_requested",
            Event::PurchaseSettled { .. } => "purchase_settled",
            Event::PurchaseRejected { .. } => "purchase_rejected",
            Event::PurchaseAcknowledged { .. } => "purchase_acknowledged",
            Event::CoinsIssued { .. } => "coins_issued",
            Event::CoinsSpent { .. } => "coins_spent",
            Event::CoinsRevoked { .. } => "coins_revoked",
            Event::Redeemed { .. } => "redeemed",
            Event::Aggregated { .. } => "aggregated",
            Event::AggregateWithdrawn { .. } => "aggregate_withdrawn",
            Event::CardLoaded { .. } => "card_loaded",
            Event::CardUnloaded { .. } => "card_unloaded",
            Event::Cleared { .. } => "cleared",
            Event::EpochOpened { .. } => "epoch_opened",
            Event::EpochClosed { .. } => "epoch_closed",
            Event::SpentCoinsErased { .. } => "spent_coins_erased",
            Event::IdentityDisclosed { .. } => "identity_disclosed",
            Event::Checkpoint(_) => "checkpoint",
        }
    }

    /// Checks the limits a decoded event must respect.
    pub fn validate(&self) -> Result<(), EventDecodeError> {
        let coins_ok = |coins: &Vec<CoinBody>| coins.len() <= COINS_PER_TX_MAX;
        let ok = match self {
            Event::Registered { public_key, .. } => public_key.0.len() <= PUBLIC_KEY_DER_BYTES_MAX,
            Event::EnrollmentRequested { signature, .. } => {
                signature.0.len() <= SIGNATURE_BYTES_MAX
            }
            Event::PurchaseRequested {
                spec,
                authorization,
                ..
            } => spec.validate().is_ok() && authorization.0.len() <= SIGNATURE_BYTES_MAX,
            Event::CoinsIssued { coins, .. }
            | Event::CoinsSpent { coins, .. }
            | Event::CoinsRevoked { coins } => coins_ok(coins),
            Event::IdentityDisclosed {
                requester, reason, ..
            } => requester.len() <= TEXT_BYTES_MAX && reason.len() <= TEXT_BYTES_MAX,
            Event::Checkpoint(c) => c.signature.0.len() <= SIGNATURE_BYTES_MAX,
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(EventDecodeError::Invalid("field exceeds its limit"))
        }
    }

    /// Version byte, then postcard.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(EVENT_VERSION);
        // Serializing our own types into a Vec cannot fail.
        #[allow(clippy::expect_used)]
        let out = postcard::to_extend(self, out).expect("postcard encoding into a Vec");
        out
    }

    /// Decodes and validates bytes written by [`Event::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Event, EventDecodeError> {
        if bytes.len() > EVENT_BYTES_MAX {
            return Err(EventDecodeError::TooLong(bytes.len()));
        }
        let (&version, body) = bytes.split_first().ok_or(EventDecodeError::Empty)?;
        if version != EVENT_VERSION {
            return Err(EventDecodeError::UnknownVersion(version));
        }
        let (event, rest): (Event, &[u8]) = postcard::take_from_bytes(body)
            .map_err(|e| EventDecodeError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(EventDecodeError::Malformed(format!(
                "{} trailing bytes",
                rest.len()
            )));
        }
        event.validate()?;
        Ok(event)
    }
}

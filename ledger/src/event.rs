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
    /// The bytes decode, but are not the one encoding of their content
    /// (an overlong varint, say): the same content would have many byte
    /// forms, and so many hashes.
    #[error("event bytes are not the canonical encoding of their content")]
    NonCanonical,
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
    /// Fresh coins for coins of a revoked epoch.
    Recoup,
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
    /// Coins of a revoked epoch given back by their holder for fresh coins
    /// or a bank credit (the events beside it say which).
    Recoup,
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

    /// The issuer's latest signed head as it publishes it (a file in its
    /// directory, a GET route): four lines, `varietycash signed head 1`,
    /// `seq N`, `hash HEX`, `signature HEX`.
    pub fn to_published_head(&self) -> String {
        format!(
            "{PUBLISHED_HEAD_MAGIC}\nseq {}\nhash {}\nsignature {}\n",
            self.seq.0,
            self.hash,
            hex::encode(&self.signature.0)
        )
    }

    /// Reads [`Checkpoint::to_published_head`]'s text, exactly (the
    /// signature is not checked here: the auditor holds the key).
    pub fn parse_published_head(text: &str) -> Result<Checkpoint, PublishedHeadError> {
        let bad = |what: &'static str| PublishedHeadError(what);
        let mut lines = text.lines();
        if lines.next() != Some(PUBLISHED_HEAD_MAGIC) {
            return Err(bad("expected it to start with `varietycash signed head 1`"));
        }
        let mut field = |name: &str| {
            lines
                .next()
                .and_then(|line| line.strip_prefix(name))
                .and_then(|rest| rest.strip_prefix(' '))
        };
        let seq = field("seq")
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or(bad("expected `seq N`"))?;
        let hash = field("hash")
            .and_then(|v| hex::decode(v).ok())
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .ok_or(bad("expected `hash` and 64 hex digits"))?;
        let signature = field("signature")
            .and_then(|v| hex::decode(v).ok())
            .filter(|v| !v.is_empty() && v.len() <= SIGNATURE_BYTES_MAX)
            .ok_or(bad("expected `signature` and its hex digits"))?;
        if lines.next().is_some() {
            return Err(bad("expected nothing after the signature"));
        }
        Ok(Checkpoint {
            seq: Seq(seq),
            hash: Hash32(hash),
            signature: SignatureBytes(signature),
        })
    }
}

/// First line of a published signed head.
pub const PUBLISHED_HEAD_MAGIC: &str = "varietycash signed head 1";

/// Why a published signed head could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a published signed head: {0}")]
pub struct PublishedHeadError(pub &'static str);

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

    // --- participant lifecycle (appended: variant indices are the encoding) ---
    /// An operator refused a pending enrollment request; the role is never
    /// granted to this participant.
    EnrollmentRefused {
        participant: SealedIdentity,
        role: Role,
    },
    /// An operator changed a participant's standing: a suspended or revoked
    /// participant's requests are refused (revocation is final).
    StandingChanged {
        participant: SealedIdentity,
        standing: Standing,
    },
    /// A participant replaced its registered key; `signature` is its old
    /// key's signature over the change, kept for non-repudiation.
    KeyChanged {
        participant: SealedIdentity,
        public_key: PublicKeyDer,
        cert_expiry: Timestamp,
        signature: SignatureBytes,
    },

    /// Two different operators approved telling `requester` who is behind
    /// `subject`, and the user index was allowed to answer. Appended before
    /// the index answers; the identity itself is not here.
    IdentityDisclosedUnderDualControl {
        subject: DisclosureSubject,
        requester: String,
        reason: String,
        /// SHA-256 of each approving operator key's SPKI DER: two, different.
        approver_keys: [Hash32; 2],
    },
    /// The bank gave back a purchase debit it had collected, after the
    /// coins were issued (insufficient funds, revoked mandate, the
    /// purchaser's refund claim): the money left the issuer's account
    /// again, and the coins stay good, so the issuer covers them out of its
    /// own funds. `reason` is the bank's ISO 20022 return reason code.
    PurchaseDebitReturned {
        purchase: PurchaseId,
        amount: Amount,
        reason: String,
    },

    // --- epoch end of life (appended: variant indices are the encoding) ---
    /// The operator revoked a key epoch (its mint key is suspected
    /// compromised): from this record on, coins of `epoch` are accepted only
    /// by a recoup (spend cause [`SpendCause::Recoup`]), and the recoups of
    /// the epoch pay out at most `owed`, the value of its coins that were
    /// issued and still unspent here (forged coins cannot raise it).
    EpochRevoked { epoch: KeyEpoch, owed: Amount },
    /// The spent and revoked coins of `epoch` that left circulation at or
    /// before record `through` were erased from the coin state, and the
    /// epoch's mint key destroyed: no coin of `epoch` is accepted after
    /// this record. `digest` is SHA-256 over the erased ids in ascending
    /// order; an auditor recomputes count, value and digest from the log up
    /// to `through`, and checks nothing of the epoch left circulation after
    /// it.
    EpochErased {
        epoch: KeyEpoch,
        through: Seq,
        n_coins: u64,
        value: Amount,
        digest: Hash32,
    },

    // --- float of an erased epoch (appended: variant indices are the encoding) ---
    /// The coins of `epoch` still unspent when it is erased leave
    /// circulation unredeemed: nobody can present them any more (the mint
    /// key is destroyed, nothing of the epoch is accepted), so their value
    /// leaves the outstanding e-money and becomes the issuer's breakage
    /// (`Totals::forfeited`). Logged in the batch of the epoch's
    /// [`Event::EpochErased`], never alone. `digest` is SHA-256 over the
    /// forfeited ids in ascending order ([`erasure_digest`]); an auditor
    /// recomputes count, value and digest from the epoch's unspent coins.
    /// A revoked epoch forfeits what its recoups still owed.
    FloatForfeited {
        epoch: KeyEpoch,
        n_coins: u64,
        value: Amount,
        digest: Hash32,
    },
}

/// Where a participant stands with the issuer (set by its operator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Standing {
    /// Its requests are served (the standing of every registered participant
    /// until an operator says otherwise; also what reinstating restores).
    Active,
    /// Its requests are refused until an operator reinstates it.
    Suspended,
    /// Its requests are refused for good.
    Revoked,
}

impl std::fmt::Display for Standing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Standing::Active => "active",
            Standing::Suspended => "suspended",
            Standing::Revoked => "revoked",
        })
    }
}

/// What a disclosure asks about: who withdrew a coin, or who made a purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DisclosureSubject {
    Coin(CoinId),
    Purchase(PurchaseId),
}

impl std::fmt::Display for DisclosureSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DisclosureSubject::Coin(id) => write!(f, "coin {id}"),
            DisclosureSubject::Purchase(id) => write!(f, "purchase {id}"),
        }
    }
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
            Event::EnrollmentRefused { .. } => "enrollment_refused",
            Event::StandingChanged { .. } => "standing_changed",
            Event::KeyChanged { .. } => "key_changed",
            Event::IdentityDisclosedUnderDualControl { .. } => {
                "identity_disclosed_under_dual_control"
            }
            Event::PurchaseDebitReturned { .. } => "purchase_debit_returned",
            Event::EpochRevoked { .. } => "epoch_revoked",
            Event::EpochErased { .. } => "epoch_erased",
            Event::FloatForfeited { .. } => "float_forfeited",
        }
    }

    /// Checks the limits a decoded event must respect.
    pub fn validate(&self) -> Result<(), EventDecodeError> {
        let coins_ok = |coins: &Vec<CoinBody>| coins.len() <= COINS_PER_TX_MAX;
        let ok = match self {
            Event::Registered { public_key, .. } => public_key.0.len() <= PUBLIC_KEY_DER_BYTES_MAX,
            Event::KeyChanged {
                public_key,
                signature,
                ..
            } => {
                public_key.0.len() <= PUBLIC_KEY_DER_BYTES_MAX
                    && signature.0.len() <= SIGNATURE_BYTES_MAX
            }
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
            Event::IdentityDisclosedUnderDualControl {
                requester,
                reason,
                approver_keys,
                ..
            } => {
                requester.len() <= TEXT_BYTES_MAX
                    && reason.len() <= TEXT_BYTES_MAX
                    && approver_keys[0] != approver_keys[1]
            }
            Event::Checkpoint(c) => c.signature.0.len() <= SIGNATURE_BYTES_MAX,
            Event::PurchaseDebitReturned { reason, .. } => reason.len() <= TEXT_BYTES_MAX,
            // A forfeiture without coins forfeits nothing; with coins, its
            // value is whatever they held (the auditor checks it).
            Event::FloatForfeited { n_coins, value, .. } => *n_coins > 0 || value.is_zero(),
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
        if !encodes_exactly_to(&event, body) {
            return Err(EventDecodeError::NonCanonical);
        }
        Ok(event)
    }
}

/// Whether postcard's encoding of `event` is exactly `expected`: the
/// encoder runs into a flavor that compares each byte as it is produced,
/// so the check allocates nothing and stops at the first difference.
fn encodes_exactly_to(event: &Event, expected: &[u8]) -> bool {
    postcard::serialize_with_flavor(
        event,
        CompareFlavor {
            expected,
            position: 0,
        },
    )
    .unwrap_or(false)
}

/// A postcard output that only compares with `expected` (see
/// [`encodes_exactly_to`]); a difference ends the encoding with an error.
struct CompareFlavor<'a> {
    expected: &'a [u8],
    position: usize,
}

impl postcard::ser_flavors::Flavor for CompareFlavor<'_> {
    type Output = bool;

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.try_extend(&[byte])
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        let end = self.position.saturating_add(bytes.len());
        if self.expected.get(self.position..end) != Some(bytes) {
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.position = end;
        Ok(())
    }

    fn finalize(self) -> postcard::Result<bool> {
        Ok(self.position == self.expected.len())
    }
}

/// The digest a [`Event::SpentCoinsErased`], an [`Event::EpochErased`] or
/// an [`Event::FloatForfeited`] carries: SHA-256 over the coin ids, 16
/// bytes each, in the order given (ascending, for an erasure or a
/// forfeiture). The coin-status projection computes it when it plans an
/// erasure, the auditor when it checks one.
pub fn erasure_digest<'a>(ids: impl IntoIterator<Item = &'a CoinId>) -> Hash32 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for id in ids {
        h.update(id.as_bytes());
    }
    Hash32(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overlong_varint_is_refused_as_non_canonical() {
        let event = Event::EpochClosed { epoch: KeyEpoch(1) };
        let canonical = event.encode();
        assert_eq!(Event::decode(&canonical), Ok(event));
        // The epoch number 1 is the last byte; `81 00` is also 1 to a
        // varint decoder, one byte longer.
        let mut overlong = canonical.clone();
        assert_eq!(overlong.pop(), Some(1));
        overlong.extend_from_slice(&[0x81, 0x00]);
        assert_eq!(
            Event::decode(&overlong),
            Err(EventDecodeError::NonCanonical)
        );
    }

    #[test]
    fn a_published_head_reads_back_exactly() {
        let head = Checkpoint {
            seq: Seq(41),
            hash: Hash32([0xab; 32]),
            signature: SignatureBytes(vec![3; 256]),
        };
        let text = head.to_published_head();
        assert_eq!(Checkpoint::parse_published_head(&text), Ok(head));
        assert!(Checkpoint::parse_published_head(&text.replace("seq 41", "seq x")).is_err());
        assert!(Checkpoint::parse_published_head(&format!("{text}extra\n")).is_err());
        assert!(Checkpoint::parse_published_head("").is_err());
    }

    // The variant index is the first byte after the version: the epoch
    // end events keep theirs, so logs written before the forfeiture
    // existed still decode, and the forfeiture comes after them all.
    #[test]
    fn the_forfeiture_is_the_last_variant_and_older_ones_keep_their_index() {
        let erased = Event::EpochErased {
            epoch: KeyEpoch(3),
            through: Seq(9),
            n_coins: 2,
            value: crate::Amount::from_minor(300),
            digest: Hash32([5; 32]),
        };
        let bytes = erased.encode();
        assert_eq!(bytes[..2], [EVENT_VERSION, 27]);
        assert_eq!(Event::decode(&bytes), Ok(erased));
        let forfeited = Event::FloatForfeited {
            epoch: KeyEpoch(3),
            n_coins: 2,
            value: crate::Amount::from_minor(300),
            digest: Hash32([6; 32]),
        };
        let bytes = forfeited.encode();
        assert_eq!(bytes[..2], [EVENT_VERSION, 28]);
        assert_eq!(forfeited.kind(), "float_forfeited");
        assert_eq!(Event::decode(&bytes), Ok(forfeited));
        // One variant past the last is no event of this version.
        let mut unknown = bytes.clone();
        unknown[1] = 29;
        assert!(matches!(
            Event::decode(&unknown),
            Err(EventDecodeError::Malformed(_))
        ));
    }

    // A forfeiture of no coins carries no value.
    #[test]
    fn a_forfeiture_of_no_coins_with_a_value_is_refused() {
        let forged = Event::FloatForfeited {
            epoch: KeyEpoch(1),
            n_coins: 0,
            value: crate::Amount::from_minor(1),
            digest: erasure_digest([]),
        };
        assert_eq!(
            Event::decode(&forged.encode()),
            Err(EventDecodeError::Invalid("field exceeds its limit"))
        );
    }

    #[test]
    fn every_canonical_encoding_decodes() {
        let event = Event::Checkpoint(Checkpoint {
            seq: Seq(300),
            hash: Hash32([7; 32]),
            signature: SignatureBytes(vec![1; 256]),
        });
        assert_eq!(Event::decode(&event.encode()), Ok(event));
    }
}

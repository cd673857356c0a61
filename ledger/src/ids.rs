//! Identifiers and the opaque sealed fields. Each says what it is, so that a
//! coin id can never be passed where a transaction id is expected.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::constants::{PARTICIPANT_ID_BYTES_MAX, SEALED_BYTES_MAX};

/// Fills `buf` from the operating system's CSPRNG.
///
/// # Panics
/// If the OS has no randomness to give: the issuer cannot mint safely then.
fn os_random<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("operating system randomness is unavailable");
    buf
}

macro_rules! bytes_id {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name([u8; $len]);

        impl $name {
            pub const LEN: usize = $len;

            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// A fresh identifier from the OS's CSPRNG.
            pub fn random() -> Self {
                Self(os_random())
            }

            /// Parses the lowercase hex form that `Display` prints.
            pub fn from_hex(s: &str) -> Option<Self> {
                let mut out = [0u8; $len];
                hex::decode_to_slice(s, &mut out).ok()?;
                Some(Self(out))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), hex::encode(self.0))
            }
        }
    };
}

bytes_id!(
    /// A coin's serial number: 128 random bits. Its shard is a function of its bits.
    CoinId, 16
);
bytes_id!(
    /// One protocol transaction. Derived from what the client sent (so a retry maps
    /// to the same id) or random where nothing identifies it.
    TxId, 16
);
bytes_id!(
    /// One coin purchase, from WRequest3 to Issuance2 (it spans several transactions).
    PurchaseId, 16
);
bytes_id!(
    /// A merchant's aggregated balance. Opaque: it says nothing about whose it is.
    BalanceId, 16
);
bytes_id!(
    /// A stored-value card's ID (`ID_SM`): one Triple-DES block, as EMV cards use.
    CardId, 8
);

impl CoinId {
    /// The shard that owns this coin, for `n_shards` shards.
    pub fn shard(&self, n_shards: u16) -> ShardIdx {
        debug_assert!(n_shards > 0);
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        ShardIdx((u64::from_le_bytes(head) % u64::from(n_shards.max(1))) as u16)
    }
}

impl TxId {
    /// Derives the id of a transaction from what identifies it, under a
    /// domain-separation label (e.g. `"vc/tx/payment"`), so that the same
    /// request always maps to the same transaction.
    pub fn derive(label: &str, parts: &[&[u8]]) -> TxId {
        let mut h = Sha256::new();
        h.update((label.len() as u64).to_le_bytes());
        h.update(label.as_bytes());
        for part in parts {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        let digest = h.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        TxId(out)
    }
}

/// Index of a coin shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShardIdx(pub u16);

/// A load/unload server of a card system (an institution, not a person).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LusId(pub u32);

impl fmt::Display for LusId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lus-{}", self.0)
    }
}

/// A mint key epoch. Coins carry the epoch whose key tagged them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KeyEpoch(pub u32);

impl fmt::Display for KeyEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "epoch-{}", self.0)
    }
}

/// Seconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Timestamp(secs)
    }

    pub fn plus_secs(self, secs: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(secs))
    }
}

/// A participant's role, granted by enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    CoinPurchaser,
    Redeemer,
    Merchant,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::CoinPurchaser => "purchaser",
            Role::Redeemer => "redeemer",
            Role::Merchant => "merchant",
        })
    }
}

impl std::str::FromStr for Role {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Role, IdError> {
        match s {
            "purchaser" | "coin-purchaser" => Ok(Role::CoinPurchaser),
            "redeemer" => Ok(Role::Redeemer),
            "merchant" => Ok(Role::Merchant),
            _ => Err(IdError::UnknownRole),
        }
    }
}

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    #[error("participant id must be 1 to {PARTICIPANT_ID_BYTES_MAX} bytes")]
    ParticipantIdLength,
    #[error("participant id may hold letters, digits and . _ - @ only")]
    ParticipantIdCharacters,
    #[error("sealed field longer than {SEALED_BYTES_MAX} bytes")]
    SealedTooLong,
    #[error("bank account must be 1 to {PARTICIPANT_ID_BYTES_MAX} bytes")]
    BankAccountLength,
    #[error("bank account may hold letters, digits, - and / only")]
    BankAccountCharacters,
    #[error("unknown role: expected purchaser, redeemer or merchant")]
    UnknownRole,
}

/// A registered identity `ID_X` (may be a pseudonym the participant chose).
///
/// Its `Debug` form does not show the identity, so that it cannot leak into
/// logs by accident; use [`ParticipantId::as_str`] where showing it is meant.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ParticipantId(String);

impl ParticipantId {
    pub fn new(id: impl Into<String>) -> Result<ParticipantId, IdError> {
        let id = id.into();
        if id.is_empty() || id.len() > PARTICIPANT_ID_BYTES_MAX {
            return Err(IdError::ParticipantIdLength);
        }
        if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
        {
            return Err(IdError::ParticipantIdCharacters);
        }
        Ok(ParticipantId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ParticipantId {
    type Error = IdError;
    fn try_from(s: String) -> Result<ParticipantId, IdError> {
        ParticipantId::new(s)
    }
}

impl From<ParticipantId> for String {
    fn from(p: ParticipantId) -> String {
        p.0
    }
}

impl fmt::Debug for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ParticipantId(<redacted>)")
    }
}

/// A bank account number as the bank knows it (ACH routing and account).
/// Like [`ParticipantId`], its `Debug` form is redacted; events carry it only
/// sealed ([`SealedBankAccount`]).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BankAccount(String);

impl BankAccount {
    pub fn new(account: impl Into<String>) -> Result<BankAccount, IdError> {
        let account = account.into();
        if account.is_empty() || account.len() > PARTICIPANT_ID_BYTES_MAX {
            return Err(IdError::BankAccountLength);
        }
        if !account
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '/'))
        {
            return Err(IdError::BankAccountCharacters);
        }
        Ok(BankAccount(account))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BankAccount {
    type Error = IdError;
    fn try_from(s: String) -> Result<BankAccount, IdError> {
        BankAccount::new(s)
    }
}

impl From<BankAccount> for String {
    fn from(a: BankAccount) -> String {
        a.0
    }
}

impl fmt::Debug for BankAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BankAccount(<redacted>)")
    }
}

macro_rules! sealed_field {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "Vec<u8>", into = "Vec<u8>")]
        pub struct $name(Vec<u8>);

        impl $name {
            pub fn from_sealed_bytes(bytes: Vec<u8>) -> Result<Self, IdError> {
                if bytes.len() > SEALED_BYTES_MAX {
                    return Err(IdError::SealedTooLong);
                }
                Ok(Self(bytes))
            }

            pub fn as_sealed_bytes(&self) -> &[u8] {
                &self.0
            }
        }

        impl TryFrom<Vec<u8>> for $name {
            type Error = IdError;
            fn try_from(bytes: Vec<u8>) -> Result<Self, IdError> {
                Self::from_sealed_bytes(bytes)
            }
        }

        impl From<$name> for Vec<u8> {
            fn from(s: $name) -> Vec<u8> {
                s.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(<{} sealed bytes>)", stringify!($name), self.0.len())
            }
        }
    };
}

sealed_field!(
    /// A participant identity sealed under the user-index key. Only
    /// `projections::UserIndex` can open it; everyone else sees ciphertext.
    SealedIdentity
);
sealed_field!(
    /// A bank account sealed under the user-index key, like [`SealedIdentity`].
    SealedBankAccount
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_differ() {
        assert_ne!(CoinId::random(), CoinId::random());
    }

    #[test]
    fn shard_is_stable_and_in_range() {
        for _ in 0..1000 {
            let id = CoinId::random();
            let s = id.shard(7);
            assert!(s.0 < 7);
            assert_eq!(s, id.shard(7));
        }
        assert_eq!(CoinId::random().shard(1), ShardIdx(0));
    }

    #[test]
    fn hex_round_trips() {
        let id = CoinId::random();
        assert_eq!(CoinId::from_hex(&id.to_string()), Some(id));
        assert_eq!(CoinId::from_hex("zz"), None);
    }

    #[test]
    fn tx_derivation_is_deterministic_and_separated() {
        let a = TxId::derive("vc/tx/payment", &[b"payee", b"tid"]);
        assert_eq!(a, TxId::derive("vc/tx/payment", &[b"payee", b"tid"]));
        assert_ne!(a, TxId::derive("vc/tx/change", &[b"payee", b"tid"]));
        // Length prefixes: moving a byte between parts changes the id.
        assert_ne!(a, TxId::derive("vc/tx/payment", &[b"payeet", b"id"]));
    }

    #[test]
    fn participant_ids_are_validated_and_redacted() {
        assert!(ParticipantId::new("alice@example").is_ok());
        assert_eq!(ParticipantId::new(""), Err(IdError::ParticipantIdLength));
        assert_eq!(
            ParticipantId::new("a".repeat(65)),
            Err(IdError::ParticipantIdLength)
        );
        assert_eq!(
            ParticipantId::new("al ice"),
            Err(IdError::ParticipantIdCharacters)
        );
        let p = ParticipantId::new("alice").expect("valid");
        assert!(!format!("{p:?}").contains("alice"));
    }

    #[test]
    fn sealed_fields_are_bounded_and_redacted() {
        assert!(SealedIdentity::from_sealed_bytes(vec![0; SEALED_BYTES_MAX]).is_ok());
        assert_eq!(
            SealedIdentity::from_sealed_bytes(vec![0; SEALED_BYTES_MAX + 1]),
            Err(IdError::SealedTooLong)
        );
        let s = SealedBankAccount::from_sealed_bytes(b"secret".to_vec()).expect("short");
        assert!(!format!("{s:?}").contains("secret"));
    }

    #[test]
    fn roles_parse() {
        assert_eq!("merchant".parse::<Role>(), Ok(Role::Merchant));
        assert!("king".parse::<Role>().is_err());
        for r in [Role::CoinPurchaser, Role::Redeemer, Role::Merchant] {
            assert_eq!(r.to_string().parse::<Role>(), Ok(r));
        }
    }
}

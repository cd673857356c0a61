//! Coins. A holder has a [`Coin`]: its [`CoinBody`] (serial, value, expiry,
//! key epoch) and the mint's [`Tag`] over the body. The issuer logs and stores
//! only bodies: a tag is recomputed by the mint when it is needed, so the
//! issuer's stores never hold a tag in the clear.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{CoinId, KeyEpoch, Timestamp};
use crate::money::Amount;

/// Everything about a coin except its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CoinBody {
    pub id: CoinId,
    pub value: Amount,
    /// After this instant ordinary payments refuse the coin; refresh takes it
    /// until the epoch's grace period ends.
    pub expiry: Timestamp,
    pub epoch: KeyEpoch,
}

/// Length of [`CoinBody::tag_input`].
pub const TAG_INPUT_LEN: usize = 16 + 8 + 8 + 4;

impl CoinBody {
    /// The canonical bytes the mint tags: fixed-width, little-endian, so that
    /// no two different bodies share an encoding.
    pub fn tag_input(&self) -> [u8; TAG_INPUT_LEN] {
        let mut out = [0u8; TAG_INPUT_LEN];
        out[..16].copy_from_slice(self.id.as_bytes());
        out[16..24].copy_from_slice(&self.value.minor_units().to_le_bytes());
        out[24..32].copy_from_slice(&self.expiry.0.to_le_bytes());
        out[32..36].copy_from_slice(&self.epoch.0.to_le_bytes());
        out
    }

    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        now >= self.expiry
    }
}

/// The mint's 128-bit MAC over a [`CoinBody`]. Compare tags only through the
/// mint, which does so in constant time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tag(pub [u8; 16]);

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A tag is a bearer secret: whoever has it can spend the coin.
        f.write_str("Tag(<redacted>)")
    }
}

/// A coin as its holder has it: body and tag. Whoever holds this can spend it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Coin {
    pub body: CoinBody,
    pub tag: Tag,
}

impl Coin {
    pub fn id(&self) -> CoinId {
        self.body.id
    }

    pub fn value(&self) -> Amount {
        self.body.value
    }
}

/// A coin taken out of circulation, as recorded in the log: its body, no tag.
pub type SpentCoin = CoinBody;

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: u64) -> CoinBody {
        CoinBody {
            id: CoinId::from_bytes([7; 16]),
            value: Amount::from_minor(v),
            expiry: Timestamp(1000),
            epoch: KeyEpoch(3),
        }
    }

    #[test]
    fn tag_input_distinguishes_every_field() {
        let base = body(250);
        let mut other = base;
        other.value = Amount::from_minor(251);
        assert_ne!(base.tag_input(), other.tag_input());
        let mut other = base;
        other.expiry = Timestamp(1001);
        assert_ne!(base.tag_input(), other.tag_input());
        let mut other = base;
        other.epoch = KeyEpoch(4);
        assert_ne!(base.tag_input(), other.tag_input());
        let mut other = base;
        other.id = CoinId::from_bytes([8; 16]);
        assert_ne!(base.tag_input(), other.tag_input());
    }

    #[test]
    fn expiry_is_inclusive() {
        let b = body(1);
        assert!(!b.is_expired_at(Timestamp(999)));
        assert!(b.is_expired_at(Timestamp(1000)));
    }

    #[test]
    fn tag_debug_is_redacted() {
        let c = Coin {
            body: body(1),
            tag: Tag([0xab; 16]),
        };
        assert!(!format!("{c:?}").contains("ab, "));
        assert!(!format!("{c:?}").to_lowercase().contains("abab"));
    }
}
